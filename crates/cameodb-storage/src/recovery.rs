//! Opening a store: load the KV side, bring the index to exactly the KV's state (replay the WAL
//! tail after the last tantivy commit, or rebuild the index from redb when it is missing,
//! corrupt or disagrees), and hand back everything the threads need.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tantivy::schema::{Schema, Term};
use tantivy::{
    Index, IndexReader, IndexWriter, InvertedIndexReader, ReloadPolicy, TantivyDocument,
};
use tracing::{info, warn};

use crate::config::StoreConfig;
use crate::convert::to_index_doc;
use crate::error::{Result, StoreError};
use crate::id::DocKey;
use crate::indexer::{commit_with_payload, payload_next_seq};
use crate::kv::{
    self, DELETES, DOCS, LOG, LOG_FORMAT, META, META_LOG_FORMAT, META_MAPPING, META_NEXT_SEQ,
    SUPERSEDED,
};
use crate::stamp::Stamp;
use cameodb_schema::analysis::{self, Analysis};
use cameodb_schema::fields::Fields;
use cameodb_schema::mapping::Mapping;

/// File name of the redb database inside a store directory.
pub const DB_FILE: &str = "docs.redb";
/// Directory name of the tantivy index inside a store directory.
pub const INDEX_DIR: &str = "index";

/// What opening a store had to do to bring the index in line with the KV store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL records replayed into the existing index.
    pub replayed: u64,
    /// Why the index was rebuilt from redb, if it was (missing, corrupt, or disagreeing).
    pub rebuilt: Option<String>,
    /// Documents in the store after recovery.
    pub documents: u64,
    /// Time recovery took.
    pub elapsed: std::time::Duration,
}

/// A store's state after recovery.
pub(crate) struct Recovered {
    pub db: Database,
    pub index: Index,
    pub writer: IndexWriter<TantivyDocument>,
    pub reader: IndexReader,
    pub mapping: Mapping,
    /// Next sequence to allocate; also what the index now covers.
    pub next_seq: u64,
    /// The change feed is complete from this sequence on.
    pub feed_from: u64,
    /// Registered feed consumers and the sequence each still needs.
    pub consumers: std::collections::BTreeMap<String, u64>,
    /// What recovery did.
    pub report: RecoveryReport,
}

/// Opens (creating if needed) the store in `dir` and recovers it.
pub(crate) fn open(
    dir: &Path,
    config: &StoreConfig,
    schema: &Schema,
    fields: &Fields,
) -> Result<Recovered> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let db = Database::builder()
        .set_cache_size(config.kv_cache_bytes)
        .create(dir.join(DB_FILE))?;
    let (next_seq, mapping, feed_from, consumers) = load_meta(&db)?;
    let index_dir = dir.join(INDEX_DIR);
    let existing = match open_index(&index_dir, schema, config, &mapping) {
        Ok(Some((index, covered))) if covered <= next_seq => Ok((index, covered)),
        Ok(Some((_, covered))) => Err(format!(
            "index covers sequence {covered} but the kv store only reached {next_seq}"
        )),
        Ok(None) => Err("no index".to_string()),
        Err(err) => Err(format!("index unreadable: {err}")),
    };
    let caught_up = existing.and_then(|(index, covered)| {
        catch_up(&db, index, covered, next_seq, config, &mapping, fields)
            .map_err(|err| format!("replay failed: {err}"))
    });
    let (parts, replayed, rebuilt) = match caught_up {
        Ok((parts, replayed)) => (parts, replayed, None),
        Err(reason) => {
            // A brand-new store has no index yet: building its empty one is no rebuild.
            let new_store = next_seq == 0;
            if !new_store {
                warn!(reason = %reason, "rebuilding index from the kv store");
            }
            let parts = rebuild(&db, &index_dir, schema, next_seq, config, &mapping, fields)?;
            (parts, 0, (!new_store).then_some(reason))
        }
    };
    let (index, writer, reader) = parts;
    resume_merges(&writer);
    let documents = crate::indexer::root_docs(&reader.searcher(), fields)?;
    let report = RecoveryReport {
        replayed,
        rebuilt,
        documents,
        elapsed: started.elapsed(),
    };
    Ok(Recovered {
        db,
        index,
        writer,
        reader,
        mapping,
        next_seq,
        feed_from,
        consumers,
        report,
    })
}

type Meta = (u64, Mapping, u64, std::collections::BTreeMap<String, u64>);

fn load_meta(db: &Database) -> Result<Meta> {
    let txn = db.begin_write()?;
    let loaded = {
        let docs = txn.open_table(DOCS)?;
        let mut log = txn.open_table(LOG)?;
        let mut deletes = txn.open_table(DELETES)?;
        txn.open_table(SUPERSEDED)?;
        txn.open_table(kv::TOMBSTONES)?;
        let mut consumers = std::collections::BTreeMap::new();
        for row in txn.open_table(kv::CONSUMERS)?.iter()? {
            let (name, from) = row?;
            consumers.insert(name.value().to_string(), from.value());
        }
        let mut meta = txn.open_table(META)?;
        let format = meta
            .get(META_LOG_FORMAT)?
            .map(|v| kv::decode_u64(v.value()))
            .transpose()?;
        match format {
            Some(LOG_FORMAT) => {}
            old @ (Some(1 | 2) | None) => {
                let old = old.unwrap_or(1);
                upgrade_log(&docs, &mut log, old)?;
                upgrade_deletes(&mut deletes, old)?;
                meta.insert(META_LOG_FORMAT, LOG_FORMAT.to_le_bytes().as_slice())?;
            }
            Some(other) => {
                return Err(StoreError::Storage(format!(
                    "log format {other} is newer than this version's ({LOG_FORMAT})"
                )));
            }
        }
        let next_seq = match meta.get(META_NEXT_SEQ)? {
            Some(v) => kv::decode_u64(v.value())?,
            None => 0,
        };
        let mapping = match meta.get(META_MAPPING)? {
            Some(v) => serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Storage(format!("corrupt stored mapping: {e}")))?,
            None => Mapping::default(),
        };
        let feed_from = match meta.get(kv::META_FEED_FROM)? {
            Some(v) => kv::decode_u64(v.value())?,
            None => 0,
        };
        (next_seq, mapping, feed_from, consumers)
    };
    txn.commit()?;
    Ok(loaded)
}

/// Rewrites `log` entries of format `old` in the current format, in the opening transaction:
/// format-1 entries (no version; every entry live) get their version from `docs`; entries of
/// both older formats get [`Stamp::ZERO`], older than any write stamped since.
fn upgrade_log(
    docs: &redb::Table<'_, (&'static str, u64), &'static [u8]>,
    log: &mut redb::Table<'_, u64, &'static [u8]>,
    old: u64,
) -> Result<()> {
    let mut upgraded = Vec::new();
    for entry in log.iter()? {
        let (seq, record) = entry?;
        let (key, version, body) = match old {
            1 => {
                let (key, body) = kv::decode_v1(record.value())?;
                let version = kv::pointer(docs, &key)?.map_or(1, |p| p.version);
                (key, version, body)
            }
            _ => kv::decode_v2(record.value())?,
        };
        upgraded.push((
            seq.value(),
            kv::encode_log(&key, version, Stamp::ZERO, body),
        ));
    }
    if !upgraded.is_empty() {
        info!(
            entries = upgraded.len(),
            from_format = old,
            "log entries upgraded to the current format"
        );
    }
    for (seq, record) in upgraded {
        log.insert(seq, record.as_slice())?;
    }
    Ok(())
}

/// Rewrites delete records of format `old` in the current format: format-1 records (the key
/// only; such stores kept only the deletes tantivy had not committed yet) get version 0, their
/// version was never recorded; all get [`Stamp::ZERO`].
fn upgrade_deletes(deletes: &mut redb::Table<'_, u64, &'static [u8]>, old: u64) -> Result<()> {
    let mut upgraded = Vec::new();
    for entry in deletes.iter()? {
        let (seq, record) = entry?;
        let (key, version) = match old {
            1 => (
                DocKey::decode(record.value())
                    .ok_or_else(|| StoreError::Storage("corrupt delete record".into()))?,
                0,
            ),
            _ => kv::decode_delete_v2(record.value())?,
        };
        upgraded.push((seq.value(), kv::encode_delete(&key, version, Stamp::ZERO)));
    }
    for (seq, record) in upgraded {
        deletes.insert(seq, record.as_slice())?;
    }
    Ok(())
}

/// Opens an existing index if there is a usable one; returns it with the sequence its last
/// commit covers.
fn open_index(
    path: &Path,
    schema: &Schema,
    config: &StoreConfig,
    mapping: &Mapping,
) -> Result<Option<(Index, u64)>> {
    if !path.join("meta.json").exists() {
        return Ok(None);
    }
    let index = Index::open_in_dir(path)?;
    let same_schema =
        serde_json::to_string(&index.schema()).ok() == serde_json::to_string(schema).ok();
    if !same_schema {
        return Err(StoreError::Index(
            "index schema differs from this version's".into(),
        ));
    }
    if config.verify_index_on_open {
        let corrupt = index.validate_checksum()?;
        if !corrupt.is_empty() {
            return Err(StoreError::Index(format!(
                "corrupt index files: {corrupt:?}"
            )));
        }
    }
    analysis::register(index.tokenizers(), mapping, &config.analysis);
    let covered = payload_next_seq(index.load_metas()?.payload.as_deref()).unwrap_or(0);
    Ok(Some((index, covered)))
}

type IndexParts = (Index, IndexWriter<TantivyDocument>, IndexReader);

/// Gives the writer back tantivy's default merge policy once recovery committed.
fn resume_merges(writer: &IndexWriter<TantivyDocument>) {
    writer.set_merge_policy(Box::new(tantivy::merge_policy::LogMergePolicy::default()));
}

fn writer_and_reader(index: Index, config: &StoreConfig, fields: &Fields) -> Result<IndexParts> {
    let (threads, budget) = config.writer_params();
    let writer: IndexWriter<TantivyDocument> = index.writer_with_num_threads(threads, budget)?;
    // A reopened tantivy writer hands its first operation the opstamp of the last commit. A
    // merge that starts right away targets that same opstamp and skips source segments whose
    // delete file carries it, so a real delete landing on it is lost in the merged segment
    // (the deleted document reappears; found by the crash test). Burn that opstamp on a delete
    // that matches nothing: no encoded key is empty.
    writer.delete_term(Term::from_field_bytes(fields.key, &[]));
    // No merges while recovery indexes: they took a quarter of a replay's CPU (perf, 140k
    // records), and the node answers only once recovery is done. `resume_merges` turns them
    // back on after recovery's commit; the next commit merges what it left.
    writer.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok((index, writer, reader))
}

/// Replays the WAL from `covered` and checks the index then holds exactly the KV's documents.
fn catch_up(
    db: &Database,
    index: Index,
    covered: u64,
    next_seq: u64,
    config: &StoreConfig,
    mapping: &Mapping,
    fields: &Fields,
) -> Result<(IndexParts, u64)> {
    let (index, mut writer, reader) = writer_and_reader(index, config, fields)?;
    let started = Instant::now();
    let txn = db.begin_read()?;
    let docs = txn.open_table(DOCS)?;
    let log = txn.open_table(LOG)?;
    let deletes = txn.open_table(DELETES)?;
    // Live versions the index has not committed are re-indexed; superseded ones (kept for
    // snapshots, of which there are none yet) are skipped: their successor is replayed.
    let superseded = txn.open_table(SUPERSEDED)?;
    let searcher = reader.searcher();
    let committed = key_dictionaries(&searcher, fields)?;
    let mut replayed = index_live(
        &log,
        &superseded,
        covered,
        &mut writer,
        Some(&committed),
        &Conversion {
            mapping,
            analysis: &config.analysis,
            fields,
        },
    )?;
    // A delete applies only if the document is still absent: if it was written again later,
    // that later version is a live `log` entry above `covered` and was re-indexed above.
    for entry in deletes.range(covered..)? {
        let (_, record) = entry?;
        let (key, _, _) = kv::decode_delete(record.value())?;
        if kv::pointer(&docs, &key)?.is_none() {
            writer.delete_term(Term::from_field_bytes(fields.key, &key.encode()));
        }
        replayed += 1;
    }
    if replayed > 0 || covered != next_seq {
        commit_with_payload(&mut writer, next_seq)?;
        reader.reload()?;
    }
    let elapsed = started.elapsed();
    info!(
        replayed,
        from_seq = covered,
        to_seq = next_seq,
        elapsed_ms = elapsed.as_millis() as u64,
        "wal replayed into index"
    );
    let kv_docs = docs.len()?;
    let indexed = crate::indexer::root_docs(&reader.searcher(), fields)?;
    if kv_docs != indexed {
        return Err(StoreError::Index(format!(
            "index holds {indexed} documents, kv store {kv_docs}"
        )));
    }
    Ok(((index, writer, reader), replayed))
}

/// What converting a stored body into an index document reads.
struct Conversion<'a> {
    mapping: &'a Mapping,
    analysis: &'a Analysis,
    fields: &'a Fields,
}

/// Indexes the live versions among the `log` entries from `from` on (in sequence order),
/// first deleting the version of the same document that `committed` (the index as last
/// committed, when replaying over it) holds; returns how many.
///
/// Only documents the committed index holds get a delete: tantivy checks every queued delete
/// against every segment at commit, which made an unconditional delete per replayed record the
/// larger part of a replay's time (as it was of bulk loads before creates skipped theirs).
fn index_live(
    log: &redb::ReadOnlyTable<u64, &'static [u8]>,
    superseded: &redb::ReadOnlyTable<u64, u64>,
    from: u64,
    writer: &mut IndexWriter<TantivyDocument>,
    committed: Option<&[Arc<InvertedIndexReader>]>,
    conversion: &Conversion<'_>,
) -> Result<u64> {
    let fields = conversion.fields;
    let superseded = kv::superseded_from(superseded, from)?;
    let mut count = 0;
    for entry in log.range(from..)? {
        let (seq, record) = entry?;
        if superseded.contains(&seq.value()) {
            continue;
        }
        let entry = kv::decode_log(record.value())?;
        let term = Term::from_field_bytes(fields.key, &entry.key.encode());
        let replaced = match committed {
            Some(segments) if holds_term(segments, &term)? => Some(term),
            _ => None,
        };
        let doc = index_doc(&entry.key, seq.value(), entry.body, conversion)?;
        crate::indexer::add_indexed(writer, replaced, doc)?;
        count += 1;
    }
    Ok(count)
}

/// The `_key` dictionaries of the segments of `searcher`, opened once for a whole replay.
fn key_dictionaries(
    searcher: &tantivy::Searcher,
    fields: &Fields,
) -> Result<Vec<Arc<InvertedIndexReader>>> {
    let mut out = Vec::with_capacity(searcher.segment_readers().len());
    for segment in searcher.segment_readers() {
        out.push(segment.inverted_index(fields.key)?);
    }
    Ok(out)
}

/// Whether any of `segments` has `term` in its dictionary (a segment whose documents with it
/// are all deleted still answers yes: a needless delete, never a missed one).
fn holds_term(segments: &[Arc<InvertedIndexReader>], term: &Term) -> Result<bool> {
    for segment in segments {
        if segment.get_term_info(term)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn index_doc(
    key: &DocKey,
    seq: u64,
    body: &[u8],
    conversion: &Conversion<'_>,
) -> Result<crate::convert::IndexDoc> {
    let Conversion {
        mapping,
        analysis,
        fields,
    } = *conversion;
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| StoreError::Storage(format!("corrupt stored document [{}]: {e}", key.id)))?;
    let serde_json::Value::Object(source) = value else {
        return Err(StoreError::Storage(format!(
            "stored document [{}] is not an object",
            key.id
        )));
    };
    let (mut doc, _) = to_index_doc(mapping, key, &source, analysis, fields)?;
    doc.doc.add_u64(fields.seq, seq);
    Ok(doc)
}

/// Builds a fresh index from every document in redb.
fn rebuild(
    db: &Database,
    index_dir: &Path,
    schema: &Schema,
    next_seq: u64,
    config: &StoreConfig,
    mapping: &Mapping,
    fields: &Fields,
) -> Result<IndexParts> {
    let started = Instant::now();
    if index_dir.exists() {
        std::fs::remove_dir_all(index_dir)?;
    }
    std::fs::create_dir_all(index_dir)?;
    let index = Index::builder()
        .schema(schema.clone())
        .create_in_dir(index_dir)?;
    analysis::register(index.tokenizers(), mapping, &config.analysis);
    let (index, mut writer, reader) = writer_and_reader(index, config, fields)?;
    let txn = db.begin_read()?;
    let log = txn.open_table(LOG)?;
    // `log` holds the versions in write order: a sequential scan, keeping the live ones.
    let superseded = txn.open_table(SUPERSEDED)?;
    let count = index_live(
        &log,
        &superseded,
        0,
        &mut writer,
        None,
        &Conversion {
            mapping,
            analysis: &config.analysis,
            fields,
        },
    )?;
    commit_with_payload(&mut writer, next_seq)?;
    reader.reload()?;
    info!(
        documents = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "index rebuilt from kv store"
    );
    Ok((index, writer, reader))
}
