//! parity_reduce_*: sum / max / argmax (and topk over rows) over (outer, dim, inner), row (inner == 1, warp and block
//! paths, vector and scalar loads) and column (inner > 1) layouts, f32 and bf16, ties and NaN.
use super::*;
use kiln::backend::ReduceOp;

/// (outer, dim, inner): warp rows (dim <= 1024), block rows, 4 | dim vector rows, columns, size 1;
/// then 16-byte column vectors (4 | inner f32, 8 | inner bf16; partial tiles, the 4-deep dim loop
/// and its tail) and 16-byte argmax rows (vocab-wide; 4 | dim but not 8 | dim).
const SHAPES: &[(usize, usize, usize)] = &[
    (7, 1, 1), (3, 37, 1), (9, 1000, 1), (5, 3001, 1), (2, 4096, 1), (1, 1, 5),
    (4, 37, 5), (1, 2000, 3), (3, 16, 33), (2, 9, 70), (3, 0, 4),
    (2, 37, 8), (3, 100, 264), (2, 3, 4), (3, 32000, 1), (4, 12, 1),
];

#[test]
#[ignore = "needs a CUDA device"]
fn parity_reduce_sum_max_f32_bf16() {
    setup();
    for (s, &(o, d, i)) in SHAPES.iter().enumerate() {
        let x = randn(&[o, d, i], 100 + s as u64);
        for op in [ReduceOp::Sum, ReduceOp::Max] {
            let want = backend::reduce(op, &on_cpu(&x, DType::F32), o, d, i).unwrap();
            let gx = on_gpu(&x, DType::F32);
            let got = twice1("reduce", || backend::reduce(op, &gx, o, d, i).unwrap());
            assert_close(&format!("reduce {op:?} f32 ({o},{d},{i})"), &got, &want, TOL_F32);
            let want_b = backend::reduce(op, &on_cpu(&x, DType::BF16), o, d, i).unwrap();
            let gb = on_gpu(&x, DType::BF16);
            let got_b = twice1("reduce bf16", || backend::reduce(op, &gb, o, d, i).unwrap());
            assert_close(&format!("reduce {op:?} bf16 ({o},{d},{i})"), &got_b, &want_b, TOL_BF16);
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_reduce_argmax_ties_and_nan() {
    setup();
    for (s, &(o, d, i)) in SHAPES.iter().enumerate() {
        // Few distinct values, so most rows have ties (the first index must win).
        let n = o * d * i;
        let mut data: Vec<f32> = (0..n).map(|k| ((k * 7919 + s * 31) % 13) as f32 - 6.0).collect();
        if n > 3 {
            data[n / 2] = f32::NAN; // NaN never wins except at index 0 of its row
            data[0] = f32::NAN;
        }
        let t = Tensor::from_vec(data, vec![o, d, i]).unwrap();
        let want = backend::argmax(&on_cpu(&t, DType::F32), o, d, i).unwrap();
        let g = on_gpu(&t, DType::F32);
        let got = twice1("argmax", || backend::argmax(&g, o, d, i).unwrap());
        assert_eq!(got.dtype(), DType::U32, "argmax returns U32");
        assert_eq!(vals(&got), vals(&want), "argmax f32 ({o},{d},{i})");
        let gb = on_gpu(&t, DType::BF16);
        assert_eq!(vals(&backend::argmax(&gb, o, d, i).unwrap()), vals(&want), "argmax bf16 ({o},{d},{i})");
        // Random values too (no ties), bf16-rounded for the bf16 case.
        let x = randn(&[o, d, i], 200 + s as u64);
        let want = backend::argmax(&on_cpu(&x, DType::BF16), o, d, i).unwrap();
        assert_eq!(vals(&backend::argmax(&on_gpu(&x, DType::BF16), o, d, i).unwrap()), vals(&want), "argmax randn bf16");
    }
    // Rows of -inf and NaN: all -inf (0); NaN first, then -inf (0); -inf first, NaN but a -5 at 40
    // (40). Vector loads skip pieces that cannot win: these probe the rules around that.
    let d = 72;
    let mut data = vec![f32::NEG_INFINITY; 3 * d];
    data[d] = f32::NAN;
    data[2 * d + 1..].fill(f32::NAN);
    data[2 * d + 40] = -5.0;
    let t = Tensor::from_vec(data, vec![3, d, 1]).unwrap();
    let want = backend::argmax(&on_cpu(&t, DType::F32), 3, d, 1).unwrap();
    assert_eq!(vals(&want), [0.0, 0.0, 40.0], "the CPU twin on -inf / NaN rows");
    for dtype in [DType::F32, DType::BF16] {
        assert_eq!(vals(&backend::argmax(&on_gpu(&t, dtype), 3, d, 1).unwrap()), vals(&want), "argmax -inf / NaN rows {dtype:?}");
    }
}

/// NaN as None, so empty slots compare equal.
fn canon(v: Vec<f64>) -> Vec<Option<f64>> {
    v.into_iter().map(|x| (!x.is_nan()).then_some(x)).collect()
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_reduce_topk_ties_nan_and_empty_slots() {
    setup();
    // (rows, n, k): warp rows (n <= 64), block rows, k at the limit, a vocabulary-wide row.
    for (s, &(rows, n, k)) in [(3usize, 1usize, 1usize), (4, 37, 5), (2, 64, 64), (5, 1000, 10), (2, 3001, 64), (3, 32000, 8), (7, 300, 1)].iter().enumerate() {
        // Few distinct values (ties everywhere), NaNs sprinkled, and in row 0 only three numbers
        // among NaNs (empty slots once k > 3).
        let mut data: Vec<f32> = (0..rows * n).map(|j| ((j * 7919 + s * 31) % 13) as f32 - 6.0).collect();
        data.iter_mut().enumerate().filter(|(j, _)| j % 17 == 5).for_each(|(_, x)| *x = f32::NAN);
        if n > 3 {
            data[..n].iter_mut().enumerate().filter(|(j, _)| *j > 2).for_each(|(_, x)| *x = f32::NAN);
            data[1] = f32::NEG_INFINITY;
        }
        let t = Tensor::from_vec(data, vec![rows, n]).unwrap();
        for dtype in [DType::F32, DType::BF16] {
            let (wv, wi) = backend::topk(&on_cpu(&t, dtype), rows, n, k).unwrap();
            let g = on_gpu(&t, dtype);
            let got = twice_n("topk", || {
                let (v, i) = backend::topk(&g, rows, n, k).unwrap();
                vec![v, i]
            });
            let (gv, gi) = (&got[0], &got[1]);
            assert_eq!(vals(gi), vals(&wi), "topk indices {dtype:?} ({rows}, {n}), k {k}");
            assert_eq!((gv.dtype(), gi.dtype()), (dtype, DType::U32), "values keep the input's dtype");
            assert_eq!(canon(vals(gv)), canon(vals(&wv)), "topk values {dtype:?} ({rows}, {n}), k {k}");
        }
        // Random values (no ties) too.
        let x = randn(&[rows, n], 300 + s as u64);
        let (_, wi) = backend::topk(&on_cpu(&x, DType::F32), rows, n, k).unwrap();
        assert_eq!(vals(&backend::topk(&on_gpu(&x, DType::F32), rows, n, k).unwrap().1), vals(&wi), "topk randn ({rows}, {n}), k {k}");
    }
}
