//! Learning-rate schedules as a pure function of the step (so resuming needs only the step).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    Constant,
    /// linear warmup from 0 over `warmup` steps, then cosine decay to `min_ratio` x lr at `total`
    WarmupCosine { warmup: usize, total: usize, min_ratio: f64 },
    /// linear warmup, then linear decay to 0 at `total`
    WarmupLinear { warmup: usize, total: usize },
}

impl Schedule {
    /// Multiplier on the base learning rate at `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        let warm = |w: usize| if w > 0 && step < w { (step + 1) as f64 / w as f64 } else { 1.0 };
        match *self {
            Schedule::Constant => 1.0,
            Schedule::WarmupCosine { warmup, total, min_ratio } => {
                if step < warmup {
                    return warm(warmup);
                }
                let t = ((step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64).min(1.0);
                min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            Schedule::WarmupLinear { warmup, total } => {
                if step < warmup {
                    return warm(warmup);
                }
                1.0 - ((step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64).min(1.0)
            }
        }
    }
}
