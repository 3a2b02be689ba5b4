//! The storage layer's one error enum. Every variant carries enough context for the HTTP layer
//! to map it once to an Elasticsearch error type and status code.

/// Result alias used throughout the storage crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage engine.
///
/// `Clone` because one failed group commit fans the same error out to every waiting caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The document id is empty, too long or not UTF-8.
    #[error("invalid id: {reason}")]
    InvalidId { reason: String },
    /// The routing key is empty or not UTF-8.
    #[error("invalid routing: {reason}")]
    InvalidRouting { reason: String },
    /// The document body is not valid JSON (this includes invalid UTF-8).
    #[error("failed to parse document: {reason}")]
    InvalidJson { reason: String },
    /// Parsing the document would pass the request's memory budget.
    #[error(transparent)]
    Breaker(#[from] cameodb_memory::BreakerError),
    /// The document body is JSON but not an object.
    #[error("document must be a json object, found {found}")]
    NotAnObject { found: &'static str },
    /// The document does not fit its mapping, or a mapping is wrong (the schema layer's
    /// error, passed on unchanged).
    #[error(transparent)]
    Schema(#[from] cameodb_schema::SchemaError),
    /// A create found the document already present.
    #[error("[{id}]: version conflict, document already exists (current version [{version}])")]
    DocumentExists { id: String, version: u64 },
    /// A conditional write's expected sequence number does not match.
    #[error("[{id}]: version conflict, required seqNo [{expected}], {}", current_text(*current))]
    VersionConflict {
        id: String,
        expected: u64,
        current: Option<u64>,
    },
    /// An externally versioned write brings a version no newer than the document's.
    #[error(
        "[{id}]: version conflict, current version [{current}] is higher or equal to the one provided [{provided}]"
    )]
    ExternalVersionConflict {
        id: String,
        current: u64,
        provided: u64,
    },
    /// An update targets a document that does not exist and no upsert was given.
    #[error("[{id}]: document missing")]
    DocumentMissing { id: String },
    /// A change-feed read from a sequence whose history was already collected.
    #[error(
        "the changes since [{since}] are no longer retained (deletes up to [{oldest}] were collected after this cursor started): start over without a cursor"
    )]
    ChangesExpired { since: u64, oldest: u64 },
    /// The store has been closed or its writer thread is gone.
    #[error("store is closed")]
    Closed,
    /// redb failed; the message is redb's.
    #[error("storage failure: {0}")]
    Storage(String),
    /// tantivy failed; the message is tantivy's.
    #[error("index failure: {0}")]
    Index(String),
    /// A filesystem operation failed.
    #[error("io failure: {0}")]
    Io(String),
    /// Another store (in this or another process) has the files open.
    #[error("store is locked by another user: {0}")]
    Locked(String),
}

fn current_text(current: Option<u64>) -> String {
    match current {
        Some(seq) => format!("current document has seqNo [{seq}]"),
        None => "but no document was found".to_string(),
    }
}

impl StoreError {
    /// True when the error is the caller's fault (bad input or a failed precondition) rather
    /// than a failure of the engine. Callers map the former to 4xx and the latter to 5xx.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            StoreError::Closed
                | StoreError::Storage(_)
                | StoreError::Index(_)
                | StoreError::Io(_)
                | StoreError::Locked(_)
        )
    }
}

macro_rules! from_display {
    ($variant:ident: $($ty:ty),+) => {
        $(impl From<$ty> for StoreError {
            fn from(err: $ty) -> Self {
                StoreError::$variant(err.to_string())
            }
        })+
    };
}

from_display!(Storage: redb::Error, redb::TransactionError,
    redb::TableError, redb::StorageError, redb::CommitError);

impl From<redb::DatabaseError> for StoreError {
    fn from(err: redb::DatabaseError) -> Self {
        match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(err.to_string()),
            other => StoreError::Storage(other.to_string()),
        }
    }
}

impl From<tantivy::TantivyError> for StoreError {
    fn from(err: tantivy::TantivyError) -> Self {
        match err {
            tantivy::TantivyError::LockFailure(..) => StoreError::Locked(err.to_string()),
            other => StoreError::Index(other.to_string()),
        }
    }
}
from_display!(Io: std::io::Error);
