//! GPU bench cases for kernels/linear_attention.cu: the chunked forward at BH = 64, T = 4096,
//! D = 128 against the copy ceiling (q, k, v read once, o written once) and against kiln's own
//! unfused composition (Tensor::linear_attention_unfused), and forward + backward
//! against the forward alone; the sequential (run-1) kernel's forward against the default one, and
//! for bf16 the CUDA-core kernels and the unsplit tensor-core walk against the default tensor-core
//! one (kernels/linear_attention_tc.cu, split into segments when the heads are few), and on an
//! sm_90 the wgmma walks (kernels/linear_attention_wg.cu: three launches, and fused into one) as
//! their own "linear_attention_fwd" rows; then every walk at fixed segment counts, to check the
//! planner's choices (`segments`).
use super::{Case, Ctx, Row};
use crate::backend::cuda::linear_attention_tc as tc;
use crate::backend::cuda::CudaStorage;
use crate::backend::Storage;
use crate::tensor::Tensor;
use crate::backend::cuda::linear_attention as la;
use crate::backend::LinAttnDims;
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let (bh, t, dh) = ctx.size((64usize, 4096usize, 128usize), (2, 200, 128));
    let d = LinAttnDims { bh, t, dk: dh, dv: dh };
    for dt in [DType::F32, DType::BF16] {
        let len = bh * t * dh;
        let es = dt.size_in_bytes();
        let sets = ctx.sets_for(3 * len * es);
        let q = ctx.rand_sets(len, dt, sets, 21)?;
        let k = ctx.rand_sets(len, dt, sets, 22)?;
        let v = ctx.rand_sets(len, dt, sets, 23)?;
        let dout = ctx.rand_sets(len, dt, sets, 24)?;
        let shape = format!("BH={bh} T={t} D={dh}");
        let var = format!("{dt:?}").to_lowercase();
        let flops = 2.0 * (bh * t) as f64 * (64.0 * dh as f64 * 2.0 + 2.0 * (dh * dh) as f64);
        let fwd = ctx.time_ms(|i| la::linear_attention(&q[i % sets], &k[i % sets], &v[i % sets], None, d, true).map(drop))?;
        rows.push(ctx.finish(Case::new("linear_attention_fwd", &var, shape.clone(), fwd).bytes((4 * len * es) as f64).flops(flops)));
        // kiln's own unfused composition (batched matmuls, a mask, a triangular prefix; every
        // intermediate in memory): KERNELS.md wants the fused forward >= 2x faster.
        let tensor = |s: &CudaStorage| Tensor::from_storage(Storage::Cuda(s.clone()), vec![1, bh, t, dh]);
        let unfused = ctx.time_ms(|i| Tensor::linear_attention_unfused(&tensor(&q[i % sets])?, &tensor(&k[i % sets])?, &tensor(&v[i % sets])?, None).map(drop))?;
        rows.push(ctx.finish(Case::new("linear_attention_fwd_unfused", &var, shape.clone(), unfused).bytes((4 * len * es) as f64).flops(flops)));
        rows.push(ctx.finish(Case::new("linear_attention_fwd", &var, shape.clone(), fwd).vs("kiln_unfused", unfused)));
        if dt == DType::BF16 {
            // bf16 runs on tensor cores by default: the CUDA-core two-phase pair beside it.
            let cores = ctx.time_ms(|i| la::linear_attention_cores(&q[i % sets], &k[i % sets], &v[i % sets], None, d).map(drop))?;
            rows.push(ctx.finish(Case::new("linear_attention_fwd_cuda_cores", &var, shape.clone(), cores).bytes((4 * len * es) as f64).flops(flops).vs("fwd", fwd)));
            // The tensor-core walk as one launch (KILN_LINATTN_SPLIT=off) beside the default split.
            let one = ctx.time_ms(|i| la::linear_attention_segmented(&q[i % sets], &k[i % sets], &v[i % sets], None, d, 1).map(drop))?;
            rows.push(ctx.finish(Case::new("linear_attention_fwd_unsplit", &var, shape.clone(), one).bytes((4 * len * es) as f64).flops(flops).vs("fwd", fwd)));
            // The segments' walks on warpgroup MMAs, as three launches (KILN_LINATTN=wgmma) and
            // fused into one (wgmma-fused), against the roofline; scripts/gpu-run.sh turns off
            // those whose parity failed there (KILN_LINATTN_WG=off, KILN_LINATTN_FUSED=off).
            // With their backward (the fused walk's: dK and dV in one walk) against their forward.
            for (walk, name) in wg_walks(ctx) {
                let ms = ctx.time_ms(|i| la::linear_attention_walk(&q[i % sets], &k[i % sets], &v[i % sets], None, d, 0, walk).map(drop))?;
                rows.push(ctx.finish(Case::new("linear_attention_fwd", &format!("bf16 {name}"), shape.clone(), ms).bytes((4 * len * es) as f64).flops(flops)));
                let both = ctx.time_ms(|i| {
                    let j = i % sets;
                    la::linear_attention_walk(&q[j], &k[j], &v[j], None, d, 0, walk)?;
                    la::linear_attention_backward_walk(&q[j], &k[j], &v[j], None, &dout[j], d, 0, walk).map(drop)
                })?;
                rows.push(ctx.finish(Case::new("linear_attention_fwd+bwd", &format!("bf16 {name}"), shape.clone(), both).flops(4.0 * flops).vs("fwd", ms)));
            }
            // The segment planner's choice checked: each walk at S = 2, 4, 8, 16 segments.
            rows.extend(segment_sweep(ctx, [&q, &k, &v], d, &shape, fwd, (4 * len * es) as f64, flops)?);
        }
        // Before/after on the same GPU: the run-1 sequential kernel (one block per (head, Dv slice)).
        let seq = ctx.time_ms(|i| la::linear_attention_sequential(&q[i % sets], &k[i % sets], &v[i % sets], None, d).map(drop))?;
        rows.push(ctx.finish(Case::new("linear_attention_fwd_sequential", &var, shape.clone(), seq).bytes((4 * len * es) as f64).flops(flops).vs("fwd", fwd)));
        let both = ctx.time_ms(|i| {
            let j = i % sets;
            la::linear_attention(&q[j], &k[j], &v[j], None, d, true)?;
            la::linear_attention_backward(&q[j], &k[j], &v[j], None, &dout[j], d, true).map(drop)
        })?;
        rows.push(ctx.finish(Case::new("linear_attention_fwd+bwd", &var, shape.clone(), both).flops(4.0 * flops).vs("fwd", fwd)));
    }
    Ok(rows)
}

/// The wgmma walks this run times: on an sm_90 (or emulated), each unless run.sh switched it off.
fn wg_walks(ctx: &Ctx) -> Vec<(tc::Walk, &'static str)> {
    let on = |var: &str| std::env::var(var).map_or(true, |v| v != "off");
    let mut walks = vec![];
    if ctx.sm90() && on("KILN_LINATTN_WG") {
        walks.push((tc::Walk::Wgmma, "wgmma"));
    }
    if ctx.sm90() && on("KILN_LINATTN_FUSED") {
        walks.push((tc::Walk::WgmmaFused, "wgmma-fused"));
    }
    walks
}

/// "linear_attention_fwd_segments" rows: the bf16 walk in S = 2, 4, 8, 16 segments (and the wgmma
/// walks, where they run), each against the default forward's time `fwd`. The planner picked each
/// walk's S from a wave model that no GPU has checked yet; the fastest rows here are the ones to
/// teach it.
fn segment_sweep(ctx: &Ctx, [q, k, v]: [&[CudaStorage]; 3], d: LinAttnDims, shape: &str, fwd: f64, bytes: f64, flops: f64) -> Result<Vec<Row>> {
    let sets = q.len();
    let mut rows = vec![];
    for (walk, name) in [(tc::Walk::Mma, "")].into_iter().chain(wg_walks(ctx)) {
        for segs in [2, 4, 8, 16] {
            let ms = ctx.time_ms(|i| la::linear_attention_walk(&q[i % sets], &k[i % sets], &v[i % sets], None, d, segs, walk).map(drop))?;
            let variant = if name.is_empty() { format!("bf16 S={segs}") } else { format!("bf16 {name} S={segs}") };
            rows.push(ctx.finish(Case::new("linear_attention_fwd_segments", &variant, shape.to_string(), ms).bytes(bytes).flops(flops).vs("fwd", fwd)));
        }
    }
    Ok(rows)
}
