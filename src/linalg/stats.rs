//! Correlation of two samples: Pearson's r on the values, Spearman's rho as Pearson's r on the
//! ranks (ties share their average rank). Both are NaN when a sample is constant, shorter than
//! two, the lengths differ, or a value is not finite: "no correlation measurable", never 0.
//! Also feature standardisation for probes: x (N, F) row-major.

/// Pearson's r of x and y.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 || y.len() != n || x.iter().chain(y).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx > 0.0 && syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        f64::NAN
    }
}

/// Ranks 0..n of v, ties given the mean of the ranks they span.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && v[idx[end]] == v[idx[start]] {
            end += 1;
        }
        let mean_rank = (start + end - 1) as f64 / 2.0;
        idx[start..end].iter().for_each(|&i| r[i] = mean_rank);
        start = end;
    }
    r
}

/// Spearman's rho of x and y.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    pearson(&ranks(x), &ranks(y))
}

/// Per-feature mean and standard deviation of x (N, F) (1 where a feature is constant).
pub fn standardiser(x: &[f64], f: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / f.max(1)).max(1) as f64;
    let mut mean = vec![0.0; f];
    x.chunks(f).for_each(|row| mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n));
    let mut var = vec![0.0; f];
    x.chunks(f).for_each(|row| var.iter_mut().zip(row).zip(&mean).for_each(|((s, v), m)| *s += (v - m).powi(2) / n));
    (mean, var.into_iter().map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 }).collect())
}

/// x (N, F) with each feature shifted by `mean` and divided by `scale` (from `standardiser`).
pub fn standardise(x: &[f64], mean: &[f64], scale: &[f64]) -> Vec<f64> {
    let f = mean.len().max(1);
    x.chunks(f).flat_map(|row| row.iter().zip(mean).zip(scale).map(|((v, m), s)| (v - m) / s)).collect()
}
