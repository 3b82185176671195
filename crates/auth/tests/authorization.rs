//! The authorization server's grants, end to end over a real store, on SQLite and on the local
//! PostgreSQL: the code flow, refresh rotation, and each refusal with its RFC 6749 error.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use sha2::Digest as _;
use switchboard_auth::{
    AuthServer, AuthSettings, AuthorizeError, AuthorizeParams, Role, Scopes, SignIn, TokenParams,
    secret::random_credential,
    sign_in::{LoginError, add_user, set_disabled},
};
use switchboard_store::{SecretBox, Store};

const BASE: &str = "http://gw.test";
const REDIRECT: &str = "http://127.0.0.1:4242/callback";
const ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = random_credential("v-");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

fn params(client_id: &str, resource: &str, scope: Option<&str>, pkce: &Pkce) -> AuthorizeParams {
    AuthorizeParams {
        response_type: "code".into(),
        client_id: client_id.into(),
        redirect_uri: Some(REDIRECT.into()),
        scope: scope.map(str::to_string),
        state: Some("st8".into()),
        code_challenge: pkce.challenge.clone(),
        code_challenge_method: Some("S256".into()),
        resource: Some(format!("{BASE}{resource}")),
        prompt: None,
    }
}

/// The value of `key` in a redirect URL's query.
fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn code_exchange(client_id: &str, code: &str, verifier: &str) -> TokenParams {
    TokenParams {
        grant_type: "authorization_code".into(),
        code: Some(code.into()),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: Some(verifier.into()),
        client_id: Some(client_id.into()),
        ..TokenParams::default()
    }
}

fn refreshing(client_id: &str, token: &str, scope: Option<&str>) -> TokenParams {
    TokenParams {
        grant_type: "refresh_token".into(),
        refresh_token: Some(token.into()),
        client_id: Some(client_id.into()),
        scope: scope.map(str::to_string),
        ..TokenParams::default()
    }
}

async fn suite(store: Store) {
    let key = SecretBox::from_hex(&"5a".repeat(32)).expect("key");
    let server = AuthServer::new(store.clone(), &key, AuthSettings::new(BASE));
    let (ada, _) = add_user(&store, "ada", Role::User, Some("a long enough password"))
        .await
        .expect("user");
    let registered = server
        .register(
            ADDRESS,
            &serde_json::json!({
                "client_name": "Test client",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }),
        )
        .await
        .expect("registered");
    let client_id = registered["client_id"].as_str().expect("id").to_string();
    assert!(registered.get("client_secret").is_none(), "a public client");

    // The authorization request, checked; consent is needed the first time.
    let first = pkce();
    let request = server
        .check_authorize(&params(&client_id, "/mcp", None, &first))
        .await
        .expect("valid");
    assert_eq!(request.scopes, Scopes::parse("mcp").expect("scopes"));
    assert!(server.needs_consent(&ada, &request).await.expect("read"));
    let redirect = server.approve(&ada, &request).await.expect("approved");
    assert!(
        redirect.starts_with("http://127.0.0.1:4242/callback?"),
        "{redirect}"
    );
    assert_eq!(query(&redirect, "state").as_deref(), Some("st8"));
    assert_eq!(query(&redirect, "iss").as_deref(), Some(BASE));
    let code = query(&redirect, "code").expect("a code");
    assert!(!server.needs_consent(&ada, &request).await.expect("read"));

    // A wrong verifier is refused (and the code is spent).
    let refused = server
        .token(&code_exchange(&client_id, &code, &pkce().verifier), None)
        .await
        .expect_err("wrong verifier");
    assert_eq!(refused.error, "invalid_grant");

    // A fresh code, redeemed.
    let second = pkce();
    let request = server
        .check_authorize(&params(&client_id, "/mcp", Some("mcp"), &second))
        .await
        .expect("valid");
    let code = query(&server.approve(&ada, &request).await.expect("ok"), "code").expect("code");
    let mismatch = TokenParams {
        redirect_uri: Some("http://127.0.0.1:4243/callback".into()),
        ..code_exchange(&client_id, &code, &second.verifier)
    };
    assert_eq!(
        server
            .token(&mismatch, None)
            .await
            .expect_err("mismatch")
            .error,
        "invalid_grant",
        "a redirect_uri that differs from the authorization request's"
    );
    let third = pkce();
    let request = server
        .check_authorize(&params(&client_id, "/mcp", Some("mcp"), &third))
        .await
        .expect("valid");
    let code = query(&server.approve(&ada, &request).await.expect("ok"), "code").expect("code");
    let tokens = server
        .token(&code_exchange(&client_id, &code, &third.verifier), None)
        .await
        .expect("tokens");
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 3600);
    let claims = server.tokens().open(&tokens.access_token).expect("opens");
    assert_eq!(claims.audience, format!("{BASE}/mcp"));
    assert_eq!(claims.username, "ada");
    assert_eq!(claims.scopes.to_string(), "mcp");

    // The code a second time: refused, and the tokens it gave are revoked.
    let again = server
        .token(&code_exchange(&client_id, &code, &third.verifier), None)
        .await
        .expect_err("used twice");
    assert_eq!(again.error, "invalid_grant");
    assert!(server.revocations().is_revoked(&claims.family));
    assert_eq!(
        server
            .token(&refreshing(&client_id, &tokens.refresh_token, None), None)
            .await
            .expect_err("family revoked")
            .error,
        "invalid_grant"
    );

    // Refresh rotation: the new token works, the old one presented again revokes the family.
    let fourth = pkce();
    let request = server
        .check_authorize(&params(&client_id, "/mcp", Some("mcp"), &fourth))
        .await
        .expect("valid");
    let code = query(&server.approve(&ada, &request).await.expect("ok"), "code").expect("code");
    let first_tokens = server
        .token(&code_exchange(&client_id, &code, &fourth.verifier), None)
        .await
        .expect("tokens");
    let escalation = server
        .token(
            &refreshing(
                &client_id,
                &first_tokens.refresh_token,
                Some("mcp user:read"),
            ),
            None,
        )
        .await
        .expect_err("escalation");
    assert_eq!(escalation.error, "invalid_scope");
    let rotated = server
        .token(
            &refreshing(&client_id, &first_tokens.refresh_token, None),
            None,
        )
        .await
        .expect("rotated");
    assert_ne!(rotated.refresh_token, first_tokens.refresh_token);
    let family = server
        .tokens()
        .open(&rotated.access_token)
        .expect("opens")
        .family;
    assert!(!server.revocations().is_revoked(&family));
    let reused = server
        .token(
            &refreshing(&client_id, &first_tokens.refresh_token, None),
            None,
        )
        .await
        .expect_err("reused");
    assert_eq!(reused.error, "invalid_grant");
    assert!(server.revocations().is_revoked(&family));
    assert_eq!(
        server
            .token(&refreshing(&client_id, &rotated.refresh_token, None), None)
            .await
            .expect_err("the whole family ended")
            .error,
        "invalid_grant"
    );

    // Another replica (a second server on the same store and key) learns revocations on reload.
    let replica = AuthServer::new(store.clone(), &key, AuthSettings::new(BASE));
    assert!(!replica.revocations().is_revoked(&family));
    replica.revocations().reload(&store).await.expect("reload");
    assert!(replica.revocations().is_revoked(&family));

    // Refusals of the authorization request: shown as a page, or sent back with `iss`.
    let p = pkce();
    let page = |params: AuthorizeParams| {
        let server = server.clone();
        async move {
            match server.check_authorize(&params).await {
                Err(AuthorizeError::Page(message)) => message,
                other => panic!("a page expected: {other:?}"),
            }
        }
    };
    page(params("sbci_unknown", "/mcp", None, &p)).await;
    page(AuthorizeParams {
        redirect_uri: Some("https://evil.example.com/cb".into()),
        ..params(&client_id, "/mcp", None, &p)
    })
    .await;
    page(params(&client_id, "/elsewhere", None, &p)).await;
    page(AuthorizeParams {
        resource: Some("https://other.example.com/mcp".into()),
        ..params(&client_id, "/mcp", None, &p)
    })
    .await;
    page(AuthorizeParams {
        resource: None,
        ..params(&client_id, "/mcp", None, &p)
    })
    .await;
    match server
        .check_authorize(&AuthorizeParams {
            code_challenge_method: Some("plain".into()),
            ..params(&client_id, "/mcp", None, &p)
        })
        .await
    {
        Err(AuthorizeError::Redirect(url)) => {
            assert_eq!(query(&url, "error").as_deref(), Some("invalid_request"));
            assert_eq!(query(&url, "iss").as_deref(), Some(BASE));
            assert_eq!(query(&url, "state").as_deref(), Some("st8"));
        }
        other => panic!("a redirect expected: {other:?}"),
    }

    // Admin scopes are not granted to a user; new scopes and prompt=consent ask again.
    let admin_request = server
        .check_authorize(&params(&client_id, "/mcp/admin", Some("admin:write"), &p))
        .await
        .expect("valid");
    let denied = server
        .approve(&ada, &admin_request)
        .await
        .expect("answered");
    assert_eq!(query(&denied, "error").as_deref(), Some("access_denied"));
    let user_read = server
        .check_authorize(&params(&client_id, "/mcp/user", Some("user:read"), &p))
        .await
        .expect("valid");
    server.approve(&ada, &user_read).await.expect("approved");
    assert!(!server.needs_consent(&ada, &user_read).await.expect("read"));
    let user_write = server
        .check_authorize(&params(&client_id, "/mcp/user", Some("user:write"), &p))
        .await
        .expect("valid");
    assert!(
        server.needs_consent(&ada, &user_write).await.expect("read"),
        "a new scope"
    );
    let forced = server
        .check_authorize(&AuthorizeParams {
            prompt: Some("consent".into()),
            ..params(&client_id, "/mcp/user", Some("user:read"), &p)
        })
        .await
        .expect("valid");
    assert!(
        server.needs_consent(&ada, &forced).await.expect("read"),
        "prompt=consent"
    );

    // Revoking the client: its tokens die and consent is asked again.
    let fifth = pkce();
    let request = server
        .check_authorize(&params(&client_id, "/mcp", Some("mcp"), &fifth))
        .await
        .expect("valid");
    let code = query(&server.approve(&ada, &request).await.expect("ok"), "code").expect("code");
    let live = server
        .token(&code_exchange(&client_id, &code, &fifth.verifier), None)
        .await
        .expect("tokens");
    let listed = server.authorized_clients(&ada.id).await.expect("listed");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].client_name, "Test client");
    assert!(
        server
            .revoke_client(&ada.id, &client_id)
            .await
            .expect("revoked")
    );
    let family = server
        .tokens()
        .open(&live.access_token)
        .expect("opens")
        .family;
    assert!(server.revocations().is_revoked(&family));
    assert!(server.needs_consent(&ada, &request).await.expect("read"));
    assert!(
        server
            .authorized_clients(&ada.id)
            .await
            .expect("listed")
            .is_empty()
    );

    // A disabled user's tokens are revoked in the store, for every replica.
    let sixth = pkce();
    let request = server
        .check_authorize(&params(&client_id, "/mcp", Some("mcp"), &sixth))
        .await
        .expect("valid");
    let code = query(&server.approve(&ada, &request).await.expect("ok"), "code").expect("code");
    let live = server
        .token(&code_exchange(&client_id, &code, &sixth.verifier), None)
        .await
        .expect("tokens");
    set_disabled(&store, "ada", true, std::time::Duration::from_secs(3600))
        .await
        .expect("disabled");
    replica.revocations().reload(&store).await.expect("reload");
    let family = server
        .tokens()
        .open(&live.access_token)
        .expect("opens")
        .family;
    assert!(replica.revocations().is_revoked(&family));
    assert_eq!(
        server
            .token(&refreshing(&client_id, &live.refresh_token, None), None)
            .await
            .expect_err("disabled")
            .error,
        "invalid_grant"
    );

    // Pruning drops what has expired: far in the future, every code, refresh token, browser
    // session and revocation entry has.
    let far = switchboard_auth::secret::now_ms() + 100 * 365 * 86_400_000;
    store.prune_sign_in(far).await.expect("pruned");
    assert!(store.listed_revocations(0).await.expect("read").is_empty());
    assert_eq!(
        store
            .refresh_family(&switchboard_auth::secret::hash_credential(
                &live.refresh_token
            ))
            .await
            .expect("read"),
        None
    );

    // Sign-in: a disabled user cannot; too many attempts are refused whatever the password.
    let sign_in = SignIn::new(store.clone());
    add_user(&store, "bob", Role::User, Some("bob's long password"))
        .await
        .expect("user");
    let bob = sign_in
        .login("bob", "bob's long password", ADDRESS)
        .await
        .expect("signs in");
    let cookie = sign_in.start_session(&bob.id).await.expect("session");
    assert_eq!(
        sign_in
            .session_user(&cookie)
            .await
            .expect("read")
            .map(|u| u.id),
        Some(bob.id.clone())
    );
    sign_in.end_session(&cookie).await.expect("ended");
    assert_eq!(sign_in.session_user(&cookie).await.expect("read"), None);
    assert!(matches!(
        sign_in
            .login("ada", "a long enough password", ADDRESS)
            .await,
        Err(LoginError::Invalid)
    ));
    let mut limited = false;
    for _ in 0..10 {
        if let Err(LoginError::TooMany) = sign_in.login("bob", "wrong guess", ADDRESS).await {
            limited = true;
            break;
        }
    }
    assert!(limited, "the account's attempts are limited");
    assert!(matches!(
        sign_in.login("bob", "bob's long password", ADDRESS).await,
        Err(LoginError::TooMany)
    ));
}

#[tokio::test]
async fn the_authorization_server_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .expect("store");
    suite(store).await;
}

#[tokio::test]
async fn the_authorization_server_on_postgres() {
    let name = format!("switchboard_auth_{}", std::process::id());
    let url = switchboard_test_support::postgres::fresh_database(&name);
    let store = Store::open(&url).await.expect("store");
    suite(store.clone()).await;
    store.close().await;
    switchboard_test_support::postgres::psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}
