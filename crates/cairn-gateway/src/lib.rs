//! Cairn's model router: a [`Route`] is itself a `ChatModel` that sends each call to an ordered list
//! of targets, with retries (jittered exponential backoff) inside a total deadline, fallback to the
//! next target on failures that another target may not have, and a circuit breaker per target.
//!
//! Errors come classified from the adapters (`ModelError`): a bad request is never retried nor sent
//! elsewhere; rate limits, timeouts and 5xx are retried and then fall back; an authentication
//! failure falls back without retrying. A stream falls back only before its first chunk has been
//! passed on; after that, an error reaches the caller as the stream's last item.
//!
//! A route orders its targets per call by its [`Strategy`] (as configured, by weight for a canary,
//! or lowest moving-average latency first) and may copy requests to a [`Shadow`] target whose
//! answers go to a [`ShadowSink`] for comparison, never to the client.
//!
//! [`RetryingEmbedder`] gives remote embedding models the same retries for transient failures.
//!
//! [`ResponseCache`] is the exact-match answer cache the server consults before calling a route,
//! and [`Limiter`] the rate limits and budgets it checks first.

mod breaker;
mod cache;
mod embed;
mod limits;
mod route;

pub use breaker::{BreakerSettings, CircuitBreaker};
pub use cache::ResponseCache;
pub use embed::{EmbedRetry, RetryingEmbedder};
pub use limits::{ANONYMOUS, Admission, LimitRule, Limited, Limiter, Scope};
pub use route::{
    Pricing, Route, RouteSettings, Shadow, ShadowComparison, ShadowSink, Strategy, Target,
    answer_text,
};
