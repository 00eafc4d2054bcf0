//! Workloads a, b1-b3, c and d of ../shared/baselines/README.md for `kiln bench --suite
//! baselines` (the criterion benches in bench/ time the same work with more statistics). Each
//! checks its answer before it is timed.
//!
//!   a   one GPT-2-style training step: vocab 64, d_model 128, 4 heads, 2 layers, seq 64, batch 32,
//!       untied head, AdamW lr 3e-4, weight decay 0.01
//!   b1  LoRA forward y = x W + s (x A) B, x (4096, 1024), W (1024, 1024), r 16, s 2
//!   b2  the same, forward + backward with grads for A and B;  b3  ... and for x
//!   c   causal linear attention forward, B 1, H 8, T 1024, D 64 (chunked, C 64)
//!   d   top-p 0.9 sampling of logits (256, 32000) f32, logits = 3 N(0, 1)

use super::{time, Timing};
use crate::autograd::backward_with;
use crate::model::{Arch, Config, Transformer};
use crate::optim::AdamW;
use crate::sample::{sample, SamplingParams};
use crate::{backward, no_grad, Error, Result, Tensor};

fn timing(name: &str, repeats: usize, check: String, t: (f64, f64, f64)) -> Timing {
    Timing { name: name.into(), median_s: t.0, min_s: t.1, max_s: t.2, repeats, check, baseline_s: None }
}

fn rel_max(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (a, b) = (a.to_vec_f64()?, b.to_vec_f64()?);
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    Ok(a.iter().zip(&b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale)
}

pub fn bench_a(repeats: usize) -> Result<Timing> {
    let (vocab, t, b) = (64usize, 64usize, 32usize);
    let mut cfg = Config::tiny(Arch::Gpt2, vocab);
    (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.max_seq_len, cfg.tie_embeddings) = (128, 4, 2, t, false);
    let model = Transformer::new(cfg)?;
    let params = model.named_params();
    let mut opt = AdamW::new(0.01);
    let tok: Vec<u32> = Tensor::uniform([b * (t + 1)], 0.0, vocab as f32, 1, 0)?.to_vec_f32()?.iter().map(|&x| (x as u32).min(vocab as u32 - 1)).collect();
    let rows = |off: usize| (0..b).flat_map(|r| tok[r * (t + 1) + off..r * (t + 1) + off + t].to_vec()).collect::<Vec<u32>>();
    let (x, y) = (Tensor::from_vec_u32(rows(0), [b, t])?, Tensor::from_vec_u32(rows(1), [b, t])?);
    let mut losses = Vec::new();
    let (med, min, max) = time(repeats, 2, || {
        let loss = model.loss(&x, &y, u32::MAX)?;
        losses.push(loss.to_scalar()?);
        opt.step(&params, &backward(&loss)?, 3e-4)
    })?;
    // The same batch every step: the loss must fall.
    let (first, last) = (losses[0], *losses.last().unwrap_or(&f64::NAN));
    if !(last < first) {
        return Err(Error::Msg(format!("bench a: the loss did not fall on a repeated batch ({first} -> {last})")));
    }
    let check = format!("loss {first:.4} -> {last:.4} over {} steps on one batch; {:.0} tokens/s", losses.len(), (b * t) as f64 / med);
    Ok(timing("a GPT-2-style training step (d 128, 2 layers, B 32, T 64)", repeats, check, (med, min, max)))
}

pub fn bench_b(repeats: usize) -> Result<Vec<Timing>> {
    let (m, k, n, r, s) = (4096usize, 1024usize, 1024usize, 16usize, 2.0f64);
    let x = Tensor::randn([m, k], 1.0, 1, 0)?;
    let w = Tensor::randn([k, n], 1.0 / (k as f32).sqrt(), 2, 0)?;
    let a = Tensor::randn([k, r], 1.0 / (k as f32).sqrt(), 3, 0)?.with_grad();
    let b = Tensor::randn([r, n], 0.01, 4, 0)?.with_grad();
    let gy = Tensor::randn([m, n], 1.0, 5, 0)?;
    let d = {
        let _ng = no_grad();
        let unfused = x.matmul(&w)?.add(&x.matmul(&a)?.matmul(&b)?.scale(s)?)?;
        rel_max(&Tensor::lora(&x, &w, &a, &b, s)?, &unfused)?
    };
    if !(d < 1e-5) {
        return Err(Error::Msg(format!("bench b: fused LoRA differs from x W + s (x A) B by {d:e}")));
    }
    let check = format!("fused vs unfused max rel diff {d:.1e}");
    let b1 = time(repeats, 1, || {
        let _ng = no_grad();
        Tensor::lora(&x, &w, &a, &b, s).map(|_| ())
    })?;
    let b2 = time(repeats, 1, || backward_with(&Tensor::lora(&x, &w, &a, &b, s)?, gy.clone()).map(|_| ()))?;
    let xg = x.detach().with_grad();
    let b3 = time(repeats, 1, || backward_with(&Tensor::lora(&xg, &w, &a, &b, s)?, gy.clone()).map(|_| ()))?;
    Ok(vec![
        timing("b1 LoRA forward (4096x1024x1024, r 16)", repeats, check.clone(), b1),
        timing("b2 LoRA forward + backward (grads A, B)", repeats, check.clone(), b2),
        timing("b3 LoRA forward + backward (grads A, B, x)", repeats, check, b3),
    ])
}

pub fn bench_c(repeats: usize) -> Result<Timing> {
    let _ng = no_grad();
    let r = |seed| Tensor::randn(vec![1, 8, 1024, 64], 1.0 / 8.0, seed, 0);
    let (q, k, v) = (r(1)?, r(2)?, r(3)?);
    let run = |chunked| Tensor::linear_attention(&q, &k, &v, None, chunked).map(|o| o.0);
    let (naive, chunked) = (run(false)?.to_vec_f64()?, run(true)?.to_vec_f64()?);
    let num: f64 = naive.iter().zip(&chunked).map(|(a, b)| (a - b).powi(2)).sum();
    let err = (num / naive.iter().map(|a| a * a).sum::<f64>()).sqrt();
    if !(err < 1e-5) {
        return Err(Error::Msg(format!("bench c: chunked vs recurrent relative L2 error {err:e}")));
    }
    let t = time(repeats, 2, || run(true).map(|_| ()))?;
    Ok(timing("c causal linear attention forward (B 1, H 8, T 1024, D 64, chunked)", repeats, format!("chunked vs recurrent rel L2 {err:.1e}"), t))
}

pub fn bench_d(repeats: usize) -> Result<Timing> {
    let (b, v) = (256usize, 32000usize);
    let logits = Tensor::randn(vec![b, v], 3.0, 0, 0)?.to_vec_f32()?;
    let rows: Vec<u32> = (0..b as u32).collect();
    let params = vec![SamplingParams::default().with_top_p(0.9); b];
    // Check: every drawn token of the first rows lies in the sorted (f64) top-0.9 nucleus.
    let tokens = sample(&logits, v, &params, 7, &rows, 0)?;
    for (r, &tok) in tokens.iter().enumerate().take(8) {
        let x = &logits[r * v..(r + 1) * v];
        let mut order: Vec<usize> = (0..v).collect();
        order.sort_by(|&i, &j| x[j].total_cmp(&x[i]));
        let e: Vec<f64> = order.iter().map(|&i| ((x[i] - x[order[0]]) as f64).exp()).collect();
        let total: f64 = e.iter().sum();
        let (mut before, mut inside) = (0.0, false);
        for (pos, &i) in order.iter().enumerate() {
            if before >= 0.9 * total {
                break;
            }
            inside |= i == tok as usize;
            before += e[pos];
        }
        if !inside {
            return Err(Error::Msg(format!("bench d: row {r} drew token {tok} outside the top-p 0.9 nucleus")));
        }
    }
    let mut step = 0u32;
    let t = time(repeats, 2, || {
        step += 1;
        sample(&logits, v, &params, 0, &rows, step).map(|_| ())
    })?;
    Ok(timing("d top-p 0.9 sampling (256 x 32000, f32)", repeats, "drawn tokens lie in the sorted nucleus (8 rows)".into(), t))
}
