//! Ragged multi-adapter serving (model/serve.rs): a model with several tasks' adapters stacked
//! (`with_adapters`) decodes a batch of prompts of different lengths, each row under its own
//! adapter, to the same tokens as each prompt alone under its own model (`generate`), with
//! last-token logits equal to the per-model forward up to float rounding; a row whose model has
//! no adapter gets exactly the base model; a stacked model used without adapter ids is a clear
//! error. Llama (separate q/k/v, RoPE, GQA) and GPT-2 (fused c_attn, learned positions).

use kiln::model::{Arch, Config, GenerateOptions, Request, Transformer};
use kiln::nn::{Init, KvCache, LoraConfig};
use kiln::sample::SamplingParams;
use kiln::Tensor;

/// The base model and three derived models: two with random (non-zero) adapters on different
/// modules sets, one the base itself.
fn models(arch: Arch) -> (Transformer, Vec<Transformer>) {
    let mut cfg = Config::tiny(arch, 40);
    cfg.seed = 3;
    let base = Transformer::new(cfg).unwrap();
    let targets = if arch == Arch::Llama { vec!["q", "v", "gate", "up", "down"] } else { vec!["c_attn", "c_fc", "c_proj"] };
    let mut out = Vec::new();
    for s in 0..2u64 {
        let mut m = base.clone();
        let lc = LoraConfig { rank: 4, alpha: 8.0, rslora: false, targets: targets.iter().map(|t| t.to_string()).collect() };
        m.add_lora(&lc, &mut Init::new(10 + s)).unwrap();
        let mut stream = 0;
        for blk in &mut m.blocks {
            for (_, lin) in blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()) {
                if let Some(l) = lin.lora.as_mut() {
                    stream += 1;
                    l.b = Tensor::randn(l.b.dims().to_vec(), 0.3, 20 + s, stream).unwrap();
                }
            }
        }
        out.push(m);
    }
    out.push(base.clone());
    (base, out)
}

fn prompts() -> Vec<(Vec<u32>, u32)> {
    // (prompt, adapter): lengths 1..13, adapters shared by several rows and listed out of order
    [(7, 1), (1, 0), (13, 2), (4, 1), (9, 0), (2, 2)].iter().enumerate().map(|(i, &(n, a))| ((0..n).map(|j| ((i * 7 + j * 3) % 40) as u32).collect(), a)).collect()
}

#[test]
fn stacked_adapters_decode_like_each_model_alone() {
    for arch in [Arch::Llama, Arch::Gpt2] {
        let (base, ms) = models(arch);
        let stacked = base.with_adapters(&ms.iter().collect::<Vec<_>>()).unwrap();
        let ps = prompts();
        // logits of a ragged prefill against each model's own forward
        let ids: Vec<u32> = ps.iter().flat_map(|p| p.0.clone()).collect();
        let segs: Vec<(usize, usize)> = ps.iter().map(|p| (0, p.0.len())).collect();
        let adapters: Vec<u32> = ps.iter().map(|p| p.1).collect();
        let mut caches = vec![vec![KvCache::Empty; ps.len()]; base.blocks.len()];
        let got = stacked.forward_ragged(&ids, &segs, &mut caches, &adapters).unwrap().to_vec_f32().unwrap();
        for (i, (p, a)) in ps.iter().enumerate() {
            let m = &ms[*a as usize];
            let x = Tensor::from_vec_u32(p.clone(), [1, p.len()]).unwrap();
            let want = m.forward(&x, 0, None).unwrap().to_vec_f32().unwrap();
            let want = &want[(p.len() - 1) * 40..];
            let diff = got[i * 40..(i + 1) * 40].iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-4, "{arch:?} row {i}: logits differ by {diff}");
            // the adapters matter: the base model's logits differ (except for the adapter-free row)
            let plain = base.forward(&x, 0, None).unwrap().to_vec_f32().unwrap();
            let moved = plain[(p.len() - 1) * 40..].iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert_eq!(moved > 1e-3, *a != 2, "{arch:?} row {i}: adapter {a} moved logits by {moved}");
        }
        // greedy decoding: the same tokens, logprobs and finish reasons as generate per model
        let reqs: Vec<Request> = ps.iter().enumerate().map(|(i, (p, a))| Request { prompt: p.clone(), max_new_tokens: 3 + 2 * i, adapter: *a }).collect();
        let opts = GenerateOptions { max_new_tokens: 100, params: vec![SamplingParams::greedy()], stop_tokens: vec![5, 17], seed: 1 };
        let got = stacked.generate_ragged(&reqs, &opts).unwrap();
        for (r, g) in reqs.iter().zip(&got) {
            let o = GenerateOptions { max_new_tokens: r.max_new_tokens, ..opts.clone() };
            let want = ms[r.adapter as usize].generate(std::slice::from_ref(&r.prompt), &o).unwrap().remove(0);
            assert_eq!((&g.new_ids, g.finish), (&want.new_ids, want.finish), "{arch:?} prompt {:?}", r.prompt);
            assert!((g.logprob - want.logprob).abs() < 1e-3, "{} vs {}", g.logprob, want.logprob);
        }
        // a row that reaches the end of the context stops there, as in generate
        let long = Request { prompt: vec![3; 62], max_new_tokens: 10, adapter: 1 };
        let g = stacked.generate_ragged(&[long.clone(), reqs[0].clone()], &opts).unwrap();
        let want = ms[1].generate(std::slice::from_ref(&long.prompt), &GenerateOptions { max_new_tokens: 10, ..opts.clone() }).unwrap().remove(0);
        assert_eq!((&g[0].new_ids, g[0].finish), (&want.new_ids, want.finish));
        assert_eq!(g[1].new_ids, got[0].new_ids, "a row's tokens do not depend on its batch");
        // stacked adapters without per-row adapter ids: a clear error, not a silent base model
        let err = stacked.forward(&Tensor::from_vec_u32(vec![1, 2], [1, 2]).unwrap(), 0, None).unwrap_err().to_string();
        assert!(err.contains("adapter"), "{err}");
    }
}

#[test]
fn with_adapters_rejects_mismatched_models() {
    let (base, ms) = models(Arch::Llama);
    let other = Transformer::new(Config::tiny(Arch::Gpt2, 40)).unwrap();
    assert!(base.with_adapters(&[&ms[0], &other]).is_err());
    let bad = Request { prompt: vec![], max_new_tokens: 2, adapter: 0 };
    assert!(base.generate_ragged(&[bad], &GenerateOptions::default()).is_err());
    let bad = Request { prompt: vec![1, 99], max_new_tokens: 2, adapter: 0 };
    assert!(base.generate_ragged(&[bad], &GenerateOptions::default()).unwrap_err().to_string().contains("99"));
    // an adapter id beyond the stacked ones is refused by the op
    let stacked = base.with_adapters(&[&ms[0], &ms[1]]).unwrap();
    let bad = Request { prompt: vec![1, 2], max_new_tokens: 2, adapter: 2 };
    assert!(stacked.generate_ragged(&[bad], &GenerateOptions::default()).is_err());
}
