//! Stages 2 and 3 over tasks: `solve` one task at a time (each view decoded alone under the
//! task's own model), `solve_batch` a group of tasks whose views are decoded together, each row
//! under its task's adapter (multi-adapter LoRA serving), and `solve_all` over a task list.

use super::codec::Codec;
use super::data::{Pair, Task};
use super::grid::Grid;
use super::{infer, ttt, vote, Config};
use crate::model::Transformer;
use crate::Result;
use std::time::Instant;

/// Which ablations to run (`--no-ttt`, `--no-augment` switch the later ones off).
#[derive(Clone, Copy, Debug)]
pub struct Ablations {
    pub ttt: bool,
    pub augment: bool,
}

/// A task's submitted attempts (per test query) under each ablation run.
#[derive(Clone, Debug, Default)]
pub struct TaskResult {
    pub id: String,
    pub ft: Vec<Vec<Grid>>,
    pub ft_ttt: Option<Vec<Vec<Grid>>>,
    pub ft_ttt_aug: Option<Vec<Vec<Grid>>>,
    pub ttt_tasks: usize,
    /// the adapter's training (zeros without TTT)
    pub ttt: ttt::AdapterStats,
    pub seconds: f64,
}

fn attempts(model: &Transformer, codec: &dyn Codec, demos: &[Pair], q: &Grid, views: &[infer::View], cfg: &Config) -> Result<(Vec<Grid>, usize)> {
    let (cands, n) = infer::predict(model, codec, demos, q, views)?;
    Ok((vote::vote(&cands, cfg.per_group), n))
}

fn log_task(r: &TaskResult, gen_tokens: usize, train_tokens: usize) {
    eprintln!(
        "ttt-arc task {}: {} TTT tasks, {} steps, loss {:.3} (first epoch) -> {:.3} (last), {:.1}s, {:.0} train tokens/s, {gen_tokens} tokens generated",
        r.id,
        r.ttt_tasks,
        r.ttt.steps,
        r.ttt.loss_first,
        r.ttt.loss_last,
        r.seconds,
        train_tokens as f64 / r.seconds.max(1e-9)
    );
}

/// Stage 2 for one task: its TTT set and adapter (the base model itself when the set is empty).
fn adapt(base: &Transformer, codec: &dyn Codec, task: &Task, cfg: &Config, r: &mut TaskResult) -> Result<Transformer> {
    let set = ttt::ttt_set(codec, &task.train, cfg.ttt.colour_perms, cfg.ttt.cap, base.cfg.max_seq_len, cfg.seed)?;
    r.ttt_tasks = set.len();
    if set.is_empty() {
        return Ok(base.clone());
    }
    let (m, stats) = ttt::train_adapter(base, codec, &set, &cfg.ttt, cfg.seed)?;
    r.ttt = stats;
    Ok(m)
}

/// Stages 2 and 3 for one task, the model read and written through `codec`, its views decoded
/// one at a time under the task's own model (`serve_batch` 0; `solve_batch` decodes many tasks
/// at once and gives the same answers).
pub fn solve(base: &Transformer, codec: &dyn Codec, task: &Task, cfg: &Config, ab: Ablations) -> Result<TaskResult> {
    let start = Instant::now();
    let plain = infer::views(task.train.len(), false, 0, cfg.seed);
    let aug = infer::views(task.train.len(), true, cfg.infer_colour_perms, cfg.seed);
    let mut r = TaskResult { id: task.id.clone(), ..TaskResult::default() };
    let mut gen_tokens = 0;
    for q in &task.test {
        let (a, n) = attempts(base, codec, &task.train, &q.input, &plain, cfg)?;
        r.ft.push(a);
        gen_tokens += n;
    }
    if ab.ttt {
        let model = adapt(base, codec, task, cfg, &mut r)?;
        let (mut one, mut many) = (Vec::new(), Vec::new());
        for q in &task.test {
            let (a, n) = attempts(&model, codec, &task.train, &q.input, &plain, cfg)?;
            one.push(a);
            gen_tokens += n;
            if ab.augment {
                let (a, n) = attempts(&model, codec, &task.train, &q.input, &aug, cfg)?;
                many.push(a);
                gen_tokens += n;
            }
        }
        r.ft_ttt = Some(one);
        r.ft_ttt_aug = ab.augment.then_some(many);
    }
    r.seconds = start.elapsed().as_secs_f64();
    log_task(&r, gen_tokens, r.ttt.tokens);
    Ok(r)
}

/// Stages 2 and 3 for a group of tasks: each task's adapter is trained in turn, then every
/// task's views are decoded together, one ragged batch per model: the base model's plain views
/// (ft), then the plain and augmented views under the stacked adapters (ft_ttt, ft_ttt_aug), each
/// row under its own task's adapter (`Transformer::with_adapters`, the multi-adapter LoRA op).
/// A task's seconds are its own training plus an equal share of the batched decoding.
pub fn solve_batch(base: &Transformer, codec: &dyn Codec, tasks: &[Task], cfg: &Config, ab: Ablations) -> Result<Vec<TaskResult>> {
    let plain: Vec<_> = tasks.iter().map(|t| infer::views(t.train.len(), false, 0, cfg.seed)).collect();
    let aug: Vec<_> = tasks.iter().map(|t| infer::views(t.train.len(), true, cfg.infer_colour_perms, cfg.seed)).collect();
    let mut rs: Vec<TaskResult> = tasks.iter().map(|t| TaskResult { id: t.id.clone(), ..TaskResult::default() }).collect();
    let mut gen_tokens = vec![0; tasks.len()];
    let mut shared = 0.0;
    // ft: the base model, no adapters
    let start = Instant::now();
    let queries: Vec<infer::Query> = tasks.iter().zip(&plain).flat_map(|(t, v)| t.test.iter().map(move |q| infer::Query { demos: &t.train, query: &q.input, views: v, adapter: 0 })).collect();
    let mut answers = infer::predict_batched(base, codec, &queries)?.into_iter();
    for (i, t) in tasks.iter().enumerate() {
        for _ in &t.test {
            let (cands, n) = answers.next().expect("one answer per query");
            rs[i].ft.push(vote::vote(&cands, cfg.per_group));
            gen_tokens[i] += n;
        }
    }
    shared += start.elapsed().as_secs_f64();
    if ab.ttt {
        let mut models = Vec::with_capacity(tasks.len());
        for (t, r) in tasks.iter().zip(rs.iter_mut()) {
            let start = Instant::now();
            models.push(adapt(base, codec, t, cfg, r)?);
            r.seconds = start.elapsed().as_secs_f64();
        }
        let start = Instant::now();
        let stacked = base.with_adapters(&models.iter().collect::<Vec<_>>())?;
        drop(models);
        let mut queries = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            for q in &t.test {
                queries.push(infer::Query { demos: &t.train, query: &q.input, views: &plain[i], adapter: i as u32 });
                if ab.augment {
                    queries.push(infer::Query { demos: &t.train, query: &q.input, views: &aug[i], adapter: i as u32 });
                }
            }
        }
        let mut answers = infer::predict_batched(&stacked, codec, &queries)?.into_iter();
        for (i, t) in tasks.iter().enumerate() {
            let (mut one, mut many) = (Vec::new(), Vec::new());
            for _ in &t.test {
                let (cands, n) = answers.next().expect("one answer per query");
                one.push(vote::vote(&cands, cfg.per_group));
                gen_tokens[i] += n;
                if ab.augment {
                    let (cands, n) = answers.next().expect("one answer per query");
                    many.push(vote::vote(&cands, cfg.per_group));
                    gen_tokens[i] += n;
                }
            }
            rs[i].ft_ttt = Some(one);
            rs[i].ft_ttt_aug = ab.augment.then_some(many);
        }
        shared += start.elapsed().as_secs_f64();
    }
    for (r, n) in rs.iter_mut().zip(gen_tokens) {
        r.seconds += shared / tasks.len().max(1) as f64;
        log_task(r, n, r.ttt.tokens);
    }
    Ok(rs)
}

/// Solve every task (progress bar per task): `serve_batch` tasks at a time with `solve_batch`,
/// or one by one with `solve` when it is 0.
pub fn solve_all(base: &Transformer, codec: &dyn Codec, tasks: &[Task], cfg: &Config, ab: Ablations) -> Result<Vec<TaskResult>> {
    let bar = crate::report::progress(tasks.len() as u64, "ttt-arc tasks");
    let mut out = Vec::with_capacity(tasks.len());
    for group in tasks.chunks(cfg.serve_batch.max(1)) {
        bar.set_message(group[0].id.clone());
        if cfg.serve_batch == 0 {
            out.push(solve(base, codec, &group[0], cfg, ab)?);
        } else {
            out.extend(solve_batch(base, codec, group, cfg, ab)?);
        }
        bar.inc(group.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}
