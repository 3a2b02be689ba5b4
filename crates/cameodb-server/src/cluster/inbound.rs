//! Calls from other nodes (and from this node to itself): each typed [`NodeCall`] goes to the
//! leaf executor, or — for what a node does as a coordinator or metadata owner on another's
//! behalf — to the cluster code that does it.

use std::sync::{Arc, OnceLock, Weak};

use cameodb_cluster::{RequestHandler, WireRequest, WireResponse};
use cameodb_memory::{Accounted, NodeBudget};
use futures::future::BoxFuture;
use tracing::debug;

use std::time::Duration;

use super::{ClusterCtx, metadata, pit, scatter};
use crate::error::ApiError;
use crate::leaf;
use crate::messages::{NodeCall, NodeReply, WireAnswer, decode, encode};

/// Runs `call` on this node. Boxed: serving a call may make calls (a metadata owner tells
/// every node), and the future would otherwise contain itself.
pub fn serve(ctx: &ClusterCtx, call: NodeCall) -> BoxFuture<'_, Result<NodeReply, ApiError>> {
    Box::pin(async move {
        let leaf = ctx.leaf.as_ref();
        let fields = metadata::FieldRegistry { ctx };
        Ok(match call {
            NodeCall::Search(request) => {
                NodeReply::Shard(leaf::search::search(leaf, request).await?)
            }
            NodeCall::Dfs(request) => NodeReply::Stats(leaf::search::dfs(leaf, request).await?),
            NodeCall::ReleasePins(ids) => NodeReply::Freed(leaf.scrolls.clear(&ids)),
            NodeCall::ScrollPage(call) => NodeReply::Page(scatter::scroll_page(ctx, &call).await?),
            NodeCall::ClearScrolls(call) => {
                NodeReply::Freed(scatter::clear_scrolls(ctx, &call.ids).await)
            }
            NodeCall::PitSearch {
                id,
                keep_alive_ms,
                spec,
            } => NodeReply::Page(
                pit::search_here(ctx, &id, keep_alive_ms.map(Duration::from_millis), spec).await?,
            ),
            NodeCall::ClosePits(ids) => NodeReply::Freed(pit::close_here(ctx, &ids).await),
            NodeCall::Write(write) => {
                NodeReply::Written(leaf::docs::write(leaf, &fields, write).await?)
            }
            NodeCall::Read(read) => NodeReply::Doc(leaf::docs::read(leaf, read).await?),
            NodeCall::Bulk(part) => NodeReply::Bulk(
                leaf::docs::bulk(leaf, &fields, part)
                    .await?
                    .into_iter()
                    .map(|r| r.map_err(Into::into))
                    .collect(),
            ),
            NodeCall::Mget(wanted) => NodeReply::Docs(
                leaf::docs::mget(leaf, wanted)
                    .await
                    .into_iter()
                    .map(|r| r.map_err(Into::into))
                    .collect(),
            ),
            NodeCall::ByQuery(part) => {
                NodeReply::Tally(leaf::by_query::by_query(leaf, part).await?)
            }
            NodeCall::Refresh(names) => {
                leaf::admin::refresh(leaf, &names).await?;
                NodeReply::Ack
            }
            NodeCall::NodeStats => NodeReply::Sizes(leaf::admin::sizes(leaf).await?),
            NodeCall::ShardDocs { index, shards } => {
                let (docs, bytes) = leaf::admin::shard_docs(leaf, &index, shards).await?;
                NodeReply::ShardDocs(docs, bytes)
            }
            NodeCall::Changes(call) => {
                NodeReply::Changes(leaf::changes::changes(leaf, call).await?)
            }
            NodeCall::Replicate(batch) => NodeReply::Replicated(
                leaf::replica::apply(leaf, batch)
                    .await
                    .into_iter()
                    .map(|r| r.map_err(Into::into))
                    .collect(),
            ),
            NodeCall::Digest(call) => NodeReply::Digest(leaf::replica::digest(leaf, call).await?),
            NodeCall::Fetch(call) => NodeReply::Fetched(leaf::replica::fetch(leaf, call).await?),
            NodeCall::Repair(call) => leaf::repair::serve(leaf, call).await?,
            NodeCall::Recoveries => NodeReply::Recoveries(ctx.recoveries.list()),
            NodeCall::ApplyClusterSettings(settings) => {
                ctx.settings.adopt(settings);
                NodeReply::Ack
            }
            NodeCall::EnsureIndex(name) => {
                let entry = metadata::ensure_here(ctx, &name).await?;
                NodeReply::Descriptor(metadata::describe(&entry).await?)
            }
            NodeCall::CreateIndex { index, request } => {
                metadata::create_here(ctx, &index, request).await?;
                NodeReply::Ack
            }
            NodeCall::PutMapping { index, mapping } => {
                metadata::put_mapping_here(ctx, &index, &mapping).await?;
                NodeReply::Ack
            }
            NodeCall::PutSettings { index, changes } => {
                metadata::put_settings_here(ctx, &index, changes).await?;
                NodeReply::Ack
            }
            NodeCall::ApplyTemplates(records) => {
                ctx.leaf.catalog.merge_templates(records).await?;
                NodeReply::Ack
            }
            NodeCall::GetTemplates => {
                NodeReply::Templates(ctx.leaf.catalog.templates().into_values().collect())
            }
            NodeCall::ChangeAliases { index, changes } => {
                super::aliases::change_here(ctx, &index, &changes).await?;
                NodeReply::Ack
            }
            NodeCall::ApplySettings { index, meta } => {
                metadata::apply_settings(&ctx.leaf.catalog, &index, meta).await?;
                NodeReply::Ack
            }
            NodeCall::ApplyMapping { index, mapping } => {
                metadata::apply_mapping(&ctx.leaf.catalog, &index, mapping).await?;
                NodeReply::Ack
            }
            NodeCall::GetIndex(name) => {
                let entry = ctx.leaf.catalog.require(&name).await?;
                NodeReply::Descriptor(metadata::describe(&entry).await?)
            }
            NodeCall::PutIndex { name, descriptor } => {
                metadata::apply(&ctx.leaf.catalog, &name, descriptor).await?;
                NodeReply::Ack
            }
            NodeCall::DeleteIndex { name, uuid } => {
                metadata::delete_copy(&ctx.leaf.catalog, &name, &uuid).await?;
                NodeReply::Ack
            }
        })
    })
}

/// Serves other nodes' calls, each counted to its own memory account.
pub struct Inbound {
    /// The coordinator, once it runs (set right after the transport starts; a call before
    /// that is refused as unavailable).
    pub ctx: OnceLock<Weak<ClusterCtx>>,
    /// The node-wide memory budget.
    pub memory: Arc<NodeBudget>,
    /// What one call may allocate (the per-request breaker limit).
    pub request_memory: u64,
}

impl RequestHandler for Inbound {
    fn handle(&self, from: String, request: WireRequest) -> BoxFuture<'static, WireResponse> {
        let ctx = self.ctx.get().and_then(Weak::upgrade);
        let account = self.memory.account("<node_call>", self.request_memory);
        Box::pin(Accounted::new(account, async move {
            let answer: WireAnswer = match ctx {
                None => Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable_shards_exception",
                    "this node is starting or stopping",
                )
                .into()),
                Some(ctx) => match decode::<NodeCall>(&request.payload) {
                    Ok(call) => {
                        debug!(%from, bytes = request.payload.len(), "node call");
                        serve(&ctx, call).await.map_err(Into::into)
                    }
                    Err(err) => Err(err.into()),
                },
            };
            match encode(&answer) {
                Ok(bytes) => WireResponse::Answer(bytes),
                Err(err) => WireResponse::Failed { reason: err.reason },
            }
        }))
    }
}
