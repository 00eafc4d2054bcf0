//! PEFT LoRA adapters, both ways: `adapter_config.json` + `adapter_model.safetensors` with keys
//! `base_model.model.<module>.lora_A.weight` (R, in) and `lora_B.weight` (out, R), where
//! `<module>` is e.g. `model.layers.3.self_attn.q_proj`. kiln keeps A (in, R) and B (R, out).
//!
//! Which modules get an adapter follows PEFT's rules: `target_modules` as a list matches a module
//! whose name equals an entry or ends with "." + entry; as a string it is a regex that must match
//! the whole name ("all-linear": every projection); `exclude_modules` the same way;
//! `layers_to_transform` keeps only those layer indices. Per-module rank and alpha come from the
//! first `rank_pattern` / `alpha_pattern` key k whose regex `(.*\.)?(k)` matches the whole name.
//! Scale s = alpha / r, or alpha / sqrt(r) with `use_rslora` (Kalajdzievski 2023).

use super::load::{list_names, MappedFile};
use crate::io::checkpoint::{commit_dir, safetensors_bytes};
use crate::model::{Arch, Transformer};
use crate::nn::{Linear, LoraAdapter, LoraConfig, Mlp, Qkv};
use crate::{no_grad, Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use tokenizers::utils::SysRegex;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// `target_modules` / `exclude_modules`.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    List(Vec<String>),
    /// a regex matched against the whole module name
    Regex(String),
}

/// The parts of adapter_config.json kiln acts on.
#[derive(Clone, Debug, PartialEq)]
pub struct PeftConfig {
    pub r: usize,
    pub lora_alpha: f64,
    pub use_rslora: bool,
    pub targets: Targets,
    pub exclude: Option<Targets>,
    pub rank_pattern: Vec<(String, usize)>,
    pub alpha_pattern: Vec<(String, f64)>,
    pub layers_to_transform: Option<Vec<usize>>,
    pub base_model_name_or_path: Option<String>,
}

/// Does `re` match the whole of `s`?
fn full_match(re: &str, s: &str, what: &str) -> Result<bool> {
    let r = SysRegex::new(&format!("^(?:{re})$")).map_err(|e| Error::Msg(format!("{what}: `{re}` is not a valid regex: {e}")))?;
    Ok(r.find_iter(s).next().is_some())
}

impl Targets {
    pub fn matches(&self, module: &str, what: &str) -> Result<bool> {
        match self {
            Targets::List(l) => Ok(l.iter().any(|t| module == t || module.ends_with(&format!(".{t}")))),
            Targets::Regex(r) if r == "all-linear" => Ok(module.contains(".self_attn.") || module.contains(".mlp.")),
            Targets::Regex(r) => full_match(r, module, what),
        }
    }
    fn parse(v: &Value, field: &str) -> Result<Targets> {
        match v {
            Value::String(s) => Ok(Targets::Regex(s.clone())),
            Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().map(Targets::List).ok_or_else(|| Error::Msg(format!("field `{field}`: expected strings"))),
            other => Err(Error::Msg(format!("field `{field}`: expected a list of names or a regex string, found {other}"))),
        }
    }
}

/// kiln's short linear names -> PEFT module suffixes (Llama family).
fn hf_module(short: &str) -> &'static str {
    match short {
        "q" => "self_attn.q_proj",
        "k" => "self_attn.k_proj",
        "v" => "self_attn.v_proj",
        "o" => "self_attn.o_proj",
        "gate" => "mlp.gate_proj",
        "up" => "mlp.up_proj",
        _ => "mlp.down_proj",
    }
}

/// The projections of a Llama block by short name.
fn linears(blk: &crate::model::Block) -> Vec<(&'static str, &Linear)> {
    let mut out = Vec::new();
    if let Qkv::Separate { q, k, v } = &blk.attn.qkv {
        out.extend([("q", q), ("k", k), ("v", v)]);
    }
    out.push(("o", &blk.attn.out));
    if let Mlp::SwiGlu { gate, up, down } = &blk.mlp {
        out.extend([("gate", gate), ("up", up), ("down", down)]);
    }
    out
}

impl PeftConfig {
    pub fn parse(text: &str, origin: &Path) -> Result<PeftConfig> {
        let err = |detail: String| Error::File { path: origin.display().to_string(), detail };
        let v: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let field = |k: &str| v.get(k).filter(|x| !x.is_null());
        match field("peft_type").and_then(Value::as_str) {
            Some("LORA") => {}
            other => return Err(err(format!("field `peft_type`: {other:?} is not supported (kiln reads LORA adapters)"))),
        }
        let refuse = |k: &str, ok: &dyn Fn(&Value) -> bool| match field(k) {
            Some(x) if !ok(x) => Err(err(format!("field `{k}`: {x} is not supported by kiln"))),
            _ => Ok(()),
        };
        refuse("use_dora", &|x| x == &json!(false))?;
        refuse("fan_in_fan_out", &|x| x == &json!(false))?;
        refuse("lora_bias", &|x| x == &json!(false))?;
        refuse("bias", &|x| x == &json!("none"))?;
        refuse("modules_to_save", &|x| x.as_array().is_some_and(|a| a.is_empty()))?;
        refuse("target_parameters", &|x| x.as_array().is_some_and(|a| a.is_empty()))?;
        refuse("layer_replication", &|_| false)?;
        let r = field("r").and_then(Value::as_u64).filter(|&r| r > 0).ok_or_else(|| err("field `r`: expected a positive integer".into()))? as usize;
        let lora_alpha = field("lora_alpha").and_then(Value::as_f64).ok_or_else(|| err("field `lora_alpha`: expected a number".into()))?;
        let targets = Targets::parse(field("target_modules").ok_or_else(|| err("field `target_modules` is missing".into()))?, "target_modules").map_err(|e| err(e.to_string()))?;
        let exclude = field("exclude_modules").map(|x| Targets::parse(x, "exclude_modules")).transpose().map_err(|e| err(e.to_string()))?;
        let pattern = |k: &str| -> Result<Vec<(String, f64)>> {
            match field(k) {
                None => Ok(vec![]),
                Some(Value::Object(m)) => m.iter().map(|(key, x)| x.as_f64().map(|x| (key.clone(), x)).ok_or_else(|| err(format!("field `{k}.{key}`: expected a number")))).collect(),
                Some(other) => Err(err(format!("field `{k}`: expected an object, found {other}"))),
            }
        };
        let rank_pattern = pattern("rank_pattern")?.into_iter().map(|(k, x)| (k, x as usize)).collect::<Vec<_>>();
        if let Some((k, _)) = rank_pattern.iter().find(|(_, r)| *r == 0) {
            return Err(err(format!("field `rank_pattern.{k}`: rank must be at least 1")));
        }
        let layers_to_transform = match field("layers_to_transform") {
            None => None,
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(x) => Some(super::config::token_ids(Some(x)).into_iter().map(|i| i as usize).collect()),
        };
        Ok(PeftConfig {
            r,
            lora_alpha,
            use_rslora: field("use_rslora").and_then(Value::as_bool).unwrap_or(false),
            targets,
            exclude,
            rank_pattern,
            alpha_pattern: pattern("alpha_pattern")?,
            layers_to_transform,
            base_model_name_or_path: field("base_model_name_or_path").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// (rank, alpha) of `module` when the adapter targets it, None otherwise.
    pub fn module(&self, layer: usize, module: &str) -> Result<Option<(usize, f64)>> {
        if !self.targets.matches(module, "target_modules")? {
            return Ok(None);
        }
        if let Some(ex) = &self.exclude {
            if ex.matches(module, "exclude_modules")? {
                return Ok(None);
            }
        }
        if self.layers_to_transform.as_ref().is_some_and(|l| !l.contains(&layer)) {
            return Ok(None);
        }
        let key_matches = |k: &str| full_match(&format!("(?:.*\\.)?(?:{k})"), module, "rank_pattern/alpha_pattern");
        let mut r = self.r;
        for (k, v) in &self.rank_pattern {
            if key_matches(k)? {
                r = *v;
                break;
            }
        }
        let mut alpha = self.lora_alpha;
        for (k, v) in &self.alpha_pattern {
            if key_matches(k)? {
                alpha = *v;
                break;
            }
        }
        Ok(Some((r, alpha)))
    }

    pub fn scale(&self, r: usize, alpha: f64) -> f64 {
        if self.use_rslora { alpha / (r as f64).sqrt() } else { alpha / r as f64 }
    }
}

/// Read `dir/adapter_config.json`.
pub fn read_adapter_config(dir: &Path) -> Result<PeftConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::File { path: path.display().to_string(), detail: format!("cannot read: {e}") })?;
    PeftConfig::parse(&text, &path)
}

/// Attach the PEFT adapter in `dir` to `model` (replacing any adapters it had). Nothing changes
/// unless every expected tensor is present with the right shape and no tensor is left over.
pub fn load_adapter(model: &mut Transformer, dir: &Path) -> Result<PeftConfig> {
    if model.cfg.arch != Arch::Llama {
        return Err(Error::Msg("PEFT adapters: kiln reads them for Llama-family models only".into()));
    }
    let pc = read_adapter_config(dir)?;
    let origin = dir.join(CONFIG_FILE).display().to_string();
    let file = MappedFile::open(&dir.join(WEIGHTS_FILE))?;
    let mut adapters: Vec<(usize, &'static str, Option<LoraAdapter>)> = Vec::new();
    let (mut used, mut missing, mut shorts) = (Vec::new(), Vec::new(), Vec::<String>::new());
    let names = file.names();
    for (i, blk) in model.blocks.iter().enumerate() {
        for (short, lin) in linears(blk) {
            let module = format!("model.layers.{i}.{}", hf_module(short));
            let Some((r, alpha)) = pc.module(i, &module).map_err(|e| Error::File { path: origin.clone(), detail: e.to_string() })? else {
                adapters.push((i, short, None));
                continue;
            };
            let (ka, kb) = (format!("base_model.model.{module}.lora_A.weight"), format!("base_model.model.{module}.lora_B.weight"));
            if !names.contains(&ka) || !names.contains(&kb) {
                missing.extend([ka, kb].into_iter().filter(|k| !names.contains(k)));
                continue;
            }
            // file A (R, in) -> kiln (in, R); file B (out, R) -> kiln (R, out)
            let a = file.read_f32(&ka, &[lin.d_in(), r], true)?;
            let b = file.read_f32(&kb, &[r, lin.d_out()], true)?;
            adapters.push((i, short, Some(LoraAdapter { a, b, scale: pc.scale(r, alpha) })));
            used.extend([ka, kb]);
            if !shorts.iter().any(|s| s == short) {
                shorts.push(short.to_string());
            }
        }
    }
    let unexpected: Vec<&str> = names.iter().map(String::as_str).filter(|n| !used.iter().any(|u| u == n)).collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        return Err(Error::File { path: file.path.display().to_string(), detail: format!("adapter tensor names differ from what {CONFIG_FILE} targets: missing {}; unexpected {}", list_names(&missing), list_names(&unexpected)) });
    }
    if used.is_empty() {
        return Err(Error::File { path: origin, detail: format!("target_modules {:?} match no projection of this model", pc.targets) });
    }
    for (i, short, adapter) in adapters {
        let blk = &mut model.blocks[i];
        let lin = blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()).find(|(s, _)| *s == short).map(|(_, l)| l).expect("short names come from this block");
        lin.set_lora(adapter)?;
    }
    model.cfg.lora = Some(LoraConfig { rank: pc.r, alpha: pc.lora_alpha, rslora: pc.use_rslora, targets: shorts });
    Ok(pc)
}

/// Write the model's LoRA adapters as a PEFT adapter directory (atomically: temp dir + rename).
/// The config reproduces every module's rank and scale: the model's LoRA config gives r, alpha
/// and rsLoRA; modules that differ get rank_pattern / alpha_pattern entries by full name.
pub fn save_adapter(model: &Transformer, dir: &Path, base_model: Option<&str>) -> Result<()> {
    let _ng = no_grad();
    let mut found: Vec<(usize, &'static str, String, &LoraAdapter)> = Vec::new();
    for (i, blk) in model.blocks.iter().enumerate() {
        for (short, lin) in linears(blk) {
            if let Some(l) = &lin.lora {
                found.push((i, short, format!("model.layers.{i}.{}", hf_module(short)), l));
            }
        }
    }
    let Some(first) = found.first() else { return Err(Error::Msg("save adapter: the model has no LoRA adapter".into())) };
    let (r, alpha, rslora) = match &model.cfg.lora {
        Some(c) => (c.rank, c.alpha, c.rslora),
        None => (first.3.a.dims()[1], first.3.scale * first.3.a.dims()[1] as f64, false),
    };
    let (mut tensors, mut rank_pattern, mut alpha_pattern) = (Vec::new(), Map::new(), Map::new());
    for (_, _, module, l) in &found {
        let rm = l.a.dims()[1];
        let alpha_m = l.scale * if rslora { (rm as f64).sqrt() } else { rm as f64 };
        if rm != r {
            rank_pattern.insert(module.clone(), json!(rm));
        }
        if (alpha_m - alpha).abs() > 1e-9 * alpha.abs().max(1.0) {
            alpha_pattern.insert(module.clone(), json!(alpha_m));
        }
        // kiln A (in, R) -> PEFT (R, in); kiln B (R, out) -> PEFT (out, R)
        tensors.push((format!("base_model.model.{module}.lora_A.weight"), l.a.transpose(0, 1)?.to_dtype(crate::DType::F32)?));
        tensors.push((format!("base_model.model.{module}.lora_B.weight"), l.b.transpose(0, 1)?.to_dtype(crate::DType::F32)?));
    }
    // A plain list of projection names when every layer has the same ones, else the exact names.
    let mut shorts: Vec<&str> = found.iter().map(|f| f.1).collect();
    shorts.sort();
    shorts.dedup();
    let everywhere = shorts.iter().all(|s| (0..model.blocks.len()).all(|i| found.iter().any(|f| f.0 == i && f.1 == *s)));
    let targets = if everywhere {
        json!(shorts.iter().map(|s| hf_module(s).rsplit('.').next().unwrap_or(s)).collect::<Vec<_>>())
    } else {
        json!(found.iter().map(|f| f.2.replace('.', "\\.")).collect::<Vec<_>>().join("|"))
    };
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": r,
        "lora_alpha": alpha,
        "use_rslora": rslora,
        "target_modules": targets,
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_dora": false,
        "modules_to_save": null,
        "init_lora_weights": true,
        "inference_mode": true,
        "layers_to_transform": null,
        "layers_pattern": null,
    });
    let config_bytes = serde_json::to_vec_pretty(&config).map_err(|e| Error::Msg(format!("{CONFIG_FILE}: {e}")))?;
    let weights = safetensors_bytes(&tensors, &BTreeMap::from([("format".to_string(), "pt".to_string())]))?;
    commit_dir(dir, &[(CONFIG_FILE, config_bytes), (WEIGHTS_FILE, weights)])
}
