//! Ragged batched generation, for serving many prompts (and many LoRA adapters) at once, the
//! S-LoRA / Punica way: at every forward the new tokens of all live sequences are laid end to end
//! as one (1, N, C) batch, so each linear layer is one product over all N rows (with stacked
//! adapters, `Tensor::lora_multi_adapter`, each row its sequence's adapter), while attention runs
//! per sequence against that sequence's own KV cache (model/generate.rs's per-row decoding, no
//! padding, no masks). Prompts are prefilled in groups of at most PREFILL_TOKENS tokens, then all
//! live rows decode one token per step; a row leaves the batch at a stop token, its budget or the
//! context end. Sampling is generate()'s: row r draws with RNG row id r, so a request gives the
//! same tokens here as alone in `generate` (up to float rounding of the batched products).

use super::generate::log_softmax_at;
use super::{Generated, GenerateOptions, Transformer};
use crate::nn::{adapter_rows, KvCache};
use crate::sample::sample;
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};
use std::sync::Arc;

/// Prompt tokens per prefill forward (a whole prompt is never split; a longer one goes alone).
pub const PREFILL_TOKENS: usize = 8192;

/// One sequence to continue: its prompt, how many tokens it may add, and the index of its
/// adapter among the model's stacked ones (0 when the model has none).
#[derive(Clone, Debug)]
pub struct Request {
    pub prompt: Vec<u32>,
    pub max_new_tokens: usize,
    pub adapter: u32,
}

impl Transformer {
    /// A copy of this (adapter-free) model serving G = models.len() adapters at once: every
    /// linear layer holds `models[g]`'s adapter of that layer as adapter g (a zero adapter where
    /// `models[g]` has none). Each `models[g]` must be this model plus adapters (same weights, as
    /// `ttt::train_adapter` or `add_lora` on a clone make them).
    pub fn with_adapters(&self, models: &[&Transformer]) -> Result<Transformer> {
        let mut out = self.clone();
        let mut others: Vec<Transformer> = models.iter().map(|&m| m.clone()).collect();
        for (l, blk) in out.blocks.iter_mut().enumerate() {
            let mut mine: Vec<_> = blk.attn.linears_mut().into_iter().chain(blk.mlp.linears_mut()).collect();
            let theirs: Vec<Vec<_>> = others
                .iter_mut()
                .map(|m| {
                    let b = m.blocks.get_mut(l).ok_or_else(|| Error::Msg(format!("with_adapters: a model has no layer {l}")))?;
                    Ok(b.attn.linears_mut().into_iter().chain(b.mlp.linears_mut()).collect())
                })
                .collect::<Result<_>>()?;
            for (i, (name, lin)) in mine.iter_mut().enumerate() {
                if theirs.iter().any(|t| t.get(i).is_none_or(|(n, _)| n != name)) {
                    return Err(Error::Msg(format!("with_adapters: layer {l} module {name} is missing from a model (not the same architecture)")));
                }
                let adapters: Vec<_> = theirs.iter().map(|t| t[i].1.lora.as_ref()).collect();
                **lin = lin.stack_adapters(&adapters)?;
            }
        }
        out.cfg.lora = models.iter().find_map(|m| m.cfg.lora.clone());
        Ok(out)
    }

    /// One ragged forward: `ids` are the new tokens of every sequence end to end, `segs[s]` =
    /// (first position, count) of sequence s, `caches[layer][s]` its caches (extended in place),
    /// `adapters[s]` its adapter (with stacked adapters) -> logits of each sequence's last token
    /// (S, V).
    pub fn forward_ragged(&self, ids: &[u32], segs: &[(usize, usize)], caches: &mut [Vec<KvCache>], adapters: &[u32]) -> Result<Tensor> {
        let n: usize = segs.iter().map(|s| s.1).sum();
        if ids.len() != n || adapters.len() != segs.len() || caches.len() != self.blocks.len() || segs.iter().any(|s| s.1 == 0) {
            return Err(Error::Msg(format!(
                "forward_ragged: {} ids for segments of {n} tokens (none empty), {} adapters for {} sequences, {} cache layers for {}",
                ids.len(), adapters.len(), segs.len(), caches.len(), self.blocks.len()
            )));
        }
        if let Some(&(p, t)) = segs.iter().find(|&&(p, t)| p + t > self.cfg.max_seq_len) {
            return Err(Error::range("forward_ragged", format!("positions {p}..{} exceed max_seq_len {}", p + t, self.cfg.max_seq_len)));
        }
        let dev = self.device();
        let rows: Arc<[u32]> = segs.iter().zip(adapters).flat_map(|(&(_, t), &a)| std::iter::repeat_n(a, t)).collect();
        let _rows = adapter_rows(rows);
        let mut x = Tensor::embedding(&self.wte, &Tensor::from_vec_u32(ids.to_vec(), [1, n])?.to_device(dev)?)?;
        if let Some(wpe) = &self.wpe {
            let pos: Vec<u32> = segs.iter().flat_map(|&(p, t)| p as u32..(p + t) as u32).collect();
            x = x.add(&Tensor::embedding(wpe, &Tensor::from_vec_u32(pos, [n])?.to_device(dev)?)?)?;
        }
        for (blk, c) in self.blocks.iter().zip(caches.iter_mut()) {
            x = x.add(&blk.attn.forward_ragged(&blk.attn_norm.forward(&x)?, segs, c)?)?;
            x = x.add(&blk.mlp.forward(&blk.mlp_norm.forward(&x)?)?)?;
        }
        // each sequence's last token only: (S, C)
        let last: Vec<u32> = segs.iter().scan(0, |end, &(_, t)| { *end += t; Some(*end as u32 - 1) }).collect();
        let c = self.cfg.d_model;
        let h = self.norm_f.forward(&x.reshape([n, c])?.index_select(&Tensor::from_vec_u32(last, [segs.len()])?.to_device(dev)?, 0)?)?;
        match &self.lm_head {
            Some(w) => h.matmul(w),
            None => h.matmul_t(&self.wte, false, true),
        }
    }

    /// Continue every request (row r uses RNG row id r and `opts.params[r]`, or the single entry);
    /// opts.max_new_tokens caps every request's own budget.
    pub fn generate_ragged(&self, reqs: &[Request], opts: &GenerateOptions) -> Result<Vec<Generated>> {
        if opts.params.len() != 1 && opts.params.len() != reqs.len() {
            return Err(Error::Msg(format!("generate_ragged: {} sampling settings for {} requests (give 1 or one per request)", opts.params.len(), reqs.len())));
        }
        let (v, max_len) = (self.cfg.vocab_size, self.cfg.max_seq_len);
        for (r, q) in reqs.iter().enumerate() {
            if q.prompt.is_empty() || q.prompt.len() > max_len {
                return Err(Error::range("generate_ragged", format!("prompt {r} has {} tokens; 1..={max_len} fit this model", q.prompt.len())));
            }
            if let Some(&bad) = q.prompt.iter().find(|&&t| t as usize >= v) {
                return Err(Error::range("generate_ragged", format!("prompt {r} holds token {bad} >= vocab size {v}")));
            }
        }
        let _ng = no_grad();
        let params = |r: usize| &opts.params[r.min(opts.params.len() - 1)];
        let mut out: Vec<Generated> = reqs.iter().map(|q| Generated { prompt_ids: q.prompt.clone(), new_ids: vec![], logprob: 0.0, finish: "length" }).collect();
        // live rows: (request index, caches per layer), and their last logits (V each)
        let mut live: Vec<(usize, Vec<KvCache>)> = Vec::new();
        let mut logits: Vec<f32> = Vec::new();
        let mut start = 0;
        while start < reqs.len() {
            let mut end = start + 1;
            let mut tokens = reqs[start].prompt.len();
            while end < reqs.len() && tokens + reqs[end].prompt.len() <= PREFILL_TOKENS {
                tokens += reqs[end].prompt.len();
                end += 1;
            }
            let group = &reqs[start..end];
            let ids: Vec<u32> = group.iter().flat_map(|q| q.prompt.iter().copied()).collect();
            let segs: Vec<(usize, usize)> = group.iter().map(|q| (0, q.prompt.len())).collect();
            let adapters: Vec<u32> = group.iter().map(|q| q.adapter).collect();
            let mut caches = vec![vec![KvCache::Empty; group.len()]; self.blocks.len()];
            logits.extend(self.forward_ragged(&ids, &segs, &mut caches, &adapters)?.to_vec_f32()?);
            for (i, r) in (start..end).enumerate() {
                live.push((r, caches.iter_mut().map(|c| std::mem::take(&mut c[i])).collect()));
            }
            start = end;
        }
        let mut step = 0;
        while !live.is_empty() {
            // one sampler call for every live row (row r: RNG row id r, its own settings)
            let rs: Vec<u32> = live.iter().map(|(r, _)| *r as u32).collect();
            let ps: Vec<_> = rs.iter().map(|&r| *params(r as usize)).collect();
            let toks = sample(&logits, v, &ps, opts.seed, &rs, step as u32)?;
            let mut next: Vec<(usize, Vec<KvCache>)> = Vec::new();
            let mut next_logits_rows = Vec::new();
            for (i, ((r, caches), tok)) in live.into_iter().zip(toks).enumerate() {
                let budget = reqs[r].max_new_tokens.min(opts.max_new_tokens);
                if budget == 0 {
                    continue;
                }
                let g = &mut out[r];
                g.logprob += log_softmax_at(&logits[i * v..(i + 1) * v], tok as usize);
                g.new_ids.push(tok);
                if opts.stop_tokens.contains(&tok) {
                    g.finish = "stop";
                } else if reqs[r].prompt.len() + step >= max_len {
                    g.finish = "context";
                } else if step + 1 < budget {
                    next_logits_rows.push((tok, reqs[r].prompt.len() + step));
                    next.push((r, caches));
                }
            }
            live = next;
            if live.is_empty() {
                break;
            }
            let ids: Vec<u32> = next_logits_rows.iter().map(|p| p.0).collect();
            let segs: Vec<(usize, usize)> = next_logits_rows.iter().map(|p| (p.1, 1)).collect();
            let adapters: Vec<u32> = live.iter().map(|(r, _)| reqs[*r].adapter).collect();
            // caches per layer, rows in live order
            let mut caches: Vec<Vec<KvCache>> = (0..self.blocks.len()).map(|l| live.iter_mut().map(|(_, c)| std::mem::take(&mut c[l])).collect()).collect();
            logits = self.forward_ragged(&ids, &segs, &mut caches, &adapters)?.to_vec_f32()?;
            for (l, layer) in caches.into_iter().enumerate() {
                for ((_, c), kv) in live.iter_mut().zip(layer) {
                    c[l] = kv;
                }
            }
            step += 1;
        }
        Ok(out)
    }
}
