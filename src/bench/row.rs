//! One GPU bench measurement (`kiln bench --device cuda`, one JSONL line each, committed under
//! bench/results/), the table they print as, and reading a results file back: the rows, and the
//! summary line scripts/gpu-run.sh appends (`{"device", "driver", "git_sha", "tests_passed", ...}`).
//! Lives outside the `cuda` feature so that results can be read on any machine (`kiln bench-report`).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One measurement, as written to bench/results/*.jsonl. PyTorch's rows (the device script's
/// `torch_gpu_baselines.py`) have the same fields, with no baseline or ratio.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub device: String,
    pub op: String,
    pub variant: String,
    pub shape: String,
    pub median_ms: f64,
    pub gbps: Option<f64>,
    pub tflops: Option<f64>,
    /// What `ratio` compares against (e.g. "cublas_bf16", "copy_bw"), if anything.
    pub baseline: Option<String>,
    /// median_ms / baseline's median_ms for time baselines; achieved / ceiling for "copy_bw".
    pub ratio: Option<f64>,
}

impl Row {
    /// Timed by PyTorch (the device script's baselines), not by kiln.
    pub fn is_torch(&self) -> bool {
        self.variant.starts_with("torch")
    }

    /// The switches an A/B rerun ran under (scripts/gpu-run.sh tags its rows' variants with them:
    /// "bf16 [KILN_NORM=warp ...]"), and the variant without them; None for an untagged row.
    pub fn ab_tag(&self) -> Option<(&str, &str)> {
        let open = self.variant.find(" [")?;
        let tag = self.variant[open + 2..].strip_suffix(']')?;
        Some((&self.variant[..open], tag))
    }
}

/// A results file read back: its rows in file order, and its summary line if it has one.
#[derive(Debug)]
pub struct Results {
    pub rows: Vec<Row>,
    pub summary: Option<serde_json::Value>,
}

/// Read a bench JSONL file. Blank lines are skipped; a line that is neither a row nor the summary
/// (it has "git_sha" and no "op") is an error naming the file and line.
pub fn read(path: &Path) -> Result<Results> {
    let file_err = |detail: String| Error::File { path: path.display().to_string(), detail };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read: {e}")))?;
    let (mut rows, mut summary) = (vec![], None);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |e: String| file_err(format!("line {}: {e}", i + 1));
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        if value.get("op").is_none() && value.get("git_sha").is_some() {
            summary = Some(value);
            continue;
        }
        rows.push(serde_json::from_value(value).map_err(|e| at(format!("not a bench row: {e}")))?);
    }
    if rows.is_empty() {
        return Err(file_err("no bench rows".into()));
    }
    Ok(Results { rows, summary })
}

/// The table's header line.
pub fn format_header() -> String {
    format!("{:<22} {:<18} {:<26} {:>10} {:>9} {:>8} {:>14} {:>7}\n", "op", "variant", "shape", "median_ms", "GB/s", "TFLOP/s", "baseline", "ratio")
}

/// The table's lines for `rows` (no header).
pub fn format_rows(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        s += &format!(
            "{:<22} {:<18} {:<26} {:>10.4} {:>9} {:>8} {:>14} {:>7}\n",
            r.op,
            r.variant,
            r.shape,
            r.median_ms,
            opt(r.gbps, 0),
            opt(r.tflops, 1),
            r.baseline.as_deref().unwrap_or("-"),
            opt(r.ratio, 2)
        );
    }
    s
}

/// `v` with `p` decimals, or "-".
pub(crate) fn opt(v: Option<f64>, p: usize) -> String {
    v.map(|x| format!("{x:.p$}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-row-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.jsonl");
        std::fs::write(&p, text).unwrap();
        p
    }

    const ROW: &str = r#"{"device":"d","op":"gelu","variant":"bf16 [KILN_X=1]","shape":"64M","median_ms":0.5,"gbps":null,"tflops":null,"baseline":"copy_bw","ratio":0.7}"#;

    #[test]
    fn reads_rows_and_the_summary_and_names_bad_lines() {
        let p = write("ok", &format!("{ROW}\n\n{{\"device\": \"d\", \"git_sha\": \"abc\", \"tests_passed\": 3}}\n"));
        let r = read(&p).unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].ab_tag(), Some(("bf16", "KILN_X=1")));
        assert_eq!(r.summary.unwrap()["git_sha"], "abc");

        let bad = write("bad", &format!("{ROW}\n{{\"op\": \"gelu\"}}\n"));
        let e = read(&bad).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not a bench row") && e.contains("r.jsonl"), "{e}");
        let torn = write("torn", &format!("{ROW}\n{{\"device\": \"d\", \"op\n"));
        assert!(read(&torn).unwrap_err().to_string().contains("line 2: not JSON"));
        let empty = write("empty", "\n");
        assert!(read(&empty).unwrap_err().to_string().contains("no bench rows"));
    }
}
