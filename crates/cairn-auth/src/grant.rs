//! Who is calling and what they may do: the roles a caller holds, the tools it may call and the
//! collections it may read.

use std::collections::BTreeSet;

use cairn_core::catalog::ApiKey;

/// The collection wildcard in a key's collection list: every collection.
pub const ALL_COLLECTIONS: &str = "*";

/// What a caller may do, beyond which collections it reads. `admin` holds every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Search, answer, chat, read prompts, lineage and eval runs.
    Read,
    /// Create collections, upload and delete documents.
    Write,
    /// Publish prompt versions and move labels.
    PromptAdmin,
    /// Keys, shadow results, the metrics endpoint when it is protected; implies every role.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Read, Role::Write, Role::PromptAdmin, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::PromptAdmin => "prompt_admin",
            Role::Admin => "admin",
        }
    }

    /// The role a name stands for, or the list of names to choose from.
    pub fn parse(name: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name.trim())
            .ok_or_else(|| {
                format!(
                    "`{name}` is not a role; roles: {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles named in a stored list; names that are not roles are left out (and logged by the
/// caller if it cares), so a key never gains a role from a typo.
pub fn roles_of<'a>(names: impl IntoIterator<Item = &'a String>) -> BTreeSet<Role> {
    names
        .into_iter()
        .filter_map(|name| Role::parse(name).ok())
        .collect()
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The local user: stdio, or a loopback request when no sign-in is configured.
    Local,
    /// Nobody in particular: `auth.mode = "none"`, where the operator opened every route.
    Open,
    /// A Cairn API key.
    Key,
    /// A signed-in person (the web UI's session).
    Session,
    /// Nothing valid: what an HTTP request without credentials gets where they are required.
    Nobody,
}

/// A caller's permissions. Over HTTP it comes from the API key or the session; over stdio and on
/// loopback without sign-in the local user may do everything the local config allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key name, the user's id, `local` or `anonymous`; for logs, limits and ownership.
    pub principal: String,
    /// The user's display name (the key name for a key).
    pub name: String,
    pub via: Via,
    /// `None`: every tool.
    tools: Option<BTreeSet<String>>,
    /// `None`: every collection.
    collections: Option<BTreeSet<String>>,
    roles: BTreeSet<Role>,
}

impl Grant {
    /// The local user over stdio, or on loopback without sign-in: every role.
    pub fn local() -> Grant {
        Grant::everything("local", Via::Local)
    }

    /// Anyone, where the operator turned authentication off (`auth.mode = "none"`).
    pub fn open() -> Grant {
        Grant::everything("anonymous", Via::Open)
    }

    fn everything(principal: &str, via: Via) -> Grant {
        Grant {
            principal: principal.into(),
            name: principal.into(),
            via,
            tools: None,
            collections: None,
            roles: Role::ALL.into(),
        }
    }

    /// No role, no tool and no collection: what an HTTP request without a verified key gets.
    pub fn nobody() -> Grant {
        Grant {
            principal: "anonymous".into(),
            name: "anonymous".into(),
            via: Via::Nobody,
            tools: Some(BTreeSet::new()),
            collections: Some(BTreeSet::new()),
            roles: BTreeSet::new(),
        }
    }

    /// A key's permissions: an empty tool list allows every tool; the collection list names what it
    /// may read (`*` for all), and an empty one allows none; its roles as stored.
    pub fn from_key(key: &ApiKey) -> Grant {
        Grant {
            principal: key.name.clone(),
            name: key.name.clone(),
            via: Via::Key,
            tools: (!key.tools.is_empty()).then(|| key.tools.iter().cloned().collect()),
            collections: if key.collections.iter().any(|c| c == ALL_COLLECTIONS) {
                None
            } else {
                Some(key.collections.iter().cloned().collect())
            },
            roles: roles_of(&key.roles),
        }
    }

    /// A signed-in person: every collection (tenancy narrows this later), the roles the session
    /// carries.
    pub fn user(id: impl Into<String>, name: impl Into<String>, roles: BTreeSet<Role>) -> Grant {
        Grant {
            principal: id.into(),
            name: name.into(),
            via: Via::Session,
            tools: None,
            collections: None,
            roles,
        }
    }

    /// The caller as the answer pipeline sees it, with the collections it may read.
    pub fn principal(&self) -> cairn_core::Principal {
        let mut principal = match self.via {
            Via::Local => cairn_core::Principal::local(),
            Via::Key => cairn_core::Principal::api_key(self.principal.clone()),
            Via::Session => cairn_core::Principal::user(self.principal.clone()),
            Via::Open | Via::Nobody => cairn_core::Principal::anonymous(),
        };
        principal.readable = self.collections.clone();
        principal
    }

    /// Whether the caller holds `role` (`admin` holds every role).
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }

    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.roles.iter().copied()
    }

    /// Tools need the read role as well as a place in the key's tool list.
    pub fn may_call(&self, tool: &str) -> bool {
        self.has(Role::Read) && self.tools.as_ref().is_none_or(|tools| tools.contains(tool))
    }

    pub fn may_read(&self, collection: &str) -> bool {
        self.has(Role::Read)
            && self
                .collections
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
            roles: vec!["read".into()],
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
    fn roles_parse_by_name_and_admin_holds_every_role() {
        assert_eq!(Role::parse("prompt_admin"), Ok(Role::PromptAdmin));
        let refused = Role::parse("root").expect_err("not a role");
        assert!(
            refused.contains("read, write, prompt_admin, admin"),
            "{refused}"
        );
        let mut admin = key(&[], &["*"]);
        admin.roles = vec!["admin".into(), "typo".into()];
        let grant = Grant::from_key(&admin);
        assert!(Role::ALL.into_iter().all(|role| grant.has(role)));
        assert_eq!(grant.roles().collect::<Vec<_>>(), vec![Role::Admin]);
        let reader = Grant::from_key(&key(&[], &["*"]));
        assert!(reader.has(Role::Read) && !reader.has(Role::Write));
    }

    #[test]
    fn without_the_read_role_a_key_reads_nothing_and_calls_no_tool() {
        let mut writer = key(&[], &["*"]);
        writer.roles = vec!["write".into()];
        let grant = Grant::from_key(&writer);
        assert!(grant.has(Role::Write));
        assert!(!grant.may_read("handbook") && !grant.may_call("search_knowledge"));
    }

    #[test]
    fn sessions_and_open_mode_become_users_and_anonymous_callers() {
        let user = Grant::user("u-1", "Ada", [Role::Read].into()).principal();
        assert_eq!(
            (user.kind, user.subject.as_str()),
            (cairn_core::PrincipalKind::User, "u-1")
        );
        let open = Grant::open();
        assert!(open.has(Role::Admin));
        assert_eq!(open.principal().kind, cairn_core::PrincipalKind::Anonymous);
    }

    #[test]
    fn nobody_may_do_anything_and_local_may_do_everything() {
        assert!(!Grant::nobody().may_call("list_collections"));
        assert!(!Grant::nobody().may_read("handbook"));
        assert!(Grant::local().may_call("render_prompt"));
        assert!(Grant::local().may_read("handbook"));
    }
}
