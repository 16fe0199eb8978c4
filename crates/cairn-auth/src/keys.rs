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

/// What a new key is asked to be, checked: at least one role and only known ones, tools among
/// `known_tools` (none: all), collection names that are names (or `*`). The message says what to
/// fix. Shared by `cairn key create` and `POST /v1/keys`.
pub fn checked(
    name: &str,
    roles: &[String],
    tools: &[String],
    collections: &[String],
    known_tools: &[&str],
) -> Result<GeneratedKey, String> {
    cairn_core::catalog::validate_name("API key", name).map_err(|e| e.to_string())?;
    let trimmed = |list: &[String]| -> Vec<String> {
        list.iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    };
    let roles = trimmed(roles)
        .iter()
        .map(|role| crate::Role::parse(role))
        .collect::<Result<Vec<_>, _>>()?;
    if roles.is_empty() {
        return Err("a key needs at least one role: read, write, prompt_admin or admin".into());
    }
    let tools = trimmed(tools);
    if let Some(unknown) = tools.iter().find(|t| !known_tools.contains(&t.as_str())) {
        return Err(format!(
            "`{unknown}` is not a tool; tools: {}",
            known_tools.join(", ")
        ));
    }
    let collections = trimmed(collections);
    for collection in collections.iter().filter(|c| *c != crate::ALL_COLLECTIONS) {
        cairn_core::catalog::validate_name("collection", collection).map_err(|e| e.to_string())?;
    }
    Ok(generate(name, tools, collections, &roles))
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
    fn requests_for_keys_are_checked_before_one_is_made() {
        let tools = ["search_knowledge", "answer_question"];
        let ok = checked(
            "ci",
            &["read".into(), " write ".into()],
            &[],
            &["*".into()],
            &tools,
        )
        .expect("a key");
        assert_eq!(ok.record.roles, ["read", "write"]);
        let refused = |roles: &[&str], tools_asked: &[&str], collections: &[&str]| {
            let owned = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
            checked(
                "ci",
                &owned(roles),
                &owned(tools_asked),
                &owned(collections),
                &tools,
            )
            .expect_err("refused")
        };
        assert!(refused(&[], &[], &[]).contains("at least one role"));
        assert!(refused(&["root"], &[], &[]).contains("not a role"));
        assert!(refused(&["read"], &["rm_rf"], &[]).contains("`rm_rf` is not a tool"));
        assert!(refused(&["read"], &[], &["Bad Name"]).contains("invalid collection name"));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
