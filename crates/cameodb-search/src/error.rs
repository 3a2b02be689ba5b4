//! The search layer's one error enum. Each variant names the Elasticsearch error it becomes, so
//! the HTTP layer maps it once, without reading messages.

use cameodb_memory::BreakerError;
use cameodb_query::QueryError;
use cameodb_storage::StoreError;

/// What can go wrong while a search is planned, run or merged.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is malformed (`parsing_exception`, 400).
    #[error("{0}")]
    Parsing(String),
    /// A value is not allowed (`illegal_argument_exception`, 400).
    #[error("{0}")]
    IllegalArgument(String),
    /// The request is refused for a reason Elasticsearch names with its own error type
    /// (`kind`: `too_many_buckets_exception`, `aggregation_execution_exception`,
    /// `script_exception`, …), 400.
    #[error("{reason}")]
    Refused {
        /// Elasticsearch's error type for it.
        kind: &'static str,
        /// What the client reads.
        reason: String,
    },
    /// The request's memory account tripped its breaker (429).
    #[error(transparent)]
    Breaker(#[from] BreakerError),
    /// The query could not be built (its own error type says which 4xx, or a shard failure).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The store failed, or refused what it was asked (its own error type says which).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure of the engine, not of the request (500).
    #[error("{0}")]
    Internal(String),
}

impl SearchError {
    /// A `parsing_exception`.
    pub fn parse(reason: impl Into<String>) -> SearchError {
        SearchError::Parsing(reason.into())
    }

    /// An `illegal_argument_exception`.
    pub fn illegal_argument(reason: impl Into<String>) -> SearchError {
        SearchError::IllegalArgument(reason.into())
    }

    /// A 400 of Elasticsearch's type `kind`.
    pub fn bad_request(kind: &'static str, reason: impl Into<String>) -> SearchError {
        SearchError::Refused {
            kind,
            reason: reason.into(),
        }
    }

    /// An engine failure.
    pub fn internal(reason: impl Into<String>) -> SearchError {
        SearchError::Internal(reason.into())
    }
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(err: tantivy::TantivyError) -> SearchError {
        SearchError::Internal(err.to_string())
    }
}
