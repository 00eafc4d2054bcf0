//! scripts/gpu-run.sh, the one command a lent GPU runs, rehearsed here with stand-ins: a fake
//! `nvidia-smi` (an H200), a fake parity-test binary that fails where told to, a fake `kiln` whose
//! bench writes rows from session 8's committed run (its `bench-report` is the real one), and a
//! fake PyTorch script. Checks what the GPU session depends on: every stage runs in order on the
//! staged kernel cache, the TMA
//! fallbacks (`KILN_TMA=c1`, then `off`; `KILN_LINATTN_WG=off`, `KILN_LINATTN_FUSED=off` with its test skipped) reach the later stages and the
//! summary, the A/B rows are tagged, and the closing report reads the results file back.
#![cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const RUN1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results/gpu-h200-2026-11-27-run1.jsonl");

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A staged .gpu/ (as gpu-check.sh leaves it) under a fresh folder; `tests` is the fake parity
/// binary's body. Returns (the folder, $OUT).
fn stage(name: &str, tests: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("kiln-gpu-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (bin, gpu) = (root.join("bin"), root.join("repo/.gpu"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&gpu).unwrap();
    write_exe(&bin.join("nvidia-smi"), "#!/bin/bash\nif [[ \"$*\" == *compute_cap* ]]; then echo 9.0; else echo 'NVIDIA H200, 580.159.04, 143771 MiB'; fi\n");
    write_exe(&gpu.join("cuda-tests"), &format!("#!/bin/bash\necho \"env KILN_TMA=${{KILN_TMA:-}} KILN_LINATTN_WG=${{KILN_LINATTN_WG:-}} GEMM=${{KILN_GEMM:-}} cache=$KILN_KERNEL_CACHE\" >&2\n{tests}\n"));
    // the kernel cache as gpu-check.sh stages it: a tarball of kernel-cache/
    std::fs::create_dir_all(gpu.join("kernel-cache")).unwrap();
    std::fs::write(gpu.join("kernel-cache/rope-compute_90-0.ptx"), ".version 9.0\n.target sm_90\n").unwrap();
    let tarball = gpu.join("kernel-cache.tar.gz");
    assert!(Command::new("tar").args(["-C", gpu.to_str().unwrap(), "-czf", tarball.to_str().unwrap(), "kernel-cache"]).status().unwrap().success());
    std::fs::remove_dir_all(gpu.join("kernel-cache")).unwrap();
    let kiln = env!("CARGO_BIN_EXE_kiln");
    write_exe(
        &gpu.join("kiln"),
        &format!(
            r#"#!/bin/bash
if [[ $1 == bench-report ]]; then shift; exec {kiln} bench-report "$@"; fi
if [[ $1 == bench ]]; then
  out=""; while [[ $# -gt 0 ]]; do [[ $1 == --jsonl ]] && out=$2; shift; done
  echo "bench env KILN_TMA=${{KILN_TMA:-}} KILN_LINATTN_WG=${{KILN_LINATTN_WG:-}} KILN_LINATTN_FUSED=${{KILN_LINATTN_FUSED:-}}" >&2
  grep '"op":"\(ceiling_copy\|gelu\|lora_fwd\)"' {RUN1} >> "$out"; echo "a table"; exit 0
fi
if [[ $1 == ttt-arc ]]; then echo "ttt-arc task kiln_x: 3 TTT tasks, 1.5s, 1000 train tokens/s"; exit 0; fi
exit 2
"#
        ),
    );
    std::fs::write(
        gpu.join("torch_gpu_baselines.py"),
        "import json, sys\nprint(json.dumps({'device': sys.argv[1], 'op': 'lora_fwd', 'variant': 'torch_3matmul_bf16', 'shape': 'N=4096 K=4096 M=4096 R=16', 'median_ms': 0.5, 'gbps': None, 'tflops': None, 'baseline': None, 'ratio': None}))\n",
    )
    .unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-run.sh"), gpu.join("run.sh")).unwrap();
    std::fs::copy(RUN1, gpu.join("previous.jsonl")).unwrap();
    std::fs::write(gpu.join("git_sha"), "0123456789abcdef\n").unwrap();
    let out = root.join("out");
    (root, out)
}

/// Run the staged script; its stdout and stderr together.
fn run(root: &Path, out: &Path) -> String {
    let path = format!("{}:{}", root.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new("bash")
        .arg(".gpu/run.sh")
        .current_dir(root.join("repo"))
        .env("PATH", path)
        .env("OUT", out)
        .env("TOTAL_S", "120")
        .output()
        .expect("bash runs");
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn every_stage_runs_in_order_and_the_report_closes_it() {
    let (root, out) = stage("ok", "echo 'test parity_a ... ok'; echo 'test parity_b ... ok'");
    let log = run(&root, &out);
    let order = ["== the TMA GEMM first", "== parity tests", "== bench ==", "== PyTorch on the same GPU", "== A/B", "== parity again with KILN_GEMM=mma", "== ttt-arc", "targets (this run):"];
    let at: Vec<usize> = order.iter().map(|s| log.find(s).unwrap_or_else(|| panic!("no {s:?} in:\n{log}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "stages out of order:\n{log}");
    // every stage reads the staged kernel cache, unpacked once
    assert!(root.join("repo/.gpu/kernel-cache/rope-compute_90-0.ptx").exists());
    let tests_log = std::fs::read_to_string(out.join("tests.log")).unwrap();
    assert!(tests_log.contains(&format!("cache={}", root.join("repo/.gpu/kernel-cache").display())), "{tests_log}");
    let s = summary(&out);
    assert_eq!((s["tests_passed"].as_i64(), s["tests_failed"].as_i64(), s["tma"].as_str()), (Some(2), Some(0), Some("on linattn-wgmma:on linattn-fused:on")), "{s}");
    // bench.jsonl: the bench's rows, the A/B rows tagged, PyTorch's, ttt-arc's, the summary last
    let text = std::fs::read_to_string(out.join("bench.jsonl")).unwrap();
    assert!(text.contains("gelu") && text.contains("[KILN_NORM=warp") && text.contains("torch_3matmul_bf16") && text.contains("ttt_arc_task"));
    assert!(text.trim_end().lines().last().unwrap().contains("\"git_sha\": \"0123456789abcdef\""));
    // the closing report: PyTorch's 0.5 ms LoRA against kiln's rows, and the rows against run 1
    assert!(log.contains("against .gpu/previous.jsonl") && log.contains("torch's 3 matmuls"), "{log}");
    assert!(log.contains("choices this run can settle") && log.contains("LoRA forward (follows the GEMM path)"), "the report names the defaults to set: {log}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn tma_and_wgmma_walk_failures_switch_them_off_for_every_later_stage() {
    // the clustered TMA GEMM fails (passes only under KILN_TMA=c1); both wgmma walks fail
    let tests = r#"if [[ "$*" == *parity_matmul_wgmma* && -z ${KILN_TMA:-} ]]; then echo 'test parity_matmul_wgmma ... FAILED'; exit 101; fi
if [[ ${KILN_LINATTN:-} == wgmma* ]]; then echo 'test parity_linear_attention_f32 ... FAILED'; exit 101; fi
if [[ "$*" == *"--skip parity_linear_attention_wgmma_fused"* ]]; then echo 'fused test skipped'; fi
echo 'test parity_a ... ok'"#;
    let (root, out) = stage("fallback", tests);
    let log = run(&root, &out);
    assert!(log.contains("tma tests without clusters exit code: 0") && log.contains("wgmma linear attention tests exit code: 101"), "{log}");
    assert!(log.contains("wgmma-fused linear attention tests exit code: 101"), "{log}");
    assert_eq!(summary(&out)["tma"].as_str(), Some("c1 linattn-wgmma:off linattn-fused:off"));
    assert!(log.contains("bench env KILN_TMA=c1 KILN_LINATTN_WG=off KILN_LINATTN_FUSED=off"), "the bench must run without what failed:\n{log}");
    let tests_log = std::fs::read_to_string(out.join("tests.log")).unwrap();
    assert!(tests_log.contains("test parity_a ... ok") && tests_log.contains("fused test skipped"), "{tests_log}");

    // both TMA paths fail: off
    let tests = r#"if [[ "$*" == *parity_matmul_wgmma* ]]; then echo 'test parity_matmul_wgmma ... FAILED'; exit 101; fi
echo 'test parity_a ... ok'"#;
    let (root2, out2) = stage("off", tests);
    let log = run(&root2, &out2);
    assert_eq!(summary(&out2)["tma"].as_str(), Some("off linattn-wgmma:on linattn-fused:on"), "{log}");
    std::fs::remove_dir_all(&root).ok();
    std::fs::remove_dir_all(&root2).ok();
}
