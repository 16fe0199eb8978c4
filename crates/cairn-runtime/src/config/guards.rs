//! `[[guards]]`: the guardrails apps, agents and routes name in their `guards = [...]`, checked here and
//! built by `cairn-guard`.

use super::*;
use cairn_guard::{GuardAction, GuardKind, GuardOptions, GuardSection};

/// The embedded chat app's policy when no guards are declared: personal data redacted in
/// questions and answers (the caller's own values restored in what the caller sees), prompt
/// injection refused in questions and dropped from retrieved passages.
pub(super) fn embedded_guards() -> Vec<GuardSection> {
    use cairn_core::guard::GuardStage::{Input, Output, RetrievedContext};
    vec![
        GuardSection {
            name: "pii".into(),
            kind: GuardKind::Pii,
            stages: vec![Input, Output],
            action: GuardAction::Redact,
            on_error: Default::default(),
            timeout_ms: None,
            options: GuardOptions {
                restore: Some(true),
                ..GuardOptions::default()
            },
        },
        GuardSection {
            name: "injection".into(),
            kind: GuardKind::Injection,
            stages: vec![Input, RetrievedContext],
            action: GuardAction::Block,
            on_error: Default::default(),
            timeout_ms: None,
            options: GuardOptions::default(),
        },
    ]
}

/// Checks every declared guard (by building it) and every name apps and routes give.
pub(super) fn check_guards(
    guards: &[GuardSection],
    apps: &[AppSection],
    agents: &[AgentSection],
    routes: &[RouteSection],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    let mut names: Vec<&str> = Vec::new();
    for (index, section) in guards.iter().enumerate() {
        if names.contains(&section.name.as_str()) {
            return Err(bad(
                &format!("guards[{index}].name"),
                format!("guard `{}` is declared twice", section.name),
                "give each [[guards]] entry its own name",
            ));
        }
        names.push(&section.name);
        section.build().map_err(|e| {
            bad(
                &format!("guards[{index}]"),
                e.to_string(),
                "see the [[guards]] example in cairn.example.toml for each kind's stages and options",
            )
        })?;
    }
    let named = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("apps[{i}].guards"), &a.guards))
        .chain(
            agents
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("agents[{i}].guards"), &a.guards)),
        )
        .chain(
            routes
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("routes[{i}].guards"), &r.guards)),
        );
    for (key, listed) in named {
        if let Some(unknown) = listed.iter().find(|g| !names.contains(&g.as_str())) {
            return Err(bad(
                &key,
                format!("names guard `{unknown}`, which is not declared"),
                &if names.is_empty() {
                    "declare it in a [[guards]] entry (see cairn.example.toml)".to_owned()
                } else {
                    format!(
                        "declare it in a [[guards]] entry or use one of: {}",
                        names.join(", ")
                    )
                },
            ));
        }
    }
    Ok(())
}
