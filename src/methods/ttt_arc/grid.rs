//! An ARC grid: 1..=30 rows of 1..=30 cells, each a colour 0..=9 (0 is the background).
//! Construction validates, so every `Grid` in kiln is a legal ARC answer.

use crate::{Error, Result};

pub const MAX_SIDE: usize = 30;
pub const COLOURS: u8 = 10;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grid {
    pub h: usize,
    pub w: usize,
    /// row-major, h * w colours
    pub cells: Vec<u8>,
}

impl Grid {
    /// A grid from row-major cells; sides 1..=30, colours 0..=9.
    pub fn new(h: usize, w: usize, cells: Vec<u8>) -> Result<Grid> {
        if !(1..=MAX_SIDE).contains(&h) || !(1..=MAX_SIDE).contains(&w) {
            return Err(Error::Msg(format!("grid: {h}x{w} is outside 1..={MAX_SIDE} per side")));
        }
        if cells.len() != h * w {
            return Err(Error::Msg(format!("grid: {h}x{w} needs {} cells, got {}", h * w, cells.len())));
        }
        if let Some(c) = cells.iter().find(|&&c| c >= COLOURS) {
            return Err(Error::Msg(format!("grid: colour {c} is outside 0..=9")));
        }
        Ok(Grid { h, w, cells })
    }

    /// A grid from rows (all of one length).
    pub fn from_rows(rows: &[Vec<u8>]) -> Result<Grid> {
        let w = rows.first().map_or(0, |r| r.len());
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != w) {
            return Err(Error::Msg(format!("grid: row {i} has {} cells, row 0 has {w}", r.len())));
        }
        Grid::new(rows.len(), w, rows.concat())
    }

    /// A grid of one colour.
    pub fn filled(h: usize, w: usize, c: u8) -> Result<Grid> {
        Grid::new(h, w, vec![c; h * w])
    }

    pub fn get(&self, r: usize, c: usize) -> u8 {
        self.cells[r * self.w + c]
    }
    pub fn set(&mut self, r: usize, c: usize, v: u8) {
        self.cells[r * self.w + c] = v;
    }

    pub fn rows(&self) -> Vec<Vec<u8>> {
        self.cells.chunks(self.w).map(|r| r.to_vec()).collect()
    }

    /// out(r, c) = self(f(r, c)) for an out grid of h x w (f maps into self). Used by the
    /// geometric transforms.
    pub fn remap(&self, h: usize, w: usize, f: impl Fn(usize, usize) -> (usize, usize)) -> Grid {
        let cells = (0..h * w).map(|i| {
            let (r, c) = f(i / w, i % w);
            self.get(r, c)
        });
        Grid { h, w, cells: cells.collect() }
    }
}

impl serde::Serialize for Grid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.rows().serialize(s)
    }
}
