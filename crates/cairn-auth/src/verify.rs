//! Verifying a presented key against the catalog, with the verified keys remembered for a short
//! time so that a call with a key does not wait for the catalog each time (a concurrent cache,
//! quick_cache, bounded in entries; an entry past its time is asked again).

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use cairn_core::catalog::ApiKey;
use cairn_core::{Catalog, CatalogError};

use crate::keys;

/// How long a verified key is trusted before the catalog is asked again (so a revoked key stops
/// working within this time on every replica).
const KEY_TTL: Duration = Duration::from_secs(30);

/// Verified keys kept at most; past this, the cache drops those least likely to be used again.
const MAX_CACHED: usize = 10_000;

/// Why a presented key was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the API key is not known or has been revoked; create one with `cairn key create`")]
    UnknownKey,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Verifies API keys; one per process, shared by every front door.
#[derive(Debug)]
pub struct KeyVerifier {
    /// By the hash of the secret.
    verified: Cache<String, (ApiKey, Instant)>,
}

impl Default for KeyVerifier {
    fn default() -> Self {
        KeyVerifier {
            verified: Cache::new(MAX_CACHED),
        }
    }
}

impl KeyVerifier {
    /// Forgets what was verified of the key named `name` (it was just revoked here): this process
    /// refuses it from the next request; other replicas within [`KEY_TTL`].
    pub fn forget(&self, name: &str) {
        self.verified.retain(|_, (key, _)| key.name != name);
    }

    /// The active key whose secret was presented.
    pub async fn verify(&self, catalog: &dyn Catalog, secret: &str) -> Result<ApiKey, AuthError> {
        let hash = keys::hash(secret);
        if let Some((key, at)) = self.verified.get(&hash)
            && at.elapsed() < KEY_TTL
        {
            return Ok(key);
        }
        let key = catalog
            .find_active_api_key(&hash)
            .await?
            .ok_or(AuthError::UnknownKey)?;
        self.verified.insert(hash, (key.clone(), Instant::now()));
        Ok(key)
    }
}
