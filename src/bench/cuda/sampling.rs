//! GPU bench cases for kernels/sampling.cu: one call (two or three launches) samples B rows of
//! (B, V) f32 logits with temperature 0.8 + top-k 50 + top-p 0.9 (the KERNELS.md target: <= 3x
//! one pass over the logits at B >= 64), with plain temperature, and with top-p alone. `.bytes(B * V * 4)` makes the ratio column "achieved / copy bandwidth" of
//! a single read of the logits. Compared with a simple sort-based GPU sampler run alongside
//! (`sort_sample_f32`: per-row bitonic sort in global scratch, then softmax / top-k / top-p / draw
//! on the sorted prefix; a weaker sort than CUB's segmented radix sort that PyTorch uses, so the
//! ratio flatters us), timed with fewer repeats because it is slow.
use super::{Case, Ctx, Row};
use crate::backend::cuda::CudaStorage;
use crate::backend::cuda::sampling as smp;
use crate::sample::SamplingParams;
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    // the target's configuration, then plain temperature (sample_mass) and top-p alone (the
    // multi-pass sample_row)
    let configs = [
        ("f32 T.8 k50 p.9", SamplingParams { temperature: 0.8, top_k: 50, top_p: 0.9, min_p: 0.0 }),
        ("f32 T1 plain", SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0 }),
        ("f32 T.8 p.9 (multi-pass)", SamplingParams { temperature: 0.8, top_k: 0, top_p: 0.9, min_p: 0.0 }),
    ];
    for v in ctx.size([128_256usize, 32_000], [1000, 300]) {
        for b in ctx.size([64usize, 256], [4, 9]) {
            let n = b * v;
            let sets = ctx.sets_for(n * 4);
            let x = ctx.rand_sets(n, DType::F32, sets, 31)?;
            let ids: Vec<u32> = (0..b as u32).collect();
            let shape = format!("B={b} V={v}");
            for (ci, (name, sp)) in configs.iter().enumerate() {
                let ps = vec![*sp; b];
                let prm = ctx.dev.upload(&smp::param_words(v, &ps, &ids))?;
                let out = ctx.dev.alloc(2 * b * 4)?;
                // correctness first: the launch must return valid ids
                let tokens = smp::sample(&x[0], v, &ps, 1, &ids, 0)?;
                if let Some(t) = tokens.iter().find(|&&t| t as usize >= v) {
                    return Err(crate::Error::Msg(format!("bench sample: token {t} >= V = {v}")));
                }
                let scratch = smp::Scratch::new(&ctx.dev, v, b, smp::any_plain(v, &ps))?;
                let ms = ctx.time_ms(|i| smp::launch(&x[i % sets], v, b, &prm, 1, i as u32, &out, &scratch))?;
                let case = Case::new("sample", name, shape.clone(), ms).bytes(n as f64 * 4.0);
                rows.push(ctx.finish(case));
                if ci > 0 {
                    continue;
                }
                // the one-block multi-pass kernel on the same rows (KILN_SAMPLE=rows), for the gain
                let rows_ms = ctx.time_ms(|i| smp::launch_on(&x[i % sets], v, b, &prm, 1, i as u32, &out, &scratch, false))?;
                let case = Case::new("sample", "vs one-block rows", shape.clone(), ms).bytes(n as f64 * 4.0).vs("one_block_rows", rows_ms);
                rows.push(ctx.finish(case));
                match sort_ms(ctx, &x, v, b, &prm) {
                    Ok(sort) => {
                        let case = Case::new("sample", "vs sort_based", shape.clone(), ms).bytes(n as f64 * 4.0).vs("sort_based", sort);
                        rows.push(ctx.finish(case));
                    }
                    Err(e) => eprintln!("bench sample: sort-based baseline failed: {e}"),
                }
            }
        }
    }
    Ok(rows)
}

/// Median ms of the sort-based baseline on the same inputs (5 repeats: it is slow).
fn sort_ms(ctx: &Ctx, x: &[CudaStorage], v: usize, b: usize, prm: &crate::backend::cuda::DevBuf) -> Result<f64> {
    let p2 = v.next_power_of_two();
    let (keys, ids, out) = (ctx.dev.alloc(b * p2 * 4)?, ctx.dev.alloc(b * p2 * 4)?, ctx.dev.alloc(b * 4)?);
    let few = Ctx { dev: ctx.dev.clone(), name: ctx.name.clone(), copy_gbps: ctx.copy_gbps, repeats: 5, tiny: ctx.tiny };
    let sets = x.len();
    few.time_ms(|i| smp::sort_baseline_launch(&x[i % sets], v, b, prm, 1, i as u32, &keys, &ids, &out))
}
