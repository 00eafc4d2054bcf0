//! parity_layout_*: permute, narrow, concat, index_select and index_add. The moves must match the
//! CPU bit for bit in every dtype (F32, BF16, U32); index_add sums (F32 exact order, BF16 storage).
use super::*;

/// The same values as CPU and GPU storage in each dtype the moves take.
fn each_dtype(shape: &[usize], seed: u64) -> Vec<(DType, Storage, Storage)> {
    let x = randn(shape, seed);
    let n = x.elem_count();
    let u = Tensor::from_vec_u32((0..n as u32).map(|i| i.wrapping_mul(2654435761)).collect(), shape.to_vec()).unwrap();
    let mut out = vec![];
    for dtype in [DType::F32, DType::BF16] {
        let cpu = x.to_dtype(dtype).unwrap().storage().clone();
        out.push((dtype, cpu, on_gpu(&x, dtype)));
    }
    out.push((DType::U32, u.storage().clone(), u.to_device(GPU).unwrap().storage().clone()));
    out
}

/// Bit-exact equality of a move (values and dtype).
fn exact(what: &str, got: &Storage, want: &Storage) {
    assert_eq!(got.device(), GPU, "{what}: the result should live on the GPU");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    let (g, w) = (vals(got), vals(want));
    assert_eq!(g.len(), w.len(), "{what}: length");
    if let Some(i) = g.iter().zip(&w).position(|(a, b)| a.to_bits() != b.to_bits()) {
        panic!("{what}: element {i} is {} where the CPU has {}", g[i], w[i]);
    }
}

fn ids_gpu(ids: &[u32]) -> (Storage, Storage) {
    let t = Tensor::from_vec_u32(ids.to_vec(), vec![ids.len()]).unwrap();
    let cpu = t.storage().clone();
    let gpu = t.to_device(GPU).unwrap().storage().clone();
    (cpu, gpu)
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_layout_permute_ranks_1_to_9() {
    setup();
    let cases: &[(&[usize], &[usize])] = &[
        (&[7], &[0]),
        (&[3, 5], &[1, 0]),
        (&[1, 1], &[1, 0]),
        (&[2, 3, 4, 5], &[0, 2, 1, 3]),
        (&[2, 3, 4, 8], &[0, 2, 1, 3]),
        (&[3, 33, 17, 64], &[0, 2, 1, 3]),
        (&[1, 6, 1, 9], &[3, 2, 1, 0]),
        (&[2, 3, 1, 4, 5], &[4, 0, 3, 1, 2]),
        (&[4, 6, 10], &[0, 1, 2]),
        (&[5, 63, 3], &[2, 0, 1]),
        (&[2, 1, 3, 2, 1, 2, 3, 2], &[7, 1, 5, 3, 0, 6, 2, 4]),
        (&[2, 1, 3, 1, 2, 1, 2, 1, 3], &[8, 7, 6, 5, 4, 3, 2, 1, 0]),
        // tiled transposes with both tile dims even (the 2-byte pair path): partial and whole
        // 64 x 64 tiles, a batch dim outside and between the two.
        (&[130, 66], &[1, 0]),
        (&[2, 64, 64], &[0, 2, 1]),
        (&[3, 70, 128], &[0, 2, 1]),
        (&[4, 6, 10], &[2, 0, 1]),
        // 16-byte tiled path (both tile dims multiples of 4 for f32, of 8 for bf16): partial
        // 64 x 64 tiles, a batch dim; 12 x 20 takes it for f32 only (bf16 takes the pair path).
        (&[136, 72], &[1, 0]),
        (&[3, 40, 24], &[0, 2, 1]),
        (&[12, 20], &[1, 0]),
        (&[2, 128, 64], &[2, 1, 0]),
        // bf16 moves two tiles a step: 3 x 3 x 4 = 36 tiles, the last step's second one edge-cut.
        (&[3, 136, 200], &[0, 2, 1]),
    ];
    for (i, (shape, perm)) in cases.iter().enumerate() {
        let s = Shape(shape.to_vec());
        for (dtype, cpu, gpu) in each_dtype(shape, 100 + i as u64) {
            let want = backend::permute(&cpu, &s, perm).unwrap();
            let got = twice1("permute", || backend::permute(&gpu, &s, perm).unwrap());
            exact(&format!("permute {shape:?} {perm:?} {dtype:?}"), &got, &want);
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_layout_narrow_and_concat() {
    setup();
    // (outer, dim, inner, start, len)
    let narrows = [(1, 9, 1, 0, 9), (3, 9, 1, 2, 5), (4, 7, 5, 6, 1), (2, 10, 8, 3, 4), (5, 33, 64, 1, 31), (1, 4, 3, 2, 0), (300, 3, 1, 1, 1)];
    for (i, &(o, d, n, s, l)) in narrows.iter().enumerate() {
        for (dtype, cpu, gpu) in each_dtype(&[o, d, n], 200 + i as u64) {
            let want = backend::narrow(&cpu, o, d, n, s, l).unwrap();
            let got = twice1("narrow", || backend::narrow(&gpu, o, d, n, s, l).unwrap());
            exact(&format!("narrow ({o},{d},{n}) [{s}+{l}] {dtype:?}"), &got, &want);
        }
    }
    // (outer, part sizes, inner)
    let concats: &[(usize, &[usize], usize)] = &[(1, &[3, 1, 5], 1), (4, &[2, 3], 7), (3, &[1, 4, 2, 8], 8), (2, &[5], 3), (7, &[16, 17], 64)];
    for (i, &(o, dims, n)) in concats.iter().enumerate() {
        let parts: Vec<_> = dims.iter().enumerate().map(|(p, &d)| each_dtype(&[o, d, n], 300 + 10 * i as u64 + p as u64)).collect();
        for k in 0..3 {
            let cpu: Vec<&Storage> = parts.iter().map(|p| &p[k].1).collect();
            let gpu: Vec<&Storage> = parts.iter().map(|p| &p[k].2).collect();
            let want = backend::concat(&cpu, o, dims, n).unwrap();
            let got = twice1("concat", || backend::concat(&gpu, o, dims, n).unwrap());
            exact(&format!("concat {o} {dims:?} {n} {:?}", parts[0][k].0), &got, &want);
        }
    }
}

#[test]
#[ignore = "needs a CUDA device"]
fn parity_layout_index_select_and_add() {
    setup();
    let pattern = |n: usize, dim: usize, seed: u32| -> Vec<u32> { (0..n as u32).map(|j| (j.wrapping_mul(7919).wrapping_add(seed)) % dim as u32).collect() };
    // (outer, dim, inner, ids)
    let cases: Vec<(usize, usize, usize, Vec<u32>)> = vec![
        (1, 5, 1, vec![4, 0, 4, 2]),
        (3, 7, 5, vec![6, 6, 1, 0, 3, 6]),
        (2, 11, 8, pattern(37, 11, 1)),
        (1, 3000, 64, pattern(1000, 3000, 5)),
        (1, 9, 12, vec![3; 700]),
        (2, 50, 3, pattern(513, 50, 9)),
        (4, 6, 4, vec![]),
    ];
    for (i, (o, d, n, ids)) in cases.iter().enumerate() {
        let (o, d, n) = (*o, *d, *n);
        let (ic, ig) = ids_gpu(ids);
        for (dtype, cpu, gpu) in each_dtype(&[o, d, n], 400 + i as u64) {
            let want = backend::index_select(&cpu, &ic, o, d, n).unwrap();
            let got = twice1("index_select", || backend::index_select(&gpu, &ig, o, d, n).unwrap());
            exact(&format!("index_select ({o},{d},{n}) n_ids={} {dtype:?}", ids.len()), &got, &want);
        }
        let dy = randn(&[o, ids.len(), n], 500 + i as u64);
        let want = backend::index_add(&on_cpu(&dy, DType::F32), &ic, o, d, n).unwrap();
        let got = twice1("index_add", || backend::index_add(&on_gpu(&dy, DType::F32), &ig, o, d, n).unwrap());
        assert_close(&format!("index_add f32 ({o},{d},{n}) n_ids={}", ids.len()), &got, &want, TOL_F32);
        let want = backend::index_add(&on_cpu(&dy, DType::BF16), &ic, o, d, n).unwrap();
        let got = twice1("index_add", || backend::index_add(&on_gpu(&dy, DType::BF16), &ig, o, d, n).unwrap().cast(DType::F32).unwrap());
        assert_close(&format!("index_add bf16 ({o},{d},{n}) n_ids={}", ids.len()), &got, &want, TOL_BF16);
    }
}
