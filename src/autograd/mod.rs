//! Reverse-mode autograd: a topological sort of the recorded graph, then one match over `Op`
//! (backward.rs) that turns each node's output gradient into its inputs' gradients.
//! Gradients are computed with grad mode off, so they are plain tensors (no higher order).

mod backward;
pub mod gradcheck;
mod op;

pub use backward::backward_op;
pub use op::Op;

use crate::tensor::Tensor;
use crate::{Error, Result};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While the guard lives, ops record no graph on this thread (inference, optimizer steps).
pub fn no_grad() -> NoGradGuard {
    NoGradGuard(GRAD_ENABLED.with(|g| g.replace(false)))
}

pub struct NoGradGuard(bool);
impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.0));
    }
}

/// Gradients by tensor id, for the leaves that asked for one (`requires_grad`).
#[derive(Default, Clone, Debug)]
pub struct Grads(HashMap<usize, Tensor>);

impl Grads {
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0.get(&t.id())
    }
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.0.remove(&t.id())
    }
    pub fn insert(&mut self, t: &Tensor, g: Tensor) {
        self.0.insert(t.id(), g);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Add `g` into the gradient held for `t` (gradient accumulation).
    pub fn add(&mut self, t: &Tensor, g: Tensor) -> Result<()> {
        let _ng = no_grad();
        let sum = match self.0.remove(&t.id()) {
            Some(old) => old.add(&g)?,
            None => g,
        };
        self.0.insert(t.id(), sum);
        Ok(())
    }
    /// Sum another backward pass's gradients into these (micro-batch accumulation).
    pub fn accumulate(&mut self, other: Grads) -> Result<()> {
        let _ng = no_grad();
        for (id, g) in other.0 {
            let sum = match self.0.remove(&id) {
                Some(old) => old.add(&g)?,
                None => g,
            };
            self.0.insert(id, sum);
        }
        Ok(())
    }
}

/// Nodes reachable from `root` through tracked tensors, inputs before the ops that use them.
fn topo_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative DFS: (node, children already pushed?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(op) = t.op() {
            for i in op.inputs() {
                if i.tracked() && !seen.contains(&i.id()) {
                    stack.push((i.clone(), false));
                }
            }
        }
    }
    order
}

/// Gradients of a one-element `root` with respect to every leaf that requires grad.
pub fn backward(root: &Tensor) -> Result<Grads> {
    if root.elem_count() != 1 {
        return Err(Error::Autograd(format!("backward() needs a one-element loss, got shape {}", root.shape())));
    }
    let seed = Tensor::ones(root.shape().clone(), root.dtype(), root.device())?;
    backward_with(root, seed)
}

/// Backward from `root` with an explicit output gradient `seed` (same shape as root).
pub fn backward_with(root: &Tensor, seed: Tensor) -> Result<Grads> {
    let _ng = no_grad();
    if seed.shape() != root.shape() {
        return Err(Error::shape("backward", root.shape(), seed.shape(), "seed gradient must match the root"));
    }
    if !root.tracked() {
        return Err(Error::Autograd("backward() on a tensor that does not depend on any parameter".into()));
    }
    let mut grads = Grads::default();
    grads.insert(root, seed);
    for node in topo_order(root).iter().rev() {
        let Some(op) = node.op() else { continue };
        // Interior gradients are dropped once used; only leaves' gradients are returned.
        let Some(g) = grads.remove(node) else { continue };
        let input_grads = backward_op(op, node, &g)?;
        for (input, ig) in op.inputs().into_iter().zip(input_grads) {
            if let (true, Some(ig)) = (input.tracked(), ig) {
                if ig.shape() != input.shape() {
                    return Err(Error::Autograd(format!("{}: gradient shape {} for input {}", op.name(), ig.shape(), input.shape())));
                }
                grads.add(input, ig)?;
            }
        }
    }
    Ok(grads)
}
