//! parity_train_*: the tiny models train on the GPU along the CPU's loss curve (f32, 20 steps,
//! |loss_gpu - loss_cpu| <= 1e-4 at every step), end to end through `run_training_on`, and a
//! checkpoint trained on the GPU generates the same greedy tokens on both devices.
use super::*;
use kiln::train::{run_training_on, RunConfig};

fn config(model: &str, data: &str) -> RunConfig {
    let text = format!(
        r#"{{"model": {model}, "data": {data},
            "train": {{"steps": 20, "batch_size": 8, "lr": 3e-3, "log_every": 1, "eval_every": 0,
                      "eval_batches": 2, "checkpoint_every": 0, "save_final": true, "progress": false,
                      "schedule": {{"kind": "warmup_cosine", "warmup": 5, "total": 20, "min_ratio": 0.1}}}}}}"#
    );
    RunConfig::from_json(&text, "test").unwrap()
}

fn curves(cfg: &RunConfig, what: &str) -> (Vec<f64>, Vec<f64>, std::path::PathBuf) {
    let root = std::env::temp_dir().join(format!("kiln-gpu-train-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let cpu = run_training_on(cfg, &root.join("cpu"), None, Device::Cpu).unwrap();
    let gpu = run_training_on(cfg, &root.join("gpu"), None, GPU).unwrap();
    let l = |s: &kiln::train::RunSummary| s.steps.iter().map(|r| r.loss).collect::<Vec<_>>();
    (l(&cpu), l(&gpu), root)
}

fn assert_tracks(what: &str, cpu: &[f64], gpu: &[f64]) {
    assert_eq!(cpu.len(), 20, "{what}: 20 CPU steps");
    assert_eq!(gpu.len(), 20, "{what}: 20 GPU steps");
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        println!("{what} step {:>2}: cpu {c:.6} gpu {g:.6} diff {:.2e}", i + 1, (c - g).abs());
        assert!((c - g).abs() <= 1e-4, "{what}: step {} loss cpu {c} vs gpu {g}", i + 1);
    }
    assert!(gpu[19] < gpu[0], "{what}: the GPU run should learn ({} -> {})", gpu[0], gpu[19]);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_train_llama_text_loss_curve() {
    setup();
    let cfg = config(
        r#"{"arch": "llama", "vocab_size": 128, "d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "max_seq_len": 32}"#,
        r#"{"kind": "text", "path": null, "tokenizer": "char", "seq_len": 32}"#,
    );
    let (cpu, gpu, root) = curves(&cfg, "llama");
    assert_tracks("llama text", &cpu, &gpu);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_train_gpt2_text_loss_curve_and_generate() {
    setup();
    let cfg = config(
        r#"{"arch": "gpt2", "vocab_size": 128, "d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 32, "tie_embeddings": true}"#,
        r#"{"kind": "text", "path": null, "tokenizer": "char", "seq_len": 32}"#,
    );
    let (cpu, gpu, root) = curves(&cfg, "gpt2");
    assert_tracks("gpt2 text", &cpu, &gpu);
    // The GPU-trained checkpoint greedily decodes the same tokens on both devices.
    let (model, state) = kiln::train::load_checkpoint(&root.join("gpu")).unwrap();
    let opts = kiln::model::GenerateOptions { max_new_tokens: 12, params: vec![kiln::sample::SamplingParams::greedy()], stop_tokens: vec![], seed: 0 };
    let prompt = state.tokenizer.encode("the ").unwrap();
    let on_cpu = model.generate(std::slice::from_ref(&prompt), &opts).unwrap();
    model.to_device(GPU).unwrap();
    let on_gpu = model.generate(&[prompt], &opts).unwrap();
    assert_eq!(on_cpu[0].new_ids, on_gpu[0].new_ids, "greedy decoding differs between devices");
    let _ = std::fs::remove_dir_all(root);
}
