//! The emulated CUDA device checks itself (kernels/emu_selftest.cu, kernels/emu_rt.cpp): block
//! reductions at several block sizes, the ldmatrix + mma.sync fragment layouts (the standard
//! loads must give A.B), shuffles and votes, cp.async, dynamic shared memory, TMA boxes through an
//! mbarrier, clusters of two blocks, and the errors a real GPU would not report (deadlocks, wrong argument sizes, unknown
//! kernels). Runs in CI: no
//! GPU needed. The kernel families themselves run under tests/cuda with KILN_CUDA_EMU=1.
#![cfg(feature = "emu")]

use kiln::backend::cuda::tma::tensor_map;
use kiln::backend::cuda::{dev, Arg, Dev};
use std::sync::Arc;

const FAMILY: &str = "emu_selftest";

fn emu() -> Arc<Dev> {
    std::env::set_var("KILN_CUDA_EMU", "1");
    let d = dev(0).unwrap();
    assert!(d.is_emu(), "KILN_CUDA_EMU=1 gives the emulated device");
    d
}

fn bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

#[test]
fn emu_block_sum_every_block_size() {
    let d = emu();
    let (n, rows) = (1000usize, 3usize);
    let x: Vec<f32> = (0..n * rows).map(|i| (i % 7) as f32 - 3.0 + 0.25 * (i % 3) as f32).collect();
    let xb = d.upload(&x).unwrap();
    let f = d.func(FAMILY, "bsum").unwrap();
    for threads in [1u32, 31, 32, 100, 256, 1024] {
        let out = d.alloc(rows * 4).unwrap();
        d.launch(&f, (rows as u32, 1, 1), (threads, 1, 1), 0, &[xb.arg(), out.arg(), Arg::I32(n as i32)]).unwrap();
        let got: Vec<f32> = out.download().unwrap();
        for r in 0..rows {
            let want: f32 = x[r * n..(r + 1) * n].iter().sum();
            assert!((got[r] - want).abs() < 1e-3, "block_sum with {threads} threads, row {r}: {} vs {want}", got[r]);
        }
    }
}

#[test]
fn emu_ldmatrix_mma_fragments_give_the_product() {
    let d = emu();
    let a: Vec<u16> = (0..256).map(|i| bf16((i as f32 * 0.37).sin())).collect();
    let b: Vec<u16> = (0..128).map(|i| bf16((i as f32 * 0.61).cos())).collect();
    let val = |v: u16| half::bf16::from_bits(v).to_f32();
    let (ab, bb) = (d.upload(&a).unwrap(), d.upload(&b).unwrap());
    let (d1, d2) = (d.alloc(128 * 4).unwrap(), d.alloc(128 * 4).unwrap());
    let f = d.func(FAMILY, "mma16").unwrap();
    d.launch(&f, (1, 1, 1), (32, 1, 1), 0, &[ab.arg(), bb.arg(), d1.arg(), d2.arg()]).unwrap();
    let (g1, g2): (Vec<f32>, Vec<f32>) = (d1.download().unwrap(), d2.download().unwrap());
    for r in 0..16 {
        for c in 0..8 {
            let want: f32 = (0..16).map(|k| val(a[r * 16 + k]) * val(b[k * 8 + c])).sum();
            assert!((g1[r * 8 + c] - want).abs() < 1e-4, "D[{r}][{c}] (B by ldmatrix .trans): {} vs {want}", g1[r * 8 + c]);
            assert!((g2[r * 8 + c] - want).abs() < 1e-4, "D[{r}][{c}] (B^T by ldmatrix): {} vs {want}", g2[r * 8 + c]);
        }
    }
}

#[test]
fn emu_shuffles_votes_cp_async_dynamic_smem() {
    let d = emu();
    let x: Vec<i32> = (1..=64).collect();
    let (xb, yb) = (d.upload(&x).unwrap(), d.alloc(64 * 4).unwrap());
    d.launch(&d.func(FAMILY, "scan").unwrap(), (1, 1, 1), (64, 1, 1), 0, &[xb.arg(), yb.arg()]).unwrap();
    let y: Vec<i32> = yb.download().unwrap();
    for (i, v) in y.iter().enumerate() {
        let base = (i / 32) * 32;
        let want: i32 = (base..=i).map(|j| j as i32 + 1).sum::<i32>() + 1000;
        assert_eq!(*v, want, "warp scan at {i}");
    }

    let x: Vec<f32> = (0..256).map(|i| i as f32).collect();
    let (xb, yb) = (d.upload(&x).unwrap(), d.alloc(256 * 4).unwrap());
    d.launch(&d.func(FAMILY, "cpa").unwrap(), (1, 1, 1), (64, 1, 1), 0, &[xb.arg(), yb.arg()]).unwrap();
    let y: Vec<f32> = yb.download().unwrap();
    for t in 0..64 {
        let src = 63 - t; // the thread whose 16 bytes thread t reads back
        for j in 0..4 {
            let want = if src % 2 == 0 { x[4 * src + j] } else { 0.0 };
            assert_eq!(y[4 * t + j], want, "cp.async element {}", 4 * t + j);
        }
    }

    let yb = d.alloc(100 * 4).unwrap();
    d.launch(&d.func(FAMILY, "dyn").unwrap(), (1, 1, 1), (100, 1, 1), 400, &[yb.arg(), Arg::I32(100)]).unwrap();
    let y: Vec<f32> = yb.download().unwrap();
    assert!(y.iter().enumerate().all(|(i, v)| *v == (99 - i) as f32), "dynamic shared memory: {y:?}");
}

#[test]
fn emu_reports_what_a_gpu_would_not() {
    let d = emu();
    let y = d.alloc(4).unwrap();
    let f = d.func(FAMILY, "dead").unwrap();
    let e = d.launch(&f, (1, 1, 1), (32, 1, 1), 0, &[y.arg()]).unwrap_err().to_string();
    assert!(e.contains("deadlock"), "{e}");
    let e = d.launch(&f, (1, 1, 1), (32, 1, 1), 0, &[Arg::I32(0)]).unwrap_err().to_string();
    assert!(e.contains("parameter 0 is 8 bytes"), "{e}");
    let e = d.launch(&f, (1, 1, 1), (32, 1, 1), 0, &[]).unwrap_err().to_string();
    assert!(e.contains("takes 1 parameters"), "{e}");
    let e = d.func(FAMILY, "no_such_kernel").map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("no_such_kernel"), "{e}");
    let e = d.launch(&d.func(FAMILY, "dyn").unwrap(), (1, 1, 1), (2048, 1, 1), 0, &[y.arg(), Arg::I32(1)]).unwrap_err().to_string();
    assert!(e.contains("invalid block"), "{e}");
}

/// A TMA box of a (2, 5, 72) bf16 tensor at (16, -2, 1): 8 rows of 64 elements, the first two rows
/// and the last 8 columns outside the tensor (zeros), the rest row r - 2 of batch 1 from column 16,
/// each 128-byte row's 16-byte chunks swizzled (chunk c of row r at c ^ (r % 8)), as wgmma reads.
/// Twice (the loads land at the wait, then at issue), and an mbarrier nobody arrives at is a deadlock.
#[test]
fn emu_tma_box_zero_fill_and_swizzle() {
    let d = emu();
    let x: Vec<u16> = (0..2 * 5 * 72).map(|i| i as u16 + 1).collect();
    let xb = d.upload(&x).unwrap();
    let Arg::Ptr(ptr) = xb.arg() else { panic!("a buffer's argument is its pointer") };
    let map = tensor_map(&d, ptr, [72, 5, 2], 8).unwrap();
    let n = 8 * 128;
    let f = d.func(FAMILY, "tmabox").unwrap();
    for run in 0..2 {
        let yb = d.alloc(n).unwrap();
        let args = [map, yb.arg(), Arg::I32(16), Arg::I32(-2), Arg::I32(1), Arg::I32(n as i32), Arg::I32(0)];
        d.launch(&f, (1, 1, 1), (64, 1, 1), n as u32 + 1024, &args).unwrap();
        let y: Vec<u16> = yb.download().unwrap();
        for r in 0..8usize {
            for i in 0..64usize {
                let (row, col) = (r as i64 - 2, 16 + i);
                let want = if (0..5).contains(&row) && col < 72 { x[72 * 5 + 72 * row as usize + col] } else { 0 };
                let at = r * 64 + ((i / 8) ^ (r % 8)) * 8 + i % 8;
                assert_eq!(y[at], want, "run {run}: box row {r} element {i}");
            }
        }
    }
    let yb = d.alloc(n).unwrap();
    let args = [map, yb.arg(), Arg::I32(0), Arg::I32(0), Arg::I32(0), Arg::I32(n as i32), Arg::I32(1)];
    let e = d.launch(&f, (1, 1, 1), (64, 1, 1), n as u32 + 1024, &args).unwrap_err().to_string();
    assert!(e.contains("deadlock") && e.contains("spin-wait (mbarrier"), "{e}");
}

/// Two clusters of two blocks: each block reads its peer's dynamic shared memory after a cluster
/// barrier; a block that never reaches the barrier is a deadlock; a grid that does not split into
/// clusters is refused.
#[test]
fn emu_clusters_share_shared_memory() {
    let d = emu();
    let f = d.func(FAMILY, "pair").unwrap();
    let yb = d.alloc(4 * 4).unwrap();
    for _ in 0..2 {
        d.launch_cluster(&f, (4, 1, 1), (64, 1, 1), 16, 2, &[yb.arg(), Arg::I32(0)]).unwrap();
        let y: Vec<i32> = yb.download().unwrap();
        assert_eq!(y, vec![101, 0, 103, 2], "each block holds its peer's 100 * rank + blockIdx.x");
    }
    let e = d.launch_cluster(&f, (2, 1, 1), (64, 1, 1), 16, 2, &[yb.arg(), Arg::I32(1)]).unwrap_err().to_string();
    assert!(e.contains("deadlock") && e.contains("barrier.cluster"), "{e}");
    let e = d.launch_cluster(&f, (3, 1, 1), (64, 1, 1), 16, 2, &[yb.arg(), Arg::I32(0)]).unwrap_err().to_string();
    assert!(e.contains("clusters of 2"), "{e}");
}
