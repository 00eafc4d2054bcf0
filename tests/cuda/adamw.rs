//! parity_adamw_*: the fused AdamW step, f32 state, f32 or bf16 gradient.
use super::*;
use kiln::backend::AdamWStep;

#[test]
#[ignore = "needs a CUDA device"]
fn parity_adamw_f32_and_bf16_grad() {
    setup();
    let h = AdamWStep { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, t: 3 };
    for (i, &n) in [1usize, 3, 7, 1023, 100_003].iter().enumerate() {
        let s = 700 + 10 * i as u64;
        let (p, g, m) = (randn(&[n], s), randn(&[n], s + 1), randn(&[n], s + 2).affine(0.1, 0.0).unwrap());
        let v = randn(&[n], s + 3).sqr().unwrap().affine(0.01, 0.0).unwrap();
        let cpu = |t: &Tensor| on_cpu(t, DType::F32);
        let gpu = |t: &Tensor| on_gpu(t, DType::F32);
        for gdt in [DType::F32, DType::BF16] {
            let want = backend::adamw(&cpu(&p), &on_cpu(&g, gdt), &cpu(&m), &cpu(&v), h).unwrap();
            let (pg, gg, mg, vg) = (gpu(&p), on_gpu(&g, gdt), gpu(&m), gpu(&v));
            let got = twice_n("adamw", || backend::adamw(&pg, &gg, &mg, &vg, h).unwrap());
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_close(&format!("adamw n={n} g={gdt:?} [{}]", ["p", "m", "v"][k]), a, b, TOL_F32);
            }
        }
    }
}
