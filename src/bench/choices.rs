//! The defaults a GPU run can settle. Some of kiln's choices wait for a GPU to be made: which bf16
//! GEMM path runs (`GemmPath::current`), which kernels walk linear attention's segments
//! (`linear_attention_tc::walk`) and how many segments the planner cuts (`segments`). The bench
//! times every candidate beside the default; this reads those rows back and names, for each
//! choice, the fastest candidate against what kiln runs now (x < 1: faster than the default).

use super::row::Row;
use std::collections::BTreeMap;

/// A choice between variants of one op: `prefix` alone is candidate `bare`, `prefix NAME` is NAME.
struct Choice {
    what: &'static str,
    op: &'static str,
    prefix: &'static str,
    bare: &'static str,
    /// The candidate kiln runs now.
    now: &'static str,
}

const CHOICES: &[Choice] = &[
    Choice { what: "bf16 GEMM path (GemmPath::current, KILN_GEMM)", op: "matmul", prefix: "bf16", bare: "mma", now: "wgmma" },
    Choice { what: "LoRA forward (follows the GEMM path)", op: "lora_fwd", prefix: "bf16", bare: "mma", now: "wgmma" },
    Choice { what: "linear attention walk (linear_attention_tc::walk, KILN_LINATTN)", op: "linear_attention_fwd", prefix: "bf16", bare: "mma", now: "mma" },
];

/// Linear attention's walks whose segment count the bench sweeps, by their variant prefix.
const WALKS: &[(&str, &str)] = &[("bf16", "mma"), ("bf16 wgmma", "wgmma"), ("bf16 wgmma-fused", "wgmma-fused")];

/// The segment count a sweep row of `prefix`'s walk names ("bf16 wgmma S=8" -> "8").
fn sweep_segments<'a>(variant: &'a str, prefix: &str) -> Option<&'a str> {
    variant.strip_prefix(prefix)?.strip_prefix(" S=")
}

/// One time per (variant, shape): kiln's untagged rows (the rows of one timing differ only in
/// their baseline, so the first is kept).
fn times<'a>(rows: &'a [Row], op: &str) -> BTreeMap<(&'a str, &'a str), f64> {
    let mut t = BTreeMap::new();
    for r in rows.iter().filter(|r| r.op == op && !r.is_torch() && r.ab_tag().is_none()) {
        t.entry((r.variant.as_str(), r.shape.as_str())).or_insert(r.median_ms);
    }
    t
}

/// The candidate a variant names under `c`, if it is one ("bf16" -> bare, "bf16 wgmma" ->
/// "wgmma"; "bf16 decode" and the like are other cases, not candidates, when they hold a space).
fn candidate<'a>(c: &Choice, variant: &'a str) -> Option<&'a str> {
    if variant == c.prefix {
        return Some(c.bare);
    }
    let name = variant.strip_prefix(c.prefix)?.strip_prefix(' ')?;
    (!name.contains(' ') && !name.contains('=')).then_some(name)
}

/// Geometric mean of the candidates' time over the default's, on the shapes both were timed at:
/// (candidate, mean ratio, shapes), sorted fastest first.
fn scores(c: &Choice, rows: &[Row]) -> Vec<(String, f64, usize)> {
    let mut by_shape: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for ((variant, shape), ms) in times(rows, c.op) {
        if let Some(name) = candidate(c, variant) {
            by_shape.entry(shape).or_default().insert(name, ms);
        }
    }
    let mut logs: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for cands in by_shape.values() {
        let Some(&now) = cands.get(c.now) else { continue };
        for (&name, &ms) in cands {
            let e = logs.entry(name).or_default();
            e.0 += (ms / now).ln();
            e.1 += 1;
        }
    }
    let mut out: Vec<(String, f64, usize)> = logs.into_iter().map(|(n, (l, k))| (n.to_string(), (l / k as f64).exp(), k)).collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

/// The section `kiln bench-report` prints: one line per choice the rows can speak to.
pub fn format(rows: &[Row]) -> String {
    let mut lines = String::new();
    for c in CHOICES {
        let s = scores(c, rows);
        let Some((best, x, k)) = s.first().filter(|_| s.len() > 1) else { continue }; // (nothing to choose from)
        let others: Vec<String> = s.iter().skip(1).map(|(n, x, _)| format!("{n} {x:.2}x")).collect();
        let verdict = if best == c.now { format!("keep {best}") } else { format!("fastest {best} {x:.2}x") };
        lines += &format!("  {:<64} now {:<12} {verdict} over {k} shape(s) [{}]\n", c.what, c.now, others.join(", "));
    }
    let planner = times(rows, "linear_attention_fwd");
    let sweep = times(rows, "linear_attention_fwd_segments");
    for &(prefix, walk) in WALKS {
        for (&(variant, shape), &ms) in &planner {
            if variant != prefix {
                continue;
            }
            let best = sweep
                .iter()
                .filter(|((v, sh), _)| *sh == shape && sweep_segments(v, prefix).is_some())
                .min_by(|a, b| a.1.total_cmp(b.1));
            let Some(((v, _), &best_ms)) = best else { continue };
            let s = format!("S={}", sweep_segments(v, prefix).unwrap_or("?"));
            lines += &format!("  {:<64} planner {ms:.4} ms; fastest {s} {best_ms:.4} ms ({:.2}x)\n", format!("linear attention segments, {walk} walk ({shape})"), best_ms / ms);
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!("\nchoices this run can settle (x: time over the candidate kiln runs now; < 1 is faster)\n{lines}")
}

/// The segment sweep as lines, one per walk: (log2 S, ms) points, for `kiln bench-report --plot`.
pub fn segment_series(rows: &[Row]) -> Vec<crate::report::plot::Series> {
    let sweep = times(rows, "linear_attention_fwd_segments");
    let mut out = vec![];
    for &(prefix, walk) in WALKS {
        let mut by_shape: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (&(v, shape), &ms) in &sweep {
            let Some(n) = sweep_segments(v, prefix).and_then(|n| n.parse::<f64>().ok()) else { continue };
            by_shape.entry(shape).or_default().push((n.log2(), ms));
        }
        for (shape, mut points) in by_shape {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            out.push(crate::report::plot::Series { label: format!("{walk} walk, {shape}"), points });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(op: &str, variant: &str, shape: &str, ms: f64) -> Row {
        Row { device: "H200".into(), op: op.into(), variant: variant.into(), shape: shape.into(), median_ms: ms, gbps: None, tflops: None, baseline: None, ratio: None }
    }

    #[test]
    fn names_the_fastest_candidate_by_geometric_mean_over_shapes() {
        let rows = vec![
            row("matmul", "bf16", "a", 3.0),
            row("matmul", "bf16 wgmma", "a", 2.0),
            row("matmul", "bf16 wgmma-tma", "a", 1.0),
            Row { baseline: Some("cublas_bf16".into()), ..row("matmul", "bf16 wgmma-tma", "a", 9.0) }, // same timing, other baseline
            row("matmul", "bf16", "b", 4.0),
            row("matmul", "bf16 wgmma", "b", 2.0),
            row("matmul", "bf16 wgmma-tma", "b", 3.0),
            row("matmul", "bf16 decode", "c", 0.1),                 // another case, not a candidate
            row("matmul", "bf16 wgmma [KILN_GEMM=mma]", "a", 0.01), // an A/B row: not a candidate
            row("matmul", "torch_bf16", "a", 0.5),
        ];
        let s = scores(&CHOICES[0], &rows);
        let names: Vec<&str> = s.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["wgmma-tma", "wgmma", "mma"]); // tma: sqrt(0.5 * 1.5) = 0.87
        assert!((s[2].1 - (1.5f64 * 2.0).sqrt()).abs() < 1e-12 && s[2].2 == 2);
        let text = format(&rows);
        assert!(text.contains("now wgmma        fastest wgmma-tma 0.87x over 2 shape(s) [wgmma 1.00x, mma 1.73x]"), "{text}");
    }

    #[test]
    fn linear_attention_walk_and_segments() {
        let rows = vec![
            row("linear_attention_fwd", "bf16", "BH=64", 0.3),
            row("linear_attention_fwd", "bf16 wgmma", "BH=64", 0.2),
            row("linear_attention_fwd", "bf16 wgmma-fused", "BH=64", 0.12),
            row("linear_attention_fwd", "f32", "BH=64", 2.0),
            row("linear_attention_fwd_segments", "bf16 S=2", "BH=64", 0.35),
            row("linear_attention_fwd_segments", "bf16 S=8", "BH=64", 0.27),
            row("linear_attention_fwd_segments", "bf16 wgmma-fused S=8", "BH=64", 0.13),
            row("linear_attention_fwd_segments", "bf16 wgmma-fused S=16", "BH=64", 0.10),
        ];
        let text = format(&rows);
        assert!(text.contains("now mma          fastest wgmma-fused 0.40x over 1 shape(s) [wgmma 0.67x, mma 1.00x]"), "{text}");
        assert!(text.contains("mma walk (BH=64)") && text.contains("planner 0.3000 ms; fastest S=8 0.2700 ms (0.90x)"), "{text}");
        assert!(text.contains("wgmma-fused walk (BH=64)") && text.contains("fastest S=16 0.1000 ms (0.83x)"), "{text}");
        assert!(!text.contains("wgmma walk (BH=64)"), "no sweep rows for the three-launch walk: {text}");
        assert_eq!(format(&[row("rope", "f32", "x", 1.0), row("linear_attention_fwd", "bf16", "BH=64", 0.3)]), "");
        let lines = segment_series(&rows);
        assert_eq!(lines.len(), 2, "the mma and the fused walk were swept");
        assert_eq!(lines[0].label, "mma walk, BH=64");
        assert_eq!(lines[0].points, vec![(1.0, 0.35), (3.0, 0.27)]);
        assert_eq!(lines[1].points, vec![(3.0, 0.13), (4.0, 0.10)]);
    }
}
