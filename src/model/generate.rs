//! Autoregressive generation with a KV cache. Each prompt is prefilled once, then decoded one
//! token per step; the token is drawn by the sorting-free sampler (src/sample) with the
//! counter-based RNG keyed by (seed, row, step), so a row's tokens do not depend on which other
//! prompts share the batch or on their lengths. Rows are decoded one after another with their own
//! caches (prompts of different lengths need no padding or masks); stop tokens end a row early.

use super::Transformer;
use crate::nn::KvCache;
use crate::sample::{sample, SamplingParams};
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// one per prompt, or a single entry shared by all
    pub params: Vec<SamplingParams>,
    pub stop_tokens: Vec<u32>,
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_new_tokens: 32, params: vec![SamplingParams::greedy()], stop_tokens: vec![], seed: 0 }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Generated {
    pub prompt_ids: Vec<u32>,
    pub new_ids: Vec<u32>,
    /// sum of log p(token) under the model's (untempered, unfiltered) distribution
    pub logprob: f64,
    /// why the row ended: "stop", "length" (max_new_tokens) or "context" (max_seq_len)
    pub finish: &'static str,
}

impl Transformer {
    /// Generate a continuation for every prompt (row r uses RNG row id r).
    pub fn generate(&self, prompts: &[Vec<u32>], opts: &GenerateOptions) -> Result<Vec<Generated>> {
        if opts.params.len() != 1 && opts.params.len() != prompts.len() {
            return Err(Error::Msg(format!("generate: {} sampling settings for {} prompts (give 1 or one per prompt)", opts.params.len(), prompts.len())));
        }
        let _ng = no_grad();
        prompts.iter().enumerate().map(|(r, p)| self.generate_row(p, r as u32, &opts.params[r.min(opts.params.len() - 1)], opts)).collect()
    }

    fn generate_row(&self, prompt: &[u32], row: u32, params: &SamplingParams, opts: &GenerateOptions) -> Result<Generated> {
        let (v, max_len) = (self.cfg.vocab_size, self.cfg.max_seq_len);
        if prompt.is_empty() || prompt.len() > max_len {
            return Err(Error::range("generate", format!("prompt {row} has {} tokens; 1..={max_len} fit this model", prompt.len())));
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= v) {
            return Err(Error::range("generate", format!("prompt {row} holds token {bad} >= vocab size {v}")));
        }
        let mut caches = vec![KvCache::Empty; self.blocks.len()];
        let ids = Tensor::from_vec_u32(prompt.to_vec(), [1, prompt.len()])?.to_device(self.device())?;
        // logits of the last position: (V)
        let last = |logits: Tensor| -> Result<Vec<f32>> { logits.narrow(1, logits.dims()[1] - 1, 1)?.to_vec_f32() };
        let mut logits = last(self.forward(&ids, 0, Some(&mut caches))?)?;
        let mut out = Generated { prompt_ids: prompt.to_vec(), new_ids: vec![], logprob: 0.0, finish: "length" };
        for step in 0..opts.max_new_tokens {
            let tok = sample(&logits, v, std::slice::from_ref(params), opts.seed, &[row], step as u32)?[0];
            out.logprob += log_softmax_at(&logits, tok as usize);
            out.new_ids.push(tok);
            if opts.stop_tokens.contains(&tok) {
                out.finish = "stop";
                break;
            }
            let pos = prompt.len() + step;
            if pos >= max_len {
                out.finish = "context";
                break;
            }
            if step + 1 < opts.max_new_tokens {
                let x = Tensor::from_vec_u32(vec![tok], [1, 1])?.to_device(self.device())?;
                logits = last(self.forward(&x, pos, Some(&mut caches))?)?;
            }
        }
        Ok(out)
    }
}

/// log softmax(logits)[i], in f64.
pub(super) fn log_softmax_at(logits: &[f32], i: usize) -> f64 {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let z: f64 = logits.iter().map(|&l| (l as f64 - m).exp()).sum();
    logits[i] as f64 - m - z.ln()
}
