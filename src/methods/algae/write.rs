//! The claims, judged on the numbers, and the report files: report.json (every fit), report.md
//! (tables, claims, the LM proposer, an example layout) and regret.png (held-out regret vs
//! demonstrations).

use super::{Results, Summary, ALGAE_LM};
use crate::methods::{claims_table, Claim};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// Held-out normalised regret that counts as "near 0".
pub const NEAR_ZERO: f64 = 0.10;

/// The LM proposer's held-out top-1 must reach this multiple of chance.
pub const LM_OVER_CHANCE: f64 = 2.0;

/// ALGAE with the LM proposer may trail the enumerative one by this much held-out regret.
pub const LM_MARGIN: f64 = 0.03;

/// One ALGAE variant's proposals over all its fits: (additions whose feature was the proposer's
/// first candidate, additions, mean candidates tried per round that asked the proposer).
pub fn proposals(r: &Results, method: &str) -> (usize, usize, f64) {
    let rounds: Vec<&super::Round> = r.fits.iter().filter(|f| f.method == method).flat_map(|f| &f.rounds).collect();
    let added: Vec<&&super::Round> = rounds.iter().filter(|x| x.added.is_some()).collect();
    let first = added.iter().filter(|x| x.added == x.first).count();
    let asked: Vec<usize> = rounds.iter().filter(|x| x.candidates > 0).map(|x| x.candidates).collect();
    (first, added.len(), asked.iter().sum::<usize>() as f64 / asked.len().max(1) as f64)
}

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
    let mut claims = vec![
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
    ];
    if let Some(lm) = &r.lm {
        let a = &lm.accuracy;
        let ((first, added, tried), (_, _, tried_enum)) = (proposals(r, ALGAE_LM), proposals(r, "algae"));
        claims.push(Claim {
            name: "the LM proposer names a missing predicate".into(),
            statement: format!("on {} held-out synthetic contrasts (hidden rewards and layouts drawn under a key disjoint from training and evaluation), the proposer LM's first-ranked unused feature is a predicate the reward lacks at least {LM_OVER_CHANCE}x as often as a uniformly random unused feature", a.problems),
            target: true,
            holds: Some(a.lm_top1 >= LM_OVER_CHANCE * a.chance),
            numbers: format!("LM top-1 {:.2}, enumerative (largest count difference first) {:.2}, chance {:.2}", a.lm_top1, a.enumerative_top1, a.chance),
        });
        claims.push(Claim {
            name: "ALGAE with the LM proposer transfers like the enumerative one".into(),
            statement: format!("with {most} demonstration(s), ALGAE proposing the LM's {} best features per round has mean held-out regret within {LM_MARGIN} of ALGAE proposing every feature whose count differs", r.config.lm.proposals),
            target: true,
            holds: Some(regret(ALGAE_LM, most) <= regret("algae", most) + LM_MARGIN),
            numbers: format!("algae-lm by demos {}; the LM's first candidate was the one added {first} of {added} times; candidates fitted per round {tried:.1} (enumerative {tried_enum:.1})", line(ALGAE_LM)),
        });
    }
    claims
}

/// One sentence: the target claims' verdicts and ALGAE's regret.
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r.claims.iter().filter(|c| c.target).map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" })).collect();
    let most = r.config.demo_counts.iter().copied().max().unwrap_or(1);
    let regret = |m: &str| find(r, m, most).map_or(f64::NAN, |s| s.mean_regret);
    let lm = if r.lm.is_some() { format!(", algae-lm {:.3}", regret(ALGAE_LM)) } else { String::new() };
    format!("{} (held-out regret with {most} demos: algae {:.3}{lm}, all-features {:.3}, fixed-features {:.3})", verdicts.join("; "), regret("algae"), regret("all-features"), regret("fixed-features"))
}

/// report.json, report.md and regret.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let cfg = &r.config;
    let series: Vec<Series> = cfg
        .methods()
        .into_iter()
        .map(|m| Series { label: m.into(), points: cfg.demo_counts.iter().filter_map(|&n| find(r, m, n).map(|s| (n as f64, s.mean_regret))).collect() })
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
         ## Claims\n\n{}\n\n## Held-out regret\n\n{}\n\n![regret](regret.png)\n\n{}## ALGAE with {most} demonstration(s), per trial\n\n{}\n\n\
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
        lm_section(r),
        markdown_table(&["trial", "rounds", "features and weights", "regret"], &trial_rows),
        r.example_layout,
    );
    dir.write_text("report.md", &md)?;
    Ok(())
}

/// The LM proposer's section of report.md (empty without one).
fn lm_section(r: &Results) -> String {
    let Some(lm) = &r.lm else { return String::new() };
    let (c, a) = (&r.config.lm, &lm.accuracy);
    let start = match &lm.checkpoint {
        Some(cut) => format!("fine-tuned from the {} at learning rate {}", cut.describe(), c.train.lr),
        None => format!("a GPT-2-style kiln LM trained from scratch (width {}, {} blocks, {} heads)", c.width, c.layers, c.heads),
    };
    let t = &lm.training;
    let rows: Vec<Vec<String>> = ["algae", ALGAE_LM]
        .iter()
        .map(|&m| {
            let (first, added, tried) = proposals(r, m);
            vec![m.into(), format!("{tried:.1}"), format!("{first} of {added}")]
        })
        .collect();
    format!(
        "## The language-model proposer\n\n\
         The proposer LM ({} parameters) is {start}. It reads the contrasts as 18 tokens: per grammar feature its count \
         along the demos' paths minus along the model's, summed over the contrasts and clipped to +-4, or `used`; and \
         writes a feature program (`on lava`, `near water`, `always end`). It was trained for {} steps ({:.0} s, final loss \
         {:.3}) on {} examples from {} problems made by {} synthetic episodes: random hidden rewards (a step cost, the flag, \
         one or two more on/near predicates of lava, water, grass or sand, each a penalty with probability 3/4, else an \
         attraction), 1-{} demos in layouts from the method's generator under a Philox key disjoint from the evaluation's, a random loop state and its max-ent fit; the \
         answers are the hidden predicates the state lacks whose counts differ. In the loop it scores every unused \
         feature by log p(program | contrasts) and proposes its {} best.\n\n\
         Held-out problems ({} from {} more episodes under another key): the first candidate is a missing predicate for \
         the LM {:.2}, the enumerative order {:.2}, a random unused feature {:.2}.\n\n{}\n",
        lm.params,
        t.steps,
        t.seconds,
        t.final_loss,
        lm.examples,
        lm.problems,
        c.episodes,
        r.config.demo_counts.iter().copied().max().unwrap_or(1),
        c.proposals,
        a.problems,
        c.heldout,
        a.lm_top1,
        a.enumerative_top1,
        a.chance,
        markdown_table(&["ALGAE proposer", "candidates fitted per round", "additions that were its first candidate"], &rows),
    )
}
