//! Elementwise ops: binary with numpy broadcasting, unary maps (activations and their derivatives),
//! affine x * a + b, and the fused SwiGLU silu(gate) * up. Twin of kernels/elementwise.cu.
//!
//! GELU is the tanh approximation used by GPT-2:
//!   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x sigmoid(2 sqrt(2/pi) (x + ...)),
//! computed in the sigmoid form (one exp, no tanh).
//! SiLU: silu(x) = x sigmoid(x), silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x).

use super::{CpuStorage, Real, PAR_MIN};
use crate::tensor::Shape;
use crate::Result;
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// max(a, b), elementwise
    Maximum,
    /// 1 where a >= b, else 0 (a mask; carries no gradient)
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Tanh,
    Square,
    Recip,
    Relu,
    Gelu,
    Silu,
    /// d/dx gelu(x): used by the backward pass
    GeluGrad,
    /// d/dx silu(x)
    SiluGrad,
    /// 1 where x > 0, else 0 (relu's derivative)
    Step,
}

#[inline(always)]
fn binary_f<T: Real>(op: BinaryOp, a: T, b: T) -> T {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum => if a >= b || b.is_nan() { a } else { b },
        BinaryOp::Ge => if a >= b { T::ONE } else { T::ZERO },
    }
}

#[inline(always)]
pub fn sigmoid<T: Real>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

#[inline(always)]
pub fn unary_f<T: Real>(op: UnaryOp, x: T) -> T {
    let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let k = T::from_f64(0.044715);
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => T::ONE / x,
        UnaryOp::Relu => if x > T::ZERO { x } else { T::ZERO },
        UnaryOp::Step => if x > T::ZERO { T::ONE } else { T::ZERO },
        // 0.5 x (1 + tanh u) = x sigmoid(2u): one exp instead of a (slow) tanh
        UnaryOp::Gelu => x * sigmoid(T::from_f64(2.0) * c * (x + k * x * x * x)),
        UnaryOp::GeluGrad => {
            // d/dx [x s], s = sigmoid(2u), u = c (x + k x^3): s + x s (1 - s) 2 c (1 + 3k x^2)
            let s = sigmoid(T::from_f64(2.0) * c * (x + k * x * x * x));
            s + x * s * (T::ONE - s) * T::from_f64(2.0) * c * (T::ONE + T::from_f64(3.0) * k * x * x)
        }
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::SiluGrad => {
            let s = sigmoid(x);
            s * (T::ONE + x * (T::ONE - s))
        }
    }
}

pub fn unary(op: UnaryOp, x: &CpuStorage) -> Result<CpuStorage> {
    crate::float_op!("unary", (x), unary_t(op, x))
}

/// The match on `op` sits outside the loop: each arm's loop body is a constant op, so it inlines
/// and vectorises instead of jumping through a table per element.
fn unary_t<T: Real>(op: UnaryOp, x: &[T]) -> Vec<T> {
    macro_rules! arms {
        ($($v:ident),*) => { match op { $(UnaryOp::$v => map(x, |v| unary_f(UnaryOp::$v, v)),)* } };
    }
    arms!(Neg, Exp, Log, Sqrt, Tanh, Square, Recip, Relu, Step, Gelu, GeluGrad, Silu, SiluGrad)
}

/// y = x * mul + add
pub fn affine(x: &CpuStorage, mul: f64, add: f64) -> Result<CpuStorage> {
    crate::float_op!("affine", (x), affine_t(x, mul, add))
}

fn affine_t<T: Real>(x: &[T], mul: f64, add: f64) -> Vec<T> {
    let (m, a) = (T::from_f64(mul), T::from_f64(add));
    map(x, |v| v * m + a)
}

/// Elements per rayon task in the elementwise loops (big enough to amortise the task, small enough
/// to spread a few-MB buffer over every thread).
const CHUNK: usize = 1 << 13;

/// A Vec of n elements whose chunks `fill` writes, in parallel when n is large: `fill(start,
/// out)` must write every slot of `out` (elements start.. start + out.len()). Nothing is
/// zero-filled first (at a few MB per activation that was a tenth of a training step).
fn build<T: Real>(n: usize, fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync) -> Vec<T> {
    let mut y = Vec::with_capacity(n);
    let spare = &mut y.spare_capacity_mut()[..n];
    if n >= PAR_MIN {
        spare.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| fill(i * CHUNK, out));
    } else {
        fill(0, spare);
    }
    // SAFETY: the chunks tile 0..n and `fill` writes every slot of its chunk (its callers below
    // zip the chunk with input slices of exactly the chunk's length).
    unsafe { y.set_len(n) };
    y
}

/// y = f(x) elementwise, as plain slice loops (they vectorise).
fn map<T: Real>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    build(x.len(), |start, out| {
        let xc = &x[start..start + out.len()];
        for (o, &v) in out.iter_mut().zip(xc) {
            o.write(f(v));
        }
    })
}

/// out = a (op) b with broadcasting; `out` is the broadcast shape of `sa` and `sb`.
pub fn binary(op: BinaryOp, a: &CpuStorage, sa: &Shape, b: &CpuStorage, sb: &Shape, out: &Shape) -> Result<CpuStorage> {
    crate::float_op!("binary", (a, b), binary_t(op, a, sa, b, sb, out))
}

/// Strides of `s` seen as a tensor of shape `out` (0 on broadcast dimensions).
fn broadcast_strides(s: &Shape, out: &Shape) -> Vec<usize> {
    let lead = out.rank() - s.rank();
    let st = s.strides();
    (0..out.rank())
        .map(|i| if i < lead || s.0[i - lead] == 1 { 0 } else { st[i - lead] })
        .collect()
}

fn binary_t<T: Real>(op: BinaryOp, a: &[T], sa: &Shape, b: &[T], sb: &Shape, out: &Shape) -> Vec<T> {
    // One monomorphic loop per op (the match hoisted out of the element loop).
    macro_rules! arms {
        ($($v:ident),*) => { match op { $(BinaryOp::$v => binary_with(|x, y| binary_f(BinaryOp::$v, x, y), a, sa, b, sb, out),)* } };
    }
    arms!(Add, Sub, Mul, Div, Maximum, Ge)
}

fn binary_with<T: Real>(f: impl Fn(T, T) -> T + Sync, a: &[T], sa: &Shape, b: &[T], sb: &Shape, out: &Shape) -> Vec<T> {
    if sa == sb {
        return build(a.len(), |start, out| {
            let (ac, bc) = (&a[start..start + out.len()], &b[start..start + out.len()]);
            for ((o, &x), &v) in out.iter_mut().zip(ac).zip(bc) {
                o.write(f(x, v));
            }
        });
    }
    // General case: walk the output row by row (last dim); each row of a and b is either
    // contiguous (stride 1) or a repeated element (stride 0).
    let n = out.elem_count();
    let mut y = vec![T::ZERO; n];
    if n == 0 {
        return y;
    }
    let (ast, bst) = (broadcast_strides(sa, out), broadcast_strides(sb, out));
    let last = out.rank().saturating_sub(1);
    let cols = out.0.get(last).copied().unwrap_or(1);
    let (ia, ib) = (ast.get(last).copied().unwrap_or(0), bst.get(last).copied().unwrap_or(0));
    let dims = out.0.clone();
    let row = |r: usize, yr: &mut [T]| {
        // Offsets of row r in a and b: decompose r over the leading dims.
        let (mut rem, mut oa, mut ob) = (r, 0, 0);
        for d in (0..last).rev() {
            let i = rem % dims[d];
            rem /= dims[d];
            oa += i * ast[d];
            ob += i * bst[d];
        }
        // The four stride cases as separate loops: the contiguous ones vectorise.
        match (ia, ib) {
            (1, 1) => yr.iter_mut().zip(&a[oa..oa + cols]).zip(&b[ob..ob + cols]).for_each(|((o, &x), &v)| *o = f(x, v)),
            (1, _) => yr.iter_mut().zip(&a[oa..oa + cols]).for_each(|(o, &x)| *o = f(x, b[ob])),
            (_, 1) => yr.iter_mut().zip(&b[ob..ob + cols]).for_each(|(o, &v)| *o = f(a[oa], v)),
            _ => yr.iter_mut().for_each(|o| *o = f(a[oa], b[ob])),
        }
    };
    // Rows go to threads in groups of about CHUNK elements (a row alone is too little work).
    let rows_per = (CHUNK / cols).max(1);
    let group = |(g, yg): (usize, &mut [T])| yg.chunks_mut(cols).enumerate().for_each(|(i, yr)| row(g * rows_per + i, yr));
    if n >= PAR_MIN {
        y.par_chunks_mut(cols * rows_per).enumerate().for_each(group);
    } else {
        group((0, &mut y));
    }
    y
}

/// SwiGLU: y = silu(gate) * up, elementwise over equal shapes.
pub fn swiglu(gate: &CpuStorage, up: &CpuStorage) -> Result<CpuStorage> {
    crate::float_op!("swiglu", (gate, up), gate.iter().zip(up).map(|(&g, &u)| unary_f(UnaryOp::Silu, g) * u).collect())
}

/// SwiGLU backward: d gate = dy * up * silu'(gate), d up = dy * silu(gate).
pub fn swiglu_backward(gate: &CpuStorage, up: &CpuStorage, dy: &CpuStorage) -> Result<Vec<CpuStorage>> {
    crate::float_op_multi!("swiglu_backward", (gate, up, dy), {
        let dg = gate.iter().zip(up).zip(dy).map(|((&g, &u), &d)| d * u * unary_f(UnaryOp::SiluGrad, g)).collect();
        let du = gate.iter().zip(dy).map(|(&g, &d)| d * unary_f(UnaryOp::Silu, g)).collect();
        vec![dg, du]
    })
}
