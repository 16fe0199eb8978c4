//! Retrieval metrics from gold passages, with no model call: recall@k, precision@k, MRR and nDCG@k
//! over the passages the answer was given, best first.
//!
//! A passage is relevant when it comes from a gold document (its source ends with the gold
//! document's path, or its title equals it) and, where the gold passage gives text, contains that
//! text (whitespace and case folded).

use cairn_core::eval::EvalPassage;

use super::{MetricKind, Score};
use crate::dataset::{Case, Gold};

#[derive(Debug, Clone)]
pub struct Retrieval {
    kind: MetricKind,
    k: usize,
}

impl Retrieval {
    pub fn build(kind: MetricKind, k: Option<usize>) -> Result<Retrieval, String> {
        let k = k.unwrap_or(5);
        if k == 0 {
            return Err("`k` must be at least 1".into());
        }
        Ok(Retrieval { kind, k })
    }

    pub fn name(&self) -> String {
        match self.kind {
            MetricKind::RecallAtK => format!("recall@{}", self.k),
            MetricKind::PrecisionAtK => format!("precision@{}", self.k),
            MetricKind::NdcgAtK => format!("ndcg@{}", self.k),
            _ => "mrr".to_owned(),
        }
    }

    pub fn score(&self, case: &Case, passages: &[EvalPassage]) -> Score {
        if case.gold.is_empty() {
            return Score::unmeasured("the case names no gold passage");
        }
        let top: Vec<&EvalPassage> = passages.iter().take(self.k).collect();
        // Which gold passage (if any) each retrieved passage matches.
        let hits: Vec<Option<usize>> = top
            .iter()
            .map(|p| case.gold.iter().position(|g| matches(g, p)))
            .collect();
        let found = |gold_idx: usize| hits.contains(&Some(gold_idx));
        let value = match self.kind {
            MetricKind::RecallAtK => {
                (0..case.gold.len()).filter(|&g| found(g)).count() as f64 / case.gold.len() as f64
            }
            MetricKind::PrecisionAtK => {
                if top.is_empty() {
                    0.0
                } else {
                    hits.iter().filter(|h| h.is_some()).count() as f64 / top.len() as f64
                }
            }
            MetricKind::NdcgAtK => {
                // Binary relevance; each gold passage counts once, at its first hit.
                let mut counted = Vec::new();
                let dcg: f64 = hits
                    .iter()
                    .enumerate()
                    .filter_map(|(rank, hit)| {
                        let gold_idx = (*hit)?;
                        if counted.contains(&gold_idx) {
                            return None;
                        }
                        counted.push(gold_idx);
                        Some(1.0 / ((rank + 2) as f64).log2())
                    })
                    .sum();
                let ideal: f64 = (0..case.gold.len().min(self.k))
                    .map(|rank| 1.0 / ((rank + 2) as f64).log2())
                    .sum();
                dcg / ideal
            }
            _ => hits
                .iter()
                .position(Option::is_some)
                .map_or(0.0, |rank| 1.0 / (rank + 1) as f64),
        };
        Score::measured(value)
    }
}

fn matches(gold: &Gold, passage: &EvalPassage) -> bool {
    let document = gold.document.trim_start_matches("./");
    let from_document = passage.source.ends_with(document) || passage.title == gold.document;
    from_document
        && gold
            .text
            .as_deref()
            .is_none_or(|text| folded(&passage.text).contains(&folded(text)))
}

fn folded(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(source: &str, text: &str) -> EvalPassage {
        EvalPassage {
            source: source.into(),
            title: String::new(),
            text: text.into(),
            score: 0.0,
        }
    }

    fn case(gold: &[(&str, Option<&str>)]) -> Case {
        Case {
            id: "c".into(),
            question: "q".into(),
            variables: Default::default(),
            reference: None,
            gold: gold
                .iter()
                .map(|(d, t)| Gold {
                    document: (*d).into(),
                    text: t.map(str::to_owned),
                })
                .collect(),
            tags: Vec::new(),
            origin: "t:1".into(),
            given: None,
        }
    }

    fn check(kind: MetricKind, k: usize, gold: &[(&str, Option<&str>)], expected: f64) {
        let passages = [
            passage("/docs/a.html", "alpha text"),
            passage("/docs/b.html", "Beta   TEXT here"),
            passage("/docs/a.html", "more alpha"),
        ];
        let metric = Retrieval::build(kind, Some(k)).expect("builds");
        let value = metric
            .score(&case(gold), &passages)
            .value()
            .expect("measured");
        assert!(
            (value - expected).abs() < 1e-9,
            "{} with gold {gold:?}: {value}, expected {expected}",
            metric.name()
        );
    }

    #[test]
    fn retrieval_metrics_score_from_gold_documents_and_text() {
        check(MetricKind::RecallAtK, 5, &[("b.html", None)], 1.0);
        check(MetricKind::RecallAtK, 1, &[("b.html", None)], 0.0);
        check(
            MetricKind::RecallAtK,
            5,
            &[("b.html", Some("beta text")), ("c.html", None)],
            0.5,
        );
        check(MetricKind::RecallAtK, 5, &[("b.html", Some("gamma"))], 0.0);
        check(MetricKind::PrecisionAtK, 3, &[("a.html", None)], 2.0 / 3.0);
        check(MetricKind::Mrr, 5, &[("b.html", None)], 0.5);
        check(MetricKind::Mrr, 5, &[("z.html", None)], 0.0);
        check(MetricKind::NdcgAtK, 5, &[("a.html", None)], 1.0);
        check(
            MetricKind::NdcgAtK,
            5,
            &[("b.html", None)],
            1.0 / 3f64.log2(),
        );
    }
}
