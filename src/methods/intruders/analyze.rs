//! Intruder dimensions (METHODS.md §2): for each weight matrix of a fine-tuned model, its top-k
//! singular vectors set against ALL singular vectors of the same matrix in the base model.
//!
//! A matrix W_hf (out, in) in HF's layout is kiln's W (in, out) transposed, so the paper's left
//! singular vectors (the output space, length `out`) are the rows of V^T in kiln's SVD. For tuned
//! vector i: `max_cos[i] = max_j |<v_tuned_i, v_base_j>|` over every base singular vector j; it is an
//! intruder at threshold eps when `max_cos[i] < eps` (no base direction resembles it).

use crate::linalg::{svd_f32, Svd};
use crate::model::Transformer;
use crate::report::plot::{heatmaps_png, Heatmap};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The thresholds every report counts intruders at.
pub const EPS_GRID: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// One weight matrix in kiln's layout: (in, out) row-major, LoRA already folded in.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub name: String,
    pub d_in: usize,
    pub d_out: usize,
    pub w: Vec<f32>,
}

/// Every linear weight inside the transformer blocks (embeddings and the output head excluded,
/// as in the paper), named as in HF, with any unmerged LoRA adapter folded in at its own scale
/// (PEFT rank/alpha patterns give modules different scales): W + s A B.
pub fn block_matrices(model: &Transformer) -> Result<Vec<Matrix>> {
    let names: HashMap<usize, String> = model.named_params().into_iter().map(|(n, t)| (t.id(), n)).collect();
    let mut view = model.clone(); // shares every tensor; only read below
    let mut out = Vec::new();
    for blk in &mut view.blocks {
        for (_, lin) in blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()) {
            let name = names.get(&lin.weight.id()).and_then(|n| n.strip_suffix(".weight")).ok_or_else(|| Error::Msg("intruders: a block weight has no parameter name".into()))?;
            let (d_in, d_out) = (lin.d_in(), lin.d_out());
            let mut w = lin.weight.to_vec_f32()?;
            if let (Some(l), false) = (&lin.lora, lin.is_merged()) {
                let ab = l.a.matmul(&l.b)?.to_vec_f32()?; // (in, r) (r, out) -> (in, out)
                w.iter_mut().zip(&ab).for_each(|(w, d)| *w += (l.scale * *d as f64) as f32);
            }
            out.push(Matrix { name: name.to_string(), d_in, d_out, w });
        }
    }
    if out.is_empty() {
        return Err(Error::Msg("intruders: the model has no linear weights inside its blocks".into()));
    }
    Ok(out)
}

/// The analysis of one matrix.
#[derive(Clone, Debug, Serialize)]
pub struct MatrixIntruders {
    pub name: String,
    /// (out, in), HF's layout
    pub shape: [usize; 2],
    /// per tuned top-k vector, its largest |cos| with any base singular vector
    pub max_cos: Vec<f64>,
    /// the tuned matrix's top-k singular values
    pub sigma: Vec<f64>,
    /// intruder count per threshold (keys "0.1" .. "0.9")
    pub intruders_eps: BTreeMap<String, usize>,
}

/// Everything `analyze` found, plus the SVDs kept for plots and the scale-down experiment.
#[derive(Debug)]
pub struct Analysis {
    pub matrices: Vec<MatrixIntruders>,
    pub totals: BTreeMap<String, usize>,
    /// (base, tuned) SVDs per matrix, in the same order
    pub svds: Vec<(Svd<f32>, Svd<f32>)>,
}

pub fn eps_key(eps: f64) -> String {
    format!("{eps:.1}")
}

/// |<x, y>| for unit vectors stored as rows of V^T.
fn abs_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>().abs()
}

/// Compare every matrix of `tuned` with the same-named one in `base` (shapes must agree; a matrix
/// missing on one side is an error naming it). `k` top tuned vectors per matrix.
pub fn analyze(base: &[Matrix], tuned: &[Matrix], k: usize) -> Result<Analysis> {
    if k == 0 {
        return Err(Error::Msg("intruders: --k must be at least 1".into()));
    }
    let by_name: BTreeMap<&str, &Matrix> = base.iter().map(|m| (m.name.as_str(), m)).collect();
    let (mut matrices, mut svds) = (Vec::new(), Vec::new());
    for t in tuned {
        let b = by_name.get(t.name.as_str()).ok_or_else(|| Error::Msg(format!("intruders: `{}` is in the tuned model but not in the base", t.name)))?;
        if (b.d_in, b.d_out) != (t.d_in, t.d_out) {
            return Err(Error::Msg(format!("intruders: `{}` is ({}, {}) in the base but ({}, {}) in the tuned model (HF layout out, in)", t.name, b.d_out, b.d_in, t.d_out, t.d_in)));
        }
        let (sb, st) = (svd_f32(&b.w, b.d_in, b.d_out)?, svd_f32(&t.w, t.d_in, t.d_out)?);
        let kk = k.min(st.k);
        let n = t.d_out;
        let max_cos: Vec<f64> = (0..kk)
            .map(|i| (0..sb.k).map(|j| abs_dot(&st.vt[i * n..(i + 1) * n], &sb.vt[j * n..(j + 1) * n])).fold(0.0, f64::max))
            .collect();
        let intruders_eps = EPS_GRID.iter().map(|&e| (eps_key(e), max_cos.iter().filter(|c| **c < e).count())).collect();
        let sigma = st.s[..kk].iter().map(|s| *s as f64).collect();
        matrices.push(MatrixIntruders { name: t.name.clone(), shape: [t.d_out, t.d_in], max_cos, sigma, intruders_eps });
        svds.push((sb, st));
    }
    if tuned.len() != base.len() {
        let tuned_names: std::collections::BTreeSet<&str> = tuned.iter().map(|m| m.name.as_str()).collect();
        let missing: Vec<&str> = base.iter().map(|m| m.name.as_str()).filter(|n| !tuned_names.contains(n)).collect();
        return Err(Error::Msg(format!("intruders: the tuned model lacks base matrices {missing:?}")));
    }
    let mut totals = BTreeMap::new();
    for m in &matrices {
        for (e, n) in &m.intruders_eps {
            *totals.entry(e.clone()).or_insert(0) += n;
        }
    }
    Ok(Analysis { matrices, totals, svds })
}

/// |cos| between the tuned top-`k` vectors (rows) and the base top-`m` vectors (columns) of
/// matrix `idx`, as a heat-map panel.
pub fn cos_heatmap(a: &Analysis, idx: usize, k: usize, m: usize) -> Heatmap {
    let (sb, st) = &a.svds[idx];
    let (k, m, n) = (k.min(st.k), m.min(sb.k), st.n);
    let values = (0..k).flat_map(|i| (0..m).map(move |j| Some(abs_dot(&st.vt[i * n..(i + 1) * n], &sb.vt[j * n..(j + 1) * n]).max(1e-3))));
    Heatmap {
        title: a.matrices[idx].name.clone(),
        row_labels: (0..k).map(|i| format!("t{i}")).collect(),
        col_labels: (0..m).map(|j| format!("b{j}")).collect(),
        values: values.collect(),
    }
}

/// PNG of the |cos| heat maps of the matrices with the most intruders at eps 0.5 (at most 3).
pub fn heatmap_png(a: &Analysis, k: usize) -> Result<Vec<u8>> {
    let mut order: Vec<usize> = (0..a.matrices.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(a.matrices[i].intruders_eps[&eps_key(0.5)]));
    let panels: Vec<Heatmap> = order.iter().take(3).map(|&i| cos_heatmap(a, i, k, 12)).collect();
    heatmaps_png("|cos(tuned singular vector, base singular vector)| (log colour)", &panels, "base vector (by sigma)", "tuned top-k vector")
}

/// Scale the singular values of the intruder directions (max_cos < eps) of each matrix by
/// `lambda`: W_out = W + (lambda - 1) sum_i sigma_i u_i v_i^T over the intruders i. Returns the
/// edited matrices (kiln layout) and the number of directions scaled.
pub fn scale_intruders(tuned: &[Matrix], a: &Analysis, eps: f64, lambda: f64) -> (Vec<Matrix>, usize) {
    let mut hit = 0;
    let out = tuned
        .iter()
        .zip(&a.matrices)
        .zip(&a.svds)
        .map(|((t, mi), (_, st))| {
            let mut w = t.w.clone();
            for (i, c) in mi.max_cos.iter().enumerate() {
                if *c >= eps {
                    continue;
                }
                hit += 1;
                let f = (lambda - 1.0) * st.s[i] as f64;
                for r in 0..t.d_in {
                    let ur = st.u[r * st.k + i] as f64 * f;
                    let row = &mut w[r * t.d_out..(r + 1) * t.d_out];
                    row.iter_mut().zip(&st.vt[i * t.d_out..(i + 1) * t.d_out]).for_each(|(x, v)| *x += (ur * *v as f64) as f32);
                }
            }
            Matrix { w, ..t.clone() }
        })
        .collect();
    (out, hit)
}
