//! `kiln bench-report RESULTS.jsonl [--against OLDER.jsonl]`: a GPU run's committed results, read
//! back on any machine. What a session that was lent a GPU needs to write its notes: the issues'
//! targets (targets.rs, now with PyTorch's rows from the same run) and KERNELS.md's other ones
//! (kernel_targets.rs), the defaults the run can settle (choices.rs), the A/B rows of that run
//! against the defaults they were run beside, and every row against an earlier run's.

use super::row::{Results, Row};
use super::{choices, kernel_targets, targets};
use crate::report::plot::{bar_chart_png, line_plot_png, Bar};
use crate::Result;
use std::collections::{HashMap, HashSet};

/// The whole report on `new` (named `new_name`), and on its rows against `old`'s if given.
pub fn report(new: &Results, new_name: &str, old: Option<(&Results, &str)>) -> String {
    let mut s = format!("results: {new_name}{}\n", summary(new));
    s += &targets::format(&targets::verdicts(&new.rows));
    s += &targets::format_titled("KERNELS.md's other targets (this run)", &kernel_targets::verdicts(&new.rows));
    s += &choices::format(&new.rows);
    s += &ab(&new.rows);
    if let Some((old, old_name)) = old {
        s += &format!("\nagainst {old_name}{}\n", summary(old));
        s += &against(&new.rows, &old.rows);
    }
    s
}

/// " (N rows on DEVICE, sha SHA, parity tests P passed / F failed)": the rows and the summary line.
fn summary(r: &Results) -> String {
    let device = r.rows.iter().find(|x| !x.is_torch()).map_or("?", |x| x.device.as_str());
    let Some(sum) = &r.summary else { return format!(" ({} rows on {device}; no summary line)", r.rows.len()) };
    let field = |k: &str| sum.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let sha = field("git_sha").map_or("?".into(), |s| s.chars().take(10).collect::<String>());
    let tests = match (field("tests_passed"), field("tests_failed")) {
        (Some(p), Some(f)) => format!(", parity tests {p} passed / {f} failed"),
        _ => String::new(),
    };
    format!(" ({} rows on {device}, sha {sha}{tests})", r.rows.len())
}

/// The run's A/B rows (variants tagged "[SWITCH=...]" by scripts/gpu-run.sh) beside the rows of
/// the same op, shape and untagged variant: how much the defaults gained on the kernels they replaced.
fn ab(rows: &[Row]) -> String {
    type Key<'a> = (&'a str, &'a str, &'a str, Option<&'a str>);
    let plain: HashMap<Key, &Row> = rows.iter().filter(|r| r.ab_tag().is_none()).map(|r| ((r.op.as_str(), r.variant.as_str(), r.shape.as_str(), r.baseline.as_deref()), r)).collect();
    let (mut lines, mut tags, mut seen) = (String::new(), vec![], HashSet::new());
    for r in rows.iter().filter(|r| !r.op.starts_with("ceiling")) {
        let Some((variant, tag)) = r.ab_tag() else { continue };
        let Some(d) = plain.get(&(r.op.as_str(), variant, r.shape.as_str(), r.baseline.as_deref())) else { continue };
        // one line per timing: the rows of one timing differ only in their baseline
        if !seen.insert((r.op.as_str(), r.variant.as_str(), r.shape.as_str())) {
            continue;
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
        lines += &format!("  {:<31} {:<26} {:<26} {:>10.4} {:>10.4} {:>7.2}x\n", r.op, clip(variant, 26), r.shape, r.median_ms, d.median_ms, r.median_ms / d.median_ms);
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\nA/B in this run: the defaults against the kernels under [{}] (x > 1: the default is faster)\n  {:<31} {:<26} {:<26} {:>10} {:>10} {:>8}\n{lines}",
        tags.join("], ["),
        "op",
        "variant",
        "shape",
        "switch ms",
        "default ms",
        "speedup"
    )
}

/// Rows of `new` paired with the row of the same op, variant and shape in `old` (one pair per
/// timing; an A/B row with no tagged twin there is paired with the untagged one, the same kernels
/// on both runs), and the names of the rows only `new` and only `old` have.
struct Pairs<'a> {
    both: Vec<(&'a Row, &'a Row)>,
    fresh: Vec<String>,
    gone: Vec<String>,
}

fn pairs<'a>(new: &'a [Row], old: &'a [Row]) -> Pairs<'a> {
    type Key = (String, String, String);
    let key = |r: &Row, variant: &str| -> Key { (r.op.clone(), variant.to_string(), r.shape.clone()) };
    let mut before: HashMap<Key, &Row> = HashMap::new();
    for r in old {
        before.entry(key(r, &r.variant)).or_insert(r);
    }
    let (mut seen, mut used, mut both, mut fresh) = (HashSet::new(), HashSet::new(), vec![], vec![]);
    for r in new {
        if !seen.insert(key(r, &r.variant)) {
            continue;
        }
        let found = before.get_key_value(&key(r, &r.variant)).or_else(|| r.ab_tag().and_then(|(plain, _)| before.get_key_value(&key(r, plain))));
        match found {
            Some((k, o)) => {
                used.insert(k.clone());
                both.push((r, *o));
            }
            None => fresh.push(format!("{} {} {}", r.op, r.variant, r.shape)),
        }
    }
    let mut gone: Vec<String> = before.keys().filter(|k| !used.contains(*k)).map(|(o, v, sh)| format!("{o} {v} {sh}")).collect();
    gone.sort();
    Pairs { both, fresh, gone }
}

/// Every row of `new` beside its row in `old` ([`pairs`]), then what only one of the two runs has.
fn against(new: &[Row], old: &[Row]) -> String {
    let device = |rows: &[Row]| rows.iter().find(|r| !r.is_torch()).map(|r| r.device.clone()).unwrap_or_default();
    let mut s = String::new();
    if device(new) != device(old) {
        s += &format!("  (different devices: {:?} against {:?}; the times do not compare)\n", device(new), device(old));
    }
    s += &format!("  {:<31} {:<40} {:<26} {:>10} {:>10} {:>8}\n", "op", "variant", "shape", "before ms", "now ms", "speedup");
    let p = pairs(new, old);
    for (r, o) in &p.both {
        s += &format!("  {:<31} {:<40} {:<26} {:>10.4} {:>10.4} {:>7.2}x\n", r.op, clip(&r.variant, 40), r.shape, o.median_ms, r.median_ms, o.median_ms / r.median_ms);
    }
    for (what, list) in [("only in this run", &p.fresh), ("only in the earlier run", &p.gone)] {
        if !list.is_empty() {
            let more = if list.len() > 12 { format!("; and {} more", list.len() - 12) } else { String::new() };
            s += &format!("  {what} ({}): {}{more}\n", list.len(), list[..list.len().min(12)].join("; "));
        }
    }
    s
}

/// The report's pictures, as (file name, PNG bytes): memory-bound.png, every memory-bound row's
/// share of the copy bandwidth against its KERNELS.md target; linear-attention-segments.png, the
/// segment sweep's time against S for each walk; with `old`, speedup.png, every kiln row's speedup
/// over the earlier run.
pub fn plots(new: &Results, old: Option<&Results>) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let label = |r: &Row| clip(&format!("{} {} {}", r.op, r.variant, r.shape), 90);
    let bars: Vec<Bar> = kernel_targets::memory_rows(&new.rows)
        .into_iter()
        .map(|r| Bar { label: label(r), value: r.ratio.unwrap_or(f64::NAN), target: Some(kernel_targets::memory_target(&r.op)) })
        .collect();
    let mut out = vec![];
    if !bars.is_empty() {
        out.push(("memory-bound.png", bar_chart_png("Memory-bound kernels (tick: KERNELS.md's target)", "fraction of the measured copy bandwidth", &bars)?));
    }
    let lines = choices::segment_series(&new.rows);
    if !lines.is_empty() {
        let title = "Linear attention forward by segment count (each walk)";
        out.push(("linear-attention-segments.png", line_plot_png(title, "log2 of the segment count S", "median ms", &lines)?));
    }
    if let Some(old) = old {
        let bars: Vec<Bar> =
            pairs(&new.rows, &old.rows).both.iter().filter(|(r, _)| !r.is_torch()).map(|(r, o)| Bar { label: label(r), value: o.median_ms / r.median_ms, target: Some(1.0) }).collect();
        if !bars.is_empty() {
            out.push(("speedup.png", bar_chart_png("Speedup over the earlier run (tick: 1, unchanged)", "earlier time / this time", &bars)?));
        }
    }
    Ok(out)
}

/// `s` cut to `n` characters (the last one an ellipsis when cut).
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).chain(std::iter::once('…')).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(name: &str) -> Results {
        super::super::row::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results").join(name)).unwrap()
    }

    /// Session 8's H200 run 1, read back: what GPU-NOTES-H200.md reports from it.
    #[test]
    fn the_h200_run_1_reads_back_as_its_notes_say() {
        let r1 = results("gpu-h200-2026-11-27-run1.jsonl");
        let text = report(&r1, "run1", None);
        assert!(text.contains("sha fba103c248") && text.contains("parity tests 51 passed / 0 failed"), "{text}");
        let v = targets::verdicts(&r1.rows);
        // bf16 GEMM: wgmma at 1.61x cuBLAS meets 2.0x; LoRA fwd 1.97x misses 1.10x
        assert_eq!(v[0].met, Some(true));
        assert!(v[0].measured.starts_with("bf16 wgmma 1.61x"), "{}", v[0].measured);
        assert_eq!(v[1].met, Some(false));
        assert!(v[1].measured.starts_with("bf16 wgmma 1.97x"), "{}", v[1].measured);
        // linear attention 0.22 of the roofline misses; the sampler's slowest shape is 18.3x
        assert_eq!(v[2].met, Some(false));
        assert_eq!(v[3].met, Some(true));
        assert!(v[3].measured.starts_with("18.3x"), "{}", v[3].measured);
        // against PyTorch: LoRA 0.356 ms against 0.270 misses; linear attention and sampler are faster
        assert_eq!(v[4].met, Some(false));
        assert!(v[4].measured.contains("3 matmuls 1.32") && v[4].measured.contains("torch chunked 0.03"), "{}", v[4].measured);
        // memory-bound: gelu bf16 among the rows below 0.70
        assert_eq!(v[5].met, Some(false));
        assert!(v[5].measured.contains("gelu bf16 67108864 0.69"), "{}", v[5].measured);
    }

    #[test]
    fn plots_of_run_1() {
        let r1 = results("gpu-h200-2026-11-27-run1.jsonl");
        let png = |b: &[u8]| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 10_000;
        let alone = plots(&r1, None).unwrap();
        assert!(alone.len() == 1 && alone[0].0 == "memory-bound.png" && png(&alone[0].1));
        assert_eq!(kernel_targets::memory_rows(&r1.rows).len(), 53);
        let both = plots(&r1, Some(&r1)).unwrap();
        assert!(both.len() == 2 && both[1].0 == "speedup.png" && png(&both[1].1));
    }

    #[test]
    fn the_segment_sweep_is_drawn() {
        let row = |variant: &str, ms: f64| Row {
            device: "H200".into(), op: "linear_attention_fwd_segments".into(), variant: variant.into(), shape: "BH=64 T=4096 D=128".into(),
            median_ms: ms, gbps: None, tflops: None, baseline: Some("fwd".into()), ratio: None,
        };
        let rows = ["bf16 S=2", "bf16 S=4", "bf16 wgmma-fused S=2", "bf16 wgmma-fused S=4"].iter().zip([0.3, 0.25, 0.2, 0.12]).map(|(v, ms)| row(v, ms)).collect();
        let out = plots(&Results { rows, summary: None }, None).unwrap();
        assert!(out.len() == 1 && out[0].0 == "linear-attention-segments.png" && out[0].1.starts_with(b"\x89PNG"), "{:?}", out.iter().map(|p| p.0).collect::<Vec<_>>());
    }

    /// Run 2's A/B rows against run 1's same kernels: the norms' row kernels (KILN_NORM=rc) and
    /// the unsplit linear attention are the kernels run 1 timed, so they compare near 1.
    #[test]
    fn ab_rows_and_an_earlier_run() {
        let (r1, r2) = (results("gpu-h200-2026-11-27-run1.jsonl"), results("gpu-h200-2026-11-27-run2.jsonl"));
        let text = report(&r2, "run2", Some((&r1, "run1")));
        assert!(text.contains("against run1 (") && text.contains("only in the earlier run"), "{text}");
        // run 2's A/B rows ran run 1's norm kernels (KILN_NORM=rc): put beside run 1's rows
        let line = text.lines().find(|l| l.contains("rms_norm ") && l.contains("f32 [KILN_NORM=rc")).expect("an rms_norm row");
        assert!(line.contains("0.2088") && line.contains("0.2112"), "{line}");
        // its targets judge no A/B row: nothing but PyTorch's linear attention is left to judge
        assert!(text.contains("[ -- ] bf16 GEMM") && !text.contains("[MISS] memory-bound"), "{text}");
        // run 2's tagged rows have no untagged twins in run 2 (its main bench was cut short)
        assert!(!text.contains("A/B in this run"), "{text}");
        // the same file against itself: every shared row at 1.00x, nothing only in one
        let same = against(&r1.rows, &r1.rows);
        assert!(same.contains("gelu") && !same.contains("only in"), "{same}");
        let lines: Vec<&str> = same.lines().skip(1).collect();
        assert!(!lines.is_empty() && lines.iter().all(|l| l.trim_end().ends_with("1.00x")), "{same}");
        // a tagged row beside its default
        let mut rows = r1.rows.clone();
        let gelu = rows.iter().find(|r| r.op == "gelu" && r.variant == "bf16").unwrap().clone();
        rows.push(Row { variant: "bf16 [KILN_X=old]".into(), median_ms: gelu.median_ms * 1.5, ..gelu });
        // a timing with two rows (two baselines): one line, whichever baseline row comes first
        let la = rows.iter().find(|r| r.op == "linear_attention_fwd" && r.variant == "bf16").unwrap().clone();
        rows.push(Row { baseline: Some("kiln_unfused".into()), ratio: Some(0.1), ..la.clone() });
        rows.push(Row { variant: "bf16 [KILN_X=old]".into(), median_ms: la.median_ms * 2.0, ..la.clone() });
        rows.push(Row { variant: "bf16 [KILN_X=old]".into(), median_ms: la.median_ms * 2.0, baseline: Some("kiln_unfused".into()), ..la });
        let text = ab(&rows);
        assert!(text.contains("[KILN_X=old]") && text.contains("1.50x"), "{text}");
        assert_eq!(text.lines().filter(|l| l.contains("linear_attention_fwd") && l.contains("2.00x")).count(), 1, "{text}");
    }
}
