//! HF `config.json` <-> kiln's model `Config`, for the Llama family: `llama`, `mistral` (GQA,
//! optional sliding window) and `qwen2` (q/k/v biases). Both generations of the format are read:
//! transformers 4.x (`rope_theta` and `rope_scaling` at the top level, `torch_dtype`) and 5.x
//! (`rope_parameters` holding rope_type/rope_theta/factor..., `dtype`). RoPE types: default,
//! linear and llama3 (Llama 3.1-3.3); anything else is refused by name. Writing produces the 5.x
//! form plus a top-level `rope_theta` (so 4.x readers find the base frequency too).

use crate::model::{Arch, Config, RopeScaling};
use crate::{Error, Result};
use serde_json::{json, Map, Value};
use std::path::Path;

/// What config.json says beyond the model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HfInfo {
    pub model_type: String,
    /// `dtype` / `torch_dtype` as written (e.g. "bfloat16"); the weights are read as F32 anyway
    pub dtype: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

pub const SUPPORTED_MODEL_TYPES: [&str; 3] = ["llama", "mistral", "qwen2"];

/// Parse `config.json` text into kiln's Config (seed 0, no LoRA) and the extra info.
/// `origin` (the file's path) is named in every error, with the field at fault.
pub fn parse_config(text: &str, origin: &Path) -> Result<(Config, HfInfo)> {
    let err = |detail: String| Error::File { path: origin.display().to_string(), detail };
    let v: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| err("expected a JSON object".into()))?;
    let f = Fields { obj, err: &err };

    let model_type = f.string("model_type")?.ok_or_else(|| err("field `model_type` is missing".into()))?;
    if !SUPPORTED_MODEL_TYPES.contains(&model_type.as_str()) {
        return Err(err(format!("model_type `{model_type}` is not supported (kiln reads {})", SUPPORTED_MODEL_TYPES.join(", "))));
    }
    if let Some(act) = f.string("hidden_act")? {
        if act != "silu" {
            return Err(err(format!("field `hidden_act`: `{act}` is not supported (SwiGLU needs silu)")));
        }
    }
    for flag in ["attention_bias", "mlp_bias"] {
        if f.bool(flag)? == Some(true) {
            return Err(err(format!("field `{flag}`: true is not supported (kiln's Llama has no such biases)")));
        }
    }
    let d_model = f.req_usize("hidden_size")?;
    let n_heads = f.req_usize("num_attention_heads")?;
    if let Some(hd) = f.usize("head_dim")? {
        if n_heads == 0 || hd * n_heads != d_model {
            return Err(err(format!("field `head_dim`: {hd} != hidden_size / num_attention_heads = {d_model} / {n_heads} (kiln needs them equal)")));
        }
    }
    let mut max_seq_len = f.req_usize("max_position_embeddings")?;
    // Mistral/Qwen2 sliding windows: exact as long as no sequence is longer than the window.
    let window_on = match model_type.as_str() {
        "qwen2" => f.bool("use_sliding_window")?.unwrap_or(false),
        _ => true,
    };
    if let (true, Some(w)) = (window_on, f.usize("sliding_window")?) {
        max_seq_len = max_seq_len.min(w);
    }
    let (rope_theta, rope_scaling) = rope(&f)?;
    let cfg = Config {
        arch: Arch::Llama,
        vocab_size: f.req_usize("vocab_size")?,
        d_model,
        n_layers: f.req_usize("num_hidden_layers")?,
        n_heads,
        n_kv_heads: Some(f.usize("num_key_value_heads")?.unwrap_or(n_heads)),
        d_ff: Some(f.req_usize("intermediate_size")?),
        max_seq_len,
        rope_theta,
        rope_scaling,
        norm_eps: f.req_f64("rms_norm_eps")?,
        qkv_bias: model_type == "qwen2",
        tie_embeddings: f.bool("tie_word_embeddings")?.unwrap_or(false),
        attention: crate::nn::AttnKind::Softmax,
        lora: None,
        seed: 0,
    };
    cfg.validate().map_err(|e| err(e.to_string()))?;
    let dtype = match f.string("dtype")? {
        Some(d) => Some(d),
        None => f.string("torch_dtype")?,
    };
    let info = HfInfo { model_type, dtype, bos_token_id: token_ids(obj.get("bos_token_id")).first().copied(), eos_token_ids: token_ids(obj.get("eos_token_id")) };
    Ok((cfg, info))
}

/// Read `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<(Config, HfInfo)> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::File { path: path.display().to_string(), detail: format!("cannot read: {e}") })?;
    parse_config(&text, &path)
}

/// Token ids from `5`, `[1, 2]` or null.
pub fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64().map(|x| x as u32)).collect(),
        _ => vec![],
    }
}

/// (rope_theta, scaling) from the 5.x `rope_parameters` or the 4.x `rope_theta` + `rope_scaling`.
fn rope(f: &Fields) -> Result<(f64, Option<RopeScaling>)> {
    let (params, theta, where_) = match f.obj.get("rope_parameters") {
        Some(Value::Object(p)) => {
            let sub = Fields { obj: p, err: f.err };
            (Some(p), sub.f64("rope_theta")?.or(f.f64("rope_theta")?), "rope_parameters")
        }
        Some(Value::Null) | None => match f.obj.get("rope_scaling") {
            Some(Value::Object(p)) => (Some(p), f.f64("rope_theta")?, "rope_scaling"),
            Some(Value::Null) | None => (None, f.f64("rope_theta")?, "rope_scaling"),
            Some(other) => return Err((f.err)(format!("field `rope_scaling`: expected an object or null, found {other}"))),
        },
        Some(other) => return Err((f.err)(format!("field `rope_parameters`: expected an object, found {other}"))),
    };
    // HF's own default when a Llama config names no base frequency.
    let theta = theta.unwrap_or(10_000.0);
    let Some(p) = params else { return Ok((theta, None)) };
    let sub = Fields { obj: p, err: f.err };
    let kind = match sub.string("rope_type")? {
        Some(k) => k,
        None => sub.string("type")?.unwrap_or_else(|| "default".into()),
    };
    let num = |k: &str| sub.f64(k)?.ok_or_else(|| (f.err)(format!("field `{where_}.{k}` is missing (rope_type {kind})")));
    let scaling = match kind.as_str() {
        "default" => None,
        "linear" => Some(RopeScaling::Linear { factor: num("factor")? }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")? as usize,
        }),
        other => return Err((f.err)(format!("field `{where_}.rope_type`: `{other}` is not supported (kiln has default, linear, llama3)"))),
    };
    Ok((theta, scaling))
}

/// The config.json of a kiln Llama-style model (5.x form; `rope_theta` also at the top level).
pub fn config_json(cfg: &Config, info: &HfInfo) -> Result<Value> {
    if cfg.arch != Arch::Llama {
        return Err(Error::Msg(format!("HF export: kiln writes Llama-family models only, this one is {:?}", cfg.arch)));
    }
    let mut rope = Map::new();
    rope.insert("rope_theta".into(), json!(cfg.rope_theta));
    match &cfg.rope_scaling {
        None => {
            rope.insert("rope_type".into(), json!("default"));
        }
        Some(RopeScaling::Linear { factor }) => {
            rope.insert("rope_type".into(), json!("linear"));
            rope.insert("factor".into(), json!(factor));
        }
        Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }) => {
            rope.insert("rope_type".into(), json!("llama3"));
            rope.insert("factor".into(), json!(factor));
            rope.insert("low_freq_factor".into(), json!(low_freq_factor));
            rope.insert("high_freq_factor".into(), json!(high_freq_factor));
            rope.insert("original_max_position_embeddings".into(), json!(original_max_position_embeddings));
        }
    }
    let (model_type, class) = if cfg.qkv_bias { ("qwen2", "Qwen2ForCausalLM") } else { ("llama", "LlamaForCausalLM") };
    let eos = match info.eos_token_ids.as_slice() {
        [] => Value::Null,
        [one] => json!(one),
        many => json!(many),
    };
    Ok(json!({
        "architectures": [class],
        "model_type": model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ff(),
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads(),
        "head_dim": cfg.head_dim(),
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": Value::Object(rope),
        "tie_word_embeddings": cfg.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "dtype": "float32",
        "bos_token_id": info.bos_token_id,
        "eos_token_id": eos,
    }))
}

/// Typed access to JSON fields, each error naming the field.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    err: &'a dyn Fn(String) -> Error,
}

impl Fields<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        self.obj.get(k).filter(|v| !v.is_null())
    }
    fn bad(&self, k: &str, want: &str) -> Error {
        (self.err)(format!("field `{k}`: expected {want}, found {}", self.obj[k]))
    }
    fn string(&self, k: &str) -> Result<Option<String>> {
        self.get(k).map(|v| v.as_str().map(str::to_string).ok_or_else(|| self.bad(k, "a string"))).transpose()
    }
    fn bool(&self, k: &str) -> Result<Option<bool>> {
        self.get(k).map(|v| v.as_bool().ok_or_else(|| self.bad(k, "true or false"))).transpose()
    }
    fn usize(&self, k: &str) -> Result<Option<usize>> {
        self.get(k).map(|v| v.as_u64().map(|x| x as usize).ok_or_else(|| self.bad(k, "a non-negative integer"))).transpose()
    }
    fn f64(&self, k: &str) -> Result<Option<f64>> {
        self.get(k).map(|v| v.as_f64().ok_or_else(|| self.bad(k, "a number"))).transpose()
    }
    fn req_usize(&self, k: &str) -> Result<usize> {
        self.usize(k)?.ok_or_else(|| (self.err)(format!("field `{k}` is missing")))
    }
    fn req_f64(&self, k: &str) -> Result<f64> {
        self.f64(k)?.ok_or_else(|| (self.err)(format!("field `{k}` is missing")))
    }
}
