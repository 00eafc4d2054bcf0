//! parity_softmax_xent_*: softmax / log-softmax forward and backward, cross-entropy with an
//! ignore index (forward and backward), f32 and bf16, rows from 1 to V = 128256 wide.
use super::*;

/// (N, C): size 1, scalar path (C % 4 != 0), vector path, long vocab rows, and the row-in-registers
/// path (C % 8 == 0; C <= 32768 f32, C <= 65536 bf16) at its smallest, typical and largest C
/// (32776 falls back for f32 only, 65544 for both). The f32 backward's shared-memory kernel
/// (2048 <= C < 32772, emulated as sm_80) takes 3001 (rows starting at all four alignments: heads
/// of 0, 3, 2, 1 elements, tails of 1, 2, 3, 0), 32003, 32000 and 32768. The rc kernels stage a
/// block's next row while they work on one: (23, 1000) and (21, 4096) give each block (8 on the
/// emulator, the resident count on a GPU) several rows.
const SHAPES: &[(usize, usize)] = &[
    (1, 1), (3, 7), (5, 1000), (4, 1001), (2, 32003), (3, 128256), (3, 8), (2, 32000), (2, 32768), (2, 32776),
    (2, 50304), (2, 65536), (2, 65544), (4, 3001), (23, 1000), (21, 4096),
];

fn tensor(s: Storage, shape: &[usize]) -> Tensor {
    Tensor::from_storage(s, shape.to_vec()).unwrap()
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_softmax_xent_softmax_fwd_bwd() {
    setup();
    for (s, &(n, c)) in SHAPES.iter().enumerate() {
        let x = randn(&[n, c], 300 + s as u64).affine(3.0, 0.0).unwrap();
        let dy = randn(&[n, c], 400 + s as u64);
        for log in [false, true] {
            let what = format!("softmax log={log} ({n},{c})");
            let want = backend::softmax(&on_cpu(&x, DType::F32), n, c, log).unwrap();
            let gx = on_gpu(&x, DType::F32);
            let got = twice1(&what, || backend::softmax(&gx, n, c, log).unwrap());
            assert_close(&format!("{what} f32"), &got, &want, TOL_F32);
            let want_b = backend::softmax(&on_cpu(&x, DType::BF16), n, c, log).unwrap();
            let got_b = backend::softmax(&on_gpu(&x, DType::BF16), n, c, log).unwrap();
            assert_close(&format!("{what} bf16"), &got_b, &want_b, TOL_BF16);

            let y = tensor(want, &[n, c]);
            let want = backend::softmax_backward(&on_cpu(&y, DType::F32), &on_cpu(&dy, DType::F32), n, c, log).unwrap();
            let (gy, gdy) = (on_gpu(&y, DType::F32), on_gpu(&dy, DType::F32));
            let got = twice1(&what, || backend::softmax_backward(&gy, &gdy, n, c, log).unwrap());
            assert_close(&format!("{what} backward f32"), &got, &want, TOL_F32);
            let want_b = backend::softmax_backward(&on_cpu(&y, DType::BF16), &on_cpu(&dy, DType::BF16), n, c, log).unwrap();
            let (gyb, gdyb) = (on_gpu(&y, DType::BF16), on_gpu(&dy, DType::BF16));
            let got_b = twice1(&what, || backend::softmax_backward(&gyb, &gdyb, n, c, log).unwrap());
            assert_close(&format!("{what} backward bf16"), &got_b, &want_b, TOL_BF16);
        }
    }
}

/// Which f32 rows `softmax_backward_smem_f32` takes: (threads, dynamic shared bytes) by C and the
/// device's opt-in shared memory (227 KiB sm_90, 163 KiB sm_80, 99 KiB sm_86).
#[test]
fn softmax_backward_smem_routing() {
    use kiln::backend::cuda::softmax_xent::smem_backward_launch as route;
    let (h100, a100, a10) = (227 * 1024, 163 * 1024, 99 * 1024);
    assert_eq!(route(32000, h100), Some((1024, 128000)));
    assert_eq!(route(32000, a100), Some((1024, 128000)));
    assert_eq!(route(32000, a10), None);
    assert_eq!(route(3001, a100), Some((128, 12000)));
    assert_eq!(route(32771, h100), Some((1024, 131072)));
    assert_eq!(route(32772, h100), None);
    assert_eq!((route(2047, h100), route(1001, h100)), (None, None));
}

/// The rc kernels stage the next row in a row's bytes of shared memory when that fits the
/// device's opt-in limit with 1 KiB to spare.
#[test]
fn softmax_rc_staging_routing() {
    use kiln::backend::cuda::softmax_xent::rc_stage_bytes as stage;
    let (h100, a100, a10) = (227 * 1024, 163 * 1024, 99 * 1024);
    assert_eq!(stage(32000, DType::F32, h100), Some(128000));
    assert_eq!(stage(32000, DType::BF16, a10), Some(64000));
    assert_eq!(stage(32768, DType::F32, a100), Some(131072));
    assert_eq!(stage(32000, DType::F32, a10), None);
    assert_eq!(stage(65536, DType::BF16, 128 * 1024), None);
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_softmax_xent_cross_entropy_ignore() {
    setup();
    // (N, V, ignore, every k-th row ignored; 1 = all rows ignored)
    let cases: &[(usize, usize, u32, usize)] = &[
        (1, 1, u32::MAX, 0), (37, 1001, u32::MAX, 5), (9, 1000, 3, 0), (5, 32000, 7, 2),
        (3, 128256, u32::MAX, 0), (4, 64, u32::MAX, 1), (300, 257, u32::MAX, 7),
        (3, 32768, u32::MAX, 0), (6, 8, 2, 3), (2, 32776, u32::MAX, 0), (4, 50304, 9, 2),
        (2, 65536, u32::MAX, 0), (2, 65544, u32::MAX, 0), (29, 1000, 3, 4), (17, 4096, u32::MAX, 0),
        (600, 64, u32::MAX, 3),
    ];
    for (s, &(n, v, ignore, every)) in cases.iter().enumerate() {
        let x = randn(&[n, v], 500 + s as u64).affine(2.0, 0.0).unwrap();
        let tg: Vec<u32> = (0..n)
            .map(|r| if every > 0 && r % every == every - 1 { ignore } else { ((r * 7919 + s) % v) as u32 })
            .collect();
        let t = Tensor::from_vec_u32(tg, vec![n]).unwrap();
        let (tc, tgpu) = (t.storage().clone(), t.to_device(GPU).unwrap().storage().clone());
        let dl = Tensor::from_vec(vec![0.75], vec![1]).unwrap();
        for dtype in [DType::F32, DType::BF16] {
            let tol = if dtype == DType::F32 { TOL_F32 } else { TOL_BF16 };
            let what = format!("cross_entropy {dtype:?} ({n},{v}) ignore={ignore} every={every}");
            let xc = on_cpu(&x, dtype);
            let want = backend::cross_entropy(&xc, &tc, n, v, ignore).unwrap();
            let gx = on_gpu(&x, dtype);
            let got = twice1(&what, || backend::cross_entropy(&gx, &tgpu, n, v, ignore).unwrap());
            assert_close(&what, &got, &want, tol);
            let want = backend::cross_entropy_backward(&xc, &tc, &on_cpu(&dl, DType::F32), n, v, ignore).unwrap();
            let gdl = on_gpu(&dl, dtype);
            let got = twice1(&what, || backend::cross_entropy_backward(&gx, &tgpu, &gdl, n, v, ignore).unwrap());
            assert_close(&format!("{what} backward"), &got, &want, tol);
        }
    }
}
