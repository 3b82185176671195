//! Passwords: Argon2id hashes in PHC form, with OWASP's configuration of 7 MiB and five passes
//! (its password storage cheat sheet lists it as equal in defense to 19 MiB and two passes): a
//! hash then touches 7 MiB, not 19. A hash of other parameters (an older one) still verifies:
//! they are read from the hash itself.
//!
//! Hashes run one at a time (a lock), each in a block of its own that is given back to the
//! system when it ends: a gateway holds no hashing memory between sign-ins, and a burst of them
//! holds one block, not one per thread. For glibc's malloc to give it back, the block is
//! reserved at 32 MiB of address space, the most its adaptive threshold reaches, which it
//! always maps apart and unmaps on free; only the blocks a hash uses are touched. A smaller block
//! would, from the second hash on, come from and stay in the arena of the thread that hashed
//! (measured before: a gateway's RSS grew by the block per thread with sign-ins). Callers on the
//! async runtime run it on a blocking thread.

use std::sync::{Mutex, PoisonError};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, SaltString, rand_core::OsRng},
};

/// The shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password could not be hashed")]
    Hash,
}

/// The parameters of new hashes: 7 MiB, five passes, one lane.
fn hashing_params() -> Result<Params, PasswordError> {
    Params::new(7 * 1024, 5, 1, None).map_err(|_| PasswordError::Hash)
}

/// Held while a hash runs: one at a time.
static HASHING: Mutex<()> = Mutex::new(());

/// The address space reserved for a hash's block, in blocks of 1 KiB: 32 MiB, glibc's
/// `DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit systems (see the module's doc).
const RESERVED_BLOCKS: usize = 32 * 1024;

/// Argon2id with `params` into `out`, in a block of its own.
fn derive(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), PasswordError> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let _one_at_a_time = HASHING.lock().unwrap_or_else(PoisonError::into_inner);
    let mut memory: Vec<Block> = Vec::with_capacity(blocks.max(RESERVED_BLOCKS));
    memory.resize(blocks, Block::default());
    argon2
        .hash_password_into_with_memory(password, salt, out, &mut memory)
        .map_err(|_| PasswordError::Hash)
}

/// The PHC string of a new password's Argon2id hash.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt
        .decode_b64(&mut raw_salt)
        .map_err(|_| PasswordError::Hash)?;
    let params = hashing_params()?;
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    derive(params.clone(), password.as_bytes(), raw_salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params.try_into().map_err(|_| PasswordError::Hash)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| PasswordError::Hash)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` is the one `phc` was made from; false for a malformed hash or one of
/// another algorithm.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut raw_salt = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    derive(params, password.as_bytes(), raw_salt, &mut out).is_ok()
        && crate::secret::constant_time_eq_bytes(&out, expected.as_bytes())
}

/// A hash that matches no password, checked when a sign-in names no user, so that the answer
/// takes as long as for a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&crate::secret::random_credential("")).unwrap_or_default())
}

/// A password for a user who has none yet: 24 random characters, shown once.
pub fn new_password() -> String {
    crate::secret::random_credential("")[..24].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify_only_their_password() {
        let hash = hash_password("correct horse battery").expect("hashed");
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert!(!verify_password("", decoy_hash()));
        // A hash made by the crate's own hasher verifies too (the stored form is the same).
        use argon2::PasswordHasher as _;
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery", &SaltString::generate(&mut OsRng))
            .expect("hashed")
            .to_string();
        assert!(verify_password("correct horse battery", &theirs));
        assert!(!verify_password("correct horse batterx", &theirs));
        assert_eq!(new_password().len(), 24);
    }
}
