//! An exact-match response cache: the same request to the same route within the time to live
//! gets the stored answer without calling a model. The key is a SHA-256 of the route name and the
//! request as sent (model parameters and messages, so for an app also its prompt version and the
//! retrieved passages the prompt was rendered with). Per process, bounded, oldest out first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_core::model::{ChatRequest, ChatResponse};
use sha2::{Digest, Sha256};

/// Cached answers, by request.
#[derive(Debug)]
pub struct ResponseCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], (Instant, ChatResponse)>>,
}

impl ResponseCache {
    pub fn new(ttl: Duration, max_entries: usize) -> ResponseCache {
        ResponseCache {
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(route: &str, request: &ChatRequest) -> [u8; 32] {
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
        let found = self.entries.lock().ok().and_then(|entries| {
            entries
                .get(&key)
                .filter(|(stored, _)| stored.elapsed() < self.ttl)
                .map(|(_, response)| response.clone())
        });
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("cairn_gateway_cache_total", "route" => route.to_owned(), "result" => result)
            .increment(1);
        found
    }

    /// Stores an answer; when full, expired answers go first, then the oldest.
    pub fn put(&self, route: &str, request: &ChatRequest, response: &ChatResponse) {
        let key = Self::key(route, request);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
            while entries.len() >= self.max_entries {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (stored, _))| *stored)
                    .map(|(key, _)| *key);
                match oldest {
                    Some(oldest) => {
                        entries.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
        entries.insert(key, (Instant::now(), response.clone()));
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
    fn answers_expire_and_the_oldest_make_room() {
        let expired = ResponseCache::new(Duration::ZERO, 10);
        expired.put("r", &request("a", None), &response("1"));
        assert!(expired.get("r", &request("a", None)).is_none());
        let small = ResponseCache::new(Duration::from_secs(60), 2);
        for question in ["a", "b", "c"] {
            small.put("r", &request(question, None), &response(question));
        }
        assert!(small.get("r", &request("a", None)).is_none());
        assert!(small.get("r", &request("b", None)).is_some());
        assert!(small.get("r", &request("c", None)).is_some());
    }
}
