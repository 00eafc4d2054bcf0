//! Compile check without a GPU (KERNELS.md, test 5): every kernel family compiles under NVRTC for
//! every target arch (sm_80 and sm_90; sm_90a alone for `kernels::SM90A_ONLY`), and ptxas's report shows registers and spills per kernel. Fails on any
//! compile error, and on spills in the families listed in `kernels::NO_SPILL`.
//! Needs the toolchain from scripts/cuda-toolchain.sh on LD_LIBRARY_PATH (scripts/test.sh does it).
//! While working on kernels, `KILN_COMPILE_ONLY=norm,softmax_xent` checks just those families.
//! `KILN_COMPILE_KEEP=1` keeps the PTX it compiled and prints where.
#![cfg(feature = "cuda")]

use kiln::backend::cuda::kernels::{compile_ptx, target_archs, FAMILIES, NO_SPILL};
use std::path::PathBuf;
use std::process::Command;

struct Report {
    kernel: String,
    regs: u32,
    stack: u32,
    spill: u32,
}

/// Parse `ptxas -v` output into one row per entry function.
fn parse_ptxas(log: &str) -> Vec<Report> {
    let mut rows: Vec<Report> = vec![];
    for line in log.lines() {
        if let Some(rest) = line.split("Function properties for ").nth(1) {
            rows.push(Report { kernel: rest.trim().to_string(), regs: 0, stack: 0, spill: 0 });
        } else if line.contains("bytes stack frame") {
            let nums: Vec<u32> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
            if let (Some(r), [stack, stores, loads, ..]) = (rows.last_mut(), nums.as_slice()) {
                r.stack = *stack;
                r.spill = stores + loads;
            }
        } else if let Some(rest) = line.split("Used ").nth(1) {
            if let (Some(r), Some(n)) = (rows.last_mut(), rest.split_whitespace().next().and_then(|t| t.parse().ok())) {
                r.regs = n;
            }
        }
    }
    rows
}

fn toolchain() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/cuda-toolchain")
}

#[test]
fn kernels_compile_every_family_every_arch() {
    let ptxas = toolchain().join("bin/ptxas");
    assert!(
        ptxas.exists(),
        "ptxas not found at {}: run scripts/cuda-toolchain.sh (scripts/test.sh does) and put its lib folder on LD_LIBRARY_PATH",
        ptxas.display()
    );
    let dir = std::env::temp_dir().join(format!("kiln-kernels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = vec![];
    let mut table = vec![format!("{:<18} {:<34} {:>6} {:>5} {:>6} {:>6}", "family", "kernel", "arch", "regs", "stack", "spill")];
    let mut kernels = 0;
    let only = std::env::var("KILN_COMPILE_ONLY").ok();
    let picked = |f: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim() == f));
    for (family, _) in FAMILIES.iter().filter(|(f, _)| picked(f)) {
        for arch in target_archs(family) {
            let ptx = match compile_ptx(family, &format!("compute_{arch}")) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{e}"));
                    continue;
                }
            };
            let file = dir.join(format!("{family}_{arch}.ptx"));
            std::fs::write(&file, &ptx).unwrap();
            let out = Command::new(&ptxas).args(["-v", &format!("-arch=sm_{arch}"), "-o", "/dev/null"]).arg(&file).output().unwrap();
            let log = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                failures.push(format!("ptxas failed on {family} for sm_{arch}:\n{log}"));
                continue;
            }
            // ptxas serialises warpgroup MMAs it cannot keep asynchronous: a silent 2-3x loss.
            for line in log.lines().filter(|l| l.contains("warning") || l.contains("Performance Loss")) {
                println!("{family} sm_{arch}: {}", line.trim());
                if line.contains("wgmma") {
                    failures.push(format!("{family} on sm_{arch}: {}", line.trim()));
                }
            }
            for r in parse_ptxas(&log) {
                kernels += 1;
                table.push(format!("{:<18} {:<34} {:>6} {:>5} {:>6} {:>6}", family, r.kernel, format!("sm_{arch}"), r.regs, r.stack, r.spill));
                if r.spill > 0 && NO_SPILL.contains(family) {
                    failures.push(format!("{family}/{} spills {} bytes on sm_{arch}", r.kernel, r.spill));
                }
            }
        }
    }
    // KILN_COMPILE_KEEP=1 keeps the PTX (one file per family and arch) for reading.
    if std::env::var("KILN_COMPILE_KEEP").is_ok_and(|v| v == "1") {
        println!("kernels_compile: PTX kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("{}", table.join("\n"));
    println!("kernels_compile: {kernels} kernel x arch builds, {} failures", failures.len());
    assert!(failures.is_empty(), "kernel compile check failed:\n{}", failures.join("\n"));
    assert!(kernels > 0, "no kernels were compiled");
}

#[test]
fn kernels_compile_report_parser_reads_ptxas_lines() {
    let log = "ptxas info    : Compiling entry function 'k' for 'sm_80'\nptxas info    : Function properties for k\n    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\nptxas info    : Used 40 registers, used 1 barriers, 380 bytes cmem[0]\n";
    let r = parse_ptxas(log);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].kernel.as_str(), r[0].regs, r[0].stack, r[0].spill), ("k", 40, 16, 12));
}

/// The on-disk PTX cache (backend/cuda/kernel_cache.rs): a miss compiles with NVRTC and stores the
/// PTX; a hit is the file read back; a damaged file is compiled again and replaced; each arch has
/// its own file; with no folder nothing is written.
#[test]
fn kernel_cache_stores_and_reuses_ptx() {
    use kiln::backend::cuda::kernel_cache::{file_name, ptx_in};
    let dir = std::env::temp_dir().join(format!("kiln-kernel-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (fresh, cached) = ptx_in(Some(&dir), "rope", "compute_90").unwrap();
    assert!(!cached && fresh.contains(".target sm_90"));
    let file = dir.join(file_name("rope", "compute_90").unwrap());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), fresh);
    // a hit is the file's text, not a new compile: mark the file and read the mark back
    std::fs::write(&file, fresh.replacen(".version", "// from the cache\n.version", 1)).unwrap();
    let (hit, cached) = ptx_in(Some(&dir), "rope", "compute_90").unwrap();
    assert!(cached && hit.contains("// from the cache"));
    // not PTX (a damaged file): compiled again, and the file replaced
    std::fs::write(&file, "garbage").unwrap();
    let (again, cached) = ptx_in(Some(&dir), "rope", "compute_90").unwrap();
    assert!(!cached && again == fresh && std::fs::read_to_string(&file).unwrap() == fresh);
    ptx_in(Some(&dir), "rope", "compute_80").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.len() == 2 && names.iter().all(|n| n.starts_with("rope-compute_") && n.ends_with(".ptx")), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    let (none, cached) = ptx_in(None, "rope", "compute_90").unwrap();
    assert!(!cached && none == fresh && !dir.exists());
}
