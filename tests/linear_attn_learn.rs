//! linear-attn-learn: the folded feature map against a direct computation, OLS recovering a
//! random teacher to < 1e-8 relative MSE, recovered heads reproducing it on fresh inputs, the
//! certificate (full rank on generic data, the predicted rank on two degenerate sets, and OOD
//! error following it), the student matching the f64 reference and passing a gradcheck, bad
//! configs refused, and the tiny-scale run writing report.json with the required keys.

use kiln::autograd::gradcheck::{gradcheck, GradcheckConfig};
use kiln::methods::linear_attn_learn::features::{self, Mhla};
use kiln::methods::linear_attn_learn::model::{forward_with, Student};
use kiln::methods::linear_attn_learn::tasks::{self, Dataset, Tokens};
use kiln::methods::linear_attn_learn::{self as lal, Config};
use kiln::{DType, Tensor};

fn rel(pred: &[f64], target: &[f64], d: usize) -> f64 {
    features::mse_rel(pred, target, d)
}

#[test]
fn folded_features_match_a_direct_computation() {
    let (d, t, n) = (3, 5, 2);
    let teacher = Mhla::random(d, 2, 11);
    let ds = tasks::teacher_data(&teacher, Tokens::Gaussian, n, t, 12);
    let rows = features::psi(&ds);
    let f = features::n_features(d);
    assert_eq!(f, 18);
    assert_eq!(rows.len(), n * t * f);
    // psi_t[(p(a,b), c)] = (Z_{<=t}^T Z_{<=t})[a,b] z_t[c], with the Gram matrix summed afresh.
    let pairs = features::pairs(d);
    for seq in 0..n {
        for pos in 0..t {
            let tok = |s: usize, c: usize| ds.z[(seq * t + s) * d + c];
            for (p, &(a, b)) in pairs.iter().enumerate() {
                let gram: f64 = (0..=pos).map(|s| tok(s, a) * tok(s, b)).sum();
                for c in 0..d {
                    let got = rows[(seq * t + pos) * f + p * d + c];
                    assert!((got - gram * tok(pos, c)).abs() < 1e-12, "psi at seq {seq} pos {pos} pair ({a},{b}) c {c}");
                }
            }
        }
    }
    // The folded teacher W gives the teacher's outputs through the features.
    let beta = features::fold(&teacher.w(), d);
    let y = features::predict(&rows, &beta, d);
    for (a, b) in y.iter().zip(&ds.y) {
        assert!((a - b).abs() < 1e-10 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // fold(unfold(beta)) = beta.
    let again = features::fold(&features::unfold(&beta, d), d);
    assert!(again.iter().zip(&beta).all(|(a, b)| (a - b).abs() < 1e-14));
}

#[test]
fn ols_recovers_a_random_teacher_and_its_heads_reproduce_it() {
    for (d, heads) in [(2, 1), (3, 2)] {
        let teacher = Mhla::random(d, heads, 21 + d as u64);
        let train = tasks::teacher_data(&teacher, Tokens::Gaussian, 40, 12, 22);
        let test = tasks::teacher_data(&teacher, Tokens::Gaussian, 20, 12, 23);
        let fit = features::ols(&train).unwrap();
        assert_eq!(fit.rank, features::n_features(d), "generic data: full-rank design");
        let pred = features::predict(&features::psi(&test), &fit.beta, d);
        let err = rel(&pred, &test.targets(), d);
        assert!(err < 1e-8, "d = {d}: OLS test MSE / var = {err:e}");
        let rec = features::recover_heads(&features::unfold(&fit.beta, d), d, lal::HEAD_RTOL).unwrap();
        assert!(!rec.heads.is_empty() && rec.heads.len() <= d * d);
        let fresh = tasks::teacher_data(&teacher, Tokens::Shifted, 10, 30, 24);
        let err = rel(&rec.apply(&fresh.z, fresh.n, fresh.t), &fresh.y, d);
        assert!(err < 1e-8, "d = {d}: recovered heads on fresh inputs: MSE / var = {err:e}");
    }
}

#[test]
fn certificate_is_full_rank_on_generic_data_and_rank_deficient_on_degenerate_data() {
    let d = 3;
    let teacher = Mhla::random(d, 1, 31);
    let cert = |kind| features::certificate(&tasks::teacher_data(&teacher, kind, 60, 10, 32)).unwrap();
    let g = cert(Tokens::Gaussian);
    assert!(g.full_rank && g.rank == 18 && g.lambda_min > 1e-6 * g.lambda_max, "{g:?}");
    // Tokens in a 2-dim subspace: 3 pairs x 2 coordinates of features survive.
    let s = cert(Tokens::Subspace);
    assert_eq!((s.rank, s.full_rank), (6, false), "{s:?}");
    assert!(s.lambda_min.abs() < 1e-9 * s.lambda_max);
    // One line per sequence: only the fully symmetric tensors, d (d+1) (d+2) / 6 = 10.
    let c = cert(Tokens::Collinear);
    assert_eq!((c.rank, c.full_rank), (10, false), "{c:?}");
    // ... and the out-of-distribution error follows the certificate.
    let rows = lal::certificate_rows(&Config::tiny()).unwrap();
    for r in &rows {
        if r.dataset == "gaussian" {
            assert!(r.full_rank && r.ood_mse_rel < 1e-8, "{r:?}");
        } else {
            assert!(!r.full_rank && r.ood_mse_rel > 1e-3, "{r:?}");
        }
        assert!(r.in_dist_mse_rel < 1e-8, "in distribution every data set is fitted: {r:?}");
    }
}

#[test]
fn memory_is_solved_exactly_by_least_squares() {
    let train = tasks::memory(60, 3, 2, 41);
    let test = tasks::memory(20, 3, 2, 42);
    let fit = features::ols(&train).unwrap();
    let pred = features::predict(&features::psi(&test), &fit.beta, train.d);
    assert!(rel(&pred, &test.targets(), train.d) < 1e-8);
    assert_eq!(tasks::memory_accuracy(&test, 3, &pred), 1.0);
    let dfa = tasks::dfa(4, 3, 2, 43);
    assert_eq!((dfa.d, dfa.t, dfa.rows()), (8, 12, 24));
    assert_eq!(tasks::dfa_accuracy(&dfa, 3, 2, &dfa.targets()), 1.0);
}

/// A one-layer student's weights as f64 heads: V_h = (Wv block h)^T, Q_h = (Wq block h)^T.
fn as_heads(s: &Student) -> Mhla {
    let (d, h) = (s.d, s.heads);
    let (wq, wv) = (s.wq[0].to_vec_f64().unwrap(), s.wv[0].to_vec_f64().unwrap());
    let heads = (0..h)
        .map(|k| features::Head {
            v: (0..d * d).map(|r| wv[(r % d) * h * d + k * d + r / d]).collect(),
            q: (0..d * d).map(|r| wq[(r % d) * h * d + k * d + r / d]).collect(),
        })
        .collect();
    Mhla { d, heads }
}

#[test]
fn student_matches_the_f64_reference() {
    let (d, t) = (3, 70); // T past the chunk size 64
    let s = Student::new(d, 3, 1, 51).unwrap();
    let ds: Dataset = tasks::teacher_data(&Mhla::random(d, 1, 52), Tokens::Gaussian, 4, t, 53);
    let got = s.predict(&ds).unwrap();
    let want = as_heads(&s).apply(&ds.z, ds.n, ds.t);
    let err = rel(&got, &want, d);
    assert!(err < 1e-10, "student vs reference: MSE / var = {err:e}");
}

#[test]
fn student_gradients_pass_gradcheck() {
    let (b, t, d, h) = (2, 6, 3, 2);
    let x = Tensor::randn(vec![b, t, d], 0.7, 61, 0).unwrap().to_dtype(DType::F64).unwrap();
    let w = |stream| Tensor::randn(vec![d, h * d], 0.4, 61, stream).unwrap();
    let inputs = [x, w(1), w(2), w(3), w(4)];
    // inputs: x, then (wq, wv) of layer 0 and of layer 1
    let f = |xs: &[Tensor]| forward_with(&xs[0], &[xs[1].clone(), xs[3].clone()], &[xs[2].clone(), xs[4].clone()], h);
    let r = gradcheck(f, &inputs, &GradcheckConfig::default()).unwrap();
    assert!(r.checks > 0);
}

#[test]
fn bad_configs_are_refused_by_name() {
    let err = lal::reproduce(&Config { dims: vec![], ..Config::tiny() }).unwrap_err().to_string();
    assert!(err.contains("dims"), "{err}");
    let err = lal::reproduce(&Config { heads: vec![0], ..Config::tiny() }).unwrap_err().to_string();
    assert!(err.contains("heads"), "{err}");
    assert!(Student::new(2, 0, 1, 0).is_err());
}

#[test]
fn tiny_run_writes_the_report() {
    let out = std::env::temp_dir().join(format!("kiln-test-lal-{}", std::process::id()));
    let report = lal::run(&Config::tiny(), &out).unwrap();
    assert_eq!(report.passed, Some(true), "{}", report.headline);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let teachers = json["teachers"].as_array().unwrap();
    assert!(teachers.iter().any(|r| r["method"] == "ols") && teachers.iter().any(|r| r["method"] == "adam"));
    for r in teachers {
        for key in ["d", "n", "method", "heads", "layers", "test_mse_rel", "steps"] {
            assert!(r.get(key).is_some(), "teachers row lacks {key}: {r}");
        }
    }
    let cert = json["certificate"].as_array().unwrap();
    assert_eq!(cert.len(), 3);
    for r in cert {
        for key in ["dataset", "rank", "full_rank", "lambda_min", "ood_mse_rel"] {
            assert!(r.get(key).is_some(), "certificate row lacks {key}: {r}");
        }
    }
    for f in ["report.md", "error_vs_heads.png", "error_vs_n.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    std::fs::remove_dir_all(&out).ok();
}
