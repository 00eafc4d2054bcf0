//! misinfo-eval: the behaviour model by hand, the world's draws and the test feed, the sequence
//! layouts and corpora, the readouts against kiln's own generation and scoring, a short
//! training run whose users model must reproduce its behaviour model, the tiny run's report and
//! the refused settings.

use kiln::methods::misinfo_eval::models::{beliefs, explain, explainer_corpus, user_corpus, CorpusSizes, Reading, BELIEF_AT, DECISION_AT, EXPLAINER_PROMPT, USER_PROMPT};
use kiln::methods::misinfo_eval::world::{tok, Behaviour, Headline, Intervention, Vocab, World, GROUPS};
use kiln::methods::misinfo_eval::{self as mi, Config};
use kiln::methods::training::gpt2_config;
use kiln::model::{GenerateOptions, Transformer};
use kiln::train::IGNORE;

const VOCAB: Vocab = Vocab { entities: 3, relations: 3, values: 4 };

fn small_world() -> World {
    let mut w = World::new(VOCAB, &Behaviour::default(), 0.5, 7);
    // Pin the facts the hand checks use: pair 0 (e0, r0: leans to party A), pair 2 (e0, r2: no lean).
    (w.truth[0], w.rumour[0], w.truth[2], w.rumour[2]) = (1, 3, 2, 0);
    w.belief[0][0] = 3; // A-young believes the rumour on pair 0
    w.belief[0][2] = 2; // and the truth on pair 2
    w.belief[2][0] = 3; // B-young (not congruent on r0) believes the rumour on pair 0
    w
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn the_behaviour_model_by_hand() {
    let (w, beh) = (small_world(), Behaviour::default());
    let v = |k: usize| w.vocab.value(k);
    let (e0, r0) = w.pair_tokens(0);
    let (_, r2) = w.pair_tokens(2);
    // No intervention, congruent headline (r0 leans to A): the rumour headline is taken on with
    // probability `congruence`; a non-congruent one changes nothing.
    let h_rumour = Headline { pair: 0, value: 3 };
    assert!(close(&w.believe(&beh, 0, h_rumour, &Intervention::None), &[0.0, 0.0, 0.0, 1.0]));
    let h_other = Headline { pair: 0, value: 0 };
    assert!(close(&w.believe(&beh, 0, h_other, &Intervention::None), &[0.3, 0.0, 0.0, 0.7]));
    assert!(close(&w.believe(&beh, 0, Headline { pair: 2, value: 1 }, &Intervention::None), &[0.0, 0.0, 1.0, 0.0]));
    // Label "false" on the headline the persona believes: trust spreads it over the other values.
    let t = beh.trust[0][0];
    let got = w.believe(&beh, 0, h_rumour, &Intervention::Label { says_true: false, verified: false });
    assert!(close(&got, &[t / 3.0, t / 3.0, t / 3.0, 1.0 - t]), "{got:?}");
    // Label "true" (verified) on the true headline moves trust onto it (B-young: not congruent).
    let h_true = Headline { pair: 0, value: 1 };
    let tv = beh.trust[1][2];
    assert!(close(&w.believe(&beh, 2, h_true, &Intervention::Label { says_true: true, verified: true }), &[0.0, tv, 0.0, 1.0 - tv]));
    // For A-young the congruent headline's pull stays in the part it keeps.
    let ta = beh.trust[1][0];
    let want = [0.0, ta + (1.0 - ta) * beh.congruence, 0.0, (1.0 - ta) * (1.0 - beh.congruence)];
    assert!(close(&w.believe(&beh, 0, h_true, &Intervention::Label { says_true: true, verified: true }), &want));
    // Explanations: own frame (A-young's is frame 1) gets the higher trust; neutral the generic.
    let own = Intervention::Explanation([tok::FRAME0 + 1, e0, r0, v(1)]);
    let neutral = Intervention::Explanation([tok::FRAME0, e0, r0, v(1)]);
    let (to, tg) = (beh.trust[3][0], beh.trust[2][0]);
    assert!(close(&w.believe(&beh, 0, h_rumour, &own), &[0.0, to, 0.0, 1.0 - to]));
    assert!(close(&w.believe(&beh, 0, h_rumour, &neutral), &[0.0, tg, 0.0, 1.0 - tg]));
    // An explanation about another pair, or with no value in it, changes nothing.
    let none = w.believe(&beh, 0, h_rumour, &Intervention::None);
    assert!(close(&w.believe(&beh, 0, h_rumour, &Intervention::Explanation([tok::FRAME0, e0, r2, v(1)])), &none));
    assert!(close(&w.believe(&beh, 0, h_rumour, &Intervention::Explanation([tok::FRAME0, e0, r0, tok::PAD])), &none));
    // react's two stages mix back into believe, for every persona, belief and intervention.
    for g in 0..GROUPS.len() {
        for b in 0..4 {
            for iv in [Intervention::None, Intervention::Label { says_true: false, verified: true }, own, neutral] {
                let r = w.react(&beh, g, b, h_other, &iv);
                let mixed: Vec<f64> = r.base.iter().zip(&r.message).map(|(a, m)| (1.0 - r.trust) * a + r.trust * m).collect();
                let direct = w.believe_from(&beh, g, b, h_other, &iv);
                assert!(close(&mixed, &direct) && (direct.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn the_world_draws_beliefs_at_the_set_rates_and_a_balanced_feed() {
    let beh = Behaviour::default();
    let vocab = Vocab { entities: 2000, relations: 4, values: 5 };
    let w = World::new(vocab, &beh, 0.3, 11);
    assert!(w.truth.iter().zip(&w.rumour).all(|(t, r)| t != r && *t < 5 && *r < 5));
    for g in 0..GROUPS.len() {
        let rate = |own_lean: bool| {
            let ps: Vec<usize> = (0..w.pairs()).filter(|&p| w.congruent(g, p) == own_lean).collect();
            assert!(ps.iter().all(|&p| w.belief[g][p] == w.truth[p] || w.belief[g][p] == w.rumour[p]));
            ps.iter().filter(|&&p| w.belief[g][p] == w.truth[p]).count() as f64 / ps.len() as f64
        };
        assert!((rate(false) - beh.know[g]).abs() < 0.03, "persona {g}: {}", rate(false));
        assert!((rate(true) - (beh.know[g] - beh.lean_penalty)).abs() < 0.04, "persona {g} on its party's relation: {}", rate(true));
    }
    let held = w.held_out.iter().filter(|&&h| h).count() as f64 / w.pairs() as f64;
    assert!((held - 0.3).abs() < 0.03, "{held}");
    let feed = w.test_feed(11);
    assert_eq!(feed.len(), 2 * w.held_out.iter().filter(|&&h| h).count());
    for pair in feed.chunks(2) {
        assert!(w.held_out[pair[0].pair] && pair[0].pair == pair[1].pair);
        assert_eq!(pair[0].value, w.truth[pair[0].pair]);
        assert_ne!(pair[1].value, w.truth[pair[1].pair]);
    }
    let rumours = feed.chunks(2).filter(|p| p[1].value == w.rumour[p[1].pair]).count() as f64 / (feed.len() / 2) as f64;
    assert!((rumours - 0.5).abs() < 0.06, "half the false headlines carry the rumour: {rumours}");
    assert_eq!(World::new(vocab, &beh, 0.3, 11).belief, w.belief, "deterministic in the seed");
}

#[test]
fn sequence_layouts_and_token_ids() {
    let w = small_world();
    let v = VOCAB;
    let ids: Vec<u32> = (0..3).map(|e| v.entity(e)).chain((0..3).map(|r| v.relation(r))).chain((0..4).map(|x| v.value(x))).collect();
    assert!(ids.iter().all(|&t| t >= tok::ENTITY0 && (t as usize) < v.size()));
    assert_eq!(ids.len(), std::collections::HashSet::<u32>::from_iter(ids.iter().copied()).len());
    assert_eq!((v.value_of(v.value(3)), v.value_of(v.relation(2)), v.frame_of(tok::FRAME0 + 4), v.frame_of(tok::ENTITY0)), (Some(3), None, Some(4), None));
    let h = Headline { pair: 4, value: 2 }; // e1, r1
    let iv = Intervention::Label { says_true: false, verified: true };
    let p = w.user_prompt(2, h, &iv, 1, true);
    assert_eq!(p.len(), USER_PROMPT);
    assert_eq!(p[..BELIEF_AT + 1], [tok::GROUP0 + 2, v.entity(1), v.relation(1), v.value(1)]);
    assert_eq!(p[BELIEF_AT + 1..DECISION_AT], [tok::POST, v.entity(1), v.relation(1), v.value(2), tok::LABEL, tok::FALSE, tok::VERIFIED, tok::PAD, tok::PAD]);
    assert_eq!(p[DECISION_AT..], [tok::ADOPT, tok::SAYS, v.entity(1), v.relation(1)]);
    assert_eq!(w.user_prompt(2, h, &iv, 1, false)[DECISION_AT], tok::KEEP);
    let e = w.explainer_prompt(Some(3), h);
    assert_eq!(e, [tok::CHECK, tok::GROUP0 + 3, v.entity(1), v.relation(1), v.value(2)]);
    assert_eq!(e.len(), EXPLAINER_PROMPT);
    assert_eq!(w.gold_explanation(None, 4)[0], tok::FRAME0);
    assert_eq!(w.gold_explanation(Some(3), 4), [tok::FRAME0 + 4, v.entity(1), v.relation(1), v.value(w.truth[4])]);
}

#[test]
fn the_corpora_hold_what_they_say() {
    let w = small_world();
    let beh = Behaviour::default();
    let sizes = CorpusSizes { articles: 2, article_noise: 0.0, beliefs: 3, labels: 2, explanations: 5, explanation_truth: 0.6 };
    let clean = explainer_corpus(&w, &sizes, 1);
    assert_eq!(clean.0.len(), w.pairs() * 4 * 5 * 2);
    for ex in &clean.0 {
        let pair = (0..w.pairs()).find(|&p| w.pair_tokens(p) == (ex.ids[2], ex.ids[3])).unwrap();
        assert_eq!(ex.targets[EXPLAINER_PROMPT..], [ex.ids[6], ex.ids[7], w.vocab.value(w.truth[pair])], "noise 0: the truth");
        assert!(ex.targets[..EXPLAINER_PROMPT - 1].iter().all(|&t| t == IGNORE));
    }
    let noisy = explainer_corpus(&w, &CorpusSizes { article_noise: 1.0, ..sizes.clone() }, 1);
    assert!(noisy.0.iter().all(|ex| w.vocab.value_of(*ex.targets.last().unwrap()).is_some_and(|x| w.rumour.contains(&x))));
    let users = user_corpus(&w, &beh, &sizes, 2);
    let held = w.held_out.iter().filter(|&&h| h).count();
    let per_pair = |n: usize| GROUPS.len() * 4 * n;
    assert_eq!(users.0.len(), per_pair(3) * w.pairs() + per_pair(2 * 2 + 5) * (w.pairs() - held));
    for ex in &users.0 {
        assert_eq!(ex.ids.len(), USER_PROMPT);
        let pair = (0..w.pairs()).find(|&p| w.pair_tokens(p) == (ex.ids[1], ex.ids[2])).unwrap();
        let slot = ex.ids[BELIEF_AT + 5];
        assert!(!w.held_out[pair] || slot == tok::NONE, "no intervention is trained on a held-out pair");
        let g = (ex.ids[0] - tok::GROUP0) as usize;
        if slot == tok::NONE {
            assert_eq!(ex.targets[BELIEF_AT - 1], w.vocab.value(w.belief[g][pair]), "a no-intervention example recalls the persona's own belief");
            assert_eq!(ex.ids[DECISION_AT], tok::KEEP);
        }
        let scored: Vec<usize> = (0..USER_PROMPT).filter(|&i| ex.targets[i] != IGNORE).collect();
        assert!(scored == [BELIEF_AT - 1, DECISION_AT - 1, USER_PROMPT - 1] || scored == [DECISION_AT - 1, USER_PROMPT - 1], "{scored:?}");
    }
}

fn untrained(seq: usize, seed: u64) -> Transformer {
    Transformer::new(gpt2_config(VOCAB.size(), 32, 2, 2, seq, seed)).unwrap()
}

#[test]
fn batched_explanations_match_kiln_generate() {
    let w = small_world();
    let m = untrained(8, 3);
    let prompts: Vec<Vec<u32>> = (0..w.pairs()).flat_map(|p| [None, Some(1)].map(|a| w.explainer_prompt(a, Headline { pair: p, value: p % 4 }))).collect();
    let got = explain(&m, &prompts).unwrap();
    let opts = GenerateOptions { max_new_tokens: 4, ..GenerateOptions::default() };
    let want = m.generate(&prompts, &opts).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.to_vec(), w.new_ids);
    }
}

#[test]
fn the_users_readout_marginalises_recall_and_decision() {
    let w = small_world();
    let m = untrained(USER_PROMPT, 5);
    let n = VOCAB.values;
    let readings: Vec<Reading> = vec![(0, Headline { pair: 0, value: 3 }, Intervention::None), (3, Headline { pair: 5, value: 1 }, Intervention::Explanation(w.gold_explanation(Some(3), 5)))];
    let got = beliefs(&m, &w, &readings).unwrap();
    // Independently, by kiln's scoring: P(b), P(d | b), P(x | b, d) from token log-probabilities.
    for ((g, h, iv), p) in readings.iter().zip(&got) {
        let lp = |b: usize, adopt: bool, x: usize, at: usize| {
            let mut ids = w.user_prompt(*g, *h, iv, b, adopt);
            ids.push(VOCAB.value(x));
            m.token_logprobs(&ids, 1).unwrap()[at - 1].exp()
        };
        let norm = |f: &dyn Fn(usize) -> f64, k: usize| (0..k).map(f).sum::<f64>();
        let pb = |b: usize| lp(b, false, 0, BELIEF_AT) / norm(&|c| lp(c, false, 0, BELIEF_AT), n);
        let pd = |b: usize, a: bool| lp(b, a, 0, DECISION_AT) / (lp(b, true, 0, DECISION_AT) + lp(b, false, 0, DECISION_AT));
        let px = |b: usize, a: bool, x: usize| lp(b, a, x, USER_PROMPT) / norm(&|y| lp(b, a, y, USER_PROMPT), n);
        for (x, &got) in p.iter().enumerate().take(n) {
            let want: f64 = (0..n).map(|b| pb(b) * [false, true].iter().map(|&a| pd(b, a) * px(b, a, x)).sum::<f64>()).sum();
            assert!((got - want).abs() < 1e-4, "x {x}: {got} vs {want}");
        }
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn a_trained_users_model_follows_its_behaviour_model() {
    // A smaller world trained briefly: on pairs it never saw interventions on, the users model
    // must read the posts close to the behaviour model and carry the explanations' gains, the own
    // frame's included. (The full check is the small reproduction, docs/results/misinfo-eval.)
    let phase = |steps| kiln::methods::training::Phase { steps, batch_size: 128, lr: 3e-3 };
    let cfg = Config { entities: 12, values: 4, width: 64, users: phase(1500), explainer: phase(300), checkpoints: vec![], ..Config::small() };
    let r = mi::measure(&cfg).unwrap();
    let table: Vec<(String, f64, f64)> = r.rows.iter().map(|c| (c.condition.clone(), c.lm, c.reference)).collect();
    for c in r.rows.iter().filter(|c| ["none", "explanation", "personalised"].contains(&c.condition.as_str())) {
        assert!((c.lm - c.reference).abs() < 0.08, "{}: {table:?}", c.condition);
    }
    let acc = |name: &str| r.rows.iter().find(|c| c.condition == name).unwrap().lm;
    // (Labels need the full budget: with 1500 steps the model has not learned them yet.)
    assert!(acc("personalised") > acc("none") + 0.05 && acc("personalised") > acc("explanation") + 0.01, "{table:?}");
}

#[test]
fn tiny_run_writes_the_report() {
    let out = std::env::temp_dir().join(format!("kiln-misinfo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let rep = mi::run(&Config::tiny(), &out).unwrap();
    assert_eq!(rep.method, "misinfo-eval");
    for f in ["report.md", "report.json", "accuracy.png", "explainer.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["condition"].as_str().unwrap()).collect::<Vec<_>>(), ["none", "label", "label+verified", "explanation", "personalised"]);
    assert!(rows.iter().all(|r| ["lm", "reference", "lm_false_shared"].iter().all(|k| (0.0..=1.0).contains(&r[*k].as_f64().unwrap()))));
    let sweep: Vec<u64> = json["sweep"].as_array().unwrap().iter().map(|s| s["explainer_steps"].as_u64().unwrap()).collect();
    assert_eq!(sweep, [3, 6], "the checkpoint and the last step");
    assert_eq!(json["claims"].as_array().unwrap().len(), 6);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn tiny_run_from_an_hf_checkpoint() {
    // --model DIR: users model and explainer both start from the fixture Llama (random weights)
    // cut to the world's words; the explainer's batched greedy decoding, the users' readout and
    // the report run unchanged on it.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_llama");
    let cfg = Config::tiny().from_checkpoint(dir.clone());
    assert_eq!((cfg.users.lr, cfg.explainer.lr), (1e-4, 1e-4));
    let vocab = Vocab { entities: cfg.entities, relations: cfg.relations, values: cfg.values };
    let words = vocab.words();
    assert_eq!(words.len(), vocab.size());
    assert_eq!((words[tok::ADOPT as usize].as_str(), words[tok::ANY as usize].as_str(), words[vocab.value(2) as usize].as_str()), ("adopt", "anyone", "v2"));
    let out = std::env::temp_dir().join(format!("kiln-misinfo-hf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    mi::run(&cfg, &out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["checkpoint"]["words"].as_array().unwrap().len(), vocab.size());
    assert!(json["rows"].as_array().unwrap().iter().all(|r| (0.0..=1.0).contains(&r["lm"].as_f64().unwrap())));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("HF checkpoint") && md.contains("fine-tuned"), "{md}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_settings_are_refused_by_name() {
    let err = |c: Config| mi::measure(&c).unwrap_err().to_string();
    assert!(err(Config { held_out: 1.0, ..Config::tiny() }).contains("held_out 1"));
    assert!(err(Config { values: 1, ..Config::tiny() }).contains("values"));
    assert!(err(Config { width: 30, heads: 4, ..Config::tiny() }).contains("width 30"));
    let mut c = Config::tiny();
    c.behaviour.trust[2][1] = 1.5;
    assert!(err(c).contains("1.5"));
}
