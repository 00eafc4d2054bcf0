//! GPU bench cases for embedding (kernels in kernels/layout.cu): Llama-3-sized table
//! (V = 128256, C = 4096), N = 8192 tokens. The backward writes the whole dtable (V x C), so its
//! bytes count dy read once plus dtable written once.
use super::{layout::id_sets, Case, Ctx, Row};
use crate::backend::cuda::{embedding, CudaStorage};
use crate::tensor::DType;
use crate::Result;

pub fn rows(ctx: &Ctx) -> Result<Vec<Row>> {
    let mut rows = vec![];
    let (v, c, n) = ctx.size((128_256usize, 4096usize, 8192usize), (300, 72, 40));
    let ids = id_sets(ctx, n, v, 4)?;
    for dtype in [DType::BF16, DType::F32] {
        let es = dtype.size_in_bytes();
        let var = format!("{dtype:?}").to_lowercase();
        // The values do not matter to a gather: a zeroed table avoids generating 0.5 G normals.
        let table = CudaStorage::zeros(&ctx.dev, dtype, v * c)?;
        let ms = ctx.time_ms(|i| embedding::embedding(&table, &ids[i % 4], v, c).map(drop))?;
        rows.push(ctx.finish(Case::new("embedding", &var, format!("V={v} C={c} N={n}"), ms).bytes((2 * n * c * es + 4 * n) as f64)));
        drop(table);
        let sets = ctx.sets_for(n * c * es);
        let dy = ctx.rand_sets(n * c, dtype, sets, 21)?;
        let ms = ctx.time_ms(|i| embedding::embedding_backward(&dy[i % sets], &ids[i % 4], v, c).map(drop))?;
        rows.push(ctx.finish(Case::new("embedding_backward", &var, format!("V={v} C={c} N={n}"), ms).bytes(((n + v) * c * es + 4 * n) as f64)));
    }
    Ok(rows)
}
