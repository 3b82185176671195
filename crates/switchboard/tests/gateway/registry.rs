//! The registry: its REST API and `/mcp/admin`, validation, secrets, runtimes and the catalog.

use super::*;

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

    // A secret is write-only: un-marking it, or sending its mask back as a plain value, is
    // refused unless a new value comes with it; with one, the key becomes plain.
    for attack in [
        json!({"sensitiveKeys": []}),
        json!({"env": {"BRAVE_API_KEY": "********"}, "sensitiveKeys": []}),
    ] {
        let (status, refused) = server
            .send_json(Method::PATCH, "/api/mcp-servers/brave", Some(&attack))
            .await
            .expect("answers");
        assert_eq!(status, 400, "{attack} -> {refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("`BRAVE_API_KEY` holds a secret"),
            "{refused}"
        );
    }
    let (_, kept) = server
        .send_json(Method::GET, "/api/mcp-servers/brave", None)
        .await
        .expect("answers");
    assert_eq!(kept["env"]["BRAVE_API_KEY"], "********", "{kept}");
    let (status, plain) = server
        .send_json(
            Method::PATCH,
            "/api/mcp-servers/brave",
            Some(&json!({"env": {"BRAVE_API_KEY": "now-plain"}, "sensitiveKeys": []})),
        )
        .await
        .expect("answers");
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain["env"]["BRAVE_API_KEY"], "now-plain");

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
    eventually(
        "the idle runtime was not stopped",
        Duration::from_millis(20),
        || std::future::ready(pids_with_env("RUNTIME_MARKER", &marker).is_empty()),
    )
    .await;
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
    assert_eq!(tools.len(), 26, "{tools:?}");
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
