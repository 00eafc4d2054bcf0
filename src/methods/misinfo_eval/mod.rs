//! MisinfoEval (`misinfo-eval`): Gabriel et al., "Generative AI for misinformation
//! interventions" (MisinfoEval, 2024).
//!
//! Claim tested (METHODS.md §4): on a simulated social-media feed, interventions written by a
//! language model (an explanation of why a headline is or is not reliable, and one personalised
//! to the reader) raise users' accuracy at labelling headlines reliable or not, overall and per
//! user group (paper: by up to 41.72%), and personalised explanations do better than generic ones.
//!
//! Here (world.rs, models.rs): a world of facts with rumours, four personas (party x age) with
//! beliefs, partisan bias and trust; a feed of true and false headlines on pairs held out of the
//! users' intervention training; five conditions (none, label, label + "verified by
//! fact-checkers", explanation, personalised explanation). Two kiln models: the explainer, a tiny
//! LM trained from scratch on noisy fact-check articles, writes every explanation; the users are a
//! second LM trained on the behaviour model's draws, which recalls a persona's belief, decides
//! whether to take the intervention on, and states what it now believes. The behaviour model
//! itself is the parametric baseline, fed the same explanations. Its trust table is an input: the run measures whether
//! kiln's models carry it (the users' fidelity on unseen pairs, the explainer's faithfulness), not
//! how people respond, which no simulation can settle.
//!
//!   world   the world, personas, feed, interventions and the behaviour model
//!   models  the explainer and users models, their corpora, explanation and belief readouts
//!   write   the claims, report.json, report.md and the PNGs

pub mod cli;
pub mod models;
pub mod world;
pub mod write;

use crate::io::hf::VocabCut;
use crate::methods::training::{gpt2_config, start_model, train, Phase, PhaseStats, FINETUNE_LR};
use crate::methods::Claim;
use crate::model::Transformer;
use crate::report::Report;
use crate::tensor::Device;
use crate::{Error, Result};
use models::{beliefs, explain, explainer_corpus, user_corpus, CorpusSizes, Reading, EXPLAINER_PROMPT, EXPLANATION, USER_PROMPT};
use serde::Serialize;
use std::path::{Path, PathBuf};
use world::{Behaviour, Headline, Intervention, Vocab, World, CONDITIONS, GROUPS};

pub const NAME: &str = "misinfo-eval";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub entities: usize,
    pub relations: usize,
    pub values: usize,
    /// share of pairs held out of the users' intervention training (the test feed's pairs)
    pub held_out: f64,
    pub behaviour: Behaviour,
    pub corpus: CorpusSizes,
    /// d_model, blocks and heads of both GPT-2-style models
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub users: Phase,
    pub explainer: Phase,
    /// explainer steps at which its explanations are also read (the faithfulness sweep); the
    /// last step is always read
    pub checkpoints: Vec<usize>,
    /// `--model DIR`: both models fine-tune this HF checkpoint (cut to the world's words)
    /// instead of training the GPT-2-style shape above from scratch
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    pub seed: u64,
    #[serde(serialize_with = "crate::methods::device_name")]
    pub device: Device,
}

impl Default for Config {
    /// A larger world (a GPU job): 120 entities, 8 values, width 256, 4 blocks.
    fn default() -> Self {
        Config {
            entities: 120,
            relations: 4,
            values: 8,
            held_out: 0.3,
            behaviour: Behaviour::default(),
            corpus: CorpusSizes { articles: 2, article_noise: 0.2, beliefs: 4, labels: 4, explanations: 8, explanation_truth: 0.6 },
            width: 256,
            layers: 4,
            heads: 8,
            users: Phase { steps: 12_000, batch_size: 128, lr: 1e-3 },
            explainer: Phase { steps: 8000, batch_size: 128, lr: 1e-3 },
            checkpoints: vec![500, 1000, 2000, 4000],
            model: None,
            seed: 0,
            device: Device::Cpu,
        }
    }
}

impl Config {
    /// Seconds: 4 entities, 3 values, one block (a smoke run for tests).
    pub fn tiny() -> Self {
        Config {
            entities: 4,
            relations: 3,
            values: 3,
            held_out: 0.4,
            corpus: CorpusSizes { articles: 1, beliefs: 1, labels: 1, explanations: 1, ..Config::default().corpus },
            width: 32,
            layers: 1,
            heads: 2,
            users: Phase { steps: 8, batch_size: 16, lr: 1e-3 },
            explainer: Phase { steps: 6, batch_size: 16, lr: 1e-3 },
            checkpoints: vec![3],
            ..Config::default()
        }
    }

    /// Start both models from the HF checkpoint in `dir` (`--model DIR`), trained at the
    /// fine-tuning rate.
    pub fn from_checkpoint(mut self, dir: PathBuf) -> Self {
        self.model = Some(dir);
        (self.users.lr, self.explainer.lr) = (FINETUNE_LR, FINETUNE_LR);
        self
    }

    /// The CPU reproduction: 24 entities x 4 relations, 6 values, width 96, 2 blocks.
    pub fn small() -> Self {
        Config {
            entities: 24,
            values: 6,
            held_out: 1.0 / 3.0,
            width: 96,
            layers: 2,
            heads: 4,
            users: Phase { steps: 4000, batch_size: 128, lr: 3e-3 },
            explainer: Phase { steps: 1000, batch_size: 64, lr: 2e-3 },
            checkpoints: vec![25, 50, 100, 200, 400],
            ..Config::default()
        }
    }

    pub fn vocab(&self) -> Vocab {
        Vocab { entities: self.entities, relations: self.relations, values: self.values }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Msg(format!("misinfo-eval: {m}")));
        if self.entities < 2 || self.values < 2 || self.relations < 2 {
            return bad(format!("needs >= 2 entities, values and relations (two relations lean to a party); got {}, {}, {}", self.entities, self.values, self.relations));
        }
        if !(self.held_out > 0.0 && self.held_out < 1.0) {
            return bad(format!("held_out {} must be strictly between 0 and 1", self.held_out));
        }
        if self.users.steps == 0 || self.explainer.steps == 0 || self.users.batch_size == 0 || self.explainer.batch_size == 0 {
            return bad("both models need >= 1 step and a batch of >= 1".into());
        }
        if self.width == 0 || self.heads == 0 || self.width % self.heads != 0 || self.layers == 0 {
            return bad(format!("width {} must be a positive multiple of heads {} (and layers >= 1)", self.width, self.heads));
        }
        let b = &self.behaviour;
        let probs = b.know.iter().chain(b.trust.iter().flatten()).chain(&b.share).chain([&b.congruence, &b.lean_penalty]);
        if let Some(p) = probs.copied().find(|p| !(0.0..=1.0).contains(p)) {
            return bad(format!("behaviour probability {p} is outside [0, 1]"));
        }
        Ok(())
    }
}

/// One condition's accuracies on the test feed.
#[derive(Clone, Debug, Serialize)]
pub struct ConditionRow {
    pub condition: String,
    /// expected labelling accuracy: the kiln users model, the behaviour model (same inputs)
    pub lm: f64,
    pub reference: f64,
    /// per persona (GROUPS order)
    pub lm_by_group: Vec<f64>,
    pub reference_by_group: Vec<f64>,
    /// expected share of false headlines shared (judged reliable, then shared), users model
    pub lm_false_shared: f64,
}

/// How good the explainer's explanations are on the test feed.
#[derive(Clone, Debug, Serialize)]
pub struct Faithfulness {
    pub explainer_steps: usize,
    /// about the headline's pair and stating its true value: generic, personalised
    pub generic: f64,
    pub personalised: f64,
    /// in the frame asked for (neutral for ANY, the persona's own otherwise)
    pub frame_right: f64,
    /// users-model accuracy with this checkpoint's explanations, generic and personalised
    pub lm_explanation: f64,
    pub lm_personalised: f64,
}

/// Everything a run measured; serialised as report.json.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub config: Config,
    pub vocab_size: usize,
    pub params_per_model: usize,
    pub users_training: PhaseStats,
    pub explainer_training: PhaseStats,
    /// headlines in the test feed (half true), each read by every persona in every condition
    pub feed: usize,
    pub rows: Vec<ConditionRow>,
    /// the explainer at each checkpoint; the last is the one the rows use
    pub sweep: Vec<Faithfulness>,
    pub examples: Vec<String>,
    pub claims: Vec<Claim>,
    /// with `--model DIR`: the checkpoint both models started from, and its cut
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<VocabCut>,
}

/// Explanations for the feed: generic (ANY), then one list per persona.
type Explanations = (Vec<[u32; EXPLANATION]>, Vec<Vec<[u32; EXPLANATION]>>);

fn write_explanations(model: &Transformer, w: &World, feed: &[Headline]) -> Result<Explanations> {
    let audiences: Vec<Option<usize>> = std::iter::once(None).chain((0..GROUPS.len()).map(Some)).collect();
    let prompts: Vec<Vec<u32>> = audiences.iter().flat_map(|&a| feed.iter().map(move |&h| w.explainer_prompt(a, h))).collect();
    let mut all = explain(model, &prompts)?.into_iter();
    let generic = all.by_ref().take(feed.len()).collect();
    let personal = (0..GROUPS.len()).map(|_| all.by_ref().take(feed.len()).collect()).collect();
    Ok((generic, personal))
}

fn faithful(w: &World, feed: &[Headline], ex: &[[u32; EXPLANATION]]) -> f64 {
    let ok = feed.iter().zip(ex).filter(|(h, e)| {
        let (ent, rel) = w.pair_tokens(h.pair);
        e[1] == ent && e[2] == rel && e[3] == w.vocab.value(w.truth[h.pair])
    });
    ok.count() as f64 / feed.len().max(1) as f64
}

/// The intervention persona g sees on headline i in condition c.
fn intervention(w: &World, c: usize, g: usize, i: usize, h: Headline, ex: &Explanations) -> Intervention {
    let says_true = h.value == w.truth[h.pair];
    match c {
        0 => Intervention::None,
        1 | 2 => Intervention::Label { says_true, verified: c == 2 },
        3 => Intervention::Explanation(ex.0[i]),
        _ => Intervention::Explanation(ex.1[g][i]),
    }
}

/// Every listed condition's accuracies: the users model and the behaviour model.
fn evaluate(users: &Transformer, w: &World, beh: &Behaviour, feed: &[Headline], ex: &Explanations, conditions: &[usize]) -> Result<Vec<ConditionRow>> {
    // Cell (row r of `conditions`, persona g, headline i).
    let cells: Vec<(usize, usize, usize)> = (0..conditions.len()).flat_map(|r| (0..GROUPS.len()).flat_map(move |g| (0..feed.len()).map(move |i| (r, g, i)))).collect();
    let readings: Vec<Reading> = cells.iter().map(|&(r, g, i)| (g, feed[i], intervention(w, conditions[r], g, i, feed[i], ex))).collect();
    let lm = beliefs(users, w, &readings)?;
    let n = feed.len() as f64;
    let mut rows: Vec<ConditionRow> = conditions
        .iter()
        .map(|&c| ConditionRow { condition: CONDITIONS[c].into(), lm: 0.0, reference: 0.0, lm_by_group: vec![0.0; GROUPS.len()], reference_by_group: vec![0.0; GROUPS.len()], lm_false_shared: 0.0 })
        .collect();
    for (k, &(r, g, i)) in cells.iter().enumerate() {
        let h = feed[i];
        let is_true = h.value == w.truth[h.pair];
        let p_ref = w.believe(beh, g, h, &readings[k].2)[h.value]; // P(judged reliable)
        let p_lm = lm[k][h.value];
        let right = |p: f64| if is_true { p } else { 1.0 - p };
        let row = &mut rows[r];
        row.lm_by_group[g] += right(p_lm) / n;
        row.reference_by_group[g] += right(p_ref) / n;
        if !is_true {
            let share = beh.share[if w.congruent(g, h.pair) { 0 } else { 1 }];
            row.lm_false_shared += p_lm * share / (GROUPS.len() as f64 * n / 2.0);
        }
    }
    for r in &mut rows {
        r.lm = r.lm_by_group.iter().sum::<f64>() / GROUPS.len() as f64;
        r.reference = r.reference_by_group.iter().sum::<f64>() / GROUPS.len() as f64;
    }
    Ok(rows)
}

/// Build the world, train both models, read the feed in every condition.
pub fn measure(cfg: &Config) -> Result<Results> {
    cfg.validate()?;
    let vocab = cfg.vocab();
    let w = World::new(vocab, &cfg.behaviour, cfg.held_out, cfg.seed);
    let feed = w.test_feed(cfg.seed);
    if feed.is_empty() {
        return Err(Error::Msg(format!("misinfo-eval: no pair was held out of {} (raise held_out or entities)", w.pairs())));
    }
    let mc = |seq: usize, seed: u64| gpt2_config(vocab.size(), cfg.width, cfg.layers, cfg.heads, seq, seed);
    let (users, checkpoint) = start_model(cfg.model.as_deref(), &vocab.words(), mc(USER_PROMPT, cfg.seed))?;
    // With a checkpoint both models start from it: read it once, copy it before the users train.
    let explainer = match checkpoint {
        Some(_) => users.deep_clone()?,
        None => Transformer::new(mc(EXPLAINER_PROMPT + EXPLANATION - 1, cfg.seed ^ 0xe1))?,
    };
    users.to_device(cfg.device)?;
    let params_per_model = users.param_count();
    let corpus = user_corpus(&w, &cfg.behaviour, &cfg.corpus, cfg.seed);
    let (users, users_training) = train(users, &corpus, &cfg.users, true, cfg.seed, "users model", &mut |_, _| Ok(false))?;
    // The explainer, read at each checkpoint: faithfulness, and the users' accuracy with it.
    explainer.to_device(cfg.device)?;
    let articles = explainer_corpus(&w, &cfg.corpus, cfg.seed);
    let mut sweep = Vec::new();
    let mut last: Option<Explanations> = None;
    let mut read = |step: usize, m: &Transformer| -> Result<bool> {
        if step == cfg.explainer.steps || cfg.checkpoints.contains(&step) {
            let ex = write_explanations(m, &w, &feed)?;
            let rows = evaluate(&users, &w, &cfg.behaviour, &feed, &ex, &[3, 4])?;
            let personal_frames = (0..GROUPS.len()).flat_map(|g| ex.1[g].iter().map(move |e| vocab.frame_of(e[0]) == Some(1 + g)));
            let frames: Vec<bool> = ex.0.iter().map(|e| vocab.frame_of(e[0]) == Some(0)).chain(personal_frames).collect();
            sweep.push(Faithfulness {
                explainer_steps: step,
                generic: faithful(&w, &feed, &ex.0),
                personalised: ex.1.iter().map(|p| faithful(&w, &feed, p)).sum::<f64>() / GROUPS.len() as f64,
                frame_right: frames.iter().filter(|&&f| f).count() as f64 / frames.len() as f64,
                lm_explanation: rows[0].lm,
                lm_personalised: rows[1].lm,
            });
            last = Some(ex);
        }
        Ok(false)
    };
    let (_, explainer_training) = train(explainer, &articles, &cfg.explainer, true, cfg.seed ^ 0xe1, "explainer", &mut read)?;
    let ex = last.ok_or_else(|| Error::Msg("misinfo-eval: the explainer was never read".into()))?;
    let rows = evaluate(&users, &w, &cfg.behaviour, &feed, &ex, &[0, 1, 2, 3, 4])?;
    let examples = examples(&w, &feed, &ex);
    let mut r = Results { config: cfg.clone(), vocab_size: vocab.size(), params_per_model, users_training, explainer_training, feed: feed.len(), rows, sweep, examples, claims: vec![], checkpoint };
    r.claims = write::claims(&r);
    Ok(r)
}

/// A few of the final explainer's explanations, in words.
fn examples(w: &World, feed: &[Headline], ex: &Explanations) -> Vec<String> {
    let v = w.vocab;
    let word = |t: u32| -> String {
        if let Some(x) = v.value_of(t) {
            format!("v{x}")
        } else if let Some(f) = v.frame_of(t) {
            format!("[{}]", world::FRAMES[f])
        } else if t >= world::tok::ENTITY0 && t < v.relation(0) {
            format!("e{}", t - world::tok::ENTITY0)
        } else if t >= v.relation(0) && t < v.value(0) {
            format!("r{}", t - v.relation(0))
        } else {
            format!("<{t}>")
        }
    };
    let say = |e: &[u32; EXPLANATION]| e.iter().map(|&t| word(t)).collect::<Vec<_>>().join(" ");
    feed.iter()
        .enumerate()
        .take(4)
        .map(|(i, h)| {
            let truth = if h.value == w.truth[h.pair] { "true" } else { "false" };
            format!(
                "headline e{} r{} v{} ({truth}; truth v{}) | generic: {} | for {}: {}",
                h.pair / v.relations,
                h.pair % v.relations,
                h.value,
                w.truth[h.pair],
                say(&ex.0[i]),
                GROUPS[i % GROUPS.len()],
                say(&ex.1[i % GROUPS.len()][i])
            )
        })
        .collect()
}

/// The `kiln misinfo-eval` job: measure, then write report.json, report.md and the PNGs into `out`.
pub fn run(cfg: &Config, out: &Path) -> Result<Report> {
    let results = measure(cfg)?;
    crate::methods::finish(NAME, out, &results.claims, write::headline(&results), |d| write::write_report(d, &results))
}
