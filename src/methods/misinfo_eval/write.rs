//! The claims, judged on the numbers, and the report files: report.json, report.md,
//! accuracy.png (persona x condition, users model and behaviour model) and explainer.png
//! (faithfulness and the users' accuracy along the explainer's training).

use super::world::{CONDITIONS, FRAMES, GROUPS};
use super::{ConditionRow, Results};
use crate::linalg::spearman;
use crate::methods::{claims_table, Claim};
use crate::report::plot::{heatmaps_png, line_plot_png, Heatmap, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// The least gain (points of accuracy) of the best kiln-model intervention over none that counts.
pub const GAIN: f64 = 0.10;
/// The least lead of personalised over generic explanations that counts.
pub const PERSONAL_LEAD: f64 = 0.02;
/// The most mean |users model - behaviour model| over persona x condition cells for fidelity.
pub const FIDELITY: f64 = 0.05;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn row<'a>(r: &'a Results, c: &str) -> Option<&'a ConditionRow> {
    r.rows.iter().find(|x| x.condition == c)
}

/// Every claim this run can speak to.
pub fn claims(r: &Results) -> Vec<Claim> {
    let (Some(none), Some(expl), Some(pers)) = (row(r, "none"), row(r, "explanation"), row(r, "personalised")) else { return vec![] };
    let best = expl.lm.max(pers.lm);
    let gaps: Vec<f64> = r.rows.iter().flat_map(|x| x.lm_by_group.iter().zip(&x.reference_by_group).map(|(a, b)| (a - b).abs())).collect();
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    let max_gap = gaps.iter().copied().fold(0.0, f64::max);
    let by_group = |x: &ConditionRow| GROUPS.iter().zip(&x.lm_by_group).map(|(g, a)| format!("{g} {}", pct(*a))).collect::<Vec<_>>().join(", ");
    let group_gains: Vec<f64> = pers.lm_by_group.iter().zip(&none.lm_by_group).map(|(p, n)| p - n).collect();
    let final_sweep = r.sweep.last();
    let (faith, acc): (Vec<f64>, Vec<f64>) = r.sweep.iter().map(|s| ((s.generic + s.personalised) / 2.0, (s.lm_explanation + s.lm_personalised) / 2.0)).unzip();
    let rho = (r.sweep.len() >= 3).then(|| spearman(&faith, &acc)).filter(|x| x.is_finite());
    vec![
        Claim {
            name: "kiln-model interventions raise labelling accuracy".into(),
            statement: format!("the better explanation condition beats no intervention by >= {} points for the kiln users model (paper: up to +41.72%)", 100.0 * GAIN),
            target: true,
            holds: Some(best - none.lm >= GAIN),
            numbers: format!(
                "none {}, explanation {}, personalised {}: +{:.1} points, {:+.1}% relative",
                pct(none.lm),
                pct(expl.lm),
                pct(pers.lm),
                100.0 * (best - none.lm),
                100.0 * (best - none.lm) / none.lm.max(1e-9)
            ),
        },
        Claim {
            name: "personalised explanations beat generic ones".into(),
            statement: format!("personalised explanations beat generic ones by >= {} points for the kiln users model", 100.0 * PERSONAL_LEAD),
            target: true,
            holds: Some(pers.lm - expl.lm >= PERSONAL_LEAD),
            numbers: format!("personalised {} vs generic {} ({:+.1} points)", pct(pers.lm), pct(expl.lm), 100.0 * (pers.lm - expl.lm)),
        },
        Claim {
            name: "the kiln users reproduce the behaviour model on unseen pairs".into(),
            statement: format!("mean |users model - behaviour model| accuracy over persona x condition cells <= {} points, on pairs whose interventions the users model never saw", 100.0 * FIDELITY),
            target: true,
            holds: Some(mean_gap <= FIDELITY),
            numbers: format!("mean {:.1} points, largest {:.1} ({} cells)", 100.0 * mean_gap, 100.0 * max_gap, gaps.len()),
        },
        Claim {
            name: "every persona gains from personalised explanations".into(),
            statement: "each persona's accuracy is higher with the personalised explanation than with none".into(),
            target: false,
            holds: Some(group_gains.iter().all(|&d| d > 0.0)),
            numbers: format!("none: {}; personalised: {}", by_group(none), by_group(pers)),
        },
        Claim {
            name: "the explainer is faithful".into(),
            statement: "the final explainer states the true value of the headline's pair in >= 90% of its explanations".into(),
            target: false,
            holds: final_sweep.map(|s| s.generic.min(s.personalised) >= 0.9),
            numbers: final_sweep.map_or("-".into(), |s| format!("generic {}, personalised {}, frame as asked {}", pct(s.generic), pct(s.personalised), pct(s.frame_right))),
        },
        Claim {
            name: "explanations help as much as the explainer is right".into(),
            statement: "across explainer checkpoints, the users' accuracy with explanations rises with the explainer's faithfulness (Spearman rho > 0)".into(),
            target: false,
            holds: rho.map(|x| x > 0.0),
            numbers: match rho {
                Some(x) => format!("rho {x:.2} over {} checkpoints", r.sweep.len()),
                None => format!("{} checkpoints, or a constant series: no correlation", r.sweep.len()),
            },
        },
    ]
}

/// One sentence: the target claims' verdicts and the headline accuracies.
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r.claims.iter().filter(|c| c.target).map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" })).collect();
    let accs = match (row(r, "none"), row(r, "personalised")) {
        (Some(n), Some(p)) => format!(" (users model: none {}, personalised {})", pct(n.lm), pct(p.lm)),
        _ => String::new(),
    };
    format!("{}{accs}", verdicts.join("; "))
}

fn heatmap(r: &Results, title: &str, pick: &dyn Fn(&ConditionRow) -> (f64, &Vec<f64>)) -> Heatmap {
    let mut row_labels: Vec<String> = GROUPS.iter().map(|g| g.to_string()).collect();
    row_labels.push("all".into());
    let values = (0..=GROUPS.len()).flat_map(|g| r.rows.iter().map(move |x| Some(100.0 * if g < GROUPS.len() { pick(x).1[g] } else { pick(x).0 }))).collect();
    Heatmap { title: title.into(), row_labels, col_labels: r.rows.iter().map(|x| x.condition.clone()).collect(), values }
}

/// report.json, report.md, accuracy.png and explainer.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let panels = [heatmap(r, "kiln users model", &|x| (x.lm, &x.lm_by_group)), heatmap(r, "behaviour model (reference)", &|x| (x.reference, &x.reference_by_group))];
    dir.write_bytes("accuracy.png", &heatmaps_png("labelling accuracy (%) on the test feed", &panels, "condition", "persona")?)?;
    let line = |f: &dyn Fn(&super::Faithfulness) -> f64| r.sweep.iter().map(|s| (s.explainer_steps as f64, 100.0 * f(s))).collect::<Vec<_>>();
    let series = [
        Series { label: "faithful, generic".into(), points: line(&|s| s.generic) },
        Series { label: "faithful, personalised".into(), points: line(&|s| s.personalised) },
        Series { label: "users' accuracy, explanation".into(), points: line(&|s| s.lm_explanation) },
        Series { label: "users' accuracy, personalised".into(), points: line(&|s| s.lm_personalised) },
    ];
    dir.write_bytes("explainer.png", &line_plot_png("the explainer along its training", "explainer steps", "%", &series)?)?;
    dir.write_text("report.md", &markdown(r))?;
    Ok(())
}

fn markdown(r: &Results) -> String {
    let cfg = &r.config;
    let b = &cfg.behaviour;
    let rows: Vec<Vec<String>> = r.rows.iter().map(|x| vec![x.condition.clone(), pct(x.lm), pct(x.reference), format!("{:+.1}", 100.0 * (x.lm - x.reference)), pct(x.lm_false_shared)]).collect();
    let mut group_head = vec!["persona".to_string()];
    group_head.extend(r.rows.iter().map(|x| x.condition.clone()));
    let group_rows: Vec<Vec<String>> = GROUPS
        .iter()
        .enumerate()
        .map(|(g, name)| std::iter::once(name.to_string()).chain(r.rows.iter().map(|x| format!("{} ({})", pct(x.lm_by_group[g]), pct(x.reference_by_group[g])))).collect())
        .collect();
    let trust_rows: Vec<Vec<String>> = ["label", "label + verified", "explanation", "explanation, own frame"]
        .iter()
        .zip(&b.trust)
        .map(|(k, t)| std::iter::once(k.to_string()).chain(t.iter().map(|x| format!("{x:.2}"))).collect())
        .collect();
    let mut trust_head = vec!["trust in".to_string()];
    trust_head.extend(GROUPS.iter().map(|g| g.to_string()));
    let sweep_rows: Vec<Vec<String>> =
        r.sweep.iter().map(|s| vec![s.explainer_steps.to_string(), pct(s.generic), pct(s.personalised), pct(s.frame_right), pct(s.lm_explanation), pct(s.lm_personalised)]).collect();
    let head: Vec<&str> = group_head.iter().map(|s| s.as_str()).collect();
    let thead: Vec<&str> = trust_head.iter().map(|s| s.as_str()).collect();
    format!(
        "# MisinfoEval (Gabriel et al. 2024)\n\n{}.\n\n\
         **Setup.** A world of {} entities x {} relations, each pair with one true value of {} and one rumour; relations r0 and r1 \
         lean to party A and B. Four personas ({}) believe the truth with probability {:?} ({} less on relations leaning to their \
         party) and the rumour otherwise. The test feed: {} headlines, each held-out pair once true and once false (the rumour or \
         another value), read by every persona in {} conditions: {}. Labels state the headline's true verdict; explanations are \
         written by the **explainer**, {} trained for {} steps on fact-check articles of which {:.0}% repeat the rumour; personalised ones are asked for with the persona as the \
         audience and come in its frame ({}). The **users model** (same size) was trained for {} steps on the behaviour model's \
         draws — beliefs on every pair, interventions only on the pairs not in the feed. It recalls the persona's belief, decides \
         whether to take the intervention's message on (the behaviour model's trust, learned), and states what it believes \
         after reading; the persona labels the headline reliable iff it believes the headline's value. Accuracies are expectations \
         over that distribution. The **behaviour model** (the parametric baseline) gets the same explanations. Seed {}.\n\n\
         **What this run can and cannot show.** How much each persona trusts each intervention is an input (table below), chosen \
         to follow the paper's findings about people; a simulation cannot test them. What it does test: that a kiln model learns a \
         persona's behaviour well enough to apply it to posts it never saw (fidelity), that a tiny kiln explainer writes \
         explanations faithful enough to carry the gain (its errors mislead exactly the users who trust it), and that the \
         evaluation pipeline — feed, conditions, per-group accuracy, sharing — measures what it should. Users' preferences \
         between interventions (the paper's survey) are not simulated.\n\n\
         ## Claims\n\n{}\n\n## Accuracy by condition\n\n{}\n\nFalse posts shared: the expected share of false headlines a \
         persona judges reliable and then shares (P(share) {} congruent, {} not).\n\n![accuracy](accuracy.png)\n\n\
         ## By persona: users model (behaviour model)\n\n{}\n\n## The behaviour model's inputs\n\n{}\n\nBefore any \
         intervention, a persona takes on a congruent headline's claim with probability {}.\n\n## The explainer along its \
         training\n\n{}\n\n![explainer](explainer.png)\n\nExamples (final explainer):\n\n```\n{}\n```\n",
        headline(r),
        cfg.entities,
        cfg.relations,
        cfg.values,
        GROUPS.join(", "),
        b.know,
        b.lean_penalty,
        r.feed,
        CONDITIONS.len(),
        CONDITIONS.join(", "),
        match &r.checkpoint {
            Some(cut) => format!("the {} ({} parameters), fine-tuned", cut.describe(), r.params_per_model),
            None => format!("a kiln GPT-2-style model ({} blocks, width {}, {} parameters) trained from scratch", cfg.layers, cfg.width, r.params_per_model),
        },
        r.explainer_training.steps,
        100.0 * cfg.corpus.article_noise,
        FRAMES[1..].join(", "),
        r.users_training.steps,
        cfg.seed,
        claims_table(&r.claims),
        markdown_table(&["condition", "users model", "behaviour model", "difference", "false posts shared"], &rows),
        b.share[0],
        b.share[1],
        markdown_table(&head, &group_rows),
        markdown_table(&thead, &trust_rows),
        b.congruence,
        markdown_table(&["explainer steps", "faithful, generic", "faithful, personalised", "frame as asked", "users: explanation", "users: personalised"], &sweep_rows),
        r.examples.join("\n"),
    )
}
