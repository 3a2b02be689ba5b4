//! Index metadata across the cluster. Creations and explicit mapping changes go to the index's
//! metadata owner (the ring owner of its name, when up), which applies them one at a time —
//! of two concurrent conflicting changes the second fails, as in Elasticsearch — and pushes
//! them to every reachable node before answering; deletions are pushed from where they happen.
//! Fields a write would map dynamically are registered the same way before the write (see
//! [`register_new_fields`]). A gossip-driven sync then repairs what a push missed (a node that
//! was down or unreachable). Each node gossips, per index, `index:<name>` = `<uuid> <hash of
//! its mapped fields>`, or `deleted <uuid>` once it deleted it.
//!
//! What still conflicts (changes made while the metadata owner was down) resolves the same way
//! on every node: two copies of one index name with different uuids settle on the smaller uuid,
//! whose settings the other copy adopts while keeping its documents; mappings converge by adding,
//! on every node, the fields it lacks (a field two nodes mapped differently meanwhile keeps each
//! node's own type).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cameodb_cluster::{Member, MemberState};
use cameodb_schema::mapping::Mapping;
use cameodb_storage::{OpKind, WriteOp};
use futures::future::{BoxFuture, join_all};
use serde_json::Value;
use tracing::{debug, info, warn};

use super::sync_rules::{Gossiped, adopts, needs_pull};
use super::{CALL_TIMEOUT, ClusterCtx};
use crate::catalog::{Catalog, Created, IndexEntry};
use crate::error::ApiError;
use crate::leaf::NewFields;
pub use crate::messages::IndexDescriptor;
use crate::messages::{CreateIndex, NodeCall, NodeReply};

/// How often the sync compares this node's indexes with what the others gossip.
pub(super) const SYNC_INTERVAL: Duration = Duration::from_millis(500);

const KEY_PREFIX: &str = "index:";

/// The descriptor of a local index.
pub async fn describe(entry: &IndexEntry) -> Result<IndexDescriptor, ApiError> {
    let mappings =
        crate::shard::run(&entry.shard, |store| Ok(store.mapping().to_es_json())).await?;
    Ok(IndexDescriptor {
        meta: entry.meta.clone(),
        mappings,
    })
}

/// The metadata service as the leaf sees it: registers new dynamic fields before a write.
pub struct FieldRegistry<'a> {
    /// The coordinator of this node.
    pub ctx: &'a ClusterCtx,
}

impl NewFields for FieldRegistry<'_> {
    fn register<'a>(
        &'a self,
        entry: &'a Arc<IndexEntry>,
        ops: Vec<WriteOp>,
    ) -> BoxFuture<'a, Vec<WriteOp>> {
        Box::pin(register_new_fields(self.ctx, entry, ops))
    }
}

/// Before documents are written on this node of a cluster, the fields they would add to the
/// mapping dynamically are first registered through the index's metadata owner, which applies
/// them and pushes them to every node. Two nodes mapping one new field differently at once thus
/// meet there: the second registration fails, this node receives the first one's type, and its
/// documents that disagree fail like any document that does not fit its mapping — as in
/// Elasticsearch. Documents whose every path is already mapped cost one walk over their keys.
/// (Partial updates compute their document inside the store and are not checked here.) A node
/// alone has no one to agree with: its store maps the fields as it writes.
pub async fn register_new_fields(
    ctx: &ClusterCtx,
    entry: &IndexEntry,
    ops: Vec<WriteOp>,
) -> Vec<WriteOp> {
    let view = ctx.view().await;
    if view.is_single() {
        return ops;
    }
    let shared = Arc::new(ops);
    let job_ops = Arc::clone(&shared);
    let additions = crate::shard::run(&entry.shard, move |store| Ok(new_fields(store, &job_ops)))
        .await
        .ok()
        .flatten();
    // The job has dropped its handle by the time it answered (or was never run).
    let ops = Arc::try_unwrap(shared).unwrap_or_else(|ops| ops.as_ref().clone());
    let Some(additions) = additions else {
        return ops;
    };
    let result = match metadata_owner(&view, &entry.name).filter(|m| !m.is_self) {
        Some(owner) => {
            let call = NodeCall::PutMapping {
                index: entry.name.clone(),
                mapping: additions,
            };
            ctx.call_node(owner, call, CALL_TIMEOUT).await.map(drop)
        }
        None => put_mapping_here(ctx, &entry.name, &additions).await,
    };
    if let Err(err) = result {
        // A conflict means another node mapped a field first; the writes below then fail
        // (or fit) against that mapping.
        debug!(index = %entry.name, reason = %err.reason, "dynamic fields not registered");
    }
    ops
}

/// The mapping additions (as an Elasticsearch mapping body) that writing `ops` would make.
fn new_fields(store: &cameodb_storage::Store, ops: &[WriteOp]) -> Option<Value> {
    let mapping = store.mapping();
    let mut grown: Option<Mapping> = None;
    for op in ops {
        let OpKind::Index { source, .. } = &op.kind else {
            continue;
        };
        let current = grown.as_ref().unwrap_or(&mapping);
        if current.covers(source.as_map()) {
            continue;
        }
        if let Ok((_, Some(updated))) = cameodb_storage::to_index_doc(
            current,
            &op.key,
            source.as_map(),
            store.analysis(),
            store.fields(),
        ) {
            grown = Some(updated);
        }
    }
    let grown = grown?;
    let mut added = Mapping {
        dynamic: mapping.dynamic,
        ..Mapping::default()
    };
    for (path, field) in grown.properties {
        if !mapping.properties.contains_key(&path) {
            added.properties.insert(path, field);
        }
    }
    (!added.properties.is_empty()).then(|| added.to_es_json())
}

/// The node that serialises index `name`'s metadata changes: the ring owner of the name's
/// token, if it is up.
pub fn metadata_owner<'a>(view: &'a super::router_actor::View, name: &str) -> Option<&'a Member> {
    let id = view.ring.owner(cameodb_storage::routing_token(name))?;
    view.member(id).filter(|m| m.state == MemberState::Up)
}

/// The metadata owner of `index` when it is another node (`None`: this node decides — it is
/// the owner, or the owner is not up and the cluster's uuid rule settles any conflict).
pub(super) async fn other_owner(ctx: &ClusterCtx, index: &str) -> Option<Member> {
    let view = ctx.view().await;
    metadata_owner(&view, index).filter(|m| !m.is_self).cloned()
}

/// Creates an index through its metadata owner, so concurrent creations of one name meet in
/// one place and the second one fails, as in Elasticsearch.
pub async fn create(ctx: &ClusterCtx, index: &str, request: CreateIndex) -> Result<(), ApiError> {
    match other_owner(ctx, index).await {
        Some(owner) => {
            let call = NodeCall::CreateIndex {
                index: index.to_string(),
                request: request.clone(),
            };
            match ctx.try_call(&owner, call, CALL_TIMEOUT).await {
                Ok(answer) => answer.map(drop),
                // The owner is gone but not yet known to be: decide here, as when it is down
                // (the uuid rule settles a concurrent creation elsewhere).
                Err(err) => {
                    warn!(index = %index, reason = %err.reason, "metadata owner did not answer; creating here");
                    create_here(ctx, index, request).await
                }
            }
        }
        None => create_here(ctx, index, request).await,
    }
}

/// Asks every other up member for index `name`, which this node lacks, and takes the copy
/// the uuid rule picks. A node that joined, or was away, may not have pulled an index yet —
/// and is the metadata owner of names the ring now gives it — so a write's auto-create or a
/// create through it must first find an index the cluster already holds, never make a second
/// one of the same name (whose uuid might win and orphan the documents). True when adopted.
async fn adopt_from_peers(ctx: &ClusterCtx, name: &str) -> Result<bool, ApiError> {
    let view = ctx.view().await;
    let asks = view
        .members
        .iter()
        .filter(|m| !m.is_self && m.state == MemberState::Up)
        .map(|member| ctx.call_node(member, NodeCall::GetIndex(name.to_string()), CALL_TIMEOUT));
    let tombstones = ctx.leaf.catalog.tombstones();
    let found = join_all(asks)
        .await
        .into_iter()
        .filter_map(|reply| match reply {
            Ok(NodeReply::Descriptor(descriptor)) => Some(descriptor),
            _ => None,
        })
        .filter(|d| !tombstones.values().any(|uuid| *uuid == d.meta.uuid))
        .min_by(|a, b| a.meta.uuid.cmp(&b.meta.uuid));
    let Some(descriptor) = found else {
        return Ok(false);
    };
    info!(index = %name, uuid = %descriptor.meta.uuid, "index found on a peer before creating it");
    apply(&ctx.leaf.catalog, name, descriptor).await?;
    Ok(true)
}

/// As the metadata owner: creates the index here and tells every other node.
pub async fn create_here(
    ctx: &ClusterCtx,
    index: &str,
    request: CreateIndex,
) -> Result<(), ApiError> {
    // An index the cluster already holds is adopted first, so the create fails as existing.
    if ctx.leaf.catalog.get(index).await.is_none() {
        adopt_from_peers(ctx, index).await?;
    }
    let entry = ctx
        .leaf
        .catalog
        .create(index, request.settings, request.mappings, request.aliases)
        .await?;
    push_create(ctx, &entry).await;
    Ok(())
}

/// Applies a mapping change to the indexes `index` names; one concrete index goes through its
/// metadata owner (see [`create`]).
pub async fn put_mapping(ctx: &ClusterCtx, index: &str, mapping: &Value) -> Result<(), ApiError> {
    if !index.contains(['*', ','])
        && index != "_all"
        && let Some(owner) = other_owner(ctx, index).await
    {
        let call = NodeCall::PutMapping {
            index: index.to_string(),
            mapping: mapping.clone(),
        };
        return ctx.call_node(&owner, call, CALL_TIMEOUT).await.map(drop);
    }
    put_mapping_here(ctx, index, mapping).await
}

/// Changes dynamic settings of the indexes `index` names, through each one's metadata owner
/// (which bumps its settings version and pushes the new settings to every node).
pub async fn put_settings(
    ctx: &ClusterCtx,
    index: &str,
    changes: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    for entry in ctx.leaf.catalog.resolve(index).await? {
        match other_owner(ctx, &entry.name).await {
            Some(owner) => {
                let call = NodeCall::PutSettings {
                    index: entry.name.clone(),
                    changes: changes.clone(),
                };
                ctx.call_node(&owner, call, CALL_TIMEOUT).await?;
            }
            None => put_settings_here(ctx, &entry.name, changes.clone()).await?,
        }
    }
    Ok(())
}

/// As the metadata owner: changes one index's settings here, then on every other node.
pub async fn put_settings_here(
    ctx: &ClusterCtx,
    index: &str,
    changes: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let meta = ctx.leaf.catalog.update_settings(index, changes).await?;
    info!(index = %index, version = meta.settings_version, "index settings changed");
    push_meta(ctx, index, meta).await;
    Ok(())
}

/// Sends an index's changed metadata (settings, aliases) to every other node, which takes it
/// if it is newer than its own copy.
pub async fn push_meta(ctx: &ClusterCtx, index: &str, meta: crate::catalog::IndexMeta) {
    let call = NodeCall::ApplySettings {
        index: index.to_string(),
        meta,
    };
    broadcast(ctx, call).await;
}

/// Takes another node's settings of index `name` if they are newer than this copy's (same
/// index, higher settings version).
pub async fn apply_settings(
    catalog: &Catalog,
    name: &str,
    meta: crate::catalog::IndexMeta,
) -> Result<(), ApiError> {
    let entry = catalog.require(name).await?;
    if entry.meta.uuid == meta.uuid && meta.settings_version > entry.meta.settings_version {
        catalog.adopt(name, meta).await?;
    }
    Ok(())
}

/// As the metadata owner: applies a mapping change here, then on every other node.
pub async fn put_mapping_here(
    ctx: &ClusterCtx,
    index: &str,
    mapping: &Value,
) -> Result<(), ApiError> {
    for entry in ctx.leaf.catalog.resolve(index).await? {
        apply_mapping(&ctx.leaf.catalog, &entry.name, mapping.clone()).await?;
        let call = NodeCall::ApplyMapping {
            index: entry.name.clone(),
            mapping: mapping.clone(),
        };
        broadcast(ctx, call).await;
    }
    Ok(())
}

/// Applies a mapping change to this node's copies of the indexes `index` names.
pub async fn apply_mapping(catalog: &Catalog, index: &str, mapping: Value) -> Result<(), ApiError> {
    for entry in catalog.resolve(index).await? {
        let mapping = mapping.clone();
        crate::shard::run(&entry.shard, move |store| Ok(store.put_mapping(mapping)?)).await?;
    }
    Ok(())
}

/// Makes sure index `name` exists here and tells the other nodes about it (a write's
/// auto-create, done by the coordinator before any owner sees the write, so every node gets
/// the same uuid).
pub async fn ensure_index(ctx: &ClusterCtx, name: &str) -> Result<(), ApiError> {
    let catalog = &ctx.leaf.catalog;
    if catalog.get(name).await.is_some() || adopt_from_peers(ctx, name).await? {
        return Ok(());
    }
    // The name's metadata owner creates it (so concurrent auto-creates meet there) and
    // answers with its descriptor, which this node applies: the owner pushes only what it
    // creates, and an index it already had (this node joined after it was made and the sync
    // has not pulled it yet) must not be created again here under a second identity.
    if let Some(owner) = other_owner(ctx, name).await {
        let call = NodeCall::EnsureIndex(name.to_string());
        match ctx.call_node(&owner, call, CALL_TIMEOUT).await {
            Ok(NodeReply::Descriptor(descriptor)) => apply(catalog, name, descriptor).await?,
            Ok(_) => {}
            // The owner refused the request itself (an invalid name …): so would this node.
            Err(err) if err.status.is_client_error() => return Err(err),
            Err(err) => {
                warn!(index = %name, reason = %err.reason, "metadata owner unreachable; creating here")
            }
        }
        if catalog.get(name).await.is_some() {
            return Ok(());
        }
    }
    ensure_here(ctx, name).await.map(drop)
}

/// Makes sure index `name` exists on this node, with default settings when it is created
/// here, and tells the other nodes when it was.
pub async fn ensure_here(ctx: &ClusterCtx, name: &str) -> Result<Arc<IndexEntry>, ApiError> {
    let (entry, created) = ctx.leaf.catalog.ensure(name).await?;
    if created == Created::Now {
        push_create(ctx, &entry).await;
    }
    Ok(entry)
}

/// Deletes the indexes `expression` names here and tells every other node.
pub async fn delete(ctx: &ClusterCtx, expression: &str) -> Result<(), ApiError> {
    for entry in ctx.leaf.catalog.resolve_concrete(expression).await? {
        ctx.leaf.catalog.delete(&entry.name).await?;
        push_delete(ctx, &entry.name, &entry.meta.uuid).await;
    }
    Ok(())
}

/// Deletes this node's copy of index `name` if it is the index another node deleted (same
/// uuid); a newer index of the same name stays.
pub async fn delete_copy(catalog: &Catalog, name: &str, uuid: &str) -> Result<(), ApiError> {
    match catalog.get(name).await {
        Some(entry) if entry.meta.uuid == uuid => catalog.delete(name).await,
        _ => Ok(()),
    }
}

/// Tells every other reachable node about a newly created index (best effort: the sync
/// repairs what this misses).
pub async fn push_create(ctx: &ClusterCtx, entry: &IndexEntry) {
    match describe(entry).await {
        Ok(descriptor) => {
            let call = NodeCall::PutIndex {
                name: entry.name.clone(),
                descriptor,
            };
            broadcast(ctx, call).await;
        }
        Err(err) => warn!(index = %entry.name, reason = %err.reason, "cannot describe new index"),
    }
}

/// Tells every other reachable node that an index was deleted.
pub async fn push_delete(ctx: &ClusterCtx, name: &str, uuid: &str) {
    let call = NodeCall::DeleteIndex {
        name: name.to_string(),
        uuid: uuid.to_string(),
    };
    broadcast(ctx, call).await;
}

/// Sends one call to every other member that is not down, in parallel; failures are logged
/// (the sync repairs what they missed), not returned.
pub async fn broadcast(ctx: &ClusterCtx, call: NodeCall) {
    let view = ctx.view().await;
    let calls = view
        .members
        .iter()
        .filter(|m| !m.is_self && matches!(m.state, MemberState::Up | MemberState::Joining))
        .map(|member| {
            let call = call.clone();
            async move {
                if let Err(err) = ctx.call_node(member, call, CALL_TIMEOUT).await {
                    warn!(node = %member.id, reason = %err.reason, "metadata push failed");
                }
            }
        });
    join_all(calls).await;
}

/// Applies another node's descriptor of index `name` here: creates it, adopts its identity
/// (smaller uuid wins), and adds the mapped fields this node lacks.
pub async fn apply(
    catalog: &Catalog,
    name: &str,
    descriptor: IndexDescriptor,
) -> Result<(), ApiError> {
    let (entry, created) = catalog
        .ensure_with(
            name,
            descriptor.meta.clone(),
            Some(descriptor.mappings.clone()),
        )
        .await?;
    if created == Created::Now {
        info!(index = %name, uuid = %descriptor.meta.uuid, "index created from the cluster");
    }
    if adopts(&entry.meta.uuid, &descriptor.meta.uuid) {
        catalog.adopt(name, descriptor.meta.clone()).await?;
    } else {
        apply_settings(catalog, name, descriptor.meta.clone()).await?;
    }
    add_missing_fields(&entry, &descriptor.mappings).await?;
    Ok(())
}

/// Adds to `entry`'s mapping the fields `mappings` has and it lacks; returns how many.
pub async fn add_missing_fields(entry: &IndexEntry, mappings: &Value) -> Result<usize, ApiError> {
    let theirs = Mapping::from_es_json(mappings)?;
    crate::shard::run(&entry.shard, move |store| {
        let ours = store.mapping();
        let mut missing = Mapping {
            dynamic: ours.dynamic,
            ..Mapping::default()
        };
        for (path, field) in theirs.properties {
            if !ours.properties.contains_key(&path) {
                missing.properties.insert(path, field);
            }
        }
        let added = missing.properties.len();
        if added > 0 {
            store.put_mapping(missing.to_es_json())?;
        }
        Ok(added)
    })
    .await
}

/// A hash of the mapped paths and their types: equal on two nodes when their mappings hold
/// the same fields.
fn mapping_digest(mapping: &Mapping) -> u64 {
    let mut text = String::new();
    for (path, field) in &mapping.properties {
        text.push_str(path);
        text.push(':');
        text.push_str(field.field_type.name());
        if let Some(variant) = &field.variant {
            // A `constant_keyword` value set on one node is a difference to catch up on.
            text.push_str(&format!("{variant:?}"));
        }
        for sub in field.fields.keys() {
            text.push('+');
            text.push_str(sub);
        }
        text.push('\n');
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// What this node gossips for its indexes and tombstones.
async fn local_gossip(catalog: &Catalog) -> BTreeMap<String, Gossiped> {
    let mut out = BTreeMap::new();
    for (name, uuid) in catalog.tombstones() {
        out.insert(name, Gossiped::Deleted { uuid });
    }
    for entry in catalog.all().await {
        let digest = crate::shard::run(&entry.shard, |store| Ok(mapping_digest(&store.mapping())))
            .await
            .unwrap_or(0)
            // A settings change shows in the digest too, so a node that missed it pulls it.
            ^ entry.meta.settings_version.rotate_left(32);
        out.insert(
            entry.name.clone(),
            Gossiped::Live {
                uuid: entry.meta.uuid.clone(),
                digest,
            },
        );
    }
    out
}

/// Every index another node gossips, with the node.
fn peer_gossip(members: &[Member]) -> Vec<(&Member, String, Gossiped)> {
    let mut out = Vec::new();
    for member in members
        .iter()
        .filter(|m| !m.is_self && m.state == MemberState::Up)
    {
        for (key, value) in &member.values {
            if let (Some(name), Some(gossiped)) =
                (key.strip_prefix(KEY_PREFIX), Gossiped::parse(value))
            {
                out.push((member, name.to_string(), gossiped));
            }
        }
    }
    out
}

/// Runs the metadata sync until the node stops.
pub async fn sync_loop(catalog: Arc<Catalog>, ctx: Arc<ClusterCtx>) {
    // What this node gossiped last round: also what it compares peers with.
    let mut published: BTreeMap<String, Gossiped> = BTreeMap::new();
    // (node, index) -> what it gossiped when we last pulled from it, so we pull once per change.
    let mut pulled: BTreeMap<(String, String), Gossiped> = BTreeMap::new();
    loop {
        tokio::time::sleep(SYNC_INTERVAL).await;
        let view = ctx.view().await;
        let peers = peer_gossip(&view.members);
        let deleted: Vec<(String, String)> = peers
            .iter()
            .filter_map(|(_, name, g)| match g {
                Gossiped::Deleted { uuid } => Some((name.clone(), uuid.clone())),
                Gossiped::Live { .. } => None,
            })
            .collect();
        for (name, uuid) in &deleted {
            if let Some(entry) = catalog.get(name).await
                && &entry.meta.uuid == uuid
            {
                match catalog.delete(name).await {
                    Ok(()) => info!(index = %name, %uuid, "index deleted by the cluster"),
                    Err(err) => warn!(index = %name, reason = %err.reason, "cluster delete failed"),
                }
            }
        }
        let tombstones = catalog.tombstones();
        for (member, name, gossiped) in &peers {
            let Gossiped::Live { uuid, .. } = gossiped else {
                continue;
            };
            // A deleted index is never brought back by a node that has not heard yet.
            if deleted.iter().any(|(_, d)| d == uuid) || tombstones.values().any(|d| d == uuid) {
                continue;
            }
            let local = catalog.get(name).await;
            let last_pulled = pulled.get(&(member.id.clone(), name.clone()));
            if !needs_pull(
                local.as_ref().map(|e| e.meta.uuid.as_str()),
                gossiped,
                last_pulled,
                published.get(name),
            ) {
                continue;
            }
            pulled.insert((member.id.clone(), name.clone()), gossiped.clone());
            let call = NodeCall::GetIndex(name.clone());
            let descriptor = match ctx.call_node(member, call, CALL_TIMEOUT).await {
                Ok(NodeReply::Descriptor(descriptor)) => Some(descriptor),
                _ => None,
            };
            let Some(descriptor) = descriptor else {
                pulled.remove(&(member.id.clone(), name.clone()));
                continue;
            };
            if let Err(err) = apply(&catalog, name, descriptor).await {
                debug!(index = %name, node = %member.id, reason = %err.reason, "metadata sync failed");
            }
        }
        let now = local_gossip(&catalog).await;
        for (name, gossiped) in &now {
            if published.get(name) != Some(gossiped) {
                ctx.cluster
                    .set_value(&format!("{KEY_PREFIX}{name}"), &gossiped.render())
                    .await;
            }
        }
        published = now;
    }
}
