//! Launch wrappers for kernels/rope.cu. Twin: backend/cpu/rope.rs.
//!
//! inv_freq arrives as a host slice; a model uses one table for its whole life, so uploads are
//! cached per (device, table contents) instead of paying a synchronising copy on every call.

use super::{Arg, CudaStorage, Dev, DevBuf};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

const FAMILY: &str = "rope";
const THREADS: u32 = 128;

/// The device copy of `inv_freq`, uploaded once per device and table.
fn inv_freq_on(dev: &Arc<Dev>, inv_freq: &[f32]) -> Result<Arc<DevBuf>> {
    type Cache = Mutex<HashMap<(usize, Vec<u32>), Arc<DevBuf>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (dev.ordinal, inv_freq.iter().map(|f| f.to_bits()).collect::<Vec<u32>>());
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = cache.get(&key) {
        return Ok(b.clone());
    }
    if cache.len() >= 64 {
        cache.clear(); // a bound, should many different tables pass through (tests, sweeps)
    }
    let buf = Arc::new(dev.upload(inv_freq)?);
    cache.insert(key, buf.clone());
    Ok(buf)
}

/// x: (B, H, T, D) -> rotated (by minus the angle when `inverse`), same shape and dtype.
#[allow(clippy::too_many_arguments)]
pub fn rope(x: &CudaStorage, positions: &CudaStorage, inv_freq: &[f32], b: usize, h: usize, t: usize, d: usize, inverse: bool) -> Result<CudaStorage> {
    let bad = |detail: String| Err(Error::bad_shape("rope", &Shape(vec![b, h, t, d]), detail));
    let dtype = x.float("rope")?.dtype;
    positions.expect("rope", DType::U32)?;
    if d % 2 != 0 {
        return bad(format!("the head dim D = {d} must be even"));
    }
    if x.len != b * h * t * d {
        return bad(format!("x holds {} elements", x.len));
    }
    if positions.len != b * t {
        return bad(format!("positions hold {} elements, expected B * T = {}", positions.len, b * t));
    }
    if inv_freq.len() != d / 2 {
        return bad(format!("inv_freq has {} entries, expected D / 2 = {}", inv_freq.len(), d / 2));
    }
    if h * d > i32::MAX as usize || t > i32::MAX as usize || d > 8192 {
        return bad("H * D and T must fit i32, and D <= 8192 (the cos/sin table lives in shared memory)".into());
    }
    let dev = x.dev();
    let y = CudaStorage::alloc(dev, dtype, x.len)?;
    if x.len == 0 {
        return Ok(y);
    }
    let half = d / 2;
    let freq = inv_freq_on(dev, inv_freq)?;
    let vec = [4, 2, 1].into_iter().find(|v| half % v == 0).unwrap_or(1);
    let name = format!("{}_v{vec}", super::elementwise::typed("rope", "rope", dtype)?);
    let f = dev.func(FAMILY, &name)?;
    let bt = b * t;
    let grid = (bt.clamp(1, 1 << 20) as u32, 1, 1);
    let smem = (2 * half * std::mem::size_of::<f32>()) as u32;
    let sign = if inverse { -1.0f32 } else { 1.0 };
    let args = [x.arg(), positions.arg(), freq.arg(), y.arg(), Arg::U64(bt as u64), Arg::I32(h as i32), Arg::I32(t as i32), Arg::I32(half as i32), Arg::F32(sign)];
    dev.launch(&f, grid, (THREADS, 1, 1), smem, &args)?;
    Ok(y)
}
