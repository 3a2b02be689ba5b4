//! Building JSON responses.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ApiError;

pub fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}

/// A JSON response with `status`.
pub fn json(status: StatusCode, body: Value) -> Response {
    (status, json_headers(), body.to_string()).into_response()
}

/// A 200 JSON response.
pub fn ok(body: Value) -> Response {
    json(StatusCode::OK, body)
}

/// `body` serialized straight to a JSON response with `status`; a value that cannot be
/// serialized is a 500, never an empty answer.
pub fn serialized(status: StatusCode, body: &impl serde::Serialize) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))?;
    Ok((status, json_headers(), bytes).into_response())
}
