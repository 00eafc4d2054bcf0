//! Launch wrappers for kernels/norm_warp.cu: RMSNorm / LayerNorm with one warp per row: the
//! forward for bf16 (C % 8 == 0, C <= 8192) and f32 (C % 4 == 0, C <= 4096), the backward for bf16
//! (C % 8 == 0, C <= 4096). Called by backend/cuda/norm.rs, which routes there and keeps the other
//! shapes (and the f32 backward) on kernels/norm.cu. Twin: backend/cpu/norm.rs.
//! The backward writes per-block f32 partial dw (db) rows, which norm.rs sums with norm_colsum.
//! The forward stages each warp's next row in shared memory by cp.async on a resident grid
//! (`KILN_NORM=warp` or `rc`: unstaged, a warp per row, as measured on the H200 of 2026-11-27).
//! Since then the backward runs on norm.cu's staged row kernel unless `KILN_NORM=warp`.

use super::{Arg, CudaStorage, Dev};
use crate::tensor::DType;
use crate::Result;

const FAMILY: &str = "norm_warp";
/// Warps per block (and most warps per block of the backward).
const WARPS: usize = 8;
const MAX_GRID: usize = 65535 * 8;

/// 16-byte pieces a lane holds for a row of `np` pieces: the kernel instances are P = 4, 16, 32.
fn pieces(np: usize) -> usize {
    match np {
        0..=128 => 4,
        129..=512 => 16,
        _ => 32,
    }
}

/// Which norm kernels run, from `KILN_NORM` (read once).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// The default: the warp forward staging each warp's next row; the backward on norm.cu's
    /// staged row kernel where it fits.
    Staged,
    /// `warp`: the kernels measured on the H200 of 2026-11-27: the warp forward unstaged, the bf16
    /// backward on the warp kernels, the rest on norm.cu's unstaged row kernels.
    Warp,
    /// `rc`: norm.cu's unstaged row kernels everywhere (as measured on the H100).
    Rc,
}

pub fn mode() -> Mode {
    static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("KILN_NORM").as_deref() {
        Ok("warp") => Mode::Warp,
        Ok("rc") => Mode::Rc,
        _ => Mode::Staged,
    })
}

/// Values of dtype `t` in a 16-byte piece (8 bf16, 4 f32).
fn per_piece(t: DType) -> usize {
    16 / t.size_in_bytes()
}

/// Whether the forward runs here: bf16 with C % 8 == 0, C <= 8192, or f32 with C % 4 == 0,
/// C <= 4096 (P = 32 pieces, 128 registers of row, either way). f32 joined after the H200 of
/// 2026-11-27 measured norm.cu's f32 rows at 0.61 of the copy rate and the bf16 warp rows at 0.75.
pub fn forward_fits(t: DType, n: usize, c: usize) -> bool {
    let k = match t {
        DType::BF16 | DType::F32 => per_piece(t),
        _ => return false,
    };
    mode() != Mode::Rc && n > 0 && c > 0 && c % k == 0 && c / k <= 1024
}

/// (warps a block, blocks) of the backward for (N, C), or None when it does not run here:
/// bf16, C % 8 == 0, C <= 4096 (x and dy held: 128 registers at P = 16), and each warp's f32 dw
/// (db) rows, (1 + layer) 4 C bytes, fit the block's opt-in shared memory. Blocks: as many as are
/// resident at once (by shared memory) on every SM, at most one per WARPS rows; that count is the
/// number of partial rows, so it depends on the device, never on the run.
pub fn backward_launch(dev: &Dev, t: DType, n: usize, c: usize, layer: bool) -> Option<(usize, usize)> {
    if mode() == Mode::Rc || t != DType::BF16 || n == 0 || c == 0 || c % 8 != 0 || c > 4096 {
        return None;
    }
    let per_warp = (1 + layer as usize) * 4 * c;
    let optin = dev.smem_optin as usize;
    let warps = (optin.saturating_sub(1024) / per_warp).min(WARPS);
    if warps == 0 {
        return None;
    }
    // per SM: about opt-in + 1 KiB of shared memory, 1 KiB of it reserved per block
    let per_sm = ((optin + 1024) / (warps * per_warp + 1024)).clamp(1, 2048 / (32 * warps));
    Some((warps, n.div_ceil(warps).min(dev.sm_count as usize * per_sm)))
}

/// Forward; `layer` selects LayerNorm (b used) or RMSNorm (b unused, may be x).
#[allow(clippy::too_many_arguments)]
pub fn forward(x: &CudaStorage, w: &CudaStorage, b: &CudaStorage, y: &CudaStorage, n: usize, c: usize, eps: f64, layer: bool) -> Result<()> {
    let dev = x.dev();
    let t = x.dtype;
    let p = pieces(c / per_piece(t));
    let f = dev.func(FAMILY, &format!("norm_fwd_warp{p}_{}", if t == DType::F32 { "f32" } else { "bf16" }))?;
    let mut args = vec![x.arg(), w.arg(), b.arg(), y.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::F32(eps as f32), Arg::I32(layer as i32)];
    let rows_grid = n.div_ceil(WARPS);
    // staged: each warp's slots for a row (512 P bytes), a grid of resident blocks
    let bytes = (WARPS * 512 * p) as u32;
    let staged = mode() == Mode::Staged && bytes as usize + 1024 <= dev.smem_optin as usize;
    let (grid, smem) = if staged { ((dev.resident_blocks(&f, (32 * WARPS) as u32, bytes)? as usize).min(rows_grid), bytes) } else { (rows_grid.min(MAX_GRID), 0) };
    args.push(Arg::I32(staged as i32));
    // SAFETY: x, y hold n*c elements of x's dtype and w, b c (b is read only when layer);
    // forward_fits gave C % K == 0 (16-byte pieces of K values, row starts aligned) and C / K <= 32 P;
    // rows are bounds-checked; staged, each warp's 32 P slots of 16 bytes are in smem.
    dev.launch(&f, (grid as u32, 1, 1), ((32 * WARPS) as u32, 1, 1), smem, &args)
}

/// Backward into dx and the partial rows pw, pb (g x C f32 each, g = the launch's blocks from
/// backward_launch; pb is written only when layer, and may be pw otherwise).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &CudaStorage, w: &CudaStorage, dy: &CudaStorage, dx: &CudaStorage, pw: &CudaStorage, pb: &CudaStorage,
    n: usize, c: usize, eps: f64, layer: bool, (warps, g): (usize, usize),
) -> Result<()> {
    let dev = x.dev();
    let f = dev.func(FAMILY, &format!("norm_backward_warp{}_bf16", pieces(c / 8).min(16)))?;
    let smem = ((1 + layer as usize) * 4 * c * warps) as u32;
    let args = [x.arg(), w.arg(), dy.arg(), dx.arg(), pw.arg(), pb.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::F32(eps as f32), Arg::I32(layer as i32)];
    // SAFETY: x, dy, dx hold n*c bf16, w c; pw (pb when layer) hold g*c f32 and block b writes
    // only row b; C % 8 == 0 and C <= 4096 (backward_launch); smem is each warp's (1 + layer) C
    // f32 within the opt-in limit.
    dev.launch(&f, (g as u32, 1, 1), ((32 * warps) as u32, 1, 1), smem, &args)
}
