//! src/linalg: QR least squares, L-BFGS (Rosenbrock, infinite regions), bounded non-linear least
//! squares (recovery, bounds), the Huber loss and logistic regression (separable data, optimality).

mod common;

use common::assert_close;
use kiln::linalg::{huber, huber_grad, huber_sum, least_squares, lstsq, minimize, LbfgsOptions, LogReg, LogRegOptions, LsqOptions};

#[test]
fn lstsq_solves_an_overdetermined_system_exactly_when_consistent() {
    // a: (4, 2), b = a [2, -3]
    let a = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, -1.0];
    let b = [2.0, -3.0, -1.0, 7.0];
    let x = lstsq(&a, 4, 2, &b).unwrap();
    assert_close(&x, &[2.0, -3.0], 1e-12, 0.0, "lstsq");
    assert!(lstsq(&a, 4, 3, &b).is_err(), "wrong shape must be refused");
    assert!(lstsq(&[f64::NAN, 1.0], 2, 1, &[1.0, 1.0]).is_err(), "NaN must be refused");
}

/// Rosenbrock in n dimensions: sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, minimum 0 at all ones.
fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    g.fill(0.0);
    let mut f = 0.0;
    for i in 0..x.len() - 1 {
        let (u, v) = (x[i + 1] - x[i] * x[i], 1.0 - x[i]);
        f += 100.0 * u * u + v * v;
        g[i] += -400.0 * u * x[i] - 2.0 * v;
        g[i + 1] += 200.0 * u;
    }
    f
}

#[test]
fn lbfgs_minimises_rosenbrock() {
    let opts = LbfgsOptions { gtol: 1e-8, ftol: 0.0, ..Default::default() };
    let m = minimize(rosenbrock, &[-1.2, 1.0], &opts).unwrap();
    assert!(m.converged(), "stopped with {:?}", m.stop);
    assert_close(&m.x, &[1.0, 1.0], 1e-6, 0.0, "2-D Rosenbrock minimum");
    assert!(m.iterations < 100, "{} iterations is far more than L-BFGS needs", m.iterations);

    let x0: Vec<f64> = (0..10).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect();
    let m = minimize(rosenbrock, &x0, &opts).unwrap();
    assert!(m.converged(), "10-D stopped with {:?}", m.stop);
    assert_close(&m.x, &[1.0; 10], 1e-5, 0.0, "10-D Rosenbrock minimum");
    assert!(m.f < 1e-10, "f = {}", m.f);
}

#[test]
fn lbfgs_backs_off_from_infinite_values_and_refuses_a_bad_start() {
    // f(x) = x - ln x, minimum at x = 1; infinite (NaN) for x <= 0, which a long first step hits.
    let f = |x: &[f64], g: &mut [f64]| {
        g[0] = 1.0 - 1.0 / x[0];
        if x[0] > 0.0 { x[0] - x[0].ln() } else { f64::NAN }
    };
    let m = minimize(f, &[0.05], &LbfgsOptions { gtol: 1e-10, ..Default::default() }).unwrap();
    assert!((m.x[0] - 1.0).abs() < 1e-6, "x = {}", m.x[0]);
    let err = minimize(f, &[-1.0], &LbfgsOptions::default()).unwrap_err().to_string();
    assert!(err.contains("not finite at the start"), "{err}");
}

/// Residuals of y = c * exp(-k t) against data; x = [c, k].
fn exp_model<'a>(t: &'a [f64], y: &'a [f64]) -> impl FnMut(&[f64], &mut [f64], &mut [f64]) + 'a {
    move |x: &[f64], r: &mut [f64], jac: &mut [f64]| {
        for i in 0..t.len() {
            let e = (-x[1] * t[i]).exp();
            r[i] = x[0] * e - y[i];
            jac[2 * i] = e;
            jac[2 * i + 1] = -x[0] * t[i] * e;
        }
    }
}

#[test]
fn bounded_least_squares_recovers_parameters_inside_the_box() {
    let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.2).collect();
    let y: Vec<f64> = t.iter().map(|t| 3.0 * (-0.7 * t).exp()).collect();
    for jacobian_scaling in [false, true] {
        let opts = LsqOptions { jacobian_scaling, ..Default::default() };
        let fit = least_squares(exp_model(&t, &y), &[1.0, 0.1], t.len(), &[0.0, 0.0], &[10.0, 5.0], &opts).unwrap();
        assert!(fit.converged(), "stopped with {:?}", fit.stop);
        assert_close(&fit.x, &[3.0, 0.7], 1e-6, 0.0, "c, k");
        assert!(fit.cost < 1e-12, "cost {}", fit.cost);
    }
}

#[test]
fn bounded_least_squares_respects_bounds() {
    // True k = 0.7, but the box says k >= 1.5: the answer sits on the bound, never below it,
    // and c is then the best c for k = 1.5 (closed form: c = sum y e / sum e^2).
    let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.2).collect();
    let y: Vec<f64> = t.iter().map(|t| 3.0 * (-0.7 * t).exp()).collect();
    let mut lowest_k = f64::INFINITY;
    let mut model = exp_model(&t, &y);
    let watched = |x: &[f64], r: &mut [f64], j: &mut [f64]| {
        lowest_k = lowest_k.min(x[1]);
        model(x, r, j)
    };
    let fit = least_squares(watched, &[1.0, 3.0], t.len(), &[0.0, 1.5], &[10.0, 5.0], &LsqOptions::default()).unwrap();
    assert!(fit.converged(), "stopped with {:?}", fit.stop);
    assert_eq!(fit.x[1], 1.5, "k must end on its lower bound");
    assert!(lowest_k >= 1.5, "the model was evaluated at k = {lowest_k}, outside the box");
    let e: Vec<f64> = t.iter().map(|t| (-1.5 * t).exp()).collect();
    let c_best = y.iter().zip(&e).map(|(y, e)| y * e).sum::<f64>() / e.iter().map(|e| e * e).sum::<f64>();
    assert!((fit.x[0] - c_best).abs() < 1e-6, "c = {} vs {c_best}", fit.x[0]);
    // Bad input is refused, not panicked on.
    assert!(least_squares(exp_model(&t, &y), &[1.0, 1.0], t.len(), &[0.0, 2.0], &[10.0, 1.0], &LsqOptions::default()).is_err());
    assert!(least_squares(exp_model(&t, &y), &[f64::NAN, 1.0], t.len(), &[0.0, 0.0], &[10.0, 5.0], &LsqOptions::default()).is_err());
}

#[test]
fn huber_is_quadratic_then_linear() {
    let d = 1e-3;
    assert_eq!(huber(5e-4, d), 0.5 * 5e-4 * 5e-4);
    assert!((huber(-3e-3, d) - d * (3e-3 - 0.5 * d)).abs() < 1e-18);
    assert_eq!(huber_grad(-3e-3, d), -d);
    assert_eq!(huber_grad(2e-4, d), 2e-4);
    let mut g = [0.0; 2];
    let s = huber_sum(&[5e-4, -3e-3], d, &mut g);
    assert!((s - huber(5e-4, d) - huber(-3e-3, d)).abs() < 1e-18);
    assert_eq!(g, [5e-4, -d]);
    // Continuous at |r| = delta, value and slope.
    assert!((huber(d, d) - huber(d * (1.0 + 1e-12), d)).abs() < 1e-15);
}

/// The sklearn-scaled objective, written out independently of the library.
fn logreg_objective(m: &LogReg, x: &[f64], y: &[usize], c: f64) -> f64 {
    let (n, f, k) = (y.len(), m.n_features, m.n_classes);
    let mut loss = 0.0;
    for i in 0..n {
        let z: Vec<f64> = (0..k).map(|j| m.bias[j] + (0..f).map(|q| x[i * f + q] * m.weights[q * k + j]).sum::<f64>()).collect();
        let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        loss += mx + z.iter().map(|v| (v - mx).exp()).sum::<f64>().ln() - z[y[i]];
    }
    loss / n as f64 + m.weights.iter().map(|w| w * w).sum::<f64>() / (2.0 * c * n as f64)
}

#[test]
fn logistic_regression_separates_separable_classes() {
    // Three well-separated clusters in 2-D: x = centre + small offsets; (N, F) = (60, 2).
    let centres = [(0.0, 4.0), (4.0, -2.0), (-4.0, -2.0)];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..60 {
        let c = i % 3;
        let (dx, dy) = (((i * 7) % 11) as f64 / 11.0 - 0.5, ((i * 5) % 13) as f64 / 13.0 - 0.5);
        x.extend([centres[c].0 + dx, centres[c].1 + dy]);
        y.push(c);
    }
    let m = LogReg::fit(&x, 60, 2, &y, 3, &LogRegOptions::default()).unwrap();
    assert_eq!(m.accuracy(&x, 60, &y).unwrap(), 1.0);
    assert_eq!(m.predict(&[0.1, 3.8, 3.9, -2.2], 2).unwrap(), vec![0, 1]);
}

#[test]
fn logistic_regression_reaches_the_optimum_of_its_objective() {
    // Overlapping classes so the optimum is finite; check no coordinate move lowers the
    // objective (computed independently above): a first-order optimality test.
    let (n, f, k) = (90, 3, 3);
    let x: Vec<f64> = (0..n * f).map(|i| ((i * 37 % 101) as f64 / 101.0 - 0.5) * 2.0).collect();
    let y: Vec<usize> = (0..n).map(|i| if x[i * f] + 0.5 * x[i * f + 1] > 0.3 { 0 } else if x[i * f + 2] > 0.0 { 1 } else { 2 }).collect();
    let c = 0.5;
    let opts = LogRegOptions { c, tol: 1e-9, max_iter: 1000, ..Default::default() };
    let m = LogReg::fit(&x, n, f, &y, k, &opts).unwrap();
    assert!(m.converged);
    let f0 = logreg_objective(&m, &x, &y, c);
    assert!((f0 - m.objective).abs() < 1e-10, "objective {} vs independent {}", m.objective, f0);
    let h = 1e-4;
    for idx in 0..(f * k + k) {
        for sign in [-1.0, 1.0] {
            let mut p = m.clone();
            if idx < f * k { p.weights[idx] += sign * h } else { p.bias[idx - f * k] += sign * h }
            let fp = logreg_objective(&p, &x, &y, c);
            assert!(fp >= f0 - 1e-12, "moving parameter {idx} by {} lowers the objective: {fp} < {f0}", sign * h);
        }
    }
    // Bad labels are refused.
    let mut bad = y.clone();
    bad[3] = 7;
    assert!(LogReg::fit(&x, n, f, &bad, k, &opts).is_err());
}

#[test]
fn pearson_and_spearman_match_hand_values_and_refuse_the_unmeasurable() {
    use kiln::linalg::{pearson, spearman, stats::ranks};
    // x = 1..5, y = 2x + 1: r = 1; y reversed: r = -1.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert!((pearson(&x, &[3.0, 5.0, 7.0, 9.0, 11.0]) - 1.0).abs() < 1e-12);
    assert!((pearson(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    // By hand: x = [1, 2, 3], y = [1, 3, 2]: cov 1, var 2 and 2 -> r = 0.5.
    assert!((pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]) - 0.5).abs() < 1e-12);
    // Spearman sees only order: a monotone curve is 1 where Pearson is not.
    let cubes: Vec<f64> = x.iter().map(|v: &f64| v.powi(5)).collect();
    assert!((spearman(&x, &cubes) - 1.0).abs() < 1e-12 && pearson(&x, &cubes) < 0.99);
    // Ties share their mean rank: [10, 20, 20, 30] -> [0, 1.5, 1.5, 3].
    assert_eq!(ranks(&[10.0, 20.0, 20.0, 30.0]), vec![0.0, 1.5, 1.5, 3.0]);
    // rho with ties, by hand: ranks x [0, 1.5, 1.5, 3], y [0, 1, 2, 3]: cov 4.5, var 4.5 and 5 -> 0.9487.
    assert!((spearman(&[10.0, 20.0, 20.0, 30.0], &[1.0, 2.0, 3.0, 4.0]) - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-12);
    for (a, b) in [(&[1.0, 1.0, 1.0][..], &[1.0, 2.0, 3.0][..]), (&[1.0][..], &[2.0][..]), (&[1.0, 2.0][..], &[1.0, 2.0, 3.0][..]), (&[1.0, f64::NAN][..], &[1.0, 2.0][..])] {
        assert!(pearson(a, b).is_nan() && spearman(a, b).is_nan(), "{a:?} {b:?}: a constant, short, unequal or non-finite sample has no correlation");
    }
}
