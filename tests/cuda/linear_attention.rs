//! parity_linear_attention_*: chunked causal linear attention forward (o, s_final) and backward
//! (dq, dk, dv, ds0) against the CPU twin, with and without an initial state, T around the chunk
//! length (1, 63, 64, 1000) and head dims 60, 64, 96, 128 (and 256).
use super::*;
use kiln::backend::LinAttnDims;

/// (bh, t, dk, dv, with s0)
const CASES: &[(usize, usize, usize, usize, bool)] = &[
    (2, 1, 60, 64, true),
    (3, 63, 64, 60, false),
    (2, 64, 96, 128, true),
    (2, 1000, 128, 96, false),
    (1, 1000, 60, 60, true),
    (2, 130, 128, 128, true),
    (1, 65, 64, 64, false),
    (1, 100, 256, 256, true),
];

struct Inputs {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    s0: Tensor,
    dout: Tensor,
}

fn inputs(bh: usize, t: usize, dk: usize, dv: usize, seed: u64) -> Inputs {
    // Scale q, k so outputs stay O(1) over long sequences (the error is relative anyway).
    let sc = 1.0 / (dk as f64).sqrt();
    Inputs {
        q: randn(&[bh, t, dk], seed).affine(sc, 0.0).unwrap(),
        k: randn(&[bh, t, dk], seed + 1).affine(sc, 0.0).unwrap(),
        v: randn(&[bh, t, dv], seed + 2),
        s0: randn(&[bh, dk, dv], seed + 3),
        dout: randn(&[bh, t, dv], seed + 4),
    }
}

fn check(dtype: DType, tol: f64) {
    for (ci, &(bh, t, dk, dv, with_s0)) in CASES.iter().enumerate() {
        let d = LinAttnDims { bh, t, dk, dv };
        let x = inputs(bh, t, dk, dv, 100 + 10 * ci as u64);
        let c = |t: &Tensor| on_cpu(t, dtype);
        let (qc, kc, vc, sc, dc) = (c(&x.q), c(&x.k), c(&x.v), c(&x.s0), c(&x.dout));
        let g = |t: &Tensor| on_gpu(t, dtype);
        let (qg, kg, vg, sg, dg) = (g(&x.q), g(&x.k), g(&x.v), g(&x.s0), g(&x.dout));
        let s0c = with_s0.then_some(&sc);
        let s0g = with_s0.then_some(&sg);
        let tag = format!("{dtype:?} bh={bh} t={t} dk={dk} dv={dv} s0={with_s0}");

        let want = backend::linear_attention(&qc, &kc, &vc, s0c, d, true).unwrap();
        let got = twice_n("linear_attention", || backend::linear_attention(&qg, &kg, &vg, s0g, d, true).unwrap());
        for (name, gi, wi) in [("o", 0, 0), ("s_final", 1, 1)] {
            assert_close(&format!("linear_attention {name} {tag}"), &f32_of(&got[gi]), &wi_of(&want, wi), tol);
        }

        let want = backend::linear_attention_backward(&qc, &kc, &vc, s0c, &dc, d, true).unwrap();
        let got = twice_n("linear_attention_backward", || backend::linear_attention_backward(&qg, &kg, &vg, s0g, &dg, d, false).unwrap());
        for (i, name) in ["dq", "dk", "dv", "ds0"].iter().enumerate() {
            assert_close(&format!("linear_attention_backward {name} {tag}"), &f32_of(&got[i]), &wi_of(&want, i), tol);
        }
    }
}

fn f32_of(s: &Storage) -> Storage {
    s.cast(DType::F32).unwrap()
}
fn wi_of(v: &[Storage], i: usize) -> Storage {
    v[i].clone()
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_f32() {
    setup();
    check(DType::F32, TOL_LINATTN);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_bf16() {
    setup();
    // bf16 inputs and outputs, f32 state: the reference computes in f32 from bf16-rounded inputs,
    // so the error is the final bf16 rounding of the outputs (~4e-3 relative).
    check(DType::BF16, TOL_BF16);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_f32_tight() {
    setup();
    // f32 should be far inside TOL_LINATTN: only the summation order differs from the CPU.
    let (bh, t, dk, dv) = (2, 300, 96, 80);
    let d = LinAttnDims { bh, t, dk, dv };
    let x = inputs(bh, t, dk, dv, 7);
    let want = backend::linear_attention(&on_cpu(&x.q, DType::F32), &on_cpu(&x.k, DType::F32), &on_cpu(&x.v, DType::F32), Some(&on_cpu(&x.s0, DType::F32)), d, false).unwrap();
    let got = backend::linear_attention(&on_gpu(&x.q, DType::F32), &on_gpu(&x.k, DType::F32), &on_gpu(&x.v, DType::F32), Some(&on_gpu(&x.s0, DType::F32)), d, true).unwrap();
    assert_close("linear_attention o (tight)", &got[0], &want[0], 1e-5);
    assert_close("linear_attention s_final (tight)", &got[1], &want[1], 1e-5);
}

// ---- parity_linear_attention_split: the bf16 tensor-core walk split into segments -------------

/// (bh, t, dk, dv, segment counts): T not a multiple of 64, one-chunk segments, a short last
/// segment (1000 = 16 chunks in 3 or 5), two Dv slices.
// (the last case is the one KILN_LINATTN=wgmma's walk takes: head width 128, a short last chunk)
const SPLIT_CASES: &[(usize, usize, usize, usize, &[usize])] = &[(1, 1000, 60, 64, &[2, 3, 16]), (2, 300, 128, 96, &[2, 5]), (1, 700, 128, 128, &[2, 4])];

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_split() {
    use kiln::backend::cuda::linear_attention::{linear_attention_backward_segmented as bwd, linear_attention_segmented as fwd};
    setup();
    let dt = DType::BF16;
    let cuda = |s: &Storage| match s {
        Storage::Cuda(c) => c.clone(),
        _ => panic!("expected a CUDA storage"),
    };
    for (ci, &(bh, t, dk, dv, seg_counts)) in SPLIT_CASES.iter().enumerate() {
        let d = LinAttnDims { bh, t, dk, dv };
        let x = inputs(bh, t, dk, dv, 900 + 10 * ci as u64);
        let c = |t: &Tensor| on_cpu(t, dt);
        let (qc, kc, vc, sc, dc) = (c(&x.q), c(&x.k), c(&x.v), c(&x.s0), c(&x.dout));
        let g = |t: &Tensor| cuda(&on_gpu(t, dt));
        let (qg, kg, vg, sg, dg) = (g(&x.q), g(&x.k), g(&x.v), g(&x.s0), g(&x.dout));
        // Forward (rev = 0, s0 and s_final) and backward (dQ with s0^T strided, dV rev = 1 with its
        // final state dS0, dK rev = 1 without), s0 non-zero throughout.
        let want_f = backend::linear_attention(&qc, &kc, &vc, Some(&sc), d, true).unwrap();
        let want_b = backend::linear_attention_backward(&qc, &kc, &vc, Some(&sc), &dc, d, true).unwrap();
        // 1 is the single launch: both forms must be within the tolerance.
        for &segs in [1].iter().chain(seg_counts) {
            let tag = format!("bh={bh} t={t} dk={dk} dv={dv} segments={segs}");
            let got = twice_n("linear_attention (split)", || fwd(&qg, &kg, &vg, Some(&sg), d, segs).unwrap().into_iter().map(Storage::Cuda).collect());
            for (i, name) in ["o", "s_final"].iter().enumerate() {
                assert_close(&format!("linear_attention {name} {tag}"), &f32_of(&got[i]), &want_f[i], TOL_BF16);
            }
            let got = twice_n("linear_attention_backward (split)", || {
                bwd(&qg, &kg, &vg, Some(&sg), &dg, d, segs).unwrap().into_iter().map(Storage::Cuda).collect()
            });
            for (i, name) in ["dq", "dk", "dv", "ds0"].iter().enumerate() {
                assert_close(&format!("linear_attention_backward {name} {tag}"), &f32_of(&got[i]), &want_b[i], TOL_BF16);
            }
        }
    }
}

// ---- parity_linear_attention_wgmma_fused: the one-launch wgmma walk ----------------------------

/// The fused walks against the CPU twin and, bit for bit, against the three-launch wgmma walk
/// (forward, dQ and the backward's one dK / dV walk, `linattn_wg_fused_dkdv_bf16`).
/// (bh, t, with s0, segment counts): head width 128 (the wgmma walks' only one),
/// a short last chunk and segment (700 = 11 chunks in 3), one segment, a one-chunk sequence.
const FUSED_CASES: &[(usize, usize, bool, &[usize])] = &[(2, 700, true, &[1, 3]), (3, 130, false, &[2]), (1, 64, true, &[1])];

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_wgmma_fused() {
    use kiln::backend::cuda::linear_attention::{linear_attention_backward_walk as bwd, linear_attention_walk as fwd};
    use kiln::backend::cuda::linear_attention_tc::Walk;
    setup();
    let dt = DType::BF16;
    let cuda = |s: &Storage| match s {
        Storage::Cuda(c) => c.clone(),
        _ => panic!("expected a CUDA storage"),
    };
    let bits = |v: &[Storage]| v.iter().flat_map(vals).map(f64::to_bits).collect::<Vec<_>>();
    for (ci, &(bh, t, with_s0, seg_counts)) in FUSED_CASES.iter().enumerate() {
        let d = LinAttnDims { bh, t, dk: 128, dv: 128 };
        let x = inputs(bh, t, 128, 128, 700 + 10 * ci as u64);
        let c = |t: &Tensor| on_cpu(t, dt);
        let (qc, kc, vc, sc, dc) = (c(&x.q), c(&x.k), c(&x.v), c(&x.s0), c(&x.dout));
        let g = |t: &Tensor| cuda(&on_gpu(t, dt));
        let (qg, kg, vg, sg, dg) = (g(&x.q), g(&x.k), g(&x.v), g(&x.s0), g(&x.dout));
        let (s0c, s0g) = (with_s0.then_some(&sc), with_s0.then_some(&sg));
        let want_f = backend::linear_attention(&qc, &kc, &vc, s0c, d, true).unwrap();
        let want_b = backend::linear_attention_backward(&qc, &kc, &vc, s0c, &dc, d, true).unwrap();
        for &segs in seg_counts {
            let tag = format!("bh={bh} t={t} s0={with_s0} segments={segs}");
            let run = |walk: Walk| {
                let f = fwd(&qg, &kg, &vg, s0g, d, segs, walk).unwrap();
                let b = bwd(&qg, &kg, &vg, s0g, &dg, d, segs, walk).unwrap();
                f.into_iter().chain(b).map(Storage::Cuda).collect::<Vec<_>>()
            };
            let fused = twice_n("linear_attention (wgmma-fused)", || run(Walk::WgmmaFused));
            for (i, name) in ["o", "s_final", "dq", "dk", "dv", "ds0"].iter().enumerate() {
                let want = if i < 2 { &want_f[i] } else { &want_b[i - 2] };
                assert_close(&format!("linear_attention wgmma-fused {name} {tag}"), &f32_of(&fused[i]), want, TOL_BF16);
            }
            // The same sums in the same order as the three launches: bit for bit (but dK, whose
            // fused walk sums its state as G where the three launches sum G^T).
            let three = run(Walk::Wgmma);
            for (i, name) in ["o", "s_final", "dq", "dv", "ds0"].iter().enumerate().map(|(i, n)| (if i < 3 { i } else { i + 1 }, n)) {
                assert!(bits(&fused[i..i + 1]) == bits(&three[i..i + 1]), "wgmma-fused {name} differs from the three wgmma launches' ({tag})");
            }
        }
    }
}

// ---- parity_linear_attention_varlen_*: packed sequences (linattn_varlen_*) -----------------

/// (heads, sequence lengths, dk, dv, with s0): 1-token and empty sequences, T not a multiple of 64.
const VARLEN_CASES: &[(usize, &[usize], usize, usize, bool)] = &[
    (2, &[1, 63, 64, 1, 65], 60, 64, true),
    (3, &[130, 0, 7], 64, 60, false),
    (1, &[1], 64, 64, true),
    (2, &[200, 1, 1, 33], 60, 60, true),
    (2, &[70, 3], 96, 136, true), // several 64-wide Dv slices (and Dk slices in the dQ / dK passes)
];

fn check_varlen(dtype: DType, tol: f64) {
    for (ci, &(h, lens, dk, dv, with_s0)) in VARLEN_CASES.iter().enumerate() {
        let mut cu = vec![0u32];
        for &l in lens {
            cu.push(cu.last().unwrap() + l as u32);
        }
        let (t, n) = (*cu.last().unwrap() as usize, lens.len());
        let d = LinAttnDims { bh: h, t, dk, dv };
        let x = inputs(h, t, dk, dv, 500 + 10 * ci as u64);
        let (s0, dsf) = (randn(&[n, h, dk, dv], 7 + ci as u64), randn(&[n, h, dk, dv], 9 + ci as u64));
        let c = |t: &Tensor| on_cpu(t, dtype);
        let (qc, kc, vc, sc, dc, fc) = (c(&x.q), c(&x.k), c(&x.v), c(&s0), c(&x.dout), c(&dsf));
        let g = |t: &Tensor| on_gpu(t, dtype);
        let (qg, kg, vg, sg, dg, fg) = (g(&x.q), g(&x.k), g(&x.v), g(&s0), g(&x.dout), g(&dsf));
        let (s0c, s0g) = (with_s0.then_some(&sc), with_s0.then_some(&sg));
        let tag = format!("{dtype:?} h={h} lens={lens:?} dk={dk} dv={dv} s0={with_s0}");

        let want = backend::linear_attention_varlen(&qc, &kc, &vc, s0c, &cu, d, true).unwrap();
        let got = twice_n("linear_attention_varlen", || backend::linear_attention_varlen(&qg, &kg, &vg, s0g, &cu, d, true).unwrap());
        for (i, name) in ["o", "s_final"].iter().enumerate() {
            assert_close(&format!("linear_attention_varlen {name} {tag}"), &f32_of(&got[i]), &want[i], tol);
        }
        // With and without the final state's gradient dsf.
        for (fc, fg) in [(None, None), (Some(&fc), Some(&fg))] {
            let want = backend::linear_attention_varlen_backward(&qc, &kc, &vc, s0c, &dc, fc, &cu, d, true).unwrap();
            let got = twice_n("linear_attention_varlen_backward", || {
                backend::linear_attention_varlen_backward(&qg, &kg, &vg, s0g, &dg, fg, &cu, d, true).unwrap()
            });
            for (i, name) in ["dq", "dk", "dv", "ds0"].iter().enumerate() {
                let what = format!("linear_attention_varlen_backward {name} dsf={} {tag}", fc.is_some());
                assert_close(&what, &f32_of(&got[i]), &want[i], tol);
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_varlen_f32() {
    setup();
    check_varlen(DType::F32, TOL_LINATTN);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_varlen_bf16() {
    setup();
    check_varlen(DType::BF16, TOL_BF16);
}

/// The unfused composition (Tensor::linear_attention_unfused: kiln's general ops, the bench's
/// baseline for "fused >= 2x its own unfused composition") on the device, against the CPU's fused
/// forward; bf16 rounds every intermediate (A, the chunk sums, the states) to bf16.
#[test]
#[ignore = "needs a CUDA device"]
fn parity_linear_attention_unfused_composition() {
    setup();
    let (b, h, t, d) = (1, 2, 130, 64);
    let x = inputs(b * h, t, d, d, 300);
    let four = |t: &Tensor, last: usize| t.reshape(vec![b, h, t.dims()[1], last]).unwrap();
    for (dtype, tol) in [(DType::F32, TOL_F32), (DType::BF16, TOL_BF16)] {
        let c = |t: &Tensor| t.to_dtype(dtype).unwrap().to_dtype(DType::F32).unwrap();
        let g = |t: &Tensor| t.to_dtype(dtype).unwrap().to_device(GPU).unwrap();
        let (q, k, v, s0) = (four(&x.q, d), four(&x.k, d), four(&x.v, d), four(&x.s0, d));
        let want = Tensor::linear_attention(&c(&q), &c(&k), &c(&v), Some(&c(&s0)), true).unwrap().0;
        let got = twice1("linear_attention_unfused", || Tensor::linear_attention_unfused(&g(&q), &g(&k), &g(&v), Some(&g(&s0))).unwrap().storage().clone());
        assert_close(&format!("linear_attention_unfused {dtype:?}"), &got.cast(DType::F32).unwrap(), &want.storage(), tol);
    }
}
