//! algae: layouts and the feature grammar by hand, the MDP's transitions and dynamic programs on
//! small cases, the max-ent objective's gradient against finite differences, the loop adding the
//! predicate a detour reveals, regret, the LM proposer (its tokens by hand, a trained tiny one
//! far above chance on held-out contrasts, its candidates through `Proposer`), the tiny run's
//! report (from scratch and from the HF fixture) and the refused settings.

use kiln::methods::algae::grid::{grammar, Density, Feature, Kind, Layout};
use kiln::methods::algae::irl::{algae, contrasts, differences, maxent, objective, Demo, Enumerative, Proposer};
use kiln::methods::algae::lm::{self, LmProposer};
use kiln::methods::algae::mdp::{path_return, rewards, Mdp, ACTIONS};
use kiln::methods::algae::{self as al, corpus, Config, ProposerKind};

/// A layout from rows of `F L W g s . A` (A: the start, an empty cell).
fn layout(rows: &[&str]) -> Layout {
    let (width, height) = (rows[0].len(), rows.len());
    let mut start = 0;
    let cells = rows
        .iter()
        .flat_map(|r| r.chars())
        .enumerate()
        .map(|(i, ch)| match ch {
            'F' => Some(Kind::Flag),
            'L' => Some(Kind::Lava),
            'W' => Some(Kind::Water),
            'g' => Some(Kind::Grass),
            's' => Some(Kind::Sand),
            'A' => {
                start = i;
                None
            }
            _ => None,
        })
        .collect();
    Layout { width, height, cells, start }
}

#[test]
fn random_layouts_are_deterministic_and_well_formed() {
    let d = Density { lava: 0.2, water: 0.1, grass: 0.1, sand: 0.1 };
    for i in 0..50 {
        let l = Layout::random(7, 6, d, 3, i);
        assert_eq!(l, Layout::random(7, 6, d, 3, i));
        assert_eq!(l.cells.iter().filter(|c| **c == Some(Kind::Flag)).count(), 1, "one flag");
        assert_eq!(l.cells[l.start], None, "the start is empty");
        let flag = l.cells.iter().position(|c| *c == Some(Kind::Flag)).unwrap();
        assert!((l.start % 7).abs_diff(flag % 7) + (l.start / 7).abs_diff(flag / 7) >= 3, "the start is at least width / 2 away");
        assert_eq!(l.render().lines().count(), 6);
    }
    let lava: usize = (0..200).map(|i| Layout::random(7, 6, d, 3, i).cells.iter().filter(|c| **c == Some(Kind::Lava)).count()).sum();
    let share = lava as f64 / (200.0 * 40.0);
    assert!((share - 0.2).abs() < 0.03, "lava fills about 20% of the free cells: {share}");
    assert_ne!(Layout::random(7, 6, d, 4, 0), Layout::random(7, 6, d, 3, 0));
}

#[test]
fn features_read_the_agents_cell_and_its_neighbours() {
    let l = layout(&["AL.", "W.g", "..F"]);
    assert_eq!(grammar().len(), 11);
    assert_eq!(grammar().iter().map(|f| f.name()).collect::<std::collections::HashSet<_>>().len(), 11, "names are distinct");
    assert_eq!(Feature::On(Kind::Lava).eval(&l, 1), 1.0);
    assert_eq!(Feature::On(Kind::Lava).eval(&l, 0), 0.0);
    assert_eq!(Feature::Near(Kind::Lava).eval(&l, 0), 1.0, "lava right of the start");
    assert_eq!(Feature::Near(Kind::Lava).eval(&l, 1), 0.0, "a cell is not its own neighbour");
    assert_eq!(Feature::Near(Kind::Water).eval(&l, 4), 1.0);
    assert_eq!(Feature::Near(Kind::Grass).eval(&l, 8), 1.0, "grass above the flag");
    assert_eq!(Feature::Near(Kind::Grass).eval(&l, 0), 0.0, "no diagonals");
    assert_eq!(Feature::Always.eval(&l, 7), 1.0);
    assert_eq!(l.feature_matrix(&[Feature::Always, Feature::On(Kind::Flag)]), [[1.0, 0.0]; 8].iter().flatten().copied().chain([1.0, 1.0]).collect::<Vec<_>>());
}

#[test]
fn transitions_and_dynamic_programs_by_hand() {
    let l = layout(&["A.", ".F"]);
    let m = Mdp::new(&l);
    assert_eq!(m.next[0], [0, 0, 1, 0, 2], "stay, left (wall), right, up (wall), down");
    assert_eq!(m.next[3], [4; ACTIONS], "from the flag every action ends the episode");
    let r = [-1.0, -1.0, -1.0, 5.0];
    assert_eq!(m.optimal_path(&r, 10), vec![0, 1, 3], "two steps to the flag; right before down on a tie");
    assert_eq!(path_return(&r, &[0, 1, 3]), 3.0);
    assert_eq!(m.optimal_path(&r, 2), vec![0, 0], "the flag is out of reach: every move ties at -2, and stay comes first");
    // Random policy, horizon 2: r(start) + mean over the 5 actions of r(next) = -1 + (3 x -1 + 2 x -1) / 5.
    assert!((m.random_return(&r, 2) - -2.0).abs() < 1e-12);
    let policy = m.soft_policy(&r, 6);
    assert!(policy.iter().flatten().all(|p| (p.iter().sum::<f64>() - 1.0).abs() < 1e-12), "each pi_t(. | s) sums to 1");
    let visits = m.visits(&policy);
    assert!(visits.iter().sum::<f64>() <= 6.0 + 1e-12 && (visits[0] - 1.0) >= -1e-12, "{visits:?}");
    let lp = m.log_likelihood(&policy, &[0, 1, 3]);
    assert!(lp < 0.0 && lp > m.log_likelihood(&policy, &[0, 0, 0]), "the rewarding path is the likelier one");
}

fn demo_in(rows: &[&str], cfg: &Config) -> Demo {
    al::demonstrate(cfg, layout(rows))
}

#[test]
fn the_maxent_gradient_matches_finite_differences() {
    let cfg = Config { horizon: 8, ..Config::small() };
    let demos = vec![demo_in(&["A.L.", "gW..", "...F"], &cfg), demo_in(&["..sF", "L.W.", "A..g"], &cfg)];
    let feats = grammar();
    let theta: Vec<f64> = (0..feats.len()).map(|i| 0.3 * (i as f64 * 1.7).sin()).collect();
    let (_, g) = objective(&demos, &feats, 8, 0.01, &theta);
    for j in 0..feats.len() {
        let h = 1e-5;
        let mut up = theta.clone();
        up[j] += h;
        let mut down = theta.clone();
        down[j] -= h;
        let fd = (objective(&demos, &feats, 8, 0.01, &up).0 - objective(&demos, &feats, 8, 0.01, &down).0) / (2.0 * h);
        assert!((fd - g[j]).abs() < 1e-6 * (1.0 + fd.abs()), "d/d {}: analytic {} vs finite difference {fd}", feats[j].name(), g[j]);
    }
}

#[test]
fn a_detour_around_lava_makes_algae_add_on_lava() {
    // The straight line to the flag crosses lava; the demonstrator goes around it.
    let cfg = Config { horizon: 12, ..Config::small() };
    let d = demo_in(&["A.L.F", ".....", "....."], &cfg);
    assert!(!d.path.contains(&2), "the demonstrator avoids the lava: {:?}", d.path);
    let (theta, _) = maxent(std::slice::from_ref(&d), &[Feature::Always], 12, cfg.l2).unwrap();
    assert!(theta[0] < 0.0, "time costs: {theta:?}");
    let open = contrasts(std::slice::from_ref(&d), &[Feature::Always], &theta, 12);
    assert_eq!(open.len(), 1, "with only `always` the best path goes through the lava");
    let (features, theta, rounds) = algae(std::slice::from_ref(&d), &[Feature::Always], &mut Enumerative, 12, cfg.l2, 11).unwrap();
    assert!(features.contains(&Feature::On(Kind::Lava)), "{features:?} after {rounds:?}");
    let lava = features.iter().position(|f| *f == Feature::On(Kind::Lava)).unwrap();
    assert!(theta[lava] < 0.0, "lava is learned to be bad: {theta:?}");
    assert_eq!(rounds.last().unwrap().added, None, "the loop ends by itself");
}

#[test]
fn regret_is_zero_for_the_true_reward_and_positive_for_a_blind_one() {
    let cfg = Config { horizon: 12, ..Config::small() };
    let l = layout(&["A.L.F", "..L..", "....."]);
    let (feats, w): (Vec<Feature>, Vec<f64>) = cfg.true_reward.iter().copied().unzip();
    assert_eq!(al::regret(&cfg, &l, &feats, &w), 0.0);
    let blind = al::regret(&cfg, &l, &[Feature::Always, Feature::On(Kind::Flag)], &[-0.1, 5.0]);
    assert!(blind > 0.0 && blind <= 1.5, "the shortest path crosses lava: {blind}");
    let r = rewards(&l.feature_matrix(&feats), &w);
    assert_eq!(r.len(), 15);
}

#[test]
fn tiny_run_writes_the_report() {
    let out = std::env::temp_dir().join(format!("kiln-algae-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let rep = al::run(&Config::tiny(), &out).unwrap();
    assert_eq!(rep.method, "algae");
    for f in ["report.md", "report.json", "regret.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["fits"].as_array().unwrap().len(), 2 * 2 * 4, "trials x demo counts x methods (algae, algae-lm and the two baselines)");
    assert_eq!(json["summary"].as_array().unwrap().len(), 2 * 4);
    assert!(json["fits"].as_array().unwrap().iter().all(|f| f["regret"].as_f64().unwrap().is_finite()));
    assert!(json["lm"]["accuracy"]["lm_top1"].as_f64().unwrap().is_finite() && json["lm"]["checkpoint"].is_null());
    assert_eq!(json["claims"].as_array().unwrap().len(), 6, "four ALGAE claims and two on the LM proposer");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## The language-model proposer") && md.contains("algae-lm"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
    // The enumerative proposer alone: the three original methods, no LM.
    let r = al::measure(&Config { proposer: ProposerKind::Enumerative, ..Config::tiny() }).unwrap();
    assert_eq!(r.fits.len(), 2 * 2 * 3);
    assert!(r.lm.is_none() && r.claims.len() == 4);
}

#[test]
fn lm_tokens_by_hand() {
    let words = lm::words();
    assert_eq!(words.len(), lm::VOCAB);
    assert_eq!(words.iter().collect::<std::collections::HashSet<_>>().len(), lm::VOCAB, "one distinct word per token");
    assert_eq!(&words[..9], &["-4", "-3", "-2", "-1", "0", "+1", "+2", "+3", "+4"]);
    assert_eq!(words[lm::USED as usize], "used");
    assert_eq!(words[lm::KIND0 as usize + 1], "lava");
    let name = |ids: &[u32]| ids.iter().map(|&i| words[i as usize].as_str()).collect::<Vec<_>>().join(" ");
    assert_eq!(name(&lm::program(Feature::On(Kind::Lava))), "on lava");
    assert_eq!(name(&lm::program(Feature::Near(Kind::Water))), "near water");
    assert_eq!(name(&lm::program(Feature::Always)), "always end");
    // grammar order: always, on/near flag, lava, water, grass, sand
    let diffs = [0.0, 0.0, 1.0, -2.0, -7.0, 0.0, 3.0, 0.0, 0.0, 5.0, -1.0];
    let ctx = lm::encode(&diffs, &[Feature::Always, Feature::Near(Kind::Water)]);
    assert_eq!(ctx.len(), lm::CONTEXT);
    assert_eq!(name(&ctx), "always used flag 0 +1 lava -2 -4 water 0 used grass 0 0 sand +4 -1 add", "clipped to +-4; features in use are `used`");
}

/// The tiny config's proposer LM with a longer training run (still seconds).
fn tiny_lm() -> Config {
    let mut cfg = Config::tiny();
    (cfg.lm.width, cfg.lm.layers, cfg.lm.heads) = (32, 2, 4);
    (cfg.lm.episodes, cfg.lm.heldout, cfg.lm.train.steps, cfg.lm.train.batch_size) = (800, 300, 400, 32);
    cfg
}

#[test]
fn a_trained_tiny_lm_names_the_missing_predicate_and_proposes_unused_features_best_first() {
    let cfg = tiny_lm();
    let t = lm::train_proposer(&cfg).unwrap();
    let a = &t.report.accuracy;
    assert!(a.problems >= 50, "held-out problems: {a:?}");
    assert!(a.chance > 0.05 && a.chance < 0.35, "{a:?}");
    assert!(a.lm_top1 >= 2.5 * a.chance, "top-1 on held-out contrasts far above chance: {a:?}");
    assert!(t.report.training.final_loss.is_finite() && t.report.examples >= t.report.problems);
    // Through the trait: only unused grammar features, distinct, at most `proposals`, best first.
    let d = al::demonstrate(&cfg, Layout::random(5, 5, Density { lava: 0.3, water: 0.2, grass: 0.1, sand: 0.1 }, 99, 7));
    let demos = std::slice::from_ref(&d);
    let have = [Feature::Always, Feature::On(Kind::Flag)];
    let (theta, _) = maxent(demos, &have, cfg.horizon, cfg.l2).unwrap();
    let open = contrasts(demos, &have, &theta, cfg.horizon);
    let ranked = lm::rank(&t.model, &differences(&open), &have).unwrap();
    assert_eq!(ranked.len(), grammar().len() - have.len());
    assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1), "best first: {ranked:?}");
    assert!(ranked.iter().all(|(f, s)| !have.contains(f) && s.is_finite() && *s <= 0.0));
    let mut p = LmProposer { model: &t.model, proposals: 3 };
    let c = p.candidates(&open, &have).unwrap();
    assert_eq!(c, ranked.iter().take(3).map(|x| x.0).collect::<Vec<_>>());
    let mut all = LmProposer { model: &t.model, proposals: 50 };
    let every = all.candidates(&open, &grammar()[..5]).unwrap();
    assert_eq!(every.len(), 6, "every unused feature once");
    assert!(every.iter().all(|f| !grammar()[..5].contains(f)));
    assert!(all.candidates(&open, &grammar()).unwrap().is_empty(), "nothing left to propose");
    // The problems: answers are missing hidden predicates whose counts differ; never in use.
    let problems = corpus::problems(&cfg, corpus::HELDOUT_KEY, 40).unwrap();
    assert!(!problems.is_empty());
    for p in &problems {
        assert!(p.answers.iter().all(|f| !p.have.contains(f)));
        assert_eq!(p.context, lm::encode(&p.diffs, &p.have));
    }
}

#[test]
fn tiny_run_from_an_hf_checkpoint() {
    // --model DIR: the fixture Llama (random weights) cut to the proposer's words trains and
    // proposes through the same pipeline; the report names the checkpoint and the cut.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_llama");
    let cfg = Config { proposer: ProposerKind::Enumerative, ..Config::tiny() }.from_checkpoint(dir.clone());
    assert_eq!((cfg.proposer, cfg.lm.train.lr), (ProposerKind::Lm, 1e-4), "the LM proposer at the fine-tuning rate");
    let out = std::env::temp_dir().join(format!("kiln-algae-hf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    al::run(&cfg, &out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let words: Vec<&str> = json["lm"]["checkpoint"]["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(words, lm::words());
    assert_eq!(json["config"]["model"].as_str().unwrap(), dir.to_str().unwrap());
    assert_eq!(json["fits"].as_array().unwrap().len(), 2 * 2 * 4);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("HF checkpoint") && md.contains("cut to the method's 20 words"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
    // A directory that is not a checkpoint is refused by name.
    let e = al::measure(&Config::tiny().from_checkpoint(dir.join("missing"))).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn bad_settings_are_refused_by_name() {
    let e = al::measure(&Config { demo_counts: vec![0, 1], ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("demo counts"), "{e}");
    let e = al::measure(&Config { trials: 0, ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("0 trials"), "{e}");
    assert!(maxent(&[], &[Feature::Always], 5, 0.01).is_err());
    let mut cfg = Config::tiny();
    (cfg.lm.width, cfg.lm.heads) = (18, 4);
    let e = al::measure(&cfg).unwrap_err().to_string();
    assert!(e.contains("width 18"), "{e}");
    let e = al::measure(&Config { proposer: ProposerKind::Enumerative, model: Some("m".into()), ..Config::tiny() }).unwrap_err().to_string();
    assert!(e.contains("--proposer lm"), "{e}");
    assert!("gpt".parse::<ProposerKind>().unwrap_err().contains("enumerative or lm"));
}
