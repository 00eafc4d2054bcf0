//! GPU bench cases for kernels/softmax_xent.cu on a (4096, 32000) logits matrix, f32 and bf16:
//! softmax and log-softmax forward, softmax backward, cross-entropy forward and backward; and
//! cross-entropy on a (1021, 128256) bf16 matrix (Llama 3's vocabulary: the generic row kernels).
//! Memory-bound; bytes = each input read once + each output written once.
use super::{Case, Ctx, Row};
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::{elementwise as ew, softmax_xent as sx, CudaStorage};
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let (n, v) = ctx.size((4096usize, 32000usize), (80, 1000));
    let sets = ctx.sets_for(n * v * 4);
    let xf = ctx.affine_sets(n * v, sets, 21)?;
    let targets: Vec<u32> = (0..n).map(|r| ((r * 7919) % v) as u32).collect();
    let tg = CudaStorage::from_cpu(&CpuStorage::U32(targets), ctx.dev.ordinal)?;
    let dl = CudaStorage::from_cpu(&CpuStorage::F32(vec![1.0]), ctx.dev.ordinal)?;
    let shape = format!("({n},{v})");
    let nv = (n * v) as f64;
    for dtype in [DType::F32, DType::BF16] {
        let x = if dtype == DType::F32 { xf.clone() } else { xf.iter().map(|s| ew::cast(s, dtype)).collect::<Result<Vec<_>>>()? };
        let es = dtype.size_in_bytes() as f64;
        let var = format!("{dtype:?}").to_lowercase();
        let ms = ctx.time_ms(|i| sx::softmax(&x[i % sets], n, v, false).map(drop))?;
        rows.push(ctx.finish(Case::new("softmax", &var, shape.clone(), ms).bytes(2.0 * es * nv)));
        let ms = ctx.time_ms(|i| sx::softmax(&x[i % sets], n, v, true).map(drop))?;
        rows.push(ctx.finish(Case::new("log_softmax", &var, shape.clone(), ms).bytes(2.0 * es * nv)));
        // dy: another input set (any data will do for timing).
        let ms = ctx.time_ms(|i| sx::softmax_backward(&x[i % sets], &x[(i + 1) % sets], n, v, false).map(drop))?;
        rows.push(ctx.finish(Case::new("softmax_backward", &var, shape.clone(), ms).bytes(3.0 * es * nv)));
        let ms = ctx.time_ms(|i| sx::cross_entropy(&x[i % sets], &tg, n, v, u32::MAX).map(drop))?;
        rows.push(ctx.finish(Case::new("cross_entropy", &var, shape.clone(), ms).bytes(es * nv)));
        let ms = ctx.time_ms(|i| sx::cross_entropy_backward(&x[i % sets], &tg, &dl, n, v, u32::MAX).map(drop))?;
        rows.push(ctx.finish(Case::new("cross_entropy_backward", &var, shape.clone(), ms).bytes(2.0 * es * nv)));
    }
    // Llama 3's vocabulary in bf16: rows too wide for the row-in-registers kernels (C > 65536),
    // so the generic ones (one online read for the loss, two reads and a write for dlogits).
    let v2 = ctx.size(128256usize, 70000);
    let n2 = n * v / v2; // 1021 rows: as many as the input sets hold
    let x: Vec<CudaStorage> = xf.iter().map(|s| ew::cast(&CudaStorage { buf: s.buf.clone(), dtype: s.dtype, len: n2 * v2 }, DType::BF16)).collect::<Result<_>>()?;
    let tg2: Vec<u32> = (0..n2).map(|r| ((r * 7919) % v2) as u32).collect();
    let tg2 = CudaStorage::from_cpu(&CpuStorage::U32(tg2), ctx.dev.ordinal)?;
    let (shape2, nv2) = (format!("({n2},{v2})"), (n2 * v2) as f64);
    let ms = ctx.time_ms(|i| sx::cross_entropy(&x[i % sets], &tg2, n2, v2, u32::MAX).map(drop))?;
    rows.push(ctx.finish(Case::new("cross_entropy", "bf16", shape2.clone(), ms).bytes(2.0 * nv2)));
    let ms = ctx.time_ms(|i| sx::cross_entropy_backward(&x[i % sets], &tg2, &dl, n2, v2, u32::MAX).map(drop))?;
    rows.push(ctx.finish(Case::new("cross_entropy_backward", "bf16", shape2, ms).bytes(4.0 * nv2)));
    Ok(rows)
}
