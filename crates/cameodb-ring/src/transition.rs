//! A change of placement from one member set to another, as every node computes it: which
//! members must receive writes meanwhile (old and new replicas: Cassandra's pending ranges),
//! which ranges each member gains and from whom it streams them, and which it may drop once
//! the change is complete. Pure: both rings are functions of their member sets, so every node
//! that knows the two sets agrees on all of it without asking anyone.

use crate::{ReplicaRange, Ring};

/// One stretch of tokens with its replicas before and after the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay<'r> {
    /// First token (inclusive).
    pub start: u64,
    /// Last token (inclusive).
    pub end: u64,
    /// Its replicas on the old ring, in preference order.
    pub before: &'r [String],
    /// Its replicas on the new ring, in preference order.
    pub after: &'r [String],
}

/// Both rings' replica ranges cut at every boundary of either, in token order; covers the
/// whole token space exactly once when both rings have members.
pub fn overlay<'r>(before: &'r [ReplicaRange], after: &'r [ReplicaRange]) -> Vec<Overlay<'r>> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut start = 0u64;
    while i < before.len() && j < after.len() {
        let end = before[i].end.min(after[j].end);
        out.push(Overlay {
            start,
            end,
            before: &before[i].replicas,
            after: &after[j].replicas,
        });
        if before[i].end == end {
            i += 1;
        }
        if after[j].end == end {
            j += 1;
        }
        match end.checked_add(1) {
            Some(next) => start = next,
            None => break,
        }
    }
    out
}

/// A range a member gains, with the members that hold it before the change (those to stream
/// it from, in their old preference order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gain {
    /// First token (inclusive).
    pub start: u64,
    /// Last token (inclusive).
    pub end: u64,
    /// Old replicas of the range.
    pub sources: Vec<String>,
}

/// The change of one index's placement from the ring of `from` to the ring of `to`, with `rf`
/// copies of every token.
#[derive(Clone, Debug)]
pub struct Transition {
    before: Vec<ReplicaRange>,
    after: Vec<ReplicaRange>,
}

impl Transition {
    /// The transition between two rings.
    pub fn new(from: &Ring, to: &Ring, rf: usize) -> Transition {
        Transition {
            before: from.replica_ranges(rf),
            after: to.replica_ranges(rf),
        }
    }

    /// Every stretch of tokens with its old and new replicas.
    pub fn overlay(&self) -> Vec<Overlay<'_>> {
        overlay(&self.before, &self.after)
    }

    /// Members that must receive a write of `token` while the change runs: the old replicas
    /// (who answer reads until it completes), then the new ones they lack.
    pub fn write_replicas(&self, token: u64) -> Vec<&str> {
        let old = replicas_at(&self.before, token);
        let new = replicas_at(&self.after, token);
        let mut out: Vec<&str> = old.iter().map(String::as_str).collect();
        for member in new {
            if !out.contains(&member.as_str()) {
                out.push(member);
            }
        }
        out
    }

    /// The ranges `member` holds after the change but not before, adjacent ones with the same
    /// sources merged: what it must stream before it answers for them.
    pub fn gains(&self, member: &str) -> Vec<Gain> {
        let mut out: Vec<Gain> = Vec::new();
        for part in self.overlay() {
            let gained =
                part.after.iter().any(|m| m == member) && !part.before.iter().any(|m| m == member);
            if !gained {
                continue;
            }
            match out.last_mut() {
                Some(last)
                    if last.end.checked_add(1) == Some(part.start)
                        && last.sources.as_slice() == part.before =>
                {
                    last.end = part.end
                }
                _ => out.push(Gain {
                    start: part.start,
                    end: part.end,
                    sources: part.before.to_vec(),
                }),
            }
        }
        out
    }

    /// The ranges `member` holds before the change but not after: what it may drop once the
    /// change is complete.
    pub fn losses(&self, member: &str) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for part in self.overlay() {
            let lost =
                part.before.iter().any(|m| m == member) && !part.after.iter().any(|m| m == member);
            if !lost {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.1.checked_add(1) == Some(part.start) => last.1 = part.end,
                _ => out.push((part.start, part.end)),
            }
        }
        out
    }
}

/// The replicas of the range holding `token`.
fn replicas_at(ranges: &[ReplicaRange], token: u64) -> &[String] {
    let i = ranges.partition_point(|r| r.end < token);
    ranges.get(i).map_or(&[], |r| r.replicas.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(ids: &[u8]) -> Ring {
        Ring::new(ids.iter().map(|i| format!("n{i}")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn writes_reach_old_and_new_replicas_and_gains_come_from_old_ones(
            from in prop::collection::btree_set(0u8..12, 1..6),
            to in prop::collection::btree_set(0u8..12, 1..6),
            rf in 1usize..4,
            tokens in prop::collection::vec(any::<u64>(), 1..20),
        ) {
            let from: Vec<u8> = from.into_iter().collect();
            let to: Vec<u8> = to.into_iter().collect();
            let (old, new) = (ring(&from), ring(&to));
            let change = Transition::new(&old, &new, rf);
            for token in tokens {
                let writes = change.write_replicas(token);
                for member in old.preference(token, rf).into_iter().chain(new.preference(token, rf)) {
                    prop_assert!(writes.contains(&member));
                }
                let first = old.preference(token, rf);
                prop_assert_eq!(&writes[..first.len()], first.as_slice());
            }
            let mut members: Vec<u8> = from.iter().chain(&to).copied().collect();
            members.sort_unstable();
            members.dedup();
            for id in members {
                let member = format!("n{id}");
                for gain in change.gains(&member) {
                    prop_assert!(gain.start <= gain.end);
                    prop_assert!(!gain.sources.is_empty());
                    prop_assert!(!gain.sources.contains(&member));
                    prop_assert!(new.preference(gain.start, rf).contains(&member.as_str()));
                    prop_assert!(!old.preference(gain.end, rf).contains(&member.as_str()));
                }
                for (start, end) in change.losses(&member) {
                    prop_assert!(old.preference(start, rf).contains(&member.as_str()));
                    prop_assert!(!new.preference(end, rf).contains(&member.as_str()));
                }
            }
        }
    }

    #[test]
    fn an_unchanged_ring_gains_and_loses_nothing() {
        let a = ring(&[1, 2, 3]);
        let change = Transition::new(&a, &a, 2);
        for member in a.members() {
            assert!(change.gains(member).is_empty());
            assert!(change.losses(member).is_empty());
        }
    }

    #[test]
    fn a_joiner_gains_about_its_share_and_loses_nothing() {
        let before = ring(&[1, 2, 3]);
        let after = ring(&[1, 2, 3, 4]);
        let change = Transition::new(&before, &after, 2);
        assert!(change.losses("n4").is_empty());
        let gained: f64 = change
            .gains("n4")
            .iter()
            .map(|g| (g.end - g.start) as f64 + 1.0)
            .sum::<f64>()
            / 2f64.powi(64);
        // With two copies of every token, the fourth member holds about half the space.
        assert!((0.4..0.6).contains(&gained), "gained {gained}");
    }
}
