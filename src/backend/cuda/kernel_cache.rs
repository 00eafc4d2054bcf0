//! Kernel families' PTX kept on disk between processes. NVRTC takes seconds a family (about 10 s
//! for matmul_sm90), and every process that touches a GPU would otherwise pay that again: each
//! `kiln` command, each stage of scripts/gpu-run.sh. The key is a hash of exactly what NVRTC
//! would see (the translation unit with its headers spliced in, the arch, the options, kiln's
//! version), so an edited kernel is a miss, never a stale hit. The driver keeps its own cache of
//! the machine code it builds from the PTX (CUDA_CACHE_PATH, by default ~/.nv/ComputeCache).
//!
//! Where: `KILN_KERNEL_CACHE` (a folder; `off` turns the cache off), else
//! $XDG_CACHE_HOME/kiln/kernels, else $HOME/.cache/kiln/kernels. A file is written whole under a
//! temporary name and renamed into place, so a reader never sees half of one; a folder that
//! cannot be written costs a warning, once, and nothing else.

use super::kernels;
use crate::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The cache folder, or None when `KILN_KERNEL_CACHE=off` or no home folder is known.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("KILN_KERNEL_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
            base.map(|b| b.join("kiln/kernels"))
        }
    }
}

/// PTX of `family` for `arch` (e.g. "compute_90a"), from the cache folder if it holds this exact
/// source, else compiled by NVRTC and stored there; and whether it came from the cache.
pub fn ptx(family: &str, arch: &str) -> Result<(String, bool)> {
    ptx_in(dir().as_deref(), family, arch)
}

/// [`ptx`] with the folder given (None: no cache).
pub fn ptx_in(dir: Option<&Path>, family: &str, arch: &str) -> Result<(String, bool)> {
    let Some(dir) = dir else { return Ok((kernels::compile_ptx(family, arch)?, false)) };
    let path = dir.join(file_name(family, arch)?);
    if let Ok(text) = std::fs::read_to_string(&path) {
        if text.contains(".version") && text.contains(".target") {
            return Ok((text, true));
        }
    }
    let text = kernels::compile_ptx(family, arch)?;
    if let Err(e) = store(dir, &path, &text) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("warning: kernel cache {}: {e} (compiling every process; KILN_KERNEL_CACHE=off silences this)", dir.display());
        }
    }
    Ok((text, false))
}

/// Compile every family in `only` (all when None) for a device of compute capability `cc` into
/// the cache, ahead of a run (`kiln compile-kernels`; scripts/gpu-check.sh stages the result for
/// the lent GPU). One line a family: name, arch, seconds, PTX kilobytes, and whether it was there.
pub fn warm(cc: (i32, i32), only: Option<&str>) -> Result<Vec<String>> {
    let wanted = |f: &str| only.is_none_or(|o| o.split(',').any(|x| x.trim() == f));
    if let Some(bad) = only.and_then(|o| o.split(',').map(str::trim).find(|x| !kernels::FAMILIES.iter().any(|(f, _)| f == x))) {
        return Err(crate::Error::Msg(format!("compile-kernels: no kernel family `{bad}` in kernels/")));
    }
    let dir = dir().ok_or_else(|| crate::Error::Msg("compile-kernels: the kernel cache is off (KILN_KERNEL_CACHE=off, or no HOME)".into()))?;
    let mut lines = vec![];
    for (family, _) in kernels::FAMILIES.iter().filter(|(f, _)| wanted(f)) {
        let Ok(arch) = kernels::arch_for(family, cc) else { continue }; // sm_90a-only families elsewhere
        let t0 = std::time::Instant::now();
        let (text, cached) = ptx_in(Some(&dir), family, &arch)?;
        let how = if cached { "cached already" } else { "compiled" };
        lines.push(format!("{family:<20} {arch:<12} {:>6.1} s {:>7} KB  {how}", t0.elapsed().as_secs_f64(), text.len() / 1024));
    }
    Ok(lines)
}

/// Forget the cached PTX of `family` for `arch` (the driver refused it); errors are ignored.
pub fn evict(family: &str, arch: &str) {
    if let (Some(dir), Ok(name)) = (dir(), file_name(family, arch)) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// `<family>-<arch>-<16 hex digits>.ptx`: the digits hash everything that decides the PTX.
pub fn file_name(family: &str, arch: &str) -> Result<String> {
    let key = [kernels::source(family)?.as_str(), arch, kernels::NVRTC_OPTIONS, env!("CARGO_PKG_VERSION")].join("\u{0}");
    Ok(format!("{family}-{arch}-{:016x}.ptx", fnv1a(key.as_bytes())))
}

/// 64-bit FNV-1a: stable across builds and Rust versions (std's hasher promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn store(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed); // two devices of one process may store the same file
    let tmp = path.with_extension(format!("ptx.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_source_and_the_arch() {
        let a = file_name("rope", "compute_90").unwrap();
        assert!(a.starts_with("rope-compute_90-") && a.ends_with(".ptx"), "{a}");
        assert_eq!(a, file_name("rope", "compute_90").unwrap());
        assert_ne!(a, file_name("rope", "compute_80").unwrap());
        assert_ne!(a, file_name("norm", "compute_90").unwrap());
        assert!(file_name("no_such_family", "compute_90").is_err());
        // FNV-1a's published test vector
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
