//! Eval calls cached in the catalog across runs: a judge call, or a call of a route with a
//! registered prompt, is decided by its inputs alone (the route, the prompt's resolved version, the
//! variables, the sampling settings, the schema asked for), so a re-run with unchanged inputs reuses
//! the stored answer and makes no model call. App targets are not cached here: their answers also
//! depend on what retrieval finds, which changes when documents do (the pipeline's own answer cache
//! keys on the retrieved passages and serves those within a process).
//!
//! What is stored is what the harness got: answers with redacted values as placeholders.

use async_trait::async_trait;
use cairn_core::Catalog;
use cairn_core::eval::{Answerer, EvalAnswer, EvalCall, EvalCallError, EvalTarget};
use serde_json::json;
use sha2::{Digest, Sha256};

/// An [`Answerer`] that answers cacheable calls from the catalog when it can, and stores what the
/// inner answerer says to the rest.
pub struct CachingAnswerer<'a> {
    inner: &'a dyn Answerer,
    catalog: &'a dyn Catalog,
}

impl std::fmt::Debug for CachingAnswerer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingAnswerer")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<'a> CachingAnswerer<'a> {
    pub fn new(inner: &'a dyn Answerer, catalog: &'a dyn Catalog) -> CachingAnswerer<'a> {
        CachingAnswerer { inner, catalog }
    }

    /// The cache key of a call, or `None` when it is not cacheable: an app target, the cache
    /// refused (`--fresh`), or a prompt whose version cannot be resolved.
    async fn key(&self, target: &EvalTarget, call: &EvalCall) -> Option<String> {
        let EvalTarget::Model {
            route,
            prompt: Some(prompt),
        } = target
        else {
            return None;
        };
        if !call.use_cache {
            return None;
        }
        let name = prompt.split_once('@').map_or(prompt.as_str(), |(n, _)| n);
        let version = match call.prompt_pins.get(name) {
            Some(pinned) => *pinned,
            None => self.inner.prompt_version(prompt).await?,
        };
        let inputs = json!({
            "route": route,
            "prompt": name,
            "version": version,
            "question": call.question,
            "variables": call.variables,
            "response_format": call.response_format,
            "max_tokens": call.max_tokens,
            "temperature": call.temperature,
        });
        let digest = Sha256::digest(inputs.to_string().as_bytes());
        Some(format!("v1:{digest:x}"))
    }
}

#[async_trait]
impl Answerer for CachingAnswerer<'_> {
    async fn answer(
        &self,
        target: &EvalTarget,
        call: &EvalCall,
    ) -> Result<EvalAnswer, EvalCallError> {
        let Some(key) = self.key(target, call).await else {
            return self.inner.answer(target, call).await;
        };
        if let Ok(Some(stored)) = self.catalog.cached_eval_call(&key).await
            && let Ok(mut answer) = serde_json::from_value::<EvalAnswer>(stored)
        {
            answer.cached = true;
            answer.latency_ms = 0.0;
            answer.cost_usd = Some(0.0);
            return Ok(answer);
        }
        let answer = self.inner.answer(target, call).await?;
        if let Ok(stored) = serde_json::to_value(&answer)
            && let Err(e) = self.catalog.cache_eval_call(&key, stored).await
        {
            tracing::warn!(error = %e, "could not cache an eval call; the next run asks again");
        }
        Ok(answer)
    }

    async fn check(&self, target: &EvalTarget, call: &EvalCall) -> Result<(), EvalCallError> {
        self.inner.check(target, call).await
    }

    async fn prompt_version(&self, reference: &str) -> Option<i64> {
        self.inner.prompt_version(reference).await
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EvalCallError> {
        self.inner.embed(texts).await
    }
}
