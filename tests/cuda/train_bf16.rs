//! parity_train_bf16_*: mixed-precision training (`train.dtype` bf16, `kiln train --dtype bf16`)
//! end to end through `run_training_on`, on the tiny GPT-2 and Llama/GQA models of train.rs (same
//! widths; sequences of 16, 64 tokens per step, so the emulated run stays short): the bf16
//! loss curve on the GPU falls and tracks the f32 CPU curve step by step within TOL_REL, two bf16
//! runs (or a run and its resumed second half) agree bit for bit, and the checkpoints hold f32
//! master weights and f32 AdamW moments (strictly loaded as F32). Also runs without a GPU:
//! `KILN_CUDA_EMU=1 cargo test --test cuda -- --include-ignored parity_train_bf16` (~30 s each).
use super::*;
use kiln::io::checkpoint::{load_strict, Expected};
use kiln::train::{run_training_on, Precision, RunConfig, RunSummary};
use std::path::{Path, PathBuf};

const STEPS: usize = 20;
/// |loss_bf16 - loss_f32| <= TOL_REL * loss_f32 at every step. Why 3%: bf16 keeps 8 significant
/// bits (unit roundoff 2^-9 ~ 0.2%) and the weights, every activation and every gradient are
/// rounded to it, so each step's loss differs from f32's by a few 0.01% and the trajectories,
/// pushed apart by bf16 gradients for 20 AdamW steps, drift further; a hard batch (a loss spike)
/// magnifies the gap. Measured on the emulated device: max 0.06% over both models at seq 32 /
/// batch 8, and at the shapes below 0.04% (llama) and 0.77% (gpt2, at a spike at step 14; 0.09%
/// elsewhere). 3% is 4x the worst of those and still fails on a real bug (a wrong gradient or a
/// dropped update moves the curve by far more within a few steps; a run that does not learn
/// fails the "loss falls" check, and one that is secretly f32 fails the lower bound).
const TOL_REL: f64 = 3e-2;

fn config(model: &str, seq: usize, batch_size: usize, grad_accum: usize) -> RunConfig {
    let text = format!(
        r#"{{"model": {model}, "data": {{"kind": "text", "path": null, "tokenizer": "char", "seq_len": {seq}}},
            "train": {{"steps": {STEPS}, "batch_size": {batch_size}, "grad_accum": {grad_accum}, "lr": 3e-3, "log_every": 1,
                      "eval_every": 0, "eval_batches": 1, "checkpoint_every": 10, "keep_checkpoints": 0, "save_final": true,
                      "progress": false, "schedule": {{"kind": "warmup_cosine", "warmup": 5, "total": {STEPS}, "min_ratio": 0.1}}}}}}"#
    );
    RunConfig::from_json(&text, "test").unwrap()
}

fn scratch(what: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("kiln-gpu-train-bf16-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

fn with_dtype(cfg: &RunConfig, dtype: Precision) -> RunConfig {
    let mut c = cfg.clone();
    c.train.dtype = dtype;
    c
}

fn losses(s: &RunSummary) -> Vec<f64> {
    s.steps.iter().map(|r| r.loss).collect()
}

/// Every loss and gradient norm of two runs, bit for bit.
fn assert_bitwise(what: &str, a: &[kiln::train::StepReport], b: &[kiln::train::StepReport]) {
    assert_eq!(a.len(), b.len(), "{what}: step counts");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.step, y.step, "{what}: step numbers");
        assert!(x.loss.to_bits() == y.loss.to_bits() && x.grad_norm.to_bits() == y.grad_norm.to_bits(), "{what}: step {} differs: loss {} vs {}, grad norm {} vs {}", x.step, x.loss, y.loss, x.grad_norm, y.grad_norm);
    }
}

/// The bf16 curve falls and stays within TOL_REL of the f32 CPU curve; returns max |diff|.
fn assert_tracks(what: &str, f32_cpu: &[f64], bf16_gpu: &[f64]) -> f64 {
    assert_eq!(f32_cpu.len(), STEPS, "{what}: CPU steps");
    assert_eq!(bf16_gpu.len(), STEPS, "{what}: GPU steps");
    let mut worst: f64 = 0.0;
    for (i, (c, g)) in f32_cpu.iter().zip(bf16_gpu).enumerate() {
        let d = (c - g).abs();
        println!("{what} step {:>2}: f32 cpu {c:.6} bf16 gpu {g:.6} |diff| {d:.2e} ({:.2}%)", i + 1, 100.0 * d / c);
        assert!(g.is_finite() && d <= TOL_REL * c, "{what}: step {} loss f32 {c} vs bf16 {g}: beyond {TOL_REL} relative", i + 1);
        worst = worst.max(d);
    }
    println!("{what}: max |diff| {worst:.3e} over {STEPS} steps (tolerance {TOL_REL} x loss)");
    // f32 on the GPU tracks the CPU within 1e-4 (train.rs); a "bf16" curve that close to the f32
    // one would mean the steps did not run in bf16 at all.
    assert!(worst > 1e-4, "{what}: the bf16 curve matches f32 within f32 parity ({worst:.2e}): was it computed in bf16?");
    assert!(bf16_gpu[STEPS - 1] < bf16_gpu[0] - 0.1, "{what}: the bf16 run should learn ({} -> {})", bf16_gpu[0], bf16_gpu[STEPS - 1]);
    worst
}

/// The checkpoint holds f32 masters and f32 moments: both files load strictly as F32.
fn assert_f32_checkpoint(run: &Path) {
    let (model, state) = kiln::train::load_checkpoint(run).expect("model.safetensors loads strictly as F32");
    assert_eq!(state.run.train.dtype, Precision::Bf16, "state.json records the run's dtype");
    assert!(model.named_params().iter().all(|(_, p)| p.dtype() == DType::F32));
    let dir = run.join("checkpoints").join(format!("step-{STEPS:06}"));
    let expected: Vec<Expected> = model
        .trainable_params()
        .iter()
        .flat_map(|(n, p)| ["exp_avg", "exp_avg_sq"].map(|s| Expected { name: format!("{n}.{s}"), shape: p.shape().clone(), dtype: DType::F32 }))
        .collect();
    let (moments, _) = load_strict(&dir.join("optimizer.safetensors"), &expected).expect("optimizer.safetensors holds f32 moments");
    let sq = moments.iter().filter(|(n, _)| n.ends_with("exp_avg_sq")).flat_map(|(_, t)| t.to_vec_f64().unwrap()).fold(0.0, f64::max);
    assert!(sq > 0.0, "AdamW's second moments should be non-zero after {STEPS} steps");
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_train_bf16_gpt2_tracks_f32_and_repeats() {
    setup();
    let cfg = config(r#"{"arch": "gpt2", "vocab_size": 128, "d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 16, "tie_embeddings": true}"#, 16, 4, 1);
    let root = scratch("gpt2");
    let cpu = run_training_on(&cfg, &root.join("cpu"), None, Device::Cpu).unwrap();
    let bf16 = with_dtype(&cfg, Precision::Bf16);
    let a = run_training_on(&bf16, &root.join("a"), None, GPU).unwrap();
    let b = run_training_on(&bf16, &root.join("b"), None, GPU).unwrap();
    assert_bitwise("gpt2 bf16 twice", &a.steps, &b.steps);
    assert_eq!(a.eval.loss.to_bits(), b.eval.loss.to_bits(), "gpt2 bf16 twice: held-out loss");
    assert_tracks("gpt2 bf16", &losses(&cpu), &losses(&a));
    assert_f32_checkpoint(&root.join("a"));
    let _ = std::fs::remove_dir_all(root);
}

/// Llama with GQA (4 query heads, 2 kv heads), grad_accum 2 (bf16 gradients summed in f32), and
/// a resume from the step-10 checkpoint that repeats steps 11..20 bit for bit.
#[test]
#[ignore = "needs a CUDA device"]
fn parity_train_bf16_llama_gqa_tracks_f32_and_resumes() {
    setup();
    let cfg = config(r#"{"arch": "llama", "vocab_size": 128, "d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "max_seq_len": 16}"#, 16, 2, 2);
    let root = scratch("llama");
    let cpu = run_training_on(&cfg, &root.join("cpu"), None, Device::Cpu).unwrap();
    let bf16 = with_dtype(&cfg, Precision::Bf16);
    let full = run_training_on(&bf16, &root.join("full"), None, GPU).unwrap();
    assert_tracks("llama bf16", &losses(&cpu), &losses(&full));
    assert_f32_checkpoint(&root.join("full"));
    let step10 = root.join("full").join("checkpoints").join("step-000010");
    let resumed = run_training_on(&bf16, &root.join("resumed"), Some(&step10), GPU).unwrap();
    assert_bitwise("llama bf16 resumed at step 10", &full.steps[10..], &resumed.steps);
    assert_eq!(full.eval.loss.to_bits(), resumed.eval.loss.to_bits(), "llama bf16 resumed: held-out loss");
    let _ = std::fs::remove_dir_all(root);
}
