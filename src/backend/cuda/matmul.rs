//! Launch wrappers for kernels/matmul.cu. Twin: backend/cpu/matmul.rs.
//! F32 runs the CUDA-core SGEMM (`sgemm_*`), BF16 the tensor-core mma.sync GEMM (`hgemm_*`,
//! f32 accumulation, bf16 output). The suffix names the transposes: n = stored as used, t = stored
//! transposed (first letter A, second B).
//! On an H100/H200 the bf16 path can instead run Hopper's warpgroup MMA (`h9gemm_*` in
//! kernels/matmul_sm90.cu, sm_90a only), picked by [`GemmPath`].

use super::{Arg, CudaStorage, Dev};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not chosen yet (read KILN_GEMM); else GemmPath as u8 + 1.
static PATH: AtomicU8 = AtomicU8::new(0);

const FAMILY: &str = "matmul";
/// Block tile (both paths): 128 x 128 outputs, 256 threads.
const TILE: usize = 128;
const THREADS: u32 = 256;
/// Dynamic shared memory of the bf16 kernel: 3 stages x 2 operands x 128 x 72 bf16 (110.6 KB).
const HGEMM_SMEM: u32 = 3 * 2 * 128 * 72 * 2;

/// Block tile of the wgmma kernels: 128 (M) x 256 (N); 4 stages of 48 KiB + 1 KiB for alignment.
const H9_BM: usize = 128;
const H9_BN: usize = 256;
const H9_SMEM: u32 = 4 * 48 * 1024 + 1024;

/// Which kernels run a bf16 GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum GemmPath {
    /// mma.sync + ldmatrix + cp.async (`hgemm_*`, kernels/matmul.cu): any sm_80+ device, any shape.
    Mma,
    /// wgmma fed by cp.async (`h9gemm_*`, kernels/matmul_sm90.cu): sm_90 only, and only shapes
    /// whose operands' contiguous dimensions are multiples of 8 (others fall back to Mma).
    Wgmma,
    /// As Wgmma, one m64n256k16 a k16 step instead of two m64n128k16 (`h9gemm_w256_*`;
    /// `KILN_GEMM=wgmma-n256`). Not yet timed on a GPU: the bench times it beside Wgmma.
    WgmmaN256,
    /// As WgmmaN256 with 3 k-tiles in flight instead of 2 (`h9gemm_w256l3_*`; `KILN_GEMM=wgmma-n256-l3`).
    WgmmaN256L3,
    /// Warp-specialised (`h9tma_*`, kernels/matmul_tma.cuh; `KILN_GEMM=wgmma-tma`): a producer
    /// warp loads 4 stages ahead by TMA, two consumer warpgroups wait on mbarriers only, the grid
    /// is persistent. Not yet run on a GPU: the bench times it beside the others.
    WgmmaTma,
    /// As WgmmaTma in clusters of two blocks that share the B tile (TMA multicast; `h9tmc_*`,
    /// `KILN_GEMM=wgmma-tma-c2`). Not yet run on a GPU.
    WgmmaTmaC2,
}

impl GemmPath {
    /// The path bf16 GEMMs take now: `KILN_GEMM` (`wgmma` or `mma`) until [`GemmPath::set`] is
    /// called. The default is Wgmma (where `GemmPath::takes` allows it: sm_90, contiguous
    /// dimensions multiples of 8; Mma elsewhere): on the H200 of 2026-11-27 it passed every parity
    /// test and ran at 1.57-1.88x cuBLAS against mma.sync's 2.97-3.68x (bench/results/GPU-NOTES.md).
    /// `KILN_GEMM=mma` keeps every bf16 GEMM on mma.sync.
    pub fn current() -> GemmPath {
        match PATH.load(Ordering::Relaxed) {
            1 => GemmPath::Mma,
            2 => GemmPath::Wgmma,
            3 => GemmPath::WgmmaN256,
            4 => GemmPath::WgmmaN256L3,
            5 => GemmPath::WgmmaTma,
            6 => GemmPath::WgmmaTmaC2,
            _ => {
                let all: Vec<GemmPath> = std::iter::once(GemmPath::Mma).chain(GemmPath::WGMMA).collect();
                let p = match std::env::var("KILN_GEMM") {
                    Ok(v) => all.iter().copied().find(|p| p.name() == v).unwrap_or_else(|| {
                        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
                        eprintln!("kiln: KILN_GEMM={v} is not one of {}; using wgmma", names.join(", "));
                        GemmPath::Wgmma
                    }),
                    Err(_) => GemmPath::Wgmma,
                };
                PATH.store(p as u8 + 1, Ordering::Relaxed);
                p
            }
        }
    }

    /// The path for a GEMM with `rows` rows of C: [`GemmPath::current`], except mma.sync below
    /// one 128-row wgmma tile.
    pub fn for_rows(rows: usize) -> GemmPath {
        if rows < H9_BM { GemmPath::Mma } else { GemmPath::current() }
    }

    /// Make `self` the path of every later bf16 GEMM in this process (the bench times both).
    pub fn set(self) {
        PATH.store(self as u8 + 1, Ordering::Relaxed);
    }

    /// Whether this path can run a GEMM whose operands' contiguous dimensions are `dims` on `dev`.
    pub(super) fn takes(self, dev: &Dev, dims: &[usize]) -> bool {
        self != GemmPath::Mma && (dev.cc == (9, 0) || dev.is_emu()) && dims.iter().all(|d| d % 8 == 0)
    }

    /// The wgmma paths, in the order the bench and the tests run them.
    pub const WGMMA: [GemmPath; 5] = [GemmPath::Wgmma, GemmPath::WgmmaN256, GemmPath::WgmmaN256L3, GemmPath::WgmmaTma, GemmPath::WgmmaTmaC2];

    /// The wgmma paths the tests and the bench run: [`GemmPath::WGMMA`], less the TMA ones under
    /// `KILN_TMA=off` and the clustered one under `KILN_TMA=c1` (scripts/gpu-run.sh sets them when
    /// the TMA kernels' own first stage fails, so that a trap there costs one stage, not every
    /// stage after it).
    pub fn wgmma_paths() -> Vec<GemmPath> {
        let tma = std::env::var("KILN_TMA").unwrap_or_default();
        GemmPath::WGMMA
            .into_iter()
            .filter(|&p| match p {
                GemmPath::WgmmaTma => tma != "off",
                GemmPath::WgmmaTmaC2 => tma != "off" && tma != "c1",
                _ => true,
            })
            .collect()
    }

    /// Kernel name prefix of a wgmma path in kernels/matmul_sm90.cu (Mma has none).
    fn h9_prefix(self) -> &'static str {
        match self {
            GemmPath::WgmmaN256 => "h9gemm_w256",
            GemmPath::WgmmaN256L3 => "h9gemm_w256l3",
            _ => "h9gemm",
        }
    }

    /// A short name for bench variants: "wgmma", "wgmma-n256", "wgmma-n256-l3", "mma".
    pub fn name(self) -> &'static str {
        match self {
            GemmPath::Mma => "mma",
            GemmPath::Wgmma => "wgmma",
            GemmPath::WgmmaN256 => "wgmma-n256",
            GemmPath::WgmmaN256L3 => "wgmma-n256-l3",
            GemmPath::WgmmaTma => "wgmma-tma",
            GemmPath::WgmmaTmaC2 => "wgmma-tma-c2",
        }
    }
}

/// Batched matmul on the path `KILN_GEMM` picks (see [`matmul_on`]); fewer than 128 rows stay on
/// mma.sync, whose 128 x 128 tiles put twice as many blocks on a short, wide C, and at most
/// `lora::SKINNY_ROWS` rows (decode shapes, batch 1) run split-K on lora.rs's tensor-core GEMM.
#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &CudaStorage, b: &CudaStorage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<CudaStorage> {
    matmul_on(GemmPath::for_rows(m), a, b, batch, b_batch, m, k, n, ta, tb)
}

/// Batched matmul: a is (batch, M, K) (or (batch, K, M) if ta), b is (b_batch, K, N) (or
/// (b_batch, N, K) if tb), b_batch == 1 shares b across the batch. -> (batch, M, N), a's dtype.
#[allow(clippy::too_many_arguments)]
/// `path` applies to bf16 only (f32 always runs the CUDA-core SGEMM).
pub fn matmul_on(path: GemmPath, a: &CudaStorage, b: &CudaStorage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<CudaStorage> {
    let dt = a.float("matmul")?.dtype;
    b.expect("matmul", dt)?;
    let shape = Shape(vec![batch, m, k]);
    if b_batch != 1 && b_batch != batch {
        return Err(Error::bad_shape("matmul", &shape, format!("b_batch = {b_batch} must be 1 or batch = {batch}")));
    }
    if a.len != batch * m * k || b.len != b_batch * k * n {
        return Err(Error::bad_shape("matmul", &shape, format!("a holds {}, b holds {} elements; expected {} and {}", a.len, b.len, batch * m * k, b_batch * k * n)));
    }
    if [m, k, n].iter().any(|&d| d > i32::MAX as usize) || m.div_ceil(TILE) > 65535 || batch > 65535 {
        return Err(Error::bad_shape("matmul", &shape, "dimension too large for the CUDA grid (M <= 8M rows, batch <= 65535)"));
    }
    let c = CudaStorage::alloc(a.dev(), dt, batch * m * n)?;
    if batch * m * n == 0 {
        return Ok(c);
    }
    let dev = a.dev();
    let suffix = match (ta, tb) {
        (false, false) => "nn",
        (false, true) => "nt",
        (true, false) => "tn",
        (true, true) => "tt",
    };
    let grid = (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, batch as u32);
    let mut args = vec![a.arg(), b.arg(), c.arg(), Arg::I32(m as i32), Arg::I32(k as i32), Arg::I32(n as i32), Arg::I32((b_batch == 1) as i32)];
    match dt {
        DType::F32 => {
            let f = dev.func(FAMILY, &format!("sgemm_{suffix}"))?;
            // SAFETY (all launches here): the argument list matches the kernel's declaration, and
            // the buffers hold batch*M*K, b_batch*K*N and batch*M*N elements as checked above.
            dev.launch(&f, grid, (THREADS, 1, 1), 0, &args)?;
        }
        _ if batch == 1 && m <= super::lora::SKINNY_ROWS => {
            // Decode shapes: split-K over 64 x 64 tiles (lora.rs), so B streams through every SM.
            // Element (i, kk) of A is a[i * K + kk] (a[kk * M + i] if ta); (kk, j) of B likewise.
            let (ar, ac) = if ta { (1, m) } else { (k, 1) };
            let (br, bc) = if tb { (1, k) } else { (n, 1) };
            return super::lora::gemm(dev, (a, ar, ac), (b, br, bc), k, None, m, n, 1.0, DType::BF16);
        }
        _ if path.takes(dev, &[if ta { m } else { k }, if tb { k } else { n }]) => {
            if let Some(cluster) = super::tma::cluster_for(path, &[k]) {
                super::tma::gemm(a, b, &c, batch, b_batch, m, k, n, ta, tb, suffix, cluster)?;
                return Ok(c);
            }
            // (the TMA paths with K = 0 land here: h9gemm_* writes the zeros)
            let f = dev.func("matmul_sm90", &format!("{}_{suffix}", path.h9_prefix()))?;
            let grid = (n.div_ceil(H9_BN) as u32, m.div_ceil(H9_BM) as u32, batch as u32);
            dev.launch(&f, grid, (THREADS, 1, 1), H9_SMEM, &args)?;
        }
        _ => {
            // 16-byte cp.async needs each operand's contiguous dimension to be a multiple of 8.
            let va = if ta { m % 8 == 0 } else { k % 8 == 0 };
            let vb = if tb { k % 8 == 0 } else { n % 8 == 0 };
            args.push(Arg::I32(va as i32));
            args.push(Arg::I32(vb as i32));
            let f = dev.func(FAMILY, &format!("hgemm_{suffix}"))?;
            dev.launch(&f, grid, (THREADS, 1, 1), HGEMM_SMEM, &args)?;
        }
    }
    Ok(c)
}

/// bf16 C (rows, cols) = [A1 | A2] [B1 ; B2] on the wgmma kernels of the current path (Wgmma when
/// that is Mma; `h9gemm_cat_nn`, or `_nt` when tb): A1 (rows, k1), A2 (rows, k2); B1 (k1, cols), B2 (k2, cols), or, tb, (cols, k1), (cols, k2).
/// k1, k2 and (unless tb) cols must be multiples of 8, and the device an sm_90 (or the emulator).
#[allow(clippy::too_many_arguments)]
pub fn wgmma_cat(a1: &CudaStorage, b1: &CudaStorage, k1: usize, a2: &CudaStorage, b2: &CudaStorage, k2: usize, rows: usize, cols: usize, tb: bool) -> Result<CudaStorage> {
    wgmma_cat_on(GemmPath::current(), a1, b1, k1, a2, b2, k2, rows, cols, tb)
}

/// [`wgmma_cat`] on the wgmma kernels of `path` (Wgmma's when `path` is Mma).
#[allow(clippy::too_many_arguments)]
pub fn wgmma_cat_on(path: GemmPath, a1: &CudaStorage, b1: &CudaStorage, k1: usize, a2: &CudaStorage, b2: &CudaStorage, k2: usize, rows: usize, cols: usize, tb: bool) -> Result<CudaStorage> {
    let dev = a1.dev();
    let shape = Shape(vec![rows, k1 + k2, cols]);
    for (s, len, what) in [(a1, rows * k1, "A1"), (b1, k1 * cols, "B1"), (a2, rows * k2, "A2"), (b2, k2 * cols, "B2")] {
        s.expect("matmul", DType::BF16)?;
        if s.len != len {
            return Err(Error::bad_shape("matmul", &shape, format!("{what} holds {} elements, expected {len}", s.len)));
        }
    }
    let path = match path {
        GemmPath::Mma => GemmPath::Wgmma,
        p => p,
    };
    if !path.takes(dev, &[k1, k2, if tb { k1 } else { cols }]) {
        return Err(Error::bad_shape("matmul", &shape, "the wgmma GEMM needs an sm_90 device and k1, k2 (and cols unless tb) multiples of 8"));
    }
    let c = CudaStorage::alloc(dev, DType::BF16, rows * cols)?;
    if rows == 0 || cols == 0 {
        return Ok(c);
    }
    if let Some(cluster) = super::tma::cluster_for(path, &[k1, k2]) {
        super::tma::cat(a1, b1, k1, a2, b2, k2, &c, rows, cols, tb, cluster)?;
        return Ok(c);
    }
    if rows.div_ceil(H9_BM) > 65535 {
        return Err(Error::bad_shape("matmul", &Shape(vec![rows, k1 + k2, cols]), "too many rows for the CUDA grid"));
    }
    let f = dev.func("matmul_sm90", &format!("{}_cat_{}", path.h9_prefix(), if tb { "nt" } else { "nn" }))?;
    let i = |x: usize| Arg::I32(x as i32);
    let args = [a1.arg(), b1.arg(), c.arg(), i(rows), i(k1), i(cols), a2.arg(), b2.arg(), i(k2)];
    let grid = (cols.div_ceil(H9_BN) as u32, rows.div_ceil(H9_BM) as u32, 1);
    // SAFETY: the argument list matches the kernel's declaration; the buffers hold rows*k1,
    // k1*cols, rows*k2, k2*cols (checked by the caller) and rows*cols bf16.
    dev.launch(&f, grid, (THREADS, 1, 1), H9_SMEM, &args)?;
    Ok(c)
}
