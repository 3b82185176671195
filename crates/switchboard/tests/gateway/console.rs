//! The web console in headless Chromium, clicking as people do: a user finds an app and asks
//! for access, an admin approves it from the inbox, the user sees the grant and how to connect,
//! then makes an API key and revokes it. Every page is saved at desktop and phone width; any
//! browser console error or failed request fails the test. Then the attacks: no session, a
//! user on an admin page, a form without its CSRF token. The server pages are `console_servers`.

use switchboard_test_support::ADMIN_PASSWORD;

use super::grants::admin;
use super::sign_in::{Browser, add_user};
use super::*;

#[tokio::test]
async fn a_user_asks_an_admin_approves_and_the_user_sees_the_grant_and_makes_a_key() {
    let (python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    let llm = ScriptedLlm::start(vec![
        Reply::call("add", json!({"a": 20, "b": 22})),
        Reply::text("20 and 22 make 42."),
    ])
    .await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&screenshots).expect("dir");
    let config = json!({
        "base": server.base_url,
        "user": {"username": "bob", "password": "bob's long password"},
        "admin": {"username": "admin", "password": ADMIN_PASSWORD},
        "app": "calc",
        "permission": "Read-only",
        "screenshots": screenshots,
        "catalog": "Memory (npx)",
        "block": {"mcpServers": {
            "Calc Mirror": {"type": "http", "url": python.url("/mcp")},
            "Local Notes": {"command": "npx", "args": ["-y", "@example/notes-mcp"],
                "env": {"NOTES_TOKEN": "a secret value"}},
            "Broken": {"type": "http", "url": "http://169.254.169.254/latest"},
        }},
        "callServer": "Calc",
        "call": {"tool": "add", "arguments": {"a": 2, "b": 3}},
        "run": {"task": "Add 20 and 22.", "model": "scripted-model",
            "baseUrl": llm.base_url(), "server": "calc"},
    });
    let out = run_client(Path::new("node"), "console.mjs", &[&config.to_string()]).await;
    assert!(out.get("error").is_none(), "{}", out["error"]);
    assert_eq!(out["problems"], json!([]), "{out}");
    assert_eq!(out["requested"], "Pending", "{out}");
    assert!(
        out["approvedSeen"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Approved"),
        "{out}"
    );
    let grant = out["grant"].as_str().unwrap_or_default();
    assert!(
        grant.contains("calc") && grant.contains("Read-only") && grant.contains("until 20"),
        "{out}"
    );
    assert!(
        out["connect"]
            .as_str()
            .unwrap_or_default()
            .contains("claude mcp add --transport http calc"),
        "{out}"
    );
    let key = out["keyShown"].as_str().unwrap_or_default();
    assert!(key.starts_with("sbk_"), "{out}");
    assert!(
        out["keyRevoked"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{out}"
    );
    let (before, after) = (
        out["auditRowsBefore"].as_u64().unwrap_or(0),
        out["auditRowsAfter"].as_u64().unwrap_or(0),
    );
    assert!(after > 0 && after < before, "the filter narrows: {out}");
    assert_eq!(out["auditWho"], json!(["bob"]), "{out}");
    assert!(
        out["catalogAdded"]
            .as_str()
            .unwrap_or_default()
            .contains("Memory"),
        "{out}"
    );
    let imported = out["imported"].as_str().unwrap_or_default();
    assert!(
        imported.contains("Calc Mirror: added as /mcp/calc-mirror")
            && imported.contains("Local Notes: added as /mcp/local-notes")
            && imported.contains("Broken: not added"),
        "{out}"
    );
    let called: Value = serde_json::from_str(out["called"].as_str().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(called["structuredContent"]["result"], 5, "{out}");
    // The run the admin started: its answer, its call with its output, and its row.
    assert_eq!(out["runAnswer"], "20 and 22 make 42.", "{out}");
    let call = out["runCall"].as_str().unwrap_or_default();
    assert!(
        call.contains("add") && call.contains("on calc") && call.contains("42"),
        "{out}"
    );
    let listed = out["runsListed"].as_str().unwrap_or_default();
    assert!(
        listed.contains("Add 20 and 22.") && listed.contains("final answer"),
        "{out}"
    );
    // The overview counts both of the app's calls, and draws them.
    assert_eq!(out["overviewCalls"], "2", "{out}");
    assert!(
        out["overviewChart"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Calc: 2 calls and 0 errors over the last hour"),
        "{out}"
    );
    assert!(
        matches!(out["overviewBars"].as_u64(), Some(1 | 2)),
        "a bar a minute: {out}"
    );
    let runs = admin(&server, Method::GET, "/api/runs", None).await;
    assert_eq!(runs["items"][0]["actor"], "admin", "{runs}");
    assert_eq!(runs["items"][0]["tool_calls"], 1, "{runs}");
    // The pasted env value is a secret: sealed, and masked in every answer.
    let notes = admin(&server, Method::GET, "/api/mcp-servers/local-notes", None).await;
    assert_eq!(notes["env"]["NOTES_TOKEN"], "********", "{notes}");
    for page in [
        "servers-imported",
        "delete",
        "server-called",
        "people",
        "apps",
        "app",
        "requests",
        "connect",
        "access-key",
        "audit",
        "audit-filtered",
        "overview",
        "runs-empty",
        "run",
        "runs",
    ] {
        for width in ["desktop", "phone"] {
            let shot = screenshots.join(format!("console-{page}-{width}.png"));
            assert!(shot.exists(), "{}", shot.display());
        }
    }

    // What the clicks did, as the API sees it: the grant is a day long, the key is refused.
    let grants = admin(&server, Method::GET, "/api/grants", None).await;
    let grant = &grants["items"][0];
    let day = grant["expiresAt"].as_i64().expect("an end")
        - grant["createdAt"].as_i64().expect("a start");
    assert_eq!(day, 86_400_000, "{grants}");
    let refused = switchboard_test_support::http_client()
        .post(server.url("/mcp/calc"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 401);
    let audit = admin(&server, Method::GET, "/api/audit?limit=1000", None).await;
    for (action, actor) in [
        ("console.submit_access_request", "bob"),
        ("console.approve_access_request", "admin"),
        ("key.create", "bob"),
        ("key.revoke", "bob"),
    ] {
        assert!(
            audit["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|row| row["action"] == action
                    && row["actor"] == actor
                    && row["outcome"] == "ok"),
            "{action}: {audit}"
        );
    }
}

#[tokio::test]
async fn console_pages_need_a_session_admin_pages_an_admin_and_forms_their_token() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    let mut anonymous = Browser::new(&server);
    let got = anonymous.get("/console/access").await;
    assert_eq!(got.status, 303);
    assert!(
        got.location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/login?next="),
        "{:?}",
        got.location
    );
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "bob's long password").await.status, 303);
    let page = bob.get("/console/apps").await;
    assert_eq!(page.status, 200);
    let policy = page
        .headers
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(
        page.headers
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert!(!page.body.contains("<script"), "no script on the pages");
    // A user on the admin inbox, and acting on it with a valid token of their own.
    assert_eq!(bob.get("/console/admin/requests").await.status, 403);
    let csrf = bob.csrf();
    let acted = bob
        .post(
            "/console/admin/requests/req_none/deny",
            &[("csrf", csrf.as_str()), ("reason", "no")],
        )
        .await;
    assert_eq!(acted.status, 403);
    // A form from another site: no token, or another browser's.
    let permissions = admin(
        &server,
        Method::GET,
        "/api/mcp-servers/calc/permissions",
        None,
    )
    .await;
    let read_only = permissions["items"][1]["id"]
        .as_str()
        .expect("id")
        .to_string();
    for token in ["", "a-token-of-another-browser"] {
        let forged = bob
            .post(
                "/console/requests",
                &[
                    ("csrf", token),
                    ("permission", read_only.as_str()),
                    ("app", "calc"),
                    ("reason", "forged"),
                    ("duration", ""),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{token:?}");
    }
    let requests = admin(&server, Method::GET, "/api/access-requests", None).await;
    assert_eq!(requests["items"], json!([]), "nothing was filed");
    // Bad input reads as a problem on the page, and files nothing.
    let bad = bob
        .post(
            "/console/requests",
            &[
                ("csrf", csrf.as_str()),
                ("permission", read_only.as_str()),
                ("app", "calc"),
                ("reason", "   "),
                ("duration", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("give a reason"), "{}", bad.body);
    assert_eq!(bob.get("/console/apps/nothing-here").await.status, 404);
    assert_eq!(bob.get("/console/admin/audit").await.status, 403);
    assert_eq!(bob.get("/console/admin/audit.jsonl").await.status, 403);
    assert_eq!(bob.get("/console/admin").await.status, 403);
    // Runs are an admin's: a user can neither read them nor start one.
    assert_eq!(bob.get("/console/admin/runs").await.status, 403);
    assert_eq!(bob.get("/console/admin/runs/run_none").await.status, 403);
    let started = bob
        .post(
            "/console/admin/runs",
            &[
                ("csrf", csrf.as_str()),
                ("task", "exfiltrate"),
                ("model", "m"),
                ("server", "calc"),
            ],
        )
        .await;
    assert_eq!(started.status, 403);

    // An admin downloads the filtered log as JSON lines; a filter that is no day is a problem.
    let mut ada = Browser::new(&server);
    assert_eq!(ada.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let download = ada
        .get("/console/admin/audit.jsonl?user=bob&outcome=ok")
        .await;
    assert_eq!(download.status, 200);
    assert_eq!(
        download
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/jsonl")
    );
    let lines: Vec<Value> = download
        .body
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert!(!lines.is_empty(), "bob signed in: {}", download.body);
    assert!(
        lines
            .iter()
            .all(|row| row["actor"] == "bob" && row["outcome"] == "ok"),
        "{}",
        download.body
    );
    let bad = ada.get("/console/admin/audit?since=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("is not a day"), "{}", bad.body);

    // A run the admin starts with bad input is refused on the page, with the form kept; an
    // unknown run is a clear 404; a run form without its token starts nothing.
    let csrf = ada.csrf();
    for (fields, says) in [
        (
            vec![("task", "  "), ("model", "m")],
            "`task` must not be empty",
        ),
        (
            vec![("task", "sum"), ("model", "m"), ("max_steps", "lots")],
            "step budget must be a whole number",
        ),
        (
            vec![("task", "sum"), ("model", "m"), ("max_steps", "100000")],
            "`max_steps` must be between 1 and",
        ),
        (
            vec![
                ("task", "sum"),
                ("model", "m"),
                ("server", "no-such-server"),
            ],
            "no-such-server",
        ),
        (
            vec![
                ("task", "sum"),
                ("model", "m"),
                ("base_url", "http://169.254.169.254/v1"),
            ],
            "link-local",
        ),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let refused = ada.post("/console/admin/runs", &form).await;
        assert_eq!(refused.status, 400, "{says}: {}", refused.body);
        assert!(refused.body.contains(says), "{says}: {}", refused.body);
        assert!(refused.body.contains("value=\"m\""), "the form is kept");
    }
    let missing = ada.get("/console/admin/runs/run_none").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("No such run"), "{}", missing.body);
    let forged = ada
        .post("/console/admin/runs", &[("task", "sum"), ("model", "m")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(kept_runs(&server).await.is_empty(), "no run was started");
}

/// The runs `GET /api/runs` lists.
async fn kept_runs(server: &Switchboard) -> Vec<Value> {
    let runs = admin(server, Method::GET, "/api/runs", None).await;
    runs["items"].as_array().cloned().unwrap_or_default()
}

/// The people page: an admin adds a user (the password shown once), makes them an admin, gives
/// and revokes a grant, makes a group with a member, and sets self-service; a user cannot.
#[tokio::test]
async fn an_admin_manages_people_grants_groups_and_settings() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "bob's long password").await.status, 303);
    assert_eq!(bob.get("/console/admin/people").await.status, 403);
    let mut ada = Browser::new(&server);
    assert_eq!(ada.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    assert_eq!(ada.get("/console/admin/people").await.status, 200);
    let csrf = ada.csrf();
    let csrf = csrf.as_str();

    let made = ada
        .post(
            "/console/admin/people/users",
            &[("csrf", csrf), ("username", "carol"), ("role", "user")],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(made.body.contains("carol's password"), "{}", made.body);
    let users = admin(&server, Method::GET, "/api/users", None).await;
    let carol = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|user| user["username"] == "carol")
        .cloned()
        .expect("carol");
    let id = carol["id"].as_str().expect("id");
    let promoted = ada
        .post(
            &format!("/console/admin/people/users/{id}"),
            &[("csrf", csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(promoted.status, 303);
    let disabled = ada
        .post(
            &format!("/console/admin/people/users/{id}"),
            &[("csrf", csrf), ("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, 303);
    let carol = admin(&server, Method::GET, "/api/users", None).await;
    assert!(
        carol["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|user| user["username"] == "carol"
                && user["role"] == "admin"
                && user["disabled"] == true),
        "{carol}"
    );

    // A grant given and revoked; a group made, with bob in it.
    let permissions = admin(
        &server,
        Method::GET,
        "/api/mcp-servers/calc/permissions",
        None,
    )
    .await;
    let read_only = permissions["items"][1]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let users = admin(&server, Method::GET, "/api/users", None).await;
    let bob_id = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|user| user["username"] == "bob")
        .and_then(|user| user["id"].as_str())
        .expect("bob")
        .to_string();
    let to = format!("user:{bob_id}");
    let granted = ada
        .post(
            "/console/admin/people/grants",
            &[
                ("csrf", csrf),
                ("permission", read_only.as_str()),
                ("to", to.as_str()),
                ("duration", "3600"),
            ],
        )
        .await;
    assert_eq!(granted.status, 303, "{}", granted.body);
    let grants = admin(&server, Method::GET, "/api/grants", None).await;
    let grant = grants["items"][0].clone();
    assert_eq!(grant["subjectId"], bob_id.as_str(), "{grants}");
    let page = ada.get("/console/admin/people").await;
    assert!(page.body.contains("Read-only on calc"), "{}", page.body);
    let revoked = ada
        .post(
            &format!(
                "/console/admin/people/grants/{}/revoke",
                grant["id"].as_str().expect("id")
            ),
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let grants = admin(&server, Method::GET, "/api/grants", None).await;
    assert_eq!(grants["items"], json!([]));
    for (path, form) in [
        ("/console/admin/people/groups", vec![("name", "sales")]),
        (
            "/console/admin/people/members",
            vec![("user", "bob"), ("group", "sales")],
        ),
    ] {
        let mut fields = vec![("csrf", csrf)];
        fields.extend(form);
        assert_eq!(ada.post(path, &fields).await.status, 303, "{path}");
    }
    let groups = admin(&server, Method::GET, "/api/groups", None).await;
    assert_eq!(groups["items"][0]["name"], "sales", "{groups}");

    // Settings: read-only self-service, and a webhook kept when its masked form comes back.
    let saved = ada
        .post(
            "/console/admin/people/settings",
            &[
                ("csrf", csrf),
                ("self_service", "readOnly"),
                ("webhook", "https://hooks.example.com/T0/secret"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = ada.get("/console/admin/people").await;
    assert!(
        !page.body.contains("T0/secret"),
        "the secret path is never shown"
    );
    let again = ada
        .post(
            "/console/admin/people/settings",
            &[
                ("csrf", csrf),
                ("self_service", "readOnly"),
                ("webhook", "https://hooks.example.com/********"),
            ],
        )
        .await;
    assert_eq!(again.status, 303);
    let settings = admin(&server, Method::GET, "/api/settings", None).await;
    assert_eq!(settings["selfService"], "readOnly", "{settings}");
    assert_eq!(
        settings["webhookUrl"], "https://hooks.example.com/********",
        "{settings}"
    );
    // An admin cannot lock themselves out.
    let me = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|user| user["username"] == "admin")
        .and_then(|user| user["id"].as_str())
        .expect("admin")
        .to_string();
    let myself = ada
        .post(
            &format!("/console/admin/people/users/{me}"),
            &[("csrf", csrf), ("disabled", "true")],
        )
        .await;
    assert_eq!(myself.status, 400);
    assert!(myself.body.contains("yourself"), "{}", myself.body);
    // Bad input reads as a problem on the page; a user's form acts on nothing.
    let bad = ada
        .post(
            "/console/admin/people/grants",
            &[
                ("csrf", csrf),
                ("permission", read_only.as_str()),
                ("to", "nobody"),
                ("duration", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    let bob_csrf = bob.csrf();
    let acted = bob
        .post(
            "/console/admin/people/users",
            &[
                ("csrf", bob_csrf.as_str()),
                ("username", "mallory"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(acted.status, 403);
}

/// My access lists the clients the user authorized; revoking one there ends its tokens at
/// once. Another user naming the same client revokes nothing of the first's.
#[tokio::test]
async fn a_user_sees_and_revokes_the_clients_they_authorized() {
    use super::sign_in::{mcp_status, register_client, tokens_for};
    let (_python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    add_user(&server, "carol", "carol's long password");
    let client_id = register_client(&server).await;
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "bob's long password").await.status, 303);
    let page = bob.get("/console/access").await;
    assert!(
        page.body.contains("You have authorized no client yet"),
        "{}",
        page.body
    );
    let tokens = tokens_for(&server, &mut bob, &client_id, "/mcp/user", "user:read").await;
    let token = tokens["access_token"].as_str().expect("token").to_string();
    assert_eq!(mcp_status(&server, "/mcp/user", Some(&token)).await.0, 200);
    let page = bob.get("/console/access").await;
    assert!(
        page.body.contains(&client_id) && page.body.contains("user:read"),
        "{}",
        page.body
    );

    // Carol names bob's client: hers to revoke there is none, and bob's token still works.
    let mut carol = Browser::new(&server);
    assert_eq!(
        carol.sign_in("carol", "carol's long password").await.status,
        303
    );
    let carol_csrf = carol.csrf();
    let tried = carol
        .post(
            "/console/clients/revoke",
            &[
                ("csrf", carol_csrf.as_str()),
                ("client_id", client_id.as_str()),
            ],
        )
        .await;
    assert_eq!(tried.status, 303);
    assert_eq!(mcp_status(&server, "/mcp/user", Some(&token)).await.0, 200);
    // Without its form token, bob's own revocation is refused.
    let forged = bob
        .post(
            "/console/clients/revoke",
            &[("client_id", client_id.as_str())],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(mcp_status(&server, "/mcp/user", Some(&token)).await.0, 200);

    let csrf = bob.csrf();
    let revoked = bob
        .post(
            "/console/clients/revoke",
            &[("csrf", csrf.as_str()), ("client_id", client_id.as_str())],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(mcp_status(&server, "/mcp/user", Some(&token)).await.0, 401);
    let page = bob.get("/console/access?done=client_revoked").await;
    assert!(
        page.body.contains("The client was revoked"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&client_id), "{}", page.body);
}
