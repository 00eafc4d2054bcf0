//! The `kiln` command line: one subcommand per job, parsing and calling the library, nothing else.
//! Errors print as one line (what, where, expected vs found) and exit non-zero.

use clap::{Parser, Subcommand};

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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
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
