//! The claims, checked against the numbers, and the report files: report.json (every run),
//! report.md (a table per task, each claim with its numbers and whether this run shows it) and
//! one PNG per task (accuracy vs width, embedding-only and full).

use super::train::{embedding_param_count, Mode};
use super::tasks::{lm_bigram_bits, lm_entropy_bits, TaskSpec, LM_PROBS, MOD_ADD_LEN};
use super::{Config, Results, RunResult};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

pub use crate::methods::Claim;

fn acc<'a>(results: &'a [RunResult], task: &str, width: usize, mode: Mode) -> Option<&'a RunResult> {
    results.iter().find(|r| r.task == task && r.width == width && r.mode == mode)
}

fn series<'a>(results: &'a [RunResult], task: &str, mode: Mode) -> Vec<&'a RunResult> {
    let mut v: Vec<&RunResult> = results.iter().filter(|r| r.task == task && r.mode == mode).collect();
    v.sort_by_key(|r| r.width);
    v
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Every claim this run can speak to.
pub fn claims(cfg: &Config, results: &[RunResult], lm_floors: Option<(f64, f64)>) -> Vec<Claim> {
    let mut out = Vec::new();
    for task in ["mod_add", "needle", "decimal_add", "parens"] {
        let emb = series(results, task, Mode::EmbeddingOnly);
        let (Some(lo), Some(hi)) = (emb.first().map(|r| r.width), emb.last().map(|r| r.width)) else { continue };
        let line = |s: &[&RunResult]| s.iter().map(|r| format!("w{} {}", r.width, pct(r.accuracy))).collect::<Vec<_>>().join(", ");
        let full = series(results, task, Mode::Full);
        let top = emb.last().map(|r| r.accuracy).unwrap_or(0.0);
        let decisive = task == "mod_add";
        out.push(Claim {
            name: format!("{task}: embedding-only reaches >= 90% at the largest width"),
            statement: format!("training only the embeddings and head of a random {task} model of width {hi} gives >= 90% exact match on held-out examples (paper: ~100% at width 1024)"),
            target: decisive,
            holds: Some(top >= 0.9),
            numbers: format!("embedding-only {}; full {}", line(&emb), line(&full)),
        });
        if emb.len() >= 2 {
            let first = emb[0].accuracy;
            out.push(Claim {
                name: format!("{task}: embedding-only accuracy rises with width"),
                statement: format!("the embedding-only {task} accuracy at width {hi} is above the one at width {lo} (paper: far less at width 16 than at 1024)"),
                target: decisive,
                holds: Some(top > first),
                numbers: format!("w{lo} {} -> w{hi} {}", pct(first), pct(top)),
            });
        }
    }
    let emb = series(results, "memorise", Mode::EmbeddingOnly);
    let full = series(results, "memorise", Mode::Full);
    if !emb.is_empty() && emb.len() == full.len() {
        let bpp = |r: &RunResult| r.bits_per_param.unwrap_or(0.0);
        let holds = emb.iter().zip(&full).all(|(e, f)| bpp(f) > bpp(e));
        let numbers = emb
            .iter()
            .zip(&full)
            .map(|(e, f)| format!("w{}: full {:.3} ({:.0} bits / {} params), embedding-only {:.3} ({:.0} bits / {} params)", e.width, bpp(f), f.bits.unwrap_or(0.0), f.trainable_params, bpp(e), e.bits.unwrap_or(0.0), e.trainable_params))
            .collect::<Vec<_>>()
            .join("; ");
        let data_bits = match cfg.tasks.iter().map(|t| &t.spec).find(|s| s.name() == "memorise") {
            Some(&TaskSpec::Memorise { n_labels, n_examples, .. }) => n_examples as f64 * (n_labels as f64).log2(),
            _ => 0.0,
        };
        let saturated: Vec<String> = emb.iter().chain(&full).filter(|r| r.accuracy >= 0.95).map(|r| format!("{} w{}", r.mode.name(), r.width)).collect();
        let numbers = format!(
            "{numbers}. The labels hold {data_bits:.0} bits in all; {}",
            if saturated.is_empty() {
                "no run memorised >= 95% of them, so each figure is set by the model and budget, not by the data".to_string()
            } else {
                format!("{} memorised >= 95% of them, so their bits per parameter are lower bounds set by the data size, not capacities", saturated.join(", "))
            }
        );
        out.push(Claim {
            name: "memorise: full training stores more bits per trainable parameter".into(),
            statement: "at every width, full training memorises more bits of random labels per trainable parameter than embedding-only training (paper: ~2.9 vs ~0.4)".into(),
            target: false,
            holds: Some(holds),
            numbers,
        });
    }
    out.extend(lm_claims(results, lm_floors));
    out
}

/// (source entropy, previous-token baseline) in bits per token for the config's `lm` task, if any.
pub fn lm_floors(cfg: &Config) -> Result<Option<(f64, f64)>> {
    let Some(spec) = cfg.tasks.iter().map(|t| &t.spec).find(|s| s.name() == "lm") else { return Ok(None) };
    let TaskSpec::Lm { symbols, .. } = *spec else { return Ok(None) };
    let data = spec.generate(cfg.seed)?;
    Ok(Some((lm_entropy_bits(), lm_bigram_bits(&data.train, &data.test, symbols as usize))))
}

/// Language modelling (report-only): embedding-only models use more than the previous token, and
/// full training does better still (paper: random transformers model language, less well).
fn lm_claims(results: &[RunResult], lm_floors: Option<(f64, f64)>) -> Vec<Claim> {
    let (emb, full) = (series(results, "lm", Mode::EmbeddingOnly), series(results, "lm", Mode::Full));
    let (Some(e), Some(f), Some((floor, bigram))) = (emb.last(), full.last(), lm_floors) else { return vec![] };
    let bits = |r: &RunResult| r.test_bits.unwrap_or(f64::NAN);
    let line = |s: &[&RunResult]| s.iter().map(|r| format!("w{} {:.3}", r.width, bits(r))).collect::<Vec<_>>().join(", ");
    let numbers = format!("held-out bits/token: embedding-only {}; full {}; source entropy {floor:.3}, best previous-token model {bigram:.3}", line(&emb), line(&full));
    let first = emb.first().map_or(f64::NAN, |r| bits(r));
    vec![
        Claim {
            name: "lm: embedding-only language modelling improves with width".into(),
            statement: format!("embedding-only held-out bits per token fall from width {} to width {} (paper: random transformers model language better as they widen)", emb[0].width, e.width),
            target: false,
            holds: Some(emb.len() >= 2 && bits(e) < first),
            numbers: numbers.clone(),
        },
        Claim {
            name: "lm: embedding-only models language beyond the previous token".into(),
            statement: format!("at width {}, embedding-only training scores fewer held-out bits per token than the best model of the previous token alone (the source is order 2)", e.width),
            target: false,
            holds: Some(bits(e) < bigram),
            numbers: numbers.clone(),
        },
        Claim {
            name: "lm: full training models language better than embedding-only".into(),
            statement: format!("at width {}, full training scores fewer held-out bits per token than embedding-only (paper: random transformers model language, less well)", f.width),
            target: false,
            holds: Some(bits(f) < bits(e)),
            numbers,
        },
    ]
}

/// One sentence: the decisive claims and their numbers.
pub fn headline(r: &Results) -> String {
    crate::methods::claims_headline(&r.claims).unwrap_or_else(|| "random transformers: no pass/fail claim in this selection (see report.md)".into())
}

fn task_md(cfg: &Config, r: &Results, task: &str) -> String {
    let Some(plan) = cfg.tasks.iter().find(|t| t.spec.name() == task) else { return String::new() };
    let rows: Vec<Vec<String>> = cfg
        .widths_of(plan)
        .iter()
        .flat_map(|&w| [Mode::EmbeddingOnly, Mode::Full].map(|m| acc(&r.results, task, w, m)))
        .flatten()
        .map(|x| {
            let mut row = vec![x.width.to_string(), x.mode.name().into(), pct(x.accuracy), pct(x.train_accuracy), format!("{:.4}", x.final_loss), x.trainable_params.to_string(), x.total_params.to_string(), format!("{:.0}", x.seconds)];
            if task == "memorise" {
                row.push(format!("{:.0}", x.bits.unwrap_or(0.0)));
                row.push(format!("{:.3}", x.bits_per_param.unwrap_or(0.0)));
            }
            if task == "lm" {
                row.insert(4, format!("{:.3}", x.test_bits.unwrap_or(f64::NAN)));
            }
            row
        })
        .collect();
    let mut headers = vec!["width", "mode", "test exact match", "train exact match", "final train loss", "trainable params", "all params", "seconds"];
    if task == "memorise" {
        headers.extend(["bits memorised", "bits / trainable param"]);
    }
    if task == "lm" {
        headers[2..4].copy_from_slice(&["test token accuracy", "train token accuracy"]);
        headers.insert(4, "held-out bits/token");
    }
    let b = &plan.budget;
    let note = match plan.spec {
        TaskSpec::ModAdd { p, test_fraction } => {
            let n_train = (p as usize).pow(2) - (test_fraction * (p * p) as f64).round() as usize;
            let bits = n_train as f64 * (p as f64).log2();
            let per: Vec<String> = cfg.widths_of(plan).iter().map(|&w| format!("{:.2} at width {w}", bits / embedding_param_count(p as usize, MOD_ADD_LEN, w) as f64)).collect();
            format!(
                "Input [a, b], answer read at b's position (the paper's format). Memorising the {n_train} training answers takes {bits:.0} bits, \
                 i.e. {} bits per embedding-only trainable parameter. A run can fit the training split by rote instead of by the algorithm, \
                 so only the held-out column speaks to the claim (a high train and near-0 test exact match is memorisation).\n\n",
                per.join(", ")
            )
        }
        TaskSpec::Lm { symbols, .. } => {
            let (floor, bigram) = r.lm_floors.unwrap_or((f64::NAN, f64::NAN));
            format!(
                "Each context of two tokens continues with one of three tokens (probabilities {:?}), so no model goes below the \
                 source's entropy of {floor:.3} bits per token, nor above {:.0}% token accuracy; the best model of the previous token \
                 alone scores {bigram:.3} bits (fitted on the training split), a uniform guess {:.3}.\n\n",
                LM_PROBS,
                100.0 * LM_PROBS[0],
                (symbols as f64).log2()
            )
        }
        _ => String::new(),
    };
    format!(
        "## {task}\n\nTask: `{}`. Budget per run: {} steps of batch {}, lr {} (embedding-only) / {} (full), warmup + cosine.\n\n{note}{}\n![{task}]({task}.png)\n\n",
        serde_json::to_string(&plan.spec).unwrap_or_default(),
        b.steps,
        b.batch_size,
        b.lr_embedding,
        b.lr_full,
        markdown_table(&headers, &rows)
    )
}

/// report.json, report.md and <task>.png for every task run.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    let cfg = &r.config;
    dir.write_json("report.json", r)?;
    let mut tasks: Vec<&str> = Vec::new();
    for x in &r.results {
        if !tasks.contains(&x.task.as_str()) {
            tasks.push(&x.task);
        }
    }
    for task in &tasks {
        let lm = *task == "lm";
        let s = [Mode::EmbeddingOnly, Mode::Full].map(|m| Series {
            label: m.name().replace('_', "-"),
            points: series(&r.results, task, m).iter().map(|x| ((x.width as f64).log2(), if lm { x.test_bits.unwrap_or(f64::NAN) } else { 100.0 * x.accuracy })).collect(),
        });
        let (title, y) = match *task {
            "memorise" => ("accuracy", "train exact match (%)"),
            "lm" => ("held-out bits per token", "bits per token (lower is better)"),
            _ => ("accuracy", "held-out exact match (%)"),
        };
        dir.write_bytes(&format!("{task}.png"), &line_plot_png(&format!("{task}: {title} vs width"), "log2 width (d_model)", y, &s)?)?;
    }
    let mod_add = cfg.tasks.iter().find(|t| t.spec.name() == "mod_add");
    let example_w = mod_add.and_then(|t| cfg.widths_of(t).last().copied()).unwrap_or(0);
    let own: Vec<String> = cfg.tasks.iter().filter_map(|t| t.widths.as_ref().map(|w| format!("{} {w:?}", t.spec.name()))).collect();
    let widths = if own.is_empty() { format!("{:?}", cfg.widths) } else { format!("{:?} ({})", cfg.widths, own.join(", ")) };
    let mut md = format!(
        "# Random transformers (Zhong & Andreas 2024)\n\n{}.\n\n\
         Model: GPT-2 style, 2 layers, 4 heads, untied embeddings, N(0, 0.02) init (residual projections 0.02/sqrt(4), \
         position embeddings N(0, 0.01), LayerNorms at identity, biases 0), widths {}, seed {}.\n\n\
         **What trains.** Embedding-only: `transformer.wte.weight` (V x C), `transformer.wpe.weight` (T x C) and `lm_head.weight` (C x V), \
         counted exactly (e.g. modular addition at width {example_w}: V C + T C + C V = {} parameters); every attention, MLP and \
         LayerNorm weight and bias (including the final LayerNorm) stays bit for bit at its initial value. Full: every parameter. \
         Both modes get the same steps, batch, schedule and data order; the peak learning rate is set per mode. Accuracy is exact \
         match over the answer tokens (teacher-forced argmax, which equals greedy decoding's exact match); memorisation is scored \
         on its own training set, and its bits are n [log2 L - H(acc) - (1 - acc) log2(L - 1)] (0 at chance, n log2 L when perfect).\n\n\
         ## Claims\n\n{}\n",
        headline(r),
        widths,
        cfg.seed,
        match mod_add.map(|t| &t.spec) {
            Some(TaskSpec::ModAdd { p, .. }) => embedding_param_count(*p as usize, MOD_ADD_LEN, example_w).to_string(),
            _ => "-".into(),
        },
        crate::methods::claims_table(&r.claims)
    );
    for task in &tasks {
        md += &task_md(cfg, r, task);
    }
    dir.write_text("report.md", &md)?;
    Ok(())
}
