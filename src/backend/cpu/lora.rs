//! STUB — to be written (fused LoRA linear). Twin of kernels/lora.cu.
use super::CpuStorage;
use crate::backend::LoraDims;
use crate::{Error, Result};
fn todo(op: &'static str) -> Error { Error::NotImplemented { op, device: "cpu".into() } }
pub fn lora(_x: &CpuStorage, _w: &CpuStorage, _a: &CpuStorage, _b: &CpuStorage, _d: LoraDims) -> Result<CpuStorage> { Err(todo("lora")) }
#[allow(clippy::too_many_arguments)]
pub fn lora_backward(_x: &CpuStorage, _w: &CpuStorage, _a: &CpuStorage, _b: &CpuStorage, _dy: &CpuStorage, _d: LoraDims, _need_dx: bool, _need_dw: bool) -> Result<Vec<Option<CpuStorage>>> { Err(todo("lora_backward")) }
