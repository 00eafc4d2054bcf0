//! The kiln-model reader: one small LM that does the reader's three jobs (reader.rs) from tokens,
//! trained from scratch on what the template reader did on training streams (stream ids >= 2^31,
//! disjoint from the evaluation streams' ids), or fine-tuned from an HF checkpoint (`--model`).
//!
//! Tokens are words: entities e0..eE-1, the six verbs (works_at joined lives_in moved_to role
//! promoted_to; a relation is named by its template-0 verb), the 22 values c0..c7 t0..t7 r0..r5,
//! the labels reinforced / false / unchanged, and read, judge, ask, unknown, pad. Every job is
//! one sequence, its answer read by argmax at fixed positions (loss only there):
//!   extract  `e3 joined c5 read` -> `e3 works_at c5`        (greedy, 3 tokens, over all words)
//!   judge    `e3 works_at c2 e3 joined c5 judge` -> `false` (argmax over the 3 labels)
//!   answer   `<k texts, 3 words each, best first> ask e3 works_at` -> `c5` or `unknown`
//!            (argmax over the values and unknown; missing texts are `pad pad pad`)
//! Training sequences are padded with `pad` to one length (no loss there; the model is causal,
//! so padding after the answer changes nothing before it).

use super::reader::{Ask, Judgment, Reader};
use super::world::{Fact, RELATIONS};
use super::{Config, Trace};
use crate::io::hf::VocabCut;
use crate::methods::training::{gpt2_config, start_model, train, PhaseStats};
use crate::model::Transformer;
use crate::tensor::Tensor;
use crate::train::{Example, Examples, IGNORE};
use crate::{no_grad, Result};
use serde::Serialize;
use std::collections::HashMap;

/// Rows per forward.
const ROWS: usize = 1024;
/// Sequence lengths (inputs): judge 7, extract 4 + 2 written, answer 3k + 3.
const JUDGE_LEN: usize = 7;
const READ_LEN: usize = 4;
/// How many times the corpus holds each answer that names a value (see `corpus`).
const ANSWER_REPEATS: usize = 3;

/// The reader's words and their ids.
#[derive(Clone, Debug)]
pub struct Vocab {
    pub entities: usize,
    words: Vec<String>,
    ids: HashMap<String, u32>,
}

const MARKERS: [&str; 5] = ["read", "judge", "ask", "unknown", "pad"];
const LABELS: [&str; 3] = ["reinforced", "false", "unchanged"]; // Judgment::ALL's order

impl Vocab {
    /// Entities, verbs, values, labels, markers, in that order.
    pub fn new(entities: usize) -> Vocab {
        let mut words: Vec<String> = (0..entities).map(|e| format!("e{e}")).collect();
        words.extend(RELATIONS.iter().flat_map(|r| r.3.iter().map(|w| w.to_string())));
        words.extend(RELATIONS.iter().flat_map(|&(_, prefix, n, _)| (0..n).map(move |v| format!("{prefix}{v}"))));
        words.extend(LABELS.iter().chain(&MARKERS).map(|w| w.to_string()));
        let ids = words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        Vocab { entities, words, ids }
    }

    pub fn size(&self) -> usize {
        self.words.len()
    }

    /// Token i's word (for `--model`: the checkpoint rows each token starts from).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    fn id(&self, w: &str) -> u32 {
        self.ids[w]
    }

    /// A text of three known words, as ids (None otherwise).
    pub fn encode(&self, text: &str) -> Option<[u32; 3]> {
        let w: Vec<u32> = text.split_whitespace().map(|w| self.ids.get(w).copied()).collect::<Option<_>>()?;
        w.try_into().ok()
    }

    /// A fact in the canonical (template-0) words.
    pub fn fact(&self, f: Fact) -> [u32; 3] {
        self.encode(&f.text(0)).expect("a fact's own words are in the vocabulary")
    }

    /// Ids back to a fact: an entity, a verb, a value of that verb's relation (None otherwise).
    pub fn decode(&self, t: [u32; 3]) -> Option<Fact> {
        super::world::read(&t.iter().map(|&i| self.words.get(i as usize).map_or("?", |w| w.as_str())).collect::<Vec<_>>().join(" "))
    }

    fn label(&self, j: Judgment) -> u32 {
        self.id(LABELS[j.index()])
    }

    /// The answer slot's tokens: every value, then `unknown`.
    fn answer_tokens(&self) -> Vec<u32> {
        let first = self.entities + 6;
        let values = RELATIONS.iter().map(|r| r.2).sum::<usize>();
        (first..first + values).map(|i| i as u32).chain([self.id("unknown")]).collect()
    }

    fn judge_row(&self, f: Fact, doc: [u32; 3]) -> Vec<u32> {
        [self.fact(f), doc].concat().into_iter().chain([self.id("judge")]).collect()
    }

    /// `k` texts (padded or cut to k), ask, entity, relation: 3k + 3 ids.
    fn ask_row(&self, a: &Ask, k: usize) -> Vec<u32> {
        let pad = self.id("pad");
        let mut row: Vec<u32> = a.texts.iter().take(k).flat_map(|t| self.encode(t).unwrap_or([pad; 3])).collect();
        row.resize(3 * k, pad);
        let q = self.fact(Fact { entity: a.entity, relation: a.relation, value: 0 });
        row.extend([self.id("ask"), q[0], q[1]]);
        row
    }
}

/// How many training sequences of each job the corpus holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CorpusCounts {
    pub extract: usize,
    /// per label, Judgment::ALL's order (before the repeats)
    pub judge: [usize; 3],
    /// how many times each judgment of each label is repeated in the corpus
    pub repeats: [usize; 3],
    pub answer: usize,
    /// how many times each answer that names a value is repeated in the corpus
    pub answer_repeats: usize,
    /// answers that are `unknown` (no text about the pair: most are RAG's), before the repeats
    pub unknown: usize,
    /// how many times each `unknown` answer is repeated in the corpus
    pub unknown_repeats: usize,
}

/// The training corpus: every job the template reader did in the training traces, padded to
/// 3k + 3 ids (or 7, if longer).
pub fn corpus(v: &Vocab, traces: &[Trace], k: usize) -> (Examples, CorpusCounts) {
    let len = (3 * k + 3).max(JUDGE_LEN);
    let pad = v.id("pad");
    let padded = |mut e: Example| {
        e.ids.resize(len, pad);
        e.targets.resize(len, IGNORE);
        e
    };
    let (mut out, mut n, mut judged, mut named, mut unknown) = (Vec::new(), CorpusCounts::default(), Vec::new(), Vec::new(), Vec::new());
    for t in traces {
        for (doc, fact) in t.stream.docs.iter().zip(&t.extracted) {
            if let (Some(d), Some(f)) = (v.encode(&doc.text), fact) {
                out.push(padded(Example::next_token(&[&d[..], &[v.id("read")], &v.fact(*f)].concat(), READ_LEN)));
                n.extract += 1;
            }
        }
        for &(f, i, j) in &t.judged {
            if let Some(d) = v.encode(&t.stream.docs[i].text) {
                let mut row = v.judge_row(f, d);
                row.push(v.label(j));
                judged.push((padded(Example::next_token(&row, JUDGE_LEN)), j));
                n.judge[j.index()] += 1;
            }
        }
        for (asks, answers) in t.asks.iter().zip(&t.answers) {
            for (a, ans) in asks.iter().zip(answers) {
                let mut row = v.ask_row(a, k);
                row.push(ans.map_or(v.id("unknown"), |x| v.fact(Fact { entity: a.entity, relation: a.relation, value: x })[2]));
                let e = padded(Example::next_token(&row, 3 * k + 3));
                if ans.is_some() { named.push(e) } else { unknown.push(e) }
                n.answer += 1;
            }
        }
    }
    // Most retrieved facts are unchanged; each edit label is repeated until it is about half as
    // frequent as `unchanged`, so that the rare labels are learned too.
    let repeats: [usize; 3] = std::array::from_fn(|c| if c == 2 { 1 } else { (n.judge[2] / (2 * n.judge[c].max(1))).max(1) });
    for (e, j) in judged {
        out.extend(std::iter::repeat_n(e, repeats[j.index()]));
    }
    n.repeats = repeats;
    // Answering is the job learned last: the LM must find the one text about the pair among k,
    // or see that none is. At 4% of the corpus, some seeds had not learned it in 5000 steps; each
    // answer is repeated ANSWER_REPEATS times (13%). `unknown` (no retrieved text is about the
    // pair, about 5 answers in 100, nearly all RAG's) is rarer still: seen that rarely, the LM
    // named a value instead, so its answers are repeated until they are about a quarter as
    // frequent as the answers that name one.
    n.unknown = unknown.len();
    n.answer_repeats = ANSWER_REPEATS;
    n.unknown_repeats = (ANSWER_REPEATS * named.len() / (4 * n.unknown.max(1))).max(1);
    for e in named {
        out.extend(std::iter::repeat_n(e, ANSWER_REPEATS));
    }
    for e in unknown {
        out.extend(std::iter::repeat_n(e, n.unknown_repeats));
    }
    (Examples(out), n)
}

/// What training the reader ended with, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct Training {
    pub vocab_size: usize,
    pub params: usize,
    pub corpus: CorpusCounts,
    pub stats: PhaseStats,
    /// with `--model`: the checkpoint and how its vocabulary was cut
    pub checkpoint: Option<String>,
}

/// Build (or load, with cfg.model) the reader's LM and train it on the training traces.
pub fn train_reader(cfg: &Config, traces: &[Trace]) -> Result<(LmReader, Training)> {
    let vocab = Vocab::new(cfg.entities);
    let (data, counts) = corpus(&vocab, traces, cfg.k);
    let seq = data.0.first().map_or(JUDGE_LEN, |e| e.ids.len());
    let scratch = gpt2_config(vocab.size(), cfg.reader_width, cfg.reader_layers, cfg.reader_heads, seq, cfg.seed ^ 0xe5);
    let (model, cut): (Transformer, Option<VocabCut>) = start_model(cfg.model.as_deref(), vocab.words(), scratch)?;
    model.to_device(cfg.device)?;
    let params = model.param_count();
    let (model, stats) = train(model, &data, &cfg.reader, true, cfg.seed ^ 0xe5, "erase reader", &mut |_, _| Ok(false))?;
    let t = Training { vocab_size: vocab.size(), params, corpus: counts, stats, checkpoint: cut.map(|c| c.describe()) };
    Ok((LmReader { model, vocab, k: cfg.k }, t))
}

/// The trained reader.
pub struct LmReader {
    pub model: Transformer,
    pub vocab: Vocab,
    /// texts per answer sequence
    pub k: usize,
}

fn argmax_over(row: &[f32], tokens: &[u32]) -> u32 {
    *tokens.iter().max_by(|&&a, &&b| row[a as usize].total_cmp(&row[b as usize]).then(b.cmp(&a))).expect("tokens not empty")
}

impl LmReader {
    /// Equal-length rows (B, T) -> the logits (V) at each row's last position.
    fn last_logits(&self, rows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let _ng = no_grad();
        let v = self.model.cfg.vocab_size;
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS) {
            let (b, t) = (chunk.len(), chunk[0].len());
            let ids = Tensor::from_vec_u32(chunk.concat(), [b, t])?.to_device(self.model.device())?;
            let z = self.model.forward(&ids, 0, None)?.narrow(1, t - 1, 1)?.to_vec_f32()?; // (B, 1, V)
            out.extend(z.chunks(v).map(|r| r.to_vec()));
        }
        Ok(out)
    }
}

impl Reader for LmReader {
    /// Greedy: `doc read` -> three written tokens, over the whole vocabulary, then parsed.
    fn extract(&self, docs: &[&str]) -> Result<Vec<Option<Fact>>> {
        let v = &self.vocab;
        let all: Vec<u32> = (0..v.size() as u32).collect();
        let enc: Vec<Option<[u32; 3]>> = docs.iter().map(|d| v.encode(d)).collect();
        let mut rows: Vec<Vec<u32>> = enc.iter().flatten().map(|d| [&d[..], &[v.id("read")]].concat()).collect(); // (B, 4), then 5, 6
        if !rows.is_empty() {
            for _ in 0..3 {
                let next: Vec<u32> = self.last_logits(&rows)?.iter().map(|z| argmax_over(z, &all)).collect();
                rows.iter_mut().zip(next).for_each(|(r, t)| r.push(t));
            }
        }
        let mut written = rows.into_iter().map(|r| v.decode([r[READ_LEN], r[READ_LEN + 1], r[READ_LEN + 2]]));
        Ok(enc.iter().map(|e| e.and_then(|_| written.next().flatten())).collect())
    }

    /// Argmax over the three label tokens after `fact doc judge`; an unreadable document leaves
    /// the fact unchanged.
    fn judge(&self, pairs: &[(Fact, &str)]) -> Result<Vec<Judgment>> {
        let v = &self.vocab;
        let labels: Vec<u32> = Judgment::ALL.iter().map(|&j| v.label(j)).collect();
        let enc: Vec<Option<Vec<u32>>> = pairs.iter().map(|&(f, d)| v.encode(d).map(|d| v.judge_row(f, d))).collect();
        let rows: Vec<Vec<u32>> = enc.iter().flatten().cloned().collect(); // (B, 7)
        let mut picked = if rows.is_empty() { vec![] } else { self.last_logits(&rows)? }.into_iter().map(|z| argmax_over(&z, &labels));
        Ok(enc.iter().map(|e| e.as_ref().and_then(|_| picked.next()).map_or(Judgment::Unchanged, |t| Judgment::ALL[labels.iter().position(|&l| l == t).unwrap_or(2)])).collect())
    }

    /// Argmax over the values and `unknown`; `unknown` or a value of another relation answers
    /// nothing (None).
    fn answer(&self, asks: &[Ask]) -> Result<Vec<Option<usize>>> {
        let v = &self.vocab;
        if asks.is_empty() {
            return Ok(vec![]);
        }
        let slot = v.answer_tokens();
        let rows: Vec<Vec<u32>> = asks.iter().map(|a| v.ask_row(a, self.k)).collect(); // (B, 3k + 3)
        Ok(self
            .last_logits(&rows)?
            .iter()
            .zip(asks)
            .map(|(z, a)| {
                let t = argmax_over(z, &slot);
                let value0 = v.fact(Fact { entity: 0, relation: a.relation, value: 0 })[2];
                (t >= value0 && ((t - value0) as usize) < RELATIONS[a.relation].2).then(|| (t - value0) as usize)
            })
            .collect())
    }
}
