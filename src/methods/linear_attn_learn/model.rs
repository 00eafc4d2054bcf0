//! The trainable student: multi-head linear attention without softmax, built from kiln tensor
//! ops and trained by reverse-mode autograd + AdamW. The f64 reference of the same function is
//! features::Mhla (a test checks they agree).
//!
//! One layer, heads SUMMED, keys are the tokens themselves, causal, 1/sqrt(D) scale:
//!   q = h Wq, v = h Wv : (B, T, H D) -> (B, H, T, D);  k = h repeated over heads: (B, H, T, D)
//!   o_t = q_t sum_{s <= t} k_s^T v_s  (Tensor::linear_attention)  -> sum over H -> (B, T, D)
//! In the notation of features.rs, head h has Q_h = (Wq block h)^T and V_h = (Wv block h)^T.
//! L layers: h_0 = x, h_l = h_{l-1} + MHLA_l(h_{l-1}) for l < L, output MHLA_L(h_{L-1}); so a
//! deeper student contains the one-layer class (zero lower layers).

use super::tasks::Dataset;
use crate::autograd::backward;
use crate::nn::{Init, NamedParams};
use crate::optim::{AdamW, Schedule};
use crate::tensor::Tensor;
use crate::{no_grad, rng, Error, Result};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct Student {
    pub d: usize,
    pub heads: usize,
    /// per layer: (D, H D)
    pub wq: Vec<Tensor>,
    /// per layer: (D, H D)
    pub wv: Vec<Tensor>,
}

/// One MHLA layer. h: (B, T, D), wq, wv: (D, H D) -> (B, T, D).
pub fn mhla(h: &Tensor, wq: &Tensor, wv: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = match h.dims() {
        [b, t, d] => (*b, *t, *d),
        _ => return Err(Error::bad_shape("linear-attn-learn mhla", h.shape(), "tokens must be (B, T, D)")),
    };
    let split = |w: &Tensor| -> Result<Tensor> { h.reshape([b * t, d])?.matmul(w)?.reshape([b, t, heads, d])?.permute(&[0, 2, 1, 3]) };
    let (q, v) = (split(wq)?, split(wv)?);
    let h1 = h.reshape([b, 1, t, d])?;
    let k = if heads == 1 { h1 } else { Tensor::concat(&vec![h1; heads], 1)? };
    let (o, _) = Tensor::linear_attention(&q, &k, &v, None, true)?;
    o.sum(1, false)?.scale(1.0 / (d as f64).sqrt())
}

impl Student {
    /// N(0, std^2) weights: std = D^-1/2 H^-1/4 on the last layer (output scale independent of
    /// H), a tenth of that on lower layers (they start near the identity map).
    pub fn new(d: usize, heads: usize, layers: usize, seed: u64) -> Result<Student> {
        if d == 0 || heads == 0 || layers == 0 {
            return Err(Error::Msg(format!("linear-attn-learn student: need D, heads and layers > 0 (got {d}, {heads}, {layers})")));
        }
        let mut init = Init::new(seed);
        let std = 1.0 / ((d as f32).sqrt() * (heads as f32).powf(0.25));
        let (mut wq, mut wv) = (Vec::new(), Vec::new());
        for l in 0..layers {
            let s = if l + 1 == layers { std } else { 0.1 * std };
            wq.push(init.normal(&[d, heads * d], s)?.with_grad());
            wv.push(init.normal(&[d, heads * d], s)?.with_grad());
        }
        Ok(Student { d, heads, wq, wv })
    }

    pub fn layers(&self) -> usize {
        self.wq.len()
    }

    pub fn params(&self) -> NamedParams {
        let mut p = Vec::new();
        for (l, (q, v)) in self.wq.iter().zip(&self.wv).enumerate() {
            p.push((format!("layers.{l}.wq"), q.clone()));
            p.push((format!("layers.{l}.wv"), v.clone()));
        }
        p
    }

    /// x: (B, T, D) -> (B, T, D).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        forward_with(x, &self.wq, &self.wv, self.heads)
    }

    /// Outputs at the supervised positions of `ds`: (M, D), in f64, by chunks of sequences.
    pub fn predict(&self, ds: &Dataset) -> Result<Vec<f64>> {
        let _ng = no_grad();
        let mut full = Vec::with_capacity(ds.z.len());
        let chunk = 256;
        for start in (0..ds.n).step_by(chunk) {
            let b = chunk.min(ds.n - start);
            let x = batch(&ds.z, &(start..start + b).collect::<Vec<_>>(), ds.t, ds.d)?;
            full.extend(self.forward(&x)?.to_vec_f64()?);
        }
        Ok(ds.supervised(&full))
    }
}

/// The student's function with explicit weights (used by gradcheck): x (B, T, D) -> (B, T, D).
pub fn forward_with(x: &Tensor, wq: &[Tensor], wv: &[Tensor], heads: usize) -> Result<Tensor> {
    let mut h = x.clone();
    for l in 0..wq.len() {
        let o = mhla(&h, &wq[l], &wv[l], heads)?;
        if l + 1 == wq.len() {
            return Ok(o);
        }
        h = h.add(&o)?;
    }
    Err(Error::Msg("linear-attn-learn student: no layers".into()))
}

/// Rows `seqs` of an (N, T, D) array as an f32 tensor (B, T, D).
fn batch(a: &[f64], seqs: &[usize], t: usize, d: usize) -> Result<Tensor> {
    let data = seqs.iter().flat_map(|&s| a[s * t * d..(s + 1) * t * d].iter().map(|&v| v as f32)).collect();
    Tensor::from_vec(data, [seqs.len(), t, d])
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainConfig {
    pub steps: usize,
    /// sequences per step
    pub batch: usize,
    pub lr: f64,
    pub eval_every: usize,
    /// "converged" = test MSE / target variance below this
    pub threshold: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainResult {
    pub test_mse_rel: f64,
    /// first evaluated step with test error below the threshold (None: never within the budget)
    pub steps: Option<usize>,
    pub steps_run: usize,
    pub diverged: bool,
    /// (step, test MSE / variance) every eval_every steps
    pub curve: Vec<(usize, f64)>,
}

/// AdamW (no weight decay, warm-up + cosine) on the masked MSE / target variance; minibatches of
/// sequences drawn with replacement from Philox stream `seed`. Returns the result and the
/// final predictions on `test`'s supervised rows (M, D).
pub fn train(student: &Student, train: &Dataset, test: &Dataset, cfg: &TrainConfig, seed: u64, bar: &indicatif::ProgressBar) -> Result<(TrainResult, Vec<f64>)> {
    let (t, d) = (train.t, train.d);
    let target = train.targets();
    let var = super::features::variance(&target, d);
    if !(var > 0.0) || train.n == 0 {
        return Err(Error::Msg(format!("linear-attn-learn train: need sequences with non-constant targets (N = {}, target variance {var})", train.n)));
    }
    let mask: Vec<f64> = train.mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    let test_target = test.targets();
    let params = student.params();
    let mut opt = AdamW::new(0.0);
    let sched = Schedule::WarmupCosine { warmup: (cfg.steps / 20).max(1), total: cfg.steps, min_ratio: 0.01 };
    let mut res = TrainResult { test_mse_rel: f64::NAN, steps: None, steps_run: 0, diverged: false, curve: Vec::new() };
    let eval = |step: usize, res: &mut TrainResult| -> Result<Vec<f64>> {
        let pred = student.predict(test)?;
        let e = super::features::mse_rel(&pred, &test_target, d);
        res.curve.push((step, e));
        res.test_mse_rel = e;
        if res.steps.is_none() && e < cfg.threshold {
            res.steps = Some(step);
        }
        Ok(pred)
    };
    let mut pred = eval(0, &mut res)?;
    for step in 1..=cfg.steps {
        let seqs: Vec<usize> = rng::uniform_vec(seed, step as u32, cfg.batch, 0.0, 1.0).into_iter().map(|u| ((u as f64 * train.n as f64) as usize).min(train.n - 1)).collect();
        let x = batch(&train.z, &seqs, t, d)?;
        let y = batch(&train.y, &seqs, t, d)?;
        let m = batch(&mask, &seqs, t, 1)?;
        let count = m.to_vec_f64()?.iter().sum::<f64>().max(1.0);
        let err = student.forward(&x)?.sub(&y)?.mul(&m)?;
        let loss = err.sqr()?.sum_all()?.scale(1.0 / (count * d as f64 * var))?;
        if !loss.to_scalar()?.is_finite() {
            res.diverged = true;
            res.test_mse_rel = f64::NAN;
            break;
        }
        let grads = backward(&loss)?;
        opt.step(&params, &grads, cfg.lr * sched.factor(step - 1))?;
        res.steps_run = step;
        if step % cfg.eval_every == 0 || step == cfg.steps {
            pred = eval(step, &mut res)?;
        }
        bar.inc(1);
    }
    Ok((res, pred))
}
