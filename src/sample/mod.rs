//! Batched, sorting-free token sampler: temperature, top-k, top-p (nucleus), min-p and greedy, one
//! token per row of a (B, V) logits matrix. This CPU version is the spec a CUDA kernel mirrors
//! (one block per row there; rayon over rows here).
//!
//! Why sorting-free: sorting a 32k-128k vocabulary row per token dominates sampling time (PyTorch's
//! softmax + sort + cumsum + multinomial). Every filter here is a threshold on a value, found by
//! radix select on float bits (see row.rs), so a row costs a few linear passes. Source: the
//! "Sorting-free sampling" paragraph of shared/KERNELS.md (after FlashInfer's sampling kernels);
//! the filters follow Holtzman et al. 2020 (top-p) and Nguyen et al. 2024 (min-p).
//!
//! Semantics, per row with logits x (V,) and parameters (T, k, p, min_p), in this order:
//! 1. greedy when T == 0: the first index of the largest logit (other filters are ignored);
//! 2. temperature: weights w_i = exp((x_i - max x) / T), so the largest weight is exactly 1
//!    (row.rs's `exp_nonpos`: < 2 ulp, and 0 below e^-87, i.e. for probabilities < 1.6e-38 p_max);
//! 3. top-k (0 < k < V): keep tokens whose logit is >= the k-th largest logit. Ties at the boundary
//!    are ALL kept, so more than k tokens may survive (-0.0 and +0.0 count as equal);
//! 4. top-p (p < 1): among the top-k survivors, with mass S, keep the tokens whose weight is >= t,
//!    where t is the largest weight value such that the survivors' mass at or above t is >= p * S:
//!    the smallest set, in decreasing-probability order, whose mass reaches p, ties at t kept;
//! 5. min-p (min_p > 0): keep tokens with p_i >= min_p * p_max, i.e. w_i >= min_p (the top token
//!    survives every filter, so p_max is unchanged by steps 3-4);
//! 6. draw: one uniform u in [0, 1) (53 bits) per row; inverse CDF over the survivors in id order:
//!    with survivor mass summed per block of 256 ids (f64), a sequential running sum over the block
//!    sums finds the block where it passes u * total (the total is that same sum), then a
//!    sequential running sum inside the block finds the token. No parallel prefix sum: a parallel
//!    scan of non-negative floats is not monotonic and once emitted ids outside the vocabulary.
//!
//! Randomness (DESIGN.md decision 7): u is a pure function of (seed, global row id, step), drawn
//! from Philox4x32-10 (src/rng.rs) with tag 1 and index (row << 32) | step, so a row's token never
//! depends on batch composition, position in the batch or thread count. -inf logits are fine
//! (probability 0); NaN or +inf logits, an all -inf row and bad parameters are errors.

mod row;

use crate::backend::{cpu::CpuStorage, Storage};
use crate::rng::Philox;
use crate::{DType, Error, Result, Shape, Tensor};
use rayon::prelude::*;

/// Philox tag reserved for the sampler (tensor creation uses tag 0).
pub const SAMPLER_TAG: u32 = 1;

/// How to pick a token from one row of logits. Each filter has an "off" value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy (argmax). Must be finite and >= 0.
    pub temperature: f32,
    /// Keep the k most likely tokens (ties at the boundary kept); 0 or >= V means off.
    pub top_k: usize,
    /// Nucleus mass in (0, 1]; 1 means off.
    pub top_p: f32,
    /// Keep tokens with probability >= min_p * the top probability; in [0, 1), 0 means off.
    pub min_p: f32,
}

impl Default for SamplingParams {
    /// Plain sampling from softmax(logits): temperature 1, every filter off.
    fn default() -> Self {
        SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0 }
    }
}

impl SamplingParams {
    /// Argmax decoding.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Self::default() }
    }
    pub fn with_temperature(self, temperature: f32) -> Self {
        SamplingParams { temperature, ..self }
    }
    pub fn with_top_k(self, top_k: usize) -> Self {
        SamplingParams { top_k, ..self }
    }
    pub fn with_top_p(self, top_p: f32) -> Self {
        SamplingParams { top_p, ..self }
    }
    pub fn with_min_p(self, min_p: f32) -> Self {
        SamplingParams { min_p, ..self }
    }

    /// Checks every field; the error names the field, the bad value and the valid range.
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::Msg(format!("sample: temperature must be finite and >= 0 (0 = greedy), got {t}")));
        }
        let p = self.top_p;
        if !(p > 0.0 && p <= 1.0) {
            return Err(Error::Msg(format!("sample: top_p must be in (0, 1] (1 = off), got {p}")));
        }
        let m = self.min_p;
        if !(0.0..1.0).contains(&m) {
            return Err(Error::Msg(format!("sample: min_p must be in [0, 1) (0 = off), got {m}")));
        }
        Ok(())
    }
}

/// The row's uniform in [0, 1) with 53 random bits: a pure function of (seed, row id, step).
/// Philox block (index = row << 32 | step, stream 0, tag 1); words 0 and 1 give the bits.
pub fn row_uniform(seed: u64, row: u32, step: u32) -> f64 {
    let w = Philox::new(seed).block(((row as u64) << 32) | step as u64, 0, SAMPLER_TAG);
    let bits = (((w[0] as u64) << 32) | w[1] as u64) >> 11;
    bits as f64 * (1.0 / (1u64 << 53) as f64)
}

/// One token id per row. logits: (B, V) row-major with B = params.len(); `rows` holds each row's
/// global id (e.g. its sequence index), which with `seed` and `step` fixes its random draw.
pub fn sample(logits: &[f32], v: usize, params: &[SamplingParams], seed: u64, rows: &[u32], step: u32) -> Result<Vec<u32>> {
    let b = params.len();
    if v == 0 || v > u32::MAX as usize {
        return Err(Error::Msg(format!("sample: vocabulary size V must be in 1..=2^32-1, got {v}")));
    }
    if b.checked_mul(v) != Some(logits.len()) {
        let detail = format!("logits hold {} values, expected B * V with B = {b} (one SamplingParams per row)", logits.len());
        return Err(Error::shape("sample", &Shape::from([logits.len()]), &Shape::from([b, v]), detail));
    }
    if rows.len() != b {
        let detail = format!("{} row ids for {b} rows", rows.len());
        return Err(Error::shape("sample", &Shape::from([rows.len()]), &Shape::from([b]), detail));
    }
    for (r, p) in params.iter().enumerate() {
        p.validate().map_err(|e| Error::Msg(format!("{e} (batch row {r}, row id {})", rows[r])))?;
    }
    let mut out = vec![0u32; b];
    out.par_iter_mut().enumerate().try_for_each_init(
        || row::Scratch::new(v),
        |scratch, (r, token)| {
            let u = row_uniform(seed, rows[r], step);
            *token = row::sample_row(&logits[r * v..(r + 1) * v], &params[r], u, scratch)
                .map_err(|e| Error::Msg(format!("sample: batch row {r} (row id {}): {e}", rows[r])))?;
            Ok::<(), Error>(())
        },
    )?;
    Ok(out)
}

/// Tensor front end: logits (B, V) of F32, F64 or BF16 on any device -> token ids (B,) U32 on
/// the CPU. F32 CPU logits are read in place; CUDA logits (F32 or BF16) are sampled on the GPU by
/// kernels/sampling.cu (the same token as the CPU for the same (seed, row, step)); others are
/// converted first.
pub fn sample_tensor(logits: &Tensor, params: &[SamplingParams], seed: u64, rows: &[u32], step: u32) -> Result<Tensor> {
    if logits.rank() != 2 {
        return Err(Error::bad_shape("sample", logits.shape(), "logits must be (B, V)"));
    }
    if logits.dtype() == DType::U32 {
        return Err(Error::DTypeMismatch { op: "sample", expected: DType::F32, got: DType::U32 });
    }
    let (b, v) = (logits.dims()[0], logits.dims()[1]);
    if params.len() != b {
        let detail = format!("{} SamplingParams for {b} rows", params.len());
        return Err(Error::shape("sample", logits.shape(), &Shape::from([params.len()]), detail));
    }
    let in_place = {
        let guard = logits.storage();
        match &*guard {
            Storage::Cpu(CpuStorage::F32(x)) => Some(sample(x, v, params, seed, rows, step)?),
            #[cfg(feature = "cuda")]
            Storage::Cuda(g) => Some(crate::backend::cuda::sampling::sample(g, v, params, seed, rows, step)?),
            _ => None,
        }
    };
    let tokens = match in_place {
        Some(t) => t,
        None => sample(&logits.to_vec_f32()?, v, params, seed, rows, step)?,
    };
    Tensor::from_vec_u32(tokens, [b])
}
