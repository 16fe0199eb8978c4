//! An exact-match response cache: the same request to the same route within the time to live
//! gets the stored answer without calling a model. The key is a SHA-256 of the route name and the
//! request as sent (model parameters and messages, so for an app also its prompt version and the
//! retrieved passages the prompt was rendered with). Per process, bounded: a concurrent cache
//! (quick_cache, sharded, CLOCK-Pro eviction) holds at most `max_entries` answers, and an answer
//! past its time to live is a miss and is dropped. Hits, misses and evictions are counted.

use std::time::{Duration, Instant};

use cairn_core::model::{ChatRequest, ChatResponse};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};
use sha2::{Digest, Sha256};

type Key = [u8; 32];
type Entry = (Instant, ChatResponse);

/// Counts the answers the cache drops to make room.
#[derive(Debug, Clone, Copy, Default)]
struct CountEvictions;

impl Lifecycle<Key, Entry> for CountEvictions {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn on_evict(&self, _state: &mut (), _key: Key, _entry: Entry) {
        metrics::counter!("cairn_gateway_cache_evictions_total").increment(1);
    }
}

/// Cached answers, by request.
#[derive(Debug)]
pub struct ResponseCache {
    ttl: Duration,
    entries: Cache<Key, Entry, UnitWeighter, DefaultHashBuilder, CountEvictions>,
}

impl ResponseCache {
    pub fn new(ttl: Duration, max_entries: usize) -> ResponseCache {
        let capacity = max_entries.max(1);
        ResponseCache {
            ttl,
            entries: Cache::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                DefaultHashBuilder::default(),
                CountEvictions,
            ),
        }
    }

    fn key(route: &str, request: &ChatRequest) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(route.as_bytes());
        hasher.update([0]);
        // Field order is fixed by the type, so equal requests serialise equally.
        hasher.update(serde_json::to_vec(request).unwrap_or_default());
        hasher.finalize().into()
    }

    /// The stored answer, if one is younger than the time to live. Counts hits and misses.
    pub fn get(&self, route: &str, request: &ChatRequest) -> Option<ChatResponse> {
        let key = Self::key(route, request);
        let found = match self.entries.get(&key) {
            Some((stored, response)) if stored.elapsed() < self.ttl => Some(response),
            Some(_) => {
                self.entries.remove(&key);
                None
            }
            None => None,
        };
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("cairn_gateway_cache_total", "route" => route.to_owned(), "result" => result)
            .increment(1);
        found
    }

    /// Stores an answer; when full, the cache drops the answers least likely to be asked again.
    pub fn put(&self, route: &str, request: &ChatRequest, response: &ChatResponse) {
        self.entries.insert(
            Self::key(route, request),
            (Instant::now(), response.clone()),
        );
    }

    /// Answers held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use cairn_core::model::{ChatMessage, FinishReason, Role, Usage};

    use super::*;

    fn request(question: &str, temperature: Option<f32>) -> ChatRequest {
        ChatRequest {
            model: "default".into(),
            messages: vec![ChatMessage::new(Role::User, question)],
            temperature,
            ..ChatRequest::default()
        }
    }

    fn response(text: &str) -> ChatResponse {
        ChatResponse {
            message: ChatMessage::new(Role::Assistant, text),
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
            model: "m".into(),
            cost_usd: None,
        }
    }

    #[test]
    fn the_same_request_hits_and_any_difference_misses() {
        let cache = ResponseCache::new(Duration::from_secs(60), 10);
        cache.put("default", &request("why?", None), &response("because"));
        assert_eq!(
            cache
                .get("default", &request("why?", None))
                .map(|r| r.message.content),
            Some("because".into())
        );
        assert!(cache.get("default", &request("why?", Some(0.5))).is_none());
        assert!(cache.get("default", &request("how?", None)).is_none());
        assert!(cache.get("other", &request("why?", None)).is_none());
    }

    #[test]
    fn answers_expire_and_the_cache_stays_within_its_size() {
        let expired = ResponseCache::new(Duration::ZERO, 10);
        expired.put("r", &request("a", None), &response("1"));
        assert!(expired.get("r", &request("a", None)).is_none());
        assert!(
            expired.is_empty(),
            "an expired answer is dropped when found"
        );
        let small = ResponseCache::new(Duration::from_secs(60), 2);
        for question in ["a", "b", "c", "d", "e"] {
            small.put("r", &request(question, None), &response(question));
        }
        assert!(small.len() <= 2, "bounded: {} answers held", small.len());
        assert!(
            small.get("r", &request("e", None)).is_some(),
            "the newest answer is there"
        );
    }
}
