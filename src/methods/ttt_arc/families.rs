//! kiln's own generators of ARC-like task families (the embedded default data set). A family is
//! a rule with task-level parameters (a colour map, a fill colour, ...); `generate(family, seed,
//! ...)` draws the parameters and K + 1 random input grids from Philox(seed) and applies the rule,
//! giving K demonstrations and a test pair. Each family yields unlimited tasks; the same seed
//! always gives the same task.

use super::augment::{ColourPerm, Dihedral};
use super::data::{Pair, Query, Task};
use super::grid::Grid;
pub use crate::rng::Draws;
use crate::{Error, Result};

pub const FAMILIES: [&str; 14] = [
    "flip_h", "flip_v", "rot90", "rot180", "transpose", "colour_map", "shift_right", "shift_down", "upscale2", "gravity", "fill_bg", "count",
    "mirror_concat", "recolour_one",
];

/// The task-level parameters of one task.
struct Params {
    perm: ColourPerm,
    colour: u8,
    other: u8,
}

fn random_grid(d: &mut Draws, h: usize, w: usize, palette: &[u8], density: usize) -> Grid {
    let cells = (0..h * w).map(|_| if d.range(1, 10) <= density { palette[d.range(0, palette.len() - 1)] } else { 0 }).collect();
    Grid { h, w, cells }
}

/// The input side range of a family within [min, max] (upscale2 halves it; count keeps small).
fn sides(family: &str, min: usize, max: usize) -> (usize, usize) {
    match family {
        "upscale2" | "mirror_concat" => (min.div_ceil(2).max(1), (max / 2).max(min.div_ceil(2)).max(1)),
        _ => (min, max),
    }
}

fn input(family: &str, d: &mut Draws, p: &Params, min: usize, max: usize) -> Grid {
    let (lo, hi) = sides(family, min, max);
    let (h, w) = (d.range(lo, hi), d.range(lo, hi));
    match family {
        // cells of one colour only, at most 6 of them
        "count" => {
            let mut g = Grid { h, w, cells: vec![0; h * w] };
            let n = d.range(1, (h * w).min(6));
            for _ in 0..n * 4 {
                let i = d.range(0, h * w - 1);
                if g.cells.iter().filter(|&&c| c != 0).count() < n {
                    g.cells[i] = p.colour;
                }
            }
            if g.cells.iter().all(|&c| c == 0) {
                g.cells[0] = p.colour;
            }
            g
        }
        "fill_bg" | "recolour_one" => {
            let palette: Vec<u8> = (1..10).filter(|&c| c != p.colour).collect();
            let mut g = random_grid(d, h, w, &palette, 5);
            if family == "recolour_one" {
                let i = d.range(0, h * w - 1);
                g.cells[i] = p.other;
            }
            g
        }
        _ => {
            let palette: Vec<u8> = (0..3).map(|_| d.range(1, 9) as u8).collect();
            random_grid(d, h, w, &palette, 5)
        }
    }
}

fn apply(family: &str, p: &Params, g: &Grid) -> Result<Grid> {
    let (h, w) = (g.h, g.w);
    Ok(match family {
        "flip_h" => Dihedral::FlipH.apply(g),
        "flip_v" => Dihedral::FlipV.apply(g),
        "rot90" => Dihedral::Rot90.apply(g),
        "rot180" => Dihedral::Rot180.apply(g),
        "transpose" => Dihedral::Transpose.apply(g),
        "colour_map" => p.perm.apply(g),
        "shift_right" => g.remap(h, w, |r, c| (r, (c + w - 1) % w)),
        "shift_down" => g.remap(h, w, |r, c| ((r + h - 1) % h, c)),
        "upscale2" => g.remap(2 * h, 2 * w, |r, c| (r / 2, c / 2)),
        "mirror_concat" => g.remap(h, 2 * w, |r, c| (r, if c < w { c } else { 2 * w - 1 - c })),
        "gravity" => {
            let mut out = Grid { h, w, cells: vec![0; h * w] };
            for c in 0..w {
                let col: Vec<u8> = (0..h).map(|r| g.get(r, c)).filter(|&x| x != 0).collect();
                for (i, &x) in col.iter().rev().enumerate() {
                    out.set(h - 1 - i, c, x);
                }
            }
            out
        }
        "fill_bg" => Grid { h, w, cells: g.cells.iter().map(|&c| if c == 0 { p.colour } else { c }).collect() },
        // the one cell of colour `other` takes colour `colour`
        "recolour_one" => Grid { h, w, cells: g.cells.iter().map(|&c| if c == p.other { p.colour } else { c }).collect() },
        "count" => {
            let n = g.cells.iter().filter(|&&c| c != 0).count();
            Grid::filled(1, n, p.colour)?
        }
        other => return Err(Error::Msg(format!("ttt-arc: unknown task family `{other}` (known: {})", FAMILIES.join(", ")))),
    })
}

/// Task `seed` of `family`: `k` demonstrations and one test pair, input sides in min..=max.
pub fn generate(family: &str, seed: u64, k: usize, min: usize, max: usize) -> Result<Task> {
    if !FAMILIES.contains(&family) {
        return Err(Error::Msg(format!("ttt-arc: unknown task family `{family}` (known: {})", FAMILIES.join(", "))));
    }
    let fam = FAMILIES.iter().position(|f| *f == family).unwrap_or(0) as u32;
    let mut d = Draws::new(seed, fam);
    let colour = d.range(1, 9) as u8;
    let other = (1..10u8).filter(|&c| c != colour).nth(d.range(0, 7)).unwrap_or(1);
    let p = Params { perm: ColourPerm::random(seed, fam as u64), colour, other };
    let mut pairs = Vec::with_capacity(k + 1);
    for _ in 0..=k {
        let input = input(family, &mut d, &p, min, max);
        let output = apply(family, &p, &input)?;
        pairs.push(Pair { input, output });
    }
    let q = pairs.pop().expect("k + 1 pairs");
    Ok(Task { id: format!("{family}-{seed}"), train: pairs, test: vec![Query { input: q.input, output: Some(q.output) }] })
}
