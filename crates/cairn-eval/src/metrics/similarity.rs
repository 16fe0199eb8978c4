//! Embedding similarity to a reference: the cosine of the answer's and the expected text's vectors
//! under Cairn's own embedding model (the one collections are indexed with), for answers whose
//! wording may differ from the reference while meaning the same.

use cairn_core::eval::{Answerer, EvalAnswer, EvalCallError};

use super::Score;
use crate::dataset::Case;

#[derive(Debug, Clone)]
pub struct Similarity {
    /// The text to compare with; default: the case's reference answer.
    pub value: Option<String>,
}

impl Similarity {
    /// The cosine similarity, clamped to 0..=1; unmeasured when the answer or expected text is
    /// empty or a vector cannot be made.
    pub async fn score(
        &self,
        answerer: &dyn Answerer,
        case: &Case,
        answer: &EvalAnswer,
    ) -> Result<Score, EvalCallError> {
        let Some(expected) = self.value.as_ref().or(case.reference.as_ref()) else {
            return Ok(Score::unmeasured("no reference answer to compare with"));
        };
        if answer.text.trim().is_empty() {
            return Ok(Score::because(0.0, "the answer is empty"));
        }
        let vectors = match answerer
            .embed(&[answer.text.clone(), expected.clone()])
            .await
        {
            Ok(vectors) => vectors,
            Err(EvalCallError::Failed(reason)) => {
                return Ok(Score::unmeasured(format!(
                    "the embedding model failed: {reason}"
                )));
            }
            Err(unusable) => return Err(unusable),
        };
        let [a, b] = vectors.as_slice() else {
            return Ok(Score::unmeasured(format!(
                "the embedding model returned {} vectors for 2 texts",
                vectors.len()
            )));
        };
        match cosine(a, b) {
            Some(value) => Ok(Score::because(
                value.clamp(0.0, 1.0),
                format!("cosine similarity to the reference: {value:.3}"),
            )),
            None => Ok(Score::unmeasured(
                "the embedding model returned vectors of different lengths or zero length",
            )),
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    (na > 0.0 && nb > 0.0).then(|| dot / (na.sqrt() * nb.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::cosine;

    #[test]
    fn cosine_of_vectors() {
        assert_eq!(cosine(&[1.0, 0.0], &[1.0, 0.0]), Some(1.0));
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), Some(0.0));
        assert!(
            (cosine(&[1.0, 1.0], &[1.0, 0.0]).unwrap_or_default()
                - std::f64::consts::FRAC_1_SQRT_2)
                .abs()
                < 1e-9
        );
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
    }
}
