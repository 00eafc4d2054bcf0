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
    // bf16 operands and outputs, f32 accumulation (t and g stay f32): the reference computes in
    // f32 from bf16-rounded inputs, so the error is the final bf16 rounding.
    check(DType::BF16, TOL_BF16);
}
