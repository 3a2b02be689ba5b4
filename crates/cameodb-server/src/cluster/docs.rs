//! Unicast: a write of one document goes to the lead replica of its token and then to the
//! other replicas (see `replicate`); a read goes to one live replica. A write that may create
//! its index makes sure the index exists cluster-wide first, so every node gets the same one.

use super::replicate::{READ_REPAIR_EVERY, copies_of, outgoing, repair_after_read, replicate};
use super::{ClusterCtx, metadata};
use crate::error::ApiError;
use crate::ids::doc_key;
use crate::messages::{DocRead, DocWrite, FoundDoc, NodeCall, NodeReply, Written};

/// Writes one document on its copies; acknowledged once `wait_for_active_shards` have it.
pub async fn write(ctx: &ClusterCtx, mut write: DocWrite) -> Result<Written, ApiError> {
    if write.auto_create {
        metadata::ensure_index(ctx, &write.index).await?;
    }
    let view = ctx.view().await;
    let Some(entry) = ctx.leaf.catalog.get(&write.index).await else {
        // This node answers for a missing index, as any node would.
        return match ctx
            .call_id(&view, &view.self_id, NodeCall::Write(write))
            .await?
        {
            NodeReply::Written(written) => Ok(written),
            other => Err(other.unexpected("write")),
        };
    };
    let copies = copies_of(
        &view,
        &entry,
        &write.id,
        write.routing.as_deref(),
        write.wait,
    )?;
    copies.check()?;
    write.stamp = Some(ctx.stamp());
    let refresh = write.refresh;
    // The first live copy leads; one that does not answer (dead, not yet detected) is passed
    // over: what it may have written loses to the newer stamp of the next one's write.
    let (lead, reply) = ctx
        .call_first(&view, &copies.live, NodeCall::Write(write))
        .await?;
    let written = match reply {
        NodeReply::Written(written) => written,
        other => return Err(other.unexpected("write")),
    };
    let copies = copies.led_by(&lead);
    if copies.live.len() < copies.required {
        return Err(copies.short(1));
    }
    if let Some(out) = outgoing(&entry.name, copies.token, &copies, &written) {
        let needed = out.needed;
        let acked = replicate(ctx, vec![out], refresh)
            .await
            .first()
            .copied()
            .unwrap_or(0);
        if acked < needed {
            return Err(copies.short(acked + 1));
        }
    }
    Ok(written)
}

/// Reads one document from a live replica: the lead (where writes resolve, so a client reads
/// what it wrote), or this node when asked with `preference=_local` and it holds a copy.
pub async fn read(ctx: &ClusterCtx, read: DocRead) -> Result<Option<FoundDoc>, ApiError> {
    let view = ctx.view().await;
    let nodes = readers(ctx, &view, &read).await?;
    let (index, id, token) = (
        read.index.clone(),
        read.id.clone(),
        doc_key(&read.id, read.routing.as_deref())?.token,
    );
    let doc = match ctx.call_first(&view, &nodes, NodeCall::Read(read)).await?.1 {
        NodeReply::Doc(doc) => doc,
        other => return Err(other.unexpected("read")),
    };
    let sampled = ctx
        .reads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(READ_REPAIR_EVERY);
    if sampled && nodes.len() > 1 {
        repair_after_read(ctx, index, id, token, nodes);
    }
    Ok(doc)
}

/// The replica a read of `read` goes to.
pub async fn reader(
    ctx: &ClusterCtx,
    view: &super::router_actor::View,
    read: &DocRead,
) -> Result<String, ApiError> {
    let mut nodes = readers(ctx, view, read).await?;
    Ok(nodes.swap_remove(0))
}

/// The replicas a read of `read` may go to, in the order to try them (never empty).
pub async fn readers(
    ctx: &ClusterCtx,
    view: &super::router_actor::View,
    read: &DocRead,
) -> Result<Vec<String>, ApiError> {
    let Some(entry) = ctx.leaf.catalog.get(&read.index).await else {
        return Ok(vec![view.self_id.clone()]);
    };
    doc_key(&read.id, read.routing.as_deref())?;
    let copies = copies_of(
        view,
        &entry,
        &read.id,
        read.routing.as_deref(),
        crate::request::params::ActiveShards::Count(1),
    )?;
    copies.check()?;
    let mut nodes = copies.live;
    if read.local
        && let Some(here) = nodes.iter().position(|n| *n == view.self_id)
    {
        let here = nodes.remove(here);
        nodes.insert(0, here);
    }
    Ok(nodes)
}
