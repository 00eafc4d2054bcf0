//! Multi-adapter LoRA: every row of a batch picks its own adapter (S-LoRA / Punica-style mixed
//! batches). Twin of kernels/lora_multi_adapter.cu.
//!
//! Source, with `g(i) = ids[i]` and `s_g = scales[g]`:
//! ```text
//! y[i] = x[i] W + s_g(i) (x[i] A_g(i)) B_g(i)
//! ```
//! Backward, with `u[i] = s_g(i) dY[i] B_g(i)^T` (R) and `t[i] = x[i] A_g(i)` (R):
//! ```text
//! dX[i] = dY[i] W^T + u[i] A_g(i)^T      dW = X^T dY
//! dA_g = sum_{i: g(i) = g} x[i]^T u[i]   dB_g = s_g sum_{i: g(i) = g} t[i]^T dY[i]
//! ```
//! An adapter no row uses gets zero gradients.
//! Here: the shared x W and dW are one GEMM each; the rows of each adapter are gathered into
//! contiguous blocks and run through the single-adapter formulas of backend/cpu/lora.rs.
//!
//! Shapes: x (N, K), w (K, M), a (G, K, R), b (G, R, M), ids (N), scales (G), y (N, M).

use super::{CpuStorage, Real};
use crate::backend::{check_adapter_ids, LoraMultiDims};
use crate::Result;

const OP: &str = "lora_multi_adapter";

fn check_lens(op: &'static str, bufs: &[(&CpuStorage, usize, &str)]) -> Result<()> {
    for &(s, want, what) in bufs {
        super::expect_len(op, what, s.len(), want)?;
    }
    Ok(())
}

/// x (N, K), w (K, M), a (G, K, R), b (G, R, M) -> y (N, M)
pub fn lora_multi_adapter(x: &CpuStorage, w: &CpuStorage, a: &CpuStorage, b: &CpuStorage, ids: &[u32], scales: &[f64], d: LoraMultiDims) -> Result<CpuStorage> {
    check_adapter_ids(OP, ids, scales, d)?;
    let LoraMultiDims { n, k, m, r, g } = d;
    check_lens(OP, &[(x, n * k, "x (N, K)"), (w, k * m, "w (K, M)"), (a, g * k * r, "a (G, K, R)"), (b, g * r * m, "b (G, R, M)")])?;
    crate::float_op!(OP, (x, w, a, b), forward(x, w, a, b, ids, scales, d))
}

/// -> [dx (N, K) if need_dx, dw (K, M) if need_dw, da (G, K, R), db (G, R, M)]
#[allow(clippy::too_many_arguments)]
pub fn lora_multi_adapter_backward(
    x: &CpuStorage, w: &CpuStorage, a: &CpuStorage, b: &CpuStorage, dy: &CpuStorage, ids: &[u32], scales: &[f64], d: LoraMultiDims,
    need_dx: bool, need_dw: bool,
) -> Result<Vec<Option<CpuStorage>>> {
    const OPB: &str = "lora_multi_adapter_backward";
    check_adapter_ids(OPB, ids, scales, d)?;
    let LoraMultiDims { n, k, m, r, g } = d;
    let bufs = [(x, n * k, "x (N, K)"), (w, k * m, "w (K, M)"), (a, g * k * r, "a (G, K, R)"), (b, g * r * m, "b (G, R, M)"), (dy, n * m, "dy (N, M)")];
    check_lens(OPB, &bufs)?;
    use CpuStorage as S;
    match (x, w, a, b, dy) {
        (S::F32(x), S::F32(w), S::F32(a), S::F32(b), S::F32(dy)) => {
            Ok(backward(x, w, a, b, dy, ids, scales, d, need_dx, need_dw).into_iter().map(|g| g.map(S::F32)).collect())
        }
        (S::F64(x), S::F64(w), S::F64(a), S::F64(b), S::F64(dy)) => {
            Ok(backward(x, w, a, b, dy, ids, scales, d, need_dx, need_dw).into_iter().map(|g| g.map(S::F64)).collect())
        }
        _ => Err(super::dtype_error(OPB, &[x.dtype(), w.dtype(), a.dtype(), b.dtype(), dy.dtype()])),
    }
}

/// The rows of each adapter, in increasing order: rows[g].
fn rows_by_adapter(ids: &[u32], g: usize) -> Vec<Vec<usize>> {
    let mut rows = vec![Vec::new(); g];
    for (i, &id) in ids.iter().enumerate() {
        rows[id as usize].push(i);
    }
    rows
}

/// Rows `rows` of a row-major (_, width) matrix, stacked: (rows.len(), width).
fn gather<T: Real>(src: &[T], rows: &[usize], width: usize) -> Vec<T> {
    rows.iter().flat_map(|&i| src[i * width..(i + 1) * width].iter().copied()).collect()
}

fn forward<T: Real>(x: &[T], w: &[T], a: &[T], b: &[T], ids: &[u32], scales: &[f64], d: LoraMultiDims) -> Vec<T> {
    let LoraMultiDims { n, k, m, r, g } = d;
    let mut y = vec![T::ZERO; n * m];
    T::gemm(&mut y, x, w, n, k, m, false, false, T::ONE, false, true); // y = x W
    for (gi, rows) in rows_by_adapter(ids, g).iter().enumerate().filter(|(_, rows)| !rows.is_empty()) {
        let nr = rows.len();
        let (ag, bg) = (&a[gi * k * r..(gi + 1) * k * r], &b[gi * r * m..(gi + 1) * r * m]);
        let xg = gather(x, rows, k);
        // t = x_g A_g (nr, R); u = s_g t B_g (nr, M)
        let mut t = vec![T::ZERO; nr * r];
        T::gemm(&mut t, &xg, ag, nr, k, r, false, false, T::ONE, false, true);
        let mut u = vec![T::ZERO; nr * m];
        T::gemm(&mut u, &t, bg, nr, r, m, false, false, T::from_f64(scales[gi]), false, true);
        for (j, &i) in rows.iter().enumerate() {
            for (yv, &uv) in y[i * m..(i + 1) * m].iter_mut().zip(&u[j * m..(j + 1) * m]) {
                *yv += uv;
            }
        }
    }
    y
}

#[allow(clippy::too_many_arguments)]
fn backward<T: Real>(x: &[T], w: &[T], a: &[T], b: &[T], dy: &[T], ids: &[u32], scales: &[f64], d: LoraMultiDims, need_dx: bool, need_dw: bool) -> Vec<Option<Vec<T>>> {
    let LoraMultiDims { n, k, m, r, g } = d;
    let mut da = vec![T::ZERO; g * k * r];
    let mut db = vec![T::ZERO; g * r * m];
    // dX = dY W^T: (N, M) x (M, K), the adapters' terms added per row below
    let mut dx = need_dx.then(|| {
        let mut dx = vec![T::ZERO; n * k];
        T::gemm(&mut dx, dy, w, n, m, k, false, true, T::ONE, false, true);
        dx
    });
    for (gi, rows) in rows_by_adapter(ids, g).iter().enumerate().filter(|(_, rows)| !rows.is_empty()) {
        let (nr, s) = (rows.len(), T::from_f64(scales[gi]));
        let (ag, bg) = (&a[gi * k * r..(gi + 1) * k * r], &b[gi * r * m..(gi + 1) * r * m]);
        let (xg, dyg) = (gather(x, rows, k), gather(dy, rows, m));
        // u = s dY_g B_g^T (nr, R); dA_g = X_g^T u (K, R)
        let mut u = vec![T::ZERO; nr * r];
        T::gemm(&mut u, &dyg, bg, nr, m, r, false, true, s, false, true);
        T::gemm(&mut da[gi * k * r..(gi + 1) * k * r], &xg, &u, k, nr, r, true, false, T::ONE, false, true);
        // t = X_g A_g (nr, R); dB_g = s t^T dY_g (R, M)
        let mut t = vec![T::ZERO; nr * r];
        T::gemm(&mut t, &xg, ag, nr, k, r, false, false, T::ONE, false, true);
        T::gemm(&mut db[gi * r * m..(gi + 1) * r * m], &t, &dyg, r, nr, m, true, false, s, false, true);
        if let Some(dx) = dx.as_mut() {
            // dX_g += u A_g^T: (nr, R) x (R, K)
            let mut v = vec![T::ZERO; nr * k];
            T::gemm(&mut v, &u, ag, nr, r, k, false, true, T::ONE, false, true);
            for (j, &i) in rows.iter().enumerate() {
                for (o, &vv) in dx[i * k..(i + 1) * k].iter_mut().zip(&v[j * k..(j + 1) * k]) {
                    *o += vv;
                }
            }
        }
    }
    // dW = X^T dY: (K, N) x (N, M)
    let dw = need_dw.then(|| {
        let mut dw = vec![T::ZERO; k * m];
        T::gemm(&mut dw, x, dy, k, n, m, true, false, T::ONE, false, true);
        dw
    });
    vec![dx, dw, Some(da), Some(db)]
}
