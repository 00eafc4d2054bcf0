//! THE one place where ops dispatch (DESIGN.md, decision 1). `Storage` is an enum over devices;
//! every op below is one `match` that sends matching storages to backend/cpu or backend/cuda and
//! refuses mixed devices by name. Shapes are checked one level up (tensor/); here they are
//! plain dimensions. Shapes in comments use the legend of lib.rs.

pub mod cpu;
pub mod cuda;

use crate::tensor::{DType, Device, Shape};
use crate::{Error, Result};
pub use cpu::elementwise::{BinaryOp, UnaryOp};
pub use cpu::reduce::ReduceOp;
use cpu::CpuStorage;

/// Send matching storages to the CPU or the CUDA expression (wrapping its Ok value back into
/// Storage); refuse mixed devices by name. `dispatch!` takes infallible CPU expressions,
/// `dispatch_result!` fallible ones, `dispatch_multi!` ones that return several buffers.
macro_rules! dispatch_result {
    ($name:literal, ($($s:ident),+) => $cpu:expr, $cuda:expr) => {{
        #[allow(unused_parens, irrefutable_let_patterns)]
        if let ($(Storage::Cpu($s),)+) = ($($s,)+) {
            $cpu.map(Storage::Cpu)
        } else {
            on_cuda!($name, ($($s),+) => $cuda.map(Storage::Cuda))
        }
    }};
}
macro_rules! dispatch {
    ($name:literal, ($($s:ident),+) => $cpu:expr, $cuda:expr) => {
        dispatch_result!($name, ($($s),+) => Ok::<_, Error>($cpu), $cuda)
    };
}
macro_rules! dispatch_multi {
    ($name:literal, ($($s:ident),+) => $cpu:expr, $cuda:expr) => {{
        #[allow(unused_parens, irrefutable_let_patterns)]
        if let ($(Storage::Cpu($s),)+) = ($($s,)+) {
            $cpu.map(|v| v.into_iter().map(Storage::Cpu).collect::<Vec<_>>())
        } else {
            on_cuda!($name, ($($s),+) => $cuda.map(|v| v.into_iter().map(Storage::Cuda).collect::<Vec<_>>()))
        }
    }};
}
/// The CUDA arm: all storages on CUDA (the same ordinal) run `$cuda`, anything else is a
/// device mismatch.
macro_rules! on_cuda {
    ($name:literal, ($($s:ident),+) => $cuda:expr) => {{
        #[cfg(feature = "cuda")]
        {
            let devices = [$($s.device()),+];
            #[allow(unused_parens)]
            match ($($s,)+) {
                ($(Storage::Cuda($s),)+) if devices.iter().all(|d| *d == devices[0]) => $cuda,
                _ => Err(device_error($name, &devices)),
            }
        }
        #[cfg(not(feature = "cuda"))]
        {
            Err(device_error($name, &[$($s.device()),+]))
        }
    }};
}

/// A tensor's buffer, on one device.
#[derive(Clone, Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(cuda::CudaStorage),
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Device::Cuda(s.ordinal()),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }
    /// A host copy of the buffer (a device-to-host transfer for CUDA storage).
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s.clone()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.to_cpu(),
        }
    }
    pub fn to_device(&self, device: Device) -> Result<Storage> {
        match (self, device) {
            (Storage::Cpu(s), Device::Cpu) => Ok(Storage::Cpu(s.clone())),
            #[cfg(feature = "cuda")]
            (s, Device::Cuda(i)) => Ok(Storage::Cuda(cuda::CudaStorage::from_cpu(&s.to_cpu()?, i)?)),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(s), Device::Cpu) => Ok(Storage::Cpu(s.to_cpu()?)),
            #[cfg(not(feature = "cuda"))]
            (_, Device::Cuda(_)) => Err(Error::NoCuda("kiln was built without the `cuda` feature".into())),
        }
    }
    pub fn cast(&self, to: DType) -> Result<Storage> {
        let s = self;
        dispatch!("cast", (s) => s.cast(to), cuda::elementwise::cast(s, to))
    }
}

fn device_error(op: &'static str, devices: &[Device]) -> Error {
    match devices.iter().find(|&&d| d != devices[0]) {
        Some(d) => Error::DeviceMismatch { op, lhs: devices[0].to_string(), rhs: d.to_string() },
        None => Error::NotImplemented { op, device: devices[0].to_string() },
    }
}

// ---- elementwise, reductions, layout ------------------------------------------------------

pub fn unary(op: UnaryOp, x: &Storage) -> Result<Storage> {
    dispatch_result!("unary", (x) => cpu::elementwise::unary(op, x), cuda::elementwise::unary(op, x))
}
pub fn affine(x: &Storage, mul: f64, add: f64) -> Result<Storage> {
    dispatch_result!("affine", (x) => cpu::elementwise::affine(x, mul, add), cuda::elementwise::affine(x, mul, add))
}
pub fn binary(op: BinaryOp, a: &Storage, sa: &Shape, b: &Storage, sb: &Shape, out: &Shape) -> Result<Storage> {
    dispatch_result!("binary", (a, b) => cpu::elementwise::binary(op, a, sa, b, sb, out), cuda::elementwise::binary(op, a, sa, b, sb, out))
}
pub fn reduce(op: ReduceOp, x: &Storage, outer: usize, dim: usize, inner: usize) -> Result<Storage> {
    dispatch_result!("reduce", (x) => cpu::reduce::reduce(op, x, outer, dim, inner), cuda::reduce::reduce(op, x, outer, dim, inner))
}
pub fn argmax(x: &Storage, outer: usize, dim: usize, inner: usize) -> Result<Storage> {
    dispatch_result!("argmax", (x) => cpu::reduce::argmax(x, outer, dim, inner), cuda::reduce::argmax(x, outer, dim, inner))
}
/// The k largest elements of each row of x (rows, n), best first: (values (rows, k), indices
/// (rows, k) U32); ties to the smaller index, NaN never taken, empty slots (NaN, u32::MAX).
pub fn topk(x: &Storage, rows: usize, n: usize, k: usize) -> Result<(Storage, Storage)> {
    let mut out = dispatch_multi!("topk", (x) => cpu::reduce::topk(x, rows, n, k), cuda::reduce::topk(x, rows, n, k))?;
    let idx = out.pop().ok_or_else(|| Error::Msg("topk: no indices".into()))?;
    let vals = out.pop().ok_or_else(|| Error::Msg("topk: no values".into()))?;
    Ok((vals, idx))
}
pub fn permute(x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
    dispatch_result!("permute", (x) => cpu::layout::permute(x, shape, perm), cuda::layout::permute(x, shape, perm))
}
pub fn narrow(x: &Storage, outer: usize, dim: usize, inner: usize, start: usize, len: usize) -> Result<Storage> {
    dispatch_result!("narrow", (x) => cpu::layout::narrow(x, outer, dim, inner, start, len), cuda::layout::narrow(x, outer, dim, inner, start, len))
}
pub fn concat(parts: &[&Storage], outer: usize, dims: &[usize], inner: usize) -> Result<Storage> {
    let devices: Vec<Device> = parts.iter().map(|p| p.device()).collect();
    let cpu: Option<Vec<&CpuStorage>> = parts.iter().map(|p| if let Storage::Cpu(c) = p { Some(c) } else { None }).collect();
    if let Some(c) = cpu {
        return cpu::layout::concat(&c, outer, dims, inner).map(Storage::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        let gpu: Option<Vec<&cuda::CudaStorage>> = parts.iter().map(|p| if let Storage::Cuda(c) = p { Some(c) } else { None }).collect();
        if let Some(g) = gpu.filter(|_| devices.iter().all(|d| *d == devices[0])) {
            return cuda::layout::concat(&g, outer, dims, inner).map(Storage::Cuda);
        }
    }
    Err(device_error("concat", &devices))
}
pub fn index_select(x: &Storage, ids: &Storage, outer: usize, dim: usize, inner: usize) -> Result<Storage> {
    dispatch_result!("index_select", (x, ids) => cpu::layout::index_select(x, ids.as_u32("index_select")?, outer, dim, inner), cuda::layout::index_select(x, ids, outer, dim, inner))
}
pub fn index_add(dy: &Storage, ids: &Storage, outer: usize, dim: usize, inner: usize) -> Result<Storage> {
    dispatch_result!("index_add", (dy, ids) => cpu::layout::index_add(dy, ids.as_u32("index_add")?, outer, dim, inner), cuda::layout::index_add(dy, ids, outer, dim, inner))
}

// ---- matmul -------------------------------------------------------------------------------

/// c: (batch, M, N) = op(a) op(b); b is shared across the batch when b_batch == 1.
#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &Storage, b: &Storage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<Storage> {
    dispatch_result!("matmul", (a, b) => cpu::matmul::matmul(a, b, batch, b_batch, m, k, n, ta, tb), cuda::matmul::matmul(a, b, batch, b_batch, m, k, n, ta, tb))
}

// ---- activations, softmax, cross-entropy, norms -------------------------------------------

pub fn swiglu(gate: &Storage, up: &Storage) -> Result<Storage> {
    dispatch_result!("swiglu", (gate, up) => cpu::elementwise::swiglu(gate, up), cuda::elementwise::swiglu(gate, up))
}
pub fn swiglu_backward(gate: &Storage, up: &Storage, dy: &Storage) -> Result<Vec<Storage>> {
    dispatch_multi!("swiglu_backward", (gate, up, dy) => cpu::elementwise::swiglu_backward(gate, up, dy), cuda::elementwise::swiglu_backward(gate, up, dy))
}
/// x: (N, C) -> softmax over C (or log-softmax when `log`).
pub fn softmax(x: &Storage, n: usize, c: usize, log: bool) -> Result<Storage> {
    dispatch_result!("softmax", (x) => cpu::softmax_xent::softmax(x, n, c, log), cuda::softmax_xent::softmax(x, n, c, log))
}
/// y: the forward output (softmax or log-softmax), dy: (N, C) -> dx.
pub fn softmax_backward(y: &Storage, dy: &Storage, n: usize, c: usize, log: bool) -> Result<Storage> {
    dispatch_result!("softmax_backward", (y, dy) => cpu::softmax_xent::softmax_backward(y, dy, n, c, log), cuda::softmax_xent::softmax_backward(y, dy, n, c, log))
}
/// logits: (N, V), targets: (N) U32 -> mean cross-entropy over rows whose target != ignore, shape (1).
pub fn cross_entropy(logits: &Storage, targets: &Storage, n: usize, v: usize, ignore: u32) -> Result<Storage> {
    dispatch_result!("cross_entropy", (logits, targets) => cpu::softmax_xent::cross_entropy(logits, targets.as_u32("cross_entropy")?, n, v, ignore), cuda::softmax_xent::cross_entropy(logits, targets, n, v, ignore))
}
/// dloss: (1) -> dlogits (N, V) = dloss * (softmax - onehot) / count, ignored rows zero.
pub fn cross_entropy_backward(logits: &Storage, targets: &Storage, dloss: &Storage, n: usize, v: usize, ignore: u32) -> Result<Storage> {
    dispatch_result!("cross_entropy_backward", (logits, targets, dloss) => cpu::softmax_xent::cross_entropy_backward(logits, targets.as_u32("cross_entropy")?, dloss, n, v, ignore), cuda::softmax_xent::cross_entropy_backward(logits, targets, dloss, n, v, ignore))
}
/// x: (N, C), w: (C) -> y = x / rms(x) * w.
pub fn rms_norm(x: &Storage, w: &Storage, n: usize, c: usize, eps: f64) -> Result<Storage> {
    dispatch_result!("rms_norm", (x, w) => cpu::norm::rms_norm(x, w, n, c, eps), cuda::norm::rms_norm(x, w, n, c, eps))
}
/// -> [dx (N, C), dw (C)]
pub fn rms_norm_backward(x: &Storage, w: &Storage, dy: &Storage, n: usize, c: usize, eps: f64) -> Result<Vec<Storage>> {
    dispatch_multi!("rms_norm_backward", (x, w, dy) => cpu::norm::rms_norm_backward(x, w, dy, n, c, eps), cuda::norm::rms_norm_backward(x, w, dy, n, c, eps))
}
/// x: (N, C), w, b: (C) -> y = (x - mean) / std * w + b.
pub fn layer_norm(x: &Storage, w: &Storage, b: &Storage, n: usize, c: usize, eps: f64) -> Result<Storage> {
    dispatch_result!("layer_norm", (x, w, b) => cpu::norm::layer_norm(x, w, b, n, c, eps), cuda::norm::layer_norm(x, w, b, n, c, eps))
}
/// -> [dx (N, C), dw (C), db (C)]
pub fn layer_norm_backward(x: &Storage, w: &Storage, dy: &Storage, n: usize, c: usize, eps: f64) -> Result<Vec<Storage>> {
    dispatch_multi!("layer_norm_backward", (x, w, dy) => cpu::norm::layer_norm_backward(x, w, dy, n, c, eps), cuda::norm::layer_norm_backward(x, w, dy, n, c, eps))
}

// ---- positions, embeddings, attention -----------------------------------------------------

/// x: (B, H, T, D), positions: (B, T) U32, inv_freq: (D/2) -> x rotated (rotate-half pairs
/// (i, i + D/2), angle = position * `inv_freq[i]`); `inverse` rotates by minus the angle (backward).
#[allow(clippy::too_many_arguments)]
pub fn rope(x: &Storage, positions: &Storage, inv_freq: &[f32], b: usize, h: usize, t: usize, d: usize, inverse: bool) -> Result<Storage> {
    dispatch_result!("rope", (x, positions) => cpu::rope::rope(x, positions.as_u32("rope")?, inv_freq, b, h, t, d, inverse), cuda::rope::rope(x, positions, inv_freq, b, h, t, d, inverse))
}
/// table: (V, C), ids: (N) U32 -> (N, C)
pub fn embedding(table: &Storage, ids: &Storage, v: usize, c: usize) -> Result<Storage> {
    dispatch_result!("embedding", (table, ids) => cpu::embedding::embedding(table, ids.as_u32("embedding")?, v, c), cuda::embedding::embedding(table, ids, v, c))
}
/// dy: (N, C) -> dtable (V, C), rows scatter-added in id order (deterministic).
pub fn embedding_backward(dy: &Storage, ids: &Storage, v: usize, c: usize) -> Result<Storage> {
    dispatch_result!("embedding_backward", (dy, ids) => cpu::embedding::embedding_backward(dy, ids.as_u32("embedding")?, v, c), cuda::embedding::embedding_backward(dy, ids, v, c))
}

/// Dimensions of causal softmax attention: q (B, Hq, Tq, D), k and v (B, Hkv, Tk, D); query i sits
/// at absolute position Tk - Tq + i (so Tq < Tk is decoding with a KV cache).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnDims {
    pub b: usize,
    pub hq: usize,
    pub hkv: usize,
    pub tq: usize,
    pub tk: usize,
    pub d: usize,
    pub scale: f64,
}

/// -> o (B, Hq, Tq, D)
pub fn attention(q: &Storage, k: &Storage, v: &Storage, dims: AttnDims) -> Result<Storage> {
    dispatch_result!("attention", (q, k, v) => cpu::attention::attention(q, k, v, dims), cuda::attention::attention(q, k, v, dims))
}
/// -> [dq, dk, dv]
pub fn attention_backward(q: &Storage, k: &Storage, v: &Storage, dout: &Storage, dims: AttnDims) -> Result<Vec<Storage>> {
    dispatch_multi!("attention_backward", (q, k, v, dout) => cpu::attention::attention_backward(q, k, v, dout, dims), cuda::attention::attention_backward(q, k, v, dout, dims))
}

/// Dimensions of causal linear attention: q, k (BH, T, Dk), v (BH, T, Dv), state (BH, Dk, Dv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinAttnDims {
    pub bh: usize,
    pub t: usize,
    pub dk: usize,
    pub dv: usize,
}

/// o_t = q_t (S0 + sum_{s <= t} k_s^T v_s) -> [o (BH, T, Dv), s_final (BH, Dk, Dv)].
/// `chunked` selects the chunk form (C = 64) over the naive per-step recurrence.
pub fn linear_attention(q: &Storage, k: &Storage, v: &Storage, s0: Option<&Storage>, dims: LinAttnDims, chunked: bool) -> Result<Vec<Storage>> {
    if let Some(s) = s0.filter(|s| s.device() != q.device()) {
        return Err(device_error("linear_attention", &[q.device(), s.device()]));
    }
    let s0c = s0.and_then(|s| if let Storage::Cpu(c) = s { Some(c) } else { None });
    #[cfg(feature = "cuda")]
    let s0g = s0.and_then(|s| if let Storage::Cuda(c) = s { Some(c) } else { None });
    dispatch_multi!("linear_attention", (q, k, v) => cpu::linear_attention::linear_attention(q, k, v, s0c, dims, chunked), cuda::linear_attention::linear_attention(q, k, v, s0g, dims, chunked))
}
/// Backward of `o` only (the final state's gradient flows through its own op) -> [dq, dk, dv, ds0].
pub fn linear_attention_backward(q: &Storage, k: &Storage, v: &Storage, s0: Option<&Storage>, dout: &Storage, dims: LinAttnDims, chunked: bool) -> Result<Vec<Storage>> {
    if let Some(s) = s0.filter(|s| s.device() != q.device()) {
        return Err(device_error("linear_attention_backward", &[q.device(), s.device()]));
    }
    let s0c = s0.and_then(|s| if let Storage::Cpu(c) = s { Some(c) } else { None });
    #[cfg(feature = "cuda")]
    let s0g = s0.and_then(|s| if let Storage::Cuda(c) = s { Some(c) } else { None });
    dispatch_multi!("linear_attention_backward", (q, k, v, dout) => cpu::linear_attention::linear_attention_backward(q, k, v, s0c, dout, dims, chunked), cuda::linear_attention::linear_attention_backward(q, k, v, s0g, dout, dims, chunked))
}

/// Refuse cumulative sequence offsets that do not partition T: `cu` (n_seq + 1) must start at 0,
/// never decrease and end at T. Named errors, shared by the op and both backends.
pub fn check_cu_seqlens(op: &'static str, cu: &[u32], t: usize) -> Result<()> {
    let bad = |detail: String| Err(Error::bad_shape(op, &crate::tensor::Shape(vec![cu.len()]), format!("cu_seqlens {detail}")));
    match (cu.first(), cu.last()) {
        (None, _) | (_, None) => return bad("must hold n_seq + 1 >= 1 offsets".into()),
        (Some(&f), _) if f != 0 => return bad(format!("must start at 0, starts at {f}")),
        (_, Some(&l)) if l as usize != t => return bad(format!("must end at T = {t}, ends at {l}")),
        _ => {}
    }
    if let Some(i) = (1..cu.len()).find(|&i| cu[i] < cu[i - 1]) {
        return bad(format!("must not decrease: cu[{}] = {} > cu[{i}] = {}", i - 1, cu[i - 1], cu[i]));
    }
    Ok(())
}

/// Packed variable-length linear attention: q, k (H, T, Dk), v (H, T, Dv) with sequence n on
/// rows `cu[n]..cu[n + 1]` of every head; states (N, H, Dk, Dv) -> [o (H, T, Dv), s_final].
pub fn linear_attention_varlen(q: &Storage, k: &Storage, v: &Storage, s0: Option<&Storage>, cu: &[u32], dims: LinAttnDims, chunked: bool) -> Result<Vec<Storage>> {
    check_cu_seqlens("linear_attention_varlen", cu, dims.t)?;
    if let Some(s) = s0.filter(|s| s.device() != q.device()) {
        return Err(device_error("linear_attention_varlen", &[q.device(), s.device()]));
    }
    let s0c = s0.and_then(|s| if let Storage::Cpu(c) = s { Some(c) } else { None });
    #[cfg(feature = "cuda")]
    let s0g = s0.and_then(|s| if let Storage::Cuda(c) = s { Some(c) } else { None });
    dispatch_multi!("linear_attention_varlen", (q, k, v) => cpu::linear_attention_varlen::linear_attention_varlen(q, k, v, s0c, cu, dims, chunked), cuda::linear_attention_varlen::linear_attention_varlen(q, k, v, s0g, cu, dims))
}
/// Backward of both outputs: `dout` is o's gradient, `dsf` (N, H, Dk, Dv) s_final's (None: zero)
/// -> [dq, dk, dv, ds0].
#[allow(clippy::too_many_arguments)]
pub fn linear_attention_varlen_backward(q: &Storage, k: &Storage, v: &Storage, s0: Option<&Storage>, dout: &Storage, dsf: Option<&Storage>, cu: &[u32], dims: LinAttnDims, chunked: bool) -> Result<Vec<Storage>> {
    check_cu_seqlens("linear_attention_varlen_backward", cu, dims.t)?;
    if let Some(s) = s0.into_iter().chain(dsf).find(|s| s.device() != q.device()) {
        return Err(device_error("linear_attention_varlen_backward", &[q.device(), s.device()]));
    }
    fn cpu_of(s: Option<&Storage>) -> Option<&CpuStorage> {
        s.and_then(|s| if let Storage::Cpu(c) = s { Some(c) } else { None })
    }
    let (s0c, dsfc) = (cpu_of(s0), cpu_of(dsf));
    #[cfg(feature = "cuda")]
    fn gpu_of(s: Option<&Storage>) -> Option<&cuda::CudaStorage> {
        s.and_then(|s| if let Storage::Cuda(c) = s { Some(c) } else { None })
    }
    #[cfg(feature = "cuda")]
    let (s0g, dsfg) = (gpu_of(s0), gpu_of(dsf));
    dispatch_multi!("linear_attention_varlen_backward", (q, k, v, dout) => cpu::linear_attention_varlen::linear_attention_varlen_backward(q, k, v, s0c, dout, dsfc, cu, dims, chunked), cuda::linear_attention_varlen::linear_attention_varlen_backward(q, k, v, s0g, dout, dsfg, cu, dims))
}

// ---- LoRA ---------------------------------------------------------------------------------

/// Dimensions of the LoRA linear: x (N, K), w (K, M), a (K, R), b (R, M), y (N, M); s = scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoraDims {
    pub n: usize,
    pub k: usize,
    pub m: usize,
    pub r: usize,
    pub scale: f64,
}

/// y = x W + s (x A) B as one op.
pub fn lora(x: &Storage, w: &Storage, a: &Storage, b: &Storage, dims: LoraDims) -> Result<Storage> {
    dispatch_result!("lora", (x, w, a, b) => cpu::lora::lora(x, w, a, b, dims), cuda::lora::lora(x, w, a, b, dims))
}
/// -> [dx or None, dw or None, da, db]; dx only when `need_dx`, dw only when `need_dw`.
#[allow(clippy::too_many_arguments)]
pub fn lora_backward(x: &Storage, w: &Storage, a: &Storage, b: &Storage, dy: &Storage, dims: LoraDims, need_dx: bool, need_dw: bool) -> Result<Vec<Option<Storage>>> {
    #[allow(irrefutable_let_patterns)]
    if let (Storage::Cpu(x), Storage::Cpu(w), Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(dy)) = (x, w, a, b, dy) {
        let g = cpu::lora::lora_backward(x, w, a, b, dy, dims, need_dx, need_dw)?;
        return Ok(g.into_iter().map(|s| s.map(Storage::Cpu)).collect());
    }
    #[cfg(feature = "cuda")]
    if let (Storage::Cuda(xg), Storage::Cuda(wg), Storage::Cuda(ag), Storage::Cuda(bg), Storage::Cuda(dyg)) = (x, w, a, b, dy) {
        if [w, a, b, dy].iter().all(|s| s.device() == x.device()) {
            let g = cuda::lora::lora_backward(xg, wg, ag, bg, dyg, dims, need_dx, need_dw)?;
            return Ok(g.into_iter().map(|s| s.map(Storage::Cuda)).collect());
        }
    }
    Err(device_error("lora_backward", &[x.device(), w.device(), a.device(), b.device(), dy.device()]))
}

/// Dimensions of multi-adapter LoRA: x (N, K), w (K, M), a (G, K, R), b (G, R, M), y (N, M);
/// row i uses adapter `ids[i] < G` with scale `scales[ids[i]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoraMultiDims {
    pub n: usize,
    pub k: usize,
    pub m: usize,
    pub r: usize,
    pub g: usize,
}

/// Refuse ids and scales that do not fit the dimensions (N ids, each < G; G scales).
pub fn check_adapter_ids(op: &'static str, ids: &[u32], scales: &[f64], d: LoraMultiDims) -> Result<()> {
    if ids.len() != d.n {
        return Err(Error::bad_shape(op, &Shape(vec![ids.len()]), format!("adapter ids: expected one per row, N = {}", d.n)));
    }
    if scales.len() != d.g {
        return Err(Error::bad_shape(op, &Shape(vec![scales.len()]), format!("scales: expected one per adapter, G = {}", d.g)));
    }
    if let Some((i, &id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= d.g) {
        return Err(Error::bad_shape(op, &Shape(vec![ids.len()]), format!("adapter id {id} of row {i} is out of range for G = {} adapters", d.g)));
    }
    Ok(())
}

/// `y[i] = x[i] W + s_{g(i)} (x[i] A_{g(i)}) B_{g(i)}`, `g(i) = ids[i]`.
pub fn lora_multi_adapter(x: &Storage, w: &Storage, a: &Storage, b: &Storage, ids: &[u32], scales: &[f64], dims: LoraMultiDims) -> Result<Storage> {
    check_adapter_ids("lora_multi_adapter", ids, scales, dims)?;
    dispatch_result!("lora_multi_adapter", (x, w, a, b) => cpu::lora_multi_adapter::lora_multi_adapter(x, w, a, b, ids, scales, dims), cuda::lora_multi_adapter::lora_multi_adapter(x, w, a, b, ids, scales, dims))
}
/// -> [dx or None, dw or None, da (G, K, R), db (G, R, M)].
#[allow(clippy::too_many_arguments)]
pub fn lora_multi_adapter_backward(
    x: &Storage, w: &Storage, a: &Storage, b: &Storage, dy: &Storage, ids: &[u32], scales: &[f64], dims: LoraMultiDims, need_dx: bool, need_dw: bool,
) -> Result<Vec<Option<Storage>>> {
    const OP: &str = "lora_multi_adapter_backward";
    check_adapter_ids(OP, ids, scales, dims)?;
    #[allow(irrefutable_let_patterns)]
    if let (Storage::Cpu(x), Storage::Cpu(w), Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(dy)) = (x, w, a, b, dy) {
        let g = cpu::lora_multi_adapter::lora_multi_adapter_backward(x, w, a, b, dy, ids, scales, dims, need_dx, need_dw)?;
        return Ok(g.into_iter().map(|s| s.map(Storage::Cpu)).collect());
    }
    #[cfg(feature = "cuda")]
    if let (Storage::Cuda(xg), Storage::Cuda(wg), Storage::Cuda(ag), Storage::Cuda(bg), Storage::Cuda(dyg)) = (x, w, a, b, dy) {
        if [w, a, b, dy].iter().all(|s| s.device() == x.device()) {
            let g = cuda::lora_multi_adapter::lora_multi_adapter_backward(xg, wg, ag, bg, dyg, ids, scales, dims, need_dx, need_dw)?;
            return Ok(g.into_iter().map(|s| s.map(Storage::Cuda)).collect());
        }
    }
    Err(device_error(OP, &[x.device(), w.device(), a.device(), b.device(), dy.device()]))
}

// ---- optimiser ----------------------------------------------------------------------------

pub use cpu::adamw::AdamWStep;

/// Fused AdamW on one parameter: -> [p, m, v] after the step (formulas in cpu/adamw.rs).
pub fn adamw(p: &Storage, g: &Storage, m: &Storage, v: &Storage, h: AdamWStep) -> Result<Vec<Storage>> {
    dispatch_multi!("adamw", (p, g, m, v) => cpu::adamw::adamw(p, g, m, v, h), cuda::adamw::adamw(p, g, m, v, h))
}
