//! `Transformer`: token (+ learned position) embeddings, N pre-norm blocks
//! (x += attn(norm(x)); x += mlp(norm(x))), a final norm and the LM head (tied to the token
//! embedding or separate). Llama-style: RMSNorm, RoPE, SwiGLU, GQA (Touvron et al. 2023).
//! GPT-2-style: LayerNorm, learned positions, GELU MLP, biases (Radford et al. 2019).
//! Parameter names follow HF's Llama / GPT-2 modules exactly (see `named_params`).

use super::{Arch, Config};
use crate::nn::{Attention, Init, KvCache, Linear, Mlp, NamedParams, Norm, Qkv};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Block {
    pub attn_norm: Norm,
    pub attn: Attention,
    pub mlp_norm: Norm,
    pub mlp: Mlp,
}

#[derive(Clone, Debug)]
pub struct Transformer {
    pub cfg: Config,
    /// (V, C)
    pub wte: Tensor,
    /// (max_seq_len, C), GPT-2 only
    pub wpe: Option<Tensor>,
    pub blocks: Vec<Block>,
    pub norm_f: Norm,
    /// (C, V); None when tied to wte
    pub lm_head: Option<Tensor>,
}

impl Transformer {
    /// A freshly initialised model: N(0, 0.02) weights, residual projections scaled by
    /// 1/sqrt(2 n_layers) (GPT-2), norms at identity, biases at zero. Deterministic in cfg.seed.
    pub fn new(cfg: Config) -> Result<Transformer> {
        Self::build(cfg.clone(), Init::new(cfg.seed))
    }

    /// The model's structure with every weight zero and not yet touched (the zero pages are not
    /// even mapped in): a target for loaded weights that costs no init time and no memory of
    /// its own (each `assign` swaps a loaded buffer in). Norm weights start at one, LoRA too is
    /// placeholder-initialised.
    pub fn skeleton(cfg: Config) -> Result<Transformer> {
        Self::build(cfg, Init::placeholder())
    }

    fn build(cfg: Config, mut init: Init) -> Result<Transformer> {
        cfg.validate()?;
        let (c, v, l) = (cfg.d_model, cfg.vocab_size, cfg.n_layers);
        let (hq, hkv, d, f) = (cfg.n_heads, cfg.kv_heads(), cfg.head_dim(), cfg.ff());
        let (std, res_std) = (0.02, 0.02 / ((2 * l) as f32).sqrt());
        let gpt2 = cfg.arch == Arch::Gpt2;
        let norm = |c| if gpt2 { Norm::layer(c, cfg.norm_eps) } else { Norm::rms(c, cfg.norm_eps) };
        let wte = init.normal(&[v, c], std)?;
        let wpe = if gpt2 { Some(init.normal(&[cfg.max_seq_len, c], 0.01)?) } else { None };
        let rope = (!gpt2).then(|| Arc::new(cfg.rope_inv_freq()));
        let mut blocks = Vec::with_capacity(l);
        for _ in 0..l {
            let qkv = if gpt2 {
                Qkv::Fused { c_attn: Linear::new(&mut init, c, (hq + 2 * hkv) * d, true, std)? }
            } else {
                Qkv::Separate {
                    q: Linear::new(&mut init, c, hq * d, cfg.qkv_bias, std)?,
                    k: Linear::new(&mut init, c, hkv * d, cfg.qkv_bias, std)?,
                    v: Linear::new(&mut init, c, hkv * d, cfg.qkv_bias, std)?,
                }
            };
            let out = Linear::new(&mut init, hq * d, c, gpt2, res_std)?;
            let attn = Attention { qkv, out, n_heads: hq, n_kv_heads: hkv, head_dim: d, kind: cfg.attention, rope: rope.clone() };
            let mlp = if gpt2 {
                Mlp::Gelu { c_fc: Linear::new(&mut init, c, f, true, std)?, c_proj: Linear::new(&mut init, f, c, true, res_std)? }
            } else {
                Mlp::SwiGlu {
                    gate: Linear::new(&mut init, c, f, false, std)?,
                    up: Linear::new(&mut init, c, f, false, std)?,
                    down: Linear::new(&mut init, f, c, false, res_std)?,
                }
            };
            blocks.push(Block { attn_norm: norm(c)?, attn, mlp_norm: norm(c)?, mlp });
        }
        let lm_head = if cfg.tie_embeddings { None } else { Some(init.normal(&[c, v], std)?) };
        let mut model = Transformer { norm_f: norm(c)?, cfg, wte, wpe, blocks, lm_head };
        for (_, p) in model.named_params() {
            p.set_requires_grad(true);
        }
        if let Some(lora) = model.cfg.lora.clone() {
            model.add_lora(&lora, &mut init)?;
        }
        Ok(model)
    }

    /// ids: U32 (B, T) -> logits (B, T, V). `caches` (one per layer) make this a decoding step:
    /// ids are the new tokens at absolute positions pos0.., and the caches are extended.
    pub fn forward(&self, ids: &Tensor, pos0: usize, caches: Option<&mut [KvCache]>) -> Result<Tensor> {
        Ok(self.forward_hidden(ids, pos0, caches, false)?.0)
    }

    /// Like `forward`, also returning every block's output (B, T, C) when `hidden` is set.
    pub fn forward_hidden(&self, ids: &Tensor, pos0: usize, mut caches: Option<&mut [KvCache]>, hidden: bool) -> Result<(Tensor, Vec<Tensor>)> {
        let &[_, t] = ids.dims() else { return Err(Error::bad_shape("transformer", ids.shape(), "ids must be (B, T)")) };
        if pos0 + t > self.cfg.max_seq_len {
            return Err(Error::range("transformer", format!("positions {pos0}..{} exceed max_seq_len {}", pos0 + t, self.cfg.max_seq_len)));
        }
        if let Some(c) = &caches {
            if c.len() != self.blocks.len() {
                return Err(Error::Msg(format!("transformer: {} caches for {} layers", c.len(), self.blocks.len())));
            }
        }
        let positions = Tensor::from_vec_u32((pos0 as u32..(pos0 + t) as u32).collect(), [t])?.to_device(self.wte.device())?;
        let mut x = Tensor::embedding(&self.wte, ids)?;
        if let Some(wpe) = &self.wpe {
            x = x.add(&Tensor::embedding(wpe, &positions)?)?;
        }
        let mut states = Vec::new();
        for (i, blk) in self.blocks.iter().enumerate() {
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            x = x.add(&blk.attn.forward(&blk.attn_norm.forward(&x)?, &positions, cache)?)?;
            x = x.add(&blk.mlp.forward(&blk.mlp_norm.forward(&x)?)?)?;
            if hidden {
                states.push(x.clone());
            }
        }
        let h = self.norm_f.forward(&x)?;
        let logits = match &self.lm_head {
            Some(w) => h.matmul(w)?,
            None => h.matmul_t(&self.wte, false, true)?,
        };
        Ok((logits, states))
    }

    /// Mean next-token cross-entropy of ids (B, T) against targets (B, T); `ignore` masks positions.
    /// A bf16 model's logits (B, T, V) are cast to f32 first: the loss is an f32 mean, not one
    /// rounded to bf16, and its gradient flows back through the cast as bf16.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor, ignore: u32) -> Result<Tensor> {
        let logits = self.forward(ids, 0, None)?;
        let logits = if logits.dtype() == DType::BF16 { logits.to_dtype(DType::F32)? } else { logits };
        Tensor::cross_entropy(&logits, targets, ignore)
    }

    /// A model with the same config and its own parameter handles, on the same device and with
    /// the same requires_grad flags. `clone` shares the handles, so fine-tuning a clone changes
    /// the original; here each handle starts on the original's buffer (buffers are never written
    /// through, an update `assign`s a new one) and the two part at the first update. Adapters
    /// (cfg.lora) are copied too; parameters that do not line up with a fresh model of the same
    /// config are an error.
    pub fn deep_clone(&self) -> Result<Transformer> {
        let copy = Transformer::skeleton(self.cfg.clone())?;
        copy.to_device(self.device())?;
        let (n_copy, n_self) = (copy.named_params().len(), self.named_params().len());
        if n_copy != n_self {
            return Err(Error::Msg(format!("transformer deep_clone: {n_self} parameters where a fresh model of its config has {n_copy}")));
        }
        for ((nd, d), (ns, s)) in copy.named_params().iter().zip(self.named_params()) {
            if *nd != ns {
                return Err(Error::Msg(format!("transformer deep_clone: parameter {ns} has no twin in a fresh model of its config ({nd})")));
            }
            d.assign(&s.detach())?;
            d.set_requires_grad(s.requires_grad());
        }
        Ok(copy)
    }

    /// Move every parameter to `device` in place (names and identities are kept).
    pub fn to_device(&self, device: crate::tensor::Device) -> Result<()> {
        for (_, p) in self.named_params() {
            p.move_to(device)?;
        }
        Ok(())
    }

    pub fn device(&self) -> crate::tensor::Device {
        self.wte.device()
    }

    /// Every parameter with its HF name, in a fixed order.
    pub fn named_params(&self) -> NamedParams {
        let mut out = Vec::new();
        let gpt2 = self.cfg.arch == Arch::Gpt2;
        let (root, layers) = if gpt2 { ("transformer", "transformer.h") } else { ("model", "model.layers") };
        out.push((if gpt2 { "transformer.wte.weight".into() } else { "model.embed_tokens.weight".into() }, self.wte.clone()));
        if let Some(wpe) = &self.wpe {
            out.push(("transformer.wpe.weight".into(), wpe.clone()));
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("{layers}.{i}");
            let (n1, att, n2) = if gpt2 { ("ln_1", "attn", "ln_2") } else { ("input_layernorm", "self_attn", "post_attention_layernorm") };
            b.attn_norm.visit(&format!("{p}.{n1}"), &mut out);
            b.attn.visit(&format!("{p}.{att}"), &mut out);
            b.mlp_norm.visit(&format!("{p}.{n2}"), &mut out);
            b.mlp.visit(&format!("{p}.mlp"), &mut out);
        }
        self.norm_f.visit(&format!("{root}.{}", if gpt2 { "ln_f" } else { "norm" }), &mut out);
        if let Some(h) = &self.lm_head {
            out.push(("lm_head.weight".into(), h.clone()));
        }
        out
    }

    /// The parameters that currently receive gradients.
    pub fn trainable_params(&self) -> NamedParams {
        self.named_params().into_iter().filter(|(_, t)| t.requires_grad()).collect()
    }

    /// Train exactly the parameters whose names match one of `patterns` (glob, `*` = any run of
    /// characters); freeze the rest. Errors if a pattern matches nothing (a likely typo).
    pub fn train_only(&self, patterns: &[&str]) -> Result<()> {
        let params = self.named_params();
        for pat in patterns {
            if !params.iter().any(|(n, _)| glob_match(pat, n)) {
                return Err(Error::Msg(format!("train_only: pattern `{pat}` matches no parameter")));
            }
        }
        for (n, t) in &params {
            t.set_requires_grad(patterns.iter().any(|p| glob_match(p, n)));
        }
        Ok(())
    }

    /// Attach LoRA adapters to the targeted linear modules and freeze every base weight.
    pub fn add_lora(&mut self, lora: &crate::nn::LoraConfig, init: &mut Init) -> Result<()> {
        let mut hit = 0;
        for (_, p) in self.named_params() {
            p.set_requires_grad(false);
        }
        for blk in &mut self.blocks {
            for (name, lin) in blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()) {
                if lora.targets.iter().any(|t| t == name) {
                    lin.add_lora(init, lora)?;
                    hit += 1;
                }
            }
        }
        if hit == 0 {
            return Err(Error::Msg(format!("lora.targets {:?} name no linear module of this {:?} model", lora.targets, self.cfg.arch)));
        }
        self.cfg.lora = Some(lora.clone());
        Ok(())
    }

    pub fn param_count(&self) -> usize {
        self.named_params().iter().map(|(_, t)| t.elem_count()).sum()
    }

    /// A copy of the model with every parameter converted to `dtype` (F64 for gradchecks).
    pub fn to_dtype(&self, dtype: DType) -> Result<Transformer> {
        let mut m = self.clone();
        let map: std::collections::HashMap<usize, Tensor> = self
            .named_params()
            .into_iter()
            .map(|(_, t)| Ok((t.id(), t.to_dtype(dtype)?.detach())))
            .collect::<Result<_>>()?;
        m.visit_mut(&mut |t: &mut Tensor| {
            let rg = t.requires_grad();
            *t = map[&t.id()].clone();
            t.set_requires_grad(rg);
        });
        Ok(m)
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Tensor)) {
        f(&mut self.wte);
        self.wpe.iter_mut().for_each(&mut *f);
        self.lm_head.iter_mut().for_each(&mut *f);
        let norm = |n: &mut Norm, f: &mut dyn FnMut(&mut Tensor)| match n {
            Norm::Rms { weight, .. } => f(weight),
            Norm::Layer { weight, bias, .. } => {
                f(weight);
                f(bias)
            }
        };
        let lin = |l: &mut Linear, f: &mut dyn FnMut(&mut Tensor)| {
            f(&mut l.weight);
            l.bias.iter_mut().for_each(&mut *f);
            if let Some(a) = &mut l.lora {
                f(&mut a.a);
                f(&mut a.b);
            }
        };
        norm(&mut self.norm_f, f);
        for b in &mut self.blocks {
            norm(&mut b.attn_norm, f);
            norm(&mut b.mlp_norm, f);
            for (_, l) in b.attn.linears_mut().into_iter().chain(b.mlp.linears_mut()) {
                lin(l, f);
            }
        }
    }
}

/// Glob match with `*` as the only wildcard.
pub fn glob_match(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob_match(rest, &tail[i..]))
        }
    }
}
