//! One module per subcommand.

pub mod call;
pub mod run;
pub mod serve;
pub mod tools;
pub mod users;

use std::io::Write as _;

/// Writes a command's output to stdout. A closed pipe (`switchboard tools | head`) ends the output
/// quietly instead of panicking.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Where the data and the store are: `serve`'s and `users`'s.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Where Switchboard keeps its data.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The store: `sqlite://PATH` or `postgres://…`; a SQLite file in the data directory by
    /// default.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
}

impl StoreArgs {
    /// Opens (and migrates) the store, making the data directory if needed; returns the store
    /// and the data directory.
    pub async fn open(&self) -> anyhow::Result<(switchboard_store::Store, std::path::PathBuf)> {
        use anyhow::Context as _;
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let database = match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data_dir.join("switchboard.db").display()),
        };
        let store = switchboard_store::Store::open(&database)
            .await
            .context("cannot open the store")?;
        Ok((store, data_dir))
    }
}

/// `$XDG_DATA_HOME/switchboard`, or `~/.local/share/switchboard`.
fn default_data_dir() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(std::path::PathBuf::from(dir).join("switchboard"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no --data-dir given and HOME is not set")?;
    Ok(std::path::PathBuf::from(home).join(".local/share/switchboard"))
}
