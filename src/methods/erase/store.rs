//! Embeddings, batched cosine top-k retrieval, and the two memories compared: an append-only
//! document store (RAG) and ERASE's knowledge base of facts with histories, edited by a reader's
//! judgments (reader.rs).
//!
//! Embedding: every word maps to a fixed pseudo-random vector in [-1, 1]^D (Philox keyed by the
//! word's FNV-1a hash); a text is the normalised sum of its words' vectors, so texts sharing w of
//! their 3 words have cosine about w / 3 (plus noise of order 1 / sqrt(D)).
//! Retrieval: the (Q, N) cosine matrix is one matmul on the model's device (queries and keys are
//! unit rows), and each row's top k are picked there too (`Tensor::topk`).

use super::reader::{Judgment, Reader};
use super::world::Fact;
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

/// For each query row (Q, D), the `k` keys (N, D) of largest cosine, best first (ties: the lower
/// index), as (key index, cosine); keys where `keep` is false are skipped. Rows are unit length.
/// On the device: the (Q, N) matmul, skipped keys set to NaN (which topk never takes), and
/// `Tensor::topk`; only the (Q, k) winners come back to the host.
pub fn cosine_topk(queries: &[f32], keys: &[f32], dim: usize, k: usize, keep: &dyn Fn(usize) -> bool, device: Device) -> Result<Vec<Vec<(usize, f32)>>> {
    let (q, n) = (queries.len() / dim, keys.len() / dim);
    if q == 0 || n == 0 {
        return Ok(vec![Vec::new(); q]);
    }
    let a = Tensor::from_vec(queries.to_vec(), [q, dim])?.to_device(device)?;
    let b = Tensor::from_vec(keys.to_vec(), [n, dim])?.to_device(device)?;
    let skip: Vec<f32> = (0..n).map(|i| if keep(i) { 0.0 } else { f32::NAN }).collect();
    let skip = Tensor::from_vec(skip, [1, n])?.to_device(device)?;
    let sims = a.matmul_t(&b, false, true)?.add(&skip)?; // (Q, N)
    let k = k.min(n);
    let (vals, idx) = sims.topk(k)?; // (Q, k) each
    let (vals, idx) = (vals.to_vec_f32()?, idx.to_vec_u32()?);
    Ok((0..q).map(|r| (r * k..(r + 1) * k).filter(|&j| idx[j] != u32::MAX).map(|j| (idx[j] as usize, vals[j])).collect()).collect())
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

/// ERASE's knowledge base: facts (the canonical template-0 text) and their embeddings, and how
/// a document is related to them (embedding width, cosine threshold, at most `k_update` facts).
#[derive(Clone, Debug)]
pub struct Kb {
    pub entries: Vec<Entry>,
    /// (N, D) unit rows, one per entry
    pub keys: Vec<f32>,
    /// judgments applied: facts reinforced, facts made false
    pub reinforced: usize,
    pub made_false: usize,
    pub dim: usize,
    pub threshold: f32,
    pub k_update: usize,
    pub device: Device,
}

impl Kb {
    pub fn new(dim: usize, threshold: f32, k_update: usize, device: Device) -> Kb {
        Kb { entries: Vec::new(), keys: Vec::new(), reinforced: 0, made_false: 0, dim, threshold, k_update, device }
    }

    /// Take in one document whose fact the reader extracted as `new`: retrieve the true facts
    /// with cosine >= threshold (at most k_update), ask the reader to judge each against the
    /// document (reinforced: noted in its history; made false: no longer true; unchanged:
    /// nothing), then add the document's fact in the canonical template unless some fact was
    /// judged reinforced. A document the reader could not read changes nothing. Returns the
    /// judgments made, as (entry index, judgment).
    pub fn ingest(&mut self, step: usize, doc: &str, new: Option<Fact>, reader: &dyn Reader) -> Result<Vec<(usize, Judgment)>> {
        let Some(new) = new else { return Ok(vec![]) };
        let d = self.dim;
        let entries = &self.entries;
        let hits = cosine_topk(&embed(doc, d), &self.keys, d, self.k_update, &|i| entries[i].true_now, self.device)?.pop().unwrap_or_default();
        let related: Vec<usize> = hits.iter().take_while(|h| h.1 >= self.threshold).map(|h| h.0).collect();
        let pairs: Vec<(Fact, &str)> = related.iter().map(|&i| (self.entries[i].fact, doc)).collect();
        let judged = if pairs.is_empty() { vec![] } else { reader.judge(&pairs)? };
        let mut known = false;
        for (&i, &j) in related.iter().zip(&judged) {
            let e = &mut self.entries[i];
            match j {
                Judgment::Reinforced => {
                    e.history.push((step, "reinforced"));
                    self.reinforced += 1;
                    known = true;
                }
                Judgment::MadeFalse => {
                    e.true_now = false;
                    e.history.push((step, "made false"));
                    self.made_false += 1;
                }
                Judgment::Unchanged => {}
            }
        }
        if !known {
            let text = new.text(0);
            self.keys.extend(embed(&text, d));
            self.entries.push(Entry { fact: new, text, true_now: true, history: vec![(step, "added")] });
        }
        Ok(related.into_iter().zip(judged).collect())
    }
}
