//! GPU bench cases for kernels/reduce.cu: memory-bound, compared with the copy ceiling.
//! Row sum / max over (16384, 4096), a column sum over (64, 1024, 1024), argmax over a
//! (4096, 32000) logits-shaped matrix; f32 and bf16.
use super::{Case, Ctx, Row};
use crate::backend::cuda::{elementwise as ew, reduce as rd};
use crate::backend::ReduceOp;
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    // (op name, outer, dim, inner)
    let cases: &[(&str, usize, usize, usize)] = &[("row_sum", 16384, 4096, 1), ("row_max", 16384, 4096, 1), ("col_sum", 64, 1024, 1024), ("argmax", 4096, 32000, 1)];
    let n = cases.iter().map(|c| c.1 * c.2 * c.3).max().unwrap_or(0);
    let sets = ctx.sets_for(n * 4);
    let xf = input_sets(ctx, n, sets, 11)?;
    for dtype in [DType::F32, DType::BF16] {
        let x = if dtype == DType::F32 { xf.clone() } else { xf.iter().map(|s| ew::cast(s, dtype)).collect::<Result<Vec<_>>>()? };
        let es = dtype.size_in_bytes() as f64;
        let v = format!("{dtype:?}").to_lowercase();
        for &(op, o, d, i) in cases {
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

/// `sets` f32 buffers of `len` elements: one drawn on the host (normal(0, 1)), the others
/// affine images of it made on the device (host RNG for 100M+ elements is the slow part).
fn input_sets(ctx: &Ctx, len: usize, sets: usize, seed: u64) -> Result<Vec<crate::backend::cuda::CudaStorage>> {
    let first = ctx.rand_sets(len, DType::F32, 1, seed)?.remove(0);
    let mut v = vec![first];
    for k in 1..sets {
        let next = crate::backend::cuda::elementwise::affine(&v[0], -1.0 + 0.125 * k as f64, 0.25)?;
        v.push(next);
    }
    Ok(v)
}
