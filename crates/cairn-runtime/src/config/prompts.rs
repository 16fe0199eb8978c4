//! `[prompts]`: render limits, the label cache, and eval-gated labels (`[[prompts.gates]]`).

use std::path::PathBuf;

use cairn_prompts::LabelGate;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptsSection {
    /// How long a resolved label is trusted without hearing of a move (PostgreSQL announces moves
    /// at once; this bounds staleness if that feed is interrupted).
    pub label_cache_ttl_secs: u64,
    /// Template instructions one render may execute.
    pub render_fuel: u64,
    /// Bytes one render may produce.
    pub max_render_bytes: u64,
    /// Labels that move only to a version a passing run of an eval suite vouches for.
    pub gates: Vec<PromptGateSection>,
}

impl Default for PromptsSection {
    fn default() -> Self {
        PromptsSection {
            label_cache_ttl_secs: 30,
            render_fuel: 500_000,
            max_render_bytes: 1 << 20,
            gates: Vec::new(),
        }
    }
}

/// `[[prompts.gates]]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptGateSection {
    pub prompt: String,
    pub label: String,
    /// The suite file (YAML) that must pass on the candidate version.
    pub suite: PathBuf,
}

/// An eval-gated label: the gate the registry enforces, and the suite file that earns a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptGate {
    pub gate: LabelGate,
    pub suite_file: PathBuf,
}

/// A render must be allowed some fuel and some output; each gate names a suite that loads, and a
/// label is gated once.
pub(super) fn check_prompts(
    prompts: &PromptsSection,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Vec<PromptGate>, ConfigError> {
    if prompts.render_fuel == 0 || prompts.max_render_bytes == 0 {
        let key = if prompts.render_fuel == 0 {
            "prompts.render_fuel"
        } else {
            "prompts.max_render_bytes"
        };
        return Err(bad(
            key,
            "0 would refuse every render".into(),
            "use a positive number; see cairn.example.toml for the defaults",
        ));
    }
    let mut gates: Vec<PromptGate> = Vec::new();
    for (index, section) in prompts.gates.iter().enumerate() {
        let key = |field: &str| format!("prompts.gates[{index}].{field}");
        cairn_core::catalog::validate_name("label", &section.label).map_err(|e| {
            bad(
                &key("label"),
                e.to_string(),
                "name a label such as production",
            )
        })?;
        if section.prompt.is_empty() {
            return Err(bad(
                &key("prompt"),
                "empty".into(),
                "name the prompt whose label is gated, e.g. rag_answer",
            ));
        }
        if gates
            .iter()
            .any(|g| g.gate.prompt == section.prompt && g.gate.label == section.label)
        {
            return Err(bad(
                &key("label"),
                format!(
                    "label `{}` of prompt `{}` is gated twice",
                    section.label, section.prompt
                ),
                "keep one gate per label; put every case the move must pass in its suite",
            ));
        }
        let suite = cairn_eval::Suite::load(&section.suite).map_err(|e| {
            bad(
                &key("suite"),
                e.to_string(),
                "name an eval suite file that `cairn eval run FILE` accepts (paths are relative to the working directory)",
            )
        })?;
        gates.push(PromptGate {
            gate: LabelGate {
                prompt: section.prompt.clone(),
                label: section.label.clone(),
                suite: suite.name,
            },
            suite_file: section.suite.clone(),
        });
    }
    Ok(gates)
}
