//! The web console in headless Chromium, clicking as people do: a user finds an app and asks
//! for access, an admin approves it from the inbox, the user sees the grant and how to connect,
//! then makes an API key and revokes it. Every page is saved at desktop and phone width; any
//! browser console error or failed request fails the test. Then the attacks: no session, a
//! user on an admin page, a form without its CSRF token.

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

/// The servers page: an admin adds a remote server by URL, disables it, and deletes it after the
/// confirmation; a forbidden address is refused with its reason; a user cannot open the page.
#[tokio::test]
async fn an_admin_adds_disables_and_deletes_a_server() {
    let (python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "bob's long password").await.status, 303);
    assert_eq!(bob.get("/console/admin/servers").await.status, 403);
    let mut ada = Browser::new(&server);
    assert_eq!(ada.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    assert_eq!(ada.get("/console/admin/servers").await.status, 200);
    let csrf = ada.csrf();
    let url = python.url("/mcp");
    let added = ada
        .post(
            "/console/admin/servers",
            &[
                ("csrf", csrf.as_str()),
                ("name", "Calc again"),
                ("url", url.as_str()),
                ("alias", "calc-again"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let listed = ada.get("/console/admin/servers?done=server_added").await;
    assert!(listed.body.contains("calc-again"), "{}", listed.body);
    assert!(
        listed.body.contains("The server was added"),
        "{}",
        listed.body
    );
    let fetched = admin(&server, Method::GET, "/api/mcp-servers/calc-again", None).await;
    let id = fetched["id"].as_str().expect("id").to_string();

    // Governance from its form: a denied tool leaves the page; a renamed one shows its new name
    // and description and runs with its pinned parameter; rules that cannot be read are shown.
    let page = ada.get(&format!("/console/admin/servers/{id}")).await;
    assert!(page.body.contains("id=\"tool-add\""), "{}", page.body);
    let rules = |pinned: &str| {
        [
            ("csrf", csrf.clone()),
            ("prefix", String::new()),
            ("allow", String::new()),
            ("deny", "bump\n".into()),
            ("rename", "add = sum".into()),
            ("descriptions", "add = Adds ten to a number.".into()),
            ("pinned", pinned.into()),
        ]
    };
    let governance = format!("/console/admin/servers/{id}/governance");
    let saved = post_form(&mut ada, &governance, &rules("add.b = 10")).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = ada
        .get(&format!(
            "/console/admin/servers/{id}?done=governance_saved"
        ))
        .await;
    assert!(page.body.contains("The rules were saved"), "{}", page.body);
    for (shown, present) in [
        ("id=\"tool-bump\"", false),
        ("id=\"tool-add\"", false),
        ("id=\"tool-sum\"", true),
        ("Adds ten to a number.", true),
        ("add.b = 10", true),
    ] {
        assert_eq!(page.body.contains(shown), present, "{shown}: {}", page.body);
    }
    let fetched = admin(&server, Method::GET, "/api/mcp-servers/calc-again", None).await;
    assert_eq!(
        fetched["tools"],
        json!({"denyTools": ["bump"], "rename": {"add": "sum"},
            "descriptions": {"add": "Adds ten to a number."}, "pinned": {"add": {"b": 10}}}),
        "{fetched}"
    );
    let called = ada
        .post(
            &format!("/console/admin/servers/{id}/call"),
            &[
                ("csrf", csrf.as_str()),
                ("tool", "sum"),
                ("arguments", r#"{"a": 2}"#),
            ],
        )
        .await;
    assert_eq!(called.status, 200, "{}", called.body);
    assert!(
        called.body.contains("&#34;result&#34;: 12"),
        "{}",
        called.body
    );
    let unreadable = post_form(&mut ada, &governance, &rules("b = 10")).await;
    assert_eq!(unreadable.status, 400);
    assert!(
        unreadable.body.contains("is not tool.parameter"),
        "{}",
        unreadable.body
    );

    let disabled = ada
        .post(
            &format!("/console/admin/servers/{id}/disable"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(disabled.status, 303);
    let fetched = admin(&server, Method::GET, "/api/mcp-servers/calc-again", None).await;
    assert_eq!(fetched["enabled"], false);

    let confirm = ada
        .get(&format!("/console/admin/servers/{id}/delete"))
        .await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("Delete Calc again?"),
        "{}",
        confirm.body
    );
    let deleted = ada
        .post(
            &format!("/console/admin/servers/{id}/delete"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(deleted.status, 303);
    let (status, _) = server
        .send_json(Method::GET, "/api/mcp-servers/calc-again", None)
        .await
        .expect("answers");
    assert_eq!(status, 404);

    let refused = ada
        .post(
            "/console/admin/servers",
            &[
                ("csrf", csrf.as_str()),
                ("name", "Metadata"),
                ("url", "http://169.254.169.254/latest"),
                ("alias", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("link-local"), "{}", refused.body);
    // Bob's valid token of his own acts on nothing.
    let bob_csrf = bob.csrf();
    let acted = bob
        .post(
            "/console/admin/servers",
            &[
                ("csrf", bob_csrf.as_str()),
                ("name", "Mine"),
                ("url", url.as_str()),
                ("alias", ""),
            ],
        )
        .await;
    assert_eq!(acted.status, 403);
    let audit = admin(&server, Method::GET, "/api/audit?limit=1000", None).await;
    for (action, outcome) in [
        ("console.server.create", "ok"),
        ("console.server.disable", "ok"),
        ("console.server.delete", "ok"),
        ("console.server.create", "error"),
    ] {
        assert!(
            audit["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|row| row["action"] == action && row["outcome"] == outcome),
            "{action} {outcome}: {audit}"
        );
    }
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

/// A local server added from the console with its environment and a secret, then its settings
/// edited: the secret is shown as `********` only, kept when sent back so, replaced or removed
/// on purpose, and never turned plain by moving its mask; the process gets the values.
#[tokio::test]
async fn an_admin_adds_a_local_server_with_secrets_and_edits_its_settings() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    let (command, args) = switchboard_test_support::everything_stdio_command();
    let args = args.join("\n");
    let mut ada = Browser::new(&server);
    assert_eq!(ada.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let csrf = ada.csrf();
    let local = |csrf: &str, runtime: &str, secrets: &str| {
        [
            ("csrf", csrf.to_string()),
            ("name", "Everything".into()),
            ("runtime", runtime.into()),
            ("target", command.clone()),
            ("args", args.clone()),
            ("env", "LOG_LEVEL=debug".into()),
            ("secrets", secrets.into()),
            ("alias", "everything".into()),
        ]
    };
    // Bad input first: no runtime, a line that is no pair.
    for (fields, says) in [
        (
            local(&csrf, "docker", "API_TOKEN=x"),
            "Choose how the server runs",
        ),
        (
            local(&csrf, "command", "API_TOKEN"),
            "Line 1 of Secrets is not KEY=value",
        ),
    ] {
        let refused = post_form(&mut ada, "/console/admin/servers/local", &fields).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(says), "{says}: {}", refused.body);
    }
    let fields = local(&csrf, "command", "API_TOKEN=tok-secret-value-77");
    let added = post_form(&mut ada, "/console/admin/servers/local", &fields).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let fetched = admin(&server, Method::GET, "/api/mcp-servers/everything", None).await;
    assert_eq!(
        fetched["commandConfig"]["command"],
        command.as_str(),
        "{fetched}"
    );
    assert_eq!(fetched["env"]["LOG_LEVEL"], "debug", "{fetched}");
    assert_eq!(fetched["env"]["API_TOKEN"], "********", "{fetched}");
    assert_eq!(fetched["sensitiveKeys"], json!(["API_TOKEN"]), "{fetched}");
    let id = fetched["id"].as_str().expect("id").to_string();
    let page_path = format!("/console/admin/servers/{id}");
    let page = ada.get(&page_path).await;
    assert!(page.body.contains("API_TOKEN=********"), "{}", page.body);
    assert!(!page.body.contains("tok-secret-value-77"));
    // The process sees its values (server-everything's `get-env` shows its environment).
    let seen = env_seen(&mut ada, &page_path).await;
    assert!(
        seen.contains("tok-secret-value-77") && seen.contains("debug"),
        "{seen}"
    );

    // Edited: the mask sent back keeps the secret, a new secret and a new plain value are set.
    let save = |env: &str, secrets: &str| {
        [
            ("csrf", csrf.clone()),
            ("target", command.clone()),
            ("args", args.clone()),
            ("env", env.to_string()),
            ("secrets", secrets.to_string()),
        ]
    };
    let settings = format!("{page_path}/settings");
    let fields = save(
        "LOG_LEVEL=info",
        "API_TOKEN=********\nOTHER_SECRET=other-secret-value-88",
    );
    let saved = post_form(&mut ada, &settings, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let fetched = admin(&server, Method::GET, "/api/mcp-servers/everything", None).await;
    assert_eq!(fetched["env"]["LOG_LEVEL"], "info", "{fetched}");
    assert_eq!(fetched["env"]["OTHER_SECRET"], "********", "{fetched}");
    assert_eq!(
        fetched["sensitiveKeys"],
        json!(["API_TOKEN", "OTHER_SECRET"]),
        "{fetched}"
    );
    let seen = env_seen(&mut ada, &page_path).await;
    assert!(
        seen.contains("tok-secret-value-77") && seen.contains("other-secret-value-88"),
        "the kept secret and the new one: {seen}"
    );

    // The attacks: the mask moved to a plain line, a key both plain and secret.
    for (env, secrets, says) in [
        (
            "API_TOKEN=********",
            "OTHER_SECRET=********",
            "holds a secret",
        ),
        (
            "OTHER_SECRET=x",
            "OTHER_SECRET=********",
            "both a plain setting and a secret",
        ),
    ] {
        let refused = post_form(&mut ada, &settings, &save(env, secrets)).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(says), "{says}: {}", refused.body);
        assert!(!refused.body.contains("tok-secret-value-77"));
    }
    // A line taken out removes its setting.
    let removed = post_form(&mut ada, &settings, &save("", "OTHER_SECRET=********")).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let fetched = admin(&server, Method::GET, "/api/mcp-servers/everything", None).await;
    assert_eq!(
        fetched["env"],
        json!({"OTHER_SECRET": "********"}),
        "{fetched}"
    );
    assert_eq!(
        fetched["sensitiveKeys"],
        json!(["OTHER_SECRET"]),
        "{fetched}"
    );

    // A user's valid token of their own adds nothing; the log never holds a secret.
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "bob's long password").await.status, 303);
    let fields = local(&bob.csrf(), "command", "X=yyyyyy");
    let acted = post_form(&mut bob, "/console/admin/servers/local", &fields).await;
    assert_eq!(acted.status, 403);
    let log = server.log();
    assert!(!log.contains("tok-secret-value-77") && !log.contains("other-secret-value-88"));
}

/// Posts a form of owned values.
async fn post_form(
    browser: &mut Browser,
    path: &str,
    fields: &[(&str, String)],
) -> switchboard_test_support::oauth::Got {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(path, &pairs).await
}

/// The environment a local server's process sees, by a test call of `get-env` on its page.
async fn env_seen(browser: &mut Browser, page_path: &str) -> String {
    let csrf = browser.csrf();
    let called = browser
        .post(
            &format!("{page_path}/call"),
            &[
                ("csrf", csrf.as_str()),
                ("tool", "get-env"),
                ("arguments", "{}"),
            ],
        )
        .await;
    assert_eq!(called.status, 200, "{}", called.body);
    called.body
}

/// A server's permissions edited on its page: one changed (its tools named, no longer
/// requestable, a day at most), one added and deleted with its grant; bad choices are refused
/// with the reason, and a user's token of their own changes nothing.
#[tokio::test]
async fn an_admin_edits_adds_and_deletes_a_servers_permissions() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    add_user(&server, "bob", "bob's long password");
    let mut ada = Browser::new(&server);
    assert_eq!(ada.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let csrf = ada.csrf();
    let calc = admin(&server, Method::GET, "/api/mcp-servers/calc", None).await;
    let id = calc["id"].as_str().expect("id").to_string();
    let read_only = calc_permissions(&server)
        .await
        .into_iter()
        .find(|permission| permission["label"] == "Read-only")
        .and_then(|permission| permission["id"].as_str().map(str::to_string))
        .expect("Read-only");
    let page = ada.get(&format!("/console/admin/servers/{id}")).await;
    assert!(page.body.contains("Read-only"), "{}", page.body);
    let fields = |label: &str, tools: &str, names: &str, limit: &str, requestable: bool| {
        let mut fields = vec![
            ("csrf", csrf.clone()),
            ("label", label.to_string()),
            ("description", format!("{label}, as the tests set it")),
            ("tools", tools.to_string()),
            ("names", names.to_string()),
            ("limit", limit.to_string()),
        ];
        if requestable {
            fields.push(("requestable", "on".to_string()));
        }
        fields
    };
    let edit = format!("/console/admin/servers/{id}/permissions/{read_only}");
    let form = fields("Adding", "names", "add\n", "86400", false);
    let saved = post_form(&mut ada, &edit, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let changed = calc_permission(&server, &read_only).await;
    assert_eq!(changed["label"], "Adding", "{changed}");
    assert_eq!(changed["tools"], json!(["add"]), "{changed}");
    assert_eq!(changed["requestable"], false, "{changed}");
    assert_eq!(changed["maxDurationSeconds"], 86_400, "{changed}");

    // Bad choices are refused, and change nothing.
    for (form, says) in [
        (fields("X", "some", "", "", true), "Choose which tools"),
        (
            fields("X", "all", "", "soon", true),
            "Choose the longest grant",
        ),
        (fields("", "all", "", "", true), "label"),
    ] {
        let refused = post_form(&mut ada, &edit, &form).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(says), "{says}: {}", refused.body);
    }
    assert_eq!(
        calc_permission(&server, &read_only).await["label"],
        "Adding"
    );

    // Added, granted, then deleted with its grant.
    let create = format!("/console/admin/servers/{id}/permissions");
    let added = post_form(
        &mut ada,
        &create,
        &fields("Everything", "all", "", "", true),
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let made = calc_permissions(&server)
        .await
        .into_iter()
        .find(|p| p["label"] == "Everything")
        .expect("added");
    assert_eq!(made["tools"], "all", "{made}");
    let made_id = made["id"].as_str().expect("id").to_string();
    admin(
        &server,
        Method::POST,
        "/api/grants",
        Some(json!({"permission": made_id, "user": "bob"})),
    )
    .await;
    let delete = format!("{create}/{made_id}/delete");
    let deleted = post_form(&mut ada, &delete, &[("csrf", csrf.clone())]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(
        calc_permissions(&server)
            .await
            .iter()
            .all(|p| p["id"] != made_id.as_str()),
        "deleted"
    );
    let grants = admin(&server, Method::GET, "/api/grants", None).await;
    assert_eq!(grants["items"], json!([]), "its grant went with it");

    // Bob's valid token of his own changes nothing.
    let mut bob = Browser::new(&server);
    assert_eq!(bob.sign_in("bob", "bob's long password").await.status, 303);
    let mut form = fields("Mine", "all", "", "", true);
    form[0].1 = bob.csrf();
    assert_eq!(post_form(&mut bob, &edit, &form).await.status, 403);
    assert_eq!(post_form(&mut bob, &create, &form).await.status, 403);
    assert_eq!(
        calc_permission(&server, &read_only).await["label"],
        "Adding"
    );
}

/// The permissions of the server `calc`, as the API lists them.
async fn calc_permissions(server: &Switchboard) -> Vec<Value> {
    let listed = admin(
        server,
        Method::GET,
        "/api/mcp-servers/calc/permissions",
        None,
    )
    .await;
    listed["items"].as_array().cloned().unwrap_or_default()
}

/// One permission of `calc`, by its id.
async fn calc_permission(server: &Switchboard, id: &str) -> Value {
    calc_permissions(server)
        .await
        .into_iter()
        .find(|permission| permission["id"] == id)
        .unwrap_or_default()
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
