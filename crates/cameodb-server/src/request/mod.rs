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

/// A body value that is one string or an array of them (`stored_fields`, `text`,
/// `source.index`).
pub fn string_list(key: &str, value: &Value) -> Result<Vec<String>, ApiError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::parse(format!("[{key}] must hold strings, got [{item}]"))
                })
            })
            .collect(),
        other => Err(ApiError::parse(format!(
            "[{key}] must be a string or an array of strings, got [{other}]"
        ))),
    }
}

/// Parses a JSON body that must be an object (or empty).
pub fn parse_object_body(body: &Bytes) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
    match parse_body(body)? {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(ApiError::parse("request body must be a JSON object")),
    }
}
