//! Grids and tasks as compact token sequences. Vocabulary (16): colours 0..=9, NEWLINE (end of a
//! row), IN and OUT (the markers before an example's input and output grid), END (after an output
//! grid), PAD. A task with demonstrations d1..dk and a query reads
//!   IN d1.in OUT d1.out END ... IN dk.in OUT dk.out END IN q.in OUT q.out END
//! and the loss is taken on output grids only (their tokens and END): every demonstration output
//! after the first (the first cannot be inferred) and the query's. Decoding reads grid tokens up
//! to END; anything that is not a well-formed grid decodes to None.

use super::codec::Codec;
use super::data::Pair;
use super::grid::{Grid, MAX_SIDE};
use crate::train::{Dataset, Example, IGNORE};
use crate::{Error, Result};

pub const NEWLINE: u32 = 10;
pub const IN: u32 = 11;
pub const OUT: u32 = 12;
pub const END: u32 = 13;
pub const PAD: u32 = 14;
pub const VOCAB: usize = 16;

/// Row after row, each ended by NEWLINE: h (w + 1) tokens.
pub fn encode_grid(g: &Grid) -> Vec<u32> {
    let mut out = Vec::with_capacity(g.h * (g.w + 1));
    for row in g.cells.chunks(g.w) {
        out.extend(row.iter().map(|&c| c as u32));
        out.push(NEWLINE);
    }
    out
}

/// The grid of `tokens` (a generated answer, optionally ended by END), or None if malformed:
/// empty, a row of another length, a stray token, or over 30 per side.
pub fn decode_grid(tokens: &[u32]) -> Option<Grid> {
    let body = match tokens.iter().position(|&t| t == END) {
        Some(i) => &tokens[..i],
        None => tokens,
    };
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let mut row = Vec::new();
    for &t in body {
        match t {
            0..=9 => row.push(t as u8),
            NEWLINE => rows.push(std::mem::take(&mut row)),
            _ => return None,
        }
    }
    if !row.is_empty() || rows.is_empty() || rows.len() > MAX_SIDE || rows[0].is_empty() || rows[0].len() > MAX_SIDE {
        return None;
    }
    Grid::from_rows(&rows).ok()
}

/// The prompt for `query` given `demos`: ends with OUT, the answer follows.
pub fn prompt(demos: &[Pair], query: &Grid) -> Vec<u32> {
    let mut s = Vec::new();
    for d in demos {
        s.push(IN);
        s.extend(encode_grid(&d.input));
        s.push(OUT);
        s.extend(encode_grid(&d.output));
        s.push(END);
    }
    s.push(IN);
    s.extend(encode_grid(query));
    s.push(OUT);
    s
}

/// The full sequence of a training task (demos, then query with its answer) and, per token,
/// whether it is scored.
pub fn sequence(demos: &[Pair], query: &Pair) -> (Vec<u32>, Vec<bool>) {
    let (mut s, mut scored) = (Vec::new(), Vec::new());
    for (i, p) in demos.iter().chain(std::iter::once(query)).enumerate() {
        s.push(IN);
        s.extend(encode_grid(&p.input));
        s.push(OUT);
        scored.resize(s.len(), false);
        s.extend(encode_grid(&p.output));
        s.push(END);
        scored.resize(s.len(), i > 0);
    }
    (s, scored)
}

/// Next-token example of `sequence(demos, query)`: targets are IGNORE except on scored tokens.
pub fn example(demos: &[Pair], query: &Pair) -> Example {
    let (s, scored) = sequence(demos, query);
    to_example(&s, &scored)
}

/// Next-token example of a sequence and its mask: targets are IGNORE except on scored ids.
pub fn to_example(s: &[u32], scored: &[bool]) -> Example {
    let ids = s[..s.len() - 1].to_vec();
    let targets = (1..s.len()).map(|j| if scored[j] { s[j] } else { IGNORE }).collect();
    Example { ids, targets }
}

/// Training tasks (demos, query) in a codec's ids as a dataset, every example right-padded to one length
/// (ids with the codec's pad id, targets with IGNORE) so any subset batches; causal attention means the padding
/// never influences the scored positions.
pub struct TaskSet {
    examples: Vec<Example>,
    pub len_tokens: usize,
}

impl TaskSet {
    pub fn new(codec: &dyn Codec, tasks: &[(Vec<Pair>, Pair)], max_len: usize) -> Result<TaskSet> {
        let mut examples = Vec::with_capacity(tasks.len());
        for (d, q) in tasks {
            let (s, scored) = codec.sequence(d, q)?;
            examples.push(to_example(&s, &scored));
        }
        let t = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        if t == 0 {
            return Err(Error::Msg("ttt-arc: no training tasks".into()));
        }
        if t > max_len {
            return Err(Error::Msg(format!("ttt-arc: a training task takes {t} tokens; the model's context is {max_len}")));
        }
        for e in &mut examples {
            e.ids.resize(t, codec.pad());
            e.targets.resize(t, IGNORE);
        }
        Ok(TaskSet { examples, len_tokens: t })
    }
}

impl Dataset for TaskSet {
    fn len(&self) -> usize {
        self.examples.len()
    }
    fn example(&self, i: usize) -> Result<Example> {
        self.examples.get(i).cloned().ok_or_else(|| Error::range("dataset", format!("ttt-arc tasks: example {i} of {}", self.examples.len())))
    }
}
