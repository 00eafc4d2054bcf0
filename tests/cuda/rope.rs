//! parity_rope_*: rotary embedding, forward and inverse, f32 and bf16, positions up to 1e5.
use super::*;

fn inv_freq(d: usize) -> Vec<f32> {
    (0..d / 2).map(|i| 10000f64.powf(-2.0 * i as f64 / d as f64) as f32).collect()
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_rope_shapes_and_inverse() {
    setup();
    // (B, H, T, D): D/2 = 1, 3 (scalar path), 6 (pairs), 4 and 64 (quads)
    let cases = [(1, 1, 1, 2), (3, 2, 7, 6), (2, 4, 9, 12), (2, 3, 5, 8), (1, 2, 33, 128), (2, 5, 17, 96)];
    for (i, &(b, h, t, d)) in cases.iter().enumerate() {
        let x = randn(&[b, h, t, d], 600 + i as u64);
        let pos: Vec<u32> = (0..(b * t) as u32).map(|k| if k % 3 == 0 { k } else { (k * 7919 + 13) % 100_000 }).collect();
        let pt = Tensor::from_vec_u32(pos, vec![b, t]).unwrap();
        let (pc, pg) = (pt.storage().clone(), pt.to_device(GPU).unwrap().storage().clone());
        let f = inv_freq(d);
        for inverse in [false, true] {
            let want = backend::rope(&on_cpu(&x, DType::F32), &pc, &f, b, h, t, d, inverse).unwrap();
            let xg = on_gpu(&x, DType::F32);
            let got = twice1("rope", || backend::rope(&xg, &pg, &f, b, h, t, d, inverse).unwrap());
            assert_close(&format!("rope f32 ({b},{h},{t},{d}) inverse={inverse}"), &got, &want, TOL_F32);
            let want = backend::rope(&on_cpu(&x, DType::BF16), &pc, &f, b, h, t, d, inverse).unwrap();
            let xg = on_gpu(&x, DType::BF16);
            let got = twice1("rope", || backend::rope(&xg, &pg, &f, b, h, t, d, inverse).unwrap().cast(DType::F32).unwrap());
            assert_close(&format!("rope bf16 ({b},{h},{t},{d}) inverse={inverse}"), &got, &want, TOL_BF16);
        }
        // rope then its inverse gives x back
        let xg = on_gpu(&x, DType::F32);
        let back = backend::rope(&backend::rope(&xg, &pg, &f, b, h, t, d, false).unwrap(), &pg, &f, b, h, t, d, true).unwrap();
        assert_close("rope round trip", &back, &on_cpu(&x, DType::F32), 1e-5);
    }
}
