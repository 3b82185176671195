//! Several replicas on one PostgreSQL store: any replica serves any session (requests, the GET
//! stream, a session asleep or awake, its opener gone), a session ended on one is refused by the
//! others, a session that cannot move is refused elsewhere as unknown, and the owner check
//! travels with the session.

use switchboard_test_support::{
    ADMIN_TOKEN,
    postgres::{fresh_database, psql},
};

use super::sessions::{await_on_stream, open_stream};
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

    // Each request on the next replica: a list, a call, the GET stream.
    let listed = request_raw(
        b,
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
    let mut stream = open_stream(b, "/mcp/calc", &session).await;
    let changed = request_raw(
        c,
        "/mcp/calc",
        &session,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "add_greeter", "arguments": {"name": "ada"}}}),
    )
    .await;
    assert!(changed.get("result").is_some(), "{changed}");
    // The upstream's list change reaches the stream on another replica.
    await_on_stream(&mut stream, "notifications/tools/list_changed").await;

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

    // Ended on one replica, refused by the others within the second or two they take.
    let ended = a
        .request(Method::DELETE, "/mcp/calc")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("answers");
    assert!(ended.status().is_success(), "{}", ended.status());
    for replica in [b, c] {
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

/// HAProxy from Debian, with the shipped `deploy/haproxy.cfg`, in front of `replicas`; killed
/// when dropped. Its base URL.
async fn load_balancer(replicas: &[Switchboard]) -> (tokio::process::Child, String) {
    let port = switchboard_test_support::free_port().expect("a port");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy.cfg");
    let mut command = tokio::process::Command::new("haproxy");
    command
        .arg("-f")
        .arg(&config)
        .arg("-db")
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    for (index, replica) in replicas.iter().enumerate() {
        let address = replica.base_url.trim_start_matches("http://").to_string();
        command.env(format!("SWITCHBOARD_REPLICA_{}", index + 1), address);
    }
    let child = command
        .spawn()
        .expect("haproxy runs (apt-get install haproxy)");
    let base = format!("http://127.0.0.1:{port}");
    let health = format!("{base}/healthz");
    eventually("HAProxy answers", Duration::from_millis(50), || async {
        reqwest::get(&health)
            .await
            .is_ok_and(|answer| answer.status() == 200)
    })
    .await;
    (child, base)
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
    let (_haproxy, base) = load_balancer(&replicas).await;
    let url = format!("{base}/mcp/calc");

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
