//! The built-in tokenizers, small enough to read in a minute and saved with every checkpoint
//! (state.json) so a checkpoint can always decode what it generates:
//! - `Byte`: the UTF-8 bytes of the text, vocab 256, lossless for any input;
//! - `Char`: one id per distinct character of a training text (sorted), vocab = that count;
//!   a character outside it is a clear error at encode time, never a silent `<unk>`;
//! - `Symbols`: whitespace-separated words from a fixed list, for the algorithmic tasks
//!   (e.g. modular addition's "3 + 5 =" with symbols "0".."p-1", "+", "=").
//!
//! - `Hf`: a pretrained HF tokenizer.json (io::hf::HfTokenizer), named by its path and loaded
//!   once per process; used when fine-tuning an HF model (`kiln train --model DIR`).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Tokenizer {
    /// UTF-8 bytes: id = byte value.
    Byte,
    /// id = index into `chars` (sorted, distinct).
    Char { chars: Vec<char> },
    /// id = index into `symbols`; text is the symbols separated by whitespace.
    Symbols { symbols: Vec<String> },
    /// an HF tokenizer.json; text is encoded without special tokens (no BOS per window)
    Hf { path: std::path::PathBuf },
}

/// The HF tokenizer at `path`, loaded once per process.
fn hf(path: &std::path::Path) -> Result<std::sync::Arc<crate::io::hf::HfTokenizer>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    static CACHE: Mutex<Option<HashMap<std::path::PathBuf, Arc<crate::io::hf::HfTokenizer>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(t) = map.get(path) {
        return Ok(t.clone());
    }
    let t = Arc::new(crate::io::hf::HfTokenizer::from_file(path)?);
    map.insert(path.to_path_buf(), t.clone());
    Ok(t)
}

impl Tokenizer {
    /// A character vocabulary: the sorted distinct characters of `text`.
    pub fn char_level(text: &str) -> Result<Tokenizer> {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        if chars.is_empty() {
            return Err(Error::Msg("char tokenizer: the training text is empty".into()));
        }
        Ok(Tokenizer::Char { chars })
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Byte => 256,
            Tokenizer::Char { chars } => chars.len(),
            Tokenizer::Symbols { symbols } => symbols.len(),
            // validate() has loaded it; 0 only if the file vanished since
            Tokenizer::Hf { path } => hf(path).map(|t| t.vocab_size()).unwrap_or(0),
        }
    }

    /// Text -> ids. Errors name the first character (or word) outside the vocabulary and where.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Byte => Ok(text.bytes().map(u32::from).collect()),
            Tokenizer::Char { chars } => text
                .char_indices()
                .map(|(at, c)| {
                    chars.binary_search(&c).map(|i| i as u32).map_err(|_| {
                        let (line, col) = line_col(text, at);
                        Error::Msg(format!("char tokenizer: character {c:?} (U+{:04X}) at line {line}, column {col} is not in the vocabulary of {} characters", c as u32, chars.len()))
                    })
                })
                .collect(),
            Tokenizer::Symbols { symbols } => text
                .split_whitespace()
                .enumerate()
                .map(|(k, w)| {
                    symbols
                        .iter()
                        .position(|s| s == w)
                        .map(|i| i as u32)
                        .ok_or_else(|| Error::Msg(format!("symbol tokenizer: word {k} `{w}` is not one of the {} symbols", symbols.len())))
                })
                .collect(),
            Tokenizer::Hf { path } => hf(path)?.encode(text, false),
        }
    }

    /// Ids -> text. An id outside the vocabulary is an error; byte ids that do not form valid
    /// UTF-8 are replaced by U+FFFD (a model may well emit half a character).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let v = self.vocab_size();
        if let Some((i, id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= v) {
            return Err(Error::range("tokenizer decode", format!("id {id} at position {i} is outside the vocabulary of {v}")));
        }
        Ok(match self {
            Tokenizer::Byte => String::from_utf8_lossy(&ids.iter().map(|&i| i as u8).collect::<Vec<u8>>()).into_owned(),
            Tokenizer::Char { chars } => ids.iter().map(|&i| chars[i as usize]).collect(),
            Tokenizer::Symbols { symbols } => ids.iter().map(|&i| symbols[i as usize].as_str()).collect::<Vec<_>>().join(" "),
            Tokenizer::Hf { path } => hf(path)?.decode(ids, false)?,
        })
    }

    /// Check a tokenizer read from a file: a char vocabulary must be sorted and distinct (that
    /// is what makes ids stable), symbols distinct and free of whitespace.
    pub fn validate(&self) -> Result<()> {
        match self {
            Tokenizer::Byte => Ok(()),
            Tokenizer::Hf { path } => hf(path).map(|_| ()),
            Tokenizer::Char { chars } => match chars.windows(2).position(|w| w[0] >= w[1]) {
                _ if chars.is_empty() => Err(Error::Msg("tokenizer field `chars`: empty".into())),
                Some(i) => Err(Error::Msg(format!("tokenizer field `chars`: not sorted and distinct at index {} ({:?} then {:?})", i + 1, chars[i], chars[i + 1]))),
                None => Ok(()),
            },
            Tokenizer::Symbols { symbols } => {
                for (i, s) in symbols.iter().enumerate() {
                    if s.is_empty() || s.chars().any(char::is_whitespace) || symbols[..i].contains(s) {
                        return Err(Error::Msg(format!("tokenizer field `symbols`: entry {i} {s:?} is empty, has whitespace or repeats")));
                    }
                }
                Ok(())
            }
        }
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
