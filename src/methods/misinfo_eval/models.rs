//! The two kiln models and their corpora.
//!
//!   explainer  reads "CHECK audience e r v" and writes (frame, e, r, w): the audience's frame
//!              and what it knows the pair's value to be. Trained on fact-check articles about
//!              every pair, some of which repeat the rumour (the web is not clean).
//!   users      one LM for all four personas:
//!                `persona e r b POST e r v <intervention> ADOPT|KEEP SAYS e r x`.
//!              It recalls the persona's belief b (memorised: every pair appears in training),
//!              decides whether the persona takes the intervention's message on, then predicts
//!              the value x the persona believes after reading. Trained on the
//!              behaviour model's draws: no intervention on every pair, interventions only on the
//!              pairs not held out, so on the test feed it applies what it learned about reading
//!              to posts and explanations it never saw on those pairs. Half the intervention
//!              examples start from a random belief (with no loss on recalling it): the rule must
//!              be read from the context, not memorised pair by pair.
//! Readouts: batched greedy explanations (KV cache, argmax over the vocabulary), and the users'
//! belief after reading, P(x) = sum_{b,d} P(b | persona, e, r) P(d | b, post) P(x | b, post, d):
//! one row per candidate (b, d), each factor renormalised over its own tokens.

use super::world::{draws, tok, Behaviour, Headline, Intervention, World, FRAMES, GROUPS};
use crate::model::Transformer;
use crate::nn::KvCache;
use crate::tensor::Tensor;
use crate::train::{Example, Examples, IGNORE};
use crate::{no_grad, Error, Result};
use serde::Serialize;

/// Prompt lengths: explainer 5 (+ 4 written), users 17 (+ 1 predicted) with the recalled belief
/// at BELIEF_AT and the decision at DECISION_AT.
pub const EXPLAINER_PROMPT: usize = 5;
pub const EXPLANATION: usize = 4;
pub const USER_PROMPT: usize = 17;
pub const BELIEF_AT: usize = 3;
pub const DECISION_AT: usize = 13;
/// Rows run together.
const ROWS: usize = 1024;

/// How many draws of each kind the corpora hold, per (persona or audience, pair, headline value).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CorpusSizes {
    /// explainer articles per (audience, pair, value)
    pub articles: usize,
    /// share of articles that state the rumour instead of the truth
    pub article_noise: f64,
    /// user draws with no intervention (every pair)
    pub beliefs: usize,
    /// user draws per label kind (plain, verified), pairs not held out
    pub labels: usize,
    /// user draws with an explanation (half in the persona's own frame; the truth, or any value;
    /// sometimes about another entity), pairs not held out
    pub explanations: usize,
    /// share of training explanations that state the truth (the rest a uniformly drawn value)
    pub explanation_truth: f64,
}

/// The explainer's articles: for every pair, headline value and audience (ANY and each persona).
pub fn explainer_corpus(w: &World, sizes: &CorpusSizes, seed: u64) -> Examples {
    let mut d = draws(seed, 3);
    let mut out = Vec::new();
    for p in 0..w.pairs() {
        for v in 0..w.vocab.values {
            for audience in std::iter::once(None).chain((0..GROUPS.len()).map(Some)) {
                for _ in 0..sizes.articles {
                    let mut e = w.gold_explanation(audience, p);
                    if d.unit() < sizes.article_noise {
                        e[3] = w.vocab.value(w.rumour[p]);
                    }
                    let mut seq = w.explainer_prompt(audience, Headline { pair: p, value: v });
                    seq.extend(e);
                    out.push(Example::next_token(&seq, EXPLAINER_PROMPT));
                }
            }
        }
    }
    Examples(out)
}

/// The users' corpus: the behaviour model's draws (see the module comment).
pub fn user_corpus(w: &World, beh: &Behaviour, sizes: &CorpusSizes, seed: u64) -> Examples {
    let mut d = draws(seed, 4);
    let mut out = Vec::new();
    let vocab = w.vocab;
    for g in 0..GROUPS.len() {
        for p in 0..w.pairs() {
            for v in 0..vocab.values {
                let h = Headline { pair: p, value: v };
                let mut ivs = vec![Intervention::None; sizes.beliefs];
                if !w.held_out[p] {
                    let says_true = v == w.truth[p];
                    for verified in [false, true] {
                        ivs.extend(std::iter::repeat_n(Intervention::Label { says_true, verified }, sizes.labels));
                    }
                    for _ in 0..sizes.explanations {
                        let mut e = w.gold_explanation(None, p);
                        // Half in the persona's own frame, the rest neutral or another persona's.
                        let frame = if d.unit() < 0.5 { 1 + g } else { (1 + g + 1 + d.below(FRAMES.len() - 1)) % FRAMES.len() };
                        e[0] = tok::FRAME0 + frame as u32;
                        if d.unit() >= sizes.explanation_truth {
                            e[3] = vocab.value(d.below(vocab.values));
                        }
                        if d.unit() < 0.1 {
                            e[1] = vocab.entity(d.other(vocab.entities, p / vocab.relations));
                        }
                        ivs.push(Intervention::Explanation(e));
                    }
                }
                for iv in ivs {
                    // An intervention example recalls a random belief half the time (and takes no
                    // loss on it), so the model reads the belief from its context.
                    let actual = iv == Intervention::None || d.unit() < 0.5;
                    let b = if actual { w.belief[g][p] } else { d.below(vocab.values) };
                    let r = w.react(beh, g, b, h, &iv);
                    let adopt = d.unit() < r.trust;
                    let x = d.pick(if adopt { &r.message } else { &r.base });
                    out.push(user_example(w.user_prompt(g, h, &iv, b, adopt), vocab.value(x), actual));
                }
            }
        }
    }
    Examples(out)
}

/// A users-model example: loss on the decision and the belief after reading, and on the
/// recalled belief when it is the persona's own.
fn user_example(prompt: Vec<u32>, x: u32, recall_loss: bool) -> Example {
    let mut targets = vec![IGNORE; USER_PROMPT];
    if recall_loss {
        targets[BELIEF_AT - 1] = prompt[BELIEF_AT];
    }
    targets[DECISION_AT - 1] = prompt[DECISION_AT];
    targets[USER_PROMPT - 1] = x;
    Example { ids: prompt, targets }
}

/// Greedy explanations for equal-length explainer prompts: one (B, 5) prefill, then (B, 1) steps.
pub fn explain(model: &Transformer, prompts: &[Vec<u32>]) -> Result<Vec<[u32; EXPLANATION]>> {
    let _ng = no_grad();
    let v = model.cfg.vocab_size;
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(ROWS) {
        let b = chunk.len();
        if let Some(p) = chunk.iter().find(|p| p.len() != EXPLAINER_PROMPT) {
            return Err(Error::Msg(format!("misinfo-eval: an explainer prompt has {} tokens, expected {EXPLAINER_PROMPT}", p.len())));
        }
        let mut caches = vec![KvCache::Empty; model.cfg.n_layers];
        let ids = Tensor::from_vec_u32(chunk.concat(), [b, EXPLAINER_PROMPT])?.to_device(model.device())?;
        let mut logits = model.forward(&ids, 0, Some(&mut caches))?.narrow(1, EXPLAINER_PROMPT - 1, 1)?; // (B, 1, V)
        let mut written = vec![[0u32; EXPLANATION]; b];
        for step in 0..EXPLANATION {
            let z = logits.to_vec_f32()?;
            let toks: Vec<u32> = z.chunks(v).map(|row| argmax(row) as u32).collect();
            written.iter_mut().zip(&toks).for_each(|(w, &t)| w[step] = t);
            if step + 1 < EXPLANATION {
                let x = Tensor::from_vec_u32(toks, [b, 1])?.to_device(model.device())?;
                logits = model.forward(&x, EXPLAINER_PROMPT + step, Some(&mut caches))?; // (B, 1, V)
            }
        }
        out.extend(written);
    }
    Ok(out)
}

fn argmax(z: &[f32]) -> usize {
    z.iter().enumerate().fold((0, f32::NEG_INFINITY), |(ai, am), (i, &x)| if x > am { (i, x) } else { (ai, am) }).0
}

/// Softmax of `row` over the tokens first..first + n.
fn over(row: &[f32], first: u32, n: usize) -> Vec<f64> {
    let z = &row[first as usize..first as usize + n];
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = z.iter().map(|&x| ((x - max) as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// One persona reading one post: (persona, headline, intervention).
pub type Reading = (usize, Headline, Intervention);

/// For each reading: the users model's belief after reading, marginalised over its recall b and
/// its decision d, as a distribution over the values.
pub fn beliefs(model: &Transformer, w: &World, readings: &[Reading]) -> Result<Vec<Vec<f64>>> {
    let _ng = no_grad();
    let (v, n) = (model.cfg.vocab_size, w.vocab.values);
    let value0 = w.vocab.value(0);
    // Row (i, b, d) = i * 2n + 2b + d, d = 1 for ADOPT; the decision's softmax runs over ADOPT
    // and KEEP (adjacent ids), P(ADOPT) first.
    let rows: Vec<Vec<u32>> = readings.iter().flat_map(|&(g, h, iv)| (0..2 * n).map(move |k| w.user_prompt(g, h, &iv, k / 2, k % 2 == 1))).collect();
    let (mut recall, mut adopt, mut after) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in rows.chunks(ROWS) {
        let b = chunk.len();
        let ids = Tensor::from_vec_u32(chunk.concat(), [b, USER_PROMPT])?.to_device(model.device())?;
        let z = model.forward(&ids, 0, None)?.to_vec_f32()?; // (B, T, V)
        for row in z.chunks(USER_PROMPT * v) {
            let at = |t: usize| &row[t * v..(t + 1) * v];
            recall.push(over(at(BELIEF_AT - 1), value0, n)); // the same in all of a reading's rows
            adopt.push(over(at(DECISION_AT - 1), tok::ADOPT, 2)[0]);
            after.push(over(at(USER_PROMPT - 1), value0, n));
        }
    }
    Ok((0..readings.len())
        .map(|i| {
            let row = |b: usize, d: usize| i * 2 * n + 2 * b + d;
            let mut px = vec![0.0; n];
            for (b, &pb) in recall[row(0, 0)].iter().enumerate() {
                let pa = adopt[row(b, 0)];
                for (d, pd) in [(0, 1.0 - pa), (1, pa)] {
                    after[row(b, d)].iter().zip(&mut px).for_each(|(q, acc)| *acc += pb * pd * q);
                }
            }
            px
        })
        .collect())
}
