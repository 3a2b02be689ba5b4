//! The HTTP layer's one error type, rendered in Elasticsearch's error shape. Every lower-layer
//! error is mapped to a status and an Elasticsearch error type here, once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cameodb_query::QueryError;
use cameodb_storage::StoreError;
use serde_json::{Value, json};

/// An error answered to the client as `{"error": {...}, "status": N}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Elasticsearch error type, e.g. `index_not_found_exception`.
    pub kind: String,
    /// Human-readable reason.
    pub reason: String,
    /// The index concerned, when there is one (Elasticsearch adds `index` to the error).
    pub index: Option<String>,
    /// Further fields of the error object, as some Elasticsearch errors carry them
    /// (`bytes_wanted`, `bytes_limit` and `durability` of a `circuit_breaking_exception`).
    pub details: Option<Box<serde_json::Map<String, Value>>>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: kind.to_string(),
            reason: reason.into(),
            index: None,
            details: None,
        }
    }

    pub fn bad_request(kind: &str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, kind, reason)
    }

    pub fn parse(reason: impl Into<String>) -> ApiError {
        ApiError::bad_request("parse_exception", reason)
    }

    pub fn illegal_argument(reason: impl Into<String>) -> ApiError {
        ApiError::bad_request("illegal_argument_exception", reason)
    }

    pub fn index_not_found(index: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .with_index(index)
    }

    pub fn rejected(reason: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "es_rejected_execution_exception",
            reason,
        )
    }

    pub fn internal(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "exception", reason)
    }

    /// The error another node answered with: its status and Elasticsearch error body (`fallback`
    /// is the reason when the body carries none).
    pub fn from_remote(status: StatusCode, body: &Value, fallback: &str) -> ApiError {
        ApiError::new(
            status,
            body["error"]["type"].as_str().unwrap_or("exception"),
            body["error"]["reason"].as_str().unwrap_or(fallback),
        )
    }

    pub fn with_index(mut self, index: &str) -> ApiError {
        self.index = Some(index.to_string());
        self
    }

    /// The `{"type", "reason", ...}` object, as used inside errors and bulk items.
    pub fn cause(&self) -> Value {
        let mut cause = json!({"type": self.kind, "reason": self.reason});
        if let Some(index) = &self.index {
            cause["index"] = json!(index);
        }
        if let (Some(details), Some(object)) = (&self.details, cause.as_object_mut()) {
            object.extend(details.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        cause
    }

    /// The whole error body.
    pub fn body(&self) -> Value {
        let mut error = self.cause();
        error["root_cause"] = json!([self.cause()]);
        json!({"error": error, "status": self.status.as_u16()})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), kind = %self.kind, reason = %self.reason, "request failed");
        }
        (
            self.status,
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.body().to_string(),
        )
            .into_response()
    }
}

impl From<cameodb_schema::SchemaError> for ApiError {
    /// A mapping error reads the same whether a store or the catalog found it.
    fn from(err: cameodb_schema::SchemaError) -> ApiError {
        use cameodb_schema::SchemaError;
        let kind = match &err {
            SchemaError::MapperParsing { .. } => "document_parsing_exception",
            SchemaError::InvalidMapping { .. } => "mapper_parsing_exception",
            SchemaError::MappingConflict { .. } | SchemaError::InvalidAnalysis { .. } => {
                "illegal_argument_exception"
            }
            SchemaError::StrictDynamic { .. } => "strict_dynamic_mapping_exception",
        };
        ApiError::bad_request(kind, err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        let reason = err.to_string();
        let (status, kind) = match &err {
            StoreError::Schema(schema) => return ApiError::from(schema.clone()),
            StoreError::InvalidId { .. } => (
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
            ),
            StoreError::InvalidRouting { .. } => {
                (StatusCode::BAD_REQUEST, "illegal_argument_exception")
            }
            StoreError::InvalidJson { .. } | StoreError::NotAnObject { .. } => {
                (StatusCode::BAD_REQUEST, "mapper_parsing_exception")
            }
            StoreError::DocumentExists { .. }
            | StoreError::VersionConflict { .. }
            | StoreError::ExternalVersionConflict { .. } => {
                (StatusCode::CONFLICT, "version_conflict_engine_exception")
            }
            StoreError::DocumentMissing { .. } => {
                (StatusCode::NOT_FOUND, "document_missing_exception")
            }
            // The history is gone, not the feed: 410, as a cursor that can never be read again.
            StoreError::ChangesExpired { .. } => (StatusCode::GONE, "changes_expired_exception"),
            StoreError::Closed | StoreError::Locked(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable_shards_exception",
            ),
            StoreError::Storage(_) | StoreError::Index(_) | StoreError::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "exception")
            }
            StoreError::Breaker(breaker) => return breaker.clone().into(),
        };
        ApiError::new(status, kind, reason)
    }
}

impl From<cameodb_search::SearchError> for ApiError {
    fn from(err: cameodb_search::SearchError) -> ApiError {
        use cameodb_search::SearchError;
        match err {
            SearchError::Parsing(reason) => ApiError::parse(reason),
            SearchError::IllegalArgument(reason) => ApiError::illegal_argument(reason),
            SearchError::Refused { kind, reason } => ApiError::bad_request(kind, reason),
            SearchError::Breaker(err) => ApiError::from(err),
            SearchError::Query(err) => ApiError::from(err),
            SearchError::Store(err) => ApiError::from(err),
            SearchError::Internal(reason) => ApiError::internal(reason),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> ApiError {
        ApiError::bad_request(err.es_type(), err.to_string())
    }
}

impl From<cameodb_memory::BreakerError> for ApiError {
    /// Elasticsearch's `circuit_breaking_exception`: a 429 the client may retry later.
    fn from(err: cameodb_memory::BreakerError) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "circuit_breaking_exception",
            err.to_string(),
        );
        let mut details = serde_json::Map::new();
        details.insert("bytes_wanted".into(), json!(err.wanted));
        details.insert("bytes_limit".into(), json!(err.limit));
        details.insert("durability".into(), json!("TRANSIENT"));
        error.details = Some(Box::new(details));
        error
    }
}

impl From<cameodb_memory::json::JsonError> for ApiError {
    fn from(err: cameodb_memory::json::JsonError) -> ApiError {
        match err {
            cameodb_memory::json::JsonError::Breaker(breaker) => breaker.into(),
            cameodb_memory::json::JsonError::Syntax(e) => {
                ApiError::parse(format!("request body is not valid JSON: {e}"))
            }
        }
    }
}

impl From<crate::units::UnitError> for ApiError {
    fn from(err: crate::units::UnitError) -> ApiError {
        ApiError::illegal_argument(err.to_string())
    }
}

impl From<tantivy::TantivyError> for ApiError {
    fn from(err: tantivy::TantivyError) -> ApiError {
        StoreError::from(err).into()
    }
}
