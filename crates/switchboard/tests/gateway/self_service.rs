//! Self-service, end to end: a user with no grant finds a server with `/mcp/user`'s tools
//! (through the Python SDK's client), asks for "Read-only", an admin approves it through
//! `/mcp/admin` (the TypeScript SDK's client), the user's open session hears the list change, and
//! the webhook hears the request and the decision. The organization's settings narrow it.

use std::sync::{Arc, Mutex};

use super::grants::{TypedSession, admin};
use super::sign_in::{Browser, add_user, register_client, tokens_for};
use super::*;

/// A webhook receiver on a loopback port: it answers the first delivery with a 500, then 200,
/// and keeps the bodies it accepted.
struct Receiver {
    url: String,
    heard: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<u32>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start() -> Self {
        let heard: Arc<Mutex<Vec<Value>>> = Arc::default();
        let refused: Arc<Mutex<u32>> = Arc::default();
        let changed = Arc::new(tokio::sync::Notify::new());
        let (h, r, c) = (heard.clone(), refused.clone(), changed.clone());
        let app = axum::Router::new().route(
            "/hook/secret-path",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (heard, refused, changed) = (h.clone(), r.clone(), c.clone());
                async move {
                    let mut refused = refused.lock().expect("lock");
                    if *refused == 0 {
                        *refused += 1;
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let event: Value = serde_json::from_slice(&body).expect("json");
                    heard.lock().expect("lock").push(event);
                    changed.notify_waiters();
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let url = format!(
            "http://{}/hook/secret-path",
            listener.local_addr().expect("addr")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            heard,
            refused,
            changed,
        }
    }

    /// Waits until an event of `kind` arrived, and answers it.
    async fn event(&self, kind: &str) -> Value {
        loop {
            let notified = self.changed.notified();
            if let Some(event) = self
                .heard
                .lock()
                .expect("lock")
                .iter()
                .find(|event| event["type"] == kind)
            {
                return event.clone();
            }
            notified.await;
        }
    }
}

/// A `/mcp/user` tool called through the Python SDK's `ClientSession`: the tools it listed, and
/// the call's result.
async fn python_user_tool(server: &Switchboard, token: &str, tool: &str, args: Value) -> Value {
    run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&server.url("/mcp/user"), token, tool, &args.to_string()],
    )
    .await
}

#[tokio::test]
async fn a_user_finds_an_app_asks_for_access_and_an_admin_approves_it() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let receiver = Receiver::start().await;
    let settings = admin(
        &server,
        Method::PATCH,
        "/api/settings",
        Some(json!({"webhookUrl": receiver.url})),
    )
    .await;
    // The webhook's secret path is never shown.
    assert_eq!(
        settings["webhookUrl"],
        format!(
            "http://{}/********",
            receiver.url.split('/').nth(2).expect("host")
        ),
        "{settings}"
    );
    let client_id = register_client(&server).await;
    add_user(&server, "bob", "bob's long password");
    let mut browser = Browser::new(&server);
    assert_eq!(
        browser.sign_in("bob", "bob's long password").await.status,
        303
    );
    let token = |answer: Value| answer["access_token"].as_str().expect("token").to_string();
    let on_all = token(tokens_for(&server, &mut browser, &client_id, "/mcp", "mcp").await);
    let writer = token(
        tokens_for(
            &server,
            &mut browser,
            &client_id,
            "/mcp/user",
            "user:read user:write",
        )
        .await,
    );
    let reader =
        token(tokens_for(&server, &mut browser, &client_id, "/mcp/user", "user:read").await);

    // No grant: bob's session on /mcp sees no tools.
    let session = TypedSession::open_with(&server, "/mcp", &on_all, json!({})).await;
    let mut stream = session.stream().await;
    assert!(session.tool_names().await.is_empty());

    // He finds the server by one of its tools, and its "Read-only" permission.
    let found = python_user_tool(&server, &writer, "search_apps", json!({"query": "add"})).await;
    assert_eq!(
        found["tools"],
        json!([
            "search_apps",
            "search_requestable_permissions",
            "list_requestable_permissions",
            "submit_access_request",
            "list_access_requests"
        ]),
        "{found}"
    );
    let apps = &found["result"]["structuredContent"]["apps"];
    assert_eq!(apps[0]["alias"], "calc", "{found}");
    assert_eq!(apps[0]["access"], "none", "{found}");
    let listed = python_user_tool(
        &server,
        &writer,
        "list_requestable_permissions",
        json!({"server": "calc"}),
    )
    .await;
    let permissions = listed["result"]["structuredContent"]["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    let read_only = permissions
        .iter()
        .find(|p| p["label"] == "Read-only")
        .expect("Read-only");
    assert_eq!(read_only["state"], "requestable");
    assert!(
        read_only["tools"]
            .as_array()
            .expect("tools")
            .contains(&json!("bumps")),
        "{read_only}"
    );
    let searched = python_user_tool(
        &server,
        &writer,
        "search_requestable_permissions",
        json!({"query": "read-only calc"}),
    )
    .await;
    assert_eq!(
        searched["result"]["structuredContent"]["permissions"][0]["id"], read_only["id"],
        "{searched}"
    );

    // With only user:read, filing is refused with the scope to ask for; the tool is not listed.
    let listed = python_user_tool(&server, &reader, "list_access_requests", json!({})).await;
    assert!(
        !listed["tools"]
            .as_array()
            .expect("tools")
            .contains(&json!("submit_access_request")),
        "{listed}"
    );
    let attempt = TypedSession::open_with(&server, "/mcp/user", &reader, json!({})).await;
    let answered = post_raw_as(
        &server,
        &reader,
        "/mcp/user",
        Some(&attempt.session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "submit_access_request",
            "arguments": {"permission": read_only["id"], "reason": "reports"}}}),
    )
    .await;
    assert_eq!(answered.status(), 403);
    let challenge = answered
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("user:write"),
        "{challenge}"
    );
    let body: Value = answered.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("user:write"),
        "{body}"
    );

    // He asks; asking again answers the pending request.
    let args = json!({"permission": read_only["id"], "reason": "I prepare the all-hands sales report",
        "durationSeconds": 86400});
    let submitted = python_user_tool(&server, &writer, "submit_access_request", args.clone()).await;
    let request = &submitted["result"]["structuredContent"];
    assert_eq!(request["created"], true, "{submitted}");
    assert_eq!(request["request"]["status"], "pending");
    let request_id = request["request"]["id"].as_str().expect("id").to_string();
    let again = python_user_tool(&server, &writer, "submit_access_request", args).await;
    assert_eq!(again["result"]["structuredContent"]["created"], false);
    assert_eq!(
        again["result"]["structuredContent"]["request"]["id"],
        request_id
    );
    let created = receiver.event("access_request.created").await;
    assert_eq!(created["request"]["id"], request_id, "{created}");
    assert_eq!(created["request"]["username"], "bob");
    assert_eq!(*receiver.refused.lock().expect("lock"), 1, "retried");

    // An admin finds it and approves it through /mcp/admin, for less than asked.
    let token = switchboard_test_support::ADMIN_TOKEN;
    let pending = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[
            &server.url("/mcp/admin"),
            token,
            "list_access_requests",
            r#"{"status": "pending"}"#,
        ],
    )
    .await;
    assert_eq!(
        pending["result"]["structuredContent"]["requests"][0]["id"], request_id,
        "{pending}"
    );
    let approve = json!({"id": request_id, "durationSeconds": 3600, "reason": "for the all-hands"});
    let approved = run_client(
        Path::new("node"),
        "ts_client.mjs",
        &[
            &server.url("/mcp/admin"),
            token,
            "approve_access_request",
            &approve.to_string(),
        ],
    )
    .await;
    assert_eq!(
        approved["result"]["structuredContent"]["request"]["status"], "approved",
        "{approved}"
    );

    // His open session hears it; the read-only tools appear and work; a write is refused with
    // the permission that would allow it.
    super::sessions::await_on_stream(&mut stream, "notifications/tools/list_changed").await;
    let names = session.tool_names().await;
    assert!(names.contains(&"calc__bumps".to_string()), "{names:?}");
    assert!(!names.contains(&"calc__add".to_string()), "{names:?}");
    let bumps = session.call("calc__bumps", json!({})).await;
    assert_eq!(bumps["result"]["isError"], false, "{bumps}");
    let add = session.call("calc__add", json!({"a": 1, "b": 2})).await;
    assert!(
        add["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"Full access\""),
        "{add}"
    );
    let mine = python_user_tool(&server, &writer, "list_access_requests", json!({})).await;
    let mine = &mine["result"]["structuredContent"]["requests"][0];
    assert_eq!(mine["status"], "approved", "{mine}");
    assert_eq!(mine["decisionReason"], "for the all-hands");
    let listed = python_user_tool(
        &server,
        &writer,
        "list_requestable_permissions",
        json!({"server": "calc"}),
    )
    .await;
    let granted = listed["result"]["structuredContent"]["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .find(|p| p["label"] == "Read-only")
        .cloned()
        .expect("Read-only");
    assert_eq!(granted["state"], "granted", "{granted}");
    assert!(granted["grantedUntil"].is_i64(), "an hour, not a day");
    let decided = receiver.event("access_request.approved").await;
    assert_eq!(decided["request"]["decidedBy"], "admin token", "{decided}");

    // Deciding again is a conflict; both steps are on record, with why.
    let (status, answer) = server
        .send_json(
            Method::POST,
            &format!("/api/access-requests/{request_id}/deny"),
            Some(&json!({"reason": "late"})),
        )
        .await
        .expect("answers");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let audit = admin(&server, Method::GET, "/api/audit?limit=1000", None).await;
    let rows = audit["items"].as_array().expect("items");
    for (action, actor) in [
        ("user_mcp.submit_access_request", "bob"),
        ("admin_mcp.approve_access_request", "admin token"),
    ] {
        let row = rows
            .iter()
            .find(|row| row["action"] == action && row["outcome"] == "ok")
            .unwrap_or_else(|| panic!("{action}: {audit}"));
        assert_eq!(row["actor"], actor, "{row}");
    }

    // Settings: read-only self-service for bob's group leaves filing out, and refuses it in
    // plain words; off leaves nothing.
    admin(
        &server,
        Method::POST,
        "/api/groups",
        Some(json!({"name": "interns"})),
    )
    .await;
    admin(
        &server,
        Method::PUT,
        "/api/groups/interns/members/bob",
        None,
    )
    .await;
    admin(
        &server,
        Method::PATCH,
        "/api/settings",
        Some(json!({"groups": {"interns": "readOnly"}})),
    )
    .await;
    let full = permissions
        .iter()
        .find(|p| p["label"] == "Full access")
        .expect("Full access");
    let refused = python_user_tool(
        &server,
        &writer,
        "submit_access_request",
        json!({"permission": full["id"], "reason": "writes"}),
    )
    .await;
    assert!(
        !refused["tools"]
            .as_array()
            .expect("tools")
            .contains(&json!("submit_access_request")),
        "{refused}"
    );
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("self-service read-only"), "{text}");
    admin(
        &server,
        Method::PATCH,
        "/api/settings",
        Some(json!({"selfService": "off"})),
    )
    .await;
    let off = python_user_tool(&server, &writer, "search_apps", json!({})).await;
    assert_eq!(off["tools"], json!([]), "{off}");
    assert_eq!(off["result"]["isError"], true, "{off}");

    // Bad input is refused with its code, and a webhook to a metadata address is refused.
    for (path, body, code) in [
        ("/api/settings", json!({"selfService": "sometimes"}), 400),
        (
            "/api/settings",
            json!({"webhookUrl": "http://169.254.169.254/latest"}),
            400,
        ),
        ("/api/settings", json!({"groups": {"nobody": "off"}}), 404),
    ] {
        let (status, answer) = server
            .send_json(Method::PATCH, path, Some(&body))
            .await
            .expect("answers");
        assert_eq!(status, code, "{body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let (status, _) = server
        .send_json(Method::GET, "/api/access-requests?status=maybe", None)
        .await
        .expect("answers");
    assert_eq!(status, 400);
}

/// A read-only admin credential lists only the admin tools that read, and may call them.
#[tokio::test]
async fn a_read_only_admin_credential_sees_only_the_tools_that_read() {
    let server = serve(&[]).await;
    let made = admin(
        &server,
        Method::POST,
        "/api/keys",
        Some(json!({"user": "admin", "name": "audit bot", "scopes": "admin:read"})),
    )
    .await;
    let key = made["key"].as_str().expect("key");
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[&server.url("/mcp/admin"), key, "get_settings", "{}"],
    )
    .await;
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"list_access_requests"), "{tools:?}");
    for write in [
        "approve_access_request",
        "delete_mcp_server",
        "update_settings",
    ] {
        assert!(!tools.contains(&write), "{write} listed for a reader");
    }
    assert_eq!(
        answer["result"]["structuredContent"]["settings"]["selfService"], "on",
        "{answer}"
    );
}

/// Users managed over REST and `/mcp/admin`: added with a password made and shown once, never
/// shown hashed; an admin demoted loses the admin endpoints with the tokens they hold; a reset
/// password ends the old one; bad input is refused with its code.
#[tokio::test]
async fn users_are_managed_and_a_demoted_admin_loses_the_admin_endpoints() {
    let server = serve(&[]).await;
    let made = admin(
        &server,
        Method::POST,
        "/api/users",
        Some(json!({"username": "carol", "role": "admin"})),
    )
    .await;
    let password = made["password"].as_str().expect("shown once").to_string();
    assert_eq!(made["user"]["role"], "admin", "{made}");
    let listed = admin(&server, Method::GET, "/api/users", None).await;
    assert!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|user| user["username"] == "carol" && user["source"] == "local"),
        "{listed}"
    );
    assert!(!listed.to_string().contains("argon2"), "{listed}");

    let client_id = register_client(&server).await;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("carol", &password).await.status, 303);
    let tokens = tokens_for(
        &server,
        &mut browser,
        &client_id,
        "/mcp/admin",
        "admin:read",
    )
    .await;
    let token = tokens["access_token"].as_str().expect("token").to_string();
    let (status, _) = super::sign_in::mcp_status(&server, "/mcp/admin", Some(&token)).await;
    assert_eq!(status, 200);

    // Demoted through /mcp/admin: the token she holds names the admin role, and is refused.
    let demote = json!({"user": "carol", "role": "user"});
    let answer = run_client(
        &switchboard_test_support::python(),
        "python_client.py",
        &[
            &server.url("/mcp/admin"),
            switchboard_test_support::ADMIN_TOKEN,
            "update_user",
            &demote.to_string(),
        ],
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["user"]["role"], "user",
        "{answer}"
    );
    eventually(
        "the demoted admin's token to be refused",
        Duration::from_millis(100),
        || async {
            let (status, _) = super::sign_in::mcp_status(&server, "/mcp/admin", Some(&token)).await;
            status == 401
        },
    )
    .await;

    // A reset password ends the old one.
    let reset = admin(
        &server,
        Method::POST,
        "/api/users/carol/password",
        Some(json!({})),
    )
    .await;
    let new_password = reset["password"].as_str().expect("a new password");
    let mut again = Browser::new(&server);
    assert_ne!(again.sign_in("carol", &password).await.status, 303);
    assert_eq!(again.sign_in("carol", new_password).await.status, 303);

    for (method, path, body, code) in [
        (
            Method::POST,
            "/api/users",
            json!({"username": "carol"}),
            409,
        ),
        (
            Method::POST,
            "/api/users",
            json!({"username": "bad name!"}),
            400,
        ),
        (
            Method::POST,
            "/api/users",
            json!({"username": "dave", "role": "root"}),
            400,
        ),
        (
            Method::POST,
            "/api/users",
            json!({"username": "erin", "password": "short"}),
            400,
        ),
        (
            Method::PATCH,
            "/api/users/nobody",
            json!({"disabled": true}),
            404,
        ),
        (
            Method::PATCH,
            "/api/users/carol",
            json!({"colour": "red"}),
            400,
        ),
    ] {
        let (status, answer) = server
            .send_json(method.clone(), path, Some(&body))
            .await
            .expect("answers");
        assert_eq!(status, code, "{method} {path} {body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let audit = admin(&server, Method::GET, "/api/audit?limit=1000", None).await;
    for action in [
        "user.create",
        "admin_mcp.update_user",
        "user.reset_password",
    ] {
        assert!(
            audit["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|row| row["action"] == action && row["outcome"] == "ok"),
            "{action}: {audit}"
        );
    }
}
