//! Launch wrappers for kernels/elementwise.cu. Twin: backend/cpu/elementwise.rs.

use super::{blocks_for, Arg, CudaStorage};
use crate::backend::{BinaryOp, UnaryOp};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "elementwise";
/// Threads per block for the grid-stride maps.
pub const THREADS: u32 = 256;

/// "f32" or "bf16": the suffix of a kernel's storage-type instance.
pub fn suffix(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::BF16 => Ok("bf16"),
        d => Err(Error::UnsupportedDType { op, dtype: d, detail: "CUDA kernels take F32 or BF16" }),
    }
}

/// Look up `<name>_<suffix>` in kernels/elementwise.cu and launch it over `n` elements.
fn launch_map(x: &CudaStorage, name: &str, n: usize, args: &[Arg]) -> Result<()> {
    let dev = x.dev();
    let f = dev.func(FAMILY, name)?;
    // 4 f32 elements, or two pieces of 8 bf16, per thread per step (grid-stride: any grid covers n).
    let per = if name.ends_with("_bf16") { 16 } else { 4 };
    dev.launch(&f, (blocks_for(n.div_ceil(per), THREADS), 1, 1), (THREADS, 1, 1), 0, args)
}

/// `<base>_<f32|bf16>` for a storage type: the one naming rule for typed kernel instances.
pub fn typed(op: &'static str, base: &str, dtype: DType) -> Result<String> {
    Ok(format!("{base}_{}", suffix(op, dtype)?))
}

pub fn unary(op: UnaryOp, x: &CudaStorage) -> Result<CudaStorage> {
    let code = match op {
        UnaryOp::Neg => 0,
        UnaryOp::Exp => 1,
        UnaryOp::Log => 2,
        UnaryOp::Sqrt => 3,
        UnaryOp::Tanh => 4,
        UnaryOp::Square => 5,
        UnaryOp::Recip => 6,
        UnaryOp::Relu => 7,
        UnaryOp::Gelu => 8,
        UnaryOp::Silu => 9,
        UnaryOp::GeluGrad => 10,
        UnaryOp::SiluGrad => 11,
        UnaryOp::Step => 12,
    };
    let y = CudaStorage::alloc(x.dev(), x.float("unary")?.dtype, x.len)?;
    let name = typed("unary", "unary", x.dtype)?;
    launch_map(x, &name, x.len, &[x.arg(), y.arg(), Arg::U64(x.len as u64), Arg::I32(code)])?;
    Ok(y)
}

/// y = x * mul + add
pub fn affine(x: &CudaStorage, mul: f64, add: f64) -> Result<CudaStorage> {
    let y = CudaStorage::alloc(x.dev(), x.float("affine")?.dtype, x.len)?;
    let name = typed("affine", "affine", x.dtype)?;
    launch_map(x, &name, x.len, &[x.arg(), y.arg(), Arg::U64(x.len as u64), Arg::F32(mul as f32), Arg::F32(add as f32)])?;
    Ok(y)
}

/// out = a (op) b with broadcasting; `out` is the broadcast shape of `sa` and `sb`.
pub fn binary(op: BinaryOp, a: &CudaStorage, sa: &Shape, b: &CudaStorage, sb: &Shape, out: &Shape) -> Result<CudaStorage> {
    if a.dtype != b.dtype {
        return Err(Error::DTypeMismatch { op: "binary", expected: a.dtype, got: b.dtype });
    }
    let code = match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Ge => 5,
    };
    let n = out.elem_count();
    let y = CudaStorage::alloc(a.dev(), a.float("binary")?.dtype, n)?;
    let len = Arg::U64(n as u64);
    if sa == sb {
        launch_map(a, &typed("binary", "binary_same", a.dtype)?, n, &[a.arg(), b.arg(), y.arg(), len, Arg::I32(code)])?;
        return Ok(y);
    }
    if out.rank() > 8 {
        return Err(Error::bad_shape("binary", out, "CUDA broadcasting supports rank <= 8"));
    }
    let mut w = [0u32; 32];
    w[0] = out.rank() as u32;
    let (ast, bst) = (broadcast_strides(sa, out), broadcast_strides(sb, out));
    for d in 0..out.rank() {
        w[1 + d] = out.0[d] as u32;
        w[9 + d] = ast[d] as u32;
        w[17 + d] = bst[d] as u32;
    }
    let dev = a.dev();
    let f = dev.func(FAMILY, &typed("binary", "binary_bcast", a.dtype)?)?;
    let grid = (blocks_for(n, THREADS), 1, 1);
    dev.launch(&f, grid, (THREADS, 1, 1), 0, &[a.arg(), b.arg(), y.arg(), len, Arg::I32(code), Arg::Words(w)])?;
    Ok(y)
}

/// Strides of `s` seen as a tensor of shape `out` (0 on broadcast dimensions).
fn broadcast_strides(s: &Shape, out: &Shape) -> Vec<usize> {
    let lead = out.rank() - s.rank();
    let st = s.strides();
    (0..out.rank()).map(|i| if i < lead || s.0[i - lead] == 1 { 0 } else { st[i - lead] }).collect()
}

pub fn swiglu(gate: &CudaStorage, up: &CudaStorage) -> Result<CudaStorage> {
    let y = CudaStorage::alloc(gate.dev(), gate.float("swiglu")?.dtype, gate.len)?;
    let name = typed("swiglu", "swiglu", gate.dtype)?;
    launch_map(gate, &name, gate.len, &[gate.arg(), up.expect("swiglu", gate.dtype)?.arg(), y.arg(), Arg::U64(gate.len as u64)])?;
    Ok(y)
}

/// -> [d gate, d up]
pub fn swiglu_backward(gate: &CudaStorage, up: &CudaStorage, dy: &CudaStorage) -> Result<Vec<CudaStorage>> {
    let t = gate.float("swiglu_backward")?.dtype;
    let (dg, du) = (CudaStorage::alloc(gate.dev(), t, gate.len)?, CudaStorage::alloc(gate.dev(), t, gate.len)?);
    let dev = gate.dev();
    let f = dev.func(FAMILY, &typed("swiglu_backward", "swiglu_backward", t)?)?;
    let args = [gate.arg(), up.expect("swiglu_backward", t)?.arg(), dy.expect("swiglu_backward", t)?.arg(), dg.arg(), du.arg(), Arg::U64(gate.len as u64)];
    // bf16: a thread per 8 elements (16-byte pieces); f32: per element (grid-stride either way)
    let per = if t == DType::BF16 { 8 } else { 1 };
    dev.launch(&f, (blocks_for(gate.len.div_ceil(per), THREADS), 1, 1), (THREADS, 1, 1), 0, &args)?;
    Ok(vec![dg, du])
}

/// Storage-type conversion (F32 <-> BF16, F32 <-> U32).
pub fn cast(x: &CudaStorage, to: DType) -> Result<CudaStorage> {
    if x.dtype == to {
        return Ok(x.clone());
    }
    let name = match (x.dtype, to) {
        (DType::F32, DType::BF16) => "cast_f32_bf16",
        (DType::BF16, DType::F32) => "cast_bf16_f32",
        (DType::F32, DType::U32) => "cast_f32_u32",
        (DType::U32, DType::F32) => "cast_u32_f32",
        (DType::BF16, DType::U32) | (DType::U32, DType::BF16) => {
            return cast(&cast(x, DType::F32)?, to);
        }
        _ => return Err(Error::UnsupportedDType { op: "cast", dtype: DType::F64, detail: "F64 is CPU-only" }),
    };
    let y = CudaStorage::alloc(x.dev(), to, x.len)?;
    let dev = x.dev();
    let f = dev.func(FAMILY, name)?;
    // f32 <-> bf16 kernels take 8 elements per thread (then a scalar tail); the grid-stride loops
    // cover any n with any grid.
    let per = if matches!(to, DType::BF16) || matches!(x.dtype, DType::BF16) { 8 } else { 1 };
    dev.launch(&f, (blocks_for(x.len.div_ceil(per), THREADS), 1, 1), (THREADS, 1, 1), 0, &[x.arg(), y.arg(), Arg::U64(x.len as u64)])?;
    Ok(y)
}
