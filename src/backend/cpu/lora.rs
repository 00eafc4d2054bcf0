//! The LoRA linear as one op (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
//! 2021): y = x W + s (x A) B. Twin of kernels/lora.cu.
//!
//! Forward: t = x A (N x R, small) first, then y = x W and y += s t B accumulated into the same
//! buffer, so y is allocated once and never copied. The rank-R products are < 2% of the FLOPs
//! at R = 16, K = M = 1024.
//! Backward, with g = s dY B^T (N x R):
//!   dX = dY W^T + g A^T      dA = X^T g      dB = s (X A)^T dY      dW = X^T dY (if W trains)
//! t = X A is recomputed (one thin GEMM) instead of being saved by the forward.

use super::{CpuStorage, Real};
use crate::backend::LoraDims;
use crate::Result;

/// x: (N, K), w: (K, M), a: (K, R), b: (R, M) -> y: (N, M)
pub fn lora(x: &CpuStorage, w: &CpuStorage, a: &CpuStorage, b: &CpuStorage, d: LoraDims) -> Result<CpuStorage> {
    crate::float_op!("lora", (x, w, a, b), lora_t(x, w, a, b, d))
}

fn lora_t<T: Real>(x: &[T], w: &[T], a: &[T], b: &[T], d: LoraDims) -> Vec<T> {
    let LoraDims { n, k, m, r, scale } = d;
    let mut t = vec![T::ZERO; n * r];
    T::gemm(&mut t, x, a, n, k, r, false, false, T::ONE, false, true); // t = x A
    let mut y = vec![T::ZERO; n * m];
    T::gemm(&mut y, x, w, n, k, m, false, false, T::ONE, false, true); // y = x W
    T::gemm(&mut y, &t, b, n, r, m, false, false, T::from_f64(scale), true, true); // y += s t B
    y
}

/// -> [dx (N, K) if need_dx, dw (K, M) if need_dw, da (K, R), db (R, M)]
#[allow(clippy::too_many_arguments)]
pub fn lora_backward(
    x: &CpuStorage, w: &CpuStorage, a: &CpuStorage, b: &CpuStorage, dy: &CpuStorage,
    d: LoraDims, need_dx: bool, need_dw: bool,
) -> Result<Vec<Option<CpuStorage>>> {
    use CpuStorage as S;
    match (x, w, a, b, dy) {
        (S::F32(x), S::F32(w), S::F32(a), S::F32(b), S::F32(dy)) => {
            Ok(lora_backward_t(x, w, a, b, dy, d, need_dx, need_dw).into_iter().map(|g| g.map(S::F32)).collect())
        }
        (S::F64(x), S::F64(w), S::F64(a), S::F64(b), S::F64(dy)) => {
            Ok(lora_backward_t(x, w, a, b, dy, d, need_dx, need_dw).into_iter().map(|g| g.map(S::F64)).collect())
        }
        _ => Err(super::dtype_error("lora_backward", &[x.dtype(), w.dtype(), a.dtype(), b.dtype(), dy.dtype()])),
    }
}

#[allow(clippy::too_many_arguments)]
fn lora_backward_t<T: Real>(x: &[T], w: &[T], a: &[T], b: &[T], dy: &[T], d: LoraDims, need_dx: bool, need_dw: bool) -> Vec<Option<Vec<T>>> {
    let LoraDims { n, k, m, r, scale } = d;
    let s = T::from_f64(scale);
    // g = s dY B^T: (N, M) x (M, R) -> (N, R)
    let mut g = vec![T::ZERO; n * r];
    T::gemm(&mut g, dy, b, n, m, r, false, true, s, false, true);
    // dA = X^T g: (K, N) x (N, R) -> (K, R)
    let mut da = vec![T::ZERO; k * r];
    T::gemm(&mut da, x, &g, k, n, r, true, false, T::ONE, false, true);
    // dB = s (X A)^T dY: (R, N) x (N, M) -> (R, M)
    let mut t = vec![T::ZERO; n * r];
    T::gemm(&mut t, x, a, n, k, r, false, false, T::ONE, false, true);
    let mut db = vec![T::ZERO; r * m];
    T::gemm(&mut db, &t, dy, r, n, m, true, false, s, false, true);
    // dX = dY W^T + g A^T: (N, M) x (M, K) + (N, R) x (R, K) -> (N, K)
    let dx = need_dx.then(|| {
        let mut dx = vec![T::ZERO; n * k];
        T::gemm(&mut dx, dy, w, n, m, k, false, true, T::ONE, false, true);
        T::gemm(&mut dx, &g, a, n, r, k, false, true, T::ONE, true, true);
        dx
    });
    // dW = X^T dY: (K, N) x (N, M) -> (K, M)
    let dw = need_dw.then(|| {
        let mut dw = vec![T::ZERO; k * m];
        T::gemm(&mut dw, x, dy, k, n, m, true, false, T::ONE, false, true);
        dw
    });
    vec![dx, dw, Some(da), Some(db)]
}
