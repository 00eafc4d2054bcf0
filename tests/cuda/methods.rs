//! parity_method_*: each model-training method's tiny run, end to end on the device against the
//! same run on the CPU (training, batched sampling and generation, hidden-state readouts, probes).
//! The runs must succeed on both, measure the same things (report.json has the same fields), put
//! no NaN where the CPU has a number, and train to the same losses: every `final_loss` within
//! 1e-3 relative (a few f32 steps). Accuracies and allocations are printed, not compared: one
//! flipped argmax or one reordered tie between devices is not a bug.
use super::GPU;
use kiln::methods::training::Phase;
use kiln::methods::{adaptive_compute, algae, erase, forgetting, intruders, misinfo_eval, random_transformers};
use kiln::tensor::Device;
use serde_json::Value;

/// (path, number) for every number in a report, in document order.
fn numbers(v: &Value, path: String, out: &mut Vec<(String, Option<f64>)>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| numbers(x, format!("{path}.{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| numbers(x, format!("{path}[{i}]"), out)),
        // serde_json writes a non-finite f64 as null
        Value::Null => out.push((path, None)),
        Value::Number(n) => out.push((path, n.as_f64())),
        _ => {}
    }
}

/// Compare a method's device run with its CPU run, as described above.
fn compare(method: &str, gpu: Value, cpu: Value) {
    let (mut g, mut c) = (Vec::new(), Vec::new());
    numbers(&gpu, String::new(), &mut g);
    numbers(&cpu, String::new(), &mut c);
    let (gk, ck): (Vec<&String>, Vec<&String>) = (g.iter().map(|x| &x.0).collect(), c.iter().map(|x| &x.0).collect());
    assert_eq!(gk, ck, "{method}: the device run's report has other fields than the CPU run's");
    let (mut losses, mut differ) = (0, 0);
    for ((path, gv), (_, cv)) in g.iter().zip(&c) {
        if path.contains("seconds") {
            continue;
        }
        if let (None, Some(want)) = (gv, cv) {
            panic!("{method}: {path} is NaN on the device where the CPU has {want}");
        }
        let (Some(a), Some(b)) = (gv, cv) else { continue };
        if path.ends_with("final_loss") {
            losses += 1;
            let rel = (a - b).abs() / b.abs().max(1e-12);
            assert!(rel <= 1e-3, "{method}: {path} = {a} on the device, {b} on the CPU (rel {rel:.2e})");
        } else if a != b {
            differ += 1;
            if differ <= 5 {
                println!("{method}: {path} differs: {a} (device) vs {b} (cpu)");
            }
        }
    }
    assert!(losses > 0, "{method}: no final_loss in the report");
    println!("parity {method}: {} numbers, {losses} final losses within 1e-3, {differ} other numbers differ", g.len());
}

fn both<C: Clone, R: serde::Serialize>(method: &str, cfg: C, set: impl Fn(&mut C, Device), measure: impl Fn(&C) -> kiln::Result<R>) {
    super::setup();
    let run = |d: Device| {
        let mut c = cfg.clone();
        set(&mut c, d);
        serde_json::to_value(measure(&c).unwrap_or_else(|e| panic!("{method} --device {d}: {e}"))).unwrap()
    };
    compare(method, run(GPU), run(Device::Cpu));
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_forgetting() {
    both("forgetting", forgetting::Config::tiny(), |c, d| c.device = d, forgetting::measure);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_adaptive_compute() {
    both("adaptive-compute", adaptive_compute::Config::tiny(), |c, d| c.device = d, adaptive_compute::measure);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_misinfo_eval() {
    both("misinfo-eval", misinfo_eval::Config::tiny(), |c, d| c.device = d, misinfo_eval::measure);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_random_transformers() {
    both("random-transformers", random_transformers::Config::tiny(), |c, d| c.device = d, random_transformers::measure);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_erase() {
    // tiny's reader trains 1000 steps (so its test can check what it learned); 30 are enough here
    let cfg = erase::Config { reader: Phase { steps: 30, ..erase::Config::tiny().reader }, ..erase::Config::tiny() };
    both("erase", cfg, |c, d| c.device = d, erase::measure);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_algae() {
    both("algae", algae::Config::tiny(), |c, d| c.device = d, algae::measure);
}

/// intruders' report has no final_loss (fine-tuning stops at a task accuracy, so its step counts
/// may differ by an evaluation interval between devices): the pre-training, a fixed number of
/// steps, must end at the same loss; every fine-tuned run must be there with finite numbers; the
/// intruder counts (SVDs of slightly different weights) are printed.
#[test]
#[ignore = "needs a CUDA device"]
fn parity_method_intruders() {
    super::setup();
    let run = |d: Device| intruders::experiment::run_experiment(&intruders::Config { device: d, ..intruders::Config::tiny() }).unwrap_or_else(|e| panic!("intruders --device {d}: {e}")).0;
    let (g, c) = (run(GPU), run(Device::Cpu));
    let rel = (g.base_pretrain_loss - c.base_pretrain_loss).abs() / c.base_pretrain_loss.abs().max(1e-12);
    assert!(rel <= 1e-3, "pre-training loss {} on the device, {} on the CPU (rel {rel:.2e})", g.base_pretrain_loss, c.base_pretrain_loss);
    assert_eq!(g.runs.len(), c.runs.len());
    for (a, b) in g.runs.iter().zip(&c.runs) {
        assert_eq!((&a.method, a.rank), (&b.method, b.rank));
        assert!(a.pretrain_loss.is_finite() && a.task_acc.is_finite(), "{} r={}: {} / {}", a.method, a.rank, a.pretrain_loss, a.task_acc);
        println!("intruders {} r={}: steps {} / {}, task acc {:.3} / {:.3}, intruders {:?} / {:?} (device / cpu)", a.method, a.rank, a.steps, b.steps, a.task_acc, b.task_acc, a.intruders_eps, b.intruders_eps);
    }
    assert_eq!(g.scale_down.len(), c.scale_down.len());
}
