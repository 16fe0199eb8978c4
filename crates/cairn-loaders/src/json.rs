//! JSON and JSON Lines: one document per record, its text, title, id, link and metadata taken from
//! configured fields. It does not infer a schema.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::{DocumentError, Format, LoadedDocument, fallback_title, flatten_into, is_http_url};

/// Which fields of a JSON record make the document. Field names may be dotted paths into nested
/// objects (`meta.author`, `authors.0.name`); a key that itself contains dots is matched first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonOptions {
    /// The fields that may hold the text, tried in order: the **first one present with non-blank
    /// text wins** (a string, or a list of strings joined with blank lines). Default `text`,
    /// `content`, `body`.
    pub text_fields: Vec<String>,
    /// The field holding the title; without it (or when the record lacks it) the title is the
    /// record's id.
    pub title_field: Option<String>,
    /// The field holding a stable id (string or number). It names the document
    /// (`<source>#<id>`), so a record keeps its identity when records are added or reordered;
    /// when set, every record must have it and ids must be unique. Without it the record's index
    /// (from 0, blank JSONL lines not counted) is its id.
    pub id_field: Option<String>,
    /// The field holding an http(s) link to the record's original, if any.
    pub url_field: Option<String>,
    /// Fields copied into the metadata under their own names (nested objects flattened to dotted
    /// keys, lists of scalars joined with `", "`); absent fields are skipped.
    pub metadata_fields: Vec<String>,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            text_fields: vec!["text".into(), "content".into(), "body".into()],
            title_field: None,
            id_field: None,
            url_field: None,
            metadata_fields: Vec::new(),
        }
    }
}

/// A JSON file: an object is one record, an array of objects is one record each.
pub(crate) fn load_json(
    source: &str,
    text: &str,
    options: &JsonOptions,
) -> Result<Vec<LoadedDocument>, DocumentError> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        DocumentError::new(
            source,
            format!(
                "is not valid JSON at line {}, column {} ({}); fix the syntax (a file of one object per line should be named .jsonl)",
                error.line(),
                error.column(),
                message_without_position(&error)
            ),
        )
    })?;
    let records = match value {
        Value::Object(record) => vec![Value::Object(record)],
        Value::Array(records) if records.is_empty() => {
            return Err(DocumentError::new(
                source,
                "is an empty JSON array (no records)",
            ));
        }
        Value::Array(records) => records,
        other => {
            return Err(DocumentError::new(
                source,
                format!(
                    "holds a JSON {}; Cairn reads a JSON object or an array of objects",
                    kind(&other)
                ),
            ));
        }
    };
    build(
        source,
        records.into_iter().enumerate().collect(),
        options,
        Format::Json,
    )
}

/// A JSON Lines file: one object per non-blank line.
pub(crate) fn load_jsonl(
    source: &str,
    text: &str,
    options: &JsonOptions,
) -> Result<Vec<LoadedDocument>, DocumentError> {
    let mut records = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|error| {
            DocumentError::new(
                source,
                format!(
                    "line {} is not valid JSON at column {} ({}); each line must be one JSON object",
                    line_index + 1,
                    error.column(),
                    message_without_position(&error)
                ),
            )
        })?;
        records.push((records.len(), value));
    }
    build(source, records, options, Format::Jsonl)
}

fn build(
    source: &str,
    records: Vec<(usize, Value)>,
    options: &JsonOptions,
    format: Format,
) -> Result<Vec<LoadedDocument>, DocumentError> {
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut documents = Vec::with_capacity(records.len());
    for (index, value) in records {
        let Value::Object(record) = value else {
            return Err(DocumentError::new(
                format!("{source}#{index}"),
                format!(
                    "is a JSON {}, not an object; every record must be an object",
                    kind(&value)
                ),
            ));
        };
        let id = match &options.id_field {
            None => index.to_string(),
            Some(field) => match lookup(&record, field).and_then(scalar_text) {
                Some(id) => id,
                None => {
                    return Err(DocumentError::new(
                        format!("{source}#{index}"),
                        format!(
                            "has no id field `{field}` (a string or number); give every record one, or unset [ingest] json_id_field"
                        ),
                    ));
                }
            },
        };
        if let Some(first) = seen_ids.insert(id.clone(), index) {
            return Err(DocumentError::new(
                source,
                format!("records {first} and {index} have the same id `{id}`; ids must be unique"),
            ));
        }
        documents.push(record_document(
            source, index, id, &record, options, format,
        )?);
    }
    Ok(documents)
}

fn record_document(
    source: &str,
    index: usize,
    id: String,
    record: &Map<String, Value>,
    options: &JsonOptions,
    format: Format,
) -> Result<LoadedDocument, DocumentError> {
    let record_source = format!("{source}#{id}");
    let Some(text) = options
        .text_fields
        .iter()
        .find_map(|field| lookup(record, field).and_then(text_of))
    else {
        let tried = options
            .text_fields
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DocumentError::new(
            record_source,
            format!(
                "has no text: none of the fields {tried} holds a non-empty string; set [ingest] json_text_fields to the field that holds the text"
            ),
        ));
    };

    let title = options
        .title_field
        .as_deref()
        .and_then(|field| lookup(record, field))
        .and_then(scalar_text)
        .map(|t| crate::markdown::collapse_whitespace(&t))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            if options.id_field.is_some() {
                id.clone()
            } else {
                format!("{} #{index}", fallback_title(source))
            }
        });

    let url = options
        .url_field
        .as_deref()
        .and_then(|field| lookup(record, field))
        .and_then(Value::as_str)
        .filter(|u| is_http_url(u))
        .map(str::to_owned);

    let mut metadata = Map::new();
    for field in &options.metadata_fields {
        if let Some(value) = lookup(record, field) {
            flatten_into(&mut metadata, field, value, 0);
        }
    }
    metadata.insert("format".into(), Value::from(format.as_str()));
    metadata.insert("record".into(), Value::from(index));
    if options.id_field.is_some() {
        metadata.insert("record_id".into(), Value::from(id));
    }

    Ok(LoadedDocument {
        source: record_source,
        title,
        text,
        format,
        headings: Vec::new(),
        url,
        metadata,
    })
}

/// The value at `path`: the key itself if present, else the dotted path through objects and
/// (by index) arrays.
fn lookup<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = record.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut current = record.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Value::Object(fields) => fields.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Text from a string, or from a list of strings joined with blank lines; `None` when blank.
fn text_of(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// serde_json's message without its " at line L column C" suffix (the caller words the position).
fn message_without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message.strip_suffix(&suffix).unwrap_or(&message).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn dotted_paths_and_literal_dotted_keys() {
        let r = record(json!({ "a": { "b": [ { "c": "deep" } ] }, "x.y": "literal" }));
        assert_eq!(lookup(&r, "a.b.0.c"), Some(&json!("deep")));
        assert_eq!(lookup(&r, "x.y"), Some(&json!("literal")));
        assert_eq!(lookup(&r, "a.missing"), None);
        assert_eq!(lookup(&r, "a.b.x"), None);
    }

    #[test]
    fn the_first_field_with_text_wins() {
        let options = JsonOptions::default();
        let r = record(json!({ "text": "  ", "content": ["p1", "p2"], "body": "ignored" }));
        let document =
            record_document("f.json", 0, "0".into(), &r, &options, Format::Json).expect("has text");
        assert_eq!(document.text, "p1\n\np2");
    }

    #[test]
    fn positions_are_reworded() {
        let error = serde_json::from_str::<Value>("{\n  \"a\": ,\n}").expect_err("invalid");
        assert_eq!(message_without_position(&error), "expected value");
    }
}
