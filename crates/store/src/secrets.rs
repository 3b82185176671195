//! Secrets at rest: sealed with XChaCha20-Poly1305 under a 256-bit key that never enters the
//! database. The key comes from `SWITCHBOARD_SECRET_KEY` (64 hex characters) or a key file made at
//! first start with mode 0600.

use std::{io::Write as _, path::Path};

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, OsRng},
};

/// The format tag of a sealed value, so that a later format can be told apart.
const SEALED_PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("the secret key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("a sealed value cannot be opened: wrong key or damaged data")]
    Open,
    #[error("cannot read or create the key file: {0}")]
    KeyFile(#[from] std::io::Error),
}

/// Seals and opens secret values. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Kept to derive the keys of other purposes ([`SecretBox::derive`]).
    key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key>)")
    }
}

impl SecretBox {
    pub fn from_hex(key: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(key.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            key,
        }
    }

    /// A box with a key of its own for `purpose`, derived from this one (SHA-256 of the purpose
    /// and the key), so that what one purpose seals another cannot open: access tokens are not
    /// secrets at rest.
    pub fn derive(&self, purpose: &str) -> SecretBox {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"switchboard key for ");
        hasher.update(purpose.as_bytes());
        hasher.update([0]);
        hasher.update(self.key);
        Self::from_key(hasher.finalize().into())
    }

    /// The key from the environment's value, or from `path`, made there (mode 0600) if absent.
    /// Returns whether a new key file was made.
    pub fn load_or_create(from_env: Option<&str>, path: &Path) -> Result<(Self, bool), SealError> {
        if let Some(key) = from_env.filter(|key| !key.is_empty()) {
            return Ok((Self::from_hex(key)?, false));
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_hex(&text)?, false)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                let encoded = hex::encode(key);
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(encoded.as_bytes())?;
                file.sync_all()?;
                Ok((Self::from_hex(&encoded)?, true))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Seals a value: a fresh random nonce each time, so equal secrets never look equal at rest.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        format!("{SEALED_PREFIX}{}", hex::encode(self.seal_bytes(plaintext)))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or(SealError::Open)?;
        let bytes = hex::decode(body).map_err(|_| SealError::Open)?;
        self.open_bytes(&bytes)
    }

    /// Seals to bytes: the nonce, then the ciphertext with its tag.
    pub fn seal_bytes(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption of a byte slice in memory cannot fail.
        let sealed = self.cipher.encrypt(&nonce, plaintext).unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        bytes
    }

    pub fn open_bytes(&self, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        if bytes.len() < 24 {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_hides_the_value() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret.key");
        let (sealer, created) = SecretBox::load_or_create(None, &path).expect("key made");
        assert!(created);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let sealed = sealer.seal(b"hunter2-token");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            sealer.seal(b"hunter2-token"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed).expect("opens"), b"hunter2-token");

        let (again, created) = SecretBox::load_or_create(None, &path).expect("key read");
        assert!(!created);
        assert_eq!(again.open(&sealed).expect("opens"), b"hunter2-token");

        let other = SecretBox::from_hex(&"11".repeat(32)).expect("key");
        assert!(matches!(other.open(&sealed), Err(SealError::Open)));
        assert!(matches!(SecretBox::from_hex("abc"), Err(SealError::BadKey)));
        assert!(!format!("{sealer:?}").contains(&std::fs::read_to_string(&path).expect("key")));

        let tokens = sealer.derive("tokens");
        let sealed = tokens.seal(b"claims");
        assert_eq!(
            sealer.derive("tokens").open(&sealed).expect("same purpose"),
            b"claims"
        );
        assert!(
            sealer.open(&sealed).is_err(),
            "the parent key cannot open it"
        );
        assert!(sealer.derive("other").open(&sealed).is_err());
    }
}
