//! The batched sorting-free sampler (src/sample/) against a sort-based reference written here in
//! f64: item 6 of shared/KERNELS.md (never a masked id or an id >= V; empirical frequencies over
//! 1e6 draws match the renormalised filtered distribution; k >= V and p = 1 mean "off"; per-row
//! parameters) plus the documented tie rules, batch-composition independence, greedy = argmax
//! and the errors.
use kiln::rng::normal_vec;
use kiln::sample::{row_uniform, sample, sample_tensor, SamplingParams};
use kiln::{DType, Tensor};

#[path = "common/sampling_reference.rs"]
mod sampling_reference;
use sampling_reference::reference;

const NEG_INF: f32 = f32::NEG_INFINITY;

fn params(t: f32, k: usize, p: f32, min_p: f32) -> SamplingParams {
    SamplingParams { temperature: t, top_k: k, top_p: p, min_p }
}


/// `n` logits, normal with std `scale`, a pure function of `seed`.
fn logits(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    normal_vec(seed, 0, n, 0.0, scale)
}

/// Counts of 1e6 draws for one row of logits: 1000 row ids x 1000 steps, batched 1000 rows a call.
fn histogram(x: &[f32], sp: SamplingParams) -> Vec<u64> {
    let (v, b) = (x.len(), 1000);
    let batch: Vec<f32> = (0..b).flat_map(|_| x.iter().copied()).collect();
    let rows: Vec<u32> = (0..b as u32).collect();
    let mut counts = vec![0u64; v];
    for step in 0..1000 {
        for t in sample(&batch, v, &vec![sp; b], 42, &rows, step).unwrap() {
            counts[t as usize] += 1;
        }
    }
    counts
}

/// Chi-square over the kept ids, cosine similarity, and zero counts on masked ids.
fn assert_matches(counts: &[u64], q: &[f64], what: &str) {
    let n: u64 = counts.iter().sum();
    let mut chi2 = 0.0;
    let mut df = 0.0f64;
    for (i, (&c, &qi)) in counts.iter().zip(q).enumerate() {
        if qi == 0.0 {
            assert_eq!(c, 0, "{what}: masked id {i} drawn {c} times");
        } else {
            let e = n as f64 * qi;
            chi2 += (c as f64 - e).powi(2) / e;
            df += 1.0;
        }
    }
    df -= 1.0;
    let dot: f64 = counts.iter().zip(q).map(|(&c, &qi)| c as f64 * qi).sum();
    let nc = counts.iter().map(|&c| (c as f64).powi(2)).sum::<f64>().sqrt();
    let nq = q.iter().map(|qi| qi * qi).sum::<f64>().sqrt();
    let cosine = dot / (nc * nq);
    assert!(cosine > 0.999, "{what}: cosine {cosine}");
    // mean df, sd sqrt(2 df): 6 sd is far in the tail for every df used here.
    assert!(chi2 <= df + 6.0 * (2.0 * df).sqrt(), "{what}: chi-square {chi2:.1} with {df} dof; counts {counts:?}");
}

#[test]
fn frequencies_match_the_filtered_distribution() {
    let x = logits(20, 1.5, 1);
    let cases = [
        ("temperature 1", params(1.0, 0, 1.0, 0.0)),
        ("temperature 0.6", params(0.6, 0, 1.0, 0.0)),
        ("top-k 5", params(1.0, 5, 1.0, 0.0)),
        ("top-p 0.8", params(1.0, 0, 0.8, 0.0)),
        ("min-p 0.1", params(1.0, 0, 1.0, 0.1)),
        ("T 1.3 + top-k 12 + top-p 0.9 + min-p 0.05", params(1.3, 12, 0.9, 0.05)),
    ];
    for (what, sp) in cases {
        let q = reference(&x, &sp);
        let kept = q.iter().filter(|&&qi| qi > 0.0).count();
        assert!((kept > 2 && kept < 20) || (sp.top_k == 0 && sp.top_p == 1.0 && sp.min_p == 0.0), "{what}: weak case ({kept} kept)");
        assert_matches(&histogram(&x, sp), &q, what);
    }
}

#[test]
fn never_a_masked_id_or_an_id_out_of_range() {
    let grid = [
        params(1.0, 0, 1.0, 0.0),
        params(0.7, 3, 1.0, 0.0),
        params(1.5, 0, 0.5, 0.0),
        params(1.0, 0, 1.0, 0.3),
        params(2.0, 10, 0.9, 0.02),
        params(0.3, 1, 0.2, 0.5),
        params(1.0, 100, 0.95, 0.0),
        params(1e-3, 0, 0.99, 0.0),
    ];
    for (v, quantise) in [(1, false), (2, true), (7, false), (257, true), (1000, false), (4096, true)] {
        let b = 24;
        let mut x = logits(b * v, 3.0, v as u64);
        for (i, xi) in x.iter_mut().enumerate() {
            if quantise {
                *xi = (*xi * 2.0).round() / 2.0; // many ties
            }
            if i % 7 == 3 && i % v != 0 {
                *xi = NEG_INF; // never drawable
            }
        }
        let ps: Vec<SamplingParams> = (0..b).map(|r| grid[r % grid.len()]).collect();
        let rows: Vec<u32> = (0..b as u32).map(|r| r * 97 + 5).collect();
        // a slightly larger reference set absorbs f32-vs-f64 rounding at the top-p / min-p edges
        let allowed: Vec<Vec<f64>> = (0..b)
            .map(|r| {
                let sp = ps[r];
                let relaxed = params(sp.temperature, sp.top_k, (sp.top_p + 1e-4).min(1.0), sp.min_p * (1.0 - 1e-4));
                reference(&x[r * v..(r + 1) * v], &relaxed)
            })
            .collect();
        for step in 0..40 {
            let tokens = sample(&x, v, &ps, 9, &rows, step).unwrap();
            for (r, &t) in tokens.iter().enumerate() {
                assert!((t as usize) < v, "V {v} row {r}: id {t} out of range");
                assert!(allowed[r][t as usize] > 0.0, "V {v} row {r} step {step} {:?}: masked id {t} (logit {})", ps[r], x[r * v + t as usize]);
            }
        }
    }
}

#[test]
fn k_at_least_v_and_p_one_and_min_p_zero_mean_off() {
    let (b, v) = (32, 300);
    let x = logits(b * v, 2.0, 3);
    let rows: Vec<u32> = (0..b as u32).collect();
    let plain = vec![params(0.8, 0, 1.0, 0.0); b];
    for off in [params(0.8, v, 1.0, 0.0), params(0.8, v + 7, 1.0, 0.0), params(0.8, usize::MAX, 1.0, 0.0)] {
        for step in 0..20 {
            let want = sample(&x, v, &plain, 5, &rows, step).unwrap();
            assert_eq!(sample(&x, v, &vec![off; b], 5, &rows, step).unwrap(), want, "{off:?} step {step}");
        }
    }
    // and the filters do act when on: top-k 2 changes some tokens
    let on = sample(&x, v, &vec![params(0.8, 2, 1.0, 0.0); b], 5, &rows, 0).unwrap();
    assert_ne!(on, sample(&x, v, &plain, 5, &rows, 0).unwrap());
}

#[test]
fn per_row_parameters_apply_to_their_row() {
    let v = 50;
    let row = logits(v, 1.0, 11);
    let x: Vec<f32> = (0..4).flat_map(|_| row.iter().copied()).collect();
    let ps = [SamplingParams::greedy(), params(5.0, 1, 1.0, 0.0), params(3.0, 3, 1.0, 0.0), params(3.0, 0, 1.0, 0.0)];
    let mut order: Vec<usize> = (0..v).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    let top3 = &order[..3];
    let mut seen = vec![std::collections::BTreeSet::new(); 4];
    for step in 0..300 {
        let t = sample(&x, v, &ps, 1, &[0, 1, 2, 3], step).unwrap();
        for r in 0..4 {
            seen[r].insert(t[r] as usize);
        }
    }
    assert_eq!(seen[0].iter().copied().collect::<Vec<_>>(), vec![order[0]], "greedy row");
    assert_eq!(seen[1].iter().copied().collect::<Vec<_>>(), vec![order[0]], "top-k 1 row");
    let mut want3 = top3.to_vec();
    want3.sort();
    assert_eq!(seen[2].iter().copied().collect::<Vec<_>>(), want3, "top-k 3 row");
    assert!(seen[3].iter().any(|t| !top3.contains(t)), "unfiltered row never left the top 3");
}

#[test]
fn a_rows_token_does_not_depend_on_the_batch() {
    let (b, v) = (12, 700);
    let x = logits(b * v, 3.0, 21);
    let ps: Vec<SamplingParams> = (0..b).map(|r| params(0.5 + r as f32 * 0.1, [0, 5, 40][r % 3], [1.0, 0.9, 0.6, 0.95][r % 4], [0.0, 0.01][r % 2])).collect();
    let rows: Vec<u32> = vec![0, 1, 2, 17, 1 << 20, u32::MAX, 5, 6, 99, 1000, 3, 4];
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    for step in [0, 1, 2, 77, u32::MAX] {
        let batch = sample(&x, v, &ps, 123, &rows, step).unwrap();
        for r in 0..b {
            let alone = sample(&x[r * v..(r + 1) * v], v, &ps[r..r + 1], 123, &rows[r..r + 1], step).unwrap();
            assert_eq!(alone[0], batch[r], "row {r} alone vs in batch, step {step}");
        }
        let rev = |s: &[f32]| -> Vec<f32> { (0..b).rev().flat_map(|r| s[r * v..(r + 1) * v].to_vec()).collect() };
        let rps: Vec<_> = ps.iter().rev().copied().collect();
        let rrows: Vec<_> = rows.iter().rev().copied().collect();
        let mut reversed = sample(&rev(&x), v, &rps, 123, &rrows, step).unwrap();
        reversed.reverse();
        assert_eq!(reversed, batch, "reversed batch, step {step}");
        assert_eq!(single.install(|| sample(&x, v, &ps, 123, &rows, step).unwrap()), batch, "one thread, step {step}");
    }
    // and the draw does depend on seed, row id and step
    let u = row_uniform(1, 2, 3);
    assert!((0.0..1.0).contains(&u));
    assert!(u != row_uniform(2, 2, 3) && u != row_uniform(1, 3, 3) && u != row_uniform(1, 2, 4));
}

#[test]
fn greedy_is_the_first_argmax() {
    let (b, v) = (16, 333);
    let mut x = logits(b * v, 1.0, 8);
    x[5 * v + 10] = 9.0; // tie at the max in row 5: ids 10 and 200
    x[5 * v + 200] = 9.0;
    x[6 * v..7 * v].iter_mut().for_each(|xi| *xi = NEG_INF);
    x[6 * v + 300] = -1e30; // only one finite logit
    let ps = vec![SamplingParams::greedy().with_top_k(3).with_top_p(0.5); b];
    let got = sample(&x, v, &ps, 0, &(0..b as u32).collect::<Vec<_>>(), 0).unwrap();
    for r in 0..b {
        let row = &x[r * v..(r + 1) * v];
        let m = row.iter().fold(NEG_INF, |a, &b| a.max(b));
        assert_eq!(got[r] as usize, row.iter().position(|&xi| xi == m).unwrap(), "row {r}");
    }
    assert_eq!(got[5], 10);
    assert_eq!(got[6], 300);
}

/// The set of ids drawn over many steps.
fn drawn(x: &[f32], sp: SamplingParams, steps: u32) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..steps).map(|s| sample(x, x.len(), &[sp], 3, &[0], s).unwrap()[0]).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn ties_at_the_top_k_and_top_p_boundaries_are_all_kept() {
    let x = [1.0, 4.0, 2.0, 4.0, 2.0, 2.0, 0.0, NEG_INF];
    // sorted: 4 4 2 2 2 1 0 -inf; every token equal to the k-th largest logit survives
    assert_eq!(drawn(&x, params(3.0, 1, 1.0, 0.0), 400), vec![1, 3]);
    assert_eq!(drawn(&x, params(3.0, 2, 1.0, 0.0), 400), vec![1, 3]);
    assert_eq!(drawn(&x, params(3.0, 3, 1.0, 0.0), 400), vec![1, 2, 3, 4, 5]);
    assert_eq!(drawn(&x, params(3.0, 6, 1.0, 0.0), 400), vec![0, 1, 2, 3, 4, 5]);
    // -0.0 and +0.0 are the same logit
    assert_eq!(drawn(&[0.0, -0.0, -1.0], params(1.0, 1, 1.0, 0.0), 200), vec![0, 1]);
    // top-p: masses e^2 : e : e : 1 = 0.53 : 0.20 : 0.20 : 0.07; the tie at e enters whole
    let y = [2.0, 1.0, 1.0, 0.0];
    assert_eq!(drawn(&y, params(1.0, 0, 0.5, 0.0), 200), vec![0]);
    assert_eq!(drawn(&y, params(1.0, 0, 0.6, 0.0), 400), vec![0, 1, 2]);
    assert_eq!(drawn(&y, params(1.0, 0, 0.95, 0.0), 800), vec![0, 1, 2, 3]);
    // min-p 0.3: e^-1 = 0.37 kept, e^-2 = 0.14 dropped
    assert_eq!(drawn(&y, params(1.0, 0, 1.0, 0.3), 400), vec![0, 1, 2]);
}

#[test]
fn tensor_front_end_matches_the_slice_version() {
    let (b, v) = (5, 64);
    let x = logits(b * v, 2.0, 4);
    let ps = vec![params(0.9, 10, 0.9, 0.0); b];
    let rows = [4, 3, 2, 1, 0];
    let want = sample(&x, v, &ps, 7, &rows, 2).unwrap();
    let t32 = Tensor::from_vec(x.clone(), [b, v]).unwrap();
    let got = sample_tensor(&t32, &ps, 7, &rows, 2).unwrap();
    assert_eq!((got.dims(), got.dtype()), (&[b][..], DType::U32));
    assert_eq!(got.to_vec_u32().unwrap(), want);
    let t64 = t32.to_dtype(DType::F64).unwrap();
    assert_eq!(sample_tensor(&t64, &ps, 7, &rows, 2).unwrap().to_vec_u32().unwrap(), want);
    // errors: rank, dtype, params per row
    assert!(sample_tensor(&t32.reshape([b * v]).unwrap(), &ps, 7, &rows, 2).is_err());
    assert!(sample_tensor(&Tensor::from_vec_u32(vec![0; b * v], [b, v]).unwrap(), &ps, 7, &rows, 2).is_err());
    assert!(sample_tensor(&t32, &ps[..2], 7, &rows, 2).is_err());
}

fn expect_err(r: kiln::Result<Vec<u32>>, needles: &[&str]) {
    match r {
        Ok(t) => panic!("expected an error containing {needles:?}, got tokens {t:?}"),
        Err(e) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "error {msg:?} lacks {n:?}");
            }
        }
    }
}

#[test]
fn bad_input_is_an_error_naming_what_and_where() {
    let v = 6;
    let x = logits(3 * v, 1.0, 5);
    let ps = vec![SamplingParams::default(); 3];
    let rows = [10, 11, 12];
    for (bad, what) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let mut y = x.clone();
        y[v + 4] = bad;
        expect_err(sample(&y, v, &ps, 0, &rows, 0), &[what, "row id 11", "token 4"]);
        // greedy checks too
        expect_err(sample(&y, v, &[SamplingParams::greedy(); 3], 0, &rows, 0), &["row id 11"]);
    }
    let mut y = x.clone();
    y[2 * v..].iter_mut().for_each(|xi| *xi = NEG_INF);
    expect_err(sample(&y, v, &ps, 0, &rows, 0), &["-inf", "row id 12"]);

    let d = SamplingParams::default();
    for (sp, field) in [
        (d.with_temperature(f32::NAN), "temperature"),
        (d.with_temperature(-0.5), "temperature"),
        (d.with_temperature(f32::INFINITY), "temperature"),
        (d.with_top_p(0.0), "top_p"),
        (d.with_top_p(-0.1), "top_p"),
        (d.with_top_p(1.5), "top_p"),
        (d.with_top_p(f32::NAN), "top_p"),
        (d.with_min_p(1.0), "min_p"),
        (d.with_min_p(-0.1), "min_p"),
        (d.with_min_p(f32::NAN), "min_p"),
    ] {
        assert!(sp.validate().is_err(), "{sp:?}");
        expect_err(sample(&x, v, &[d, sp, d], 0, &rows, 0), &[field, "row id 11"]);
    }
    expect_err(sample(&x[1..], v, &ps, 0, &rows, 0), &["sample"]); // logits not B * V
    expect_err(sample(&x, v, &ps[..2], 0, &rows[..2], 0), &["sample"]);
    expect_err(sample(&x, v, &ps, 0, &rows[..2], 0), &["row ids"]);
    expect_err(sample(&[], 0, &[], 0, &[], 0), &["V"]);
    assert_eq!(sample(&[], v, &[], 0, &[], 0).unwrap(), Vec::<u32>::new()); // an empty batch is fine
}
