//! The rules of the metadata sync, apart from the I/O that applies them: what a node gossips
//! about each index, when it pulls another node's descriptor, and which of two copies of one
//! index name every node settles on. Pure, so they are unit-tested.

/// What a node gossips about one index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gossiped {
    /// It has the index with this uuid, and a mapping whose field paths hash to `digest`.
    Live { uuid: String, digest: u64 },
    /// It deleted the index with this uuid.
    Deleted { uuid: String },
}

impl Gossiped {
    pub fn parse(value: &str) -> Option<Gossiped> {
        let (head, tail) = value.split_once(' ')?;
        if head == "deleted" {
            return Some(Gossiped::Deleted {
                uuid: tail.to_string(),
            });
        }
        Some(Gossiped::Live {
            uuid: head.to_string(),
            digest: u64::from_str_radix(tail, 16).ok()?,
        })
    }

    pub fn render(&self) -> String {
        match self {
            Gossiped::Live { uuid, digest } => format!("{uuid} {digest:016x}"),
            Gossiped::Deleted { uuid } => format!("deleted {uuid}"),
        }
    }
}

/// Which identity two copies of one index name settle on: the smaller uuid, on every node, so
/// concurrent creates converge whatever order nodes hear of them. True when this node's copy
/// (`ours`) must adopt `theirs`.
pub fn adopts(ours: &str, theirs: &str) -> bool {
    theirs < ours
}

/// Whether to pull a peer's descriptor of an index it gossips as `theirs` (a live index whose
/// uuid no one deleted): when this node lacks it, when the peer's copy wins the uuid rule, or
/// — same index — when its mapping changed there since this node last pulled from that peer
/// and differs from what this node publishes.
pub fn needs_pull(
    local_uuid: Option<&str>,
    theirs: &Gossiped,
    last_pulled: Option<&Gossiped>,
    ours: Option<&Gossiped>,
) -> bool {
    let Gossiped::Live { uuid, .. } = theirs else {
        return false;
    };
    match local_uuid {
        None => true,
        Some(local) if local != uuid => adopts(local, uuid),
        Some(_) => last_pulled != Some(theirs) && ours != Some(theirs),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn live(uuid: &str, digest: u64) -> Gossiped {
        Gossiped::Live {
            uuid: uuid.into(),
            digest,
        }
    }

    proptest! {
        #[test]
        fn gossip_values_round_trip(uuid in "[0-9a-f]{22}", digest in any::<u64>(), deleted in any::<bool>()) {
            let value = if deleted { Gossiped::Deleted { uuid } } else { live(&uuid, digest) };
            prop_assert_eq!(Gossiped::parse(&value.render()), Some(value));
        }

        /// Whatever copies exist and whatever order nodes meet them in, adopting by the rule
        /// leaves every node on the smallest uuid.
        #[test]
        fn every_order_of_meeting_settles_on_one_copy(
            uuids in prop::collection::vec("[0-9a-f]{4}", 1..6),
            order in prop::collection::vec(0usize..6, 0..40),
        ) {
            let mut nodes = uuids.clone();
            // Each step: node a hears node b's copy.
            for pair in order.chunks(2) {
                let (a, b) = (pair[0] % nodes.len(), pair.get(1).copied().unwrap_or(0) % nodes.len());
                if adopts(&nodes[a], &nodes[b]) {
                    nodes[a] = nodes[b].clone();
                }
            }
            // Then everyone hears everyone once.
            for a in 0..nodes.len() {
                for b in 0..nodes.len() {
                    if adopts(&nodes[a], &nodes[b]) {
                        nodes[a] = nodes[b].clone();
                    }
                }
            }
            let smallest = uuids.iter().min().cloned();
            prop_assert!(nodes.iter().all(|n| Some(n) == smallest.as_ref()));
        }
    }

    #[test]
    fn pulls_what_is_missing_winning_or_changed_once() {
        let theirs = live("b", 7);
        // Missing here: pull.
        assert!(needs_pull(None, &theirs, None, None));
        // Another copy of the name: pull only when theirs wins.
        assert!(needs_pull(Some("c"), &theirs, None, None));
        assert!(!needs_pull(Some("a"), &theirs, None, None));
        // The same index: pull a changed mapping once, and never what we publish ourselves.
        assert!(needs_pull(
            Some("b"),
            &theirs,
            Some(&live("b", 6)),
            Some(&live("b", 6))
        ));
        assert!(!needs_pull(
            Some("b"),
            &theirs,
            Some(&theirs),
            Some(&live("b", 6))
        ));
        assert!(!needs_pull(Some("b"), &theirs, None, Some(&theirs)));
        // A deletion is not something to pull.
        assert!(!needs_pull(
            None,
            &Gossiped::Deleted { uuid: "b".into() },
            None,
            None
        ));
    }
}
