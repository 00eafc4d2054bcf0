//! Launch wrappers for kernels/layout.cu. Twin: backend/cpu/layout.rs.
//!
//! The moves (permute, narrow, concat, index_select) are dtype-agnostic: they pick the widest
//! "word" (2, 4, 8 or 16 bytes) that divides every contiguous run, and 32-bit index arithmetic when
//! every offset fits. index_add is the deterministic adjoint of index_select: ids are bucketed on
//! the device (counting sort, buckets sorted by j), then each output row sums its bucket in order.

use super::{blocks_for, Arg, CudaStorage, Dev};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};
use std::sync::Arc;

const FAMILY: &str = "layout";
const THREADS: u32 = 256;

/// The widest word (bytes) that is a multiple of the element size `es` and divides every byte
/// count in `runs` (row lengths, pitches, offsets).
fn word(es: usize, runs: &[usize]) -> usize {
    [16, 8, 4, 2].into_iter().find(|&w| w % es == 0 && runs.iter().all(|r| r % w == 0)).unwrap_or(es)
}

/// Is 32-bit index arithmetic safe for offsets below `max`?
fn fits_i32(max: usize) -> bool {
    max < (1usize << 31)
}

/// An index argument of the width the kernel instance takes.
fn idx(v: usize, i32_: bool) -> Arg {
    if i32_ {
        Arg::U32(v as u32)
    } else {
        Arg::U64(v as u64)
    }
}

/// `<base>_w<bytes>_<i32|i64>`
fn name(base: &str, w: usize, i32_: bool) -> String {
    format!("{base}_w{w}_{}", if i32_ { "i32" } else { "i64" })
}

/// 2-D launch shape for `rows` x `cols` work items: 256 threads, x over columns (as many as
/// there are, up to 256, so short rows share a warp), y over rows; both grid-stride in the kernels.
fn grid2d(rows: usize, cols: usize) -> ((u32, u32, u32), (u32, u32, u32)) {
    grid2d_within(rows, cols, THREADS as usize)
}

/// grid2d with at most `max_bx` threads across a row, so a block takes THREADS / max_bx rows at
/// once and each thread several column words of its row (the loops are grid-stride).
fn grid2d_within(rows: usize, cols: usize, max_bx: usize) -> ((u32, u32, u32), (u32, u32, u32)) {
    let bx = cols.next_power_of_two().clamp(1, max_bx);
    let by = THREADS as usize / bx;
    let gx = cols.div_ceil(bx).clamp(1, 65535) as u32;
    let gy = rows.div_ceil(by).clamp(1, 65535) as u32;
    let gx = if rows == 0 || cols == 0 { 0 } else { gx };
    ((gx, gy, 1), (bx as u32, by as u32, 1))
}

/// y = x.permute(perm): y's dim i is x's dim `perm[i]`.
#[allow(clippy::too_many_arguments)]
pub fn permute(x: &CudaStorage, shape: &Shape, perm: &[usize]) -> Result<CudaStorage> {
    let n = shape.elem_count();
    if x.len != n {
        return Err(Error::bad_shape("permute", shape, format!("x holds {} elements", x.len)));
    }
    let mut seen = vec![false; shape.rank()];
    if perm.len() != shape.rank() || perm.iter().any(|&p| p >= shape.rank() || std::mem::replace(&mut seen[p], true)) {
        return Err(Error::bad_shape("permute", shape, format!("{perm:?} is not a permutation of its axes")));
    }
    let y = CudaStorage::alloc(x.dev(), x.dtype, n)?;
    if n == 0 {
        return Ok(y);
    }
    // Output dims with their source strides; drop size-1 dims, merge dims contiguous in x.
    let xs = shape.strides();
    let (mut dims, mut st): (Vec<usize>, Vec<usize>) = (vec![], vec![]);
    for &p in perm {
        let (d, s) = (shape.0[p], xs[p]);
        if d == 1 {
            continue;
        }
        match (dims.last_mut(), st.last_mut()) {
            (Some(ld), Some(ls)) if *ls == s * d => {
                *ld *= d;
                *ls = s;
            }
            _ => {
                dims.push(d);
                st.push(s);
            }
        }
    }
    if dims.is_empty() {
        (dims, st) = (vec![1], vec![1]);
    }
    let es = x.dtype.size_in_bytes();
    let r = dims.len();
    if st[r - 1] != 1 && r <= 8 {
        if let Some(q) = st.iter().position(|&s| s == 1) {
            return permute_tiled(x, y, &dims, &st, q);
        }
    }
    // Widen the word when the innermost output dim is contiguous in x.
    let w = if st[r - 1] == 1 {
        let runs: Vec<usize> = std::iter::once(dims[r - 1] * es).chain(st[..r - 1].iter().map(|s| s * es)).collect();
        word(es, &runs)
    } else {
        es
    };
    let k = w / es;
    dims[r - 1] /= k;
    for s in &mut st[..r - 1] {
        *s /= k;
    }
    if r > 8 {
        return Err(Error::bad_shape("permute", shape, "CUDA permute supports rank <= 8 (after merging contiguous dims)"));
    }
    let mut words = [0u32; 32];
    words[0] = r as u32;
    for d in 0..r {
        words[1 + d] = dims[d] as u32;
        words[16 + 2 * d] = st[d] as u32;
        words[17 + 2 * d] = (st[d] as u64 >> 32) as u32;
    }
    let nw = n / k;
    let small = fits_i32(nw);
    let dev = x.dev();
    let f = dev.func(FAMILY, &name("permute", w, small))?;
    let grid = (blocks_for(nw, THREADS), 1, 1);
    dev.launch(&f, grid, (THREADS, 1, 1), 0, &[x.arg(), y.arg(), idx(nw, small), Arg::Words(words)])?;
    Ok(y)
}

/// permute when the innermost output dim is strided in x: 32 x 32 tiles of (output dim q, the
/// last output dim) go through shared memory. `dims`/`st`: merged output dims, their x strides;
/// st[q] == 1.
fn permute_tiled(x: &CudaStorage, y: CudaStorage, dims: &[usize], st: &[usize], q: usize) -> Result<CudaStorage> {
    let r = dims.len();
    let mut ys = vec![1usize; r]; // y is contiguous in the output order
    for d in (0..r - 1).rev() {
        ys[d] = ys[d + 1] * dims[d + 1];
    }
    let mut words = [0u32; 32]; // struct Batch { rank, dim[6], pad, xs[6], ys[6] }
    let batch: Vec<usize> = (0..r - 1).filter(|&d| d != q).collect();
    words[0] = batch.len() as u32;
    let mut count = 1;
    for (k, &d) in batch.iter().enumerate() {
        words[1 + k] = dims[d] as u32;
        words[8 + 2 * k] = st[d] as u32;
        words[9 + 2 * k] = (st[d] as u64 >> 32) as u32;
        words[20 + 2 * k] = ys[d] as u32;
        words[21 + 2 * k] = (ys[d] as u64 >> 32) as u32;
        count *= dims[d];
    }
    let (na, nq) = (dims[r - 1], dims[q]);
    let w = x.dtype.size_in_bytes();
    // 2-byte elements with both tile dims even: 64 x 64 tiles moved as 4-byte pairs (every x
    // stride is then a multiple of nq, every y stride of na, so each pair is 4-byte aligned).
    // Both tile dims multiples of 16 / w (8 bf16, 4 f32): 64 x 64 tiles moved as 16-byte vectors
    // (buffers are whole allocations, so 16-byte aligned, and so is every access, as above).
    let v16 = 16 / w;
    let (base, edge) = if (w == 2 || w == 4) && na % v16 == 0 && nq % v16 == 0 {
        ("permute_tiled16", 64)
    } else if w == 2 && na % 2 == 0 && nq % 2 == 0 {
        ("permute_tiled2", 64)
    } else {
        ("permute_tiled", 32)
    };
    let tiles = count * na.div_ceil(edge) * nq.div_ceil(edge);
    let small = fits_i32(x.len + tiles);
    let dev = x.dev();
    let f = dev.func(FAMILY, &name(base, w, small))?;
    // permute_tiled16 moves two bf16 tiles a step (NT in kernels/layout.cu)
    let per_block = if base == "permute_tiled16" && w == 2 { 2 } else { 1 };
    let grid = (tiles.div_ceil(per_block).clamp(1, 1 << 20) as u32, 1, 1);
    let args = [x.arg(), y.arg(), idx(na, small), idx(nq, small), idx(st[r - 1], small), idx(ys[q], small), idx(tiles, small), Arg::Words(words)];
    dev.launch(&f, grid, (32, 8, 1), 0, &args)?;
    Ok(y)
}

/// One strided block copy, all sizes in elements: y[r * ypitch + yoff + c] = x[r * xpitch + xoff + c]
/// for r < rows, c < cols.
#[allow(clippy::too_many_arguments)]
fn copy2d(x: &CudaStorage, y: &CudaStorage, rows: usize, cols: usize, xpitch: usize, xoff: usize, ypitch: usize, yoff: usize) -> Result<()> {
    let es = x.dtype.size_in_bytes();
    let w = word(es, &[cols * es, xpitch * es, xoff * es, ypitch * es, yoff * es]);
    let k = w / es;
    let small = fits_i32(x.len.max(y.len) / k + 1);
    let dev = x.dev();
    let f = dev.func(FAMILY, &name("copy2d", w, small))?;
    let (grid, block) = grid2d(rows, cols / k);
    let a = |v: usize| idx(v / k, small);
    dev.launch(&f, grid, block, 0, &[x.arg(), y.arg(), idx(rows, small), a(cols), a(xpitch), a(xoff), a(ypitch), a(yoff)])
}

/// Elements [start, start + len) along the middle axis of x viewed as (outer, dim, inner).
#[allow(clippy::too_many_arguments)]
pub fn narrow(x: &CudaStorage, outer: usize, dim: usize, inner: usize, start: usize, len: usize) -> Result<CudaStorage> {
    let shape = || Shape(vec![outer, dim, inner]);
    if x.len != outer * dim * inner {
        return Err(Error::bad_shape("narrow", &shape(), format!("x holds {} elements", x.len)));
    }
    if start + len > dim {
        return Err(Error::range("narrow", format!("[{start}, {}) along an axis of {dim}", start + len)));
    }
    let y = CudaStorage::alloc(x.dev(), x.dtype, outer * len * inner)?;
    copy2d(x, &y, outer, len * inner, dim * inner, start * inner, len * inner, 0)?;
    Ok(y)
}

/// Concatenate along the middle axis; part i is (outer, `dims[i]`, inner). One launch per part.
#[allow(clippy::too_many_arguments)]
pub fn concat(parts: &[&CudaStorage], outer: usize, dims: &[usize], inner: usize) -> Result<CudaStorage> {
    let Some(first) = parts.first() else {
        return Err(Error::bad_shape("concat", &Shape(vec![outer, 0, inner]), "no parts to concatenate"));
    };
    if parts.len() != dims.len() {
        return Err(Error::bad_shape("concat", &Shape(dims.to_vec()), format!("{} parts for {} sizes", parts.len(), dims.len())));
    }
    let total: usize = dims.iter().sum();
    let y = CudaStorage::alloc(first.dev(), first.dtype, outer * total * inner)?;
    let mut before = 0;
    for (part, &d) in parts.iter().zip(dims) {
        part.expect("concat", first.dtype)?;
        if part.len != outer * d * inner {
            return Err(Error::bad_shape("concat", &Shape(vec![outer, d, inner]), format!("the part holds {} elements", part.len)));
        }
        copy2d(part, &y, outer, d * inner, d * inner, 0, total * inner, before * inner)?;
        before += d;
    }
    Ok(y)
}

/// `y[o, j, i] = x[o, ids[j], i]`: x (outer, dim, inner), ids (n) U32 -> (outer, n, inner).
/// Ids are range-checked by the caller (tensor::view::check_ids); an id >= dim gives a zero row.
#[allow(clippy::too_many_arguments)]
pub fn index_select(x: &CudaStorage, ids: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    ids.expect("index_select", DType::U32)?;
    if x.len != outer * dim * inner {
        return Err(Error::bad_shape("index_select", &Shape(vec![outer, dim, inner]), format!("x holds {} elements", x.len)));
    }
    let n = ids.len;
    let y = CudaStorage::alloc(x.dev(), x.dtype, outer * n * inner)?;
    let es = x.dtype.size_in_bytes();
    let w = word(es, &[inner * es]);
    let k = w / es;
    let small = fits_i32(x.len.max(y.len) / k + 1);
    let dev = x.dev();
    let f = dev.func(FAMILY, &name("gather", w, small))?;
    let (grid, block) = grid2d(outer * n, inner / k);
    let args = [x.arg(), ids.arg(), y.arg(), idx(outer, small), idx(n, small), idx(dim, small), idx(inner / k, small)];
    dev.launch(&f, grid, block, 0, &args)?;
    Ok(y)
}

/// The ids of each target row in increasing j: (offsets (dim + 1), order (n)) as a CSR list.
/// Ids >= dim are left out.
fn buckets(dev: &Arc<Dev>, ids: &CudaStorage, dim: usize) -> Result<(CudaStorage, CudaStorage)> {
    let n = ids.len;
    if n >= 1 << 31 || dim >= 1 << 31 {
        return Err(Error::bad_shape("index_add", &Shape(vec![n, dim]), "ids and dim must stay below 2^31"));
    }
    let offsets = CudaStorage::zeros(dev, DType::U32, dim + 1)?;
    let cursor = CudaStorage::alloc(dev, DType::U32, dim)?;
    let tmp = CudaStorage::alloc(dev, DType::U32, n)?;
    let order = CudaStorage::alloc(dev, DType::U32, n)?;
    let (nn, dd) = (Arg::U32(n as u32), Arg::U32(dim as u32));
    let grid = (blocks_for(n, THREADS), 1, 1);
    let blk = (THREADS, 1, 1);
    // SAFETY (all): buffers sized above (part: pieces + 1); ids < dim are the only ones used as indices.
    dev.launch(&dev.func(FAMILY, "bucket_count")?, grid, blk, 0, &[ids.arg(), nn, dd, offsets.arg()])?;
    let pieces = dim.div_ceil(1024);
    if pieces <= 1 {
        dev.launch(&dev.func(FAMILY, "bucket_scan")?, (1, 1, 1), (1024, 1, 1), 0, &[offsets.arg(), cursor.arg(), dd])?;
    } else {
        // every piece of 1024 counts at once, then the piece totals, then each piece's offset
        let part = CudaStorage::alloc(dev, DType::U32, pieces + 1)?;
        let np = Arg::U32(pieces as u32);
        dev.launch(&dev.func(FAMILY, "bucket_scan_local")?, (pieces as u32, 1, 1), (1024, 1, 1), 0, &[offsets.arg(), dd, part.arg()])?;
        dev.launch(&dev.func(FAMILY, "bucket_scan")?, (1, 1, 1), (1024, 1, 1), 0, &[part.arg(), Arg::Ptr(0), np])?;
        dev.launch(&dev.func(FAMILY, "bucket_scan_add")?, (pieces as u32, 1, 1), (1024, 1, 1), 0, &[offsets.arg(), cursor.arg(), dd, part.arg()])?;
    }
    dev.launch(&dev.func(FAMILY, "bucket_place")?, grid, blk, 0, &[ids.arg(), nn, dd, cursor.arg(), tmp.arg()])?;
    dev.launch(&dev.func(FAMILY, "bucket_order")?, grid, blk, 0, &[ids.arg(), nn, dd, offsets.arg(), tmp.arg(), order.arg()])?;
    Ok((offsets, order))
}

/// Adjoint of index_select: `dx[o, ids[j], i] += dy[o, j, i]`, summed in order of j (deterministic,
/// no float atomics). dy (outer, n, inner) F32 or BF16 -> dx (outer, dim, inner), same dtype.
#[allow(clippy::too_many_arguments)]
pub fn index_add(dy: &CudaStorage, ids: &CudaStorage, outer: usize, dim: usize, inner: usize) -> Result<CudaStorage> {
    ids.expect("index_add", DType::U32)?;
    let t = dy.float("index_add")?.dtype;
    let n = ids.len;
    if dy.len != outer * n * inner {
        return Err(Error::bad_shape("index_add", &Shape(vec![outer, n, inner]), format!("dy holds {} elements", dy.len)));
    }
    let dev = dy.dev();
    let dx = CudaStorage::alloc(dev, t, outer * dim * inner)?;
    if dx.len == 0 {
        return Ok(dx);
    }
    let (offsets, order) = buckets(dev, ids, dim)?;
    // 16-byte column vectors: 8 bf16 (index_add_bf16_v8) or 4 f32; else 4 (8 bytes of bf16) or 1.
    let vec = if t == DType::BF16 && inner % 8 == 0 { 8 } else if inner % 4 == 0 { 4 } else { 1 };
    let kname = format!("{}_v{vec}", super::elementwise::typed("index_add", "index_add", t)?);
    let f = dev.func(FAMILY, &kname)?;
    // 64 threads across a row, 4 rows a block: a row is mostly one offsets load and stores (the
    // bucket is empty for most rows of an embedding table), so a block of one row and one word a
    // thread spent its life waiting on that load (H200: 0.50 of the copy rate at V = 128256, with
    // (2, 65535) blocks of (256, 1)); now each thread has several stores in flight a row.
    let (grid, block) = grid2d_within(outer * dim, inner / vec, 64);
    let args = [dy.arg(), order.arg(), offsets.arg(), dx.arg(), Arg::U64(outer as u64), Arg::U64(n as u64), Arg::U64(dim as u64), Arg::U64(inner as u64)];
    dev.launch(&f, grid, block, 0, &args)?;
    Ok(dx)
}
