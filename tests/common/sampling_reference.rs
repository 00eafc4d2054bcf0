//! The sampler's reference, shared by tests/sample.rs (the CPU sampler) and tests/cuda/sampling.rs
//! (the CUDA kernels): the filtered, renormalised distribution computed by sorting, in f64, with
//! the semantics of src/sample/mod.rs (temperature, top-k with ties kept, top-p over distinct
//! weights, min-p against the largest weight, greedy as a one-hot).
use kiln::sample::SamplingParams;

/// The filtered, renormalised distribution of logits `x` under `sp`.
pub fn reference(x: &[f32], sp: &SamplingParams) -> Vec<f64> {
    let v = x.len();
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    if sp.temperature == 0.0 {
        let i = x.iter().position(|&xi| xi as f64 == m).unwrap();
        return (0..v).map(|j| (j == i) as u8 as f64).collect();
    }
    let mut w: Vec<f64> = x.iter().map(|&xi| ((xi as f64 - m) / sp.temperature as f64).exp()).collect();
    let mut order: Vec<usize> = (0..v).collect();
    order.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
    if sp.top_k > 0 && sp.top_k < v {
        let xk = x[order[sp.top_k - 1]];
        (0..v).filter(|&i| x[i] < xk).for_each(|i| w[i] = 0.0);
    }
    if sp.top_p < 1.0 {
        let total: f64 = w.iter().sum();
        let mut values: Vec<f64> = w.iter().copied().filter(|&wi| wi > 0.0).collect();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        let mut acc = 0.0;
        for t in values {
            acc += w.iter().filter(|&&wi| wi == t).sum::<f64>();
            if acc >= sp.top_p as f64 * total {
                w.iter_mut().filter(|wi| **wi < t).for_each(|wi| *wi = 0.0);
                break;
            }
        }
    }
    w.iter_mut().filter(|wi| **wi < sp.min_p as f64).for_each(|wi| *wi = 0.0);
    let s: f64 = w.iter().sum();
    w.iter().map(|wi| wi / s).collect()
}
