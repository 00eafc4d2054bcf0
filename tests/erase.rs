//! erase: the templates and the reader, the stream's bookkeeping, embeddings and cosine top-k
//! against brute force, the knowledge base's edits by hand, the tiny run's report and the
//! refused settings.

use kiln::methods::erase::store::{cosine_topk, embed, Kb};
use kiln::methods::erase::world::{question, read, stream, Fact, RELATIONS};
use kiln::methods::erase::{self as er, Config};
use kiln::tensor::Device;

#[test]
fn the_reader_parses_both_templates_and_nothing_else() {
    for relation in 0..3 {
        for value in 0..RELATIONS[relation].2 {
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
    let (d, dev) = (256, Device::Cpu);
    let mut kb = Kb::default();
    kb.ingest(0, "e1 works_at c2", d, 0.25, 8, dev).unwrap();
    kb.ingest(0, "e1 lives_in t4", d, 0.25, 8, dev).unwrap();
    assert_eq!(kb.entries.len(), 2);
    kb.ingest(1, "e1 works_at c2", d, 0.25, 8, dev).unwrap();
    assert_eq!((kb.entries.len(), kb.reinforced), (2, 1), "a restatement reinforces, adds nothing");
    assert_eq!(kb.entries[0].history, vec![(0, "added"), (1, "reinforced")]);
    kb.ingest(2, "e1 joined c3", d, 0.25, 8, dev).unwrap();
    assert!(!kb.entries[0].true_now, "the old employer is made false by the other template");
    assert_eq!(kb.entries[0].history.last(), Some(&(2, "made false")));
    assert!(kb.entries[1].true_now, "another relation of the same entity is unchanged");
    let last = kb.entries.last().unwrap();
    assert_eq!((last.fact, last.text.as_str(), last.true_now), (Fact { entity: 1, relation: 0, value: 3 }, "e1 works_at c3", true), "stored in the canonical template");
    kb.ingest(3, "not a fact", d, 0.25, 8, dev).unwrap();
    assert_eq!(kb.entries.len(), 3, "an unreadable document changes nothing");
    // With a threshold no cosine reaches, nothing is edited: both employers stay true.
    let mut blind = Kb::default();
    for doc in ["e1 works_at c2", "e1 joined c3"] {
        blind.ingest(0, doc, d, f32::INFINITY, 8, dev).unwrap();
    }
    assert!(blind.entries.iter().all(|e| e.true_now) && blind.entries.len() == 2);
}

#[test]
fn tiny_run_writes_the_report() {
    let out = std::env::temp_dir().join(format!("kiln-erase-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let rep = er::run(&Config::tiny(), &out).unwrap();
    assert_eq!(rep.method, "erase");
    for f in ["report.md", "report.json", "accuracy.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["changed_pairs"].as_f64(), Some(0.0));
    assert!(rows.iter().all(|r| ["rag", "facts", "erase"].iter().all(|k| (0.0..=1.0).contains(&r[*k].as_f64().unwrap()))));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_settings_are_refused_by_name() {
    assert!(er::measure(&Config { streams: 0, ..Config::tiny() }).unwrap_err().to_string().contains("streams"));
    assert!(er::measure(&Config { threshold: 2.0, ..Config::tiny() }).unwrap_err().to_string().contains("threshold 2"));
}
