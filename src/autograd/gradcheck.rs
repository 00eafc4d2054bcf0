//! Finite-difference gradient checks in f64. The function under test is scalarised as
//! L = sum(f(x) * r) with fixed random weights r, so every output element matters. For each
//! float input, the analytic gradient from `backward` is compared with central differences
//! (L(x + eps e) - L(x - eps e)) / 2 eps: element by element for small inputs, and along random
//! directions u (v^T J u, the directional form) for large ones.
//! Pass: |analytic - numeric| <= atol + rtol * |numeric|.

use super::{backward, no_grad};
use crate::tensor::{DType, Tensor};
use crate::{rng, Error, Result};

#[derive(Clone, Debug)]
pub struct GradcheckConfig {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    /// Inputs with at most this many elements are checked element by element.
    pub max_elementwise: usize,
    /// Random directions per larger input.
    pub directions: usize,
    pub seed: u64,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        GradcheckConfig { eps: 1e-6, atol: 1e-5, rtol: 1e-3, max_elementwise: 256, directions: 6, seed: 7 }
    }
}

/// What was compared: the number of scalar checks and the largest error seen.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    pub checks: usize,
    pub max_abs_err: f64,
}

/// Check `f`'s gradients at `inputs` (float inputs are promoted to F64; U32 inputs pass as is).
pub fn gradcheck(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], cfg: &GradcheckConfig) -> Result<GradcheckReport> {
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|t| if t.dtype().is_float() { Ok(t.to_dtype(DType::F64)?.detach().with_grad()) } else { Ok(t.clone()) })
        .collect::<Result<_>>()?;
    let out = f(&xs)?;
    let r = Tensor::from_vec_f64(rng::normal_vec(cfg.seed, 99, out.elem_count(), 0.0, 1.0).into_iter().map(|v| v as f64).collect(), out.shape().clone())?;
    let loss = out.mul(&r)?.sum_all()?;
    let grads = backward(&loss)?;

    let _ng = no_grad();
    // L at inputs where input `i` is replaced by `xi`.
    let eval = |i: usize, xi: Vec<f64>| -> Result<f64> {
        let mut ys = xs.clone();
        ys[i] = Tensor::from_vec_f64(xi, xs[i].shape().clone())?;
        f(&ys)?.mul(&r)?.sum_all()?.to_scalar()
    };
    let mut report = GradcheckReport { checks: 0, max_abs_err: 0.0 };
    let mut failures = Vec::new();
    for (i, x) in xs.iter().enumerate().filter(|(_, x)| x.dtype().is_float()) {
        let x0 = x.to_vec_f64()?;
        let ga = match grads.get(x) {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; x0.len()], // no path from this input to the output
        };
        let mut compare = |what: String, analytic: f64, numeric: f64| {
            let err = (analytic - numeric).abs();
            report.checks += 1;
            report.max_abs_err = report.max_abs_err.max(err);
            if !(err <= cfg.atol + cfg.rtol * numeric.abs()) && failures.len() < 8 {
                failures.push(format!("input {i} {what}: analytic {analytic:.8e}, numeric {numeric:.8e}"));
            }
        };
        if x0.len() <= cfg.max_elementwise {
            for j in 0..x0.len() {
                let (mut p, mut m) = (x0.clone(), x0.clone());
                p[j] += cfg.eps;
                m[j] -= cfg.eps;
                compare(format!("element {j}"), ga[j], (eval(i, p)? - eval(i, m)?) / (2.0 * cfg.eps));
            }
        } else {
            for d in 0..cfg.directions {
                let u = rng::normal_vec(cfg.seed ^ 0x5eed, (i * 1000 + d) as u32, x0.len(), 0.0, 1.0);
                let p = x0.iter().zip(&u).map(|(&a, &b)| a + cfg.eps * b as f64).collect();
                let m = x0.iter().zip(&u).map(|(&a, &b)| a - cfg.eps * b as f64).collect();
                let analytic: f64 = ga.iter().zip(&u).map(|(&g, &b)| g * b as f64).sum();
                compare(format!("direction {d}"), analytic, (eval(i, p)? - eval(i, m)?) / (2.0 * cfg.eps));
            }
        }
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(Error::Autograd(format!("gradcheck failed:\n  {}", failures.join("\n  "))))
    }
}
