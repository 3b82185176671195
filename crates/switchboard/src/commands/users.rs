//! `switchboard users`: local users, managed on the store directly (a running gateway sees the
//! changes; a disabled user's tokens stop within two seconds on every replica).

use std::{io::Read as _, process::ExitCode, time::Duration};

use anyhow::Context as _;
use switchboard_auth::{Role, sign_in};

use super::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add a local user; prints a new password unless one is given on stdin.
    Add {
        username: String,
        #[arg(long, value_parser = ["admin", "user"], default_value = "user")]
        role: String,
        /// Read the password from standard input (never from the command line, where other
        /// users of the machine could see it).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List,
    /// Disable a user: their sessions end and every token they hold is revoked.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Give a user a new password (printed, unless one is given on stdin).
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// The longest an access token can have been issued for: revocations are listed that long.
const LONGEST_ACCESS_TTL: Duration = Duration::from_secs(86_400);

fn password_from_stdin(wanted: bool) -> anyhow::Result<Option<String>> {
    if !wanted {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from stdin")?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (store, _) = args.store.open().await?;
    let out = match args.command {
        Command::Add {
            username,
            role,
            password_stdin,
        } => {
            let role = Role::parse(&role).unwrap_or(Role::User);
            let password = password_from_stdin(password_stdin)?;
            let (user, generated) =
                sign_in::add_user(&store, &username, role, password.as_deref()).await?;
            match generated {
                Some(password) => format!(
                    "user `{}` added ({}); password (shown once): {password}\n",
                    user.username, user.role
                ),
                None => format!("user `{}` added ({})\n", user.username, user.role),
            }
        }
        Command::List => {
            let mut out = format!(
                "{:<32} {:<6} {:<9} {}\n",
                "USERNAME", "ROLE", "STATUS", "EMAIL"
            );
            for user in store.users().await? {
                let status = if user.disabled { "disabled" } else { "active" };
                out.push_str(&format!(
                    "{:<32} {:<6} {:<9} {}\n",
                    user.username, user.role, status, user.email
                ));
            }
            out
        }
        Command::Disable { username } => {
            sign_in::set_disabled(&store, &username, true, LONGEST_ACCESS_TTL).await?;
            format!("user `{username}` disabled; their sessions and tokens are revoked\n")
        }
        Command::Enable { username } => {
            sign_in::set_disabled(&store, &username, false, LONGEST_ACCESS_TTL).await?;
            format!("user `{username}` enabled\n")
        }
        Command::ResetPassword {
            username,
            password_stdin,
        } => {
            let password = password_from_stdin(password_stdin)?;
            match sign_in::reset_password(&store, &username, password.as_deref()).await? {
                Some(password) => {
                    format!("new password for `{username}` (shown once): {password}\n")
                }
                None => format!("password of `{username}` changed\n"),
            }
        }
    };
    store.close().await;
    super::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
