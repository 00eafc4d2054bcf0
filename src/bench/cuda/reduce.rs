//! GPU bench cases for kernels/reduce.cu: memory-bound, compared with the copy ceiling.
//! Row sum / max over (16384, 4096), a column sum over (64, 1024, 1024), argmax over a
//! (4096, 32000) logits-shaped matrix, and topk (k = 8) of the same rows (report-only: a
//! retrieval op, METHODS.md §10, with no KERNELS.md target); f32 and bf16.
use super::{Case, Ctx, Row};
use crate::backend::cuda::{elementwise as ew, reduce as rd};
use crate::backend::ReduceOp;
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    // (op name, outer, dim, inner); topk's rows are (outer, dim), and its last number is k
    let full: &[(&str, usize, usize, usize)] = &[("row_sum", 16384, 4096, 1), ("row_max", 16384, 4096, 1), ("col_sum", 64, 1024, 1024), ("argmax", 4096, 32000, 1), ("topk", 4096, 32000, 8)];
    let tiny: &[(&str, usize, usize, usize)] = &[("row_sum", 20, 300, 1), ("row_max", 20, 300, 1), ("col_sum", 3, 40, 50), ("argmax", 6, 1000, 1), ("topk", 6, 1000, 8)];
    let cases = ctx.size(full, tiny);
    let n = cases.iter().map(|c| c.1 * c.2 * c.3).max().unwrap_or(0);
    let sets = ctx.sets_for(n * 4);
    let xf = ctx.affine_sets(n, sets, 11)?;
    for dtype in [DType::F32, DType::BF16] {
        let x = if dtype == DType::F32 { xf.clone() } else { xf.iter().map(|s| ew::cast(s, dtype)).collect::<Result<Vec<_>>>()? };
        let es = dtype.size_in_bytes() as f64;
        let v = format!("{dtype:?}").to_lowercase();
        for &(op, o, d, i) in cases {
            if op == "topk" {
                let xs: Vec<_> = x.iter().map(|s| crate::backend::cuda::CudaStorage { len: o * d, ..s.clone() }).collect();
                let ms = ctx.time_ms(|k| rd::topk(&xs[k % sets], o, d, i).map(drop))?;
                let bytes = es * (o * d) as f64 + (es + 4.0) * (o * i) as f64;
                rows.push(ctx.finish(Case::new(op, &v, format!("({o},{d}) k={i}"), ms).bytes(bytes)));
                continue;
            }
            let len = o * d * i;
            // Views of the first len elements: the kernels only read what the shape covers.
            let xs: Vec<_> = x.iter().map(|s| crate::backend::cuda::CudaStorage { len, ..s.clone() }).collect();
            let ms = match op {
                "argmax" => ctx.time_ms(|k| rd::argmax(&xs[k % sets], o, d, i).map(drop))?,
                "row_max" => ctx.time_ms(|k| rd::reduce(ReduceOp::Max, &xs[k % sets], o, d, i).map(drop))?,
                _ => ctx.time_ms(|k| rd::reduce(ReduceOp::Sum, &xs[k % sets], o, d, i).map(drop))?,
            };
            let out_es = if op == "argmax" { 4.0 } else { es };
            let bytes = es * len as f64 + out_es * (o * i) as f64;
            rows.push(ctx.finish(Case::new(op, &v, format!("({o},{d},{i})"), ms).bytes(bytes)));
        }
    }
    Ok(rows)
}
