//! Retrieval: dense and lexical candidates from the index, fused with reciprocal-rank fusion, with
//! optional MMR for diversity and an optional cross-encoder rerank; hits are resolved through the
//! catalog into passages that carry everything a citation needs.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::catalog::{Catalog, check_binding};
use cairn_core::index::{Filter, IndexQuery, Probe, ScoredPoint, VectorIndex};
use cairn_core::{EmbeddingModel, Reranker};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::RagError;

/// The constant of reciprocal-rank fusion: a hit at rank r (from 1) scores 1 / (K + r).
pub const RRF_K: f32 = 60.0;

/// Which retrievers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    Dense,
    Lexical,
    #[default]
    Hybrid,
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub collection: String,
    pub query: String,
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub mode: SearchMode,
    /// MMR trade-off between relevance (1.0) and diversity (0.0); off when absent.
    #[serde(default)]
    pub mmr_lambda: Option<f32>,
    /// Rerank the candidates with the cross-encoder, when one is configured.
    #[serde(default)]
    pub rerank: bool,
}

fn default_top_k() -> usize {
    5
}

impl SearchRequest {
    pub fn new(collection: impl Into<String>, query: impl Into<String>, top_k: usize) -> Self {
        SearchRequest {
            collection: collection.into(),
            query: query.into(),
            top_k,
            filter: None,
            mode: SearchMode::Hybrid,
            mmr_lambda: None,
            rerank: false,
        }
    }
}

/// A retrieved chunk with its document and scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub title: String,
    /// The document's source: a path, URL or upload name.
    pub source: String,
    /// A link to the source, when it has one.
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    /// Character offsets of the passage in the document's text.
    pub char_start: u64,
    pub char_end: u64,
    pub content: String,
    /// The final ranking score: cosine (dense), BM25-like (lexical), RRF (hybrid) or the
    /// reranker's relevance.
    pub score: f32,
    /// 1-based ranks in the dense and lexical candidate lists.
    pub dense_rank: Option<usize>,
    pub lexical_rank: Option<usize>,
}

/// Searches collections.
#[derive(Debug, Clone)]
pub struct Retriever {
    catalog: Arc<dyn Catalog>,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn EmbeddingModel>,
    reranker: Option<Arc<dyn Reranker>>,
}

/// A candidate during fusion.
#[derive(Debug, Clone)]
struct Candidate {
    chunk_id: Uuid,
    score: f32,
    dense_rank: Option<usize>,
    lexical_rank: Option<usize>,
    vector: Option<Vec<f32>>,
}

impl Retriever {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn EmbeddingModel>,
        reranker: Option<Arc<dyn Reranker>>,
    ) -> Self {
        Retriever {
            catalog,
            index,
            embedder,
            reranker,
        }
    }

    /// The best `top_k` passages for the query.
    pub async fn search(&self, request: &SearchRequest) -> Result<Vec<Passage>, RagError> {
        if request.query.trim().is_empty() || request.top_k == 0 {
            return Ok(Vec::new());
        }
        let collection = self
            .catalog
            .get_collection(&request.collection)
            .await?
            .ok_or_else(|| RagError::UnknownCollection(request.collection.clone()))?;
        if collection.embedding_model.is_none() {
            return Ok(Vec::new());
        }
        let dimension = u32::try_from(self.embedder.dimension()).unwrap_or(u32::MAX);
        check_binding(&collection, self.embedder.model_id(), dimension)?;

        let rerank = request.rerank && self.reranker.is_some();
        let diversify = request.mmr_lambda.is_some();
        let pool = if rerank || diversify || request.mode == SearchMode::Hybrid {
            (request.top_k * 4).max(20)
        } else {
            request.top_k
        };
        let dense = match request.mode {
            SearchMode::Dense | SearchMode::Hybrid => {
                let vector = self.embedder.embed_query(&request.query).await?;
                self.probe(request, Probe::Dense(vector), pool, diversify)
                    .await?
            }
            SearchMode::Lexical => Vec::new(),
        };
        let lexical = match request.mode {
            SearchMode::Lexical | SearchMode::Hybrid => {
                self.probe(
                    request,
                    Probe::Lexical(request.query.clone()),
                    pool,
                    diversify,
                )
                .await?
            }
            SearchMode::Dense => Vec::new(),
        };
        let mut candidates = match request.mode {
            SearchMode::Dense => ranked(dense, true),
            SearchMode::Lexical => ranked(lexical, false),
            SearchMode::Hybrid => fuse(&dense, &lexical),
        };
        let mut passages = self.resolve(&candidates).await?;
        if let Some(reranker) = self.reranker.as_ref().filter(|_| rerank) {
            let texts: Vec<String> = passages.iter().map(|p| p.content.clone()).collect();
            let scores = reranker.rerank(&request.query, &texts).await?;
            for ((passage, candidate), score) in
                passages.iter_mut().zip(&mut candidates).zip(scores)
            {
                passage.score = score;
                candidate.score = score;
            }
            sort_together(&mut passages, &mut candidates);
        }
        if let Some(lambda) = request.mmr_lambda {
            let order = mmr(&candidates, request.top_k, lambda);
            let mut slots: Vec<Option<Passage>> = passages.into_iter().map(Some).collect();
            passages = order.into_iter().filter_map(|i| slots[i].take()).collect();
        }
        passages.truncate(request.top_k);
        Ok(passages)
    }

    async fn probe(
        &self,
        request: &SearchRequest,
        probe: Probe,
        top_k: usize,
        with_vectors: bool,
    ) -> Result<Vec<ScoredPoint>, RagError> {
        Ok(self
            .index
            .search(&IndexQuery {
                collection: request.collection.clone(),
                probe,
                filter: request.filter.clone(),
                top_k,
                with_vectors,
            })
            .await?)
    }

    /// The candidates as passages, in their order, with their ranks; candidates whose chunk is
    /// gone (deleted since it was indexed) are dropped.
    async fn resolve(&self, candidates: &[Candidate]) -> Result<Vec<Passage>, RagError> {
        let hits: Vec<(Uuid, f32)> = candidates.iter().map(|c| (c.chunk_id, c.score)).collect();
        let mut passages = load_passages(self.catalog.as_ref(), &hits).await?;
        let ranks: HashMap<Uuid, (Option<usize>, Option<usize>)> = candidates
            .iter()
            .map(|c| (c.chunk_id, (c.dense_rank, c.lexical_rank)))
            .collect();
        for passage in &mut passages {
            if let Some((dense, lexical)) = ranks.get(&passage.chunk_id) {
                (passage.dense_rank, passage.lexical_rank) = (*dense, *lexical);
            }
        }
        Ok(passages)
    }
}

/// Chunks by id with their scores, as passages with their documents' titles and sources, in the
/// given order (no ranks). Ids whose chunk or document is gone are dropped. Each document is read
/// once, however many of its chunks there are.
pub async fn load_passages(
    catalog: &dyn Catalog,
    hits: &[(Uuid, f32)],
) -> Result<Vec<Passage>, RagError> {
    let ids: Vec<Uuid> = hits.iter().map(|(id, _)| *id).collect();
    let chunks: HashMap<Uuid, _> = catalog
        .get_chunks(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut documents = HashMap::new();
    let mut passages = Vec::with_capacity(hits.len());
    for (chunk_id, score) in hits {
        let Some(chunk) = chunks.get(chunk_id) else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = documents.entry(chunk.document_id)
        {
            slot.insert(catalog.get_document(chunk.document_id).await?);
        }
        let Some(Some(document)) = documents.get(&chunk.document_id) else {
            continue;
        };
        passages.push(Passage {
            chunk_id: chunk.id,
            document_id: document.id,
            title: document.title.clone(),
            source: document.source.clone(),
            url: document.url(),
            heading_path: chunk.heading_path.clone(),
            char_start: chunk.char_start,
            char_end: chunk.char_end,
            content: chunk.content.clone(),
            score: *score,
            dense_rank: None,
            lexical_rank: None,
        });
    }
    Ok(passages)
}

fn ranked(points: Vec<ScoredPoint>, dense: bool) -> Vec<Candidate> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| Candidate {
            chunk_id: p.chunk_id,
            score: p.score,
            dense_rank: dense.then_some(i + 1),
            lexical_rank: (!dense).then_some(i + 1),
            vector: p.vector,
        })
        .collect()
}

/// Reciprocal-rank fusion of two ranked lists, best first; ties keep the dense order.
fn fuse(dense: &[ScoredPoint], lexical: &[ScoredPoint]) -> Vec<Candidate> {
    let mut by_id: HashMap<Uuid, Candidate> = HashMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    for (list, dense_list) in [(dense, true), (lexical, false)] {
        for (rank, point) in list.iter().enumerate() {
            let entry = by_id.entry(point.chunk_id).or_insert_with(|| {
                order.push(point.chunk_id);
                Candidate {
                    chunk_id: point.chunk_id,
                    score: 0.0,
                    dense_rank: None,
                    lexical_rank: None,
                    vector: None,
                }
            });
            let slot = if dense_list {
                &mut entry.dense_rank
            } else {
                &mut entry.lexical_rank
            };
            *slot = Some(rank + 1);
            entry.score += 1.0 / (RRF_K + (rank + 1) as f32);
            if entry.vector.is_none() {
                entry.vector = point.vector.clone();
            }
        }
    }
    let mut fused: Vec<Candidate> = order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused
}

fn sort_together(passages: &mut Vec<Passage>, candidates: &mut Vec<Candidate>) {
    let mut pairs: Vec<(Passage, Candidate)> = std::mem::take(passages)
        .into_iter()
        .zip(std::mem::take(candidates))
        .collect();
    pairs.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    for (p, c) in pairs {
        passages.push(p);
        candidates.push(c);
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Maximal marginal relevance: picks `k` candidates, each maximising
/// `lambda * relevance - (1 - lambda) * max similarity to those already picked`. Relevance is the
/// candidate's score scaled to [0, 1]. Candidates without a vector count as dissimilar to all.
/// Returns indices into `candidates`.
fn mmr(candidates: &[Candidate], k: usize, lambda: f32) -> Vec<usize> {
    let lambda = lambda.clamp(0.0, 1.0);
    let (min, max) = candidates.iter().fold((f32::MAX, f32::MIN), |(lo, hi), c| {
        (lo.min(c.score), hi.max(c.score))
    });
    let span = if max > min { max - min } else { 1.0 };
    let relevance: Vec<f32> = candidates.iter().map(|c| (c.score - min) / span).collect();
    let mut picked: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    while picked.len() < k && !left.is_empty() {
        let (position, _) = left
            .iter()
            .enumerate()
            .map(|(position, &i)| {
                let redundancy = picked
                    .iter()
                    .filter_map(|&j| match (&candidates[i].vector, &candidates[j].vector) {
                        (Some(a), Some(b)) => Some(cosine(a, b)),
                        _ => None,
                    })
                    .fold(0.0f32, f32::max);
                (
                    position,
                    lambda * relevance[i] - (1.0 - lambda) * redundancy,
                )
            })
            .fold((0, f32::MIN), |best, x| if x.1 > best.1 { x } else { best });
        picked.push(left.remove(position));
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(n: u128, score: f32, vector: Option<Vec<f32>>) -> ScoredPoint {
        ScoredPoint {
            chunk_id: Uuid::from_u128(n),
            document_id: Uuid::from_u128(1000 + n),
            score,
            vector,
        }
    }

    #[test]
    fn rrf_rewards_agreement_between_the_two_lists() {
        let dense = vec![
            point(1, 0.9, None),
            point(2, 0.8, None),
            point(3, 0.7, None),
        ];
        let lexical = vec![
            point(3, 12.0, None),
            point(4, 9.0, None),
            point(2, 3.0, None),
        ];
        let fused = fuse(&dense, &lexical);
        let ids: Vec<u128> = fused.iter().map(|c| c.chunk_id.as_u128()).collect();
        // 3: 1/63 + 1/61; 2: 1/62 + 1/63; 1: 1/61; 4: 1/62.
        assert_eq!(ids, [3, 2, 1, 4]);
        assert_eq!(fused[0].dense_rank, Some(3));
        assert_eq!(fused[0].lexical_rank, Some(1));
        assert_eq!(fused[3].dense_rank, None);
        let expected = 1.0 / 63.0 + 1.0 / 61.0;
        assert!((fused[0].score - expected).abs() < 1e-6);
    }

    #[test]
    fn mmr_skips_a_near_duplicate_in_favour_of_a_different_passage() {
        let candidates = ranked(
            vec![
                point(1, 0.95, Some(vec![1.0, 0.0])),
                point(2, 0.94, Some(vec![0.999, 0.04])),
                point(3, 0.80, Some(vec![0.0, 1.0])),
            ],
            true,
        );
        assert_eq!(
            mmr(&candidates, 2, 1.0),
            [0, 1],
            "lambda 1 is plain relevance"
        );
        assert_eq!(mmr(&candidates, 2, 0.5), [0, 2], "the duplicate gives way");
        assert_eq!(mmr(&candidates, 5, 0.5).len(), 3);
    }
}
