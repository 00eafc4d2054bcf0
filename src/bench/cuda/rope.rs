//! GPU bench cases for kernels/rope.cu: (B, H, T, D) = (8, 32, 2048, 128), forward, both dtypes.
use super::{layout::id_sets, Case, Ctx, Row};
use crate::backend::cuda::rope;
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let (b, h, t, d) = ctx.size((8, 32, 2048, 128), (1, 2, 33, 64));
    let n = b * h * t * d;
    let inv_freq: Vec<f32> = (0..d / 2).map(|i| 500000f64.powf(-2.0 * i as f64 / d as f64) as f32).collect();
    let pos = id_sets(ctx, b * t, 100_000, 1)?;
    for dtype in [DType::BF16, DType::F32] {
        let es = dtype.size_in_bytes();
        let sets = ctx.sets_for(n * es);
        let x = ctx.rand_sets(n, dtype, sets, 31)?;
        let v = format!("{dtype:?}").to_lowercase();
        let ms = ctx.time_ms(|i| rope::rope(&x[i % sets], &pos[0], &inv_freq, b, h, t, d, false).map(drop))?;
        rows.push(ctx.finish(Case::new("rope", &v, format!("({b},{h},{t},{d})"), ms).bytes((2 * n * es + 4 * b * t) as f64)));
    }
    Ok(rows)
}
