//! io/hf/vocab.rs: an HF checkpoint cut to a method's words (the methods' `--model DIR`).
//! The cut model's logits must be the checkpoint's at the words' columns, a word of several
//! pieces must start from their mean, and bad words or directories must be clear errors.
use kiln::io::hf::{self, load_with_vocab, HfTokenizer};
use kiln::methods::training::{gpt2_config, start_model};
use kiln::Tensor;
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_llama")
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Row-major (rows, cols) values of a 2-D or (1, rows, cols) tensor.
fn values(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}

#[test]
fn single_piece_words_give_the_checkpoints_logits_at_their_columns() {
    let dir = model_dir();
    let w = words(&["the", "and", "in", "are", "7", "0"]);
    let (cut, info) = load_with_vocab(&dir, &w).unwrap();
    assert_eq!(cut.cfg.vocab_size, w.len());
    assert!(info.pieces.iter().all(|p| p.len() == 1), "fixture words should be one piece each: {:?}", info.pieces);
    let cols: Vec<u32> = info.pieces.iter().map(|p| p[0]).collect();
    let mut distinct = cols.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), cols.len(), "distinct words must map to distinct ids: {cols:?}");
    let (full, _) = hf::load_model(&dir).unwrap();
    // The same sentence in both vocabularies: method ids 0..6 in some order vs their HF ids.
    let seq: Vec<u32> = vec![0, 3, 1, 5, 2, 4, 4, 1];
    let t = seq.len();
    let cut_logits = values(&cut.forward(&Tensor::from_vec_u32(seq.clone(), vec![1, t]).unwrap(), 0, None).unwrap());
    let hf_ids: Vec<u32> = seq.iter().map(|&i| cols[i as usize]).collect();
    let full_logits = values(&full.forward(&Tensor::from_vec_u32(hf_ids, vec![1, t]).unwrap(), 0, None).unwrap());
    let (v, hv) = (w.len(), full.cfg.vocab_size);
    let mut worst = 0f32;
    for pos in 0..t {
        for (j, &c) in cols.iter().enumerate() {
            worst = worst.max((cut_logits[pos * v + j] - full_logits[pos * hv + c as usize]).abs());
        }
    }
    assert!(worst < 1e-5, "cut logits differ from the checkpoint's by {worst}");
}

#[test]
fn a_word_of_several_pieces_starts_from_their_mean() {
    let dir = model_dir();
    let tok = HfTokenizer::load(&dir).unwrap();
    let word = "kilnword";
    let pieces = hf::vocab::word_pieces(&tok, word).unwrap();
    assert!(pieces.len() > 1, "{word:?} should take several pieces in the fixture tokenizer: {pieces:?}");
    let (cut, info) = load_with_vocab(&dir, &words(&["the", word])).unwrap();
    assert_eq!(info.pieces[1], pieces);
    assert_eq!(info.multi_piece(), 1);
    let (full, _) = hf::load_model(&dir).unwrap();
    let c = full.cfg.d_model;
    let (wte, full_wte) = (values(&cut.wte), values(&full.wte));
    let head = values(cut.lm_head.as_ref().expect("fixture is untied"));
    let full_head = values(full.lm_head.as_ref().unwrap());
    let hv = full.cfg.vocab_size;
    for k in 0..c {
        let mean_e: f32 = pieces.iter().map(|&p| full_wte[p as usize * c + k]).sum::<f32>() / pieces.len() as f32;
        assert!((wte[c + k] - mean_e).abs() < 1e-6, "wte row 1 col {k}: {} vs mean {mean_e}", wte[c + k]);
        // lm_head is (C, V): column 1 of the cut is the mean of the pieces' columns.
        let mean_h: f32 = pieces.iter().map(|&p| full_head[k * hv + p as usize]).sum::<f32>() / pieces.len() as f32;
        assert!((head[k * 2 + 1] - mean_h).abs() < 1e-6, "lm_head col 1 row {k}: {} vs mean {mean_h}", head[k * 2 + 1]);
    }
    // Every other weight is the checkpoint's.
    let full_params: std::collections::BTreeMap<String, Tensor> = full.named_params().into_iter().collect();
    for (name, p) in cut.named_params() {
        if name != "model.embed_tokens.weight" && name != "lm_head.weight" {
            assert_eq!(values(&p), values(&full_params[&name]), "{name}");
        }
    }
    assert!(info.describe().contains("2 words (1 of them several pieces"), "{}", info.describe());
}

#[test]
fn bad_words_and_directories_are_clear_errors() {
    let dir = model_dir();
    let err = |r: kiln::Result<_>| -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    };
    let e = err(load_with_vocab(&dir, &words(&["the", "and", "the"])).map(|_| ()));
    assert!(e.contains("\"the\"") && e.contains("repeated"), "{e}");
    let e = err(load_with_vocab(&dir, &words(&["the", " "])).map(|_| ()));
    assert!(e.contains("empty"), "{e}");
    let e = err(load_with_vocab(&dir, &[]).map(|_| ()));
    assert!(e.contains("no words"), "{e}");
    let missing = dir.join("no-such-model");
    let e = err(load_with_vocab(&missing, &words(&["the"])).map(|_| ()));
    assert!(e.contains("no-such-model"), "{e}");
    // start_model: the word list must cover the method's vocabulary, and the context its length.
    let scratch = gpt2_config(3, 32, 1, 2, 16, 0);
    let e = err(start_model(Some(&dir), &words(&["the", "and"]), scratch.clone()).map(|_| ()));
    assert!(e.contains("2 words for its 3 tokens"), "{e}");
    let long = gpt2_config(3, 32, 1, 2, 100_000, 0);
    let e = err(start_model(Some(&dir), &words(&["the", "and", "in"]), long).map(|_| ()));
    assert!(e.contains("positions, the method needs 100000"), "{e}");
    // Without --model: the scratch model, no cut.
    let (m, cut) = start_model(None, &[], scratch).unwrap();
    assert!(cut.is_none() && m.cfg.vocab_size == 3 && m.cfg.d_model == 32);
}
