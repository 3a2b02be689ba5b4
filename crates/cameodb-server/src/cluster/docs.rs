//! Unicast: a write or read of one document goes to the node owning its ring token (with the
//! index's placement, when it has one). A write that may create its index makes sure the
//! index exists cluster-wide first, so every node gets the same one.

use super::{ClusterCtx, metadata};
use crate::error::ApiError;
use crate::messages::{DocRead, DocWrite, FoundDoc, NodeCall, NodeReply, Written};

/// The owner of document `id` (routed by `routing`) of `index`.
async fn owner(
    ctx: &ClusterCtx,
    index: &str,
    id: &str,
    routing: Option<&str>,
) -> (std::sync::Arc<super::router_actor::View>, String) {
    let view = ctx.view().await;
    let placement = ctx
        .leaf
        .catalog
        .get(index)
        .await
        .and_then(|e| e.placement.clone());
    let node = view.owner_of(placement.as_deref(), id, routing);
    (view, node)
}

/// Writes one document on its owner.
pub async fn write(ctx: &ClusterCtx, write: DocWrite) -> Result<Written, ApiError> {
    if write.auto_create {
        metadata::ensure_index(ctx, &write.index).await?;
    }
    let (view, node) = owner(ctx, &write.index, &write.id, write.routing.as_deref()).await;
    match ctx.call_id(&view, &node, NodeCall::Write(write)).await? {
        NodeReply::Written(written) => Ok(written),
        other => Err(other.unexpected("write")),
    }
}

/// Reads one document from its owner.
pub async fn read(ctx: &ClusterCtx, read: DocRead) -> Result<Option<FoundDoc>, ApiError> {
    let (view, node) = owner(ctx, &read.index, &read.id, read.routing.as_deref()).await;
    match ctx.call_id(&view, &node, NodeCall::Read(read)).await? {
        NodeReply::Doc(doc) => Ok(doc),
        other => Err(other.unexpected("read")),
    }
}
