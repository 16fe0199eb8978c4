//! Metadata filters as keyword matches, so that Qdrant gives exactly what [`Filter::matches`] gives.
//!
//! Qdrant's own `match` compares strings, integers and booleans by type rules of its own (an integer
//! condition also matches a float payload of the same value, floats cannot be matched at all, arrays
//! match by element). [`Filter::matches`] is plain JSON equality. To keep that equality, every
//! metadata field is stored as one keyword, `<field as JSON>=<value as canonical JSON>`, in the
//! [`FILTER_TERMS`](crate::layout::FILTER_TERMS) array, and a condition becomes a keyword match on it:
//! `Equals` matches one keyword, `AnyOf` any of several. A missing field has no keyword, so it
//! matches nothing, as in the reference. The field part is a JSON string literal, so the first
//! unescaped `"=` ends it and no two (field, value) pairs share a keyword.

use cairn_core::index::{Condition, Filter};
use serde_json::{Map, Value};

/// The keywords stored for a point's metadata, one per field.
pub fn filter_terms(metadata: &Map<String, Value>) -> Vec<String> {
    metadata
        .iter()
        .map(|(field, value)| filter_term(field, value))
        .collect()
}

/// The keyword for one metadata field and value.
pub fn filter_term(field: &str, value: &Value) -> String {
    let mut term = String::new();
    write_canonical(&Value::String(field.to_owned()), &mut term);
    term.push('=');
    write_canonical(value, &mut term);
    term
}

/// JSON with object keys sorted and zero without a sign, so that values `serde_json` considers
/// equal have the same text. (Object key order is not enough: with `preserve_order`, which
/// qdrant-edge enables, maps serialise in insertion order but compare as sets.)
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Number(number) if number.as_f64() == Some(0.0) && number.is_f64() => {
            // -0.0 == 0.0 for serde_json, but they print differently.
            out.push_str("0.0");
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A filter as keyword groups: a point passes when, for every `must` group, one of its keywords is
/// among the point's terms, and for no `must_not` group is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TermFilter {
    pub must: Vec<Vec<String>>,
    pub must_not: Vec<Vec<String>>,
}

/// A keyword no point carries (every stored keyword contains `=`): matching it matches nothing.
pub const NO_TERM: &str = "";

impl TermFilter {
    /// Translates a port filter; `None` when nothing is to be filtered.
    ///
    /// An empty `AnyOf` matches nothing: under `must` it becomes the group `[NO_TERM]`, under
    /// `must_not` it is dropped (an empty "any" list is not left to the backend to interpret).
    pub fn from_filter(filter: &Filter) -> Option<Self> {
        let must: Vec<Vec<String>> = filter
            .must
            .iter()
            .map(|c| {
                let terms = condition_terms(c);
                if terms.is_empty() {
                    vec![NO_TERM.to_owned()]
                } else {
                    terms
                }
            })
            .collect();
        let must_not: Vec<Vec<String>> = filter
            .must_not
            .iter()
            .map(condition_terms)
            .filter(|terms| !terms.is_empty())
            .collect();
        if must.is_empty() && must_not.is_empty() {
            None
        } else {
            Some(Self { must, must_not })
        }
    }
}

fn condition_terms(condition: &Condition) -> Vec<String> {
    let mut terms: Vec<String> = match condition {
        Condition::Equals { field, value } => vec![filter_term(field, value)],
        Condition::AnyOf { field, values } => {
            values.iter().map(|v| filter_term(field, v)).collect()
        }
    };
    terms.sort();
    terms.dedup();
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    /// The keyword evaluation of a term filter, as Qdrant performs it.
    fn passes(filter: &TermFilter, metadata: &Map<String, Value>) -> bool {
        let terms = filter_terms(metadata);
        let hit = |group: &Vec<String>| group.iter().any(|t| terms.contains(t));
        filter.must.iter().all(hit) && !filter.must_not.iter().any(hit)
    }

    #[test]
    fn keyword_evaluation_agrees_with_the_reference() {
        let points = [
            json!({"lang": "en", "year": 2021, "draft": false, "score": 1.0}),
            json!({"lang": "fr", "year": 2022, "draft": true, "score": 1}),
            json!({"lang": "2021", "year": 2021.0, "tags": {"b": 1, "a": 2}}),
            json!({"year": -0.0, "lang": "en fr", "a\"=b": "c"}),
            json!({}),
        ]
        .map(map);
        let filters = [
            Filter {
                must: vec![Condition::Equals {
                    field: "lang".into(),
                    value: json!("en"),
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![Condition::Equals {
                    field: "year".into(),
                    value: json!(2021),
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![Condition::Equals {
                    field: "score".into(),
                    value: json!(1.0),
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![Condition::Equals {
                    field: "year".into(),
                    value: json!(0.0),
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![Condition::Equals {
                    field: "tags".into(),
                    value: json!({"a": 2, "b": 1}),
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![Condition::Equals {
                    field: "a\"".into(),
                    value: json!("b\"=\"c"),
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![Condition::AnyOf {
                    field: "lang".into(),
                    values: vec![json!("fr"), json!(2021), json!("en fr")],
                }],
                must_not: vec![Condition::Equals {
                    field: "draft".into(),
                    value: json!(true),
                }],
            },
            Filter {
                must: vec![Condition::AnyOf {
                    field: "lang".into(),
                    values: vec![],
                }],
                must_not: vec![],
            },
            Filter {
                must: vec![],
                must_not: vec![
                    Condition::AnyOf {
                        field: "lang".into(),
                        values: vec![],
                    },
                    Condition::Equals {
                        field: "missing".into(),
                        value: json!(null),
                    },
                ],
            },
        ];
        for filter in &filters {
            for point in &points {
                let expected = filter.matches(point);
                let got = TermFilter::from_filter(filter).is_none_or(|f| passes(&f, point));
                assert_eq!(got, expected, "filter {filter:?} on {point:?}");
            }
        }
    }

    #[test]
    fn empty_filters_filter_nothing() {
        assert_eq!(TermFilter::from_filter(&Filter::default()), None);
    }

    #[test]
    fn terms_are_canonical() {
        assert_eq!(filter_term("lang", &json!("en")), r#""lang"="en""#);
        assert_eq!(
            filter_term("t", &json!({"b": [1, 2.5], "a": null})),
            r#""t"={"a":null,"b":[1,2.5]}"#
        );
        assert_ne!(filter_term("y", &json!(1)), filter_term("y", &json!(1.0)));
    }
}
