//! Accounts (tenants) and their API keys; a key is shown once and stored only as its SHA-256.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;

/// The id of an account: every object in the store belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// An API key in clear, as handed to the account once. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// The prefix of every API key, so that leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "ck_";

impl ApiKey {
    /// Makes a key from 32 bytes of secure randomness.
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(format!(
            "{API_KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Wraps a key presented by a client; any string is accepted, the hash lookup decides.
    pub fn presented(raw: &str) -> Self {
        Self(raw.to_string())
    }

    /// The key in clear: only for showing to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the key is stored. Keys carry 256 bits of entropy, so a fast hash is
    /// enough: there is nothing to brute-force that a slow hash would protect.
    pub fn hash(&self) -> ApiKeyHash {
        let digest = Sha256::digest(self.0.as_bytes());
        ApiKeyHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The hex SHA-256 of an API key: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key_and_hash_is_stable() {
        let key = ApiKey::from_random([7; 32]);
        assert!(key.expose().starts_with(API_KEY_PREFIX));
        assert!(!format!("{key:?}").contains(key.expose()));
        assert_eq!(key.hash(), ApiKey::presented(key.expose()).hash());
        assert_eq!(key.hash().0.len(), 64);
    }
}
