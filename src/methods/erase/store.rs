//! Embeddings, batched cosine top-k retrieval, and the two memories compared: an append-only
//! document store (RAG) and ERASE's knowledge base of facts with histories.
//!
//! Embedding: every word maps to a fixed pseudo-random vector in [-1, 1]^D (Philox keyed by the
//! word's FNV-1a hash); a text is the normalised sum of its words' vectors, so texts sharing w of
//! their 3 words have cosine about w / 3 (plus noise of order 1 / sqrt(D)).
//! Retrieval: the (Q, N) cosine matrix is one matmul on the model's device (queries and keys are
//! unit rows), then each row's top k are picked on the host.

use super::world::{read, Fact};
use crate::rng::Philox;
use crate::tensor::{Device, Tensor};
use crate::Result;
use serde::Serialize;

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The unit-length embedding (D) of a text.
pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dim];
    for w in text.split_whitespace() {
        let g = Philox::new(fnv1a(w));
        for (j, x) in v.iter_mut().enumerate() {
            let word = g.block((j / 4) as u64, 0, 41)[j % 4];
            *x += word as f32 / 2147483648.0 - 1.0;
        }
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// For each query row (Q, D), the `k` keys (N, D) of largest cosine, best first, as
/// (key index, cosine); keys where `keep` is false are skipped. Rows are unit length.
pub fn cosine_topk(queries: &[f32], keys: &[f32], dim: usize, k: usize, keep: &dyn Fn(usize) -> bool, device: Device) -> Result<Vec<Vec<(usize, f32)>>> {
    let (q, n) = (queries.len() / dim, keys.len() / dim);
    if q == 0 || n == 0 {
        return Ok(vec![Vec::new(); q]);
    }
    let a = Tensor::from_vec(queries.to_vec(), [q, dim])?.to_device(device)?;
    let b = Tensor::from_vec(keys.to_vec(), [n, dim])?.to_device(device)?;
    let sims = a.matmul_t(&b, false, true)?.to_vec_f32()?; // (Q, N)
    Ok(sims
        .chunks(n)
        .map(|row| {
            let mut idx: Vec<usize> = (0..n).filter(|&i| keep(i)).collect();
            idx.sort_by(|&x, &y| row[y].total_cmp(&row[x]).then(x.cmp(&y)));
            idx.into_iter().take(k).map(|i| (i, row[i])).collect()
        })
        .collect())
}

/// The answer of a set of retrieved facts to (entity, relation): the value of the best-ranked
/// fact about that pair (None if no retrieved fact is about it).
pub fn answer(retrieved: &[(usize, f32)], facts: &dyn Fn(usize) -> Option<Fact>, entity: usize, relation: usize) -> Option<usize> {
    retrieved.iter().filter_map(|&(i, _)| facts(i)).find(|f| f.entity == entity && f.relation == relation).map(|f| f.value)
}

/// A fact of ERASE's knowledge base with its history.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub fact: Fact,
    pub text: String,
    pub true_now: bool,
    /// (step, what happened): "added", "reinforced", "made false"
    pub history: Vec<(usize, &'static str)>,
}

/// ERASE's knowledge base: facts (the canonical template-0 text) and their embeddings.
#[derive(Clone, Debug, Default)]
pub struct Kb {
    pub entries: Vec<Entry>,
    pub keys: Vec<f32>,
    /// documents whose related facts were updated: reinforced, made false
    pub reinforced: usize,
    pub made_false: usize,
}

impl Kb {
    /// Take in one document: retrieve the true facts with cosine >= `threshold` (at most
    /// `k_update`), let the reader judge each (same entity and relation: the same value is
    /// reinforced, another is made false), then add the document's own fact unless it was
    /// reinforced. A document the reader cannot parse changes nothing.
    pub fn ingest(&mut self, step: usize, doc: &str, dim: usize, threshold: f32, k_update: usize, device: Device) -> Result<()> {
        let Some(new) = read(doc) else { return Ok(()) };
        let q = embed(doc, dim);
        let entries = &self.entries;
        let hits = cosine_topk(&q, &self.keys, dim, k_update, &|i| entries[i].true_now, device)?.pop().unwrap_or_default();
        let mut known = false;
        for (i, cos) in hits {
            if cos < threshold {
                break;
            }
            let e = &mut self.entries[i];
            if e.fact.entity == new.entity && e.fact.relation == new.relation {
                if e.fact.value == new.value {
                    e.history.push((step, "reinforced"));
                    self.reinforced += 1;
                    known = true;
                } else {
                    e.true_now = false;
                    e.history.push((step, "made false"));
                    self.made_false += 1;
                }
            }
        }
        if !known {
            let text = new.text(0);
            self.keys.extend(embed(&text, dim));
            self.entries.push(Entry { fact: new, text, true_now: true, history: vec![(step, "added")] });
        }
        Ok(())
    }
}
