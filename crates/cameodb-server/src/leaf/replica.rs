//! A node's part in replication: applying writes another replica resolved (last writer wins),
//! and serving a replica that catches up — a digest of this node's change feed (which
//! documents changed, at which stamp, without bodies) and then the documents it lacks.

use std::collections::BTreeMap;

use cameodb_storage::{Cursor, DocId, DocKey, Source, WriteOp};

use super::{Leaf, apply_refresh};
use crate::error::ApiError;
use crate::messages::changes::NodeCursor;
use crate::messages::replica::{
    DigestCall, DigestEntry, DigestPage, FetchCall, ReplicaBatch, ReplicaOp, WireApplied,
};
use crate::request::params::Refresh;
use crate::shard::run;

/// The store key of a replicated document.
fn key(id: &str, token: u64) -> Result<DocKey, ApiError> {
    Ok(DocKey {
        token,
        id: DocId::new(id)?,
    })
}

/// The write a replica applies for `op`.
fn replica_write(op: ReplicaOp) -> Result<WriteOp, ApiError> {
    let source = op
        .applied
        .body
        .as_deref()
        .map(Source::from_slice)
        .transpose()?;
    Ok(WriteOp::replica(
        key(&op.id, op.token)?,
        op.applied.version,
        op.applied.stamp,
        source,
    ))
}

/// Applies resolved writes here, per index in one batch each; each write's outcome in order
/// (applied, or already superseded by a newer one: both count as having it).
pub async fn apply(leaf: &Leaf, batch: ReplicaBatch) -> Vec<Result<(), ApiError>> {
    let total = batch.ops.len();
    let mut out: Vec<Result<(), ApiError>> = (0..total)
        .map(|_| Err(ApiError::internal("replica write was not applied")))
        .collect();
    let mut by_index: BTreeMap<String, Vec<(usize, ReplicaOp)>> = BTreeMap::new();
    for (n, op) in batch.ops.into_iter().enumerate() {
        by_index.entry(op.index.clone()).or_default().push((n, op));
    }
    for (index, ops) in by_index {
        let (positions, ops): (Vec<usize>, Vec<ReplicaOp>) = ops.into_iter().unzip();
        let results = apply_index(leaf, &index, ops, batch.refresh).await;
        match results {
            Ok(results) => {
                for (n, result) in positions.into_iter().zip(results) {
                    out[n] = result;
                }
            }
            Err(err) => {
                for n in positions {
                    out[n] = Err(err.clone());
                }
            }
        }
    }
    out
}

/// Applies one index's resolved writes.
async fn apply_index(
    leaf: &Leaf,
    index: &str,
    ops: Vec<ReplicaOp>,
    refresh: Refresh,
) -> Result<Vec<Result<(), ApiError>>, ApiError> {
    let entry = leaf.catalog.require(index).await?;
    run(&entry.shard, move |store| {
        let mut results: Vec<Result<(), ApiError>> = Vec::with_capacity(ops.len());
        let mut writes = Vec::with_capacity(ops.len());
        let mut positions = Vec::with_capacity(ops.len());
        for (n, op) in ops.into_iter().enumerate() {
            match replica_write(op) {
                Ok(write) => {
                    positions.push(n);
                    writes.push(write);
                    results.push(Ok(()));
                }
                Err(err) => results.push(Err(err)),
            }
        }
        let outcomes = store.write_batch(writes);
        let max_seq = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().and_then(|o| o.seq_no))
            .max();
        for (n, outcome) in positions.into_iter().zip(outcomes) {
            results[n] = outcome.map(drop).map_err(ApiError::from);
        }
        apply_refresh(store, refresh, max_seq)?;
        Ok(results)
    })
    .await
    .map_err(|e| e.with_index(index))
}

/// A digest of this node's feed of `call.index` from the reader's cursor, for the reader's
/// ranges; keeps the feed from the reader's cursor on for it.
pub async fn digest(leaf: &Leaf, call: DigestCall) -> Result<DigestPage, ApiError> {
    let entry = leaf.catalog.require(&call.index).await?;
    let DigestCall {
        since,
        limit,
        holder,
        ranges,
        ..
    } = call;
    let since = since.map(|c| Cursor {
        seq: c.seq,
        floor: c.floor,
    });
    run(&entry.shard, move |store| {
        // Everything before the reader's cursor it has: the history from there on stays.
        store.hold_changes(&holder, since.map_or(0, |c| c.seq))?;
        let page = store.changes(since, limit)?;
        let at_end = page.changes.len() < limit;
        let entries = page
            .changes
            .into_iter()
            .filter(|c| ranges.contains(c.key.token))
            .map(|c| DigestEntry {
                id: c.key.id.to_string(),
                token: c.key.token,
                version: c.version,
                stamp: c.stamp,
                deleted: c.source.is_none(),
            })
            .collect();
        Ok(DigestPage {
            entries,
            next: NodeCursor {
                seq: page.next.seq,
                floor: page.next.floor,
            },
            at_end,
        })
    })
    .await
    .map_err(|e| e.with_index(&call.index))
}

/// The current versions of `call.keys` here.
pub async fn fetch(leaf: &Leaf, call: FetchCall) -> Result<Vec<Option<WireApplied>>, ApiError> {
    let entry = leaf.catalog.require(&call.index).await?;
    let keys = call
        .keys
        .iter()
        .map(|(id, token)| key(id, *token))
        .collect::<Result<Vec<_>, _>>()?;
    run(&entry.shard, move |store| {
        Ok(store
            .get_many(&keys)?
            .into_iter()
            .map(|doc| {
                doc.map(|doc| WireApplied {
                    version: doc.version,
                    stamp: doc.stamp,
                    body: Some(doc.source),
                })
            })
            .collect())
    })
    .await
    .map_err(|e| e.with_index(&call.index))
}

/// Which of `entries` this node lacks: those newer than what it holds of the document.
pub async fn lacking(
    leaf: &Leaf,
    index: &str,
    entries: Vec<DigestEntry>,
) -> Result<Vec<DigestEntry>, ApiError> {
    let entry = leaf.catalog.require(index).await?;
    let keys = entries
        .iter()
        .map(|e| key(&e.id, e.token))
        .collect::<Result<Vec<_>, _>>()?;
    run(&entry.shard, move |store| {
        let held = store.stamps(&keys)?;
        Ok(entries
            .into_iter()
            .zip(held)
            .filter(|(entry, held)| held.is_none_or(|h| h < entry.stamp))
            .map(|(entry, _)| entry)
            .collect())
    })
    .await
    .map_err(|e| e.with_index(index))
}
