//! CameoDB's storage engine: per shard, a redb document store and a tantivy index that never
//! disagree. Writes are durable in redb (WAL record + row, one transaction, fsynced) before
//! they are acknowledged; the index follows in sequence order and commits with the sequence it
//! covers, so recovery replays exactly the WAL tail. Synchronous by design: no async runtime,
//! no network.

mod activity;
mod apply;
mod changes;
mod coerce;
mod config;
mod convert;
mod db;
mod error;
mod hits;
mod id;
mod indexer;
mod kv;
mod ops;
pub mod priority;
mod recovery;
mod search;
mod snapshot;
mod stamp;
mod store;
mod visibility;
mod writer;

pub use changes::{Change, Changes, Cursor};
pub use config::{DEFAULT_CHANGES_RETENTION, StoreConfig};
pub use convert::{IndexDoc, to_index_doc};
pub use error::{Result, StoreError};
pub use hits::hit_keys;
pub use id::{DocId, DocKey, MAX_ID_BYTES, routing_token};
pub use kv::StoredDoc;
pub use ops::{Applied, ExternalVersion, OpKind, Source, WriteOp, WriteOutcome, WriteResult};
pub use recovery::{DB_FILE, INDEX_DIR, RecoveryReport};
pub use search::{SearchHit, SearchResults};
pub use snapshot::Snapshot;
pub use stamp::{Hlc, Stamp, origin_of};
pub use store::Store;

/// The primary term of every document: a store has one primary, its own, for its whole life
/// (Elasticsearch clients send and read it with `_seq_no` for optimistic concurrency).
pub const PRIMARY_TERM: u64 = 1;
