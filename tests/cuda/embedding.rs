//! parity_embedding_*: the gather and its deterministic scatter-add backward; ids >= V are
//! never read or written on the GPU (zero rows forward, skipped backward).
use super::*;

fn ids(ids: &[u32]) -> (Storage, Storage) {
    let t = Tensor::from_vec_u32(ids.to_vec(), vec![ids.len()]).unwrap();
    let cpu = t.storage().clone();
    let gpu = t.to_device(GPU).unwrap().storage().clone();
    (cpu, gpu)
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_embedding_forward_backward() {
    setup();
    let v = 50;
    // 1040: 130 bf16 words of 8 (260 f32 words of 4) a row, more than the 64 threads across a row
    for (i, &c) in [1usize, 7, 64, 130, 1040].iter().enumerate() {
        let list: Vec<u32> = (0..37u32).map(|j| (j * j * 31 + 7) % v as u32).chain([0, 0, 49, 49, 49]).collect();
        let (ic, ig) = ids(&list);
        let table = randn(&[v, c], 800 + i as u64);
        let dy = randn(&[list.len(), c], 900 + i as u64);
        for dt in [DType::F32, DType::BF16] {
            let tol = if dt == DType::F32 { TOL_F32 } else { TOL_BF16 };
            let want = backend::embedding(&on_cpu(&table, dt), &ic, v, c).unwrap();
            let tg = on_gpu(&table, dt);
            let got = twice1("embedding", || backend::embedding(&tg, &ig, v, c).unwrap().cast(DType::F32).unwrap());
            assert_close(&format!("embedding {dt:?} C={c}"), &got, &want, tol);
            let want = backend::embedding_backward(&on_cpu(&dy, dt), &ic, v, c).unwrap();
            let dg = on_gpu(&dy, dt);
            let got = twice1("embedding_backward", || backend::embedding_backward(&dg, &ig, v, c).unwrap().cast(DType::F32).unwrap());
            assert_close(&format!("embedding_backward {dt:?} C={c}"), &got, &want, tol);
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_embedding_backward_vocab_over_several_scan_pieces() {
    setup();
    // V = 3001: the bucket scan walks it in pieces of 1024 (carry across pieces, a partial last
    // piece); ids at the piece edges and repeated ones.
    let (v, c) = (3001usize, 16usize);
    let list: Vec<u32> = (0..500u32).map(|j| (j * j * 7919 + 13) % v as u32).chain([3000, 3000, 0, 1023, 1024, 2047, 2048, 1024]).collect();
    let (ic, ig) = ids(&list);
    let dy = randn(&[list.len(), c], 970);
    for dt in [DType::F32, DType::BF16] {
        let tol = if dt == DType::F32 { TOL_F32 } else { TOL_BF16 };
        let want = backend::embedding_backward(&on_cpu(&dy, dt), &ic, v, c).unwrap();
        let dg = on_gpu(&dy, dt);
        let got = twice1("embedding_backward", || backend::embedding_backward(&dg, &ig, v, c).unwrap().cast(DType::F32).unwrap());
        assert_close(&format!("embedding_backward {dt:?} V={v}"), &got, &want, tol);
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_embedding_out_of_range_ids_are_skipped() {
    setup();
    let (v, c) = (6, 8);
    let table = randn(&[v, c], 950);
    let dy = randn(&[4, c], 951);
    let (_, bad) = ids(&[1, 7, 5, u32::MAX]);
    let (good_c, _) = ids(&[1, 0, 5, 0]);
    // forward: rows 1 and 3 are zero
    let got = vals(&backend::embedding(&on_gpu(&table, DType::F32), &bad, v, c).unwrap());
    let want = vals(&backend::embedding(&on_cpu(&table, DType::F32), &good_c, v, c).unwrap());
    for j in 0..4 {
        for k in 0..c {
            let w = if j == 1 || j == 3 { 0.0 } else { want[j * c + k] };
            assert_eq!(got[j * c + k], w, "embedding row {j} col {k}");
        }
    }
    // backward: the bad rows add nothing (dy rows 1 and 3 zeroed on the CPU side)
    let mut d = dy.to_vec_f32().unwrap();
    for (j, x) in d.iter_mut().enumerate() {
        if j / c == 1 || j / c == 3 {
            *x = 0.0;
        }
    }
    let dz = Tensor::from_vec(d, vec![4, c]).unwrap();
    let got = backend::embedding_backward(&on_gpu(&dy, DType::F32), &bad, v, c).unwrap();
    let want = backend::embedding_backward(&on_cpu(&dz, DType::F32), &good_c, v, c).unwrap();
    assert_close("embedding_backward with ids >= V", &got, &want, TOL_F32);
}
