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
//! (a device matmul and a device top-k). The reader (reader.rs) extracts each document's fact,
//! judges each retrieved fact against the document, and answers each question from the top
//! retrieved texts. Two readers run every stream: a small kiln LM (lm.rs), trained from scratch
//! (or fine-tuned from an HF checkpoint with `--model DIR`) on what exact template parsing did
//! on training streams disjoint from the evaluation streams, and the template parser itself, the
//! oracle. RAG and an ablation that reads the documents into the same canonical facts but never
//! edits them (separating the gain from editing from the gain from storing normalised facts) are
//! answered by the same reader.
//!
//!   world   the world, the stream, the template parser, the questions
//!   reader  the reader's three jobs, and the template reader
//!   lm      the kiln-model reader: its words, corpus, training and batched readouts
//!   store   embeddings, cosine top-k, ERASE's knowledge base
//!   write   the claims, report.json, report.md and the PNG

pub mod cli;
pub mod lm;
pub mod reader;
pub mod store;
pub mod world;
pub mod write;

use crate::methods::training::Phase;
use crate::methods::Claim;
use crate::report::Report;
use crate::tensor::Device;
use crate::{Error, Result};
use reader::{Ask, Judgment, Reader, Template};
use serde::Serialize;
use std::path::{Path, PathBuf};
use store::{cosine_topk, embed, Kb};
use world::{question, read, stream, Fact, Stream};

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
    /// training streams per change setting for the LM reader (ids >= 2^31; evaluation < 2^31)
    pub train_streams: usize,
    /// the LM reader: d_model, blocks, heads (GPT-2 style, from scratch) and its training
    pub reader_width: usize,
    pub reader_layers: usize,
    pub reader_heads: usize,
    pub reader: Phase,
    /// `--model DIR`: start the reader from this HF Llama checkpoint instead
    pub model: Option<PathBuf>,
    pub seed: u64,
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

impl Default for Config {
    /// A larger world: 100 entities, 40 steps, 10 streams a setting; a 4-block reader, 8000 steps.
    fn default() -> Self {
        Config {
            entities: 100,
            steps: 40,
            restated: 20,
            change_counts: vec![0, 2, 5, 10, 20],
            streams: 10,
            dim: 128,
            k: 5,
            threshold: 0.25,
            k_update: 16,
            train_streams: 10,
            reader_width: 128,
            reader_layers: 4,
            reader_heads: 4,
            reader: Phase { steps: 8000, batch_size: 128, lr: 1e-3 },
            model: None,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

impl Config {
    /// Seconds: 6 entities, 3 steps, two settings, a 1000-step reader (a smoke run for tests).
    pub fn tiny() -> Self {
        let reader = Phase { steps: 1000, batch_size: 32, lr: 3e-3 };
        Config { entities: 6, steps: 3, restated: 2, change_counts: vec![0, 2], streams: 2, dim: 32, k: 3, train_streams: 20, reader_width: 32, reader_layers: 2, reader_heads: 2, reader, ..Config::default() }
    }

    /// The CPU reproduction: 30 entities, 20 steps, 5 streams a setting; the reader trains for
    /// 5000 steps (about 30 s on 2 cores).
    pub fn small() -> Self {
        let reader = Phase { steps: 5000, batch_size: 64, lr: 1.5e-3 };
        Config { entities: 30, steps: 20, restated: 8, change_counts: vec![0, 1, 2, 4, 8], streams: 5, dim: 64, k: 3, train_streams: 4, reader_width: 64, reader_layers: 2, reader_heads: 4, reader, ..Config::default() }
    }

    fn validate(&self) -> Result<()> {
        if self.entities == 0 || self.steps == 0 || self.streams == 0 || self.dim == 0 || self.k == 0 || self.k_update == 0 || self.change_counts.is_empty() {
            return Err(Error::Msg("erase: entities, steps, streams, dim, k, k_update and the change counts must all be >= 1 (and the list not empty)".into()));
        }
        if self.k.max(self.k_update) > crate::backend::cpu::reduce::TOPK_MAX {
            return Err(Error::Msg(format!("erase: k {} and k_update {} must be <= {} (retrieval's top-k)", self.k, self.k_update, crate::backend::cpu::reduce::TOPK_MAX)));
        }
        if self.streams > 1000 || self.train_streams > 1000 || self.change_counts.len() > 1000 {
            return Err(Error::Msg("erase: streams, train_streams and the number of change settings must be <= 1000 (stream ids are setting * 1000 + stream)".into()));
        }
        if self.train_streams == 0 || self.reader.steps == 0 || self.reader.batch_size == 0 {
            return Err(Error::Msg("erase: the LM reader needs train_streams, reader steps and reader batch_size >= 1".into()));
        }
        if let Some(dir) = self.model.as_deref().filter(|d| !d.is_dir()) {
            return Err(Error::Msg(format!("erase: --model {}: not a directory (expected an HF Llama checkpoint: config.json, tokenizer.json, *.safetensors)", dir.display())));
        }
        if !(-1.0..=1.0).contains(&self.threshold) {
            return Err(Error::Msg(format!("erase: threshold {} is not a cosine in [-1, 1]", self.threshold)));
        }
        Ok(())
    }
}

/// One reader's accuracies in one change setting, averaged over its streams.
#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    pub rag: f64,
    /// the ablation: documents read into facts, appended, never edited
    pub facts: f64,
    pub erase: f64,
    /// accuracy on the changed pairs' questions only (pooled over the streams)
    pub rag_changed: Option<f64>,
    pub erase_changed: Option<f64>,
    /// ERASE's knowledge base at the end: facts, facts made false, true facts that are stale
    pub kb_facts: f64,
    pub made_false: f64,
    pub stale_true: f64,
}

/// How the LM reader's work compares with the template reader's on the same inputs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Agreement {
    /// documents, and those the LM extracted to the parser's fact
    pub docs: usize,
    pub extracted_right: usize,
    /// judgments the LM made while building ERASE's knowledge base: `confusion[t][l]` counts
    /// (fact, document) pairs the template reader judges `Judgment::ALL[t]` and the LM `ALL[l]`
    pub confusion: [[usize; 3]; 3],
    /// questions put to RAG's documents, the ablation's facts and ERASE's facts, and those the
    /// LM answered as the parser does from the same retrieved texts
    pub asks: [usize; 3],
    pub answered_same: [usize; 3],
    /// of those answered otherwise: the LM named a value where no retrieved text is about the
    /// pair (the parser: none), and how many of those guesses were the current value
    pub guesses: [usize; 3],
    pub guesses_right: [usize; 3],
}

impl Agreement {
    fn add(&mut self, o: &Agreement) {
        (self.docs, self.extracted_right) = (self.docs + o.docs, self.extracted_right + o.extracted_right);
        (0..9).for_each(|i| self.confusion[i / 3][i % 3] += o.confusion[i / 3][i % 3]);
        for i in 0..3 {
            (self.asks[i], self.answered_same[i]) = (self.asks[i] + o.asks[i], self.answered_same[i] + o.answered_same[i]);
            (self.guesses[i], self.guesses_right[i]) = (self.guesses[i] + o.guesses[i], self.guesses_right[i] + o.guesses_right[i]);
        }
    }

    /// Per true label: the share the LM judged the same (None: no such pair).
    pub fn recall(&self) -> [Option<f64>; 3] {
        std::array::from_fn(|t| {
            let n: usize = self.confusion[t].iter().sum();
            (n > 0).then(|| self.confusion[t][t] as f64 / n as f64)
        })
    }

    /// The share of `kind`'s questions (0 RAG, 1 the ablation, 2 ERASE) answered as the parser does.
    pub fn same_answers(&self, kind: usize) -> f64 {
        self.answered_same[kind] as f64 / self.asks[kind].max(1) as f64
    }

    /// The share of documents extracted to the parser's fact.
    pub fn extraction(&self) -> f64 {
        self.extracted_right as f64 / self.docs.max(1) as f64
    }

    /// The mean recall over the labels present (chance: 1 / their number).
    pub fn balanced(&self) -> f64 {
        let r: Vec<f64> = self.recall().into_iter().flatten().collect();
        r.iter().sum::<f64>() / r.len().max(1) as f64
    }
}

/// One change setting: both readers' scores and the LM's agreement with the parser.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub changes_per_step: usize,
    /// (entity, relation) pairs that changed at least once, of entities x 3
    pub changed_pairs: f64,
    pub lm: Scores,
    pub template: Scores,
    pub agreement: Agreement,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub reader: lm::Training,
    pub rows: Vec<Row>,
    /// every setting's agreement pooled
    pub agreement: Agreement,
    /// the start of the first stream of the largest setting, for the report
    pub example_docs: Vec<String>,
    pub claims: Vec<Claim>,
}

/// One stream read by one reader: its extractions, the judgments made building ERASE's
/// knowledge base, and the questions put to RAG's documents, the ablation's facts and ERASE's
/// facts (in that order) with the reader's answers.
pub struct Trace {
    pub stream: Stream,
    pub extracted: Vec<Option<Fact>>,
    /// (stored fact, document index, the reader's judgment)
    pub judged: Vec<(Fact, usize, Judgment)>,
    pub asks: [Vec<Ask>; 3],
    pub answers: [Vec<Option<usize>>; 3],
    pub kb: Kb,
}

/// Run one stream with `reader`: RAG appends every document and answers from its top k; ERASE's
/// knowledge base is edited by every document; the ablation reads the same documents into facts
/// but never edits (no fact is ever related).
pub fn replay(cfg: &Config, s: Stream, reader: &dyn Reader) -> Result<Trace> {
    let d = cfg.dim;
    let pairs: Vec<(usize, usize)> = (0..cfg.entities).flat_map(|e| (0..3).map(move |r| (e, r))).collect();
    let queries: Vec<f32> = pairs.iter().flat_map(|&(e, r)| embed(&question(e, r), d)).collect();
    let texts: Vec<&str> = s.docs.iter().map(|x| x.text.as_str()).collect();
    let extracted = reader.extract(&texts)?;
    let asks = |hits: Vec<Vec<(usize, f32)>>, text: &dyn Fn(usize) -> String| -> Vec<Ask> {
        pairs.iter().zip(hits).map(|(&(entity, relation), h)| Ask { texts: h.iter().map(|&(i, _)| text(i)).collect(), entity, relation }).collect()
    };
    let doc_keys: Vec<f32> = texts.iter().flat_map(|t| embed(t, d)).collect();
    let rag = asks(cosine_topk(&queries, &doc_keys, d, cfg.k, &|_| true, cfg.device)?, &|i| texts[i].to_string());
    let mut judged = Vec::new();
    let mut build = |threshold: f32, log: bool| -> Result<(Kb, Vec<Ask>)> {
        let mut kb = Kb::new(d, threshold, cfg.k_update, cfg.device);
        for (i, doc) in s.docs.iter().enumerate() {
            for (e, j) in kb.ingest(doc.step, &doc.text, extracted[i], reader)? {
                if log {
                    judged.push((kb.entries[e].fact, i, j));
                }
            }
        }
        let entries = &kb.entries;
        let hits = cosine_topk(&queries, &kb.keys, d, cfg.k, &|i| entries[i].true_now, cfg.device)?;
        let a = asks(hits, &|i| entries[i].text.clone());
        Ok((kb, a))
    };
    let (kb, erase) = build(cfg.threshold, true)?;
    let (_, facts) = build(f32::INFINITY, false)?;
    let asks = [rag, facts, erase];
    let answers = [reader.answer(&asks[0])?, reader.answer(&asks[1])?, reader.answer(&asks[2])?];
    Ok(Trace { stream: s, extracted, judged, asks, answers, kb })
}

/// The LM's trace against the template reader on the same inputs.
fn agreement(t: &Trace) -> Result<Agreement> {
    let docs = &t.stream.docs;
    let mut a = Agreement { docs: docs.len(), ..Agreement::default() };
    a.extracted_right = docs.iter().zip(&t.extracted).filter(|(d, &f)| read(&d.text) == f).count();
    for &(f, i, j) in &t.judged {
        a.confusion[Judgment::of(f, read(&docs[i].text)).index()][j.index()] += 1;
    }
    for (kind, (asks, answers)) in t.asks.iter().zip(&t.answers).enumerate() {
        let parsed = Template.answer(asks)?;
        a.asks[kind] = asks.len();
        a.answered_same[kind] = parsed.iter().zip(answers).filter(|(x, y)| x == y).count();
        for ((q, p), lm) in asks.iter().zip(&parsed).zip(answers) {
            if let (None, Some(x)) = (p, lm) {
                a.guesses[kind] += 1;
                a.guesses_right[kind] += (*x == t.stream.state[q.entity][q.relation]) as usize;
            }
        }
    }
    Ok(a)
}

fn share(right: impl Iterator<Item = bool>) -> Option<f64> {
    let (ok, n) = right.fold((0, 0), |(ok, n), r| (ok + r as usize, n + 1));
    (n > 0).then(|| ok as f64 / n as f64)
}

/// A setting's scores from its streams' traces (one reader).
fn scores(ts: &[Trace]) -> Scores {
    let mean = |f: &dyn Fn(&Trace) -> f64| ts.iter().map(f).sum::<f64>() / ts.len() as f64;
    // per trace and question: the answer is the current value; the pair changed
    let right = |t: &Trace, kind: usize| -> Vec<(bool, bool)> {
        t.asks[kind].iter().zip(&t.answers[kind]).map(|(a, &x)| (x == Some(t.stream.state[a.entity][a.relation]), t.stream.changed.contains(&(a.entity, a.relation)))).collect()
    };
    let all = |kind: usize| mean(&|t| share(right(t, kind).into_iter().map(|r| r.0)).unwrap_or(f64::NAN));
    let changed = |kind: usize| share(ts.iter().flat_map(|t| right(t, kind)).filter(|r| r.1).map(|r| r.0));
    Scores {
        rag: all(0),
        facts: all(1),
        erase: all(2),
        rag_changed: changed(0),
        erase_changed: changed(2),
        kb_facts: mean(&|t| t.kb.entries.len() as f64),
        made_false: mean(&|t| t.kb.made_false as f64),
        stale_true: mean(&|t| t.kb.entries.iter().filter(|x| x.true_now && t.stream.state[x.fact.entity][x.fact.relation] != x.fact.value).count() as f64),
    }
}

/// Training streams have ids >= 2^31, evaluation streams ids below.
const TRAIN_IDS: u32 = 1 << 31;

/// Train the LM reader on the template reader's traces of the training streams, then run every
/// change setting, `streams` evaluation streams each, with both readers.
pub fn measure(cfg: &Config) -> Result<Results> {
    cfg.validate()?;
    let n = cfg.change_counts.len();
    let streams = |ci: usize, count: usize, base: u32| (0..count).map(move |sid| (cfg.change_counts[ci], base + (ci * 1000 + sid) as u32));
    let mut train = Vec::new();
    for (changes, id) in (0..n).flat_map(|ci| streams(ci, cfg.train_streams, TRAIN_IDS)) {
        train.push(replay(cfg, stream(cfg.entities, cfg.steps, changes, cfg.restated, cfg.seed, id), &Template)?);
    }
    let (lm, training) = lm::train_reader(cfg, &train)?;
    drop(train);
    let bar = crate::report::progress((n * cfg.streams) as u64, "erase");
    let (mut rows, mut pooled) = (Vec::new(), Agreement::default());
    for ci in 0..n {
        let (mut by_lm, mut by_template) = (Vec::new(), Vec::new());
        for (changes, id) in streams(ci, cfg.streams, 0) {
            let s = stream(cfg.entities, cfg.steps, changes, cfg.restated, cfg.seed, id);
            by_lm.push(replay(cfg, s.clone(), &lm)?);
            by_template.push(replay(cfg, s, &Template)?);
            bar.inc(1);
        }
        let mut agreement = Agreement::default();
        for t in &by_lm {
            agreement.add(&self::agreement(t)?);
        }
        pooled.add(&agreement);
        let changed_pairs = by_template.iter().map(|t| t.stream.changed.len() as f64).sum::<f64>() / by_template.len() as f64;
        rows.push(Row { changes_per_step: cfg.change_counts[ci], changed_pairs, lm: scores(&by_lm), template: scores(&by_template), agreement });
    }
    bar.finish_and_clear();
    let example = stream(cfg.entities, cfg.steps, cfg.change_counts[n - 1], cfg.restated, cfg.seed, ((n - 1) * 1000) as u32);
    let example_docs = example.docs.iter().filter(|d| d.step > 0).take(8).map(|d| format!("step {}: {}", d.step, d.text)).collect();
    let mut r = Results { config: cfg.clone(), reader: training, rows, agreement: pooled, example_docs, claims: vec![] };
    r.claims = write::claims(&r);
    Ok(r)
}

/// The `kiln erase` job: measure, then write report.json, report.md and the PNG into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    crate::methods::finish(NAME, out, &results.claims, write::headline(&results), |d| write::write_report(d, &results))
}
