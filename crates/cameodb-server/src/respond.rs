//! Building JSON responses.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

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
