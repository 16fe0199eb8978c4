//! Who is asking and under what terms: the caller as a [`Principal`], and the [`RequestContext`]
//! that every front door builds once and hands to the answer pipeline.

use std::collections::BTreeSet;
use std::time::Instant;

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A Cairn API key (`Authorization: Bearer cairn_…`), by its name.
    ApiKey,
    /// A person signed in to the web UI (OpenID Connect), by their subject.
    User,
    /// The local user: the embedded mode without sign-in, or `cairn mcp` over stdio.
    Local,
    /// Nobody in particular: a call without a Cairn key.
    Anonymous,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The key name, the user's id, `local` or `anonymous`.
    pub subject: String,
    /// The tenant the caller belongs to; `None` in a single-tenant deployment.
    pub tenant: Option<String>,
    /// The collections the caller may read; `None`: every collection.
    pub readable: Option<BTreeSet<String>>,
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            kind: PrincipalKind::Anonymous,
            subject: "anonymous".into(),
            tenant: None,
            readable: None,
        }
    }

    pub fn local() -> Principal {
        Principal {
            kind: PrincipalKind::Local,
            subject: "local".into(),
            tenant: None,
            readable: None,
        }
    }

    pub fn api_key(name: impl Into<String>) -> Principal {
        Principal {
            kind: PrincipalKind::ApiKey,
            subject: name.into(),
            tenant: None,
            readable: None,
        }
    }

    pub fn user(id: impl Into<String>) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            subject: id.into(),
            tenant: None,
            readable: None,
        }
    }

    /// What rate limits and budgets count this caller as: the key name for a key, `user:ID` for
    /// a signed-in person, `local` for the local user, and `None` (counted as `anonymous`) else.
    pub fn limit_key(&self) -> Option<String> {
        match self.kind {
            PrincipalKind::ApiKey | PrincipalKind::Local => Some(self.subject.clone()),
            PrincipalKind::User => Some(format!("user:{}", self.subject)),
            PrincipalKind::Anonymous => None,
        }
    }

    pub fn may_read(&self, collection: &str) -> bool {
        self.readable
            .as_ref()
            .is_none_or(|readable| readable.contains(collection))
    }
}

/// One request as the pipeline sees it, whatever door it came in by.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    /// The `x-request-id` of an HTTP request, or one made up for an in-process call.
    pub request_id: String,
    /// When the answer must be done; `None`: the routes' own deadlines only.
    pub deadline: Option<Instant>,
    /// The W3C `traceparent` of the caller's trace, when it sent one.
    pub traceparent: Option<String>,
}

impl RequestContext {
    pub fn new(principal: Principal, request_id: impl Into<String>) -> RequestContext {
        RequestContext {
            principal,
            request_id: request_id.into(),
            deadline: None,
            traceparent: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_keys_users_and_the_local_user_apart_from_anonymous_callers() {
        assert_eq!(Principal::api_key("ci").limit_key().as_deref(), Some("ci"));
        assert_eq!(
            Principal::user("alice").limit_key().as_deref(),
            Some("user:alice")
        );
        assert_eq!(Principal::local().limit_key().as_deref(), Some("local"));
        assert_eq!(Principal::anonymous().limit_key(), None);
    }

    #[test]
    fn a_principal_without_a_collection_list_reads_every_collection() {
        let mut principal = Principal::api_key("ide");
        assert!(principal.may_read("hr"));
        principal.readable = Some(BTreeSet::from(["handbook".to_owned()]));
        assert!(principal.may_read("handbook"));
        assert!(!principal.may_read("hr"));
    }
}
