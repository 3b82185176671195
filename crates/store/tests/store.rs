//! The same store suite on both backends: a SQLite file, and the local PostgreSQL with a database
//! made for this run and dropped after it.

use serde_json::json;
use switchboard_store::{Backend, ServerRow, Store, StoreError};

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

async fn suite(store: &Store) {
    // Migrations ran; an empty store answers.
    store.ping().await.expect("ping");
    assert!(store.servers().await.expect("list").is_empty());

    let first = row("ms1", "alpha");
    store.insert_server(&first).await.expect("insert");
    assert_eq!(store.server("ms1").await.expect("get"), Some(first.clone()));
    assert_eq!(
        store.server("alpha").await.expect("by alias"),
        Some(first.clone())
    );
    assert_eq!(store.server("nope").await.expect("get"), None);

    // A duplicate alias is a conflict, and leaves the store as it was.
    let clash = row("ms2", "alpha");
    assert!(matches!(
        store.insert_server(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.servers().await.expect("list").len(), 1);

    let mut second = row("ms2", "beta");
    second.created_at += 1;
    store.insert_server(&second).await.expect("insert");
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
    assert!(store.update_server(&changed).await.expect("update"));
    assert_eq!(
        store.server("ms2").await.expect("get"),
        Some(changed.clone())
    );
    changed.alias = "alpha".into();
    assert!(matches!(
        store.update_server(&changed).await,
        Err(StoreError::Conflict(_))
    ));
    let mut missing = row("ms9", "gamma");
    missing.name = "ghost".into();
    assert!(!store.update_server(&missing).await.expect("update"));

    assert!(store.delete_server("ms1").await.expect("delete"));
    assert!(!store.delete_server("ms1").await.expect("delete again"));

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
    sqlx::query(&format!("DROP DATABASE {database}"))
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
