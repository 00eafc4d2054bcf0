//! Stage 3, augmented inference (Akyürek et al. 2024, §4): the test query is shown under several
//! invertible views (a symmetry, a colour permutation fixing 0, a demo order); each view is
//! decoded greedily, its answer mapped back by the inverse transform, undecodable answers dropped,
//! and the survivors voted on hierarchically (vote.rs), one group per symmetry. `predict` decodes
//! one task's views one after another with a KV cache each (Transformer::generate);
//! `predict_batched` decodes the views of many tasks as one ragged batch, each row under its
//! task's adapter (multi-adapter LoRA, Transformer::with_adapters / generate_ragged).

use super::augment::{order_perm, ColourPerm, Transform, DIHEDRAL};
use super::data::Pair;
use super::grid::Grid;
use super::codec::Codec;
use crate::model::{GenerateOptions, Generated, Request, Transformer};
use crate::sample::SamplingParams;
use crate::Result;

/// One view of a task: its vote group, the transform and the demo order.
#[derive(Clone, Debug)]
pub struct View {
    pub group: usize,
    pub t: Transform,
    pub order: Vec<usize>,
}

/// The identity view only (`augment` false), or the 8 symmetries each with the original colours
/// and order plus `colour_perms` random (colour permutation, demo order) variants.
pub fn views(n_demos: usize, augment: bool, colour_perms: usize, seed: u64) -> Vec<View> {
    let id: Vec<usize> = (0..n_demos).collect();
    if !augment {
        return vec![View { group: 0, t: Transform::identity(), order: id }];
    }
    let mut out = Vec::new();
    for (g, d) in DIHEDRAL.into_iter().enumerate() {
        out.push(View { group: g, t: Transform { dihedral: d, colours: ColourPerm::identity() }, order: id.clone() });
        for c in 0..colour_perms {
            let k = (g * colour_perms + c) as u64 + 1;
            out.push(View { group: g, t: Transform { dihedral: d, colours: ColourPerm::random(seed ^ 0x1f, k) }, order: order_perm(n_demos, seed, k) });
        }
    }
    out
}

/// Per view (its vote group, its answer in the original frame or None), and the number of ids
/// generated.
pub type Predicted = (Vec<(usize, Option<Grid>)>, usize);

/// A view's prompt and decoding budget (at most the context left after the prompt), or None
/// when the prompt does not fit the context.
fn view_prompt(codec: &dyn Codec, demos: &[Pair], query: &Grid, v: &View, ctx: usize) -> Result<Option<(Vec<u32>, usize)>> {
    let ds: Vec<Pair> = v.order.iter().map(|&i| Pair { input: v.t.apply(&demos[i].input), output: v.t.apply(&demos[i].output) }).collect();
    let q = v.t.apply(query);
    let p = codec.prompt(&ds, &q)?;
    if p.len() >= ctx {
        return Ok(None);
    }
    let budget = codec.answer_budget(&ds, &q).min(ctx - p.len());
    Ok(Some((p, budget)))
}

/// A view's answer in the original frame: a stopped, decodable generation, inverted.
fn answer(codec: &dyn Codec, v: &View, g: &Generated) -> Option<Grid> {
    if g.finish == "stop" { codec.decode(&g.new_ids).map(|a| v.t.invert(&a)) } else { None }
}

/// Decode every view; returns (group, answer in the original frame or None) per view and the
/// number of tokens generated. A view whose prompt does not fit the context gives None. Each
/// view's budget is `Codec::answer_budget` of its (transformed) demos and query.
pub fn predict(model: &Transformer, codec: &dyn Codec, demos: &[Pair], query: &Grid, views: &[View]) -> Result<Predicted> {
    let ctx = model.cfg.max_seq_len;
    let mut out = Vec::with_capacity(views.len());
    let mut generated = 0;
    for v in views {
        let Some((p, budget)) = view_prompt(codec, demos, query, v, ctx)? else {
            out.push((v.group, None));
            continue;
        };
        let opts = GenerateOptions { max_new_tokens: budget, params: vec![SamplingParams::greedy()], stop_tokens: codec.stop_tokens(), seed: 0 };
        let g = model.generate(&[p], &opts)?.remove(0);
        generated += g.new_ids.len();
        out.push((v.group, answer(codec, v, &g)));
    }
    Ok((out, generated))
}

/// One query to answer under `views`, its rows using stacked adapter `adapter` of the model.
pub struct Query<'a> {
    pub demos: &'a [Pair],
    pub query: &'a Grid,
    pub views: &'a [View],
    pub adapter: u32,
}

/// `predict` for many queries (of many tasks, each with its own adapter) at once: every view of
/// every query is one row of a single ragged batch (Transformer::generate_ragged; a model with
/// stacked adapters, `Transformer::with_adapters`, serves each row its query's adapter). Returns
/// per query what `predict` returns for it.
pub fn predict_batched(model: &Transformer, codec: &dyn Codec, queries: &[Query]) -> Result<Vec<Predicted>> {
    let ctx = model.cfg.max_seq_len;
    // per query and view: the index of its request, or None when the prompt does not fit
    let mut reqs = Vec::new();
    let mut slots: Vec<Vec<Option<usize>>> = Vec::with_capacity(queries.len());
    for q in queries {
        let mut s = Vec::with_capacity(q.views.len());
        for v in q.views {
            s.push(match view_prompt(codec, q.demos, q.query, v, ctx)? {
                Some((prompt, budget)) => {
                    reqs.push(Request { prompt, max_new_tokens: budget, adapter: q.adapter });
                    Some(reqs.len() - 1)
                }
                None => None,
            });
        }
        slots.push(s);
    }
    let opts = GenerateOptions { max_new_tokens: usize::MAX, params: vec![SamplingParams::greedy()], stop_tokens: codec.stop_tokens(), seed: 0 };
    let gens = if reqs.is_empty() { Vec::new() } else { model.generate_ragged(&reqs, &opts)? };
    Ok(queries
        .iter()
        .zip(slots)
        .map(|(q, s)| {
            let answers = q.views.iter().zip(&s).map(|(v, r)| (v.group, r.and_then(|r| answer(codec, v, &gens[r])))).collect();
            (answers, s.iter().flatten().map(|&r| gens[r].new_ids.len()).sum())
        })
        .collect())
}
