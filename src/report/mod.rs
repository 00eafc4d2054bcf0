//! Run directories: where a method writes its report.json (every number), report.md (a table and
//! the claim in a sentence) and PNG plots. Every file is written atomically (temp file in the same
//! folder, fsync, rename), so a crash never leaves a half-written report behind.
//!
//! Why: METHODS.md asks each method for the same three artefacts, and `kiln repro` links them from
//! one index page; keeping the file handling here keeps the method modules about the experiment.

pub mod plot;

/// A progress bar on stderr for a long loop: `prefix` names the work, `{msg}` is free for the
/// caller. Hidden when stderr is not a terminal (tests, CI logs, pipes).
pub fn progress(total: u64, prefix: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]") {
        bar.set_style(style);
    }
    bar.set_prefix(prefix.to_string());
    bar
}

use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a method's `run` hands back: where its report lives and its one-line outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub method: String,
    pub dir: PathBuf,
    /// One sentence: the claim and whether this run shows it, with the deciding number.
    pub headline: String,
    /// Did the run meet its stated target? (None when a run has no pass/fail target.)
    pub passed: Option<bool>,
}

/// A folder that receives one run's artefacts.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

fn file_err(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), detail: detail.to_string() }
}

impl RunDir {
    /// Create `path` (and its parents) if needed.
    pub fn create(path: impl AsRef<Path>) -> Result<RunDir> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| file_err(&path, format!("cannot create the run directory: {e}")))?;
        Ok(RunDir { path })
    }

    /// The default location `runs/<method>/<UTC timestamp>`, relative to the current directory.
    pub fn default_path(method: &str) -> PathBuf {
        PathBuf::from("runs").join(method).join(utc_timestamp())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path.join(name);
        write_atomic(&path, bytes)?;
        Ok(path)
    }

    pub fn write_text(&self, name: &str, text: &str) -> Result<PathBuf> {
        self.write_bytes(name, text.as_bytes())
    }

    /// Pretty-printed JSON.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<PathBuf> {
        let text = serde_json::to_string_pretty(value).map_err(|e| file_err(&self.path.join(name), format!("JSON encoding: {e}")))?;
        self.write_text(name, &(text + "\n"))
    }
}

/// Atomic file writes (temp file, fsync, rename, fsync of the folder) live in io::checkpoint.
pub use crate::io::checkpoint::write_atomic;

/// A Markdown table; every row must have as many cells as there are headers.
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", headers.join(" | "), "---|".repeat(headers.len()));
    for row in rows {
        s += &format!("| {} |\n", row.join(" | "));
    }
    s
}

/// "YYYYmmdd-HHMMSS" in UTC from the system clock (civil-from-days: H. Hinnant's algorithm).
pub fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}
