//! Fused AdamW step (Loshchilov & Hutter 2019), one pass over each parameter. Twin of
//! kernels/adamw.cu. With bias corrections c1 = 1 - b1^t, c2 = 1 - b2^t:
//!   m = b1 m + (1 - b1) g        v = b2 v + (1 - b2) g^2
//!   p = p - lr (wd p + (m / c1) / (sqrt(v / c2) + eps))
//! Weight decay is decoupled: applied to p directly, never through the gradient.

use super::{CpuStorage, Real};
use crate::Result;

/// The hyper-parameters of one step (t is 1-based).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub t: u64,
}

/// -> [p, m, v] after the step
pub fn adamw(p: &CpuStorage, g: &CpuStorage, m: &CpuStorage, v: &CpuStorage, h: AdamWStep) -> Result<Vec<CpuStorage>> {
    for (what, len) in [("g", g.len()), ("m", m.len()), ("v", v.len())] {
        super::expect_len("adamw", what, len, p.len())?;
    }
    crate::float_op_multi!("adamw", (p, g, m, v), adamw_t(p, g, m, v, h))
}

fn adamw_t<T: Real>(p: &[T], g: &[T], m: &[T], v: &[T], h: AdamWStep) -> Vec<Vec<T>> {
    let (c1, c2) = (1.0 - h.beta1.powi(h.t as i32), 1.0 - h.beta2.powi(h.t as i32));
    let (b1, b2, eps) = (T::from_f64(h.beta1), T::from_f64(h.beta2), T::from_f64(h.eps));
    let (ib1, ib2) = (T::from_f64(1.0 - h.beta1), T::from_f64(1.0 - h.beta2));
    let (lr, wd) = (T::from_f64(h.lr), T::from_f64(h.weight_decay));
    let (ic1, ic2) = (T::from_f64(1.0 / c1), T::from_f64(1.0 / c2));
    let n = p.len();
    let (mut po, mut mo, mut vo) = (vec![T::ZERO; n], vec![T::ZERO; n], vec![T::ZERO; n]);
    // One zipped slice loop (no indexing, no push) so it vectorises.
    let outs = po.iter_mut().zip(mo.iter_mut()).zip(vo.iter_mut());
    let ins = p.iter().zip(g).zip(m).zip(v);
    for (((pn, mn), vn), (((&pi, &gi), &mi), &vi)) in outs.zip(ins) {
        *mn = b1 * mi + ib1 * gi;
        *vn = b2 * vi + ib2 * gi * gi;
        *pn = pi - lr * (wd * pi + (*mn * ic1) / ((*vn * ic2).sqrt() + eps));
    }
    vec![po, mo, vo]
}
