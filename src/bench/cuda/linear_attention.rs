//! GPU bench cases for kernels/linear_attention.cu (not written yet).
use super::{Ctx, Row};
use crate::Result;

pub fn rows(_ctx: &Ctx) -> Result<Vec<Row>> {
    Ok(vec![])
}
