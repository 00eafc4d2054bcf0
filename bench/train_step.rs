//! Workload a of ../shared/baselines/README.md: one GPT-2-style training step (vocab 64, d_model
//! 128, 4 heads, 2 layers, LayerNorm, GELU MLP 4x, learned positions, seq 64, batch 32, untied
//! head, AdamW lr 3e-4, weight decay 0.01, cross-entropy), fp32. Run with RAYON_NUM_THREADS=2 and
//! compare with torch_cpu_baselines.py --only a from the same sitting.

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::model::{Arch, Config, Transformer};
use kiln::optim::AdamW;
use kiln::{backward, Tensor};
use std::time::Duration;

fn train_step(c: &mut Criterion) {
    // As `kiln bench` does (main.rs): keep freed activation buffers in the process.
    kiln::backend::cpu::alloc::keep_freed_memory();
    let (vocab, t, b) = (64usize, 64usize, 32usize);
    let mut cfg = Config::tiny(Arch::Gpt2, vocab);
    (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.max_seq_len, cfg.tie_embeddings) = (128, 4, 2, t, false);
    let model = Transformer::new(cfg).unwrap();
    let params = model.named_params();
    let mut opt = AdamW::new(0.01);
    // 16 fixed batches of (B, T + 1) tokens, cycled.
    let batches: Vec<(Tensor, Tensor)> = (0..16)
        .map(|i| {
            let u = Tensor::uniform([b * (t + 1)], 0.0, vocab as f32, 1, i).unwrap().to_vec_f32().unwrap();
            let tok: Vec<u32> = u.iter().map(|&x| (x as u32).min(vocab as u32 - 1)).collect();
            let row = |r: usize, off: usize| tok[r * (t + 1) + off..r * (t + 1) + off + t].to_vec();
            let x: Vec<u32> = (0..b).flat_map(|r| row(r, 0)).collect();
            let y: Vec<u32> = (0..b).flat_map(|r| row(r, 1)).collect();
            (Tensor::from_vec_u32(x, [b, t]).unwrap(), Tensor::from_vec_u32(y, [b, t]).unwrap())
        })
        .collect();
    let mut i = 0;
    let mut g = c.benchmark_group("train");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    g.bench_function("a_gpt2_step", |bench| {
        bench.iter(|| {
            let (x, y) = &batches[i % 16];
            i += 1;
            let loss = model.loss(x, y, u32::MAX).unwrap();
            opt.step(&params, &backward(&loss).unwrap(), 3e-4).unwrap();
            loss
        })
    });
    g.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
