//! How stages 2-3 speak to a model: a `Codec` turns tasks into token ids (with the loss mask of
//! training sequences) and generated ids back into grids. Two exist: `GridCodec`, the compact
//! 16-token grid vocabulary of models trained by `ttt-arc finetune` (tokens.rs), and
//! `TextCodec` (text.rs), grids rendered as text for an HF model and its tokenizer.

use super::data::Pair;
use super::grid::{Grid, MAX_SIDE};
use super::tokens;
use crate::{Error, Result};

pub trait Codec: Send + Sync {
    /// A short name for reports ("grid", "text").
    fn name(&self) -> &'static str;
    /// The ids of the task with `demos` and the query input `query`, ending where the answer
    /// begins. Always the prefix of `sequence` for the same demos and query.
    fn prompt(&self, demos: &[Pair], query: &Grid) -> Result<Vec<u32>>;
    /// The full training sequence (demos, then the query with its answer and end marker) and, per
    /// id, whether it is scored: output grids and their end markers, every demonstration's but
    /// the first's, and the query's.
    fn sequence(&self, demos: &[Pair], query: &Pair) -> Result<(Vec<u32>, Vec<bool>)>;
    /// The grid of a generated answer (ids after the prompt, optionally ended by a stop id), or
    /// None when it is not a well-formed grid.
    fn decode(&self, answer: &[u32]) -> Option<Grid>;
    /// Ids that end an answer.
    fn stop_tokens(&self) -> Vec<u32>;
    /// An id to right-pad training sequences with (never scored).
    fn pad(&self) -> u32;
    /// At most how many ids an h x w answer takes, its end marker included.
    fn answer_tokens(&self, h: usize, w: usize) -> usize;
    /// The decoding budget of a query: the ids of the largest answer `answer_shape` expects.
    fn answer_budget(&self, demos: &[Pair], query: &Grid) -> usize {
        let (h, w) = answer_shape(demos, query);
        self.answer_tokens(h, w)
    }
    /// The vocabulary the model must have at least.
    fn vocab(&self) -> usize;
}

/// The compact grid vocabulary of tokens.rs.
#[derive(Clone, Copy, Debug, Default)]
pub struct GridCodec;

impl Codec for GridCodec {
    fn name(&self) -> &'static str {
        "grid"
    }
    fn prompt(&self, demos: &[Pair], query: &Grid) -> Result<Vec<u32>> {
        Ok(tokens::prompt(demos, query))
    }
    fn sequence(&self, demos: &[Pair], query: &Pair) -> Result<(Vec<u32>, Vec<bool>)> {
        Ok(tokens::sequence(demos, query))
    }
    fn decode(&self, answer: &[u32]) -> Option<Grid> {
        tokens::decode_grid(answer)
    }
    fn stop_tokens(&self) -> Vec<u32> {
        vec![tokens::END]
    }
    fn pad(&self) -> u32 {
        tokens::PAD
    }
    fn answer_tokens(&self, h: usize, w: usize) -> usize {
        h * (w + 1) + 1
    }
    fn vocab(&self) -> usize {
        tokens::VOCAB
    }
}

/// The largest answer (rows, columns) a query plausibly has, per side the largest of: every
/// demonstration's output, the query's input scaled by the largest output/input ratio among the
/// demonstrations (ceiling), and the query's input itself; at most MAX_SIDE. ARC answers are
/// the size of the input, a fixed size or a scaled copy, and each is covered.
pub fn answer_shape(demos: &[Pair], query: &Grid) -> (usize, usize) {
    let side = |out: fn(&Grid) -> usize| {
        let q = out(query);
        let mut s = q;
        for d in demos {
            let (o, i) = (out(&d.output), out(&d.input));
            s = s.max(o).max((q * o).div_ceil(i.max(1)));
        }
        s.min(MAX_SIDE)
    };
    (side(|g| g.h), side(|g| g.w))
}

/// Check that `model_vocab` covers the codec's ids.
pub fn check_vocab(codec: &dyn Codec, model_vocab: usize, what: &str) -> Result<()> {
    if model_vocab < codec.vocab() {
        return Err(Error::Msg(format!("{what}: the model's vocabulary ({model_vocab}) is smaller than the {} codec's ({})", codec.name(), codec.vocab())));
    }
    Ok(())
}
