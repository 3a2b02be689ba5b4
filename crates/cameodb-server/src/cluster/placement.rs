//! Where an index's copies are — pure logic, no I/O. An index has a replication factor (RF =
//! 1 + `number_of_replicas`, at most the members of its ring); a token's replicas are the first
//! RF distinct members clockwise from it. The token ranges that share one replica set form a
//! *shard* (shard `n` of an index is its `n`-th distinct replica set in token order): the unit
//! of `_shards`, `_cat/shards` and health, and what a search asks one live copy of.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use cameodb_ring::Ring;
use cameodb_search::tokens::TokenRanges;

use crate::error::ApiError;
pub use crate::request::params::ActiveShards;

/// One shard: a replica set and the token ranges it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardCopies {
    /// Its number within the index.
    pub id: usize,
    /// The members holding it, in the preference order of its first range.
    pub replicas: Vec<String>,
    /// Its token ranges.
    pub ranges: Vec<(u64, u64)>,
}

/// The shards of an index placed on `ring` with `rf` copies, in order of first token.
pub fn shards(ring: &Ring, rf: usize) -> Vec<ShardCopies> {
    let mut by_set: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut out: Vec<ShardCopies> = Vec::new();
    for range in ring.replica_ranges(rf) {
        let mut set = range.replicas.clone();
        set.sort_unstable();
        let id = *by_set.entry(set).or_insert_with(|| {
            out.push(ShardCopies {
                id: out.len(),
                replicas: range.replicas.clone(),
                ranges: Vec::new(),
            });
            out.len() - 1
        });
        out[id].ranges.push((range.start, range.end));
    }
    out
}

/// The token ranges `member` holds a copy of.
pub fn held_by(shards: &[ShardCopies], member: &str) -> TokenRanges {
    TokenRanges::new(
        shards
            .iter()
            .filter(|s| s.replicas.iter().any(|r| r == member))
            .flat_map(|s| s.ranges.iter().copied())
            .collect(),
    )
}

/// Which live member answers for which shards of one index in a search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Each asked member with the ids of the shards it answers for and, unless they cover the
    /// whole token space, the token ranges it must keep to.
    pub nodes: Vec<(String, Vec<usize>, Option<TokenRanges>)>,
    /// Ids of the shards with no live copy: failed shards.
    pub unserved: Vec<usize>,
}

/// Assigns every shard of `shards` (all of an index's, or those a routing value selects) to
/// one live copy: members are taken in `order` (live members only; the caller rotates it to
/// spread load), each answering for all the not yet assigned shards it holds — so few members
/// are asked, and one holding everything answers alone.
pub fn assign(shards: &[ShardCopies], order: &[String]) -> Assignment {
    let mut assigned = vec![false; shards.len()];
    let mut out = Assignment::default();
    for member in order {
        let mine: Vec<usize> = (0..shards.len())
            .filter(|&i| !assigned[i] && shards[i].replicas.contains(member))
            .collect();
        if mine.is_empty() {
            continue;
        }
        for &i in &mine {
            assigned[i] = true;
        }
        let ranges = TokenRanges::new(
            mine.iter()
                .flat_map(|&i| shards[i].ranges.iter().copied())
                .collect(),
        );
        let everything = ranges.ranges() == [(0, u64::MAX)];
        let ids = mine.iter().map(|&i| shards[i].id).collect();
        out.nodes
            .push((member.clone(), ids, (!everything).then_some(ranges)));
    }
    out.unserved = (0..shards.len())
        .filter(|&i| !assigned[i])
        .map(|i| shards[i].id)
        .collect();
    out
}

/// The copies of one document and which of them can take a write now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copies {
    /// The document's token.
    pub token: u64,
    /// Its replicas in preference order.
    pub replicas: Vec<String>,
    /// Those that are live, in the same order: the first resolves the write.
    pub live: Vec<String>,
    /// How many must have the write before it is acknowledged.
    pub required: usize,
    /// While the index's placement changes: the live copies on the new ring that the old one
    /// lacks. They get every write too, and each must confirm it (on top of `required`), so
    /// a member that takes over a range never lacks an acknowledged write.
    pub pending: Vec<String>,
}

impl Copies {
    /// The copies of the document with `token` on `ring` with `rf` copies.
    pub fn new(
        ring: &Ring,
        rf: usize,
        token: u64,
        required: usize,
        is_live: impl Fn(&str) -> bool,
    ) -> Copies {
        let replicas: Vec<String> = ring
            .preference(token, rf)
            .into_iter()
            .map(String::from)
            .collect();
        let live = replicas.iter().filter(|r| is_live(r)).cloned().collect();
        Copies {
            token,
            replicas,
            live,
            required,
            pending: Vec::new(),
        }
    }

    /// These copies with the new ring's copies of a running placement change added.
    pub fn moving_to(mut self, ring: &Ring, rf: usize, is_live: impl Fn(&str) -> bool) -> Copies {
        self.pending = ring
            .preference(self.token, rf)
            .into_iter()
            .filter(|m| !self.replicas.iter().any(|r| r == m) && is_live(m))
            .map(String::from)
            .collect();
        self
    }

    /// These copies once `lead` resolved the write: the copies before it in the live list did
    /// not answer and count as not live.
    pub fn led_by(mut self, lead: &str) -> Copies {
        if let Some(at) = self.live.iter().position(|m| m == lead) {
            self.live.drain(..at);
        }
        self
    }

    /// The replica that resolves a write (checks its conditions, merges an update, gives it
    /// its version): the first live one.
    pub fn lead(&self) -> Option<&str> {
        self.live.first().map(String::as_str)
    }

    /// The live replicas other than the lead.
    pub fn followers(&self) -> &[String] {
        self.live.get(1..).unwrap_or_default()
    }

    /// A 503 naming the document's copies and the missing ones, when fewer are live than a
    /// write needs (nothing is written then).
    pub fn check(&self) -> Result<(), ApiError> {
        if self.live.len() >= self.required && !self.live.is_empty() {
            return Ok(());
        }
        let missing: Vec<&str> = self
            .replicas
            .iter()
            .filter(|r| !self.live.contains(r))
            .map(String::as_str)
            .collect();
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            format!(
                "not enough active copies to meet [wait_for_active_shards]: token [{}] needs {} of its {} copies {:?}, but only {} are live; missing {:?}",
                self.token,
                self.required,
                self.replicas.len(),
                self.replicas,
                self.live.len(),
                missing
            ),
        ))
    }

    /// A 503 for a write the lead made durable but too few other copies confirmed: it may
    /// still become visible (it is on the lead), but it is not acknowledged.
    pub fn short(&self, acked: usize) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            format!(
                "the write reached {acked} of the {} copies [wait_for_active_shards] requires (token [{}], copies {:?}); it is not acknowledged",
                self.required, self.token, self.replicas
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(n: usize) -> Ring {
        Ring::new((0..n).map(|i| format!("node-{i}")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Every shard is answered by exactly one live copy, or reported unserved when none
        /// is live; the ranges each member keeps to are exactly its shards'.
        #[test]
        fn every_shard_is_answered_once(
            n in 1usize..7,
            rf in 1usize..4,
            down in prop::collection::vec(any::<bool>(), 7),
            rotate in 0usize..7,
        ) {
            let ring = ring(n);
            let shards = shards(&ring, rf);
            let mut order: Vec<String> = (0..n)
                .filter(|i| !down[*i])
                .map(|i| format!("node-{i}"))
                .collect();
            if !order.is_empty() {
                let by = rotate % order.len();
                order.rotate_left(by);
            }
            let plan = assign(&shards, &order);
            let mut seen = vec![0; shards.len()];
            for (member, ids, ranges) in &plan.nodes {
                prop_assert!(order.contains(member));
                for id in ids {
                    seen[*id] += 1;
                    prop_assert!(shards[*id].replicas.contains(member));
                }
                let expected = TokenRanges::new(
                    ids.iter().flat_map(|id| shards[*id].ranges.clone()).collect(),
                );
                match ranges {
                    Some(ranges) => prop_assert_eq!(ranges, &expected),
                    None => prop_assert_eq!(expected.ranges(), &[(0, u64::MAX)]),
                }
            }
            for id in &plan.unserved {
                seen[*id] += 1;
                prop_assert!(shards[*id].replicas.iter().all(|r| !order.contains(r)));
            }
            prop_assert!(seen.iter().all(|s| *s == 1));
        }

        /// Shards partition the token space, each with `min(rf, n)` distinct replicas.
        #[test]
        fn shards_partition_the_space(n in 1usize..7, rf in 1usize..4) {
            let ring = ring(n);
            let shards = shards(&ring, rf);
            let all = TokenRanges::new(shards.iter().flat_map(|s| s.ranges.clone()).collect());
            prop_assert_eq!(all.ranges(), &[(0, u64::MAX)]);
            let total: u128 = shards
                .iter()
                .flat_map(|s| s.ranges.iter())
                .map(|(a, b)| u128::from(b - a) + 1)
                .sum();
            prop_assert_eq!(total, 1u128 << 64);
            for shard in &shards {
                prop_assert_eq!(shard.replicas.len(), rf.min(n));
            }
        }
    }

    #[test]
    fn a_member_holding_everything_answers_alone() {
        let ring = ring(3);
        let shards = shards(&ring, 3);
        let order = vec!["node-1".to_string(), "node-0".into(), "node-2".into()];
        let plan = assign(&shards, &order);
        assert_eq!(plan.nodes.len(), 1);
        assert_eq!(plan.nodes[0].0, "node-1");
        assert_eq!(plan.nodes[0].2, None);
    }

    #[test]
    fn writes_need_their_required_copies() {
        let ring = ring(5);
        let live = |m: &str| m != "node-1" && m != "node-2";
        let required = ActiveShards::Majority.required(3).unwrap();
        assert_eq!(required, 2);
        let mut refused = 0;
        for token in (0..64u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let copies = Copies::new(&ring, 3, token, required, live);
            assert_eq!(copies.replicas.len(), 3);
            match copies.check() {
                Ok(()) => assert!(copies.live.len() >= 2),
                Err(err) => {
                    refused += 1;
                    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
                    assert!(err.reason.contains("node-"));
                }
            }
        }
        assert!(
            refused > 0,
            "some tokens had two of their copies on the dead nodes"
        );
        assert!(ActiveShards::Count(4).required(3).is_err());
        assert_eq!(ActiveShards::parse(Some("all")).unwrap(), ActiveShards::All);
        assert!(ActiveShards::parse(Some("0")).is_err());
        assert!(ActiveShards::parse(Some("x")).is_err());
    }
}
