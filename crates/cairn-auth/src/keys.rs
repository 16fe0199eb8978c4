//! API keys: generated once, shown once, stored as a SHA-256 hash with a recognisable prefix.

use cairn_core::catalog::NewApiKey;
use sha2::{Digest, Sha256};

/// Every key starts with this, so that secret scanners and people can recognise one.
pub const KEY_PREFIX: &str = "cairn_";

/// Characters of the key kept in listings (`cairn_` and four more).
const SHOWN: usize = 10;

/// A new key: the secret to show once, and what the catalog stores.
#[derive(Debug)]
pub struct GeneratedKey {
    pub secret: String,
    pub record: NewApiKey,
}

/// Makes a key with 244 random bits from the operating system's generator (two version-4 UUIDs).
pub fn generate(
    name: &str,
    tools: Vec<String>,
    collections: Vec<String>,
    roles: &[crate::Role],
) -> GeneratedKey {
    let secret = format!(
        "{KEY_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let record = NewApiKey {
        name: name.to_owned(),
        prefix: secret.chars().take(SHOWN).collect(),
        key_hash: hash(&secret),
        tools,
        collections,
        roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
    };
    GeneratedKey { secret, record }
}

/// The stored form of a key: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_prefixed_and_stored_only_as_their_hash() {
        let a = generate("ci", vec![], vec!["*".into()], &[crate::Role::Read]);
        let b = generate("ci", vec![], vec!["*".into()], &[crate::Role::Read]);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(KEY_PREFIX));
        assert_eq!(a.secret.len(), KEY_PREFIX.len() + 64);
        assert_eq!(a.record.key_hash, hash(&a.secret));
        assert_eq!(a.record.key_hash.len(), 64);
        assert!(!a.record.key_hash.contains(&a.secret[KEY_PREFIX.len()..]));
        assert!(a.secret.starts_with(&a.record.prefix));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
