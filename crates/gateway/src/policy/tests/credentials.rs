//! Decisions on who calls: users' tokens, their grants, API keys, sessions' owners,
//! self-service and console sessions.

use super::*;

/// A user's token for `audience` (a path under [`BASE`]) with `scopes`.
fn token(role: Role, audience: &str, scopes: &str) -> Claims {
    Claims {
        family: "family".into(),
        // Holds "Read-only" on `echo` (see `Registry`).
        user_id: "reader".into(),
        username: "ada".into(),
        role,
        client_id: "https://client.example.com/meta.json".into(),
        audience: format!("{BASE}{audience}"),
        scopes: Scopes::parse(scopes).expect("scopes"),
        expires_at: NOW + 60_000,
    }
}

/// The verdict on `claims` calling `asked` on `endpoint`.
fn verdict_of(caller: Caller, endpoint: Endpoint<'_>, asked: Option<Asked<'_>>) -> Verdict {
    decide(
        Request {
            caller,
            endpoint,
            asked,
            arrival: Arrival::Other,
            session: None,
            now: NOW,
        },
        &Registry,
    )
    .verdict
}

fn user(claims: Claims) -> Caller {
    Caller::token(claims, "test".into())
}

/// The refusal's challenge header, and whether it is a 401 (rather than a 403).
fn challenge(verdict: Verdict) -> (String, bool) {
    match verdict {
        Verdict::Refuse(Refusal {
            of_message: false,
            reason: Reason::Unauthenticated(challenge),
        }) => (challenge.header(false), true),
        Verdict::Refuse(Refusal {
            of_message: false,
            reason: Reason::InsufficientScope(challenge),
        }) => (challenge.header(true), false),
        other => panic!("a challenge expected: {other:?}"),
    }
}

#[test]
fn a_token_is_allowed_only_unexpired_unrevoked_for_its_own_endpoint_with_its_scopes() {
    let echo = Endpoint::Server("echo");
    assert_eq!(
        verdict_of(
            user(token(Role::User, "/mcp/echo", "mcp")),
            echo,
            Some(call("add"))
        ),
        Verdict::Allow
    );
    assert_eq!(
        verdict_of(
            user(token(Role::User, "/mcp", "mcp")),
            Endpoint::Aggregate,
            None
        ),
        Verdict::Allow
    );
    let metadata = format!("{BASE}/.well-known/oauth-protected-resource/mcp/echo");
    let invalid =
        format!(r#"Bearer error="invalid_token", resource_metadata="{metadata}", scope="mcp""#);
    let expired = Claims {
        expires_at: NOW,
        ..token(Role::User, "/mcp/echo", "mcp")
    };
    let revoked = Claims {
        family: "revoked-family".into(),
        ..token(Role::User, "/mcp/echo", "mcp")
    };
    for (claims, why) in [
        (expired, "expired"),
        (revoked, "revoked"),
        (token(Role::User, "/mcp/other", "mcp"), "another server's"),
        (token(Role::User, "/mcp", "mcp"), "the aggregate's"),
    ] {
        assert_eq!(
            challenge(verdict_of(user(claims), echo, Some(call("add")))),
            (invalid.clone(), true),
            "{why}"
        );
    }
    let anonymous = Caller::unidentified(Credential::Anonymous, "test".into());
    assert_eq!(
        challenge(verdict_of(anonymous, echo, None)),
        (
            format!(r#"Bearer resource_metadata="{metadata}", scope="mcp""#),
            true
        )
    );
    let forged = Caller::unidentified(Credential::Invalid, "test".into());
    assert_eq!(challenge(verdict_of(forged, echo, None)), (invalid, true));
    let admin_metadata = format!("{BASE}/.well-known/oauth-protected-resource/mcp/admin");
    assert!(
        !challenge(verdict_of(
            user(token(Role::User, "/mcp/echo", "user:read")),
            echo,
            None
        ))
        .1,
        "a token without `mcp` may step up"
    );
    // /mcp/admin: admin:read lists and reads, admin:write changes; admins only.
    let reader = || user(token(Role::Admin, "/mcp/admin", "admin:read"));
    assert_eq!(
        verdict_of(reader(), Endpoint::Admin, Some(call("list_mcp_servers"))),
        Verdict::Allow
    );
    assert_eq!(
        challenge(verdict_of(
            reader(),
            Endpoint::Admin,
            Some(call("delete_mcp_server"))
        )),
        (
            format!(
                r#"Bearer error="insufficient_scope", resource_metadata="{admin_metadata}", scope="admin:read admin:write""#
            ),
            false
        )
    );
    assert_eq!(
        verdict_of(
            user(token(Role::Admin, "/mcp/admin", "admin:write")),
            Endpoint::Admin,
            Some(call("delete_mcp_server"))
        ),
        Verdict::Allow
    );
    assert_eq!(
        verdict_of(
            user(token(Role::User, "/mcp/admin", "admin:write")),
            Endpoint::Admin,
            Some(call("list_mcp_servers"))
        ),
        Verdict::Refuse(Refusal {
            of_message: false,
            reason: Reason::AdminOnly
        }),
        "a token of a user who is no longer an admin"
    );
    // The admin API: reads and writes.
    let api_reader = || user(token(Role::Admin, "/api", "admin:read"));
    assert_eq!(
        verdict_of(api_reader(), Endpoint::AdminApi { write: false }, None),
        Verdict::Allow
    );
    assert!(
        !challenge(verdict_of(
            api_reader(),
            Endpoint::AdminApi { write: true },
            None
        ))
        .1
    );
    assert!(!api_reader().may_start_local_servers());
    assert!(admin().may_start_local_servers());
    // The admin token passes everywhere.
    for endpoint in [
        Endpoint::Admin,
        Endpoint::AdminApi { write: true },
        Endpoint::Server("echo"),
    ] {
        assert_eq!(verdict_of(admin(), endpoint, None), Verdict::Allow);
    }
}

#[test]
fn a_user_reaches_only_the_servers_and_tools_their_grants_allow() {
    let as_user = |id: &str| {
        user(Claims {
            user_id: id.into(),
            ..token(Role::User, "/mcp/echo", "mcp")
        })
    };
    let decision = |caller: Caller, endpoint: Endpoint<'static>, asked: Option<Asked<'static>>| {
        decide(
            Request {
                caller,
                endpoint,
                asked,
                arrival: Arrival::Other,
                session: None,
                now: NOW,
            },
            &Registry,
        )
    };
    // No grant on the server: its endpoint refuses, and on /mcp so does a call to it.
    let refused = decision(as_user("nobody"), Endpoint::Server("echo"), None);
    assert_eq!(
        refused.verdict,
        Verdict::Refuse(Refusal {
            of_message: false,
            reason: Reason::NoGrant("echo".into())
        })
    );
    let aggregate = |id: &str, asked| {
        decision(
            Caller::token(
                Claims {
                    user_id: id.into(),
                    ..token(Role::User, "/mcp", "mcp")
                },
                "test".into(),
            ),
            Endpoint::Aggregate,
            asked,
        )
    };
    assert_eq!(
        aggregate("nobody", Some(call("echo__add"))).verdict,
        Verdict::Refuse(Refusal {
            of_message: true,
            reason: Reason::NoGrant("echo".into())
        })
    );
    // With "Read-only": the endpoint opens, read-only tools may be called, others not.
    let granted = decision(
        as_user("reader"),
        Endpoint::Server("echo"),
        Some(call("add")),
    );
    assert_eq!(granted.verdict, Verdict::Allow);
    assert!(granted.grants.permit("id-echo", "list_things", true));
    assert!(!granted.grants.permit("id-echo", "add", false));
    assert!(!granted.grants.permit("id-local", "list_things", true));
    assert!(granted.grants.any_on("id-echo"));
    assert!(!granted.grants.any_on("id-local"));
    // On /mcp without a named server, the grants on every server (for the listings).
    let listing = aggregate("reader", None);
    assert_eq!(listing.verdict, Verdict::Allow);
    assert!(listing.grants.any_on("id-echo"));
    assert_eq!(aggregate("nobody", None).grants, Grants::Held(Vec::new()));
    // Admins and the admin token are not held to grants.
    let admin_user = decision(
        user(token(Role::Admin, "/mcp/echo", "mcp")),
        Endpoint::Server("echo"),
        None,
    );
    assert_eq!(admin_user.grants, Grants::Unrestricted);
    assert_eq!(
        decision(admin(), Endpoint::Server("echo"), None).grants,
        Grants::Unrestricted
    );
    // A refused call names the permission that would allow it, and how to ask.
    let permissions = [
        std::sync::Arc::new(permission("full", "Full access", "all")),
        std::sync::Arc::new(permission("read", "Read-only", "read_only")),
    ];
    let refusal = refuse_call("echo", "add", false, &permissions).to_string();
    assert!(refusal.contains("\"Full access\""), "{refusal}");
    assert!(refusal.contains("submit_access_request"), "{refusal}");
}

#[test]
fn an_api_key_opens_what_its_scopes_open_on_every_endpoint_until_it_expires() {
    let key = |scopes: &str, expires_at: Option<i64>| {
        Caller::key(
            KeyClaims {
                key_id: "key_1".into(),
                user_id: "reader".into(),
                username: "ada".into(),
                role: Role::User,
                scopes: Scopes::parse(scopes).expect("scopes"),
                expires_at,
            },
            "test".into(),
        )
    };
    for endpoint in [Endpoint::Server("echo"), Endpoint::Aggregate] {
        assert_eq!(
            verdict_of(key("mcp", None), endpoint, None),
            Verdict::Allow,
            "{endpoint:?}"
        );
        assert_eq!(
            verdict_of(key("mcp", Some(NOW + 1)), endpoint, None),
            Verdict::Allow
        );
        let (header, unauthenticated) =
            challenge(verdict_of(key("mcp", Some(NOW)), endpoint, None));
        assert!(
            unauthenticated && header.contains("invalid_token"),
            "{header}"
        );
        let (_, unauthenticated) = challenge(verdict_of(key("user:read", None), endpoint, None));
        assert!(!unauthenticated, "a key without `mcp` is short of a scope");
    }
    assert_eq!(
        verdict_of(
            key("admin:read", None),
            Endpoint::AdminApi { write: false },
            None
        ),
        Verdict::Refuse(Refusal {
            of_message: false,
            reason: Reason::AdminOnly
        }),
        "a key is never more than its owner"
    );
    assert!(!key("mcp", None).may_start_local_servers());
}

/// A session id is good only with a credential of the one who opened it: another user's token,
/// the admin token on a user's session, or an id no one opened is refused as no session (404),
/// so that a leaked id reaches nothing. An `initialize` opens a session and needs none.
#[test]
fn a_session_serves_only_its_owner() {
    let ada = |user_id: &str| {
        user(Claims {
            user_id: user_id.into(),
            ..token(Role::Admin, "/mcp/admin", "admin:read")
        })
    };
    let on = |caller: Caller, session: &'static str, method: &'static str| {
        decide(
            Request {
                caller,
                endpoint: Endpoint::Admin,
                asked: Some(Asked {
                    method: Some(method),
                    has_id: true,
                    named: None,
                    raw_carriable: false,
                }),
                arrival: Arrival::Session(session),
                session: Some(session),
                now: NOW,
            },
            &Registry,
        )
        .verdict
    };
    let unknown = Verdict::Refuse(Refusal {
        of_message: false,
        reason: Reason::UnknownSession,
    });
    assert_eq!(on(ada("ada"), "s-ada", "tools/list"), Verdict::Allow);
    assert_eq!(
        on(ada("bob"), "s-ada", "tools/list"),
        unknown,
        "another user"
    );
    assert_eq!(
        on(admin(), "s-ada", "tools/list"),
        unknown,
        "the admin token"
    );
    assert_eq!(
        on(ada("ada"), "s-1", "tools/list"),
        unknown,
        "the admin token's"
    );
    assert_eq!(on(ada("ada"), "s-none", "tools/list"), unknown, "no one's");
    assert_eq!(on(admin(), "s-1", "tools/list"), Verdict::Allow);
    assert_eq!(on(ada("bob"), "s-ada", "initialize"), Verdict::Allow);
    assert_eq!(
        Refusal {
            of_message: false,
            reason: Reason::UnknownSession
        }
        .error()
        .code(),
        "session_not_found"
    );
}

/// `/mcp/user`: `user:read` lists and searches, `user:write` files requests (a token without it
/// is refused with the scope to step up to, and its listing leaves the tool out); the decision
/// carries how far the user may serve themselves, which the organization's settings decide.
#[test]
fn self_service_needs_the_user_scopes_and_follows_the_settings() {
    let as_user = |user_id: &str, scopes: &str| {
        user(Claims {
            user_id: user_id.into(),
            ..token(Role::User, "/mcp/user", scopes)
        })
    };
    let submit = call("submit_access_request");
    let search = call("search_apps");
    let decision = |caller: Caller, asked: Asked<'static>| {
        decide(
            Request {
                caller,
                endpoint: Endpoint::User,
                asked: Some(asked),
                arrival: Arrival::Other,
                session: None,
                now: NOW,
            },
            &Registry,
        )
    };
    let reader = as_user("ada", "user:read");
    assert_eq!(decision(reader.clone(), search).verdict, Verdict::Allow);
    let Verdict::Refuse(refusal) = decision(reader.clone(), submit).verdict else {
        panic!("user:read files no request");
    };
    assert!(
        matches!(&refusal.reason, Reason::InsufficientScope(c) if c.scopes.to_string().contains("user:write")),
        "{refusal:?}"
    );
    assert!(may_call(&reader, Endpoint::User, "search_apps"));
    assert!(!may_call(&reader, Endpoint::User, "submit_access_request"));
    let writer = as_user("ada", "user:write");
    assert!(may_call(&writer, Endpoint::User, "submit_access_request"));
    let allowed = decision(writer, submit);
    assert_eq!(allowed.verdict, Verdict::Allow);
    assert_eq!(allowed.self_service, Some(SelfService::On));
    let intern = decision(as_user("intern", "user:write"), submit);
    assert_eq!(intern.self_service, Some(SelfService::ReadOnly));
    // A token for /mcp/admin is not one for /mcp/user.
    let elsewhere = user(token(Role::Admin, "/mcp/admin", "admin:read"));
    assert!(matches!(
        decision(elsewhere, search).verdict,
        Verdict::Refuse(Refusal {
            reason: Reason::Unauthenticated(_),
            ..
        })
    ));
    // On /mcp/admin, a read-only token lists only the tools that read.
    let admin_reader = user(token(Role::Admin, "/mcp/admin", "admin:read"));
    assert!(may_call(&admin_reader, Endpoint::Admin, "list_mcp_servers"));
    assert!(!may_call(
        &admin_reader,
        Endpoint::Admin,
        "delete_mcp_server"
    ));
}

/// A console session acts with every scope of its user's role: a user reaches `/mcp/user` and
/// the endpoints of their grants, never the admin API; an admin reaches it all.
#[test]
fn a_console_session_acts_with_its_users_role() {
    let session = |role: Role| {
        Caller::session(
            SessionUser {
                user_id: "reader".into(),
                username: "ada".into(),
                role,
            },
            "console".into(),
        )
    };
    let verdict = |caller: Caller, endpoint: Endpoint<'static>, asked: Option<Asked<'static>>| {
        decide(
            Request {
                caller,
                endpoint,
                asked,
                arrival: Arrival::Other,
                session: None,
                now: NOW,
            },
            &Registry,
        )
    };
    let user = session(Role::User);
    let admin_only = Verdict::Refuse(Refusal {
        of_message: false,
        reason: Reason::AdminOnly,
    });
    for write in [false, true] {
        assert_eq!(
            verdict(user.clone(), Endpoint::AdminApi { write }, None).verdict,
            admin_only
        );
        assert_eq!(
            verdict(session(Role::Admin), Endpoint::AdminApi { write }, None).verdict,
            Verdict::Allow
        );
    }
    let filing = verdict(
        user.clone(),
        Endpoint::User,
        Some(call("submit_access_request")),
    );
    assert_eq!(filing.verdict, Verdict::Allow);
    assert_eq!(filing.self_service, Some(SelfService::On));
    assert!(!may_call(&user, Endpoint::Admin, "list_mcp_servers"));
    assert!(may_call(&user, Endpoint::User, "submit_access_request"));
    assert_eq!(user.owner().as_deref(), Some("user:reader"));
    // The owner a caller records is the one it is found to be, for every kind of credential.
    for caller in [user.clone(), admin(), session(Role::Admin)] {
        let owner = caller.owner().expect("an owner");
        assert!(caller.is_owner(&owner), "{owner}");
        assert!(!caller.is_owner("user:someone-else"), "{owner}");
    }
}
