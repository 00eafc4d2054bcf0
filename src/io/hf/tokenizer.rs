//! HF tokenizers: `tokenizer.json` through the `tokenizers` crate (default features off,
//! `fancy-regex` for the look-ahead in GPT-2/Llama-3 split patterns), plus what the files around
//! it say about special tokens: tokenizer_config.json (`bos_token`, `eos_token`, the chat
//! template's text), generation_config.json and config.json (`bos_token_id`, `eos_token_id`).
//! Encoding with special tokens runs the file's post-processor (e.g. Llama 3 prepends BOS).

use super::config::token_ids;
use crate::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    pub path: PathBuf,
    pub bos_id: Option<u32>,
    /// every token that ends a generation (EOS, end-of-turn), deduplicated
    pub eos_ids: Vec<u32>,
    /// the Jinja chat template, if tokenizer_config.json has one (kept as text; not rendered)
    pub chat_template: Option<String>,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HfTokenizer({}, vocab {}, bos {:?}, eos {:?})", self.path.display(), self.vocab_size(), self.bos_id, self.eos_ids)
    }
}

/// A JSON file of the model directory, or None when absent.
fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let err = |detail: String| Error::File { path: path.display().to_string(), detail };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map(Some).map_err(|e| err(format!("not valid JSON: {e}")))
}

impl HfTokenizer {
    /// `tokenizer.json` alone (no special-token information beyond the file's own).
    pub fn from_file(path: &Path) -> Result<HfTokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::File { path: path.display().to_string(), detail: format!("cannot load tokenizer: {e}") })?;
        Ok(HfTokenizer { inner, path: path.to_path_buf(), bos_id: None, eos_ids: vec![], chat_template: None })
    }

    /// The tokenizer of an HF model directory, with BOS/EOS gathered from its config files.
    pub fn load(dir: &Path) -> Result<HfTokenizer> {
        let mut tok = Self::from_file(&dir.join("tokenizer.json"))?;
        let mut eos = Vec::new();
        if let Some(tc) = read_json(&dir.join("tokenizer_config.json"))? {
            // a token is written as "<s>" or as an AddedToken object {"content": "<s>", ...}
            let text_of = |v: Option<&Value>| v.and_then(|v| v.as_str().or_else(|| v.get("content").and_then(Value::as_str))).map(str::to_string);
            if let Some(b) = text_of(tc.get("bos_token")) {
                tok.bos_id = tok.inner.token_to_id(&b);
            }
            if let Some(e) = text_of(tc.get("eos_token")).and_then(|e| tok.inner.token_to_id(&e)) {
                eos.push(e);
            }
            tok.chat_template = tc.get("chat_template").and_then(Value::as_str).map(str::to_string);
        }
        for file in ["generation_config.json", "config.json"] {
            if let Some(v) = read_json(&dir.join(file))? {
                eos.extend(token_ids(v.get("eos_token_id")));
                if tok.bos_id.is_none() {
                    tok.bos_id = token_ids(v.get("bos_token_id")).first().copied();
                }
            }
        }
        let mut seen = Vec::new();
        eos.retain(|e| !seen.contains(e) && {
            seen.push(*e);
            true
        });
        tok.eos_ids = eos;
        Ok(tok)
    }

    /// Number of ids, added (special) tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Text -> ids; `special`: apply the post-processor (BOS etc.) as transformers does by default.
    /// Special tokens written in the text are always recognised.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, special).map_err(|e| Error::Msg(format!("tokenizer {}: cannot encode: {e}", self.path.display())))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids -> text; `skip_special` drops special tokens (BOS, EOS, ...) from the output.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let v = self.vocab_size();
        if let Some((i, id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= v) {
            return Err(Error::range("tokenizer decode", format!("id {id} at position {i} is outside the vocabulary of {v}")));
        }
        self.inner.decode(ids, skip_special).map_err(|e| Error::Msg(format!("tokenizer {}: cannot decode: {e}", self.path.display())))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
