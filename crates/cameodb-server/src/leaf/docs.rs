//! Document writes and reads on their owner: one document, or the items of a `_bulk` or the
//! documents of an `_mget` this node owns. The items of one index go to its store as one batch
//! (one durable transaction); every item succeeds or fails on its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use cameodb_storage::{OpKind, Source, Store, StoreError, WriteOp, WriteOutcome, WriteResult};
use serde_json::{Map, Value};

use super::{Leaf, NewFields, apply_refresh};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::ids::doc_key;
use crate::messages::docs::{BulkItem, WriteBody};
use crate::messages::{BulkPart, DocRead, DocWrite, FoundDoc, Written};
use crate::request::bulk::Action;
use crate::request::docs::UpdateBody;
use crate::request::params::Refresh;
use crate::shard::run;

/// Writes one document.
pub async fn write(
    leaf: &Leaf,
    fields: &dyn NewFields,
    call: DocWrite,
) -> Result<Written, ApiError> {
    let key = doc_key(&call.id, call.routing.as_deref())?;
    let refresh = call.refresh;
    let kind = match call.body {
        WriteBody::Index { source, create } => OpKind::Index {
            source: source.0,
            create,
        },
        WriteBody::Update {
            doc,
            upsert,
            doc_as_upsert,
        } => OpKind::Update {
            doc: doc.0,
            upsert: upsert.map(|u| u.0),
            doc_as_upsert,
        },
        WriteBody::Delete => OpKind::Delete,
        WriteBody::Script {
            script,
            upsert,
            scripted_upsert,
            retries,
        } => {
            let script = Scripted {
                script: cameodb_search::script::parse(&script)?,
                upsert: upsert.map(Source::from_value).transpose()?,
                scripted_upsert,
                retries,
                condition: call.if_seq_no,
                stamp: call.stamp,
            };
            let entry = leaf.catalog.get_or_create(&call.index).await?;
            return run(&entry.shard, move |store| script.run(store, key, refresh))
                .await
                .map_err(|e| e.with_index(&call.index));
        }
    };
    let op = WriteOp {
        key,
        kind,
        if_seq_no: call.if_seq_no,
        stamp: call.stamp,
        external: call.external,
    };
    let entry = if call.auto_create {
        leaf.catalog.get_or_create(&call.index).await?
    } else {
        leaf.catalog.require(&call.index).await?
    };
    let op = fields
        .register(&entry, vec![op])
        .await
        .pop()
        .ok_or_else(|| ApiError::internal("write lost before it ran"))?;
    run(&entry.shard, move |store| {
        let outcome = store.write(op)?;
        let forced = apply_refresh(store, refresh, outcome.seq_no)?;
        Ok(Written::new(outcome, forced))
    })
    .await
    .map_err(|e| e.with_index(&call.index))
}

/// A scripted update (the subset of `script.rs`): read, run, write conditionally on the
/// sequence number read, and retry `retries` times if another write got in between.
struct Scripted {
    script: cameodb_search::script::Script,
    upsert: Option<Source>,
    scripted_upsert: bool,
    retries: usize,
    condition: Option<u64>,
    /// The coordinator's stamp for the write.
    stamp: Option<cameodb_storage::Stamp>,
}

impl Scripted {
    fn run(
        self,
        store: &Store,
        key: cameodb_storage::DocKey,
        refresh: Refresh,
    ) -> Result<Written, ApiError> {
        for attempt in 0..=self.retries {
            let op = match (store.get(&key)?, &self.upsert) {
                (None, None) => {
                    return Err(StoreError::DocumentMissing {
                        id: key.id.to_string(),
                    }
                    .into());
                }
                (None, Some(upsert)) => {
                    let mut source = upsert.as_map().clone();
                    if self.scripted_upsert {
                        self.script.apply(&mut source)?;
                    }
                    WriteOp::create(key.clone(), Source::from_value(Value::Object(source))?)
                }
                (Some(doc), _) => {
                    let seq_no = doc.stamp.hlc;
                    if let Some(expected) = self.condition.filter(|seq| *seq != seq_no) {
                        return Err(StoreError::VersionConflict {
                            id: key.id.to_string(),
                            expected,
                            current: Some(seq_no),
                        }
                        .into());
                    }
                    let Value::Object(mut source) = doc.source_json()? else {
                        return Err(ApiError::internal("stored document is not an object"));
                    };
                    let original = source.clone();
                    self.script.apply(&mut source)?;
                    if source == original {
                        let noop = WriteOutcome {
                            key: key.clone(),
                            result: WriteResult::Noop,
                            seq_no: Some(doc.seq_no),
                            version: Some(doc.version),
                            stamp: Some(doc.stamp),
                            applied: None,
                        };
                        return Ok(Written::new(noop, false));
                    }
                    WriteOp::put(key.clone(), Source::from_value(Value::Object(source))?)
                        .if_seq_no(seq_no)
                }
            };
            let op = match self.stamp {
                Some(stamp) => op.stamped(stamp),
                None => op,
            };
            match store.write(op) {
                Err(StoreError::VersionConflict { .. } | StoreError::DocumentExists { .. })
                    if attempt < self.retries =>
                {
                    continue;
                }
                Err(err) => return Err(err.into()),
                Ok(outcome) => {
                    let forced = apply_refresh(store, refresh, outcome.seq_no)?;
                    return Ok(Written::new(outcome, forced));
                }
            }
        }
        Err(ApiError::internal("retries exhausted"))
    }
}

/// Reads one document.
pub async fn read(leaf: &Leaf, call: DocRead) -> Result<Option<FoundDoc>, ApiError> {
    let entry = leaf.catalog.require(&call.index).await?;
    let key = doc_key(&call.id, call.routing.as_deref())?;
    let refresh = call.refresh;
    run(&entry.shard, move |store| {
        if refresh {
            store.refresh()?;
        }
        Ok(store.get(&key)?.map(FoundDoc::from))
    })
    .await
}

/// Reads the documents of an `_mget` this node owns, each on its own.
pub async fn mget(leaf: &Leaf, wanted: Vec<DocRead>) -> Vec<Result<Option<FoundDoc>, ApiError>> {
    let mut out = Vec::with_capacity(wanted.len());
    for want in wanted {
        let index = want.index.clone();
        out.push(read(leaf, want).await.map_err(|e| e.with_index(&index)));
    }
    out
}

/// The write of one bulk item.
fn bulk_op(item: &BulkItem) -> Result<WriteOp, ApiError> {
    let key = doc_key(&item.id, item.routing.as_deref())?;
    Ok(match item.action {
        Action::Index | Action::Create => WriteOp {
            key,
            kind: OpKind::Index {
                source: Source::from_slice(&item.source)?,
                create: item.create,
            },
            if_seq_no: item.if_seq_no,
            stamp: item.stamp,
            external: item.external,
        },
        Action::Update => {
            let body: Map<String, Value> = serde_json::from_slice(&item.source)
                .map_err(|e| ApiError::parse(format!("failed to parse update body: {e}")))?;
            let update = UpdateBody::parse(&body)?;
            WriteOp {
                key,
                kind: OpKind::Update {
                    doc: update.doc,
                    upsert: update.upsert,
                    doc_as_upsert: update.doc_as_upsert,
                },
                if_seq_no: item.if_seq_no,
                stamp: item.stamp,
                external: item.external,
            }
        }
        Action::Delete => WriteOp {
            key,
            kind: OpKind::Delete,
            if_seq_no: item.if_seq_no,
            stamp: item.stamp,
            external: item.external,
        },
    })
}

/// Writes the items of a `_bulk` this node owns; answers each item in order.
pub async fn bulk(
    leaf: &Leaf,
    fields: &dyn NewFields,
    part: BulkPart,
) -> Result<Vec<Result<Written, ApiError>>, ApiError> {
    let refresh = part.refresh;
    // Parsing the sources is CPU work: off the async workers, at ingest priority.
    let items = part.items;
    let ops: Vec<(String, Result<WriteOp, ApiError>)> = leaf
        .ingest
        .run(move || {
            items
                .iter()
                .map(|item| {
                    cameodb_memory::check()?;
                    Ok((item.index.clone(), bulk_op(item)))
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await??;
    let mut results: Vec<Option<Result<Written, ApiError>>> = Vec::with_capacity(ops.len());
    let mut by_index: BTreeMap<String, Vec<(usize, WriteOp)>> = BTreeMap::new();
    for (n, (index, op)) in ops.into_iter().enumerate() {
        match op {
            Ok(op) => {
                by_index.entry(index).or_default().push((n, op));
                results.push(None);
            }
            Err(err) => results.push(Some(Err(err))),
        }
    }
    for (index, ops) in by_index {
        let (positions, ops): (Vec<usize>, Vec<WriteOp>) = ops.into_iter().unzip();
        let outcomes = match leaf.catalog.get_or_create(&index).await {
            Ok(entry) => write_batch(&entry, fields, ops, refresh).await,
            Err(err) => Err(err),
        };
        match outcomes {
            Ok(outcomes) => {
                for (n, outcome) in positions.into_iter().zip(outcomes) {
                    results[n] = Some(outcome);
                }
            }
            Err(err) => {
                for n in positions {
                    results[n] = Some(Err(err.clone()));
                }
            }
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ApiError::internal("bulk item was not executed"))))
        .collect())
}

/// Writes one index's items as one batch.
async fn write_batch(
    entry: &Arc<IndexEntry>,
    fields: &dyn NewFields,
    ops: Vec<WriteOp>,
    refresh: Refresh,
) -> Result<Vec<Result<Written, ApiError>>, ApiError> {
    let ops = fields.register(entry, ops).await;
    run(&entry.shard, move |store| {
        let outcomes = store.write_batch(ops);
        let max_seq = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().and_then(|o| o.seq_no))
            .max();
        let forced = apply_refresh(store, refresh, max_seq)?;
        Ok(outcomes
            .into_iter()
            .map(|o| o.map(|o| Written::new(o, forced)).map_err(ApiError::from))
            .collect())
    })
    .await
    .map_err(|e| e.with_index(&entry.name))
}
