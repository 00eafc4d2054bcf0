//! A synthetic world whose facts change over time, the news stream that reports it, and the
//! questions about its current state.
//!
//! Entities e0..eE each hold one value per relation (works_at: a company, lives_in: a city,
//! role: a job). At every step some (entity, relation) pairs change to a new value; the step's
//! documents report changed pairs (all of them) and restate unchanged ones. A document is one
//! fact in one of two templates per relation:
//!   works_at   "eI works_at cJ"   or  "eI joined cJ"
//!   lives_in   "eI lives_in tJ"   or  "eI moved_to tJ"
//!   role       "eI role rJ"       or  "eI promoted_to rJ"
//! so a document about a change may share only its entity word with the fact it replaces. The
//! reader (`read`) parses a document back into (entity, relation, value): exact template
//! parsing, standing in for the language model's reading.

use crate::rng::Draws;
use serde::Serialize;

/// Relations, their value prefixes, value counts and two surface words each.
pub const RELATIONS: [(&str, char, usize, [&str; 2]); 3] = [("works_at", 'c', 8, ["works_at", "joined"]), ("lives_in", 't', 8, ["lives_in", "moved_to"]), ("role", 'r', 6, ["role", "promoted_to"])];

/// One fact: entity, relation index, value index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Fact {
    pub entity: usize,
    pub relation: usize,
    pub value: usize,
}

impl Fact {
    /// The fact in template `t` (0 or 1) as words.
    pub fn text(&self, t: usize) -> String {
        let (_, prefix, _, words) = RELATIONS[self.relation];
        format!("e{} {} {prefix}{}", self.entity, words[t % 2], self.value)
    }
}

/// Parse a document back into its fact (None if it is not one of the templates).
pub fn read(doc: &str) -> Option<Fact> {
    let w: Vec<&str> = doc.split_whitespace().collect();
    let [e, verb, v] = w[..] else { return None };
    let entity = e.strip_prefix('e')?.parse().ok()?;
    let relation = RELATIONS.iter().position(|r| r.3.contains(&verb))?;
    let (_, prefix, n, _) = RELATIONS[relation];
    let value: usize = v.strip_prefix(prefix)?.parse().ok()?;
    (value < n).then_some(Fact { entity, relation, value })
}

/// One document of the stream.
#[derive(Clone, Debug, Serialize)]
pub struct Doc {
    pub step: usize,
    pub text: String,
}

/// The world's history: the stream, and the final state.
#[derive(Clone, Debug)]
pub struct Stream {
    pub docs: Vec<Doc>,
    /// `state[entity][relation]` = value after the last step
    pub state: Vec<[usize; 3]>,
    /// the (entity, relation) pairs that changed at least once
    pub changed: std::collections::HashSet<(usize, usize)>,
}

/// E entities; `steps` steps with `changes` changed pairs and `restated` restatements each; the
/// first step states every pair once. Deterministic in (seed, stream).
pub fn stream(entities: usize, steps: usize, changes: usize, restated: usize, seed: u64, id: u32) -> Stream {
    let mut d = Draws::at(seed, id, 31, 1);
    let mut state: Vec<[usize; 3]> = (0..entities).map(|_| std::array::from_fn(|r| d.below(RELATIONS[r].2))).collect();
    let mut docs = Vec::new();
    for (e, values) in state.iter().enumerate() {
        for (r, &value) in values.iter().enumerate() {
            docs.push(Doc { step: 0, text: Fact { entity: e, relation: r, value }.text(d.below(2)) });
        }
    }
    let mut changed = std::collections::HashSet::new();
    for step in 1..=steps {
        for _ in 0..changes {
            let (e, r) = (d.below(entities), d.below(3));
            let n = RELATIONS[r].2;
            state[e][r] = (state[e][r] + 1 + d.below(n - 1)) % n; // a different value
            changed.insert((e, r));
            docs.push(Doc { step, text: Fact { entity: e, relation: r, value: state[e][r] }.text(d.below(2)) });
        }
        for _ in 0..restated {
            let (e, r) = (d.below(entities), d.below(3));
            docs.push(Doc { step, text: Fact { entity: e, relation: r, value: state[e][r] }.text(d.below(2)) });
        }
    }
    Stream { docs, state, changed }
}

/// The question about (entity, relation): `eI <relation word>` (the template-0 word).
pub fn question(entity: usize, relation: usize) -> String {
    format!("e{entity} {}", RELATIONS[relation].3[0])
}
