//! The reader: the three jobs METHODS.md §10 gives the language model, behind one trait so that
//! ERASE and RAG run the same way whoever reads.
//!   extract  a document -> the fact it states (entity, relation, value), or None if unreadable
//!   judge    (a stored fact, a new document) -> reinforced | made false | unchanged
//!   answer   (the top retrieved texts, best first, a question) -> the value, or None ("unknown")
//! `Template` is exact template parsing (world::read): the oracle, and the ablation row of the
//! report. lm.rs has the kiln-model reader, trained to do the same jobs from tokens.

use super::world::{read, Fact};
use crate::Result;
use serde::Serialize;

/// What a new document does to a stored fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Judgment {
    Reinforced,
    MadeFalse,
    Unchanged,
}

impl Judgment {
    pub const ALL: [Judgment; 3] = [Judgment::Reinforced, Judgment::MadeFalse, Judgment::Unchanged];

    /// Index in `ALL` (also the order of the label tokens).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The true judgment of a stored fact given the document's fact: the same pair with the same
    /// value is reinforced, with another value made false; any other pair (or no fact) unchanged.
    pub fn of(stored: Fact, doc: Option<Fact>) -> Judgment {
        match doc {
            Some(d) if (d.entity, d.relation) == (stored.entity, stored.relation) => {
                if d.value == stored.value {
                    Judgment::Reinforced
                } else {
                    Judgment::MadeFalse
                }
            }
            _ => Judgment::Unchanged,
        }
    }
}

/// A question put to the reader: the retrieved texts, best first, and the (entity, relation) asked.
#[derive(Clone, Debug)]
pub struct Ask {
    pub texts: Vec<String>,
    pub entity: usize,
    pub relation: usize,
}

/// The reader's three jobs, each over a batch.
pub trait Reader {
    /// Each document's fact (None: the reader cannot read it).
    fn extract(&self, docs: &[&str]) -> Result<Vec<Option<Fact>>>;
    /// For each (stored fact, document): what the document does to the fact.
    fn judge(&self, pairs: &[(Fact, &str)]) -> Result<Vec<Judgment>>;
    /// For each question: the value it reads from the texts (None: no text answers it).
    fn answer(&self, asks: &[Ask]) -> Result<Vec<Option<usize>>>;
}

/// Exact template parsing: the oracle.
pub struct Template;

impl Reader for Template {
    fn extract(&self, docs: &[&str]) -> Result<Vec<Option<Fact>>> {
        Ok(docs.iter().map(|d| read(d)).collect())
    }

    fn judge(&self, pairs: &[(Fact, &str)]) -> Result<Vec<Judgment>> {
        Ok(pairs.iter().map(|&(f, doc)| Judgment::of(f, read(doc))).collect())
    }

    /// The value of the best-ranked text about the pair.
    fn answer(&self, asks: &[Ask]) -> Result<Vec<Option<usize>>> {
        Ok(asks.iter().map(|a| a.texts.iter().filter_map(|t| read(t)).find(|f| (f.entity, f.relation) == (a.entity, a.relation)).map(|f| f.value)).collect())
    }
}
