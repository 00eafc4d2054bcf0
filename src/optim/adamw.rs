//! AdamW and SGD over named parameters. State is keyed by parameter name, so it can be saved
//! with a checkpoint and restored into a freshly built model.

use crate::autograd::Grads;
use crate::backend::{self, AdamWStep};
use crate::nn::NamedParams;
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// steps taken (bias correction uses t = step + 1)
    pub step: u64,
    /// name -> (m, v)
    pub state: BTreeMap<String, (Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(weight_decay: f64) -> Self {
        AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, state: BTreeMap::new() }
    }

    /// One step at learning rate `lr` for every parameter that has a gradient.
    pub fn step(&mut self, params: &NamedParams, grads: &Grads, lr: f64) -> Result<()> {
        let _ng = no_grad();
        self.step += 1;
        let h = AdamWStep { lr, beta1: self.beta1, beta2: self.beta2, eps: self.eps, weight_decay: self.weight_decay, t: self.step };
        for (name, p) in params {
            let Some(g) = grads.get(p) else { continue };
            let (m, v) = match self.state.remove(name) {
                Some(mv) => mv,
                None => (Tensor::zeros(p.shape().clone(), p.dtype(), p.device())?, Tensor::zeros(p.shape().clone(), p.dtype(), p.device())?),
            };
            if m.shape() != p.shape() {
                return Err(Error::shape("adamw", p.shape(), m.shape(), format!("optimizer state for `{name}` does not match the parameter")));
            }
            let mut out = backend::adamw(&p.storage(), &g.storage(), &m.storage(), &v.storage(), h)?.into_iter();
            let mut next = || Tensor::from_storage(out.next().expect("three outputs"), p.shape().clone());
            let (np, nm, nv) = (next()?, next()?, next()?);
            p.assign(&np)?;
            self.state.insert(name.clone(), (nm, nv));
        }
        Ok(())
    }
}

/// SGD with optional momentum (buffer b = mu b + g; p -= lr b) and decoupled weight decay.
#[derive(Clone, Debug)]
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    pub state: BTreeMap<String, Tensor>,
}

impl Sgd {
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Sgd { momentum, weight_decay, state: BTreeMap::new() }
    }
    pub fn step(&mut self, params: &NamedParams, grads: &Grads, lr: f64) -> Result<()> {
        let _ng = no_grad();
        for (name, p) in params {
            let Some(g) = grads.get(p) else { continue };
            let buf = match (self.momentum > 0.0, self.state.remove(name)) {
                (true, Some(b)) => b.scale(self.momentum)?.add(g)?,
                _ => g.clone(),
            };
            let decayed = p.scale(1.0 - lr * self.weight_decay)?;
            p.assign(&decayed.sub(&buf.scale(lr)?)?)?;
            if self.momentum > 0.0 {
                self.state.insert(name.clone(), buf);
            }
        }
        Ok(())
    }
}
