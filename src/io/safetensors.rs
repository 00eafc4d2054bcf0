//! Reading safetensors files (the HF weight format: an 8-byte header length, a JSON header of
//! name -> dtype, shape, byte offsets, then raw little-endian data) into kiln tensors, through
//! the `safetensors` crate over a memory map. Floats become F32 (F64 stays F64); BF16/F16 are
//! widened to F32; integer tensors become U32 and must lie in 0..2^32.
//! Every error names the file and, where it applies, the tensor.

use crate::tensor::Tensor;
use crate::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::Path;

/// Every tensor of a safetensors file, by name.
pub fn load(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let err = |detail: String| Error::File { path: path.display().to_string(), detail };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    // SAFETY: the map is read-only and lives only for this function; a file truncated under us
    // by another process is the one hazard of any mmap reader, and we copy out immediately.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| err(format!("cannot map: {e}")))?;
    let st = SafeTensors::deserialize(&mmap).map_err(|e| err(format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.iter() {
        let t = to_tensor(view.dtype(), view.shape(), view.data()).map_err(|d| err(format!("tensor `{name}`: {d}")))?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

fn to_tensor(dtype: Dtype, shape: &[usize], data: &[u8]) -> std::result::Result<Tensor, String> {
    let n: usize = shape.iter().product();
    let want = n * dtype.bitsize() / 8;
    if data.len() != want {
        return Err(format!("{} bytes for shape {shape:?} of {dtype:?}, expected {want}", data.len()));
    }
    let words = |size: usize| data.chunks_exact(size);
    let f32s: Option<Vec<f32>> = match dtype {
        Dtype::F32 => Some(words(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()),
        Dtype::BF16 => Some(words(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        Dtype::F16 => Some(words(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()),
        _ => None,
    };
    let shape = shape.to_vec();
    let t = if let Some(v) = f32s {
        Tensor::from_vec(v, shape)
    } else {
        match dtype {
            Dtype::F64 => Tensor::from_vec_f64(words(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(), shape),
            Dtype::I64 | Dtype::I32 | Dtype::U32 => {
                let ints: Vec<i64> = match dtype {
                    Dtype::I64 => words(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect(),
                    Dtype::I32 => words(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect(),
                    _ => words(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as i64).collect(),
                };
                if let Some((i, v)) = ints.iter().enumerate().find(|(_, &v)| !(0..=u32::MAX as i64).contains(&v)) {
                    return Err(format!("integer {v} at flat index {i} does not fit U32"));
                }
                Tensor::from_vec_u32(ints.into_iter().map(|v| v as u32).collect(), shape)
            }
            other => return Err(format!("dtype {other:?} is not supported")),
        }
    };
    t.map_err(|e| e.to_string())
}
