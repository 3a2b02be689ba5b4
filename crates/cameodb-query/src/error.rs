//! Errors of query translation; all are the client's fault (HTTP 400).

/// Why a query could not be translated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The JSON is not a valid query (Elasticsearch `parsing_exception`).
    #[error("{0}")]
    Parsing(String),
    /// The query is valid but cannot run against this mapping, e.g. a value of the wrong type
    /// (Elasticsearch `query_shard_exception`).
    #[error("{0}")]
    Shard(String),
    /// The query is too large or too deep for a named limit (`indices.query.bool.*`,
    /// `index.max_terms_count`, date ranges).
    #[error("{0}")]
    Limit(String),
    /// A script that is not in the supported Painless subset, or that fails
    /// (`script_exception`).
    #[error("{0}")]
    Script(String),
}

impl QueryError {
    /// Elasticsearch's error type name.
    pub fn es_type(&self) -> &'static str {
        match self {
            QueryError::Parsing(_) => "parsing_exception",
            QueryError::Shard(_) => "query_shard_exception",
            QueryError::Limit(_) => "illegal_argument_exception",
            QueryError::Script(_) => "script_exception",
        }
    }
}

pub(crate) fn parsing(reason: impl Into<String>) -> QueryError {
    QueryError::Parsing(reason.into())
}
