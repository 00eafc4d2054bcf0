//! Stage 2 of test-time training (Akyürek et al. 2024, §3): from a task's K demonstrations build
//! leave-one-out tasks (K - 1 demos as context, the held-out one as query), expand them with
//! invertible augmentations (the 8 symmetries x colour permutations fixing 0 x a demo-order
//! permutation), dedupe, cap, and train a fresh LoRA adapter on the result.

use super::augment::{order_perm, ColourPerm, Transform, DIHEDRAL};
use super::data::Pair;
use super::codec::Codec;
use super::tokens::TaskSet;
use crate::model::Transformer;
use crate::nn::{Init, LoraConfig};
use crate::optim::Schedule;
use crate::train::{epoch_permutation, Dataset, TrainConfig, Trainer};
use crate::Result;
use std::collections::HashSet;

/// A training task: demonstrations and a query with its answer.
pub type TrainTask = (Vec<Pair>, Pair);

/// K leave-one-out tasks of K demonstrations: task i holds out demo i as the query.
pub fn leave_one_out(demos: &[Pair]) -> Vec<TrainTask> {
    (0..demos.len())
        .map(|i| {
            let ctx = demos.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p.clone()).collect();
            (ctx, demos[i].clone())
        })
        .collect()
}

/// Apply `t` to every grid of a task and reorder its demos by `order`.
pub fn transform_task(task: &TrainTask, t: &Transform, order: &[usize]) -> TrainTask {
    let f = |p: &Pair| Pair { input: t.apply(&p.input), output: t.apply(&p.output) };
    (order.iter().map(|&i| f(&task.0[i])).collect(), f(&task.1))
}

/// The TTT set of a task's demos: leave-one-out tasks, each under the 8 symmetries and
/// `colour_perms` random colour permutations (plus none), demos in a random order; tasks of more
/// than `max_tokens` tokens dropped, duplicates dropped, then a seeded shuffle capped at `cap`.
pub fn ttt_set(codec: &dyn Codec, demos: &[Pair], colour_perms: usize, cap: usize, max_tokens: usize, seed: u64) -> Result<Vec<TrainTask>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut k = 0u64;
    for loo in leave_one_out(demos) {
        for d in DIHEDRAL {
            for c in 0..=colour_perms {
                let colours = if c == 0 { ColourPerm::identity() } else { ColourPerm::random(seed, k) };
                let order = if k == 0 { (0..loo.0.len()).collect() } else { order_perm(loo.0.len(), seed, k) };
                k += 1;
                let t = transform_task(&loo, &Transform { dihedral: d, colours }, &order);
                let s = codec.sequence(&t.0, &t.1)?.0;
                if s.len() <= max_tokens && seen.insert(s) {
                    out.push(t);
                }
            }
        }
    }
    let perm = epoch_permutation(seed, 0, out.len());
    let mut shuffled: Vec<TrainTask> = perm.into_iter().map(|i| out[i].clone()).collect();
    shuffled.truncate(cap);
    Ok(shuffled)
}

/// LoRA and optimiser settings of the per-task adapter.
#[derive(Clone, Debug)]
pub struct TttConfig {
    pub rank: usize,
    pub alpha: f64,
    pub targets: Vec<String>,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub weight_decay: f64,
    pub warmup: usize,
    /// extra random colour permutations per (leave-one-out task, symmetry)
    pub colour_perms: usize,
    pub cap: usize,
}

/// What training one adapter did: tokens processed and the mean loss over the first and over the
/// last epoch's worth of steps (the second should be well below the first).
#[derive(Clone, Copy, Debug, Default)]
pub struct AdapterStats {
    pub tokens: usize,
    pub steps: usize,
    pub loss_first: f64,
    pub loss_last: f64,
}

/// A copy of `base` (sharing its frozen weights) with a fresh adapter, on base's device, trained
/// on `set` in `codec`'s ids.
pub fn train_adapter(base: &Transformer, codec: &dyn Codec, set: &[TrainTask], cfg: &TttConfig, seed: u64) -> Result<(Transformer, AdapterStats)> {
    let mut m = base.clone();
    let lc = LoraConfig { rank: cfg.rank, alpha: cfg.alpha, rslora: false, targets: cfg.targets.clone() };
    m.add_lora(&lc, &mut Init::new(seed))?;
    let data = TaskSet::new(codec, set, m.cfg.max_seq_len)?;
    let steps = (cfg.epochs * set.len()).div_ceil(cfg.batch_size).max(1);
    let tc = TrainConfig {
        steps,
        batch_size: cfg.batch_size.min(set.len()),
        lr: cfg.lr,
        schedule: Schedule::WarmupCosine { warmup: cfg.warmup.min(steps / 2), total: steps, min_ratio: 0.0 },
        weight_decay: cfg.weight_decay,
        seed,
        progress: false,
        save_final: false,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(m, tc, data.len())?;
    let mut tokens = 0;
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let r = t.step(&data)?;
        tokens += r.tokens;
        losses.push(r.loss);
    }
    // one epoch = ceil(len / batch) steps
    let epoch = set.len().div_ceil(cfg.batch_size).clamp(1, steps);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let stats = AdapterStats { tokens, steps, loss_first: mean(&losses[..epoch]), loss_last: mean(&losses[steps - epoch..]) };
    Ok((t.model, stats))
}
