//! `kiln bench --device cuda`: per op and size, the median kernel time over event-timed repeats
//! (after warm-up, rotating among several input sets so repeats do not measure the L2 cache),
//! the achieved GB/s or TFLOP/s, and a baseline where one exists (cuBLAS in this process for
//! GEMM-shaped work; the card's own measured copy bandwidth for memory-bound ops). The card's
//! two ceilings, device-to-device copy bandwidth and cuBLAS bf16 GEMM at 8192^3, are measured
//! first in the same process. One JSONL row per measurement; the table is printed as each family
//! finishes, and the issues' targets (src/bench/targets.rs: met or missed, by how much) after it.
//!
//! Each kernel family adds its cases in its own file here (`<family>.rs`, function `rows`).

pub mod adamw;
pub mod attention;
pub mod baseline;
pub mod elementwise;
pub mod embedding;
pub mod families;
pub mod layout;
pub mod linear_attention;
pub mod lora;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod rope;
pub mod sampling;
pub mod softmax_xent;

use crate::backend::cuda::{CudaStorage, Dev};
use crate::tensor::DType;
use crate::{Error, Result};
use std::sync::Arc;

pub use crate::bench::row::{format_header, format_rows, Row};

/// A row under construction: the builder the family files use.
pub struct Case {
    pub op: String,
    pub variant: String,
    pub shape: String,
    pub median_ms: f64,
    /// Bytes that must move (each input read once, each output written once).
    pub bytes: f64,
    pub flops: f64,
    pub baseline: Option<(String, f64)>,
}

impl Case {
    pub fn new(op: &str, variant: &str, shape: String, median_ms: f64) -> Case {
        Case { op: op.into(), variant: variant.into(), shape, median_ms, bytes: 0.0, flops: 0.0, baseline: None }
    }
    pub fn bytes(mut self, b: f64) -> Case {
        self.bytes = b;
        self
    }
    pub fn flops(mut self, f: f64) -> Case {
        self.flops = f;
        self
    }
    /// Compare against another timing (ratio = ours / theirs).
    pub fn vs(mut self, name: &str, ms: f64) -> Case {
        self.baseline = Some((name.into(), ms));
        self
    }
}

/// What every family's `rows` function receives.
pub struct Ctx {
    pub dev: Arc<Dev>,
    pub name: String,
    /// Measured device-to-device copy bandwidth, GB/s (read + write).
    pub copy_gbps: f64,
    /// Repeats per timing.
    pub repeats: usize,
    /// The emulated device (KILN_CUDA_EMU=1): every family runs its cases once on small shapes,
    /// timed by the wall clock. A smoke run of the bench's own code (tests/cli.rs), not a timing.
    pub tiny: bool,
}

impl Ctx {
    /// Does the device take the sm_90 kernels (wgmma, TMA)? An H100/H200, or the emulated device
    /// (which runs them all).
    pub fn sm90(&self) -> bool {
        self.dev.cc == (9, 0) || self.tiny
    }

    /// `full` on a GPU, `tiny` on the emulated device (a family's sizes).
    pub fn size<T>(&self, full: T, tiny: T) -> T {
        if self.tiny { tiny } else { full }
    }

    /// Median milliseconds of `f(i)` (i = repeat index, for rotating inputs), timed with CUDA
    /// events around each call after 3 warm-up calls. Emulated: one call, by the wall clock.
    pub fn time_ms(&self, mut f: impl FnMut(usize) -> Result<()>) -> Result<f64> {
        if self.tiny {
            let t0 = std::time::Instant::now();
            f(0)?;
            return Ok(t0.elapsed().as_secs_f64() * 1e3);
        }
        let err = |e| Error::Cuda(format!("bench timer: {e:?}"));
        for i in 0..3 {
            f(i)?;
        }
        self.dev.synchronize()?;
        let mut t = Vec::with_capacity(self.repeats);
        let timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT); // the default (None) disables timing
        let (start, stop) = (self.dev.ctx.new_event(timing).map_err(err)?, self.dev.ctx.new_event(timing).map_err(err)?);
        for i in 0..self.repeats.max(1) {
            start.record(&self.dev.stream).map_err(err)?;
            f(i)?;
            stop.record(&self.dev.stream).map_err(err)?;
            stop.synchronize().map_err(err)?;
            t.push(start.elapsed_ms(&stop).map_err(err)? as f64);
        }
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    }

    /// `sets` independent random f32 buffers of `len` elements (normal(0, 1)), cast to `dtype`,
    /// to rotate among so repeats read from DRAM, not L2.
    pub fn rand_sets(&self, len: usize, dtype: DType, sets: usize, seed: u64) -> Result<Vec<CudaStorage>> {
        (0..sets)
            .map(|s| {
                let host = crate::rng::normal_vec(seed, s as u32, len, 0.0, 1.0);
                let st = CudaStorage::from_cpu(&crate::backend::cpu::CpuStorage::F32(host), self.dev.ordinal)?;
                crate::backend::cuda::elementwise::cast(&st, dtype)
            })
            .collect()
    }

    /// Number of input sets to rotate among so that together they exceed the L2 (50-60 MB).
    pub fn sets_for(&self, bytes_per_set: usize) -> usize {
        if self.tiny {
            return 2;
        }
        (256usize << 20).div_ceil(bytes_per_set.max(1)).clamp(2, 16)
    }

    /// `sets` f32 buffers of `len` elements: one drawn on the host (normal(0, 1)), the others
    /// affine images of it made on the device (host RNG for 100M+ elements is the slow part).
    pub fn affine_sets(&self, len: usize, sets: usize, seed: u64) -> Result<Vec<CudaStorage>> {
        let first = self.rand_sets(len, DType::F32, 1, seed)?.remove(0);
        let mut v = vec![first];
        for k in 1..sets {
            let next = crate::backend::cuda::elementwise::affine(&v[0], -1.0 + 0.125 * k as f64, 0.25)?;
            v.push(next);
        }
        Ok(v)
    }

    pub fn finish(&self, c: Case) -> Row {
        let secs = c.median_ms * 1e-3;
        let gbps = (c.bytes > 0.0).then(|| c.bytes / secs / 1e9);
        let tflops = (c.flops > 0.0).then(|| c.flops / secs / 1e12);
        let (baseline, ratio) = match (&c.baseline, gbps) {
            (Some((name, ms)), _) => (Some(name.clone()), Some(c.median_ms / ms)),
            (None, Some(g)) => (Some("copy_bw".to_string()), Some(g / self.copy_gbps)),
            _ => (None, None),
        };
        Row { device: self.name.clone(), op: c.op, variant: c.variant, shape: c.shape, median_ms: c.median_ms, gbps, tflops, baseline, ratio }
    }
}

/// Run every family's cases on cuda:`ordinal` (only the families in `filter`, if given). `sink`
/// gets the ceilings' rows, then each family's as soon as it is done, so a run cut short (a time
/// limit on a lent GPU) keeps what it measured. A family that fails is reported and the others
/// still run; the names of those that failed come back beside the rows.
pub fn run(ordinal: usize, repeats: usize, filter: Option<&str>, mut sink: impl FnMut(&[Row]) -> Result<()>) -> Result<(Vec<Row>, Vec<&'static str>)> {
    let dev = crate::backend::cuda::dev(ordinal)?;
    let tiny = dev.is_emu();
    let name = if tiny { "emulated (KILN_CUDA_EMU=1)".to_string() } else { dev.ctx.name().map_err(|e| Error::Cuda(format!("{e:?}")))? };
    if let Some(unknown) = filter.and_then(|want| want.split(',').find(|w| !families::ALL.iter().any(|(f, _)| f == w))) {
        let names: Vec<&str> = families::ALL.iter().map(|(f, _)| *f).collect();
        return Err(Error::Msg(format!("bench: no kernel family \"{unknown}\" (families: {})", names.join(", "))));
    }
    let mut ctx = Ctx { dev, name, copy_gbps: 1.0, repeats, tiny };
    let mut rows = baseline::ceilings(&mut ctx)?;
    sink(&rows)?;
    let mut failed = vec![];
    for (family, f) in families::ALL {
        if filter.is_some_and(|want| !want.split(',').any(|w| w == *family)) {
            continue;
        }
        eprintln!("bench: {family} ...");
        let t0 = std::time::Instant::now();
        match f(&ctx) {
            Ok(r) => {
                sink(&r)?;
                rows.extend(r);
                // so a GPU session can budget its time limits (scripts/gpu-run.sh) from the last run
                eprintln!("bench: {family} done in {:.1} s", t0.elapsed().as_secs_f64());
            }
            Err(e) => {
                eprintln!("bench: {family} failed after {:.1} s: {e}", t0.elapsed().as_secs_f64());
                failed.push(*family);
            }
        }
    }
    Ok((rows, failed))
}
