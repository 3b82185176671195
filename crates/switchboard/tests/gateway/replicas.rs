//! Several replicas on one PostgreSQL store: any replica serves any session (requests, the GET
//! stream, a session asleep or awake, its opener gone), a session ended on one is refused by the
//! others, a session that cannot move is refused elsewhere as unknown, and the owner check
//! travels with the session.

use switchboard_test_support::{
    ADMIN_TOKEN,
    postgres::{fresh_database, psql},
};

use super::sessions::{await_on_stream, list_change_heard, open_stream};
use super::*;

/// `count` replicas on a fresh database sharing one secret key, with the Python fixture
/// registered as `calc` through the first; and the database's name, to drop.
pub(crate) async fn replicas(
    count: usize,
    tag: &str,
) -> (
    Vec<Switchboard>,
    switchboard_test_support::PeerServer,
    String,
) {
    let database = format!("switchboard_{tag}_{}", std::process::id());
    let url = fresh_database(&database);
    let key = "7c".repeat(32);
    let env = [("SWITCHBOARD_SECRET_KEY", key.as_str())];
    let mut started = Vec::new();
    for _ in 0..count {
        started.push(
            Switchboard::start(binary(), &["--database", &url], &env)
                .await
                .expect("a replica starts"),
        );
    }
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    register(
        &started[0],
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    (started, python, database)
}

fn call_add(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}}})
}

#[tokio::test]
async fn a_session_opened_on_one_replica_is_served_by_another_until_it_ends() {
    let (replicas, _python, database) = replicas(3, "moving").await;
    let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);
    let session = open_raw_session(a, "/mcp/calc").await;

    // A caller without a credential of ours naming the session is refused, and costs no read
    // of the store: made-up ids from anyone cannot make the replicas read it.
    let reads = "switchboard_session_reads_total";
    for token in [None, Some("sb_not_the_admin_token"), Some("sbat_forged")] {
        let mut request = switchboard_test_support::http_client()
            .post(b.url("/mcp/calc"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&call_add(1));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = request.send().await.expect("answers");
        assert_eq!(refused.status(), 401, "{token:?}");
    }
    assert_eq!(metric(b, reads).await, 0.0, "no store read for them");

    // Each request on another replica: the GET stream first, on a replica that has not opened
    // calc's upstream (the stream opens it, and hears it), then a list and a call.
    let mut stream = open_stream(b, "/mcp/calc", &session).await;
    assert_eq!(metric(b, reads).await, 1.0, "read once, then known");
    let listed = request_raw(
        c,
        "/mcp/calc",
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|tools| !tools.is_empty()),
        "{listed}"
    );
    let called = request_raw(c, "/mcp/calc", &session, call_add(3)).await;
    assert_eq!(
        called["result"]["structuredContent"]["result"], 5,
        "{called}"
    );
    // The upstream's list change, made through another replica, reaches the stream.
    let heard = list_change_heard(c, &session, &mut stream, "ada").await;
    assert!(heard, "the stream heard none of three list changes");

    // The admin MCP server's sessions move too.
    let admin_session = open_raw_session(a, "/mcp/admin").await;
    let listed = request_raw(
        c,
        "/mcp/admin",
        &admin_session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert!(
        listed["result"]["tools"]
            .to_string()
            .contains("list_mcp_servers"),
        "{listed}"
    );

    // Another credential on another replica: the owner check travels with the session.
    let eves_key = admin_api_key(a).await;
    eventually(
        "eve's key reaches the third replica",
        Duration::from_millis(100),
        || async {
            super::sign_in::mcp_status(c, "/mcp/calc", Some(&eves_key))
                .await
                .0
                == 200
        },
    )
    .await;
    let refused = post_raw_as(c, &eves_key, "/mcp/calc", Some(&session), call_add(5)).await;
    assert_eq!(refused.status(), 404, "another's session is unknown to eve");

    // Ended on a replica that did not open it, refused by the others (the opener included).
    let ended = b
        .request(Method::DELETE, "/mcp/calc")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("answers");
    assert!(ended.status().is_success(), "{}", ended.status());
    for replica in [a, c] {
        eventually(
            "the ended session is refused",
            Duration::from_millis(100),
            || async {
                post_raw(replica, "/mcp/calc", Some(&session), call_add(6))
                    .await
                    .status()
                    == 404
            },
        )
        .await;
    }

    drop(replicas);
    psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
}

#[tokio::test]
async fn a_session_that_cannot_move_says_so_and_is_unknown_elsewhere() {
    let (replicas, _python, database) = replicas(2, "pinned").await;
    let (a, b) = (&replicas[0], &replicas[1]);
    // A client that answers sampling holds an upstream session of its own, on `a`.
    let opened = post_raw(
        a,
        "/mcp/calc",
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
            "clientInfo": {"name": "sampler", "version": "1"}}}),
    )
    .await;
    assert_eq!(
        opened
            .headers()
            .get("x-switchboard-pinned")
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "the load balancer is asked to keep it here"
    );
    let session = opened
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session")
        .to_string();
    opened.bytes().await.expect("reads");
    assert_eq!(
        post_raw(b, "/mcp/calc", Some(&session), call_add(2))
            .await
            .status(),
        404
    );
    // A session that can move is not pinned.
    let free = post_raw(
        a,
        "/mcp/calc",
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "plain", "version": "1"}}}),
    )
    .await;
    assert!(free.headers().get("x-switchboard-pinned").is_none());
    // A made-up id is unknown everywhere.
    assert_eq!(
        post_raw(b, "/mcp/calc", Some("made-up"), call_add(3))
            .await
            .status(),
        404
    );

    drop(replicas);
    psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
}

/// An API key of a new user holding every tool of `calc` (made in the shared store).
async fn admin_api_key(server: &Switchboard) -> String {
    super::grants::admin(
        server,
        Method::POST,
        "/api/users",
        Some(json!({"username": "eve"})),
    )
    .await;
    super::grants::admin(
        server,
        Method::POST,
        "/api/grants",
        Some(json!({"permission": full_access(server).await, "user": "eve"})),
    )
    .await;
    let made = super::grants::admin(
        server,
        Method::POST,
        "/api/keys",
        Some(json!({"user": "eve", "name": "k", "scopes": "mcp"})),
    )
    .await;
    made["key"].as_str().expect("a key").to_string()
}

async fn full_access(server: &Switchboard) -> String {
    let listed = super::grants::admin(
        server,
        Method::GET,
        "/api/mcp-servers/calc/permissions",
        None,
    )
    .await;
    listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["label"] == "Full access")
        .and_then(|p| p["id"].as_str())
        .expect("Full access")
        .to_string()
}

/// HAProxy from Debian with the shipped `deploy/haproxy.cfg` in front of `replicas`.
async fn load_balancer(replicas: &[Switchboard]) -> switchboard_test_support::LoadBalancer {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy.cfg");
    switchboard_test_support::LoadBalancer::start(replicas, &config)
        .await
        .expect("haproxy runs (apt-get install haproxy)")
}

/// How many MCP requests to `/mcp/{server}` a replica has answered, from its metrics.
async fn mcp_requests(replica: &Switchboard) -> u64 {
    let text = replica
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("reads");
    text.lines()
        .filter(|line| {
            line.starts_with("switchboard_http_requests_total{")
                && line.contains("endpoint=\"/mcp/{server}\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The TypeScript and Python SDK clients run whole sessions through HAProxy in round-robin over
/// three replicas: initialize, list, a call with progress, a list change heard; every replica
/// takes part.
#[tokio::test]
async fn sdk_clients_run_whole_sessions_through_a_load_balancer() {
    let (replicas, _python, database) = replicas(3, "balanced").await;
    let haproxy = load_balancer(&replicas).await;
    let url = haproxy.url("/mcp/calc");

    let ts = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[&url, ADMIN_TOKEN, "report_thrice", "{}"],
    )
    .await;
    assert!(
        ts["tools"].as_array().is_some_and(|tools| tools.len() > 5),
        "{ts}"
    );
    assert_eq!(ts["progress"], 3, "{ts}");
    assert_eq!(ts["result"]["isError"], false, "{ts}");
    let heard = run_client(
        Path::new("node"),
        "ts_list_changed.mjs",
        &[&url, ADMIN_TOKEN, "add_greeter", r#"{"name": "balanced"}"#],
    )
    .await;
    assert_eq!(heard["notified"], true, "{heard}");
    assert!(
        heard["after"].to_string().contains("greet_balanced"),
        "{heard}"
    );
    let python = peers_dir().join(".venv/bin/python");
    let py = run_client(
        &python,
        "python_client.py",
        &[&url, ADMIN_TOKEN, "add", r#"{"a": 2, "b": 3}"#],
    )
    .await;
    assert!(py["result"].to_string().contains('5'), "{py}");
    let mut served = Vec::new();
    for replica in &replicas {
        served.push(mcp_requests(replica).await);
    }
    assert!(
        served.iter().all(|count| *count > 0),
        "every replica served some: {served:?}"
    );

    drop(replicas);
    psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
}

/// A replica killed with `kill -9` while 32 clients call through HAProxy: only calls in flight
/// on it may fail (one per client at most), every client goes on in its session to the end, a
/// session that cannot move and was on it gets the session-not-found answer (those on live
/// replicas stay served), and a GET stream that was on the dead replica, opened again, hears
/// later list changes.
#[tokio::test]
async fn a_replica_killed_under_load_fails_only_its_calls_in_flight() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    const CLIENTS: usize = 32;
    const CALLS: usize = 20;
    let (mut replicas, _python, database) = replicas(3, "killed").await;
    let haproxy = load_balancer(&replicas).await;
    let url = haproxy.url("/mcp/calc");

    // A session whose GET stream is on the replica to be killed.
    let session = open_raw_session_at(&url, ADMIN_TOKEN, json!({})).await;
    let mut stream = replicas[1]
        .request(Method::GET, "/mcp/calc")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("opens the stream");
    assert_eq!(stream.status(), 200);

    // Sessions that cannot move, one on each replica (round-robin): HAProxy keeps each on its
    // own, so every request of theirs is served; the victim's is the one it knows directly.
    let mut pinned = Vec::new();
    for _ in 0..3 {
        pinned.push(open_raw_session_at(&url, ADMIN_TOKEN, json!({"sampling": {}})).await);
    }
    let ping = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
    for session in &pinned {
        for id in 0..3 {
            let answered = post_raw_to(&url, ADMIN_TOKEN, Some(session), ping(id)).await;
            assert_eq!(answered.status(), 200, "kept on its replica");
        }
    }
    let mut on_victim = None;
    for session in &pinned {
        let direct = post_raw(&replicas[1], "/mcp/calc", Some(session), ping(7)).await;
        if direct.status() == 200 {
            on_victim = Some(session.clone());
        }
    }
    let on_victim = on_victim.expect("one pinned session on each replica");

    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (url, done) = (url.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut http = switchboard_mcp::HttpConfig::new(url);
            http.headers
                .push(("Authorization".into(), format!("Bearer {ADMIN_TOKEN}")));
            let client = switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::new(
                "client",
                switchboard_mcp::Endpoint::Http(http),
            ))
            .await
            .expect("connects through HAProxy");
            let mut failed = 0;
            let mut last_ok = false;
            for call in 0..CALLS {
                let arguments = json!({"a": call, "b": 1});
                let answer = client
                    .call_tool("add", arguments.as_object().cloned(), Default::default())
                    .await;
                last_ok = answer.is_ok_and(|result| result.is_error != Some(true));
                if !last_ok {
                    failed += 1;
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            (failed, last_ok)
        }));
    }
    // Once a quarter of the calls are done, replica 2 dies.
    eventually("a quarter of the calls", Duration::from_millis(10), || {
        std::future::ready(done.load(Ordering::SeqCst) >= CLIENTS * CALLS / 4)
    })
    .await;
    let victim = replicas[1].pid().expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    let mut failures = 0;
    for client in clients {
        let (failed, last_ok) = client.await.expect("a client ran to its end");
        failures += failed;
        assert!(last_ok, "the client goes on in its session");
    }
    assert!(
        failures <= CLIENTS,
        "only calls in flight on the dead replica fail, one per client at most: {failures}"
    );

    // The pinned session of the dead replica gets the session-not-found answer (no hang), and
    // the others are still kept on their replicas.
    let lost = post_raw_to(&url, ADMIN_TOKEN, Some(&on_victim), ping(8)).await;
    assert_eq!(lost.status(), 404);
    for session in pinned.iter().filter(|session| **session != on_victim) {
        let answered = post_raw_to(&url, ADMIN_TOKEN, Some(session), ping(9)).await;
        assert_eq!(answered.status(), 200, "still on its live replica");
    }

    // The stream on the dead replica ended; opened again through HAProxy it lands on a live one
    // and hears the next list change.
    while let Ok(Some(_)) = stream.chunk().await {}
    let reopened = switchboard_test_support::http_client()
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("opens the stream again");
    assert_eq!(reopened.status(), 200);
    let mut reopened = reopened;
    let changed = post_raw_to(
        &url,
        ADMIN_TOKEN,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "add_greeter", "arguments": {"name": "after"}}}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    await_on_stream(&mut reopened, "notifications/tools/list_changed").await;

    replicas.remove(1);
    drop(replicas);
    psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
}
