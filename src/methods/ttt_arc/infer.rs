//! Stage 3, augmented inference (Akyürek et al. 2024, §4): the test query is shown under several
//! invertible views (a symmetry, a colour permutation fixing 0, a demo order); each view is
//! decoded greedily, its answer mapped back by the inverse transform, undecodable answers dropped,
//! and the survivors voted on hierarchically (vote.rs), one group per symmetry. Views are decoded
//! one after another with a KV cache each (Transformer::generate), not as one padded batch.

use super::augment::{order_perm, ColourPerm, Transform, DIHEDRAL};
use super::data::Pair;
use super::grid::Grid;
use super::codec::Codec;
use crate::model::{GenerateOptions, Transformer};
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

/// Decode every view; returns (group, answer in the original frame or None) per view and the
/// number of tokens generated. A view whose prompt does not fit the context gives None.
pub fn predict(model: &Transformer, codec: &dyn Codec, demos: &[Pair], query: &Grid, views: &[View], max_answer: usize) -> Result<(Vec<(usize, Option<Grid>)>, usize)> {
    let ctx = model.cfg.max_seq_len;
    let mut out = Vec::with_capacity(views.len());
    let mut generated = 0;
    for v in views {
        let ds: Vec<Pair> = v.order.iter().map(|&i| Pair { input: v.t.apply(&demos[i].input), output: v.t.apply(&demos[i].output) }).collect();
        let p = codec.prompt(&ds, &v.t.apply(query))?;
        if p.len() >= ctx {
            out.push((v.group, None));
            continue;
        }
        let opts = GenerateOptions { max_new_tokens: max_answer.min(ctx - p.len()), params: vec![SamplingParams::greedy()], stop_tokens: codec.stop_tokens(), seed: 0 };
        let g = model.generate(&[p], &opts)?.remove(0);
        generated += g.new_ids.len();
        let answer = if g.finish == "stop" { codec.decode(&g.new_ids).map(|a| v.t.invert(&a)) } else { None };
        out.push((v.group, answer));
    }
    Ok((out, generated))
}
