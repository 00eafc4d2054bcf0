//! The paper's four claims (METHODS.md §2), each judged on the experiment's numbers, for report.md
//! and report.json: what was compared, and whether it shows at this scale.

use super::analyze::eps_key;
use super::experiment::{Experiment, RunResult};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    pub claim: String,
    pub shown: bool,
    pub numbers: String,
}

fn find<'a>(e: &'a Experiment, method: &str, rank: Option<usize>) -> Option<&'a RunResult> {
    let mut runs = e.runs.iter().filter(|r| r.method == method);
    match rank {
        Some(r) => runs.find(|x| x.rank == r),
        None => runs.max_by_key(|x| x.rank),
    }
}

/// Judge the claims at threshold `eps`; runs missing from the experiment are skipped.
pub fn judge(e: &Experiment, eps: f64) -> Vec<Claim> {
    let key = eps_key(eps);
    let n = |r: &RunResult| r.intruders_eps[&key];
    let mut out = Vec::new();
    let Some(full) = find(e, "full", Some(0)) else { return out };
    let low = e.runs.iter().filter(|r| r.method == "lora").min_by_key(|r| r.rank);
    if let Some(low) = low {
        out.push(Claim {
            claim: format!("low-rank LoRA (r={}) has more intruders than full fine-tuning", low.rank),
            shown: n(low) > n(full),
            numbers: format!("eps {key}: LoRA r={} {} vs full {}", low.rank, n(low), n(full)),
        });
    }
    if let Some(rs) = find(e, "rslora", None) {
        let lo = e.runs.iter().filter(|r| r.method == "lora").map(n).min().unwrap_or(0);
        out.push(Claim {
            claim: format!("high-rank rsLoRA (r={}) looks like full fine-tuning (fewer intruders than any plain LoRA run)", rs.rank),
            shown: n(rs) < lo,
            numbers: format!("eps {key}: rsLoRA r={} {}, full {}, fewest among LoRA runs {lo}", rs.rank, n(rs), n(full)),
        });
    }
    // Forgetting at (roughly) matched task accuracy: LoRA runs within 0.05 of full's accuracy.
    let matched: Vec<&RunResult> = e.runs.iter().filter(|r| r.method == "lora" && (r.task_acc - full.task_acc).abs() <= 0.05).collect();
    if !matched.is_empty() {
        let worse = matched.iter().filter(|r| r.pretrain_loss > full.pretrain_loss).count();
        out.push(Claim {
            claim: "LoRA forgets more than full fine-tuning at equal task accuracy (higher pre-training loss)".into(),
            shown: worse == matched.len(),
            numbers: format!(
                "full: acc {:.3}, loss {:.3}; {}",
                full.task_acc,
                full.pretrain_loss,
                matched.iter().map(|r| format!("LoRA r={}: acc {:.3}, loss {:.3}", r.rank, r.task_acc, r.pretrain_loss)).collect::<Vec<_>>().join("; ")
            ),
        });
    }
    let at = |l: f64| e.scale_down.iter().find(|s| (s.lambda - l).abs() < 1e-9);
    if let (Some(one), Some(half)) = (at(1.0), at(0.5)) {
        let (dl, da) = (one.pretrain_loss - half.pretrain_loss, one.task_acc - half.task_acc);
        out.push(Claim {
            claim: "scaling intruders down (lambda 0.5) reduces forgetting at a small task cost (< 0.1 accuracy)".into(),
            shown: dl > 0.0 && da < 0.1,
            numbers: format!("pre-training loss {:.3} -> {:.3}, task accuracy {:.3} -> {:.3}", one.pretrain_loss, half.pretrain_loss, one.task_acc, half.task_acc),
        });
    }
    out
}
