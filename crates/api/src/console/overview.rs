//! The admins' overview: the health of every server at a glance, from the gateway's own
//! counters (those of `/metrics`, by the minute): its state and breaker, its calls and errors
//! over the last hour as a chart drawn here in SVG, and its p50 and p99 latency.

use axum::{extract::State, http::StatusCode, response::Response};
use axum_extra::extract::cookie::CookieJar;
use switchboard_gateway::recent::{Hour, MINUTES};

use super::{
    Viewer,
    pages::{self, show},
};
use crate::AppState;

/// A server's chart: a bar a minute, 3 units wide with a gap of 1.
const SMALL: (u32, u32) = (4 * MINUTES as u32, 40);
/// The fleet's chart, wider and taller.
const LARGE: (u32, u32) = (10 * MINUTES as u32, 80);

/// `/console/admin`: the overview.
pub(super) async fn overview(State(state): State<AppState>, jar: CookieJar) -> Response {
    let viewer = match Viewer::admin_page(&state, jar, "/console/admin").await {
        Ok(viewer) => viewer,
        Err(answer) => return answer,
    };
    let servers = match state.gateway.list().await {
        Ok(servers) => servers,
        Err(error) => return viewer.failed(&error.to_string()),
    };
    let metrics = state.gateway.metrics();
    let mut fleet_minutes = vec![(0u32, 0u32); MINUTES];
    let mut fleet = pages::Fleet::default();
    let mut rows = Vec::new();
    for server in servers {
        let hour = metrics.last_hour(&server.alias);
        for (total, minute) in fleet_minutes.iter_mut().zip(&hour.per_minute) {
            total.0 += minute.0;
            total.1 += minute.1;
        }
        let (state_word, state_class) =
            super::servers::state_of(server.enabled, server.status.state);
        match state_word {
            "connected" => fleet.connected += 1,
            "error" => fleet.failing += 1,
            "disabled" => fleet.disabled += 1,
            _ => fleet.idle += 1,
        }
        fleet.calls += hour.calls;
        fleet.errors += hour.errors;
        rows.push(health(&server, state_word, state_class, &hour));
    }
    fleet.servers = rows.len();
    fleet.error_rate = rate(fleet.calls, fleet.errors);
    fleet.chart = chart(&fleet_minutes, LARGE, "The whole fleet");
    let page = pages::OverviewPage {
        frame: viewer.frame(&state, "overview", None, None).await,
        fleet,
        servers: rows,
    };
    show(StatusCode::OK, viewer.jar, &page)
}

fn health(
    server: &switchboard_gateway::ServerView,
    state: &'static str,
    state_class: &'static str,
    hour: &Hour,
) -> pages::ServerHealth {
    let breaker = server.status.breaker;
    pages::ServerHealth {
        id: server.id.clone(),
        name: server.name.clone(),
        alias: server.alias.clone(),
        state,
        state_class,
        message: server.status.message.clone().unwrap_or_default(),
        breaker: breaker.replace('_', " "),
        breaker_class: match breaker {
            "closed" => "ok",
            "open" => "warn",
            _ => "",
        },
        calls: hour.calls,
        errors: hour.errors,
        error_rate: rate(hour.calls, hour.errors),
        p50: latency(hour.p50),
        p99: latency(hour.p99),
        chart: chart(&hour.per_minute, SMALL, &server.name),
    }
}

/// Bars of calls per minute, with the minute's errors drawn over them from the baseline.
fn chart(per_minute: &[(u32, u32)], (width, height): (u32, u32), of: &str) -> pages::Chart {
    let step = width / MINUTES as u32;
    let most = per_minute
        .iter()
        .map(|minute| minute.0)
        .max()
        .unwrap_or(0)
        .max(1);
    let scaled = |count: u32| {
        // A minute with any call shows at least a sliver.
        let bar = (f64::from(count) * f64::from(height) / f64::from(most)).round() as u32;
        if count > 0 { bar.max(1) } else { 0 }
    };
    let bars = per_minute
        .iter()
        .enumerate()
        .filter(|(_, minute)| minute.0 > 0)
        .map(|(index, &(calls, errors))| {
            let calls_height = scaled(calls);
            let errors_height = scaled(errors);
            pages::Bar {
                x: index as u32 * step,
                width: step - 1,
                y: height - calls_height,
                height: calls_height,
                error_y: height - errors_height,
                error_height: errors_height,
            }
        })
        .collect();
    let (calls, errors) = per_minute.iter().fold((0u64, 0u64), |(c, e), m| {
        (c + u64::from(m.0), e + u64::from(m.1))
    });
    pages::Chart {
        width,
        height,
        label: format!(
            "{of}: {calls} calls and {errors} errors over the last hour, at most {most} in a minute"
        ),
        bars,
    }
}

/// Errors as a share of calls, in words.
fn rate(calls: u64, errors: u64) -> String {
    if calls == 0 {
        "no calls".into()
    } else {
        format!("{:.1}% errors", errors as f64 * 100.0 / calls as f64)
    }
}

fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".into(),
        Some(seconds) if seconds < 0.001 => "under 1 ms".into(),
        Some(seconds) if seconds < 1.0 => format!("{:.0} ms", seconds * 1000.0),
        Some(seconds) => format!("{seconds:.1} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_minute_and_errors_sit_on_the_baseline() {
        let mut minutes = vec![(0, 0); MINUTES];
        minutes[0] = (10, 5);
        minutes[59] = (1, 0);
        let drawn = chart(&minutes, SMALL, "s");
        assert_eq!(drawn.bars.len(), 2);
        let first = &drawn.bars[0];
        assert_eq!((first.x, first.y, first.height), (0, 0, 40));
        assert_eq!((first.error_y, first.error_height), (20, 20));
        let last = &drawn.bars[1];
        assert_eq!((last.x, last.width, last.height, last.y), (236, 3, 4, 36));
        assert!(
            drawn.label.contains("11 calls and 5 errors"),
            "{}",
            drawn.label
        );
        assert_eq!(chart(&vec![(0, 0); MINUTES], SMALL, "s").bars.len(), 0);
    }

    #[test]
    fn figures_read_as_words() {
        assert_eq!(rate(0, 0), "no calls");
        assert_eq!(rate(200, 3), "1.5% errors");
        assert_eq!(latency(None), "—");
        assert_eq!(latency(Some(0.0004)), "under 1 ms");
        assert_eq!(latency(Some(0.0123)), "12 ms");
        assert_eq!(latency(Some(2.25)), "2.2 s");
    }
}
