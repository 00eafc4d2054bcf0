//! The six task generators of Zhong & Andreas, "Algorithmic Capabilities of Random Transformers"
//! (2024), written for kiln. Every task is a set of next-token examples whose loss mask keeps only
//! the answer positions, so one exact-match accuracy (every answer token right) scores them all.
//! Sequences of different lengths are LEFT-padded with a PAD token, so the answer always sits at
//! the end and a batch is one (B, T) tensor.
//!
//!   modular addition   [a, b] -> (a + b) mod p, read at b; all p^2 pairs, a fixed 95/5 split by seed
//!   needle             [PAD.., k1, v1, .., kn, vn, k] -> the v paired with k (n <= max_pairs)
//!   decimal addition   [a digits, +, b digits, =] -> the digits of a + b, least significant first
//!   parentheses        [PAD.., ( ) ( .., ?] -> yes / no: is the string balanced?
//!   memorisation       [x1, x2] -> a uniformly random label; scored on the training set itself
//!   language modelling  sequences of an order-2 Markov source; the loss on every token with a full
//!                      context, scored by held-out bits per token against the source's entropy
//!
//! Every example is a pure function of (seed, split, index) through Philox (src/rng.rs).

use crate::rng::{below, Philox};
use crate::train::{epoch_permutation, Example, IGNORE};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which task, with its own size knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskSpec {
    /// (a + b) mod p over every pair; `test_fraction` of the p^2 pairs held out.
    ModAdd { p: u32, test_fraction: f64 },
    /// `max_pairs` key/value pairs at most; keys from `n_keys` symbols, values from `n_values`.
    Needle { max_pairs: usize, n_keys: u32, n_values: u32, n_train: usize, n_test: usize },
    /// Two `digits`-digit numbers; the answer has digits + 1 digits, reversed.
    DecimalAdd { digits: usize, n_train: usize, n_test: usize },
    /// Strings of '(' and ')' of even length up to `max_len`; half balanced.
    Parens { max_len: usize, n_train: usize, n_test: usize },
    /// `n_examples` distinct pairs over `n_inputs` symbols, each with one of `n_labels` labels.
    Memorise { n_inputs: u32, n_labels: u32, n_examples: usize },
    /// `seq_len`-token sequences of an order-2 Markov source over `symbols` tokens (see `lm`).
    Lm { symbols: u32, seq_len: usize, n_train: usize, n_test: usize },
}

/// The task names `--task` accepts, in the order `all` runs them.
pub const TASK_NAMES: [&str; 6] = ["mod_add", "needle", "decimal_add", "parens", "memorise", "lm"];

impl TaskSpec {
    pub fn name(&self) -> &'static str {
        match self {
            TaskSpec::ModAdd { .. } => "mod_add",
            TaskSpec::Needle { .. } => "needle",
            TaskSpec::DecimalAdd { .. } => "decimal_add",
            TaskSpec::Parens { .. } => "parens",
            TaskSpec::Memorise { .. } => "memorise",
            TaskSpec::Lm { .. } => "lm",
        }
    }

    /// Build the train and test examples (memorisation: test = train).
    pub fn generate(&self, seed: u64) -> Result<TaskData> {
        match *self {
            TaskSpec::ModAdd { p, test_fraction } => mod_add(p, test_fraction, seed),
            TaskSpec::Needle { max_pairs, n_keys, n_values, n_train, n_test } => needle(max_pairs, n_keys, n_values, n_train, n_test, seed),
            TaskSpec::DecimalAdd { digits, n_train, n_test } => decimal_add(digits, n_train, n_test, seed),
            TaskSpec::Parens { max_len, n_train, n_test } => parens(max_len, n_train, n_test, seed),
            TaskSpec::Memorise { n_inputs, n_labels, n_examples } => memorise(n_inputs, n_labels, n_examples, seed),
            TaskSpec::Lm { symbols, seq_len, n_train, n_test } => lm(symbols, seq_len, n_train, n_test, seed),
        }
    }
}

/// A task's examples: every example has T = `seq_len` ids and T targets (IGNORE off the answer).
#[derive(Clone, Debug)]
pub struct TaskData {
    pub name: &'static str,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub train: Examples,
    pub test: Examples,
}

pub use crate::train::Examples;

fn bad(task: &str, field: &str, why: String) -> Error {
    Error::Msg(format!("random-transformers task {task} field `{field}`: {why}"))
}


/// `count` random words for (split, index): Philox blocks at counter (index, split, tag 7 + j).
fn words(g: &Philox, split: u32, index: usize, count: usize) -> Vec<u32> {
    (0..count.div_ceil(4) as u32).flat_map(|j| g.block(index as u64, split, 7 + j)).take(count).collect()
}

/// Left-pad `seq` (the full sequence incl. its answer) to `len` + 1 tokens with `pad`, then cut
/// it into ids / targets with the loss on its last `answer_len` tokens.
fn padded_example(seq: &[u32], len: usize, pad: u32, answer_len: usize) -> Example {
    let mut full = vec![pad; len + 1 - seq.len()];
    full.extend_from_slice(seq);
    Example::next_token(&full, len + 1 - answer_len)
}

// ---- modular addition --------------------------------------------------------------------------

/// Tokens 0..p are the numbers. ids (2) [a, b], targets [-, c]: the answer is read at b's
/// position, as in the paper's code (it feeds [a, b, c] and scores the logits at b); there is no
/// '=' token. The p^2 pairs are permuted by (seed, epoch 0); the first round(test_fraction p^2)
/// are the test split.
fn mod_add(p: u32, test_fraction: f64, seed: u64) -> Result<TaskData> {
    if !(2..=1024).contains(&p) {
        return Err(bad("mod_add", "p", format!("{p} must be in 2..=1024")));
    }
    let n = (p * p) as usize;
    let n_test = (test_fraction * n as f64).round() as usize;
    if !(test_fraction > 0.0 && test_fraction < 1.0) || n_test == 0 || n_test == n {
        return Err(bad("mod_add", "test_fraction", format!("{test_fraction} of {n} pairs leaves an empty split")));
    }
    let order = epoch_permutation(seed, 0, n);
    let ex = |k: usize| {
        let (a, b) = ((k / p as usize) as u32, (k % p as usize) as u32);
        Example::next_token(&[a, b, (a + b) % p], MOD_ADD_LEN)
    };
    let test = order[..n_test].iter().map(|&k| ex(k)).collect();
    let train = order[n_test..].iter().map(|&k| ex(k)).collect();
    Ok(TaskData { name: "mod_add", vocab_size: p as usize, seq_len: MOD_ADD_LEN, train: Examples(train), test: Examples(test) })
}

/// Input length of a modular-addition example: [a, b].
pub const MOD_ADD_LEN: usize = 2;

// ---- needle in a haystack ----------------------------------------------------------------------

/// Keys 0..K, values K..K+V, PAD = K+V. T = 2 max_pairs + 1; the answer is the last target.
/// n is uniform in 1..=max_pairs, the n keys are distinct, the query is one of them.
fn needle(max_pairs: usize, n_keys: u32, n_values: u32, n_train: usize, n_test: usize, seed: u64) -> Result<TaskData> {
    if max_pairs == 0 || max_pairs > n_keys as usize {
        return Err(bad("needle", "max_pairs", format!("{max_pairs} must be in 1..=n_keys ({n_keys})")));
    }
    if n_values < 2 || n_train == 0 || n_test == 0 {
        return Err(bad("needle", "n_values/n_train/n_test", "need n_values >= 2 and non-empty splits".into()));
    }
    let (k, pad, t) = (n_keys, n_keys + n_values, 2 * max_pairs + 1);
    let g = Philox::new(seed);
    let make = |split: u32, i: usize| {
        let w = words(&g, split, i, 2 + 2 * max_pairs);
        let n = 1 + below(w[0], max_pairs as u64) as usize;
        // the first n keys of a partial Fisher-Yates shuffle of 0..K
        let mut keys: Vec<u32> = (0..k).collect();
        for j in 0..n {
            let r = j + below(w[2 + j], (k as usize - j) as u64) as usize;
            keys.swap(j, r);
        }
        let mut seq = Vec::with_capacity(2 * n + 2);
        let mut values = Vec::with_capacity(n);
        for (j, &key) in keys[..n].iter().enumerate() {
            let v = k + below(w[2 + max_pairs + j], n_values as u64) as u32;
            seq.extend([key, v]);
            values.push(v);
        }
        let q = below(w[1], n as u64) as usize;
        seq.extend([keys[q], values[q]]);
        padded_example(&seq, t, pad, 1)
    };
    let train = (0..n_train).map(|i| make(0, i)).collect();
    let test = (0..n_test).map(|i| make(1, i)).collect();
    Ok(TaskData { name: "needle", vocab_size: pad as usize + 1, seq_len: t, train: Examples(train), test: Examples(test) })
}

// ---- decimal addition --------------------------------------------------------------------------

/// Digits 0..9, '+' = 10, '=' = 11. Sequence: a (most significant first, zero-padded to `digits`),
/// +, b, =, then c = a + b as digits + 1 digits, least significant first. T = 3 digits + 2.
fn decimal_add(digits: usize, n_train: usize, n_test: usize, seed: u64) -> Result<TaskData> {
    if !(1..=18).contains(&digits) || n_train == 0 || n_test == 0 {
        return Err(bad("decimal_add", "digits", format!("{digits} must be in 1..=18 with non-empty splits")));
    }
    let g = Philox::new(seed);
    let top = 10u64.pow(digits as u32);
    let to_digits = |x: u64, n: usize| -> Vec<u32> { (0..n).map(|i| (x / 10u64.pow(i as u32) % 10) as u32).collect() }; // least significant first
    let make = |split: u32, i: usize| {
        let w = words(&g, split, i, 4);
        let draw = |hi: u32, lo: u32| ((((hi as u128) << 32 | lo as u128) * top as u128) >> 64) as u64;
        let (a, b) = (draw(w[0], w[1]), draw(w[2], w[3]));
        let mut seq: Vec<u32> = to_digits(a, digits).into_iter().rev().collect();
        seq.push(10);
        seq.extend(to_digits(b, digits).into_iter().rev());
        seq.push(11);
        seq.extend(to_digits(a + b, digits + 1));
        Example::next_token(&seq, 2 * digits + 2)
    };
    let train = (0..n_train).map(|i| make(0, i)).collect();
    let test = (0..n_test).map(|i| make(1, i)).collect();
    Ok(TaskData { name: "decimal_add", vocab_size: 12, seq_len: 3 * digits + 2, train: Examples(train), test: Examples(test) })
}

// ---- parenthesis balancing ---------------------------------------------------------------------

pub const OPEN: u32 = 0;
pub const CLOSE: u32 = 1;
pub const PAREN_PAD: u32 = 2;
pub const PAREN_QUERY: u32 = 3;
pub const PAREN_NO: u32 = 4;
pub const PAREN_YES: u32 = 5;

/// Is a string of OPEN / CLOSE tokens balanced (the depth never drops below 0 and ends at 0)?
pub fn is_balanced(s: &[u32]) -> bool {
    let mut depth = 0i64;
    for &c in s {
        depth += if c == OPEN { 1 } else { -1 };
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// T = max_len + 1: [PAD.., string, ?] -> yes/no. Length 2m with m uniform in 1..=max_len/2.
/// Positives: a random walk that never goes below 0 and closes in time. Negatives, half each:
/// the same walk with one symbol flipped (wrong counts), or a shuffle of m '(' and m ')' that
/// fails the prefix condition (right counts, so counting alone cannot tell).
fn parens(max_len: usize, n_train: usize, n_test: usize, seed: u64) -> Result<TaskData> {
    if !(2..=512).contains(&max_len) || n_train == 0 || n_test == 0 {
        return Err(bad("parens", "max_len", format!("{max_len} must be in 2..=512 with non-empty splits")));
    }
    let g = Philox::new(seed);
    let make = |split: u32, i: usize| {
        let mut w = words(&g, split, i, 3 + 2 * max_len).into_iter();
        let mut next = || w.next().unwrap_or(0);
        let len = 2 * (1 + below(next(), (max_len / 2) as u64) as usize);
        let kind = below(next(), 4); // 0, 1: balanced; 2: flipped; 3: shuffled
        let mut s = Vec::with_capacity(len);
        let mut depth = 0usize;
        for j in 0..len {
            let left = len - j;
            let open = depth == 0 || (depth < left && below(next(), 2) == 1);
            s.push(if open { OPEN } else { CLOSE });
            depth = if open { depth + 1 } else { depth - 1 };
        }
        if kind == 2 {
            let at = below(next(), len as u64) as usize;
            s[at] = 1 - s[at];
        } else if kind == 3 {
            // Fisher-Yates over the balanced string; rotate by one on the rare balanced outcome
            for j in (1..len).rev() {
                s.swap(j, below(next(), j as u64 + 1) as usize);
            }
            if is_balanced(&s) {
                let first_close = s.iter().position(|&c| c == CLOSE).unwrap_or(0);
                s.rotate_left(first_close);
            }
        }
        let label = if is_balanced(&s) { PAREN_YES } else { PAREN_NO };
        s.extend([PAREN_QUERY, label]);
        padded_example(&s, max_len + 1, PAREN_PAD, 1)
    };
    let train = (0..n_train).map(|i| make(0, i)).collect();
    let test = (0..n_test).map(|i| make(1, i)).collect();
    Ok(TaskData { name: "parens", vocab_size: 6, seq_len: max_len + 1, train: Examples(train), test: Examples(test) })
}

// ---- memorisation ------------------------------------------------------------------------------

/// Inputs 0..I, labels I..I+L. ids (2) [x1, x2], targets [-, label]; n distinct pairs chosen by a
/// seeded permutation of the I^2 pairs. Test = train: the score is how much was memorised.
fn memorise(n_inputs: u32, n_labels: u32, n_examples: usize, seed: u64) -> Result<TaskData> {
    let pairs = (n_inputs as usize).pow(2);
    if n_labels < 2 || n_examples == 0 || n_examples > pairs {
        return Err(bad("memorise", "n_examples", format!("{n_examples} must be in 1..={pairs} (n_inputs^2), with n_labels >= 2")));
    }
    let g = Philox::new(seed);
    let order = epoch_permutation(seed, 1, pairs);
    let ex: Vec<Example> = order[..n_examples]
        .iter()
        .map(|&k| {
            let (a, b) = ((k / n_inputs as usize) as u32, (k % n_inputs as usize) as u32);
            let label = n_inputs + below(g.block(k as u64, 2, 7)[0], n_labels as u64) as u32;
            Example::next_token(&[a, b, label], 2)
        })
        .collect();
    Ok(TaskData { name: "memorise", vocab_size: (n_inputs + n_labels) as usize, seq_len: 2, train: Examples(ex.clone()), test: Examples(ex) })
}

// ---- language modelling ------------------------------------------------------------------------

/// Each context continues with one of three tokens, with these probabilities.
pub const LM_PROBS: [f64; 3] = [0.6, 0.3, 0.1];

/// The source's entropy rate in bits per token: H(LM_PROBS) = 1.295, the same in every context,
/// so no model can score below it on average.
pub fn lm_entropy_bits() -> f64 {
    LM_PROBS.iter().map(|p| -p * p.log2()).sum()
}

/// The order-2 Markov source: for each context (a, b), the three distinct tokens that may follow,
/// most likely first, indexed a * symbols + b. Drawn from the seed (Philox tag 90).
pub fn lm_source(symbols: u32, seed: u64) -> Vec<[u32; 3]> {
    let g = Philox::new(seed ^ 0x4c4d);
    (0..(symbols * symbols) as u64)
        .map(|c| {
            let w = g.block(c, 0, 90);
            let mut next = [0u32; 3];
            let mut pool: Vec<u32> = (0..symbols).collect();
            for (j, slot) in next.iter_mut().enumerate() {
                let r = j + below(w[j], (symbols as usize - j) as u64) as usize;
                pool.swap(j, r);
                *slot = pool[j];
            }
            next
        })
        .collect()
}

/// Tokens 0..symbols. A sequence of seq_len + 1 tokens: the first two uniform, each next one
/// drawn from its context's three (LM_PROBS); ids are its first seq_len tokens and every
/// position from the second predicts the next token (x2 onwards, each with its full context).
fn lm(symbols: u32, seq_len: usize, n_train: usize, n_test: usize, seed: u64) -> Result<TaskData> {
    if !(3..=256).contains(&symbols) {
        return Err(bad("lm", "symbols", format!("{symbols} must be in 3..=256")));
    }
    if seq_len < 3 || n_train == 0 || n_test == 0 {
        return Err(bad("lm", "seq_len/n_train/n_test", "need seq_len >= 3 and non-empty splits".into()));
    }
    let source = lm_source(symbols, seed);
    let g = Philox::new(seed);
    let make = |split: u32, i: usize| {
        let w = words(&g, split, i, seq_len + 1);
        let mut x = vec![below(w[0], symbols as u64) as u32, below(w[1], symbols as u64) as u32];
        for t in 2..=seq_len {
            let u = w[t] as f64 / 4294967296.0;
            let pick = if u < LM_PROBS[0] { 0 } else if u < LM_PROBS[0] + LM_PROBS[1] { 1 } else { 2 };
            x.push(source[(x[t - 2] * symbols + x[t - 1]) as usize][pick]);
        }
        Example::next_token(&x, 2)
    };
    let train = (0..n_train).map(|i| make(20, i)).collect();
    let test = (0..n_test).map(|i| make(21, i)).collect();
    Ok(TaskData { name: "lm", vocab_size: symbols as usize, seq_len, train: Examples(train), test: Examples(test) })
}

/// The cross-entropy (bits per scored token) of the best model that reads only the previous
/// token, fitted on `train` and scored on `test` (add-0.01 smoothed counts): what an order-2
/// context is worth beyond an order-1 one.
pub fn lm_bigram_bits(train: &Examples, test: &Examples, symbols: usize) -> f64 {
    let mut counts = vec![0.01f64; symbols * symbols];
    let pairs = |d: &Examples| -> Vec<(usize, usize)> { d.0.iter().flat_map(|e| e.ids.iter().zip(&e.targets).filter(|(_, &y)| y != IGNORE).map(|(&p, &y)| (p as usize, y as usize)).collect::<Vec<_>>()).collect() };
    for (p, y) in pairs(train) {
        counts[p * symbols + y] += 1.0;
    }
    let test = pairs(test);
    let bits: f64 = test.iter().map(|&(p, y)| -(counts[p * symbols + y] / counts[p * symbols..(p + 1) * symbols].iter().sum::<f64>()).log2()).sum();
    bits / test.len().max(1) as f64
}

/// Bits a model holds about labels drawn uniformly from `n_labels` classes when it gets a
/// fraction `acc` of n examples right: n [log2 L - H(acc) - (1 - acc) log2(L - 1)], the mutual
/// information of a symmetric channel with that accuracy (0 at chance, n log2 L when perfect).
pub fn memorised_bits(n: usize, n_labels: u32, acc: f64) -> f64 {
    let l = n_labels as f64;
    if acc <= 1.0 / l {
        return 0.0;
    }
    let h = |x: f64| if x <= 0.0 || x >= 1.0 { 0.0 } else { -x * x.log2() - (1.0 - x) * (1.0 - x).log2() };
    n as f64 * (l.log2() - h(acc) - (1.0 - acc) * (l - 1.0).log2())
}

/// The answer tokens of an example (its targets that are not IGNORE).
pub fn answer(e: &Example) -> Vec<u32> {
    e.targets.iter().copied().filter(|&y| y != IGNORE).collect()
}
