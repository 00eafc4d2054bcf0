//! The `kiln` subcommands around the GPU bench (their flags are in src/main.rs): `bench --device
//! cuda` (table and JSONL as each family finishes, then the targets), `bench-report` (a results
//! file read back) and `compile-kernels` (the kernel cache filled ahead of a run).

use crate::{Error, Result};
use std::path::Path;

/// `kiln bench-report RESULTS [--against OLDER] [--plot DIR]`.
pub fn bench_report(results: &Path, against: Option<&Path>, plot: Option<&Path>) -> Result<()> {
    use crate::bench::{report, row};
    let new = row::read(results)?;
    let old = against.map(|p| row::read(p).map(|r| (r, p.display().to_string()))).transpose()?;
    print!("{}", report::report(&new, &results.display().to_string(), old.as_ref().map(|(r, n)| (r, n.as_str()))));
    if let Some(dir) = plot {
        std::fs::create_dir_all(dir).map_err(|e| Error::File { path: dir.display().to_string(), detail: format!("cannot create: {e}") })?;
        for (name, png) in report::plots(&new, old.as_ref().map(|(r, _)| r))? {
            let path = dir.join(name);
            crate::io::checkpoint::write_atomic(&path, &png)?;
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// `kiln compile-kernels --cc X.Y [--only families]`: one line a family.
#[cfg(feature = "cuda")]
pub fn compile_kernels(cc: &str, only: Option<&str>) -> Result<()> {
    let bad = || Error::Msg(format!("compile-kernels: --cc {cc:?} is not a compute capability like 9.0"));
    let (major, minor) = cc.split_once('.').ok_or_else(bad)?;
    let cc = (major.parse().map_err(|_| bad())?, minor.parse().map_err(|_| bad())?);
    for line in crate::backend::cuda::kernel_cache::warm(cc, only)? {
        println!("{line}");
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
pub fn compile_kernels(_: &str, _: Option<&str>) -> Result<()> {
    Err(Error::NoCuda("kiln was built without the `cuda` feature".into()))
}

/// `kiln bench --device cuda[:N]`: the table as each family finishes (and its rows appended to
/// `jsonl`), then the targets; exit 1 when a family failed.
#[cfg(feature = "cuda")]
pub fn bench_cuda(ordinal: usize, repeats: usize, only: Option<&str>, jsonl: Option<&Path>) -> Result<()> {
    use std::io::Write;
    let file_err = |path: &Path, e: std::io::Error| Error::File { path: path.display().to_string(), detail: e.to_string() };
    let mut out = jsonl
        .map(|path| std::fs::OpenOptions::new().create(true).append(true).open(path).map(|f| (path, f)).map_err(|e| file_err(path, e)))
        .transpose()?;
    // each family's rows are appended (and printed) as soon as it is done: a run stopped by a time
    // limit keeps what it measured
    print!("{}", crate::bench::cuda::format_header());
    let (rows, failed) = crate::bench::cuda::run(ordinal, repeats, only, |rows| {
        if let Some((path, f)) = out.as_mut() {
            for r in rows {
                writeln!(f, "{}", serde_json::to_string(r).expect("rows serialise")).map_err(|e| file_err(path, e))?;
            }
            f.flush().map_err(|e| file_err(path, e))?;
        }
        print!("{}", crate::bench::cuda::format_rows(rows));
        std::io::stdout().flush().map_err(|e| Error::Msg(format!("bench: writing the table: {e}")))
    })?;
    use crate::bench::{kernel_targets, targets};
    print!("{}", targets::format(&targets::verdicts(&rows)));
    print!("{}", targets::format_titled("KERNELS.md's other targets (this run)", &kernel_targets::verdicts(&rows)));
    if !failed.is_empty() {
        return Err(Error::Msg(format!("bench: {} of the kernel families failed: {} (their errors are above)", failed.len(), failed.join(", "))));
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
pub fn bench_cuda(_: usize, _: usize, _: Option<&str>, _: Option<&Path>) -> Result<()> {
    Err(Error::NoCuda("kiln was built without the `cuda` feature".into()))
}
