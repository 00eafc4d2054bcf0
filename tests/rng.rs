//! Philox4x32-10 against the known-answer vectors published with the algorithm (Random123's
//! kat_vectors), plus the properties kiln relies on: determinism, independence of order, and
//! sane uniform/normal statistics.
use kiln::rng::{normal_vec, philox4x32, uniform_vec, Philox};

#[test]
fn philox4x32_10_known_answers() {
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (ctr, key, want) in cases {
        assert_eq!(philox4x32(10, ctr, key), want, "ctr {ctr:x?} key {key:x?}");
    }
}

#[test]
fn blocks_are_pure_functions_of_the_counter() {
    let g = Philox::new(0xdead_beef_1234);
    let forward: Vec<_> = (0..100u64).map(|i| g.block(i, 3, 0)).collect();
    let backward: Vec<_> = (0..100u64).rev().map(|i| g.block(i, 3, 0)).collect();
    assert!(forward.iter().eq(backward.iter().rev()));
    assert_ne!(g.block(0, 3, 0), g.block(0, 4, 0), "streams must differ");
    assert_ne!(g.block(0, 3, 0), Philox::new(1).block(0, 3, 0), "seeds must differ");
}

#[test]
fn uniform_and_normal_statistics() {
    let n = 200_000;
    let u = uniform_vec(5, 0, n, 0.0, 1.0);
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mean = u.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.005, "uniform mean {mean}");
    let z = normal_vec(6, 0, n, 0.0, 1.0);
    let m = z.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let v = z.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n as f64;
    assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "normal mean {m} var {v}");
    assert_eq!(normal_vec(6, 0, 10, 0.0, 1.0), z[..10].to_vec(), "prefixes agree");
}

#[test]
fn draws_follow_their_counter_layout_and_ranges() {
    use kiln::rng::{below, Draws};
    // Draw j is word 0 of block (first + j, stream, tag): the layout committed results rely on.
    let g = Philox::new(42);
    let mut d = Draws::at(42, 3, 31, 1);
    for j in 0..20u64 {
        assert_eq!(d.below(1000) as u64, below(g.block(1 + j, 3, 31)[0], 1000));
    }
    let mut a = Draws::new(42, 3);
    assert_eq!(a.below(1 << 30) as u64, below(g.block(0, 3, 11)[0], 1 << 30), "new: tag 11 from counter 0");
    // Ranges: below n, lo..=hi with both ends reached, `other` never its excluded value.
    let mut d = Draws::new(7, 0);
    let xs: Vec<usize> = (0..2000).map(|_| d.range(2, 5)).collect();
    assert!(xs.iter().all(|x| (2..=5).contains(x)) && xs.contains(&2) && xs.contains(&5));
    assert!((0..2000).all(|_| d.other(4, 1) != 1) && (0..2000).all(|_| d.below(3) < 3));
    assert!((0..2000).map(|_| d.unit()).all(|u| (0.0..1.0).contains(&u)));
    // pick follows its distribution; a zero-probability index is never drawn.
    let p = [0.2, 0.0, 0.5, 0.3];
    let mut counts = [0usize; 4];
    (0..20_000).for_each(|_| counts[d.pick(&p)] += 1);
    assert_eq!(counts[1], 0);
    for (c, q) in counts.iter().zip(p) {
        assert!((*c as f64 / 20_000.0 - q).abs() < 0.015, "{counts:?}");
    }
}
