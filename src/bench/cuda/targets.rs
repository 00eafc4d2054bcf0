//! The issues' speed targets read back from one bench run's rows: `kiln bench --device cuda`
//! prints these verdicts after its table, so whoever holds the GPU sees at once which targets
//! hold, by how much the others miss, and which bf16 GEMM path was fastest (the one to make the
//! default). A target whose rows the run did not produce (a family left out, no cuBLAS) says so.

use super::Row;

/// One target: what it asks, what the run measured, and whether that meets it (None: no rows).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub target: &'static str,
    pub measured: String,
    pub met: Option<bool>,
}

/// Memory-bound rows judged against the copy ceiling: every row whose baseline is `copy_bw`,
/// except the ops with targets of their own below.
const OWN_TARGETS: &[&str] = &["linear_attention", "sample", "lora", "ceiling", "attention"];

/// The verdicts for `rows`, in the order of the issues' "Done when" lines.
pub fn verdicts(rows: &[Row]) -> Vec<Verdict> {
    let base = |r: &Row, b: &str| r.baseline.as_deref() == Some(b);
    let mut out = vec![];

    // bf16 GEMM at 4096^3 within 2.0x of cuBLAS; every bf16 path's ratio, fastest first.
    let mut gemm: Vec<&Row> = rows.iter().filter(|r| r.op == "matmul" && r.shape == "4096x4096x4096" && base(r, "cublas_bf16")).collect();
    gemm.sort_by(|a, b| a.ratio.unwrap_or(f64::MAX).total_cmp(&b.ratio.unwrap_or(f64::MAX)));
    out.push(best("bf16 GEMM 4096^3 <= 2.0x cuBLAS", &gemm, |x| x <= 2.0));

    // LoRA forward (N >= 2048) within 1.10x of cuBLAS x W alone, and faster than the 3 calls.
    let big = |r: &Row| r.shape.strip_prefix("N=").and_then(|s| s.split(' ').next()).and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n >= 2048);
    let mut lora: Vec<&Row> = rows.iter().filter(|r| r.op == "lora_fwd" && r.variant.starts_with("bf16") && big(r) && base(r, "cublas_xW")).collect();
    lora.sort_by(|a, b| a.ratio.unwrap_or(f64::MAX).total_cmp(&b.ratio.unwrap_or(f64::MAX)));
    let mut v = best("LoRA fwd (N >= 2048) <= 1.10x cuBLAS x W", &lora, |x| x <= 1.10);
    if let Some(first) = lora.first() {
        let three = rows.iter().find(|r| r.op == "lora_fwd" && r.variant == first.variant && r.shape == first.shape && base(r, "cublas_3call"));
        if let Some(t) = three.and_then(|r| r.ratio) {
            v.measured += &format!("; {t:.2}x cuBLAS's 3 calls");
            v.met = v.met.map(|m| m && t < 1.0);
        }
    }
    out.push(v);

    // Linear attention forward (the default kernels) at >= 60% of the HBM roofline.
    let la: Vec<&Row> = rows.iter().filter(|r| r.op == "linear_attention_fwd" && base(r, "copy_bw")).collect();
    let measured = la.iter().map(|r| format!("{} {:.2}", r.variant, r.ratio.unwrap_or(0.0))).collect::<Vec<_>>().join(", ");
    let met = (!la.is_empty()).then(|| la.iter().any(|r| r.ratio.unwrap_or(0.0) >= 0.60));
    out.push(Verdict { target: "linear attention fwd >= 0.60 of the roofline", measured: or_none(measured), met });

    // The sampler at least 5x faster than a sort-based top-p, on every shape.
    let speedups: Vec<f64> = rows.iter().filter(|r| r.op == "sample" && base(r, "sort_based")).filter_map(|r| r.ratio.map(|x| 1.0 / x)).collect();
    let slowest = speedups.iter().copied().fold(f64::INFINITY, f64::min);
    out.push(Verdict {
        target: "sampler >= 5x the sort-based top-p",
        measured: if speedups.is_empty() { or_none(String::new()) } else { format!("{slowest:.1}x at the slowest of {} shapes", speedups.len()) },
        met: (!speedups.is_empty()).then_some(slowest >= 5.0),
    });

    // Memory-bound kernels at >= 70% of the measured copy bandwidth: the rows that miss.
    let mem: Vec<&Row> = rows.iter().filter(|r| base(r, "copy_bw") && !OWN_TARGETS.iter().any(|o| r.op.starts_with(o))).collect();
    let short: Vec<String> =
        mem.iter().filter(|r| r.ratio.unwrap_or(0.0) < 0.70).map(|r| format!("{} {} {} {:.2}", r.op, r.variant, r.shape, r.ratio.unwrap_or(0.0))).collect();
    out.push(Verdict {
        target: "memory-bound kernels >= 0.70 of copy bandwidth",
        measured: if mem.is_empty() { or_none(String::new()) } else { format!("{} of {} rows; below: {}", mem.len() - short.len(), mem.len(), if short.is_empty() { "none".into() } else { short.join("; ") }) },
        met: (!mem.is_empty()).then_some(short.is_empty()),
    });
    out
}

/// A verdict on the best (first) of `sorted`, listing every row's variant and ratio.
fn best(target: &'static str, sorted: &[&Row], ok: impl Fn(f64) -> bool) -> Verdict {
    let measured = sorted.iter().map(|r| format!("{} {:.2}x", r.variant, r.ratio.unwrap_or(f64::NAN))).collect::<Vec<_>>().join(", ");
    let met = sorted.first().and_then(|r| r.ratio).map(ok);
    Verdict { target, measured: or_none(measured), met }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "no rows in this run".into() } else { s }
}

/// The verdicts as lines of text: "[met]", "[MISS]" or "[ -- ]", the target, what was measured.
pub fn format(v: &[Verdict]) -> String {
    let mut s = String::from("\ntargets (this run):\n");
    for x in v {
        let tag = match x.met {
            Some(true) => "[met] ",
            Some(false) => "[MISS]",
            None => "[ -- ]",
        };
        s += &format!("  {tag} {:<48} {}\n", x.target, x.measured);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(op: &str, variant: &str, shape: &str, baseline: &str, ratio: f64) -> Row {
        Row {
            device: "test".into(),
            op: op.into(),
            variant: variant.into(),
            shape: shape.into(),
            median_ms: 1.0,
            gbps: None,
            tflops: None,
            baseline: Some(baseline.into()),
            ratio: Some(ratio),
        }
    }

    #[test]
    fn targets_read_from_rows() {
        let rows = vec![
            row("matmul", "bf16 wgmma", "4096x4096x4096", "cublas_bf16", 1.6),
            row("matmul", "bf16 wgmma-tma", "4096x4096x4096", "cublas_bf16", 1.08),
            row("matmul", "bf16 wgmma-tma", "8192x8192x8192", "cublas_bf16", 0.5),
            row("lora_fwd", "bf16 wgmma-tma", "N=4096 K=4096 M=4096 R=16", "cublas_xW", 1.15),
            row("lora_fwd", "bf16 wgmma-tma", "N=4096 K=4096 M=4096 R=16", "cublas_3call", 0.9),
            row("lora_fwd", "bf16 wgmma-tma", "N=16 K=4096 M=4096 R=16", "cublas_xW", 0.5),
            row("linear_attention_fwd", "bf16", "BH=64 T=4096 D=128", "copy_bw", 0.35),
            row("sample", "vs sort_based", "B=64 V=128256", "sort_based", 0.1),
            row("sample", "vs sort_based", "B=1 V=32000", "sort_based", 0.25),
            row("softmax", "bf16", "4096x32000", "copy_bw", 0.75),
            row("gelu", "bf16", "64M", "copy_bw", 0.69),
            row("linear_attention_fwd_unsplit", "bf16", "BH=64", "copy_bw", 0.1),
        ];
        let v = verdicts(&rows);
        assert_eq!(v.len(), 5);
        // GEMM: the fastest path first, met; the 8192^3 row is not the 4096^3 target's
        assert_eq!(v[0].met, Some(true));
        assert!(v[0].measured.starts_with("bf16 wgmma-tma 1.08x, bf16 wgmma 1.60x"), "{}", v[0].measured);
        // LoRA: 1.15 > 1.10 misses, though faster than the 3 calls; the N = 16 row does not count
        assert_eq!(v[1].met, Some(false));
        assert!(v[1].measured.contains("1.15x") && v[1].measured.contains("0.90x cuBLAS's 3 calls"), "{}", v[1].measured);
        assert_eq!(v[2].met, Some(false));
        // sampler: 1 / 0.25 = 4x at the slowest shape misses 5x
        assert_eq!(v[3].met, Some(false));
        assert!(v[3].measured.starts_with("4.0x"), "{}", v[3].measured);
        // memory-bound: gelu misses; linear attention's rows are judged by their own target
        assert_eq!(v[4].met, Some(false));
        assert!(v[4].measured.starts_with("1 of 2 rows") && v[4].measured.contains("gelu bf16 64M 0.69"), "{}", v[4].measured);
    }

    #[test]
    fn targets_without_rows_say_so() {
        let v = verdicts(&[]);
        assert!(v.iter().all(|x| x.met.is_none() && x.measured == "no rows in this run"));
        assert!(format(&v).contains("[ -- ]"));
    }
}
