//! Launch wrappers for kernels/reduce.cu. Twin: backend/cpu/reduce.rs.
//! x is viewed as (outer, dim, inner) and reduced over dim -> (outer, inner), output in x's dtype
//! (argmax: U32); topk keeps the k best of each row (a block per row). Rows (inner == 1) go to a warp per row when dim is short, a block per row
//! otherwise; columns (inner > 1) to 32 x 8 blocks. All reductions have a fixed order.

use super::elementwise::typed;
use super::{blocks_for, Arg, CudaStorage};
use crate::backend::ReduceOp;
use crate::tensor::DType;
use crate::{Error, Result};

const FAMILY: &str = "reduce";
/// Rows at most this long get one warp each; longer ones one block of ROW_THREADS.
const WARP_ROW_MAX: usize = 1024;
const ROW_THREADS: u32 = 256;
/// Grid cap for the grid-stride row / column loops.
const MAX_GRID: usize = 65535 * 8;

fn check_len(op: &'static str, x: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<()> {
    if x.len != outer * dim * inner {
        return Err(Error::bad_shape(op, &crate::tensor::Shape(vec![x.len]), format!("x should hold outer*dim*inner = {outer}*{dim}*{inner} elements")));
    }
    Ok(())
}

/// y = 0 over `y.len` elements (an empty reduction). U32 zero has the f32 zero's bits.
fn zero(y: &CudaStorage) -> Result<()> {
    let dev = y.dev();
    let name = if y.dtype == DType::BF16 { "zero_bf16" } else { "zero_f32" };
    let f = dev.func(FAMILY, name)?;
    // SAFETY: y holds y.len elements of the kernel's element size (4 bytes for F32/U32, 2 for BF16).
    dev.launch(&f, (blocks_for(y.len, 256), 1, 1), (256, 1, 1), 0, &[y.arg(), Arg::U64(y.len as u64)])
}

pub fn reduce(op: ReduceOp, x: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    x.float("reduce")?;
    check_len("reduce", x, outer, dim, inner)?;
    let y = CudaStorage::alloc(x.dev(), x.dtype, outer * inner)?;
    if y.len == 0 {
        return Ok(y);
    }
    if dim == 0 {
        zero(&y)?;
        return Ok(y);
    }
    let code = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Max => 1,
    };
    let dev = x.dev();
    let (o, d, i) = (Arg::U64(outer as u64), Arg::U64(dim as u64), Arg::U64(inner as u64));
    // SAFETY (all launches below): x holds outer*dim*inner elements and y outer*inner of the
    // kernel's type; every kernel bounds-checks its row / column indices.
    if inner == 1 && dim <= WARP_ROW_MAX {
        let f = dev.func(FAMILY, &typed("reduce", "reduce_rows_warp", x.dtype)?)?;
        let grid = outer.div_ceil(8) as u32;
        dev.launch(&f, (grid, 1, 1), (256, 1, 1), 0, &[x.arg(), y.arg(), o, d, Arg::I32(code)])?;
    } else if inner == 1 {
        let f = dev.func(FAMILY, &typed("reduce", "reduce_rows_block", x.dtype)?)?;
        let grid = outer.min(MAX_GRID) as u32;
        // bf16 rows of 16-byte pieces: half the threads, so each keeps as many loads in flight as
        // an f32 row's (the H200 read bf16 rows of 4096 at 0.57-0.64 of the copy rate, f32 0.88-0.94).
        let threads = if x.dtype == DType::BF16 && dim % 8 == 0 { ROW_THREADS / 2 } else { ROW_THREADS };
        dev.launch(&f, (grid, 1, 1), (threads, 1, 1), 0, &[x.arg(), y.arg(), o, d, Arg::I32(code)])?;
    } else if inner % (16 / x.dtype.size_in_bytes()) == 0 {
        // 16-byte column vectors: W = 4 (f32) or 8 (bf16) columns per thread, 32 W per tile.
        let w = 16 / x.dtype.size_in_bytes();
        let f = dev.func(FAMILY, &typed("reduce", "reduce_cols_vec", x.dtype)?)?;
        let grid = (outer * inner.div_ceil(32 * w)).min(MAX_GRID) as u32;
        // SAFETY: x holds outer*dim*inner elements, y outer*inner; inner % W == 0 keeps every
        // 16-byte access aligned and inside its row; tiles are bounds-checked.
        dev.launch(&f, (grid, 1, 1), (32, 8, 1), 0, &[x.arg(), y.arg(), o, d, i, Arg::I32(code)])?;
    } else {
        let f = dev.func(FAMILY, &typed("reduce", "reduce_cols", x.dtype)?)?;
        let grid = (outer * inner.div_ceil(32)).min(MAX_GRID) as u32;
        dev.launch(&f, (grid, 1, 1), (32, 8, 1), 0, &[x.arg(), y.arg(), o, d, i, Arg::I32(code)])?;
    }
    Ok(y)
}

/// Index of the largest element along dim (the first on ties), as U32.
pub fn argmax(x: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    x.float("argmax")?;
    check_len("argmax", x, outer, dim, inner)?;
    if dim > u32::MAX as usize {
        return Err(Error::range("argmax", format!("dim {dim} does not fit a U32 index")));
    }
    let y = CudaStorage::alloc(x.dev(), DType::U32, outer * inner)?;
    if y.len == 0 {
        return Ok(y);
    }
    if dim == 0 {
        zero(&y)?;
        return Ok(y);
    }
    let dev = x.dev();
    let (o, d, i) = (Arg::U64(outer as u64), Arg::U64(dim as u64), Arg::U64(inner as u64));
    // SAFETY: x holds outer*dim*inner elements, y outer*inner u32; dim >= 1 so row[0] exists.
    if inner == 1 {
        let f = dev.func(FAMILY, &typed("argmax", "argmax_rows", x.dtype)?)?;
        let threads = if dim <= 64 { 32 } else { ROW_THREADS };
        dev.launch(&f, (outer.min(MAX_GRID) as u32, 1, 1), (threads, 1, 1), 0, &[x.arg(), y.arg(), o, d])?;
    } else {
        let f = dev.func(FAMILY, &typed("argmax", "argmax_cols", x.dtype)?)?;
        let grid = (outer * inner.div_ceil(32)).min(MAX_GRID) as u32;
        dev.launch(&f, (grid, 1, 1), (32, 8, 1), 0, &[x.arg(), y.arg(), o, d, i])?;
    }
    Ok(y)
}

/// The k largest elements of each row of x (rows, n), best first (the CPU's topk): [values
/// (rows, k) in x's dtype, indices (rows, k) U32]; 1 <= k <= min(n, TOPK_MAX), checked one level up.
pub fn topk(x: &CudaStorage, rows: usize, n: usize, k: usize) -> Result<Vec<CudaStorage>> {
    x.float("topk")?;
    check_len("topk", x, rows, n, 1)?;
    if n > u32::MAX as usize || k == 0 || k > crate::backend::cpu::reduce::TOPK_MAX {
        return Err(Error::range("topk", format!("n {n} must fit a U32 index and k {k} be in 1..={}", crate::backend::cpu::reduce::TOPK_MAX)));
    }
    let vals = CudaStorage::alloc(x.dev(), x.dtype, rows * k)?;
    let idx = CudaStorage::alloc(x.dev(), DType::U32, rows * k)?;
    if rows > 0 {
        let dev = x.dev();
        let f = dev.func(FAMILY, &typed("topk", "topk_rows", x.dtype)?)?;
        let threads = if n <= 64 { 32 } else { ROW_THREADS };
        // SAFETY: x holds rows*n elements, vals and idx rows*k each; k <= TOPK_MAX, the kernel's
        // per-thread list length.
        let args = [x.arg(), vals.arg(), idx.arg(), Arg::U64(rows as u64), Arg::U64(n as u64), Arg::I32(k as i32)];
        dev.launch(&f, (rows.min(MAX_GRID) as u32, 1, 1), (threads, 1, 1), 0, &args)?;
    }
    Ok(vec![vals, idx])
}
