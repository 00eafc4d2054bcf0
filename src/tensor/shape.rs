//! `Shape`: the dimensions of a row-major, contiguous tensor, plus the broadcasting rule.
//! Every kiln tensor is contiguous: views that would need strides (permute, narrow) copy.
//! That keeps every kernel a plain loop over a dense buffer, which is what we want to read.

use crate::{Error, Result};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }
    /// Row-major strides, in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }
    /// Resolve a possibly negative axis (-1 = last) against this rank.
    pub fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        let r = self.rank() as isize;
        let a = if axis < 0 { axis + r } else { axis };
        if a < 0 || a >= r {
            return Err(Error::range(op, format!("axis {axis} for a tensor of shape {self}")));
        }
        Ok(a as usize)
    }
    /// The last dimension, and the product of all others: (N, C) for a row-wise op.
    pub fn rows_cols(&self) -> (usize, usize) {
        let c = self.0.last().copied().unwrap_or(1);
        (self.elem_count().checked_div(c).unwrap_or(0), c)
    }
    /// (outer, dim, inner) around `axis`: the tensor viewed as outer x dim x inner.
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let outer = self.0[..axis].iter().product();
        let inner = self.0[axis + 1..].iter().product();
        (outer, self.0[axis], inner)
    }
    /// Numpy broadcasting: align from the right; each pair equal or one of them 1.
    pub fn broadcast(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
        let r = a.rank().max(b.rank());
        let mut out = vec![0; r];
        for (i, o) in out.iter_mut().enumerate() {
            let da = if i < r - a.rank() { 1 } else { a.0[i - (r - a.rank())] };
            let db = if i < r - b.rank() { 1 } else { b.0[i - (r - b.rank())] };
            *o = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return Err(Error::shape(op, a, b, "cannot broadcast")),
            };
        }
        Ok(Shape(out))
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}
impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Element types. F32 is the compute type everywhere; BF16 is a GPU storage type (on the CPU it
/// only converts); U32 holds token ids and targets. F64 exists on the CPU only, so that gradchecks
/// can run every op in double precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    BF16,
    U32,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 | DType::U32 => 4,
            DType::BF16 => 2,
        }
    }
    pub fn is_float(self) -> bool {
        !matches!(self, DType::U32)
    }
}

/// Where a tensor's storage lives. Chosen at run time (`--device auto|cpu|cuda`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = crate::Error;
    /// `cpu`, `cuda`, `cuda:N`, or `auto` (the first GPU if one is usable, else the CPU). Asking
    /// for a GPU that is not there is one clear error, not a panic.
    fn from_str(s: &str) -> crate::Result<Device> {
        let d = match s {
            "cpu" => return Ok(Device::Cpu),
            "auto" => return Ok(if crate::backend::cuda::cuda_available() { Device::Cuda(0) } else { Device::Cpu }),
            "cuda" => Device::Cuda(0),
            _ => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
                Some(i) => Device::Cuda(i),
                None => return Err(crate::Error::Msg(format!("unknown device `{s}` (expected cpu, cuda, cuda:N or auto)"))),
            },
        };
        let Device::Cuda(i) = d else { unreachable!() };
        let n = crate::backend::cuda::device_count()?;
        if i >= n {
            return Err(crate::Error::NoCuda(format!("{d} asked for, but {n} CUDA device(s) are present")));
        }
        Ok(d)
    }
}
