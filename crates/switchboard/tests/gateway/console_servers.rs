//! The console's server pages, used as a signed-in browser does (`sign_in::Browser`): an admin
//! adds a remote server, disables and deletes it; adds a local one with its environment and
//! secrets and edits its settings; edits, adds and deletes its permissions. Each page is tried
//! with its attacks too: a user on it, a form without its token, bad input refused with the
//! reason and nothing changed.

use switchboard_test_support::ADMIN_PASSWORD;

use super::grants::admin;
use super::sign_in::{Browser, add_user};
use super::*;

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
