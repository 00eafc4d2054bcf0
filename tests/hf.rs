//! HF interop against the reference stack (scripts/make_hf_fixtures.py: transformers + peft +
//! tokenizers): a tiny Llama directory (GQA, llama3 RoPE scaling) and a PEFT rsLoRA adapter with
//! rank/alpha patterns. kiln's logits must match within 1e-4 relative (f32), base and
//! base+adapter; the tokenizer must give transformers' ids; saves must reload bit for bit; and
//! every kind of bad file must give a clear error naming the file and the tensor or field.
use kiln::io::checkpoint::safetensors_bytes;
use kiln::io::hf::{self, HfTokenizer};
use kiln::io::safetensors;
use kiln::model::Transformer;
use kiln::Tensor;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
fn model_dir() -> PathBuf {
    fixtures().join("hf_llama")
}
fn adapter_dir() -> PathBuf {
    fixtures().join("hf_llama_adapter")
}
fn reference() -> BTreeMap<String, Tensor> {
    safetensors::load(&fixtures().join("hf_reference.safetensors")).unwrap()
}

/// A fresh temp directory for one test.
fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-hf-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// max |a - b| / max |b|, after checking shapes.
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn logits(model: &Transformer) -> Tensor {
    let ids = &reference()["input_ids"];
    model.forward(ids, 0, None).unwrap()
}

#[test]
fn base_logits_match_transformers() {
    let (model, info) = hf::load_model(&model_dir()).unwrap();
    assert_eq!(info.model_type, "llama");
    assert_eq!(model.cfg.kv_heads(), 2);
    assert!(model.cfg.rope_scaling.is_some());
    let rel = rel_diff(&logits(&model), &reference()["logits_base"]);
    println!("base logits: max rel diff {rel:e}");
    assert!(rel <= 1e-4, "base logits differ from transformers: rel {rel:e}");
}

#[test]
fn adapter_logits_match_peft() {
    let (mut model, _) = hf::load_model(&model_dir()).unwrap();
    let pc = hf::load_adapter(&mut model, &adapter_dir()).unwrap();
    assert!(pc.use_rslora && pc.r == 4);
    // rank_pattern {"down_proj": 2}: a rank-2 adapter on every down_proj
    let kiln::nn::Mlp::SwiGlu { down, .. } = &model.blocks[0].mlp else { panic!("llama mlp") };
    assert_eq!(down.lora.as_ref().unwrap().a.dims(), [96, 2]);
    let rel = rel_diff(&logits(&model), &reference()["logits_adapter"]);
    println!("adapter logits: max rel diff {rel:e}");
    assert!(rel <= 1e-4, "adapter logits differ from peft: rel {rel:e}");
    // and the adapter matters: the base reference is far away
    assert!(rel_diff(&logits(&model), &reference()["logits_base"]) > 1e-2);
}

#[test]
fn tokenizer_ids_match_transformers() {
    let tok = HfTokenizer::load(&model_dir()).unwrap();
    let refs: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("hf_tokenizer.json")).unwrap()).unwrap();
    assert_eq!(tok.vocab_size() as u64, refs["vocab_size"].as_u64().unwrap());
    assert_eq!(tok.bos_id.map(u64::from), refs["bos_token_id"].as_u64());
    let mut eos = tok.eos_ids.clone();
    eos.sort();
    assert_eq!(json!(eos), refs["eos_token_ids"]);
    assert!(tok.chat_template.as_deref().is_some_and(|t| t.contains("bos_token")));
    let ids = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>();
    let cases = refs["cases"].as_array().unwrap();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), ids(&case["ids"]), "ids with special tokens of {text:?}");
        assert_eq!(tok.encode(text, false).unwrap(), ids(&case["ids_no_special"]), "ids without special tokens of {text:?}");
        assert_eq!(tok.decode(&ids(&case["ids"]), false).unwrap(), case["decoded"].as_str().unwrap(), "decoding {text:?}");
    }
    println!("tokenizer: {} strings, identical ids with and without special tokens", cases.len());
    assert!(tok.decode(&[100_000], false).unwrap_err().to_string().contains("100000"));
}

#[test]
fn config_4x_and_5x_forms_agree() {
    let path = model_dir().join("config.json");
    let v5: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut v4 = v5.clone();
    let o = v4.as_object_mut().unwrap();
    let mut rope = o.remove("rope_parameters").unwrap();
    o.insert("rope_theta".into(), rope["rope_theta"].clone());
    rope.as_object_mut().unwrap().remove("rope_theta");
    o.insert("rope_scaling".into(), rope);
    let dtype = o.remove("dtype").unwrap();
    o.insert("torch_dtype".into(), dtype);
    let (c5, i5) = hf::parse_config(&v5.to_string(), &path).unwrap();
    let (c4, i4) = hf::parse_config(&v4.to_string(), &path).unwrap();
    assert_eq!(c5, c4);
    assert_eq!(i5, i4);
    assert_eq!(i5.dtype.as_deref(), Some("float32"));
    // 4.x "type" spelling and plain RoPE
    let mut plain = v4.clone();
    plain["rope_scaling"] = Value::Null;
    assert!(hf::parse_config(&plain.to_string(), &path).unwrap().0.rope_scaling.is_none());
    plain["rope_scaling"] = json!({"type": "linear", "factor": 2.0});
    assert!(matches!(hf::parse_config(&plain.to_string(), &path).unwrap().0.rope_scaling, Some(kiln::model::RopeScaling::Linear { .. })));
    // mistral-style sliding window caps the context; qwen2 adds q/k/v biases
    let mut m = v5.clone();
    m["model_type"] = json!("mistral");
    m["sliding_window"] = json!(64);
    assert_eq!(hf::parse_config(&m.to_string(), &path).unwrap().0.max_seq_len, 64);
    m["model_type"] = json!("qwen2");
    assert!(hf::parse_config(&m.to_string(), &path).unwrap().0.qkv_bias);
}

#[test]
fn bad_configs_name_the_field() {
    let path = model_dir().join("config.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let err = |edit: &dyn Fn(&mut Value)| {
        let mut c = v.clone();
        edit(&mut c);
        hf::parse_config(&c.to_string(), &path).unwrap_err().to_string()
    };
    let e = err(&|c| c["model_type"] = json!("gpt_neox"));
    assert!(e.contains("gpt_neox") && e.contains("not supported") && e.contains("config.json"), "{e}");
    let e = err(&|c| c["rope_parameters"]["rope_type"] = json!("yarn"));
    assert!(e.contains("yarn") && e.contains("rope_parameters.rope_type"), "{e}");
    let e = err(&|c| {
        c.as_object_mut().unwrap().remove("hidden_size");
    });
    assert!(e.contains("hidden_size") && e.contains("missing"), "{e}");
    let e = err(&|c| c["num_key_value_heads"] = json!(3));
    assert!(e.contains("n_kv_heads"), "{e}");
    let e = err(&|c| c["vocab_size"] = json!("many"));
    assert!(e.contains("vocab_size"), "{e}");
}

/// Bit-for-bit equality of every parameter (LoRA factors included).
fn assert_same_params(a: &Transformer, b: &Transformer) {
    let (pa, pb) = (a.named_params(), b.named_params());
    assert_eq!(pa.iter().map(|p| &p.0).collect::<Vec<_>>(), pb.iter().map(|p| &p.0).collect::<Vec<_>>());
    for ((n, x), (_, y)) in pa.iter().zip(&pb) {
        let (x, y) = (x.to_vec_f32().unwrap(), y.to_vec_f32().unwrap());
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{n} differs after the round trip");
    }
}

#[test]
fn save_then_load_is_bit_identical() {
    let (model, info) = hf::load_model(&model_dir()).unwrap();
    let out = temp("save").join("exported");
    hf::save_model(&model, &info, &out, Some(&model_dir())).unwrap();
    assert!(out.join("tokenizer.json").is_file() && !out.parent().unwrap().join(format!("exported.tmp-{}", std::process::id())).exists());
    let (again, info2) = hf::load_model(&out).unwrap();
    assert_eq!(model.cfg, again.cfg);
    assert_eq!(info.eos_token_ids, info2.eos_token_ids);
    assert_same_params(&model, &again);
    // saving over an existing directory replaces it
    hf::save_model(&again, &info2, &out, None).unwrap();
    assert!(!out.join("tokenizer.json").exists());
    std::fs::remove_dir_all(out.parent().unwrap()).ok();
}

#[test]
fn peft_save_then_load_round_trips() {
    let (mut model, _) = hf::load_model(&model_dir()).unwrap();
    hf::load_adapter(&mut model, &adapter_dir()).unwrap();
    let out = temp("peft").join("adapter");
    hf::save_adapter(&model, &out, Some("tests/fixtures/hf_llama")).unwrap();
    let (mut again, _) = hf::load_model(&model_dir()).unwrap();
    let pc = hf::load_adapter(&mut again, &out).unwrap();
    assert!(pc.use_rslora);
    assert_same_params(&model, &again);
    assert_eq!(rel_diff(&logits(&again), &logits(&model)), 0.0);
    std::fs::remove_dir_all(out.parent().unwrap()).ok();
}

#[test]
fn sharded_model_loads_like_the_single_file() {
    let dir = temp("shards");
    std::fs::copy(model_dir().join("config.json"), dir.join("config.json")).unwrap();
    let tensors = safetensors::load(&model_dir().join("model.safetensors")).unwrap();
    let (mut first, mut second, mut map) = (Vec::new(), Vec::new(), serde_json::Map::new());
    for (i, (name, t)) in tensors.into_iter().enumerate() {
        let file = if i % 2 == 0 { "model-00001-of-00002.safetensors" } else { "model-00002-of-00002.safetensors" };
        map.insert(name.clone(), json!(file));
        if i % 2 == 0 { first.push((name, t)) } else { second.push((name, t)) }
    }
    std::fs::write(dir.join("model-00001-of-00002.safetensors"), safetensors_bytes(&first, &BTreeMap::new()).unwrap()).unwrap();
    std::fs::write(dir.join("model-00002-of-00002.safetensors"), safetensors_bytes(&second, &BTreeMap::new()).unwrap()).unwrap();
    std::fs::write(dir.join("model.safetensors.index.json"), json!({"metadata": {}, "weight_map": map}).to_string()).unwrap();
    let (sharded, _) = hf::load_model(&dir).unwrap();
    let (single, _) = hf::load_model(&model_dir()).unwrap();
    assert_same_params(&single, &sharded);
    std::fs::remove_dir_all(&dir).ok();
}

/// A copy of the fixture model directory whose model.safetensors is `bytes`.
fn with_weights(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = temp(name);
    std::fs::copy(model_dir().join("config.json"), dir.join("config.json")).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    dir
}

fn load_err(name: &str, bytes: &[u8]) -> String {
    let dir = with_weights(name, bytes);
    let e = hf::load_model(&dir).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).ok();
    e
}

/// The fixture's tensors, edited, as safetensors bytes.
fn edited(edit: &dyn Fn(&mut BTreeMap<String, Tensor>)) -> Vec<u8> {
    let mut t = safetensors::load(&model_dir().join("model.safetensors")).unwrap();
    edit(&mut t);
    safetensors_bytes(&t.into_iter().collect::<Vec<_>>(), &BTreeMap::new()).unwrap()
}

/// A safetensors file written by hand: 8-byte header length, the header, the data.
fn raw_file(header: Value, data: &[u8]) -> Vec<u8> {
    let h = header.to_string().into_bytes();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend_from_slice(data);
    out
}

#[test]
fn bad_weight_files_give_clear_errors() {
    let e = load_err("missing", &edited(&|t| {
        t.remove("model.layers.1.mlp.up_proj.weight");
    }));
    assert!(e.contains("missing `model.layers.1.mlp.up_proj.weight`") && e.contains("unexpected none") && e.contains("model.safetensors"), "{e}");

    let e = load_err("unexpected", &edited(&|t| {
        t.insert("model.layers.9.self_attn.q_proj.weight".into(), Tensor::from_vec(vec![0.0; 4], [2, 2]).unwrap());
    }));
    assert!(e.contains("unexpected `model.layers.9.self_attn.q_proj.weight`") && e.contains("missing none"), "{e}");

    let e = load_err("shape", &edited(&|t| {
        t.insert("model.layers.0.self_attn.k_proj.weight".into(), Tensor::from_vec(vec![0.0; 64 * 64], [64, 64]).unwrap());
    }));
    assert!(e.contains("model.layers.0.self_attn.k_proj.weight") && e.contains("shape [64, 64]") && e.contains("[32, 64]"), "{e}");

    let e = load_err("dtype", &edited(&|t| {
        t.insert("model.norm.weight".into(), Tensor::from_vec_u32(vec![1; 64], [64]).unwrap());
    }));
    assert!(e.contains("model.norm.weight") && e.contains("dtype U32"), "{e}");

    let good = std::fs::read(model_dir().join("model.safetensors")).unwrap();
    let e = load_err("truncated", &good[..good.len() - 1000]);
    assert!(e.contains("model.safetensors") && e.contains("truncated"), "{e}");
    let e = load_err("short", &good[..5]);
    assert!(e.contains("truncated"), "{e}");

    let mut huge = (200_000_000u64).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let e = load_err("header", &huge);
    assert!(e.contains("header") && e.contains("100 MB"), "{e}");
    let mut past_end = 5000u64.to_le_bytes().to_vec();
    past_end.extend_from_slice(b"{}");
    let e = load_err("past-end", &past_end);
    assert!(e.contains("past the end"), "{e}");

    let overlap = json!({
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
    });
    let e = load_err("overlap", &raw_file(overlap, &[0u8; 24]));
    assert!(e.contains("overlap") && e.contains("tensor `b`"), "{e}");

    let e = hf::load_model(&temp("empty")).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn bad_adapters_give_clear_errors() {
    let dir = temp("bad-adapter");
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(adapter_dir().join("adapter_config.json")).unwrap()).unwrap();
    let weights = safetensors::load(&adapter_dir().join("adapter_model.safetensors")).unwrap();
    let try_load = |c: &Value, w: &BTreeMap<String, Tensor>| -> String {
        std::fs::write(dir.join("adapter_config.json"), c.to_string()).unwrap();
        std::fs::write(dir.join("adapter_model.safetensors"), safetensors_bytes(&w.clone().into_iter().collect::<Vec<_>>(), &BTreeMap::new()).unwrap()).unwrap();
        let (mut model, _) = hf::load_model(&model_dir()).unwrap();
        hf::load_adapter(&mut model, &dir).unwrap_err().to_string()
    };
    // fewer targets than the file holds: the rest are unexpected
    let mut c = cfg.clone();
    c["target_modules"] = json!(["q_proj"]);
    let e = try_load(&c, &weights);
    assert!(e.contains("missing none; unexpected `base_model.model.model.layers.0.mlp.down_proj.lora_A.weight`") && e.contains("and 16 more"), "{e}");
    // a regex naming the same modules loads; one naming none is refused
    c["target_modules"] = json!(r"model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj");
    std::fs::write(dir.join("adapter_config.json"), c.to_string()).unwrap();
    std::fs::copy(adapter_dir().join("adapter_model.safetensors"), dir.join("adapter_model.safetensors")).unwrap();
    let (mut model, _) = hf::load_model(&model_dir()).unwrap();
    hf::load_adapter(&mut model, &dir).unwrap();
    assert!(rel_diff(&logits(&model), &reference()["logits_adapter"]) <= 1e-4);
    // a wrong rank names the tensor
    let mut c = cfg.clone();
    c["r"] = json!(3);
    let e = try_load(&c, &weights);
    assert!(e.contains("lora_A.weight") && e.contains("shape"), "{e}");
    // a missing factor is listed
    let mut w = weights.clone();
    w.remove("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight");
    let e = try_load(&cfg, &w);
    assert!(e.contains("missing `base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight`"), "{e}");
    // unsupported variants are refused by name
    let mut c = cfg.clone();
    c["use_dora"] = json!(true);
    assert!(try_load(&c, &weights).contains("use_dora"));
    c = cfg.clone();
    c["peft_type"] = json!("IA3");
    assert!(try_load(&c, &weights).contains("IA3"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn layers_to_transform_and_exclude_follow_peft() {
    let pc = |extra: Value| {
        let mut c = json!({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        hf::PeftConfig::parse(&c.to_string(), Path::new("adapter_config.json")).unwrap()
    };
    let p = pc(json!({"layers_to_transform": [1], "alpha_pattern": {"v_proj": 4}, "rank_pattern": {"layers.1.self_attn.q_proj": 2}}));
    assert_eq!(p.module(0, "model.layers.0.self_attn.q_proj").unwrap(), None);
    assert_eq!(p.module(1, "model.layers.1.self_attn.q_proj").unwrap(), Some((2, 16.0)));
    assert_eq!(p.module(1, "model.layers.1.self_attn.v_proj").unwrap(), Some((8, 4.0)));
    assert_eq!(p.module(1, "model.layers.1.self_attn.k_proj").unwrap(), None);
    assert!((p.scale(8, 16.0) - 2.0).abs() < 1e-12);
    let p = pc(json!({"exclude_modules": ["v_proj"], "use_rslora": true}));
    assert_eq!(p.module(0, "model.layers.0.self_attn.v_proj").unwrap(), None);
    assert!((p.scale(4, 8.0) - 4.0).abs() < 1e-12);
}

fn kiln(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).output().expect("run kiln");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn cli_fine_tunes_generates_and_exports_a_real_model_directory() {
    let dir = temp("cli");
    let (m, a) = (model_dir(), adapter_dir());
    let (m, a) = (m.to_str().unwrap(), a.to_str().unwrap());
    // generate with the base model and with the adapter: greedy, stops at EOS or the budget
    let (ok, out, err) = kiln(&["generate", "--model", m, "--prompt", "The kiln", "--max-new-tokens", "4", "--json"]);
    assert!(ok, "{err}");
    let base: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(base["prompt_ids"][0], 0, "BOS first: {base}");
    let (ok, out, err) = kiln(&["generate", "--model", m, "--adapter", a, "--prompt", "The kiln", "--max-new-tokens", "4", "--json"]);
    assert!(ok, "{err}");
    assert!(serde_json::from_str::<Value>(out.trim()).unwrap()["completion"].is_string());
    // a few LoRA steps from the HF weights; the adapter comes out in PEFT's format
    let cfg = dir.join("run.json");
    std::fs::write(&cfg, r#"{"data": {"kind": "text", "path": null, "tokenizer": "byte", "seq_len": 16}, "train": {"steps": 3, "batch_size": 2, "lr": 1e-2, "log_every": 1, "progress": false}}"#).unwrap();
    let run = dir.join("run");
    let (ok, out, err) = kiln(&["train", "--config", cfg.to_str().unwrap(), "--model", m, "--lora", "q,v", "--lora-rank", "2", "--rslora", "--out", run.to_str().unwrap()]);
    assert!(ok && out.contains("adapter:"), "{out}\n{err}");
    let mut model = hf::load_model(&model_dir()).unwrap().0;
    let pc = hf::load_adapter(&mut model, &run.join("adapter")).unwrap();
    assert_eq!((pc.r, pc.use_rslora, pc.targets.clone()), (2, true, hf::peft::Targets::List(vec!["q_proj".into(), "v_proj".into()])));
    // the checkpoint as an HF directory: base weights unchanged, adapter alongside
    let export = dir.join("export");
    let (ok, out, err) = kiln(&["hf-export", "--checkpoint", run.to_str().unwrap(), "--out", export.to_str().unwrap(), "--tokenizer", m]);
    assert!(ok, "{out}\n{err}");
    let (exported, info) = hf::load_model(&export).unwrap();
    assert_eq!(info.eos_token_ids, vec![1, 2]);
    assert_same_params(&hf::load_model(&model_dir()).unwrap().0, &exported);
    let (ok, out, _) = kiln(&["hf-info", "--model", export.to_str().unwrap(), "--adapter", export.join("adapter").to_str().unwrap()]);
    assert!(ok && out.contains("model_type llama") && out.contains("rslora true"), "{out}");
    // errors: one line, non-zero exit, naming the thing
    let (ok, _, err) = kiln(&["hf-info", "--model", dir.to_str().unwrap()]);
    assert!(!ok && err.starts_with("error:") && err.contains("config.json") && err.trim().lines().count() == 1, "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
