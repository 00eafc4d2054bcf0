//! The claims, judged on the numbers, and the report files: report.json (every fit), report.md
//! (tables, claims, an example layout) and regret.png (held-out regret vs demonstrations).

use super::{Results, Summary, METHODS};
use crate::methods::{claims_table, Claim};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// Held-out normalised regret that counts as "near 0".
pub const NEAR_ZERO: f64 = 0.10;

fn find<'a>(r: &'a Results, method: &str, demos: usize) -> Option<&'a Summary> {
    r.summary.iter().find(|s| s.method == method && s.demos == demos)
}

/// Every claim this run can speak to.
pub fn claims(r: &Results) -> Vec<Claim> {
    let counts = &r.config.demo_counts;
    let most = counts.iter().copied().max().unwrap_or(1);
    let regret = |m: &str, n: usize| find(r, m, n).map_or(f64::NAN, |s| s.mean_regret);
    let line = |m: &str| counts.iter().map(|&n| format!("{n}: {:.3}", regret(m, n))).collect::<Vec<_>>().join(", ");
    let below = |other: &str, strict: bool| counts.iter().all(|&n| if strict { regret("algae", n) < regret(other, n) } else { regret("algae", n) <= regret(other, n) + 1e-12 });
    let truth: Vec<String> = r.config.true_reward.iter().map(|(f, _)| f.name()).filter(|n| !r.config.start.iter().any(|s| s.name() == *n)).collect();
    let finals: Vec<&super::Fit> = r.fits.iter().filter(|f| f.method == "algae" && f.demos == most).collect();
    let recovered = finals.iter().filter(|f| truth.iter().all(|t| f.features.contains(t))).count();
    vec![
        Claim {
            name: "ALGAE's reward transfers to new layouts".into(),
            statement: format!("with {most} demonstration(s), the reward ALGAE learns has mean normalised regret <= {NEAR_ZERO} on held-out layouts"),
            target: true,
            holds: Some(regret("algae", most) <= NEAR_ZERO),
            numbers: format!("algae by demos {}", line("algae")),
        },
        Claim {
            name: "a fixed small feature set underfits".into(),
            statement: format!("at every demo count ALGAE's held-out regret is below that of fitting only {}", r.config.fixed.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")),
            target: true,
            holds: Some(below("fixed-features", true)),
            numbers: format!("fixed-features {}", line("fixed-features")),
        },
        Claim {
            name: "fitting every feature overfits".into(),
            statement: "at every demo count ALGAE's held-out regret is at most that of maximum-entropy IRL on all 11 grammar features".into(),
            target: true,
            holds: Some(below("all-features", false)),
            numbers: format!("all-features {}", line("all-features")),
        },
        Claim {
            name: "ALGAE names the hidden reward's predicates".into(),
            statement: format!("with {most} demonstration(s), ALGAE's final feature set contains every predicate of the hidden reward ({})", truth.join(", ")),
            target: false,
            holds: (!finals.is_empty()).then_some(recovered == finals.len()),
            numbers: format!("{recovered} of {} trials; mean features used {:.1}", finals.len(), find(r, "algae", most).map_or(f64::NAN, |s| s.mean_features)),
        },
    ]
}

/// One sentence: the target claims' verdicts and ALGAE's regret.
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r.claims.iter().filter(|c| c.target).map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" })).collect();
    let most = r.config.demo_counts.iter().copied().max().unwrap_or(1);
    let regret = |m: &str| find(r, m, most).map_or(f64::NAN, |s| s.mean_regret);
    format!("{} (held-out regret with {most} demos: algae {:.3}, all-features {:.3}, fixed-features {:.3})", verdicts.join("; "), regret("algae"), regret("all-features"), regret("fixed-features"))
}

/// report.json, report.md and regret.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let cfg = &r.config;
    let series: Vec<Series> = METHODS
        .iter()
        .map(|&m| Series { label: m.into(), points: cfg.demo_counts.iter().filter_map(|&n| find(r, m, n).map(|s| (n as f64, s.mean_regret))).collect() })
        .collect();
    dir.write_bytes("regret.png", &line_plot_png("held-out regret vs demonstrations", "demonstrations", "mean normalised regret", &series)?)?;
    let rows: Vec<Vec<String>> = r.summary.iter().map(|s| vec![s.method.clone(), s.demos.to_string(), format!("{:.3}", s.mean_regret), format!("{:.3}", s.sd_regret), format!("{:.1}", s.mean_features)]).collect();
    let most = cfg.demo_counts.iter().copied().max().unwrap_or(1);
    let trial_rows: Vec<Vec<String>> = r
        .fits
        .iter()
        .filter(|f| f.method == "algae" && f.demos == most)
        .map(|f| {
            let weights: Vec<String> = f.features.iter().zip(&f.theta).map(|(n, t)| format!("{n} {t:+.2}")).collect();
            vec![f.trial.to_string(), f.rounds.len().to_string(), weights.join(", "), format!("{:.3}", f.regret)]
        })
        .collect();
    let truth: Vec<String> = cfg.true_reward.iter().map(|(f, w)| format!("{w:+} {}", f.name())).collect();
    let md = format!(
        "# ALGAE (Peng et al. 2024)\n\n{}.\n\n\
         **Setup.** {}x{} gridworlds, horizon {}, cells lava / water / grass / sand with densities {:.2} / {:.2} / {:.2} / {:.2} and \
         one flag (reaching it ends the episode). Hidden reward: {}. Demonstrations: the optimal path under it in random layouts; \
         {} trials per demo count (the first n demos of a trial form its n-demo set). Every learned reward is scored on the same {} \
         held-out layouts by the true return of its own optimal path: regret = (V* - V) / (V* - V_random). Weights by maximum-entropy \
         IRL (soft value iteration, L2 {}). ALGAE starts from {} and, while some demo's grammar counts differ from its reward's optimal \
         path, asks the proposer for the unused features whose counts differ and keeps the one that raises the demos' total \
         log-likelihood most, if that gain beats BIC's (1/2) ln(transitions). \
         Baselines: all 11 grammar features at once; the fixed set {}. Seed {}.\n\n\
         ## Claims\n\n{}\n\n## Held-out regret\n\n{}\n\n![regret](regret.png)\n\n## ALGAE with {most} demonstration(s), per trial\n\n{}\n\n\
         An example demo layout (A start, F flag, L lava, W water, g grass, s sand):\n\n```\n{}```\n",
        headline(r),
        cfg.width,
        cfg.height,
        cfg.horizon,
        cfg.density.lava,
        cfg.density.water,
        cfg.density.grass,
        cfg.density.sand,
        truth.join(" "),
        cfg.trials,
        cfg.heldout,
        cfg.l2,
        cfg.start.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
        cfg.fixed.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "),
        cfg.seed,
        claims_table(&r.claims),
        markdown_table(&["method", "demos", "mean regret", "sd over trials", "features"], &rows),
        markdown_table(&["trial", "rounds", "features and weights", "regret"], &trial_rows),
        r.example_layout,
    );
    dir.write_text("report.md", &md)?;
    Ok(())
}
