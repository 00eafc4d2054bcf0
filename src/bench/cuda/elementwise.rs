//! GPU bench cases for kernels/elementwise.cu: memory-bound, compared with the copy ceiling.
use super::{Case, Ctx, Row};
use crate::backend::cuda::elementwise as ew;
use crate::backend::{BinaryOp, UnaryOp};
use crate::tensor::{DType, Shape};
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let n = ctx.size(1usize << 26, 5000); // 64 Mi elements
    for dtype in [DType::F32, DType::BF16] {
        let es = dtype.size_in_bytes() as f64;
        let sets = ctx.sets_for(n * dtype.size_in_bytes());
        let x = ctx.rand_sets(n, dtype, sets, 7)?;
        let y = ctx.rand_sets(n, dtype, sets, 8)?;
        let v = format!("{dtype:?}").to_lowercase();
        let ms = ctx.time_ms(|i| ew::unary(UnaryOp::Gelu, &x[i % sets]).map(drop))?;
        rows.push(ctx.finish(Case::new("gelu", &v, format!("{n}"), ms).bytes(2.0 * es * n as f64)));
        let ms = ctx.time_ms(|i| ew::affine(&x[i % sets], 0.5, 1.0).map(drop))?;
        rows.push(ctx.finish(Case::new("affine", &v, format!("{n}"), ms).bytes(2.0 * es * n as f64)));
        let s = Shape(vec![n]);
        let ms = ctx.time_ms(|i| ew::binary(BinaryOp::Add, &x[i % sets], &s, &y[i % sets], &s, &s).map(drop))?;
        rows.push(ctx.finish(Case::new("add", &v, format!("{n}"), ms).bytes(3.0 * es * n as f64)));
        let ms = ctx.time_ms(|i| ew::swiglu(&x[i % sets], &y[i % sets]).map(drop))?;
        rows.push(ctx.finish(Case::new("swiglu", &v, format!("{n}"), ms).bytes(3.0 * es * n as f64)));
        let dy = ctx.rand_sets(n, dtype, sets, 10)?;
        let ms = ctx.time_ms(|i| ew::swiglu_backward(&x[i % sets], &y[i % sets], &dy[i % sets]).map(drop))?;
        rows.push(ctx.finish(Case::new("swiglu_backward", &v, format!("{n}"), ms).bytes(5.0 * es * n as f64)));
    }
    let sets = ctx.sets_for(n * 4);
    let x = ctx.rand_sets(n, DType::F32, sets, 9)?;
    let ms = ctx.time_ms(|i| ew::cast(&x[i % sets], DType::BF16).map(drop))?;
    rows.push(ctx.finish(Case::new("cast", "f32->bf16", format!("{n}"), ms).bytes(6.0 * n as f64)));
    Ok(rows)
}
