//! Tokenizers, data sets and their loss masks: byte/char/symbol round trips and clear errors,
//! text windows, modular addition (answer-only loss, a fixed disjoint split), copy / reverse /
//! sort, the per-epoch permutation and cursor, batching, and the JSON configs' field errors.
mod common;
use kiln::model::{Arch, Config, Transformer};
use kiln::train::*;
use kiln::no_grad;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-data-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn byte_tokenizer_is_lossless() {
    let text = "héllo, wörld ✓\n\ttabs and 日本語";
    let ids = Tokenizer::Byte.encode(text).unwrap();
    assert_eq!(ids.len(), text.len());
    assert!(ids.iter().all(|&i| i < 256));
    assert_eq!(Tokenizer::Byte.decode(&ids).unwrap(), text);
    assert_eq!(Tokenizer::Byte.vocab_size(), 256);
    let e = Tokenizer::Byte.decode(&[65, 256]).unwrap_err().to_string();
    assert!(e.contains("256") && e.contains("position 1"), "{e}");
}

#[test]
fn char_tokenizer_round_trips_saves_and_refuses_unknown_chars() {
    let text = "abc cab\nbä";
    let tok = Tokenizer::char_level(text).unwrap();
    assert_eq!(tok.vocab_size(), 6, "a b c space newline ä");
    let ids = tok.encode(text).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // Sorted vocabulary: ids are stable whatever order the text has.
    assert_eq!(tok.encode("\n").unwrap(), vec![0]);
    // Saved as JSON (what a checkpoint holds) and read back: the same tokenizer.
    let json = serde_json::to_string(&tok).unwrap();
    let back: Tokenizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, tok);
    back.validate().unwrap();
    let e = tok.encode("ab\ncz").unwrap_err().to_string();
    assert!(e.contains("'z'") && e.contains("line 2, column 2"), "{e}");
    let unsorted: Tokenizer = serde_json::from_str(r#"{"kind":"char","chars":["b","a"]}"#).unwrap();
    assert!(unsorted.validate().unwrap_err().to_string().contains("chars"));
    assert!(serde_json::from_str::<Tokenizer>(r#"{"kind":"char","chars":["a"],"extra":1}"#).unwrap_err().to_string().contains("extra"));
    assert!(Tokenizer::char_level("").is_err());
}

#[test]
fn symbol_tokenizer_reads_tasks() {
    let tok = ModAdd::tokenizer(7);
    assert_eq!(tok.vocab_size(), 9);
    assert_eq!(tok.encode("3 + 5 =").unwrap(), vec![3, 7, 5, 8]);
    assert_eq!(tok.decode(&[3, 7, 5, 8, 1]).unwrap(), "3 + 5 = 1");
    assert!(tok.encode("3 * 5").unwrap_err().to_string().contains("`*`"));
}

#[test]
fn text_windows_are_next_token_pairs() {
    let tok = Tokenizer::Byte;
    let d = TextDataset::new("abcdefghij", &tok, 3, "mem").unwrap();
    assert_eq!(d.len(), 3, "(10 - 1) / 3 windows");
    assert_eq!(d.example(1).unwrap(), Example { ids: b"def".iter().map(|&b| b as u32).collect(), targets: b"efg".iter().map(|&b| b as u32).collect() });
    assert!(d.example(3).is_err());
    let (train, eval) = TextDataset::new("abcdefghijklmnopqrstu", &tok, 2, "mem").unwrap().split(0.2).unwrap();
    assert_eq!((train.len(), eval.len()), (8, 2));
    assert_eq!(eval.example(0).unwrap().ids, vec![b'q' as u32, b'r' as u32], "the held-out windows are the last ones");
    assert!(TextDataset::new("abcd", &tok, 2, "mem").unwrap().split(0.5).is_err(), "one window cannot be split");
}

#[test]
fn text_file_errors_name_the_file() {
    let dir = tmp("text");
    let short = dir.join("short.txt");
    std::fs::write(&short, "tiny").unwrap();
    let e = TextDataset::from_file(&short, &Tokenizer::Byte, 8).unwrap_err().to_string();
    assert!(e.contains("short.txt") && e.contains("shorter than one window"), "{e}");
    let e = TextDataset::from_file(&dir.join("nope.txt"), &Tokenizer::Byte, 8).unwrap_err().to_string();
    assert!(e.contains("nope.txt") && e.contains("cannot read"), "{e}");
    let bin = dir.join("bin.txt");
    std::fs::write(&bin, [0x66, 0xff, 0xfe]).unwrap();
    assert!(TextDataset::from_file(&bin, &Tokenizer::Byte, 1).unwrap_err().to_string().contains("UTF-8"));
    let other = dir.join("other.txt");
    std::fs::write(&other, "hello there, world").unwrap();
    let e = TextDataset::from_file(&other, &Tokenizer::char_level("helo ").unwrap(), 4).unwrap_err().to_string();
    assert!(e.contains("other.txt") && e.contains("'t'"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn mod_add_masks_all_but_the_answer_and_splits_fixed_and_disjoint() {
    let p = 23;
    let train = ModAdd::new(p, 0.9, 5, Split::Train).unwrap();
    let eval = ModAdd::new(p, 0.9, 5, Split::Eval).unwrap();
    assert_eq!(train.len() + eval.len(), (p * p) as usize);
    let frac = eval.len() as f64 / (p * p) as f64;
    assert!((0.05..0.15).contains(&frac), "held-out fraction {frac}");
    let mut all: Vec<(u32, u32)> = train.pairs().iter().chain(eval.pairs()).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), (p * p) as usize, "the splits are disjoint and cover every pair");
    assert_eq!(ModAdd::new(p, 0.9, 5, Split::Eval).unwrap().pairs(), eval.pairs(), "deterministic");
    assert_ne!(ModAdd::new(p, 0.9, 6, Split::Eval).unwrap().pairs(), eval.pairs(), "the seed matters");
    for i in 0..train.len() {
        let e = train.example(i).unwrap();
        let (a, b) = train.pairs()[i];
        assert_eq!(e.ids, vec![a, p, b, p + 1]);
        assert_eq!(e.targets, vec![IGNORE, IGNORE, IGNORE, (a + b) % p], "loss only on the answer");
    }
    assert!(ModAdd::new(1, 0.9, 0, Split::Train).unwrap_err().to_string().contains("`p`"));
    assert!(ModAdd::new(7, 1.5, 0, Split::Train).unwrap_err().to_string().contains("train_fraction"));
}

#[test]
fn the_loss_counts_only_unmasked_positions() {
    // The model's loss on a mod-add batch equals -log p(answer) at position 3 alone.
    let p = 11;
    let data = ModAdd::new(p, 0.9, 0, Split::Train).unwrap();
    let batch = Batch::gather(&data, &[0, 5, 9, 17]).unwrap();
    assert_eq!(batch.ids.dims(), &[4, 4]);
    assert_eq!(batch.n_targets, 4);
    let model = Transformer::new(Config::tiny(Arch::Gpt2, (p + 2) as usize)).unwrap();
    let _ng = no_grad();
    let loss = model.loss(&batch.ids, &batch.targets, IGNORE).unwrap().to_scalar().unwrap();
    let logp = model.forward(&batch.ids, 0, None).unwrap().log_softmax().unwrap().to_vec_f64().unwrap(); // (4, 4, V)
    let v = (p + 2) as usize;
    let targets = batch.targets.to_vec_u32().unwrap();
    let manual: f64 = (0..4).map(|b| -logp[(b * 4 + 3) * v + targets[b * 4 + 3] as usize]).sum::<f64>() / 4.0;
    assert!((loss - manual).abs() < 1e-5, "{loss} vs {manual}");
}

#[test]
fn copy_reverse_sort_are_right_deterministic_and_masked() {
    for task in [SeqTask::Copy, SeqTask::Reverse, SeqTask::Sort] {
        let d = SeqDataset::new(task, 6, 5, 20, 3, Split::Train).unwrap();
        let held = SeqDataset::new(task, 6, 5, 20, 3, Split::Eval).unwrap();
        for i in 0..d.len() {
            let s = d.sequence(i);
            assert_eq!(s.len(), 13);
            let (x, y) = (&s[..6], &s[7..]);
            assert_eq!(s[6], 5, "separator");
            assert!(x.iter().all(|&t| t < 5));
            let mut want = x.to_vec();
            match task {
                SeqTask::Copy => {}
                SeqTask::Reverse => want.reverse(),
                SeqTask::Sort => want.sort(),
            }
            assert_eq!(y, &want[..], "{task:?}");
            let e = d.example(i).unwrap();
            assert_eq!(e.ids, s[..12].to_vec());
            assert!(e.targets[..6].iter().all(|&t| t == IGNORE), "no loss on the input");
            assert_eq!(&e.targets[6..], y, "loss on the answer");
            assert_eq!(d.example(i).unwrap(), e, "pure function of i");
        }
        assert_ne!(d.sequence(0), held.sequence(0), "held-out examples are other draws");
    }
    assert!(SeqDataset::new(SeqTask::Copy, 0, 5, 1, 0, Split::Train).unwrap_err().to_string().contains("`len`"));
}

#[test]
fn epochs_are_seeded_permutations_and_the_cursor_resumes_the_stream() {
    let p = epoch_permutation(7, 0, 100);
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    assert_eq!(p, epoch_permutation(7, 0, 100));
    assert_ne!(p, epoch_permutation(7, 1, 100));
    assert_ne!(p, epoch_permutation(8, 0, 100));
    let mut s = Sampler::new(7, 10, Cursor::default()).unwrap();
    let first: Vec<usize> = s.take(25);
    assert_eq!(&first[..10], &epoch_permutation(7, 0, 10)[..]);
    assert_eq!(&first[10..20], &epoch_permutation(7, 1, 10)[..]);
    assert_eq!(s.cursor(), Cursor { epoch: 2, position: 5 });
    // A sampler rebuilt at a cursor continues the same stream.
    let mut a = Sampler::new(7, 10, Cursor { epoch: 1, position: 3 }).unwrap();
    assert_eq!(a.take(12), first[13..25].to_vec());
    assert!(Sampler::new(7, 10, Cursor { epoch: 0, position: 11 }).is_err());
}

#[test]
fn batches_are_b_by_t_and_refuse_ragged_examples() {
    let e = |n: usize| Example { ids: vec![1; n], targets: vec![2; n] };
    let b = Batch::new(&[e(5), e(5), e(5)]).unwrap();
    assert_eq!((b.ids.dims(), b.targets.dims(), b.n_targets), (&[3usize, 5][..], &[3usize, 5][..], 15));
    assert_eq!(b.ids.dtype(), kiln::DType::U32);
    assert!(Batch::new(&[e(5), e(4)]).unwrap_err().to_string().contains("example 1"));
    assert!(Batch::new(&[]).is_err());
}

#[test]
fn run_config_errors_name_the_field() {
    let ok = r#"{"model": {"arch":"llama","vocab_size":15,"d_model":32,"n_layers":1,"n_heads":4,"max_seq_len":8},
                 "data": {"kind":"mod_add","p":13}, "train": {"steps": 10}}"#;
    let cfg = RunConfig::from_json(ok, "run.json").unwrap();
    assert_eq!(cfg.train.batch_size, TrainConfig::default().batch_size, "defaults fill the rest");
    let e = RunConfig::from_json(&ok.replace("\"steps\"", "\"stepz\""), "run.json").unwrap_err().to_string();
    assert!(e.contains("stepz") && e.contains("run.json"), "{e}");
    let e = RunConfig::from_json(&ok.replace("\"p\":13", "\"p\":13,\"q\":1"), "run.json").unwrap_err().to_string();
    assert!(e.contains("`q`"), "{e}");
    let e = RunConfig::from_json(&ok.replace("\"steps\": 10", "\"lr\": -1"), "run.json").unwrap_err().to_string();
    assert!(e.contains("`lr`"), "{e}");
    let e = RunConfig::from_json(&ok.replace("mod_add", "mod_mul"), "run.json").unwrap_err().to_string();
    assert!(e.contains("mod_mul"), "{e}");
    let small = RunConfig::from_json(&ok.replace("\"vocab_size\":15", "\"vocab_size\":14"), "run.json").unwrap();
    let data = small.data.load(None).unwrap();
    assert!(small.check_fits(&data).unwrap_err().to_string().contains("vocab_size"));
}
