//! Invertible augmentations of ARC tasks (Akyürek et al. 2024, §TTT data and augmented
//! inference): the 8 symmetries of the square (rotations, flips, transposes), permutations of the
//! colours 1..=9 (0, the background, stays fixed), and permutations of the demonstration order.
//! A `Transform` applies a symmetry after a colour permutation to every grid of a task; its
//! `invert` maps an answer produced in the transformed frame back to the original one.

use super::grid::Grid;
use crate::rng::Philox;

/// The dihedral group of the square: out = op(in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dihedral {
    Identity,
    Rot90,
    Rot180,
    Rot270,
    FlipH,
    FlipV,
    Transpose,
    AntiTranspose,
}

pub const DIHEDRAL: [Dihedral; 8] = [
    Dihedral::Identity,
    Dihedral::Rot90,
    Dihedral::Rot180,
    Dihedral::Rot270,
    Dihedral::FlipH,
    Dihedral::FlipV,
    Dihedral::Transpose,
    Dihedral::AntiTranspose,
];

impl Dihedral {
    /// g (h x w) -> the transformed grid. Rot90 is clockwise; FlipH mirrors left-right.
    pub fn apply(self, g: &Grid) -> Grid {
        let (h, w) = (g.h, g.w);
        match self {
            Dihedral::Identity => g.clone(),
            Dihedral::Rot90 => g.remap(w, h, |r, c| (h - 1 - c, r)),
            Dihedral::Rot180 => g.remap(h, w, |r, c| (h - 1 - r, w - 1 - c)),
            Dihedral::Rot270 => g.remap(w, h, |r, c| (c, w - 1 - r)),
            Dihedral::FlipH => g.remap(h, w, |r, c| (r, w - 1 - c)),
            Dihedral::FlipV => g.remap(h, w, |r, c| (h - 1 - r, c)),
            Dihedral::Transpose => g.remap(w, h, |r, c| (c, r)),
            Dihedral::AntiTranspose => g.remap(w, h, |r, c| (h - 1 - c, w - 1 - r)),
        }
    }
    pub fn inverse(self) -> Dihedral {
        match self {
            Dihedral::Rot90 => Dihedral::Rot270,
            Dihedral::Rot270 => Dihedral::Rot90,
            d => d,
        }
    }
}

/// A permutation of the 10 colours with 0 fixed: out colour = map[in colour].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ColourPerm(pub [u8; 10]);

impl ColourPerm {
    pub fn identity() -> ColourPerm {
        ColourPerm([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }
    /// A uniformly random permutation of 1..=9 (Fisher-Yates on Philox(seed) at `index`).
    pub fn random(seed: u64, index: u64) -> ColourPerm {
        let g = Philox::new(seed);
        let mut m = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        for i in (2..10).rev() {
            let x = g.block(index, i as u32, 7)[0];
            let j = 1 + ((x as u64 * i as u64) >> 32) as usize; // in 1..=i
            m.swap(i, j);
        }
        ColourPerm(m)
    }
    pub fn apply(&self, g: &Grid) -> Grid {
        Grid { h: g.h, w: g.w, cells: g.cells.iter().map(|&c| self.0[c as usize]).collect() }
    }
    pub fn inverse(&self) -> ColourPerm {
        let mut inv = [0u8; 10];
        for (i, &m) in self.0.iter().enumerate() {
            inv[m as usize] = i as u8;
        }
        ColourPerm(inv)
    }
}

/// A task-level transform: colours permuted, then the symmetry applied, to every grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transform {
    pub dihedral: Dihedral,
    pub colours: ColourPerm,
}

impl Transform {
    pub fn identity() -> Transform {
        Transform { dihedral: Dihedral::Identity, colours: ColourPerm::identity() }
    }
    pub fn apply(&self, g: &Grid) -> Grid {
        self.dihedral.apply(&self.colours.apply(g))
    }
    /// The original-frame grid whose transform is `g`.
    pub fn invert(&self, g: &Grid) -> Grid {
        self.colours.inverse().apply(&self.dihedral.inverse().apply(g))
    }
    /// A short label, e.g. "rot90+c3" for reports.
    pub fn label(&self) -> String {
        let c = if self.colours == ColourPerm::identity() { String::new() } else { format!("+perm{:?}", &self.colours.0[1..]) };
        format!("{:?}{c}", self.dihedral)
    }
}

/// A permutation of 0..n (demonstration order) from Philox(seed) at `index`.
pub fn order_perm(n: usize, seed: u64, index: u64) -> Vec<usize> {
    crate::train::epoch_permutation(seed ^ 0x0a4c_5eed, index, n)
}
