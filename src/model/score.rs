//! Scoring text under a model: per-token log-probabilities of a sequence, and multiple-choice
//! scoring (the continuation with the highest total log-probability given a shared context),
//! as used by evaluation harnesses. Runs without recording a graph.

use super::Transformer;
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};

impl Transformer {
    /// `log p(ids[t] | ids[..t])` for t in start..len (start >= 1): one value per scored token.
    pub fn token_logprobs(&self, ids: &[u32], start: usize) -> Result<Vec<f64>> {
        if start == 0 || start > ids.len() {
            return Err(Error::range("token_logprobs", format!("start {start} must be in 1..={}", ids.len())));
        }
        let _ng = no_grad();
        let x = Tensor::from_vec_u32(ids[..ids.len() - 1].to_vec(), [1, ids.len() - 1])?.to_device(self.device())?;
        let v = self.cfg.vocab_size;
        // logp: (1, T-1, V); row t predicts ids[t + 1]
        let logp = self.forward(&x, 0, None)?.log_softmax()?.to_vec_f64()?;
        Ok((start..ids.len()).map(|t| logp[(t - 1) * v + ids[t] as usize]).collect())
    }

    /// Total log-probability of each continuation after `context`; returns (scores, best index).
    pub fn score_choices(&self, context: &[u32], choices: &[Vec<u32>]) -> Result<(Vec<f64>, usize)> {
        if context.is_empty() || choices.is_empty() || choices.iter().any(|c| c.is_empty()) {
            return Err(Error::Msg("score_choices: the context and every choice need at least one token".into()));
        }
        let scores = choices
            .iter()
            .map(|c| {
                let ids: Vec<u32> = context.iter().chain(c).copied().collect();
                Ok(self.token_logprobs(&ids, context.len())?.iter().sum())
            })
            .collect::<Result<Vec<f64>>>()?;
        let best = (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
        Ok((scores, best))
    }
}
