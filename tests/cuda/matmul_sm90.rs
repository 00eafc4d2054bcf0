//! parity_matmul_wgmma_*: the Hopper bf16 GEMM (kernels/matmul_sm90.cu, wgmma fed by cp.async),
//! forced with `GemmPath::Wgmma`: all four transposes, tile edges in every direction, several
//! k-tiles through the 4-stage pipeline, shared B, K = 0, the concatenated-K form the LoRA uses,
//! and shapes it does not take (which must fall back to the mma.sync kernels, same answer).
//! On a GPU these need an sm_90 device; on the emulated device they run in CI.
use super::*;
use kiln::backend::cuda::matmul::{matmul_on, wgmma_cat_on, GemmPath};
use kiln::backend::cuda::{dev, CudaStorage};

fn cuda(s: &Storage) -> &CudaStorage {
    match s {
        Storage::Cuda(c) => c,
        _ => panic!("expected a CUDA storage"),
    }
}

/// The wgmma kernels load only on compute capability 9.0 (or the emulator); elsewhere say so.
fn hopper() -> bool {
    let d = dev(0).unwrap();
    let ok = d.cc == (9, 0) || d.is_emu();
    if !ok {
        eprintln!("parity_matmul_wgmma: skipped, the device is sm_{}{} (the wgmma GEMM needs sm_90)", d.cc.0, d.cc.1);
    }
    ok
}

/// (batch, b_batch, M, K, N): the contiguous dimensions are multiples of 8 unless noted.
const SHAPES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 1, 8, 8, 8),
    (1, 1, 136, 72, 264),  // one row and 8 columns past a 128 x 256 tile; K past one 64-tile
    (2, 2, 40, 200, 16),   // per-batch B, 4 k-tiles (the pipeline wraps its 4 stages)
    (3, 1, 16, 64, 520),   // B shared across the batch, three column blocks (9 tiles: wgmma-tma's
                           // persistent blocks, 4 on the emulator, each take two or three)
    (1, 1, 40, 0, 8),      // K = 0: zeros (40 rows: more than the skinny split-K path takes)
    (1, 1, 19, 13, 21),    // not multiples of 8: falls back to mma.sync
    (1, 1, 40, 16, 21),    // N = 21 with B transposed (k contiguous): wgmma, C's rows not 16-byte aligned
];

#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_wgmma_bf16_all_transposes() {
    setup();
    if !hopper() {
        return;
    }
    for (s, &(batch, bb, m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = randn(&[batch * m * k], 300 + s as u64);
            let b = randn(&[bb * k * n], 400 + s as u64);
            let want = backend::matmul(&on_cpu(&a, DType::BF16), &on_cpu(&b, DType::BF16), batch, bb, m, k, n, ta, tb).unwrap();
            let (ga, gb) = (on_gpu(&a, DType::BF16), on_gpu(&b, DType::BF16));
            for path in GemmPath::wgmma_paths() {
                let run = || Storage::Cuda(matmul_on(path, cuda(&ga), cuda(&gb), batch, bb, m, k, n, ta, tb).unwrap());
                let got = twice1("matmul wgmma", run).cast(DType::F32).unwrap();
                let what = format!("matmul {} batch={batch}/{bb} {m}x{k}x{n} ta={ta} tb={tb}", path.name());
                if k == 0 {
                    assert!(vals(&got).iter().all(|&x| x == 0.0), "{what}: K = 0 must give zeros");
                    continue;
                }
                assert_close(&what, &got, &want, TOL_BF16);
            }
        }
    }
}

/// The wgmma path gives the mma.sync path's answer within bf16 rounding of the output, on a
/// shape with many k-tiles (the accumulators stay f32 across all of them).
#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_wgmma_matches_mma_long_k() {
    setup();
    if !hopper() {
        return;
    }
    let (m, k, n) = (128, 1024, 256);
    let (a, b) = (on_gpu(&randn(&[m * k], 51), DType::BF16), on_gpu(&randn(&[k * n], 52), DType::BF16));
    // Twice: on the emulated device one of the two runs lands each cp.async at once, so a stage
    // refilled while its MMAs still run would show (16 k-tiles cycle the 4 stages 4 times).
    let want = Storage::Cuda(matmul_on(GemmPath::Mma, cuda(&a), cuda(&b), 1, 1, m, k, n, false, false).unwrap()).cast(DType::F32).unwrap();
    for path in GemmPath::wgmma_paths() {
        let got = twice1("matmul wgmma", || Storage::Cuda(matmul_on(path, cuda(&a), cuda(&b), 1, 1, m, k, n, false, false).unwrap()));
        assert_close(&format!("matmul {} vs mma 128x1024x256", path.name()), &got.cast(DType::F32).unwrap(), &want, 4e-3);
    }
}

/// [A1 | A2] [B1 ; B2] (the LoRA's y = [x | t] [W ; B]): both B layouts, K1 not a tile multiple,
/// a rank-8 second part.
#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_wgmma_concatenated_k() {
    setup();
    if !hopper() {
        return;
    }
    let (rows, k1, k2, cols) = (72, 88, 8, 264);
    for tb in [false, true] {
        let (a1, a2) = (randn(&[rows * k1], 61), randn(&[rows * k2], 62));
        let (b1, b2) = (randn(&[k1 * cols], 63), randn(&[k2 * cols], 64));
        // CPU: A = [A1 | A2] (rows, k1 + k2); B = [B1 ; B2] (k1 + k2, cols), or its transpose.
        let cat_a = Tensor::concat(&[a1.reshape(vec![rows, k1]).unwrap(), a2.reshape(vec![rows, k2]).unwrap()], 1).unwrap();
        let (sb1, sb2) = if tb { (vec![cols, k1], vec![cols, k2]) } else { (vec![k1, cols], vec![k2, cols]) };
        let cat_b = Tensor::concat(&[b1.reshape(sb1).unwrap(), b2.reshape(sb2).unwrap()], if tb { 1 } else { 0 }).unwrap();
        let want = backend::matmul(&on_cpu(&cat_a, DType::BF16), &on_cpu(&cat_b, DType::BF16), 1, 1, rows, k1 + k2, cols, false, tb).unwrap();
        let g = |t: &Tensor| on_gpu(t, DType::BF16);
        let (ga1, ga2, gb1, gb2) = (g(&a1), g(&a2), g(&b1), g(&b2));
        for path in GemmPath::wgmma_paths() {
            let run = || Storage::Cuda(wgmma_cat_on(path, cuda(&ga1), cuda(&gb1), k1, cuda(&ga2), cuda(&gb2), k2, rows, cols, tb).unwrap());
            let got = twice1("matmul wgmma cat", run).cast(DType::F32).unwrap();
            assert_close(&format!("matmul {} cat {rows}x({k1}+{k2})x{cols} tb={tb}", path.name()), &got, &want, TOL_BF16);
        }
    }
}
