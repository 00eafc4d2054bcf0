//! Loss curves of model families: the three released families (GPT-3, OPT, Pile-T5), read exactly
//! as ../shared/data/scaling-laws/README.md describes, and a generic CSV for a user's own runs.
//!
//! Generic CSV: a header row naming (in any order, any case; other columns ignored)
//!   model, params, tokens, loss
//! one row per checkpoint. params, tokens and loss must be finite numbers > 0 and params must be the
//! same on every row of a model. Bad input is refused with the file, line and column named.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One evaluation of a model: tokens seen so far and the loss (or the family's metric) there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checkpoint {
    pub tokens: f64,
    pub loss: f64,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub params: f64,
    /// Sorted by tokens.
    pub checkpoints: Vec<Checkpoint>,
}

impl Model {
    pub fn max_tokens(&self) -> f64 {
        self.checkpoints.iter().map(|c| c.tokens).fold(0.0, f64::max)
    }
}

/// A family of models trained alike, sorted by parameter count (smallest first).
#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub models: Vec<Model>,
}

fn file_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::File { path: path.display().to_string(), detail: detail.into() }
}

/// A CSV file read with its header, so that every error can name the file, line and column.
struct Table {
    path: std::path::PathBuf,
    headers: Vec<String>,
    records: Vec<(u64, csv::StringRecord)>,
}

impl Table {
    fn read(path: &Path) -> Result<Table> {
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_path(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
        let headers = rdr.headers().map_err(|e| file_err(path, format!("line 1: bad header: {e}")))?;
        let headers: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
        let mut records = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                file_err(path, format!("line {line}: malformed CSV: {e}"))
            })?;
            records.push((rec.position().map(|p| p.line()).unwrap_or(0), rec));
        }
        Ok(Table { path: path.to_path_buf(), headers, records })
    }

    /// Index of the column called `name` (case-insensitive).
    fn column(&self, name: &str) -> Result<usize> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            file_err(&self.path, format!("line 1: missing column \"{name}\" (the header has: {})", self.headers.join(", ")))
        })
    }

    fn text<'a>(&self, rec: &'a (u64, csv::StringRecord), col: usize) -> Result<&'a str> {
        rec.1.get(col).map(str::trim).ok_or_else(|| {
            file_err(&self.path, format!("line {}: column {} (\"{}\") is missing: the row has {} fields", rec.0, col + 1, self.headers[col], rec.1.len()))
        })
    }

    /// A finite number, > 0 when `positive`.
    fn number(&self, rec: &(u64, csv::StringRecord), col: usize, positive: bool) -> Result<f64> {
        let s = self.text(rec, col)?;
        let at = || format!("line {}, column {} (\"{}\")", rec.0, col + 1, self.headers[col]);
        let v: f64 = s.parse().map_err(|_| file_err(&self.path, format!("{}: \"{s}\" is not a number", at())))?;
        if !v.is_finite() {
            return Err(file_err(&self.path, format!("{}: {s} is not a finite number", at())));
        }
        if positive && v <= 0.0 {
            return Err(file_err(&self.path, format!("{}: {s} must be > 0", at())));
        }
        Ok(v)
    }
}

/// Sort checkpoints and models; refuse an empty family.
fn finish(name: &str, path: &Path, models: BTreeMap<String, Model>) -> Result<Family> {
    let mut models: Vec<Model> = models.into_values().filter(|m| !m.checkpoints.is_empty()).collect();
    if models.is_empty() {
        return Err(file_err(path, "no usable rows"));
    }
    for m in &mut models {
        m.checkpoints.sort_by(|a, b| a.tokens.total_cmp(&b.tokens));
    }
    models.sort_by(|a, b| a.params.total_cmp(&b.params));
    Ok(Family { name: name.to_string(), models })
}

fn add(models: &mut BTreeMap<String, Model>, name: &str, params: f64, c: Checkpoint) {
    models
        .entry(name.to_string())
        .or_insert_with(|| Model { name: name.to_string(), params, checkpoints: Vec::new() })
        .checkpoints
        .push(c);
}

/// "125M", "1.3B", "13.0B", "125m", "6.7b" -> parameter count.
fn parse_size(s: &str) -> Option<f64> {
    let s = s.trim().to_lowercase();
    let (num, mult) = match s.chars().last()? {
        'm' => (&s[..s.len() - 1], 1e6),
        'b' => (&s[..s.len() - 1], 1e9),
        _ => return None,
    };
    num.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).map(|v| v * mult)
}

/// A user's own runs: columns model, params, tokens, loss.
pub fn load_csv(path: &Path) -> Result<Family> {
    let t = Table::read(path)?;
    let cols = [t.column("model")?, t.column("params")?, t.column("tokens")?, t.column("loss")?];
    let mut models = BTreeMap::new();
    for rec in &t.records {
        let name = t.text(rec, cols[0])?;
        if name.is_empty() {
            return Err(file_err(path, format!("line {}, column {} (\"model\"): empty model name", rec.0, cols[0] + 1)));
        }
        let params = t.number(rec, cols[1], true)?;
        let c = Checkpoint { tokens: t.number(rec, cols[2], true)?, loss: t.number(rec, cols[3], true)? };
        if let Some(m) = models.get(name).map(|m: &Model| m.params).filter(|p| *p != params) {
            return Err(file_err(
                path,
                format!("line {}, column {} (\"params\"): model {name} has params {params} here but {m} on an earlier row", rec.0, cols[1] + 1),
            ));
        }
        add(&mut models, name, params, c);
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "csv".into());
    finish(&stem, path, models)
}

/// GPT-3: gpt3_extracted.csv (model, step = billions of tokens, val_loss; rows without val_loss
/// skipped) joined with gpt3_metadata.csv by case-insensitive substring of model_name.
pub fn load_gpt3(dir: &Path) -> Result<Family> {
    let meta_path = dir.join("gpt3_metadata.csv");
    let meta = Table::read(&meta_path)?;
    let (name_col, params_col) = (meta.column("model_name")?, meta.column("num_params")?);
    let mut sizes = Vec::new();
    for rec in &meta.records {
        let size = meta.text(rec, params_col)?;
        let params = parse_size(size).ok_or_else(|| {
            file_err(&meta_path, format!("line {}, column {} (\"num_params\"): \"{size}\" is not a size like 125M or 1.3B", rec.0, params_col + 1))
        })?;
        sizes.push((meta.text(rec, name_col)?.to_lowercase(), params));
    }
    let path = dir.join("gpt3_extracted.csv");
    let t = Table::read(&path)?;
    let (model_col, step_col, loss_col) = (t.column("model")?, t.column("step")?, t.column("val_loss")?);
    let mut models = BTreeMap::new();
    for rec in &t.records {
        if t.text(rec, loss_col)?.is_empty() {
            continue;
        }
        let tag = t.text(rec, model_col)?.to_lowercase();
        let matches: Vec<&(String, f64)> = sizes.iter().filter(|(n, _)| n.contains(&tag)).collect();
        let [(_, params)] = matches[..] else {
            return Err(file_err(&path, format!("line {}: model \"{tag}\" matches {} rows of gpt3_metadata.csv (need exactly one)", rec.0, matches.len())));
        };
        let c = Checkpoint { tokens: t.number(rec, step_col, true)? * 1e9, loss: t.number(rec, loss_col, true)? };
        add(&mut models, &tag, *params, c);
    }
    finish("GPT-3", &path, models)
}

/// OPT: opt_trajectories.csv; tokens = steps * batch, with the batch size set by the model size;
/// the metric is the raw `ppl` column (the released protocol fits perplexity as is).
pub fn load_opt(dir: &Path) -> Result<Family> {
    let path = dir.join("opt_trajectories.csv");
    let t = Table::read(&path)?;
    let (size_col, steps_col, ppl_col) = (t.column("model_size")?, t.column("steps")?, t.column("ppl")?);
    let mut models = BTreeMap::new();
    for rec in &t.records {
        let size = t.text(rec, size_col)?;
        let params = parse_size(size).ok_or_else(|| {
            file_err(&path, format!("line {}, column {} (\"model_size\"): \"{size}\" is not a size like 125m or 1.3b", rec.0, size_col + 1))
        })?;
        let batch = match params {
            p if p < 1e9 => 0.5e6,
            p if p < 6e9 => 1e6,
            p if p < 10e9 => 2e6,
            p if p < 60e9 => 4e6,
            _ => 2e6,
        };
        let c = Checkpoint { tokens: t.number(rec, steps_col, true)? * batch, loss: t.number(rec, ppl_col, true)? };
        add(&mut models, &size.to_lowercase(), params, c);
    }
    finish("OPT", &path, models)
}

/// Pile-T5: t5_pile.csv; tokens = steps * 1e6 (step 0 dropped), metric log2(val_perplexity),
/// parameter counts from the data README.
pub fn load_t5(dir: &Path) -> Result<Family> {
    const PARAMS: [(&str, f64); 4] = [("base", 247_586_304.0), ("large", 783_173_632.0), ("xl", 2_849_804_288.0), ("xxl", 11_135_426_560.0)];
    let path = dir.join("t5_pile.csv");
    let t = Table::read(&path)?;
    let (name_col, steps_col, ppl_col) = (t.column("model_name")?, t.column("steps")?, t.column("val_perplexity")?);
    let mut models = BTreeMap::new();
    for rec in &t.records {
        let name = t.text(rec, name_col)?.to_lowercase();
        let Some(&(_, params)) = PARAMS.iter().find(|(n, _)| *n == name) else {
            return Err(file_err(&path, format!("line {}, column {} (\"model_name\"): unknown model \"{name}\" (expected base, large, xl or xxl)", rec.0, name_col + 1)));
        };
        let steps = t.number(rec, steps_col, false)?;
        if steps <= 0.0 {
            continue;
        }
        let c = Checkpoint { tokens: steps * 1e6, loss: t.number(rec, ppl_col, true)?.log2() };
        add(&mut models, &name, params, c);
    }
    finish("Pile-T5", &path, models)
}

/// The three released families, in the order of the reference table.
pub fn load_families(dir: &Path) -> Result<Vec<Family>> {
    Ok(vec![load_gpt3(dir)?, load_opt(dir)?, load_t5(dir)?])
}
