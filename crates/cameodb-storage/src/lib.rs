//! CameoDB's storage engine: per shard, a redb document store and a tantivy index that never
//! disagree. Writes are durable in redb (WAL record + row, one transaction, fsynced) before
//! they are acknowledged; the index follows in sequence order and commits with the sequence it
//! covers, so recovery replays exactly the WAL tail. Synchronous by design: no async runtime,
//! no network.

mod activity;
mod analysis;
mod config;
mod error;
mod id;
mod indexer;
mod kv;
pub mod mapping;
mod ops;
pub mod priority;
mod recovery;
pub mod schema;
mod search;
mod store;
mod writer;

pub use analysis::{ANALYZERS, analyzer, register as register_analyzers};
pub use config::StoreConfig;
pub use error::{Result, StoreError};
pub use id::{DocId, DocKey, MAX_ID_BYTES, routing_token};
pub use kv::StoredDoc;
pub use ops::{OpKind, Source, WriteOp, WriteOutcome, WriteResult};
pub use recovery::{DB_FILE, INDEX_DIR, RecoveryReport};
pub use search::{SearchHit, SearchResults, hit_keys};
pub use store::Store;
