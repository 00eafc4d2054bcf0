//! Launch wrappers for kernels/linear_attention_tc.cu: the bf16 chunked linear attention on tensor
//! cores (mma.sync, f32 state in accumulators). Twin: backend/cpu/linear_attention.rs.
//!
//! The kernel has the contract of `linattn_chunk` / `linattn_varlen` (backend/cuda/linear_attention.rs
//! explains the arguments and how the backward maps onto three forward launches), so the callers
//! there only choose which kernel runs: this one for bf16 with a head width (the launch's Dk) of at
//! most 128, the CUDA-core kernels otherwise. f32 stays on CUDA cores on purpose: a tensor-core f32
//! product would compute in bf16 or tf32 and no longer be the f32 the caller asked for.
//! `KILN_LINATTN=cores` turns this path off (a fallback, and the bench's comparison row).
//!
//! One (head, 64-wide Dv slice) block walks all of a head's chunks in order, so a launch with few
//! heads and a long T has too few blocks for the GPU and each one is latency-bound. Then the walk is
//! split into S segments of whole chunks (a scan over chunk groups, `segments` picks S):
//!   1. `linattn_tc<dkp>_seg_states_bf16`, grid (BH x S x Dv slices): each segment's own sum of
//!      k^T v (K and V read, no outputs) into an f32 scratch (BH, S, Dk, Dv);
//!   2. `linattn_seg_prefix`: in place, each segment's starting state S0 + seg_0 + ... + seg_{j-1}
//!      (fixed order; segments in walk order, so for rev the last chunks come first) and s_final;
//!   3. `linattn_tc<dkp>_seg_out_bf16`, grid (BH x S x Dv slices): the usual chunk walk over one
//!      segment from its f32 starting state.
//!
//! Deterministic (fixed orders; the fused walk's one atomic only hands out block order); the carried state stays f32. The result differs from
//! the single walk's only in f32 rounding (the segment sums are added as sums).
//! `KILN_LINATTN_SPLIT=off` keeps the single launch everywhere (a fallback, and the bench's row).
//!
//! [`Walk`] picks the kernels: on an sm_90 with head width 128 the same three steps can run on
//! warpgroup MMAs (kernels/linear_attention_wg.cu), or fused into one launch whose blocks pass the
//! running state from segment to segment through flags in global memory (tickets from an atomic
//! counter order them; the sums are still added in the prefix's order, so the results are bitwise
//! the three launches'), and then the backward's dK and dV share one walk (`launch_dkdv`).

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

/// Which kernels walk a bf16 launch's segments: the mma.sync ones (linear_attention_tc.cu, the
/// default), or, head width 128 on an sm_90, the warpgroup-MMA ones (linear_attention_wg.cu) as
/// the same three launches (`KILN_LINATTN=wgmma`) or as one (`KILN_LINATTN=wgmma-fused`: each block
/// sums its segment, waits for the one before it, and walks its outputs; K and V of a segment come
/// from L2 the second time). Neither wgmma form has run on a GPU yet: opt-in, and the bench times
/// both beside the default.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Walk {
    Mma,
    Wgmma,
    WgmmaFused,
}

/// The walk `KILN_LINATTN` asks for (read once; the bench and the tests name theirs per call).
pub fn walk() -> Walk {
    static WALK: OnceLock<Walk> = OnceLock::new();
    *WALK.get_or_init(|| match std::env::var("KILN_LINATTN").as_deref() {
        Ok("wgmma") => Walk::Wgmma,
        Ok("wgmma-fused") => Walk::WgmmaFused,
        _ => Walk::Mma,
    })
}

/// The walk that runs a (dk, dv) launch on `dev` when `asked` (None: [`walk`]) is asked for: the
/// wgmma ones need Dk = Dv = 128 and sm_90.
fn walk_for(dev: &super::Dev, dk: usize, dv: usize, asked: Option<Walk>) -> Walk {
    match asked.unwrap_or_else(walk) {
        w @ (Walk::Wgmma | Walk::WgmmaFused) if dk == 128 && dv == 128 && (dev.cc == (9, 0) || dev.is_emu()) => w,
        _ => Walk::Mma,
    }
}

/// Dynamic shared memory of `linattn_wg_seg_out_bf16` and `linattn_wg_fused_bf16`: Q, K, V of
/// three chunks (3 x 48 KiB), two bf16 copies of half the state (2 x 16 KiB), 1 KiB of alignment
/// slack: 177 KiB.
const WG_SMEM: u32 = 3 * 3 * 16384 + 2 * 16384 + 1024;
/// ... and of `linattn_wg_seg_states_bf16`: K and V of three chunks, no S copies (97 KiB, two
/// blocks an SM).
const WG_STATES_SMEM: u32 = 3 * 2 * 16384 + 1024;

/// ... and of `linattn_wg_fused_dkdv_bf16`: Q, K, V, dO of three chunks (3 x 64 KiB), the two
/// bf16 copies of the state, slack: 225 KiB (sm_90 allows 227).
const WG_BWD_SMEM: u32 = 3 * 4 * 16384 + 2 * 16384 + 1024;

/// May long walks be split into segments (the default), or is that off (`KILN_LINATTN_SPLIT=off`)?
pub fn split_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KILN_LINATTN_SPLIT").map_or(true, |v| v != "off"))
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

/// Dynamic shared memory of the states-only walk: K [2][64][dkp + 8] | V [2][64][72], bf16.
fn smem_states_bytes(dkp: usize) -> u32 {
    ((2 * CHUNK * (dkp + 8) + 2 * CHUNK * 72) * 2) as u32
}

/// Fewest chunks a segment: shorter ones spend more on the extra passes than they win.
const MIN_SEG_CHUNKS: usize = 4;

/// At most `s` segments of ceil(nch / s) chunks each, none of them empty: the count that runs.
fn whole_segments(nch: usize, s: usize) -> usize {
    nch.div_ceil(nch.div_ceil(s))
}

/// How many segments a (bh, T, dv) walk runs in (1: the single launch). A wave model: with `slots`
/// blocks resident on the GPU (SMs x the blocks one SM's shared memory holds), a grid of n blocks
/// each walking L chunks takes about ceil(n / slots) * L chunk-steps; the states pass (one step in
/// four of the work, twice the residency) adds a quarter of its own. The cheapest S in
/// 1 ..= nch / MIN_SEG_CHUNKS wins, the smallest on ties. E.g. an H200 (132 SMs, 2 blocks of 113 KiB
/// each), BH = 64, Dv = 128 (128 blocks), T = 4096 (64 chunks): S = 4, 512 blocks of 16 chunks.
/// `Walk::Wgmma`: the output pass is the wgmma walk (one block of 177 KiB per head, one per SM: at
/// the shape above S = 2, 4 and 8 all take one output wave's worth of chunk-steps, and S = 4's
/// states pass the fewest, so S = 4 there too). `Walk::WgmmaFused`: one pass, each block one step in
/// four more for its segment's sum, and one more again when the K and V the blocks in flight hold
/// exceed [`L2_BUDGET`] (the second read then misses L2): S = 8 at that shape (33 MB in flight).
pub(super) fn segments(sm_count: u32, smem_optin: u32, bh: usize, t: usize, dv: usize, dkp: usize, walk: Walk) -> usize {
    let nch = t.div_ceil(CHUNK);
    let wg = walk != Walk::Mma;
    let blocks = bh.saturating_mul(dv.div_ceil(64)).max(1);
    let wg_blocks = if wg { bh.max(1) } else { blocks };  // the wgmma walks: one block a head
    let resident = |smem: u32| ((smem_optin as usize + 1024) / (smem as usize + 1024)).max(1) * sm_count.max(1) as usize;
    let slots = resident(if wg { WG_SMEM } else { smem_bytes(dkp) });
    let slots_states = resident(if wg { WG_STATES_SMEM } else { smem_states_bytes(dkp) });
    let cost = |s: usize| {
        let l = nch.div_ceil(s);
        let n = wg_blocks.saturating_mul(s);
        if walk == Walk::WgmmaFused {
            let in_flight = n.min(slots).saturating_mul(l * CHUNK * 128 * 2 * 2); // K and V, bf16
            let step = 4 + (s > 1) as usize + (s > 1 && in_flight > L2_BUDGET) as usize;
            return n.div_ceil(slots) * l * step;
        }
        let out = n.div_ceil(slots) * l * 4;
        let states = if s > 1 { n.div_ceil(slots_states) * l } else { 0 };
        out + states
    };
    let mut best = 1;
    for s in 2..=nch / MIN_SEG_CHUNKS {
        let s = whole_segments(nch, s);
        if cost(s) < cost(best) {
            best = s;
        }
    }
    best
}

/// The K and V bytes the fused walk's blocks in flight may hold for their second read to stay in
/// L2 (H100 / H200: 50 MB, shared with the Q and O streaming past).
const L2_BUDGET: usize = 40 << 20;

/// The segment count a (bh, T, dv) launch runs: `segs` whole segments, or for 0 the planner's
/// ([`segments`]; 1 with `KILN_LINATTN_SPLIT=off`); 1 for a single chunk.
fn segment_count(dev: &super::Dev, segs: usize, bh: usize, t: usize, dv: usize, dkp: usize, walk: Walk) -> usize {
    let nch = t.div_ceil(CHUNK);
    match segs {
        _ if nch < 2 => 1,
        0 if split_enabled() => segments(dev.sm_count, dev.smem_optin, bh, t, dv, dkp, walk),
        0 => 1,
        s => whole_segments(nch, s.min(nch)),
    }
}

/// A fused wgmma walk's scratch: the inclusive states (BH, S, 128, 128) f32, and the ticket
/// counter then a flag per (head, segment), zeroed. Both go back to the stream-ordered pool after
/// the launch.
fn fused_scratch(op: &'static str, dev: &std::sync::Arc<super::Dev>, bh: usize, segs: usize) -> Result<(CudaStorage, CudaStorage)> {
    let too_big = || Error::bad_shape(op, &Shape(vec![bh, segs, 128, 128]), "segment states too large for the CUDA grid");
    let len = bh.checked_mul(segs).and_then(|x| x.checked_mul(128 * 128)).ok_or_else(too_big)?;
    Ok((CudaStorage::alloc(dev, DType::F32, len)?, CudaStorage::zeros(dev, DType::U32, 1 + bh * segs)?))
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

/// One walk over `bh` heads: o (BH, T, dv) and, when given, s_final (BH, dk, dv); the state
/// arguments as `linear_attention::state_args` builds them. `dkp` from [`width`]; `segs` segments
/// (0: chosen by [`segments`], or 1 with `KILN_LINATTN_SPLIT=off`; 1: the single launch);
/// `walk` as [`walk_for`] takes it.
#[allow(clippy::too_many_arguments)]
pub(super) fn launch(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, state: (Arg, usize, usize, Arg), o: &CudaStorage,
    bh: usize, t: usize, dk: usize, dv: usize, rev: bool, dkp: usize, segs: usize, walk: Option<Walk>,
) -> Result<()> {
    let dev = q.dev();
    let walk = walk_for(dev, dk, dv, walk);
    let segs = segment_count(dev, segs, bh, t, dv, dkp, walk);
    // (the wgmma walk exists only as a segment's output pass: one segment runs the split path too)
    if segs > 1 || (walk != Walk::Mma && t > 0) {
        return launch_split(q, k, v, state, o, bh, t, dk, dv, rev, dkp, segs, walk);
    }
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

/// The segmented walk (module docs): `segs` >= 1 segments of ceil(nch / segs) chunks, none empty.
#[allow(clippy::too_many_arguments)]
fn launch_split(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, state: (Arg, usize, usize, Arg), o: &CudaStorage,
    bh: usize, t: usize, dk: usize, dv: usize, rev: bool, dkp: usize, segs: usize, walk: Walk,
) -> Result<()> {
    const OP: &str = "linear_attention";
    let dev = q.dev();
    let (s0a, ss0, ss1, sfa) = state;
    let with_final = !matches!(sfa, Arg::U64(0)); // state_args' null pointer: no s_final
    let seg_len = t.div_ceil(CHUNK).div_ceil(segs);
    let per = dk * dv;
    let too_big = || Error::bad_shape(OP, &Shape(vec![bh, segs, dk, dv]), "segment states too large for the CUDA grid");
    let i = |x: usize| Arg::I32(x as i32);
    let (ri, vl) = (Arg::I32(rev as i32), vec_loads(dk, dv));
    if walk == Walk::WgmmaFused {
        let (ws, sync) = fused_scratch(OP, dev, bh, segs)?;
        let f = dev.func("linear_attention_wg", "linattn_wg_fused_bf16")?;
        let args = [
            q.arg(), k.arg(), v.arg(), s0a, sfa, ws.arg(), sync.arg(), o.arg(),
            i(t), i(bh), i(segs), i(seg_len), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), ri,
        ];
        return dev.launch(&f, (blocks(OP, bh * segs, 64)?, 1, 1), (THREADS, 1, 1), WG_SMEM, &args);
    }
    let ws_len = bh.checked_mul(segs).and_then(|x| x.checked_mul(per)).ok_or_else(too_big)?;
    // ws: (BH, S, Dk, Dv) f32, the segments' sums, then their starting states; back to the
    // stream-ordered pool after these launches.
    let ws = CudaStorage::alloc(dev, DType::F32, ws_len)?;
    // 1. The sums of the segments whose sum is needed: all but the last one unless s_final is.
    let nrun = if with_final { segs } else { segs - 1 };
    let args = [k.arg(), v.arg(), ws.arg(), i(t), i(dk), i(dv), i(segs), i(nrun), i(seg_len), ri, vl];
    let wg = walk == Walk::Wgmma;
    if wg {
        let f = dev.func("linear_attention_wg", "linattn_wg_seg_states_bf16")?;
        dev.launch(&f, (blocks(OP, bh * nrun, 64)?, 1, 1), (THREADS, 1, 1), WG_STATES_SMEM, &args)?;
    } else {
        let f = dev.func(FAMILY, &format!("linattn_tc{dkp}_seg_states_bf16"))?;
        dev.launch(&f, (blocks(OP, bh * nrun, dv)?, 1, 1), (THREADS, 1, 1), smem_states_bytes(dkp), &args)?;
    }
    // 2. Starting states and s_final, one thread per state element.
    let nb = per.div_ceil(256);
    let grid = bh.checked_mul(nb).filter(|&g| g <= i32::MAX as usize).ok_or_else(too_big)?;
    let f = dev.func(FAMILY, "linattn_seg_prefix")?;
    let args = [s0a, ws.arg(), sfa, i(dk), i(dv), Arg::U64(ss0 as u64), Arg::U64(ss1 as u64), i(segs)];
    dev.launch(&f, (grid as u32, 1, 1), (256, 1, 1), 0, &args)?;
    // 3. Every segment's outputs from its starting state.
    let args = [q.arg(), k.arg(), v.arg(), ws.arg(), o.arg(), i(t), i(dk), i(dv), i(segs), i(seg_len), ri, vl];
    if wg {
        // one block a (head, segment): both 64-wide halves of Dv in one block
        let f = dev.func("linear_attention_wg", "linattn_wg_seg_out_bf16")?;
        return dev.launch(&f, (blocks(OP, bh * segs, 64)?, 1, 1), (THREADS, 1, 1), WG_SMEM, &args);
    }
    let f = dev.func(FAMILY, &format!("linattn_tc{dkp}_seg_out_bf16"))?;
    dev.launch(&f, (blocks(OP, bh * segs, dv)?, 1, 1), (THREADS, 1, 1), smem_bytes(dkp), &args)
}

/// The backward's dK and dV in one fused wgmma walk (kernels/linear_attention_wg_bwd.cuh) where
/// it applies: bf16, Dk = Dv = 128, T > 0, the walk `walk_for` picks is `WgmmaFused`. Then dk, dv
/// (BH, T, 128) and ds0 (BH, 128, 128) are written and the answer is true; else nothing runs and
/// the caller launches the two reversed forward walks. `segs` as [`launch`]'s.
#[allow(clippy::too_many_arguments)]
pub(super) fn launch_dkdv(
    q: &CudaStorage, k: &CudaStorage, v: &CudaStorage, dout: &CudaStorage, dk: &CudaStorage, dv: &CudaStorage, ds0: &CudaStorage,
    bh: usize, t: usize, d: (usize, usize), segs: usize, walk: Option<Walk>,
) -> Result<bool> {
    const OP: &str = "linear_attention_backward";
    let dev = q.dev();
    if q.dtype != DType::BF16 || t == 0 || bh == 0 || d != (128, 128) || walk_for(dev, d.0, d.1, walk) != Walk::WgmmaFused {
        return Ok(false);
    }
    let segs = segment_count(dev, segs, bh, t, 128, 128, Walk::WgmmaFused);
    let (ws, sync) = fused_scratch(OP, dev, bh, segs)?;
    let i = |x: usize| Arg::I32(x as i32);
    let f = dev.func("linear_attention_wg", "linattn_wg_fused_dkdv_bf16")?;
    let args = [
        q.arg(), k.arg(), v.arg(), dout.arg(), dk.arg(), dv.arg(), ds0.arg(), ws.arg(), sync.arg(),
        i(t), i(bh), i(segs), i(t.div_ceil(CHUNK).div_ceil(segs)),
    ];
    dev.launch(&f, (blocks(OP, bh * segs, 64)?, 1, 1), (THREADS, 1, 1), WG_BWD_SMEM, &args)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H200: (u32, u32) = (132, 227 * 1024);

    #[test]
    fn segments_fill_the_gpu_with_long_enough_segments() {
        let seg = |bh, t, dv, dkp| segments(H200.0, H200.1, bh, t, dv, dkp, Walk::Mma);
        // The bench shape: 128 blocks on 264 slots, 64 chunks -> 4 segments of 16 chunks.
        assert_eq!(seg(64, 4096, 128, 128), 4);
        // The wgmma output walk (one 177 KiB block per head, one a SM): 4 segments of 16 chunks.
        assert_eq!(segments(H200.0, H200.1, 64, 4096, 128, 128, Walk::Wgmma), 4);
        assert_eq!(segments(H200.0, H200.1, 512, 4096, 128, 128, Walk::Wgmma), 1);
        // The fused one: 8 segments, the smallest count whose K and V in flight stay in L2 (33 MB).
        assert_eq!(segments(H200.0, H200.1, 64, 4096, 128, 128, Walk::WgmmaFused), 8);
        // Many heads: one segment, no sums to wait for.
        assert_eq!(segments(H200.0, H200.1, 512, 4096, 128, 128, Walk::WgmmaFused), 1);
        // Enough blocks already (8 full waves): the single launch.
        assert_eq!(seg(512, 4096, 128, 128), 1);
        // Never fewer than MIN_SEG_CHUNKS chunks a segment, never an empty one.
        assert_eq!(seg(1, 7 * 64, 64, 128), 1);
        for t in [8 * 64, 4096, 1000 * 64 + 5] {
            let (s, nch) = (seg(1, t, 64, 64), t.div_ceil(64));
            assert!(s > 1 && nch / s >= MIN_SEG_CHUNKS && (s - 1) * nch.div_ceil(s) < nch, "t={t}: {s} segments");
        }
    }
}
