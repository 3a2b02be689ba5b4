//! Work every data node does on its own copy, summed by the coordinator: refreshes, what each
//! node holds, and delete/update-by-query.

use std::collections::HashMap;

use serde_json::json;

use super::{ClusterCtx, fan_out};
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

/// A delete- or update-by-query: every node runs it over the documents it holds; the counts
/// add up. A node that refuses the request itself (a 4xx) fails it, as one node would; a node
/// that fails is reported in `failures`.
pub async fn by_query(ctx: &ClusterCtx, part: ByQueryPart) -> Result<Tally, ApiError> {
    let view = ctx.view().await;
    let mut total = Tally::default();
    for (member, answer) in fan_out(ctx, &view, NodeCall::ByQuery(part)).await {
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
    Ok(total)
}
