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
    // The pasted env value is a secret: sealed, and masked in every answer.
    let notes = admin(&server, Method::GET, "/api/mcp-servers/local-notes", None).await;
    assert_eq!(notes["env"]["NOTES_TOKEN"], "********", "{notes}");
    for page in [
        "servers-imported",
        "server-called",
        "apps",
        "app",
        "requests",
        "connect",
        "access-key",
        "audit",
        "audit-filtered",
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
