//! Scoring and files: the ARC Prize submission ({task_id: [{"attempt_1": grid, "attempt_2":
//! grid}, ...]}, one entry per test input), pass@2 per task and overall for each ablation, and
//! report.json / report.md.

use super::data::Task;
use super::grid::Grid;
use super::TaskResult;
use crate::report::{markdown_table, RunDir};
use crate::Result;
use serde_json::{json, Map, Value};

/// A task's pass@2: the fraction of its test outputs that one of the (at most 2) attempts
/// matches exactly. None when an answer is unknown.
pub fn pass_at_2(task: &Task, attempts: &[Vec<Grid>]) -> Option<f64> {
    let mut hits = 0;
    for (q, a) in task.test.iter().zip(attempts) {
        let want = q.output.as_ref()?;
        hits += a.iter().take(2).any(|g| g == want) as usize;
    }
    Some(hits as f64 / task.test.len() as f64)
}

/// The submission entry of one task from its best ablation's attempts: a missing attempt is
/// filled with the other one, or with `[[0]]` when there is none.
pub fn submission(results: &[TaskResult]) -> Value {
    let mut m = Map::new();
    for r in results {
        let best = r.ft_ttt_aug.as_ref().or(r.ft_ttt.as_ref()).unwrap_or(&r.ft);
        let entries: Vec<Value> = best
            .iter()
            .map(|a| {
                let zero = Grid { h: 1, w: 1, cells: vec![0] };
                let first = a.first().unwrap_or(&zero);
                json!({"attempt_1": first, "attempt_2": a.get(1).unwrap_or(first)})
            })
            .collect();
        m.insert(r.id.clone(), Value::Array(entries));
    }
    Value::Object(m)
}

/// A task's id and its pass@2 after fine-tuning, + TTT, + TTT with augmented voting.
pub type TaskScores = (String, Option<f64>, Option<f64>, Option<f64>);

/// Per-ablation pass@2 of every task and the means ("ablations"); None where not run or unknown.
pub struct Scores {
    pub per_task: Vec<TaskScores>,
    pub ft: Option<f64>,
    pub ft_ttt: Option<f64>,
    pub ft_ttt_aug: Option<f64>,
}

pub fn score(tasks: &[Task], results: &[TaskResult]) -> Scores {
    let per_task: Vec<_> = tasks
        .iter()
        .zip(results)
        .map(|(t, r)| (t.id.clone(), pass_at_2(t, &r.ft), r.ft_ttt.as_ref().and_then(|a| pass_at_2(t, a)), r.ft_ttt_aug.as_ref().and_then(|a| pass_at_2(t, a))))
        .collect();
    let mean = |f: &dyn Fn(&TaskScores) -> Option<f64>| -> Option<f64> {
        let v: Option<Vec<f64>> = per_task.iter().map(f).collect();
        v.filter(|v| !v.is_empty()).map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    let (ft, ft_ttt, ft_ttt_aug) = (mean(&|x| x.1), mean(&|x| x.2), mean(&|x| x.3));
    Scores { per_task, ft, ft_ttt, ft_ttt_aug }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
}

/// Write submission.json, report.json and report.md into `dir`; returns the headline.
pub fn write(dir: &RunDir, title: &str, notes: &str, tasks: &[Task], results: &[TaskResult], extra: Value) -> Result<String> {
    dir.write_json("submission.json", &submission(results))?;
    let s = score(tasks, results);
    let seconds: f64 = results.iter().map(|r| r.seconds).sum();
    let headline = format!("pass@2 over {} tasks: ft {}, ft+ttt {}, ft+ttt+aug {}", tasks.len(), pct(s.ft), pct(s.ft_ttt), pct(s.ft_ttt_aug));
    let task_rows: Vec<Value> = s.per_task.iter().zip(results).map(|((id, a, b, c), r)| json!({"id": id, "ft": a, "ft_ttt": b, "ft_ttt_aug": c, "ttt_tasks": r.ttt_tasks, "ttt_steps": r.ttt.steps, "ttt_loss_first_epoch": r.ttt.loss_first, "ttt_loss_last_epoch": r.ttt.loss_last, "seconds": r.seconds})).collect();
    let report = json!({
        "method": super::NAME,
        "headline": headline,
        "ablations": {"ft": s.ft, "ft_ttt": s.ft_ttt, "ft_ttt_aug": s.ft_ttt_aug},
        "tasks": task_rows,
        "seconds_stage2_3": seconds,
        "extra": extra,
    });
    dir.write_json("report.json", &report)?;
    let rows: Vec<Vec<String>> = s.per_task.iter().zip(results).map(|((id, a, b, c), r)| vec![id.clone(), pct(*a), pct(*b), pct(*c), r.ttt_tasks.to_string(), format!("{:.3} -> {:.3}", r.ttt.loss_first, r.ttt.loss_last), format!("{:.1}", r.seconds)]).collect();
    let md = format!(
        "# {title}\n\n{headline}\n\n| ablation | pass@2 |\n|---|---|\n| ft (base, one greedy pass) | {} |\n| ft + ttt (per-task LoRA, one greedy pass) | {} |\n| ft + ttt + aug (augmented views, hierarchical vote) | {} |\n\n{notes}\n\n## Tasks\n\n{}\n\nStages 2-3 took {seconds:.1}s in all.\n",
        pct(s.ft),
        pct(s.ft_ttt),
        pct(s.ft_ttt_aug),
        markdown_table(&["task", "ft", "ft+ttt", "ft+ttt+aug", "TTT tasks", "TTT loss (first -> last epoch)", "seconds"], &rows)
    );
    dir.write_text("report.md", &md)?;
    Ok(headline)
}
