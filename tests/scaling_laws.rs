//! scaling-laws: both fit variants recover known parameters, bad CSV input is refused with file,
//! line and column, and the reproduction of the published table on the real data
//! (../shared/data/scaling-laws) reaches the bar: >= 90% of readable cells within
//! max(2 points, 25% relative).

use kiln::methods::scaling_laws::data::load_csv;
use kiln::methods::scaling_laws::law::{fit_huber, fit_lsq, Law, Obs, HUBER_DELTA, PUBLISHED_START};
use kiln::methods::scaling_laws::{self as sl, Config, HuberGrid};
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/scaling-laws")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-test-scaling-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Noise-free losses from `truth` on 5 model sizes x 20 token counts.
fn synthetic(truth: &Law) -> Vec<Obs> {
    let mut obs = Vec::new();
    for i in 0..5 {
        let n = 1e7 * 10f64.powf(i as f64 * 0.5);
        for j in 0..20 {
            let d = 1e9 * 10f64.powf(j as f64 * 0.125);
            obs.push(Obs { n, d, loss: truth.predict(n, d) });
        }
    }
    obs
}

fn assert_law_close(got: &Law, want: &Law, tol: f64, what: &str) {
    let (g, w) = (got.to_vec(), want.to_vec());
    for i in 0..5 {
        assert!((g[i] - w[i]).abs() <= tol, "{what}: parameter {i} is {} but should be {} (all: {g:?})", g[i], w[i]);
    }
}

#[test]
fn least_squares_fit_recovers_known_parameters() {
    let truth = Law { a: 400f64.ln(), b: 600f64.ln(), e: 1.8f64.ln(), alpha: 0.33, beta: 0.29 };
    let fit = fit_lsq(&synthetic(&truth), &PUBLISHED_START).unwrap();
    assert!(fit.converged);
    assert_law_close(&fit.law, &truth, 1e-4, "least squares");
}

#[test]
fn huber_fit_recovers_known_parameters() {
    let truth = Law { a: 400f64.ln(), b: 600f64.ln(), e: 1.8f64.ln(), alpha: 0.33, beta: 0.29 };
    let fit = fit_huber(&synthetic(&truth), &HuberGrid::Coarse.starts(), HUBER_DELTA).unwrap();
    assert_eq!(fit.starts, 32);
    assert_law_close(&fit.law, &truth, 1e-3, "Huber");
    // Refuses impossible data.
    assert!(fit_huber(&[Obs { n: 1e8, d: 1e9, loss: -1.0 }], &HuberGrid::Coarse.starts(), HUBER_DELTA).is_err());
    assert!(fit_lsq(&[], &PUBLISHED_START).is_err());
}

/// Write `text` to a scratch CSV and load it; the error message if it fails.
fn load_err(name: &str, text: &str) -> String {
    let path = scratch("csv").join(name);
    std::fs::write(&path, text).unwrap();
    let err = load_csv(&path).expect_err("bad CSV must be refused").to_string();
    assert!(err.contains(name), "the error must name the file: {err}");
    err
}

#[test]
fn csv_missing_column_is_named() {
    let err = load_err("missing.csv", "model,params,loss\nm1,1e8,3.0\n");
    assert!(err.contains("line 1") && err.contains("missing column \"tokens\""), "{err}");
}

#[test]
fn csv_non_numeric_value_names_line_and_column() {
    let err = load_err("text.csv", "model,params,tokens,loss\nm1,1e8,1e10,3.0\nm1,1e8,lots,2.9\n");
    assert!(err.contains("line 3") && err.contains("column 3") && err.contains("\"tokens\"") && err.contains("\"lots\" is not a number"), "{err}");
}

#[test]
fn csv_nan_is_refused() {
    let err = load_err("nan.csv", "model,params,tokens,loss\nm1,1e8,1e10,NaN\n");
    assert!(err.contains("line 2") && err.contains("\"loss\"") && err.contains("not a finite number"), "{err}");
}

#[test]
fn csv_negative_params_are_refused() {
    let err = load_err("neg.csv", "model,params,tokens,loss\nm1,-1e8,1e10,3.0\n");
    assert!(err.contains("line 2") && err.contains("\"params\"") && err.contains("must be > 0"), "{err}");
}

#[test]
fn csv_inconsistent_params_and_empty_files_are_refused() {
    let err = load_err("twice.csv", "model,params,tokens,loss\nm1,1e8,1e10,3.0\nm1,2e8,2e10,2.9\n");
    assert!(err.contains("line 3") && err.contains("earlier row"), "{err}");
    let err = load_err("empty.csv", "model,params,tokens,loss\n");
    assert!(err.contains("no usable rows"), "{err}");
    let missing = scratch("csv").join("does-not-exist.csv");
    assert!(load_csv(&missing).unwrap_err().to_string().contains("does-not-exist.csv"));
}

#[test]
fn csv_fit_on_a_users_runs() {
    // A well-formed file with extra columns and header case differences: loads and fits.
    let truth = Law { a: 400f64.ln(), b: 600f64.ln(), e: 1.8f64.ln(), alpha: 0.33, beta: 0.29 };
    let mut text = String::from("Model,Params,Tokens,Loss,comment\n");
    for o in synthetic(&truth) {
        text += &format!("m{:.0},{},{},{},x\n", o.n.log10() * 10.0, o.n, o.d, o.loss);
    }
    let path = scratch("fit").join("runs.csv");
    std::fs::write(&path, text).unwrap();
    let fit = sl::fit_csv(&path, HuberGrid::Coarse).unwrap();
    assert_eq!(fit.family.models.len(), 5);
    assert_law_close(&fit.lsq.law, &truth, 1e-4, "fit_csv least squares");
    let summary = sl::fit_summary(&fit);
    assert!(summary.contains("alpha = 0.33"), "{summary}");
}

#[test]
fn family_loaders_read_the_released_data() {
    let fams = sl::data::load_families(&data_dir()).expect("the released data must be at ../shared/data/scaling-laws");
    let sizes: Vec<(String, usize)> = fams.iter().map(|f| (f.name.clone(), f.models.len())).collect();
    assert_eq!(sizes, vec![("GPT-3".into(), 8), ("OPT".into(), 6), ("Pile-T5".into(), 4)]);
    let gpt3 = &fams[0];
    assert_eq!(gpt3.models[0].params, 125e6);
    assert_eq!(gpt3.models[7].params, 175e9);
    assert!(gpt3.models[0].checkpoints.iter().all(|c| c.tokens > 9e9 && c.tokens < 3.01e11));
    let t5 = &fams[2];
    assert_eq!(t5.models[3].params, 11_135_426_560.0);
    assert!(t5.models.iter().all(|m| m.checkpoints.iter().all(|c| c.tokens >= 1e6)), "step 0 rows must be dropped");
    // OPT tokens = steps * batch: 175b, 4000 steps of 2M tokens is its first checkpoint.
    assert_eq!(fams[1].models[5].checkpoints[0].tokens, 8e9);
}

#[test]
fn reproduce_reaches_the_published_table() {
    let cfg = Config { data: Some(data_dir()), ..Config::tiny() };
    let r = sl::reproduce(&cfg).unwrap();
    assert_eq!(r.cells.len(), 120);
    assert_eq!(r.readable, 119, "one reference cell (OPT k=5, p=0.1) is unreadable");
    let frac = r.hits as f64 / r.readable as f64;
    let misses: Vec<String> =
        r.cells.iter().filter(|c| c.within_tolerance == Some(false)).map(|c| format!("{} k={} p={:.1}: {:.2} vs {:?}", c.family, c.k, c.p, c.are.unwrap_or(f64::NAN), c.reference_are)).collect();
    assert!(frac >= 0.9, "{} of {} cells within tolerance; misses: {misses:#?}", r.hits, r.readable);
    for c in r.cells.iter().filter(|c| c.within_tolerance == Some(false)) {
        let text = c.explanation.as_deref().unwrap_or("");
        for part in ["Fit variant:", "Start:", "Local optimum:", "Other fit variant:"] {
            assert!(text.contains(part), "a miss must be explained ({part}): {text}");
        }
    }
    // The claims are measured, with numbers, on every family.
    assert_eq!(r.claims.checkpoints.len(), 12);
    assert!(r.claims.checkpoints.iter().all(|c| c.are_all.is_finite() && c.are_final.is_finite()));
    assert_eq!(r.claims.size_by_family.len(), 3);
}

#[test]
fn repro_writes_reports_and_an_index() {
    let out = scratch("repro");
    let data_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let entries = kiln::methods::repro(kiln::methods::Scale::Tiny, &out, Some(&data_root)).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(names, ["scaling-laws", "intruders", "linear-attn-learn", "random-transformers", "forgetting", "adaptive-compute", "algae", "erase", "misinfo-eval"]);
    for e in &entries {
        assert!(e.error.is_none() && e.report.is_some(), "{}: {:?}", e.method, e.error);
        assert!(out.join(&e.method).join("report.md").is_file(), "{}/report.md missing", e.method);
    }
    for f in ["index.md", "index.json", "scaling-laws/report.md", "scaling-laws/report.json", "scaling-laws/are_gpt-3.png", "scaling-laws/claim_size.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(index.contains("[report](scaling-laws/report.md)"), "{index}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("scaling-laws/report.json")).unwrap()).unwrap();
    let cell = &json["cells"][0];
    for key in ["family", "k", "p", "are", "reference_are"] {
        assert!(!cell[key].is_null(), "report.json cells need \"{key}\": {cell}");
    }
    let png = std::fs::read(out.join("scaling-laws/are_opt.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // No temp files left behind by the atomic writes.
    let leftovers: Vec<_> = std::fs::read_dir(out.join("scaling-laws")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    // A missing data folder is a clear error, not a panic.
    let err = kiln::methods::repro(kiln::methods::Scale::Tiny, &scratch("repro-missing"), Some(Path::new("/nonexistent/data"))).unwrap_err().to_string();
    assert!(err.contains("scaling-laws data not found") && err.contains("/nonexistent/data"), "{err}");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn sweep_trains_a_family_fits_and_predicts_deterministically() {
    use kiln::methods::scaling_laws::sweep::{sweep, SweepConfig};
    let mut cfg = SweepConfig::tiny();
    cfg.steps = 20;
    let a = sweep(&cfg).unwrap();
    assert_eq!(a.runs.len(), 3);
    assert!(a.runs.windows(2).all(|w| w[0].params < w[1].params));
    assert!(a.runs.iter().all(|r| r.points.len() == 4 && r.points.iter().all(|p| p.1.is_finite() && p.1 > 0.0)));
    // losses fall with training for every member
    assert!(a.runs.iter().all(|r| r.points.last().unwrap().1 < r.points[0].1), "{:?}", a.runs);
    assert!(a.are_target.is_finite() && a.are_target >= 0.0);
    let b = sweep(&cfg).unwrap();
    assert_eq!(a.are_target.to_bits(), b.are_target.to_bits(), "same seeds, same sweep");
    cfg.widths = vec![8, 16];
    assert!(sweep(&cfg).unwrap_err().to_string().contains("widths"));
}
