//! Intruder dimensions: the SVD (reconstruction and orthogonality at eps-scaled tolerances, f32
//! and f64, tall and wide), the symmetric eigen-decomposition, the max-|cos| analysis on
//! constructed matrices with a known answer, the scale-down edit, LoRA folding, the analysis of
//! two real checkpoints, and the tiny experiment's report.
use kiln::linalg::{eigh, svd, svd_f32};
use kiln::methods::intruders::analyze::{analyze, block_matrices, eps_key, scale_intruders, Matrix};
use kiln::methods::intruders::{analyze_checkpoints, run, Config};
use kiln::model::{Arch, Config as ModelConfig, Transformer};
use kiln::nn::{Init, LoraConfig};
use kiln::rng::normal_vec;
use kiln::train::*;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-intruders-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

fn randn64(seed: u64, n: usize) -> Vec<f64> {
    normal_vec(seed, 0, n, 0.0, 1.0).into_iter().map(f64::from).collect()
}

/// max |U S V^T - A| / (|A|_max) and the orthogonality errors of U and V, all in units of eps.
#[allow(clippy::too_many_arguments)]
fn check_svd(a: &[f64], m: usize, n: usize, u: &[f64], s: &[f64], vt: &[f64], eps: f64, what: &str) {
    let k = m.min(n);
    let amax = a.iter().fold(0.0f64, |x, y| x.max(y.abs()));
    for i in 0..m {
        for j in 0..n {
            let r: f64 = (0..k).map(|c| u[i * k + c] * s[c] * vt[c * n + j]).sum();
            assert!((r - a[i * n + j]).abs() <= 50.0 * eps * (m.max(n) as f64) * amax, "{what}: reconstruction at ({i}, {j}): {r} vs {}", a[i * n + j]);
        }
    }
    for p in 0..k {
        for q in 0..k {
            let want = if p == q { 1.0 } else { 0.0 };
            let uu: f64 = (0..m).map(|i| u[i * k + p] * u[i * k + q]).sum();
            let vv: f64 = (0..n).map(|j| vt[p * n + j] * vt[q * n + j]).sum();
            assert!((uu - want).abs() <= 50.0 * eps * m as f64, "{what}: U^T U [{p}, {q}] = {uu}");
            assert!((vv - want).abs() <= 50.0 * eps * n as f64, "{what}: V^T V [{p}, {q}] = {vv}");
        }
    }
    assert!(s.windows(2).all(|w| w[0] >= w[1]) && s.iter().all(|x| *x >= 0.0), "{what}: singular values not non-increasing and >= 0: {s:?}");
}

#[test]
fn svd_reconstructs_and_is_orthogonal_f64_and_f32() {
    for (m, n) in [(40, 40), (50, 17), (13, 60)] {
        let a = randn64(m as u64 * 100 + n as u64, m * n);
        let f = svd(&a, m, n).unwrap();
        check_svd(&a, m, n, &f.u, &f.s, &f.vt, f64::EPSILON, &format!("f64 {m}x{n}"));
        let a32: Vec<f32> = a.iter().map(|x| *x as f32).collect();
        let g = svd_f32(&a32, m, n).unwrap();
        let up = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<f64>>();
        let a32_64 = up(&a32);
        check_svd(&a32_64, m, n, &up(&g.u), &up(&g.s), &up(&g.vt), f32::EPSILON as f64, &format!("f32 {m}x{n}"));
        // the same singular values in both precisions
        for (x, y) in f.s.iter().zip(&g.s) {
            assert!((x - *y as f64).abs() <= 1e-4 * f.s[0], "sigma f64 {x} vs f32 {y}");
        }
    }
}

#[test]
fn svd_and_eigh_refuse_bad_input() {
    let e = svd(&[1.0, 2.0, 3.0], 2, 2).unwrap_err().to_string();
    assert!(e.contains("svd") && e.contains("M = 2"), "{e}");
    let e = svd_f32(&[1.0, f32::NAN, 0.0, 1.0], 2, 2).unwrap_err().to_string();
    assert!(e.contains("NaN"), "{e}");
    assert!(eigh(&[1.0; 6], 2).is_err());
}

#[test]
fn eigh_diagonalises_a_symmetric_matrix() {
    let n = 12;
    let b = randn64(7, n * n);
    let a: Vec<f64> = (0..n * n).map(|i| (0..n).map(|c| b[(i / n) * n + c] * b[(i % n) * n + c]).sum()).collect(); // B B^T
    let (vals, vecs) = eigh(&a, n).unwrap();
    assert!(vals.windows(2).all(|w| w[0] <= w[1]) && vals[0] >= -1e-10, "{vals:?}");
    for j in 0..n {
        for i in 0..n {
            let av: f64 = (0..n).map(|c| a[i * n + c] * vecs[c * n + j]).sum();
            assert!((av - vals[j] * vecs[i * n + j]).abs() < 1e-9 * vals[n - 1], "A v = lambda v fails at ({i}, {j})");
        }
    }
}

/// base W (in 24, out 16) with known singular vectors; tuned = W + sigma * u0 (v_3 + v_7)/sqrt 2,
/// sigma 50x above W's spectrum: the tuned top vector is (v_3 + v_7)/sqrt 2 up to O(1/50), max |cos| ~ 0.7071.
fn constructed() -> (Matrix, Matrix, Vec<f32>) {
    let (di, dout) = (24, 16);
    let w: Vec<f32> = normal_vec(3, 0, di * dout, 0.0, 0.1);
    let f = svd_f32(&w, di, dout).unwrap();
    let dir: Vec<f32> = (0..dout).map(|j| (f.vt[3 * dout + j] + f.vt[7 * dout + j]) / 2f32.sqrt()).collect();
    let u0: Vec<f32> = normal_vec(4, 0, di, 0.0, 1.0);
    let un = u0.iter().map(|x| x * x).sum::<f32>().sqrt();
    let tuned: Vec<f32> = (0..di * dout).map(|i| w[i] + 50.0 * u0[i / dout] / un * dir[i % dout]).collect();
    let m = |w: Vec<f32>| Matrix { name: "model.layers.0.mlp.up_proj".into(), d_in: di, d_out: dout, w };
    (m(w), m(tuned), dir)
}

#[test]
fn analysis_finds_a_constructed_intruder_at_the_right_cosine() {
    let (base, tuned, _) = constructed();
    let a = analyze(std::slice::from_ref(&base), std::slice::from_ref(&tuned), 4).unwrap();
    let mc = &a.matrices[0].max_cos;
    assert!((mc[0] - 0.5f64.sqrt()).abs() < 5e-3, "top tuned vector's max |cos| = {}, want 0.7071", mc[0]);
    assert_eq!(a.matrices[0].shape, [16, 24], "HF layout (out, in)");
    assert_eq!(a.totals[&eps_key(0.5)], a.matrices[0].max_cos.iter().filter(|c| **c < 0.5).count());
    assert!(a.totals[&eps_key(0.8)] >= 1, "the constructed direction is an intruder at eps 0.8");
    // A matrix against itself has no intruders at any threshold.
    let same = analyze(std::slice::from_ref(&base), std::slice::from_ref(&base), 8).unwrap();
    assert!(same.matrices[0].max_cos.iter().all(|c| (c - 1.0).abs() < 1e-4), "{:?}", same.matrices[0].max_cos);
    assert_eq!(same.totals[&eps_key(0.9)], 0);
    // Shape mismatches and missing matrices are named.
    let wide = Matrix { d_in: 16, d_out: 24, ..base.clone() };
    assert!(analyze(std::slice::from_ref(&base), &[wide], 4).unwrap_err().to_string().contains("up_proj"));
    let other = Matrix { name: "x".into(), ..base.clone() };
    assert!(analyze(&[base], &[other], 4).unwrap_err().to_string().contains("not in the base"));
}

#[test]
fn scaling_intruders_edits_exactly_their_directions() {
    let (base, tuned, _) = constructed();
    let a = analyze(std::slice::from_ref(&base), std::slice::from_ref(&tuned), 4).unwrap();
    let (same, hit1) = scale_intruders(std::slice::from_ref(&tuned), &a, 0.8, 1.0);
    assert!(hit1 >= 1 && same[0].w.iter().zip(&tuned.w).all(|(x, y)| (x - y).abs() < 1e-6), "lambda 1 is the identity");
    let (none, _) = scale_intruders(std::slice::from_ref(&tuned), &a, 0.8, 0.0);
    // Removing the injected direction leaves a matrix whose spectrum is back near the base's.
    let (sb, sn) = (svd_f32(&base.w, 24, 16).unwrap(), svd_f32(&none[0].w, 24, 16).unwrap());
    assert!(sn.s[0] < 2.0 * sb.s[0], "top sigma after removal {} vs base {}", sn.s[0], sb.s[0]);
    let (_, hit0) = scale_intruders(std::slice::from_ref(&tuned), &a, 0.05, 0.0);
    assert_eq!(hit0, 0, "nothing is below eps 0.05 here");
}

#[test]
fn lora_is_folded_into_the_analysed_weights() {
    let mut m = Transformer::new(ModelConfig::tiny(Arch::Llama, 17)).unwrap();
    let lc = LoraConfig { rank: 2, alpha: 4.0, rslora: true, targets: vec!["q".into(), "down".into()] };
    m.add_lora(&lc, &mut Init::new(5)).unwrap();
    let params: std::collections::BTreeMap<String, kiln::Tensor> = m.named_params().into_iter().collect();
    let b = &params["model.layers.0.self_attn.q_proj.lora_B.weight"];
    b.assign(&kiln::Tensor::randn(b.dims().to_vec(), 1.0, 9, 0).unwrap()).unwrap();
    let mats = block_matrices(&m).unwrap();
    assert_eq!(mats.len(), 2 * 7, "q, k, v, o, gate, up, down per layer");
    let q = mats.iter().find(|x| x.name == "model.layers.0.self_attn.q_proj").unwrap();
    let w = params["model.layers.0.self_attn.q_proj.weight"].to_vec_f32().unwrap();
    let ab = params["model.layers.0.self_attn.q_proj.lora_A.weight"].matmul(b).unwrap().to_vec_f32().unwrap();
    let s = 4.0 / 2f32.sqrt();
    for i in 0..w.len() {
        assert!((q.w[i] - (w[i] + s * ab[i])).abs() < 1e-5, "merged weight [{i}]");
    }
}

#[test]
fn analyze_two_kiln_checkpoints() {
    let vocab = 13;
    let cfg = |steps| RunConfig {
        model: ModelConfig::tiny(Arch::Llama, vocab),
        data: DataSpec::ModAdd { p: 11, train_fraction: 0.9, seed: 1 },
        train: TrainConfig { steps, batch_size: 8, lr: 1e-2, log_every: 1, progress: false, ..TrainConfig::default() },
    };
    let (a, b) = (tmp("ckpt-a"), tmp("ckpt-b"));
    run_training(&cfg(2), &a, None).unwrap();
    run_training(&cfg(30), &b, None).unwrap();
    let out = tmp("analyze");
    let same = analyze_checkpoints(&a, Some(&a), None, 6, &out).unwrap();
    assert_eq!(same.totals[&eps_key(0.9)], 0, "a checkpoint against itself");
    let r = analyze_checkpoints(&a, Some(&b), None, 6, &out).unwrap();
    assert_eq!(r.matrices.len(), 14);
    let t: Vec<usize> = [0.1, 0.3, 0.5, 0.7, 0.9].iter().map(|e| r.totals[&eps_key(*e)]).collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "counts must grow with eps: {t:?}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["matrices"].as_array().unwrap().len(), 14);
    assert!(out.join("report-heatmap.png").exists() && out.join("report.md").exists());
    for d in [a, b, out] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// The PEFT adapter fixture of tests/hf.rs (rsLoRA on all 7 projections, nonzero B) on its base:
/// analysed through the CLI's path, and against a direct fold of the same adapter.
#[test]
fn analyze_the_peft_adapter_fixture() {
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = tmp("peft");
    let a = analyze_checkpoints(&fx.join("hf_llama"), None, Some(&fx.join("hf_llama_adapter")), 5, &out).unwrap();
    assert_eq!(a.matrices.len(), 2 * 7, "2 layers x 7 projections");
    let (mut base, _) = kiln::io::hf::load::load_model(&fx.join("hf_llama")).unwrap();
    kiln::io::hf::peft::load_adapter(&mut base, &fx.join("hf_llama_adapter")).unwrap();
    let direct = block_matrices(&base).unwrap();
    // every analysed matrix moved away from the base (the adapter is nonzero) by exactly s A B
    let plain = block_matrices(&kiln::io::hf::load::load_model(&fx.join("hf_llama")).unwrap().0).unwrap();
    for ((d, p), m) in direct.iter().zip(&plain).zip(&a.matrices) {
        assert_eq!(d.name, m.name);
        assert!(d.w.iter().zip(&p.w).any(|(x, y)| x != y), "{}: the adapter did not change the weight", d.name);
        assert!(m.max_cos.iter().all(|c| *c <= 1.0 + 1e-5));
    }
    let same = analyze_checkpoints(&fx.join("hf_llama"), Some(&fx.join("hf_llama")), None, 5, &out).unwrap();
    assert_eq!(same.totals[&eps_key(0.9)], 0, "the base against itself");
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn tiny_experiment_writes_the_report() {
    let out = tmp("experiment");
    let r = run(&Config::tiny(), &out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * 2 + 1, "lora and rslora at 2 ranks, and full");
    for run in runs {
        assert!(["lora", "rslora", "full"].contains(&run["method"].as_str().unwrap()));
        assert!(run["task_acc"].as_f64().unwrap() >= 0.0 && run["pretrain_loss"].as_f64().unwrap().is_finite());
        assert!(run["intruders_eps"]["0.5"].as_u64().is_some());
    }
    let full = runs.iter().find(|r| r["method"] == "full").unwrap();
    let lora1 = runs.iter().find(|r| r["method"] == "lora" && r["rank"] == 1).unwrap();
    assert!(full["trainable_params"].as_u64() > lora1["trainable_params"].as_u64());
    assert_eq!(json["scale_down"].as_array().unwrap().len(), 3);
    assert!(r.headline.contains("intruders"));
    for f in ["report.md", "counts-vs-eps.png", "scale-down.png"] {
        assert!(out.join(f).exists(), "{f}");
    }
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn claims_are_judged_from_the_numbers() {
    use kiln::methods::intruders::claims::judge;
    use kiln::methods::intruders::experiment::{Experiment, RunResult, ScaleDown};
    let run = |method: &str, rank: usize, n: usize, acc: f64, loss: f64| RunResult {
        method: method.into(),
        rank,
        trainable_params: 1,
        steps: 1,
        task_acc: acc,
        pretrain_loss: loss,
        intruders_eps: [("0.5".to_string(), n)].into_iter().collect(),
        per_matrix: Default::default(),
    };
    let sd = |lambda: f64, acc: f64, loss: f64| ScaleDown { method: "lora".into(), rank: 1, lambda, directions: 3, task_acc: acc, pretrain_loss: loss };
    let mut e = Experiment {
        base_pretrain_loss: 1.0,
        base_task_acc: 0.0,
        runs: vec![run("lora", 1, 10, 0.9, 5.0), run("lora", 8, 12, 0.6, 6.0), run("rslora", 8, 2, 0.9, 3.0), run("full", 0, 1, 0.92, 2.0)],
        scale_down: vec![sd(1.0, 0.9, 5.0), sd(0.5, 0.85, 4.0)],
    };
    let c = judge(&e, 0.5);
    assert_eq!(c.len(), 4);
    assert!(c.iter().all(|c| c.shown), "{c:?}");
    assert!(c[2].numbers.contains("r=1") && !c[2].numbers.contains("r=8"), "only accuracy-matched LoRA runs: {}", c[2].numbers);
    // Flip the numbers: each claim must then fail.
    e.runs = vec![run("lora", 1, 0, 0.9, 1.0), run("rslora", 8, 9, 0.9, 3.0), run("full", 0, 5, 0.92, 2.0)];
    e.scale_down = vec![sd(1.0, 0.9, 5.0), sd(0.5, 0.5, 4.0)];
    let c = judge(&e, 0.5);
    assert!(c.iter().all(|c| !c.shown), "{c:?}");
}
