//! Launch wrappers for kernels/linear_attention.cu. Twin: backend/cpu/linear_attention.rs.
//!
//! One kernel, `linattn_chunk_<f32|bf16>`, computes o_t = q_t S_t with the state S_t a running sum
//! of k_s^T v_s over s <= t (causal) or s >= t (reverse), starting from an optional s0, chunk by
//! chunk (C = 64, f32 state in shared memory). The forward is one launch. The backward is three
//! launches of the same kernel (no extra code, deterministic, no atomics):
//!   dQ: o_t = dO_t S_t^T, S_t^T = S0^T + sum_{s <= t} v_s^T k_s  -> (q, k, v) = (dO, V, K), s0 = S0^T
//!   dV: dV_t = k_t G_t,  G_t = sum_{s >= t} q_s^T dO_s          -> (q, k, v) = (K, Q, dO), reverse;
//!       its final state G_0 = sum_t q_t^T dO_t is dS0
//!   dK: dK_t = v_t G_t^T, G_t^T = sum_{s >= t} dO_s^T q_s        -> (q, k, v) = (V, dO, Q), reverse
//! (the chunked formulas of the CPU twin are these three recurrences split at chunk boundaries).
//!
//! Each launch runs two-phase when T > 64 (and the workspace fits): `linattn_states` writes every
//! chunk's starting state to an f32 workspace (BH, nchunks, Dk, Dv), parallel over (head, 32 x 64
//! state tile), then `linattn_out` computes every (head, chunk, 64-wide Dv slice) independently.
//! Otherwise (one chunk, or a huge workspace) the sequential `linattn_chunk` runs. Both add the
//! same per-chunk sums in the same order: bit-identical results.
//! The `chunked` flag selects the CPU algorithm only; both compute the same function, so CUDA
//! always runs the chunked form.

use super::linear_attention_tc as tc;
use super::{Arg, CudaStorage};
use crate::backend::cuda::elementwise::typed;
use crate::backend::LinAttnDims;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "linear_attention";
const THREADS: u32 = 256;
const CHUNK: usize = 64;
const PIECE: usize = 32;
/// Threads of `linattn_states`.
const STATE_THREADS: u32 = 128;
/// Largest two-phase workspace (f32 states of every chunk); beyond it the sequential kernel runs.
const WS_MAX_BYTES: usize = 4 << 30;
/// The opt-in shared-memory ceiling of sm_90 (227 KiB).
pub(super) const SMEM_MAX: usize = 227 * 1024;

pub(super) fn smem_bytes(dk: usize) -> usize {
    let dk32 = dk.div_ceil(PIECE) * PIECE;
    // S [dk32 x 64] | Q^T, K^T pieces [32 x 68] (A^T [64 x 68] aliases them) | V [64 x 68] (f32),
    // as in linattn_body.
    (dk32 * 64 + 2 * PIECE * 68 + CHUNK * 68) * 4
}

fn check(op: &'static str, d: LinAttnDims, seqs: &[(&CudaStorage, usize)], s0: Option<&CudaStorage>) -> Result<()> {
    let t = seqs[0].0.float(op)?.dtype;
    for &(s, width) in seqs {
        s.expect(op, t)?;
        if s.len != d.bh * d.t * width {
            return Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("expected (BH, T, D) = ({}, {}, {width}) elements", d.bh, d.t)));
        }
    }
    if let Some(s) = s0 {
        s.expect(op, t)?;
        if s.len != d.bh * d.dk * d.dv {
            return Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("the initial state must be (BH, Dk, Dv) = ({}, {}, {})", d.bh, d.dk, d.dv)));
        }
    }
    for w in [d.dk, d.dv] {
        if smem_bytes(w) > SMEM_MAX || d.t > i32::MAX as usize || d.bh > i32::MAX as usize {
            return Err(Error::bad_shape(op, &Shape(vec![d.bh, d.t, w]), "head dim too large for the CUDA kernel's shared-memory state (max about 700)"));
        }
    }
    Ok(())
}

/// Kernel arguments of the optional states: the initial state's (buffer, row stride, column
/// stride) and the final state's buffer; a null pointer (and zero strides) where absent.
pub(super) fn state_args(s0: Option<(&CudaStorage, usize, usize)>, s_final: Option<&CudaStorage>) -> (Arg, usize, usize, Arg) {
    let (s0a, ss0, ss1) = match s0 {
        Some((s, a, b)) => (s.arg(), a, b),
        None => (Arg::U64(0), 0, 0),
    };
    (s0a, ss0, ss1, s_final.map_or(Arg::U64(0), |s| s.arg()))
}

/// Which kernels a launch may use: the tensor-core kernel (bf16, head width <= 128, unless
/// `KILN_LINATTN=cores`), else the CUDA-core two-phase pair when T > 64, else the sequential one.
/// The bench pins the CUDA-core forms to compare; `Segments(s, walk)` pins the tensor-core walk's
/// segment count (0: the planner's; 1: the single launch; see linear_attention_tc) and, when
/// given, which kernels walk them, where that kernel applies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Algo {
    Auto,
    Cores,
    Sequential,
    Segments(usize, Option<tc::Walk>),
}

impl Algo {
    /// The tensor-core walk's (segment count, walk) where this may take it (bf16 and the head
    /// width decide the rest): the planner's under `Auto` unless `KILN_LINATTN=cores`.
    fn tensor_cores(self) -> Option<(usize, Option<tc::Walk>)> {
        match self {
            Algo::Auto if tc::enabled() => Some((0, None)),
            Algo::Segments(s, walk) => Some((s, walk)),
            _ => None,
        }
    }
}

/// One launch: o (BH, T, dv) and, when given, s_final (BH, dk, dv).
/// `s0`: (buffer, row stride, column stride) of the initial state seen as (dk, dv).
#[allow(clippy::too_many_arguments)]
fn launch(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<(&CudaStorage, usize, usize)>,
    o: &CudaStorage, s_final: Option<&CudaStorage>, bh: usize, t: usize, dk: usize, dv: usize, rev: bool, algo: Algo,
) -> Result<()> {
    if bh == 0 || dv == 0 || (t == 0 && s_final.is_none()) {
        return Ok(());
    }
    if let (Some((segs, walk)), Some(dkp)) = (algo.tensor_cores(), tc::width(q.dtype, dk)) {
        return tc::launch(q, k, v, state_args(s0, s_final), o, bh, t, dk, dv, rev, dkp, segs, walk);
    }
    let allow_two_phase = algo != Algo::Sequential;
    let dev = q.dev();
    let (s0a, ss0, ss1, sfa) = state_args(s0, s_final);
    let nch = t.div_ceil(CHUNK);
    let (nk, ndv) = (dk.div_ceil(PIECE), dv.div_ceil(64));
    let ws = bh.checked_mul(nch).and_then(|x| x.checked_mul(dk)).and_then(|x| x.checked_mul(dv));
    let grid_ok = |blocks: Option<usize>| blocks.is_some_and(|b| b <= i32::MAX as usize);
    let two_phase = allow_two_phase
        && nch > 1
        && ws.is_some_and(|w| w.saturating_mul(4) <= WS_MAX_BYTES)
        && grid_ok(bh.checked_mul(nk * ndv))
        && grid_ok(bh.checked_mul(nch).and_then(|x| x.checked_mul(ndv)));
    if two_phase {
        let w = CudaStorage::alloc(dev, DType::F32, ws.unwrap_or(0))?;
        let fs = dev.func(FAMILY, &typed(FAMILY, "linattn_states", q.dtype)?)?;
        let args = [
            k.arg(), v.arg(), s0a, w.arg(), sfa,
            Arg::I32(t as i32), Arg::I32(dk as i32), Arg::I32(dv as i32), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), Arg::I32(rev as i32),
        ];
        dev.launch(&fs, ((bh * nk * ndv) as u32, 1, 1), (STATE_THREADS, 1, 1), 0, &args)?;
        let fo = dev.func(FAMILY, &typed(FAMILY, "linattn_out", q.dtype)?)?;
        let args = [q.arg(), k.arg(), v.arg(), w.arg(), o.arg(), Arg::I32(t as i32), Arg::I32(dk as i32), Arg::I32(dv as i32), Arg::I32(rev as i32)];
        // `w` goes back to the stream-ordered pool after these launches (freed on the same stream).
        return dev.launch(&fo, ((bh * nch * ndv) as u32, 1, 1), (THREADS, 1, 1), smem_bytes(dk) as u32, &args);
    }
    let f = dev.func(FAMILY, &typed(FAMILY, "linattn_chunk", q.dtype)?)?;
    let grid = (bh as u32, dv.div_ceil(64) as u32, 1);
    let args = [
        q.arg(), k.arg(), v.arg(), s0a, o.arg(), sfa,
        Arg::I32(t as i32), Arg::I32(dk as i32), Arg::I32(dv as i32), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), Arg::I32(rev as i32),
    ];
    dev.launch(&f, grid, (THREADS, 1, 1), smem_bytes(dk) as u32, &args)
}

#[allow(clippy::too_many_arguments)]
pub fn linear_attention(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims, chunked: bool) -> Result<Vec<CudaStorage>> {
    let _ = chunked;
    forward(q, k, v, s0, dims, Algo::Auto)
}

/// The forward on the sequential CUDA-core kernel only (a bench comparison row on the same GPU).
pub(crate) fn linear_attention_sequential(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims) -> Result<Vec<CudaStorage>> {
    forward(q, k, v, s0, dims, Algo::Sequential)
}

/// The forward on the CUDA-core kernels (two-phase when T > 64), never on tensor cores (a bench
/// comparison row for bf16).
pub(crate) fn linear_attention_cores(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims) -> Result<Vec<CudaStorage>> {
    forward(q, k, v, s0, dims, Algo::Cores)
}

/// The forward and the backward with the bf16 tensor-core walk in `segs` segments (1: the single
/// launch, as `KILN_LINATTN_SPLIT=off`); other dtypes and head widths run as usual. For the parity
/// tests and the bench.
pub fn linear_attention_segmented(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims, segs: usize) -> Result<Vec<CudaStorage>> {
    forward(q, k, v, s0, dims, Algo::Segments(segs.max(1), None))
}
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_backward_segmented(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dout: &CudaStorage, dims: LinAttnDims, segs: usize) -> Result<Vec<CudaStorage>> {
    backward(q, k, v, s0, dout, dims, Algo::Segments(segs.max(1), None))
}

/// ... and on the named walk (where its head width and the GPU allow it; see
/// `linear_attention_tc::Walk`), `segs` = 0 leaving the count to the planner: the bench's rows
/// and the tests that compare the walks, without touching the process-wide `KILN_LINATTN` choice.
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_walk(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims, segs: usize, walk: tc::Walk) -> Result<Vec<CudaStorage>> {
    forward(q, k, v, s0, dims, Algo::Segments(segs, Some(walk)))
}
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_backward_walk(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dout: &CudaStorage, dims: LinAttnDims, segs: usize, walk: tc::Walk,
) -> Result<Vec<CudaStorage>> {
    backward(q, k, v, s0, dout, dims, Algo::Segments(segs, Some(walk)))
}

fn forward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dims: LinAttnDims, algo: Algo) -> Result<Vec<CudaStorage>> {
    const OP: &str = "linear_attention";
    let d = dims;
    check(OP, d, &[(q, d.dk), (k, d.dk), (v, d.dv)], s0)?;
    let dev = q.dev();
    let o = CudaStorage::alloc(dev, q.dtype, d.bh * d.t * d.dv)?;
    let s_final = CudaStorage::alloc(dev, q.dtype, d.bh * d.dk * d.dv)?;
    if d.dk == 0 {
        // o = q S with an empty inner dimension: zeros; the (empty) state is already done.
        let z = CudaStorage::zeros(dev, q.dtype, d.bh * d.t * d.dv)?;
        return Ok(vec![z, s_final]);
    }
    launch(q, k, v, s0.map(|s| (s, d.dv, 1)), &o, Some(&s_final), d.bh, d.t, d.dk, d.dv, false, algo)?;
    Ok(vec![o, s_final])
}

#[allow(clippy::too_many_arguments)]
pub fn linear_attention_backward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dout: &CudaStorage, dims: LinAttnDims, chunked: bool) -> Result<Vec<CudaStorage>> {
    let _ = chunked;
    backward(q, k, v, s0, dout, dims, Algo::Auto)
}

fn backward(q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, s0: Option<&CudaStorage>, dout: &CudaStorage, dims: LinAttnDims, algo: Algo) -> Result<Vec<CudaStorage>> {
    const OP: &str = "linear_attention_backward";
    let d = dims;
    check(OP, d, &[(q, d.dk), (k, d.dk), (v, d.dv), (dout, d.dv)], s0)?;
    let dev = q.dev();
    let dt = q.dtype;
    if d.dk == 0 || d.dv == 0 {
        // Every product has an empty inner or outer dimension: all gradients are zeros.
        return Ok(vec![
            CudaStorage::zeros(dev, dt, d.bh * d.t * d.dk)?,
            CudaStorage::zeros(dev, dt, d.bh * d.t * d.dk)?,
            CudaStorage::zeros(dev, dt, d.bh * d.t * d.dv)?,
            CudaStorage::zeros(dev, dt, d.bh * d.dk * d.dv)?,
        ]);
    }
    let dq = CudaStorage::alloc(dev, dt, d.bh * d.t * d.dk)?;
    let dk = CudaStorage::alloc(dev, dt, d.bh * d.t * d.dk)?;
    let dv = CudaStorage::alloc(dev, dt, d.bh * d.t * d.dv)?;
    let ds0 = if d.t == 0 { CudaStorage::zeros(dev, dt, d.bh * d.dk * d.dv)? } else { CudaStorage::alloc(dev, dt, d.bh * d.dk * d.dv)? };
    if d.t > 0 {
        // dQ = dO S^T: state S^T (Dv, Dk), s0^T read with strides (1, Dv).
        launch(dout, v, k, s0.map(|s| (s, 1, d.dv)), &dq, None, d.bh, d.t, d.dv, d.dk, false, algo)?;
        // dK and dV in one walk where the fused wgmma kernels run (head width 128, sm_90) ...
        let fused = match algo.tensor_cores() {
            Some((segs, walk)) => tc::launch_dkdv(q, k, v, dout, &dk, &dv, &ds0, d.bh, d.t, (d.dk, d.dv), segs, walk)?,
            None => false,
        };
        if !fused {
            // ... else dV = K G, final state G_0 = dS0 (Dk, Dv),
            launch(k, q, dout, None, &dv, Some(&ds0), d.bh, d.t, d.dk, d.dv, true, algo)?;
            // and dK = V G^T, state G^T (Dv, Dk).
            launch(v, dout, q, None, &dk, None, d.bh, d.t, d.dv, d.dk, true, algo)?;
        }
    }
    Ok(vec![dq, dk, dv, ds0])
}
