//! GPU bench cases for kernels/layout.cu: memory-bound moves, compared with the copy ceiling.
//! The embedding-shaped gather and scatter-add are in embedding.rs (same kernels, outer = 1).
use super::{Case, Ctx, Row};
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::{layout, CudaStorage};
use crate::tensor::{DType, Shape};
use crate::Result;

/// `sets` lists of `n` pseudo-random ids below `bound`, on the device.
pub fn id_sets(ctx: &Ctx, n: usize, bound: usize, sets: usize) -> Result<Vec<CudaStorage>> {
    (0..sets as u64)
        .map(|s| {
            let ids = (0..n as u64).map(|j| ((j.wrapping_add(s << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as u32 % bound as u32).collect();
            CudaStorage::from_cpu(&CpuStorage::U32(ids), ctx.dev.ordinal)
        })
        .collect()
}

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let (b, t, h, d) = ctx.size((8, 2048, 32, 128), (1, 16, 4, 128)); // 64 Mi elements
    let n = b * t * h * d;
    for dtype in [DType::BF16, DType::F32] {
        let es = dtype.size_in_bytes();
        let v = format!("{dtype:?}").to_lowercase();
        let sets = ctx.sets_for(n * es);
        let x = ctx.rand_sets(n, dtype, sets, 11)?;
        // (B, T, H, D) -> (B, H, T, D): the attention-head split
        let s = Shape(vec![b, t, h, d]);
        let ms = ctx.time_ms(|i| layout::permute(&x[i % sets], &s, &[0, 2, 1, 3]).map(drop))?;
        rows.push(ctx.finish(Case::new("permute", &v, format!("({b},{t},{h},{d})->0213"), ms).bytes((2 * n * es) as f64)));
        // a full 2-D transpose: the innermost dim changes (strided reads)
        let rows2 = ctx.size(8192, 64);
        let s2 = Shape(vec![rows2, n / rows2]);
        let ms = ctx.time_ms(|i| layout::permute(&x[i % sets], &s2, &[1, 0]).map(drop))?;
        rows.push(ctx.finish(Case::new("permute", &v, format!("({rows2},{})->10", n / rows2), ms).bytes((2 * n * es) as f64)));
        // narrow: the middle half of the last axis
        let ms = ctx.time_ms(|i| layout::narrow(&x[i % sets], n / d, d, 1, d / 4, d / 2).map(drop))?;
        rows.push(ctx.finish(Case::new("narrow", &v, format!("({},{d})[{}..{}]", n / d, d / 4, d / 4 + d / 2), ms).bytes((n * es) as f64)));
        // concat two halves along the last axis
        let halves: Vec<CudaStorage> = (0..2).map(|k| layout::narrow(&x[0], n / d, d, 1, k * d / 2, d / 2)).collect::<Result<_>>()?;
        let ms = ctx.time_ms(|_| layout::concat(&[&halves[0], &halves[1]], n / d, &[d / 2, d / 2], 1).map(drop))?;
        rows.push(ctx.finish(Case::new("concat", &v, format!("2x({},{})", n / d, d / 2), ms).bytes((2 * n * es) as f64)));
        // index_select of 4096 rows of 4096 from 32768 along the middle axis, outer = 2
        let (inner, k) = ctx.size((4096, 4096), (128, 8));
        let dim = n / 2 / inner;
        let ids = id_sets(ctx, k, dim, 4)?;
        let ms = ctx.time_ms(|i| layout::index_select(&x[i % sets], &ids[i % 4], 2, dim, inner).map(drop))?;
        rows.push(ctx.finish(Case::new("index_select", &v, format!("(2,{dim},{inner})[{k}]"), ms).bytes((2 * 2 * k * inner * es) as f64)));
    }
    Ok(rows)
}
