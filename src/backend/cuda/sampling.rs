//! Launch wrappers for kernels/sampling.cu. Twin: src/sample/ (`kiln::sample::sample`): for the
//! same (seed, row id, step) the CUDA sampler returns the same token as the CPU one (the kernel
//! mirrors row.rs's passes and roundings; see the .cu header).

use super::{Arg, CudaStorage, Dev, DevBuf};
use crate::sample::SamplingParams;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};
use std::sync::Arc;

const FAMILY: &str = "sampling";
/// Threads per sample_pick block (one block per row): SAMPLE_THREADS in the .cu.
pub const THREADS: u32 = 1024;
/// sample_scan's block and the logits each block reads (SCAN_THREADS, SCAN_CHUNK).
const SCAN_THREADS: u32 = 256;
const SCAN_CHUNK: usize = 4096;
/// Candidates one chunk may pass on (CHUNK_CAP) and the most top-k survivors the sparse path
/// takes (PICK_SURVIVORS).
const CHUNK_CAP: usize = 512;
const PICK_SURVIVORS: usize = 1024;
/// Ids per block of the two-level inverse CDF (SAMPLE_BLOCK, row.rs BLOCK).
const BLOCK: usize = 256;
/// First radix level's bins (HIST_BINS).
const HIST_BINS: usize = 4096;
/// Shared memory sample_pick declares statically (the scan and reduction buffers), with room: the
/// dynamic part may take the device's opt-in limit less this.
const STATIC_SMEM: usize = 4 * 1024;

/// sample_pick's dynamic shared memory for vocabulary size `v`: the larger of sample_row's layout
/// (the f64 histogram, at least one f64 per 256-id block and one more for draw_dense's running
/// sums, and 4 f64 lane sums per block) and pick_sparse's (histogram, then the survivors' block
/// masses, ids and weights), then the chunk offsets. Returns (offset of the chunk offsets, total
/// bytes).
fn smem_bytes(v: usize) -> (usize, usize) {
    let nblk = v.div_ceil(BLOCK);
    let row = (HIST_BINS.max(nblk + 1) + 4 * nblk) * 8;
    let sparse = (HIST_BINS + PICK_SURVIVORS) * 8 + 2 * PICK_SURVIVORS * 4;
    let at = row.max(sparse);
    (at, at + 4 * (v.div_ceil(SCAN_CHUNK) + 1))
}

/// Per-row parameter words for the kernel: [temperature, top_k (0 = off), top_p, min_p, row id].
pub fn param_words(v: usize, params: &[SamplingParams], rows: &[u32]) -> Vec<u32> {
    params
        .iter()
        .zip(rows)
        .flat_map(|(p, &row)| {
            let k = if p.top_k == 0 || p.top_k >= v { 0 } else { p.top_k as u32 };
            [p.temperature.to_bits(), k, p.top_p.to_bits(), p.min_p.to_bits(), row]
        })
        .collect()
}

/// Whether any row samples with no filter but min-p (top-k off, top-p 1, T > 0): such rows need
/// sample_mass, the third launch.
pub fn any_plain(v: usize, params: &[SamplingParams]) -> bool {
    params.iter().any(|p| p.temperature != 0.0 && (p.top_k == 0 || p.top_k >= v) && p.top_p >= 1.0)
}

/// The chunked sampler's scratch for B rows of V logits: per-chunk results (B, nchunk, 4) u32,
/// candidates (B, nchunk, CHUNK_CAP) f32 logits and u32 ids, block masses (B, ceil(V / 256)) f64
/// (allocated only when `plain`). Made once per call by `sample`, once per shape by the bench.
pub struct Scratch {
    v: usize,
    b: usize,
    plain: bool,
    stats: DevBuf,
    cval: DevBuf,
    cid: DevBuf,
    bmass: DevBuf,
}

impl Scratch {
    pub fn new(dev: &Arc<Dev>, v: usize, b: usize, plain: bool) -> Result<Self> {
        let nchunk = v.div_ceil(SCAN_CHUNK);
        Ok(Scratch {
            v,
            b,
            plain,
            stats: dev.alloc(b * nchunk * 4 * 4)?,
            cval: dev.alloc(b * nchunk * CHUNK_CAP * 4)?,
            cid: dev.alloc(b * nchunk * CHUNK_CAP * 4)?,
            bmass: dev.alloc(if plain { b * v.div_ceil(BLOCK) * 8 } else { 8 })?,
        })
    }
}

/// Is the chunked path on (the default), or turned off with `KILN_SAMPLE=rows` (every row on
/// `sample_row`, the one-block multi-pass kernel that was measured on the H100)?
pub fn chunked() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("KILN_SAMPLE").map_or(true, |v| v != "rows"))
}

/// The launches alone (the bench times this): `prm` from `param_words` uploaded, `out` (2B,) u32,
/// `scratch` made for (V, B) with `plain` from `any_plain`. sample_scan reads each 4096-logit
/// chunk once (grid B x chunks); sample_mass (only when plain) sums the plain rows' weights per
/// 256-id block; sample_pick finishes each row (kernels/sampling.cu).
#[allow(clippy::too_many_arguments)]
pub fn launch(logits: &CudaStorage, v: usize, b: usize, prm: &DevBuf, seed: u64, step: u32, out: &DevBuf, scratch: &Scratch) -> Result<()> {
    launch_on(logits, v, b, prm, seed, step, out, scratch, chunked())
}

/// `launch` with the chunked path on or off (off: every row on the one-block `sample_row`, what
/// `KILN_SAMPLE=rows` does; the bench's comparison row).
#[allow(clippy::too_many_arguments)]
pub fn launch_on(logits: &CudaStorage, v: usize, b: usize, prm: &DevBuf, seed: u64, step: u32, out: &DevBuf, scratch: &Scratch, on: bool) -> Result<()> {
    if (scratch.v, scratch.b) != (v, b) {
        return Err(Error::Msg(format!("sample: scratch made for V = {}, B = {}, used for V = {v}, B = {b}", scratch.v, scratch.b)));
    }
    let Scratch { plain, stats, cval, cid, bmass, .. } = scratch;
    let plain = *plain && on;
    let dev = logits.dev();
    let (scan, mass, pick) = match logits.dtype {
        DType::F32 => ("sample_scan_f32", "sample_mass_f32", "sample_pick_f32"),
        DType::BF16 => ("sample_scan_bf16", "sample_mass_bf16", "sample_pick_bf16"),
        d => return Err(Error::UnsupportedDType { op: "sample", dtype: d, detail: "CUDA sampling takes F32 or BF16 logits" }),
    };
    let (coff_at, smem) = smem_bytes(v);
    let max_smem = (dev.smem_optin as usize).saturating_sub(STATIC_SMEM);
    if smem > max_smem {
        let most = (max_smem / 8).saturating_sub(HIST_BINS) / 4 * BLOCK * 31 / 32; // leaves room for the chunk offsets
        let most = most.min((max_smem / 8 / 5).saturating_sub(1) * BLOCK); // hist grown to nblk + 1
        return Err(Error::Msg(format!("sample: the CUDA sampler supports V up to about {most}, got {v}")));
    }
    if b > i32::MAX as usize {
        return Err(Error::Msg(format!("sample: too many rows ({b}) for one launch")));
    }
    let nchunk = v.div_ceil(SCAN_CHUNK);
    let f = dev.func(FAMILY, scan)?;
    let args = [logits.arg(), Arg::U32(v as u32), prm.arg(), stats.arg(), cval.arg(), cid.arg(), Arg::U32(on as u32)];
    // SAFETY (launch): logits hold B * V elements, prm 5B words (checked by callers); the scratch
    // was made for this (V, B) (checked above).
    dev.launch(&f, (b as u32, nchunk as u32, 1), (SCAN_THREADS, 1, 1), 0, &args)?;
    if plain {
        let f = dev.func(FAMILY, mass)?;
        let args = [logits.arg(), Arg::U32(v as u32), prm.arg(), stats.arg(), bmass.arg()];
        // SAFETY (launch): as above; with `plain` bmass holds B * ceil(V / 256) f64.
        dev.launch(&f, (b as u32, nchunk as u32, 1), (SCAN_THREADS, 1, 1), 0, &args)?;
    }
    let f = dev.func(FAMILY, pick)?;
    let args = [
        logits.arg(),
        Arg::U32(v as u32),
        prm.arg(),
        Arg::U64(seed),
        Arg::U32(step),
        out.arg(),
        Arg::U32(b as u32),
        Arg::U32(nchunk as u32),
        stats.arg(),
        cval.arg(),
        cid.arg(),
        bmass.arg(),
        Arg::U32(coff_at as u32),
        Arg::U32(on as u32 | (plain as u32) << 1),
    ];
    // SAFETY (launch): as above; out holds 2B words (checked by callers); smem covers coff_at plus
    // nchunk + 1 offsets; bmass is read only when mode bit 1 says sample_mass filled it.
    dev.launch(&f, (b as u32, 1, 1), (THREADS, 1, 1), smem as u32, &args)
}

/// One token id per row of the (B, V) logits (B = params.len()); same contract as
/// `kiln::sample::sample`, including its error messages for bad shapes and parameters.
pub fn sample(logits: &CudaStorage, v: usize, params: &[SamplingParams], seed: u64, rows: &[u32], step: u32) -> Result<Vec<u32>> {
    let b = params.len();
    if v == 0 || v > u32::MAX as usize {
        return Err(Error::Msg(format!("sample: vocabulary size V must be in 1..=2^32-1, got {v}")));
    }
    if b.checked_mul(v) != Some(logits.len) {
        let detail = format!("logits hold {} values, expected B * V with B = {b} (one SamplingParams per row)", logits.len);
        return Err(Error::shape("sample", &Shape::from([logits.len]), &Shape::from([b, v]), detail));
    }
    if rows.len() != b {
        let detail = format!("{} row ids for {b} rows", rows.len());
        return Err(Error::shape("sample", &Shape::from([rows.len()]), &Shape::from([b]), detail));
    }
    for (r, p) in params.iter().enumerate() {
        p.validate().map_err(|e| Error::Msg(format!("{e} (batch row {r}, row id {})", rows[r])))?;
    }
    if b == 0 {
        return Ok(vec![]);
    }
    let dev = logits.dev();
    let prm = dev.upload(&param_words(v, params, rows))?;
    let out = dev.alloc(2 * b * 4)?;
    let scratch = Scratch::new(dev, v, b, any_plain(v, params))?;
    launch(logits, v, b, &prm, seed, step, &out, &scratch)?;
    let host: Vec<u32> = out.download()?;
    let (tokens, status) = host.split_at(b);
    for r in 0..b {
        let why = match status[r] {
            0 if (tokens[r] as usize) < v => continue,
            0 => format!("the kernel returned token {} >= V = {v} (a kernel bug)", tokens[r]),
            1 => format!("logit NaN or +inf at token {} (logits must be finite or -inf)", tokens[r]),
            2 => "every logit is -inf: nothing can be sampled".to_string(),
            s => format!("unexpected kernel status {s} (a kernel bug)"),
        };
        return Err(Error::Msg(format!("sample: batch row {r} (row id {}): {why}", rows[r])));
    }
    Ok(tokens.to_vec())
}

/// The sampler's uniform for each row id on the GPU (`kiln::sample::row_uniform` there): a debug
/// entry for the RNG parity test.
pub fn row_uniforms(dev: &Arc<Dev>, seed: u64, rows: &[u32], step: u32) -> Result<Vec<f64>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let r = dev.upload(rows)?;
    let out = dev.alloc(rows.len() * 8)?;
    let f = dev.func(FAMILY, "sampler_uniform")?;
    let grid = (rows.len().div_ceil(256) as u32, 1, 1);
    // SAFETY (launch): rows holds n ids, out n f64.
    dev.launch(&f, grid, (256, 1, 1), 0, &[r.arg(), Arg::U32(rows.len() as u32), Arg::U64(seed), Arg::U32(step), out.arg()])?;
    out.download()
}

/// Bench-only sort-based baseline (kernels/sampling.cu `sort_sample_f32`): bitonic sort of each
/// row, then softmax / top-k / top-p / draw on the sorted prefix. `keys` and `ids` are scratch of
/// B * P elements (4 bytes each), P = V rounded up to a power of two; `out` (B,) u32.
#[allow(clippy::too_many_arguments)]
pub fn sort_baseline_launch(logits: &CudaStorage, v: usize, b: usize, prm: &DevBuf, seed: u64, step: u32, keys: &DevBuf, ids: &DevBuf, out: &DevBuf) -> Result<()> {
    logits.expect("sort_sample", DType::F32)?;
    let p2 = v.next_power_of_two();
    if keys.bytes < b * p2 * 4 || ids.bytes < b * p2 * 4 || out.bytes < b * 4 || p2 > u32::MAX as usize {
        return Err(Error::Msg("sort_sample: scratch buffers too small".into()));
    }
    let dev = logits.dev();
    let f = dev.func(FAMILY, "sort_sample_f32")?;
    let args = [logits.arg(), Arg::U32(v as u32), Arg::U32(p2 as u32), prm.arg(), Arg::U64(seed), Arg::U32(step), keys.arg(), ids.arg(), out.arg()];
    // SAFETY (launch): sizes checked above; prm holds 5B words.
    dev.launch(&f, (b as u32, 1, 1), (THREADS, 1, 1), 0, &args)
}
