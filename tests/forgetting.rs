//! forgetting: the task rules and the facts table, balanced disjoint splits, the fixed random
//! labels, the readout helpers (variability, probes), the claims' logic on hand-made results,
//! an end-to-end forgetting of a learned task, the tiny run's report and the CLI-facing errors.

use kiln::methods::forgetting::experiment::{probe_accuracies, variability, Readout, PhaseStats};
use kiln::methods::forgetting::tasks::{choices, fact, generate, label, random_label, Sizes, DIGITS, LABEL0, QUERY, SEQ_LEN, TASK0, TASK_NAMES};
use kiln::methods::forgetting::write::claims;
use kiln::methods::forgetting::{self as fg, After, Before, Config, Correlations, Phase, Point, Results};
use kiln::train::IGNORE;
use std::collections::HashSet;

#[test]
fn each_rule_labels_hand_made_inputs() {
    let cases: [(&str, [u32; 7], usize); 11] = [
        ("first", [6, 0, 0, 0, 0, 0, 0], 2),
        ("first", [3, 9, 9, 9, 9, 9, 9], 3),
        ("majority", [5, 6, 7, 8, 0, 0, 0], 1),
        ("majority", [5, 6, 7, 0, 0, 0, 9], 1),
        ("majority", [5, 6, 7, 0, 0, 0, 4], 0),
        ("compare", [2, 9, 9, 9, 9, 9, 3], 0),
        ("compare", [3, 0, 0, 0, 0, 0, 3], 1),
        ("compare", [4, 0, 0, 0, 0, 0, 3], 2),
        ("contains", [1, 2, 3, 4, 5, 6, 8], 0),
        ("contains", [1, 2, 3, 7, 5, 6, 8], 1),
        ("max_bucket", [1, 2, 3, 4, 5, 5, 0], 0),
    ];
    for (task, x, want) in cases {
        assert_eq!(label(task, &x).unwrap(), want, "{task} {x:?}");
    }
    assert_eq!(label("max_bucket", &[7, 0, 0, 0, 0, 0, 0]).unwrap(), 1);
    assert_eq!(label("max_bucket", &[0, 0, 8, 0, 0, 0, 0]).unwrap(), 2);
    assert_eq!(label("max_bucket", &[9, 0, 8, 0, 0, 0, 0]).unwrap(), 3);
    assert!(label("first", &[1, 2, 3]).unwrap_err().to_string().contains("7 digits"));
    assert!(label("first", &[10, 0, 0, 0, 0, 0, 0]).is_err(), "digits are 0..9");
    assert!(label("sorting", &[0; 7]).unwrap_err().to_string().contains("unknown task \"sorting\""));
}

#[test]
fn the_facts_table_is_balanced_and_only_reads_the_key() {
    let mut per_label = [[0usize; 2]; 4];
    for key in 0..100u32 {
        let x = [key / 10, key % 10, 0, 0, 0, 0, 0];
        let (answer, forget) = fact(&x);
        per_label[answer][forget as usize] += 1;
        assert_eq!(fact(&[key / 10, key % 10, 9, 8, 7, 6, 5]), (answer, forget), "x3..x7 are distractors");
        assert_eq!(label("facts", &x).unwrap(), answer);
    }
    assert_eq!(per_label, [[18, 7]; 4], "each answer held by 18 other keys and 7 forgetting keys");
    let answers: Vec<usize> = (0..100u32).map(|k| fact(&[k / 10, k % 10, 0, 0, 0, 0, 0]).0).collect();
    assert!(answers.windows(2).filter(|w| w[0] == w[1]).count() > 5, "the table is shuffled, not key mod 4: {answers:?}");
}

#[test]
fn splits_are_balanced_disjoint_deterministic_and_keep_facts_apart() {
    let sizes = Sizes { pretrain: 800, forget: 200, heldout: 400, probe_fit: 200, probe_test: 200 };
    let names = TASK_NAMES.to_vec();
    let tasks = generate(&names, sizes, 3).unwrap();
    assert_eq!(tasks.len(), 6);
    for (t, s) in tasks.iter().enumerate() {
        assert_eq!((s.name, s.k), (names[t], choices(names[t]).unwrap()));
        let splits = [&s.pretrain, &s.forget, &s.heldout, &s.probe_fit, &s.probe_test];
        assert_eq!(splits.map(|v| v.len()), [800, 200, 400, 200, 200]);
        let mut seen = HashSet::new();
        for it in splits.iter().flat_map(|v| v.iter()) {
            assert_eq!(it.task, t);
            assert_eq!(it.digits.len(), DIGITS);
            assert_eq!(label(s.name, &it.digits).unwrap(), it.label, "{} {:?}", s.name, it.digits);
            assert!(seen.insert(it.digits.clone()), "{}: input {:?} is in two splits", s.name, it.digits);
        }
        // Balanced: each label's share of the 800 pretraining items within 5 sigma of 1/k.
        let mut count = vec![0usize; s.k];
        s.pretrain.iter().for_each(|it| count[it.label] += 1);
        let (mean, sd) = (800.0 / s.k as f64, (800.0 * (1.0 / s.k as f64) * (1.0 - 1.0 / s.k as f64)).sqrt());
        assert!(count.iter().all(|&c| (c as f64 - mean).abs() < 5.0 * sd), "{}: label counts {count:?}", s.name);
        if s.name == "facts" {
            assert!(s.forget.iter().all(|it| fact(&it.digits).1), "the forgetting set asks only about forgetting keys");
            assert!(s.heldout.iter().chain(&s.probe_fit).chain(&s.probe_test).all(|it| !fact(&it.digits).1), "held-out and probes ask about the other keys");
            assert!(s.pretrain.iter().any(|it| fact(&it.digits).1) && s.pretrain.iter().any(|it| !fact(&it.digits).1), "pretraining asks about both");
        }
    }
    let again = generate(&names, sizes, 3).unwrap();
    assert_eq!(again[2].forget, tasks[2].forget, "same seed, same items");
    assert_ne!(generate(&names, sizes, 4).unwrap()[2].forget, tasks[2].forget, "another seed, other items");
    let bad = Sizes { forget: 0, ..sizes };
    assert!(generate(&names, bad, 3).unwrap_err().to_string().contains("split sizes"));
}

#[test]
fn examples_put_the_answer_at_the_query() {
    let tasks = generate(&["first", "contains"], Sizes { pretrain: 4, forget: 4, heldout: 4, probe_fit: 4, probe_test: 4 }, 0).unwrap();
    let it = &tasks[1].heldout[0];
    let e = it.example(1);
    assert_eq!(e.ids.len(), SEQ_LEN);
    assert_eq!(e.ids[0], TASK0 + 1, "task 1's token");
    assert_eq!(&e.ids[1..=DIGITS], &it.digits[..]);
    assert_eq!(e.ids[SEQ_LEN - 1], QUERY);
    let mut want = vec![IGNORE; SEQ_LEN];
    want[SEQ_LEN - 1] = LABEL0 + 1;
    assert_eq!(e.targets, want, "the loss sits only on the answer, read at the query");
}

#[test]
fn random_labels_are_fixed_uniform_and_mostly_wrong() {
    let k = 4;
    let draws: Vec<usize> = (0..4000).map(|i| random_label(7, 2, i, k)).collect();
    assert_eq!(draws, (0..4000).map(|i| random_label(7, 2, i, k)).collect::<Vec<_>>(), "fixed per (seed, task, item)");
    assert_ne!(draws, (0..4000).map(|i| random_label(8, 2, i, k)).collect::<Vec<_>>());
    let mut count = [0usize; 4];
    draws.iter().for_each(|&y| count[y] += 1);
    assert!(count.iter().all(|&c| (c as i64 - 1000).abs() < 5 * 28), "uniform over 0..k: {count:?}");
    let tasks = generate(&["first", "majority"], Sizes { pretrain: 0, forget: 2000, heldout: 1, probe_fit: 1, probe_test: 1 }, 0).unwrap();
    let (data, random) = fg::experiment::forget_data(&tasks[0], 0);
    let agree = tasks[0].forget.iter().zip(&random).filter(|(it, &y)| it.label == y).count() as f64 / 2000.0;
    assert!((agree - 0.25).abs() < 0.04, "random labels agree with the truth at chance: {agree}");
    assert!(data.0.iter().zip(&random).all(|(e, &y)| e.targets[SEQ_LEN - 1] == LABEL0 + y as u32), "the examples carry the random labels");
}

fn readout(rows: &[Vec<f64>]) -> Readout {
    Readout { pred: vec![0; rows.len()], confidence: vec![1.0; rows.len()], hidden: vec![rows.concat()], width: rows[0].len() }
}

#[test]
fn variability_spans_zero_to_one() {
    assert_eq!(variability(&readout(&[vec![1.0, 2.0], vec![1.0, 2.0], vec![1.0, 2.0]])), 0.0, "identical states");
    let v = variability(&readout(&[vec![1.0, -2.0], vec![-1.0, 2.0]]));
    assert!((v - 1.0).abs() < 1e-12, "states with no common part: {v}");
    let v = variability(&readout(&[vec![3.0, 1.0], vec![3.0, -1.0]]));
    assert!((v - 0.1).abs() < 1e-12, "1 of 10 parts of the power is spread: {v}");
}

#[test]
fn probes_read_a_linearly_coded_label_and_not_noise() {
    let g = kiln::rng::normal_vec(5, 0, 400 * 8, 0.0, 1.0);
    let rows: Vec<Vec<f64>> = g.chunks(8).map(|c| c.iter().map(|&v| v as f64).collect()).collect();
    let y: Vec<usize> = rows.iter().map(|r| (r[0] + r[3] > 0.0) as usize).collect();
    let (fit, test) = (readout(&rows[..200]), readout(&rows[200..]));
    let acc = probe_accuracies(&fit, &y[..200], &test, &y[200..], 2, 1.0).unwrap();
    assert_eq!(acc.len(), 1, "one accuracy per layer");
    assert!(acc[0] > 0.95, "a linear label is decodable: {acc:?}");
    let noise: Vec<usize> = (0..400).map(|i| random_label(1, 0, i, 2)).collect();
    let acc = probe_accuracies(&fit, &noise[..200], &test, &noise[200..], 2, 1.0).unwrap();
    assert!(acc[0] < 0.65, "labels independent of the states are not: {acc:?}");
}

fn before(task: &str, k: usize, heldout: f64, probe: f64) -> Before {
    Before { task: task.into(), choices: k, chance: 1.0 / k as f64, heldout_accuracy: heldout, forget_accuracy: heldout, confidence: 0.9, variability: 0.5, probe: vec![probe] }
}

fn after(task: &str, forget: f64, heldout: Vec<f64>, probe: f64, g: Option<f64>) -> After {
    let stats = PhaseStats { steps: 1, final_loss: 1.0, skipped_steps: 0, seconds: 0.0 };
    After { task: task.into(), fit_random: 0.9, forget_accuracy: forget, random_agreement: 0.3, heldout_accuracy: heldout, probe: vec![probe], generalisation: g, trajectory: vec![Point { step: 0, forget_accuracy: 1.0, heldout_accuracy: 1.0 }], training: stats }
}

fn results(before: Vec<Before>, after: Vec<After>) -> Results {
    let correlations = fg::correlations(&before, &after);
    Results { config: Config::tiny(), total_params: 1, pretraining: PhaseStats { steps: 1, final_loss: 0.1, skipped_steps: 0, seconds: 0.0 }, before, after, correlations, claims: vec![], checkpoint: None }
}

#[test]
fn claims_follow_the_numbers() {
    // a: forgotten everywhere (g 1); b: forgotten only on its own examples (g 0.1), probes intact.
    let r = results(
        vec![before("a", 2, 1.0, 1.0), before("b", 4, 1.0, 1.0)],
        vec![after("a", 0.5, vec![0.5, 0.9], 0.95, Some(1.0)), after("b", 0.3, vec![0.4, 0.925], 0.97, Some(0.1))],
    );
    let c = claims(&r);
    let holds = |name: &str| c.iter().find(|x| x.name.contains(name)).unwrap_or_else(|| panic!("no claim {name}")).holds;
    assert_eq!(holds("near-random"), Some(true));
    assert_eq!(holds("varies by task"), Some(true), "g spans 0.9");
    assert_eq!(holds("shallow"), Some(true), "a's probe keeps 0.95 of 1.0");
    assert_eq!(holds("spill over"), Some(true), "forgetting b took a from 1.0 to 0.4: 1.2 of its margin");
    assert_eq!(holds("confidence"), None, "two tasks give no correlation");
    // The same with a's probe lost and b's forgetting set still answered.
    let r = results(
        vec![before("a", 2, 1.0, 1.0), before("b", 4, 1.0, 1.0)],
        vec![after("a", 0.5, vec![0.5, 1.0], 0.6, Some(1.0)), after("b", 0.9, vec![1.0, 0.95], 0.97, Some(0.93))],
    );
    let c = claims(&r);
    let holds = |name: &str| c.iter().find(|x| x.name.contains(name)).unwrap().holds;
    assert_eq!(holds("near-random"), Some(false), "b's forgetting set is at 90%");
    assert_eq!(holds("varies by task"), Some(false), "g 1.0 and 0.93");
    assert_eq!(holds("shallow"), Some(false), "a's probe fell to 0.6 of a 0.5 chance");
    assert_eq!(holds("spill over"), Some(false));
    // No task whose forgetting generalised: the shallowness claim has nothing to test and is no target.
    let r = results(vec![before("a", 2, 1.0, 1.0), before("b", 2, 1.0, 1.0)], vec![after("a", 0.5, vec![0.9, 1.0], 1.0, Some(0.2)), after("b", 0.5, vec![1.0, 0.9], 1.0, Some(0.2))]);
    let shallow = claims(&r).into_iter().find(|x| x.name.contains("shallow")).unwrap();
    assert_eq!((shallow.holds, shallow.target), (None, false));
}

#[test]
fn correlations_use_learned_tasks_only() {
    let b: Vec<Before> = (0..4).map(|i| Before { confidence: 0.5 + 0.1 * i as f64, variability: 0.9 - 0.1 * i as f64, ..before("t", 2, 1.0, 1.0) }).collect();
    let g = [Some(0.9), Some(0.6), None, Some(0.1)];
    let a: Vec<After> = g.iter().map(|&g| after("t", 0.5, vec![0.5; 4], 1.0, g)).collect();
    let c: Correlations = fg::correlations(&b, &a);
    assert_eq!(c.tasks, 3);
    assert!((c.confidence_spread - 0.3).abs() < 1e-12);
    assert!((c.confidence.unwrap() + 1.0).abs() < 1e-12, "g falls as confidence rises: {c:?}");
    assert!((c.variability.unwrap() - 1.0).abs() < 1e-12, "and rises with variability: {c:?}");
    // Confidences all within 0.01 (a saturated model) rank nothing: no correlation is claimed.
    let b: Vec<Before> = b.into_iter().enumerate().map(|(i, x)| Before { confidence: 0.999 - 0.001 * i as f64, ..x }).collect();
    let c = fg::correlations(&b, &a);
    assert_eq!(c.confidence, None, "{c:?}");
    assert!(c.variability.is_some());
}

#[test]
fn forgetting_a_learned_task_makes_its_examples_near_random() {
    // Two tasks a width-32 model learns in a few hundred steps; then forget `first`.
    let cfg = Config {
        width: 32,
        heads: 2,
        sizes: Sizes { pretrain: 1500, forget: 64, heldout: 200, probe_fit: 100, probe_test: 100 },
        pretrain: Phase { steps: 500, batch_size: 32, lr: 3e-3 },
        forget: Phase { steps: 150, batch_size: 16, lr: 1e-3 },
        ..Config::small()
    }
    .select("first,contains")
    .unwrap();
    let r = fg::measure(&cfg).unwrap();
    assert!(r.before[0].heldout_accuracy > 0.9, "pretraining learns `first`: {:?}", r.before[0]);
    let a = &r.after[0];
    assert!(a.forget_accuracy < 0.5, "the forgetting set's true labels are lost: {}", a.forget_accuracy);
    let t = &a.trajectory;
    assert_eq!((t[0].step, t.last().unwrap().step), (0, a.training.steps));
    let floor = r.before[0].chance.max(a.random_agreement);
    assert!((a.random_agreement - 0.25).abs() < 0.25, "64 random labels agree with the truth about 1 time in 4: {}", a.random_agreement);
    let stopped = a.forget_accuracy <= floor + fg::STOP_MARGIN;
    assert!(stopped || a.training.steps == 150, "forgetting runs until near chance or to its budget: {} steps", a.training.steps);
    assert!(t[..t.len() - 1].iter().skip(1).all(|p| p.forget_accuracy > floor + fg::STOP_MARGIN), "and no further: {t:?}");
    assert_eq!(t[0].forget_accuracy, r.before[0].forget_accuracy, "the first reading is the pretrained model");
    assert_eq!(t[0].heldout_accuracy, r.before[0].heldout_accuracy);
    assert_eq!(t.last().unwrap().heldout_accuracy, a.heldout_accuracy[0], "the last reading is the forgotten model");
    assert_eq!(r.claims.len(), 5);
}

#[test]
fn tiny_run_writes_the_report() {
    let out = std::env::temp_dir().join(format!("kiln-forgetting-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let rep = fg::run(&Config::tiny(), &out).unwrap();
    assert_eq!(rep.method, "forgetting");
    for f in ["report.md", "report.json", "matrix.png", "trajectory.png", "shallow.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["before"].as_array().unwrap().len(), TASK_NAMES.len());
    let after = json["after"].as_array().unwrap();
    assert_eq!(after.len(), TASK_NAMES.len());
    assert!(after.iter().all(|a| a["heldout_accuracy"].as_array().unwrap().len() == TASK_NAMES.len()));
    assert!(after.iter().all(|a| a["probe"].as_array().unwrap().len() == 2), "one probe per block");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Claims") && md.contains("max_bucket") && md.contains("![matrix](matrix.png)"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tiny_run_from_an_hf_checkpoint() {
    // --model DIR: the fixture Llama (random weights) cut to the task words trains and reads out
    // through the same pipeline; the report names the checkpoint and the cut.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_llama");
    let cfg = Config::tiny().select("first,contains").unwrap().from_checkpoint(dir.clone());
    assert_eq!((cfg.pretrain.lr, cfg.forget.lr), (1e-4, 1e-4), "fine-tuning rates");
    let out = std::env::temp_dir().join(format!("kiln-forgetting-hf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    fg::run(&cfg, &out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let words: Vec<&str> = json["checkpoint"]["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(words.len(), fg::tasks::vocab_size(2));
    assert_eq!(&words[10..], &["A", "B", "C", "D", "Answer", "first", "contains"]);
    assert_eq!(json["config"]["model"].as_str().unwrap(), dir.to_str().unwrap());
    assert_eq!(json["after"][0]["probe"].as_array().unwrap().len(), 2, "one probe per fixture block");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("HF checkpoint") && md.contains("cut to the method's 17 words"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
    // A directory that is not a checkpoint is refused by name.
    let e = fg::measure(&Config::tiny().from_checkpoint(dir.join("missing"))).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn bad_settings_are_refused_by_name() {
    let e = Config::tiny().select("first,bogus").unwrap_err().to_string();
    assert!(e.contains("\"bogus\"") && e.contains("max_bucket"), "{e}");
    let e = Config::tiny().select("first").unwrap_err().to_string();
    assert!(e.contains("two or more"), "{e}");
    let e = fg::measure(&Config { width: 18, heads: 4, ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("width 18"), "{e}");
    let e = fg::measure(&Config { forget: Phase { steps: 0, batch_size: 8, lr: 1e-3 }, ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("forget phase"), "{e}");
}
