//! The hash tree over one inverted list's re-ranking rows (spec: docs/index-format.md, "Row
//! trees"): how a client checks a row it fetched when the list that named the row carries one
//! 8-byte root instead of a digest per entry. The row's record carries its path.
//!
//! A list's tree has exactly `levels` levels for every list of the index, so that every record
//! of the rows file has the same length and is found by its doc alone:
//!
//! ```text
//! leaf j  = the row digest of the list's entry j (sha256 of its record's row bytes, first 8)
//!           for j < entries, else zero[0] (8 zero bytes)
//! node    = sha256(0x01 || left || right)[..8]
//! zero[i + 1] = node(zero[i], zero[i])
//! ```
//!
//! A path is the `levels` digests beside the leaf, lowest first. Since every record holds a
//! row of exactly `4 + dim` bytes and every path exactly `levels` digests, no node can be read
//! as a row or the other way round.
//!
//! Chosen over the release's part trees (searchbar_release::merkle) for two reasons: rows are
//! addressed by doc in a file of fixed-size records, so their paths must all be as long (that
//! tree's depend on a part's place); and a row is checked with the 8-byte digests the rows
//! always had, not 16.

use crate::rows::{self, ROW_DIGEST_LEN};
use sha2::{Digest as _, Sha256};

/// One digest of the tree: a row's, or a node's.
pub(crate) type Digest = [u8; ROW_DIGEST_LEN];

/// Levels of every list's tree, the fewest that hold the longest list.
pub(crate) fn levels_for(longest: usize) -> u32 {
    longest.max(1).next_power_of_two().trailing_zeros()
}

/// Bytes of a path of `levels` digests.
pub(crate) fn path_len(levels: u32) -> usize {
    levels as usize * ROW_DIGEST_LEN
}

fn node(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    let mut d = [0u8; ROW_DIGEST_LEN];
    d.copy_from_slice(&h.finalize()[..ROW_DIGEST_LEN]);
    d
}

/// The root of an empty subtree of each height `0..=levels`.
fn zeros(levels: u32) -> Vec<Digest> {
    let mut z = vec![[0u8; ROW_DIGEST_LEN]];
    for i in 0..levels as usize {
        z.push(node(&z[i], &z[i]));
    }
    z
}

/// The tree over `leaves` (a list's row digests, in list order), `levels` high: its root, and
/// each leaf's path laid end to end (`path_len(levels)` bytes a leaf).
pub(crate) fn build(leaves: &[Digest], levels: u32) -> (Digest, Vec<u8>) {
    let zero = zeros(levels);
    let mut tree: Vec<Vec<Digest>> = vec![leaves.to_vec()];
    for i in 0..levels as usize {
        let level = &tree[i];
        let next = (0..level.len().div_ceil(2).max(1))
            .map(|k| {
                let left = level.get(2 * k).unwrap_or(&zero[i]);
                node(left, level.get(2 * k + 1).unwrap_or(&zero[i]))
            })
            .collect();
        tree.push(next);
    }
    let root = tree[levels as usize].first().copied().unwrap_or(zero[0]);
    let mut paths = Vec::with_capacity(leaves.len() * path_len(levels));
    for j in 0..leaves.len() {
        for (i, level) in tree.iter().take(levels as usize).enumerate() {
            paths.extend_from_slice(level.get((j >> i) ^ 1).unwrap_or(&zero[i]));
        }
    }
    (root, paths)
}

/// The root that `row` (a record's row bytes) at entry `at` of its list climbs to along
/// `path` (`path_len(levels)` bytes, checked by the caller).
pub(crate) fn root_of(row: &[u8], at: u32, path: &[u8]) -> Digest {
    let mut h = rows::digest(row);
    for (i, sibling) in path.chunks_exact(ROW_DIGEST_LEN).enumerate() {
        let mut s = [0u8; ROW_DIGEST_LEN];
        s.copy_from_slice(sibling);
        h = if (at >> i) & 1 == 0 {
            node(&h, &s)
        } else {
            node(&s, &h)
        };
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_climbs_to_the_root_and_no_other_place_does() {
        for count in [0usize, 1, 2, 3, 5, 8, 13] {
            let levels = levels_for(count);
            assert!(1 << levels >= count.max(1));
            let bodies: Vec<Vec<u8>> = (0..count).map(|j| vec![j as u8; 12]).collect();
            let leaves: Vec<Digest> = bodies.iter().map(|b| rows::digest(b)).collect();
            let (root, paths) = build(&leaves, levels);
            let p = path_len(levels);
            assert_eq!(paths.len(), count * p);
            for (j, body) in bodies.iter().enumerate() {
                let path = &paths[j * p..(j + 1) * p];
                assert_eq!(
                    root_of(body, j as u32, path),
                    root,
                    "{count} leaves, at {j}"
                );
                if count > 1 {
                    let other = (j + 1) % count;
                    assert_ne!(root_of(body, other as u32, path), root);
                    assert_ne!(root_of(&bodies[other], j as u32, path), root);
                }
            }
        }
        // A deeper tree than needed has another root, so `levels` is part of what is checked.
        let leaves = [rows::digest(b"a"), rows::digest(b"b")];
        assert_ne!(build(&leaves, 1).0, build(&leaves, 2).0);
    }
}
