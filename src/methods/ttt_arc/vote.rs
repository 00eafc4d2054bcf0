//! Hierarchical voting over augmented predictions (Akyürek et al. 2024, §augmented inference):
//! each transformed view of the query gives (after the inverse transform) a candidate grid or
//! nothing (an undecodable answer, dropped). Within each group (one transform, possibly several
//! demo orders) candidates are ranked by count and the top `per_group` kept; across groups a grid
//! scores (groups whose top list holds it, total count in those lists); the top 2 are submitted.
//! Ties fall to the candidate seen first, so the identity view (listed first) wins them.

use super::grid::Grid;
use std::collections::HashMap;

/// Rank distinct grids by count, ties broken by first appearance.
fn ranked(cands: &[&Grid]) -> Vec<(Grid, usize)> {
    let mut order: Vec<(Grid, usize, usize)> = Vec::new(); // grid, count, first index
    let mut at: HashMap<&Grid, usize> = HashMap::new();
    for (i, g) in cands.iter().enumerate() {
        match at.get(g) {
            Some(&k) => order[k].1 += 1,
            None => {
                at.insert(g, order.len());
                order.push(((*g).clone(), 1, i));
            }
        }
    }
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    order.into_iter().map(|(g, n, _)| (g, n)).collect()
}

/// The top (at most) 2 grids of `candidates` = (group id, decoded grid or None), in group order
/// of first appearance.
pub fn vote(candidates: &[(usize, Option<Grid>)], per_group: usize) -> Vec<Grid> {
    let mut groups: Vec<usize> = Vec::new();
    for (g, _) in candidates {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    // grid -> (groups, votes, first seen)
    let mut score: Vec<(Grid, usize, usize, usize)> = Vec::new();
    for g in groups {
        let mine: Vec<&Grid> = candidates.iter().filter(|(k, c)| *k == g && c.is_some()).filter_map(|(_, c)| c.as_ref()).collect();
        for (grid, n) in ranked(&mine).into_iter().take(per_group.max(1)) {
            match score.iter_mut().find(|s| s.0 == grid) {
                Some(s) => (s.1, s.2) = (s.1 + 1, s.2 + n),
                None => {
                    let k = score.len();
                    score.push((grid, 1, n, k));
                }
            }
        }
    }
    score.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.3.cmp(&b.3)));
    score.into_iter().take(2).map(|s| s.0).collect()
}
