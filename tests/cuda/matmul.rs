//! parity_matmul_*: f32 (CUDA-core SGEMM) and bf16 (mma.sync) batched matmul, all four transpose
//! combinations, shapes that are not tile multiples, shared B, and bf16 against cuBLAS.
use super::*;
use kiln::backend::cuda::CudaStorage;
use kiln::bench::cuda::baseline::Cublas;

/// (batch, b_batch, M, K, N)
const SHAPES: &[(usize, usize, usize, usize, usize)] = &[
    (1, 1, 1, 1, 1),
    (1, 1, 17, 33, 65),
    (1, 1, 130, 257, 61),
    (3, 1, 37, 70, 29),   // B shared across the batch
    (2, 2, 129, 64, 136), // per-batch B; K, N multiples of 8 (the cp.async path for bf16)
    (1, 1, 5, 0, 3),      // K = 0: zeros
    (1, 1, 16, 1032, 264), // decode rows: split-K on lora.rs's GEMM, 16-byte loads, pieces past the edge
];

fn run(dtype: DType, tol: f64) {
    for (s, &(batch, bb, m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = randn(&[batch * m * k], 100 + s as u64);
            let b = randn(&[bb * k * n], 200 + s as u64);
            let want = backend::matmul(&on_cpu(&a, dtype), &on_cpu(&b, dtype), batch, bb, m, k, n, ta, tb).unwrap();
            let (ga, gb) = (on_gpu(&a, dtype), on_gpu(&b, dtype));
            let got = twice1("matmul", || backend::matmul(&ga, &gb, batch, bb, m, k, n, ta, tb).unwrap());
            let got = got.cast(DType::F32).unwrap();
            let what = format!("matmul {dtype:?} batch={batch}/{bb} {m}x{k}x{n} ta={ta} tb={tb}");
            if k == 0 {
                assert!(vals(&got).iter().all(|&x| x == 0.0), "{what}: K = 0 must give zeros");
                continue;
            }
            assert_close(&what, &got, &want, tol);
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_f32_odd_shapes_all_transposes() {
    setup();
    run(DType::F32, TOL_F32);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_bf16_odd_shapes_all_transposes() {
    setup();
    run(DType::BF16, TOL_BF16);
}

/// Larger than one block tile in every direction, and several k-tiles through the pipeline.
#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_multi_tile() {
    setup();
    let (m, k, n) = (300, 520, 264);
    for dtype in [DType::F32, DType::BF16] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let (a, b) = (randn(&[m * k], 7), randn(&[k * n], 8));
            let want = backend::matmul(&on_cpu(&a, dtype), &on_cpu(&b, dtype), 1, 1, m, k, n, ta, tb).unwrap();
            let got = twice1("matmul", || backend::matmul(&on_gpu(&a, dtype), &on_gpu(&b, dtype), 1, 1, m, k, n, ta, tb).unwrap());
            let tol = if dtype == DType::F32 { TOL_F32 } else { TOL_BF16 };
            assert_close(&format!("matmul {dtype:?} {m}x{k}x{n} ta={ta} tb={tb}"), &got.cast(DType::F32).unwrap(), &want, tol);
        }
    }
}

fn cuda(s: &Storage) -> &CudaStorage {
    match s {
        Storage::Cuda(c) => c,
        _ => panic!("expected a CUDA storage"),
    }
}

/// The bf16 kernel against cuBLAS (bf16 operands, f32 accumulate) at 512^3, same process.
#[test]
#[ignore = "needs a CUDA device"]
fn parity_matmul_bf16_vs_cublas_512() {
    setup();
    let s = 512;
    let (a, b) = (randn(&[s * s], 31), randn(&[s * s], 32));
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let (ga, gb) = (on_gpu(&a, DType::BF16), on_gpu(&b, DType::BF16));
        let got = backend::matmul(&ga, &gb, 1, 1, s, s, s, ta, tb).unwrap();
        let (ca, cb) = (cuda(&ga), cuda(&gb));
        let blas = Cublas::new(ca.dev()).unwrap();
        let c = CudaStorage::alloc(ca.dev(), DType::BF16, s * s).unwrap();
        blas.gemm(ca, cb, &c, s, s, s, ta, tb).unwrap();
        let want = Storage::Cpu(Storage::Cuda(c).cast(DType::F32).unwrap().to_cpu().unwrap());
        assert_close(&format!("matmul bf16 vs cublas 512^3 ta={ta} tb={tb}"), &got.cast(DType::F32).unwrap(), &want, TOL_BF16);
    }
}
