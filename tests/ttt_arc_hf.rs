//! ttt-arc with an HF model (tests/fixtures/hf_llama, random weights: plumbing only): grids
//! round-trip through the text codec exactly and malformed text decodes to None, the loss mask
//! covers exactly the answer ids, and `kiln ttt-arc run --model HF_DIR` writes a valid submission
//! (and `--device cuda` without a GPU is one clear error). SentencePiece-style tokenizers
//! (tests/fixtures/sp_llama2, sp_metaspace: scripts/make_sp_tokenizers.py) build prompts with no
//! stray word-boundary "▁" between pieces, and in every fixture a generated answer (from a
//! scripted model) larger than the old fixed budget decodes to its grid.

mod common;

use kiln::methods::ttt_arc::codec::Codec;
use kiln::methods::ttt_arc::data::Pair;
use kiln::methods::ttt_arc::families::{generate, Draws};
use kiln::methods::ttt_arc::grid::Grid;
use kiln::methods::ttt_arc::infer;
use kiln::methods::ttt_arc::text::{grid_text, parse_grid, TextCodec};
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = "tests/fixtures/hf_llama";
/// SentencePiece-style tokenizers: Llama-2's Prepend normalizer, and a Metaspace pre-tokenizer
const SP: [&str; 2] = ["tests/fixtures/sp_llama2", "tests/fixtures/sp_metaspace"];

fn codec() -> TextCodec {
    TextCodec::load(Path::new(FIXTURE)).unwrap()
}

fn random_grid(d: &mut Draws, h: usize, w: usize) -> Grid {
    Grid::new(h, w, (0..h * w).map(|_| d.range(0, 9) as u8).collect()).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("kiln-ttt-arc-hf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn text_codec_round_trips_grids_and_rejects_malformed_text() {
    let c = codec();
    let eos = c.stop_tokens()[0];
    let mut d = Draws::new(7, 0);
    for (h, w) in [(1, 1), (2, 3), (5, 1), (1, 30), (30, 30), (7, 4)] {
        let g = random_grid(&mut d, h, w);
        let text = grid_text(&g);
        assert_eq!(text.lines().count(), h);
        assert_eq!(parse_grid(&text).as_ref(), Some(&g));
        assert_eq!(parse_grid(text.trim_end()).as_ref(), Some(&g), "final newline is optional");
        // through the tokenizer: the answer ids (with and without EOS) decode to the same grid
        let ids = c.tok.encode(&text, false).unwrap();
        assert_eq!(c.decode(&ids).as_ref(), Some(&g));
        let mut ended = ids.clone();
        ended.extend([eos, 5, 6]); // anything after EOS is ignored
        assert_eq!(c.decode(&ended).as_ref(), Some(&g));
    }
    let long_row = "1".repeat(31) + "\n";
    let tall = "1\n".repeat(31);
    for bad in ["", "\n", "12\n3\n", "1a\n", "12\n\n12\n", " 12\n", "12\r\n34\r\n", "input:\n1\n", long_row.as_str(), tall.as_str()] {
        assert_eq!(parse_grid(bad), None, "{bad:?}");
    }
    let bos = c.tok.bos_id.unwrap();
    let mut with_special = c.tok.encode("12\n", false).unwrap();
    with_special.insert(1, bos);
    assert_eq!(c.decode(&with_special), None);
    assert_eq!(c.decode(&[eos]), None, "an empty answer is no grid");
    assert_eq!(c.decode(&[100_000]), None, "an id outside the vocabulary is no grid");
}

#[test]
fn text_codec_loss_mask_covers_exactly_the_answers() {
    let c = codec();
    let eos = c.stop_tokens()[0];
    let t = generate("flip_h", 3, 4, 2, 4).unwrap();
    let (demos, query) = (&t.train[..3], &t.train[3]);
    let prompt = c.prompt(demos, &query.input).unwrap();
    let (ids, scored) = c.sequence(demos, query).unwrap();
    assert_eq!(ids.len(), scored.len());
    assert_eq!(&ids[..prompt.len()], &prompt[..], "the prompt is the sequence's prefix");
    assert_eq!(ids[0], c.tok.bos_id.unwrap());
    // the query's answer: every id after the prompt, scored, ending with EOS
    assert!(scored[prompt.len()..].iter().all(|&s| s));
    assert_eq!(*ids.last().unwrap(), eos);
    assert_eq!(c.tok.decode(&ids[prompt.len()..ids.len() - 1], false).unwrap(), grid_text(&query.output));
    assert_eq!(c.decode(&ids[prompt.len()..]).as_ref(), Some(&query.output));
    // inside the prompt: runs of scored ids are the outputs of demonstrations 2.., each with EOS
    let mut runs: Vec<Vec<u32>> = Vec::new();
    for (i, (&id, &s)) in ids[..prompt.len()].iter().zip(&scored).enumerate() {
        if s {
            if i == 0 || !scored[i - 1] {
                runs.push(Vec::new());
            }
            runs.last_mut().unwrap().push(id);
        }
    }
    let want: Vec<Vec<u32>> = demos[1..].iter().map(|p: &Pair| [c.tok.encode(&grid_text(&p.output), false).unwrap(), vec![eos]].concat()).collect();
    assert_eq!(runs, want);
    assert_eq!(ids.iter().filter(|&&t| t == eos).count(), demos.len() + 1, "EOS ends every output, nothing else");
    // with no demonstrations nothing can be inferred: nothing scored
    let (_, none) = c.sequence(&[], query).unwrap();
    assert!(none.iter().all(|&s| !s));
}

fn kiln(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).output().unwrap()
}

#[test]
fn hf_run_writes_a_valid_submission_and_cuda_without_gpu_is_a_clear_error() {
    let dir = tmp("run");
    let tasks = dir.join("tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    let rows = |g: &Grid| g.cells.chunks(g.w).map(|r| r.to_vec()).collect::<Vec<_>>();
    for (i, fam) in ["flip_h", "recolour_one"].iter().enumerate() {
        let t = generate(fam, 11 + i as u64, 3, 2, 3).unwrap();
        let pair = |p: &Pair| serde_json::json!({"input": rows(&p.input), "output": rows(&p.output)});
        let json = serde_json::json!({
            "train": t.train[..2].iter().map(pair).collect::<Vec<_>>(),
            "test": [pair(&t.train[2])],
        });
        std::fs::write(tasks.join(format!("task{i}.json")), json.to_string()).unwrap();
    }
    let out = dir.join("out");
    let (t, o) = (tasks.to_str().unwrap(), out.to_str().unwrap());
    let r = kiln(&["ttt-arc", "run", "--tasks", t, "--model", FIXTURE, "--scale", "tiny", "--out", o]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let sub: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("submission.json")).unwrap()).unwrap();
    let sub = sub.as_object().unwrap();
    assert_eq!(sub.len(), 2);
    for entries in sub.values() {
        let entries = entries.as_array().unwrap();
        assert_eq!(entries.len(), 1);
        for k in ["attempt_1", "attempt_2"] {
            let g: Vec<Vec<u8>> = serde_json::from_value(entries[0][k].clone()).unwrap();
            assert!(!g.is_empty() && g.iter().all(|r| r.len() == g[0].len() && !r.is_empty()), "{g:?}");
            assert!(g.iter().flatten().all(|&c| c <= 9));
        }
    }
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(rep["extra"]["codec"], "text");
    assert_eq!(rep["tasks"].as_array().unwrap().len(), 2);
    // TTT ran: the stderr log names each task's TTT set and steps
    let log = String::from_utf8_lossy(&r.stderr);
    assert!(log.matches("TTT tasks").count() == 2 && !log.contains(" 0 TTT tasks"), "{log}");

    if kiln::backend::cuda::device_count().unwrap_or(0) == 0 {
        let out2 = dir.join("cuda");
        let r = kiln(&["ttt-arc", "run", "--tasks", t, "--model", FIXTURE, "--scale", "tiny", "--device", "cuda", "--out", out2.to_str().unwrap()]);
        assert!(!r.status.success());
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.to_lowercase().contains("cuda"), "{err}");
        assert!(!out2.join("submission.json").exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hf_adapter_learns_a_constant_answer_and_generated_text_decodes_to_it() {
    use kiln::methods::ttt_arc::{self as arc, ttt};
    let (base, c) = arc::load_any(Path::new(FIXTURE)).unwrap();
    assert_eq!(c.name(), "text");
    // a rule a fresh adapter on random weights can fit in seconds: every answer is one cell of 5
    let mut d = Draws::new(4, 0);
    let demos: Vec<Pair> = (0..3).map(|_| Pair { input: random_grid(&mut d, 2, 2), output: Grid::filled(1, 1, 5).unwrap() }).collect();
    let set = ttt::ttt_set(c.as_ref(), &demos, 0, 12, base.cfg.max_seq_len, 0).unwrap();
    assert!(!set.is_empty());
    let mut tc = arc::Config::tiny().ttt;
    (tc.rank, tc.alpha, tc.epochs, tc.lr, tc.batch_size) = (8, 16.0, 20, 1e-2, 4);
    let (m, stats) = ttt::train_adapter(&base, c.as_ref(), &set, &tc, 0).unwrap();
    assert!(stats.loss_last.is_finite() && stats.loss_last < 0.5 * stats.loss_first, "{stats:?}");
    // greedy answers of the adapted model are text that parses back to the grid it learned
    let query = random_grid(&mut d, 2, 2);
    let views = infer::views(demos.len(), true, 0, 0);
    let (cands, n) = infer::predict(&m, c.as_ref(), &demos, &query, &views).unwrap();
    assert_eq!(cands.len(), 8);
    assert!(n > 0);
    let five = Grid::filled(1, 1, 5).unwrap();
    let hits = cands.iter().filter(|(_, a)| a.as_ref() == Some(&five)).count();
    assert!(hits >= 6, "{hits} of 8: {cands:?} {stats:?}");
}

#[test]
fn sentencepiece_prompts_have_no_stray_prefix_spaces_and_grids_round_trip() {
    for dir in SP {
        let c = TextCodec::load(Path::new(dir)).unwrap();
        let (bos, eos) = (c.tok.bos_id.unwrap(), c.stop_tokens()[0]);
        let id = |t: &str| c.tok.token_to_id(t).unwrap();
        // the leading-space case: encoded alone a text gets a "▁"; after a newline it does not
        let alone = c.tok.encode("12\n", false).unwrap();
        assert_eq!(alone[0], id("▁"), "{dir}: the fixture prefixes every encoded text");
        assert_eq!(c.enc_after_newline("12\n").unwrap(), alone[1..]);
        let t = generate("flip_h", 5, 3, 2, 3).unwrap();
        let (demos, query) = (&t.train[..2], &t.train[2]);
        let prompt = c.prompt(demos, &query.input).unwrap();
        let (ids, _) = c.sequence(demos, query).unwrap();
        assert_eq!(&ids[..prompt.len()], &prompt[..], "{dir}: the prompt is the sequence's prefix");
        assert_eq!(ids[0], bos);
        // the ids read back as exactly the text, with no space anywhere
        let text: String = demos.iter().chain([query]).map(|p| format!("input:\n{}output:\n{}", grid_text(&p.input), grid_text(&p.output))).collect();
        assert_eq!(c.tok.decode(&ids, true).unwrap(), text, "{dir}");
        // the first example up to its EOS is how the tokenizer encodes its whole text at once:
        // the pieces, each encoded on its own, concatenate to the whole text's ids
        let first_eos = ids.iter().position(|&t| t == eos).unwrap();
        let first = format!("input:\n{}output:\n{}", grid_text(&demos[0].input), grid_text(&demos[0].output));
        assert_eq!(&ids[1..first_eos], &c.tok.encode(&first, false).unwrap()[..], "{dir}");
        // one word boundary only, where the text opens
        let count = |t: u32| ids.iter().filter(|&&x| x == t).count();
        assert_eq!((count(id("▁input")), count(id("▁")), count(id("▁output"))), (1, 0, 0), "{dir}: {ids:?}");
        assert_eq!(count(id("input")), demos.len(), "{dir}");
        // grids round-trip: the answer ids (with or without a leading "▁", then EOS and
        // anything after it) decode to the grid, and the budget covers them
        let mut d = Draws::new(3, 0);
        for (h, w) in [(1, 1), (2, 3), (30, 30), (7, 4)] {
            let g = random_grid(&mut d, h, w);
            let mid = c.enc_after_newline(&grid_text(&g)).unwrap();
            assert_eq!(c.decode(&[mid.clone(), vec![eos, 7]].concat()).as_ref(), Some(&g), "{dir} {h}x{w}");
            assert_eq!(c.decode(&c.tok.encode(&grid_text(&g), false).unwrap()).as_ref(), Some(&g), "{dir} {h}x{w} with ▁");
            assert!(c.answer_tokens(h, w) > mid.len(), "{dir} {h}x{w}");
        }
    }
}

/// Scale a grid by 2 (each cell a 2x2 block).
fn up2(g: &Grid) -> Grid {
    Grid::new(2 * g.h, 2 * g.w, (0..4 * g.h * g.w).map(|i| g.cells[(i / (2 * g.w)) / 2 * g.w + (i % (2 * g.w)) / 2]).collect()).unwrap()
}

#[test]
fn generated_text_answers_larger_than_the_old_budget_decode_to_their_grid() {
    // demos scale 2x2 -> 4x4; the 5x5 query's answer is 10x10, 110 characters: more ids than
    // the fixed 64 the small scale used to decode (without digit merges)
    let mut d = Draws::new(8, 0);
    let demos: Vec<Pair> = (0..2).map(|_| random_grid(&mut d, 2, 2)).map(|i| Pair { output: up2(&i), input: i }).collect();
    let query = random_grid(&mut d, 5, 5);
    let answer = up2(&query);
    let plain = infer::views(2, false, 0, 0);
    for dir in [FIXTURE, SP[0], SP[1]] {
        let c = TextCodec::load(Path::new(dir)).unwrap();
        let prompt = c.prompt(&demos, &query).unwrap();
        let (seq, _) = c.sequence(&demos, &Pair { input: query.clone(), output: answer.clone() }).unwrap();
        let script = &seq[prompt.len()..];
        assert!(c.answer_budget(&demos, &query) >= script.len(), "{dir}");
        let m = common::scripted_model(c.vocab(), prompt.len(), script);
        let (cands, n) = infer::predict(&m, &c, &demos, &query, &plain).unwrap();
        assert_eq!((cands, n), (vec![(0, Some(answer.clone()))], script.len()), "{dir}");
        if dir != FIXTURE {
            assert!(script.len() > 64, "{dir}: {}", script.len());
        }
    }
}

#[test]
fn byte_level_pieces_tokenize_as_before() {
    // Llama-3-style byte-level BPE adds no prefix: a piece after a newline has its plain ids
    let c = codec();
    let mut d = Draws::new(5, 0);
    for (h, w) in [(1, 1), (3, 7), (30, 30)] {
        let g = random_grid(&mut d, h, w);
        for s in [grid_text(&g), format!("input:\n{}output:\n", grid_text(&g))] {
            assert_eq!(c.enc_after_newline(&s).unwrap(), c.tok.encode(&s, false).unwrap(), "{s:?}");
        }
    }
}
