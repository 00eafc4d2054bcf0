//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
//! as 1, 2, 3", SC'11). A random word is a pure function of (key, counter), so any element, row
//! or sampling step can be drawn independently, in any order, on the CPU or in a CUDA kernel, and
//! the result does not depend on batch composition or thread count. kernels/common.cuh mirrors this
//! file bit for bit. Checked against the paper's published known-answer vectors (tests/rng.rs).
//!
//! Counter layout used across kiln: `[index_lo, index_hi, stream, tag]`, key = the 64-bit seed.
//! Tensor creation uses tag 0 with `index` = element / 4; the sampler uses tag 1 with
//! (row, step) packed into the index word pair; `Draws` (host-side generators of tasks and
//! worlds) uses tag 11 unless a method asks for another.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9; // golden ratio
const W1: u32 = 0xBB67_AE85; // sqrt(3) - 1

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with `rounds` rounds (10 is the standard, crush-resistant choice).
#[inline]
pub fn philox4x32(rounds: u32, mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for r in 0..rounds {
        if r > 0 {
            key = [key[0].wrapping_add(W0), key[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, ctr[0]);
        let (hi1, lo1) = mulhilo(M1, ctr[2]);
        ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
    }
    ctr
}

/// A seeded stream of Philox blocks: `block(stream, index, tag)` is a pure function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Philox {
    key: [u32; 2],
}

impl Philox {
    pub fn new(seed: u64) -> Self {
        Philox { key: [seed as u32, (seed >> 32) as u32] }
    }
    /// Four random words for counter (index, stream, tag).
    #[inline]
    pub fn block(&self, index: u64, stream: u32, tag: u32) -> [u32; 4] {
        philox4x32(10, [index as u32, (index >> 32) as u32, stream, tag], self.key)
    }
}

/// Uniform in [0, 1) with 24 random bits: exactly representable in f32, so CPU and GPU agree.
#[inline]
pub fn u32_to_unit_f32(x: u32) -> f32 {
    (x >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in (0, 1]: safe to take the logarithm of.
#[inline]
pub fn u32_to_open_unit_f32(x: u32) -> f32 {
    ((x >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// `n` uniforms in [lo, hi) for stream `stream`: element i comes from block i/4, word i%4.
pub fn uniform_vec(seed: u64, stream: u32, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let g = Philox::new(seed);
    (0..n)
        .map(|i| {
            let w = g.block((i / 4) as u64, stream, 0)[i % 4];
            lo + (hi - lo) * u32_to_unit_f32(w)
        })
        .collect()
}

/// `n` standard normals (Box-Muller on the two word pairs of each block), times `std`, plus `mean`.
pub fn normal_vec(seed: u64, stream: u32, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let g = Philox::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n {
        let w = g.block(i, stream, 0);
        for pair in [(w[0], w[1]), (w[2], w[3])] {
            let u1 = u32_to_open_unit_f32(pair.0) as f64;
            let u2 = u32_to_unit_f32(pair.1) as f64;
            let r = (-2.0 * u1.ln()).sqrt();
            let t = 2.0 * std::f64::consts::PI * u2;
            for z in [r * t.cos(), r * t.sin()] {
                if out.len() < n {
                    out.push(mean + std * z as f32);
                }
            }
        }
        i += 1;
    }
    out
}

/// Uniform integer in 0..n from one 32-bit word (multiply-shift, no modulo).
#[inline]
pub fn below(word: u32, n: u64) -> u64 {
    (word as u64 * n) >> 32
}

/// A stream of uniform draws for host-side generators (tasks, worlds, corpora): draw j is word 0
/// of Philox block (first + j, stream, tag), so a generator's output is a pure function of its
/// seed and the order of its draws.
#[derive(Clone, Debug)]
pub struct Draws {
    g: Philox,
    stream: u32,
    tag: u32,
    next: u64,
}

impl Draws {
    /// The default layout: tag 11, from counter 0.
    pub fn new(seed: u64, stream: u32) -> Draws {
        Draws::at(seed, stream, 11, 0)
    }

    /// Any stream and tag, from counter `first`.
    pub fn at(seed: u64, stream: u32, tag: u32, first: u64) -> Draws {
        Draws { g: Philox::new(seed), stream, tag, next: first }
    }

    fn word(&mut self) -> u32 {
        let w = self.g.block(self.next, self.stream, self.tag)[0];
        self.next += 1;
        w
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        below(self.word(), n as u64) as usize
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in [0, 1) (24 random bits).
    pub fn unit(&mut self) -> f64 {
        u32_to_unit_f32(self.word()) as f64
    }

    /// Uniform in 0..n, skipping `not` (n >= 2).
    pub fn other(&mut self, n: usize, not: usize) -> usize {
        (not + 1 + self.below(n - 1)) % n
    }

    /// An index drawn from the distribution `p` (non-negative, summing to 1).
    pub fn pick(&mut self, p: &[f64]) -> usize {
        let u = self.unit();
        let mut acc = 0.0;
        for (i, &q) in p.iter().enumerate() {
            acc += q;
            if u < acc {
                return i;
            }
        }
        p.iter().rposition(|&q| q > 0.0).unwrap_or(0) // rounding left u above the total
    }
}
