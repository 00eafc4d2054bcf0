//! Tensor basics: creation, views (reshape, permute, narrow, concat, index_select) with values and
//! f64 gradchecks, dtype/device conversion, ndarray round trips, and errors that name the op.
mod common;
use common::*;
use kiln::{DType, Device, Error, Tensor};

fn arange(n: usize, shape: &[usize]) -> Tensor {
    Tensor::from_vec((0..n).map(|i| i as f32).collect(), shape.to_vec()).unwrap()
}

#[test]
fn creation_and_readback() {
    let z = Tensor::zeros([2, 3], DType::F32, Device::Cpu).unwrap();
    assert_eq!(z.to_vec_f32().unwrap(), vec![0.0; 6]);
    let o = Tensor::ones([4], DType::F64, Device::Cpu).unwrap();
    assert_eq!(o.dtype(), DType::F64);
    assert_eq!(o.to_vec_f64().unwrap(), vec![1.0; 4]);
    let r1 = Tensor::randn([3, 5], 1.0, 42, 0).unwrap().to_vec_f32().unwrap();
    let r2 = Tensor::randn([3, 5], 1.0, 42, 0).unwrap().to_vec_f32().unwrap();
    assert_eq!(r1, r2, "same seed, same values");
    let u = Tensor::uniform([1000], -2.0, 3.0, 1, 0).unwrap().to_vec_f32().unwrap();
    assert!(u.iter().all(|&x| (-2.0..3.0).contains(&x)));
    assert!(matches!(Tensor::from_vec(vec![1.0; 5], [2, 3]).unwrap_err(), Error::BadShape { .. }));
}

#[test]
fn permute_narrow_concat_index_select_values() {
    let x = arange(24, &[2, 3, 4]);
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.dims(), &[4, 2, 3]);
    // p[i, j, k] = x[j, k, i] = j*12 + k*4 + i
    let pv = p.to_vec_f32().unwrap();
    let at = |i: usize, j: usize, k: usize| pv[i * 6 + j * 3 + k]; // p is (4, 2, 3), row-major
    assert_eq!(at(0, 1, 2), (12 + 8) as f32);
    assert_eq!(at(3, 0, 1), (4 + 3) as f32);
    let t = x.transpose(0, -1).unwrap();
    assert_eq!(t.dims(), &[4, 3, 2]);
    let n = x.narrow(1, 1, 2).unwrap();
    assert_eq!(n.dims(), &[2, 2, 4]);
    assert_eq!(n.to_vec_f32().unwrap()[..4], [4.0, 5.0, 6.0, 7.0]);
    let c = Tensor::concat(&[x.narrow(2, 0, 1).unwrap(), x.narrow(2, 1, 3).unwrap()], 2).unwrap();
    assert_eq!(c.to_vec_f32().unwrap(), x.to_vec_f32().unwrap());
    let ids = Tensor::from_vec_u32(vec![2, 0, 2], [3]).unwrap();
    let s = x.index_select(&ids, 1).unwrap();
    assert_eq!(s.dims(), &[2, 3, 4]);
    assert_eq!(s.to_vec_f32().unwrap()[..8], [8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn gradcheck_views() {
    let x = randn64(&[2, 3, 4], 1);
    check_grads(|t| t[0].reshape([6, 4])?.permute(&[1, 0]), std::slice::from_ref(&x));
    check_grads(|t| t[0].narrow(2, 1, 2), std::slice::from_ref(&x));
    check_grads(|t| Tensor::concat(&[t[0].clone(), t[1].clone()], 1), &[x.clone(), randn64(&[2, 5, 4], 2)]);
    let ids = Tensor::from_vec_u32(vec![1, 1, 0, 2], [4]).unwrap();
    check_grads(|t| t[0].index_select(&t[1], 1), &[x, ids]);
}

#[test]
fn dtype_conversion_and_ndarray_round_trip() {
    let x = randn(&[3, 4], 3);
    let b = x.to_dtype(DType::BF16).unwrap();
    assert_eq!(b.dtype(), DType::BF16);
    let back = b.to_dtype(DType::F32).unwrap().to_vec_f32().unwrap();
    for (a, c) in x.to_vec_f32().unwrap().iter().zip(&back) {
        assert!((a - c).abs() <= a.abs() / 128.0, "bf16 keeps 8 bits: {a} vs {c}");
    }
    let arr = x.to_ndarray().unwrap();
    assert_eq!(arr.shape(), &[3, 4]);
    assert_eq!(Tensor::from_ndarray(&arr).unwrap().to_vec_f32().unwrap(), x.to_vec_f32().unwrap());
    // A transposed (non-standard layout) ndarray comes back in logical order.
    let tr = arr.t().to_owned().into_dyn();
    let t2 = Tensor::from_ndarray(&arr.t().into_dyn().to_owned()).unwrap();
    assert_eq!(t2.to_vec_f32().unwrap(), tr.iter().copied().collect::<Vec<_>>());
    assert_eq!(t2.to_vec_f32().unwrap(), x.transpose(0, 1).unwrap().to_vec_f32().unwrap());
}

#[test]
fn view_errors_name_the_op() {
    let x = randn(&[2, 3], 1);
    let e = x.reshape([4, 2]).unwrap_err();
    assert!(e.to_string().contains("reshape") && e.to_string().contains("[2, 3]") && e.to_string().contains("[4, 2]"), "{e}");
    assert!(x.permute(&[0, 0]).unwrap_err().to_string().contains("permute"));
    assert!(matches!(x.narrow(1, 2, 2).unwrap_err(), Error::OutOfRange { op: "narrow", .. }));
    assert!(matches!(x.sum(5, false).unwrap_err(), Error::OutOfRange { .. }));
    let e = Tensor::concat(&[x.clone(), randn(&[3, 3], 2)], 1).unwrap_err();
    assert!(e.to_string().contains("concat"), "{e}");
    let ids = Tensor::from_vec_u32(vec![0, 3], [2]).unwrap();
    let e = x.index_select(&ids, 1).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { op: "index_select", .. }) && e.to_string().contains("3"), "{e}");
    assert!(x.to_device(Device::Cuda(0)).is_err(), "no GPU here: a clear error, not a panic");
}
