//! Loads of several subjects (a forwarder, a gateway with one credential or another, another
//! build) in alternated phases, so that their ratios hold for one run's conditions.

use std::time::Duration;

use crate::load::{Load, load};

/// What one of the alternated loads calls: the bare forwarder, or `/mcp/echo` with a credential.
pub(crate) struct Subject<'a> {
    pub(crate) url: &'a str,
    pub(crate) token: &'a str,
    /// Whose CPU the load reads: the forwarder's or the gateway's.
    pub(crate) pid: u32,
}

/// One subject's loads, as one, and what each phase cost per call.
pub(crate) struct Compared {
    pub(crate) load: Load,
    /// Each phase's CPU per call, in the order measured.
    pub(crate) phases: String,
}

/// The order of the alternated phases for `n` subjects: each rotation of `0..n`, then each
/// rotation of it reversed. Each subject goes in each place twice, and follows each other
/// subject as often as it precedes it (for three subjects, these are all six orders). The
/// neighbours' load on this machine moves from one measurement to the next, and the gateway's
/// audit table grows with each call: a drift over the phases then weighs on every subject alike,
/// and the phases' sums move less than any one phase.
fn order(n: usize) -> Vec<usize> {
    let forward: Vec<usize> = (0..n).collect();
    let backward: Vec<usize> = (0..n).rev().collect();
    [forward, backward]
        .iter()
        .flat_map(|base| (0..n).flat_map(move |shift| (0..n).map(move |i| base[(i + shift) % n])))
        .collect()
}

/// The subjects' loads, in alternated phases of `duration` divided by their number: two in
/// each place of the order for each, as long in all as two of `duration` each. Ratios between
/// them are then measured in one run under the same conditions, which one phase per subject is
/// not.
pub(crate) async fn alternate(
    subjects: &[Subject<'_>],
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Vec<Compared>> {
    let n = subjects.len();
    let mut loads: Vec<Vec<Load>> = (0..n).map(|_| Vec::new()).collect();
    let phase = duration / u32::try_from(n)?;
    for index in order(n) {
        let Subject { url, token, pid } = subjects[index];
        loads[index].push(load(url, "echo", token, concurrency, phase, &[pid]).await?);
    }
    Ok(loads.into_iter().map(Compared::of).collect())
}

impl Compared {
    fn of(loads: Vec<Load>) -> Self {
        let phases = loads
            .iter()
            .map(|load| format!("{:.1}", load.cpu_per_call(0).0.as_secs_f64() * 1e6))
            .collect::<Vec<_>>()
            .join(", ");
        Compared {
            load: Load::merged(loads),
            phases: format!("phases {phases} µs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn each_subject_goes_in_each_place_twice_and_before_each_other_as_often_as_after() {
        for n in [3, 4] {
            let phases = order(n);
            assert_eq!(phases.len(), 2 * n * n);
            for subject in 0..n {
                for place in 0..n {
                    let times = phases
                        .chunks(n)
                        .filter(|round| round[place] == subject)
                        .count();
                    assert_eq!(times, 2, "subject {subject} in place {place} of {n}");
                }
                for other in (0..n).filter(|other| *other != subject) {
                    let before = phases
                        .chunks(n)
                        .filter(|round| {
                            let at = |s| round.iter().position(|x| *x == s);
                            at(subject) < at(other)
                        })
                        .count();
                    assert_eq!(before, n, "{subject} before {other} of {n}");
                }
            }
        }
        // For three subjects, every order once.
        let mut rounds: Vec<Vec<usize>> = order(3).chunks(3).map(<[usize]>::to_vec).collect();
        rounds.sort();
        rounds.dedup();
        assert_eq!(rounds.len(), 6);
    }
}
