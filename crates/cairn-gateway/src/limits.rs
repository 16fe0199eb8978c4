//! Rate limits and budgets: requests per minute, tokens per minute and cost per day, per route and
//! per API key, counted in fixed windows kept in the catalog (so replicas sharing a PostgreSQL
//! catalog share the counts).
//!
//! A call is admitted or refused before it goes to a model: its request is counted at once, so
//! concurrent requests each see a distinct total and never overshoot a requests-per-minute limit.
//! Tokens and cost are only known once the answer is done: they are added then, and the limits on
//! them refuse calls once a window's total has reached them. Calls already in flight when a
//! token or cost limit is reached still finish, so those totals can end above their limit by what
//! those calls used.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::catalog::{GatewayRepo, UsageDelta};

const MINUTE: i64 = 60;
const DAY: i64 = 86_400;

/// Which calls a limit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every caller (or route) together, in one count.
    All,
    /// Each caller (or route) in a count of its own.
    Each,
    /// Only this key (or route).
    Named(String),
}

impl Scope {
    /// The part of the bucket name for `value`, or `None` when the scope does not cover it.
    fn part<'a>(&'a self, value: &'a str) -> Option<&'a str> {
        match self {
            Scope::All => Some("*"),
            Scope::Each => Some(value),
            Scope::Named(name) => (name == value).then_some(value),
        }
    }
}

/// One configured limit. Unset fields do not limit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitRule {
    /// Over what clients put in `"model"`: a route, a model or `app:NAME`.
    pub route: Scope,
    /// Over API key names; calls without a key count as the key `anonymous`.
    pub key: Scope,
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub cost_per_day_usd: Option<f64>,
}

/// A refused call: which limit, and when to try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Limited {
    pub message: String,
    /// `requests_per_minute`, `tokens_per_minute` or `cost_per_day_usd`.
    pub limit: &'static str,
    pub retry_after: Duration,
}

impl Limited {
    /// The refusal by `rule` of a call on `route` with `key`, counted in the metrics; `what` says
    /// what the rule allows.
    fn by(
        rule: &LimitRule,
        route: &str,
        key: &str,
        limit: &'static str,
        what: String,
        retry_after: Duration,
    ) -> Limited {
        metrics::counter!("cairn_gateway_rate_limited_total", "route" => route.to_owned(), "limit" => limit)
            .increment(1);
        let scope = match (&rule.key, &rule.route) {
            (Scope::All, Scope::All) => "all callers together".to_owned(),
            (Scope::All, _) => format!("`{route}`"),
            (_, Scope::All) => format!("key `{key}`"),
            _ => format!("key `{key}` on `{route}`"),
        };
        Limited {
            message: format!(
                "rate limit reached: {scope} may use {what}; retry after {} s",
                retry_after.as_secs()
            ),
            limit,
            retry_after,
        }
    }
}

/// Counts calls against the configured limits.
pub struct Limiter {
    rules: Vec<LimitRule>,
    store: Arc<dyn GatewayRepo>,
    /// When windows were last pruned (Unix seconds).
    pruned: AtomicI64,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// The caller's name when it gives no API key.
pub const ANONYMOUS: &str = "anonymous";

/// One count the call belongs to, and what its rules limit.
#[derive(Debug)]
struct Bucket {
    name: String,
    /// Indices into the limiter's rules.
    rules: Vec<usize>,
    /// Some rule limits tokens per minute: the call's tokens are added once known.
    counts_tokens: bool,
    /// Some rule limits cost per day: the call's cost is added once known.
    counts_cost: bool,
}

/// An admitted call: where its tokens and cost go once known.
pub struct Admission {
    store: Option<Arc<dyn GatewayRepo>>,
    buckets: Vec<Bucket>,
    minute: i64,
    day: i64,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("buckets", &self.buckets)
            .field("minute", &self.minute)
            .field("day", &self.day)
            .finish_non_exhaustive()
    }
}

fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Which of `rule`'s limits the totals have reached, if any: the limit's name, what it allows,
/// and when its window ends. Requests are counted before the check, so their limit is reached
/// only once exceeded; tokens and cost are counted after calls, so theirs refuse when reached.
fn exceeded(
    rule: &LimitRule,
    minute_totals: &UsageDelta,
    day_totals: Option<&UsageDelta>,
    to_next_minute: Duration,
    to_next_day: Duration,
) -> Option<(&'static str, String, Duration)> {
    if let Some(limit) = rule
        .requests_per_minute
        .filter(|limit| minute_totals.requests > *limit)
    {
        Some((
            "requests_per_minute",
            format!("{limit} requests per minute"),
            to_next_minute,
        ))
    } else if let Some(limit) = rule
        .tokens_per_minute
        .filter(|limit| minute_totals.tokens >= *limit)
    {
        Some((
            "tokens_per_minute",
            format!("{limit} tokens per minute"),
            to_next_minute,
        ))
    } else if let (Some(limit), Some(day)) = (rule.cost_per_day_usd, day_totals) {
        (day.cost_usd >= limit).then(|| {
            (
                "cost_per_day_usd",
                format!("a budget of ${limit} per day (UTC)"),
                to_next_day,
            )
        })
    } else {
        None
    }
}

fn minute_bucket(name: &str) -> String {
    format!("{name};minute")
}

fn day_bucket(name: &str) -> String {
    format!("{name};day")
}

impl Limiter {
    pub fn new(rules: Vec<LimitRule>, store: Arc<dyn GatewayRepo>) -> Self {
        Limiter {
            rules,
            store,
            pruned: AtomicI64::new(0),
        }
    }

    /// Counts the call and admits it, or says which limit refuses it. If the catalog cannot be
    /// reached, the call is admitted (and a warning logged): limits must not take the gateway down.
    pub async fn admit(
        &self,
        route: &str,
        key: Option<&str>,
        now: SystemTime,
    ) -> Result<Admission, Limited> {
        let key = key.unwrap_or(ANONYMOUS);
        let seconds = unix_seconds(now);
        let minute = seconds - seconds.rem_euclid(MINUTE);
        let day = seconds - seconds.rem_euclid(DAY);
        let admission = Admission {
            store: Some(self.store.clone()),
            buckets: self.buckets(route, key),
            minute,
            day,
        };
        if admission.buckets.is_empty() {
            return Ok(admission);
        }
        self.prune(seconds);
        let to_next_minute = Duration::from_secs((minute + MINUTE - seconds).max(1) as u64);
        let to_next_day = Duration::from_secs((day + DAY - seconds).max(1) as u64);
        for bucket in &admission.buckets {
            let Some((minute_totals, day_totals)) = self.count_request(bucket, minute, day).await
            else {
                continue;
            };
            for rule in bucket.rules.iter().map(|&index| &self.rules[index]) {
                let refusal = exceeded(
                    rule,
                    &minute_totals,
                    day_totals.as_ref(),
                    to_next_minute,
                    to_next_day,
                );
                if let Some((limit, what, retry_after)) = refusal {
                    return Err(Limited::by(rule, route, key, limit, what, retry_after));
                }
            }
        }
        Ok(admission)
    }

    /// The counts a call on `route` with `key` belongs to: one per distinct bucket name, with
    /// every rule that limits it.
    fn buckets(&self, route: &str, key: &str) -> Vec<Bucket> {
        let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if let (Some(r), Some(k)) = (rule.route.part(route), rule.key.part(key)) {
                let name = format!("route={r};key={k}");
                let bucket = buckets.entry(name.clone()).or_insert_with(|| Bucket {
                    name,
                    rules: Vec::new(),
                    counts_tokens: false,
                    counts_cost: false,
                });
                bucket.rules.push(index);
                bucket.counts_tokens |= rule.tokens_per_minute.is_some();
                bucket.counts_cost |= rule.cost_per_day_usd.is_some();
            }
        }
        buckets.into_values().collect()
    }

    /// Adds the call's request to the bucket's minute and reads its totals (and the day's, when
    /// a rule limits cost). `None`, with a warning logged, when the catalog did not answer.
    async fn count_request(
        &self,
        bucket: &Bucket,
        minute: i64,
        day: i64,
    ) -> Option<(UsageDelta, Option<UsageDelta>)> {
        let minute_totals = self
            .store
            .add_usage(
                &minute_bucket(&bucket.name),
                minute,
                UsageDelta {
                    requests: 1,
                    ..UsageDelta::default()
                },
            )
            .await;
        let day_totals = if bucket.counts_cost {
            Some(
                self.store
                    .add_usage(&day_bucket(&bucket.name), day, UsageDelta::default())
                    .await,
            )
        } else {
            None
        };
        match (minute_totals, day_totals.transpose()) {
            (Ok(m), Ok(d)) => Some((m, d)),
            (Err(e), _) | (_, Err(e)) => {
                metrics::counter!("cairn_gateway_limit_store_errors_total").increment(1);
                tracing::warn!(error = %e, "rate limits not checked: the catalog did not answer");
                None
            }
        }
    }

    /// Deletes windows older than two days, at most once an hour, in the background.
    fn prune(&self, seconds: i64) {
        let last = self.pruned.load(Ordering::Relaxed);
        if seconds - last < 3_600
            || self
                .pruned
                .compare_exchange(last, seconds, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.prune_usage(seconds - 2 * DAY).await {
                tracing::warn!(error = %e, "could not prune old rate-limit windows");
            }
        });
    }
}

impl Admission {
    /// An admission that counts nothing (no limits are configured).
    pub fn unlimited() -> Self {
        Admission {
            store: None,
            buckets: Vec::new(),
            minute: 0,
            day: 0,
        }
    }

    /// Adds the finished call's tokens and cost to its windows, in the background.
    pub fn charge(self, tokens: u64, cost_usd: f64) {
        let Admission {
            store,
            buckets,
            minute,
            day,
        } = self;
        let Some(store) = store.filter(|_| !buckets.is_empty()) else {
            return;
        };
        if tokens == 0 && cost_usd <= 0.0 {
            return;
        }
        tokio::spawn(async move {
            for bucket in &buckets {
                let mut result = Ok(());
                if bucket.counts_tokens && tokens > 0 {
                    let delta = UsageDelta {
                        tokens,
                        ..UsageDelta::default()
                    };
                    result = store
                        .add_usage(&minute_bucket(&bucket.name), minute, delta)
                        .await
                        .map(drop);
                }
                if bucket.counts_cost && cost_usd > 0.0 && result.is_ok() {
                    let delta = UsageDelta {
                        cost_usd,
                        ..UsageDelta::default()
                    };
                    result = store
                        .add_usage(&day_bucket(&bucket.name), day, delta)
                        .await
                        .map(drop);
                }
                if let Err(e) = result {
                    metrics::counter!("cairn_gateway_limit_store_errors_total").increment(1);
                    tracing::warn!(error = %e, "a call's tokens and cost were not counted");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use cairn_core::catalog::{CatalogResult, ShadowResult};

    use super::*;

    /// The windows in memory, as the catalog keeps them.
    #[derive(Debug, Default)]
    struct Windows(Mutex<BTreeMap<(String, i64), UsageDelta>>);

    #[async_trait]
    impl GatewayRepo for Windows {
        async fn add_usage(
            &self,
            bucket: &str,
            window_start: i64,
            delta: UsageDelta,
        ) -> CatalogResult<UsageDelta> {
            let mut windows = self.0.lock().expect("lock");
            let total = windows
                .entry((bucket.to_owned(), window_start))
                .or_default();
            total.requests += delta.requests;
            total.tokens += delta.tokens;
            total.cost_usd += delta.cost_usd;
            Ok(*total)
        }

        async fn prune_usage(&self, before: i64) -> CatalogResult<u64> {
            let mut windows = self.0.lock().expect("lock");
            let old = windows.len();
            windows.retain(|(_, start), _| *start >= before);
            Ok((old - windows.len()) as u64)
        }

        async fn record_shadow(&self, _result: ShadowResult) -> CatalogResult<()> {
            Ok(())
        }

        async fn list_shadow_results(
            &self,
            _route: &str,
            _limit: u32,
        ) -> CatalogResult<Vec<ShadowResult>> {
            Ok(Vec::new())
        }
    }

    fn rule(route: Scope, key: Scope) -> LimitRule {
        LimitRule {
            route,
            key,
            requests_per_minute: None,
            tokens_per_minute: None,
            cost_per_day_usd: None,
        }
    }

    /// 12:00:30 UTC on some day.
    fn at(offset_secs: u64) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_secs(1_790_000_000 - 1_790_000_000 % 86_400 + 43_230 + offset_secs)
    }

    async fn settle() {
        // Charges are written in the background.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn requests_per_minute_per_key_refuse_with_the_time_to_the_next_window() {
        let limiter = Limiter::new(
            vec![LimitRule {
                requests_per_minute: Some(2),
                ..rule(Scope::All, Scope::Each)
            }],
            Arc::new(Windows::default()),
        );
        for _ in 0..2 {
            limiter
                .admit("gpt", Some("ci"), at(0))
                .await
                .expect("within the limit");
        }
        let refused = limiter
            .admit("gpt", Some("ci"), at(0))
            .await
            .expect_err("third call");
        assert_eq!(refused.limit, "requests_per_minute");
        assert_eq!(refused.retry_after, Duration::from_secs(30), "to 12:01:00");
        assert!(refused.message.contains("key `ci`"), "{}", refused.message);
        // Another key, and anonymous callers, have counts of their own; the next minute is new.
        limiter
            .admit("gpt", Some("web"), at(0))
            .await
            .expect("another key");
        limiter.admit("gpt", None, at(0)).await.expect("anonymous");
        limiter
            .admit("gpt", Some("ci"), at(30))
            .await
            .expect("next minute");
    }

    #[tokio::test]
    async fn tokens_and_cost_are_charged_after_the_call_and_then_refuse() {
        let limiter = Limiter::new(
            vec![
                LimitRule {
                    tokens_per_minute: Some(100),
                    ..rule(Scope::Named("gpt".into()), Scope::All)
                },
                LimitRule {
                    cost_per_day_usd: Some(1.0),
                    ..rule(Scope::Each, Scope::Named("ci".into()))
                },
            ],
            Arc::new(Windows::default()),
        );
        let first = limiter
            .admit("gpt", Some("ci"), at(0))
            .await
            .expect("first");
        first.charge(120, 0.4);
        settle().await;
        let refused = limiter
            .admit("gpt", Some("web"), at(1))
            .await
            .expect_err("tokens");
        assert_eq!(refused.limit, "tokens_per_minute");
        assert!(refused.message.contains("`gpt`"), "{}", refused.message);
        // The token limit is on `gpt` only; the cost budget is `ci`'s, on each route apart.
        let second = limiter
            .admit("small", Some("ci"), at(1))
            .await
            .expect("other route");
        second.charge(10, 0.7);
        let third = limiter
            .admit("small", Some("ci"), at(2))
            .await
            .expect("0.7 < 1.0");
        third.charge(10, 0.5);
        settle().await;
        let refused = limiter
            .admit("small", Some("ci"), at(3))
            .await
            .expect_err("budget spent");
        assert_eq!(refused.limit, "cost_per_day_usd");
        assert_eq!(refused.retry_after, Duration::from_secs(43_200 - 30 - 3));
        limiter
            .admit("small", Some("web"), at(3))
            .await
            .expect("the budget is ci's only");
        limiter
            .admit("small", Some("ci"), at(86_400))
            .await
            .expect("a new day");
    }

    #[tokio::test]
    async fn without_matching_rules_nothing_is_counted() {
        let store = Arc::new(Windows::default());
        let limiter = Limiter::new(
            vec![LimitRule {
                requests_per_minute: Some(1),
                ..rule(Scope::Named("gpt".into()), Scope::All)
            }],
            store.clone(),
        );
        for _ in 0..5 {
            limiter
                .admit("small", None, at(0))
                .await
                .expect("unlimited route")
                .charge(5, 1.0);
        }
        settle().await;
        assert!(store.0.lock().expect("lock").is_empty());
    }
}
