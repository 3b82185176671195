//! Decisions checked without a network, over a registry written down here.

use super::*;
use switchboard_auth::{Claims, Role, Scopes};

/// A registry of four servers (over HTTP, over legacy SSE, disabled, sealed), and open sessions
/// on `/mcp/echo` and `/mcp`.
struct Registry;

impl Facts for Registry {
    fn server(&self, id_or_alias: &str) -> Option<ServerFacts<'_>> {
        let server = |id, alias, state, raw_capable| ServerFacts {
            id,
            alias,
            state,
            raw_capable,
        };
        match id_or_alias {
            "echo" | "id-echo" => Some(server("id-echo", "echo", ServerState::Enabled, true)),
            "local" | "id-local" => Some(server("id-local", "local", ServerState::Enabled, false)),
            "off" | "id-off" => Some(server("id-off", "off", ServerState::Disabled, true)),
            "locked" => Some(server("locked", "locked", ServerState::Sealed, true)),
            _ => None,
        }
    }

    fn plain_session(&self, session: &str, server: Option<&str>) -> bool {
        (session, server) == ("s-1", Some("id-echo")) || (session, server) == ("s-2", None)
    }

    fn revoked(&self, family: &str) -> bool {
        family == "revoked-family"
    }

    fn held(&self, user_id: &str, server_id: &str, now: i64) -> Vec<Held> {
        self.held_anywhere(user_id, now)
            .into_iter()
            .filter(|held| held.permission.server_id == server_id)
            .collect()
    }

    /// `reader` holds "Read-only" on `echo`; nobody holds anything else.
    fn held_anywhere(&self, user_id: &str, _now: i64) -> Vec<Held> {
        if user_id != "reader" {
            return Vec::new();
        }
        vec![Held {
            permission: std::sync::Arc::new(permission("read", "Read-only", "read_only")),
            expires_at: None,
        }]
    }

    fn public_url(&self) -> &str {
        BASE
    }

    /// `intern` may only look; everyone else may ask.
    fn self_service(&self, user_id: &str) -> SelfService {
        if user_id == "intern" {
            SelfService::ReadOnly
        } else {
            SelfService::On
        }
    }

    /// The admin token opened `s-1`, `s-2` and `s-9` (whose client answers requests); `ada`
    /// opened `s-ada`.
    fn session_owner(&self, session: &str) -> Option<std::sync::Arc<str>> {
        match session {
            "s-1" | "s-2" | "s-9" => Some("admin-token".into()),
            "s-ada" => Some("user:ada".into()),
            _ => None,
        }
    }
}

const BASE: &str = "https://gw.example.com";
/// The decisions' clock: Unix milliseconds.
const NOW: i64 = 1_800_000_000_000;

fn admin() -> Caller {
    Caller::admin("test".into())
}

fn call(name: &str) -> Asked<'_> {
    Asked {
        method: Some("tools/call"),
        has_id: true,
        named: Some(name),
        raw_carriable: true,
    }
}

fn decided(endpoint: Endpoint<'_>, asked: Option<Asked<'_>>, arrival: Arrival<'_>) -> Decision {
    decide(
        Request {
            caller: admin(),
            endpoint,
            asked,
            arrival,
            session: match arrival {
                Arrival::Session(session) => Some(session),
                _ => None,
            },
            now: NOW,
        },
        &Registry,
    )
}

fn echo() -> Option<ServerRef> {
    Some(ServerRef {
        id: "id-echo".into(),
        alias: "echo".into(),
    })
}

#[test]
fn a_plain_call_on_a_known_session_or_stateless_takes_the_raw_path() {
    for (endpoint, name, arrival) in [
        (Endpoint::Server("echo"), "add", Arrival::Session("s-1")),
        (Endpoint::Server("id-echo"), "add", Arrival::Stateless),
        (Endpoint::Aggregate, "echo__add", Arrival::Session("s-2")),
        (Endpoint::Aggregate, "echo__add", Arrival::Stateless),
    ] {
        let decision = decided(endpoint, Some(call(name)), arrival);
        assert_eq!(
            decision,
            Decision {
                caller: admin(),
                server: echo(),
                target: Target::Tool("add".into()),
                verdict: Verdict::Allow,
                route: Route::Raw,
                grants: Grants::Unrestricted,
                self_service: None,
            },
            "{endpoint:?} {arrival:?}"
        );
    }
}

#[test]
fn anything_the_raw_path_cannot_carry_is_typed() {
    let typed = |endpoint, asked, arrival| {
        let decision = decided(endpoint, Some(asked), arrival);
        assert_eq!(decision.verdict, Verdict::Allow, "{asked:?}");
        assert_eq!(
            decision.route,
            Route::Typed,
            "{endpoint:?} {asked:?} {arrival:?}"
        );
    };
    let echo = Endpoint::Server("echo");
    // A session the raw path does not know (its client answers requests, or it is another
    // endpoint's), and headers rmcp must judge.
    typed(echo, call("add"), Arrival::Session("s-9"));
    typed(echo, call("add"), Arrival::Session("s-2"));
    typed(
        Endpoint::Aggregate,
        call("echo__add"),
        Arrival::Session("s-1"),
    );
    typed(echo, call("add"), Arrival::Other);
    // A server reached over legacy SSE.
    typed(Endpoint::Server("local"), call("add"), Arrival::Stateless);
    typed(Endpoint::Aggregate, call("local__add"), Arrival::Stateless);
    // A call with what only the typed model carries, a notification, other methods.
    let unusual = Asked {
        raw_carriable: false,
        ..call("add")
    };
    typed(echo, unusual, Arrival::Stateless);
    let notification = Asked {
        has_id: false,
        ..call("add")
    };
    typed(echo, notification, Arrival::Session("s-1"));
    let list = Asked {
        method: Some("tools/list"),
        has_id: true,
        named: None,
        raw_carriable: false,
    };
    typed(echo, list, Arrival::Session("s-1"));
    // A cancel goes to the raw path only on a session it serves.
    let cancel = Asked {
        method: Some("notifications/cancelled"),
        has_id: false,
        named: None,
        raw_carriable: false,
    };
    typed(echo, cancel, Arrival::Stateless);
    assert_eq!(
        decided(echo, Some(cancel), Arrival::Session("s-1")).route,
        Route::Raw
    );
    // The admin endpoint has no raw path.
    typed(
        Endpoint::Admin,
        call("list_mcp_servers"),
        Arrival::Stateless,
    );
}

#[test]
fn an_endpoint_of_no_usable_server_is_refused_before_anything_else() {
    for (named, reason, code) in [
        ("nope", Reason::NoSuchServer("nope".into()), "not_found"),
        ("off", Reason::Disabled("off".into()), "server_disabled"),
        (
            "locked",
            Reason::Sealed("locked".into()),
            "secrets_unreadable",
        ),
    ] {
        for asked in [None, Some(call("add"))] {
            let decision = decided(Endpoint::Server(named), asked, Arrival::Stateless);
            let expected = Refusal {
                of_message: false,
                reason: reason.clone(),
            };
            assert_eq!(decision.verdict, Verdict::Refuse(expected.clone()));
            assert_eq!(decision.route, Route::Typed);
            assert_eq!(decision.server, None);
            assert_eq!(expected.error().code(), code);
        }
    }
}

#[test]
fn on_the_aggregate_a_name_must_name_a_usable_server() {
    for (name, reason) in [
        ("add", Reason::NotAggregated("add".into())),
        ("nope__add", Reason::NoSuchServer("nope".into())),
        ("off__add", Reason::Disabled("off".into())),
    ] {
        let decision = decided(Endpoint::Aggregate, Some(call(name)), Arrival::Stateless);
        assert_eq!(
            decision.verdict,
            Verdict::Refuse(Refusal {
                of_message: true,
                reason
            }),
            "{name}"
        );
        assert_eq!(decision.route, Route::Typed);
    }
    let refusal = Refusal {
        of_message: true,
        reason: Reason::NotAggregated("add".into()),
    };
    assert_eq!(refusal.error().code(), "unknown_name");
    // A prompt is named the same way; a listing or a resource names no server.
    let prompt = Asked {
        method: Some("prompts/get"),
        ..call("echo__greet")
    };
    let decision = decided(Endpoint::Aggregate, Some(prompt), Arrival::Stateless);
    assert_eq!(decision.target, Target::Prompt("greet".into()));
    assert_eq!(decision.server, echo());
    let read = Asked {
        method: Some("resources/read"),
        raw_carriable: false,
        ..call("demo://a")
    };
    let decision = decided(Endpoint::Aggregate, Some(read), Arrival::Stateless);
    assert_eq!(decision.verdict, Verdict::Allow);
    assert_eq!(decision.target, Target::Resource("demo://a".into()));
    assert_eq!(decision.server, None);
}

#[test]
fn the_target_is_what_the_message_names() {
    let echo = Endpoint::Server("echo");
    assert_eq!(decided(echo, None, Arrival::Other).target, Target::Endpoint);
    let init = Asked {
        method: Some("initialize"),
        has_id: true,
        ..Asked::default()
    };
    assert_eq!(
        decided(echo, Some(init), Arrival::Other).target,
        Target::Method("initialize".into())
    );
    let answer = Asked {
        has_id: true,
        ..Asked::default()
    };
    assert_eq!(
        decided(echo, Some(answer), Arrival::Other).target,
        Target::Endpoint
    );
    let decision = decided(
        Endpoint::Admin,
        Some(call("list_mcp_servers")),
        Arrival::Other,
    );
    assert_eq!(decision.target, Target::Tool("list_mcp_servers".into()));
    assert_eq!(decision.verdict, Verdict::Allow);
}

/// A permission of `echo` with `selector`.
fn permission(id: &str, label: &str, selector: &str) -> switchboard_store::PermissionRow {
    switchboard_store::PermissionRow {
        id: id.into(),
        server_id: "id-echo".into(),
        label: label.into(),
        description: String::new(),
        selector: selector.into(),
        tools: Vec::new(),
        requestable: true,
        max_duration_s: None,
        created_at: 0,
        updated_at: 0,
    }
}

mod credentials;
