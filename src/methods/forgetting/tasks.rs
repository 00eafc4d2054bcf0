//! The synthetic multiple-choice tasks a tiny LM learns and then forgets.
//!
//! Every example is one sequence over one shared vocabulary:
//!   ids     [TASK_t, x1, .., x7, QUERY]        x_i digits 0..9, TASK_t names the task
//!   target  the label token L_y at QUERY's position (IGNORE elsewhere)
//! The label tokens L0..L3 are shared: every task answers with the first k of them, as multiple-
//! choice benchmarks share "A/B/C/D". A prediction is the argmax over the task's k label logits.
//!
//!   first       x1 mod 4                                    k = 4   (a lookup)
//!   majority    more than half of the digits are >= 5        k = 2   (counting)
//!   compare     x1 < x7, x1 = x7 or x1 > x7                  k = 3   (two positions)
//!   contains    some digit is a 7                            k = 2   (search)
//!   max_bucket  max digit in 0-5, 6-7, 8 or 9                k = 4   (a reduction)
//!   facts       a fixed table's answer for the key (x1, x2)   k = 4   (knowledge, not a rule)
//!
//! The five rules can be answered for any input; `facts` only by having learned the table.
//! Pretraining asks about all 100 keys; a quarter of them are the forgetting keys, and only they
//! appear in the forgetting set, while held-out and probe examples ask about the other keys (with
//! fresh distractor digits x3..x7): does forgetting some facts forget others? (The paper's
//! science questions, which stay answered after forgetting, against entailment, which does not.)
//!
//! Labels are balanced: each example draws its label uniformly, then digits until the rule gives
//! that label, so chance is exactly 1/k on every split. The splits (pretraining, forgetting set,
//! held-out, probe fit, probe test) never share an input. Everything is a pure function of the
//! seed through Philox (src/rng.rs).

use crate::rng::{below, Philox};
use crate::train::{Example, IGNORE};
pub use crate::train::Examples;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;

/// Digits per example.
pub const DIGITS: usize = 7;
/// Sequence length: task token, digits, query.
pub const SEQ_LEN: usize = DIGITS + 2;
/// Token ids: digits 0..10, labels 10..14, the query 14, task tokens from 15.
pub const LABEL0: u32 = 10;
pub const MAX_LABELS: usize = 4;
pub const QUERY: u32 = 14;
pub const TASK0: u32 = 15;

/// The tasks, in the order every table lists them.
pub const TASK_NAMES: [&str; 6] = ["first", "majority", "compare", "contains", "max_bucket", "facts"];

/// The word of every token, for a checkpoint's vocabulary (`--model DIR`): digits, the labels
/// as A-D, the query, then the tasks' names.
pub fn words(names: &[&str]) -> Vec<String> {
    let fixed = (0..10).map(|d| d.to_string()).chain(["A", "B", "C", "D", "Answer"].map(String::from));
    fixed.chain(names.iter().map(|n| n.replace('_', " "))).collect()
}

/// Vocabulary size for `n_tasks` tasks.
pub fn vocab_size(n_tasks: usize) -> usize {
    TASK0 as usize + n_tasks
}

/// Number of answer choices of task `name`.
pub fn choices(name: &str) -> Result<usize> {
    Ok(match name {
        "first" | "max_bucket" | "facts" => 4,
        "compare" => 3,
        "majority" | "contains" => 2,
        other => return Err(unknown(other)),
    })
}

fn unknown(name: &str) -> Error {
    Error::Msg(format!("forgetting: unknown task \"{name}\" (expected {})", TASK_NAMES.join(", ")))
}

/// The true label of digits `x` under task `name`.
pub fn label(name: &str, x: &[u32]) -> Result<usize> {
    if x.len() != DIGITS || x.iter().any(|&d| d > 9) {
        return Err(Error::Msg(format!("forgetting: an input is {DIGITS} digits 0..9, got {x:?}")));
    }
    Ok(match name {
        "first" => x[0] as usize % 4,
        "majority" => (2 * x.iter().filter(|&&d| d >= 5).count() > DIGITS) as usize,
        "compare" => match x[0].cmp(&x[DIGITS - 1]) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => 1,
            std::cmp::Ordering::Greater => 2,
        },
        "contains" => x.contains(&7) as usize,
        "max_bucket" => match x.iter().max().copied().unwrap_or(0) {
            0..=5 => 0,
            6 | 7 => 1,
            8 => 2,
            _ => 3,
        },
        "facts" => fact(x).0,
        other => return Err(unknown(other)),
    })
}

/// The facts table: key x1 x2 (0..100) -> (answer, is a forgetting key). A fixed permutation of
/// the keys (Philox, constant seed) lists them; a key's answer is its place mod 4, and every
/// fourth group of four is a forgetting key, so both key sets hold each answer equally often.
pub fn fact(x: &[u32]) -> (usize, bool) {
    static TABLE: std::sync::OnceLock<Vec<(usize, bool)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let order = crate::train::epoch_permutation(0xfac7, 0, 100);
        let mut t = vec![(0, false); 100];
        order.iter().enumerate().for_each(|(place, &key)| t[key] = (place % 4, (place / 4) % 4 == 0));
        t
    });
    table[(x[0] * 10 + x[1]) as usize]
}

/// May an input with `digits` go into `split`? Only `facts` restricts: the forgetting set asks
/// about the forgetting keys only, held-out and probe splits about the others, pretraining all.
fn allowed(name: &str, split: Split, digits: &[u32]) -> bool {
    if name != "facts" {
        return true;
    }
    let forget_key = fact(digits).1;
    match split {
        Split::Pretrain => true,
        Split::Forget => forget_key,
        Split::Other => !forget_key,
    }
}

#[derive(Clone, Copy)]
enum Split {
    Pretrain,
    Forget,
    Other,
}

/// One labelled input of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// index of the task in the run's task list (its TASK token is TASK0 + task)
    pub task: usize,
    pub digits: Vec<u32>,
    pub label: usize,
}

impl Item {
    /// The training example with answer `label` (the true one, or a random one when forgetting).
    pub fn example(&self, label: usize) -> Example {
        let mut ids = Vec::with_capacity(SEQ_LEN);
        ids.push(TASK0 + self.task as u32);
        ids.extend_from_slice(&self.digits);
        ids.push(QUERY);
        let mut targets = vec![IGNORE; SEQ_LEN];
        targets[SEQ_LEN - 1] = LABEL0 + label as u32;
        Example { ids, targets }
    }
}

/// A task's five disjoint splits.
#[derive(Clone, Debug)]
pub struct TaskSplits {
    pub name: &'static str,
    pub k: usize,
    pub pretrain: Vec<Item>,
    /// the examples fine-tuned on with random labels
    pub forget: Vec<Item>,
    pub heldout: Vec<Item>,
    pub probe_fit: Vec<Item>,
    pub probe_test: Vec<Item>,
}

/// Split sizes per task.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sizes {
    pub pretrain: usize,
    pub forget: usize,
    pub heldout: usize,
    pub probe_fit: usize,
    pub probe_test: usize,
}

/// Most distinct inputs one task may draw: far below the 10^7 possible, so drawing stays quick.
pub const MAX_ITEMS: usize = 1_000_000;

/// Draw every split of every task in `names`; task i is TASK0 + i.
pub fn generate(names: &[&'static str], sizes: Sizes, seed: u64) -> Result<Vec<TaskSplits>> {
    if names.is_empty() {
        return Err(Error::Msg("forgetting: no tasks".into()));
    }
    let total = sizes.pretrain + sizes.forget + sizes.heldout + sizes.probe_fit + sizes.probe_test;
    if total > MAX_ITEMS || sizes.forget == 0 || sizes.heldout == 0 || sizes.probe_fit == 0 || sizes.probe_test == 0 {
        return Err(Error::Msg(format!("forgetting: split sizes {sizes:?} must be >= 1 each (pretraining may be 0) and {MAX_ITEMS} at most in all per task")));
    }
    let g = Philox::new(seed);
    let mut out = Vec::new();
    for (t, &name) in names.iter().enumerate() {
        let k = choices(name)?;
        let mut seen = HashSet::new();
        let mut counter = 0u64;
        let mut draw = |n: usize, split: Split| -> Result<Vec<Item>> {
            let mut items = Vec::with_capacity(n);
            while items.len() < n {
                let want = below(g.block(counter, t as u32, 1)[0], k as u64) as usize;
                counter += 1;
                // Rejection: at most 1 / P(rarest label) tries on average (max_bucket 0: ~36).
                for _ in 0..100_000 {
                    let w = g.block(counter, t as u32, 2);
                    let w2 = g.block(counter, t as u32, 3);
                    counter += 1;
                    let digits: Vec<u32> = w.iter().chain(&w2).take(DIGITS).map(|&v| below(v, 10) as u32).collect();
                    if label(name, &digits)? == want && allowed(name, split, &digits) {
                        if seen.insert(digits.clone()) {
                            items.push(Item { task: t, digits, label: want });
                        }
                        break;
                    }
                }
            }
            Ok(items)
        };
        let forget = draw(sizes.forget, Split::Forget)?;
        let (heldout, probe_fit, probe_test) = (draw(sizes.heldout, Split::Other)?, draw(sizes.probe_fit, Split::Other)?, draw(sizes.probe_test, Split::Other)?);
        let pretrain = draw(sizes.pretrain, Split::Pretrain)?;
        out.push(TaskSplits { name, k, pretrain, forget, heldout, probe_fit, probe_test });
    }
    Ok(out)
}


/// A uniformly random label in 0..k for forgetting-set item `i` of task `task` (fixed per item,
/// so every epoch of forgetting sees the same wrong answers, as in the paper's setup).
pub fn random_label(seed: u64, task: usize, i: usize, k: usize) -> usize {
    below(Philox::new(seed ^ 0x5eed_f0f0).block(i as u64, task as u32, 11)[0], k as u64) as usize
}
