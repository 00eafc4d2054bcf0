//! Generated algorithmic tasks for tests and demos, every example a pure function of a seed:
//! - modular addition (Power et al., "Grokking", 2022): "a + b = c" with c = (a + b) mod p;
//!   tokens 0..p-1 are the numbers, p is '+', p+1 is '='; the loss is taken on c only. The
//!   p^2 pairs are split into train / held-out by a Philox hash of (a, b), fixed by the seed;
//! - copy, reverse, sort: "x1 .. xL | y1 .. yL" with y the copy / reversal / ascending sort of
//!   x over `n_symbols` symbols; token n_symbols is the separator '|'; the loss is on y only.

use super::data::{index_error, Dataset, Example};
use super::tokenizer::Tokenizer;
use crate::rng::Philox;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which side of a task's fixed split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Eval,
}

/// The held-out side of modular addition: pairs whose hash falls at or above train_fraction.
#[derive(Clone, Debug)]
pub struct ModAdd {
    pub p: u32,
    pairs: Vec<(u32, u32)>,
}

impl ModAdd {
    /// The pairs of `split`, in (a, b) order. p >= 2; 0 < train_fraction < 1.
    pub fn new(p: u32, train_fraction: f64, seed: u64, split: Split) -> Result<ModAdd> {
        if !(2..=4096).contains(&p) {
            return Err(Error::Msg(format!("mod_add field `p`: {p} must be in 2..=4096")));
        }
        if !(train_fraction > 0.0 && train_fraction < 1.0) {
            return Err(Error::Msg(format!("mod_add field `train_fraction`: {train_fraction} must be in (0, 1)")));
        }
        let g = Philox::new(seed);
        let in_train = |a: u32, b: u32| crate::rng::u32_to_unit_f32(g.block((a * p + b) as u64, 0, 3)[0]) < train_fraction as f32;
        let pairs: Vec<(u32, u32)> = (0..p).flat_map(|a| (0..p).map(move |b| (a, b))).filter(|&(a, b)| in_train(a, b) == (split == Split::Train)).collect();
        if pairs.is_empty() {
            return Err(Error::Msg(format!("mod_add: p = {p} with train_fraction {train_fraction} leaves the {split:?} split empty")));
        }
        Ok(ModAdd { p, pairs })
    }

    /// "0" .. "p-1", "+", "=".
    pub fn tokenizer(p: u32) -> Tokenizer {
        let mut symbols: Vec<String> = (0..p).map(|i| i.to_string()).collect();
        symbols.extend(["+".to_string(), "=".to_string()]);
        Tokenizer::Symbols { symbols }
    }

    pub fn pairs(&self) -> &[(u32, u32)] {
        &self.pairs
    }
}

impl Dataset for ModAdd {
    fn len(&self) -> usize {
        self.pairs.len()
    }
    /// ids [a, +, b, =], targets [-, -, -, c] (- = IGNORE).
    fn example(&self, i: usize) -> Result<Example> {
        let &(a, b) = self.pairs.get(i).ok_or_else(|| index_error("mod_add", i, self.len()))?;
        let p = self.p;
        Ok(Example::next_token(&[a, p, b, p + 1, (a + b) % p], 4))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqTask {
    Copy,
    Reverse,
    Sort,
}

/// `n` examples of a sequence task; example i is drawn from Philox(seed) at (i, split).
#[derive(Clone, Debug)]
pub struct SeqDataset {
    pub task: SeqTask,
    /// symbols in the input (and in the answer)
    pub input_len: usize,
    pub n_symbols: u32,
    n: usize,
    seed: u64,
    split: Split,
}

impl SeqDataset {
    pub fn new(task: SeqTask, len: usize, n_symbols: u32, n: usize, seed: u64, split: Split) -> Result<SeqDataset> {
        if len == 0 || len > 4096 {
            return Err(Error::Msg(format!("{task:?} field `len`: {len} must be in 1..=4096")));
        }
        if n_symbols < 2 {
            return Err(Error::Msg(format!("{task:?} field `n_symbols`: {n_symbols} must be at least 2")));
        }
        if n == 0 {
            return Err(Error::Msg(format!("{task:?}: the {split:?} split has no examples")));
        }
        Ok(SeqDataset { task, input_len: len, n_symbols, n, seed, split })
    }

    /// "0" .. "n_symbols-1", "|".
    pub fn tokenizer(n_symbols: u32) -> Tokenizer {
        let mut symbols: Vec<String> = (0..n_symbols).map(|i| i.to_string()).collect();
        symbols.push("|".into());
        Tokenizer::Symbols { symbols }
    }

    /// The 2 len + 1 tokens of example i: input, separator, answer.
    pub fn sequence(&self, i: usize) -> Vec<u32> {
        let g = Philox::new(self.seed);
        let stream = |k: usize| ((self.split == Split::Eval) as u32) << 16 | (k / 4) as u32;
        let x: Vec<u32> = (0..self.input_len).map(|k| ((g.block(i as u64, stream(k), 4)[k % 4] as u64 * self.n_symbols as u64) >> 32) as u32).collect();
        let mut y = x.clone();
        match self.task {
            SeqTask::Copy => {}
            SeqTask::Reverse => y.reverse(),
            SeqTask::Sort => y.sort_unstable(),
        }
        let mut seq = x;
        seq.push(self.n_symbols);
        seq.extend(y);
        seq
    }
}

impl Dataset for SeqDataset {
    fn len(&self) -> usize {
        self.n
    }
    /// ids: the first 2 len tokens; targets: IGNORE on the input, the answer after the separator.
    fn example(&self, i: usize) -> Result<Example> {
        if i >= self.n {
            return Err(index_error("sequence task", i, self.n));
        }
        Ok(Example::next_token(&self.sequence(i), self.input_len + 1))
    }
}
