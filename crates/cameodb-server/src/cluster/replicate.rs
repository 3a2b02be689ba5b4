//! Replicated writes. The coordinator sends each write to the first live replica of its
//! document (the *lead*), which resolves it — checks `if_seq_no` and `op_type=create`, merges
//! an update, runs a script, gives it its version and a stamp newer than what it replaces —
//! and makes it durable; the coordinator then sends what the lead applied (the whole new
//! body, or the delete) to the other live replicas, which apply it last-writer-wins, and
//! acknowledges once `wait_for_active_shards` copies have it. Replicas that were down, slow or
//! cut off catch up from their peers' change feeds (see `catchup`).
//!
//! So concurrent conditional writes through different coordinators meet at one place — the
//! lead's store, which serialises them — and of N writes conditional on the same `_seq_no`
//! exactly one succeeds, as long as the lead is the same live member for all of them. While
//! the preference list's first member is down or partitioned away, the next one leads; when
//! two sides of a partition each lead (with `wait_for_active_shards=1`), both accept writes and
//! the newer stamp wins once they meet.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::placement::{ActiveShards, Copies};
use super::router_actor::View;
use super::{CALL_TIMEOUT, ClusterCtx};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::ids::doc_key;
use crate::messages::replica::{ReplicaBatch, ReplicaOp};
use crate::messages::{NodeCall, NodeReply, Written};
use crate::request::params::Refresh;

/// The copies of document `id` (routed by `routing`) of `entry` under `view`, and how many a
/// write must reach.
pub fn copies_of(
    view: &View,
    entry: &IndexEntry,
    id: &str,
    routing: Option<&str>,
    wait: ActiveShards,
) -> Result<Copies, ApiError> {
    let key = doc_key(id, routing)?;
    copies_at(view, entry, key.token, wait)
}

/// The copies of the document with `token` of `entry` under `view` (those of a running
/// placement change included), and how many a write must reach.
pub fn copies_at(
    view: &View,
    entry: &IndexEntry,
    token: u64,
    wait: ActiveShards,
) -> Result<Copies, ApiError> {
    let ring = view.ring_of(entry.placement.as_deref());
    let rf = entry.wanted_copies().min(ring.members().len()).max(1);
    let required = wait.required(rf)?;
    let copies = Copies::new(ring, rf, token, required, |m| view.is_live(m));
    Ok(match &entry.pending {
        Some(next) => copies.moving_to(next, entry.wanted_copies(), |m| view.is_live(m)),
        None => copies,
    })
}

/// One resolved write to send to the other replicas of its document.
pub struct Outgoing {
    /// The replicas to send it to.
    pub targets: Vec<String>,
    /// How many of them must confirm before the write is acknowledged.
    pub needed: usize,
    /// The write.
    pub op: ReplicaOp,
}

/// The write a lead answered as it goes to the other replicas: `None` when it wrote nothing.
pub fn outgoing(index: &str, token: u64, copies: &Copies, written: &Written) -> Option<Outgoing> {
    let applied = written.applied.clone()?;
    let mut targets = copies.followers().to_vec();
    targets.extend(copies.pending.iter().cloned());
    if targets.is_empty() {
        return None;
    }
    Some(Outgoing {
        needed: copies
            .required
            .saturating_sub(1)
            .saturating_add(copies.pending.len()),
        targets,
        op: ReplicaOp {
            index: index.to_string(),
            id: written.id.clone(),
            token,
            applied,
        },
    })
}

/// Sends `writes` to their replicas (one batch per replica) and returns, per write, how many
/// replicas confirmed it. Returns as soon as every write has the confirmations it needs; calls
/// still running then finish in the background (a replica they miss catches up later).
pub async fn replicate(ctx: &ClusterCtx, writes: Vec<Outgoing>, refresh: Refresh) -> Vec<usize> {
    let mut acks = vec![0usize; writes.len()];
    let mut batches: BTreeMap<String, (Vec<usize>, Vec<ReplicaOp>)> = BTreeMap::new();
    for (n, write) in writes.iter().enumerate() {
        for target in &write.targets {
            let batch = batches.entry(target.clone()).or_default();
            batch.0.push(n);
            batch.1.push(write.op.clone());
        }
    }
    if batches.is_empty() {
        return acks;
    }
    let Some(owned) = ctx.me.upgrade() else {
        return acks;
    };
    let view = ctx.view().await;
    let mut calls: FuturesUnordered<_> = batches
        .into_iter()
        .map(|(node, (positions, ops))| {
            let ctx = Arc::clone(&owned);
            let member = view.member(&node).cloned();
            async move {
                let call = NodeCall::Replicate(ReplicaBatch { ops, refresh });
                let answer = match member {
                    Some(member) => ctx.call_node(&member, call, CALL_TIMEOUT).await,
                    None => Err(super::forgotten(&node)),
                };
                let confirmed: Vec<bool> = match answer {
                    Ok(NodeReply::Replicated(results)) => {
                        results.into_iter().map(|r| r.is_ok()).collect()
                    }
                    Ok(other) => {
                        tracing::warn!(node = %node, reply = %other.unexpected("replicate").reason, "replica answered oddly");
                        Vec::new()
                    }
                    Err(err) => {
                        tracing::debug!(node = %node, reason = %err.reason, "replica missed writes; it catches up later");
                        Vec::new()
                    }
                };
                (positions, confirmed)
            }
        })
        .collect();
    let satisfied = |acks: &[usize]| acks.iter().zip(&writes).all(|(a, w)| *a >= w.needed);
    while !satisfied(&acks) {
        let Some((positions, confirmed)) = calls.next().await else {
            break;
        };
        for (position, ok) in positions.into_iter().zip(confirmed) {
            acks[position] += usize::from(ok);
        }
    }
    if !calls.is_empty() {
        tokio::spawn(async move { while calls.next().await.is_some() {} });
    }
    acks
}

/// Sends writes a node made on its own (by-query) to every live copy of their documents —
/// the node that made them answers "already have it" — and returns a failure, in
/// Elasticsearch's by-query shape, for each write fewer copies than a majority confirmed.
pub async fn replicate_made(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    made: Vec<ReplicaOp>,
    refresh: Refresh,
) -> Vec<serde_json::Value> {
    let mut writes = Vec::with_capacity(made.len());
    for op in made {
        let Some(entry) = entries.iter().find(|e| e.name == op.index) else {
            continue;
        };
        let Ok(copies) = copies_at(view, entry, op.token, ActiveShards::Majority) else {
            continue;
        };
        if copies.replicas.len() < 2 && copies.pending.is_empty() {
            continue;
        }
        let mut targets = copies.live.clone();
        targets.extend(copies.pending.iter().cloned());
        writes.push(Outgoing {
            targets,
            needed: copies.required.saturating_add(copies.pending.len()),
            op,
        });
    }
    let acks = replicate(
        ctx,
        writes.iter().map(Outgoing::clone_shallow).collect(),
        refresh,
    )
    .await;
    writes
        .iter()
        .zip(acks)
        .filter(|(w, acked)| *acked < w.needed)
        .map(|(w, acked)| {
            serde_json::json!({
                "index": w.op.index, "id": w.op.id, "status": 503,
                "cause": {
                    "type": "unavailable_shards_exception",
                    "reason": format!("the write reached {acked} of the {} copies a majority requires", w.needed),
                },
            })
        })
        .collect()
}

/// Reads after which the copies of the document read are compared (read repair): one in this
/// many, so reads do not multiply the traffic between nodes; catch-up and anti-entropy repair
/// the rest.
pub const READ_REPAIR_EVERY: u64 = 10;

/// Read repair: in the background, asks every live copy of a document just read for its
/// version and sends the newest to the copies that lack it (a copy whose newer delete it does
/// not show refuses the older version: last writer wins).
pub fn repair_after_read(
    ctx: &ClusterCtx,
    index: String,
    id: String,
    token: u64,
    copies: Vec<String>,
) {
    let Some(owned) = ctx.me.upgrade() else {
        return;
    };
    tokio::spawn(async move {
        let view = owned.view().await;
        let call = NodeCall::Fetch(crate::messages::replica::FetchCall {
            index: index.clone(),
            keys: vec![(id.clone(), token)],
        });
        let asks = copies.iter().map(|node| {
            let (view, call, owned) = (&view, call.clone(), &owned);
            async move {
                let answer = match owned.call_id(view, node, call).await {
                    Ok(NodeReply::Fetched(mut docs)) => Some(docs.pop().flatten()),
                    _ => None,
                };
                (node.clone(), answer)
            }
        });
        let answers: Vec<(
            String,
            Option<Option<crate::messages::replica::WireApplied>>,
        )> = futures::future::join_all(asks).await;
        let Some(newest) = answers
            .iter()
            .filter_map(|(_, a)| a.clone().flatten())
            .max_by_key(|a| a.stamp)
        else {
            return;
        };
        let stale: Vec<String> = answers
            .iter()
            .filter(|(_, a)| matches!(a, Some(held) if held.as_ref().is_none_or(|h| h.stamp < newest.stamp)))
            .map(|(node, _)| node.clone())
            .collect();
        if stale.is_empty() {
            return;
        }
        tracing::debug!(index = %index, id = %id, copies = ?stale, "read repair");
        let write = Outgoing {
            targets: stale,
            needed: 0,
            op: ReplicaOp {
                index,
                id,
                token,
                applied: newest,
            },
        };
        replicate(&owned, vec![write], Refresh::No).await;
    });
}

impl Outgoing {
    /// A copy to send (the original stays for reporting).
    fn clone_shallow(&self) -> Outgoing {
        Outgoing {
            targets: self.targets.clone(),
            needed: self.needed,
            op: self.op.clone(),
        }
    }
}
