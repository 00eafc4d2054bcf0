//! The simulated feed: a world of facts, four personas with beliefs, biases and trust, true and
//! false headlines, the five interventions, and the behaviour model that says what a persona
//! believes after reading a post.
//!
//! A fact is a pair p = (entity e, relation r) with one true value among `values`; every pair
//! also has a rumour (one fixed false value, the popular misinformation about it). Relations 0
//! and 1 lean to party A and B: a headline on a relation that leans to a persona's party is
//! congruent for it. A persona holds, per pair, the truth or (when it does not know) the rumour.
//!
//! Behaviour (the inputs of the simulation, in `Behaviour`): a persona reading a headline "e r v"
//! first takes v on with probability `congruence` if the headline is congruent, else keeps its
//! belief; an intervention then replaces that with its own message with probability trust:
//!   label "true"   -> v;  label "false" -> the persona's belief if it differs from v, else a
//!                           uniformly drawn value other than v
//!   explanation    -> the explanation's value w (if it is about e r; otherwise no effect), with
//!                     the higher own-frame trust when its frame is the persona's own
//! The persona then labels the headline reliable iff what it now believes is v. `react` keeps
//! the two stages apart (trust, message, the belief kept), as the users model's sequences do.

use crate::rng::Draws;
use serde::Serialize;

/// The personas: party A or B, young or old.
pub const GROUPS: [&str; 4] = ["A-young", "A-old", "B-young", "B-old"];
pub const PARTY: [usize; 4] = [0, 0, 1, 1];
/// Relations 0 and 1 lean to party A and B; the others to neither.
pub const LEANS: [Option<usize>; 2] = [Some(0), Some(1)];
/// Explanation frames: neutral (generic), then one per persona (the values it answers to).
pub const FRAMES: [&str; 5] = ["neutral", "fairness", "care", "loyalty", "liberty"];
/// The feed's conditions, in report order.
pub const CONDITIONS: [&str; 5] = ["none", "label", "label+verified", "explanation", "personalised"];

/// Fixed token ids; entities, relations and values follow the specials.
pub mod tok {
    pub const PAD: u32 = 0;
    pub const POST: u32 = 1;
    pub const SAYS: u32 = 2;
    pub const CHECK: u32 = 3;
    pub const NONE: u32 = 4;
    pub const LABEL: u32 = 5;
    pub const VERIFIED: u32 = 6;
    pub const EXPLAIN: u32 = 7;
    pub const TRUE: u32 = 8;
    pub const FALSE: u32 = 9;
    /// the persona's decision after the intervention: take its message on, or keep its view
    pub const ADOPT: u32 = 20;
    pub const KEEP: u32 = 21;
    /// 4 personas, then ANY (the generic audience)
    pub const GROUP0: u32 = 10;
    pub const ANY: u32 = 14;
    /// 5 frames
    pub const FRAME0: u32 = 15;
    pub const ENTITY0: u32 = 22;
}

/// The world's and the corpora's draws for one purpose (`tag`), deterministic in the seed.
pub fn draws(seed: u64, tag: u32) -> Draws {
    Draws::at(seed, 0, tag, 1)
}

/// The token layout of one world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Vocab {
    pub entities: usize,
    pub relations: usize,
    pub values: usize,
}

impl Vocab {
    pub fn entity(&self, e: usize) -> u32 {
        tok::ENTITY0 + e as u32
    }
    pub fn relation(&self, r: usize) -> u32 {
        tok::ENTITY0 + (self.entities + r) as u32
    }
    pub fn value(&self, v: usize) -> u32 {
        tok::ENTITY0 + (self.entities + self.relations + v) as u32
    }
    pub fn size(&self) -> usize {
        tok::ENTITY0 as usize + self.entities + self.relations + self.values
    }
    /// The word of every token, for a checkpoint's vocabulary (`--model DIR`): the specials,
    /// personas, audience, frames and decisions by name, then e0.., r0.., v0..
    pub fn words(&self) -> Vec<String> {
        let specials = ["_", "posts", "says", "check", "none", "label", "verified", "explain", "true", "false"];
        let mut w: Vec<String> = specials.iter().chain(&GROUPS).chain(&["anyone"]).chain(&FRAMES).chain(&["adopt", "keep"]).map(|s| s.to_string()).collect();
        debug_assert_eq!(w.len(), tok::ENTITY0 as usize);
        w.extend((0..self.entities).map(|e| format!("e{e}")));
        w.extend((0..self.relations).map(|r| format!("r{r}")));
        w.extend((0..self.values).map(|v| format!("v{v}")));
        w
    }
    /// The value a token names, if it is a value token.
    pub fn value_of(&self, t: u32) -> Option<usize> {
        let v0 = self.value(0);
        (t >= v0 && ((t - v0) as usize) < self.values).then(|| (t - v0) as usize)
    }
    pub fn frame_of(&self, t: u32) -> Option<usize> {
        (tok::FRAME0..tok::FRAME0 + FRAMES.len() as u32).contains(&t).then(|| (t - tok::FRAME0) as usize)
    }
}

/// The behaviour model's inputs (one entry per persona, in GROUPS order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Behaviour {
    /// P(the persona knows a fact's true value), on relations that do not lean to its party
    pub know: [f64; 4],
    /// how much less often it knows facts on relations leaning to its party
    pub lean_penalty: f64,
    /// P(taking on a congruent headline's claim before any intervention)
    pub congruence: f64,
    /// trust per intervention kind: label, label + "verified by fact-checkers", explanation,
    /// explanation in the persona's own frame
    pub trust: [[f64; 4]; 4],
    /// P(sharing a post it judged reliable), congruent and not
    pub share: [f64; 2],
}

impl Default for Behaviour {
    /// Party B trusts fact-checker labels less and "verified" moves it no further; explanations
    /// reach both parties, more so in their own frame; the young know less.
    fn default() -> Self {
        Behaviour {
            know: [0.55, 0.7, 0.55, 0.7],
            lean_penalty: 0.2,
            congruence: 0.3,
            trust: [[0.5, 0.45, 0.3, 0.25], [0.6, 0.55, 0.3, 0.25], [0.6, 0.55, 0.5, 0.45], [0.8, 0.75, 0.75, 0.7]],
            share: [0.6, 0.3],
        }
    }
}

/// What a post shows besides its headline. Explanation tokens are (frame, entity, relation,
/// value) as the explainer wrote them, possibly malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intervention {
    None,
    Label { says_true: bool, verified: bool },
    Explanation([u32; 4]),
}

impl Intervention {
    /// The 5-token slot of a user sequence.
    pub fn slot(&self) -> [u32; 5] {
        use tok::*;
        match *self {
            Intervention::None => [NONE, PAD, PAD, PAD, PAD],
            Intervention::Label { says_true, verified } => [LABEL, if says_true { TRUE } else { FALSE }, if verified { VERIFIED } else { PAD }, PAD, PAD],
            Intervention::Explanation([f, e, r, w]) => [EXPLAIN, f, e, r, w],
        }
    }
}

/// How a persona reads one post (see `World::react`).
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction {
    pub trust: f64,
    pub message: Vec<f64>,
    pub base: Vec<f64>,
}

/// One headline: pair p claims value v.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Headline {
    pub pair: usize,
    pub value: usize,
}

/// The world and its personas' beliefs.
#[derive(Clone, Debug)]
pub struct World {
    pub vocab: Vocab,
    /// per pair (e * relations + r): the true value, the rumour
    pub truth: Vec<usize>,
    pub rumour: Vec<usize>,
    /// `[persona][pair]`: the value it believes (the truth or the rumour)
    pub belief: Vec<Vec<usize>>,
    /// pairs held out of the users' intervention training (the test feed's pairs)
    pub held_out: Vec<bool>,
}

impl World {
    /// Draw truths, rumours and beliefs; hold out `held_out` of the pairs. Needs values >= 2.
    pub fn new(vocab: Vocab, beh: &Behaviour, held_out: f64, seed: u64) -> World {
        let pairs = vocab.entities * vocab.relations;
        let mut d = draws(seed, 1);
        let truth: Vec<usize> = (0..pairs).map(|_| d.below(vocab.values)).collect();
        let rumour: Vec<usize> = truth.iter().map(|&t| d.other(vocab.values, t)).collect();
        let belief = (0..GROUPS.len())
            .map(|g| {
                (0..pairs)
                    .map(|p| {
                        let leans_own = LEANS.get(p % vocab.relations).copied().flatten() == Some(PARTY[g]);
                        let know = beh.know[g] - if leans_own { beh.lean_penalty } else { 0.0 };
                        if d.unit() < know {
                            truth[p]
                        } else {
                            rumour[p]
                        }
                    })
                    .collect()
            })
            .collect();
        let held_out = (0..pairs).map(|_| d.unit() < held_out).collect();
        World { vocab, truth, rumour, belief, held_out }
    }

    pub fn pairs(&self) -> usize {
        self.truth.len()
    }

    /// The pair's (entity, relation) tokens.
    pub fn pair_tokens(&self, p: usize) -> (u32, u32) {
        let r = self.vocab.relations;
        (self.vocab.entity(p / r), self.vocab.relation(p % r))
    }

    pub fn congruent(&self, g: usize, p: usize) -> bool {
        LEANS.get(p % self.vocab.relations).copied().flatten() == Some(PARTY[g])
    }

    /// What persona g believes about h's pair after reading h with `iv`: a distribution over values.
    pub fn believe(&self, beh: &Behaviour, g: usize, h: Headline, iv: &Intervention) -> Vec<f64> {
        self.believe_from(beh, g, self.belief[g][h.pair], h, iv)
    }

    /// The same for a persona that held belief b about the pair before reading.
    pub fn believe_from(&self, beh: &Behaviour, g: usize, b: usize, h: Headline, iv: &Intervention) -> Vec<f64> {
        let r = self.react(beh, g, b, h, iv);
        r.base.iter().zip(&r.message).map(|(a, m)| (1.0 - r.trust) * a + r.trust * m).collect()
    }

    /// The two stages of reading: with probability `trust` the persona adopts the intervention's
    /// message, otherwise it keeps its pre-intervention belief `base` (both over the values).
    pub fn react(&self, beh: &Behaviour, g: usize, b: usize, h: Headline, iv: &Intervention) -> Reaction {
        let n = self.vocab.values;
        let c = if self.congruent(g, h.pair) { beh.congruence } else { 0.0 };
        let mut base = vec![0.0; n];
        base[h.value] += c;
        base[b] += 1.0 - c;
        let mut message = vec![0.0; n];
        let trust = match *iv {
            Intervention::None => 0.0,
            Intervention::Label { says_true, verified } => {
                if says_true {
                    message[h.value] = 1.0;
                } else if b != h.value {
                    message[b] = 1.0;
                } else {
                    message.iter_mut().enumerate().filter(|(i, _)| *i != h.value).for_each(|(_, x)| *x = 1.0 / (n - 1) as f64);
                }
                beh.trust[if verified { 1 } else { 0 }][g]
            }
            Intervention::Explanation([f, e, r, w]) => {
                let about = (e, r) == self.pair_tokens(h.pair);
                match self.vocab.value_of(w).filter(|_| about) {
                    Some(w) => {
                        message[w] = 1.0;
                        beh.trust[if self.vocab.frame_of(f) == Some(1 + g) { 3 } else { 2 }][g]
                    }
                    None => 0.0, // an explanation about something else changes nothing
                }
            }
        };
        if trust == 0.0 {
            message.clone_from(&base);
        }
        Reaction { trust, message, base }
    }

    /// A user sequence's prompt (17 tokens): the persona recalls its belief b about the pair
    /// ("persona e r b"), reads the post and the intervention, decides whether to adopt the
    /// intervention's message (ADOPT or KEEP) and "SAYS e r"; the next token is the value it now
    /// believes.
    pub fn user_prompt(&self, g: usize, h: Headline, iv: &Intervention, b: usize, adopt: bool) -> Vec<u32> {
        let (e, r) = self.pair_tokens(h.pair);
        let mut s = vec![tok::GROUP0 + g as u32, e, r, self.vocab.value(b), tok::POST, e, r, self.vocab.value(h.value)];
        s.extend(iv.slot());
        s.extend([if adopt { tok::ADOPT } else { tok::KEEP }, tok::SAYS, e, r]);
        s
    }

    /// An explainer prompt (5 tokens): CHECK, the audience (a persona or ANY), the headline.
    /// The explainer continues with (frame, entity, relation, value).
    pub fn explainer_prompt(&self, audience: Option<usize>, h: Headline) -> Vec<u32> {
        let (e, r) = self.pair_tokens(h.pair);
        vec![tok::CHECK, audience.map_or(tok::ANY, |g| tok::GROUP0 + g as u32), e, r, self.vocab.value(h.value)]
    }

    /// The explanation a fully informed explainer writes: the audience's frame and the truth.
    pub fn gold_explanation(&self, audience: Option<usize>, p: usize) -> [u32; 4] {
        let (e, r) = self.pair_tokens(p);
        [tok::FRAME0 + audience.map_or(0, |g| 1 + g as u32), e, r, self.vocab.value(self.truth[p])]
    }

    /// The test feed: every held-out pair once true and once false (the rumour or, half the
    /// time, another false value).
    pub fn test_feed(&self, seed: u64) -> Vec<Headline> {
        let mut d = draws(seed, 2);
        let n = self.vocab.values;
        (0..self.pairs())
            .filter(|&p| self.held_out[p])
            .flat_map(|p| {
                let t = self.truth[p];
                let mut f = self.rumour[p];
                if n > 2 && d.unit() < 0.5 {
                    while f == self.rumour[p] {
                        f = d.other(n, t);
                    }
                }
                [Headline { pair: p, value: t }, Headline { pair: p, value: f }]
            })
            .collect()
    }
}
