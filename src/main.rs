//! The `kiln` command line: one subcommand per job, parsing and calling the library, nothing else.
//! Errors print as one line (what, where, expected vs found) and exit non-zero.

use clap::{Parser, Subcommand};
use kiln::io::hf;
use kiln::methods::{self, Scale};
use kiln::nn::LoraConfig;
use kiln::model::GenerateOptions;
use kiln::report::RunDir;
use kiln::sample::SamplingParams;
use kiln::train::{self, Precision, RunConfig};
use kiln::tensor::Device;
use std::path::{Path, PathBuf};

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
        /// Output folder (default: a new UTC-timestamped folder under runs/repro/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The shared data folder; each method reads its subfolder (default ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Train a model from a run config (model, data, train; see configs/*.json).
    Train {
        /// The run config (JSON with "model", "data" and "train" sections).
        #[arg(long)]
        config: PathBuf,
        /// Fine-tune this HF model directory: replaces the config's model section with its
        /// config.json, starts from its weights, tokenizes text data with its tokenizer.json.
        #[arg(long)]
        model: Option<PathBuf>,
        /// With --model: train LoRA adapters on these projections (comma-separated: q,k,v,o,gate,up,down);
        /// the adapter is saved in PEFT's format under OUT/adapter.
        #[arg(long, requires = "model", value_delimiter = ',')]
        lora: Vec<String>,
        #[arg(long, default_value_t = 8)]
        lora_rank: usize,
        #[arg(long, default_value_t = 16.0)]
        lora_alpha: f64,
        /// Rank-stabilised LoRA: scale alpha / sqrt(r) instead of alpha / r.
        #[arg(long)]
        rslora: bool,
        /// Output folder: metrics.jsonl and checkpoints/ (default: a new UTC-timestamped folder under runs/train/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue from a checkpoint (a step-* folder, or a run folder: its newest checkpoint).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Override train.steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Override train.lr.
        #[arg(long)]
        lr: Option<f64>,
        /// Override train.seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to train: cpu, cuda, cuda:N or auto.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Override train.dtype (default f32): f32, or bf16 = mixed precision on CUDA (bf16
        /// weights and activations, f32 master weights, optimizer state and loss).
        #[arg(long)]
        dtype: Option<String>,
    },
    /// Mean loss and next-token accuracy of a checkpoint on its held-out data.
    Eval {
        /// A step-* checkpoint folder, or a run folder (its newest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Stop after this many batches (0 = all).
        #[arg(long, default_value_t = 0)]
        max_batches: usize,
    },
    /// Continue a prompt with a trained checkpoint or an HF model directory (greedy unless
    /// sampling flags are given).
    Generate {
        #[arg(long, required_unless_present = "model", conflicts_with = "model")]
        checkpoint: Option<PathBuf>,
        /// An HF model directory (config.json, safetensors, tokenizer.json) instead of a checkpoint.
        #[arg(long)]
        model: Option<PathBuf>,
        /// A PEFT LoRA adapter directory to apply on top of --model.
        #[arg(long, requires = "model")]
        adapter: Option<PathBuf>,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 32)]
        max_new_tokens: usize,
        /// Sampling temperature (0 = greedy; any sampling flag without it means 1.0).
        #[arg(long)]
        temperature: Option<f32>,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        top_p: Option<f32>,
        #[arg(long)]
        min_p: Option<f32>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print {"prompt_ids", "new_ids", "completion"} as JSON instead of the text.
        #[arg(long)]
        json: bool,
    },
    /// Load an HF model directory (and adapter) and describe it: a quick check that kiln reads it.
    #[command(name = "hf-info")]
    HfInfo {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Also run the model on this text (tokenized with special tokens) ...
        #[arg(long, requires = "logits_out")]
        prompt: Option<String>,
        /// ... and write `input_ids` (1, T) and `logits` (1, T, V) to this safetensors file.
        #[arg(long, requires = "prompt")]
        logits_out: Option<PathBuf>,
    },
    /// Write a kiln checkpoint's model as an HF model directory (and its LoRA as a PEFT adapter).
    #[command(name = "hf-export")]
    HfExport {
        /// A step-* checkpoint folder, or a run folder (its newest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Copy tokenizer.json / tokenizer_config.json from this directory.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
    /// Scaling-law estimation (Choshen, Zhang & Andreas 2024).
    #[command(name = "scaling-laws", subcommand)]
    ScalingLaws(methods::scaling_laws::cli::ScalingLawsCommand),
    /// Intruder dimensions: LoRA vs full fine-tuning, by SVD (Shuttleworth et al.).
    #[command(subcommand)]
    Intruders(methods::intruders::cli::IntrudersCommand),
    /// Test-time training for ARC (Akyürek et al.): stage-1 fine-tune, per-task LoRA, augmented voting.
    #[command(name = "ttt-arc", subcommand)]
    TttArc(methods::ttt_arc::cli::TttArcCommand),
    /// Learning linear attention by least squares (Yau et al.): OLS vs Adam, certificate.
    #[command(name = "linear-attn-learn")]
    LinearAttnLearn(methods::linear_attn_learn::cli::LinearAttnLearnArgs),
    /// Random transformers: embedding-only vs full training, accuracy vs width (Zhong & Andreas 2024).
    RandomTransformers(methods::random_transformers::cli::RandomTransformersArgs),
    /// Random-label forgetting: task x task accuracy, probes, correlations (Zhang, Choshen & Andreas 2024).
    Forgetting(methods::forgetting::cli::ForgettingArgs),
    /// Adaptive computation: best-of-b budgets and routing by a hidden-state probe (Damani et al. 2024).
    #[command(name = "adaptive-compute")]
    AdaptiveCompute(methods::adaptive_compute::cli::AdaptiveComputeArgs),
    /// ALGAE: reward features grown from contrasts, weights by max-ent IRL, held-out regret (Peng et al. 2024).
    Algae(methods::algae::cli::AlgaeArgs),
    /// ERASE: a fact base edited by every document vs append-only RAG on a changing world (Li et al. 2024).
    Erase(methods::erase::cli::EraseArgs),
    /// MisinfoEval: label, explanation and personalised interventions on a simulated feed, by persona (Gabriel et al. 2024).
    #[command(name = "misinfo-eval")]
    MisinfoEval(methods::misinfo_eval::cli::MisinfoEvalArgs),
    /// Timed workloads; `--suite baselines` runs a, b1-b3, c, d, e1, e2, f of ../shared/baselines on the CPU;
    /// `--device cuda` times every GPU kernel family with the card's ceilings and cuBLAS.
    Bench {
        #[arg(long, default_value = "baselines")]
        suite: String,
        /// `cpu` (the suites above) or `cuda` / `cuda:N` (kernel timings).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Only these: CPU workload ids (e.g. a,d) or, with --device cuda, kernel families (e.g. matmul,norm).
        #[arg(long)]
        only: Option<String>,
        /// With --device cuda: append one JSON row per measurement to this file.
        #[arg(long)]
        jsonl: Option<PathBuf>,
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// A torch_cpu_baselines.py --json file from the same sitting, to print ratios.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// CPU suites: also write the timings as JSON rows to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Compile the CUDA kernels into the on-disk PTX cache (KILN_KERNEL_CACHE, else
    /// ~/.cache/kiln/kernels) ahead of a run, for a GPU of compute capability --cc (needs NVRTC,
    /// not a GPU).
    CompileKernels {
        /// Compute capability, e.g. 9.0 (H100/H200: the sm_90a families too) or 8.0.
        #[arg(long, default_value = "9.0")]
        cc: String,
        /// Only these families (e.g. matmul_sm90,sampling).
        #[arg(long)]
        only: Option<String>,
    },
    /// Read a `kiln bench --device cuda` results file back (bench/results/*.jsonl, PyTorch's rows
    /// and the summary line included): the issues' targets, the run's A/B rows, and with --against
    /// every row beside an earlier run's.
    BenchReport {
        /// The results file (JSONL).
        results: PathBuf,
        /// An earlier results file to compare every row with (same op, variant and shape).
        #[arg(long)]
        against: Option<PathBuf>,
        /// Also draw the memory-bound rows against their targets (memory-bound.png) and, with
        /// --against, every row's speedup (speedup.png) into this folder.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

fn main() {
    kiln::backend::cpu::alloc::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Repro { scale, out, data } => repro(scale, out, data),
        Command::ScalingLaws(cmd) => cmd.run(),
        Command::RandomTransformers(args) => args.run(),
        Command::Forgetting(args) => args.run(),
        Command::AdaptiveCompute(args) => args.run(),
        Command::Algae(args) => args.run(),
        Command::Erase(args) => args.run(),
        Command::MisinfoEval(args) => args.run(),
        Command::LinearAttnLearn(args) => args.run(),
        Command::Intruders(cmd) => cmd.run(),
        Command::TttArc(cmd) => cmd.run(),
        Command::Train { config, model, lora, lora_rank, lora_alpha, rslora, out, resume, steps, lr, seed, device, dtype } => {
            let lora = (!lora.is_empty()).then_some(LoraConfig { rank: lora_rank, alpha: lora_alpha, rslora, targets: lora });
            let dtype = dtype.map(|s| s.parse::<Precision>()).transpose();
            dtype.and_then(|dt| device.parse::<Device>().and_then(|d| train(&config, model.as_deref(), lora, out, resume, steps, lr, seed, dt, d)))
        }
        Command::HfInfo { model, adapter, prompt, logits_out } => hf_info(&model, adapter.as_deref(), prompt.as_deref().zip(logits_out.as_deref())),
        Command::HfExport { checkpoint, out, tokenizer } => hf_export(&checkpoint, &out, tokenizer.as_deref()),
        Command::Eval { checkpoint, batch_size, max_batches } => eval(&checkpoint, batch_size, max_batches),
        Command::Generate { checkpoint, model, adapter, prompt, max_new_tokens, temperature, top_k, top_p, min_p, seed, json } => {
            let any = top_k.is_some() || top_p.is_some() || min_p.is_some();
            let params = match temperature {
                None if !any => SamplingParams::greedy(),
                t => SamplingParams { temperature: t.unwrap_or(1.0), top_k: top_k.unwrap_or(0), top_p: top_p.unwrap_or(1.0), min_p: min_p.unwrap_or(0.0) },
            };
            match (checkpoint, model) {
                (_, Some(dir)) => generate_hf(&dir, adapter.as_deref(), &prompt, max_new_tokens, params, seed, json),
                (Some(ckpt), None) => generate(&ckpt, &prompt, max_new_tokens, params, seed, json),
                (None, None) => Err(kiln::Error::Msg("generate: give --checkpoint or --model".into())),
            }
        }
        Command::Bench { suite, device, only, jsonl, repeats, baseline, json } => match device.parse::<Device>() {
            Ok(Device::Cpu) => kiln::bench::run_suite(&suite, repeats, only.as_deref(), baseline.as_deref()).and_then(|t| {
                print!("{}", kiln::bench::format_timings(&t));
                match json {
                    Some(p) => kiln::io::checkpoint::write_atomic(&p, format!("{:#}\n", kiln::bench::timings_json(&t)).as_bytes()),
                    None => Ok(()),
                }
            }),
            Ok(Device::Cuda(i)) => kiln::bench::cli::bench_cuda(i, repeats.max(20), only.as_deref(), jsonl.as_deref()),
            Err(e) => Err(e),
        },
        Command::BenchReport { results, against, plot } => kiln::bench::cli::bench_report(&results, against.as_deref(), plot.as_deref()),
        Command::CompileKernels { cc, only } => kiln::bench::cli::compile_kernels(&cc, only.as_deref()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_arguments)]
fn train(config: &std::path::Path, model: Option<&Path>, lora: Option<LoraConfig>, out: Option<PathBuf>, resume: Option<PathBuf>, steps: Option<usize>, lr: Option<f64>, seed: Option<u64>, dtype: Option<Precision>, device: Device) -> kiln::Result<()> {
    let text = std::fs::read_to_string(config).map_err(|e| kiln::Error::File { path: config.display().to_string(), detail: format!("cannot read: {e}") })?;
    let mut cfg = match model {
        Some(dir) => RunConfig::from_json_for_hf(&text, &config.display().to_string(), dir, lora)?,
        None => RunConfig::from_json(&text, &config.display().to_string())?,
    };
    if let Some(s) = steps {
        cfg.train.steps = s;
    }
    if let Some(l) = lr {
        cfg.train.lr = l;
    }
    if let Some(s) = seed {
        cfg.train.seed = s;
    }
    if let Some(d) = dtype {
        cfg.train.dtype = d;
    }
    let out = match (out, &resume) {
        (Some(o), _) => o,
        (None, Some(r)) => run_dir_of(r),
        (None, None) => RunDir::default_path("train"),
    };
    let summary = train::run_training_on(&cfg, &out, resume.as_deref(), device)?;
    let last = summary.steps.last().map(|s| format!("step {} loss {:.4}", s.step, s.loss)).unwrap_or_else(|| "no steps".into());
    println!("{last}; held-out loss {:.4}, accuracy {:.4}; {} skipped step(s)", summary.eval.loss, summary.eval.accuracy, summary.skipped);
    println!("metrics: {}", out.join("metrics.jsonl").display());
    if let Some(c) = summary.checkpoint {
        println!("checkpoint: {}", c.display());
    }
    if cfg.train.init_from.is_some() && cfg.model.lora.is_some() {
        println!("adapter: {}", out.join("adapter").display());
    }
    Ok(())
}

/// A resumed run writes into the run folder that holds the checkpoint (.../run/checkpoints/step-N).
fn run_dir_of(ckpt: &std::path::Path) -> PathBuf {
    match ckpt.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "checkpoints") => p.parent().unwrap_or(p).to_path_buf(),
        _ => ckpt.to_path_buf(),
    }
}

fn eval(checkpoint: &std::path::Path, batch_size: usize, max_batches: usize) -> kiln::Result<()> {
    let r = train::run_eval(checkpoint, None, batch_size, max_batches)?;
    println!("loss {:.4} (nats per target token), accuracy {:.4}, over {} tokens in {} examples", r.loss, r.accuracy, r.tokens, r.examples);
    Ok(())
}

fn generate(checkpoint: &std::path::Path, prompt: &str, max_new_tokens: usize, params: SamplingParams, seed: u64, json: bool) -> kiln::Result<()> {
    let (model, state) = train::load_checkpoint(checkpoint)?;
    let ids = state.tokenizer.encode(prompt)?;
    let opts = GenerateOptions { max_new_tokens, params: vec![params], stop_tokens: vec![], seed };
    let g = model.generate(&[ids], &opts)?.remove(0);
    let completion = state.tokenizer.decode(&g.new_ids)?;
    if json {
        println!("{}", serde_json::json!({"prompt_ids": g.prompt_ids, "new_ids": g.new_ids, "completion": completion}));
    } else {
        println!("{prompt}{completion}");
    }
    Ok(())
}

fn generate_hf(dir: &Path, adapter: Option<&Path>, prompt: &str, max_new_tokens: usize, params: SamplingParams, seed: u64, json: bool) -> kiln::Result<()> {
    let (mut model, _) = hf::load_model(dir)?;
    if let Some(a) = adapter {
        hf::load_adapter(&mut model, a)?;
    }
    let tok = hf::HfTokenizer::load(dir)?;
    let ids = tok.encode(prompt, true)?;
    let opts = GenerateOptions { max_new_tokens, params: vec![params], stop_tokens: tok.eos_ids.clone(), seed };
    let g = model.generate(&[ids], &opts)?.remove(0);
    let completion = tok.decode(&g.new_ids, true)?;
    if json {
        println!("{}", serde_json::json!({"prompt_ids": g.prompt_ids, "new_ids": g.new_ids, "completion": completion, "finish": g.finish}));
    } else {
        println!("{prompt}{completion}");
    }
    Ok(())
}

fn hf_info(dir: &Path, adapter: Option<&Path>, logits: Option<(&str, &Path)>) -> kiln::Result<()> {
    let t0 = std::time::Instant::now();
    let (mut model, info) = hf::load_model(dir)?;
    let c = &model.cfg;
    println!("{}: model_type {}, dtype {}, {} parameters", dir.display(), info.model_type, info.dtype.as_deref().unwrap_or("unstated"), model.param_count());
    println!("  vocab {}, d_model {}, {} layers, {} heads ({} kv), d_ff {}, max_seq_len {}, rope_theta {}, rope_scaling {:?}, tied {}", c.vocab_size, c.d_model, c.n_layers, c.n_heads, c.kv_heads(), c.ff(), c.max_seq_len, c.rope_theta, c.rope_scaling, c.tie_embeddings);
    if let Some(a) = adapter {
        let pc = hf::load_adapter(&mut model, a)?;
        println!("  adapter {}: r {}, alpha {}, rslora {}, targets {:?}", a.display(), pc.r, pc.lora_alpha, pc.use_rslora, pc.targets);
    }
    if dir.join("tokenizer.json").is_file() {
        let tok = hf::HfTokenizer::load(dir)?;
        println!("  tokenizer: vocab {}, bos {:?}, eos {:?}", tok.vocab_size(), tok.bos_id, tok.eos_ids);
    }
    println!("  loaded in {:.2} s", t0.elapsed().as_secs_f64());
    if let Some((text, out)) = logits {
        let ids = hf::HfTokenizer::load(dir)?.encode(text, true)?;
        let ids = kiln::Tensor::from_vec_u32(ids.clone(), [1, ids.len()])?;
        let logits = {
            let _ng = kiln::no_grad();
            model.forward(&ids, 0, None)?
        };
        let tensors = [("input_ids".to_string(), ids), ("logits".to_string(), logits)];
        kiln::io::checkpoint::save_safetensors(out, &tensors, &Default::default())?;
        println!("  logits: {}", out.display());
    }
    Ok(())
}

fn hf_export(checkpoint: &Path, out: &Path, tokenizer: Option<&Path>) -> kiln::Result<()> {
    let (model, _) = train::load_checkpoint(checkpoint)?;
    // BOS/EOS from the tokenizer's model directory when it has a config.json
    let mut info = hf::HfInfo { model_type: "llama".into(), dtype: Some("float32".into()), bos_token_id: None, eos_token_ids: vec![] };
    if let Some(t) = tokenizer.filter(|t| t.join("config.json").is_file()) {
        let (_, src) = hf::read_config(t)?;
        (info.bos_token_id, info.eos_token_ids) = (src.bos_token_id, src.eos_token_ids);
    }
    hf::save_model(&model, &info, out, tokenizer)?;
    println!("model: {}", out.display());
    if model.cfg.lora.is_some() {
        hf::save_adapter(&model, &out.join("adapter"), Some(&out.display().to_string()))?;
        println!("adapter: {}", out.join("adapter").display());
    }
    Ok(())
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
