//! A Llama-family HF model cut down to a method's own vocabulary.
//!
//! kiln's methods speak small symbolic vocabularies (digits, entity names, ADOPT/KEEP, ...) and
//! read single-token answers at fixed positions. To run such a method on a pretrained checkpoint
//! without rewriting it for a tokenizer, each method token is given a WORD; the word's pieces in
//! the checkpoint's tokenizer pick its rows:
//! ```text
//! wte'[w]        = mean of wte[p] over the pieces p of word w          (W, C)
//! lm_head'[:, w] = mean of lm_head[:, p] over the same pieces          (C, W)
//! ```
//! and every other weight is the checkpoint's. For a word that is one token, the cut model's
//! logits are exactly the checkpoint's logits at that token's column (a verbalizer: the output
//! softmax is over the method's words only); a word of several pieces starts from their mean, the
//! usual initialisation of a new token. The result is an ordinary `Transformer` with
//! vocab_size = W, so training, generation, probes and devices need nothing new.

use super::{load_model, HfTokenizer};
use crate::model::Transformer;
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;

/// How each method word was found in the checkpoint's tokenizer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VocabCut {
    /// the checkpoint directory, as given
    pub model: String,
    /// the checkpoint's own vocabulary size
    pub hf_vocab: usize,
    /// per method token: its word and the checkpoint ids it was built from
    pub words: Vec<String>,
    pub pieces: Vec<Vec<u32>>,
}

impl VocabCut {
    /// How many words took more than one piece (their rows are means, not the checkpoint's own).
    pub fn multi_piece(&self) -> usize {
        self.pieces.iter().filter(|p| p.len() > 1).count()
    }

    /// One line for a report: the checkpoint and how its vocabulary was cut.
    pub fn describe(&self) -> String {
        format!(
            "HF checkpoint {} (vocabulary {}) cut to the method's {} words ({} of them several pieces, started from their mean)",
            self.model,
            self.hf_vocab,
            self.words.len(),
            self.multi_piece()
        )
    }
}

/// The pieces of `word` in `tok`: as it reads after a space (mid-sentence) or alone, whichever
/// takes fewer ids (the spaced form on a tie).
pub fn word_pieces(tok: &HfTokenizer, word: &str) -> Result<Vec<u32>> {
    let spaced = tok.encode(&format!(" {word}"), false)?;
    let bare = tok.encode(word, false)?;
    let best = if bare.len() < spaced.len() { bare } else { spaced };
    if best.is_empty() {
        return Err(Error::Msg(format!("tokenizer: the word {word:?} encodes to no ids")));
    }
    Ok(best)
}

/// Load the HF model directory `dir` with its vocabulary cut to `words` (method token i is
/// `words[i]`). Errors name the directory: no tokenizer, an empty or repeated word, a word that
/// encodes to nothing, or anything `load_model` refuses.
pub fn load_with_vocab(dir: &Path, words: &[String]) -> Result<(Transformer, VocabCut)> {
    let origin = dir.display().to_string();
    if words.is_empty() {
        return Err(Error::Msg(format!("{origin}: no words to cut the vocabulary to")));
    }
    let mut seen = HashSet::new();
    if let Some(w) = words.iter().find(|w| w.trim().is_empty() || !seen.insert(w.as_str())) {
        return Err(Error::Msg(format!("{origin}: the method word {w:?} is empty or repeated (each token needs its own word)")));
    }
    let tok = HfTokenizer::load(dir)?;
    let pieces: Vec<Vec<u32>> = words.iter().map(|w| word_pieces(&tok, w)).collect::<Result<_>>()?;
    let (full, _) = load_model(dir)?;
    let hf_vocab = full.cfg.vocab_size;
    if let Some((w, p)) = words.iter().zip(&pieces).find(|(_, p)| p.iter().any(|&id| id as usize >= hf_vocab)) {
        return Err(Error::File { path: origin, detail: format!("the tokenizer gives {w:?} ids {p:?}, beyond the model's vocabulary of {hf_vocab}") });
    }
    let mut cfg = full.cfg.clone();
    cfg.vocab_size = words.len();
    let cut = Transformer::skeleton(cfg)?;
    let _ng = no_grad();
    // Every shared weight as it is; the two vocabulary-indexed ones cut.
    let wte = mean_rows(&full.wte, &pieces, 0)?;
    cut.wte.assign(&wte)?;
    if let (Some(head), Some(full_head)) = (&cut.lm_head, &full.lm_head) {
        head.assign(&mean_rows(full_head, &pieces, 1)?)?;
    }
    let source: std::collections::BTreeMap<String, Tensor> = full.named_params().into_iter().collect();
    for (name, p) in cut.named_params() {
        if name == "model.embed_tokens.weight" || name == "lm_head.weight" {
            continue;
        }
        let src = source.get(&name).ok_or_else(|| Error::Msg(format!("{origin}: no weight `{name}` in the loaded model")))?;
        p.assign(src)?;
    }
    Ok((cut, VocabCut { model: origin, hf_vocab, words: words.to_vec(), pieces }))
}

/// Along `axis` of `t` (axis 0 of wte (V, C), axis 1 of lm_head (C, V)): for each word, the mean
/// of the slices at its pieces, stacked in word order.
fn mean_rows(t: &Tensor, pieces: &[Vec<u32>], axis: isize) -> Result<Tensor> {
    let parts: Vec<Tensor> = pieces
        .iter()
        .map(|p| {
            let ids = Tensor::from_vec_u32(p.clone(), vec![p.len()])?;
            t.index_select(&ids, axis)?.mean(axis, true)
        })
        .collect::<Result<_>>()?;
    Tensor::concat(&parts, axis)
}
