//! The warp-specialised wgmma GEMM (`h9tma_*`, and `h9tmc_*` in clusters of two blocks sharing B;
//! kernels/matmul_sm90.cu, kernels/matmul_tma.cuh):
//! its tensor maps and launches. A tensor map tells Hopper's TMA unit where a bf16 tensor lies and
//! which box one load moves; the driver encodes it (`cuTensorMapEncodeTiled`) into 128 opaque
//! bytes that the kernel takes by value. The emulated device has no driver, so there the same 128
//! bytes hold the fields kernels/emu.h's `TmaMap` reads.
//!
//! Every map here: bf16, rank 3 (innermost first: the contiguous dimension, the rows, the batch),
//! boxes whose rows are 64 elements = 128 bytes with the 128-byte swizzle (wgmma's canonical
//! layout, the one h9_load writes by cp.async), and zeros for whatever lies outside the tensor.

use super::matmul::GemmPath;
use super::{Arg, CudaStorage, Dev};
use crate::{Error, Result};

/// 288 threads: two consumer warpgroups and one producer warp (kernels/matmul_tma.cuh).
const THREADS: u32 = 288;
/// 4 stages of 48 KiB, 8 mbarriers, 1 KiB of alignment slack.
const SMEM: u32 = 4 * 48 * 1024 + 64 + 1024;
const BM: usize = 128;
const BN: usize = 256;

fn map(dev: &Dev, s: &CudaStorage, dims: [usize; 3], box_rows: u32) -> Result<Arg> {
    match s.arg() {
        Arg::Ptr(p) => tensor_map(dev, p, dims, box_rows),
        _ => unreachable!("a device buffer's argument is its pointer"),
    }
}

/// A tensor map (as a 128-byte kernel argument) of the dense bf16 tensor at device address `ptr`,
/// dims [contiguous, rows, batch] in elements, moved in boxes of 64 x `box_rows` x 1 with the
/// 128-byte swizzle.
pub fn tensor_map(dev: &Dev, ptr: u64, dims: [usize; 3], box_rows: u32) -> Result<Arg> {
    let strides = [2u64, 2 * dims[0] as u64, 2 * (dims[0] * dims[1]) as u64];
    let boxes = [64u32, box_rows, 1];
    let mut words = [0u32; 32];
    if dev.is_emu() {
        // emulated: kernels/emu.h's TmaMap { base, dim[3], stride[3], box[3], swizzle }
        let mut put = |at: usize, v: u64| {
            words[at] = v as u32;
            words[at + 1] = (v >> 32) as u32;
        };
        put(0, ptr);
        (0..3).for_each(|d| put(2 + 2 * d, dims[d] as u64));
        (0..3).for_each(|d| put(8 + 2 * d, strides[d]));
        words[14..17].copy_from_slice(&boxes);
        words[17] = 128;
        return Ok(Arg::Words(words));
    }
    encode(ptr, dims, strides, boxes, &mut words)?;
    Ok(Arg::Words(words))
}

/// The driver's encoding into `words` (a CUtensorMap's 128 bytes).
fn encode(ptr: u64, dims: [usize; 3], strides: [u64; 3], boxes: [u32; 3], words: &mut [u32; 32]) -> Result<()> {
    use cudarc::driver::sys;
    let mut m = sys::CUtensorMap { opaque: [0; 16] };
    let gdim = dims.map(|d| d as u64);
    let elem = [1u32; 3];
    // SAFETY: every pointer is to a live local of the length the call reads (rank 3: three dims,
    // two strides, three box sizes and element strides); `ptr` is a device allocation.
    let r = unsafe {
        sys::cuTensorMapEncodeTiled(
            &mut m,
            sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
            3,
            ptr as *mut std::ffi::c_void,
            gdim.as_ptr(),
            strides[1..].as_ptr(),
            boxes.as_ptr(),
            elem.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    if r != sys::CUresult::CUDA_SUCCESS {
        return Err(Error::Cuda(format!("cuTensorMapEncodeTiled (bf16, dims {dims:?}, box {boxes:?}): {r:?}")));
    }
    for (i, w) in m.opaque.iter().enumerate() {
        words[2 * i] = *w as u32;
        words[2 * i + 1] = (*w >> 32) as u32;
    }
    Ok(())
}

/// Blocks per cluster of `path` if it is a warp-specialised one (whose wgmma conditions the caller
/// checked with `GemmPath::takes`) and no dimension in `sizes` is empty (a tensor map's dimensions
/// are at least 1), else None.
pub(super) fn cluster_for(path: GemmPath, sizes: &[usize]) -> Option<u32> {
    let cluster = match path {
        GemmPath::WgmmaTma => 1,
        GemmPath::WgmmaTmaC2 => 2,
        _ => return None,
    };
    sizes.iter().all(|&s| s > 0).then_some(cluster)
}

/// The persistent grid: one block per SM, at most one per tile (cluster 1); or as many pairs as
/// fit on the GPU at once, at most one per 256-row unit (cluster 2).
fn grid(dev: &Dev, f: &super::Func, cluster: u32, rows: usize, cols: usize, batch: usize) -> Result<(u32, u32, u32)> {
    let units = rows.div_ceil(BM * cluster as usize) * cols.div_ceil(BN) * batch;
    if units > i32::MAX as usize {
        return Err(Error::Msg(format!("matmul: {units} tiles of 128 x 256 are too many for one launch")));
    }
    let slots = if cluster == 1 { dev.sm_count } else { dev.resident_clusters(f, THREADS, SMEM, cluster)? };
    Ok((cluster * units.min(slots as usize) as u32, 1, 1))
}

/// Kernel name prefix: h9tma (one block) or h9tmc (clusters of two sharing B).
fn prefix(cluster: u32) -> &'static str {
    if cluster == 2 { "h9tmc" } else { "h9tma" }
}

/// C = op(A) op(B) batched, as matmul.rs's wgmma branch; `suffix` names the transposes; blocks
/// in clusters of `cluster` (1 or 2).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(a: &CudaStorage, b: &CudaStorage, c: &CudaStorage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool, suffix: &str, cluster: u32) -> Result<()> {
    let dev = a.dev();
    let ma = if ta { map(dev, a, [m, k, batch], 64)? } else { map(dev, a, [k, m, batch], BM as u32)? };
    // B transposed (k contiguous): one 256-row box, or each block of a pair its 128-row half.
    let mb = if tb { map(dev, b, [k, n, b_batch], BN as u32 / cluster)? } else { map(dev, b, [n, k, b_batch], 64)? };
    let f = dev.func("matmul_sm90", &format!("{}_{suffix}", prefix(cluster)))?;
    let i = |x: usize| Arg::I32(x as i32);
    let args = [ma, mb, c.arg(), i(m), i(k), i(n), i(batch), i((b_batch == 1) as usize)];
    // SAFETY: the argument list matches h9tma_* / h9tmc_*'s declaration; the maps cover the buffers
    // the caller checked (batch*M*K, b_batch*K*N elements) and C holds batch*M*N.
    dev.launch_cluster(&f, grid(dev, &f, cluster, m, n, batch)?, (THREADS, 1, 1), SMEM, cluster, &args)
}

/// C (rows, cols) = [A1 | A2] [B1 ; B2], as matmul.rs's `wgmma_cat` (whose checks it relies on).
#[allow(clippy::too_many_arguments)]
pub(super) fn cat(a1: &CudaStorage, b1: &CudaStorage, k1: usize, a2: &CudaStorage, b2: &CudaStorage, k2: usize, c: &CudaStorage, rows: usize, cols: usize, tb: bool, cluster: u32) -> Result<()> {
    let dev = a1.dev();
    let bmap = |b: &CudaStorage, k: usize| if tb { map(dev, b, [k, cols, 1], BN as u32 / cluster) } else { map(dev, b, [cols, k, 1], 64) };
    let args = [
        map(dev, a1, [k1, rows, 1], BM as u32)?,
        bmap(b1, k1)?,
        map(dev, a2, [k2, rows, 1], BM as u32)?,
        bmap(b2, k2)?,
        c.arg(),
        Arg::I32(rows as i32),
        Arg::I32(k1 as i32),
        Arg::I32(cols as i32),
        Arg::I32(k2 as i32),
    ];
    let f = dev.func("matmul_sm90", &format!("{}_cat_{}", prefix(cluster), if tb { "nt" } else { "nn" }))?;
    // SAFETY: the argument list matches h9tma_cat_* / h9tmc_cat_*'s declaration; the maps cover
    // rows*k1, k1*cols, rows*k2 and k2*cols elements (checked by wgmma_cat), C holds rows*cols.
    dev.launch_cluster(&f, grid(dev, &f, cluster, rows, cols, 1)?, (THREADS, 1, 1), SMEM, cluster, &args)
}
