//! A layout as a finite-horizon deterministic MDP, and the dynamic programs on it.
//!
//! States: the cells, plus DONE (absorbing, no reward). Actions: stay, left, right, up, down (a
//! move off the grid stays). On a cell the agent collects r(cell); from the flag every action
//! leads to DONE. A path is the cells s_0 = start, s_1, .. visited before DONE, at most T of them.
//!   soft   maximum-entropy value iteration: Q_t(s, a) = r(s) + V_{t+1}(s'), V_t = logsumexp_a Q_t,
//!          pi_t(a | s) = exp(Q_t - V_t); forward visitation gives the expected feature counts
//!   hard   V_t(s) = r(s) + max_a V_{t+1}(s'): the optimal path (ties: the first action)
//!   random the uniformly random policy's expected return
//! Source: Ziebart et al., "Maximum Entropy Inverse Reinforcement Learning" (2008), the
//! finite-horizon form.

use super::grid::Layout;

pub const ACTIONS: usize = 5;

/// Transitions of one layout: `next[s][a]`, with DONE = the number of cells.
#[derive(Clone, Debug)]
pub struct Mdp {
    pub cells: usize,
    pub next: Vec<[usize; ACTIONS]>,
    pub start: usize,
}

impl Mdp {
    pub fn new(layout: &Layout) -> Mdp {
        let (w, h, n) = (layout.width, layout.height, layout.cells.len());
        let mut next = Vec::with_capacity(n + 1);
        for c in 0..n {
            let (x, y) = (c % w, c / w);
            if layout.cells[c] == Some(super::grid::Kind::Flag) {
                next.push([n; ACTIONS]);
                continue;
            }
            let left = if x > 0 { c - 1 } else { c };
            let right = if x + 1 < w { c + 1 } else { c };
            let up = if y > 0 { c - w } else { c };
            let down = if y + 1 < h { c + w } else { c };
            next.push([c, left, right, up, down]);
        }
        next.push([n; ACTIONS]);
        Mdp { cells: n, next, start: layout.start }
    }

    fn done(&self) -> usize {
        self.cells
    }

    /// The soft policy pi_t(a | s) for rewards `r` (one per cell), t = 0..horizon: (T, S, A).
    pub fn soft_policy(&self, r: &[f64], horizon: usize) -> Vec<Vec<[f64; ACTIONS]>> {
        let s_count = self.cells + 1;
        let mut v_next = vec![0.0; s_count];
        let mut policy = vec![vec![[0.0; ACTIONS]; s_count]; horizon];
        for t in (0..horizon).rev() {
            let mut v = vec![0.0; s_count];
            for s in 0..s_count {
                let rs = if s == self.done() { 0.0 } else { r[s] };
                let q: [f64; ACTIONS] = std::array::from_fn(|a| rs + v_next[self.next[s][a]]);
                let m = q.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let z: f64 = q.iter().map(|x| (x - m).exp()).sum();
                v[s] = m + z.ln();
                policy[t][s] = std::array::from_fn(|a| (q[a] - v[s]).exp());
            }
            v_next = v;
        }
        policy
    }

    /// Expected visits of every cell (DONE excluded) over the horizon under `policy`, from the start.
    pub fn visits(&self, policy: &[Vec<[f64; ACTIONS]>]) -> Vec<f64> {
        let s_count = self.cells + 1;
        let mut d = vec![0.0; s_count];
        d[self.start] = 1.0;
        let mut total = vec![0.0; self.cells];
        for pi in policy {
            total.iter_mut().zip(&d).for_each(|(t, x)| *t += x);
            let mut nd = vec![0.0; s_count];
            for s in 0..s_count {
                if d[s] != 0.0 {
                    for a in 0..ACTIONS {
                        nd[self.next[s][a]] += d[s] * pi[s][a];
                    }
                }
            }
            d = nd;
        }
        total
    }

    /// log P(path) under `policy`: the sum over its steps of log P(s_{t+1} | s_t), actions that
    /// lead to the same cell pooled (the path records cells, not actions).
    pub fn log_likelihood(&self, policy: &[Vec<[f64; ACTIONS]>], path: &[usize]) -> f64 {
        path.windows(2)
            .enumerate()
            .map(|(t, w)| {
                let p: f64 = (0..ACTIONS).filter(|&a| self.next[w[0]][a] == w[1]).map(|a| policy[t][w[0]][a]).sum();
                p.max(1e-300).ln()
            })
            .sum()
    }

    /// The optimal path for rewards `r`: the cells visited from the start before DONE, at most
    /// `horizon` of them; among equally good actions the first (stay, left, right, up, down).
    pub fn optimal_path(&self, r: &[f64], horizon: usize) -> Vec<usize> {
        let s_count = self.cells + 1;
        let mut values = vec![vec![0.0; s_count]; horizon + 1];
        for t in (0..horizon).rev() {
            for s in 0..s_count {
                let rs = if s == self.done() { 0.0 } else { r[s] };
                values[t][s] = rs + (0..ACTIONS).map(|a| values[t + 1][self.next[s][a]]).fold(f64::NEG_INFINITY, f64::max);
            }
        }
        let (mut s, mut path) = (self.start, Vec::new());
        for t in 0..horizon {
            if s == self.done() {
                break;
            }
            path.push(s);
            let best = (0..ACTIONS).map(|a| values[t + 1][self.next[s][a]]).fold(f64::NEG_INFINITY, f64::max);
            let a = (0..ACTIONS).find(|&a| values[t + 1][self.next[s][a]] >= best - 1e-9 * best.abs().max(1.0)).unwrap_or(0);
            s = self.next[s][a];
        }
        path
    }

    /// The uniformly random policy's expected return over the horizon, from the start.
    pub fn random_return(&self, r: &[f64], horizon: usize) -> f64 {
        let uniform = vec![vec![[1.0 / ACTIONS as f64; ACTIONS]; self.cells + 1]; horizon];
        self.visits(&uniform).iter().zip(r).map(|(v, x)| v * x).sum()
    }
}

/// The return of a path under rewards `r`.
pub fn path_return(r: &[f64], path: &[usize]) -> f64 {
    path.iter().map(|&s| r[s]).sum()
}

/// Rewards per cell: the feature matrix (cells, F) times theta (F).
pub fn rewards(features: &[f64], theta: &[f64]) -> Vec<f64> {
    features.chunks(theta.len().max(1)).map(|row| row.iter().zip(theta).map(|(a, b)| a * b).sum()).collect()
}
