//! GPU bench cases for kernels/norm.cu on (16384, 4096), f32 and bf16: RMSNorm and LayerNorm,
//! forward and backward. Memory-bound; bytes = each input read once + each output written once
//! (the (C) vectors w, b, dw, db are negligible and left out).
use super::{Case, Ctx, Row};
use crate::backend::cuda::{elementwise as ew, norm as nm, CudaStorage};
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let (n, c) = ctx.size((16384usize, 4096usize), (40, 256));
    let sets = ctx.sets_for(n * c * 4);
    let xf = ctx.affine_sets(n * c, sets, 31)?;
    let wf = ctx.rand_sets(c, DType::F32, 2, 32)?;
    let shape = format!("({n},{c})");
    let nc = (n * c) as f64;
    let eps = 1e-5;
    for dtype in [DType::F32, DType::BF16] {
        let cast = |v: &Vec<CudaStorage>| -> Result<Vec<CudaStorage>> { if dtype == DType::F32 { Ok(v.clone()) } else { v.iter().map(|s| ew::cast(s, dtype)).collect() } };
        let (x, w) = (cast(&xf)?, cast(&wf)?);
        let (w, b) = (&w[0], &w[1]);
        let es = dtype.size_in_bytes() as f64;
        let var = format!("{dtype:?}").to_lowercase();
        let ms = ctx.time_ms(|i| nm::rms_norm(&x[i % sets], w, n, c, eps).map(drop))?;
        rows.push(ctx.finish(Case::new("rms_norm", &var, shape.clone(), ms).bytes(2.0 * es * nc)));
        // dy: another input set (any data will do for timing).
        let ms = ctx.time_ms(|i| nm::rms_norm_backward(&x[i % sets], w, &x[(i + 1) % sets], n, c, eps).map(drop))?;
        rows.push(ctx.finish(Case::new("rms_norm_backward", &var, shape.clone(), ms).bytes(3.0 * es * nc)));
        let ms = ctx.time_ms(|i| nm::layer_norm(&x[i % sets], w, b, n, c, eps).map(drop))?;
        rows.push(ctx.finish(Case::new("layer_norm", &var, shape.clone(), ms).bytes(2.0 * es * nc)));
        let ms = ctx.time_ms(|i| nm::layer_norm_backward(&x[i % sets], w, &x[(i + 1) % sets], n, c, eps).map(drop))?;
        rows.push(ctx.finish(Case::new("layer_norm_backward", &var, shape.clone(), ms).bytes(3.0 * es * nc)));
    }
    Ok(rows)
}
