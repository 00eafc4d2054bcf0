//! Chunked causal linear attention written with kiln's general ops only: what a user without the
//! fused kernel would write. It is the "own unfused composition" the fused kernels are benched
//! against (KERNELS.md: fused >= 2x faster), and an independent check of the chunk algebra.
//!
//! With chunks of C = 64 rows (T padded with zero rows to a multiple of C; zero k and v add
//! nothing to the state, and the padded outputs are cut off):
//!   A_i = (Q_i K_i^T) masked to j <= t           (per chunk, C x C)
//!   P_i = K_i^T V_i                               (per chunk, Dk x Dv)
//!   S_i = S0 + sum_{j < i} P_j                    (a product with a strictly lower-triangular
//!                                                  NC x NC matrix of ones)
//!   O_i = A_i V_i + Q_i S_i
//! Every intermediate is a tensor in memory: A (BH, NC, C, C), P and S (BH, NC, Dk, Dv), both
//! output terms (BH, NC, C, Dv); that traffic is what the fused walk saves.

use crate::tensor::{DType, Device, Shape, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use crate::{Error, Result};

const OP: &str = "linear_attention_unfused";
const C: usize = 64;

impl Tensor {
    /// q, k: (B, H, T, Dk), v: (B, H, T, Dv), s0: (B, H, Dk, Dv) or None -> o (B, H, T, Dv), the
    /// same as `Tensor::linear_attention(..).0`, from batched matmuls, a mask and a concat.
    pub fn linear_attention_unfused(q: &Tensor, k: &Tensor, v: &Tensor, s0: Option<&Tensor>) -> Result<Tensor> {
        for x in [q, k, v] {
            if x.rank() != 4 {
                return Err(Error::bad_shape(OP, x.shape(), "q, k, v must be (B, H, T, D)"));
            }
        }
        let (qd, dv) = (q.dims(), v.dims()[3]);
        let (b, h, t, dk) = (qd[0], qd[1], qd[2], qd[3]);
        if k.dims() != qd || v.dims()[..3] != [b, h, t] {
            return Err(Error::shape(OP, q.shape(), v.shape(), "q, k (B, H, T, Dk) and v (B, H, T, Dv) must agree"));
        }
        let (bh, nc) = (b * h, t.div_ceil(C));
        let (dt, dev) = (q.dtype(), q.device());
        // (B, H, T, D) -> (BH, NC, C, D), zero rows appended up to NC * C
        let chunks = |x: &Tensor, d: usize| -> Result<Tensor> {
            let x = x.reshape(vec![bh, t, d])?;
            let x = if nc * C > t { Tensor::concat(&[x, Tensor::zeros(vec![bh, nc * C - t, d], dt, dev)?], 1)? } else { x };
            x.reshape(vec![bh, nc, C, d])
        };
        let (qc, kc, vc) = (chunks(q, dk)?, chunks(k, dk)?, chunks(v, dv)?);
        let a = qc.matmul_t(&kc, false, true)?.mul(&lower(C, 0, dt, dev)?)?; // (BH, NC, C, C)
        let intra = a.matmul(&vc)?; // (BH, NC, C, Dv)
        let p = kc.matmul_t(&vc, true, false)?.reshape(vec![bh, nc, dk * dv])?; // (BH, NC, Dk Dv)
        // S_i = sum_{j < i} P_j: one (NC, NC) x (NC, Dk Dv) product per head
        let before = Tensor::zeros(vec![bh, nc, nc], dt, dev)?.add(&lower(nc, 1, dt, dev)?)?;
        let mut s = before.matmul(&p)?.reshape(vec![bh, nc, dk, dv])?;
        if let Some(s0) = s0 {
            if s0.dims() != [b, h, dk, dv] {
                return Err(Error::shape(OP, s0.shape(), &Shape(vec![b, h, dk, dv]), "the initial state s0 must be (B, H, Dk, Dv)"));
            }
            s = s.add(&s0.reshape(vec![bh, 1, dk, dv])?)?;
        }
        let o = intra.add(&qc.matmul(&s)?)?.reshape(vec![bh, nc * C, dv])?;
        let o = if nc * C > t { o.narrow(1, 0, t)? } else { o };
        o.reshape(vec![b, h, t, dv])
    }
}

/// (n, n) ones where row - col >= `gap` (0: the causal mask; 1: strictly lower), else zeros.
/// Made once per thread for each (n, gap, dtype, device), so a timed call uploads nothing.
fn lower(n: usize, gap: usize, dt: DType, dev: Device) -> Result<Tensor> {
    thread_local! {
        static MASKS: RefCell<HashMap<(usize, usize, DType, Device), Tensor>> = RefCell::new(HashMap::new());
    }
    if let Some(m) = MASKS.with(|c| c.borrow().get(&(n, gap, dt, dev)).cloned()) {
        return Ok(m);
    }
    let m: Vec<f32> = (0..n * n).map(|i| if i / n >= i % n + gap { 1.0 } else { 0.0 }).collect();
    let m = Tensor::from_vec(m, vec![n, n])?.to_dtype(dt)?.to_device(dev)?;
    MASKS.with(|c| c.borrow_mut().insert((n, gap, dt, dev), m.clone()));
    Ok(m)
}
