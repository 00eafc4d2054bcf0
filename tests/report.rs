//! src/report: atomic writes, Markdown tables, timestamps, PNG plots; and the `kiln bench`
//! baselines suite's correctness checks (run once; speed is never asserted).

use kiln::report::plot::{heatmaps_png, line_plot_png, Heatmap, Series};
use kiln::report::{markdown_table, utc_timestamp, write_atomic, RunDir};

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kiln-test-report-{}-{name}", std::process::id()))
}

#[test]
fn run_dir_writes_atomically_and_replaces_old_files() {
    let dir = RunDir::create(scratch("rundir").join("nested")).unwrap();
    dir.write_text("a.md", "old").unwrap();
    let p = dir.write_json("a.md", &serde_json::json!({"x": 1})).unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"x\": 1\n}\n");
    let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert_eq!(names, vec!["a.md".to_string()], "only the final file may remain");
    // Writing into a folder that does not exist fails with the path named, and leaves nothing.
    let bad = scratch("no-such-dir").join("x.json");
    let err = write_atomic(&bad, b"{}").unwrap_err().to_string();
    assert!(err.contains("x.json"), "{err}");
    std::fs::remove_dir_all(scratch("rundir")).ok();
}

#[test]
fn markdown_table_and_timestamp_have_the_expected_shape() {
    let t = markdown_table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
    assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    let ts = utc_timestamp();
    assert_eq!(ts.len(), 15, "{ts}");
    assert!(ts.starts_with("20") && ts.as_bytes()[8] == b'-', "{ts}");
}

#[test]
fn plots_render_to_png_and_refuse_bad_shapes() {
    let panel = Heatmap { title: "t".into(), row_labels: vec!["r0".into(), "r1".into()], col_labels: vec!["c0".into()], values: vec![Some(1.0), None] };
    let png = heatmaps_png("title", &[panel.clone(), panel.clone()], "x", "y").unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let bad = Heatmap { values: vec![Some(1.0)], ..panel };
    assert!(heatmaps_png("title", &[bad], "x", "y").is_err());
    let s = Series { label: "s".into(), points: vec![(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN)] };
    assert_eq!(&line_plot_png("t", "x", "y", &[s]).unwrap()[..4], b"\x89PNG");
    let empty = Series { label: "e".into(), points: vec![] };
    assert!(line_plot_png("t", "x", "y", &[empty]).is_err());
}

#[test]
fn bench_baselines_suite_checks_its_answers() {
    assert_eq!(kiln::bench::e2_grid().len(), 108);
    let timings = kiln::bench::run_suite("baselines", 1, Some("d,e2,f"), None).unwrap();
    assert_eq!(timings.iter().map(|t| t.id()).collect::<Vec<_>>(), ["d", "e2", "f"]);
    assert!(timings[2].check.contains("held-out accuracy"), "{}", timings[2].check);
    assert!(timings[0].check.contains("nucleus"), "{}", timings[0].check);
    let rows = kiln::bench::timings_json(&timings);
    assert_eq!(rows[1]["workload"], "e2");
    assert!(rows[1]["median_s"].as_f64().unwrap() > 0.0);
    assert!(kiln::bench::run_suite("nope", 1, None, None).is_err());
    let e = kiln::bench::run_suite("baselines", 1, Some("a,zz"), None).unwrap_err().to_string();
    assert!(e.contains("zz") && e.contains("b1"), "{e}");
}
