//! The command line as a user meets it: `info` on a machine without a GPU, `train` -> `eval` ->
//! `generate --json` on a tiny run, and one-line errors with a non-zero exit for bad input.
use std::process::Command;

fn kiln(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).output().expect("run kiln");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn info_exits_zero_and_names_no_device_here() {
    let (ok, out, _) = kiln(&["info"]);
    assert!(ok && out.contains("kiln ") && out.contains("cuda devices:"), "{out}");
    if !std::path::Path::new("/dev/nvidia0").exists() {
        assert!(out.contains("cuda devices: none"), "{out}");
    }
}

#[test]
fn train_eval_generate_round_trip() {
    let dir = std::env::temp_dir().join(format!("kiln-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = dir.join("run.json");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&cfg, r#"{"model": {"arch": "gpt2", "vocab_size": 64, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 16},
        "data": {"kind": "text", "path": null, "tokenizer": "char", "seq_len": 16},
        "train": {"steps": 6, "batch_size": 4, "lr": 1e-3, "log_every": 2, "eval_every": 3, "eval_batches": 1, "checkpoint_every": 3}}"#).unwrap();
    let out = dir.join("out");
    let (ok, stdout, stderr) = kiln(&["train", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count() >= 3);
    let (ok, stdout, _) = kiln(&["eval", "--checkpoint", out.to_str().unwrap(), "--max-batches", "1"]);
    assert!(ok && stdout.contains("accuracy"), "{stdout}");
    let (ok, stdout, stderr) = kiln(&["generate", "--checkpoint", out.to_str().unwrap(), "--prompt", "the", "--max-new-tokens", "5", "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["new_ids"].as_array().unwrap().len(), 5);
    assert_eq!(v["prompt_ids"].as_array().unwrap().len(), 3);
    assert!(v["completion"].is_string());
    std::fs::remove_dir_all(&dir).ok();
}

/// Every method command takes `--seed`, and every one that trains or runs a model `--device`;
/// on a machine with no GPU, `--device cuda` is one clear line and a non-zero exit.
#[test]
fn every_method_takes_seed_and_the_model_ones_device() {
    let model = ["forgetting", "adaptive-compute", "algae", "erase", "misinfo-eval", "random-transformers", "intruders experiment", "ttt-arc reproduce", "ttt-arc run", "ttt-arc finetune"];
    for cmd in model.iter().chain(&["linear-attn-learn"]) {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let (ok, help, _) = kiln(&args);
        assert!(ok && help.contains("--seed"), "{cmd}: {help}");
        assert!(help.contains("--device") == model.contains(cmd), "{cmd}: --device {}", if model.contains(cmd) { "missing" } else { "unexpected" });
    }
    if !std::path::Path::new("/dev/nvidia0").exists() && std::env::var_os("KILN_CUDA_EMU").is_none() {
        let out = std::env::temp_dir().join(format!("kiln-cli-nocuda-{}", std::process::id()));
        let (ok, _, stderr) = kiln(&["intruders", "experiment", "--scale", "tiny", "--device", "cuda", "--out", out.to_str().unwrap()]);
        assert!(!ok && stderr.trim().lines().count() == 1 && stderr.to_lowercase().contains("cuda"), "{stderr}");
        assert!(!out.join("report.json").exists(), "nothing written");
    }
}

#[test]
fn bad_input_gives_one_line_and_nonzero_exit() {
    let dir = std::env::temp_dir().join(format!("kiln-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.json");
    std::fs::write(&cfg, r#"{"model": {"arch": "gpt2", "vocab_size": 64, "d_model": 16, "n_layers": 1, "n_heads": 3, "max_seq_len": 16}, "data": {"kind": "mod_add", "p": 7}}"#).unwrap();
    let (ok, _, stderr) = kiln(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()]);
    assert!(!ok && stderr.starts_with("error:") && stderr.contains("n_heads") && stderr.trim().lines().count() == 1, "{stderr}");
    let (ok, _, stderr) = kiln(&["eval", "--checkpoint", dir.join("nothing-here").to_str().unwrap()]);
    assert!(!ok && stderr.contains("nothing-here"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dtype_bf16_on_cpu_and_unknown_dtypes_are_refused_and_write_nothing() {
    let dir = std::env::temp_dir().join(format!("kiln-cli-dtype-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = r#""model": {"arch": "gpt2", "vocab_size": 64, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 16}, "data": {"kind": "text", "path": null, "tokenizer": "char", "seq_len": 16}"#;
    let cfg = dir.join("run.json");
    std::fs::write(&cfg, format!(r#"{{{model}, "train": {{"steps": 2, "batch_size": 2}}}}"#)).unwrap();
    let in_config = dir.join("bf16.json");
    std::fs::write(&in_config, format!(r#"{{{model}, "train": {{"steps": 2, "batch_size": 2, "dtype": "bf16"}}}}"#)).unwrap();
    let out = dir.join("out");
    let one_line = |stderr: &str| stderr.starts_with("error:") && stderr.trim().lines().count() == 1;
    // --dtype bf16 on the CPU (the default device, and named), and train.dtype bf16 in the config
    for args in [vec!["--config", cfg.to_str().unwrap(), "--dtype", "bf16"], vec!["--config", cfg.to_str().unwrap(), "--dtype", "bf16", "--device", "cpu"], vec!["--config", in_config.to_str().unwrap()]] {
        let (ok, _, stderr) = kiln(&[&["train", "--out", out.to_str().unwrap()], &args[..]].concat());
        assert!(!ok && one_line(&stderr) && stderr.contains("bf16 needs --device cuda") && stderr.contains("CPU backend computes in f32/f64"), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?}: a refused run must write nothing");
    }
    // an unknown --dtype, and an unknown train.dtype in the config
    let (ok, _, stderr) = kiln(&["train", "--config", cfg.to_str().unwrap(), "--dtype", "fp16", "--out", out.to_str().unwrap()]);
    assert!(!ok && one_line(&stderr) && stderr.contains("unknown dtype `fp16` (expected f32 or bf16)"), "{stderr}");
    std::fs::write(&in_config, format!(r#"{{{model}, "train": {{"dtype": "f16"}}}}"#)).unwrap();
    let (ok, _, stderr) = kiln(&["train", "--config", in_config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok && one_line(&stderr) && stderr.contains("f16") && stderr.contains("bf16"), "{stderr}");
    assert!(!out.exists(), "a refused run must write nothing");
    // --dtype f32 is the default and trains on the CPU
    let (ok, stdout, stderr) = kiln(&["train", "--config", cfg.to_str().unwrap(), "--dtype", "f32", "--out", out.to_str().unwrap()]);
    assert!(ok && stdout.contains("step 2"), "{stdout}\n{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_report_reads_committed_gpu_results_and_names_a_bad_line() {
    let run1 = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results/gpu-h200-2026-11-27-run1.jsonl");
    let run2 = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results/gpu-h200-2026-11-27-run2.jsonl");
    let (ok, out, stderr) = kiln(&["bench-report", run2, "--against", run1]);
    assert!(ok, "{stderr}");
    assert!(out.contains("targets (this run):") && out.contains("against ") && out.contains("speedup"), "{out}");
    // run 1 timed both bf16 GEMM paths: which one to keep
    let (ok, out, stderr) = kiln(&["bench-report", run1]);
    assert!(ok && out.contains("choices this run can settle") && out.contains("keep wgmma over 3 shape(s) [mma 1.89x]"), "{out}{stderr}");
    let dir = std::env::temp_dir().join(format!("kiln-cli-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("cut.jsonl");
    let first = std::fs::read_to_string(run1).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&bad, format!("{first}\n{}\n", &first[..first.len() / 2])).unwrap();
    let (ok, _, stderr) = kiln(&["bench-report", bad.to_str().unwrap()]);
    assert!(!ok && stderr.starts_with("error:") && stderr.contains("cut.jsonl") && stderr.contains("line 2"), "{stderr}");
    // compile-kernels refuses what it cannot mean before compiling anything
    let (ok, _, stderr) = kiln(&["compile-kernels", "--cc", "nine"]);
    assert!(!ok && stderr.contains("not a compute capability"), "{stderr}");
    let (ok, _, stderr) = kiln(&["compile-kernels", "--only", "matmul,nope"]);
    assert!(!ok && stderr.contains("no kernel family `nope`"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `kiln bench --device cuda` on the emulated device (KILN_CUDA_EMU=1): every family's cases once
/// on small shapes, every GEMM path included, so the bench's own code is exercised before a lent
/// GPU's minutes are spent on it. Timings here mean nothing; the rows and the verdicts must exist.
#[cfg(feature = "emu")]
#[test]
fn bench_cuda_smoke_run_on_the_emulated_device() {
    let dir = std::env::temp_dir().join(format!("kiln-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("bench.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_CUDA_EMU", "1")
        .args(["bench", "--device", "cuda", "--jsonl", jsonl.to_str().unwrap()])
        .output()
        .expect("run kiln");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !stderr.contains("failed after"), "{stderr}");
    assert!(stdout.contains("targets (this run):") && stdout.contains("KERNELS.md's other targets"), "{stdout}");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let has = |op: &str, variant: &str| rows.iter().any(|r| r["op"] == op && r["variant"].as_str().unwrap().starts_with(variant));
    // one row (at least) from each family, in the order they run
    for (op, variant) in [
        ("matmul", "bf16 wgmma-tma-c2"),
        ("lora_fwd", "bf16 wgmma-tma"),
        ("lora_bwd", "bf16"),
        ("linear_attention_fwd", "bf16 wgmma"),
        ("linear_attention_fwd", "bf16 wgmma-fused"),
        ("linear_attention_fwd+bwd", "bf16 wgmma-fused"),
        ("linear_attention_fwd_unfused", "bf16"),
        ("linear_attention_fwd_segments", "bf16 wgmma S=16"),
        ("linear_attention_fwd_segments", "bf16 wgmma-fused S=16"),
        ("sample", "vs sort_based"),
        ("swiglu_backward", "bf16"),
        ("argmax", "bf16"),
        ("topk", "bf16"),
        ("index_select", "f32"),
        ("cross_entropy_backward", "bf16"),
        ("layer_norm_backward", "bf16"),
        ("rope", "f32"),
        ("embedding_backward", "bf16"),
        ("adamw", "g bf16"),
        ("attention_bwd", "f32"),
    ] {
        assert!(has(op, variant), "no {op} {variant} row");
    }
    // the A/B stage of scripts/gpu-run.sh: the same families on the kernels measured before
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .envs([("KILN_CUDA_EMU", "1"), ("KILN_NORM", "warp"), ("KILN_LINATTN_SPLIT", "off"), ("KILN_SOFTMAX", "rc"), ("KILN_LORA", "mma")])
        .args(["bench", "--device", "cuda", "--only", "norm,linear_attention,softmax_xent,lora"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("layer_norm_backward") && stdout.contains("lora_bwd"), "{stderr}");
    // an unknown family is refused by name
    let out = Command::new(env!("CARGO_BIN_EXE_kiln")).env("KILN_CUDA_EMU", "1").args(["bench", "--device", "cuda", "--only", "matmul,nope"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no kernel family \"nope\""), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
