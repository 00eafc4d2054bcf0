//! Launch wrappers for kernels/matmul.cu. Twin: backend/cpu/matmul.rs.
//! F32 runs the CUDA-core SGEMM (`sgemm_*`), BF16 the tensor-core mma.sync GEMM (`hgemm_*`,
//! f32 accumulation, bf16 output). The suffix names the transposes: n = stored as used, t = stored
//! transposed (first letter A, second B).

use super::{Arg, CudaStorage};
use crate::tensor::{DType, Shape};
use crate::{Error, Result};

const FAMILY: &str = "matmul";
/// Block tile (both paths): 128 x 128 outputs, 256 threads.
const TILE: usize = 128;
const THREADS: u32 = 256;
/// Dynamic shared memory of the bf16 kernel: 3 stages x 2 operands x 128 x 72 bf16 (110.6 KB).
const HGEMM_SMEM: u32 = 3 * 2 * 128 * 72 * 2;

/// Batched matmul: a is (batch, M, K) (or (batch, K, M) if ta), b is (b_batch, K, N) (or
/// (b_batch, N, K) if tb), b_batch == 1 shares b across the batch. -> (batch, M, N), a's dtype.
#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &CudaStorage, b: &CudaStorage, batch: usize, b_batch: usize, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Result<CudaStorage> {
    let dt = a.float("matmul")?.dtype;
    b.expect("matmul", dt)?;
    let shape = Shape(vec![batch, m, k]);
    if b_batch != 1 && b_batch != batch {
        return Err(Error::bad_shape("matmul", &shape, format!("b_batch = {b_batch} must be 1 or batch = {batch}")));
    }
    if a.len != batch * m * k || b.len != b_batch * k * n {
        return Err(Error::bad_shape("matmul", &shape, format!("a holds {}, b holds {} elements; expected {} and {}", a.len, b.len, batch * m * k, b_batch * k * n)));
    }
    if [m, k, n].iter().any(|&d| d > i32::MAX as usize) || m.div_ceil(TILE) > 65535 || batch > 65535 {
        return Err(Error::bad_shape("matmul", &shape, "dimension too large for the CUDA grid (M <= 8M rows, batch <= 65535)"));
    }
    let c = CudaStorage::alloc(a.dev(), dt, batch * m * n)?;
    if batch * m * n == 0 {
        return Ok(c);
    }
    let dev = a.dev();
    let suffix = match (ta, tb) {
        (false, false) => "nn",
        (false, true) => "nt",
        (true, false) => "tn",
        (true, true) => "tt",
    };
    let grid = (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, batch as u32);
    let mut args = vec![a.arg(), b.arg(), c.arg(), Arg::I32(m as i32), Arg::I32(k as i32), Arg::I32(n as i32), Arg::I32((b_batch == 1) as i32)];
    match dt {
        DType::F32 => {
            let f = dev.func(FAMILY, &format!("sgemm_{suffix}"))?;
            // SAFETY (all launches here): the argument list matches the kernel's declaration, and
            // the buffers hold batch*M*K, b_batch*K*N and batch*M*N elements as checked above.
            dev.launch(&f, grid, (THREADS, 1, 1), 0, &args)?;
        }
        _ => {
            // 16-byte cp.async needs each operand's contiguous dimension to be a multiple of 8.
            let va = if ta { m % 8 == 0 } else { k % 8 == 0 };
            let vb = if tb { k % 8 == 0 } else { n % 8 == 0 };
            args.push(Arg::I32(va as i32));
            args.push(Arg::I32(vb as i32));
            let f = dev.func(FAMILY, &format!("hgemm_{suffix}"))?;
            dev.launch(&f, grid, (THREADS, 1, 1), HGEMM_SMEM, &args)?;
        }
    }
    Ok(c)
}
