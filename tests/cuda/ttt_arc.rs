//! parity_ttt_arc_*: `kiln ttt-arc run` with an HF model directory (tests/fixtures/hf_llama, text
//! codec) end to end on the device: per-task LoRA TTT, augmented inference and voting. On the GPU
//! it must succeed, train every task's adapter with the CPU run's TTT losses (f32, 1e-3), and
//! write a submission in the ARC Prize form for the same tasks as the CPU run of the same command;
//! the greedy answers are compared and printed (they match on the emulated device; one flipped argmax on a GPU would
//! not be a bug, so that is reported rather than asserted).
use std::path::Path;
use std::process::Command;

// Relative to the repository root, where cargo test and the GPU machine's .gpu/run.sh both run.
const TASKS: &str = "tests/fixtures/arc_tasks_small.json";
const MODEL: &str = "tests/fixtures/hf_llama";

/// The kiln binary: KILN_BIN when set (.gpu/run.sh points it at the staged .gpu/kiln), else the
/// one cargo built beside this test.
fn kiln_bin() -> String {
    std::env::var("KILN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kiln").to_string())
}

fn run(device: &str, out: &Path) -> serde_json::Value {
    let r = Command::new(kiln_bin())
        .args(["ttt-arc", "run", "--tasks", TASKS, "--model", MODEL, "--scale", "tiny", "--device", device])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "ttt-arc run --device {device}: {}", String::from_utf8_lossy(&r.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("submission.json")).unwrap()).unwrap()
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_ttt_arc_hf_run_on_device() {
    super::setup();
    let dir = std::env::temp_dir().join(format!("kiln-ttt-arc-device-{}", std::process::id()));
    let (gpu_out, cpu_out) = (dir.join("cuda"), dir.join("cpu"));
    let (gpu, cpu) = (run("cuda", &gpu_out), run("cpu", &cpu_out));

    let (g, c) = (gpu.as_object().unwrap(), cpu.as_object().unwrap());
    let mut ids: Vec<&String> = g.keys().collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "both fixture tasks answered: {ids:?}");
    assert!(ids.iter().all(|id| c.contains_key(*id)), "same tasks on both devices");
    for (id, entries) in g {
        for e in entries.as_array().unwrap() {
            for k in ["attempt_1", "attempt_2"] {
                let grid: Vec<Vec<u8>> = serde_json::from_value(e[k].clone()).unwrap_or_else(|err| panic!("{id} {k}: {err}"));
                assert!(!grid.is_empty() && grid.iter().all(|r| !r.is_empty() && r.len() == grid[0].len()), "{id} {k}: {grid:?}");
                assert!(grid.iter().flatten().all(|&x| x <= 9), "{id} {k}: colours 0..9");
            }
        }
    }
    // TTT ran on the device, from the same data and weights as on the CPU: same TTT sets and
    // steps, and the same training losses up to f32 rounding.
    let (rg, rc) = (report(&gpu_out), report(&cpu_out));
    let (tg, tc) = (rg["tasks"].as_array().unwrap(), rc["tasks"].as_array().unwrap());
    assert_eq!(tg.len(), tc.len());
    for (a, b) in tg.iter().zip(tc) {
        assert_eq!(a["id"], b["id"]);
        assert!(a["ttt_tasks"].as_u64().unwrap() > 0 && a["ttt_steps"].as_u64().unwrap() > 0, "TTT on the device: {a}");
        assert_eq!((&a["ttt_tasks"], &a["ttt_steps"]), (&b["ttt_tasks"], &b["ttt_steps"]));
        for k in ["ttt_loss_first_epoch", "ttt_loss_last_epoch"] {
            let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
            assert!(x.is_finite() && (x - y).abs() <= 1e-3 * y.abs().max(1.0), "{k}: device {x} vs cpu {y} ({a})");
        }
    }
    println!("ttt-arc on the device: submission {} the CPU's", if gpu == cpu { "identical to" } else { "differs from" });
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kiln ttt-arc reproduce --scale tiny` with stage 1 trained on the device too (from scratch,
/// the grid codec): the same held-out tasks, TTT sets and steps as on the CPU, and TTT losses
/// within 1e-3 (stage 1's few f32 steps leave the base models that close).
#[test]
#[ignore = "needs a CUDA device"]
fn parity_ttt_arc_reproduce_on_device() {
    super::setup();
    let dir = std::env::temp_dir().join(format!("kiln-ttt-arc-reproduce-{}", std::process::id()));
    let reproduce = |device: &str| {
        let out = dir.join(device);
        let r = Command::new(kiln_bin()).args(["ttt-arc", "reproduce", "--scale", "tiny", "--device", device, "--out", out.to_str().unwrap()]).output().unwrap();
        assert!(r.status.success(), "ttt-arc reproduce --device {device}: {}", String::from_utf8_lossy(&r.stderr));
        report(&out)
    };
    let (rg, rc) = (reproduce("cuda"), reproduce("cpu"));
    let (tg, tc) = (rg["tasks"].as_array().unwrap(), rc["tasks"].as_array().unwrap());
    assert!(!tg.is_empty() && tg.len() == tc.len(), "{} vs {} tasks", tg.len(), tc.len());
    for (a, b) in tg.iter().zip(tc) {
        assert_eq!((&a["id"], &a["ttt_tasks"], &a["ttt_steps"]), (&b["id"], &b["ttt_tasks"], &b["ttt_steps"]));
        for k in ["ttt_loss_first_epoch", "ttt_loss_last_epoch"] {
            let (x, y) = (a[k].as_f64().unwrap(), b[k].as_f64().unwrap());
            assert!(x.is_finite() && (x - y).abs() <= 1e-3 * y.abs().max(1.0), "{k}: device {x} vs cpu {y} ({a})");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
