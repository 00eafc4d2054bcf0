//! Golden end-to-end test (llm.c's test_gpt2 idea): tiny GPT-2- and Llama-style models whose
//! weights, logits, loss, every parameter gradient and 5 AdamW-step losses were computed by an
//! independent implementation (PyTorch + HF transformers, scripts/make_fixtures.py). kiln loads
//! the same weights by their HF names and must reproduce all of it:
//! logits and gradients within 1e-4 relative, step losses within 1e-5.
mod common;
use common::*;
use kiln::io::{hf, safetensors};
use kiln::model::{Config, Transformer};
use kiln::optim::AdamW;
use kiln::{backward, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(arch: &str) -> (BTreeMap<String, Tensor>, serde_json::Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tensors = safetensors::load(&dir.join(format!("golden_{arch}.safetensors"))).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("golden_{arch}.json"))).unwrap()).unwrap();
    (tensors, meta)
}

/// max |a - b| <= tol * max |b|  (relative to the reference's scale)
fn assert_rel(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(worst <= tol * scale, "{what}: max diff {worst:e} vs scale {scale:e} (rel {:e} > {tol:e})", worst / scale);
}

fn golden(arch: &str) {
    let (t, meta) = fixture(arch);
    let cfg = Config::from_json(&meta["kiln_config"].to_string(), "fixture").unwrap();
    let model = Transformer::new(cfg).unwrap();
    let params: BTreeMap<String, Tensor> = t.iter().filter_map(|(k, v)| k.strip_prefix("param.").map(|n| (n.to_string(), v.clone()))).collect();
    hf::load_params(&model, &params, "fixture").unwrap();
    let (ids, targets) = (&t["input_ids"], &t["targets"]);

    let logits = model.forward(ids, 0, None).unwrap();
    assert_rel(&logits, &t["logits"], 1e-4, &format!("{arch} logits"));
    let loss = Tensor::cross_entropy(&logits, targets, u32::MAX).unwrap();
    let want = t["loss"].to_vec_f64().unwrap()[0];
    assert!((loss.to_scalar().unwrap() - want).abs() <= 1e-5 * want.abs(), "{arch} loss {} vs {want}", loss.to_scalar().unwrap());

    let grads = backward(&loss).unwrap();
    let mut checked = 0;
    for (name, p) in model.named_params() {
        let reference = &t[&format!("grad.{name}")];
        let reference = if hf::hf_transposed(model.cfg.arch, &name) { reference.transpose(0, 1).unwrap() } else { reference.clone() };
        assert_rel(grads.get(&p).unwrap(), &reference, 1e-4, &format!("{arch} grad {name}"));
        checked += 1;
    }
    assert!(checked > 10, "{arch}: only {checked} gradients compared");

    let a = &meta["adamw"];
    let mut opt = AdamW::new(a["weight_decay"].as_f64().unwrap());
    let params = model.named_params();
    let want = t["step_losses"].to_vec_f64().unwrap();
    for (i, w) in want.iter().enumerate() {
        let l = model.loss(ids, targets, u32::MAX).unwrap();
        let got = l.to_scalar().unwrap();
        assert!((got - w).abs() <= 1e-5, "{arch} step {i}: loss {got} vs {w}");
        opt.step(&params, &backward(&l).unwrap(), a["lr"].as_f64().unwrap()).unwrap();
    }
}

#[test]
fn golden_gpt2_matches_pytorch() {
    golden("gpt2");
}

#[test]
fn golden_llama_matches_pytorch() {
    golden("llama");
}

#[test]
fn loading_reports_missing_and_unexpected_names() {
    let (t, meta) = fixture("llama");
    let model = Transformer::new(Config::from_json(&meta["kiln_config"].to_string(), "fixture").unwrap()).unwrap();
    let mut params: BTreeMap<String, Tensor> = t.iter().filter_map(|(k, v)| k.strip_prefix("param.").map(|n| (n.to_string(), v.clone()))).collect();
    params.remove("model.norm.weight");
    params.insert("model.extra.weight".into(), randn(&[2], 1));
    let e = hf::load_params(&model, &params, "weights.safetensors").unwrap_err().to_string();
    assert!(e.contains("model.norm.weight") && e.contains("model.extra.weight") && e.contains("weights.safetensors"), "{e}");
}

#[test]
fn corrupt_safetensors_files_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("kiln-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_gpt2.safetensors");
    let bytes = std::fs::read(src).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = safetensors::load(&truncated).unwrap_err().to_string();
    assert!(e.contains("truncated.safetensors"), "{e}");
    let huge_header = dir.join("header.safetensors");
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    std::fs::write(&huge_header, b).unwrap();
    assert!(safetensors::load(&huge_header).unwrap_err().to_string().contains("header.safetensors"));
    assert!(safetensors::load(&dir.join("missing.safetensors")).unwrap_err().to_string().contains("missing.safetensors"));
    std::fs::remove_dir_all(&dir).ok();
}
