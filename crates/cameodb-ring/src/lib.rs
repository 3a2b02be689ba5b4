//! CameoDB's consistent hash ring.
//!
//! Documents are placed by a 64-bit token (xxh3_64 of the routing key). Each member owns
//! [`VNODES_PER_MEMBER`] points ("vnodes") on the ring, and a token belongs to the member of the
//! first vnode at or after it, clockwise. The ring is a pure function of the member *set*: every
//! node that computes it from the same members gets the same owners, with no coordination, which
//! is why construction sorts and deduplicates and why [`vnode_token`] may never change.

use std::collections::BTreeMap;

pub mod sim;
pub mod transition;

use xxhash_rust::xxh3::xxh3_64;

/// Virtual nodes per member. Many small arcs per member keep each member's share of the token
/// space near 1/N (relative spread about 1/sqrt(256) = 6%) and spread a leaver's keys over all
/// survivors. Changing it moves data on upgrade, so it is part of the placement contract.
pub const VNODES_PER_MEMBER: usize = 256;

/// Token of vnode `index` of `member`: `xxh3_64` (default seed) over the member id's UTF-8 bytes,
/// one `0xff` byte, then `index` as a big-endian `u32`.
///
/// Stable forever: every node and every release must place vnodes at the same points, or nodes
/// would disagree about owners. `0xff` never occurs in UTF-8, so the separator makes the encoding
/// unambiguous (no id/index pair can collide with another by shifting bytes between the parts).
pub fn vnode_token(member: &str, index: u32) -> u64 {
    let mut buf = Vec::with_capacity(member.len() + 5);
    buf.extend_from_slice(member.as_bytes());
    buf.push(0xff);
    buf.extend_from_slice(&index.to_be_bytes());
    xxh3_64(&buf)
}

/// The ring built from one member set; equal member sets give equal rings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Every vnode as (token, index into `members`), sorted. Members are sorted, so sorting by
    /// index breaks equal-token ties by member id, deterministically on every node.
    vnodes: Vec<(u64, usize)>,
    /// Member ids, sorted and deduplicated, so the ring ignores input order and repeats.
    members: Vec<String>,
}

/// A contiguous, inclusive span of tokens and the members that hold a copy of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRange {
    /// First token of the range (inclusive).
    pub start: u64,
    /// Last token of the range (inclusive).
    pub end: u64,
    /// Member ids holding it, in preference order: the first is the ring owner.
    pub replicas: Vec<String>,
}

/// A contiguous, inclusive span of tokens owned by one member; the unit in which data is moved
/// or scanned when membership changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRange {
    /// First token of the range (inclusive).
    pub start: u64,
    /// Last token of the range (inclusive), so a range can reach `u64::MAX`.
    pub end: u64,
    /// Member id that owns every token in `start..=end`.
    pub owner: String,
}

impl Ring {
    /// Builds the ring for `members`. Order and duplicates are ignored so that nodes seeing the
    /// same set in different orders agree; an empty set gives an empty ring that owns nothing.
    pub fn new<I, S>(members: I) -> Ring
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut members: Vec<String> = members.into_iter().map(|m| m.as_ref().to_owned()).collect();
        members.sort_unstable();
        members.dedup();
        let mut vnodes = Vec::with_capacity(members.len() * VNODES_PER_MEMBER);
        for (i, member) in members.iter().enumerate() {
            for index in 0..VNODES_PER_MEMBER as u32 {
                vnodes.push((vnode_token(member, index), i));
            }
        }
        // Total order on (token, member index) = (token, member id): ties are deterministic.
        vnodes.sort_unstable();
        Ring { vnodes, members }
    }

    /// Member ids, sorted and deduplicated, so callers can compare membership cheaply.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// True when there are no members, in which case no token has an owner.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Owner of `token`: the member of the smallest vnode token >= `token`, wrapping to the first
    /// vnode past the largest one. `None` for an empty ring. O(log vnodes).
    pub fn owner(&self, token: u64) -> Option<&str> {
        let first = self.vnodes.first()?;
        let i = self.vnodes.partition_point(|&(t, _)| t < token);
        let (_, member) = self.vnodes.get(i).unwrap_or(first);
        Some(&self.members[*member])
    }

    /// The whole token space as contiguous ranges in token order, each with one owner and
    /// adjacent ranges of the same owner merged. Covers `0..=u64::MAX` exactly once; the arc that
    /// wraps past `u64::MAX` is split at 0 so every range has `start <= end`. Empty when the ring
    /// is empty.
    pub fn ranges(&self) -> Vec<TokenRange> {
        let Some(&(_, first_member)) = self.vnodes.first() else {
            return Vec::new();
        };
        let mut out: Vec<TokenRange> = Vec::new();
        let mut push = |start: u64, end: u64, member: usize| match out.last_mut() {
            Some(last) if last.owner == self.members[member] => last.end = end,
            _ => out.push(TokenRange {
                start,
                end,
                owner: self.members[member].clone(),
            }),
        };
        // Vnode i owns (previous vnode token, its token]; the first vnode also owns from 0.
        let mut next_start = Some(0u64);
        for &(token, member) in &self.vnodes {
            match next_start {
                // A tied later vnode owns nothing: the first of the tie took its tokens.
                Some(start) if start <= token => push(start, token, member),
                _ => continue,
            }
            next_start = token.checked_add(1);
        }
        // The tail above the last vnode wraps around to the first vnode.
        if let Some(start) = next_start {
            push(start, u64::MAX, first_member);
        }
        out
    }

    /// The replicas of `token`, in preference order: its owner, then the next distinct members
    /// clockwise, `n` of them at most (fewer when the ring has fewer members). Empty for an
    /// empty ring. Walks at most every vnode once.
    pub fn preference(&self, token: u64, n: usize) -> Vec<&str> {
        let start = self.vnodes.partition_point(|&(t, _)| t < token);
        self.walk(start, n)
            .into_iter()
            .map(|m| self.members[m].as_str())
            .collect()
    }

    /// Member indexes of the first `n` distinct members from vnode `start` on, wrapping.
    fn walk(&self, start: usize, n: usize) -> Vec<usize> {
        let want = n.min(self.members.len());
        let mut out: Vec<usize> = Vec::with_capacity(want);
        let len = self.vnodes.len();
        for step in 0..len {
            if out.len() >= want {
                break;
            }
            let (_, member) = self.vnodes[(start + step) % len];
            if !out.contains(&member) {
                out.push(member);
            }
        }
        out
    }

    /// The whole token space as contiguous ranges, each with its `n` replicas in preference
    /// order (see [`Ring::preference`]); adjacent ranges with the same replicas are merged.
    /// Covers `0..=u64::MAX` exactly once; empty when the ring is empty.
    pub fn replica_ranges(&self, n: usize) -> Vec<ReplicaRange> {
        let mut out: Vec<ReplicaRange> = Vec::new();
        if self.vnodes.is_empty() {
            return out;
        }
        let mut push = |start: u64, end: u64, replicas: Vec<usize>| match out.last_mut() {
            Some(last)
                if last
                    .replicas
                    .iter()
                    .map(String::as_str)
                    .eq(replicas.iter().map(|m| self.members[*m].as_str())) =>
            {
                last.end = end
            }
            _ => out.push(ReplicaRange {
                start,
                end,
                replicas: replicas.iter().map(|m| self.members[*m].clone()).collect(),
            }),
        };
        // Vnode i owns (previous vnode token, its token]; the first vnode also owns from 0.
        let mut next_start = Some(0u64);
        for (i, &(token, _)) in self.vnodes.iter().enumerate() {
            match next_start {
                Some(start) if start <= token => push(start, token, self.walk(i, n)),
                _ => continue,
            }
            next_start = token.checked_add(1);
        }
        if let Some(start) = next_start {
            push(start, u64::MAX, self.walk(0, n));
        }
        out
    }

    /// Fraction of the token space each member owns, keyed by member id; sums to 1.0 (up to
    /// float rounding) when non-empty. Every member is listed, so balance checks see all of them.
    pub fn ownership(&self) -> BTreeMap<String, f64> {
        let mut tokens: BTreeMap<&str, u128> =
            self.members.iter().map(|m| (m.as_str(), 0)).collect();
        for r in self.ranges() {
            *tokens.get_mut(r.owner.as_str()).expect("owner is a member") +=
                u128::from(r.end - r.start) + 1;
        }
        let space = 2f64.powi(64);
        tokens
            .into_iter()
            .map(|(m, n)| (m.to_owned(), n as f64 / space))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring with hand-placed vnodes, to exercise ties and boundary tokens that hashing will
    /// never produce in practice.
    fn raw(vnodes: Vec<(u64, usize)>, members: &[&str]) -> Ring {
        Ring {
            vnodes,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn range(start: u64, end: u64, owner: &str) -> TokenRange {
        TokenRange {
            start,
            end,
            owner: owner.into(),
        }
    }

    #[test]
    fn tie_goes_to_smaller_member_id() {
        let ring = raw(vec![(10, 0), (10, 1), (20, 1)], &["a", "b"]);
        assert_eq!(ring.owner(10), Some("a"));
        assert_eq!(ring.owner(11), Some("b"));
        assert_eq!(
            ring.ranges(),
            vec![
                range(0, 10, "a"),
                range(11, 20, "b"),
                range(21, u64::MAX, "a")
            ]
        );
    }

    #[test]
    fn vnodes_at_the_ends_of_the_space() {
        let ring = raw(vec![(0, 1), (u64::MAX, 0), (u64::MAX, 1)], &["a", "b"]);
        assert_eq!(ring.owner(0), Some("b"));
        assert_eq!(ring.owner(1), Some("a"));
        assert_eq!(ring.owner(u64::MAX), Some("a"));
        assert_eq!(
            ring.ranges(),
            vec![range(0, 0, "b"), range(1, u64::MAX, "a")]
        );
        let share = ring.ownership();
        assert_eq!(share["b"], 2f64.powi(-64));
    }

    #[test]
    fn vnode_token_is_pinned() {
        // Changing the encoding would silently re-place every document in every cluster.
        let mut expected = b"12D3KooW".to_vec();
        expected.extend_from_slice(&[0xff, 0, 0, 1, 2]);
        assert_eq!(vnode_token("12D3KooW", 258), xxh3_64(&expected));
        assert_eq!(vnode_token("node-a", 0), GOLDEN_NODE_A_0);
    }

    /// `vnode_token("node-a", 0)` as first released; must never change.
    const GOLDEN_NODE_A_0: u64 = 0x375a_a849_d24e_f72f;
}
