//! Databases of their own on the local PostgreSQL (127.0.0.1:5432, trust auth), one per test.

/// The server's maintenance database, as its superuser.
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Runs `sql` on the local PostgreSQL as its superuser.
pub fn psql(sql: &str) -> std::process::ExitStatus {
    std::process::Command::new("psql")
        .args([POSTGRES_ADMIN_URL, "-q", "-c", sql])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .status()
        .expect("psql runs")
}

/// Creates the local PostgreSQL database `name` afresh, and returns its URL.
pub fn fresh_database(name: &str) -> String {
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    assert!(psql(&format!("CREATE DATABASE {name}")).success());
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}
