//! The kernel sources, embedded at build time, and their NVRTC compilation. Each family is one
//! file in kernels/, compiled as `common.cuh` followed by the family's source, with no include
//! paths (DESIGN.md, decision 3). The same function serves the run-time module loader (through
//! the on-disk PTX cache, kernel_cache.rs) and the `kernels_compile` test, which compiles every
//! family for every target arch.

use crate::{Error, Result};

pub const COMMON: &str = include_str!("../../../kernels/common.cuh");

/// (family, source). A family's name is its Rust twin's file name in backend/cpu and backend/cuda.
pub const FAMILIES: &[(&str, &str)] = &[
    ("elementwise", include_str!("../../../kernels/elementwise.cu")),
    ("reduce", include_str!("../../../kernels/reduce.cu")),
    ("layout", include_str!("../../../kernels/layout.cu")),
    ("softmax_xent", include_str!("../../../kernels/softmax_xent.cu")),
    ("norm", include_str!("../../../kernels/norm.cu")),
    ("norm_warp", include_str!("../../../kernels/norm_warp.cu")),
    ("rope", include_str!("../../../kernels/rope.cu")),
    ("embedding", include_str!("../../../kernels/embedding.cu")),
    ("adamw", include_str!("../../../kernels/adamw.cu")),
    ("matmul", include_str!("../../../kernels/matmul.cu")),
    ("matmul_sm90", include_str!("../../../kernels/matmul_sm90.cu")),
    ("attention", include_str!("../../../kernels/attention.cu")),
    ("attention_tc", include_str!("../../../kernels/attention_tc.cu")),
    ("attention_tc_bwd", include_str!("../../../kernels/attention_tc_bwd.cu")),
    ("lora", include_str!("../../../kernels/lora.cu")),
    ("lora_multi_adapter", include_str!("../../../kernels/lora_multi_adapter.cu")),
    ("linear_attention", include_str!("../../../kernels/linear_attention.cu")),
    ("linear_attention_tc", include_str!("../../../kernels/linear_attention_tc.cu")),
    ("linear_attention_wg", include_str!("../../../kernels/linear_attention_wg.cu")),
    ("sampling", include_str!("../../../kernels/sampling.cu")),
];

/// Families whose hot kernels must not spill registers to local memory (checked by the
/// `kernels_compile` test from ptxas's report).
pub const NO_SPILL: &[&str] = &["matmul", "matmul_sm90", "attention", "attention_tc", "attention_tc_bwd", "norm", "norm_warp", "lora", "lora_multi_adapter", "linear_attention", "linear_attention_tc", "linear_attention_wg"];

/// Families built on sm_90a-only instructions (wgmma): compiled for compute_90a alone, loadable
/// only on a compute capability 9.0 device.
pub const SM90A_ONLY: &[&str] = &["matmul_sm90", "linear_attention_wg"];

/// The NVRTC targets `family` is compiled for by the compile check (sm_XY names, without "sm_").
pub fn target_archs(family: &str) -> &'static [&'static str] {
    if SM90A_ONLY.contains(&family) { &["90a"] } else { &["80", "90"] }
}

/// The NVRTC target for `family` on a device of compute capability `cc`: compute_XY, or
/// compute_90a for the sm_90a-only families (an error on any other device).
pub fn arch_for(family: &str, cc: (i32, i32)) -> Result<String> {
    if SM90A_ONLY.contains(&family) {
        return match cc {
            (9, 0) => Ok("compute_90a".into()),
            _ => Err(Error::Cuda(format!("kernels/{family}.cu needs an sm_90 (Hopper) GPU; this device is sm_{}{}", cc.0, cc.1))),
        };
    }
    Ok(format!("compute_{}{}", cc.0, cc.1))
}

/// Headers a family may `#include "<name>"` (on a line of its own). `source` splices them in, so
/// NVRTC needs no include path (DESIGN.md, decision 3); the emulator's C++ build finds them in
/// kernels/.
pub const HEADERS: &[(&str, &str)] = &[
    ("sampling_row.cuh", include_str!("../../../kernels/sampling_row.cuh")),
    ("sampling_select.cuh", include_str!("../../../kernels/sampling_select.cuh")),
    ("softmax_rows.cuh", include_str!("../../../kernels/softmax_rows.cuh")),
    ("norm_rows.cuh", include_str!("../../../kernels/norm_rows.cuh")),
    ("lora_stream.cuh", include_str!("../../../kernels/lora_stream.cuh")),
    ("tma.cuh", include_str!("../../../kernels/tma.cuh")),
    ("wgmma64.cuh", include_str!("../../../kernels/wgmma64.cuh")),
    ("matmul_tma.cuh", include_str!("../../../kernels/matmul_tma.cuh")),
    ("linear_attention_wg_bwd.cuh", include_str!("../../../kernels/linear_attention_wg_bwd.cuh")),
];

/// The full translation unit NVRTC sees for `family`: common.cuh, then the family's source with
/// its `#include "<header>"` lines replaced by the headers' text (`#line` keeps messages right).
pub fn source(family: &str) -> Result<String> {
    let (_, src) = FAMILIES
        .iter()
        .find(|(f, _)| *f == family)
        .ok_or_else(|| Error::Msg(format!("no kernel family `{family}` in kernels/")))?;
    let mut tu = format!("{COMMON}\n#line 1 \"{family}.cu\"\n");
    for (i, line) in src.lines().enumerate() {
        match line.trim().strip_prefix("#include \"").and_then(|r| r.strip_suffix('"')) {
            Some(name) => {
                let (_, header) = HEADERS.iter().find(|(h, _)| *h == name).ok_or_else(|| {
                    Error::Msg(format!("kernels/{family}.cu:{}: `{name}` is not a header kernels.rs knows (HEADERS)", i + 1))
                })?;
                tu.push_str(&format!("#line 1 \"{name}\"\n{header}\n#line {} \"{family}.cu\"\n", i + 2));
            }
            None => {
                tu.push_str(line);
                tu.push('\n');
            }
        }
    }
    Ok(tu)
}

/// NVRTC's options besides the arch (kernel_cache.rs hashes them into its file names).
pub const NVRTC_OPTIONS: &str = "--std=c++17 -DKILN_NVRTC=1";

/// Compile `family` to PTX for `arch` (e.g. "compute_90"); a compile error carries NVRTC's log.
/// Uncached: the run-time module loader goes through kernel_cache.rs.
pub fn compile_ptx(family: &str, arch: &str) -> Result<String> {
    // SAFETY: only tries to dlopen libnvrtc, so a missing toolkit is an error, not a panic.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::NoCuda(
            "NVRTC (libnvrtc.so) was not found: install the CUDA toolkit or run scripts/cuda-toolchain.sh and put its lib folder on LD_LIBRARY_PATH".into(),
        ));
    }
    let mut options = vec![format!("--gpu-architecture={arch}")];
    options.extend(NVRTC_OPTIONS.split(' ').map(String::from));
    let opts = cudarc::nvrtc::CompileOptions {
        options,
        name: Some(format!("{family}.cu")),
        ..Default::default()
    };
    match cudarc::nvrtc::compile_ptx_with_opts(source(family)?, opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { log, .. }) => {
            Err(Error::Cuda(format!("NVRTC failed on kernels/{family}.cu for {arch}:\n{}", log.to_string_lossy())))
        }
        Err(e) => Err(Error::Cuda(format!("NVRTC failed on kernels/{family}.cu for {arch}: {e:?}"))),
    }
}
