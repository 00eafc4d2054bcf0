//! Rotary position embedding at the Tensor level (RoFormer, Su et al. 2021; HF Llama's "rotate
//! half" pairing of dims i and i + D/2). The rotation formulas are in backend/cpu/rope.rs, twin
//! of kernels/rope.cu. RoPE is linear in x and orthogonal, so its backward is the inverse
//! rotation of the gradient; positions and inv_freq are constants.
//! Legend: B batch, H heads, T time, D head dim.

use crate::autograd::Op;
use crate::backend;
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

/// `inv_freq[i] = theta^(-2i / D)` for i < D/2 (theta = 10000 in Llama 2, 500000 in Llama 3).
pub fn rope_inv_freq(d: usize, theta: f64) -> Vec<f32> {
    (0..d / 2).map(|i| theta.powf(-((2 * i) as f64) / d as f64) as f32).collect()
}

/// How a long-context model stretches RoPE (HF `rope_parameters` / `rope_scaling`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RopeScaling {
    /// Position interpolation (Chen et al. 2023): every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1: with wavelength w = 2 pi / f and L = original_max_position_embeddings,
    /// w < L / high_freq_factor keeps f, w > L / low_freq_factor gives f / factor, and the band
    /// between blends the two with s = (L / w - low_freq_factor) / (high_freq_factor - low_freq_factor):
    /// f' = (1 - s) f / factor + s f.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: usize },
}

/// `rope_inv_freq` with an optional scaling applied (in f64, rounded to f32 once).
pub fn rope_inv_freq_scaled(d: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f32> {
    let base = (0..d / 2).map(|i| theta.powf(-((2 * i) as f64) / d as f64));
    match scaling {
        None => base.map(|f| f as f32).collect(),
        Some(RopeScaling::Linear { factor }) => base.map(|f| (f / factor) as f32).collect(),
        Some(RopeScaling::Llama3 { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: l }) => {
            let l = *l as f64;
            base.map(|f| {
                let w = 2.0 * std::f64::consts::PI / f;
                let f = if w < l / hi {
                    f
                } else if w > l / lo {
                    f / factor
                } else {
                    let s = (l / w - lo) / (hi - lo);
                    (1.0 - s) * f / factor + s * f
                };
                f as f32
            })
            .collect()
        }
    }
}

/// Validate x (B, H, T, D) against positions and inv_freq; returns the dims and positions as
/// (B, T) (a (T) tensor is shared by every batch row, so it is repeated B times).
fn check(x: &Tensor, positions: &Tensor, inv_freq: &[f32]) -> Result<([usize; 4], Tensor)> {
    x.expect_float("rope")?;
    positions.expect_u32("rope")?;
    let &[b, h, t, d] = x.dims() else {
        return Err(Error::bad_shape("rope", x.shape(), "x must be (B, H, T, D)"));
    };
    if d % 2 != 0 {
        return Err(Error::bad_shape("rope", x.shape(), format!("the head dim D = {d} must be even")));
    }
    if inv_freq.len() != d / 2 {
        let detail = format!("inv_freq must have D / 2 = {} entries, got {}", d / 2, inv_freq.len());
        return Err(Error::shape("rope", x.shape(), &Shape(vec![inv_freq.len()]), detail));
    }
    let pos = if positions.dims() == [b, t] {
        positions.clone()
    } else if positions.dims() == [t] {
        let p = positions.to_vec_u32()?;
        Tensor::from_vec_u32(p.repeat(b), [b, t])?.to_device(positions.device())?
    } else {
        return Err(Error::shape("rope", x.shape(), positions.shape(), format!("positions must be (B, T) = [{b}, {t}] or (T) = [{t}]")));
    };
    Ok(([b, h, t, d], pos))
}

impl Tensor {
    /// x: (B, H, T, D), positions: U32 (B, T) or (T), inv_freq: (D/2) -> x rotated, same shape.
    /// Pair (i, i + D/2) of the row at position p turns by the angle `p * inv_freq[i]`.
    pub fn rope(&self, positions: &Tensor, inv_freq: Arc<Vec<f32>>) -> Result<Tensor> {
        let ([b, h, t, d], pos) = check(self, positions, &inv_freq)?;
        let s = backend::rope(&self.storage(), &pos.storage(), &inv_freq, b, h, t, d, false)?;
        Ok(Tensor::from_op(s, self.shape().clone(), Op::Rope { x: self.clone(), positions: positions.clone(), inv_freq }))
    }
}

/// g: (B, H, T, D) rotated back by minus the angle: the adjoint (and inverse) of `rope`.
pub fn rope_inverse(g: &Tensor, positions: &Tensor, inv_freq: &[f32]) -> Result<Tensor> {
    let ([b, h, t, d], pos) = check(g, positions, inv_freq)?;
    let s = backend::rope(&g.storage(), &pos.storage(), inv_freq, b, h, t, d, true)?;
    Tensor::from_storage(s, g.shape().clone())
}
