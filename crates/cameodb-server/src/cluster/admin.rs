//! Work every data node does on its own copy, summed by the coordinator: refreshes, what each
//! node holds, and delete/update-by-query.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use serde_json::json;

use super::{ClusterCtx, fan_out};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::messages::{ByQueryPart, NodeCall, NodeReply, Tally};

/// Shard accounting of a refresh: (total, successful), one shard per index per node.
pub async fn refresh(ctx: &ClusterCtx, names: Vec<String>) -> (usize, usize) {
    let view = ctx.view().await;
    let count = names.len();
    let (mut total, mut ok) = (0, 0);
    for (_, answer) in fan_out(ctx, &view, NodeCall::Refresh(names)).await {
        total += count;
        if answer.is_ok() {
            ok += count;
        }
    }
    (total, ok)
}

/// Documents and bytes per index over every data node, and whether every node answered.
pub async fn sizes(ctx: &ClusterCtx) -> (HashMap<String, (u64, u64)>, bool) {
    let view = ctx.view().await;
    let mut sizes: HashMap<String, (u64, u64)> = HashMap::new();
    let mut complete = true;
    for (_, answer) in fan_out(ctx, &view, NodeCall::NodeStats).await {
        let Ok(NodeReply::Sizes(held)) = answer else {
            complete = false;
            continue;
        };
        for (name, (docs, bytes)) in held {
            let size = sizes.entry(name).or_default();
            size.0 += docs;
            size.1 += bytes;
        }
    }
    (sizes, complete)
}

/// One copy of one shard, as `_cat/shards` lists it.
#[derive(Clone, Debug)]
pub struct ShardRow {
    /// The index.
    pub index: String,
    /// The shard (replica set) id.
    pub shard: usize,
    /// Whether this is the shard's first copy (its ring owner): Elasticsearch's primary.
    pub primary: bool,
    /// The copy's state.
    pub state: super::health::CopyState,
    /// Documents of the shard on this copy (`None`: its node did not answer).
    pub docs: Option<u64>,
    /// Bytes of the shard on this copy, estimated from the index's bytes on the node by the
    /// shard's share of its documents.
    pub bytes: Option<u64>,
    /// The node's HTTP address.
    pub http_addr: String,
    /// The node id.
    pub node: String,
}

/// Every copy of every shard of `entries`.
pub async fn shard_rows(ctx: &ClusterCtx, entries: &[Arc<IndexEntry>]) -> Vec<ShardRow> {
    let view = ctx.view().await;
    let mut rows = Vec::new();
    for entry in entries {
        let shards = super::health::shards_of(&view, entry);
        let mut holders: Vec<&str> = shards
            .iter()
            .flat_map(|s| s.replicas.iter().map(String::as_str))
            .collect();
        holders.sort_unstable();
        holders.dedup();
        let asks = holders.into_iter().map(|node| {
            let held: Vec<(usize, cameodb_search::tokens::TokenRanges)> = shards
                .iter()
                .filter(|s| s.replicas.iter().any(|r| r == node))
                .map(|s| {
                    (
                        s.id,
                        cameodb_search::tokens::TokenRanges::new(s.ranges.clone()),
                    )
                })
                .collect();
            let call = NodeCall::ShardDocs {
                index: entry.name.clone(),
                shards: held.clone(),
            };
            let view = &view;
            async move {
                let answer = if view.is_live(node) {
                    ctx.call_id(view, node, call).await.ok()
                } else {
                    None
                };
                (node.to_string(), held, answer)
            }
        });
        let mut counted: HashMap<(String, usize), (u64, u64)> = HashMap::new();
        for (node, held, answer) in join_all(asks).await {
            let Some(NodeReply::ShardDocs(docs, bytes)) = answer else {
                continue;
            };
            let total: u64 = docs.iter().sum();
            for ((id, _), n) in held.iter().zip(docs) {
                let share = bytes.saturating_mul(n).checked_div(total).unwrap_or(0);
                counted.insert((node.clone(), *id), (n, share));
            }
        }
        // While a placement change runs, a copy whose member gives up part of it is relocating.
        let transition = match (&entry.placement, &entry.pending) {
            (Some(placed), Some(next)) => Some(cameodb_ring::transition::Transition::new(
                placed,
                next,
                entry.wanted_copies(),
            )),
            _ => None,
        };
        let mut losses: HashMap<String, cameodb_search::tokens::TokenRanges> = HashMap::new();
        for shard in &shards {
            for (n, node) in shard.replicas.iter().enumerate() {
                let found = counted.get(&(node.clone(), shard.id));
                let mut state = super::health::copy_state(&view, node);
                if let Some(transition) = &transition {
                    let lost = losses.entry(node.clone()).or_insert_with(|| {
                        cameodb_search::tokens::TokenRanges::new(transition.losses(node))
                    });
                    let moving = shard.ranges.iter().any(|(start, _)| lost.contains(*start));
                    if moving && state == super::health::CopyState::Started {
                        state = super::health::CopyState::Relocating;
                    }
                }
                rows.push(ShardRow {
                    index: entry.name.clone(),
                    shard: shard.id,
                    primary: n == 0,
                    state,
                    docs: found.map(|f| f.0),
                    bytes: found.map(|f| f.1),
                    http_addr: view
                        .member(node)
                        .map(|m| m.http_addr.clone())
                        .unwrap_or_default(),
                    node: node.clone(),
                });
            }
        }
        // Copies a placement change is still streaming in: listed beside the old ones, with
        // the documents they hold so far.
        let building = super::health::building(&view, entry);
        let progress = join_all(building.iter().map(|(shard, node)| {
            let call = NodeCall::ShardDocs {
                index: entry.name.clone(),
                shards: vec![(
                    shard.id,
                    cameodb_search::tokens::TokenRanges::new(shard.ranges.clone()),
                )],
            };
            let view = &view;
            async move {
                match ctx.call_id(view, node, call).await {
                    Ok(NodeReply::ShardDocs(docs, _)) => docs.first().copied(),
                    _ => None,
                }
            }
        }))
        .await;
        for ((shard, node), found) in building.into_iter().zip(progress) {
            rows.push(ShardRow {
                index: entry.name.clone(),
                shard: shard.id,
                primary: false,
                state: super::health::CopyState::Initializing,
                docs: found,
                // The node's bytes are the index's as a whole there: not this copy's yet.
                bytes: None,
                http_addr: view
                    .member(&node)
                    .map(|m| m.http_addr.clone())
                    .unwrap_or_default(),
                node,
            });
        }
    }
    rows
}

/// A delete- or update-by-query: one live copy of every shard runs it over the documents of
/// its ranges (see `plan`); the counts add up, and the writes go on to the other copies of
/// their documents. A node that refuses the request itself (a 4xx) fails it, as one node
/// would; a node that fails is reported in `failures`.
pub async fn by_query(
    ctx: &ClusterCtx,
    entries: &[Arc<IndexEntry>],
    part: ByQueryPart,
) -> Result<Tally, ApiError> {
    let view = ctx.view().await;
    let plan = super::plan::plan(ctx, &view, entries, None);
    let calls = plan.parts.iter().map(|p| {
        let mut call = part.clone();
        call.indices = p.indices.clone();
        call.ranges = p.ranges.clone();
        let member = p.member.clone();
        async move {
            let answer = ctx
                .call_node(&member, NodeCall::ByQuery(call), super::CALL_TIMEOUT)
                .await;
            (member, answer)
        }
    });
    let mut total = Tally::default();
    total.failures.extend(plan.unserved.iter().cloned());
    for (member, answer) in join_all(calls).await {
        match answer {
            Ok(NodeReply::Tally(tally)) => total.add(tally),
            Ok(other) => {
                let err = other.unexpected("by query");
                total.failures.push(
                    json!({"node": member.id, "status": err.status.as_u16(), "cause": err.cause()}),
                );
            }
            Err(err) if err.status.is_client_error() => return Err(err),
            Err(err) => total.failures.push(
                json!({"node": member.id, "status": err.status.as_u16(), "cause": err.cause()}),
            ),
        }
    }
    let applied = std::mem::take(&mut total.applied);
    for failure in
        super::replicate::replicate_made(ctx, &view, entries, applied, part.refresh).await
    {
        total.failures.push(failure);
    }
    Ok(total)
}
