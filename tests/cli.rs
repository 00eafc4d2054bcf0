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
