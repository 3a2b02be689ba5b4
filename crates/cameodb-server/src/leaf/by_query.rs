//! `_delete_by_query` and `_update_by_query` over the documents this node holds: find the
//! matching documents in a snapshot, then write them in batches, each write conditional on the
//! sequence number read just before, so a document changed in between is a version conflict
//! rather than a lost update.
//!
//! An update without `doc` or `script` re-indexes each document as it is (Elasticsearch's
//! behaviour without a script, used to pick up mapping changes). Scripts are the small
//! assignment subset of `script.rs`; as a CameoDB extension a partial `doc` may be given instead
//! and is merged into every matching document.

use cameodb_search::build_query;
use cameodb_search::script::Script;
use cameodb_search::tokens::{TokenRanges, restrict};
use cameodb_storage::{OpKind, Source, Store, StoreError, WriteOp, WriteResult};
use serde_json::{Value, json};
use tantivy::collector::DocSetCollector;

use super::{Leaf, apply_refresh};
use crate::error::ApiError;
use crate::messages::replica::ReplicaOp;
use crate::messages::{ByQueryPart, Tally};
use crate::shard::run;

/// Documents written per batch (one durable transaction each).
const BATCH: usize = 1000;

/// What to do to each matching document.
struct Change {
    /// Update (`true`) or delete.
    update: bool,
    /// The partial document an update merges in.
    patch: Option<Source>,
    /// The script an update runs.
    script: Option<Script>,
    /// Count conflicts instead of stopping at them.
    proceed: bool,
}

/// Runs the operation over every index of `part` this node holds; the tallies add up.
pub async fn by_query(leaf: &Leaf, part: ByQueryPart) -> Result<Tally, ApiError> {
    let change = Change {
        update: part.update,
        patch: part.doc.map(Source::from_value).transpose()?,
        script: part
            .script
            .as_ref()
            .map(cameodb_search::script::parse)
            .transpose()?,
        proceed: part.proceed,
    };
    let change = std::sync::Arc::new(change);
    let mut total = Tally::default();
    for name in &part.indices {
        let Some(entry) = leaf.catalog.get(name).await else {
            continue;
        };
        let (change, query, name, refresh) = (
            std::sync::Arc::clone(&change),
            part.query.clone(),
            name.clone(),
            part.refresh,
        );
        let keep_to = part.ranges.get(&name).cloned().map(std::sync::Arc::new);
        let tally = run(&entry.shard, move |store| {
            let tally = run_on_store(store, &name, &query, keep_to.as_ref(), &change)?;
            apply_refresh(store, refresh, tally.1)?;
            Ok(tally.0)
        })
        .await?;
        total.add(tally);
    }
    Ok(total)
}

/// The operation over one store; also returns the highest sequence number written.
fn run_on_store(
    store: &Store,
    index: &str,
    query: &cameodb_search::QuerySpec,
    keep_to: Option<&std::sync::Arc<TokenRanges>>,
    change: &Change,
) -> Result<(Tally, Option<u64>), ApiError> {
    let query = restrict(build_query(store, query)?, keep_to);
    let searcher = store.searcher();
    let addresses: Vec<_> = searcher
        .search(query.as_ref(), &DocSetCollector)?
        .into_iter()
        .collect();
    let keys = cameodb_storage::hit_keys(&searcher, &addresses)?;
    let mut tally = Tally {
        total: keys.len() as u64,
        ..Tally::default()
    };
    let mut max_seq = None;
    for chunk in keys.chunks(BATCH) {
        let current = store.get_many(chunk)?;
        let mut ops = Vec::new();
        for (key, doc) in chunk.iter().zip(current) {
            // Deleted since the snapshot: nothing left to do for it.
            let Some(doc) = doc else {
                tally.total -= 1;
                continue;
            };
            let kind = if !change.update {
                OpKind::Delete
            } else if let Some(script) = &change.script {
                let Value::Object(mut source) = doc.source_json()? else {
                    continue;
                };
                let original = source.clone();
                script.apply(&mut source)?;
                if source == original {
                    tally.noops += 1;
                    continue;
                }
                OpKind::Index {
                    source: Source::from_value(Value::Object(source))?,
                    create: false,
                }
            } else if let Some(patch) = &change.patch {
                OpKind::Update {
                    doc: patch.clone(),
                    upsert: None,
                    doc_as_upsert: false,
                }
            } else {
                OpKind::Index {
                    source: Source::from_slice(&doc.source)?,
                    create: false,
                }
            };
            ops.push(WriteOp {
                key: key.clone(),
                kind,
                if_seq_no: Some(doc.stamp.hlc),
                stamp: None,
                external: None,
            });
        }
        tally.batches += 1;
        let keys: Vec<cameodb_storage::DocKey> = ops.iter().map(|op| op.key.clone()).collect();
        for (key, result) in keys.iter().zip(store.write_batch(ops)) {
            let id = key.id.to_string();
            match result {
                Ok(outcome) if outcome.result == WriteResult::Noop => tally.noops += 1,
                Ok(outcome) => {
                    tally.done += 1;
                    max_seq = max_seq.max(outcome.seq_no);
                    if let Some(applied) = outcome.applied {
                        tally.applied.push(ReplicaOp {
                            index: index.to_string(),
                            id: id.clone(),
                            token: key.token,
                            applied: applied.into(),
                        });
                    }
                }
                Err(StoreError::VersionConflict { .. }) => {
                    tally.conflicts += 1;
                    if !change.proceed {
                        tally.failures.push(json!({"index": index, "id": id, "status": 409,
                            "cause": {"type": "version_conflict_engine_exception", "reason": format!("[{id}]: version conflict")}}));
                    }
                }
                Err(err) => {
                    let err = ApiError::from(err);
                    tally.failures.push(json!({"index": index, "id": id, "status": err.status.as_u16(), "cause": err.cause()}));
                }
            }
        }
        if !tally.failures.is_empty() {
            break;
        }
    }
    Ok((tally, max_seq))
}
