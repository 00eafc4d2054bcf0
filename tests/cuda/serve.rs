//! parity_serve_*: ragged multi-adapter serving (model/serve.rs) on the GPU decodes the same
//! greedy tokens as on the CPU: a tiny Llama model with two random adapters and one adapter-free
//! row, stacked (`with_adapters`), prompts of different lengths in one batch.
use super::*;
use kiln::model::{Arch, Config, GenerateOptions, Request, Transformer};
use kiln::nn::{Init, LoraConfig};
use kiln::sample::SamplingParams;

fn models() -> (Transformer, Vec<Transformer>) {
    let mut cfg = Config::tiny(Arch::Llama, 64);
    (cfg.d_model, cfg.seed) = (64, 5);
    let base = Transformer::new(cfg).unwrap();
    let mut out = Vec::new();
    for s in 0..2u64 {
        let mut m = base.clone();
        let lc = LoraConfig { rank: 8, alpha: 16.0, rslora: false, targets: ["q", "v", "gate", "up", "down"].iter().map(|t| t.to_string()).collect() };
        m.add_lora(&lc, &mut Init::new(30 + s)).unwrap();
        let mut stream = 0;
        for blk in &mut m.blocks {
            for (_, lin) in blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()) {
                if let Some(l) = lin.lora.as_mut() {
                    stream += 1;
                    l.b = Tensor::randn(l.b.dims().to_vec(), 0.3, 40 + s, stream).unwrap();
                }
            }
        }
        out.push(m);
    }
    out.push(base.clone());
    (base, out)
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_serve_multi_adapter_generate() {
    setup();
    let (base, ms) = models();
    let reqs: Vec<Request> = [(9, 1), (1, 0), (23, 2), (5, 1), (14, 0)]
        .iter()
        .enumerate()
        .map(|(i, &(n, a))| Request { prompt: (0..n).map(|j| ((i * 11 + j * 5) % 64) as u32).collect(), max_new_tokens: 12, adapter: a })
        .collect();
    let opts = GenerateOptions { max_new_tokens: 12, params: vec![SamplingParams::greedy()], stop_tokens: vec![], seed: 0 };
    let cpu = base.with_adapters(&ms.iter().collect::<Vec<_>>()).unwrap().generate_ragged(&reqs, &opts).unwrap();
    // move the shared base weights and every adapter to the GPU, stack there, decode there
    base.to_device(GPU).unwrap();
    for m in &ms {
        m.to_device(GPU).unwrap();
    }
    let gpu = base.with_adapters(&ms.iter().collect::<Vec<_>>()).unwrap().generate_ragged(&reqs, &opts).unwrap();
    for (i, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        println!("serve row {i}: cpu {:?} gpu {:?} logprob {:.5} / {:.5}", c.new_ids, g.new_ids, c.logprob, g.logprob);
        assert_eq!(c.new_ids, g.new_ids, "row {i}: greedy tokens differ between devices");
        assert!((c.logprob - g.logprob).abs() < 1e-2, "row {i}: logprob {} vs {}", c.logprob, g.logprob);
    }
}
