//! The estimation protocol of the published error table (../shared/data/scaling-laws/README.md):
//! target = the family's largest model; train = the k smallest models' checkpoints with
//! 1e10 < tokens < p * T (T = the most tokens any of those k models saw); test = the target's
//! checkpoints with tokens >= 0.7 T_target; score = ARE, the mean of |L - L_hat| / L in percent.

use super::data::Family;
use super::law::{Law, Obs};

/// Fractions of the training budget, p = 0.1 ... 1.0.
pub const PS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Checkpoints with this many tokens or fewer are never used for training (warm-up noise).
pub const MIN_TOKENS: f64 = 1e10;

/// Test points are the target's checkpoints past this fraction of its training.
pub const TEST_FRACTION: f64 = 0.7;

/// One row of the reference table: family, k, ARE % for p = 0.1..1.0 (None = unreadable).
pub struct Reference {
    pub family: &'static str,
    pub k: usize,
    pub are: [Option<f64>; 10],
}

const fn r(family: &'static str, k: usize, v: [f64; 10]) -> Reference {
    Reference { family, k, are: [Some(v[0]), Some(v[1]), Some(v[2]), Some(v[3]), Some(v[4]), Some(v[5]), Some(v[6]), Some(v[7]), Some(v[8]), Some(v[9])] }
}

/// The published ARE (%) read off the released heat-maps (data README).
pub const REFERENCE: [Reference; 12] = [
    r("GPT-3", 2, [42.0, 34.0, 29.0, 26.0, 25.0, 23.0, 21.0, 17.0, 17.0, 13.0]),
    r("GPT-3", 3, [48.0, 44.0, 40.0, 37.0, 35.0, 32.0, 29.0, 27.0, 25.0, 23.0]),
    r("GPT-3", 4, [0.57, 2.5, 0.62, 1.9, 4.0, 5.9, 7.8, 9.4, 9.1, 5.6]),
    r("GPT-3", 5, [1.1, 0.63, 1.6, 3.3, 5.0, 6.5, 8.0, 8.0, 6.5, 5.1]),
    r("GPT-3", 6, [5.7, 4.6, 5.1, 4.5, 3.8, 3.2, 2.5, 1.6, 1.1, 0.92]),
    r("GPT-3", 7, [16.0, 14.0, 12.0, 9.9, 8.3, 6.8, 5.5, 4.3, 3.3, 2.7]),
    r("OPT", 2, [27.0, 28.0, 31.0, 29.0, 27.0, 18.0, 8.5, 17.0, 72.0, 72.0]),
    r("OPT", 3, [40.0, 19.0, 19.0, 18.0, 16.0, 13.0, 11.0, 8.5, 7.1, 5.9]),
    r("OPT", 4, [54.0, 13.0, 17.0, 16.0, 15.0, 13.0, 12.0, 10.0, 9.4, 8.7]),
    Reference { family: "OPT", k: 5, are: [None, Some(12.0), Some(17.0), Some(14.0), Some(13.0), Some(11.0), Some(9.7), Some(8.4), Some(7.9), Some(7.4)] },
    r("Pile-T5", 2, [2.9, 4.1, 4.9, 4.7, 4.7, 2.9, 28.0, 4.5, 3.5, 4.1]),
    r("Pile-T5", 3, [5.6, 1.0, 4.7, 7.2, 8.2, 8.5, 8.7, 8.9, 9.0, 9.2]),
];

/// Does our ARE land within max(2 points, 25% relative) of the reference?
pub fn within_tolerance(ours: f64, reference: f64) -> bool {
    (ours - reference).abs() <= (2.0f64).max(0.25 * reference)
}

/// Training points from the models at `indices` (into family.models), with 1e10 < tokens < p T.
pub fn train_points(family: &Family, indices: &[usize], p: f64) -> Vec<Obs> {
    let t = indices.iter().map(|&i| family.models[i].max_tokens()).fold(0.0, f64::max);
    indices
        .iter()
        .flat_map(|&i| {
            let m = &family.models[i];
            m.checkpoints.iter().filter(move |c| c.tokens > MIN_TOKENS && c.tokens < p * t).map(move |c| Obs { n: m.params, d: c.tokens, loss: c.loss })
        })
        .collect()
}

/// Only the last checkpoint of each model at `indices` (the "final losses only" design).
pub fn final_points(family: &Family, indices: &[usize]) -> Vec<Obs> {
    indices
        .iter()
        .filter_map(|&i| {
            let m = &family.models[i];
            m.checkpoints.last().map(|c| Obs { n: m.params, d: c.tokens, loss: c.loss })
        })
        .collect()
}

/// The target (largest model)'s checkpoints with tokens >= 0.7 of its maximum.
pub fn test_points(family: &Family) -> Vec<Obs> {
    let Some(target) = family.models.last() else { return Vec::new() };
    let t = target.max_tokens();
    target.checkpoints.iter().filter(|c| c.tokens >= TEST_FRACTION * t).map(|c| Obs { n: target.params, d: c.tokens, loss: c.loss }).collect()
}

/// Absolute relative error in percent: 100 * mean |L - L_hat| / L.
pub fn are(law: &Law, test: &[Obs]) -> f64 {
    if test.is_empty() {
        return f64::NAN;
    }
    100.0 * test.iter().map(|o| (o.loss - law.predict(o.n, o.d)).abs() / o.loss).sum::<f64>() / test.len() as f64
}
