//! The CPU backend: the reference implementation of every op, and the spec each CUDA kernel is
//! checked against. Plain loops over dense row-major buffers, rayon across rows, faer for the
//! matrix products. Every float op is written once, generic over `Real` (f32 for work, f64 for
//! gradchecks). Each file is named after its kernels/*.cu twin.

use crate::tensor::DType;
use crate::{Error, Result};
use half::bf16;

pub mod adamw;
pub mod alloc;
pub mod attention;
pub mod elementwise;
pub mod embedding;
pub mod fast_exp;
pub mod layout;
pub mod linear_attention;
pub mod linear_attention_varlen;
pub mod lora;
pub mod lora_multi_adapter;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod rope;
pub mod softmax_xent;

/// A dense buffer in host memory.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    BF16(Vec<bf16>),
    U32(Vec<u32>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::U32(_) => DType::U32,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::U32(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn zeros(dtype: DType, n: usize) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::F64 => CpuStorage::F64(vec![0.0; n]),
            DType::BF16 => CpuStorage::BF16(vec![bf16::ZERO; n]),
            DType::U32 => CpuStorage::U32(vec![0; n]),
        }
    }
    /// Every element as f64 (exact for all dtypes).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            CpuStorage::F32(v) => v.iter().map(|&x| x as f64).collect(),
            CpuStorage::F64(v) => v.clone(),
            CpuStorage::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            CpuStorage::U32(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
    /// Convert to another dtype (round-to-nearest-even for bf16, saturating cast to u32).
    pub fn cast(&self, to: DType) -> CpuStorage {
        if self.dtype() == to {
            return self.clone();
        }
        match (self, to) {
            (CpuStorage::F32(v), DType::BF16) => CpuStorage::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
            (CpuStorage::BF16(v), DType::F32) => CpuStorage::F32(v.iter().map(|x| x.to_f32()).collect()),
            (CpuStorage::F64(v), DType::F32) => CpuStorage::F32(v.iter().map(|&x| x as f32).collect()),
            (CpuStorage::F64(v), DType::BF16) => CpuStorage::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
            _ => {
                let v = self.to_f64_vec();
                match to {
                    DType::F64 => CpuStorage::F64(v),
                    DType::F32 => CpuStorage::F32(v.iter().map(|&x| x as f32).collect()),
                    DType::BF16 => CpuStorage::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
                    DType::U32 => CpuStorage::U32(v.iter().map(|&x| x as u32).collect()),
                }
            }
        }
    }
    pub fn as_u32(&self, op: &'static str) -> Result<&[u32]> {
        match self {
            CpuStorage::U32(v) => Ok(v),
            other => Err(Error::DTypeMismatch { op, expected: DType::U32, got: other.dtype() }),
        }
    }
}

/// The float types CPU kernels are written for. A small trait of our own (not num-traits) so that
/// method names never clash with faer's.
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::iter::Sum
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// e^x (for f32: fast_exp.rs, within 2 ulp, vectorisable)
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, o: Self) -> Self;
    fn is_nan(self) -> bool;
    /// C (m x n) = alpha * op(A) op(B) + (accumulate ? C : 0), row-major, op = optional transpose.
    /// See matmul.rs.
    #[allow(clippy::too_many_arguments)]
    fn gemm(c: &mut [Self], a: &[Self], b: &[Self], m: usize, k: usize, n: usize, ta: bool, tb: bool, alpha: Self, accumulate: bool, parallel: bool);
}

macro_rules! impl_real {
    ($t:ty, $exp:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            #[inline(always)]
            fn from_f64(x: f64) -> Self { x as $t }
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline(always)]
            fn exp(self) -> Self { $exp(self) }
            #[inline(always)]
            fn ln(self) -> Self { <$t>::ln(self) }
            #[inline(always)]
            fn sqrt(self) -> Self { <$t>::sqrt(self) }
            #[inline(always)]
            fn tanh(self) -> Self { <$t>::tanh(self) }
            #[inline(always)]
            fn abs(self) -> Self { <$t>::abs(self) }
            #[inline(always)]
            fn max(self, o: Self) -> Self { <$t>::max(self, o) }
            #[inline(always)]
            fn is_nan(self) -> bool { <$t>::is_nan(self) }
            fn gemm(c: &mut [Self], a: &[Self], b: &[Self], m: usize, k: usize, n: usize, ta: bool, tb: bool, alpha: Self, accumulate: bool, parallel: bool) {
                matmul::gemm_faer(c, a, b, m, k, n, ta, tb, alpha, accumulate, parallel)
            }
        }
    };
}
// f32 work uses the vectorisable exp of fast_exp.rs; f64 (gradchecks, references) keeps libm's.
impl_real!(f32, fast_exp::exp_f32);
impl_real!(f64, f64::exp);

/// Run a generic float kernel on matching F32 or F64 storages and wrap the result.
/// `float_op!("name", (a, b), expr)` binds `a`, `b` to `&[T]` and evaluates `expr` (a `Vec<T>`)
/// once per float type. Any other dtype combination is an error naming the op.
#[macro_export]
macro_rules! float_op {
    ($name:expr, ($($s:ident),+), $body:expr) => {{
        use $crate::backend::cpu::CpuStorage as S;
        match ($($s,)+) {
            ($(S::F32($s),)+) => Ok(S::F32($body)),
            ($(S::F64($s),)+) => Ok(S::F64($body)),
            ($($s,)+) => Err($crate::backend::cpu::dtype_error($name, &[$($s.dtype()),+])),
        }
    }};
}

/// Like `float_op!` for kernels that return several buffers (`Vec<Vec<T>>`).
#[macro_export]
macro_rules! float_op_multi {
    ($name:expr, ($($s:ident),+), $body:expr) => {{
        use $crate::backend::cpu::CpuStorage as S;
        match ($($s,)+) {
            ($(S::F32($s),)+) => Ok($body.into_iter().map(S::F32).collect::<Vec<_>>()),
            ($(S::F64($s),)+) => Ok($body.into_iter().map(S::F64).collect::<Vec<_>>()),
            ($($s,)+) => Err($crate::backend::cpu::dtype_error($name, &[$($s.dtype()),+])),
        }
    }};
}

pub fn dtype_error(op: &'static str, dtypes: &[DType]) -> Error {
    let first = dtypes[0];
    match dtypes.iter().find(|&&d| d != first) {
        Some(&d) => Error::DTypeMismatch { op, expected: first, got: d },
        None => Error::UnsupportedDType { op, dtype: first, detail: "the CPU computes in F32 or F64; cast first" },
    }
}

/// Rows of at least this many elements of work are worth splitting across rayon threads.
pub const PAR_MIN: usize = 1 << 14;

/// Refuse buffers whose length does not match the dimensions (never index out of bounds).
pub fn expect_len(op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::bad_shape(op, &crate::tensor::Shape(vec![got]), format!("{what} should hold {want} elements")))
}

/// sum_j f(a_j, b_j, c_j) in f64 over equal-length rows (pass a row twice or thrice when fewer
/// are needed), as 8 interleaved partial sums added in a fixed order: deterministic, and without
/// one long chain of dependent adds (which kept row statistics from vectorising).
#[inline(always)]
pub fn lane_sum<T: Real>(a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb, cc) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).zip(cc.remainder()).map(|((&x, &y), &z)| f(x, y, z)).sum();
    for ((x, y), z) in ca.zip(cb).zip(cc) {
        for l in 0..8 {
            acc[l] += f(x[l], y[l], z[l]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// max_j x_j (NEG_INF for an empty row) as 8 interleaved partial maxima: the same value as a
/// sequential fold (max is exact), without its chain of dependent compares.
#[inline(always)]
pub fn lane_max<T: Real>(x: &[T]) -> T {
    let mut acc = [T::NEG_INF; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(T::NEG_INF, |a, &b| a.max(b));
    for c in chunks {
        for l in 0..8 {
            acc[l] = acc[l].max(c[l]);
        }
    }
    acc.iter().fold(tail, |a, &b| a.max(b))
}

/// Run `f(row index, row)` over the (N, C) rows of `y`, in parallel when the buffer is large.
pub fn for_rows<T: Real>(y: &mut [T], c: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    use rayon::prelude::*;
    if c == 0 {
        return;
    }
    if y.len() >= PAR_MIN {
        y.par_chunks_mut(c).enumerate().for_each(|(r, yr)| f(r, yr));
    } else {
        y.chunks_mut(c).enumerate().for_each(|(r, yr)| f(r, yr));
    }
}
