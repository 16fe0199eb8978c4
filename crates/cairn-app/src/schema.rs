//! Answers that must be JSON (`response_format`): checked against the caller's JSON Schema, and
//! repaired by asking the model again with what was wrong, a bounded number of times.

use cairn_core::model::{
    ChatMessage, ChatRequest, ChatResponse, ResponseFormat, Role, unfenced_json,
};
use serde_json::Value;

/// Model calls one answer may take to meet its schema: the first and two repairs.
pub const MAX_ATTEMPTS: u32 = 3;

/// What is wrong with `text` as an answer in `format`, or `None` when it fits (or no format was
/// asked for). A JSON answer wrapped in a Markdown code fence is unwrapped first.
pub fn problem(format: Option<&ResponseFormat>, text: &str) -> Option<String> {
    let schema = match format {
        None | Some(ResponseFormat::Text) => return None,
        Some(ResponseFormat::JsonObject) => None,
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(schema),
    };
    let value: Value = match serde_json::from_str(unfenced_json(text)) {
        Ok(value) => value,
        Err(error) => return Some(format!("the answer is not JSON ({error})")),
    };
    let Some(schema) = schema else {
        return (!value.is_object()).then(|| "the answer is JSON but not an object".to_owned());
    };
    // A schema that does not compile is the provider's to judge, as it was before Cairn.
    let validator = jsonschema::validator_for(schema).ok()?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at {at})")
            }
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// The request again, with the answer that missed and what was wrong with it.
pub fn repair(request: &ChatRequest, answer: &ChatResponse, problem: &str) -> ChatRequest {
    let mut repair = request.clone();
    repair.messages.push(ChatMessage::new(
        Role::Assistant,
        answer.message.content.clone(),
    ));
    repair.messages.push(ChatMessage::new(
        Role::User,
        format!(
            "Your answer does not match the required JSON schema: {problem}. Reply again with only \
             the JSON value, matching the schema exactly."
        ),
    ));
    repair
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ResponseFormat {
        ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object", "required": ["answer"],
                           "properties": {"answer": {"type": "string"}}, "additionalProperties": false}),
            strict: true,
        }
    }

    #[test]
    fn answers_are_checked_against_the_schema() {
        assert_eq!(problem(Some(&schema()), r#"{"answer": "ok"}"#), None);
        assert_eq!(
            problem(Some(&schema()), "```json\n{\"answer\": \"ok\"}\n```"),
            None
        );
        let missing = problem(Some(&schema()), r#"{"reply": "ok"}"#).expect("a problem");
        assert!(missing.contains("answer"), "{missing}");
        let typed = problem(Some(&schema()), r#"{"answer": 3}"#).expect("a problem");
        assert!(typed.contains("/answer"), "{typed}");
        assert!(
            problem(Some(&schema()), "Sure! {answer: ok}").is_some_and(|p| p.contains("not JSON"))
        );
        assert!(problem(Some(&ResponseFormat::JsonObject), "[1, 2]").is_some());
        assert_eq!(problem(Some(&ResponseFormat::JsonObject), "{}"), None);
        assert_eq!(problem(None, "anything"), None);
    }
}
