//! Which nodes a search, count, scroll, point in time or by-query operation asks, and for
//! what: every shard (replica set) of every index goes to ONE live copy, and each asked node
//! keeps to the token ranges of the shards it answers for, so every document counts once —
//! totals, buckets and statistics come out as on one node holding every document.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cameodb_cluster::Member;
use cameodb_search::SearchSpec;
use cameodb_search::tokens::TokenRanges;
use serde_json::{Value, json};

use super::ClusterCtx;
use super::placement::{assign, shards};
use super::router_actor::View;
use crate::catalog::IndexEntry;
use crate::messages::{Pin, ShardRequest};

/// One node's part of an operation over some indexes.
#[derive(Clone, Debug)]
pub struct Part {
    /// The node.
    pub member: Member,
    /// The indexes it answers for, each with the token ranges it keeps to (absent: all it
    /// holds, because its shards cover the whole token space).
    pub indices: Vec<String>,
    /// Ranges per index, for the indexes it answers for only part of.
    pub ranges: BTreeMap<String, TokenRanges>,
    /// The shards it answers for, as (index, shard id): what `_shards` counts.
    pub shards: Vec<(String, usize)>,
}

impl Part {
    /// The request this part sends for `spec`.
    pub fn request(&self, spec: &SearchSpec, part: usize, pin: Option<Pin>) -> ShardRequest {
        let mut spec = spec.clone();
        spec.shard = u32::try_from(part).unwrap_or(u32::MAX);
        ShardRequest {
            indices: self.indices.clone(),
            spec,
            stats: None,
            pin,
            ranges: self.ranges.clone(),
        }
    }
}

/// The parts of an operation over `entries`, and the shards no live copy can answer (each a
/// failed shard, in Elasticsearch's failure shape).
pub struct Plan {
    /// One per asked node.
    pub parts: Vec<Part>,
    /// Failures for the shards nobody answers.
    pub unserved: Vec<Value>,
}

/// Plans an operation over `entries`; with `routing` (comma-separated values) only the shards
/// holding those values' tokens are asked, as Elasticsearch searches only the shards they
/// route to.
pub fn plan(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    routing: Option<&str>,
) -> Plan {
    plan_some(ctx, view, entries, routing, None, &[])
}

/// As [`plan`], for the shards in `only` (as (index, shard id); `None`: all), asking none of
/// `exclude` (nodes that just failed to answer).
pub fn plan_some(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    routing: Option<&str>,
    only: Option<&BTreeSet<(String, usize)>>,
    exclude: &[String],
) -> Plan {
    let turn = ctx.rotation.fetch_add(1, Ordering::Relaxed);
    let tokens: Option<Vec<u64>> = routing.map(|r| {
        r.split(',')
            .filter(|v| !v.is_empty())
            .map(cameodb_storage::routing_token)
            .collect()
    });
    let mut parts: BTreeMap<String, Part> = BTreeMap::new();
    let mut unserved = Vec::new();
    for entry in entries {
        let ring = view.ring_of(entry.placement.as_deref());
        let rf = entry.wanted_copies().min(ring.members().len()).max(1);
        let all = shards(ring, rf);
        // How many shards each member holds in all: one answering for every shard it holds
        // needs no filter (it holds nothing else — unless copies were dropped by lowering the
        // replica count, which leaves the dropped ones on disk).
        let held = |member: &str| {
            all.iter()
                .filter(|s| s.replicas.iter().any(|r| r == member))
                .count()
        };
        // While a placement change runs, members also hold what they are streaming in.
        let exact = !entry.meta.copies_lowered && entry.pending.is_none();
        let held: BTreeMap<String, usize> = ring
            .members()
            .iter()
            .map(|m| (m.clone(), held(m)))
            .collect();
        let wanted: Vec<_> = all
            .into_iter()
            .filter(|s| only.is_none_or(|only| only.contains(&(entry.name.clone(), s.id))))
            .filter(|s| match &tokens {
                None => true,
                Some(tokens) => {
                    let ranges = TokenRanges::new(s.ranges.clone());
                    tokens.iter().any(|t| ranges.contains(*t))
                }
            })
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let mut order = view.live_order(ring, turn);
        order.retain(|m| !exclude.contains(m));
        let assignment = assign(&wanted, &order);
        for (node, ids, ranges) in assignment.nodes {
            let Some(member) = view.member(&node) else {
                continue;
            };
            let part = parts.entry(node.clone()).or_insert_with(|| Part {
                member: member.clone(),
                indices: Vec::new(),
                ranges: BTreeMap::new(),
                shards: Vec::new(),
            });
            part.indices.push(entry.name.clone());
            let all_it_holds = exact && held.get(&node) == Some(&ids.len());
            if let Some(ranges) = ranges.filter(|_| !all_it_holds) {
                part.ranges.insert(entry.name.clone(), ranges);
            }
            part.shards
                .extend(ids.into_iter().map(|id| (entry.name.clone(), id)));
        }
        for id in assignment.unserved {
            // Named after the shard's first copy (its ring owner), as Elasticsearch names the
            // primary's node.
            let node = wanted
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.replicas.first())
                .map_or(Value::Null, |n| json!(n));
            unserved.push(json!({
                "shard": id, "index": entry.name, "node": node,
                "reason": {
                    "type": "unavailable_shards_exception",
                    "reason": format!("no live copy of shard [{id}] of [{}]", entry.name),
                },
            }));
        }
    }
    Plan {
        parts: parts.into_values().collect(),
        unserved,
    }
}

/// One node asked for statistics: the indexes and, per index, the token ranges to count in
/// (absent: all it holds).
pub type StatsAsk = (Member, Vec<String>, BTreeMap<String, TokenRanges>);

/// Round one of a scored search: which node gives statistics for which indexes.
pub struct StatsPlan {
    /// Each asked node.
    pub asks: Vec<StatsAsk>,
    /// Per index, how many copies of each document the summed statistics count.
    pub copies: BTreeMap<String, usize>,
}

/// Plans round one. A replicated index whose holders are all live is counted whole on every
/// holder and divided by its copies: tantivy's own statistics, exact (as on one node holding
/// each document once) and free. Otherwise each asked node counts the ranges it answers for
/// (exact counts of documents and term frequencies; token totals estimated — see
/// `cameodb_search::dfs`).
pub fn stats_plan(view: &View, entries: &[Arc<IndexEntry>], parts: &[Part]) -> StatsPlan {
    let mut asks: BTreeMap<String, StatsAsk> = BTreeMap::new();
    let mut copies = BTreeMap::new();
    let mut ask = |member: &Member, index: &str, ranges: Option<&TokenRanges>| {
        let entry = asks
            .entry(member.id.clone())
            .or_insert_with(|| (member.clone(), Vec::new(), BTreeMap::new()));
        entry.1.push(index.to_string());
        if let Some(ranges) = ranges {
            entry.2.insert(index.to_string(), ranges.clone());
        }
    };
    for entry in entries {
        let ring = view.ring_of(entry.placement.as_deref());
        let rf = entry.wanted_copies().min(ring.members().len()).max(1);
        let holders: Vec<&Member> = ring
            .members()
            .iter()
            .filter_map(|id| view.member(id))
            .filter(|m| view.is_live(&m.id))
            .collect();
        if rf > 1 && holders.len() == ring.members().len() {
            for member in holders {
                ask(member, &entry.name, None);
            }
            copies.insert(entry.name.clone(), rf);
            continue;
        }
        for part in parts.iter().filter(|p| p.indices.contains(&entry.name)) {
            ask(&part.member, &entry.name, part.ranges.get(&entry.name));
        }
        copies.insert(entry.name.clone(), 1);
    }
    StatsPlan {
        asks: asks.into_values().collect(),
        copies,
    }
}
