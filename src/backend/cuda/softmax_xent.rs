//! Launch wrappers for kernels/softmax_xent.cu. Twin: backend/cpu/softmax_xent.rs.
//! One block per row (grid-stride over rows; the staged row-in-registers kernels of
//! kernels/softmax_rows.cuh on a grid of resident blocks); outputs in the input's dtype (the loss
//! in the logits' dtype). The loss mean is two-stage (per-row losses, then one fixed-order block), so
//! it is deterministic. Targets are not copied back to the host for the range check: a target
//! that is neither `ignore` nor < V makes the loss (and its row of dlogits) NaN instead.

use super::elementwise::typed;
use super::runtime::{Dev, Func};
use super::{Arg, CudaStorage};
use std::sync::Arc;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "softmax_xent";
const MAX_GRID: usize = 65535 * 8;

/// Threads per row block: about 16 elements per thread, 32..1024.
pub fn row_threads(c: usize) -> u32 {
    c.div_ceil(16).next_power_of_two().clamp(32, 1024) as u32
}

/// Chunks of 8 elements each thread keeps in registers on the row-in-registers path
/// (RcChunk<T>::VPT in kernels/softmax_xent.cu): 4 for f32 (8 floats a chunk), 8 for bf16 (the
/// chunk stays packed in 4 u32), so both hold 32 data registers a thread.
fn rc_vpt(dtype: DType) -> usize {
    if dtype == DType::BF16 { 8 } else { 4 }
}

/// Threads for the row-in-registers kernels (`*_rc_*`), when C fits: C % 8 == 0 and the row's
/// C / 8 chunks fit rc_vpt per thread in at most 1024 threads (C <= 32768 f32, 65536 bf16).
/// Those kernels read the row once instead of twice.
pub fn rc_threads(c: usize, dtype: DType) -> Option<u32> {
    if c == 0 || c % 8 != 0 {
        return None;
    }
    let (chunks, vpt) = (c / 8, rc_vpt(dtype));
    let t = chunks.div_ceil(vpt).next_power_of_two().clamp(32, 1024);
    (chunks <= t * vpt).then_some(t as u32)
}

/// Is staging on for the rc kernels (the default), or off with `KILN_SOFTMAX=rc` (the kernels then
/// load each row straight into registers on a grid of one block per row: the A/B baseline)?
fn staging_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("KILN_SOFTMAX").map_or(true, |v| v != "rc"))
}

/// Dynamic shared bytes the rc kernels stage the next row in: one row of C elements (each thread
/// copies its own chunks by cp.async while the block works on the row before), when that fits the
/// device's opt-in limit with 1 KiB to spare (C = 32000: 125 KiB f32, 62.5 KiB bf16), else None.
pub fn rc_stage_bytes(c: usize, dtype: DType, smem_optin: u32) -> Option<u32> {
    let bytes = c * dtype.size_in_bytes();
    (bytes + 1024 <= smem_optin as usize).then_some(bytes as u32)
}

/// Launches one of the rc kernels (`args` without the trailing stage flag) over n rows of C:
/// staged on a grid of the blocks resident at once, or unstaged on one block per row.
fn launch_rc(dev: &Arc<Dev>, f: &Func, n: usize, c: usize, dtype: DType, threads: u32, args: &[Arg]) -> Result<()> {
    let mut args = args.to_vec();
    match rc_stage_bytes(c, dtype, dev.smem_optin).filter(|_| staging_on()) {
        Some(bytes) => {
            let g = (dev.resident_blocks(f, threads, bytes)? as usize).min(n);
            args.push(Arg::I32(1));
            // SAFETY (for the callers' launches too): the kernel gets C % 8 == 0 and C / 8 <= VPT *
            // threads (rc_threads) and, staged, C elements' bytes of dynamic shared memory for
            // its slots; buffers are 16-byte aligned; rows are bounds-checked.
            dev.launch(f, (g as u32, 1, 1), (threads, 1, 1), bytes, &args)
        }
        None => {
            args.push(Arg::I32(0));
            dev.launch(f, grid(n), (threads, 1, 1), 0, &args)
        }
    }
}

/// 16-byte chunks of y each thread holds in registers in `softmax_backward_smem_f32` (SX_VPT).
const SX_VPT: usize = 8;
/// f32 rows narrower than this stay on the generic backward: its second read of the row pair
/// (8 C bytes, at most 16 KiB here) still comes from cache.
pub const SMEM_BWD_MIN_C: usize = 2048;

/// (threads, dynamic shared bytes) for `softmax_backward_smem_f32` (f32 backward, y and dy read
/// once: dy in shared memory, y in registers), when an f32 row of C fits: C >= SMEM_BWD_MIN_C, the
/// C / 4 chunks at SX_VPT a thread in at most 1024 threads (C < 32772), and the dy row's 16 (C / 4)
/// bytes plus 1 KiB (the static part, with room) within the device's opt-in limit `smem_optin`
/// (227 KiB sm_90, 163 KiB sm_80, 99 KiB sm_86: C = 32000 needs 125 KiB). Otherwise None.
pub fn smem_backward_launch(c: usize, smem_optin: u32) -> Option<(u32, u32)> {
    let chunks = c / 4;
    let t = chunks.div_ceil(SX_VPT).next_power_of_two().clamp(32, 1024);
    let bytes = 16 * chunks;
    let fits = c >= SMEM_BWD_MIN_C && chunks <= t * SX_VPT && bytes + 1024 <= smem_optin as usize;
    fits.then_some((t as u32, bytes as u32))
}

fn expect_len(op: &'static str, what: &str, s: &CudaStorage, want: usize) -> Result<()> {
    if s.len == want {
        return Ok(());
    }
    Err(Error::bad_shape(op, &Shape(vec![s.len]), format!("{what} should hold {want} elements")))
}

fn grid(n: usize) -> (u32, u32, u32) {
    (n.min(MAX_GRID) as u32, 1, 1)
}

/// x: (N, C) -> softmax over C, or log-softmax when `log`.
pub fn softmax(x: &CudaStorage, n: usize, c: usize, log: bool) -> Result<CudaStorage> {
    x.float("softmax")?;
    expect_len("softmax", "x", x, n * c)?;
    let y = CudaStorage::alloc(x.dev(), x.dtype, n * c)?;
    if c == 0 {
        return Ok(y);
    }
    let dev = x.dev();
    let args = [x.arg(), y.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::I32(log as i32)];
    // SAFETY: x and y hold n*c elements of the kernel's type; rows are bounds-checked; the _rc
    // kernel's conditions are launch_rc's.
    match rc_threads(c, x.dtype) {
        Some(t) => launch_rc(dev, &dev.func(FAMILY, &typed("softmax", "softmax_rc", x.dtype)?)?, n, c, x.dtype, t, &args)?,
        None => dev.launch(&dev.func(FAMILY, &typed("softmax", "softmax", x.dtype)?)?, grid(n), (row_threads(c), 1, 1), 0, &args)?,
    }
    Ok(y)
}

/// y: the forward output, dy: (N, C) -> dx (N, C).
pub fn softmax_backward(y: &CudaStorage, dy: &CudaStorage, n: usize, c: usize, log: bool) -> Result<CudaStorage> {
    y.float("softmax_backward")?;
    dy.expect("softmax_backward", y.dtype)?;
    expect_len("softmax_backward", "y", y, n * c)?;
    expect_len("softmax_backward", "dy", dy, n * c)?;
    let dx = CudaStorage::alloc(y.dev(), y.dtype, n * c)?;
    if c == 0 {
        return Ok(dx);
    }
    let dev = y.dev();
    // bf16 with C % 8 == 0 and C <= 32768: the row-in-registers kernel (y and dy read once);
    // f32 rows that fit shared memory: the shared-memory kernel (y and dy read once).
    let smem = smem_backward_launch(c, dev.smem_optin).filter(|_| y.dtype == DType::F32);
    let (base, threads, bytes) = match (rc_threads(c, DType::F32).filter(|_| y.dtype == DType::BF16), smem) {
        (Some(t), _) => ("softmax_backward_rc", t, 0),
        (None, Some((t, bytes))) => ("softmax_backward_smem", t, bytes),
        (None, None) => ("softmax_backward", row_threads(c), 0),
    };
    let f = dev.func(FAMILY, &typed("softmax_backward", base, y.dtype)?)?;
    let args = [y.arg(), dy.arg(), dx.arg(), Arg::U64(n as u64), Arg::U64(c as u64), Arg::I32(log as i32)];
    // SAFETY: y, dy, dx hold n*c elements of the kernel's type; rows are bounds-checked; the _rc
    // kernel (bf16 only) gets C % 8 == 0 and C / 8 <= 4 * threads (rc_threads at 4 chunks a thread);
    // the _smem kernel (f32 only) gets C / 4 <= 8 * threads and 16 (C / 4) bytes of dynamic shared
    // memory within the device's opt-in limit (smem_backward_launch); buffers are 16-byte aligned.
    dev.launch(&f, grid(n), (threads, 1, 1), bytes, &args)?;
    Ok(dx)
}

fn check_targets(op: &'static str, targets: &CudaStorage, n: usize) -> Result<()> {
    targets.expect(op, DType::U32)?;
    expect_len(op, "targets", targets, n)
}

/// logits: (N, V), targets: (N) U32 -> one element: the mean loss over rows not ignored.
pub fn cross_entropy(logits: &CudaStorage, targets: &CudaStorage, n: usize, v: usize, ignore: u32) -> Result<CudaStorage> {
    logits.float("cross_entropy")?;
    expect_len("cross_entropy", "logits", logits, n * v)?;
    check_targets("cross_entropy", targets, n)?;
    let dev = logits.dev();
    let out = CudaStorage::alloc(dev, logits.dtype, 1)?;
    let rows = CudaStorage::alloc(dev, DType::F32, n.max(1))?;
    let (nn, vv, ig) = (Arg::U64(n as u64), Arg::U64(v as u64), Arg::U32(ignore));
    if v > 0 {
        let args = [logits.arg(), targets.arg(), rows.arg(), nn, vv, ig];
        // SAFETY: logits hold n*v elements, targets and rows n; rows are bounds-checked and a
        // target >= v is never used as an index; the _rc kernel's conditions are launch_rc's.
        match rc_threads(v, logits.dtype) {
            Some(t) => launch_rc(dev, &dev.func(FAMILY, &typed("cross_entropy", "xent_rows_rc", logits.dtype)?)?, n, v, logits.dtype, t, &args)?,
            None => dev.launch(&dev.func(FAMILY, &typed("cross_entropy", "xent_rows", logits.dtype)?)?, grid(n), (row_threads(v), 1, 1), 0, &args)?,
        }
    } else if n > 0 {
        // V = 0: every target must be ignored; rows get 0 (a non-ignored one is out of range).
        let z = dev.func("reduce", "zero_f32")?;
        // SAFETY: rows holds n f32.
        dev.launch(&z, (n.div_ceil(256) as u32, 1, 1), (256, 1, 1), 0, &[rows.arg(), nn])?;
    }
    let f = dev.func(FAMILY, &typed("cross_entropy", "xent_mean", logits.dtype)?)?;
    // SAFETY: one block reads n row losses and n targets and writes out[0].
    dev.launch(&f, (1, 1, 1), (1024, 1, 1), 0, &[rows.arg(), targets.arg(), out.arg(), nn, ig])?;
    Ok(out)
}

/// dloss: one element -> dlogits (N, V) = dloss (softmax - onehot) / count, ignored rows zero.
pub fn cross_entropy_backward(logits: &CudaStorage, targets: &CudaStorage, dloss: &CudaStorage, n: usize, v: usize, ignore: u32) -> Result<CudaStorage> {
    logits.float("cross_entropy_backward")?;
    dloss.float("cross_entropy_backward")?;
    expect_len("cross_entropy_backward", "logits", logits, n * v)?;
    expect_len("cross_entropy_backward", "dloss", dloss, 1)?;
    check_targets("cross_entropy_backward", targets, n)?;
    let dev = logits.dev();
    let dx = CudaStorage::alloc(dev, logits.dtype, n * v)?;
    if n * v == 0 {
        return Ok(dx);
    }
    let cnt = CudaStorage::alloc(dev, DType::F32, 1)?;
    let (nn, vv, ig) = (Arg::U64(n as u64), Arg::U64(v as u64), Arg::U32(ignore));
    let fc = dev.func(FAMILY, "xent_count")?;
    // SAFETY: one block reads n targets and writes cnt[0].
    dev.launch(&fc, (1, 1, 1), (1024, 1, 1), 0, &[targets.arg(), cnt.arg(), nn, ig])?;
    let args = [logits.arg(), targets.arg(), dloss.arg(), Arg::I32((dloss.dtype == DType::BF16) as i32), cnt.arg(), dx.arg(), nn, vv, ig];
    // SAFETY: logits and dx hold n*v elements, targets n, dloss 1 (of the flagged type), cnt 1;
    // the _rc kernel's conditions are launch_rc's.
    match rc_threads(v, logits.dtype) {
        Some(t) => launch_rc(dev, &dev.func(FAMILY, &typed("cross_entropy_backward", "xent_backward_rc", logits.dtype)?)?, n, v, logits.dtype, t, &args)?,
        None => dev.launch(&dev.func(FAMILY, &typed("cross_entropy_backward", "xent_backward", logits.dtype)?)?, grid(n), (row_threads(v), 1, 1), 0, &args)?,
    }
    Ok(dx)
}
