//! The same store suite on both backends: a SQLite file, and the local PostgreSQL with a database
//! made for this run and dropped after it.

use serde_json::json;
use switchboard_store::{AuditQuery, AuditRow, Backend, ServerRow, Store, StoreError};

const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn row(id: &str, alias: &str) -> ServerRow {
    ServerRow {
        id: id.into(),
        name: format!("Server {alias}"),
        alias: alias.into(),
        short_description: "for tests".into(),
        runtime: "remote".into(),
        config: json!({"url": "https://mcp.example.com/mcp"}),
        env: json!({"REGION": "eu"}),
        sensitive_keys: json!(["TOKEN"]),
        sealed: Some("v1:abcdef".into()),
        governance: json!({"prefix": "x_"}),
        enabled: true,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    }
}

/// The audit row of an admin change, numbered so that each is its own.
fn change(n: i64, action: &str) -> AuditRow {
    AuditRow {
        id: format!("{:013}-change", 10_000 + n),
        at: 10_000 + n,
        actor: "changer".into(),
        client: "test".into(),
        kind: "admin".into(),
        action: action.to_string().into(),
        server: String::new(),
        tool: String::new(),
        outcome: "ok".into(),
        duration_ms: 1,
        detail: "{}".into(),
    }
}

async fn suite(store: &Store) {
    // Migrations ran; an empty store answers.
    store.ping().await.expect("ping");
    assert!(store.servers().await.expect("list").is_empty());
    audit_suite(store).await;

    let first = row("ms1", "alpha");
    store
        .insert_server(&first, &change(1, "create"))
        .await
        .expect("insert");
    assert_eq!(store.server("ms1").await.expect("get"), Some(first.clone()));
    assert_eq!(
        store.server("alpha").await.expect("by alias"),
        Some(first.clone())
    );
    assert_eq!(store.server("nope").await.expect("get"), None);

    // A duplicate alias is a conflict, and leaves the store as it was.
    let clash = row("ms2", "alpha");
    assert!(matches!(
        store.insert_server(&clash, &change(2, "clash")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.servers().await.expect("list").len(), 1);

    let mut second = row("ms2", "beta");
    second.created_at += 1;
    store
        .insert_server(&second, &change(3, "create"))
        .await
        .expect("insert");
    let ids: Vec<_> = store
        .servers()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["ms1", "ms2"]);

    let mut changed = second.clone();
    changed.enabled = false;
    changed.sealed = None;
    changed.updated_at += 5;
    assert!(
        store
            .update_server(&changed, &change(4, "update"))
            .await
            .expect("update")
    );
    assert_eq!(
        store.server("ms2").await.expect("get"),
        Some(changed.clone())
    );
    changed.alias = "alpha".into();
    assert!(matches!(
        store.update_server(&changed, &change(5, "clash")).await,
        Err(StoreError::Conflict(_))
    ));
    let mut missing = row("ms9", "gamma");
    missing.name = "ghost".into();
    assert!(
        !store
            .update_server(&missing, &change(6, "missing"))
            .await
            .expect("update")
    );

    assert!(
        store
            .delete_server("ms1", &change(7, "delete"))
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_server("ms1", &change(8, "missing"))
            .await
            .expect("delete again")
    );

    // Each change done has its row, written with it; a refused or missed one has none.
    let changes = store
        .audit(&AuditQuery {
            actor: Some("changer".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("query");
    let actions: Vec<_> = changes.iter().map(|row| row.action.as_ref()).collect();
    assert_eq!(actions, ["create", "create", "update", "delete"]);

    assert_eq!(store.setting("admin").await.expect("get"), None);
    assert!(
        store
            .set_setting_once("admin", "hash-1")
            .await
            .expect("set")
    );
    assert!(
        !store
            .set_setting_once("admin", "hash-2")
            .await
            .expect("set again")
    );
    assert_eq!(
        store.setting("admin").await.expect("get").as_deref(),
        Some("hash-1")
    );
    access_suite(store).await;
    requests_suite(store).await;
    runs_suite(store).await;
    sessions_suite(store).await;
}

fn audit_row(at: i64, server: &str, tool: &str, outcome: &str) -> AuditRow {
    AuditRow {
        id: format!("{at:013}-{server}-{tool}"),
        at,
        actor: "admin".into(),
        client: "test".into(),
        kind: "tool_call".into(),
        action: "tools/call".into(),
        server: server.into(),
        tool: tool.into(),
        outcome: outcome.to_string().into(),
        duration_ms: 5,
        detail: "{}".into(),
    }
}

/// Permissions, grants and groups: every new server has its two first permissions, a change
/// moves the access version and writes its audit row, and deleting a server takes its
/// permissions and grants with it.
async fn access_suite(store: &Store) {
    use switchboard_store::{GrantRow, GroupRow};
    let before = store.access_version().await.expect("version");
    store
        .insert_server(&row("acc1", "acc"), &change(900, "create"))
        .await
        .expect("insert");
    let permissions = store.permissions(Some("acc1")).await.expect("permissions");
    let labels: Vec<&str> = permissions.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["Full access", "Read-only"]);
    assert_ne!(store.access_version().await.expect("version"), before);
    let group = GroupRow {
        id: "g1".into(),
        name: "eng".into(),
        description: String::new(),
        source: "local".into(),
        created_at: 1,
    };
    store
        .insert_group(&group, &change(901, "group.create"))
        .await
        .expect("group");
    assert!(matches!(
        store
            .insert_group(
                &GroupRow {
                    id: "g2".into(),
                    ..group.clone()
                },
                &change(902, "group.create")
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .set_membership("g1", "u1", true, &change(903, "member"))
        .await
        .expect("member");
    store
        .set_membership("g1", "u1", true, &change(904, "member"))
        .await
        .expect("again");
    let grant = GrantRow {
        id: "gr1".into(),
        permission_id: permissions[1].id.clone(),
        subject_kind: "group".into(),
        subject_id: "g1".into(),
        expires_at: Some(5_000),
        created_at: 1,
        created_by: "admin".into(),
        request_id: None,
    };
    store
        .insert_grant(&grant, &change(905, "grant.create"))
        .await
        .expect("grant");
    let rows = store.access_rows().await.expect("rows");
    assert_eq!(rows.grants, vec![grant.clone()]);
    assert_eq!(rows.members, vec![("g1".to_string(), "u1".to_string())]);
    assert_eq!(store.memberships("u1").await.expect("groups"), ["g1"]);
    let version = store.access_version().await.expect("version");
    assert!(
        store
            .delete_server("acc1", &change(906, "delete"))
            .await
            .expect("deleted")
    );
    assert_ne!(store.access_version().await.expect("version"), version);
    let rows = store.access_rows().await.expect("rows");
    assert!(
        rows.grants.is_empty() && rows.permissions.iter().all(|p| p.server_id != "acc1"),
        "{rows:?}"
    );
    assert!(
        store
            .delete_group("g1", &change(907, "group.delete"))
            .await
            .expect("deleted")
    );
    assert!(store.access_rows().await.expect("rows").members.is_empty());
    assert!(
        !store
            .delete_grant("gr1", &change(908, "grant.delete"))
            .await
            .expect("none")
    );
}

async fn audit_suite(store: &Store) {
    let rows = [
        audit_row(1_000, "calc", "add", "ok"),
        audit_row(2_000, "calc", "fail", "error"),
        audit_row(3_000, "web", "fetch", "ok"),
    ];
    for row in &rows {
        store.append_audit(row).await.expect("append");
    }
    let all = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&all).await.expect("query"), rows.to_vec());
    let by = |query: AuditQuery| async move {
        store
            .audit(&query)
            .await
            .expect("query")
            .into_iter()
            .map(|r| r.tool)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(AuditQuery {
            server: Some("calc".into()),
            ..all.clone()
        })
        .await,
        ["add", "fail"]
    );
    assert_eq!(
        by(AuditQuery {
            outcome: Some("ok".into()),
            ..all.clone()
        })
        .await,
        ["add", "fetch"]
    );
    assert_eq!(
        by(AuditQuery {
            since: Some(2_000),
            until: Some(3_000),
            ..all.clone()
        })
        .await,
        ["fail"]
    );
    // Pages follow the last id.
    let first = store
        .audit(&AuditQuery {
            limit: 2,
            ..all.clone()
        })
        .await
        .expect("page");
    let next = AuditQuery {
        after: Some(first[1].id.clone()),
        limit: 2,
        ..all.clone()
    };
    assert_eq!(by(next).await, ["fetch"]);
    assert_eq!(store.prune_audit(2_500).await.expect("prune"), 2);
    assert_eq!(by(all).await, ["fetch"]);

    // A batch goes in as one JSON parameter: every row lands, in order, none twice, and every
    // value comes back as it was, whatever its characters and however large its numbers.
    let mut batch: Vec<AuditRow> = (0..150)
        .map(|n| audit_row(10_000 + n, "bulk", &format!("t{n:03}"), "ok"))
        .collect();
    batch[7].detail = r#"{"quote":"\"","line":"a\nb","unicode":"é ☎ 𝄞","nul":"\u0001"}"#.into();
    batch[8].tool = "naïve \"tool\" \\ ☎".into();
    batch[9].duration_ms = i64::MAX;
    store.append_audit_batch(&batch).await.expect("batch");
    store.append_audit_batch(&[]).await.expect("an empty batch");
    let bulk = || AuditQuery {
        server: Some("bulk".into()),
        limit: 500,
        ..AuditQuery::default()
    };
    let landed = store.audit(&bulk()).await.expect("query");
    assert_eq!(landed, batch);

    // A batch is all or none: one row that cannot go in keeps the others out.
    let clashing = vec![audit_row(20_000, "bulk", "new", "ok"), batch[3].clone()];
    assert!(store.append_audit_batch(&clashing).await.is_err());
    assert_eq!(store.audit(&bulk()).await.expect("query"), batch);
    assert_eq!(store.prune_audit(i64::MAX).await.expect("prune"), 151);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    let store = Store::open(&url).await.expect("opens");
    assert_eq!(store.backend(), Backend::Sqlite);
    suite(&store).await;
    store.close().await;
    // Reopening runs the migrations again harmlessly and keeps the data.
    let store = Store::open(&url).await.expect("reopens");
    assert_eq!(store.servers().await.expect("list").len(), 1);
    assert!(dir.path().join("switchboard.db-wal").exists(), "WAL mode");
}

#[tokio::test]
async fn postgres_store() {
    sqlx::any::install_default_drivers();
    let database = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(POSTGRES_ADMIN_URL)
        .await
        .expect("the local PostgreSQL at 127.0.0.1:5432 answers");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .expect("create database");
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let store = Store::open(&url).await.expect("opens");
    assert_eq!(store.backend(), Backend::Postgres);
    suite(&store).await;
    store.close().await;
    // FORCE: a pooled connection may still be saying goodbye.
    sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop database");
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(matches!(
        Store::open("mysql://x").await,
        Err(StoreError::UnsupportedUrl)
    ));
}

/// Access requests and webhook deliveries: a duplicate of a pending request answers it; a
/// decision is taken once, with its grant; a delivery is claimed by one taker at a time, and only
/// those done are pruned.
async fn requests_suite(store: &Store) {
    use switchboard_store::{Decision, GrantRow, RequestFilter, RequestRow, Submitted};
    store
        .insert_server(&row("rq1", "rq"), &change(949, "create"))
        .await
        .expect("insert");
    let request = RequestRow {
        id: "req1".into(),
        user_id: "u1".into(),
        permission_id: "prm_read_rq1".into(),
        reason: "reports".into(),
        duration_s: Some(3600),
        status: "pending".into(),
        decided_by: None,
        decision_reason: None,
        decided_at: None,
        created_at: 50_000,
    };
    let filed = store
        .submit_access_request(&request, &change(950, "request"), Some("{\"n\":1}"))
        .await
        .expect("filed");
    assert!(matches!(filed, Submitted::New(_)));
    let again = RequestRow {
        id: "req2".into(),
        ..request.clone()
    };
    let duplicate = store
        .submit_access_request(&again, &change(951, "request"), Some("{\"n\":2}"))
        .await
        .expect("answered");
    assert!(matches!(duplicate, Submitted::Pending(row) if row.id == "req1"));
    let mine = store
        .access_requests(&RequestFilter {
            user_id: Some("u1"),
            server_id: Some("rq1"),
            limit: 10,
            ..RequestFilter::default()
        })
        .await
        .expect("listed");
    assert_eq!(mine.len(), 1);

    let grant = GrantRow {
        id: "grt_req1".into(),
        permission_id: "prm_read_rq1".into(),
        subject_kind: "user".into(),
        subject_id: "u1".into(),
        expires_at: Some(60_000),
        created_at: 51_000,
        created_by: "admin".into(),
        request_id: Some("req1".into()),
    };
    let decision = Decision {
        status: "approved",
        decided_by: "admin",
        reason: Some("ok"),
        at: 51_000,
        grant: Some(&grant),
    };
    let first = store
        .decide_access_request(
            "req1",
            &decision,
            &change(952, "approve"),
            Some("{\"n\":3}"),
        )
        .await
        .expect("decided");
    let second = store
        .decide_access_request("req1", &decision, &change(953, "approve"), None)
        .await
        .expect("answered");
    assert!(first && !second, "decided once");
    assert!(store.grant("grt_req1").await.expect("read").is_some());

    // Two deliveries (the request's and the decision's): claimed once each, for the lease.
    let claimed = store
        .claim_webhooks(60_000, 30_000, 10)
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 2);
    assert!(
        store
            .claim_webhooks(60_000, 30_000, 10)
            .await
            .expect("none")
            .is_empty()
    );
    store
        .webhook_attempted(&claimed[0].id, 61_000, None)
        .await
        .expect("delivered");
    store
        .webhook_attempted(&claimed[1].id, 61_000, Some(("HTTP 500", Some(62_000))))
        .await
        .expect("failed once");
    let retried = store
        .claim_webhooks(62_000, 30_000, 10)
        .await
        .expect("due again");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(
        store.prune_webhooks(100_000).await.expect("pruned"),
        1,
        "the one due stays"
    );
    // The server goes with its permissions and the grant the approval made.
    assert!(
        store
            .delete_server("rq1", &change(960, "delete"))
            .await
            .expect("deleted")
    );
    assert!(store.grant("grt_req1").await.expect("read").is_none());
}

/// Runs: kept with their record, listed newest first a page at a time, found by their run id,
/// pruned by age; a run id is kept once.
async fn runs_suite(store: &Store) {
    use switchboard_store::RunRow;
    let run = |at: i64, run_id: &str| RunRow {
        id: format!("{at:013}-{run_id}"),
        run_id: run_id.into(),
        at,
        actor: "admin".into(),
        model: "m".into(),
        task: format!("task {run_id}"),
        stop_reason: "final_answer".into(),
        duration_ms: 12,
        steps: 2,
        tool_calls: 1,
        tokens: 30,
    };
    for (at, run_id) in [(1_000, "run_a"), (2_000, "run_b"), (3_000, "run_c")] {
        store
            .insert_run(&run(at, run_id), &format!("{{\"runId\":\"{run_id}\"}}"))
            .await
            .expect("insert run");
    }
    assert!(
        store.insert_run(&run(4_000, "run_a"), "{}").await.is_err(),
        "a run id is kept once"
    );
    let page = store.runs(None, 2).await.expect("runs");
    let ids: Vec<&str> = page.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["run_c", "run_b"]);
    assert_eq!(page[0], run(3_000, "run_c"));
    let next = store.runs(Some(&page[1].id), 2).await.expect("next page");
    let ids: Vec<&str> = next.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["run_a"]);
    let (summary, record) = store.run("run_b").await.expect("run").expect("found");
    assert_eq!(summary, run(2_000, "run_b"));
    assert_eq!(record, "{\"runId\":\"run_b\"}");
    assert!(store.run("run_z").await.expect("run").is_none());
    assert_eq!(store.prune_runs(2_500).await.expect("prune"), 2);
    let left: Vec<String> = store
        .runs(None, 10)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(left, ["run_c"]);
}

/// Sessions: kept with their parameters, owned once, touched, ended once and found among the
/// newly ended, pruned; a lease is held by one holder at a time until it runs out.
async fn sessions_suite(store: &Store) {
    use switchboard_store::SessionRow;
    let row = SessionRow {
        id: "ses1".into(),
        endpoint: "ms1".into(),
        owner: String::new(),
        params: "{\"protocolVersion\":\"2025-11-25\"}".into(),
        pinned: false,
        created_at: 1_000,
        touched_at: 1_000,
        ended_at: None,
    };
    store.insert_session(&row).await.expect("insert");
    assert!(
        store.insert_session(&row).await.is_err(),
        "an id is kept once"
    );
    assert_eq!(
        store
            .set_session_owner("ses1", "user:u1")
            .await
            .expect("owner"),
        Some(false)
    );
    assert_eq!(
        store
            .set_session_owner("ses1", "user:u2")
            .await
            .expect("owner"),
        None,
        "never changed"
    );
    store.touch_session("ses1", 5_000).await.expect("touch");
    store
        .touch_session("ses1", 4_000)
        .await
        .expect("an older touch");
    let kept = store.session("ses1").await.expect("read").expect("found");
    assert_eq!(
        kept,
        SessionRow {
            owner: "user:u1".into(),
            touched_at: 5_000,
            ..row.clone()
        }
    );
    assert!(store.session("ses9").await.expect("read").is_none());
    assert!(
        store
            .sessions_ended_since(0)
            .await
            .expect("ended")
            .is_empty()
    );
    assert!(store.end_session("ses1", 6_000).await.expect("end"));
    assert!(!store.end_session("ses1", 7_000).await.expect("end again"));
    assert_eq!(
        store.sessions_ended_since(6_000).await.expect("ended"),
        [("ses1".to_string(), 6_000)]
    );
    assert!(
        store
            .sessions_ended_since(6_001)
            .await
            .expect("ended")
            .is_empty()
    );
    store
        .insert_session(&SessionRow {
            id: "ses2".into(),
            touched_at: 9_000,
            ..row.clone()
        })
        .await
        .expect("insert");
    assert_eq!(store.prune_sessions(8_000).await.expect("prune"), 1);
    assert!(store.session("ses2").await.expect("read").is_some());

    // (holder, now, until, taken, why)
    for (holder, now, until, taken, why) in [
        ("a", 100, 200, true, "free"),
        ("b", 150, 250, false, "held by a"),
        ("a", 150, 300, true, "a renews"),
        ("b", 300, 400, true, "a's ran out"),
        ("a", 350, 450, false, "held by b"),
    ] {
        let took = store
            .take_lease("prune", holder, now, until)
            .await
            .expect("lease");
        assert_eq!(took, taken, "{why}");
    }
}
