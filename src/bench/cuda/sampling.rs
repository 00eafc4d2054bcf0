//! GPU bench cases for kernels/sampling.cu (not written yet).
use super::{Ctx, Row};
use crate::Result;

pub fn rows(_ctx: &Ctx) -> Result<Vec<Row>> {
    Ok(vec![])
}
