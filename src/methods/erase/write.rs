//! The claims, judged on the numbers, and the report files: report.json, report.md and
//! accuracy.png (ERASE and RAG vs changes per step, with the LM reader and the template reader).

use super::{Agreement, Results, Row, Scores};
use crate::methods::{claims_table, Claim};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

/// ERASE's advantage over RAG at the most changes that counts as "beats" (paper: 7-13 points).
pub const MARGIN: f64 = 0.05;
/// The LM reader's agreement with the template parser that counts as "reads as it does".
pub const AGREE: f64 = 0.9;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".into(), pct)
}

/// ERASE - `other` in points, per setting.
fn gaps(rows: &[Row], s: &dyn Fn(&Row) -> &Scores, other: &dyn Fn(&Scores) -> f64) -> String {
    rows.iter().map(|x| format!("{}/step: {:+.1}", x.changes_per_step, 100.0 * (s(x).erase - other(s(x))))).collect::<Vec<_>>().join(", ")
}

/// The method's four claims, for one reader.
fn method_claims(rows: &[Row], reader: &str, s: &dyn Fn(&Row) -> &Scores) -> Vec<Claim> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return vec![] };
    let (f, l) = (s(first), s(last));
    vec![
        Claim {
            name: format!("ERASE beats append-only RAG on a changing world ({reader})"),
            statement: format!("with the most changes per step, ERASE answers >= {} points more current-state questions than RAG, both read by the {reader} (paper: +7-13)", 100.0 * MARGIN),
            target: true,
            holds: Some(l.erase - l.rag >= MARGIN),
            numbers: format!("{} changes/step: ERASE {} vs RAG {}", last.changes_per_step, pct(l.erase), pct(l.rag)),
        },
        Claim {
            name: format!("the gap grows with the number of changed facts ({reader})"),
            statement: "ERASE's lead over RAG is larger at the most changes per step than at the fewest".into(),
            target: rows.len() >= 2,
            holds: (rows.len() >= 2).then_some(l.erase - l.rag > f.erase - f.rag),
            numbers: format!("ERASE - RAG in points: {}", gaps(rows, s, &|x| x.rag)),
        },
        Claim {
            name: format!("the gain comes from editing, not only from storing facts ({reader})"),
            statement: format!("with the most changes per step, ERASE beats the same fact store without edits (append-only facts) by >= {} points", 100.0 * MARGIN),
            target: true,
            holds: Some(l.erase - l.facts >= MARGIN),
            numbers: format!("ERASE - append-only facts in points: {}", gaps(rows, s, &|x| x.facts)),
        },
        Claim {
            name: format!("editing costs nothing when nothing changes ({reader})"),
            statement: "with the fewest changes per step, ERASE is within 1 point of the append-only fact store or above it".into(),
            target: false,
            holds: Some(f.erase >= f.facts - 0.01),
            numbers: format!("{} changes/step: ERASE {} vs append-only facts {} (RAG {})", first.changes_per_step, pct(f.erase), pct(f.facts), pct(f.rag)),
        },
    ]
}

fn recalls(a: &Agreement) -> String {
    let r = a.recall();
    let n = |t: usize| a.confusion[t].iter().sum::<usize>();
    format!("reinforced {} of {}, made false {} of {}, unchanged {} of {}", opt(r[0]), n(0), opt(r[1]), n(1), opt(r[2]), n(2))
}

/// Every claim this run can speak to: the LM reader's, the template reader's, and how the LM reads.
pub fn claims(r: &Results) -> Vec<Claim> {
    let a = &r.agreement;
    let mut c = method_claims(&r.rows, "LM reader", &|x| &x.lm);
    c.extend(method_claims(&r.rows, "template reader", &|x| &x.template));
    c.push(Claim {
        name: "the LM reader judges retrieved facts as the template parser does".into(),
        statement: format!("on the evaluation streams' judgments, the LM's recall of each label (reinforced, made false, unchanged), averaged, is >= {}% (chance: 33%)", 100.0 * AGREE),
        target: true,
        holds: Some(a.balanced() >= AGREE),
        numbers: format!("mean recall {}: {}", pct(a.balanced()), recalls(a)),
    });
    c.push(Claim {
        name: "the LM reader extracts documents' facts".into(),
        statement: format!("the LM writes the parser's canonical fact for >= {}% of the evaluation documents", 100.0 * AGREE),
        target: true,
        holds: Some(a.extraction() >= AGREE),
        numbers: format!(
            "{} of {} documents ({}); the parser's answer from the same retrieved texts: RAG {}, append-only facts {}, ERASE {}",
            a.extracted_right,
            a.docs,
            pct(a.extraction()),
            pct(a.same_answers(0)),
            pct(a.same_answers(1)),
            pct(a.same_answers(2))
        ),
    });
    let worst = (0..3).map(|k| a.same_answers(k)).fold(f64::INFINITY, f64::min);
    c.push(Claim {
        name: "the LM reader answers from retrieved texts as the parser does".into(),
        statement: format!("from RAG's documents, the append-only facts and ERASE's facts alike, the LM gives the parser's answer (a value, or unknown where no text is about the pair) to >= {}% of the questions", 100.0 * AGREE),
        target: false,
        holds: Some(worst >= AGREE),
        numbers: format!("RAG {}, append-only facts {}, ERASE {}; values named where the parser answers nothing: {} / {} / {}", pct(a.same_answers(0)), pct(a.same_answers(1)), pct(a.same_answers(2)), a.guesses[0], a.guesses[1], a.guesses[2]),
    });
    if let Some(last) = r.rows.last() {
        c.push(Claim {
            name: "the LM reader's ERASE comes close to the oracle's".into(),
            statement: "with the most changes per step, ERASE with the LM reader is within 5 points of ERASE with the template reader".into(),
            target: false,
            holds: Some(last.lm.erase >= last.template.erase - 0.05),
            numbers: format!("{} changes/step: LM reader {} vs template reader {}", last.changes_per_step, pct(last.lm.erase), pct(last.template.erase)),
        });
    }
    c
}

/// One sentence: the target claims' verdicts and the largest setting's accuracies.
pub fn headline(r: &Results) -> String {
    let verdicts: Vec<String> = r.claims.iter().filter(|c| c.target).map(|c| format!("{} — {}", c.name, if c.holds == Some(true) { "shown" } else { "NOT shown" })).collect();
    let last = r.rows.last().map_or(String::new(), |x| {
        format!(" (at {} changes/step: ERASE {} vs RAG {} with the LM reader; {} vs {} with the template reader)", x.changes_per_step, pct(x.lm.erase), pct(x.lm.rag), pct(x.template.erase), pct(x.template.rag))
    });
    format!("{}{last}", verdicts.join("; "))
}

/// report.json, report.md and accuracy.png.
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let cfg = &r.config;
    let line = |f: &dyn Fn(&Row) -> f64| r.rows.iter().map(|x| (x.changed_pairs, 100.0 * f(x))).collect::<Vec<_>>();
    let series = [
        Series { label: "ERASE (LM reader)".into(), points: line(&|x| x.lm.erase) },
        Series { label: "RAG (LM reader)".into(), points: line(&|x| x.lm.rag) },
        Series { label: "append-only facts (LM reader)".into(), points: line(&|x| x.lm.facts) },
        Series { label: "ERASE (template reader)".into(), points: line(&|x| x.template.erase) },
        Series { label: "RAG (template reader)".into(), points: line(&|x| x.template.rag) },
    ];
    dir.write_bytes("accuracy.png", &line_plot_png("current-state questions answered", "facts changed during the stream (mean)", "accuracy (%)", &series)?)?;
    let accuracy: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|x| {
            let (l, t) = (&x.lm, &x.template);
            vec![
                x.changes_per_step.to_string(),
                format!("{:.1} of {}", x.changed_pairs, 3 * cfg.entities),
                pct(l.rag),
                pct(l.facts),
                pct(l.erase),
                format!("{:+.1}", 100.0 * (l.erase - l.rag)),
                pct(t.rag),
                pct(t.facts),
                pct(t.erase),
                format!("{:+.1}", 100.0 * (t.erase - t.rag)),
            ]
        })
        .collect();
    let detail: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|x| {
            let (l, t) = (&x.lm, &x.template);
            vec![
                x.changes_per_step.to_string(),
                format!("{} / {}", opt(l.rag_changed), opt(l.erase_changed)),
                format!("{} / {}", opt(t.rag_changed), opt(t.erase_changed)),
                format!("{:.0} / {:.0}", l.kb_facts, t.kb_facts),
                format!("{:.1} / {:.1}", l.made_false, t.made_false),
                format!("{:.1} / {:.1}", l.stale_true, t.stale_true),
            ]
        })
        .collect();
    let reading: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|x| x.agreement.clone())
        .zip(&r.rows)
        .chain(std::iter::once((r.agreement.clone(), &r.rows[0])))
        .enumerate()
        .map(|(i, (a, x))| {
            let rec = a.recall();
            vec![
                if i < r.rows.len() { x.changes_per_step.to_string() } else { "all".into() },
                pct(a.extraction()),
                format!("{} ({})", opt(rec[0]), a.confusion[0].iter().sum::<usize>()),
                format!("{} ({})", opt(rec[1]), a.confusion[1].iter().sum::<usize>()),
                format!("{} ({})", opt(rec[2]), a.confusion[2].iter().sum::<usize>()),
                pct(a.balanced()),
                format!("{} / {} / {}", pct(a.same_answers(0)), pct(a.same_answers(1)), pct(a.same_answers(2))),
            ]
        })
        .collect();
    let triple = |f: &dyn Fn(usize) -> usize| format!("{} / {} / {}", f(0), f(1), f(2));
    let t = &r.reader;
    let start = t.checkpoint.clone().unwrap_or_else(|| format!("GPT-2 style, from scratch: d_model {}, {} blocks, {} heads", cfg.reader_width, cfg.reader_layers, cfg.reader_heads));
    let md = format!(
        "# ERASE (Li et al. 2024)\n\n{}.\n\n\
         **Setup.** {} entities with three relations (works_at, lives_in, role); {} steps, each changing some (entity, relation) \
         pairs and restating {} unchanged ones, every document one fact in one of two templates per relation (e.g. `e3 works_at c5` or \
         `e3 joined c5`); {} streams per setting. Questions: every pair's current value (`e3 works_at`). Embeddings: hashed word \
         vectors, width {}. RAG appends every document and answers from its top {} documents. ERASE, for each document, retrieves \
         up to {} still-true facts with cosine >= {}, asks the reader whether each is reinforced, made false or unchanged by the \
         document, and adds the document's fact (as the reader extracts it) unless one was reinforced; it answers from its top {} \
         still-true facts. The ablation stores the same extracted facts but never edits them. Seed {}.\n\n\
         **Readers.** Every stream is run twice. The *LM reader* is a kiln language model ({start}; {} parameters, {} words) that \
         extracts each document's fact (`e3 joined c5 read` -> `e3 works_at c5`, greedy), judges each retrieved fact \
         (`e3 works_at c2 e3 joined c5 judge` -> reinforced / false / unchanged, argmax over the three labels) and answers each \
         question from the top retrieved texts (`<texts> ask e3 works_at` -> a value or unknown). It was trained for {} steps \
         (batch {}, final loss {:.1e}, {:.1} s) on what the template reader did on {} training streams per setting (stream ids >= 2^31, \
         disjoint from the evaluation streams): {} extractions, {} / {} / {} judgments (reinforced / false / unchanged; the first two \
         repeated {} and {} times), {} answers, each repeated {} times ({} of them `unknown`, where no retrieved text is about the pair, each repeated {} times). \
         The *template reader* is exact template parsing: the oracle.\n\n\
         ## Claims\n\n{}\n\n## Accuracy by changes per step\n\n{}\n\n![accuracy](accuracy.png)\n\n\
         Changed pairs' questions and ERASE's knowledge base at the end, LM reader / template reader:\n\n{}\n\n\
         ## How the LM reads\n\nAgainst the template parser on the same inputs (evaluation streams): documents extracted to the \
         parser's fact; recall of each judgment label over the judgments the LM made building ERASE's knowledge base (pairs in \
         brackets); their mean; questions answered as the parser answers them from the same retrieved texts.\n\n{}\n\n\
         Of the questions answered otherwise (RAG / facts / ERASE: {}), the LM named a value where no retrieved text is about \
         the pair (the parser answers nothing) in {}; {} of those guesses were right.\n\n\
         The stream's first changes, largest setting:\n\n```\n{}\n```\n",
        headline(r),
        cfg.entities,
        cfg.steps,
        cfg.restated,
        cfg.streams,
        cfg.dim,
        cfg.k,
        cfg.k_update,
        cfg.threshold,
        cfg.k,
        cfg.seed,
        t.params,
        t.vocab_size,
        t.stats.steps,
        cfg.reader.batch_size,
        t.stats.final_loss,
        t.stats.seconds,
        cfg.train_streams,
        t.corpus.extract,
        t.corpus.judge[0],
        t.corpus.judge[1],
        t.corpus.judge[2],
        t.corpus.repeats[0],
        t.corpus.repeats[1],
        t.corpus.answer,
        t.corpus.answer_repeats,
        t.corpus.unknown,
        t.corpus.unknown_repeats,
        claims_table(&r.claims),
        markdown_table(
            &["changes/step", "pairs changed", "RAG (LM)", "facts, no edits (LM)", "erase (lm reader)", "ERASE - RAG (LM)", "RAG (template)", "facts, no edits (template)", "erase (template reader)", "ERASE - RAG (template)"],
            &accuracy
        ),
        markdown_table(&["changes/step", "RAG / ERASE on changed pairs (LM)", "same (template)", "KB facts", "made false", "stale but true"], &detail),
        markdown_table(&["changes/step", "extracted", "reinforced", "made false", "unchanged", "mean recall", "answers as the parser: RAG / facts / ERASE"], &reading),
        triple(&|k| r.agreement.asks[k] - r.agreement.answered_same[k]),
        triple(&|k| r.agreement.guesses[k]),
        triple(&|k| r.agreement.guesses_right[k]),
        r.example_docs.join("\n"),
    );
    dir.write_text("report.md", &md)?;
    Ok(())
}
