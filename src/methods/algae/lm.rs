//! The language-model proposer: a tiny GPT-2-style kiln LM that reads the contrasts and scores
//! the grammar's feature programs (METHODS.md §8, "a kiln model writing feature programs"; the
//! paper's proposer is a pretrained LM prompted with the contrast).
//!
//! The contrasts are written as CONTEXT = 18 tokens, one slot per grammar feature in grammar
//! order (each kind named before its two slots), then the query token:
//! ```text
//!   always d | flag d_on d_near | lava d_on d_near | water .. | grass .. | sand .. | add
//! ```
//! d is the feature's count along the demos' paths minus along the model's, summed over the
//! contrasts (irl::differences) and clipped to -4..=+4, or `used` for a feature already in the
//! reward. A feature program is two tokens: `on lava`, `near water`, `always end`. Trained on
//! synthetic problems (corpus.rs) to write a program of the hidden reward that the reward lacks,
//! the LM proposes by scoring: every unused feature gets log p(program | contrasts),
//! teacher-forced, all of them in one batch, and the best `proposals` are offered, best first.

use super::corpus::{self, Accuracy};
use super::grid::{grammar, Feature, Kind, KINDS};
use super::irl::{differences, Contrast, Proposer};
use super::Config;
use crate::io::hf::VocabCut;
use crate::methods::training::{gpt2_config, start_model, train, Phase, PhaseStats};
use crate::model::Transformer;
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};
use serde::Serialize;

/// Count differences are clipped to -CLIP..=CLIP; tokens 0..=2 CLIP are those values.
pub const CLIP: i64 = 4;
pub const USED: u32 = 9;
pub const ALWAYS: u32 = 10;
/// flag, lava, water, grass, sand (KINDS order) are KIND0..KIND0 + 5.
pub const KIND0: u32 = 11;
pub const ON: u32 = 16;
pub const NEAR: u32 = 17;
pub const ADD: u32 = 18;
pub const END: u32 = 19;
pub const VOCAB: usize = 20;
/// The contrasts' tokens, up to and including ADD.
pub const CONTEXT: usize = 18;
/// The LM's input: the context and the program's first token (the second is only predicted).
pub const SEQ_LEN: usize = CONTEXT + 1;

/// Every token's word (`--model DIR` cuts a checkpoint's vocabulary to them): the differences
/// -4 .. +4, then used, always, the kinds, on, near, add, end.
pub fn words() -> Vec<String> {
    let diffs = (-CLIP..=CLIP).map(|d| if d > 0 { format!("+{d}") } else { d.to_string() });
    let names = ["used", "always"].into_iter().chain(KINDS.map(Kind::name)).chain(["on", "near", "add", "end"]);
    diffs.chain(names.map(String::from)).collect()
}

fn kind_token(k: Kind) -> u32 {
    KIND0 + KINDS.iter().position(|&x| x == k).unwrap_or(0) as u32
}

/// A feature's program: two tokens.
pub fn program(f: Feature) -> [u32; 2] {
    match f {
        Feature::Always => [ALWAYS, END],
        Feature::On(k) => [ON, kind_token(k)],
        Feature::Near(k) => [NEAR, kind_token(k)],
    }
}

/// The context (CONTEXT tokens) for count differences `diffs` (one per grammar feature, grammar
/// order) with the features `have` in use.
pub fn encode(diffs: &[f64], have: &[Feature]) -> Vec<u32> {
    let g = grammar();
    let slot = |i: usize| if have.contains(&g[i]) { USED } else { ((diffs[i].round() as i64).clamp(-CLIP, CLIP) + CLIP) as u32 };
    let mut ids = vec![ALWAYS, slot(0)];
    for (j, &k) in KINDS.iter().enumerate() {
        ids.extend([kind_token(k), slot(1 + 2 * j), slot(2 + 2 * j)]);
    }
    ids.push(ADD);
    ids
}

/// log p(program(f) | context) for each f in `feats`, one batch:
/// ids (N, SEQ_LEN) -> log-probabilities (N, SEQ_LEN, V), read at the program's two targets.
pub fn score(model: &Transformer, context: &[u32], feats: &[Feature]) -> Result<Vec<f64>> {
    if context.len() != CONTEXT {
        return Err(Error::Msg(format!("algae proposer: a context is {CONTEXT} tokens, got {}", context.len())));
    }
    if feats.is_empty() {
        return Ok(Vec::new());
    }
    let _ng = no_grad();
    let n = feats.len();
    let ids: Vec<u32> = feats.iter().flat_map(|&f| context.iter().copied().chain([program(f)[0]])).collect();
    let x = Tensor::from_vec_u32(ids, [n, SEQ_LEN])?.to_device(model.device())?;
    let v = model.cfg.vocab_size;
    let logp = model.forward(&x, 0, None)?.log_softmax()?.to_vec_f64()?;
    // Row t of item i predicts token t + 1: CONTEXT - 1 the program's first, CONTEXT its second.
    let at = |i: usize, t: usize, tok: u32| logp[(i * SEQ_LEN + t) * v + tok as usize];
    Ok(feats.iter().enumerate().map(|(i, &f)| at(i, CONTEXT - 1, program(f)[0]) + at(i, CONTEXT, program(f)[1])).collect())
}

/// Every unused grammar feature with its log-probability, best first (ties: grammar order).
pub fn rank(model: &Transformer, diffs: &[f64], have: &[Feature]) -> Result<Vec<(Feature, f64)>> {
    let unused: Vec<Feature> = grammar().into_iter().filter(|f| !have.contains(f)).collect();
    let scores = score(model, &encode(diffs, have), &unused)?;
    let mut ranked: Vec<(Feature, f64)> = unused.into_iter().zip(scores).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(ranked)
}

/// The trained LM as a proposer: its `proposals` best unused features (each costs the loop one
/// IRL fit; the enumerative proposer offers every feature whose count differs).
pub struct LmProposer<'m> {
    pub model: &'m Transformer,
    pub proposals: usize,
}

impl Proposer for LmProposer<'_> {
    fn candidates(&mut self, contrasts: &[Contrast], have: &[Feature]) -> Result<Vec<Feature>> {
        Ok(rank(self.model, &differences(contrasts), have)?.into_iter().take(self.proposals).map(|(f, _)| f).collect())
    }
}

/// The proposer LM's settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LmConfig {
    /// d_model, blocks and heads of the GPT-2-style model (unused with `--model DIR`)
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// synthetic episodes drawn to train it, and to score it on (held out); an episode with no
    /// open contrast or no missing hidden predicate makes no problem
    pub episodes: usize,
    pub heldout: usize,
    /// training: warmup + cosine
    pub train: Phase,
    /// how many of its best features it proposes per round
    pub proposals: usize,
}

impl LmConfig {
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.heads == 0 || self.width % self.heads != 0 || self.layers == 0 {
            return Err(Error::Msg(format!("algae: proposer LM width {} must be a positive multiple of heads {}, layers {} >= 1", self.width, self.heads, self.layers)));
        }
        let p = &self.train;
        if self.episodes == 0 || self.heldout == 0 || self.proposals == 0 || p.steps == 0 || p.batch_size == 0 || !(p.lr > 0.0 && p.lr.is_finite()) {
            return Err(Error::Msg(format!("algae: the proposer LM needs episodes ({}), held-out episodes ({}), proposals ({}), steps, batch size and a learning rate > 0 (got {p:?})", self.episodes, self.heldout, self.proposals)));
        }
        Ok(())
    }
}

/// What training the proposer LM measured; part of report.json.
#[derive(Clone, Debug, Serialize)]
pub struct LmReport {
    pub params: usize,
    /// problems (and examples: one per answer) it was trained on
    pub problems: usize,
    pub examples: usize,
    pub training: PhaseStats,
    /// top-1 on the held-out problems, against the enumerative order and chance
    pub accuracy: Accuracy,
    /// with `--model DIR`: the checkpoint and how its vocabulary was cut
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<VocabCut>,
}

/// A trained proposer LM and its report.
pub struct Trained {
    pub model: Transformer,
    pub report: LmReport,
}

/// Draw the problems, start the LM (from scratch or `--model DIR`), train it, score it held out.
pub fn train_proposer(cfg: &Config) -> Result<Trained> {
    cfg.lm.validate()?;
    let problems = corpus::problems(cfg, corpus::TRAIN_KEY ^ cfg.seed, cfg.lm.episodes)?;
    let heldout = corpus::problems(cfg, corpus::HELDOUT_KEY ^ cfg.seed, cfg.lm.heldout)?;
    if problems.is_empty() || heldout.is_empty() {
        return Err(Error::Msg(format!("algae: {} training and {} held-out episodes made {} and {} proposal problems; both need some (draw more episodes)", cfg.lm.episodes, cfg.lm.heldout, problems.len(), heldout.len())));
    }
    let scratch = gpt2_config(VOCAB, cfg.lm.width, cfg.lm.layers, cfg.lm.heads, SEQ_LEN, cfg.seed);
    let (model, checkpoint) = start_model(cfg.model.as_deref(), &words(), scratch)?;
    model.to_device(cfg.device)?;
    let params = model.param_count();
    let data = corpus::examples(&problems);
    let (model, training) = train(model, &data, &cfg.lm.train, true, cfg.seed, "algae proposer", &mut |_, _| Ok(false))?;
    let accuracy = corpus::accuracy(&model, &heldout)?;
    eprintln!("algae: proposer LM trained ({:.0}s, loss {:.3}); held-out top-1 {:.2} (enumerative {:.2}, chance {:.2})", training.seconds, training.final_loss, accuracy.lm_top1, accuracy.enumerative_top1, accuracy.chance);
    Ok(Trained { model, report: LmReport { params, problems: problems.len(), examples: data.0.len(), training, accuracy, checkpoint } })
}
