//! Many samples per query, batched: every query's prompt has the same length (tasks.rs), so a
//! batch of rows is one (B, P) prefill and then one (B, 1) decoding step per answer token, with
//! one KV cache per layer for the whole batch and the batched sorting-free sampler
//! (`sample_tensor`, a GPU kernel when the logits live on one). Row id = query * per_query + s,
//! so a sample's tokens are a pure function of (seed, query, s) and do not depend on batching.
//! Also the probe's features: the last block's state at the prompt's last position (EQUALS).

use super::tasks::Query;
use crate::model::Transformer;
use crate::nn::KvCache;
use crate::sample::{sample_tensor, SamplingParams};
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};

/// Rows decoded together.
pub const ROWS: usize = 2048;

/// For each query, how many of `per_query` samples at `temperature` the verifier accepts.
pub fn success_counts(model: &Transformer, queries: &[Query], max_digits: usize, per_query: usize, temperature: f32, seed: u64, label: &str) -> Result<Vec<usize>> {
    let answers = sample_answers(model, queries, max_digits, per_query, temperature, seed, label)?;
    let mut counts = vec![0usize; queries.len()];
    for (r, g) in answers.iter().enumerate() {
        counts[r / per_query] += queries[r / per_query].verify(g) as usize;
    }
    Ok(counts)
}

/// Every sample's max_digits + 2 new tokens (row r = query r / per_query), EOS and all after it
/// included (the verifier ignores what follows the first EOS).
pub fn sample_answers(model: &Transformer, queries: &[Query], max_digits: usize, per_query: usize, temperature: f32, seed: u64, label: &str) -> Result<Vec<Vec<u32>>> {
    let _ng = no_grad();
    if per_query == 0 || queries.is_empty() {
        return Err(Error::Msg(format!("adaptive-compute: {per_query} samples for {} queries: nothing to draw", queries.len())));
    }
    let total = queries.len() * per_query;
    if total > u32::MAX as usize {
        return Err(Error::Msg(format!("adaptive-compute: {total} samples exceed the sampler's 2^32 row ids")));
    }
    let params = SamplingParams { temperature, ..SamplingParams::default() };
    params.validate()?;
    let new_tokens = max_digits + 2;
    let mut out = Vec::with_capacity(total);
    let bar = crate::report::progress(total as u64, label);
    for start in (0..total).step_by(ROWS) {
        let rows: Vec<u32> = (start as u32..(start + ROWS).min(total) as u32).collect();
        let b = rows.len();
        let prompts: Vec<u32> = rows.iter().flat_map(|&r| queries[r as usize / per_query].prompt(max_digits)).collect();
        let p = prompts.len() / b;
        let mut caches = vec![KvCache::Empty; model.cfg.n_layers];
        let ids = Tensor::from_vec_u32(prompts, [b, p])?.to_device(model.device())?;
        let logits = model.forward(&ids, 0, Some(&mut caches))?; // (B, P, V)
        let mut last = logits.narrow(1, p - 1, 1)?.reshape([b, model.cfg.vocab_size])?; // (B, V)
        let mut generated = vec![Vec::with_capacity(new_tokens); b];
        let row_params = vec![params; b];
        for step in 0..new_tokens {
            let tok = sample_tensor(&last, &row_params, seed, &rows, step as u32)?; // (B,) U32 on the CPU
            let toks = tok.to_vec_u32()?;
            generated.iter_mut().zip(&toks).for_each(|(g, &t)| g.push(t));
            if step + 1 < new_tokens {
                let x = Tensor::from_vec_u32(toks, [b, 1])?.to_device(model.device())?;
                last = model.forward(&x, p + step, Some(&mut caches))?.reshape([b, model.cfg.vocab_size])?;
            }
        }
        out.extend(generated);
        bar.set_position((start + b) as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The probe's features: the last block's state at each prompt's last position, (N, C) row-major.
pub fn features(model: &Transformer, queries: &[Query], max_digits: usize) -> Result<Vec<f64>> {
    let _ng = no_grad();
    let c = model.cfg.d_model;
    let mut out = Vec::with_capacity(queries.len() * c);
    for chunk in queries.chunks(ROWS) {
        let prompts: Vec<u32> = chunk.iter().flat_map(|q| q.prompt(max_digits)).collect();
        let (b, p) = (chunk.len(), 2 * max_digits + 2);
        let ids = Tensor::from_vec_u32(prompts, [b, p])?.to_device(model.device())?;
        let (_, states) = model.forward_hidden(&ids, 0, None, true)?; // L x (B, P, C)
        let last = states.last().ok_or_else(|| Error::Msg("adaptive-compute: the model has no blocks".into()))?;
        let h = last.narrow(1, p - 1, 1)?.to_vec_f32()?; // (B, 1, C)
        out.extend(h.iter().map(|&x| x as f64));
    }
    Ok(out)
}
