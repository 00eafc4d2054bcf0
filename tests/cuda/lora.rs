//! parity_lora_*: the fused LoRA linear y = x W + s (x A) B and its backward against the CPU twin,
//! ranks 1, 8, 16, 64, 256, odd dims (not multiples of the 64 x 64 x 16 tiles), and shapes whose
//! long reductions take the split-over-N path (f32 partials, fixed-order sum).
use super::*;
use kiln::backend::LoraDims;

/// (n, k, m, r)
const CASES: &[(usize, usize, usize, usize)] = &[
    (37, 129, 67, 1),
    (37, 129, 67, 8),
    (37, 129, 67, 16),
    (37, 129, 67, 64),
    (37, 129, 67, 256),
    (1, 1, 1, 1),
    (1000, 70, 90, 16),  // dA, dB, dW reduce over N = 1000: split into partials
    (37, 33, 600, 8),    // g = s dY B^T reduces over M = 600: split
    (130, 257, 65, 256),
    (72, 200, 136, 24),  // multiples of 8 (16-byte cp.async on every bf16 operand), K not of 64
    (130, 128, 256, 16), // K a multiple of the 64-wide k-tile
    (40, 64, 72, 64),    // one k-tile of x W, one of t B
    (520, 264, 136, 16), // 16-byte loads in the thin products, a split whose last k-tile is partial
    (16, 1032, 264, 16), // decode rows: y split over K, t B added by the last split
];

fn tensors(n: usize, k: usize, m: usize, r: usize, seed: u64) -> [Tensor; 5] {
    // Scale the weights so y stays O(1) (the comparison is a relative L2 error anyway).
    [
        randn(&[n, k], seed),
        randn(&[k, m], seed + 1).affine(1.0 / (k as f64).sqrt(), 0.0).unwrap(),
        randn(&[k, r], seed + 2).affine(1.0 / (k as f64).sqrt(), 0.0).unwrap(),
        randn(&[r, m], seed + 3).affine(1.0 / (r as f64).sqrt(), 0.0).unwrap(),
        randn(&[n, m], seed + 4),
    ]
}

fn check(dtype: DType, tol: f64) {
    for (ci, &(n, k, m, r)) in CASES.iter().enumerate() {
        let d = LoraDims { n, k, m, r, scale: 2.0 / r as f64 + 0.3 };
        let ts = tensors(n, k, m, r, 300 + 10 * ci as u64);
        let c: Vec<Storage> = ts.iter().map(|t| on_cpu(t, dtype)).collect();
        let g: Vec<Storage> = ts.iter().map(|t| on_gpu(t, dtype)).collect();
        let tag = format!("{dtype:?} n={n} k={k} m={m} r={r}");

        let want = backend::lora(&c[0], &c[1], &c[2], &c[3], d).unwrap();
        let got = twice1("lora", || backend::lora(&g[0], &g[1], &g[2], &g[3], d).unwrap().cast(DType::F32).unwrap());
        assert_close(&format!("lora y {tag}"), &got, &want, tol);

        for (need_dx, need_dw) in [(true, true), (false, false)] {
            let want = backend::lora_backward(&c[0], &c[1], &c[2], &c[3], &c[4], d, need_dx, need_dw).unwrap();
            let got = twice_n("lora_backward", || {
                let v = backend::lora_backward(&g[0], &g[1], &g[2], &g[3], &g[4], d, need_dx, need_dw).unwrap();
                v.into_iter().flatten().map(|s| s.cast(DType::F32).unwrap()).collect()
            });
            let want: Vec<(&str, Storage)> =
                ["dx", "dw", "da", "db"].iter().zip(want).filter_map(|(nm, s)| s.map(|s| (*nm, s))).collect();
            assert_eq!(got.len(), want.len(), "lora_backward {tag}: number of gradients");
            assert_eq!(got.len(), 2 + need_dx as usize + need_dw as usize);
            for (gs, (nm, ws)) in got.iter().zip(&want) {
                assert_close(&format!("lora_backward {nm} {tag}"), gs, ws, tol);
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_lora_f32() {
    setup();
    check(DType::F32, TOL_F32);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_lora_bf16() {
    setup();
    // bf16 operands and outputs, f32 accumulation; t = s x A and g = s dY B^T are rounded to bf16
    // (the matmul.cu fast path): the reference computes in f32 from bf16-rounded inputs, so the
    // error is the final bf16 rounding plus that of t and g (~2e-3 relative on the rank-R terms).
    check(DType::BF16, TOL_BF16);
}

// ---- parity_lora_multi_adapter_*: one adapter per row (kernels/lora_multi_adapter.cu) -------

/// (n, k, m, r, g): odd dims (not multiples of the 32-column / 8-row tiles), ranks 1 and 8.
const MULTI_CASES: &[(usize, usize, usize, usize, usize)] = &[(37, 129, 67, 1, 3), (37, 60, 64, 8, 4), (1, 1, 1, 1, 1), (70, 33, 100, 8, 2)];

fn check_multi(dtype: DType, tol: f64) {
    use kiln::backend::LoraMultiDims;
    for (ci, &(n, k, m, r, g)) in MULTI_CASES.iter().enumerate() {
        let d = LoraMultiDims { n, k, m, r, g };
        let [x, w, _, _, dy] = tensors(n, k, m, r, 700 + 10 * ci as u64);
        let a = randn(&[g, k, r], 1 + ci as u64).affine(1.0 / (k as f64).sqrt(), 0.0).unwrap();
        let b = randn(&[g, r, m], 2 + ci as u64).affine(1.0 / (r as f64).sqrt(), 0.0).unwrap();
        // The last adapter is unused when g > 1 (its gradients must be zeros).
        let ids: Vec<u32> = (0..n).map(|i| ((i * 5 + 1) % g.saturating_sub(1).max(1)) as u32).collect();
        let scales: Vec<f64> = (0..g).map(|i| 0.5 + i as f64 * 0.75).collect();
        let ts = [x, w, a, b, dy];
        let c: Vec<Storage> = ts.iter().map(|t| on_cpu(t, dtype)).collect();
        let gs: Vec<Storage> = ts.iter().map(|t| on_gpu(t, dtype)).collect();
        let tag = format!("{dtype:?} n={n} k={k} m={m} r={r} g={g}");

        let want = backend::lora_multi_adapter(&c[0], &c[1], &c[2], &c[3], &ids, &scales, d).unwrap();
        let got = twice1("lora_multi_adapter", || backend::lora_multi_adapter(&gs[0], &gs[1], &gs[2], &gs[3], &ids, &scales, d).unwrap().cast(DType::F32).unwrap());
        assert_close(&format!("lora_multi_adapter y {tag}"), &got, &want, tol);

        for (need_dx, need_dw) in [(true, true), (false, false)] {
            let want = backend::lora_multi_adapter_backward(&c[0], &c[1], &c[2], &c[3], &c[4], &ids, &scales, d, need_dx, need_dw).unwrap();
            let got = twice_n("lora_multi_adapter_backward", || {
                let v = backend::lora_multi_adapter_backward(&gs[0], &gs[1], &gs[2], &gs[3], &gs[4], &ids, &scales, d, need_dx, need_dw).unwrap();
                v.into_iter().flatten().map(|s| s.cast(DType::F32).unwrap()).collect()
            });
            let want: Vec<(&str, Storage)> = ["dx", "dw", "da", "db"].iter().zip(want).filter_map(|(nm, s)| s.map(|s| (*nm, s))).collect();
            assert_eq!(got.len(), want.len(), "lora_multi_adapter_backward {tag}: number of gradients");
            for (gs, (nm, ws)) in got.iter().zip(&want) {
                assert_close(&format!("lora_multi_adapter_backward {nm} {tag}"), gs, ws, tol);
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_lora_multi_adapter_f32() {
    setup();
    check_multi(DType::F32, TOL_F32);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_lora_multi_adapter_bf16() {
    setup();
    // bf16 operands and outputs, f32 accumulation and f32 t, u: only the final bf16 rounding.
    check_multi(DType::BF16, TOL_BF16);
}
