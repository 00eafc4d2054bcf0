//! adaptive-compute: the addition prompts, answers and verifier; the best-of-b estimate against
//! brute force; greedy allocation against an exhaustive search; budgets and routing by hand; the
//! probe on synthetic features; batched sampling against per-row generation; the tiny run's
//! report and the refused settings.

use kiln::methods::adaptive_compute::allocate::{accuracy, budget_to_reach, greedy_curve, greedy_order, pass_at, routed_accuracy, uniform};
use kiln::methods::adaptive_compute::sample::sample_answers;
use kiln::methods::adaptive_compute::tasks::{queries, seq_len, Query, EOS, EQUALS, PAD, PLUS, VOCAB};
use kiln::methods::adaptive_compute::{self as ac, fit_probe, Config};
use kiln::model::{Arch, Config as ModelConfig, GenerateOptions, Transformer};
use kiln::sample::SamplingParams;
use kiln::train::IGNORE;

#[test]
fn prompt_answer_and_verifier() {
    let q = Query { n: 2, a: 47, b: 85 };
    assert_eq!(q.prompt(3), vec![PAD, PAD, 4, 7, PLUS, 8, 5, EQUALS], "left-padded to 2 * 3 + 2");
    assert_eq!(q.answer(), vec![2, 3, 1, EOS], "132, least significant digit first");
    assert!(q.verify(&[2, 3, 1, EOS]));
    assert!(q.verify(&[2, 3, 1, EOS, 9, 9]), "what follows the first EOS is ignored");
    assert!(!q.verify(&[2, 3, 1, 7, EOS]), "an extra digit");
    assert!(!q.verify(&[2, 3, EOS]), "a missing digit");
    assert!(!q.verify(&[2, 3, 1]), "no EOS");
    assert_eq!(Query { n: 1, a: 3, b: 4 }.answer(), vec![7, 0, EOS], "n + 1 digits, zero-padded");
    let e = q.example(3);
    assert_eq!((e.ids.len(), e.targets.len()), (seq_len(3), seq_len(3)));
    assert_eq!(&e.ids[..8], &q.prompt(3)[..]);
    assert_eq!(&e.ids[8..11], &[2, 3, 1], "the answer is fed back after the prompt");
    let want: Vec<u32> = [vec![IGNORE; 7], vec![2, 3, 1, EOS], vec![IGNORE; seq_len(3) - 11]].concat();
    assert_eq!(e.targets, want, "loss on the answer and its EOS only");
}

#[test]
fn queries_mix_difficulties_deterministically() {
    let qs = queries(4, 2000, 9, 1).unwrap();
    for n in 1..=4 {
        let share = qs.iter().filter(|q| q.n == n).count() as f64 / 2000.0;
        assert!((share - 0.25).abs() < 0.05, "{n}-digit share {share}");
    }
    assert!(qs.iter().all(|q| q.a < 10u64.pow(q.n as u32) && q.b < 10u64.pow(q.n as u32)));
    assert!(qs.iter().filter(|q| q.n == 4).any(|q| q.a >= 5000), "operands span their range");
    assert_eq!(queries(4, 50, 9, 1).unwrap(), qs[..50].to_vec(), "a pure function of (seed, split, index)");
    assert_ne!(queries(4, 50, 9, 2).unwrap(), qs[..50].to_vec(), "splits differ");
    assert!(queries(0, 5, 0, 0).is_err() && queries(10, 5, 0, 0).is_err());
}

/// Best-of-b over every b-subset of s outcomes, by enumeration.
fn brute_pass(c: usize, s: usize, b: usize) -> f64 {
    let outcomes: Vec<bool> = (0..s).map(|i| i < c).collect();
    let (mut hit, mut all) = (0u64, 0u64);
    for mask in 0u32..(1 << s) {
        if mask.count_ones() as usize == b {
            all += 1;
            hit += (0..s).any(|i| mask >> i & 1 == 1 && outcomes[i]) as u64;
        }
    }
    hit as f64 / all as f64
}

#[test]
fn pass_at_is_the_mean_over_subsets() {
    for s in 1..=8 {
        for c in 0..=s {
            for b in 0..=s {
                let (got, want) = (pass_at(c, s, b), if b == 0 { 0.0 } else { brute_pass(c, s, b) });
                assert!((got - want).abs() < 1e-12, "c={c} s={s} b={b}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn greedy_allocation_is_optimal_for_the_predictions() {
    let p = [0.9, 0.3, 0.05, 0.6];
    let cap = 3;
    let order = greedy_order(&p, cap);
    assert_eq!(order.len(), 4 * cap);
    for i in 0..4 {
        assert_eq!(order.iter().filter(|&&j| j == i).count(), cap, "every query reaches the cap");
    }
    let value = |b: &[usize]| b.iter().zip(&p).map(|(&bi, &pi)| 1.0 - (1.0 - pi).powi(bi as i32)).sum::<f64>();
    for budget in 0..=4 * cap {
        let mut given = [0usize; 4];
        order[..budget].iter().for_each(|&i| given[i] += 1);
        // Exhaustive: every allocation of `budget` with each query in 0..=cap.
        let mut best = f64::NEG_INFINITY;
        for code in 0..(cap + 1).pow(4) {
            let b: Vec<usize> = (0..4).map(|i| code / (cap + 1).pow(i as u32) % (cap + 1)).collect();
            if b.iter().sum::<usize>() == budget {
                best = best.max(value(&b));
            }
        }
        assert!((value(&given) - best).abs() < 1e-12, "budget {budget}: greedy {given:?} {} vs best {best}", value(&given));
    }
    assert_eq!(order[0], 0, "the first sample goes to the likeliest query");
    assert_eq!(greedy_order(&[0.0, f64::NAN, 1.0], 2), vec![2, 0, 0, 1, 1, 2], "hopeless and unreadable predictions wait; a sure one needs one sample");
}

#[test]
fn curves_budgets_and_routing_by_hand() {
    let (counts, s) = ([4usize, 0, 2], 4);
    let order = greedy_order(&[1.0, 0.0, 0.5], s);
    let curve = greedy_curve(&order, &counts, s);
    assert_eq!(curve.len(), 3 * s + 1);
    for b in 0..=3 * s {
        let mut given = [0usize; 3];
        order[..b].iter().for_each(|&i| given[i] += 1);
        assert!((curve[b] - accuracy(&counts, s, &given)).abs() < 1e-12, "entry {b}");
    }
    // First samples: query 0 (sure, solved), then query 2 (c = 2 of 4: 1/2, then 5/6, ...).
    assert!((curve[1] - 1.0 / 3.0).abs() < 1e-12 && (curve[2] - 0.5).abs() < 1e-12);
    assert_eq!(budget_to_reach(&curve, 0.5), Some(2));
    assert_eq!(budget_to_reach(&curve, 0.9), None, "query 1 is never solved");
    assert_eq!(uniform(3, 7), vec![3, 2, 2]);
    assert_eq!(uniform(4, 2), vec![1, 1, 0, 0]);
    let (weak, strong) = ([0.0, 0.5, 1.0, 0.2], [1.0, 0.5, 1.0, 0.4]);
    assert_eq!(routed_accuracy(&[0.9, 0.1, 0.0, 0.3], &weak, &strong, 1), (1.0 + 0.5 + 1.0 + 0.2) / 4.0);
    assert_eq!(routed_accuracy(&[0.9, 0.1, 0.0, 0.3], &weak, &strong, 2), (1.0 + 0.5 + 1.0 + 0.4) / 4.0);
    assert_eq!(routed_accuracy(&[0.0; 4], &weak, &strong, 4), strong.iter().sum::<f64>() / 4.0);
}

#[test]
fn the_probe_learns_a_success_rate_from_features() {
    // Feature 1 sets the success rate: rate = sigmoid(3 x1); feature 0 is noise.
    let n = 300;
    let g = kiln::rng::normal_vec(2, 0, 2 * n, 0.0, 1.0);
    let x: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    let rate = |row: &[f64]| 1.0 / (1.0 + (-3.0 * row[1]).exp());
    let s = 20;
    let counts: Vec<usize> = x.chunks(2).map(|r| (rate(r) * s as f64).round() as usize).collect();
    let test = [0.3, -1.0, -0.7, 0.0, 0.1, 1.0];
    let p = fit_probe(&x, &counts, s, &test, 2, 1.0).unwrap();
    for (i, row) in test.chunks(2).enumerate() {
        assert!((p[i] - rate(row)).abs() < 0.05, "row {row:?}: {} vs {}", p[i], rate(row));
    }
}

#[test]
fn batched_sampling_matches_per_row_generation() {
    let mut mc = ModelConfig::tiny(Arch::Gpt2, VOCAB);
    (mc.max_seq_len, mc.seed) = (seq_len(3) + 1, 4);
    let model = Transformer::new(mc).unwrap();
    let qs = queries(3, 12, 1, 1).unwrap();
    let per = 5;
    let batched = sample_answers(&model, &qs, 3, per, 1.0, 77, "").unwrap();
    assert_eq!(batched.len(), 60);
    let prompts: Vec<Vec<u32>> = (0..60).map(|r| qs[r / per].prompt(3)).collect();
    let opts = GenerateOptions { max_new_tokens: 5, params: vec![SamplingParams::default()], stop_tokens: vec![], seed: 77 };
    let rows: Vec<Vec<u32>> = model.generate(&prompts, &opts).unwrap().into_iter().map(|g| g.new_ids).collect();
    let same = batched.iter().zip(&rows).filter(|(a, b)| a == b).count();
    assert!(same >= 59, "row r of the batch is generate()'s row r (same seed, row id, step): {same} of 60 equal");
    assert!(batched.iter().collect::<std::collections::HashSet<_>>().len() > 40, "samples of one query differ");
    assert_eq!(sample_answers(&model, &qs, 3, per, 1.0, 77, "").unwrap(), batched, "deterministic");
}

#[test]
fn tiny_run_writes_the_report() {
    let out = std::env::temp_dir().join(format!("kiln-adaptive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let rep = ac::run(&Config::tiny(), &out).unwrap();
    assert_eq!(rep.method, "adaptive-compute");
    for f in ["report.md", "report.json", "budget.png", "routing.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["budgets"].as_array().unwrap().len(), 2);
    assert_eq!(json["routing"].as_array().unwrap().len(), 2);
    assert_eq!(json["strong"]["success_by_digits"].as_array().unwrap().len(), 2);
    for b in json["budgets"].as_array().unwrap() {
        let (u, a, o) = (b["uniform"].as_f64().unwrap(), b["adaptive"].as_f64().unwrap(), b["oracle"].as_f64().unwrap());
        assert!([u, a, o].iter().all(|v| (0.0..=1.0).contains(v)), "{b}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tiny_run_from_an_hf_checkpoint() {
    // --model DIR: the strong decoder is the fixture Llama (random weights) cut to the addition
    // words, fine-tuned, sampled and probed through the same pipeline (probe width = its d_model).
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_llama");
    let cfg = Config::tiny().from_checkpoint(dir.clone());
    assert_eq!(cfg.strong.lr, 1e-4);
    let out = std::env::temp_dir().join(format!("kiln-adaptive-hf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let r = ac::measure(&cfg).unwrap();
    let cut = r.checkpoint.as_ref().expect("the cut is reported");
    assert_eq!(cut.words.len(), VOCAB);
    assert_eq!(&cut.words[10..], &["+", "=", ".", "_"]);
    assert!(r.strong.params > r.weak.params, "the checkpoint is the larger decoder");
    assert!((0.0..=1.0).contains(&r.strong.success));
    ac::run(&cfg, &out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("fine-tuned from the HF checkpoint") && md.contains("hf_llama"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_settings_are_refused_by_name() {
    let e = ac::measure(&Config { budgets: vec![1, 8], ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("budget 8") && e.contains("1..=4"), "{e}");
    let e = ac::measure(&Config { route_fractions: vec![1.0], ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("routed fraction 1"), "{e}");
    let mut c = Config::tiny();
    c.weak.heads = 3;
    assert!(ac::measure(&c).unwrap_err().to_string().contains("weak decoder"));
}
