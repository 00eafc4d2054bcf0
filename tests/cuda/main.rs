//! CUDA vs CPU parity (KERNELS.md, tests 3 and 7). Every test here needs a GPU and is ignored
//! without one; on the GPU machine scripts/gpu-check.sh runs them with `--include-ignored`.
//! Each test draws fresh random inputs, runs the op on both devices, checks the relative L2
//! error against the tolerance of KERNELS.md (NaN never passes), and runs the CUDA op twice to
//! prove the two results are bit-identical. Outputs are poisoned with 0xFF before every launch
//! (KILN_CUDA_POISON=1, set by `setup`), so an element a kernel forgets to write is a NaN.
#![cfg(feature = "cuda")]

mod adamw;
mod attention;
mod elementwise;
mod embedding;
mod layout;
mod linear_attention;
mod lora;
mod matmul;
mod matmul_sm90;
mod methods;
mod norm;
mod reduce;
mod rope;
mod serve;
mod sampling;
mod softmax_xent;
mod train;
mod train_bf16;
mod ttt_arc;

pub use kiln::backend::{self, Storage};
pub use kiln::tensor::{DType, Device, Shape, Tensor};

pub const GPU: Device = Device::Cuda(0);
/// Relative L2 tolerances of KERNELS.md.
pub const TOL_F32: f64 = 1e-5;
pub const TOL_BF16: f64 = 1e-2;
pub const TOL_LINATTN: f64 = 5e-3;

/// Turn on output poisoning before the device is first used (and keep launches synchronous, so
/// an error names its kernel).
pub fn setup() {
    std::env::set_var("KILN_CUDA_POISON", "1");
    std::env::set_var("KILN_CUDA_SYNC", "1");
}

/// f32 values from the counter-based RNG, normal(0, 1), on the CPU.
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape.to_vec(), 1.0, seed, 0).unwrap()
}

pub fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in got.iter().zip(want) {
        num += (g - w) * (g - w);
        den += w * w;
    }
    if num.is_nan() {
        return f64::NAN;
    }
    (num / den.max(1e-300)).sqrt()
}

/// Values of a storage (either device) as f64.
pub fn vals(s: &Storage) -> Vec<f64> {
    s.to_cpu().unwrap().to_f64_vec()
}

/// Assert the GPU result matches the CPU one within `tol` (relative L2), with no NaN/Inf where
/// the CPU has a finite value.
pub fn assert_close(what: &str, got: &Storage, want: &Storage, tol: f64) {
    assert_eq!(got.device(), GPU, "{what}: the result should live on the GPU");
    let (g, w) = (vals(got), vals(want));
    assert_eq!(g.len(), w.len(), "{what}: length");
    if let Some(i) = g.iter().zip(&w).position(|(a, b)| !a.is_finite() && b.is_finite()) {
        panic!("{what}: non-finite output at {i} ({} where the CPU has {})", g[i], w[i]);
    }
    let e = rel_l2(&g, &w);
    println!("parity {what}: rel_l2 = {e:.3e} (tol {tol:.0e})");
    assert!(e <= tol, "{what}: rel_l2 {e:.3e} > {tol:.0e}");
}

/// Run `f` twice and assert the two results are bit-identical; return the first.
pub fn twice<T>(what: &str, f: impl Fn() -> T, bits: impl Fn(&T) -> Vec<u64>) -> T {
    let (a, b) = (f(), f());
    assert!(bits(&a) == bits(&b), "{what}: two runs differ (a race or an unwritten element)");
    a
}
/// `twice` for one storage.
pub fn twice1(what: &str, f: impl Fn() -> Storage) -> Storage {
    twice(what, f, |s| vals(s).iter().map(|v| v.to_bits()).collect())
}
/// `twice` for several storages.
pub fn twice_n(what: &str, f: impl Fn() -> Vec<Storage>) -> Vec<Storage> {
    twice(what, f, |v| v.iter().flat_map(vals).map(|x| x.to_bits()).collect())
}

/// The tensor's storage cast to `dtype`, on the GPU.
pub fn on_gpu(t: &Tensor, dtype: DType) -> Storage {
    t.to_dtype(dtype).unwrap().to_device(GPU).unwrap().storage().clone()
}
/// The tensor's storage cast to `dtype`, on the CPU (for bf16 references: round, then compute in f32).
pub fn on_cpu(t: &Tensor, dtype: DType) -> Storage {
    t.to_dtype(dtype).unwrap().to_dtype(DType::F32).unwrap().storage().clone()
}
