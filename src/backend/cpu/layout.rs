//! Data movement: permute (a transposing copy), narrow (a slice along one axis), concat, and
//! index_select with its scatter-add adjoint. Dtype-agnostic: works on any element type.

use super::CpuStorage;
use crate::tensor::{DType, Shape};
use crate::Result;

/// Apply `f` to the typed buffer(s) whatever the dtype; all inputs must share one dtype.
macro_rules! any_dtype {
    ($name:expr, ($($s:ident),+), $body:expr) => {{
        use CpuStorage as S;
        match ($($s,)+) {
            ($(S::F32($s),)+) => Ok(S::F32($body)),
            ($(S::F64($s),)+) => Ok(S::F64($body)),
            ($(S::BF16($s),)+) => Ok(S::BF16($body)),
            ($(S::U32($s),)+) => Ok(S::U32($body)),
            #[allow(unreachable_patterns)]
            ($($s,)+) => Err(super::dtype_error($name, &[$($s.dtype()),+])),
        }
    }};
}

/// y = x.permute(perm): y's dim i is x's dim `perm[i]`.
/// Walks y row by row (its last dim); each row of x is a strided run, or a plain slice copy when
/// the last dim stays last (the head split (B, T, H, D) -> (B, H, T, D) is rows of D).
pub fn permute(x: &CpuStorage, shape: &Shape, perm: &[usize]) -> Result<CpuStorage> {
    let xs = shape.strides();
    let out: Vec<usize> = perm.iter().map(|&p| shape.0[p]).collect();
    let st: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    any_dtype!("permute", (x), permute_t(x, &out, &st))
}

/// y (dims `out`, row-major) from x read at strides `st`.
fn permute_t<T: Copy>(x: &[T], out: &[usize], st: &[usize]) -> Vec<T> {
    let n: usize = out.iter().product();
    let mut y = Vec::with_capacity(n);
    let Some((&cols, lead)) = out.split_last() else { return x[..n].to_vec() };
    let step = st[out.len() - 1];
    if n == 0 {
        return y;
    }
    // Odometer over the leading dims: idx holds the row's position, off its offset in x.
    let mut idx = vec![0usize; lead.len()];
    let mut off = 0usize;
    for _ in 0..n / cols {
        if step == 1 {
            y.extend_from_slice(&x[off..off + cols]);
        } else {
            y.extend((0..cols).map(|j| x[off + j * step]));
        }
        for d in (0..lead.len()).rev() {
            idx[d] += 1;
            off += st[d];
            if idx[d] < lead[d] {
                break;
            }
            off -= st[d] * lead[d];
            idx[d] = 0;
        }
    }
    y
}

/// Elements [start, start + len) along `axis` of x viewed as (outer, dim, inner).
pub fn narrow(x: &CpuStorage, outer: usize, dim: usize, inner: usize, start: usize, len: usize) -> Result<CpuStorage> {
    any_dtype!("narrow", (x), {
        let mut y = Vec::with_capacity(outer * len * inner);
        for o in 0..outer {
            y.extend_from_slice(&x[(o * dim + start) * inner..(o * dim + start + len) * inner]);
        }
        y
    })
}

/// Concatenate along an axis; parts are (outer, dim_i, inner). The output is appended in order
/// (never zero-filled first).
pub fn concat(parts: &[&CpuStorage], outer: usize, dims: &[usize], inner: usize) -> Result<CpuStorage> {
    let dtype = parts[0].dtype();
    if let Some(p) = parts.iter().find(|p| p.dtype() != dtype) {
        return Err(super::dtype_error("concat", &[dtype, p.dtype()]));
    }
    let total: usize = dims.iter().sum();
    macro_rules! join {
        ($variant:ident) => {{
            let xs: Vec<&[_]> = parts.iter().map(|p| match p {
                CpuStorage::$variant(x) => &x[..],
                _ => unreachable!("dtypes checked above"),
            }).collect();
            let mut y = Vec::with_capacity(outer * total * inner);
            for o in 0..outer {
                for (x, &d) in xs.iter().zip(dims) {
                    y.extend_from_slice(&x[o * d * inner..(o + 1) * d * inner]);
                }
            }
            CpuStorage::$variant(y)
        }};
    }
    Ok(match dtype {
        DType::F32 => join!(F32),
        DType::F64 => join!(F64),
        DType::BF16 => join!(BF16),
        DType::U32 => join!(U32),
    })
}

/// `y[o, j, i] = x[o, ids[j], i]`; ids already range-checked against `dim`.
pub fn index_select(x: &CpuStorage, ids: &[u32], outer: usize, dim: usize, inner: usize) -> Result<CpuStorage> {
    any_dtype!("index_select", (x), {
        let mut y = Vec::with_capacity(outer * ids.len() * inner);
        for o in 0..outer {
            for &j in ids {
                let s = (o * dim + j as usize) * inner;
                y.extend_from_slice(&x[s..s + inner]);
            }
        }
        y
    })
}

/// Adjoint of index_select: `dx[o, ids[j], i] += dy[o, j, i]`, in order of j (deterministic).
pub fn index_add(dy: &CpuStorage, ids: &[u32], outer: usize, dim: usize, inner: usize) -> Result<CpuStorage> {
    crate::float_op!("index_add", (dy), {
        let mut dx = vec![Default::default(); outer * dim * inner];
        for o in 0..outer {
            for (j, &id) in ids.iter().enumerate() {
                let (d, s) = ((o * dim + id as usize) * inner, (o * ids.len() + j) * inner);
                for i in 0..inner {
                    dx[d + i] += dy[s + i];
                }
            }
        }
        dx
    })
}
