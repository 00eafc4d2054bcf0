//! e^x for f32 in straight-line arithmetic, so loops over it vectorise (libm's expf is one call
//! per element, and was a fifth of a training step's time in GELU, softmax and attention).
//!
//! Range reduction: x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2, so e^x = 2^n e^r.
//! ln2 is split into a short head (exact when multiplied by n) and a tail, so r carries no
//! cancellation error. e^r is its Taylor series to degree 7: the truncation error
//! |r|^8 / 8! < 5.3e-9 is below half an f32 ulp. 2^n is built from exponent bits in two halves
//! (2^(n/2) 2^(n - n/2)), so n from -150 to 145 never leaves the normal range; the product then
//! underflows to 0 or overflows to inf exactly where e^x does. NaN stays NaN. Error: within
//! 2 ulp of the correctly rounded result (tests/elementwise.rs sweeps it).

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits, so n * LN2_HI is exact for |n| < 2^15.
const LN2_HI: f32 = 355.0 / 512.0; // 0.693359375, exactly
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it to |y| < 2^22 rounds y to an integer held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Beyond these bounds e^x is already 0 or inf; the clamp keeps n small. NaN passes through.
    let xc = x.clamp(-110.0, 100.0);
    let t = xc * LOG2E + ROUND;
    let nf = t - ROUND;
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = (xc - nf * LN2_HI) - nf * LN2_LO;
    // e^r = 1 + r + r^2/2! + ... + r^7/7!, Horner form.
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let h = n >> 1;
    let s1 = f32::from_bits((h.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n.wrapping_sub(h).wrapping_add(127) as u32) << 23);
    p * s1 * s2
}
