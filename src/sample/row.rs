//! One row of the sampler (semantics in mod.rs): a few linear passes over the V logits, no sort.
//!
//! Passes: (1) validate + max; (2) top-k threshold by radix select on the logits' float bits,
//! counting; (3) tempered weights w (0 outside top-k) and their block sums; (4) top-p threshold by
//! radix select on the weights' float bits, summing mass; (5) block sums of the survivors and an
//! inverse-CDF draw: a sequential running sum over block sums picks the block, then a sequential
//! running sum inside it picks the token.
//!
//! Radix select (the CUDA kernel does the same with a block-wide histogram): bucket candidate
//! keys by their top 12 bits, walk buckets from the top until the running count/mass reaches
//! the target, then refine inside that bucket on the next 10 bits and the last 10. Candidates are
//! only the items above a cheap provable lower bound of the answer (see `top_k_key`, `top_p_min`),
//! because buckets below the boundary are never read.

use super::SamplingParams;
use crate::{Error, Result};

/// Key bits per radix level, most significant first (12 + 10 + 10 = 32): (shift, bits).
const LEVELS: [(u32, u32); 3] = [(20, 12), (10, 10), (0, 10)];
/// Token ids per block of the two-level inverse CDF.
const BLOCK: usize = 256;
/// The smallest positive f32: `w >= W_TINY` means "not masked" (masked tokens have w = 0).
const W_TINY: f32 = f32::from_bits(1);

/// Per-thread buffers reused across rows.
pub(crate) struct Scratch {
    /// Tempered weights of the current row, 0 where masked: (V,)
    w: Vec<f32>,
    /// Survivor mass per block of BLOCK ids: (ceil(V / BLOCK),)
    blocks: Vec<f64>,
    /// Radix histogram, one weight per bucket: (4096,)
    hist: Vec<f64>,
    /// (key, weight) of the radix-select candidates, packed at the front: (V,)
    cand: Vec<(u32, f32)>,
}

impl Scratch {
    pub(crate) fn new(v: usize) -> Self {
        let blocks = vec![0.0; v.div_ceil(BLOCK)];
        Scratch { w: vec![0.0; v], blocks, hist: vec![0.0; 1 << 12], cand: vec![(0, 0.0); v] }
    }
}

/// Order-preserving map from a non-NaN f32 to u32: x < y iff key(x) < key(y), with -0.0 == +0.0.
#[inline(always)]
pub(crate) fn logit_key(x: f32) -> u32 {
    let bits = (x + 0.0).to_bits(); // -0.0 + 0.0 = +0.0
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of `logit_key`.
fn key_logit(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 { key & 0x7FFF_FFFF } else { !key })
}

/// e^z for z <= 0 (z may be -inf); 0 below -87 (e^-87 = 1.6e-38, the bottom of the normal range).
/// Cody-Waite reduction z = n ln2 + r, |r| <= ln2/2, and the degree-6 Taylor polynomial of e^r
/// (error < 2 ulp). Hand-written so the loop vectorises and CUDA can repeat it; e^0 = 1 exactly.
#[inline(always)]
pub(crate) fn exp_nonpos(z: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer held in the low bits
    const LN2_HI: f32 = 0.693_359_4; // 355/512, so n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let zc = z.max(-87.0);
    let kf = zc * std::f32::consts::LOG2_E + MAGIC;
    let n = kf.to_bits() as i32 - MAGIC.to_bits() as i32; // round(z / ln2), in [-126, 0]
    let k = kf - MAGIC;
    let r = (zc - k * LN2_HI) - k * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    if z < -87.0 {
        0.0
    } else {
        p * scale
    }
}

/// Largest value of a slice, and whether it holds a NaN or +inf (8 lanes, so the loop vectorises).
fn max_and_bad(x: &[f32]) -> (f32, bool) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut bad = false;
    let chunks = x.chunks_exact(8);
    for &xi in chunks.remainder() {
        bad |= is_bad(xi);
        lanes[0] = lanes[0].max(xi);
    }
    for c in chunks {
        for j in 0..8 {
            bad |= is_bad(c[j]);
            lanes[j] = lanes[j].max(c[j]);
        }
    }
    (lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)), bad)
}

/// Writes `item(x)` for the values x of `src` with `keep(x)` to the front of `cand`, in order, and
/// returns their number. Groups of 8 with no kept value are skipped (top-k keeps a few hundred
/// of 32k); inside a group it is branch-free (store always, advance when kept), because top-p
/// keeps about 1 in 4, a rate at which a branch would mispredict all the time.
fn compact(cand: &mut [(u32, f32)], src: &[f32], keep: impl Fn(f32) -> bool, item: impl Fn(f32) -> (u32, f32)) -> usize {
    let mut n = 0;
    for group in src.chunks(8) {
        if !group.iter().fold(false, |any, &x| any | keep(x)) {
            continue;
        }
        for &x in group {
            if let Some(slot) = cand.get_mut(n) {
                *slot = item(x);
            }
            n += keep(x) as usize;
        }
    }
    n
}

/// NaN or +inf: a logit the sampler refuses (-inf is fine: probability 0).
#[inline(always)]
fn is_bad(x: f32) -> bool {
    x.is_nan() || x == f32::INFINITY
}

/// Largest logit (NaN and +inf refused; an all -inf row refused).
fn row_max(x: &[f32]) -> Result<f32> {
    let (m, bad) = max_and_bad(x);
    if bad {
        let (i, xi) = x.iter().enumerate().find(|(_, &xi)| is_bad(xi)).map(|(i, &xi)| (i, xi)).unwrap_or((0, f32::NAN));
        return Err(Error::Msg(format!("logit {xi} at token {i} (logits must be finite or -inf)")));
    }
    if m == f32::NEG_INFINITY {
        return Err(Error::Msg("every logit is -inf: nothing can be sampled".into()));
    }
    Ok(m)
}

/// Sum of the weights >= w_min in each block of BLOCK ids, in f64 (4 lanes, then pairwise).
fn block_sums(w: &[f32], w_min: f32, out: &mut [f64]) {
    for (blk, sum) in w.chunks(BLOCK).zip(out.iter_mut()) {
        let mut lanes = [0.0f64; 4];
        let chunks = blk.chunks_exact(4);
        for &wi in chunks.remainder() {
            lanes[0] += if wi >= w_min { wi as f64 } else { 0.0 };
        }
        for c in chunks {
            for j in 0..4 {
                lanes[j] += if c[j] >= w_min { c[j] as f64 } else { 0.0 };
            }
        }
        *sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
}

/// The token for one row given its uniform `u` in [0, 1).
pub(crate) fn sample_row(x: &[f32], p: &SamplingParams, u: f64, s: &mut Scratch) -> Result<u32> {
    let v = x.len();
    let m = row_max(x)?;
    if p.temperature == 0.0 {
        // greedy: the first maximum
        return Ok(x.iter().position(|&xi| xi == m).unwrap_or(0) as u32);
    }

    // top-k: keep logits >= the k-th largest (all ties kept). -inf keeps everything.
    let x_k = if p.top_k > 0 && p.top_k < v { key_logit(s.top_k_key(x, p.top_k)) } else { f32::NEG_INFINITY };

    // temperature: w = exp((x - m) / T) in [0, 1], exactly 1 at the max; 0 outside top-k.
    let t = p.temperature;
    for (wi, &xi) in s.w.iter_mut().zip(x) {
        let e = exp_nonpos((xi - m) / t);
        *wi = if xi >= x_k { e } else { 0.0 };
    }
    block_sums(&s.w, W_TINY, &mut s.blocks);

    // top-p on the top-k survivors, then min-p (p_i >= min_p * p_max  <=>  w_i >= min_p).
    let mut w_min = W_TINY.max(p.min_p);
    if p.top_p < 1.0 {
        let mass: f64 = s.blocks.iter().sum();
        w_min = w_min.max(s.top_p_min(p.top_p as f64, mass));
    }
    if w_min > W_TINY {
        block_sums(&s.w, w_min, &mut s.blocks);
    }
    Ok(draw(&s.w, &s.blocks, w_min, u))
}

/// Inverse CDF over the weights >= w_min, in id order: the first token at which the running mass
/// exceeds u * total. Both running sums are sequential, so each is monotonic, and the block walk
/// repeats the total's additions exactly, so it always stops on a block with positive mass.
fn draw(w: &[f32], blocks: &[f64], w_min: f32, u: f64) -> u32 {
    let total: f64 = blocks.iter().fold(0.0, |a, &b| a + b);
    let target = u * total;
    let mut acc = 0.0f64;
    let mut b = blocks.len() - 1;
    for (j, &bs) in blocks.iter().enumerate() {
        if acc + bs > target {
            b = j;
            break;
        }
        acc += bs;
    }
    // inside block b: the block sum was added in lanes, so the sequential sum may differ in the
    // last bit; if it never exceeds the rest of the target, take the block's last survivor.
    let rest = target - acc;
    let (start, end) = (b * BLOCK, ((b + 1) * BLOCK).min(w.len()));
    let mut run = 0.0f64;
    let mut last = None;
    for (i, &wi) in w[start..end].iter().enumerate() {
        if wi >= w_min {
            run += wi as f64;
            last = Some(start + i);
            if run > rest {
                return (start + i) as u32;
            }
        }
    }
    // `last` exists: the block has positive mass. The fallback (the row's first max survives every
    // filter) only guards against a broken invariant.
    last.unwrap_or_else(|| w.iter().position(|&wi| wi == 1.0).unwrap_or(0)) as u32
}

impl Scratch {
    /// Key of the k-th largest logit (0 < k < V). Lower bound used to pick candidates: split the row
    /// into k chunks; the smallest chunk maximum is <= the k-th largest (k distinct items reach it).
    fn top_k_key(&mut self, x: &[f32], k: usize) -> u32 {
        let len = x.len() / k;
        let floor = (0..k)
            .map(|c| {
                let chunk = if c + 1 == k { &x[c * len..] } else { &x[c * len..(c + 1) * len] };
                max_and_bad(chunk).0
            })
            .fold(f32::INFINITY, f32::min);
        let n = compact(&mut self.cand, x, |xi| xi >= floor, |xi| (logit_key(xi), 1.0));
        self.radix_select(n, k as f64)
    }

    /// Smallest weight kept by top-p: the largest w such that the mass of the weights >= w reaches
    /// p * mass. Lower bound used to pick candidates: the (at most V) weights below
    /// L = (1 - p) * mass / V weigh less than (1 - p) * mass together, so the answer is >= L.
    fn top_p_min(&mut self, p: f64, mass: f64) -> f32 {
        let floor = ((1.0 - p) * mass / self.w.len() as f64 * 0.999) as f32; // 0.999: rounding margin
        let floor = floor.max(W_TINY);
        let n = compact(&mut self.cand, &self.w, |wi| wi >= floor, |wi| (wi.to_bits(), wi));
        f32::from_bits(self.radix_select(n, p * mass))
    }

    /// Over the first `n` candidates (key, weight >= 0): the largest key t such that the weight of
    /// candidates with key >= t is >= `target` > 0. If rounding leaves the candidates' total just
    /// short of the target, it settles on the lowest candidate key (keep them all).
    fn radix_select(&mut self, mut n: usize, target: f64) -> u32 {
        let mut above = 0.0f64; // weight of the candidates whose key lies above the current prefix
        let mut prefix = 0u32;
        for &(shift, bits) in &LEVELS {
            let mask = (1u32 << bits) - 1;
            // histogram (all zero on entry); only buckets lo..=hi are touched, walked and cleared.
            let (mut lo, mut hi) = (usize::MAX, 0);
            for &(key, w) in &self.cand[..n] {
                let b = ((key >> shift) & mask) as usize;
                self.hist[b] += w as f64;
                (lo, hi) = (lo.min(b), hi.max(b));
            }
            if n == 0 {
                return prefix; // no candidates: cannot happen for a valid row
            }
            let hist = &mut self.hist[lo..=hi];
            // walk down from the top bucket; the boundary one is where `above` reaches the target.
            let (mut chosen, mut lowest) = (None, None);
            for (b, &h) in hist.iter().enumerate().rev() {
                if h > 0.0 {
                    if above + h >= target {
                        chosen = Some(b);
                        break;
                    }
                    above += h;
                    lowest = Some(b);
                }
            }
            let digit = match (chosen, lowest) {
                (Some(b), _) => b,
                (None, Some(b)) => {
                    above -= hist[b];
                    b
                }
                (None, None) => 0, // all weights zero (cannot happen): the lowest bucket
            };
            hist.fill(0.0);
            let digit = (lo + digit) as u32;
            prefix |= digit << shift;
            // keep the candidates inside the chosen bucket (in place, branch-free)
            let mut kept = 0;
            for i in 0..n {
                let c = self.cand[i];
                self.cand[kept] = c;
                kept += ((c.0 >> shift) & mask == digit) as usize;
            }
            n = kept;
        }
        prefix
    }
}
