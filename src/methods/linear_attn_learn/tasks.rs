//! Data sets for linear-attn-learn: token sequences z (N, T, D), targets y (N, T, D) and a mask
//! of the supervised positions. All f64 and drawn from Philox streams (src/rng.rs), so a seed
//! fixes every number.
//!
//!   teacher  tokens from one of several distributions, targets from a random MHLA teacher
//!   memory   key-value associative memory: K (one-hot key, random value) pairs, then K queries
//!   dfa      one step of a random finite automaton given in context: its transition table as
//!            tokens [state | symbol | next state], then queries [state | symbol | 0]

use super::features::Mhla;
use crate::rng;
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct Dataset {
    pub n: usize,
    pub t: usize,
    pub d: usize,
    /// (N, T, D)
    pub z: Vec<f64>,
    /// (N, T, D); only supervised positions matter
    pub y: Vec<f64>,
    /// (N, T): which positions are supervised
    pub mask: Vec<bool>,
}

impl Dataset {
    /// M, the number of supervised positions.
    pub fn rows(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }
    /// Supervised rows of y: (M, D).
    pub fn targets(&self) -> Vec<f64> {
        self.supervised(&self.y)
    }
    /// Supervised rows of any (N, T, D) array: (M, D).
    pub fn supervised(&self, full: &[f64]) -> Vec<f64> {
        let d = self.d;
        self.mask.iter().enumerate().filter(|(_, &m)| m).flat_map(|(r, _)| full[r * d..(r + 1) * d].iter().copied()).collect()
    }
}

/// How teacher-task tokens are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Tokens {
    /// z ~ N(0, I): the generic case.
    Gaussian,
    /// z ~ N(0, I) with the last coordinate set to 0: tokens span a (D-1)-dim subspace.
    Subspace,
    /// Every token of a sequence is r_s u for one random unit direction u per sequence
    /// (r_s ~ N(0, 1)): tokens span all of R^D across sequences, yet S_t = R u u^T and the
    /// features only reach the fully symmetric tensors (D (D+1) (D+2) / 6 of them).
    Collinear,
    /// z ~ N(mean 1, 2^2 I): the out-of-distribution test set.
    Shifted,
}

impl Tokens {
    pub fn name(self) -> &'static str {
        match self {
            Tokens::Gaussian => "gaussian",
            Tokens::Subspace => "subspace",
            Tokens::Collinear => "collinear",
            Tokens::Shifted => "shifted",
        }
    }
}

fn normals(seed: u64, stream: u32, n: usize) -> Vec<f64> {
    rng::normal_vec(seed, stream, n, 0.0, 1.0).into_iter().map(f64::from).collect()
}

/// Integers uniform in [0, k).
fn ints(seed: u64, stream: u32, n: usize, k: usize) -> Vec<usize> {
    rng::uniform_vec(seed, stream, n, 0.0, 1.0).into_iter().map(|u| ((u as f64 * k as f64) as usize).min(k - 1)).collect()
}

/// A random permutation of 0..k per row, `rows` of them (Fisher-Yates).
fn permutations(seed: u64, stream: u32, rows: usize, k: usize) -> Vec<Vec<usize>> {
    let u = rng::uniform_vec(seed, stream, rows * k, 0.0, 1.0);
    (0..rows)
        .map(|r| {
            let mut p: Vec<usize> = (0..k).collect();
            for i in (1..k).rev() {
                let j = ((u[r * k + i] as f64 * (i + 1) as f64) as usize).min(i);
                p.swap(i, j);
            }
            p
        })
        .collect()
}

/// Tokens (N, T, D) of the given kind.
pub fn tokens(kind: Tokens, n: usize, t: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut z = normals(seed, 10, n * t * d);
    match kind {
        Tokens::Gaussian => {}
        Tokens::Subspace => z.chunks_mut(d).for_each(|tok| tok[d - 1] = 0.0),
        Tokens::Collinear => {
            let dirs = normals(seed, 11, n * d);
            for seq in 0..n {
                let u = &dirs[seq * d..(seq + 1) * d];
                let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                for pos in 0..t {
                    let row = (seq * t + pos) * d;
                    let r = z[row];
                    for c in 0..d {
                        z[row + c] = r * u[c] / norm;
                    }
                }
            }
        }
        Tokens::Shifted => z.iter_mut().for_each(|v| *v = 1.0 + 2.0 * *v),
    }
    z
}

/// Tokens of `kind`, targets from `teacher` at every position.
pub fn teacher_data(teacher: &Mhla, kind: Tokens, n: usize, t: usize, seed: u64) -> Dataset {
    let d = teacher.d;
    let z = tokens(kind, n, t, d, seed);
    let y = teacher.apply(&z, n, t);
    Dataset { n, t, d, z, y, mask: vec![true; n * t] }
}

/// Associative memory: D = K + dv, T = 2K. Positions 0..K hold [e_key; value] for every key in a
/// random order (values ~ N(0, I_dv), fresh per sequence); positions K..2K hold the queries
/// [e_key; 0] in another random order, each supervised with target [0; value of that key].
/// One head (Q = key selector, V = value selector) solves it exactly.
pub fn memory(n: usize, keys: usize, dv: usize, seed: u64) -> Dataset {
    let (d, t) = (keys + dv, 2 * keys);
    let values = normals(seed, 20, n * keys * dv);
    let (ctx, qry) = (permutations(seed, 21, n, keys), permutations(seed, 22, n, keys));
    let mut ds = Dataset { n, t, d, z: vec![0.0; n * t * d], y: vec![0.0; n * t * d], mask: vec![false; n * t] };
    for seq in 0..n {
        let value = |k: usize| &values[(seq * keys + k) * dv..(seq * keys + k + 1) * dv];
        for j in 0..keys {
            let row = (seq * t + j) * d;
            let k = ctx[seq][j];
            ds.z[row + k] = 1.0;
            ds.z[row + keys..row + d].copy_from_slice(value(k));
            let qrow = (seq * t + keys + j) * d;
            let k = qry[seq][j];
            ds.z[qrow + k] = 1.0;
            ds.y[qrow + keys..qrow + d].copy_from_slice(value(k));
            ds.mask[seq * t + keys + j] = true;
        }
    }
    ds
}

/// Retrieval accuracy: a prediction is right when the value it is nearest to, among the K values
/// in its sequence's context, is the true one. pred: (M, D) over the supervised rows.
pub fn memory_accuracy(ds: &Dataset, keys: usize, pred: &[f64]) -> f64 {
    let (d, t) = (ds.d, ds.t);
    let target = ds.targets();
    let mut right = 0;
    for (r, (p, y)) in pred.chunks(d).zip(target.chunks(d)).enumerate() {
        let seq = r / keys;
        let dist = |v: &[f64]| (keys..d).map(|c| (p[c] - v[c - keys]).powi(2)).sum::<f64>();
        let best = (0..keys).map(|j| &ds.z[(seq * t + j) * d + keys..(seq * t + j + 1) * d]).min_by(|a, b| dist(a).total_cmp(&dist(b)));
        if best.is_some_and(|v| v.iter().zip(&y[keys..]).all(|(a, b)| a == b)) {
            right += 1;
        }
    }
    right as f64 / (pred.len() / d).max(1) as f64
}

/// In-context automaton step: a fresh random DFA per sequence with `states` states and `symbols`
/// symbols (delta(q, a) uniform). D = 2 states + symbols, T = 2 states symbols. Positions
/// 0..QS hold the table [e_q | e_a | e_delta(q,a)] in a random order; positions QS..2QS the
/// queries [e_q | e_a | 0] in another order, supervised with target [0 | 0 | e_delta(q,a)].
/// Keys are factored (state and symbol one-hots side by side), so reading the table needs an AND
/// of two matches, which a cubic feature map can only approximate.
pub fn dfa(n: usize, states: usize, symbols: usize, seed: u64) -> Dataset {
    let qs = states * symbols;
    let (d, t) = (2 * states + symbols, 2 * qs);
    let delta = ints(seed, 30, n * qs, states);
    let (ctx, qry) = (permutations(seed, 31, n, qs), permutations(seed, 32, n, qs));
    let mut ds = Dataset { n, t, d, z: vec![0.0; n * t * d], y: vec![0.0; n * t * d], mask: vec![false; n * t] };
    for seq in 0..n {
        for j in 0..qs {
            let row = (seq * t + j) * d;
            let e = ctx[seq][j];
            let (q, a) = (e / symbols, e % symbols);
            ds.z[row + q] = 1.0;
            ds.z[row + states + a] = 1.0;
            ds.z[row + states + symbols + delta[seq * qs + e]] = 1.0;
            let qrow = (seq * t + qs + j) * d;
            let e = qry[seq][j];
            let (q, a) = (e / symbols, e % symbols);
            ds.z[qrow + q] = 1.0;
            ds.z[qrow + states + a] = 1.0;
            ds.y[qrow + states + symbols + delta[seq * qs + e]] = 1.0;
            ds.mask[seq * t + qs + j] = true;
        }
    }
    ds
}

/// Next-state accuracy: argmax over the next-state block of each prediction. pred: (M, D).
pub fn dfa_accuracy(ds: &Dataset, states: usize, symbols: usize, pred: &[f64]) -> f64 {
    let (d, off) = (ds.d, states + symbols);
    let target = ds.targets();
    let argmax = |v: &[f64]| (0..states).max_by(|&a, &b| v[off + a].total_cmp(&v[off + b])).unwrap_or(0);
    let right = pred.chunks(d).zip(target.chunks(d)).filter(|(p, y)| argmax(p) == argmax(y)).count();
    right as f64 / (pred.len() / d).max(1) as f64
}
