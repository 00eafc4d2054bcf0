//! report.json, report.md and the PNGs of a `linear-attn-learn` run.

use super::{Results, TeacherRow, OLS_TARGET};
use crate::report::plot::{line_plot_png, Series};
use crate::report::{markdown_table, RunDir};
use crate::Result;

fn e(v: f64) -> String {
    if v.is_finite() { format!("{v:.2e}") } else { "diverged".into() }
}

fn lg(v: f64) -> f64 {
    v.max(1e-30).log10()
}

fn steps(s: Option<usize>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn markdown(r: &Results, pngs: &[String]) -> String {
    let c = &r.checks;
    let yes = |b: bool| if b { "holds" } else { "does NOT hold" };
    let mut s = format!(
        "# linear-attn-learn: learning linear attention by least squares\n\n\
         Claim (Yau et al., \"Learning Linear Attention in Polynomial Time\"): multi-head linear attention \
         y_t = (1/sqrt d) sum_h V_h (sum_{{s<=t}} z_s z_s^T) Q_h z_t (heads **summed**, keys are the tokens, causal) is linear in \
         d^2(d+1)/2 folded cubic features, so ordinary least squares learns it exactly and an SVD of the unfolded \
         W (d^2 x d^2) gives heads back; when the features' second moment is full rank, every empirical-risk minimiser \
         computes the same function, so it generalises out of distribution.\n\n\
         **This run:** OLS reaches a largest test MSE / target variance of {} (target < {OLS_TARGET:.0e}: {}); heads recovered \
         from W reproduce the teacher on fresh inputs to {} ({}); the certificate separates generic from degenerate data \
         with the out-of-distribution error ({}).\n\n",
        e(c.max_ols_mse_rel),
        yes(c.ols_below_target),
        e(c.max_recovered_mse_rel),
        yes(c.recovered_below_target),
        yes(c.certificate_separates),
    );
    let tc = &r.config.train;
    s += &format!(
        "## 1. Random one-head teachers (T = {}, test on {} fresh sequences, all positions supervised)\n\n\
         OLS: minimum-norm least squares (faer SVD) on the folded features; `heads` = singular values of W kept (> 1e-8 x \
         the largest; the unfolded W is symmetrised over the index pair of S_t, which raises its rank: a one-head teacher comes back as up to d^2 heads computing the same function). Adam: \
         kiln autograd students, {} steps of {} sequences, lr {} warm-up + cosine, `steps` = first evaluated step with \
         test MSE / variance < {:.0e} (- = never).\n\n",
        r.config.t, r.config.n_test, tc.steps, tc.batch, tc.lr, tc.threshold
    );
    let ols: Vec<Vec<String>> = r
        .teachers
        .iter()
        .filter(|t| t.method == "ols")
        .map(|t| vec![t.d.to_string(), t.n.to_string(), e(t.test_mse_rel), t.recovered_mse_rel.map(e).unwrap_or_default(), t.heads.to_string(), t.w_rel_err.map(e).unwrap_or_default()])
        .collect();
    s += &markdown_table(&["d", "N", "OLS test MSE/var", "recovered heads MSE/var (fresh inputs)", "heads recovered", "|W - W_teacher| / |W_teacher|"], &ols);
    s += "\n### Adam students per head count (pooled over d, N and seeds)\n\n";
    let hs: Vec<Vec<String>> = r
        .adam_by_heads
        .iter()
        .map(|h| vec![h.heads.to_string(), h.layers.to_string(), format!("{}/{}", h.converged, h.runs), h.median_steps.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into()), e(h.median_test_mse_rel)])
        .collect();
    s += &markdown_table(&["heads", "layers", "converged", "median steps (converged runs)", "median final test MSE/var"], &hs);
    s += "\n### Every Adam run\n\n";
    let adam: Vec<Vec<String>> = r
        .teachers
        .iter()
        .filter(|t| t.method == "adam")
        .map(|t| vec![t.d.to_string(), t.n.to_string(), t.heads.to_string(), t.layers.to_string(), t.seed.to_string(), e(t.test_mse_rel), steps(t.steps)])
        .collect();
    s += &markdown_table(&["d", "N", "heads", "layers", "seed", "test MSE/var", "steps"], &adam);
    let (keys, dv, n_mem) = r.config.memory;
    let (states, symbols, n_dfa) = r.config.dfa;
    s += &format!(
        "\n## 2-3. Associative memory and a random automaton\n\n\
         memory: {keys} one-hot keys with N(0, I_{dv}) values in context, then the {keys} keys as queries (target: the value); \
         {n_mem} training sequences; accuracy = the nearest context value is the right one. \
         dfa: a fresh random DFA per sequence ({states} states, {symbols} symbols), its transition table in context as \
         [state | symbol | next] one-hot tokens, then every (state, symbol) as a query (target: the next state); {n_dfa} training \
         sequences; accuracy = argmax over next-state coordinates. Adam students: one layer, {} steps. OLS heads column: 0.\n\n",
        r.config.task_steps
    );
    let tasks: Vec<Vec<String>> = r.tasks.iter().map(|t| vec![t.task.clone(), t.method.clone(), t.heads.to_string(), e(t.test_mse_rel), format!("{:.3}", t.accuracy), steps(t.steps)]).collect();
    s += &markdown_table(&["task", "method", "heads", "test MSE/var", "accuracy", "steps"], &tasks);
    s += "\nCertificates of these training sets (one-hot tokens make many features coincide, so OLS returns the minimum-norm fit):\n\n";
    let tc: Vec<Vec<String>> = r.task_certificates.iter().map(|(n, c)| vec![n.clone(), format!("{}/{}", c.rank, c.features), e(c.lambda_min)]).collect();
    s += &markdown_table(&["task", "rank / features", "lambda_min"], &tc);
    s += "\n## 4. Certificate vs out-of-distribution error\n\n\
          One random one-head teacher; OLS trained on each data set; OOD test: tokens ~ N(1, 2^2 I). gaussian: z ~ N(0, I); \
          subspace: the last coordinate is always 0; collinear: every token of a sequence lies on one random line (tokens \
          span R^d across sequences, yet the features only reach the fully symmetric tensors). Rank counts eigenvalues of \
          (1/M) Psi^T Psi above 1e-9 x the largest; a lambda_min of order 1e-13 (of either sign) is a numerical zero. \
          Every data set is fitted in distribution; only the full-rank one pins the function down off it.\n\n";
    let cert: Vec<Vec<String>> = r
        .certificate
        .iter()
        .map(|c| vec![c.dataset.clone(), c.d.to_string(), c.n.to_string(), format!("{}/{}", c.rank, c.features), c.full_rank.to_string(), e(c.lambda_min), e(c.in_dist_mse_rel), e(c.ood_mse_rel)])
        .collect();
    s += &markdown_table(&["dataset", "d", "N", "rank / features", "full rank", "lambda_min", "in-distribution MSE/var", "OOD MSE/var"], &cert);
    s += "\n## Plots\n\n";
    for p in pngs {
        s += &format!("![{p}]({p})\n\n");
    }
    s
}

fn adam<'a>(r: &'a Results, f: impl Fn(&TeacherRow) -> bool + 'a) -> impl Iterator<Item = &'a TeacherRow> + 'a {
    r.teachers.iter().filter(move |t| t.method == "adam" && f(t))
}

/// Write report.json, the PNGs and report.md (last, so it only links files that exist).
pub fn write_report(dir: &RunDir, r: &Results) -> Result<()> {
    dir.write_json("report.json", r)?;
    let cfg = &r.config;
    let mut pngs = Vec::new();
    // Final test error vs heads, one line per (d, layers), median over N and seeds.
    let mut series = Vec::new();
    for &d in &cfg.dims {
        for &l in &cfg.layers {
            let points = cfg.heads.iter().map(|&h| (h as f64, lg(median(adam(r, |t| t.d == d && t.layers == l && t.heads == h).map(|t| t.test_mse_rel).collect())))).collect();
            series.push(Series { label: format!("Adam d={d}, {l} layer(s)"), points });
        }
    }
    dir.write_bytes("error_vs_heads.png", &line_plot_png("Adam students: final test error vs heads (median over N, seeds)", "heads", "log10 test MSE / variance", &series)?)?;
    pngs.push("error_vs_heads.png".to_string());
    // Test error vs N: OLS per d, Adam (1 layer, largest d) per head count.
    let mut series: Vec<Series> = cfg
        .dims
        .iter()
        .map(|&d| Series { label: format!("OLS d={d}"), points: r.teachers.iter().filter(|t| t.method == "ols" && t.d == d).map(|t| (t.n as f64, lg(t.test_mse_rel))).collect() })
        .collect();
    let dmax = cfg.dims.iter().copied().max().unwrap_or(0);
    let lmin = cfg.layers.iter().copied().min().unwrap_or(1);
    for &h in &cfg.heads {
        let points = cfg.ns.iter().map(|&n| (n as f64, lg(median(adam(r, |t| t.d == dmax && t.layers == lmin && t.heads == h && t.n == n).map(|t| t.test_mse_rel).collect())))).collect();
        series.push(Series { label: format!("Adam {h} heads, d={dmax}"), points });
    }
    dir.write_bytes("error_vs_n.png", &line_plot_png("Test error vs training sequences N", "N (sequences)", "log10 test MSE / variance", &series)?)?;
    pngs.push("error_vs_n.png".to_string());
    // Learning curves at the largest d and N, shallowest students, first seed.
    let nmax = cfg.ns.iter().copied().max().unwrap_or(0);
    let series: Vec<Series> = adam(r, |t| t.d == dmax && t.n == nmax && t.layers == lmin && t.seed == 0)
        .map(|t| Series { label: format!("{} heads", t.heads), points: t.curve.iter().map(|&(s, v)| (s as f64, lg(v))).collect() })
        .collect();
    if !series.is_empty() {
        dir.write_bytes("curves.png", &line_plot_png(&format!("Adam learning curves (d={dmax}, N={nmax}, {lmin} layer)"), "step", "log10 test MSE / variance", &series)?)?;
        pngs.push("curves.png".to_string());
    }
    dir.write_text("report.md", &markdown(r, &pngs))?;
    Ok(())
}
