//! Grids as text for an HF model (the form TTT for ARC feeds pretrained LMs): one row per line,
//! digits 0-9 without separators, each example written
//! `input:\n<rows>output:\n<rows>`,
//! each output followed by EOS (the end marker, as END in the grid vocabulary), BOS (if the
//! tokenizer has one) first. The loss is on output grids and their EOS, every demonstration's but
//! the first's and the query's. Every piece is tokenized on its own and the ids concatenated, so
//! the answer's ids (scored in training) are exactly the tokenization of its text, and a prompt
//! is always a prefix of its training sequence. Pieces after the first are tokenized as they
//! read in running text, right after a newline (or EOS): SentencePiece-style tokenizers (a
//! Llama-2 `Prepend("▁")` normalizer, a `Metaspace` pre-tokenizer) put a word-boundary "▁" in
//! front of every text they encode, which would turn each answer "12\n" into " 12\n"; so a
//! piece is encoded behind a "\n" and the newline's own ids are cut off again (byte-level BPE
//! tokenizers such as Llama 3's give the same ids either way). A generated
//! answer is the text up to EOS; it parses to a grid only if every line is a non-empty run of
//! digits of one length (at most 30 lines of at most 30).

use super::codec::Codec;
use super::data::Pair;
use super::grid::{Grid, MAX_SIDE};
use crate::io::hf::HfTokenizer;
use crate::{Error, Result};
use std::path::Path;

pub struct TextCodec {
    pub tok: HfTokenizer,
    bos: Option<u32>,
    eos: Vec<u32>,
    /// the ids of "\n" on its own
    newline: Vec<u32>,
}

/// Rows of digits, each ended by a newline.
pub fn grid_text(g: &Grid) -> String {
    let mut s = String::with_capacity(g.h * (g.w + 1));
    for row in g.cells.chunks(g.w) {
        s.extend(row.iter().map(|&c| char::from(b'0' + c)));
        s.push('\n');
    }
    s
}

/// The grid written by `grid_text` (the final newline optional), or None if malformed.
pub fn parse_grid(text: &str) -> Option<Grid> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for line in body.split('\n') {
        if line.is_empty() || line.len() > MAX_SIDE || !line.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rows.push(line.bytes().map(|b| b - b'0').collect());
        if rows.len() > MAX_SIDE || rows[rows.len() - 1].len() != rows[0].len() {
            return None;
        }
    }
    Grid::from_rows(&rows).ok()
}

impl TextCodec {
    /// The codec of a tokenizer; it needs an EOS token to end answers.
    pub fn new(tok: HfTokenizer) -> Result<TextCodec> {
        if tok.eos_ids.is_empty() {
            return Err(Error::Msg(format!("{}: no EOS token (tokenizer_config.json / config.json): ttt-arc cannot end an answer", tok.path.display())));
        }
        let newline = tok.encode("\n", false)?;
        Ok(TextCodec { bos: tok.bos_id, eos: tok.eos_ids.clone(), newline, tok })
    }

    /// The codec of an HF model directory (its tokenizer.json and special tokens).
    pub fn load(dir: &Path) -> Result<TextCodec> {
        Self::new(HfTokenizer::load(dir)?)
    }

    fn enc(&self, text: &str) -> Result<Vec<u32>> {
        self.tok.encode(text, false)
    }

    /// The ids of `text` where it follows a newline in running text: "\n" + text encoded, the
    /// newline's ids cut off (plain `enc` when the two do not split there).
    pub fn enc_after_newline(&self, text: &str) -> Result<Vec<u32>> {
        let both = self.enc(&format!("\n{text}"))?;
        match both.strip_prefix(self.newline.as_slice()) {
            Some(rest) if !self.newline.is_empty() => Ok(rest.to_vec()),
            _ => self.enc(text),
        }
    }

    /// Demos, then the query input; with `answer`, the answer and EOS. Returns ids and the mask.
    fn build(&self, demos: &[Pair], query: &Grid, answer: Option<&Grid>) -> Result<(Vec<u32>, Vec<bool>)> {
        let (mut ids, mut scored) = (Vec::new(), Vec::new());
        let mut push = |ids_: Vec<u32>, s: bool| {
            scored.extend(std::iter::repeat_n(s, ids_.len()));
            ids.extend(ids_);
        };
        push(self.bos.into_iter().collect(), false);
        // the first piece opens the text; every later one follows a newline or EOS
        let example = |g: &Grid, first: bool| {
            let text = format!("input:\n{}output:\n", grid_text(g));
            if first { self.enc(&text) } else { self.enc_after_newline(&text) }
        };
        for (i, d) in demos.iter().enumerate() {
            push(example(&d.input, i == 0)?, false);
            push(self.enc_after_newline(&grid_text(&d.output))?, i > 0);
            push(vec![self.eos[0]], i > 0);
        }
        push(example(query, demos.is_empty())?, false);
        if let Some(a) = answer {
            push(self.enc_after_newline(&grid_text(a))?, !demos.is_empty());
            push(vec![self.eos[0]], !demos.is_empty());
        }
        Ok((ids, scored))
    }
}

impl Codec for TextCodec {
    fn name(&self) -> &'static str {
        "text"
    }
    fn prompt(&self, demos: &[Pair], query: &Grid) -> Result<Vec<u32>> {
        Ok(self.build(demos, query, None)?.0)
    }
    fn sequence(&self, demos: &[Pair], query: &Pair) -> Result<(Vec<u32>, Vec<bool>)> {
        self.build(demos, &query.input, Some(&query.output))
    }
    fn decode(&self, answer: &[u32]) -> Option<Grid> {
        let end = answer.iter().position(|t| self.eos.contains(t)).unwrap_or(answer.len());
        parse_grid(&self.tok.decode(&answer[..end], false).ok()?)
    }
    fn stop_tokens(&self) -> Vec<u32> {
        self.eos.clone()
    }
    fn pad(&self) -> u32 {
        self.eos[0]
    }
    /// One id per character at most (digits and newlines are single bytes, which byte-level
    /// and byte-fallback vocabularies hold; merges only shorten) and EOS.
    fn answer_tokens(&self, h: usize, w: usize) -> usize {
        h * (w + 1) + 1
    }
    fn vocab(&self) -> usize {
        self.tok.vocab_size()
    }
}
