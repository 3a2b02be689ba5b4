//! Applying one operation inside the writer's transaction: conditions, merges, versions and
//! stamps, the rows of `docs`, `log`, `superseded`, `deletes` and `tombstones`, and what the
//! indexer must do next.
//!
//! Every write gets a stamp newer than the one of what it replaces (see [`Stamp::after`]), so
//! the document's stamps only grow; a replica write ([`OpKind::Replica`]) is applied only if
//! its stamp beats the current one, live or deleted — last writer wins — which makes applying
//! the same writes twice, or in another order, converge to the same content.

use redb::Table;
use serde_json::Value;

use crate::convert::to_index_doc;
use crate::error::{Result, StoreError};
use crate::id::DocKey;
use crate::indexer::IndexOp;
use crate::kv::{self, DocPointer};
use crate::ops::{Applied, OpKind, Source, WriteOp, WriteOutcome, WriteResult, merge_json};
use crate::stamp::{Hlc, Stamp};
use cameodb_schema::fields::Fields;
use cameodb_schema::mapping::Mapping;

/// The state of one transaction being built.
pub(crate) struct GroupTx<'a> {
    pub fields: &'a Fields,
    /// The index's analysis settings.
    pub analysis: &'a cameodb_schema::Analysis,
    /// The mapping as changed by this transaction so far, if changed.
    pub mapping: Option<Mapping>,
    /// The mapping before this transaction.
    pub base_mapping: &'a Mapping,
    /// Next sequence number within this transaction.
    pub next_seq: u64,
    /// Operations for the indexer, in sequence order.
    pub index_ops: Vec<IndexOp>,
    /// Their rough size.
    pub index_bytes: usize,
    /// Stamps writes that came without one.
    pub clock: &'a Hlc,
    /// This store's node, for stamps it makes itself.
    pub origin: u64,
}

/// The tables one transaction writes.
pub(crate) struct Tables<'t> {
    pub docs: Table<'t, (&'static str, u64), &'static [u8]>,
    pub log: Table<'t, u64, &'static [u8]>,
    pub deletes: Table<'t, u64, &'static [u8]>,
    pub superseded: Table<'t, u64, u64>,
    pub tombstones: Table<'t, (&'static str, u64), &'static [u8]>,
}

/// What a write replaces: the live version, or else the tombstone of the last delete.
struct Current {
    live: Option<DocPointer>,
    /// The stamp a new version must beat.
    floor: Stamp,
    /// The version the last delete left, when the document is deleted (external versions
    /// must beat it too).
    deleted_version: Option<u64>,
}

impl GroupTx<'_> {
    pub fn mapping(&self) -> &Mapping {
        self.mapping.as_ref().unwrap_or(self.base_mapping)
    }

    pub fn put_mapping(&mut self, body: &Value) -> Result<()> {
        let mut next = self.mapping().clone();
        next.merge_es_json(body)?;
        self.analysis.check(&next)?;
        if &next != self.mapping() {
            self.mapping = Some(next);
        }
        Ok(())
    }

    fn current(&self, tables: &Tables<'_>, key: &DocKey) -> Result<Current> {
        let live = kv::pointer(&tables.docs, key)?;
        let (floor, deleted_version) = match live {
            Some(pointer) => (pointer.stamp, None),
            None => match kv::pointer(&tables.tombstones, key)? {
                Some(tombstone) => (tombstone.stamp, Some(tombstone.version)),
                None => (Stamp::ZERO, None),
            },
        };
        Ok(Current {
            live,
            floor,
            deleted_version,
        })
    }

    /// The stamp for a client write replacing `floor`.
    fn stamp(&self, op: &WriteOp, floor: Stamp) -> Stamp {
        let proposed = op.stamp.unwrap_or_else(|| Stamp {
            hlc: self.clock.now(),
            origin: self.origin,
        });
        let stamp = proposed.after(floor);
        self.clock.observe(stamp.hlc);
        stamp
    }

    pub fn apply(&mut self, tables: &mut Tables<'_>, op: &WriteOp) -> Result<WriteOutcome> {
        let key = &op.key;
        let current = self.current(tables, key)?;
        if let OpKind::Replica {
            version,
            stamp,
            source,
        } = &op.kind
        {
            return self.apply_replica(tables, key, current, *version, *stamp, source.as_ref());
        }
        if let OpKind::Lose = op.kind {
            return self.lose(tables, key, current.live);
        }
        let base_version = current.live.map_or(1, |c| c.version + 1);
        if let Some(expected) = op.if_seq_no {
            let current_seq = current.live.map(|c| c.stamp.hlc);
            if current_seq != Some(expected) {
                return Err(StoreError::VersionConflict {
                    id: key.id.to_string(),
                    expected,
                    current: current_seq,
                });
            }
        }
        let next_version = match op.external {
            Some(external) => {
                let existing = current.live.map(|c| c.version).or(current.deleted_version);
                if let Some(existing) = existing
                    && !external.beats(existing)
                {
                    return Err(StoreError::ExternalVersionConflict {
                        id: key.id.to_string(),
                        current: existing,
                        provided: external.version,
                    });
                }
                external.version
            }
            None => base_version,
        };
        let stamp = self.stamp(op, current.floor);
        let live = current.live;
        match &op.kind {
            OpKind::Index { source, create } => {
                if let (true, Some(existing)) = (create, &live) {
                    return Err(StoreError::DocumentExists {
                        id: key.id.to_string(),
                        version: existing.version,
                    });
                }
                self.write(tables, key, source, live, next_version, stamp)
            }
            OpKind::Update {
                doc,
                upsert,
                doc_as_upsert,
            } => match live {
                Some(pointer) => {
                    let existing = kv::load(&tables.log, pointer)?;
                    let Value::Object(original) = existing.source_json()? else {
                        return Err(StoreError::Storage(
                            "stored document is not an object".into(),
                        ));
                    };
                    let mut merged = original.clone();
                    merge_json(&mut merged, doc.as_map());
                    if merged == original {
                        return Ok(unchanged(key, WriteResult::Noop, Some(pointer)));
                    }
                    let merged = Source::from_map(merged);
                    self.write(tables, key, &merged, live, next_version, stamp)
                }
                None if *doc_as_upsert => self.write(tables, key, doc, None, 1, stamp),
                None => match upsert {
                    Some(upsert) => self.write(tables, key, upsert, None, 1, stamp),
                    None => Err(StoreError::DocumentMissing {
                        id: key.id.to_string(),
                    }),
                },
            },
            // A delete of a missing document still leaves its tombstone: a replica that missed
            // the document's creation must not bring it back later.
            OpKind::Delete => self.delete(tables, key, live, next_version, stamp),
            // Applied above; nothing reaches here.
            OpKind::Replica { .. } | OpKind::Lose => Ok(unchanged(key, WriteResult::Noop, live)),
        }
    }

    /// Applies a write another replica resolved, if it is newer than what is here.
    fn apply_replica(
        &mut self,
        tables: &mut Tables<'_>,
        key: &DocKey,
        current: Current,
        version: u64,
        stamp: Stamp,
        source: Option<&Source>,
    ) -> Result<WriteOutcome> {
        self.clock.observe(stamp.hlc);
        if stamp <= current.floor {
            // Already here, or superseded by a newer write: nothing to do.
            return Ok(unchanged(key, WriteResult::Noop, current.live));
        }
        match source {
            Some(source) => self.write(tables, key, source, current.live, version, stamp),
            None => self.delete(tables, key, current.live, version, stamp),
        }
    }

    /// Drops a document without a trace (see [`OpKind::Lose`]).
    fn lose(
        &mut self,
        tables: &mut Tables<'_>,
        key: &DocKey,
        live: Option<DocPointer>,
    ) -> Result<WriteOutcome> {
        let row = (key.id.as_str(), key.token);
        tables.tombstones.remove(row)?;
        let Some(live) = live else {
            return Ok(unchanged(key, WriteResult::NotFound, None));
        };
        tables.docs.remove(row)?;
        tables.log.remove(live.seq)?;
        self.index_ops.push(IndexOp::Delete { key: key.encode() });
        Ok(unchanged(key, WriteResult::Deleted, None))
    }

    /// Records a delete: the tombstone (for the feed and for last-writer-wins) and, when a
    /// version was live, its removal from `docs` and the index.
    fn delete(
        &mut self,
        tables: &mut Tables<'_>,
        key: &DocKey,
        live: Option<DocPointer>,
        version: u64,
        stamp: Stamp,
    ) -> Result<WriteOutcome> {
        let seq = self.next_seq;
        let row = (key.id.as_str(), key.token);
        if let Some(existing) = live {
            tables.docs.remove(row)?;
            // The body stays while a snapshot may still match it.
            tables.superseded.insert(seq, existing.seq)?;
        }
        tables
            .deletes
            .insert(seq, kv::encode_delete(key, version, stamp).as_slice())?;
        let tombstone = DocPointer {
            seq,
            version,
            stamp,
        };
        tables
            .tombstones
            .insert(row, tombstone.encode().as_slice())?;
        self.next_seq += 1;
        if live.is_some() {
            self.index_ops.push(IndexOp::Delete { key: key.encode() });
        }
        Ok(WriteOutcome {
            key: key.clone(),
            result: if live.is_some() {
                WriteResult::Deleted
            } else {
                WriteResult::NotFound
            },
            seq_no: Some(seq),
            version: Some(version),
            stamp: Some(stamp),
            applied: Some(Applied {
                version,
                stamp,
                body: None,
            }),
        })
    }

    fn write(
        &mut self,
        tables: &mut Tables<'_>,
        key: &DocKey,
        source: &Source,
        current: Option<DocPointer>,
        version: u64,
        stamp: Stamp,
    ) -> Result<WriteOutcome> {
        let (mut doc, new_mapping) = to_index_doc(
            self.mapping(),
            key,
            source.as_map(),
            self.analysis,
            self.fields,
        )?;
        let body = source.to_bytes()?;
        let seq = self.next_seq;
        doc.doc.add_u64(self.fields.seq, seq);
        let row = (key.id.as_str(), key.token);
        match current {
            // The superseded body stays while a snapshot may still match it.
            Some(previous) => drop(tables.superseded.insert(seq, previous.seq)?),
            // A tombstone, if any, is older than this write: it has nothing left to guard.
            None => drop(tables.tombstones.remove(row)?),
        }
        let pointer = DocPointer {
            seq,
            version,
            stamp,
        };
        tables.docs.insert(row, pointer.encode().as_slice())?;
        tables
            .log
            .insert(seq, kv::encode_log(key, version, stamp, &body).as_slice())?;
        // Only now, with the rows written, does the op count: a redb error above fails the whole
        // transaction, and a mapping error earlier left no trace.
        self.next_seq += 1;
        if let Some(mapping) = new_mapping {
            self.mapping = Some(mapping);
        }
        self.index_bytes += doc.approx_bytes;
        self.index_ops.push(IndexOp::Upsert {
            key: key.encode(),
            doc,
            replaces: current.is_some(),
        });
        Ok(WriteOutcome {
            key: key.clone(),
            result: if current.is_some() {
                WriteResult::Updated
            } else {
                WriteResult::Created
            },
            seq_no: Some(seq),
            version: Some(version),
            stamp: Some(stamp),
            applied: Some(Applied {
                version,
                stamp,
                body: Some(body),
            }),
        })
    }
}

/// The outcome of a write that wrote nothing, reporting the live version if there is one.
fn unchanged(key: &DocKey, result: WriteResult, live: Option<DocPointer>) -> WriteOutcome {
    WriteOutcome {
        key: key.clone(),
        result,
        seq_no: live.map(|p| p.seq),
        version: live.map(|p| p.version),
        stamp: live.map(|p| p.stamp),
        applied: None,
    }
}
