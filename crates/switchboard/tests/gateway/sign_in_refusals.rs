//! The authorization server's refusals, each with its error, played by a browser over plain HTTP
//! (cookies kept, redirects read, not followed): registrations over their rate, sign-ins over
//! theirs, requests that cannot be trusted, PKCE, a consent form without its token, a denial,
//! codes and refresh tokens misused, a token for another resource, revocation; and the record
//! kept of it all, and signing out.

use switchboard_test_support::ADMIN_PASSWORD;

use super::sign_in::*;
use super::*;

#[tokio::test]
async fn each_refusal_of_the_authorization_server_has_its_error() {
    let (_python, server) = calc_behind_gateway(&["--allow-loopback-client-metadata"]).await;
    let client_id = register_client(&server).await;
    let mut browser = Browser::new(&server);
    let query = authorize_query(&server, &client_id, "/mcp/calc", "mcp");

    // Registrations are rate-limited per address (20 an hour; one is made above).
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let response = switchboard_test_support::http_client()
            .post(server.url("/oauth/register"))
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "native"}))
            .send()
            .await
            .expect("answers");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..19], &[201; 19], "{statuses:?}");
    assert_eq!(statuses[19], 429, "{statuses:?}");

    // Not signed in: the sign-in page, which comes back here.
    let got = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(got.status, 303);
    assert!(
        got.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/login?next=")),
        "{:?}",
        got.location
    );
    // Too many failed sign-ins are refused, whatever the password.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(browser.sign_in("admin", "not the password").await.status);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    assert_eq!(browser.sign_in("admin", ADMIN_PASSWORD).await.status, 429);
    // Another account's failures do not lock this one out.
    let mut browser = Browser::new(&server);
    add_user(&server, "ada", "ada's long password");
    grant_full_access(&server, "calc", "ada").await;
    let got = browser.sign_in("ada", "ada's long password").await;
    assert_eq!(got.status, 303, "{}", got.body);
    let session = got
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sb_session="))
        .expect("a session cookie")
        .to_string();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );

    // Requests that cannot be trusted are shown as a page, never redirected.
    for (bad, why) in [
        (
            query.replace(&client_id, "sbci_nobody"),
            "an unknown client",
        ),
        (
            query
                .replace("5555", "6666")
                .replace("127.0.0.1", "evil.example.com"),
            "a redirect it did not register",
        ),
        (
            authorize_query(&server, &client_id, "/elsewhere", "mcp"),
            "a resource that is not ours",
        ),
        (
            query.replace(&client_id, "http%3A%2F%2F10.0.0.1%2Fclient.json"),
            "a metadata document at a private address",
        ),
    ] {
        let got = browser.get(&format!("/oauth/authorize?{bad}")).await;
        assert_eq!(got.status, 400, "{why}: {}", got.body);
        assert_eq!(got.location, None, "{why}");
        assert!(got.body.contains("cannot be used"), "{why}: {}", got.body);
        let csp = got.headers["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
        assert_eq!(got.headers["x-frame-options"], "DENY");
    }
    // An oversized metadata document, served over http on loopback (allowed by the flag).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let document = format!(
        "http://{}/client.json",
        listener.local_addr().expect("addr")
    );
    let documents = axum::Router::new().route(
        "/client.json",
        axum::routing::get(|| async { "x".repeat(70 * 1024) }),
    );
    tokio::spawn(async move { axum::serve(listener, documents).await });
    let got = browser
        .get(&format!(
            "/oauth/authorize?{}",
            query.replace(
                &client_id,
                &url::form_urlencoded::byte_serialize(document.as_bytes()).collect::<String>()
            )
        ))
        .await;
    assert_eq!(got.status, 400, "{}", got.body);
    assert!(got.body.contains("larger than"), "{}", got.body);
    // PKCE is required: said to the client, with the issuer.
    let got = browser
        .get(&format!(
            "/oauth/authorize?{}",
            query.replace("S256", "plain")
        ))
        .await;
    let location = got.location.expect("redirected");
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query_value(&location, "iss").as_deref(),
        Some(server.base_url.as_str())
    );
    assert_eq!(query_value(&location, "state").as_deref(), Some("xyz"));

    // The consent form without its CSRF token is refused.
    let got = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.contains("Refusal tester"), "{}", got.body);
    let refused = browser
        .post(
            "/oauth/authorize",
            &[("request", &query), ("decision", "approve")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.location, None);
    // Deny: the client hears access_denied, with the issuer.
    let csrf = browser.csrf();
    let denied = browser
        .post(
            "/oauth/authorize",
            &[("csrf", &csrf), ("request", &query), ("decision", "deny")],
        )
        .await;
    let location = denied.location.expect("redirected");
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_value(&location, "iss").as_deref(),
        Some(server.base_url.as_str())
    );

    // A code: a wrong verifier, a mismatched redirect, a second use.
    let code = query_value(&browser.authorize(&query).await, "code").expect("code");
    let (status, error) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier-1",
            ),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = query_value(&browser.authorize(&query).await, "code").expect("code");
    let (status, error) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:5556/callback"),
            ("code_verifier", VERIFIER),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = query_value(&browser.authorize(&query).await, "code").expect("code");
    let (status, tokens) = redeem(&server, &client_id, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_string();
    assert_eq!(mcp_status(&server, "/mcp/calc", Some(&access)).await.0, 200);
    let (status, error) = redeem(&server, &client_id, &code).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = mcp_status(&server, "/mcp/calc", Some(&access)).await;
    assert_eq!(
        status, 401,
        "a code used twice revokes what it gave, at once"
    );

    // Refresh: escalation refused, rotation, and a rotated token reused ends the family.
    let tokens = tokens_for(&server, &mut browser, &client_id, "/mcp/calc", "mcp").await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let refreshing = |token: String, scope: Option<&'static str>| {
        let client_id = client_id.clone();
        let server = &server;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", token),
                ("client_id", client_id),
            ];
            if let Some(scope) = scope {
                form.push(("scope", scope.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(server, &form).await
        }
    };
    let (status, error) = refreshing(refresh.clone(), Some("mcp admin:read")).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, rotated) = refreshing(refresh.clone(), None).await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    assert_eq!(mcp_status(&server, "/mcp/calc", Some(&fresh)).await.0, 200);
    let (status, error) = refreshing(refresh, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(mcp_status(&server, "/mcp/calc", Some(&fresh)).await.0, 401);
    let newest = rotated["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert_eq!(refreshing(newest, None).await.0, 400);

    // A token for another resource; a user's token on the admin API.
    let tokens = tokens_for(&server, &mut browser, &client_id, "/mcp/calc", "mcp").await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    assert_eq!(mcp_status(&server, "/mcp", Some(&access)).await.0, 401);
    let api = switchboard_test_support::http_client()
        .get(server.url("/api/mcp-servers"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("answers");
    assert_eq!(api.status(), 401);

    // RFC 7009 revocation: the token stops at once.
    let revoked = with_form(
        switchboard_test_support::http_client().post(server.url("/oauth/revoke")),
        &[
            ("token", access.as_str()),
            ("client_id", client_id.as_str()),
        ],
    )
    .send()
    .await
    .expect("answers");
    assert_eq!(revoked.status(), 200);
    assert_eq!(mcp_status(&server, "/mcp/calc", Some(&access)).await.0, 401);

    // The user's authorized clients: listed, and revoked with the JSON API.
    let tokens = tokens_for(&server, &mut browser, &client_id, "/mcp/calc", "mcp").await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let listed = browser.get("/api/me/clients").await;
    let listed: Value = serde_json::from_str(&listed.body).expect("json");
    assert_eq!(
        listed["clients"][0]["clientId"],
        client_id.as_str(),
        "{listed}"
    );
    let request = browser
        .http
        .delete(browser.url(&format!("/api/me/clients/{client_id}")));
    assert_eq!(browser.send(request).await.status, 204);
    assert_eq!(mcp_status(&server, "/mcp/calc", Some(&access)).await.0, 401);
    let again = browser.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(again.status, 200, "the consent screen shows again");
    let anonymous = switchboard_test_support::http_client()
        .get(server.url("/api/me/clients"))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), 401);

    // Sign-ins, consents and revocations are on record, without a password.
    let (_, audit) = server
        .send_json(Method::GET, "/api/audit?limit=1000", None)
        .await
        .expect("answers");
    let rows: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|row| row["kind"] == "sign_in")
        .collect();
    for (actor, action, outcome) in [
        ("admin", "login", "denied"),
        ("ada", "login", "ok"),
        ("ada", "consent.deny", "ok"),
        ("ada", "consent.approve", "ok"),
        ("ada", "consent.remembered", "ok"),
        ("ada", "client.revoke", "ok"),
    ] {
        assert!(
            rows.iter().any(|row| row["actor"] == actor
                && row["action"] == action
                && row["outcome"] == outcome),
            "{actor} {action} {outcome}: {rows:?}"
        );
    }
    assert!(!audit.to_string().contains("not the password"));

    // Signing out ends the session: the pages ask to sign in again. Signing out from the consent
    // screen ("use another account") comes back to the request after signing in.
    let csrf = browser.csrf();
    let here = format!("/oauth/authorize?{query}");
    let out = browser
        .post("/logout", &[("csrf", &csrf), ("next", &here)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(
        out.location,
        Some(format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        ))
    );
    let got = browser.get("/account/clients").await;
    assert_eq!(got.status, 303);
    assert!(got.location.is_some_and(|l| l.starts_with("/login")));
}
