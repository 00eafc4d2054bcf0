//! The claims, judged on the numbers, and the report files: report.json (every number),
//! report.md (tables, claims) and two PNGs (accuracy vs budget; accuracy vs routed fraction).

use super::Results;
use crate::methods::{claims_table, Claim};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// Saving at equal quality that counts as "less computation" (the paper reports up to 50%).
pub const SAVING: f64 = 0.25;
/// Accuracy gain at a fixed budget that counts as "better" (the paper reports up to 10 points).
pub const GAIN: f64 = 0.02;
/// Adaptive may trail uniform by this much at a budget and still count as "never worse".
pub const SLACK: f64 = 0.005;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Every claim this run can speak to.
pub fn claims(r: &Results) -> Vec<Claim> {
    let p = &r.probe;
    let mut out = vec![Claim {
        name: "the probe predicts per-query success".into(),
        statement: "on unseen queries, the hidden-state probe's predicted success rate has a lower squared error against the empirical rate than a constant (the probe set's mean)".into(),
        target: true,
        holds: Some(p.brier < p.brier_constant),
        numbers: format!("squared error {:.4} vs constant {:.4}; Spearman {:.2}", p.brier, p.brier_constant, p.spearman),
    }];
    let rows = &r.budgets;
    let line = |f: &dyn Fn(&super::BudgetRow) -> String| rows.iter().map(|b| format!("b={} {}", b.budget, f(b))).collect::<Vec<_>>().join(", ");
    out.push(Claim {
        name: "adaptive allocation is never worse than uniform".into(),
        statement: format!("at every uniform budget, greedy allocation by the probe's predictions is within {} of uniform best-of-b or above it", pct(SLACK)),
        target: true,
        holds: (!rows.is_empty()).then(|| rows.iter().all(|b| b.adaptive >= b.uniform - SLACK)),
        numbers: line(&|b| format!("{} vs {}", pct(b.adaptive), pct(b.uniform))),
    });
    let best_saving = rows.iter().filter_map(|b| b.saving).fold(f64::NEG_INFINITY, f64::max);
    out.push(Claim {
        name: "adaptive allocation needs less computation for the same accuracy".into(),
        statement: format!("at some budget, the probe's allocation matches uniform best-of-b's accuracy with >= {} fewer samples (paper: up to 50%)", pct(SAVING)),
        target: true,
        holds: (!rows.is_empty()).then_some(best_saving >= SAVING),
        numbers: line(&|b| b.adaptive_budget_to_match.map_or("never".into(), |x| format!("{x:.2}/query ({} saved)", pct(1.0 - x / b.budget as f64)))),
    });
    let best_gain = rows.iter().map(|b| b.adaptive - b.uniform).fold(f64::NEG_INFINITY, f64::max);
    out.push(Claim {
        name: "adaptive allocation is more accurate at a fixed budget".into(),
        statement: format!("at some budget the probe's allocation beats uniform by >= {} points (paper: up to 10%)", 100.0 * GAIN),
        target: false,
        holds: (!rows.is_empty()).then_some(best_gain >= GAIN),
        numbers: format!("largest gain {:+.1} points", 100.0 * best_gain),
    });
    let routes = &r.routing;
    out.push(Claim {
        name: "routing by predicted gain beats random routing".into(),
        statement: "at every routed fraction, sending the queries with the largest predicted gain (strong - weak, probes on the weak decoder's states) to the strong decoder scores above sending a random set of that size".into(),
        target: !routes.is_empty(),
        holds: (!routes.is_empty()).then(|| routes.iter().all(|x| x.predicted > x.random)),
        numbers: routes.iter().map(|x| format!("{}: {} vs random {} (oracle {})", pct(x.fraction), pct(x.predicted), pct(x.random), pct(x.oracle))).collect::<Vec<_>>().join(", "),
    });
    out
}

/// One sentence: the target claims' verdicts and the best saving.
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r.claims.iter().filter(|c| c.target).map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" })).collect();
    let best = r.budgets.iter().filter_map(|b| b.saving.map(|s| (s, b.budget))).max_by(|a, b| a.0.total_cmp(&b.0));
    let saving = best.map_or(String::new(), |(s, b)| format!(" (largest saving {} at {b} samples/query)", pct(s)));
    format!("{}{saving}", verdicts.join("; "))
}

/// report.json, report.md, budget.png and routing.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let cfg = &r.config;
    let top = cfg.budgets.iter().copied().max().unwrap_or(1) as f64;
    // From one sample per query up, where the allocations differ: log2 x, the unsolved share on y.
    let clip = |c: &[(f64, f64)]| c.iter().filter(|p| p.0 >= 1.0 && p.0 <= top).map(|&(x, y)| (x.log2(), 100.0 * (1.0 - y))).collect::<Vec<_>>();
    let series = [
        Series { label: "uniform best-of-b".into(), points: r.budgets.iter().map(|b| ((b.budget as f64).log2(), 100.0 * (1.0 - b.uniform))).collect() },
        Series { label: "greedy by the probe".into(), points: clip(&r.adaptive_curve) },
        Series { label: "greedy by the true rate (oracle)".into(), points: clip(&r.oracle_curve) },
    ];
    dir.write_bytes("budget.png", &line_plot_png("unsolved queries vs samples per query (strong decoder)", "log2 samples per query", "expected unsolved (%)", &series)?)?;
    let ends = |f: &dyn Fn(&super::RouteRow) -> f64| -> Vec<(f64, f64)> {
        let mut v = vec![(0.0, 100.0 * r.weak.success)];
        v.extend(r.routing.iter().map(|x| (100.0 * x.fraction, 100.0 * f(x))));
        v.push((100.0, 100.0 * r.strong.success));
        v
    };
    let routes = [
        Series { label: "random".into(), points: ends(&|x| x.random) },
        Series { label: "by predicted gain".into(), points: ends(&|x| x.predicted) },
        Series { label: "by true gain (oracle)".into(), points: ends(&|x| x.oracle) },
    ];
    dir.write_bytes("routing.png", &line_plot_png("routing queries to the strong decoder (1 sample each)", "queries routed (%)", "accuracy (%)", &routes)?)?;

    let digit_headers: Vec<String> = (1..=cfg.max_digits).map(|n| format!("{n}-digit")).collect();
    let mut dec_headers = vec!["decoder", "params", "final loss", "seconds", "1-sample success"];
    dec_headers.extend(digit_headers.iter().map(String::as_str));
    let dec_rows: Vec<Vec<String>> = [("strong", &r.strong, &cfg.strong), ("weak", &r.weak, &cfg.weak)]
        .iter()
        .map(|(name, s, d)| {
            let shape = match (&r.checkpoint, *name) {
                (Some(cut), "strong") => format!("{name} ({}, {} steps)", cut.model, d.steps),
                _ => format!("{name} (width {}, {} blocks, {} steps)", d.width, d.layers, d.steps),
            };
            let mut row = vec![shape, s.params.to_string(), format!("{:.3}", s.final_loss), format!("{:.0}", s.seconds), pct(s.success)];
            row.extend(s.success_by_digits.iter().map(|v| pct(*v)));
            row
        })
        .collect();
    let mut budget_headers = vec!["samples/query", "uniform", "greedy (probe)", "greedy (oracle)", "probe needs", "saving"];
    let alloc_headers: Vec<String> = (1..=cfg.max_digits).map(|n| format!("given to {n}-digit")).collect();
    budget_headers.extend(alloc_headers.iter().map(String::as_str));
    let budget_rows: Vec<Vec<String>> = r
        .budgets
        .iter()
        .map(|b| {
            let mut row = vec![b.budget.to_string(), pct(b.uniform), pct(b.adaptive), pct(b.oracle), b.adaptive_budget_to_match.map_or("never".into(), |x| format!("{x:.2}")), b.saving.map_or("-".into(), pct)];
            row.extend(b.adaptive_by_digits.iter().map(|v| format!("{v:.1}")));
            row
        })
        .collect();
    let route_rows: Vec<Vec<String>> = r.routing.iter().map(|x| vec![pct(x.fraction), pct(x.random), pct(x.predicted), pct(x.oracle)]).collect();
    let md = format!(
        "# Adaptive computation (Damani et al. 2024)\n\n{}.\n\n\
         **Setup.** Addition of two n-digit numbers, n uniform in 1..{}, answer digits least significant first, checked exactly. \
         {} on {} examples; {} samples per query at temperature {} from the batched \
         sampler, for {} probe-fitting and {} test queries. The probe is logistic regression (C = {}) from the decoder's last-block \
         state at the `=` token to P(one sample is correct), fitted on the probe queries' sample outcomes. A query given b samples \
         counts as solved with the unbiased best-of-b estimate over its drawn samples, 1 - C(s - c, b) / C(s, b). Seed {}.\n\n\
         ## Claims\n\n{}\n\n## Decoders\n\n{}\n\n## Budgets\n\nGreedy: one sample at a time to the query with the largest predicted \
         gain p (1 - p)^b, at most {} a query. \"Probe needs\": the samples per query at which the probe's allocation first \
         reaches uniform's accuracy.\n\n{}\n\nProbe quality on the test queries: Spearman {:.2} with the empirical rate; squared \
         error {:.4} (a constant: {:.4}).\n\n![budget](budget.png)\n\n## Routing\n\nOne sample per query; the probes read the \
         weak decoder's states and predict both decoders' success.\n\n{}\n\n![routing](routing.png)\n\n\
         **Scale.** Two tiny decoders on synthetic arithmetic, not the paper's LMs on math and code: difficulty here is mostly \
         the operand length, which the probe can read off the prompt.\n",
        headline(r),
        cfg.max_digits,
        match &r.checkpoint {
            Some(cut) => format!("The strong decoder fine-tuned from the {}, the weak one a GPT-2-style decoder trained by kiln, both", cut.describe()),
            None => "Two GPT-2-style decoders trained by kiln".into(),
        },
        cfg.train_examples,
        cfg.samples,
        cfg.temperature,
        cfg.probe_queries,
        cfg.test_queries,
        cfg.probe_c,
        cfg.seed,
        claims_table(&r.claims),
        markdown_table(&dec_headers, &dec_rows),
        cfg.samples,
        markdown_table(&budget_headers, &budget_rows),
        r.probe.spearman,
        r.probe.brier,
        r.probe.brier_constant,
        markdown_table(&["routed", "random", "by predicted gain", "by true gain (oracle)"], &route_rows),
    );
    dir.write_text("report.md", &md)?;
    Ok(())
}
