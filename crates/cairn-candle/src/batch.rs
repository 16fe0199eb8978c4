//! Dynamic batching: concurrent callers share forward passes.
//!
//! A worker task takes the first waiting request, then gathers more for a short window (or until
//! the batch is full) and runs them through the model together. Inputs are sorted by length before
//! they are cut into batches, so a batch pads little; results go back to each caller in its own
//! order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// Something that encodes a batch of texts in one pass (blocking; run off the async runtime).
pub trait Encoder: Send + Sync + 'static {
    type Output: Send + 'static;
    fn encode(&self, texts: &[String]) -> Result<Vec<Self::Output>, String>;
}

/// How requests are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// The most texts in one forward pass.
    pub max_batch: usize,
    /// How long the first request of a batch waits for company.
    pub window: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_batch: 32,
            window: Duration::from_millis(2),
        }
    }
}

type Reply<O> = oneshot::Sender<Result<Vec<O>, String>>;

struct Job<O> {
    texts: Vec<String>,
    reply: Reply<O>,
}

/// The handle callers use; cheap to clone. The worker stops when every handle is dropped.
#[derive(Debug)]
pub struct Batcher<O> {
    jobs: mpsc::Sender<Job<O>>,
    passes: Arc<AtomicU64>,
}

impl<O> Clone for Batcher<O> {
    fn clone(&self) -> Self {
        Batcher {
            jobs: self.jobs.clone(),
            passes: self.passes.clone(),
        }
    }
}

impl<O: Send + 'static> Batcher<O> {
    /// Starts the worker on the current tokio runtime.
    pub fn spawn<E: Encoder<Output = O>>(encoder: Arc<E>, settings: BatchSettings) -> Self {
        let settings = BatchSettings {
            max_batch: settings.max_batch.max(1),
            ..settings
        };
        let (jobs, receiver) = mpsc::channel(1024);
        let passes = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(encoder, settings, receiver, passes.clone()));
        Batcher { jobs, passes }
    }

    /// Encodes `texts`, sharing forward passes with concurrent callers.
    pub async fn encode(&self, texts: Vec<String>) -> Result<Vec<O>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { texts, reply })
            .await
            .map_err(|_| "the model worker has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the model worker dropped the request".to_owned())?
    }

    /// How many forward passes the worker has run.
    pub fn forward_passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }
}

async fn run<E: Encoder>(
    encoder: Arc<E>,
    settings: BatchSettings,
    mut receiver: mpsc::Receiver<Job<E::Output>>,
    passes: Arc<AtomicU64>,
) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        let mut size = jobs[0].texts.len();
        let deadline = tokio::time::Instant::now() + settings.window;
        while size < settings.max_batch {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(job)) => {
                    size += job.texts.len();
                    jobs.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let encoder = encoder.clone();
        let passes = passes.clone();
        let max_batch = settings.max_batch;
        // The blocking pool runs the pass; this task waits so that passes do not overlap (the
        // model already uses every core).
        let done = tokio::task::spawn_blocking(move || {
            let texts: Vec<&String> = jobs.iter().flat_map(|j| &j.texts).collect();
            let result = encode_sorted(&*encoder, &texts, max_batch, &passes);
            scatter(jobs, result);
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "embedding batch panicked");
        }
    }
}

/// Encodes texts in batches of similar length, returning outputs in input order.
fn encode_sorted<E: Encoder>(
    encoder: &E,
    texts: &[&String],
    max_batch: usize,
    passes: &AtomicU64,
) -> Result<Vec<E::Output>, String> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut slots: Vec<Option<E::Output>> = (0..texts.len()).map(|_| None).collect();
    for group in order.chunks(max_batch) {
        let batch: Vec<String> = group.iter().map(|&i| texts[i].clone()).collect();
        passes.fetch_add(1, Ordering::Relaxed);
        let outputs = encoder.encode(&batch)?;
        if outputs.len() != batch.len() {
            return Err(format!(
                "the model returned {} outputs for {} inputs",
                outputs.len(),
                batch.len()
            ));
        }
        for (&i, output) in group.iter().zip(outputs) {
            slots[i] = Some(output);
        }
    }
    slots
        .into_iter()
        .map(|s| s.ok_or_else(|| "an input got no output".to_owned()))
        .collect()
}

fn scatter<O>(jobs: Vec<Job<O>>, result: Result<Vec<O>, String>) {
    match result {
        Ok(outputs) => {
            let mut outputs = outputs.into_iter();
            for job in jobs {
                let mine: Vec<O> = outputs.by_ref().take(job.texts.len()).collect();
                // A caller that went away no longer needs its answer.
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(message) => {
            for job in jobs {
                let _ = job.reply.send(Err(message.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns each text's length, and fails on the text "boom".
    struct Lengths;

    impl Encoder for Lengths {
        type Output = usize;
        fn encode(&self, texts: &[String]) -> Result<Vec<usize>, String> {
            std::thread::sleep(Duration::from_millis(5));
            if texts.iter().any(|t| t == "boom") {
                return Err("cannot encode boom".into());
            }
            Ok(texts.iter().map(String::len).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_passes_and_get_their_own_answers() {
        // 16 callers of two texts fill one batch of 32 exactly: the worker gathers until the batch
        // is full, whenever each caller arrives; the window is long enough that only a hang (a
        // caller that never arrives) would reach it.
        let settings = BatchSettings {
            max_batch: 32,
            window: Duration::from_secs(3600),
        };
        let batcher = Batcher::spawn(Arc::new(Lengths), settings);
        let calls: Vec<_> = (1..=16)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.encode(vec!["x".repeat(n), "yy".into()]).await })
            })
            .collect();
        for (n, call) in (1..=16).zip(calls) {
            let lengths = call.await.expect("join").expect("encode");
            assert_eq!(lengths, vec![n, 2]);
        }
        assert_eq!(batcher.forward_passes(), 1, "16 callers share one pass");
    }

    #[tokio::test]
    async fn a_large_request_is_cut_into_full_batches_in_input_order() {
        let batcher = Batcher::spawn(
            Arc::new(Lengths),
            BatchSettings {
                max_batch: 4,
                window: Duration::from_millis(1),
            },
        );
        let texts: Vec<String> = (0..10).rev().map(|n| "z".repeat(n)).collect();
        let lengths = batcher.encode(texts).await.expect("encode");
        assert_eq!(lengths, (0..10).rev().collect::<Vec<_>>());
        assert_eq!(batcher.forward_passes(), 3);
    }

    #[tokio::test]
    async fn a_failed_pass_fails_its_callers_and_the_worker_goes_on() {
        let batcher = Batcher::spawn(Arc::new(Lengths), BatchSettings::default());
        let err = batcher
            .encode(vec!["boom".into()])
            .await
            .expect_err("fails");
        assert!(err.contains("boom"));
        assert_eq!(batcher.encode(vec!["ok".into()]).await, Ok(vec![2]));
    }
}
