//! The claims, judged on the numbers, and the report files: report.json, report.md and
//! accuracy.png (ERASE and RAG vs changes per step).

use super::Results;
use crate::methods::{claims_table, Claim};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// ERASE's advantage over RAG at the most changes that counts as "beats" (paper: 7-13 points).
pub const MARGIN: f64 = 0.05;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Every claim this run can speak to.
pub fn claims(r: &Results) -> Vec<Claim> {
    let (Some(first), Some(last)) = (r.rows.first(), r.rows.last()) else { return vec![] };
    let gaps = r.rows.iter().map(|x| format!("{}/step: {:+.1}", x.changes_per_step, 100.0 * (x.erase - x.rag))).collect::<Vec<_>>().join(", ");
    vec![
        Claim {
            name: "ERASE beats append-only RAG on a changing world".into(),
            statement: format!("with the most changes per step, ERASE answers >= {} points more current-state questions than RAG (paper: +7-13)", 100.0 * MARGIN),
            target: true,
            holds: Some(last.erase - last.rag >= MARGIN),
            numbers: format!("{} changes/step: ERASE {} vs RAG {}", last.changes_per_step, pct(last.erase), pct(last.rag)),
        },
        Claim {
            name: "the gap grows with the number of changed facts".into(),
            statement: "ERASE's lead over RAG is larger at the most changes per step than at the fewest".into(),
            target: r.rows.len() >= 2,
            holds: (r.rows.len() >= 2).then_some(last.erase - last.rag > first.erase - first.rag),
            numbers: format!("ERASE - RAG in points: {gaps}"),
        },
        Claim {
            name: "the gain comes from editing, not only from storing facts".into(),
            statement: format!("with the most changes per step, ERASE beats the same fact store without edits (append-only facts) by >= {} points", 100.0 * MARGIN),
            target: true,
            holds: Some(last.erase - last.facts >= MARGIN),
            numbers: format!(
                "ERASE - append-only facts in points: {}",
                r.rows.iter().map(|x| format!("{}/step: {:+.1}", x.changes_per_step, 100.0 * (x.erase - x.facts))).collect::<Vec<_>>().join(", ")
            ),
        },
        Claim {
            name: "editing costs nothing when nothing changes".into(),
            statement: "with the fewest changes per step, ERASE is within 1 point of the append-only fact store or above it".into(),
            target: false,
            holds: Some(first.erase >= first.facts - 0.01),
            numbers: format!("{} changes/step: ERASE {} vs append-only facts {} (RAG {})", first.changes_per_step, pct(first.erase), pct(first.facts), pct(first.rag)),
        },
    ]
}

/// One sentence: the target claims' verdicts and the largest setting's accuracies.
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r.claims.iter().filter(|c| c.target).map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" })).collect();
    let last = r.rows.last().map_or(String::new(), |x| format!(" (at {} changes/step: ERASE {} vs RAG {})", x.changes_per_step, pct(x.erase), pct(x.rag)));
    format!("{}{last}", verdicts.join("; "))
}

/// report.json, report.md and accuracy.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let cfg = &r.config;
    let line = |f: &dyn Fn(&super::Row) -> f64| r.rows.iter().map(|x| (x.changed_pairs, 100.0 * f(x))).collect::<Vec<_>>();
    let series = [
        Series { label: "ERASE".into(), points: line(&|x| x.erase) },
        Series { label: "RAG (append-only documents)".into(), points: line(&|x| x.rag) },
        Series { label: "append-only facts (no edits)".into(), points: line(&|x| x.facts) },
        Series { label: "ERASE, changed facts".into(), points: line(&|x| x.erase_changed.unwrap_or(f64::NAN)) },
        Series { label: "RAG, changed facts".into(), points: line(&|x| x.rag_changed.unwrap_or(f64::NAN)) },
    ];
    dir.write_bytes("accuracy.png", &line_plot_png("current-state questions answered", "facts changed during the stream (mean)", "accuracy (%)", &series)?)?;
    let opt = |x: Option<f64>| x.map_or("-".into(), pct);
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|x| {
            vec![
                x.changes_per_step.to_string(),
                format!("{:.1} of {}", x.changed_pairs, 3 * cfg.entities),
                pct(x.rag),
                pct(x.facts),
                pct(x.erase),
                format!("{:+.1}", 100.0 * (x.erase - x.rag)),
                opt(x.rag_changed),
                opt(x.erase_changed),
                format!("{:.0}", x.kb_facts),
                format!("{:.1}", x.made_false),
                format!("{:.1}", x.stale_true),
            ]
        })
        .collect();
    let md = format!(
        "# ERASE (Li et al. 2024)\n\n{}.\n\n\
         **Setup.** {} entities with three relations (works_at, lives_in, role); {} steps, each changing some (entity, relation) \
         pairs and restating {} unchanged ones, every document one fact in one of two templates per relation (e.g. `e3 works_at c5` or \
         `e3 joined c5`); {} streams per setting. Questions: every pair's current value (`e3 works_at`). Embeddings: hashed word \
         vectors, width {}. RAG appends every document and answers from the best-ranked of its top {} documents about the pair. \
         ERASE, for each document, retrieves up to {} still-true facts with cosine >= {}, marks those about the same pair \
         reinforced (same value) or false (another value), and adds the document's fact unless reinforced; it answers from its top \
         {} still-true facts. The ablation stores the same canonical facts but never edits them. The reader is exact template \
         parsing, standing in for the language model's judgments. Seed {}.\n\n\
         ## Claims\n\n{}\n\n## Accuracy by changes per step\n\n{}\n\n![accuracy](accuracy.png)\n\nThe stream's first changes, \
         largest setting:\n\n```\n{}\n```\n",
        headline(r),
        cfg.entities,
        cfg.steps,
        cfg.restated,
        cfg.streams,
        cfg.dim,
        cfg.k,
        cfg.k_update,
        cfg.threshold,
        cfg.k,
        cfg.seed,
        claims_table(&r.claims),
        markdown_table(&["changes/step", "pairs changed", "RAG", "facts, no edits", "ERASE", "ERASE - RAG", "RAG, changed", "ERASE, changed", "KB facts", "made false", "stale but true"], &rows),
        r.example_docs.join("\n"),
    );
    dir.write_text("report.md", &md)?;
    Ok(())
}
