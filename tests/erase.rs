//! erase: the templates and the template reader, the stream's bookkeeping, embeddings and cosine
//! top-k against brute force, the knowledge base's edits by hand, the LM reader's words, the
//! trained tiny LM reader against the parser on held-out streams, the tiny run's report (from
//! scratch and from the HF fixture with --model) and the refused settings.

use kiln::methods::erase::lm::{self, Vocab};
use kiln::methods::erase::reader::{Ask, Judgment, Reader, Template};
use kiln::methods::erase::store::{cosine_topk, embed, Kb};
use kiln::methods::erase::world::{question, read, stream, Fact, RELATIONS};
use kiln::methods::erase::{self as er, Config};
use kiln::tensor::Device;
use std::path::Path;

#[test]
fn the_reader_parses_both_templates_and_nothing_else() {
    for (relation, &(_, _, n, _)) in RELATIONS.iter().enumerate() {
        for value in 0..n {
            let f = Fact { entity: 17, relation, value };
            assert_eq!(read(&f.text(0)), Some(f));
            assert_eq!(read(&f.text(1)), Some(f));
            assert_ne!(f.text(0), f.text(1), "two surface forms");
        }
    }
    assert_eq!(read("e3 joined c5"), Some(Fact { entity: 3, relation: 0, value: 5 }));
    for bad in ["e3 joined", "e3 joined c99", "e3 joined t2", "x3 joined c2", "e3 likes c2", "e3 joined c2 today", ""] {
        assert_eq!(read(bad), None, "{bad:?}");
    }
    assert_eq!(question(4, 1), "e4 lives_in");
}

#[test]
fn the_stream_states_every_pair_then_reports_changes() {
    let s = stream(10, 6, 3, 4, 5, 1);
    assert_eq!(s.docs.iter().filter(|d| d.step == 0).count(), 30, "step 0 states every pair once");
    assert_eq!(s.docs.len(), 30 + 6 * (3 + 4));
    // Replaying the documents in order reproduces the final state; every change is to a new value.
    let mut state = vec![[usize::MAX; 3]; 10];
    for d in &s.docs {
        let f = read(&d.text).expect("every document parses");
        state[f.entity][f.relation] = f.value;
    }
    assert_eq!(state, s.state);
    assert!(!s.changed.is_empty() && s.changed.len() <= 18);
    let again = stream(10, 6, 3, 4, 5, 1);
    assert_eq!(again.docs.iter().map(|d| &d.text).collect::<Vec<_>>(), s.docs.iter().map(|d| &d.text).collect::<Vec<_>>());
    assert!(stream(10, 6, 0, 4, 5, 1).changed.is_empty());
}

#[test]
fn embeddings_and_top_k_retrieval() {
    let d = 512;
    let a = embed("e3 works_at c5", d);
    assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    let cos = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    assert!((cos(&a, &embed("e3 works_at c5", d)) - 1.0).abs() < 1e-5, "deterministic");
    let two = cos(&a, &embed("e3 works_at c2", d));
    let one = cos(&a, &embed("e3 lives_in t2", d));
    assert!((two - 2.0 / 3.0).abs() < 0.15 && (one - 1.0 / 3.0).abs() < 0.15, "shared words set the cosine: {two} {one}");
    // Top-k against brute force, with a filter.
    let keys: Vec<f32> = (0..40).flat_map(|i| embed(&format!("e{i} role r{}", i % 6), 64)).collect();
    let queries: Vec<f32> = (0..5).flat_map(|i| embed(&format!("e{} role", i * 7), 64)).collect();
    let keep = |i: usize| i % 3 != 0;
    let got = cosine_topk(&queries, &keys, 64, 4, &keep, Device::Cpu).unwrap();
    for (qi, hits) in got.iter().enumerate() {
        let q = &queries[qi * 64..(qi + 1) * 64];
        let mut all: Vec<(usize, f32)> = (0..40).filter(|&i| keep(i)).map(|i| (i, cos(q, &keys[i * 64..(i + 1) * 64]))).collect();
        all.sort_by(|x, y| y.1.total_cmp(&x.1));
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), all[..4].iter().map(|h| h.0).collect::<Vec<_>>());
        assert!(hits.iter().all(|h| (h.1 - all.iter().find(|a| a.0 == h.0).unwrap().1).abs() < 1e-5));
    }
    assert!(cosine_topk(&queries, &[], 64, 4, &keep, Device::Cpu).unwrap().iter().all(|h| h.is_empty()));
}

#[test]
fn the_knowledge_base_reinforces_replaces_and_adds() {
    let kb_at = |threshold: f32| Kb::new(256, threshold, 8, Device::Cpu);
    let ingest = |kb: &mut Kb, step: usize, doc: &str| kb.ingest(step, doc, read(doc), &Template).unwrap();
    let mut kb = kb_at(0.25);
    ingest(&mut kb, 0, "e1 works_at c2");
    ingest(&mut kb, 0, "e1 lives_in t4");
    assert_eq!(kb.entries.len(), 2);
    let judged = ingest(&mut kb, 1, "e1 works_at c2");
    assert!(judged.contains(&(0, Judgment::Reinforced)) && judged.contains(&(1, Judgment::Unchanged)), "{judged:?}");
    assert_eq!((kb.entries.len(), kb.reinforced), (2, 1), "a restatement reinforces, adds nothing");
    assert_eq!(kb.entries[0].history, vec![(0, "added"), (1, "reinforced")]);
    ingest(&mut kb, 2, "e1 joined c3");
    assert!(!kb.entries[0].true_now, "the old employer is made false by the other template");
    assert_eq!(kb.entries[0].history.last(), Some(&(2, "made false")));
    assert!(kb.entries[1].true_now, "another relation of the same entity is unchanged");
    let last = kb.entries.last().unwrap();
    assert_eq!((last.fact, last.text.as_str(), last.true_now), (Fact { entity: 1, relation: 0, value: 3 }, "e1 works_at c3", true), "stored in the canonical template");
    assert!(ingest(&mut kb, 3, "not a fact").is_empty());
    assert_eq!(kb.entries.len(), 3, "an unreadable document changes nothing");
    // With a threshold no cosine reaches, nothing is edited: both employers stay true.
    let mut blind = kb_at(f32::INFINITY);
    for doc in ["e1 works_at c2", "e1 joined c3"] {
        ingest(&mut blind, 0, doc);
    }
    assert!(blind.entries.iter().all(|e| e.true_now) && blind.entries.len() == 2);
}

/// A reader that judges every fact made false: the knowledge base follows the reader, not the parser.
struct Contrarian;
impl Reader for Contrarian {
    fn extract(&self, docs: &[&str]) -> kiln::Result<Vec<Option<Fact>>> {
        Template.extract(docs)
    }
    fn judge(&self, pairs: &[(Fact, &str)]) -> kiln::Result<Vec<Judgment>> {
        Ok(vec![Judgment::MadeFalse; pairs.len()])
    }
    fn answer(&self, asks: &[Ask]) -> kiln::Result<Vec<Option<usize>>> {
        Template.answer(asks)
    }
}

#[test]
fn the_template_reader_judges_and_answers_and_the_kb_obeys_any_reader() {
    let f = Fact { entity: 2, relation: 1, value: 4 };
    assert_eq!(Template.judge(&[(f, "e2 moved_to t4"), (f, "e2 lives_in t5"), (f, "e2 role r4"), (f, "e3 lives_in t4"), (f, "junk")]).unwrap(), vec![Judgment::Reinforced, Judgment::MadeFalse, Judgment::Unchanged, Judgment::Unchanged, Judgment::Unchanged]);
    let ask = |texts: &[&str]| Ask { texts: texts.iter().map(|t| t.to_string()).collect(), entity: 2, relation: 1 };
    let got = Template.answer(&[ask(&["e2 role r1", "e2 moved_to t6", "e2 lives_in t3"]), ask(&["e5 lives_in t1"]), ask(&[])]).unwrap();
    assert_eq!(got, vec![Some(6), None, None], "the best-ranked text about the pair answers");
    let mut kb = Kb::new(256, 0.25, 8, Device::Cpu);
    for doc in ["e1 works_at c2", "e1 lives_in t4", "e1 role r0"] {
        kb.ingest(0, doc, read(doc), &Contrarian).unwrap();
    }
    assert_eq!(kb.entries.iter().filter(|e| e.true_now).count(), 1, "each new fact made every related older one false");
}

#[test]
fn the_lm_vocabulary_names_every_token_once() {
    let v = Vocab::new(30);
    let words = v.words();
    assert_eq!(words.len(), v.size());
    assert_eq!(words.len(), 30 + 6 + 22 + 3 + 5);
    let distinct: std::collections::HashSet<&String> = words.iter().collect();
    assert_eq!(distinct.len(), words.len(), "words are distinct (one per token, for --model)");
    for w in ["e0", "e29", "works_at", "promoted_to", "c7", "t0", "r5", "reinforced", "false", "unchanged", "judge"] {
        assert!(words.iter().any(|x| x == w), "{w} missing");
    }
    let f = Fact { entity: 17, relation: 2, value: 5 };
    assert_eq!(v.decode(v.fact(f)), Some(f));
    assert_eq!(v.encode(&f.text(1)).map(|t| v.decode(t)), Some(Some(f)), "the other template reads back too");
    assert_eq!(v.encode("e30 role r1"), None, "an entity outside the world is not a word");
    assert_eq!(v.encode("e3 role"), None);
    assert_eq!(v.decode(v.encode("e3 role c1").unwrap()), None, "a value of another relation is no fact");
}

/// The reader's corpus holds every job the parser did, each edit label repeated until it is
/// about half as frequent as `unchanged`, every answer repeated, and each `unknown` answer until
/// it is about a quarter as frequent as the answers that name a value.
#[test]
fn the_reader_corpus_rebalances_rare_labels_and_unknown_answers() {
    let cfg = Config::small();
    let traces: Vec<_> = (0..3u32).map(|i| er::replay(&cfg, stream(cfg.entities, cfg.steps, 8, cfg.restated, 0, (1 << 31) + i), &Template).unwrap()).collect();
    let v = Vocab::new(cfg.entities);
    let (data, n) = lm::corpus(&v, &traces, cfg.k);
    let unknown = traces.iter().flat_map(|t| t.answers.iter().flatten()).filter(|a| a.is_none()).count();
    assert!(unknown > 0 && n.unknown == unknown, "unknown answers {} of {unknown}", n.unknown);
    let named = n.answer - n.unknown;
    assert!(n.answer_repeats > 1, "{n:?}");
    let (named_in, unknown_in) = (named * n.answer_repeats, n.unknown * n.unknown_repeats);
    assert!(n.unknown_repeats > 1 && unknown_in as f64 / named_in as f64 > 0.15, "{n:?}");
    assert!(unknown_in as f64 / named_in as f64 <= 0.25 + 1e-9, "{n:?}");
    for c in 0..2 {
        let share = (n.judge[c] * n.repeats[c]) as f64 / n.judge[2] as f64;
        assert!(n.judge[c] > 0 && (0.3..=0.5 + 1e-9).contains(&share), "label {c}: {share:.2} of unchanged ({n:?})");
    }
    assert_eq!(n.repeats[2], 1);
    let total = n.extract + named_in + unknown_in + (0..3).map(|c| n.judge[c] * n.repeats[c]).sum::<usize>();
    assert_eq!(data.0.len(), total, "every example counted, with its repeats");
    // the unknown answers are in the data, at the answer position
    let unknown_id = v.words().iter().position(|w| w == "unknown").unwrap() as u32;
    let at = 3 * cfg.k + 2;
    let in_data = data.0.iter().filter(|e| e.targets.get(at) == Some(&unknown_id)).count();
    assert_eq!(in_data, unknown_in);
}

fn fixture() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_llama"))
}

fn out_dir(tag: &str) -> std::path::PathBuf {
    let out = std::env::temp_dir().join(format!("kiln-erase-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    out
}

#[test]
fn the_trained_tiny_lm_reader_reads_held_out_streams_like_the_parser() {
    let r = er::measure(&Config::tiny()).unwrap();
    let a = &r.agreement;
    let total: usize = a.confusion.iter().flatten().sum();
    assert!(total > 50 && a.docs > 50, "enough held-out judgments ({total}) and documents ({})", a.docs);
    // Chance over the labels is 1/3; a reader that always says `unchanged` scores 1/3 too.
    assert!(a.balanced() > 0.6, "judgment mean recall {:.3}: {:?}", a.balanced(), a.confusion);
    let extraction = a.extracted_right as f64 / a.docs as f64;
    assert!(extraction > 0.8, "extraction matches the parser on {extraction:.3} of the documents");
    assert!(r.reader.stats.final_loss.is_finite() && r.reader.stats.final_loss < 0.5, "loss {}", r.reader.stats.final_loss);
    assert_eq!(r.reader.checkpoint, None);
    // The template rows are the oracle's: every stream's ERASE answers everything with no changes.
    assert_eq!(r.rows[0].template.erase, 1.0);
}

/// The small reproduction's LM-reader claims (about 50 s in the dev profile, so not in the suite):
/// `cargo test --test erase -- --ignored`.
#[test]
#[ignore]
fn small_lm_reader_erase_beats_rag() {
    let r = er::measure(&Config::small()).unwrap();
    let last = r.rows.last().unwrap();
    assert!(last.lm.erase - last.lm.rag >= 0.05, "ERASE {} vs RAG {} (LM reader)", last.lm.erase, last.lm.rag);
    assert!(r.agreement.balanced() >= 0.9, "{:?}", r.agreement.confusion);
}

#[test]
fn tiny_run_writes_the_report() {
    let out = out_dir("tiny");
    let rep = er::run(&Config::tiny(), &out).unwrap();
    assert_eq!(rep.method, "erase");
    for f in ["report.md", "report.json", "accuracy.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["changed_pairs"].as_f64(), Some(0.0));
    assert!(rows.iter().all(|r| ["lm", "template"].iter().all(|m| ["rag", "facts", "erase"].iter().all(|k| (0.0..=1.0).contains(&r[*m][*k].as_f64().unwrap())))));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("erase (lm reader)") && md.contains("erase (template reader)") && md.contains("How the LM reads"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_reader_starts_from_an_hf_checkpoint_with_model() {
    let out = out_dir("hf");
    let cfg = Config { model: Some(fixture().to_path_buf()), reader: kiln::methods::training::Phase { steps: 20, ..Config::tiny().reader }, ..Config::tiny() };
    er::run(&cfg, &out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let line = json["reader"]["checkpoint"].as_str().expect("the cut is recorded");
    assert!(line.contains("HF checkpoint") && line.contains("hf_llama"), "{line}");
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains(line));
    std::fs::remove_dir_all(&out).unwrap();
    let bad = Config { model: Some(fixture().join("no-such-dir")), ..Config::tiny() };
    let err = er::measure(&bad).unwrap_err().to_string();
    assert!(err.contains("--model") && err.contains("no-such-dir") && err.contains("not a directory"), "{err}");
}

#[test]
fn bad_settings_are_refused_by_name() {
    assert!(er::measure(&Config { streams: 0, ..Config::tiny() }).unwrap_err().to_string().contains("streams"));
    assert!(er::measure(&Config { threshold: 2.0, ..Config::tiny() }).unwrap_err().to_string().contains("threshold 2"));
    assert!(er::measure(&Config { train_streams: 0, ..Config::tiny() }).unwrap_err().to_string().contains("train_streams"));
}
