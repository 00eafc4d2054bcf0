//! Checkpoints: a run interrupted and resumed in a fresh model continues bit for bit (losses,
//! gradient norms, the final weight and optimizer files byte for byte, and tokens sampled from them), stray temp
//! directories are ignored, only the last K are kept, writes are atomic, and every kind of
//! corrupt or mismatched checkpoint is refused with the file and the tensor or field named.
mod common;
use kiln::io::checkpoint::{commit_step_dir, list_step_dirs, resolve_checkpoint, save_safetensors, write_atomic};
use kiln::io::safetensors as st;
use kiln::model::{Arch, Config, GenerateOptions};
use kiln::sample::SamplingParams;
use kiln::nn::LoraConfig;
use kiln::optim::Schedule;
use kiln::train::*;
use kiln::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-ckpt-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

/// A GPT-2 char LM on the built-in corpus (epochs wrap within the run), or a Llama with LoRA
/// on modular addition: grad accumulation, clipping, weight decay and a cosine schedule on.
fn run_cfg(arch: Arch, steps: usize) -> RunConfig {
    let (model, data) = match arch {
        Arch::Gpt2 => {
            let mut m = Config::tiny(Arch::Gpt2, Tokenizer::char_level(CORPUS).unwrap().vocab_size());
            m.max_seq_len = 16;
            (m, DataSpec::Text { path: None, tokenizer: TextTokenizer::Char, seq_len: 16, eval_fraction: 0.1 })
        }
        Arch::Llama => {
            let mut m = Config::tiny(Arch::Llama, 13);
            m.lora = Some(LoraConfig { rank: 4, alpha: 8.0, rslora: false, targets: vec!["q".into(), "v".into(), "up".into()] });
            (m, DataSpec::ModAdd { p: 11, train_fraction: 0.9, seed: 1 })
        }
    };
    let train = TrainConfig {
        steps,
        batch_size: 4,
        grad_accum: 2,
        lr: 5e-3,
        weight_decay: 0.1,
        schedule: Schedule::WarmupCosine { warmup: 4, total: 30, min_ratio: 0.1 },
        clip_grad_norm: Some(0.5),
        seed: 3,
        log_every: 1,
        checkpoint_every: 15,
        keep_checkpoints: 0,
        save_final: false,
        progress: false,
        ..TrainConfig::default()
    };
    RunConfig { model, data, train }
}

#[test]
fn resume_continues_bit_for_bit_and_ignores_stray_temp_dirs() {
    for arch in [Arch::Gpt2, Arch::Llama] {
        // Straight: 30 steps.
        let a = out_dir(&format!("straight-{arch:?}"));
        let straight = run_training(&run_cfg(arch, 30), &a, None).unwrap();
        // Interrupted: 20 steps (a checkpoint at 15), as if killed at step 20 ...
        let b = out_dir(&format!("resumed-{arch:?}"));
        run_training(&run_cfg(arch, 20), &b, None).unwrap();
        // ... mid-way through writing a later checkpoint, which left temp directories behind.
        let stray = b.join("checkpoints").join(format!("step-000019.tmp-{}", u32::MAX));
        std::fs::create_dir_all(&stray).unwrap();
        std::fs::write(stray.join("state.json"), "{ garbage").unwrap();
        std::fs::create_dir_all(b.join("checkpoints/step-000018.tmp-1")).unwrap();
        assert_eq!(resolve_checkpoint(&b, "state.json").unwrap(), b.join("checkpoints/step-000015"));
        // Resume in a fresh model (run_training rebuilds it from the config and loads).
        let resumed = run_training(&run_cfg(arch, 30), &b, Some(&b)).unwrap();

        assert_eq!(resumed.steps.len(), 15);
        assert_eq!(resumed.steps.first().unwrap().step, 16);
        for (r, s) in resumed.steps.iter().zip(&straight.steps[15..]) {
            assert_eq!((r.step, r.loss.to_bits(), r.grad_norm.to_bits(), r.lr.to_bits()), (s.step, s.loss.to_bits(), s.grad_norm.to_bits(), s.lr.to_bits()), "{arch:?} step {}: {r:?} vs {s:?}", s.step);
        }
        assert_eq!(resumed.eval, straight.eval);
        for f in ["model.safetensors", "optimizer.safetensors", "state.json"] {
            let read = |d: &Path| std::fs::read(d.join("checkpoints/step-000030").join(f)).unwrap();
            assert!(read(&a) == read(&b), "{arch:?}: final {f} differs between straight and resumed runs");
        }
        // Sampling from the two final models: the same tokens (and log-probabilities), bit for bit.
        let sampled = |d: &Path| {
            let (m, _) = load_checkpoint(&d.join("checkpoints/step-000030")).unwrap();
            let opts = GenerateOptions { max_new_tokens: 10, params: vec![SamplingParams::default().with_top_p(0.95)], seed: 11, ..Default::default() };
            m.generate(&[vec![1, 2, 3], vec![4]], &opts).unwrap().into_iter().map(|g| (g.new_ids, g.logprob.to_bits())).collect::<Vec<_>>()
        };
        let (sa, sb) = (sampled(&a), sampled(&b));
        assert_eq!(sa, sb, "{arch:?}: sampled tokens differ between straight and resumed runs");
        assert!(sa.iter().all(|(ids, _)| ids.len() == 10));
        // The metrics file reads as one run: the interrupted run's steps 16..20 were dropped.
        let steps: Vec<u64> = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|v| v["kind"] == "train").map(|v| v["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, (1..=30).collect::<Vec<u64>>());
        for d in [a, b] {
            std::fs::remove_dir_all(d).ok();
        }
    }
}

#[test]
fn only_the_last_k_checkpoints_are_kept_and_writes_leave_no_temp_files() {
    let mut cfg = run_cfg(Arch::Llama, 5);
    (cfg.train.checkpoint_every, cfg.train.keep_checkpoints) = (1, 2);
    let out = out_dir("keep");
    run_training(&cfg, &out, None).unwrap();
    let steps: Vec<usize> = list_step_dirs(&out.join("checkpoints")).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(steps, vec![4, 5]);
    let names: Vec<String> = std::fs::read_dir(out.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
    // Re-committing an existing step replaces it whole.
    let parent = out.join("checkpoints");
    commit_step_dir(&parent, 5, &[("a.txt", b"new".to_vec())]).unwrap();
    assert_eq!(std::fs::read_dir(parent.join("step-000005")).unwrap().count(), 1);
    write_atomic(&out.join("x.json"), b"{}").unwrap();
    write_atomic(&out.join("x.json"), b"[1]").unwrap();
    assert_eq!(std::fs::read(out.join("x.json")).unwrap(), b"[1]");
    assert!(!std::fs::read_dir(&out).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp-")));
    let e = run_training(&cfg, &out, None).unwrap_err().to_string();
    assert!(e.contains("already holds a run") && e.contains("kiln-ckpt"), "a fresh run into a used directory: {e}");
    let e = resolve_checkpoint(&out.join("nowhere"), "state.json").unwrap_err().to_string();
    assert!(e.contains("nowhere"), "{e}");
    std::fs::remove_dir_all(out).ok();
}

/// A fresh two-step checkpoint to damage, and the config that made it.
fn good_checkpoint(name: &str) -> (RunConfig, PathBuf, PathBuf) {
    let mut cfg = run_cfg(Arch::Llama, 2);
    (cfg.train.checkpoint_every, cfg.train.save_final) = (0, true);
    let out = out_dir(name);
    run_training(&cfg, &out, None).unwrap();
    let dir = out.join("checkpoints/step-000002");
    (cfg, out, dir)
}

/// Resume from `dir` after `damage`; the error text.
fn resume_error(cfg: &RunConfig, out: &Path, dir: &Path, damage: impl FnOnce(&Path)) -> String {
    let copy = out.join("damaged");
    std::fs::remove_dir_all(&copy).ok();
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        std::fs::copy(dir.join(f), copy.join(f)).unwrap();
    }
    damage(&copy);
    let mut cfg = cfg.clone();
    cfg.train.steps = 3;
    run_training(&cfg, &out.join("again"), Some(&copy)).unwrap_err().to_string()
}

fn rewrite(path: &Path, edit: impl FnOnce(&mut BTreeMap<String, Tensor>)) {
    let mut t = st::load(path).unwrap();
    edit(&mut t);
    let list: Vec<(String, Tensor)> = t.into_iter().collect();
    save_safetensors(path, &list, &BTreeMap::new()).unwrap();
}

#[test]
fn corrupt_weights_are_refused_naming_file_and_tensor() {
    let (cfg, out, dir) = good_checkpoint("corrupt-weights");
    let q = "model.layers.0.self_attn.q_proj.weight";
    let e = resume_error(&cfg, &out, &dir, |d| {
        let b = std::fs::read(d.join("model.safetensors")).unwrap();
        std::fs::write(d.join("model.safetensors"), &b[..b.len() - 100]).unwrap();
    });
    assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors"), "{e}");
    let e = resume_error(&cfg, &out, &dir, |d| std::fs::write(d.join("model.safetensors"), [0xff; 16]).unwrap());
    assert!(e.contains("model.safetensors"), "{e}");
    let e = resume_error(&cfg, &out, &dir, |d| {
        rewrite(&d.join("model.safetensors"), |t| {
            t.remove(q);
            t.insert("model.extra.weight".into(), Tensor::from_vec(vec![1.0], [1]).unwrap());
        })
    });
    assert!(e.contains("model.safetensors") && e.contains("missing") && e.contains(q) && e.contains("model.extra.weight"), "{e}");
    let e = resume_error(&cfg, &out, &dir, |d| rewrite(&d.join("model.safetensors"), |t| drop(t.insert(q.into(), Tensor::from_vec(vec![0.0; 6], [2, 3]).unwrap()))));
    assert!(e.contains(q) && e.contains("shape [2, 3]"), "{e}");
    let e = resume_error(&cfg, &out, &dir, |d| {
        rewrite(&d.join("model.safetensors"), |t| {
            let n = t[q].elem_count();
            let dims = t[q].dims().to_vec();
            t.insert(q.into(), Tensor::from_vec_u32(vec![0; n], dims).unwrap());
        })
    });
    assert!(e.contains(q) && e.contains("dtype U32, expected F32"), "{e}");
    let m = "model.layers.1.self_attn.q_proj.lora_A.weight.exp_avg_sq";
    let e = resume_error(&cfg, &out, &dir, |d| rewrite(&d.join("optimizer.safetensors"), |t| drop(t.remove(m))));
    assert!(e.contains("optimizer.safetensors") && e.contains(m), "{e}");
    std::fs::remove_dir_all(out).ok();
}

/// Damage that edits state.json as JSON.
fn edit_state(f: impl Fn(&mut serde_json::Value)) -> impl FnOnce(&Path) {
    move |d: &Path| {
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("state.json")).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(d.join("state.json"), v.to_string()).unwrap();
    }
}

#[test]
fn bad_state_json_and_config_mismatches_name_the_field() {
    let (cfg, out, dir) = good_checkpoint("corrupt-state");
    let e = resume_error(&cfg, &out, &dir, |d| std::fs::write(d.join("state.json"), "not json at all").unwrap());
    assert!(e.contains("state.json"), "{e}");
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["step"] = "two".into()));
    assert!(e.contains("state.json") && e.contains("field `step`"), "{e}");
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["cursor"]["epoch"] = (-1).into()));
    assert!(e.contains("cursor.epoch"), "{e}");
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["stepp"] = 3.into()));
    assert!(e.contains("stepp"), "{e}");
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["run"]["model"]["n_heads"] = 3.into()));
    assert!(e.contains("state.json") && e.contains("n_heads"), "{e}");
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["adamw_step"] = 5.into()));
    assert!(e.contains("adamw_step"), "{e}");
    // A checkpoint of another model or optimizer setting: refused by field, not silently mixed.
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["run"]["model"]["d_model"] = 64.into()));
    assert!(e.contains("model.d_model") && e.contains("64"), "{e}");
    let e = resume_error(&cfg, &out, &dir, edit_state(|v| v["run"]["train"]["lr"] = 0.5.into()));
    assert!(e.contains("train.lr"), "{e}");
    // The untouched copy resumes fine: the damage, not the copying, made the errors.
    let mut ok = cfg.clone();
    ok.train.steps = 3;
    run_training(&ok, &out.join("fine"), Some(&dir)).unwrap();
    std::fs::remove_dir_all(out).ok();
}
