//! Prompt files: TOML front matter between `+++` lines, then a minijinja body split into role sections.
//!
//! ```text
//! +++
//! name = "rag_answer"
//! description = "Answer from retrieved passages with [n] citations."
//! [model]
//! temperature = 0.1
//! [variables]            # a JSON schema of the render context
//! type = "object"
//! required = ["question"]
//! properties.question = { type = "string" }
//! +++
//! [system]
//! You answer from the passages only.
//! [user]
//! {{ question }}
//! ```
//!
//! Sections are split before rendering and rendered one by one, so no variable value can open a new
//! message: text from users or documents cannot forge a system message.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::PromptError;

/// The front matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A JSON schema (type object) of the variables the template may use.
    #[serde(default = "empty_schema")]
    pub variables: Value,
    #[serde(default)]
    pub model: ModelParams,
    /// The gateway route the prompt is meant for, when it has a preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

fn empty_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// Model parameters a prompt carries to the model call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Who speaks in a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionRole {
    System,
    User,
    Assistant,
}

/// One role section of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub role: SectionRole,
    /// The line of the body (1-based) where the section's text starts.
    pub first_line: usize,
    pub text: String,
}

/// A parsed prompt: its front matter and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptFile {
    pub spec: PromptSpec,
    /// Everything after the closing `+++`, role markers included: what the catalog stores.
    pub body: String,
    /// Lines before the body in the file (0 for a stored version), to report file lines.
    pub body_offset: usize,
    /// Where it came from, for messages: a path, or `prompt NAME vN`.
    pub origin: String,
}

const FENCE: &str = "+++";

impl PromptFile {
    /// Parses a prompt file's text. `origin` names it in errors (usually its path).
    pub fn parse(text: &str, origin: &str) -> Result<PromptFile, PromptError> {
        let format = |message: String| PromptError::Format {
            origin: origin.to_owned(),
            message,
        };
        let text = text
            .strip_prefix('\u{feff}')
            .unwrap_or(text)
            .replace("\r\n", "\n");
        let rest = text.strip_prefix("+++\n").ok_or_else(|| {
            format(
                "a prompt file starts with a `+++` line, then TOML front matter, then `+++`".into(),
            )
        })?;
        let end = rest
            .find("\n+++\n")
            .map(|i| (i, i + "\n+++\n".len()))
            .or_else(|| {
                rest.strip_suffix("\n+++")
                    .map(|front| (front.len(), rest.len()))
            })
            .ok_or_else(|| {
                format("the front matter is not closed: add a line `+++` after it".into())
            })?;
        let front = &rest[..end.0];
        let body = rest[end.1..].to_owned();
        let spec: PromptSpec = toml::from_str(front).map_err(|e| {
            // toml counts lines from the front matter; the file has the opening fence above it.
            let location = e.span().map(|span| {
                let line = front[..span.start].matches('\n').count() + 2;
                format!("line {line}: ")
            });
            format(format!(
                "{}front matter: {}; keys: name, description, variables (a JSON schema), model, route",
                location.unwrap_or_default(),
                e.message()
            ))
        })?;
        crate::source::validate_spec(&spec).map_err(format)?;
        let body_offset = front.matches('\n').count() + 3;
        let file = PromptFile {
            spec,
            body,
            body_offset,
            origin: origin.to_owned(),
        };
        file.sections()?;
        Ok(file)
    }

    /// Rebuilds a prompt from a stored version's spec and template.
    pub fn from_stored(
        spec: &Value,
        template: &str,
        origin: &str,
    ) -> Result<PromptFile, PromptError> {
        let spec: PromptSpec =
            serde_json::from_value(spec.clone()).map_err(|e| PromptError::Format {
                origin: origin.to_owned(),
                message: format!("stored spec: {e}"),
            })?;
        Ok(PromptFile {
            spec,
            body: template.to_owned(),
            body_offset: 0,
            origin: origin.to_owned(),
        })
    }

    /// The body's role sections, in order.
    pub fn sections(&self) -> Result<Vec<Section>, PromptError> {
        let mut sections: Vec<Section> = Vec::new();
        for (index, line) in self.body.split('\n').enumerate() {
            let role = match line.trim_end() {
                "[system]" => Some(SectionRole::System),
                "[user]" => Some(SectionRole::User),
                "[assistant]" => Some(SectionRole::Assistant),
                _ => None,
            };
            match (role, sections.last_mut()) {
                (Some(role), _) => sections.push(Section {
                    role,
                    first_line: index + 2,
                    text: String::new(),
                }),
                (None, Some(section)) => {
                    section.text.push_str(line);
                    section.text.push('\n');
                }
                (None, None) if line.trim().is_empty() => {}
                (None, None) => {
                    return Err(PromptError::Format {
                        origin: self.origin.clone(),
                        message: format!(
                            "line {}: text before the first role marker; start the body with a `[system]` or `[user]` line",
                            self.body_offset + index + 1
                        ),
                    });
                }
            }
        }
        if sections.is_empty() {
            return Err(PromptError::Format {
                origin: self.origin.clone(),
                message: "the body has no role sections; add `[system]` and `[user]` lines, each followed by its text".into(),
            });
        }
        Ok(sections)
    }

    /// The content hash that identifies this prompt's content: the front matter as canonical JSON
    /// plus the body, so reformatting the TOML does not make a new version.
    pub fn content_hash(&self) -> String {
        let spec = serde_json::to_string(&self.spec_json()).unwrap_or_default();
        let digest = Sha256::digest(format!("{spec}\n{FENCE}\n{}", self.body).as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The front matter as the catalog stores it.
    pub fn spec_json(&self) -> Value {
        serde_json::to_value(&self.spec).unwrap_or(Value::Null)
    }

    /// The variable names the schema declares, sorted.
    pub fn declared_variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self.spec.variables["properties"]
            .as_object()
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Checks the front matter beyond its types.
pub(crate) fn validate_spec(spec: &PromptSpec) -> Result<(), String> {
    cairn_core::catalog::validate_name("prompt", &spec.name).map_err(|e| e.to_string())?;
    let schema = &spec.variables;
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("`variables` must be a JSON schema with `type = \"object\"`".into());
    }
    if let Some(properties) = schema.get("properties")
        && !properties.is_object()
    {
        return Err("`variables.properties` must be a table of variable schemas".into());
    }
    jsonschema::meta::validate(schema)
        .map_err(|e| format!("`variables` is not a valid JSON schema: {e}"))?;
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if let Some(default) = property.get("default") {
                let validator = jsonschema::validator_for(property)
                    .map_err(|e| format!("variable `{name}`: invalid schema: {e}"))?;
                if let Some(error) = validator.iter_errors(default).next() {
                    return Err(format!(
                        "variable `{name}`: its default does not match its schema: {error}"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "+++\nname = \"greet\"\n[variables]\ntype = \"object\"\nproperties.who = { type = \"string\" }\n+++\n[system]\nBe brief.\n[user]\nHello {{ who }}\n";

    #[test]
    fn parses_front_matter_and_sections() {
        let file = PromptFile::parse(GOOD, "greet.prompt").expect("parses");
        assert_eq!(file.spec.name, "greet");
        assert_eq!(file.declared_variables(), ["who"]);
        let sections = file.sections().expect("sections");
        assert_eq!(sections.len(), 2);
        assert_eq!(
            (sections[1].role, sections[1].text.as_str()),
            (SectionRole::User, "Hello {{ who }}\n\n")
        );
        assert_eq!(
            file.body_offset + sections[1].first_line,
            10,
            "file line of `Hello`"
        );
    }

    #[test]
    fn hash_ignores_toml_formatting_but_not_content() {
        let reformatted = GOOD.replace("name = \"greet\"", "name   =   \"greet\"   # same");
        let a = PromptFile::parse(GOOD, "a").expect("a");
        let b = PromptFile::parse(&reformatted, "b").expect("b");
        assert_eq!(a.content_hash(), b.content_hash());
        let changed = PromptFile::parse(&GOOD.replace("Be brief.", "Be kind."), "c").expect("c");
        assert_ne!(a.content_hash(), changed.content_hash());
    }

    fn check_format_error(text: &str, fragments: &[&str]) {
        let message = PromptFile::parse(text, "p.prompt")
            .expect_err("refused")
            .to_string();
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "expected `{fragment}` in: {message}"
            );
        }
    }

    #[test]
    fn structural_mistakes_are_named() {
        check_format_error("[user]\nhi\n", &["p.prompt", "starts with a `+++` line"]);
        check_format_error(
            "+++\nname = \"x\"\n[user]\nhi\n",
            &["front matter is not closed"],
        );
        check_format_error(
            "+++\nname = \"x\"\nnmae = \"y\"\n+++\n[user]\nhi\n",
            &["line 3", "unknown field `nmae`"],
        );
        check_format_error(
            "+++\nname = \"x\"\n+++\nhello\n[user]\nhi\n",
            &["line 4", "text before the first role marker"],
        );
        check_format_error("+++\nname = \"x\"\n+++\n\n", &["no role sections"]);
        check_format_error(
            "+++\nname = \"Bad Name\"\n+++\n[user]\nhi\n",
            &["invalid prompt name"],
        );
        check_format_error(
            "+++\nname = \"x\"\n[variables]\ntype = \"array\"\n+++\n[user]\nhi\n",
            &["must be a JSON schema with `type = \"object\"`"],
        );
        check_format_error(
            "+++\nname = \"x\"\n[variables]\ntype = \"object\"\nproperties.n = { type = \"integer\", default = \"five\" }\n+++\n[user]\n{{ n }}\n",
            &["variable `n`", "default does not match"],
        );
    }
}
