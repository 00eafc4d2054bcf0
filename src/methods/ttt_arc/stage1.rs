//! Stage 1 of test-time training for ARC (Akyürek et al. 2024, §2): train a base model from
//! scratch on fresh tasks of generated families (families.rs), and measure it: exact-match
//! accuracy of one greedy answer on fresh tasks of the families it trained on. A base model that
//! cannot solve its own training families gives TTT nothing to build on, so `reproduce` logs this
//! number next to the held-out results.

use super::{families, infer, tokens, Config};
use crate::model::Transformer;
use crate::optim::Schedule;
use crate::train::{Dataset, TrainConfig, Trainer};
use crate::{Error, Result};
use std::time::Instant;

/// Seeds of the seen-family accuracy tasks: far from stage 1's (seed * 1_000_003 + i) and the
/// held-out tasks' (2^40 + ...).
const SEEN_EVAL_SEED: u64 = 1 << 41;

/// Stage 1: train a fresh model from scratch on tasks of `families_` (fresh tasks every step:
/// stage1_steps * stage1_batch of them, round-robin over the families).
pub fn finetune(cfg: &Config, families_: &[&str]) -> Result<Transformer> {
    if families_.is_empty() {
        return Err(Error::Msg("ttt-arc finetune: no task families to train on".into()));
    }
    let n = cfg.stage1_steps * cfg.stage1_batch;
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let t = families::generate(families_[i % families_.len()], cfg.seed.wrapping_mul(1_000_003) + i as u64, cfg.n_demos + 1, cfg.min_side, cfg.max_side)?;
        let mut demos = t.train;
        // n_demos demonstrations + one more as the query: the shape of an evaluation prompt
        let q = demos.pop().expect("n_demos + 1 >= 1");
        tasks.push((demos, q));
    }
    let data = tokens::TaskSet::new(&super::codec::GridCodec, &tasks, cfg.seq_len)?;
    let tc = TrainConfig {
        steps: cfg.stage1_steps,
        batch_size: cfg.stage1_batch,
        lr: cfg.stage1_lr,
        schedule: Schedule::WarmupCosine { warmup: cfg.stage1_steps / 20, total: cfg.stage1_steps, min_ratio: 0.1 },
        weight_decay: 0.01,
        seed: cfg.seed,
        progress: false,
        save_final: false,
        ..TrainConfig::default()
    };
    let model = Transformer::new(cfg.model_config())?;
    model.to_device(cfg.device)?;
    let mut t = Trainer::new(model, tc, data.len())?;
    let bar = crate::report::progress(cfg.stage1_steps as u64, "ttt-arc stage 1");
    let start = Instant::now();
    let (mut tokens, mut window) = (0, Vec::new());
    let every = (cfg.stage1_steps / 10).max(1);
    for step in 1..=cfg.stage1_steps {
        let r = t.step(&data)?;
        tokens += r.tokens;
        window.push(r.loss);
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", r.loss));
        if step % every == 0 || step == cfg.stage1_steps {
            let mean = window.iter().sum::<f64>() / window.len() as f64;
            bar.suspend(|| eprintln!("ttt-arc stage 1: step {step}/{}, mean loss {mean:.4} over the last {} steps, {:.0}s", cfg.stage1_steps, window.len(), start.elapsed().as_secs_f64()));
            window.clear();
        }
    }
    bar.finish_and_clear();
    let s = start.elapsed().as_secs_f64();
    eprintln!("ttt-arc stage 1: {} steps on {} families ({} tokens per example), {s:.1}s, {:.0} tokens/s", cfg.stage1_steps, families_.len(), data.len_tokens, tokens as f64 / s);
    Ok(t.model)
}

/// Exact-match accuracy of one greedy answer (no TTT, no augmentation) on `n` fresh tasks of
/// each family: (family, fraction solved).
pub fn seen_accuracy(model: &Transformer, codec: &dyn super::codec::Codec, cfg: &Config, families_: &[&str], n: usize) -> Result<Vec<(String, f64)>> {
    let plain = infer::views(cfg.n_demos, false, 0, cfg.seed);
    let mut out = Vec::new();
    for f in families_ {
        let mut hits = 0;
        for i in 0..n {
            let t = families::generate(f, SEEN_EVAL_SEED + i as u64, cfg.n_demos, cfg.min_side, cfg.max_side)?;
            let q = &t.test[0];
            let (cands, _) = infer::predict(model, codec, &t.train, &q.input, &plain)?;
            hits += (cands[0].1.as_ref() == q.output.as_ref()) as usize;
        }
        out.push((f.to_string(), hits as f64 / n.max(1) as f64));
    }
    Ok(out)
}
