//! Who is calling. Until sign-in lands, the one credential is the admin token.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use axum::{extract::FromRequestParts, http::request::Parts};
use sha2::{Digest, Sha256};

use crate::{AppState, error::ApiError};

/// The file, in the data directory, that holds the admin token's SHA-256.
const ADMIN_TOKEN_FILE: &str = "admin-token.sha256";

/// Checks bearer tokens against the admin token's hash; the token itself is never kept.
#[derive(Clone)]
pub struct AdminAuth {
    hash: [u8; 32],
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuth(<hash>)")
    }
}

/// Where the admin token came from.
#[derive(Debug)]
pub enum AdminTokenSource {
    /// `SWITCHBOARD_ADMIN_TOKEN`.
    Environment,
    /// The hash stored at an earlier start.
    Stored(PathBuf),
    /// Made now: shown once to the operator, only its hash stored.
    Created { token: String, path: PathBuf },
}

impl AdminAuth {
    pub fn from_token(token: &str) -> Self {
        Self {
            hash: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// The admin token from the environment's value, or the stored hash, or a new token whose
    /// hash is stored with mode 0600.
    pub fn load_or_create(
        from_env: Option<&str>,
        data_dir: &Path,
    ) -> std::io::Result<(Self, AdminTokenSource)> {
        if let Some(token) = from_env.filter(|token| !token.is_empty()) {
            return Ok((Self::from_token(token), AdminTokenSource::Environment));
        }
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                let hash = bytes.ok_or_else(|| {
                    std::io::Error::other(format!("{} is not a SHA-256 hash", path.display()))
                })?;
                Ok((Self { hash }, AdminTokenSource::Stored(path)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let token = new_token();
                let auth = Self::from_token(&token);
                write_private(&path, hex::encode(auth.hash).as_bytes())?;
                Ok((auth, AdminTokenSource::Created { token, path }))
            }
            Err(error) => Err(error),
        }
    }

    fn verify(&self, token: &str) -> bool {
        // Comparing digests: timing reveals nothing about the token itself.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        digest == self.hash
    }
}

/// 256 random bits from the OS (UUID v4 draws on `getrandom`), as `sb_` and hex.
fn new_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("sb_{}{}", a.simple(), b.simple())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whether the caller holds the admin token: everything is allowed.
    pub admin: bool,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        if state.admin.verify(token) {
            Ok(Caller { admin: true })
        } else {
            Err(ApiError::unauthorized("the token is not valid"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_and_stored_hashed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (auth, source) = AdminAuth::load_or_create(None, dir.path()).expect("created");
        let AdminTokenSource::Created { token, path } = source else {
            panic!("a new token expected");
        };
        assert!(auth.verify(&token));
        let stored = std::fs::read_to_string(&path).expect("stored");
        assert!(!stored.contains(&token));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let (again, source) = AdminAuth::load_or_create(None, dir.path()).expect("loaded");
        assert!(matches!(source, AdminTokenSource::Stored(_)));
        assert!(again.verify(&token));
        assert!(!again.verify("wrong"));

        let (from_env, source) =
            AdminAuth::load_or_create(Some("env-token"), dir.path()).expect("env");
        assert!(matches!(source, AdminTokenSource::Environment));
        assert!(from_env.verify("env-token"));
    }
}
