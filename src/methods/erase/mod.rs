//! ERASE (`erase`): Li et al., "Language Modeling with Editable External Knowledge" (2024).
//!
//! Claim tested (METHODS.md §10): keeping a knowledge base of facts that every new document
//! edits (related facts retrieved by embedding similarity, judged reinforced / made false /
//! unchanged, the document's own fact added) answers questions about the current state of a
//! changing world better than retrieval-augmented generation over an append-only document store,
//! and the gap grows with the number of facts that changed (paper: +7-13% absolute).
//!
//! Here: a synthetic world of entities with three relations, a template news stream, questions
//! about the final state; embeddings are hashed word vectors, retrieval is batched cosine top-k
//! (a device matmul plus host selection), and the reader is exact template parsing standing in
//! for the language model's judgments (a kiln-model reader is not built). An ablation reads the
//! documents into the same canonical facts but never edits them, to separate the gain from
//! editing from the gain from storing normalised facts instead of raw documents.
//!
//!   world  the world, the stream, the reader, the questions
//!   store  embeddings, cosine top-k, ERASE's knowledge base
//!   write  the claims, report.json, report.md and the PNG

pub mod cli;
pub mod store;
pub mod world;
pub mod write;

use crate::methods::Claim;
use crate::report::Report;
use crate::tensor::Device;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use store::{answer, cosine_topk, embed, Kb};
use world::{question, read, stream};

pub const NAME: &str = "erase";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub entities: usize,
    pub steps: usize,
    /// unchanged facts restated per step
    pub restated: usize,
    /// changed (entity, relation) pairs per step, one setting each
    pub change_counts: Vec<usize>,
    /// independent streams per setting
    pub streams: usize,
    /// embedding width
    pub dim: usize,
    /// items retrieved to answer a question
    pub k: usize,
    /// ERASE: cosine at which a fact counts as related to a document, and how many are looked at
    pub threshold: f32,
    pub k_update: usize,
    pub seed: u64,
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

impl Default for Config {
    /// A larger world: 100 entities, 40 steps, 10 streams a setting.
    fn default() -> Self {
        Config { entities: 100, steps: 40, restated: 20, change_counts: vec![0, 2, 5, 10, 20], streams: 10, dim: 128, k: 5, threshold: 0.25, k_update: 16, seed: 0, device: Device::Cpu }
    }
}

impl Config {
    /// Seconds: 6 entities, 3 steps, two settings (a smoke run for tests).
    pub fn tiny() -> Self {
        Config { entities: 6, steps: 3, restated: 2, change_counts: vec![0, 2], streams: 2, dim: 32, k: 3, ..Config::default() }
    }

    /// The CPU reproduction: 30 entities, 20 steps, 5 streams a setting.
    pub fn small() -> Self {
        Config { entities: 30, steps: 20, restated: 8, change_counts: vec![0, 1, 2, 4, 8], streams: 5, dim: 64, k: 3, ..Config::default() }
    }

    fn validate(&self) -> Result<()> {
        if self.entities == 0 || self.steps == 0 || self.streams == 0 || self.dim == 0 || self.k == 0 || self.k_update == 0 || self.change_counts.is_empty() {
            return Err(Error::Msg("erase: entities, steps, streams, dim, k, k_update and the change counts must all be >= 1 (and the list not empty)".into()));
        }
        if !(-1.0..=1.0).contains(&self.threshold) {
            return Err(Error::Msg(format!("erase: threshold {} is not a cosine in [-1, 1]", self.threshold)));
        }
        Ok(())
    }
}

/// One change setting, averaged over its streams.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub changes_per_step: usize,
    /// (entity, relation) pairs that changed at least once, of entities x 3
    pub changed_pairs: f64,
    pub rag: f64,
    /// the ablation: documents read into facts, appended, never edited
    pub facts: f64,
    pub erase: f64,
    /// accuracy on the changed pairs' questions only
    pub rag_changed: Option<f64>,
    pub erase_changed: Option<f64>,
    /// ERASE's knowledge base at the end: facts, facts made false, true facts that are stale
    pub kb_facts: f64,
    pub made_false: f64,
    pub stale_true: f64,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub rows: Vec<Row>,
    /// the start of the first stream of the largest setting, for the report
    pub example_docs: Vec<String>,
    pub claims: Vec<Claim>,
}

/// One stream's outcome.
struct Outcome {
    stream: world::Stream,
    /// per question: RAG's, the append-only fact store's and ERASE's answer is right
    rag: Vec<bool>,
    facts: Vec<bool>,
    erase: Vec<bool>,
    /// per question: its pair changed during the stream
    changed: Vec<bool>,
    kb: Kb,
}

fn one_stream(cfg: &Config, changes: usize, id: u32) -> Result<Outcome> {
    let s = stream(cfg.entities, cfg.steps, changes, cfg.restated, cfg.seed, id);
    let d = cfg.dim;
    let pairs: Vec<(usize, usize)> = (0..cfg.entities).flat_map(|e| (0..3).map(move |r| (e, r))).collect();
    let queries: Vec<f32> = pairs.iter().flat_map(|&(e, r)| embed(&question(e, r), d)).collect();
    // RAG: every document appended, questions answered from the top k.
    let doc_keys: Vec<f32> = s.docs.iter().flat_map(|doc| embed(&doc.text, d)).collect();
    let rag_hits = cosine_topk(&queries, &doc_keys, d, cfg.k, &|_| true, cfg.device)?;
    let docs = &s.docs;
    let rag = pairs.iter().zip(&rag_hits).map(|(&(e, r), h)| answer(h, &|i| read(&docs[i].text), e, r) == Some(s.state[e][r])).collect();
    // ERASE: every document edits the knowledge base; questions see only facts still true. The
    // ablation reads the same documents into facts but never edits (no fact is ever related).
    let build = |threshold: f32| -> Result<Kb> {
        let mut kb = Kb::default();
        for doc in &s.docs {
            kb.ingest(doc.step, &doc.text, d, threshold, cfg.k_update, cfg.device)?;
        }
        Ok(kb)
    };
    let ask = |kb: &Kb| -> Result<Vec<bool>> {
        let entries = &kb.entries;
        let hits = cosine_topk(&queries, &kb.keys, d, cfg.k, &|i| entries[i].true_now, cfg.device)?;
        Ok(pairs.iter().zip(&hits).map(|(&(e, r), h)| answer(h, &|i| Some(entries[i].fact), e, r) == Some(s.state[e][r])).collect())
    };
    let kb = build(cfg.threshold)?;
    let (erase, facts) = (ask(&kb)?, ask(&build(f32::INFINITY)?)?);
    let changed = pairs.iter().map(|p| s.changed.contains(p)).collect();
    Ok(Outcome { stream: s, rag, facts, erase, changed, kb })
}

fn share(right: &[bool], mask: &dyn Fn(usize) -> bool) -> Option<f64> {
    let (ok, n) = right.iter().enumerate().filter(|(i, _)| mask(*i)).fold((0, 0), |(ok, n), (_, &r)| (ok + r as usize, n + 1));
    (n > 0).then(|| ok as f64 / n as f64)
}

/// Every change setting, `streams` streams each.
pub fn measure(cfg: &Config) -> Result<Results> {
    cfg.validate()?;
    let bar = crate::report::progress((cfg.change_counts.len() * cfg.streams) as u64, "erase");
    let mut rows = Vec::new();
    for (ci, &changes) in cfg.change_counts.iter().enumerate() {
        let outs: Vec<Outcome> = (0..cfg.streams)
            .map(|sid| {
                let o = one_stream(cfg, changes, (ci * 1000 + sid) as u32);
                bar.inc(1);
                o
            })
            .collect::<Result<_>>()?;
        let mean = |f: &dyn Fn(&Outcome) -> f64| outs.iter().map(f).sum::<f64>() / outs.len() as f64;
        // Changed-pair accuracy pools every stream's changed questions.
        let pooled = |pick: &dyn Fn(&Outcome) -> &Vec<bool>| {
            let all: Vec<bool> = outs.iter().flat_map(|o| pick(o).iter().zip(&o.changed).filter(|(_, &c)| c).map(|(&r, _)| r)).collect();
            share(&all, &|_| true)
        };
        rows.push(Row {
            changes_per_step: changes,
            changed_pairs: mean(&|o| o.stream.changed.len() as f64),
            rag: mean(&|o| share(&o.rag, &|_| true).unwrap_or(f64::NAN)),
            facts: mean(&|o| share(&o.facts, &|_| true).unwrap_or(f64::NAN)),
            erase: mean(&|o| share(&o.erase, &|_| true).unwrap_or(f64::NAN)),
            rag_changed: pooled(&|o| &o.rag),
            erase_changed: pooled(&|o| &o.erase),
            kb_facts: mean(&|o| o.kb.entries.len() as f64),
            made_false: mean(&|o| o.kb.made_false as f64),
            stale_true: mean(&|o| o.kb.entries.iter().filter(|x| x.true_now && o.stream.state[x.fact.entity][x.fact.relation] != x.fact.value).count() as f64),
        });
    }
    bar.finish_and_clear();
    let last = *cfg.change_counts.last().unwrap_or(&0);
    let example = stream(cfg.entities, cfg.steps, last, cfg.restated, cfg.seed, ((cfg.change_counts.len() - 1) * 1000) as u32);
    let example_docs = example.docs.iter().filter(|d| d.step > 0).take(8).map(|d| format!("step {}: {}", d.step, d.text)).collect();
    let mut r = Results { config: cfg.clone(), rows, example_docs, claims: vec![] };
    r.claims = write::claims(&r);
    Ok(r)
}

/// The `kiln erase` job: measure, then write report.json, report.md and the PNG into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    crate::methods::finish(NAME, out, &results.claims, write::headline(&results), |d| write::write_report(d, &results))
}
