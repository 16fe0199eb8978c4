//! Who is calling and what they may do: the tools a caller may call and the collections it may read.

use std::collections::BTreeSet;

use cairn_core::catalog::ApiKey;

/// The collection wildcard in a key's collection list: every collection.
pub const ALL_COLLECTIONS: &str = "*";

/// A caller's permissions. Over HTTP it comes from the API key; over stdio the local user may do
/// everything the local config allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key name, or `local` for stdio; for logs.
    pub principal: String,
    /// `None`: every tool.
    tools: Option<BTreeSet<String>>,
    /// `None`: every collection.
    collections: Option<BTreeSet<String>>,
    /// The local user over stdio, not an API key.
    local: bool,
}

impl Grant {
    /// The local user over stdio.
    pub fn local() -> Grant {
        Grant {
            principal: "local".into(),
            tools: None,
            collections: None,
            local: true,
        }
    }

    /// No tool and no collection: what an HTTP request without a verified key gets.
    pub fn nobody() -> Grant {
        Grant {
            principal: "anonymous".into(),
            tools: Some(BTreeSet::new()),
            collections: Some(BTreeSet::new()),
            local: false,
        }
    }

    /// A key's permissions: an empty tool list allows every tool; the collection list names what it
    /// may read (`*` for all), and an empty one allows none.
    pub fn from_key(key: &ApiKey) -> Grant {
        Grant {
            principal: key.name.clone(),
            tools: (!key.tools.is_empty()).then(|| key.tools.iter().cloned().collect()),
            collections: if key.collections.iter().any(|c| c == ALL_COLLECTIONS) {
                None
            } else {
                Some(key.collections.iter().cloned().collect())
            },
            local: false,
        }
    }

    /// The caller as the answer pipeline sees it: the local user, or the key with the collections
    /// it may read.
    pub fn principal(&self) -> cairn_core::Principal {
        let mut principal = if self.local {
            cairn_core::Principal::local()
        } else {
            cairn_core::Principal::api_key(self.principal.clone())
        };
        principal.readable = self.collections.clone();
        principal
    }

    pub fn may_call(&self, tool: &str) -> bool {
        self.tools.as_ref().is_none_or(|tools| tools.contains(tool))
    }

    pub fn may_read(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|collections| collections.contains(collection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_becomes_the_principal_the_pipeline_checks() {
        let local = Grant::local().principal();
        assert_eq!(
            (local.kind, local.readable),
            (cairn_core::PrincipalKind::Local, None)
        );
        let principal = Grant::from_key(&key(&[], &["handbook"])).principal();
        assert_eq!(principal.kind, cairn_core::PrincipalKind::ApiKey);
        assert_eq!(principal.subject, "ci");
        assert!(principal.may_read("handbook") && !principal.may_read("hr"));
        assert!(
            Grant::from_key(&key(&[], &["*"]))
                .principal()
                .may_read("hr")
        );
    }

    fn key(tools: &[&str], collections: &[&str]) -> ApiKey {
        ApiKey {
            id: uuid::Uuid::nil(),
            name: "ci".into(),
            prefix: "cairn_ab".into(),
            key_hash: String::new(),
            tools: tools.iter().map(|t| (*t).to_owned()).collect(),
            collections: collections.iter().map(|c| (*c).to_owned()).collect(),
            created_at: chrono::Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn an_empty_tool_list_allows_every_tool_and_an_empty_collection_list_none() {
        let grant = Grant::from_key(&key(&[], &[]));
        assert!(grant.may_call("search_knowledge"));
        assert!(!grant.may_read("handbook"));
    }

    #[test]
    fn lists_restrict_and_the_wildcard_opens_every_collection() {
        let grant = Grant::from_key(&key(&["search_knowledge"], &["handbook"]));
        assert!(grant.may_call("search_knowledge"));
        assert!(!grant.may_call("answer_question"));
        assert!(grant.may_read("handbook"));
        assert!(!grant.may_read("finance"));
        assert!(Grant::from_key(&key(&[], &["*"])).may_read("finance"));
    }

    #[test]
    fn nobody_may_do_anything_and_local_may_do_everything() {
        assert!(!Grant::nobody().may_call("list_collections"));
        assert!(!Grant::nobody().may_read("handbook"));
        assert!(Grant::local().may_call("render_prompt"));
        assert!(Grant::local().may_read("handbook"));
    }
}
