//! Remote embeddings with the gateway's policy for transient failures: a rate limit, a timeout or
//! a 5xx is retried with jittered exponential backoff (at least as long as the provider asked),
//! within a total deadline, so one 429 from a provider does not fail the documents of an ingest.
//! Requests the provider refuses as wrong are not retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use cairn_core::ModelError;
use cairn_core::model::EmbeddingModel;

/// How a [`RetryingEmbedder`] retries.
#[derive(Debug, Clone, Copy)]
pub struct EmbedRetry {
    /// Calls at most, the first included.
    pub attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The whole call, waits included.
    pub deadline: Duration,
}

impl Default for EmbedRetry {
    fn default() -> Self {
        EmbedRetry {
            attempts: 5,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
            deadline: Duration::from_secs(120),
        }
    }
}

/// An embedding model whose transient failures are retried.
#[derive(Debug)]
pub struct RetryingEmbedder {
    inner: Arc<dyn EmbeddingModel>,
    retry: EmbedRetry,
}

impl RetryingEmbedder {
    pub fn new(inner: Arc<dyn EmbeddingModel>, retry: EmbedRetry) -> RetryingEmbedder {
        RetryingEmbedder { inner, retry }
    }
}

#[async_trait]
impl EmbeddingModel for RetryingEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        let deadline = Instant::now() + self.retry.deadline;
        let mut delays = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.retry.min_backoff)
            .with_max_delay(self.retry.max_backoff)
            .with_max_times(self.retry.attempts.saturating_sub(1) as usize)
            .build();
        loop {
            let error = match self.inner.embed_documents(texts).await {
                Ok(vectors) => return Ok(vectors),
                Err(error) if error.is_retryable() => error,
                Err(error) => return Err(error),
            };
            let asked = match &error {
                ModelError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            let delay = asked.map_or(delay, |wait| wait.max(delay));
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            metrics::counter!("cairn_embedding_retries_total", "model" => self.inner.model_id().to_owned(), "class" => error.class())
                .increment(1);
            tracing::warn!(
                model = self.inner.model_id(),
                "embedding call failed, retrying in {} ms: {error}",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let mut vectors = self.embed_documents(&[text.to_owned()]).await?;
        vectors
            .pop()
            .ok_or_else(|| ModelError::Permanent("embedding model returned no vector".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Fails with the queued errors, then embeds.
    #[derive(Debug)]
    struct Flaky {
        failures: Mutex<Vec<ModelError>>,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl EmbeddingModel for Flaky {
        fn model_id(&self) -> &str {
            "flaky"
        }

        fn dimension(&self) -> usize {
            2
        }

        async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
            *self.calls.lock().expect("lock") += 1;
            match self.failures.lock().expect("lock").pop() {
                Some(error) => Err(error),
                None => Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect()),
            }
        }
    }

    fn flaky(failures: Vec<ModelError>) -> Arc<Flaky> {
        Arc::new(Flaky {
            failures: Mutex::new(failures),
            calls: Mutex::new(0),
        })
    }

    fn quick() -> EmbedRetry {
        EmbedRetry {
            attempts: 4,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            deadline: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn transient_failures_and_rate_limits_are_retried_and_bad_requests_are_not() {
        let model = flaky(vec![
            ModelError::Transient("reset".into()),
            ModelError::RateLimited {
                retry_after: Some(Duration::from_millis(20)),
            },
        ]);
        let retrying = RetryingEmbedder::new(model.clone(), quick());
        let started = Instant::now();
        let vectors = retrying
            .embed_documents(&["a".into()])
            .await
            .expect("the third call works");
        assert_eq!(vectors, vec![vec![1.0, 0.0]]);
        assert_eq!(*model.calls.lock().expect("lock"), 3);
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "the wait the provider asked for was honoured"
        );

        let model = flaky(vec![ModelError::InvalidRequest("too long".into())]);
        let retrying = RetryingEmbedder::new(model.clone(), quick());
        let error = retrying
            .embed_documents(&["a".into()])
            .await
            .expect_err("refused");
        assert_eq!(error, ModelError::InvalidRequest("too long".into()));
        assert_eq!(*model.calls.lock().expect("lock"), 1);
    }

    #[tokio::test]
    async fn retries_stop_at_the_attempt_limit() {
        let model = flaky(
            (0..10)
                .map(|_| ModelError::Transient("down".into()))
                .collect(),
        );
        let retrying = RetryingEmbedder::new(model.clone(), quick());
        assert!(retrying.embed_documents(&["a".into()]).await.is_err());
        assert_eq!(*model.calls.lock().expect("lock"), 4);
    }
}
