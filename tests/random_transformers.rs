//! random-transformers: the six generators' sequences and answers, the fixed 95/5 split, the
//! frozen weights after embedding-only training, trainable-parameter counts, the tiny run's
//! report, and the CLI-facing errors.

use kiln::methods::random_transformers::tasks::{lm_bigram_bits, lm_entropy_bits, lm_source, memorised_bits, TaskSpec, LM_PROBS, CLOSE, OPEN, PAREN_NO, PAREN_PAD, PAREN_QUERY, PAREN_YES};
use kiln::methods::random_transformers::train::{build_model, embedding_param_count, train_run, Budget, Mode, EMBEDDING_PARAMS};
use kiln::methods::random_transformers::{self as rt, Config};
use kiln::tensor::Device;
use kiln::train::{Batch, Example, IGNORE};
use std::collections::HashSet;

/// The positions that carry a loss, and their targets.
fn answer(e: &Example) -> Vec<(usize, u32)> {
    e.targets.iter().enumerate().filter(|(_, &y)| y != IGNORE).map(|(j, &y)| (j, y)).collect()
}

#[test]
fn mod_add_answers_and_fixed_disjoint_split() {
    let p = 23u32;
    let d = TaskSpec::ModAdd { p, test_fraction: 0.05 }.generate(7).unwrap();
    assert_eq!((d.vocab_size, d.seq_len), (p as usize, 2), "the paper's format: [a, b], no '=' token");
    assert_eq!(d.test.0.len(), (0.05 * (p * p) as f64).round() as usize);
    assert_eq!(d.train.0.len() + d.test.0.len(), (p * p) as usize);
    let mut seen = HashSet::new();
    for e in d.train.0.iter().chain(&d.test.0) {
        assert_eq!(e.ids.len(), 2);
        assert_eq!(answer(e), vec![(1, (e.ids[0] + e.ids[1]) % p)], "loss only on the answer, read at b's position: (a + b) mod p");
        assert!(seen.insert((e.ids[0], e.ids[1])), "pair {:?} appears twice", &e.ids[..2]);
    }
    let test = |seed| TaskSpec::ModAdd { p, test_fraction: 0.05 }.generate(seed).unwrap().test.0;
    assert_eq!(test(7), d.test.0, "same seed, same split");
    assert_ne!(test(8), d.test.0, "another seed, another split");
}

#[test]
fn needle_answer_is_the_queried_keys_value() {
    let (max_pairs, k, v) = (5usize, 8u32, 6u32);
    let d = TaskSpec::Needle { max_pairs, n_keys: k, n_values: v, n_train: 300, n_test: 50 }.generate(1).unwrap();
    let pad = k + v;
    let mut counts = HashSet::new();
    for e in d.train.0.iter().chain(&d.test.0) {
        assert_eq!(e.ids.len(), 2 * max_pairs + 1);
        let body: Vec<u32> = e.ids.iter().copied().skip_while(|&t| t == pad).collect();
        assert!(!body.contains(&pad), "padding only on the left");
        let (pairs, query) = (&body[..body.len() - 1], body[body.len() - 1]);
        assert!(pairs.len() % 2 == 0 && !pairs.is_empty());
        counts.insert(pairs.len() / 2);
        let keys: Vec<u32> = pairs.iter().step_by(2).copied().collect();
        assert!(keys.iter().all(|&x| x < k) && pairs.iter().skip(1).step_by(2).all(|&x| (k..k + v).contains(&x)));
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len(), "keys are distinct");
        let at = keys.iter().position(|&x| x == query).expect("the query is one of the keys");
        assert_eq!(answer(e), vec![(2 * max_pairs, pairs[2 * at + 1])]);
    }
    assert_eq!(counts.len(), max_pairs, "every haystack size 1..=max_pairs occurs");
}

#[test]
fn decimal_addition_answer_is_the_reversed_sum() {
    let digits = 6;
    let d = TaskSpec::DecimalAdd { digits, n_train: 200, n_test: 20 }.generate(3).unwrap();
    let number = |ds: &[u32]| ds.iter().fold(0u64, |acc, &x| 10 * acc + x as u64);
    for e in d.train.0.iter().chain(&d.test.0) {
        assert_eq!(e.ids.len(), 3 * digits + 2);
        assert_eq!((e.ids[digits], e.ids[2 * digits + 1]), (10, 11), "'+' and '=' in place");
        let (a, b) = (number(&e.ids[..digits]), number(&e.ids[digits + 1..2 * digits + 1]));
        let ans = answer(e);
        assert_eq!(ans.len(), digits + 1);
        assert_eq!(ans[0].0, 2 * digits + 1, "the loss starts right after '='");
        let reversed: Vec<u32> = ans.iter().rev().map(|&(_, y)| y).collect();
        assert_eq!(number(&reversed), a + b, "{a} + {b}");
    }
}

#[test]
fn parenthesis_labels_match_a_stack_check() {
    let max_len = 12;
    let d = TaskSpec::Parens { max_len, n_train: 600, n_test: 50 }.generate(5).unwrap();
    let (mut yes, mut same_count_no) = (0, 0);
    for e in d.train.0.iter().chain(&d.test.0) {
        assert_eq!(e.ids.len(), max_len + 1);
        assert_eq!(*e.ids.last().unwrap(), PAREN_QUERY);
        let s: Vec<u32> = e.ids[..max_len].iter().copied().skip_while(|&t| t == PAREN_PAD).collect();
        assert!(!s.is_empty() && s.iter().all(|&t| t == OPEN || t == CLOSE));
        let mut stack = Vec::new();
        let mut ok = true;
        for &t in &s {
            if t == OPEN {
                stack.push(t);
            } else if stack.pop().is_none() {
                ok = false;
            }
        }
        ok &= stack.is_empty();
        assert_eq!(answer(e), vec![(max_len, if ok { PAREN_YES } else { PAREN_NO })]);
        yes += ok as usize;
        let opens = s.iter().filter(|&&t| t == OPEN).count();
        same_count_no += (!ok && 2 * opens == s.len()) as usize;
    }
    let n = 650;
    assert!((n * 35 / 100..n * 65 / 100).contains(&yes), "{yes} of {n} balanced");
    assert!(same_count_no > n / 10, "negatives with equal counts exist ({same_count_no})");
}

#[test]
fn memorisation_pairs_labels_and_bits() {
    let d = TaskSpec::Memorise { n_inputs: 10, n_labels: 4, n_examples: 60 }.generate(0).unwrap();
    assert_eq!(d.train.0, d.test.0, "memorisation is scored on its training set");
    let pairs: HashSet<(u32, u32)> = d.train.0.iter().map(|e| (e.ids[0], e.ids[1])).collect();
    assert_eq!(pairs.len(), 60);
    assert!(d.train.0.iter().all(|e| answer(e).len() == 1 && (10..14).contains(&answer(e)[0].1)));
    assert_eq!(memorised_bits(100, 4, 0.25), 0.0, "chance holds no information");
    assert!((memorised_bits(100, 4, 1.0) - 200.0).abs() < 1e-9, "perfect = n log2 L");
    assert!(memorised_bits(100, 4, 0.5) > 0.0 && memorised_bits(100, 4, 0.5) < 100.0);
    assert!(TaskSpec::Memorise { n_inputs: 3, n_labels: 4, n_examples: 10 }.generate(0).is_err(), "more examples than pairs");
}

#[test]
fn language_follows_its_order_2_source() {
    let (symbols, seq_len) = (8u32, 20usize);
    let d = TaskSpec::Lm { symbols, seq_len, n_train: 3000, n_test: 300 }.generate(4).unwrap();
    let source = lm_source(symbols, 4);
    assert!(source.iter().all(|n| n[0] != n[1] && n[1] != n[2] && n[0] != n[2] && n.iter().all(|&x| x < symbols)));
    // Every scored token follows its two predecessors by the source, most often as its first choice.
    let mut rank = [0usize; 3];
    for e in &d.train.0 {
        assert_eq!((e.ids.len(), e.targets.len()), (seq_len, seq_len));
        assert_eq!(e.targets[0], IGNORE, "the first token has no full context");
        for t in 1..seq_len {
            let next = source[(e.ids[t - 1] * symbols + e.ids[t]) as usize];
            let r = next.iter().position(|&x| x == e.targets[t]).expect("a token the source allows");
            rank[r] += 1;
            if t + 1 < seq_len {
                assert_eq!(e.targets[t], e.ids[t + 1], "targets are the next ids");
            }
        }
    }
    let n = rank.iter().sum::<usize>() as f64;
    for (r, p) in rank.iter().zip(LM_PROBS) {
        assert!((*r as f64 / n - p).abs() < 0.02, "rank frequencies {rank:?} vs {LM_PROBS:?}");
    }
    assert!((lm_entropy_bits() - 1.2955).abs() < 1e-3);
    // The previous token alone tells far less: its best model sits well above the source entropy.
    let bigram = lm_bigram_bits(&d.train, &d.test, symbols as usize);
    assert!(bigram > lm_entropy_bits() + 0.5 && bigram < (symbols as f64).log2(), "previous-token model {bigram}");
    assert!(TaskSpec::Lm { symbols: 2, seq_len, n_train: 10, n_test: 10 }.generate(0).is_err(), "too few symbols for three choices");
}

#[test]
fn embedding_only_leaves_every_other_weight_bit_identical() {
    let data = TaskSpec::ModAdd { p: 13, test_fraction: 0.05 }.generate(0).unwrap();
    let budget = Budget { steps: 3, batch_size: 16, lr_embedding: 1e-2, lr_full: 1e-2 };
    let before = build_model(&data, 16, Mode::EmbeddingOnly, 0).unwrap();
    let (after, stats) = train_run(&data, 16, Mode::EmbeddingOnly, &budget, 0, Device::Cpu, "test").unwrap();
    let (b, a) = (before.named_params(), after.named_params());
    assert_eq!(b.len(), a.len());
    let mut changed = Vec::new();
    for ((name, x), (name2, y)) in b.iter().zip(&a) {
        assert_eq!(name, name2);
        let (x, y) = (x.to_vec_f32().unwrap(), y.to_vec_f32().unwrap());
        let same = x.iter().zip(&y).all(|(u, v)| u.to_bits() == v.to_bits());
        if EMBEDDING_PARAMS.contains(&name.as_str()) {
            if !same {
                changed.push(name.clone());
            }
        } else {
            assert!(same, "frozen `{name}` moved");
        }
    }
    assert_eq!(changed.len(), 3, "all three embedding tensors train: {changed:?}");
    assert_eq!(stats.trainable_params, embedding_param_count(13, 2, 16));
    // and full training does move a block weight, so the check above can fail
    let (full, _) = train_run(&data, 16, Mode::Full, &budget, 0, Device::Cpu, "test").unwrap();
    let w = |m: &kiln::model::Transformer| m.named_params().into_iter().find(|(n, _)| n == "transformer.h.0.mlp.c_fc.weight").unwrap().1.to_vec_f32().unwrap();
    assert_ne!(w(&full), w(&before));
}

#[test]
fn embedding_only_gradients_equal_full_trainings_on_the_same_weights() {
    // Freezing must cut only the frozen weights' own gradients: the embeddings and head get
    // exactly the gradients full training gives them at the same weights (no path through a
    // frozen op is dropped), and nothing else gets one.
    let data = TaskSpec::ModAdd { p: 13, test_fraction: 0.05 }.generate(0).unwrap();
    let idx: Vec<usize> = (0..32).collect();
    let batch = Batch::gather(&data.train, &idx).unwrap();
    let emb = build_model(&data, 16, Mode::EmbeddingOnly, 0).unwrap();
    let full = build_model(&data, 16, Mode::Full, 0).unwrap();
    let ge = kiln::backward(&emb.loss(&batch.ids, &batch.targets, IGNORE).unwrap()).unwrap();
    let gf = kiln::backward(&full.loss(&batch.ids, &batch.targets, IGNORE).unwrap()).unwrap();
    assert_eq!(ge.len(), 3, "only the three embedding tensors get a gradient");
    for ((name, pe), (_, pf)) in emb.named_params().iter().zip(&full.named_params()) {
        let f = gf.get(pf).unwrap_or_else(|| panic!("full training has no gradient for `{name}`")).to_vec_f32().unwrap();
        match ge.get(pe) {
            Some(e) => {
                assert!(EMBEDDING_PARAMS.contains(&name.as_str()), "frozen `{name}` got a gradient");
                let e = e.to_vec_f32().unwrap();
                assert!(e.iter().any(|x| *x != 0.0), "`{name}`: zero gradient");
                assert_eq!(e, f, "`{name}`: embedding-only and full gradients differ");
            }
            None => assert!(!EMBEDDING_PARAMS.contains(&name.as_str()), "`{name}` should train but got no gradient"),
        }
    }
}

#[test]
fn per_task_widths_and_the_widths_flag() {
    let cfg = Config::small();
    let mod_add = cfg.tasks.iter().find(|t| t.spec.name() == "mod_add").unwrap();
    let parens = cfg.tasks.iter().find(|t| t.spec.name() == "parens").unwrap();
    assert_ne!(cfg.widths_of(mod_add), cfg.widths_of(parens), "the small scale gives modular addition its own widths");
    assert_eq!(cfg.widths_of(parens), &cfg.widths[..]);
    let cfg = cfg.with_widths("8,12").unwrap();
    assert!(cfg.tasks.iter().all(|t| cfg.widths_of(t) == [8, 12]), "--widths replaces every task's widths");
}

#[test]
fn trainable_counts_match_a_hand_count() {
    let data = TaskSpec::Needle { max_pairs: 4, n_keys: 5, n_values: 7, n_train: 8, n_test: 8 }.generate(0).unwrap();
    let (v, t, c) = (13usize, 9usize, 32usize);
    assert_eq!((data.vocab_size, data.seq_len), (v, t));
    let emb = build_model(&data, c, Mode::EmbeddingOnly, 0).unwrap();
    let count = |m: &kiln::model::Transformer| m.trainable_params().iter().map(|(_, p)| p.elem_count()).sum::<usize>();
    assert_eq!(count(&emb), v * c + t * c + c * v);
    // GPT-2 block: ln_1, c_attn (C x 3C + 3C), attn c_proj (C x C + C), ln_2, c_fc (C x 4C + 4C), mlp c_proj (4C x C + C)
    let block = 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c);
    let full = build_model(&data, c, Mode::Full, 0).unwrap();
    assert_eq!(count(&full), v * c + t * c + 2 * block + 2 * c + c * v);
    assert!(full.lm_head.is_some(), "untied: the head is its own tensor");
}

#[test]
fn tiny_run_writes_the_report() {
    let dir = std::env::temp_dir().join(format!("kiln-rt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = rt::run(&Config::tiny(), &dir).unwrap();
    assert_eq!(report.method, "random-transformers");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 6 * 2 * 2, "6 tasks x 2 widths x 2 modes");
    for r in results {
        for key in ["task", "width", "mode", "accuracy", "trainable_params"] {
            assert!(!r[key].is_null(), "result lacks `{key}`: {r}");
        }
        assert_eq!(r["bits_per_param"].is_null(), r["task"] != "memorise");
        assert_eq!(r["test_bits"].is_null(), r["task"] != "lm");
    }
    let claims: Vec<&str> = json["claims"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(claims.iter().filter(|c| c.starts_with("lm: ")).count(), 3, "{claims:?}");
    for f in ["report.md", "mod_add.png", "needle.png", "decimal_add.png", "parens.png", "memorise.png", "lm.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_task_and_widths_are_clear_errors() {
    let e = Config::tiny().select("modadd").unwrap_err().to_string();
    assert!(e.contains("modadd") && e.contains("mod_add"), "{e}");
    assert_eq!(Config::tiny().select("parens").unwrap().tasks.len(), 1);
    for bad in ["16,x", "0", "18", ""] {
        let e = Config::tiny().with_widths(bad).unwrap_err().to_string();
        assert!(e.contains("--widths"), "{bad}: {e}");
    }
    assert_eq!(Config::tiny().with_widths("64, 16,64").unwrap().widths, vec![16, 64]);
}
