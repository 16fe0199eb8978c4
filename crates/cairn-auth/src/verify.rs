//! Verifying a presented key against the catalog, with the verified keys remembered for a short
//! time so that a call with a key does not wait for the catalog each time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_core::catalog::ApiKey;
use cairn_core::{Catalog, CatalogError};

use crate::keys;

/// How long a verified key is trusted before the catalog is asked again (so a revoked key stops
/// working within this time on every replica).
const KEY_TTL: Duration = Duration::from_secs(30);

/// Verified keys kept at most; past this, expired ones are dropped first.
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
#[derive(Debug, Default)]
pub struct KeyVerifier {
    verified: Mutex<HashMap<String, (ApiKey, Instant)>>,
}

impl KeyVerifier {
    /// Forgets what was verified of the key named `name` (it was just revoked here): this process
    /// refuses it from the next request; other replicas within [`KEY_TTL`].
    pub fn forget(&self, name: &str) {
        if let Ok(mut verified) = self.verified.lock() {
            verified.retain(|_, (key, _)| key.name != name);
        }
    }

    /// The active key whose secret was presented.
    pub async fn verify(&self, catalog: &dyn Catalog, secret: &str) -> Result<ApiKey, AuthError> {
        let hash = keys::hash(secret);
        if let Ok(verified) = self.verified.lock()
            && let Some((key, at)) = verified.get(&hash)
            && at.elapsed() < KEY_TTL
        {
            return Ok(key.clone());
        }
        let key = catalog
            .find_active_api_key(&hash)
            .await?
            .ok_or(AuthError::UnknownKey)?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() > MAX_CACHED {
                verified.retain(|_, (_, at)| at.elapsed() < KEY_TTL);
            }
            verified.insert(hash, (key.clone(), Instant::now()));
        }
        Ok(key)
    }
}
