//! GPU bench cases for kernels/adamw.cu: one step over 64 Mi f32 parameters, f32 or bf16 grad.
use super::{Case, Ctx, Row};
use crate::backend::cuda::{adamw, CudaStorage};
use crate::backend::AdamWStep;
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let n = ctx.size(1usize << 26, 5000);
    let h = AdamWStep { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, t: 10 };
    let sets = 2; // p, m, v and g of one set already exceed the L2 many times over
    let p = ctx.rand_sets(n, DType::F32, sets, 41)?;
    let m: Vec<CudaStorage> = (0..sets).map(|_| CudaStorage::zeros(&ctx.dev, DType::F32, n)).collect::<Result<_>>()?;
    let v: Vec<CudaStorage> = (0..sets).map(|_| CudaStorage::zeros(&ctx.dev, DType::F32, n)).collect::<Result<_>>()?;
    for gdt in [DType::F32, DType::BF16] {
        let g = ctx.rand_sets(n, gdt, sets, 42)?;
        let ms = ctx.time_ms(|i| adamw::adamw(&p[i % sets], &g[i % sets], &m[i % sets], &v[i % sets], h).map(drop))?;
        let bytes = (n * (4 * 6 + gdt.size_in_bytes())) as f64; // read p m v g, write p m v
        rows.push(ctx.finish(Case::new("adamw", &format!("g {gdt:?}").to_lowercase(), format!("{n}"), ms).bytes(bytes)));
    }
    Ok(rows)
}
