//! Launch wrappers for kernels/linear_attention_tc.cu: the bf16 chunked linear attention on tensor
//! cores (mma.sync, f32 state in accumulators). Twin: backend/cpu/linear_attention.rs.
//!
//! The kernel has the contract of `linattn_chunk` / `linattn_varlen` (backend/cuda/linear_attention.rs
//! explains the arguments and how the backward maps onto three forward launches), so the callers
//! there only choose which kernel runs: this one for bf16 with a head width (the launch's Dk) of at
//! most 128, the CUDA-core kernels otherwise. f32 stays on CUDA cores on purpose: a tensor-core f32
//! product would compute in bf16 or tf32 and no longer be the f32 the caller asked for.
//! `KILN_LINATTN=cores` turns this path off (a fallback, and the bench's comparison row).

use super::{Arg, CudaStorage};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};
use std::sync::OnceLock;

const FAMILY: &str = "linear_attention_tc";
const THREADS: u32 = 256;
const CHUNK: usize = 64;

/// Is the tensor-core path on (the default), or turned off with `KILN_LINATTN=cores`?
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KILN_LINATTN").map_or(true, |v| v != "cores"))
}

/// The padded head width (64 or 128) the tensor-core kernel runs `dk` at, or None where the
/// CUDA-core kernels must run (f32, dk = 0, dk > 128).
pub(super) fn width(dtype: DType, dk: usize) -> Option<usize> {
    match (dtype, dk) {
        (DType::BF16, 1..=64) => Some(64),
        (DType::BF16, 65..=128) => Some(128),
        _ => None,
    }
}

/// Dynamic shared memory of `linattn_tc<dkp>`: Q, K [2][64][dkp + 8] | V [2][64][72] | A [64][72] |
/// Sb [dkp][72], bf16.
fn smem_bytes(dkp: usize) -> u32 {
    ((4 * CHUNK * (dkp + 8) + 3 * CHUNK * 72 + dkp * 72) * 2) as u32
}

/// The grid's block count (heads x Dv slices, one dimension), or an error past CUDA's limit.
fn blocks(op: &'static str, heads: usize, dv: usize) -> Result<u32> {
    match heads.checked_mul(dv.div_ceil(64)) {
        Some(b) if b <= i32::MAX as usize => Ok(b as u32),
        _ => Err(Error::bad_shape(op, &Shape(vec![heads, dv]), "too many (head, 64-wide Dv slice) blocks for the CUDA grid")),
    }
}

/// 16-byte loads need every row to start 16-byte aligned: Dk and Dv multiples of 8 bf16 (the
/// buffers themselves are 256-byte aligned).
fn vec_loads(dk: usize, dv: usize) -> Arg {
    Arg::I32((dk % 8 == 0 && dv % 8 == 0) as i32)
}

/// One launch over `bh` heads: o (BH, T, dv) and, when given, s_final (BH, dk, dv); the state
/// arguments as `linear_attention::state_args` builds them. `dkp` from [`width`].
#[allow(clippy::too_many_arguments)]
pub(super) fn launch(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, state: (Arg, usize, usize, Arg), o: &CudaStorage,
    bh: usize, t: usize, dk: usize, dv: usize, rev: bool, dkp: usize,
) -> Result<()> {
    let dev = q.dev();
    let (s0a, ss0, ss1, sfa) = state;
    let f = dev.func(FAMILY, &format!("linattn_tc{dkp}_bf16"))?;
    let i = |x: usize| Arg::I32(x as i32);
    let args = [
        q.arg(), k.arg(), v.arg(), s0a, o.arg(), sfa,
        i(t), i(dk), i(dv), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), Arg::I32(rev as i32), vec_loads(dk, dv),
    ];
    dev.launch(&f, (blocks("linear_attention", bh, dv)?, 1, 1), (THREADS, 1, 1), smem_bytes(dkp), &args)
}

/// The packed variable-length form: grid (H * N * ceil(dv / 64)), sequence n on rows cu[n] ..
/// cu[n + 1] of every head (`cu` uploaded as u32), states (N, H, dk, dv).
#[allow(clippy::too_many_arguments)]
pub(super) fn launch_varlen(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, state: (Arg, usize, usize, Arg), o: &CudaStorage,
    cu: &CudaStorage, nseq: usize, h: usize, t: usize, dk: usize, dv: usize, rev: bool, dkp: usize,
) -> Result<()> {
    let dev = q.dev();
    let (s0a, ss0, ss1, sfa) = state;
    let f = dev.func(FAMILY, &format!("linattn_tc{dkp}_varlen_bf16"))?;
    let i = |x: usize| Arg::I32(x as i32);
    let args = [
        q.arg(), k.arg(), v.arg(), s0a, o.arg(), sfa, cu.arg(),
        i(nseq), i(t), i(dk), i(dv), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), Arg::I32(rev as i32), vec_loads(dk, dv),
    ];
    dev.launch(&f, (blocks("linear_attention_varlen", h * nseq, dv)?, 1, 1), (THREADS, 1, 1), smem_bytes(dkp), &args)
}
