//! Arithmetic: broadcasting binary ops, unary maps, affine, reductions along an axis, and the
//! batched matmul. Each validates shapes, calls the backend once, and records its Op.

use super::{Shape, Tensor};
use crate::autograd::Op;
use crate::backend::{self, BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::DType;
use crate::{Error, Result};

impl Tensor {
    fn binary(&self, op: BinaryOp, rhs: &Tensor, name: &'static str) -> Result<Tensor> {
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch { op: name, expected: self.dtype(), got: rhs.dtype() });
        }
        let out = Shape::broadcast(name, self.shape(), rhs.shape())?;
        let s = backend::binary(op, &self.storage(), self.shape(), &rhs.storage(), rhs.shape(), &out)?;
        Ok(Tensor::from_op(s, out, Op::Binary(op, self.clone(), rhs.clone())))
    }
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, rhs, "add")
    }
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, rhs, "sub")
    }
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, rhs, "mul")
    }
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, rhs, "div")
    }
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Maximum, rhs, "maximum")
    }
    /// 1.0 where self >= rhs, else 0.0 (no gradient).
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Ge, rhs, "ge")
    }

    pub(crate) fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let s = backend::unary(op, &self.storage())?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::Unary(op, self.clone())))
    }
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sqr(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    /// GELU, tanh approximation (GPT-2).
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }

    /// y = x * mul + add
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        let s = backend::affine(&self.storage(), mul, add)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::Affine(self.clone(), mul)))
    }
    pub fn scale(&self, s: f64) -> Result<Tensor> {
        self.affine(s, 0.0)
    }

    // ---- reductions -----------------------------------------------------------------------

    fn reduce(&self, op: ReduceOp, axis: isize, keepdim: bool, name: &'static str) -> Result<Tensor> {
        let ax = self.shape().axis(name, axis)?;
        let (outer, dim, inner) = self.shape().split_at_axis(ax);
        if op == ReduceOp::Max && dim == 0 {
            return Err(Error::bad_shape(name, self.shape(), format!("max over an empty axis {ax}")));
        }
        let mut kept = self.dims().to_vec();
        kept[ax] = 1;
        let s = backend::reduce(op, &self.storage(), outer, dim, inner)?;
        let y = Tensor::from_op(s, Shape(kept), Op::Reduce(op, self.clone(), ax));
        if keepdim { Ok(y) } else { y.reshape(remove_axis(self.shape(), ax)) }
    }
    pub fn sum(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axis, keepdim, "sum")
    }
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axis, keepdim, "max")
    }
    pub fn mean(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let n = self.dims()[self.shape().axis("mean", axis)?];
        self.sum(axis, keepdim)?.scale(1.0 / n as f64)
    }
    /// Sum of every element, shape [].
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reshape([self.elem_count()])?.sum(0, false)
    }
    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_all()?.scale(1.0 / self.elem_count().max(1) as f64)
    }
    /// Index of the largest element along `axis` (U32, no gradient).
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let ax = self.shape().axis("argmax", axis)?;
        let (outer, dim, inner) = self.shape().split_at_axis(ax);
        if dim == 0 {
            return Err(Error::bad_shape("argmax", self.shape(), format!("empty axis {ax}")));
        }
        let s = backend::argmax(&self.storage(), outer, dim, inner)?;
        let mut kept = self.dims().to_vec();
        kept[ax] = 1;
        Tensor::from_storage(s, if keepdim { Shape(kept) } else { remove_axis(self.shape(), ax) })
    }
    /// The `k` largest entries along the last axis, best first: (values (..., k), indices
    /// (..., k) U32). Ties go to the smaller index; NaN is never taken, so a row with fewer than
    /// k other entries ends in empty slots (value NaN, index u32::MAX). No gradient.
    pub fn topk(&self, k: usize) -> Result<(Tensor, Tensor)> {
        let dims = self.dims();
        let Some(&n) = dims.last() else {
            return Err(Error::bad_shape("topk", self.shape(), "needs at least one axis"));
        };
        let max = backend::cpu::reduce::TOPK_MAX;
        if k == 0 || k > n || k > max {
            return Err(Error::bad_shape("topk", self.shape(), format!("k = {k} must be in 1..={} (the last axis, at most {max})", n.min(max))));
        }
        let rows = self.elem_count() / n;
        let (v, i) = backend::topk(&self.storage(), rows, n, k)?;
        let mut out = dims.to_vec();
        *out.last_mut().unwrap() = k;
        Ok((Tensor::from_storage(v, Shape(out.clone()))?, Tensor::from_storage(i, Shape(out))?))
    }
    /// Sum a broadcast result back down to `shape` (the adjoint of broadcasting).
    pub fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self.rank().checked_sub(shape.rank()).ok_or_else(|| Error::shape("sum_to", self.shape(), shape, "target has more dims"))?;
        let mut g = self.clone();
        for ax in (0..self.rank()).rev() {
            let target = if ax < lead { 1 } else { shape.0[ax - lead] };
            if self.dims()[ax] != target {
                if target != 1 {
                    return Err(Error::shape("sum_to", self.shape(), shape, "not a broadcast of the target"));
                }
                g = g.sum(ax as isize, true)?;
            }
        }
        g.reshape(shape.clone())
    }

    // ---- matmul ---------------------------------------------------------------------------

    /// Batched matrix product: (..., M, K) x (..., K, N) -> (..., M, N); b may also be a plain
    /// (K, N) matrix shared by every batch entry.
    pub fn matmul(&self, b: &Tensor) -> Result<Tensor> {
        self.matmul_t(b, false, false)
    }
    /// matmul with either operand transposed in its last two dims (no copy is made).
    pub fn matmul_t(&self, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
        let (sa, sb) = (self.shape(), b.shape());
        if self.dtype() != b.dtype() || !self.dtype().is_float() {
            return Err(Error::DTypeMismatch { op: "matmul", expected: self.dtype(), got: b.dtype() });
        }
        if sa.rank() < 2 || sb.rank() < 2 {
            return Err(Error::shape("matmul", sa, sb, "both operands need at least 2 dims"));
        }
        let (ra, rb) = (sa.rank(), sb.rank());
        let (m, k) = if ta { (sa.0[ra - 1], sa.0[ra - 2]) } else { (sa.0[ra - 2], sa.0[ra - 1]) };
        let (k2, n) = if tb { (sb.0[rb - 1], sb.0[rb - 2]) } else { (sb.0[rb - 2], sb.0[rb - 1]) };
        if k != k2 {
            return Err(Error::shape("matmul", sa, sb, format!("inner dimensions differ ({k} vs {k2}; ta={ta}, tb={tb})")));
        }
        let batch_dims = &sa.0[..ra - 2];
        if rb > 2 && &sb.0[..rb - 2] != batch_dims {
            return Err(Error::shape("matmul", sa, sb, "batch dimensions differ"));
        }
        let batch: usize = batch_dims.iter().product();
        // A shared (K, N) matrix against a row-major (.., M, K) stack is one (batch M, K) product.
        let s = if rb == 2 && !ta {
            backend::matmul(&self.storage(), &b.storage(), 1, 1, batch * m, k, n, false, tb)?
        } else {
            let b_batch = if rb > 2 { batch } else { 1 };
            backend::matmul(&self.storage(), &b.storage(), batch, b_batch, m, k, n, ta, tb)?
        };
        let mut out = batch_dims.to_vec();
        out.extend([m, n]);
        Ok(Tensor::from_op(s, Shape(out), Op::Matmul { a: self.clone(), b: b.clone(), ta, tb }))
    }

    /// Is this a float tensor? Errors name the op otherwise.
    pub(crate) fn expect_float(&self, op: &'static str) -> Result<()> {
        if self.dtype().is_float() { Ok(()) } else { Err(Error::UnsupportedDType { op, dtype: self.dtype(), detail: "a float tensor is needed" }) }
    }
    pub(crate) fn expect_u32(&self, op: &'static str) -> Result<()> {
        if self.dtype() == DType::U32 { Ok(()) } else { Err(Error::DTypeMismatch { op, expected: DType::U32, got: self.dtype() }) }
    }
}

fn remove_axis(s: &Shape, ax: usize) -> Shape {
    let mut d = s.0.clone();
    d.remove(ax);
    Shape(d)
}
