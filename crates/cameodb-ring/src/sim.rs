//! Placement figures of a ring, for the scaling simulation: how much data a membership change
//! moves, how evenly copies are spread, and how many peers each member shares data with.
//!
//! Everything is measured on the token space (a uniform hash makes data proportional to
//! tokens), in copies: with `rf` replicas the cluster holds `rf` copies of every token.

use std::collections::{BTreeMap, BTreeSet};

use crate::transition::overlay;
use crate::{ReplicaRange, Ring};

/// Tokens in the ring, as a float.
const SPACE: f64 = 18_446_744_073_709_551_616.0;

fn span(start: u64, end: u64) -> f64 {
    (end - start) as f64 + 1.0
}

/// Fraction of all copies that must be streamed when the ring changes from `before` to
/// `after`: each token's copies on members that did not hold it before, over `rf` copies of
/// every token. A join of the (N+1)-th member ideally moves 1/(N+1).
pub fn moved_fraction(before: &Ring, after: &Ring, rf: usize) -> f64 {
    let old = before.replica_ranges(rf);
    let new = after.replica_ranges(rf);
    let moved: f64 = overlay(&old, &new)
        .iter()
        .map(|part| {
            let gained = part
                .after
                .iter()
                .filter(|m| !part.before.contains(m))
                .count();
            gained as f64 * span(part.start, part.end)
        })
        .sum();
    moved / (SPACE * rf.max(1) as f64)
}

/// How the copies are spread over the members.
#[derive(Clone, Debug, PartialEq)]
pub struct Balance {
    /// Members.
    pub members: usize,
    /// The largest member's share of all copies, as a multiple of the even share 1/N.
    pub worst: f64,
    /// The smallest member's share, as a multiple of 1/N.
    pub least: f64,
    /// Fewest distinct other members one member shares a range with.
    pub min_peers: usize,
    /// Most distinct other members one member shares a range with.
    pub max_peers: usize,
}

/// Balance of `ring` with `rf` copies of every token.
pub fn balance(ring: &Ring, rf: usize) -> Balance {
    let ranges: Vec<ReplicaRange> = ring.replica_ranges(rf);
    let mut held: BTreeMap<&str, f64> = ring.members().iter().map(|m| (m.as_str(), 0.0)).collect();
    let mut peers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for range in &ranges {
        for member in &range.replicas {
            if let Some(share) = held.get_mut(member.as_str()) {
                *share += span(range.start, range.end);
            }
            let others = peers.entry(member.as_str()).or_default();
            others.extend(
                range
                    .replicas
                    .iter()
                    .map(String::as_str)
                    .filter(|o| *o != member),
            );
        }
    }
    let members = ring.members().len();
    let copies = rf.min(members).max(1) as f64;
    let even = SPACE * copies / members.max(1) as f64;
    let shares = held.values().map(|h| h / even);
    let (worst, least) = shares.fold((0.0f64, f64::MAX), |(hi, lo), s| (hi.max(s), lo.min(s)));
    let counts = || {
        ring.members()
            .iter()
            .map(|m| peers.get(m.as_str()).map_or(0, BTreeSet::len))
    };
    Balance {
        members,
        worst,
        least: if members == 0 { 0.0 } else { least },
        min_peers: counts().min().unwrap_or(0),
        max_peers: counts().max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> Ring {
        Ring::new((0..n).map(|i| format!("node-{i}")))
    }

    #[test]
    fn an_unchanged_ring_moves_nothing_and_a_new_one_moves_everything() {
        let a = ring(5);
        assert_eq!(moved_fraction(&a, &a, 3), 0.0);
        let other = Ring::new((0..5).map(|i| format!("other-{i}")));
        assert!((moved_fraction(&a, &other, 3) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_join_moves_about_its_share() {
        let before = ring(10);
        let after = ring(11);
        let moved = moved_fraction(&before, &after, 3);
        // Ideal 1/11 = 9.1 %; vnodes keep it within a few points.
        assert!((0.06..0.13).contains(&moved), "moved {moved}");
        let balance = balance(&after, 3);
        assert!(balance.worst < 1.3 && balance.least > 0.7, "{balance:?}");
        assert_eq!(
            balance.max_peers, 10,
            "every member shares data with all others"
        );
    }
}
