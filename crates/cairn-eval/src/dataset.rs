//! Datasets: the cases a suite runs, from the suite file itself (`cases:`), a JSONL file or a CSV
//! file. Each case remembers where it came from (`file:line`), so a problem found later names the
//! line to fix.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::SuiteError;

/// One question with what a good answer looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub question: String,
    /// Prompt variables (a prompt target renders from them; `question` is added unless set).
    pub variables: Map<String, Value>,
    /// The reference answer.
    pub reference: Option<String>,
    /// The passages a good retrieval finds.
    pub gold: Vec<Gold>,
    pub tags: Vec<String>,
    /// `file:line` of the case.
    pub origin: String,
    /// An answer already given (a logged production answer, another system's output), for suites
    /// whose target is `given`: it is scored as it is, and no target is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<Given>,
}

/// A given answer and the passages it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Given {
    pub response: String,
    pub contexts: Vec<String>,
}

/// A passage that answers the case: a document (its source or file name) and, optionally, text the
/// passage must contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gold {
    pub document: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// A case as written in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(default)]
    pub id: Option<String>,
    pub question: String,
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// The reference answer (`answer` is accepted as well, as in the golden retrieval sets).
    #[serde(default, alias = "answer")]
    pub reference: Option<String>,
    #[serde(default)]
    pub gold: Vec<Gold>,
    /// Shorthand for one gold document: `file: sql-truncate.html`.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `target: given`: the answer to score.
    #[serde(default)]
    pub response: Option<String>,
    /// `target: given`: the passages the answer was given.
    #[serde(default)]
    pub contexts: Vec<String>,
}

impl CaseFile {
    pub fn into_case(self, index: usize, origin: String) -> Case {
        let mut gold = self.gold;
        if let Some(file) = self.file {
            gold.push(Gold {
                document: file,
                text: None,
            });
        }
        Case {
            id: self.id.unwrap_or_else(|| format!("case-{}", index + 1)),
            question: self.question,
            variables: self.variables,
            reference: self.reference,
            gold,
            tags: self.tags,
            origin,
            given: self.response.map(|response| Given {
                response,
                contexts: self.contexts,
            }),
        }
    }
}

/// Reads a JSONL dataset: one case per non-empty line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Case>, SuiteError> {
    let text = read(path)?;
    let mut cases = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{}:{}", path.display(), line_idx + 1);
        let case: CaseFile = serde_json::from_str(line).map_err(|e| SuiteError::Dataset {
            origin: origin.clone(),
            message: format!(
                "{e}; a case is a JSON object with question, and optionally id, variables, reference, gold [{{document, text}}], file, tags, response and contexts"
            ),
        })?;
        let index = cases.len();
        cases.push(case.into_case(index, origin));
    }
    Ok(cases)
}

/// Reads a CSV dataset with a header row: `question` (required), `id`, `reference`, `gold_document`,
/// `gold_text`, `tags` (separated by `;`), `response` and `contexts` (a JSON array of strings) for
/// given answers, and `var.NAME` columns for prompt variables.
pub fn read_csv(path: &Path) -> Result<Vec<Case>, SuiteError> {
    let text = read(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| SuiteError::Dataset {
            origin: format!("{}:1", path.display()),
            message: format!("cannot read the header row: {e}"),
        })?
        .clone();
    let known = [
        "id",
        "question",
        "reference",
        "gold_document",
        "gold_text",
        "tags",
        "response",
        "contexts",
    ];
    if let Some(unknown) = headers
        .iter()
        .find(|h| !known.contains(h) && !h.starts_with("var."))
    {
        return Err(SuiteError::Dataset {
            origin: format!("{}:1", path.display()),
            message: format!(
                "unknown column `{unknown}`; columns: {}, or var.NAME for a prompt variable",
                known.join(", ")
            ),
        });
    }
    if !headers.iter().any(|h| h == "question") {
        return Err(SuiteError::Dataset {
            origin: format!("{}:1", path.display()),
            message: "no `question` column; the header row must name one".into(),
        });
    }
    let mut cases = Vec::new();
    for (row_idx, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(row_idx + 2, |p| {
                usize::try_from(p.line()).unwrap_or(row_idx + 2)
            });
        let origin = format!("{}:{line}", path.display());
        let record = record.map_err(|e| SuiteError::Dataset {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        let field = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let Some(question) = field("question") else {
            return Err(SuiteError::Dataset {
                origin,
                message: "the question is empty".into(),
            });
        };
        let variables = headers
            .iter()
            .zip(record.iter())
            .filter_map(|(h, v)| {
                h.strip_prefix("var.")
                    .map(|name| (name.to_owned(), Value::String(v.to_owned())))
            })
            .collect();
        let gold = field("gold_document")
            .map(|document| Gold {
                document,
                text: field("gold_text"),
            })
            .into_iter()
            .collect();
        let case = CaseFile {
            id: field("id"),
            question,
            variables,
            reference: field("reference"),
            gold,
            file: None,
            tags: field("tags")
                .map(|t| t.split(';').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
            response: field("response"),
            // A JSON array of strings, as the column's text.
            contexts: match field("contexts") {
                None => Vec::new(),
                Some(text) => serde_json::from_str(&text).map_err(|e| SuiteError::Dataset {
                    origin: origin.clone(),
                    message: format!("`contexts` is not a JSON array of strings ({e})"),
                })?,
            },
        };
        let index = cases.len();
        cases.push(case.into_case(index, origin));
    }
    Ok(cases)
}

fn read(path: &Path) -> Result<String, SuiteError> {
    std::fs::read_to_string(path).map_err(|e| SuiteError::Dataset {
        origin: path.display().to_string(),
        message: format!("cannot read the dataset: {e}; the path is relative to the suite file"),
    })
}

/// Case ids must be unique: runs are compared case by case.
pub fn check_unique(cases: &[Case]) -> Result<(), SuiteError> {
    let mut seen = std::collections::HashMap::new();
    for case in cases {
        if let Some(first) = seen.insert(case.id.as_str(), case.origin.as_str()) {
            return Err(SuiteError::Dataset {
                origin: case.origin.clone(),
                message: format!(
                    "case id `{}` is used twice (first at {first}); ids must be unique so runs can be compared case by case",
                    case.id
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn jsonl_cases_keep_their_line_and_the_golden_set_shorthand() {
        let (_dir, path) = write(
            "set.jsonl",
            "{\"id\": \"a\", \"question\": \"q1\", \"file\": \"x.html\", \"answer\": \"r1\"}\n\n{\"question\": \"q2\"}\n",
        );
        let cases = read_jsonl(&path).expect("reads");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].reference.as_deref(), Some("r1"));
        assert_eq!(cases[0].gold[0].document, "x.html");
        assert_eq!(cases[1].id, "case-2");
        assert!(
            cases[1].origin.ends_with("set.jsonl:3"),
            "{}",
            cases[1].origin
        );
    }

    #[test]
    fn a_bad_jsonl_line_is_named() {
        let (_dir, path) = write(
            "set.jsonl",
            "{\"question\": \"q1\"}\n{\"questoin\": \"q2\"}\n",
        );
        let err = read_jsonl(&path).expect_err("unknown key").to_string();
        assert!(err.contains("set.jsonl:2"), "{err}");
        assert!(err.contains("questoin"), "{err}");
    }

    #[test]
    fn csv_cases_read_variables_gold_and_tags() {
        let (_dir, path) = write(
            "set.csv",
            "id,question,reference,gold_document,tags,var.tone\nc1,\"What, exactly?\",r,doc.md,a;b,dry\n",
        );
        let cases = read_csv(&path).expect("reads");
        assert_eq!(cases[0].question, "What, exactly?");
        assert_eq!(cases[0].variables["tone"], "dry");
        assert_eq!(cases[0].gold[0].document, "doc.md");
        assert_eq!(cases[0].tags, ["a", "b"]);
    }

    #[test]
    fn an_unknown_csv_column_is_refused_with_the_columns_it_knows() {
        let (_dir, path) = write("set.csv", "question,answr\nq,a\n");
        let err = read_csv(&path).expect_err("unknown column").to_string();
        assert!(err.contains("answr") && err.contains("reference"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let (_dir, path) = write(
            "set.jsonl",
            "{\"id\": \"a\", \"question\": \"q1\"}\n{\"id\": \"a\", \"question\": \"q2\"}\n",
        );
        let cases = read_jsonl(&path).expect("reads");
        let err = check_unique(&cases).expect_err("duplicate").to_string();
        assert!(
            err.contains("set.jsonl:2") && err.contains("set.jsonl:1"),
            "{err}"
        );
    }
}
