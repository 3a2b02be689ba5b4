//! Requests as they arrive, parsed once into typed models: the handlers parse with these, the
//! cluster layer plans with what they produce, and the leaf executes it.

pub mod analyze;
pub mod bulk;
pub mod docs;
pub mod mget;
pub mod params;
pub mod reindex;
pub mod search;

use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;

/// Parses a JSON body; an empty body is `None`. The parse is counted to the request's memory
/// account and stops when it trips (429).
pub fn parse_body(body: &Bytes) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(cameodb_memory::json::from_slice(body)?))
}

/// Parses a JSON body that must be an object (or empty).
pub fn parse_object_body(body: &Bytes) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
    match parse_body(body)? {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(ApiError::parse("request body must be a JSON object")),
    }
}
