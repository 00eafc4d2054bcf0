//! Spending samples where they pay, and measuring what that buys.
//!
//! With binary rewards and per-query success probability p, best-of-b succeeds with probability
//! 1 - (1 - p)^b, so the b-th extra sample gains p (1 - p)^b: decreasing in b. Handing out a total
//! budget one sample at a time, each to the query with the largest next gain, is therefore optimal
//! for the predicted p (a separable concave objective); `greedy_order` lists those hand-outs.
//!
//! Scoring uses the samples actually drawn: a query with c of s samples correct, given b of them
//! (b <= s), succeeds with the unbiased best-of-b estimate 1 - C(s - c, b) / C(s, b) (Chen et al.'s
//! pass@k), the mean over every b-subset of its s samples. No re-sampling noise enters the curves.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Expected success of b of the s drawn samples, c of which are correct (b <= s).
pub fn pass_at(c: usize, s: usize, b: usize) -> f64 {
    assert!(c <= s && b <= s, "pass_at: c = {c}, b = {b} must be <= s = {s}");
    if b == 0 {
        return 0.0;
    }
    if s - c < b {
        return 1.0;
    }
    1.0 - (0..b).map(|i| (s - c - i) as f64 / (s - i) as f64).product::<f64>()
}

/// Mean expected success of an allocation (`b[i]` samples to query i).
pub fn accuracy(counts: &[usize], s: usize, b: &[usize]) -> f64 {
    counts.iter().zip(b).map(|(&c, &bi)| pass_at(c, s, bi)).sum::<f64>() / counts.len().max(1) as f64
}

/// `total` samples spread evenly: every query gets total / N, the first total % N one more.
pub fn uniform(n: usize, total: usize) -> Vec<usize> {
    (0..n).map(|i| total / n + (i < total % n) as usize).collect()
}

struct Gain(f64, usize);

impl PartialEq for Gain {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Gain {}
impl PartialOrd for Gain {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Gain {
    /// Larger gain first; among equal gains the lower query index (deterministic).
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

/// The greedy hand-out order for predicted success `p` (clamped to [0, 1]) and at most `cap`
/// samples a query: the query receiving the 1st, 2nd, ... sample, N * cap entries in all. The
/// first B entries are the best allocation of a budget of B samples.
pub fn greedy_order(p: &[f64], cap: usize) -> Vec<usize> {
    let p: Vec<f64> = p.iter().map(|x| if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 }).collect();
    let mut heap: BinaryHeap<Gain> = p.iter().enumerate().filter(|_| cap > 0).map(|(i, &pi)| Gain(pi, i)).collect();
    let mut given = vec![0usize; p.len()];
    let mut order = Vec::with_capacity(p.len() * cap);
    while let Some(Gain(_, i)) = heap.pop() {
        order.push(i);
        given[i] += 1;
        if given[i] < cap {
            heap.push(Gain(p[i] * (1.0 - p[i]).powi(given[i] as i32), i));
        }
    }
    order
}

/// Accuracy after each greedy hand-out: entry B is the accuracy with the first B samples
/// (entry 0: no samples, accuracy 0). `counts` of `s` drawn samples score it.
pub fn greedy_curve(order: &[usize], counts: &[usize], s: usize) -> Vec<f64> {
    let n = counts.len().max(1) as f64;
    let mut b = vec![0usize; counts.len()];
    let mut acc = 0.0;
    let mut out = Vec::with_capacity(order.len() + 1);
    out.push(0.0);
    for &i in order {
        acc += (pass_at(counts[i], s, b[i] + 1) - pass_at(counts[i], s, b[i])) / n;
        b[i] += 1;
        out.push(acc);
    }
    out
}

/// The smallest budget B whose curve value reaches `target` (None if none does).
pub fn budget_to_reach(curve: &[f64], target: f64) -> Option<usize> {
    curve.iter().position(|&a| a >= target - 1e-12)
}

/// Mean 1-sample accuracy when the `routed` queries with the largest `score` go to the strong
/// decoder and the rest to the weak one; `weak` and `strong` are success rates in [0, 1].
pub fn routed_accuracy(score: &[f64], weak: &[f64], strong: &[f64], routed: usize) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let mut to_strong = vec![false; score.len()];
    idx.iter().take(routed).for_each(|&i| to_strong[i] = true);
    (0..score.len()).map(|i| if to_strong[i] { strong[i] } else { weak[i] }).sum::<f64>() / score.len().max(1) as f64
}
