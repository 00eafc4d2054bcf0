//! One error type for the whole library. Library code returns `Result<T>`; it never panics on bad
//! input. Every variant names what went wrong and where, so the CLI can print one clear line.

use crate::tensor::{DType, Shape};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two operands (or an operand and what the op expects) disagree in shape.
    #[error("{op}: shape mismatch: {detail} (got {lhs} and {rhs})")]
    ShapeMismatch { op: &'static str, lhs: Shape, rhs: Shape, detail: String },

    /// A single operand has a shape the op cannot take.
    #[error("{op}: bad shape {shape}: {detail}")]
    BadShape { op: &'static str, shape: Shape, detail: String },

    #[error("{op}: dtype mismatch: expected {expected:?}, got {got:?}")]
    DTypeMismatch { op: &'static str, expected: DType, got: DType },

    #[error("{op}: dtype {dtype:?} is not supported here ({detail})")]
    UnsupportedDType { op: &'static str, dtype: DType, detail: &'static str },

    #[error("{op}: operands live on different devices ({lhs} and {rhs})")]
    DeviceMismatch { op: &'static str, lhs: String, rhs: String },

    /// An index (token id, target, axis, slice bound) outside its valid range.
    #[error("{op}: index out of range: {detail}")]
    OutOfRange { op: &'static str, detail: String },

    #[error("{op}: not implemented on {device} yet")]
    NotImplemented { op: &'static str, device: String },

    #[error("no CUDA device: {0}")]
    NoCuda(String),

    #[error("CUDA: {0}")]
    Cuda(String),

    #[error("autograd: {0}")]
    Autograd(String),

    #[error("{path}: {detail}")]
    File { path: String, detail: String },

    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("{0}")]
    Msg(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn shape(op: &'static str, lhs: &Shape, rhs: &Shape, detail: impl Into<String>) -> Self {
        Error::ShapeMismatch { op, lhs: lhs.clone(), rhs: rhs.clone(), detail: detail.into() }
    }
    pub fn bad_shape(op: &'static str, shape: &Shape, detail: impl Into<String>) -> Self {
        Error::BadShape { op, shape: shape.clone(), detail: detail.into() }
    }
    pub fn range(op: &'static str, detail: impl Into<String>) -> Self {
        Error::OutOfRange { op, detail: detail.into() }
    }
}

/// Return early with a shape error unless `cond` holds.
#[macro_export]
macro_rules! ensure_shape {
    ($cond:expr, $op:expr, $shape:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Error::bad_shape($op, $shape, format!($($fmt)+)));
        }
    };
}
