//! Launch wrappers for kernels/norm.cu. Twin: backend/cpu/norm.rs.
//! Forward: one block per row. Backward: g blocks, each accumulating its rows' dw / db terms into
//! its own f32 partial row, then norm_colsum adds the partial rows per column in a fixed order
//! (deterministic, no float atomics). x, w, b, dy share one dtype (F32 or BF16); outputs take
//! that dtype; eps is passed as f32. Forward rows that fit go to the warp-per-row kernels
//! (backend/cuda/norm_warp.rs); backward rows with C % 8 == 0, C <= 4096 to the staged row kernel
//! (a resident grid, the next rows in flight by cp.async). `KILN_NORM=warp` sends the bf16
//! backward to the warp kernels, `KILN_NORM=rc` everything to norm.cu's unstaged row kernels.

use super::elementwise::typed;
use super::softmax_xent::row_threads;
use super::runtime::{Dev, Func};
use super::{blocks_for, norm_warp, Arg, CudaStorage};
use std::sync::Arc;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "norm";
const MAX_GRID: usize = 65535 * 8;
/// Blocks of the backward kernels (so partial rows: BWD_BLOCKS x C f32, about 4 MiB at C = 4096,
/// small enough to stay in L2 while they are accumulated).
const BWD_BLOCKS: usize = 256;

fn expect(op: &'static str, what: &str, s: &CudaStorage, dtype: DType, want: usize) -> Result<()> {
    s.expect(op, dtype)?;
    if s.len == want {
        return Ok(());
    }
    Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("{what} should hold {want} elements")))
}

/// Threads for the row-in-registers forward (`norm_rc_*`), when C fits:
/// C % 8 == 0 and thread t owns columns 8t..8t+7, so C / 8 <= 1024 (C <= 8192). Those kernels
/// read each row once (the generic ones re-read it per pass) and keep w in registers.
fn rc_threads(n: usize, c: usize) -> Option<u32> {
    (n > 0 && c > 0 && c % 8 == 0 && c / 8 <= 1024).then(|| bwd_threads(c))
}

/// As rc_threads for `norm_backward_rc_*`, which is built for at most 512 threads (its next-row
/// prefetch needs the registers): C <= 4096.
fn rc_bwd_threads(n: usize, c: usize) -> Option<u32> {
    rc_threads(n, c).filter(|&t| t <= 512)
}

/// Forward on the row-in-registers path: `layer` selects LayerNorm (b used) or RMSNorm (b unused).
#[allow(clippy::too_many_arguments)]
fn norm_rc(x: &CudaStorage, w: &CudaStorage, b: &CudaStorage, y: &CudaStorage, n: usize, c: usize, eps: f64, layer: bool, threads: u32) -> Result<()> {
    let dev = x.dev();
    let f = dev.func(FAMILY, &typed("layer_norm", "norm_rc", x.dtype)?)?;
    let args = [x.arg(), w.arg(), b.arg(), y.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::F32(eps as f32), Arg::I32(layer as i32)];
    // SAFETY: x, y hold n*c elements and w, b c (b is only read when layer), all of the kernel's
    // type; C % 8 == 0 and C / 8 <= threads (rc_threads), rows are bounds-checked.
    dev.launch(&f, (n.min(MAX_GRID) as u32, 1, 1), (threads, 1, 1), 0, &args)
}

/// The row-in-registers forward wins for f32 but lost for bf16 on an H100 (2026-11-26, (16384,
/// 4096): rms_norm bf16 0.117 ms generic vs 0.158 ms rc; layer_norm 0.130 vs 0.170; f32 0.252 ->
/// 0.221 and 0.271 -> 0.218), so bf16 forwards keep the generic kernels.
fn rc_forward_pays(t: DType) -> bool {
    t == DType::F32
}

fn bwd_threads(c: usize) -> u32 {
    c.div_ceil(8).next_power_of_two().clamp(32, 1024) as u32
}

/// x: (N, C), w: (C) -> y (N, C) = x / rms(x) * w.
pub fn rms_norm(x: &CudaStorage, w: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<CudaStorage> {
    let t = x.float("rms_norm")?.dtype;
    expect("rms_norm", "x", x, t, n * c)?;
    expect("rms_norm", "w", w, t, c)?;
    let y = CudaStorage::alloc(x.dev(), t, n * c)?;
    if c == 0 {
        return Ok(y);
    }
    if norm_warp::forward_fits(t, n, c) {
        norm_warp::forward(x, w, x, &y, n, c, eps, false)?;
        return Ok(y);
    }
    if let Some(threads) = rc_threads(n, c).filter(|_| rc_forward_pays(t)) {
        norm_rc(x, w, x, &y, n, c, eps, false, threads)?;
        return Ok(y);
    }
    let dev = x.dev();
    let f = dev.func(FAMILY, &typed("rms_norm", "rms_norm", t)?)?;
    let args = [x.arg(), w.arg(), y.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::F32(eps as f32)];
    // SAFETY: x, y hold n*c elements and w c, all of the kernel's type; rows are bounds-checked.
    dev.launch(&f, (n.min(MAX_GRID) as u32, 1, 1), (row_threads(c), 1, 1), 0, &args)?;
    Ok(y)
}

/// x: (N, C), w, b: (C) -> y (N, C) = (x - mean) / std * w + b.
pub fn layer_norm(x: &CudaStorage, w: &CudaStorage, b: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<CudaStorage> {
    let t = x.float("layer_norm")?.dtype;
    expect("layer_norm", "x", x, t, n * c)?;
    expect("layer_norm", "w", w, t, c)?;
    expect("layer_norm", "b", b, t, c)?;
    let y = CudaStorage::alloc(x.dev(), t, n * c)?;
    if c == 0 {
        return Ok(y);
    }
    if norm_warp::forward_fits(t, n, c) {
        norm_warp::forward(x, w, b, &y, n, c, eps, true)?;
        return Ok(y);
    }
    if let Some(threads) = rc_threads(n, c).filter(|_| rc_forward_pays(t)) {
        norm_rc(x, w, b, &y, n, c, eps, true, threads)?;
        return Ok(y);
    }
    let dev = x.dev();
    let f = dev.func(FAMILY, &typed("layer_norm", "layer_norm", t)?)?;
    let args = [x.arg(), w.arg(), b.arg(), y.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::F32(eps as f32)];
    // SAFETY: x, y hold n*c elements and w, b c, all of the kernel's type; rows are bounds-checked.
    dev.launch(&f, (n.min(MAX_GRID) as u32, 1, 1), (row_threads(c), 1, 1), 0, &args)?;
    Ok(y)
}

/// out (C) = column sums of the (g, C) f32 partial rows, in out's dtype.
fn colsum(part: &CudaStorage, out: &CudaStorage, g: usize, c: usize) -> Result<()> {
    let dev = out.dev();
    let f = dev.func(FAMILY, &typed("norm", "norm_colsum", out.dtype)?)?;
    // SAFETY: part holds g*c f32, out c elements of the kernel's type.
    dev.launch(&f, (blocks_for(c, 128), 1, 1), (128, 1, 1), 0, &[part.arg(), out.arg(), Arg::U64(g as u64), Arg::U64(c as u64)])
}

/// dw / db when there are no rows: zeros.
fn zeros_like_w(x: &CudaStorage, c: usize) -> Result<CudaStorage> {
    let z = CudaStorage::alloc(x.dev(), x.dtype, c)?;
    if c > 0 {
        let dev = x.dev();
        let f = dev.func("reduce", &typed("norm", "zero", x.dtype)?)?;
        // SAFETY: z holds c elements of the kernel's type.
        dev.launch(&f, (blocks_for(c, 256), 1, 1), (256, 1, 1), 0, &[z.arg(), Arg::U64(c as u64)])?;
    }
    Ok(z)
}

/// Staged stages of `norm_backward_staged_*` (NORM_STAGES in kernels/norm.cu).
fn stages(t: DType) -> usize {
    if t == DType::BF16 { 4 } else { 3 }
}

/// Dynamic shared bytes of `norm_backward_staged_*` at `threads` a block: its stages, each a row's
/// x and dy as 16-byte pieces (8 columns a thread: one bf16 piece, two f32), or None when that
/// exceeds the opt-in limit less 1 KiB (C = 4096: 64 KiB bf16, 96 KiB f32).
pub fn staged_backward_bytes(t: DType, threads: u32, smem_optin: u32) -> Option<u32> {
    let bytes = stages(t) * 2 * (t.size_in_bytes() / 2) * threads as usize * 16;
    (bytes + 1024 <= smem_optin as usize).then_some(bytes as u32)
}

/// Which backward kernel runs, and with it g, the number of partial rows (blocks).
enum Bwd {
    /// kernels/norm_warp.cu (`KILN_NORM=warp`: the bf16 default before 2026-11-27): (warps, g).
    /// With `KILN_NORM=warp` the other rows take `Rc`, so the routing is the one measured then.
    Warp((usize, usize)),
    /// `norm_backward_staged_*` (the default where it fits): the kernel, threads, shared bytes, g.
    Staged(Func, u32, u32, usize),
    /// `norm_backward_rc_*` (`KILN_NORM=rc`, or when staging does not fit): threads, g.
    Rc(u32, usize),
    /// `rms_norm_backward_*` / `layer_norm_backward_*`: any C; g.
    Generic(usize),
}

fn backward_plan(dev: &Arc<Dev>, t: DType, n: usize, c: usize, layer: bool) -> Result<Bwd> {
    if norm_warp::mode() == norm_warp::Mode::Warp {
        if let Some(launch) = norm_warp::backward_launch(dev, t, n, c, layer) {
            return Ok(Bwd::Warp(launch));
        }
    }
    let Some(threads) = rc_bwd_threads(n, c) else { return Ok(Bwd::Generic(n.min(BWD_BLOCKS))) };
    match staged_backward_bytes(t, threads, dev.smem_optin).filter(|_| norm_warp::mode() == norm_warp::Mode::Staged) {
        Some(bytes) => {
            let f = dev.func(FAMILY, &typed("norm_backward", "norm_backward_staged", t)?)?;
            // one partial row per resident block: a count fixed by the device, not by the run
            let g = (dev.resident_blocks(&f, threads, bytes)? as usize).min(n);
            Ok(Bwd::Staged(f, threads, bytes, g))
        }
        None => Ok(Bwd::Rc(threads, n.min(BWD_BLOCKS))),
    }
}

/// The backward into dx and the partial rows pw (pb when layer): returns (pw, pb, g).
#[allow(clippy::too_many_arguments)]
fn backward(x: &CudaStorage, w: &CudaStorage, dy: &CudaStorage, dx: &CudaStorage, n: usize, c: usize, eps: f64, layer: bool) -> Result<(CudaStorage, Option<CudaStorage>, usize)> {
    let (dev, t) = (x.dev(), x.dtype);
    let plan = backward_plan(dev, t, n, c, layer)?;
    let g = match plan {
        Bwd::Warp((_, g)) | Bwd::Staged(_, _, _, g) | Bwd::Rc(_, g) | Bwd::Generic(g) => g,
    };
    let pw = CudaStorage::alloc(dev, DType::F32, g * c)?;
    let pb = if layer { Some(CudaStorage::alloc(dev, DType::F32, g * c)?) } else { None };
    let pbr = pb.as_ref().unwrap_or(&pw);
    let (nn, cc, e) = (Arg::U64(n as u64), Arg::U64(c as u64), Arg::F32(eps as f32));
    let rows = [x.arg(), w.arg(), dy.arg(), dx.arg(), pw.arg(), pbr.arg(), nn, cc, e, Arg::I32(layer as i32)];
    // SAFETY (every arm): x, dy, dx hold n*c elements of t, w c; pw (and pb when layer) hold g*c
    // f32 and block b < g writes only its partial row b, every block having a row (g <= n); with
    // layer = 0 only pw is written. The rc kernels get C % 8 == 0 and C / 8 <= threads <= 512
    // (rc_bwd_threads); the staged one its stages' bytes of dynamic shared memory.
    match plan {
        Bwd::Warp(launch) => norm_warp::backward(x, w, dy, dx, &pw, pbr, n, c, eps, layer, launch)?,
        Bwd::Staged(f, threads, bytes, g) => dev.launch(&f, (g as u32, 1, 1), (threads, 1, 1), bytes, &rows)?,
        Bwd::Rc(threads, g) => {
            let f = dev.func(FAMILY, &typed("norm_backward", "norm_backward_rc", t)?)?;
            dev.launch(&f, (g as u32, 1, 1), (threads, 1, 1), 0, &rows)?;
        }
        Bwd::Generic(g) if layer => {
            let f = dev.func(FAMILY, &typed("layer_norm_backward", "layer_norm_backward", t)?)?;
            let args = [x.arg(), w.arg(), dy.arg(), dx.arg(), pw.arg(), pbr.arg(), nn, cc, e];
            dev.launch(&f, (g as u32, 1, 1), (bwd_threads(c), 1, 1), 0, &args)?;
        }
        Bwd::Generic(g) => {
            let f = dev.func(FAMILY, &typed("rms_norm_backward", "rms_norm_backward", t)?)?;
            let args = [x.arg(), w.arg(), dy.arg(), dx.arg(), pw.arg(), nn, cc, e];
            dev.launch(&f, (g as u32, 1, 1), (bwd_threads(c), 1, 1), 0, &args)?;
        }
    }
    Ok((pw, pb, g))
}

/// x, dy: (N, C), w: (C) -> [dx (N, C), dw (C)].
pub fn rms_norm_backward(x: &CudaStorage, w: &CudaStorage, dy: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<Vec<CudaStorage>> {
    let t = x.float("rms_norm_backward")?.dtype;
    expect("rms_norm_backward", "x", x, t, n * c)?;
    expect("rms_norm_backward", "w", w, t, c)?;
    expect("rms_norm_backward", "dy", dy, t, n * c)?;
    let dx = CudaStorage::alloc(x.dev(), t, n * c)?;
    if n == 0 || c == 0 {
        return Ok(vec![dx, zeros_like_w(x, c)?]);
    }
    let (pw, _, g) = backward(x, w, dy, &dx, n, c, eps, false)?;
    let dw = CudaStorage::alloc(x.dev(), t, c)?;
    colsum(&pw, &dw, g, c)?;
    Ok(vec![dx, dw])
}

/// x, dy: (N, C), w: (C) -> [dx (N, C), dw (C), db (C)].
pub fn layer_norm_backward(x: &CudaStorage, w: &CudaStorage, dy: &CudaStorage, n: usize, c: usize, eps: f64) -> Result<Vec<CudaStorage>> {
    let t = x.float("layer_norm_backward")?.dtype;
    expect("layer_norm_backward", "x", x, t, n * c)?;
    expect("layer_norm_backward", "w", w, t, c)?;
    expect("layer_norm_backward", "dy", dy, t, n * c)?;
    let dx = CudaStorage::alloc(x.dev(), t, n * c)?;
    if n == 0 || c == 0 {
        return Ok(vec![dx, zeros_like_w(x, c)?, zeros_like_w(x, c)?]);
    }
    let (pw, pb, g) = backward(x, w, dy, &dx, n, c, eps, true)?;
    let (dw, db) = (CudaStorage::alloc(x.dev(), t, c)?, CudaStorage::alloc(x.dev(), t, c)?);
    colsum(&pw, &dw, g, c)?;
    colsum(pb.as_ref().unwrap_or(&pw), &db, g, c)?;
    Ok(vec![dx, dw, db])
}
