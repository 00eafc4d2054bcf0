//! The training loop end to end on tiny models: modular addition generalises to held-out pairs,
//! a character LM beats the unigram entropy of its text, NaN losses are skipped, counted and
//! stop the run after N in a row, gradient accumulation equals one big batch, and the metrics
//! file has the promised lines.
mod common;
use common::assert_close;
use kiln::model::{Arch, Config, Transformer};
use kiln::optim::Schedule;
use kiln::rng::Philox;
use kiln::train::*;
use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-train-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

fn mod_add_run(p: u32, steps: usize) -> RunConfig {
    let mut model = Config::tiny(Arch::Llama, p as usize + 2);
    model.max_seq_len = 4;
    let train = TrainConfig { steps, batch_size: 64, lr: 3e-3, weight_decay: 0.1, log_every: 50, eval_every: 100, progress: false, ..TrainConfig::default() };
    RunConfig { model, data: DataSpec::ModAdd { p, train_fraction: 0.9, seed: 0 }, train }
}

fn metrics(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn modular_addition_generalises_to_held_out_pairs() {
    // p = 17: 289 pairs, ~35 held out. Full-size runs (p = 97, >= 99%) are in the report; this
    // budget (a few seconds) reliably passes 90% on pairs the model never saw.
    let cfg = mod_add_run(17, 500);
    let out = out_dir("modadd");
    let s = run_training(&cfg, &out, None).unwrap();
    println!("mod add p = 17: held-out accuracy {:.4}, loss {:.4}", s.eval.accuracy, s.eval.loss);
    assert!(s.eval.accuracy >= 0.9, "held-out accuracy {} (loss {})", s.eval.accuracy, s.eval.loss);
    assert_eq!(s.eval.tokens, ModAdd::new(17, 0.9, 0, Split::Eval).unwrap().len(), "one scored token per held-out pair");
    assert_eq!(s.steps.len(), 500);
    let m = metrics(&out);
    let train: Vec<_> = m.iter().filter(|v| v["kind"] == "train").collect();
    assert_eq!(train.len(), 10, "a train line every 50 steps");
    for key in ["step", "loss", "lr", "grad_norm", "tokens_per_s"] {
        assert!(train[0][key].is_number(), "train line lacks {key}: {}", train[0]);
    }
    assert_eq!(m.iter().filter(|v| v["kind"] == "eval").count(), 5, "evals at 100..400 and the end");
    assert!(m.iter().any(|v| v["kind"] == "checkpoint" && v["step"] == 500), "the final checkpoint is logged");
    // kiln eval on the checkpoint reproduces the run's own final evaluation.
    let e = run_eval(&out, None, 64, 0).unwrap();
    assert_eq!(e, s.eval);
    std::fs::remove_dir_all(out).ok();
}

/// About 6 KB of sentences from a small grammar: structure a model can learn, and held-out
/// windows drawn from the same distribution.
fn generated_text() -> String {
    let subjects = ["the potter", "a child", "the old man", "my sister", "the river", "a small dog"];
    let verbs = ["carried", "watched", "found", "painted", "broke", "followed"];
    let objects = ["the red bowl", "a heavy stone", "the long road", "some warm bread", "the green cup", "a paper boat"];
    let endings = [" at dawn.", " by the fire.", " in the rain.", "."];
    let g = Philox::new(42);
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 6000 {
        let w = g.block(i, 0, 9);
        let pick = |x: u32, n: usize| (x as usize) % n;
        text += &format!("{} {} {}{} ", subjects[pick(w[0], 6)], verbs[pick(w[1], 6)], objects[pick(w[2], 6)], endings[pick(w[3], 4)]);
        i += 1;
    }
    text
}

#[test]
fn a_char_model_beats_the_unigram_entropy() {
    let dir = out_dir("text");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corpus.txt");
    let text = generated_text();
    std::fs::write(&path, &text).unwrap();
    // Unigram entropy of the characters (nats): the best loss without context.
    let tok = Tokenizer::char_level(&text).unwrap();
    let ids = tok.encode(&text).unwrap();
    let mut counts = vec![0usize; tok.vocab_size()];
    ids.iter().for_each(|&i| counts[i as usize] += 1);
    let h: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / ids.len() as f64).map(|q| -q * q.ln()).sum();

    let mut model = Config::tiny(Arch::Llama, tok.vocab_size());
    model.max_seq_len = 32;
    let train = TrainConfig { steps: 200, batch_size: 16, lr: 3e-3, schedule: Schedule::WarmupCosine { warmup: 20, total: 200, min_ratio: 0.1 }, log_every: 20, save_final: false, ..TrainConfig::default() };
    assert!(train.progress, "the default (a bar, hidden off a terminal) is exercised here");
    let cfg = RunConfig { model, data: DataSpec::Text { path: Some(path), tokenizer: TextTokenizer::Char, seq_len: 32, eval_fraction: 0.1 }, train };
    let s = run_training(&cfg, &dir.join("run"), None).unwrap();
    println!("char LM: held-out loss {:.4} nats, unigram entropy {h:.4} nats", s.eval.loss);
    assert!(s.eval.loss < 0.4 * h, "held-out loss {} vs unigram entropy {h}", s.eval.loss);
    assert!(s.checkpoint.is_none(), "save_final off, no checkpoint_every: nothing written");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn nan_steps_are_skipped_counted_and_stop_the_run_after_n_in_a_row() {
    // One bad step: skipped (no update), counted, logged; the run finishes.
    let mut cfg = mod_add_run(7, 8);
    cfg.train.inject_nan_at_steps = vec![3];
    cfg.train.log_every = 1;
    let out = out_dir("nan1");
    let s = run_training(&cfg, &out, None).unwrap();
    assert_eq!(s.skipped, 1);
    assert!(s.steps[2].skipped && s.steps[2].loss.is_nan() && s.steps.iter().filter(|r| r.skipped).count() == 1);
    let m = metrics(&out);
    let skip: Vec<_> = m.iter().filter(|v| v["kind"] == "skip").collect();
    assert_eq!(skip.len(), 1);
    assert_eq!((skip[0]["step"].as_u64(), skip[0]["loss"].as_str()), (Some(3), Some("NaN")));
    let state = checkpoint::load_state(&out.join("checkpoints/step-000008")).unwrap();
    assert_eq!((state.step, state.adamw_step, state.skipped), (8, 7, 1), "the optimizer took 7 steps of 8");

    // The skipped step leaves the parameters untouched.
    let data = ModAdd::new(7, 0.9, 0, Split::Train).unwrap();
    let model = Transformer::new(cfg.model.clone()).unwrap();
    let mut tr = Trainer::new(model, TrainConfig { inject_nan_at_steps: vec![2], ..cfg.train.clone() }, data.len()).unwrap();
    tr.step(&data).unwrap();
    let before: Vec<Vec<f32>> = tr.params().iter().map(|(_, p)| p.to_vec_f32().unwrap()).collect();
    assert!(tr.step(&data).unwrap().skipped);
    let after: Vec<Vec<f32>> = tr.params().iter().map(|(_, p)| p.to_vec_f32().unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!((tr.opt.step, tr.step, tr.skipped, tr.bad_in_a_row), (1, 2, 1, 1));
    assert!(!tr.step(&data).unwrap().skipped);
    assert_eq!(tr.bad_in_a_row, 0, "a good step resets the run of bad ones");

    // Three in a row with max_bad_steps_in_a_row = 3: a clear error.
    cfg.train.inject_nan_at_steps = vec![2, 4, 5, 6];
    cfg.train.max_bad_steps_in_a_row = 3;
    let out2 = out_dir("nan3");
    let e = run_training(&cfg, &out2, None).unwrap_err().to_string();
    assert!(e.contains("3 non-finite steps in a row") && e.contains("steps 4..=6") && e.contains("max_bad_steps_in_a_row") && e.contains("4 skipped"), "{e}");
    assert!(metrics(&out2).iter().any(|v| v["kind"] == "stopped"), "the stop is logged");
    assert!(!out2.join("checkpoints").exists(), "no checkpoint after a failed run");
    for d in [out, out2] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn two_micro_batches_of_4_equal_one_batch_of_8() {
    let data = ModAdd::new(13, 0.9, 0, Split::Train).unwrap();
    let run = |batch_size: usize, grad_accum: usize| {
        let model = Transformer::new(Config::tiny(Arch::Gpt2, 15)).unwrap();
        let cfg = TrainConfig { batch_size, grad_accum, lr: 1e-2, clip_grad_norm: Some(0.5), progress: false, ..TrainConfig::default() };
        let mut tr = Trainer::new(model, cfg, data.len()).unwrap();
        let reports: Vec<StepReport> = (0..3).map(|_| tr.step(&data).unwrap()).collect();
        let params: Vec<f64> = tr.params().iter().flat_map(|(_, p)| p.to_vec_f64().unwrap()).collect();
        (reports, params, tr.cursor())
    };
    let (big, p_big, c_big) = run(8, 1);
    let (acc, p_acc, c_acc) = run(4, 2);
    assert_eq!(c_big, c_acc, "both consumed the same 24 examples");
    for (a, b) in acc.iter().zip(&big) {
        assert_eq!(a.tokens, b.tokens);
        assert!((a.loss - b.loss).abs() < 1e-5 && (a.grad_norm - b.grad_norm).abs() < 1e-4 * b.grad_norm, "{a:?} vs {b:?}");
    }
    assert_close(&p_acc, &p_big, 2e-5, 1e-4, "parameters after 3 steps");
}

/// `dtype`: f32 configs serialize as before (no field: unchanged config.json and state.json),
/// bf16 round-trips, a run may resume in either dtype, and bf16 on the CPU is refused up front
/// (by the trainer and by run_training_on, before anything is written).
#[test]
fn dtype_f32_is_unchanged_on_disk_and_bf16_is_refused_on_the_cpu() {
    let f32_json = serde_json::to_value(TrainConfig::default()).unwrap();
    assert!(f32_json.get("dtype").is_none(), "an f32 config writes no dtype field: {f32_json}");
    let bf16 = TrainConfig { dtype: Precision::Bf16, ..TrainConfig::default() };
    let text = serde_json::to_string(&bf16).unwrap();
    assert!(text.contains(r#""dtype":"bf16""#), "{text}");
    assert_eq!(serde_json::from_str::<TrainConfig>(&text).unwrap(), bf16);
    assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert!("f16".parse::<Precision>().unwrap_err().to_string().contains("unknown dtype `f16`"));

    let run = mod_add_run(7, 2);
    let bf16_run = RunConfig { train: bf16.clone(), ..run.clone() };
    checkpoint::check_resumable(&run, &RunConfig { train: TrainConfig { dtype: Precision::Bf16, ..run.train.clone() }, ..run.clone() }).expect("dtype may change on resume");

    let data = ModAdd::new(7, 0.9, 0, Split::Train).unwrap();
    let model = Transformer::new(Config::tiny(Arch::Gpt2, 9)).unwrap();
    let err = Trainer::new(model, bf16, data.len()).unwrap_err().to_string();
    assert!(err.contains("bf16 needs --device cuda") && err.contains("CPU backend computes in f32/f64"), "{err}");
    let dir = out_dir("bf16-on-cpu");
    let err = run_training_on(&bf16_run, &dir, None, kiln::tensor::Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("bf16 needs --device cuda"), "{err}");
    assert!(!dir.exists(), "a refused run writes nothing");
}
