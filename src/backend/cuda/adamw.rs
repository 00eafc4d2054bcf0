//! Launch wrappers for kernels/adamw.cu. Twin: backend/cpu/adamw.rs.
//! Master weights and optimizer state are F32 (DESIGN.md, decision 6); the gradient may be F32
//! or BF16 (read as f32).

use super::{blocks_for, Arg, CudaStorage};
use crate::backend::AdamWStep;
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "adamw";
const THREADS: u32 = 256;

/// -> [p, m, v] after the step
#[allow(clippy::too_many_arguments)]
pub fn adamw(p: &CudaStorage, g: &CudaStorage, m: &CudaStorage, v: &CudaStorage, h: AdamWStep) -> Result<Vec<CudaStorage>> {
    p.expect("adamw", DType::F32)?;
    m.expect("adamw", DType::F32)?;
    v.expect("adamw", DType::F32)?;
    let gname = match g.dtype {
        DType::F32 => "adamw_gf32",
        DType::BF16 => "adamw_gbf16",
        d => return Err(Error::UnsupportedDType { op: "adamw", dtype: d, detail: "the gradient must be F32 or BF16" }),
    };
    let n = p.len;
    for (what, s) in [("g", g), ("m", m), ("v", v)] {
        if s.len != n {
            return Err(Error::bad_shape("adamw", &Shape(vec![s.len]), format!("{what} should hold {n} elements like p")));
        }
    }
    // The constants, rounded to f32 exactly as cpu/adamw.rs rounds them.
    let (c1, c2) = (1.0 - h.beta1.powi(h.t as i32), 1.0 - h.beta2.powi(h.t as i32));
    let consts = [h.beta1, h.beta2, 1.0 - h.beta1, 1.0 - h.beta2, 1.0 / c1, 1.0 / c2, h.lr, h.weight_decay, h.eps];
    let mut words = [0u32; 32];
    for (w, c) in words.iter_mut().zip(consts) {
        *w = (c as f32).to_bits(); // struct Hyper { b1, b2, ib1, ib2, ic1, ic2, lr, wd, eps }
    }
    let dev = p.dev();
    let (po, mo, vo) = (CudaStorage::alloc(dev, DType::F32, n)?, CudaStorage::alloc(dev, DType::F32, n)?, CudaStorage::alloc(dev, DType::F32, n)?);
    let f = dev.func(FAMILY, gname)?;
    let args = [p.arg(), g.arg(), m.arg(), v.arg(), po.arg(), mo.arg(), vo.arg(), Arg::U64(n as u64), Arg::Words(words)];
    dev.launch(&f, (blocks_for(n.div_ceil(4), THREADS), 1, 1), (THREADS, 1, 1), 0, &args)?;
    Ok(vec![po, mo, vo])
}
