//! parity_elementwise_*: unary maps, affine, broadcasting binary ops, SwiGLU, casts.
use super::*;
use kiln::backend::{BinaryOp, UnaryOp};

const UNARY: &[UnaryOp] = &[
    UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Tanh, UnaryOp::Square, UnaryOp::Relu, UnaryOp::Gelu,
    UnaryOp::Silu, UnaryOp::GeluGrad, UnaryOp::SiluGrad, UnaryOp::Step,
];

#[test]
#[ignore = "needs a CUDA device"]
fn parity_elementwise_unary_f32_bf16_odd_sizes() {
    setup();
    for (i, &n) in [1usize, 7, 1023, 100_003, 4096].iter().enumerate() {
        let x = randn(&[n], 10 + i as u64);
        let p = x.sqr().unwrap().affine(1.0, 0.5).unwrap(); // positive, for log / sqrt / recip
        for &op in UNARY.iter().chain(&[UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Recip]) {
            let src = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) { &p } else { &x };
            let want = backend::unary(op, &on_cpu(src, DType::F32)).unwrap();
            let got = twice1("unary", || backend::unary(op, &on_gpu(src, DType::F32)).unwrap());
            assert_close(&format!("unary {op:?} f32 n={n}"), &got, &want, TOL_F32);
            let want_b = backend::unary(op, &on_cpu(src, DType::BF16)).unwrap();
            let got_b = backend::unary(op, &on_gpu(src, DType::BF16)).unwrap().cast(DType::F32).unwrap();
            assert_close(&format!("unary {op:?} bf16 n={n}"), &got_b, &want_b, TOL_BF16);
        }
        let want = backend::affine(&on_cpu(&x, DType::F32), -1.5, 0.25).unwrap();
        assert_close("affine", &backend::affine(&on_gpu(&x, DType::F32), -1.5, 0.25).unwrap(), &want, TOL_F32);
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_elementwise_binary_broadcast() {
    setup();
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[3, 5, 7], &[3, 5, 7], &[3, 5, 7]),
        (&[3, 5, 7], &[7], &[3, 5, 7]),
        (&[3, 1, 7], &[5, 1], &[3, 5, 7]),
        (&[2, 3, 4, 5], &[3, 1, 5], &[2, 3, 4, 5]),
        (&[1], &[33, 9], &[33, 9]),
    ];
    for (i, (sa, sb, so)) in cases.iter().enumerate() {
        let (a, b) = (randn(sa, 20 + i as u64), randn(sb, 40 + i as u64));
        let (sa, sb, so) = (Shape(sa.to_vec()), Shape(sb.to_vec()), Shape(so.to_vec()));
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Ge] {
            let want = backend::binary(op, &on_cpu(&a, DType::F32), &sa, &on_cpu(&b, DType::F32), &sb, &so).unwrap();
            let (ga, gb) = (on_gpu(&a, DType::F32), on_gpu(&b, DType::F32));
            let got = twice1("binary", || backend::binary(op, &ga, &sa, &gb, &sb, &so).unwrap());
            assert_close(&format!("binary {op:?} {sa:?} {sb:?}"), &got, &want, TOL_F32);
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_elementwise_swiglu_and_casts() {
    setup();
    let (g, u, dy) = (randn(&[37, 129], 1), randn(&[37, 129], 2), randn(&[37, 129], 3));
    let (gc, uc, dyc) = (on_cpu(&g, DType::F32), on_cpu(&u, DType::F32), on_cpu(&dy, DType::F32));
    let (gg, ug, dyg) = (on_gpu(&g, DType::F32), on_gpu(&u, DType::F32), on_gpu(&dy, DType::F32));
    assert_close("swiglu", &backend::swiglu(&gg, &ug).unwrap(), &backend::swiglu(&gc, &uc).unwrap(), TOL_F32);
    let want = backend::swiglu_backward(&gc, &uc, &dyc).unwrap();
    let got = twice_n("swiglu_backward", || backend::swiglu_backward(&gg, &ug, &dyg).unwrap());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("swiglu_backward[{i}]"), a, b, TOL_F32);
    }
    // bf16: 16-byte pieces and a tail of 37 * 129 % 8 = 5 elements.
    let (gc, uc, dyc) = (on_cpu(&g, DType::BF16), on_cpu(&u, DType::BF16), on_cpu(&dy, DType::BF16));
    let (gg, ug, dyg) = (on_gpu(&g, DType::BF16), on_gpu(&u, DType::BF16), on_gpu(&dy, DType::BF16));
    assert_close("swiglu bf16", &backend::swiglu(&gg, &ug).unwrap(), &backend::swiglu(&gc, &uc).unwrap(), TOL_BF16);
    let want = backend::swiglu_backward(&gc, &uc, &dyc).unwrap();
    let got = twice_n("swiglu_backward bf16", || backend::swiglu_backward(&gg, &ug, &dyg).unwrap());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("swiglu_backward bf16 [{i}]"), a, b, TOL_BF16);
    }
    // f32 -> bf16 rounds exactly like the CPU (half::bf16), so the round trip matches bit for bit.
    let x = randn(&[1001], 9);
    let cpu = vals(&on_cpu(&x, DType::BF16));
    let back = vals(&on_gpu(&x, DType::F32).cast(DType::BF16).unwrap().cast(DType::F32).unwrap());
    assert_eq!(cpu, back, "bf16 rounding differs from the CPU's");
}
