//! The transformer: shapes and HF parameter names for both flavours, gradients against finite
//! differences (f64), KV-cache decoding equal to the full forward, LoRA (fresh adapters change
//! nothing, merge/unmerge, freezing), config errors, and a short training run that learns.
mod common;
use common::*;
use kiln::model::{Arch, Config, Transformer};
use kiln::nn::{AttnKind, KvCache, LoraConfig};
use kiln::optim::AdamW;
use kiln::{backward, no_grad, DType, Tensor};

fn ids(b: usize, t: usize, v: usize, seed: u64) -> Tensor {
    let u = Tensor::uniform([b * t], 0.0, v as f32, seed, 0).unwrap().to_vec_f32().unwrap();
    Tensor::from_vec_u32(u.iter().map(|&x| (x as u32).min(v as u32 - 1)).collect(), [b, t]).unwrap()
}

#[test]
fn shapes_and_hf_names() {
    for arch in [Arch::Llama, Arch::Gpt2] {
        let m = Transformer::new(Config::tiny(arch, 50)).unwrap();
        let logits = m.forward(&ids(2, 7, 50, 1), 0, None).unwrap();
        assert_eq!(logits.dims(), &[2, 7, 50]);
        let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
        let want: &[&str] = match arch {
            Arch::Llama => &["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"],
            Arch::Gpt2 => &["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.bias", "transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.bias"],
        };
        for w in want {
            assert!(names.iter().any(|n| n == w), "{arch:?}: missing {w} in {names:?}");
        }
        assert_eq!(names.iter().any(|n| n == "lm_head.weight"), arch == Arch::Llama, "GPT-2 ties its head");
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (arch, attn) in [(Arch::Llama, AttnKind::Softmax), (Arch::Gpt2, AttnKind::Softmax), (Arch::Llama, AttnKind::Linear)] {
        let mut cfg = Config::tiny(arch, 11);
        cfg.d_model = 16;
        cfg.attention = attn;
        if attn == AttnKind::Linear {
            cfg.n_kv_heads = None;
        }
        let m = Transformer::new(cfg).unwrap().to_dtype(DType::F64).unwrap();
        let (x, y) = (ids(2, 5, 11, 2), ids(2, 5, 11, 3));
        let loss = || m.loss(&x, &y, u32::MAX).unwrap();
        let grads = backward(&loss()).unwrap();
        let _ng = no_grad();
        for (i, (name, p)) in m.named_params().into_iter().enumerate().step_by(3) {
            let g = grads.get(&p).unwrap_or_else(|| panic!("{name} got no gradient"));
            let u = randn64(p.dims(), 100 + i as u64);
            let analytic = g.mul(&u).unwrap().sum_all().unwrap().to_scalar().unwrap();
            let p0 = p.detach();
            let eps = 1e-6;
            p.assign(&p0.add(&u.scale(eps).unwrap()).unwrap()).unwrap();
            let lp = loss().to_scalar().unwrap();
            p.assign(&p0.sub(&u.scale(eps).unwrap()).unwrap()).unwrap();
            let lm = loss().to_scalar().unwrap();
            p.assign(&p0).unwrap();
            let numeric = (lp - lm) / (2.0 * eps);
            assert!((analytic - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs(), "{arch:?}/{attn:?} {name}: {analytic} vs {numeric}");
        }
    }
}

#[test]
fn kv_cache_decoding_equals_full_forward() {
    for (arch, attn) in [(Arch::Llama, AttnKind::Softmax), (Arch::Gpt2, AttnKind::Softmax), (Arch::Llama, AttnKind::Linear)] {
        let mut cfg = Config::tiny(arch, 30);
        cfg.attention = attn;
        if attn == AttnKind::Linear {
            cfg.n_kv_heads = None;
        }
        let m = Transformer::new(cfg).unwrap();
        let x = ids(2, 9, 30, 4);
        let _ng = no_grad();
        let full = m.forward(&x, 0, None).unwrap();
        let mut caches = vec![KvCache::Empty; m.blocks.len()];
        let prompt = m.forward(&x.narrow(1, 0, 6).unwrap(), 0, Some(&mut caches)).unwrap();
        assert_tensors_close(&prompt, &full.narrow(1, 0, 6).unwrap(), 1e-5, 1e-4, "prompt");
        for t in 6..9 {
            let step = m.forward(&x.narrow(1, t, 1).unwrap(), t, Some(&mut caches)).unwrap();
            assert_tensors_close(&step, &full.narrow(1, t, 1).unwrap(), 1e-5, 1e-4, &format!("{arch:?}/{attn:?} step {t}"));
        }
    }
}

#[test]
fn lora_adapters_start_neutral_merge_and_freeze() {
    let base = Transformer::new(Config::tiny(Arch::Llama, 40)).unwrap();
    let mut cfg = Config::tiny(Arch::Llama, 40);
    cfg.lora = Some(LoraConfig { rank: 4, alpha: 8.0, rslora: false, targets: vec!["q".into(), "v".into(), "down".into()] });
    let mut m = Transformer::new(cfg).unwrap();
    let x = ids(1, 8, 40, 5);
    let _ng = no_grad();
    assert_tensors_close(&m.forward(&x, 0, None).unwrap(), &base.forward(&x, 0, None).unwrap(), 0.0, 0.0, "B = 0 adapter is neutral");
    let trainable: Vec<String> = m.trainable_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(trainable.len(), 2 * 3 * 2, "A and B of 3 modules x 2 layers: {trainable:?}");
    assert!(trainable.iter().all(|n| n.contains("lora_")));
    // Give the adapters weight, then merge: same outputs without the adapter path.
    for (_, p) in m.trainable_params() {
        p.assign(&randn(p.dims(), 9).scale(0.1).unwrap()).unwrap();
    }
    let with = m.forward(&x, 0, None).unwrap();
    for blk in &mut m.blocks {
        for (_, l) in blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()) {
            l.merge().unwrap();
        }
    }
    assert_tensors_close(&m.forward(&x, 0, None).unwrap(), &with, 1e-5, 1e-4, "merged");
    for blk in &mut m.blocks {
        for (_, l) in blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()) {
            l.unmerge().unwrap();
            l.set_lora(None).unwrap();
        }
    }
    assert_tensors_close(&m.forward(&x, 0, None).unwrap(), &base.forward(&x, 0, None).unwrap(), 1e-5, 1e-4, "unmerged base is untouched");
}

#[test]
fn train_only_freezes_by_pattern() {
    let m = Transformer::new(Config::tiny(Arch::Gpt2, 20)).unwrap();
    m.train_only(&["transformer.wte.*", "transformer.wpe.*"]).unwrap();
    let names: Vec<String> = m.trainable_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["transformer.wte.weight".to_string(), "transformer.wpe.weight".to_string()]);
    assert!(m.train_only(&["transformer.nope*"]).unwrap_err().to_string().contains("nope"));
}

#[test]
fn config_errors_name_the_field() {
    let e = Config::from_json(r#"{"arch":"llama","vocab_size":10,"d_model":30,"n_layers":1,"n_heads":4,"max_seq_len":8}"#, "c.json").unwrap_err();
    assert!(e.to_string().contains("n_heads"), "{e}");
    let e = Config::from_json(r#"{"arch":"llama","vocab_size":10,"d_model":32,"n_layers":1,"n_heads":4,"max_seq_len":8,"dmodel":3}"#, "c.json").unwrap_err();
    assert!(e.to_string().contains("dmodel") && e.to_string().contains("c.json"), "{e}");
    let e = Config::from_json(r#"{"arch":"mamba","vocab_size":10,"d_model":32,"n_layers":1,"n_heads":4,"max_seq_len":8}"#, "c.json").unwrap_err();
    assert!(e.to_string().contains("mamba"), "{e}");
}

#[test]
fn a_tiny_model_learns_to_copy() {
    // Sequences [a b c d | a b c d]: the second half is predictable from the first.
    let (v, half, b) = (12, 4, 16);
    let mut cfg = Config::tiny(Arch::Llama, v);
    cfg.max_seq_len = 2 * half;
    let m = Transformer::new(cfg).unwrap();
    let first = ids(b, half, v, 7).to_vec_u32().unwrap();
    let mut seq = Vec::new();
    for r in 0..b {
        let row = &first[r * half..(r + 1) * half];
        seq.extend_from_slice(row);
        seq.extend_from_slice(row);
    }
    let x = Tensor::from_vec_u32(seq.clone(), [b, 2 * half]).unwrap();
    // targets: next token, only on the copied half (u32::MAX = ignored)
    let tgt: Vec<u32> = (0..b * 2 * half).map(|i| if i % (2 * half) >= half - 1 && i % (2 * half) < 2 * half - 1 { seq[i + 1] } else { u32::MAX }).collect();
    let y = Tensor::from_vec_u32(tgt, [b, 2 * half]).unwrap();
    let mut opt = AdamW::new(0.0);
    let params = m.trainable_params();
    let first_loss = m.loss(&x, &y, u32::MAX).unwrap().to_scalar().unwrap();
    let mut last = first_loss;
    for _ in 0..150 {
        let loss = m.loss(&x, &y, u32::MAX).unwrap();
        last = loss.to_scalar().unwrap();
        opt.step(&params, &backward(&loss).unwrap(), 1e-2).unwrap();
    }
    assert!(last < 0.2 * first_loss, "loss {first_loss} -> {last}");
}

#[test]
fn token_logprobs_agree_with_the_loss_and_choices_pick_the_likeliest() {
    let m = Transformer::new(Config::tiny(Arch::Gpt2, 25)).unwrap();
    let seq: Vec<u32> = ids(1, 10, 25, 11).to_vec_u32().unwrap();
    let lp = m.token_logprobs(&seq, 1).unwrap();
    assert_eq!(lp.len(), 9);
    let x = Tensor::from_vec_u32(seq[..9].to_vec(), [1, 9]).unwrap();
    let y = Tensor::from_vec_u32(seq[1..].to_vec(), [1, 9]).unwrap();
    let loss = m.loss(&x, &y, u32::MAX).unwrap().to_scalar().unwrap();
    assert!((-lp.iter().sum::<f64>() / 9.0 - loss).abs() < 1e-5, "{lp:?} vs {loss}");
    // The choice made of the model's own greedy continuation scores highest.
    let ctx = &seq[..5];
    let greedy = {
        let _ng = no_grad();
        let logits = m.forward(&Tensor::from_vec_u32(ctx.to_vec(), [1, 5]).unwrap(), 0, None).unwrap();
        logits.narrow(1, 4, 1).unwrap().argmax(-1, false).unwrap().to_vec_u32().unwrap()[0]
    };
    let choices = vec![vec![(greedy + 1) % 25], vec![greedy], vec![(greedy + 2) % 25]];
    let (scores, best) = m.score_choices(ctx, &choices).unwrap();
    assert_eq!(best, 1, "{scores:?}");
    assert!(m.token_logprobs(&seq, 0).is_err() && m.score_choices(&[], &choices).is_err());
}

#[test]
fn deep_clone_starts_equal_and_trains_apart() {
    let m = Transformer::new(Config::tiny(Arch::Llama, 30)).unwrap();
    m.train_only(&["lm_head.weight"]).unwrap();
    let c = m.deep_clone().unwrap();
    let x = ids(2, 6, 30, 3);
    let before = m.forward(&x, 0, None).unwrap().to_vec_f32().unwrap();
    assert_eq!(c.forward(&x, 0, None).unwrap().to_vec_f32().unwrap(), before, "a copy answers the same");
    let flags = |m: &Transformer| m.named_params().iter().map(|(_, p)| p.requires_grad()).collect::<Vec<_>>();
    assert_eq!(flags(&c), flags(&m), "frozen stays frozen");
    let y = ids(2, 6, 30, 4);
    let loss = c.loss(&x, &y, u32::MAX).unwrap();
    AdamW::new(0.0).step(&c.trainable_params(), &backward(&loss).unwrap(), 1e-2).unwrap();
    assert_ne!(c.forward(&x, 0, None).unwrap().to_vec_f32().unwrap(), before, "the copy trained");
    assert_eq!(m.forward(&x, 0, None).unwrap().to_vec_f32().unwrap(), before, "the original did not move");
    // Adapters come along, with their values (B made non-zero so they matter).
    let mut with_lora = Transformer::new(Config::tiny(Arch::Llama, 30)).unwrap();
    with_lora.add_lora(&LoraConfig { rank: 2, alpha: 4.0, rslora: false, targets: vec!["q".into(), "down".into()] }, &mut kiln::nn::Init::new(0)).unwrap();
    for (n, p) in with_lora.trainable_params() {
        if n.contains("lora_B") {
            p.assign(&Tensor::full(p.dims(), 0.1, DType::F32, p.device()).unwrap()).unwrap();
        }
    }
    let want = with_lora.forward(&x, 0, None).unwrap().to_vec_f32().unwrap();
    assert_ne!(want, m.forward(&x, 0, None).unwrap().to_vec_f32().unwrap());
    assert_eq!(with_lora.deep_clone().unwrap().forward(&x, 0, None).unwrap().to_vec_f32().unwrap(), want);
}
