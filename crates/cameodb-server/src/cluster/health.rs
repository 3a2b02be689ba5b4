//! Cluster health from the shards (replica sets) of every index: a copy is active when its
//! node is live and caught up with its peers, initializing while its node catches up, and
//! unassigned while its node is down. Green: every shard has all its copies active; yellow:
//! every shard has at least one live copy; red: some shard has none — its documents cannot be
//! read or written until a copy is back.

use std::sync::Arc;

use super::placement::{ShardCopies, held_by, shards};
use super::router_actor::View;
use crate::catalog::IndexEntry;
use cameodb_search::tokens::TokenRanges;

/// The state of one copy of a shard, as `_cat/shards` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyState {
    /// Its node is live and caught up.
    Started,
    /// Its node is live but still catching up, or streaming it in (a placement change).
    Initializing,
    /// Its node is live and serves it while a placement change moves it to another member.
    Relocating,
    /// Its node is down or gone.
    Unassigned,
}

impl CopyState {
    /// Elasticsearch's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyState::Started => "STARTED",
            CopyState::Initializing => "INITIALIZING",
            CopyState::Relocating => "RELOCATING",
            CopyState::Unassigned => "UNASSIGNED",
        }
    }
}

/// The state of `member`'s copy.
pub fn copy_state(view: &View, member: &str) -> CopyState {
    if !view.is_live(member) {
        CopyState::Unassigned
    } else if view.is_synced(member) {
        CopyState::Started
    } else {
        CopyState::Initializing
    }
}

/// Shard counts in Elasticsearch's health shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Shards with at least one live copy.
    pub active_primary: usize,
    /// Copies started.
    pub active: usize,
    /// Copies catching up.
    pub initializing: usize,
    /// Copies down.
    pub unassigned: usize,
    /// Shards with no live copy.
    pub unassigned_primary: usize,
    /// Shards whose copies a placement change is moving (some member gains them).
    pub relocating: usize,
}

impl Health {
    /// `green`, `yellow` or `red`.
    pub fn status(&self) -> &'static str {
        if self.unassigned_primary > 0 {
            "red"
        } else if self.unassigned > 0 || self.initializing > 0 {
            "yellow"
        } else {
            "green"
        }
    }

    /// Percentage of copies started.
    pub fn active_percent(&self) -> f64 {
        let all = self.active + self.initializing + self.unassigned;
        if all == 0 {
            100.0
        } else {
            100.0 * self.active as f64 / all as f64
        }
    }
}

/// The shards of `entry` under `view`.
pub fn shards_of(view: &View, entry: &IndexEntry) -> Vec<ShardCopies> {
    let ring = view.ring_of(entry.placement.as_deref());
    let rf = entry.wanted_copies().min(ring.members().len()).max(1);
    shards(ring, rf)
}

/// The copies a running placement change of `entry` is still building: (shard of the new
/// ring, member) for every member that gains ranges of that shard and has not yet streamed
/// them. Empty when no change runs.
pub fn building(view: &View, entry: &IndexEntry) -> Vec<(ShardCopies, String)> {
    let (Some(placed), Some(next), Some(change)) =
        (&entry.placement, &entry.pending, entry.change_id())
    else {
        return Vec::new();
    };
    let rf = entry.wanted_copies().min(next.members().len()).max(1);
    let old_rf = entry.wanted_copies().min(placed.members().len()).max(1);
    let key = super::membership::ready_key(&entry.name);
    let mut out = Vec::new();
    for shard in shards(next, rf) {
        for member in &shard.replicas {
            let gains = shard
                .ranges
                .iter()
                .any(|(start, _)| !placed.preference(*start, old_rf).contains(&member.as_str()));
            let streamed = view
                .member(member)
                .is_some_and(|m| m.values.get(&key) == Some(&change));
            if gains && !streamed {
                out.push((shard.clone(), member.clone()));
            }
        }
    }
    out
}

/// The health of `entries`.
pub fn health(view: &View, entries: &[Arc<IndexEntry>]) -> Health {
    let mut out = Health::default();
    for entry in entries {
        // Copies a placement change is building: each a copy initializing (the cluster is
        // yellow until they are streamed), each of their shards one relocating.
        let building = building(view, entry);
        out.initializing += building.len();
        let mut moving: Vec<usize> = building.iter().map(|(s, _)| s.id).collect();
        moving.dedup();
        out.relocating += moving.len();
        for shard in shards_of(view, entry) {
            let states: Vec<CopyState> =
                shard.replicas.iter().map(|m| copy_state(view, m)).collect();
            let live = states
                .iter()
                .filter(|s| **s != CopyState::Unassigned)
                .count();
            out.active += states.iter().filter(|s| **s == CopyState::Started).count();
            out.initializing += states
                .iter()
                .filter(|s| **s == CopyState::Initializing)
                .count();
            out.unassigned += states.len() - live;
            if live == 0 {
                out.unassigned_primary += 1;
            } else {
                out.active_primary += 1;
            }
        }
    }
    out
}

/// The token ranges `member` holds copies of in `entry` under `view`: those of its placement
/// and, while a placement change runs, those it holds or gains on the new ring too.
pub fn held_ranges(view: &View, entry: &IndexEntry, member: &str) -> TokenRanges {
    Holdings::of(view, entry).held(member)
}

/// An index's shards on its placement and, while a change runs, on the new ring: computed
/// once, asked for many members.
struct Holdings {
    placed: Vec<ShardCopies>,
    moving_to: Vec<ShardCopies>,
}

impl Holdings {
    fn of(view: &View, entry: &IndexEntry) -> Holdings {
        let moving_to = match &entry.pending {
            Some(next) => {
                let rf = entry.wanted_copies().min(next.members().len()).max(1);
                shards(next, rf)
            }
            None => Vec::new(),
        };
        Holdings {
            placed: shards_of(view, entry),
            moving_to,
        }
    }

    /// See [`held_ranges`].
    fn held(&self, member: &str) -> TokenRanges {
        let mut ranges = held_by(&self.placed, member).ranges().to_vec();
        ranges.extend_from_slice(held_by(&self.moving_to, member).ranges());
        TokenRanges::new(ranges)
    }
}

/// For an index with more than one copy per document, or one whose placement is changing:
/// the token ranges this node holds (or gains), and each live peer with the ranges both hold
/// (what catch-up reads — which streams a gained range from its old copies — and
/// anti-entropy compares). `None` for an index with one copy and no change running, or none
/// here.
pub fn shared_with_peers(
    view: &View,
    entry: &IndexEntry,
) -> Option<(TokenRanges, Vec<(String, TokenRanges)>)> {
    let ring = view.ring_of(entry.placement.as_deref());
    if entry.pending.is_none() && entry.wanted_copies().min(ring.members().len()) < 2 {
        return None;
    }
    let holdings = Holdings::of(view, entry);
    let mine = holdings.held(&view.self_id);
    if mine.is_empty() {
        return None;
    }
    let mut members: Vec<&String> = ring.members().iter().collect();
    if let Some(next) = &entry.pending {
        members.extend(next.members());
    }
    members.sort_unstable();
    members.dedup();
    let peers = members
        .into_iter()
        .filter(|m| **m != view.self_id && view.is_live(m))
        .map(|m| (m.clone(), mine.intersect(&holdings.held(m))))
        .filter(|(_, shared)| !shared.is_empty())
        .collect();
    Some((mine, peers))
}
