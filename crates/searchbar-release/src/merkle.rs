//! The hash tree over one part table page's parts, which lets a client check a part it fetched
//! without the page that lists it: the part carries the digests along its path to the page's
//! root, and the table's root holds each page's tree root ([`crate::table`], "proofs").
//!
//! Digests are [`SHORT_SHA256`] bytes of a sha256 over a tag and the input, the tag keeping a
//! part's digest apart from a node's (so no node can pass for a part):
//!
//! ```text
//! leaf = sha256(0x00 || part)[..16]
//! node = sha256(0x01 || left || right)[..16]
//! ```
//!
//! A level pairs its digests in order; an odd one out at the end goes up unchanged. A part's
//! path is the digest beside it at each level where it has one, lowest first, so its length
//! follows from the part's place and the page's count ([`path_len`]).

use crate::manifest::SHORT_SHA256;
use sha2::{Digest as _, Sha256};

/// One digest of the tree.
pub(crate) type Digest = [u8; SHORT_SHA256];

fn tagged(tag: u8, parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    h.update([tag]);
    for p in parts {
        h.update(p);
    }
    h.finalize()[..SHORT_SHA256]
        .try_into()
        .expect("a sha256 is longer")
}

/// A part's leaf.
pub(crate) fn leaf(part: &[u8]) -> Digest {
    tagged(0, &[part])
}

fn node(left: &Digest, right: &Digest) -> Digest {
    tagged(1, &[left, right])
}

/// Every level of the tree over `leaves` (at least one), lowest first; the last is the root.
fn levels(leaves: Vec<Digest>) -> Vec<Vec<Digest>> {
    let mut levels = vec![leaves];
    while levels.last().expect("a level").len() > 1 {
        let next = levels
            .last()
            .expect("a level")
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node(l, r),
                [one] => *one,
                _ => unreachable!("chunks of two"),
            })
            .collect();
        levels.push(next);
    }
    levels
}

/// The tree over `parts`: its root, and each part's path.
pub(crate) fn paths(parts: &[&[u8]]) -> (Digest, Vec<Vec<u8>>) {
    let levels = levels(parts.iter().map(|p| leaf(p)).collect());
    let root = levels.last().expect("a level")[0];
    let paths = (0..parts.len())
        .map(|i| {
            let mut path = Vec::new();
            for (j, (level, step)) in levels.iter().zip(climb(i, parts.len())).enumerate() {
                if step.is_some() {
                    path.extend_from_slice(&level[(i >> j) ^ 1]);
                }
            }
            path
        })
        .collect();
    (root, paths)
}

/// The levels part `at` of `count` climbs to the root, lowest first: at each, `None` where its
/// subtree is the odd one out (it goes up unchanged), else whether it is the left of its pair.
/// What [`path_len`] counts and [`root_of`] hashes along, and where [`paths`] takes a digest.
fn climb(at: usize, count: usize) -> impl Iterator<Item = Option<bool>> {
    let (mut at, mut len) = (at, count);
    std::iter::from_fn(move || {
        (len > 1).then(|| {
            let step = (at ^ 1 < len).then_some(at % 2 == 0);
            at /= 2;
            len = len.div_ceil(2);
            step
        })
    })
}

/// Bytes of the path of part `at` of `count`.
pub(crate) fn path_len(at: usize, count: usize) -> usize {
    climb(at, count).flatten().count() * SHORT_SHA256
}

/// The root that part `at` of `count`, with `path` ([`path_len`] bytes), hashes up to.
pub(crate) fn root_of(part: &[u8], at: usize, count: usize, path: &[u8]) -> Digest {
    let mut beside = path.chunks_exact(SHORT_SHA256);
    climb(at, count).flatten().fold(leaf(part), |digest, left| {
        let other: Digest = beside
            .next()
            .expect("a path of path_len bytes")
            .try_into()
            .expect("a digest");
        if left {
            node(&digest, &other)
        } else {
            node(&other, &digest)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_hashes_up_to_the_root_and_no_other_does() {
        for count in [1, 2, 3, 5, 8, 13, 64, 100] {
            let parts: Vec<Vec<u8>> = (0..count).map(|i| format!("part {i}").into()).collect();
            let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let (root, paths) = paths(&slices);
            for (i, path) in paths.iter().enumerate() {
                assert_eq!(path.len(), path_len(i, count), "{i} of {count}");
                assert_eq!(root_of(&parts[i], i, count, path), root, "{i} of {count}");
                // Another part in its place, or the path at another place, misses the root.
                assert_ne!(root_of(b"other", i, count, path), root);
                if count > 1 {
                    let elsewhere = (i + 1) % count;
                    if path_len(elsewhere, count) == path.len() {
                        assert_ne!(root_of(&parts[i], elsewhere, count, path), root);
                    }
                }
            }
            // At most one digest a level: a page of 1,024 parts carries 10.
            assert!(paths
                .iter()
                .all(|p| p.len() <= 16 * count.next_power_of_two().ilog2() as usize));
        }
    }

    #[test]
    fn a_part_is_not_a_node() {
        // The tags keep the two apart: the bytes of two leaves as a part do not hash to their node.
        let (a, b) = (leaf(b"a"), leaf(b"b"));
        let joined = [a, b].concat();
        assert_ne!(leaf(&joined), node(&a, &b));
    }
}
