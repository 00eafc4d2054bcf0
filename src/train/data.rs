//! Datasets: anything that can say how many examples it has and produce example i, a pure
//! function of i (so data order is a permutation of indices and a run can resume anywhere).
//! An example is next-token pairs: `ids[t]` is the input at t and `targets[t]` the token to
//! predict there, or `IGNORE` (u32::MAX, kiln's cross-entropy ignore index) where no loss is
//! taken: the loss mask. Built in here: a tokenized text split into fixed windows of T + 1
//! tokens (tasks.rs has the algorithmic ones), batching into (B, T) U32 tensors, and the
//! per-epoch permutation (Fisher-Yates driven by Philox keyed by (seed, epoch)).

use super::tokenizer::Tokenizer;
use crate::rng::Philox;
use crate::tensor::Tensor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The target value that takes no loss (kiln's cross-entropy ignore index).
pub const IGNORE: u32 = u32::MAX;

/// One training sequence: `ids` (T) inputs and `targets` (T) next tokens, IGNORE = masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub targets: Vec<u32>,
}

impl Example {
    /// Next-token example of a whole sequence (T + 1 tokens -> T positions), loss only on the
    /// positions whose target index (1..=T) is `>= first_target`.
    pub fn next_token(seq: &[u32], first_target: usize) -> Example {
        let ids = seq[..seq.len().saturating_sub(1)].to_vec();
        let targets = (1..seq.len()).map(|j| if j >= first_target { seq[j] } else { IGNORE }).collect();
        Example { ids, targets }
    }
}

/// A finite, indexable set of examples. `example(i)` must be a pure function of i.
pub trait Dataset {
    fn len(&self) -> usize;
    /// Example i, for i < len(); an index out of range is an error.
    fn example(&self, i: usize) -> Result<Example>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Error for `example(i)` with i out of range.
pub fn index_error(what: &str, i: usize, len: usize) -> Error {
    Error::range("dataset", format!("{what}: example {i} of {len}"))
}

/// A materialised list of examples, usable wherever the trainer wants a `Dataset`.
#[derive(Clone, Debug, Default)]
pub struct Examples(pub Vec<Example>);

impl Dataset for Examples {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn example(&self, i: usize) -> Result<Example> {
        self.0.get(i).cloned().ok_or_else(|| index_error("examples", i, self.0.len()))
    }
}

/// A batch of equal-length examples: ids (B, T) and targets (B, T), both U32.
#[derive(Clone, Debug)]
pub struct Batch {
    pub ids: Tensor,
    pub targets: Tensor,
    /// targets that are not IGNORE (the tokens the loss averages over)
    pub n_targets: usize,
}

impl Batch {
    pub fn new(examples: &[Example]) -> Result<Batch> {
        let (b, t) = (examples.len(), examples.first().map_or(0, |e| e.ids.len()));
        if b == 0 || t == 0 {
            return Err(Error::Msg(format!("batch: needs at least one non-empty example (got {b} examples of length {t})")));
        }
        let (mut ids, mut targets) = (Vec::with_capacity(b * t), Vec::with_capacity(b * t));
        for (i, e) in examples.iter().enumerate() {
            if e.ids.len() != t || e.targets.len() != t {
                return Err(Error::Msg(format!("batch: example {i} has {} ids and {} targets, the first has {t}", e.ids.len(), e.targets.len())));
            }
            ids.extend_from_slice(&e.ids);
            targets.extend_from_slice(&e.targets);
        }
        let n_targets = targets.iter().filter(|&&y| y != IGNORE).count();
        Ok(Batch { ids: Tensor::from_vec_u32(ids, [b, t])?, targets: Tensor::from_vec_u32(targets, [b, t])?, n_targets })
    }

    /// Examples `indices` of `data`, batched.
    pub fn gather(data: &dyn Dataset, indices: &[usize]) -> Result<Batch> {
        Batch::new(&indices.iter().map(|&i| data.example(i)).collect::<Result<Vec<_>>>()?)
    }
}

/// Where the data stream stands: `position` examples of epoch `epoch` consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub epoch: u64,
    pub position: usize,
}

/// The order of examples in epoch `epoch`: a permutation of 0..n, a pure function of
/// (seed, epoch, n). Fisher-Yates from the top; the swap index for slot i comes from Philox
/// block (index = i, stream = epoch, tag = 2) reduced with a 64-bit multiply (no modulo bias
/// worth the name for n < 2^32).
pub fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let g = Philox::new(seed);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let w = g.block(i as u64, epoch as u32, 2);
        let r = (((w[0] as u64) << 32 | w[1] as u64) as u128 * (i as u128 + 1)) >> 64;
        p.swap(i, r as usize);
    }
    p
}

/// A shuffled, endless stream of example indices, epoch after epoch.
#[derive(Clone, Debug)]
pub struct Sampler {
    seed: u64,
    n: usize,
    cursor: Cursor,
    perm: Vec<usize>,
}

impl Sampler {
    pub fn new(seed: u64, n: usize, cursor: Cursor) -> Result<Sampler> {
        if n == 0 {
            return Err(Error::Msg("sampler: the training set is empty".into()));
        }
        if cursor.position > n {
            return Err(Error::range("sampler", format!("cursor position {} is past the {n} examples of an epoch (different data?)", cursor.position)));
        }
        Ok(Sampler { seed, n, cursor, perm: epoch_permutation(seed, cursor.epoch, n) })
    }
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }
    /// The next `k` indices, crossing into the next epoch when this one runs out.
    pub fn take(&mut self, k: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            if self.cursor.position == self.n {
                self.cursor = Cursor { epoch: self.cursor.epoch + 1, position: 0 };
                self.perm = epoch_permutation(self.seed, self.cursor.epoch, self.n);
            }
            out.push(self.perm[self.cursor.position]);
            self.cursor.position += 1;
        }
        out
    }
}

/// A tokenized text cut into windows of T + 1 tokens with stride T (window k covers tokens
/// kT ..= kT + T), so every token but the first is a target exactly once across the windows.
#[derive(Clone, Debug)]
pub struct TextDataset {
    tokens: Vec<u32>,
    seq_len: usize,
    windows: std::ops::Range<usize>,
}

impl TextDataset {
    /// Tokenize `text`; `origin` names it in errors (a path or "built-in corpus").
    pub fn new(text: &str, tokenizer: &Tokenizer, seq_len: usize, origin: &str) -> Result<TextDataset> {
        let err = |d: String| Error::File { path: origin.into(), detail: d };
        if seq_len == 0 {
            return Err(err("seq_len must be at least 1".into()));
        }
        let tokens = tokenizer.encode(text).map_err(|e| err(e.to_string()))?;
        if tokens.len() < seq_len + 1 {
            return Err(err(format!("{} tokens, shorter than one window of seq_len + 1 = {}", tokens.len(), seq_len + 1)));
        }
        let n = (tokens.len() - 1) / seq_len;
        Ok(TextDataset { tokens, seq_len, windows: 0..n })
    }

    /// Read and tokenize a UTF-8 text file.
    pub fn from_file(path: &Path, tokenizer: &Tokenizer, seq_len: usize) -> Result<TextDataset> {
        let text = read_text(path)?;
        Self::new(&text, tokenizer, seq_len, &path.display().to_string())
    }

    /// Split off the last `fraction` of the windows (at least one when fraction > 0) as a
    /// held-out set: (train, eval). Errors if either side would be empty.
    pub fn split(self, fraction: f64) -> Result<(TextDataset, TextDataset)> {
        let n = self.windows.len();
        let n_eval = if fraction > 0.0 { ((n as f64 * fraction).ceil() as usize).max(1) } else { 0 };
        if !(0.0..1.0).contains(&fraction) || n_eval >= n || n_eval == 0 {
            return Err(Error::Msg(format!("text split: eval_fraction {fraction} of {n} windows leaves an empty train or eval set (needs 0 < fraction < 1 and at least 2 windows)")));
        }
        let cut = self.windows.start + n - n_eval;
        let train = TextDataset { tokens: self.tokens.clone(), seq_len: self.seq_len, windows: self.windows.start..cut };
        let eval = TextDataset { tokens: self.tokens, seq_len: self.seq_len, windows: cut..self.windows.end };
        Ok((train, eval))
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

impl Dataset for TextDataset {
    fn len(&self) -> usize {
        self.windows.len()
    }
    fn example(&self, i: usize) -> Result<Example> {
        if i >= self.len() {
            return Err(index_error("text", i, self.len()));
        }
        let s = (self.windows.start + i) * self.seq_len;
        Ok(Example::next_token(&self.tokens[s..s + self.seq_len + 1], 1))
    }
}

/// A file's text, with the path named in every error.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::File { path: path.display().to_string(), detail: format!("cannot read: {e}") })?;
    String::from_utf8(bytes).map_err(|e| Error::File { path: path.display().to_string(), detail: format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()) })
}
