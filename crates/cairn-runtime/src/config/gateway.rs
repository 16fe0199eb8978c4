//! `[[limits]]` and `[cache]`: rate limits, budgets and the answer cache, validated into the
//! gateway's own types.

use super::*;

/// One rate limit or budget. `route` and `key` choose what it counts: absent, every route (or
/// caller) together; `"*"`, each one apart; a name, that one only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSection {
    /// What clients put in `"model"`: a route, a model or `app:NAME`.
    #[serde(default)]
    pub route: Option<String>,
    /// An API key name (`cairn key create`); callers without a key count as `anonymous`.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    #[serde(default)]
    pub cost_per_day_usd: Option<f64>,
}

/// The exact-match response cache of `/v1/chat/completions` (non-streamed answers).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    /// How long an answer is served again for the same request; 0 turns the cache off.
    pub ttl_secs: u64,
    /// Answers kept per process; the oldest go first.
    pub max_entries: usize,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            ttl_secs: 0,
            max_entries: 10_000,
        }
    }
}

pub(super) fn limit_rules(
    sections: &[LimitSection],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Vec<cairn_gateway::LimitRule>, ConfigError> {
    use cairn_gateway::Scope;
    let scope = |value: &Option<String>| match value.as_deref() {
        None => Scope::All,
        Some("*") => Scope::Each,
        Some(name) => Scope::Named(name.to_owned()),
    };
    sections
        .iter()
        .enumerate()
        .map(|(index, section)| {
            let key = |field: &str| format!("limits[{index}].{field}");
            if section.requests_per_minute.is_none()
                && section.tokens_per_minute.is_none()
                && section.cost_per_day_usd.is_none()
            {
                return Err(bad(
                    &key("requests_per_minute"),
                    "the limit sets no limit".into(),
                    "set requests_per_minute, tokens_per_minute or cost_per_day_usd",
                ));
            }
            if let Some(cost) = section.cost_per_day_usd
                && (!cost.is_finite() || cost < 0.0)
            {
                return Err(bad(
                    &key("cost_per_day_usd"),
                    format!("{cost} is not a budget"),
                    "give US dollars per day, e.g. 20.0",
                ));
            }
            Ok(cairn_gateway::LimitRule {
                route: scope(&section.route),
                key: scope(&section.key),
                requests_per_minute: section.requests_per_minute,
                tokens_per_minute: section.tokens_per_minute,
                cost_per_day_usd: section.cost_per_day_usd,
            })
        })
        .collect()
}
