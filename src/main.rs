//! The `kiln` command line: one subcommand per job, parsing and calling the library, nothing else.
//! Errors print as one line (what, where, expected vs found) and exit non-zero.

use clap::{Parser, Subcommand};
use kiln::methods::{self, scaling_laws, Scale};
use kiln::report::RunDir;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "kiln", version, about = "A minimal engine for language-model research")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version, CPU threads and the CUDA devices found (none is not an error).
    Info,
    /// Run every registered method at one scale and write an index page linking their reports.
    Repro {
        /// tiny (seconds), small (the CPU reproduction) or paper.
        #[arg(long, default_value = "tiny")]
        scale: Scale,
        /// Output folder (default runs/repro/<UTC timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The shared data folder; each method reads its subfolder (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Scaling-law estimation (Choshen, Zhang & Andreas 2024).
    #[command(name = "scaling-laws", subcommand)]
    ScalingLaws(ScalingLawsCommand),
    /// Timed workloads; `--suite baselines` runs e2 and f of ../shared/baselines.
    Bench {
        #[arg(long, default_value = "baselines")]
        suite: String,
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// A torch_cpu_baselines.py --json file from the same sitting, to print ratios.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ScalingLawsCommand {
    /// Reproduce the published ARE table (GPT-3, OPT, Pile-T5) and the two design claims.
    Reproduce {
        /// The released data folder (default ../shared/data/scaling-laws).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output folder (default runs/scaling-laws/<UTC timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// tiny: least squares only; small: + Huber from 32 starts; paper: + Huber from the 1024-start grid.
        #[arg(long, default_value = "small")]
        scale: Scale,
    },
    /// Fit your own runs: a CSV with columns model, params, tokens, loss (one row per checkpoint).
    Fit {
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Repro { scale, out, data } => repro(scale, out, data),
        Command::ScalingLaws(cmd) => scaling(cmd),
        Command::Bench { suite, repeats, baseline } => {
            kiln::bench::run_suite(&suite, repeats, baseline.as_deref()).map(|t| print!("{}", kiln::bench::format_timings(&t)))
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn repro(scale: Scale, out: Option<PathBuf>, data: Option<PathBuf>) -> kiln::Result<()> {
    let out = out.unwrap_or_else(|| RunDir::default_path("repro"));
    let entries = methods::repro(scale, &out, data.as_deref())?;
    for e in entries.iter().filter_map(|e| e.report.as_ref()) {
        println!("{}: {}", e.method, e.headline);
    }
    println!("index: {}", out.join("index.md").display());
    Ok(())
}

fn scaling(cmd: ScalingLawsCommand) -> kiln::Result<()> {
    match cmd {
        ScalingLawsCommand::Reproduce { data, out, scale } => {
            let out = out.unwrap_or_else(|| RunDir::default_path(scaling_laws::NAME));
            let report = scaling_laws::run(&methods::scaling_laws_config(scale, data), &out)?;
            println!("{}\nreport: {}", report.headline, out.join("report.md").display());
            Ok(())
        }
        ScalingLawsCommand::Fit { data } => {
            let fit = scaling_laws::fit_csv(&data, scaling_laws::HuberGrid::Published)?;
            print!("{}", scaling_laws::fit_summary(&fit));
            Ok(())
        }
    }
}

fn info() -> kiln::Result<()> {
    println!("kiln {}", env!("CARGO_PKG_VERSION"));
    println!("cpu threads: {} (rayon; set RAYON_NUM_THREADS to change)", rayon::current_num_threads());
    println!("cuda feature: {}", if cfg!(feature = "cuda") { "on" } else { "off" });
    match kiln::backend::cuda::devices() {
        Ok(devs) if devs.is_empty() => println!("cuda devices: none (the driver loaded but reports no device)"),
        Ok(devs) => {
            println!("cuda devices: {}", devs.len());
            for d in devs {
                let (maj, min) = d.compute_capability;
                println!("  cuda:{} {} (sm_{maj}{min}, {:.1} GiB)", d.ordinal, d.name, d.total_mem_bytes as f64 / (1u64 << 30) as f64);
            }
        }
        Err(e) => println!("cuda devices: none ({e})"),
    }
    Ok(())
}
