//! Gridworlds with typed objects, and the feature grammar rewards are written in.
//!
//! A layout is a W x H grid; a cell holds at most one object (lava, water, grass, sand or the
//! flag) and the agent starts on an empty cell. A feature is a small named program over the
//! object-centric state (the agent's cell in its layout):
//!   always      1 in every state (a per-step cost when its weight is negative)
//!   on(k)       the agent's cell holds a k
//!   near(k)     a 4-neighbour of the agent's cell holds a k (the cell itself not counted)
//! The grammar is `always` plus on(k) and near(k) for every kind: 11 features.

use crate::rng::Philox;
use serde::Serialize;

/// Object kinds, in the order the grammar lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Flag,
    Lava,
    Water,
    Grass,
    Sand,
}

pub const KINDS: [Kind; 5] = [Kind::Flag, Kind::Lava, Kind::Water, Kind::Grass, Kind::Sand];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Flag => "flag",
            Kind::Lava => "lava",
            Kind::Water => "water",
            Kind::Grass => "grass",
            Kind::Sand => "sand",
        }
    }
}

/// One feature of the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Feature {
    Always,
    On(Kind),
    Near(Kind),
}

impl Feature {
    pub fn name(self) -> String {
        match self {
            Feature::Always => "always".into(),
            Feature::On(k) => format!("on({})", k.name()),
            Feature::Near(k) => format!("near({})", k.name()),
        }
    }

    /// The feature's value with the agent on `cell` of `layout`.
    pub fn eval(self, layout: &Layout, cell: usize) -> f64 {
        match self {
            Feature::Always => 1.0,
            Feature::On(k) => (layout.cells[cell] == Some(k)) as u8 as f64,
            Feature::Near(k) => layout.neighbours(cell).iter().any(|&c| layout.cells[c] == Some(k)) as u8 as f64,
        }
    }
}

/// Every feature of the grammar: always, then on(k) and near(k) per kind.
pub fn grammar() -> Vec<Feature> {
    std::iter::once(Feature::Always).chain(KINDS.iter().flat_map(|&k| [Feature::On(k), Feature::Near(k)])).collect()
}

/// A grid of cells (row-major), each empty or holding one object, and the agent's start.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Layout {
    pub width: usize,
    pub height: usize,
    pub cells: Vec<Option<Kind>>,
    pub start: usize,
}

/// How often each kind fills a cell (the flag is placed once).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Density {
    pub lava: f64,
    pub water: f64,
    pub grass: f64,
    pub sand: f64,
}

impl Layout {
    /// A random layout for (seed, index): one flag, the start at least `width / 2` steps away
    /// from it, every other cell lava, water, grass, sand or empty by `density`.
    pub fn random(width: usize, height: usize, density: Density, seed: u64, index: u64) -> Layout {
        let g = Philox::new(seed);
        let n = width * height;
        let unit = |w: u32| w as f64 / 4294967296.0;
        let mut counter = 0u32;
        let mut next = || {
            counter += 1;
            g.block(index, counter, 21)
        };
        let flag = ((next()[0] as u64 * n as u64) >> 32) as usize;
        let start = loop {
            let s = ((next()[0] as u64 * n as u64) >> 32) as usize;
            let d = (s % width).abs_diff(flag % width) + (s / width).abs_diff(flag / width);
            if d >= width / 2 {
                break s;
            }
        };
        let cuts = [density.lava, density.lava + density.water, density.lava + density.water + density.grass, density.lava + density.water + density.grass + density.sand];
        let cells = (0..n)
            .map(|c| {
                if c == flag {
                    return Some(Kind::Flag);
                }
                let u = unit(next()[0]);
                if c == start {
                    None
                } else if u < cuts[0] {
                    Some(Kind::Lava)
                } else if u < cuts[1] {
                    Some(Kind::Water)
                } else if u < cuts[2] {
                    Some(Kind::Grass)
                } else if u < cuts[3] {
                    Some(Kind::Sand)
                } else {
                    None
                }
            })
            .collect();
        Layout { width, height, cells, start }
    }

    /// The 4-neighbours of `cell` inside the grid.
    pub fn neighbours(&self, cell: usize) -> Vec<usize> {
        let (x, y) = (cell % self.width, cell / self.width);
        let mut v = Vec::with_capacity(4);
        if x > 0 {
            v.push(cell - 1);
        }
        if x + 1 < self.width {
            v.push(cell + 1);
        }
        if y > 0 {
            v.push(cell - self.width);
        }
        if y + 1 < self.height {
            v.push(cell + self.width);
        }
        v
    }

    /// The state-feature matrix (cells, F) row-major for `features`.
    pub fn feature_matrix(&self, features: &[Feature]) -> Vec<f64> {
        (0..self.cells.len()).flat_map(|c| features.iter().map(move |f| f.eval(self, c))).collect()
    }

    /// The layout as text: one row a line, `F L W g s .` for flag, lava, water, grass, sand,
    /// empty, and `A` for the start.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for y in 0..self.height {
            for x in 0..self.width {
                let c = y * self.width + x;
                out.push(if c == self.start {
                    'A'
                } else {
                    match self.cells[c] {
                        Some(Kind::Flag) => 'F',
                        Some(Kind::Lava) => 'L',
                        Some(Kind::Water) => 'W',
                        Some(Kind::Grass) => 'g',
                        Some(Kind::Sand) => 's',
                        None => '.',
                    }
                });
            }
            out.push('\n');
        }
        out
    }
}
