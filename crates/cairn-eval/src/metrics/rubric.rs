//! Rubric judges: criteria written in the suite, each scored by the judge on a scale (1 to
//! `scale`) with its own reason. The metric's score is the mean of the criteria's scores mapped to
//! 0..1; a criterion the judge leaves out or scores off the scale leaves the metric unmeasured.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Score;

/// A criterion as written: a sentence, or a name with a description.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CriterionFile {
    Text(String),
    Named { name: String, description: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Criterion {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Rubric {
    pub criteria: Vec<Criterion>,
    /// Scores run from 1 to this.
    pub scale: u8,
}

impl Rubric {
    pub fn build(criteria: &[CriterionFile], scale: Option<u8>) -> Result<Rubric, String> {
        if criteria.is_empty() {
            return Err(
                "needs `criteria`: what the judge scores, e.g. `- Every claim cites a passage.`"
                    .into(),
            );
        }
        let scale = scale.unwrap_or(5);
        if !(2..=10).contains(&scale) {
            return Err(format!(
                "`scale: {scale}` is outside 2..10; scores run from 1 to the scale"
            ));
        }
        let mut built: Vec<Criterion> = Vec::new();
        for (index, criterion) in criteria.iter().enumerate() {
            let (name, description) = match criterion {
                CriterionFile::Text(text) => (format!("criterion {}", index + 1), text.clone()),
                CriterionFile::Named { name, description } => (name.clone(), description.clone()),
            };
            if name.trim().is_empty() || description.trim().is_empty() {
                return Err(format!("criterion {} is empty", index + 1));
            }
            if built.iter().any(|c| c.name == name) {
                return Err(format!(
                    "two criteria are named `{name}`; give each its own name"
                ));
            }
            built.push(Criterion { name, description });
        }
        Ok(Rubric {
            criteria: built,
            scale,
        })
    }

    pub fn schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["criteria"],
            "properties": {"criteria": {"type": "array", "items": {
                "type": "object",
                "required": ["criterion", "score"],
                "properties": {
                    "criterion": {"type": "string"},
                    "score": {"type": "integer", "minimum": 1, "maximum": self.scale},
                    "reason": {"type": "string"}
                }
            }}}
        })
    }

    /// The mean of the criteria's scores mapped to 0..1, with every criterion's score and reason.
    pub fn read(&self, value: &Value, excerpt: &str) -> Score {
        let Some(scored) = value["criteria"].as_array() else {
            return Score::unmeasured(format!(
                "the judge's answer has no list of `criteria`: {excerpt}"
            ));
        };
        let mut total = 0.0;
        let mut reasons = Vec::new();
        for criterion in &self.criteria {
            let Some(entry) = scored
                .iter()
                .find(|e| e["criterion"].as_str().map(str::trim) == Some(criterion.name.as_str()))
            else {
                return Score::unmeasured(format!(
                    "the judge did not score criterion `{}`",
                    criterion.name
                ));
            };
            let Some(score) = entry["score"]
                .as_f64()
                .filter(|s| s.fract() == 0.0 && (1.0..=f64::from(self.scale)).contains(s))
            else {
                return Score::unmeasured(format!(
                    "the judge scored criterion `{}` {} , not a whole number from 1 to {}",
                    criterion.name, entry["score"], self.scale
                ));
            };
            total += (score - 1.0) / f64::from(self.scale - 1);
            let reason = entry["reason"].as_str().unwrap_or_default();
            reasons.push(format!(
                "{} {score}/{}: {reason}",
                criterion.name, self.scale
            ));
        }
        Score::because(total / self.criteria.len() as f64, reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rubric() -> Rubric {
        Rubric::build(
            &[
                CriterionFile::Named {
                    name: "cites".into(),
                    description: "Every claim cites a passage.".into(),
                },
                CriterionFile::Text("Answers in two sentences at most.".into()),
            ],
            Some(5),
        )
        .expect("builds")
    }

    #[test]
    fn criteria_scores_map_to_the_unit_interval_with_their_reasons() {
        let rubric = rubric();
        assert_eq!(rubric.criteria[1].name, "criterion 2");
        let score = rubric.read(
            &json!({"criteria": [
                {"criterion": "criterion 2", "score": 3, "reason": "three sentences"},
                {"criterion": "cites", "score": 5, "reason": "all cited"}
            ]}),
            "",
        );
        assert_eq!(score.value(), Some(0.75));
        assert_eq!(
            score.reason(),
            Some("cites 5/5: all cited; criterion 2 3/5: three sentences")
        );
    }

    #[test]
    fn missing_or_off_scale_criteria_leave_it_unmeasured() {
        let rubric = rubric();
        let missing = rubric.read(
            &json!({"criteria": [{"criterion": "cites", "score": 5}]}),
            "",
        );
        assert!(
            missing
                .reason()
                .is_some_and(|r| r.contains("`criterion 2`"))
        );
        assert_eq!(missing.value(), None);
        let off = rubric.read(
            &json!({"criteria": [{"criterion": "cites", "score": 7}, {"criterion": "criterion 2", "score": 1}]}),
            "",
        );
        assert_eq!(off.value(), None);
        assert_eq!(rubric.read(&json!({"verdict": "yes"}), "x").value(), None);
        assert!(Rubric::build(&[], None).is_err());
        assert!(Rubric::build(&[CriterionFile::Text("a".into())], Some(1)).is_err());
    }
}
