//! Who may sign in: users (local, with Argon2id passwords, or from the external provider), the
//! sign-in itself with its rate limits, and browser sessions.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_store::{Store, StoreError, UserRow};

use crate::{
    Role,
    password::{PasswordError, decoy_hash, hash_password, new_password, verify_password},
    secret::{hash_credential, now_ms, random_credential},
};

/// How long a browser session lasts.
pub const BROWSER_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sign-in attempts per account: this many at once, then one per [`ACCOUNT_REFILL`].
const ACCOUNT_BURST: u32 = 5;
const ACCOUNT_REFILL: Duration = Duration::from_secs(60);
/// Sign-in attempts per client address: this many at once, then one per [`ADDRESS_REFILL`].
const ADDRESS_BURST: u32 = 20;
const ADDRESS_REFILL: Duration = Duration::from_secs(6);

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user is named `{0}`")]
    NotFound(String),
    #[error("the username `{0}` is taken")]
    Taken(String),
    #[error("a username has 1 to 64 letters, digits or `.`, `_`, `-`, `@`")]
    BadName,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Why a sign-in failed. The two kinds read the same to everyone but the rate limiter.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the username or password is not right")]
    Invalid,
    #[error("too many sign-in attempts; wait a minute and try again")]
    TooMany,
    #[error("the sign-in could not be checked; try again")]
    Store,
}

/// Sign-ins and browser sessions; cheap to clone.
#[derive(Debug, Clone)]
pub struct SignIn {
    store: Store,
    limits: std::sync::Arc<Limits>,
}

struct Limits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

fn quota(burst: u32, refill: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(refill)
        .unwrap_or_else(|| Quota::per_minute(burst))
        .allow_burst(burst)
}

impl SignIn {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            limits: std::sync::Arc::new(Limits {
                per_account: RateLimiter::keyed(quota(ACCOUNT_BURST, ACCOUNT_REFILL)),
                per_address: RateLimiter::keyed(quota(ADDRESS_BURST, ADDRESS_REFILL)),
            }),
        }
    }

    /// Forgets accounts and addresses whose attempts are long past, every
    /// [`crate::server::HOUSEKEEPING_EVERY`], so that sign-ins with made-up names do not grow
    /// the limiters for ever.
    pub fn spawn_housekeeping(&self) {
        let limits = self.limits.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::server::HOUSEKEEPING_EVERY);
            loop {
                tick.tick().await;
                limits.per_account.retain_recent();
                limits.per_account.shrink_to_fit();
                limits.per_address.retain_recent();
                limits.per_address.shrink_to_fit();
            }
        });
    }

    /// Checks a local user's password. Every attempt counts against the account and the
    /// address, whether or not the account exists.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<UserRow, LoginError> {
        let account = username.trim().to_lowercase();
        let address_ok = self.limits.per_address.check_key(&address).is_ok();
        let account_ok = self.limits.per_account.check_key(&account).is_ok();
        if !address_ok || !account_ok {
            return Err(LoginError::TooMany);
        }
        let user = self
            .store
            .user(username.trim())
            .await
            .map_err(|_| LoginError::Store)?;
        let hash = user.as_ref().and_then(|user| user.password_hash.clone());
        let password = password.to_string();
        // Argon2 takes tens of milliseconds of CPU: off the async workers.
        let matches = tokio::task::spawn_blocking(move || {
            verify_password(&password, hash.as_deref().unwrap_or_else(|| decoy_hash()))
        })
        .await
        .unwrap_or(false);
        match user {
            Some(user) if matches && !user.disabled => Ok(user),
            _ => Err(LoginError::Invalid),
        }
    }

    /// Opens a browser session; the value is the cookie's, and only its hash is stored.
    pub async fn start_session(&self, user_id: &str) -> Result<String, StoreError> {
        let cookie = random_credential("");
        let expires = now_ms() + i64::try_from(BROWSER_SESSION_TTL.as_millis()).unwrap_or(0);
        self.store
            .insert_browser_session(&hash_credential(&cookie), user_id, expires)
            .await?;
        Ok(cookie)
    }

    /// The signed-in user of a session cookie, if it is current and the user not disabled.
    pub async fn session_user(&self, cookie: &str) -> Result<Option<UserRow>, StoreError> {
        self.store
            .browser_session_user(&hash_credential(cookie), now_ms())
            .await
    }

    pub async fn end_session(&self, cookie: &str) -> Result<(), StoreError> {
        self.store
            .delete_browser_session(&hash_credential(cookie))
            .await
    }
}

/// How the first admin came to be, for the start-up banner.
#[derive(Debug)]
pub enum FirstAdmin {
    /// Users existed already.
    Existing,
    /// Made now with `SWITCHBOARD_ADMIN_PASSWORD`.
    FromEnvironment,
    /// Made now with this password, shown once.
    Created { password: String },
}

/// A password's hash, made on a blocking thread: Argon2 takes tens of milliseconds of CPU.
async fn hash_off_the_runtime(password: &str) -> Result<String, PasswordError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| PasswordError::Hash)?
}

/// The name of the admin user made at first start.
pub const FIRST_ADMIN: &str = "admin";

/// Makes the `admin` user when there are no users: with `password` if given, else with a new
/// one that the caller shows once. Replicas starting together make one (the name is unique).
pub async fn ensure_first_admin(
    store: &Store,
    password: Option<&str>,
) -> Result<FirstAdmin, UserError> {
    if store.count_users().await? > 0 {
        return Ok(FirstAdmin::Existing);
    }
    let (chosen, outcome) = match password.filter(|password| !password.is_empty()) {
        Some(password) => (password.to_string(), FirstAdmin::FromEnvironment),
        None => {
            let password = new_password();
            (password.clone(), FirstAdmin::Created { password })
        }
    };
    match add_user(store, FIRST_ADMIN, Role::Admin, Some(&chosen)).await {
        Ok(_) => Ok(outcome),
        Err(UserError::Taken(_)) => Ok(FirstAdmin::Existing),
        Err(error) => Err(error),
    }
}

fn check_username(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok { Ok(()) } else { Err(UserError::BadName) }
}

/// Adds a local user with `password`, or a new one returned to be shown once.
pub async fn add_user(
    store: &Store,
    username: &str,
    role: Role,
    password: Option<&str>,
) -> Result<(UserRow, Option<String>), UserError> {
    check_username(username)?;
    let generated = password.is_none().then(new_password);
    let chosen = password.or(generated.as_deref()).unwrap_or_default();
    let now = now_ms();
    let user = UserRow {
        id: random_credential("usr_")[..20].to_string(),
        username: username.to_string(),
        name: username.to_string(),
        email: String::new(),
        role: role.name().into(),
        password_hash: Some(hash_off_the_runtime(chosen).await?),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    store
        .insert_user(&user)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => UserError::Taken(username.to_string()),
            error => UserError::Store(error),
        })?;
    Ok((user, generated))
}

async fn existing(store: &Store, username: &str) -> Result<UserRow, UserError> {
    store
        .user(username)
        .await?
        .ok_or_else(|| UserError::NotFound(username.to_string()))
}

/// Sets a user's password (a new one, returned, when `password` is `None`), and ends their
/// browser sessions.
pub async fn reset_password(
    store: &Store,
    username: &str,
    password: Option<&str>,
) -> Result<Option<String>, UserError> {
    let mut user = existing(store, username).await?;
    let generated = password.is_none().then(new_password);
    let chosen = password.or(generated.as_deref()).unwrap_or_default();
    user.password_hash = Some(hash_off_the_runtime(chosen).await?);
    user.updated_at = now_ms();
    store.update_user(&user).await?;
    store.delete_user_browser_sessions(&user.id).await?;
    Ok(generated)
}

/// Gives a user another role. The tokens they hold name the old one: they are revoked (as a
/// disabled user's are), so that the next token their clients get names the new role.
pub async fn set_role(
    store: &Store,
    username: &str,
    role: Role,
    access_ttl: Duration,
) -> Result<UserRow, UserError> {
    let mut user = existing(store, username).await?;
    if Role::of(&user) == role {
        return Ok(user);
    }
    user.role = role.name().into();
    user.updated_at = now_ms();
    store.update_user(&user).await?;
    revoke_tokens_of(store, &user.id, access_ttl).await?;
    // Their API keys act with the new role on every replica at its next reload.
    store.touch_access().await?;
    Ok(user)
}

async fn revoke_tokens_of(
    store: &Store,
    user_id: &str,
    access_ttl: Duration,
) -> Result<(), UserError> {
    let families: Vec<String> = store
        .live_families(user_id, None)
        .await?
        .into_iter()
        .map(|family| family.id)
        .collect();
    crate::server::revoke_families(store, &families, access_ttl).await?;
    Ok(())
}

/// Disables (or enables) a user. Disabling ends their browser sessions and revokes every token
/// they hold: at once for refresh tokens, within two seconds on every replica for access tokens.
pub async fn set_disabled(
    store: &Store,
    username: &str,
    disabled: bool,
    access_ttl: Duration,
) -> Result<UserRow, UserError> {
    let mut user = existing(store, username).await?;
    user.disabled = disabled;
    user.updated_at = now_ms();
    store.update_user(&user).await?;
    if disabled {
        store.delete_user_browser_sessions(&user.id).await?;
        revoke_tokens_of(store, &user.id, access_ttl).await?;
    }
    // Their API keys stop (or work again) on every replica at its next reload.
    store.touch_access().await?;
    Ok(user)
}
