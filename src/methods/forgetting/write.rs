//! The claims, judged on the numbers, and the report files: report.json (every number),
//! report.md (tables, claims) and two PNGs (the task x task matrix; model vs probe after forgetting).

use super::{After, Before, Results};
use crate::methods::{claims_table, Claim};
use crate::report::plot::{bar_chart_png, heatmaps_png, line_plot_png, Bar, Heatmap, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// A forgetting set counts as forgotten when its true-label accuracy is within this of chance.
pub const NEAR_CHANCE: f64 = 0.15;
/// Generalisation spread across tasks that counts as "varies from task to task".
pub const SPREAD: f64 = 0.3;
/// A task whose forgetting generalised (g >= this) is tested for shallowness.
pub const GENERALISED: f64 = 0.5;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn learned(r: &Results) -> impl Iterator<Item = (&Before, &After, f64)> {
    r.before.iter().zip(&r.after).filter_map(|(b, a)| a.generalisation.map(|g| (b, a, g)))
}

/// Every claim this run can speak to.
pub fn claims(r: &Results) -> Vec<Claim> {
    let mut out = Vec::new();
    let pairs: Vec<_> = learned(r).collect();
    let unlearned: Vec<&str> = r.before.iter().zip(&r.after).filter(|(_, a)| a.generalisation.is_none()).map(|(b, _)| b.task.as_str()).collect();
    let skipped = if unlearned.is_empty() { String::new() } else { format!(" (not learned in pretraining, left out: {})", unlearned.join(", ")) };
    let line = |f: &dyn Fn(&Before, &After, f64) -> String| pairs.iter().map(|(b, a, g)| format!("{} {}", b.task, f(b, a, *g))).collect::<Vec<_>>().join(", ");
    out.push(Claim {
        name: "forgetting-set examples become near-random".into(),
        statement: format!("after fine-tuning on random labels, every learned task's forgetting-set accuracy (true labels) is within {} of chance", pct(NEAR_CHANCE)),
        target: true,
        holds: (!pairs.is_empty()).then(|| pairs.iter().all(|(b, a, _)| a.forget_accuracy <= b.chance + NEAR_CHANCE)),
        numbers: format!("{}{skipped}", line(&|b, a, _| format!("{} -> {} (chance {}, random labels fit {})", pct(b.forget_accuracy), pct(a.forget_accuracy), pct(b.chance), pct(a.fit_random)))),
    });
    let gs: Vec<f64> = pairs.iter().map(|p| p.2).collect();
    let spread = best(&gs) - gs.iter().copied().fold(f64::INFINITY, f64::min);
    out.push(Claim {
        name: "whether forgetting generalises varies by task".into(),
        statement: format!(
            "the share of held-out above-chance accuracy removed by forgetting, g = (before - after) / (before - chance), spans >= {SPREAD} across tasks"
        ),
        target: true,
        holds: (pairs.len() >= 2).then_some(spread >= SPREAD),
        numbers: format!("g: {}; spread {spread:.2}", line(&|_, _, g| format!("{g:.2}"))),
    });
    let deep: Vec<_> = pairs.iter().filter(|p| p.2 >= GENERALISED).collect();
    out.push(Claim {
        name: "forgetting is shallow: probes still solve the task".into(),
        statement: format!(
            "for every task whose forgetting generalised (g >= {GENERALISED}), the best layer's linear probe after forgetting keeps >= half of its above-chance accuracy"
        ),
        target: !deep.is_empty(),
        holds: (!deep.is_empty()).then(|| deep.iter().all(|(b, a, _)| best(&a.probe) - b.chance >= 0.5 * (best(&b.probe) - b.chance))),
        numbers: if deep.is_empty() {
            "no task's forgetting generalised, so there is nothing to probe".into()
        } else {
            deep.iter().map(|(b, a, g)| format!("{} (g {g:.2}): model {} -> {}, probe {} -> {}", b.task, pct(b.heldout_accuracy), pct(a.heldout_accuracy[index(r, &b.task)]), pct(best(&b.probe)), pct(best(&a.probe)))).collect::<Vec<_>>().join("; ")
        },
    });
    let c = &r.correlations;
    let rho = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{v:.2}"));
    out.push(Claim {
        name: "low confidence and low variability go with more generalisation".into(),
        statement: "Spearman's rho of g with the initial confidence and with the representation variability (on the forgetting set) are both negative (paper: weakly)".into(),
        target: false,
        holds: match (c.confidence, c.variability) {
            (Some(a), Some(b)) => Some(a < 0.0 && b < 0.0),
            _ => None,
        },
        numbers: format!(
            "over {} tasks: rho(g, confidence) {}, rho(g, variability) {}{}",
            c.tasks,
            rho(c.confidence),
            rho(c.variability),
            if c.tasks >= 3 && c.confidence.is_none() {
                format!(" (the initial confidences lie within {:.4} of each other: saturated, no ranking to correlate)", c.confidence_spread)
            } else {
                String::new()
            }
        ),
    });
    let mut spill = Vec::new();
    for (i, a) in r.after.iter().enumerate() {
        for (j, b) in r.before.iter().enumerate() {
            let margin = b.heldout_accuracy - b.chance;
            if i != j && margin >= 0.1 {
                spill.push(((b.heldout_accuracy - a.heldout_accuracy[j]) / margin, format!("{} -> {}", a.task, b.task)));
            }
        }
    }
    spill.sort_by(|x, y| y.0.total_cmp(&x.0));
    out.push(Claim {
        name: "forgetting one task can spill over to another".into(),
        statement: format!("forgetting some task removes >= {GENERALISED} of another task's above-chance held-out accuracy (paper: science-question forgetting randomised entailment)"),
        target: false,
        holds: (!spill.is_empty()).then(|| spill[0].0 >= GENERALISED),
        numbers: spill.iter().take(3).map(|(g, s)| format!("{s} {g:.2}")).collect::<Vec<_>>().join(", "),
    });
    out
}

fn index(r: &Results, task: &str) -> usize {
    r.before.iter().position(|b| b.task == task).unwrap_or(0)
}

/// One sentence: the target claims' verdicts and each task's g (report.md has every number).
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r
        .claims
        .iter()
        .filter(|c| c.target)
        .map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" }))
        .collect();
    if verdicts.is_empty() {
        return "forgetting: no pass/fail claim in this run (see report.md)".into();
    }
    let g: Vec<String> = learned(r).map(|(b, _, g)| format!("{} {g:.2}", b.task)).collect();
    format!("{} (g: {})", verdicts.join("; "), if g.is_empty() { "no task learned".into() } else { g.join(", ") })
}

/// report.json, report.md, matrix.png and shallow.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let names: Vec<String> = r.before.iter().map(|b| b.task.clone()).collect();
    let rows: Vec<String> = std::iter::once("pretrained".to_string()).chain(names.iter().cloned()).collect();
    let cells: Vec<Option<f64>> = r
        .before
        .iter()
        .map(|b| Some(b.heldout_accuracy))
        .chain(r.after.iter().flat_map(|a| a.heldout_accuracy.iter().map(|&v| Some(v))))
        .collect();
    let panels = [Heatmap { title: "held-out accuracy of each task (columns) after forgetting the row's".into(), row_labels: rows, col_labels: names.clone(), values: cells }];
    dir.write_bytes("matrix.png", &heatmaps_png("random-label forgetting", &panels, "task evaluated", "task forgotten (pretrained: none)")?)?;
    let bars: Vec<Bar> = r
        .before
        .iter()
        .zip(&r.after)
        .enumerate()
        .flat_map(|(i, (b, a))| {
            [
                Bar { label: format!("{} model", b.task), value: a.heldout_accuracy[i], target: Some(b.heldout_accuracy) },
                Bar { label: format!("{} probe", b.task), value: best(&a.probe), target: Some(best(&b.probe)) },
            ]
        })
        .collect();
    let paths: Vec<Series> = r
        .after
        .iter()
        .map(|a| Series { label: a.task.clone(), points: a.trajectory.iter().map(|p| (100.0 * p.forget_accuracy, 100.0 * p.heldout_accuracy)).collect() })
        .collect();
    dir.write_bytes(
        "trajectory.png",
        &line_plot_png("while forgetting: held-out vs forgetting-set accuracy (start at top right)", "forgetting-set accuracy, true labels (%)", "held-out accuracy (%)", &paths)?,
    )?;
    dir.write_bytes("shallow.png", &bar_chart_png("after forgetting: the model's answers vs the best linear probe (tick: before)", "held-out accuracy", &bars)?)?;

    let cfg = &r.config;
    let task_rows: Vec<Vec<String>> = r
        .before
        .iter()
        .zip(&r.after)
        .enumerate()
        .map(|(i, (b, a))| {
            vec![
                b.task.clone(),
                b.choices.to_string(),
                format!("{} -> {}", pct(b.heldout_accuracy), pct(a.heldout_accuracy[i])),
                format!("{} -> {}", pct(b.forget_accuracy), pct(a.forget_accuracy)),
                pct(a.fit_random),
                a.training.steps.to_string(),
                a.generalisation.map_or("n/a (not learned)".into(), |g| format!("{g:.2}")),
                format!("{:.3}", b.confidence),
                format!("{:.3}", b.variability),
                format!("{} -> {}", pct(best(&b.probe)), pct(best(&a.probe))),
            ]
        })
        .collect();
    let matrix_rows: Vec<Vec<String>> = r
        .after
        .iter()
        .map(|a| std::iter::once(a.task.clone()).chain(a.heldout_accuracy.iter().zip(&r.before).map(|(v, b)| format!("{} ({:+.1})", pct(*v), 100.0 * (v - b.heldout_accuracy)))).collect())
        .collect();
    let mut headers = vec!["forgotten \\ evaluated"];
    headers.extend(names.iter().map(String::as_str));
    let layer_headers: Vec<String> = (1..=cfg.layers).map(|l| format!("block {l}")).collect();
    let mut probe_headers = vec!["task", "when"];
    probe_headers.extend(layer_headers.iter().map(String::as_str));
    let probe_rows: Vec<Vec<String>> = r
        .before
        .iter()
        .zip(&r.after)
        .flat_map(|(b, a)| [("before", &b.probe), ("after", &a.probe)].map(|(when, p)| [b.task.clone(), when.into()].into_iter().chain(p.iter().map(|v| pct(*v))).collect()))
        .collect();
    let md = format!(
        "# Random-label forgetting (Zhang, Choshen & Andreas 2024)\n\n{}.\n\n\
         **Setup.** {} pretrained for {} steps (batch {}, lr {}, \
         warmup + cosine) on {} synthetic multiple-choice tasks with shared answer tokens, {} examples each (final loss {:.3}, {:.0}s). \
         Then, for each task, a copy of it is fine-tuned (batch {}, constant lr {}) on that task's {} forgetting-set \
         examples with uniformly random labels, until their true-label accuracy is within {} of its floor (read every {} steps) or \
         for {} steps at most; the floor is chance, or the share of items whose random label is the true one when higher. Answers are the argmax over the task's label tokens; chance is 1/k (labels are \
         balanced). Held-out: {} unseen examples per task. Probes: logistic regression (C = {}) on each block's state at the answer \
         position, fitted on {} and scored on {} further examples with true labels. Seed {}.\n\n\
         g = (held-out before - after) / (before - chance): 1 when forgetting reaches held-out examples fully, 0 when it stays on \
         the examples trained on. Confidence: mean probability of the predicted label on the forgetting set; variability: \
         mean |h - mean h|^2 / mean |h|^2 of the last block's states there.\n\n\
         ## Claims\n\n{}\n\n## Per task\n\n{}\n\n![matrix](matrix.png)\n\n\
         Each forgetting run is read out as it goes: a path along the diagonal is forgetting that generalises, a path that moves \
         left and stays up is forgetting confined to the examples trained on.\n\n![trajectory](trajectory.png)\n\n## Held-out accuracy after forgetting\n\n{}\n\n\
         ## Probe accuracy per block\n\n{}\n\n![shallow](shallow.png)\n\n\
         **Scale.** These are {} synthetic tasks in a model of {} parameters, not the paper's benchmarks in 7B-parameter LMs: \
         the correlations rest on {} points, so read them as a sign, not a measurement.\n",
        headline(r),
        match &r.checkpoint {
            Some(cut) => format!("The {} ({} parameters)", cut.describe(), r.total_params),
            None => format!("One GPT-2-style model (width {}, {} blocks, {} heads, {} parameters)", cfg.width, cfg.layers, cfg.heads, r.total_params),
        },
        cfg.pretrain.steps,
        cfg.pretrain.batch_size,
        cfg.pretrain.lr,
        cfg.tasks.len(),
        cfg.sizes.pretrain,
        r.pretraining.final_loss,
        r.pretraining.seconds,
        cfg.forget.batch_size,
        cfg.forget.lr,
        cfg.sizes.forget,
        pct(super::STOP_MARGIN),
        (cfg.forget.steps / super::TRAJECTORY_POINTS).max(1),
        cfg.forget.steps,
        cfg.sizes.heldout,
        cfg.probe_c,
        cfg.sizes.probe_fit,
        cfg.sizes.probe_test,
        cfg.seed,
        claims_table(&r.claims),
        markdown_table(&["task", "k", "held-out", "forgetting set (true labels)", "fit to random labels", "forgetting steps", "g", "confidence", "variability", "best probe"], &task_rows),
        markdown_table(&headers, &matrix_rows),
        markdown_table(&probe_headers, &probe_rows),
        cfg.tasks.len(),
        r.total_params,
        r.correlations.tasks,
    );
    dir.write_text("report.md", &md)?;
    Ok(())
}
