//! Addition of mixed difficulty, with an exact verifier.
//!
//! A query adds two n-digit numbers, n uniform in 1..=D (zero-padded to n digits):
//!   prompt  [PAD x 2(D - n), a digits, PLUS, b digits, EQUALS]     2D + 2 tokens, left-padded
//!   answer  the n + 1 digits of a + b, least significant first, then EOS
//! Left padding puts every prompt's end at the same position, so one (B, 2D + 2) batch prefills
//! any mix of difficulties. A sample is correct when its tokens up to the first EOS are exactly
//! the answer's digits.

use crate::rng::Philox;
use crate::train::{Example, Examples, IGNORE};
use crate::{Error, Result};

pub const PLUS: u32 = 10;
pub const EQUALS: u32 = 11;
pub const EOS: u32 = 12;
pub const PAD: u32 = 13;
pub const VOCAB: usize = 14;

/// The word of every token, for a checkpoint's vocabulary (`--model DIR`).
pub fn words() -> Vec<String> {
    (0..10).map(|d| d.to_string()).chain(["+", "=", ".", "_"].map(String::from)).collect()
}

/// One addition problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// digits per operand (the difficulty)
    pub n: usize,
    pub a: u64,
    pub b: u64,
}

/// The digits of x, least significant first, exactly `n` of them.
fn digits_lsb(x: u64, n: usize) -> Vec<u32> {
    (0..n).map(|i| (x / 10u64.pow(i as u32) % 10) as u32).collect()
}

impl Query {
    /// The prompt, left-padded to 2 max_digits + 2 tokens.
    pub fn prompt(&self, max_digits: usize) -> Vec<u32> {
        let mut p = vec![PAD; 2 * (max_digits - self.n)];
        p.extend(digits_lsb(self.a, self.n).into_iter().rev());
        p.push(PLUS);
        p.extend(digits_lsb(self.b, self.n).into_iter().rev());
        p.push(EQUALS);
        p
    }

    /// The answer tokens: n + 1 digits of a + b, least significant first, then EOS.
    pub fn answer(&self) -> Vec<u32> {
        let mut ans = digits_lsb(self.a + self.b, self.n + 1);
        ans.push(EOS);
        ans
    }

    /// Is a generated continuation right? Its tokens up to and including the first EOS must be
    /// the answer; anything after that EOS is ignored.
    pub fn verify(&self, generated: &[u32]) -> bool {
        let end = generated.iter().position(|&t| t == EOS).map_or(generated.len(), |i| i + 1);
        generated[..end] == self.answer()[..]
    }

    /// The training example: prompt and answer, the loss on the answer only, right-padded to
    /// `seq_len(max_digits)` positions with PAD inputs and IGNORE targets.
    pub fn example(&self, max_digits: usize) -> Example {
        let prompt = self.prompt(max_digits);
        let mut full = prompt.clone();
        full.extend(self.answer());
        let t = seq_len(max_digits);
        let mut ids = full[..full.len() - 1].to_vec();
        let mut targets: Vec<u32> = (1..full.len()).map(|j| if j >= prompt.len() { full[j] } else { IGNORE }).collect();
        ids.resize(t, PAD);
        targets.resize(t, IGNORE);
        Example { ids, targets }
    }
}

/// Positions of a training example: the prompt, then the answer's n + 1 digits and EOS, less one.
pub fn seq_len(max_digits: usize) -> usize {
    3 * max_digits + 3
}

/// `count` queries for (seed, split): n uniform in 1..=max_digits, a and b uniform below 10^n.
pub fn queries(max_digits: usize, count: usize, seed: u64, split: u32) -> Result<Vec<Query>> {
    if !(1..=9).contains(&max_digits) {
        return Err(Error::Msg(format!("adaptive-compute: max_digits {max_digits} must be in 1..=9")));
    }
    let g = Philox::new(seed);
    Ok((0..count)
        .map(|i| {
            let w = g.block(i as u64, split, 5);
            let n = 1 + ((w[0] as u64 * max_digits as u64) >> 32) as usize;
            let top = 10u64.pow(n as u32);
            let below = |x: u32| (x as u64 * top) >> 32;
            Query { n, a: below(w[1]), b: below(w[2]) }
        })
        .collect())
}

/// Training examples of `count` queries.
pub fn training_set(max_digits: usize, count: usize, seed: u64) -> Result<Examples> {
    Ok(Examples(queries(max_digits, count, seed, 0)?.iter().map(|q| q.example(max_digits)).collect()))
}
