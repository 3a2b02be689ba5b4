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
