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
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, info, warn};

use super::ClusterCtx;
use super::sync_rules::{Gossiped, adopts, needs_pull};
use crate::catalog::{Catalog, Created, IndexEntry, IndexMeta};
use crate::error::ApiError;

/// How often the sync compares this node's indexes with what the others gossip.
const SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// An index as one node describes it to another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexDescriptor {
    /// Identity and settings.
    pub meta: IndexMeta,
    /// The mapping, as Elasticsearch renders it.
    pub mappings: Value,
}

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

/// Before documents are written on this node of a cluster, the fields they would add to the
/// mapping dynamically are first registered through the index's metadata owner, which applies
/// them and pushes them to every node. Two nodes mapping one new field differently at once thus
/// meet there: the second registration fails, this node receives the first one's type, and its
/// documents that disagree fail like any document that does not fit its mapping — as in
/// Elasticsearch. Documents whose every path is already mapped cost one walk over their keys.
/// (Partial updates compute their document inside the store and are not checked here.)
pub async fn register_new_fields(
    catalog: &Catalog,
    cluster: Option<&ClusterCtx>,
    entry: &IndexEntry,
    ops: Vec<WriteOp>,
) -> Vec<WriteOp> {
    let Some(ctx) = cluster else {
        return ops;
    };
    if ctx.view().await.is_single() {
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
    let view = ctx.view().await;
    let result = match metadata_owner(&view, &entry.name).filter(|m| !m.is_self) {
        Some(owner) => {
            let uri = format!("/_cameo/internal/mapping/{}", entry.name);
            ctx.json_call(owner, "PUT", uri, &additions).await.map(drop)
        }
        None => match serde_json::to_value(&additions) {
            Ok(mapping) => put_mapping(catalog, Some(ctx), &entry.name, &mapping).await,
            Err(err) => Err(ApiError::internal(format!(
                "cannot encode new fields of [{}]: {err}",
                entry.name
            ))),
        },
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
        if let Ok((_, Some(updated))) =
            cameodb_storage::to_index_doc(current, &op.key, source.as_map(), store.fields())
        {
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

/// Applies a mapping change to the indexes `index` names, here and — with a cluster — on every
/// other node (this node is then the index's metadata owner).
pub async fn put_mapping(
    catalog: &Catalog,
    cluster: Option<&ClusterCtx>,
    index: &str,
    mapping: &Value,
) -> Result<(), ApiError> {
    for entry in catalog.resolve(index).await? {
        let job_mapping = mapping.clone();
        crate::shard::run(&entry.shard, move |store| {
            Ok(store.put_mapping(job_mapping)?)
        })
        .await?;
        if let Some(ctx) = cluster {
            let uri = format!("/{}/_mapping", entry.name);
            broadcast(ctx, "PUT", &uri, mapping).await;
        }
    }
    Ok(())
}

/// Makes sure index `name` exists here and tells the other nodes about it (a write's
/// auto-create, done by the coordinator before any owner sees the write, so every node gets
/// the same uuid).
pub async fn ensure_index(catalog: &Catalog, ctx: &ClusterCtx, name: &str) -> Result<(), ApiError> {
    if catalog.get(name).await.is_some() {
        return Ok(());
    }
    // The name's metadata owner creates it (so concurrent auto-creates meet there) and pushes
    // it here before answering.
    let view = ctx.view().await;
    if let Some(owner) = metadata_owner(&view, name).filter(|m| !m.is_self) {
        let uri = format!("/_cameo/internal/ensure/{name}");
        match ctx.json_call(owner, "PUT", uri, &Value::Null).await {
            Ok((status, _)) if status.is_success() => {}
            Ok((status, body)) => {
                return Err(ApiError::from_remote(status, &body, "refused"));
            }
            Err(err) => {
                warn!(index = %name, reason = %err.reason, "metadata owner unreachable; creating here")
            }
        }
        if catalog.get(name).await.is_some() {
            return Ok(());
        }
    }
    ensure_here(catalog, Some(ctx), name).await
}

/// Makes sure index `name` exists on this node, with default settings when it is created
/// here, and tells the other nodes when it was.
pub async fn ensure_here(
    catalog: &Catalog,
    cluster: Option<&ClusterCtx>,
    name: &str,
) -> Result<(), ApiError> {
    let (entry, created) = catalog.ensure(name).await?;
    if let (Created::Now, Some(ctx)) = (created, cluster) {
        push_create(ctx, &entry).await;
    }
    Ok(())
}

/// Tells every other reachable node about a newly created index (best effort: the sync
/// repairs what this misses).
pub async fn push_create(ctx: &ClusterCtx, entry: &IndexEntry) {
    let descriptor = match describe(entry).await {
        Ok(d) => d,
        Err(err) => {
            warn!(index = %entry.name, reason = %err.reason, "cannot describe new index");
            return;
        }
    };
    let body = match serde_json::to_value(&descriptor) {
        Ok(body) => body,
        Err(err) => {
            warn!(index = %entry.name, reason = %err, "cannot encode new index");
            return;
        }
    };
    let uri = format!("/_cameo/internal/index/{}", entry.name);
    broadcast(ctx, "PUT", &uri, &body).await;
}

/// Tells every other reachable node that an index was deleted.
pub async fn push_delete(ctx: &ClusterCtx, name: &str, uuid: &str) {
    let uri = format!("/_cameo/internal/index/{name}?uuid={uuid}");
    broadcast(ctx, "DELETE", &uri, &Value::Null).await;
}

/// Sends one request to every other member that is not down, in parallel; failures are
/// logged, not returned.
pub async fn broadcast(ctx: &ClusterCtx, method: &str, uri: &str, body: &Value) -> Vec<Value> {
    let view = ctx.view().await;
    let calls = view
        .members
        .iter()
        .filter(|m| !m.is_self && matches!(m.state, MemberState::Up | MemberState::Joining))
        .map(|member| async move {
            let result = ctx
                .json_call(member, method, uri.to_string(), body)
                .await;
            match result {
                Ok((status, body)) if status.is_success() => Some(body),
                Ok((status, body)) => {
                    warn!(node = %member.id, %uri, status = status.as_u16(), error = %body["error"], "metadata push refused");
                    None
                }
                Err(err) => {
                    warn!(node = %member.id, %uri, reason = %err.reason, "metadata push failed");
                    None
                }
            }
        });
    join_all(calls).await.into_iter().flatten().collect()
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
            .unwrap_or(0);
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
            let uri = format!("/_cameo/internal/index/{name}");
            let descriptor = match ctx.json_call(member, "GET", uri, &Value::Null).await {
                Ok((status, body)) if status.is_success() => {
                    serde_json::from_value::<IndexDescriptor>(body).ok()
                }
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
