//! Elasticsearch wire compatibility on every response: the `X-Elastic-Product` header the
//! official clients check, and errors from the framework (unknown route, wrong method, body
//! too large, unsupported media) rewritten into Elasticsearch's error shape.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn elasticsearch_compat(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let pretty = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "pretty" || p == "pretty=true"));
    let response = next.run(request).await;
    let response = if is_framework_error(&response) {
        reshape(response, &method, &path).await
    } else {
        response
    };
    let mut response = if pretty {
        prettify(response).await
    } else {
        response
    };
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn is_framework_error(response: &Response) -> bool {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

async fn reshape(response: Response, method: &Method, path: &str) -> Response {
    let status = response.status();
    if method == Method::HEAD {
        return status.into_response();
    }
    let detail = to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default();
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "content_too_long_exception",
            format!("request body is too large: {detail}"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed_exception",
            format!("Incorrect HTTP method for uri [{path}] and method [{method}]"),
        ),
        StatusCode::NOT_FOUND => ApiError::bad_request(
            "illegal_argument_exception",
            format!("no handler found for uri [{path}] and method [{method}]"),
        ),
        _ => ApiError::new(status, "exception", detail),
    };
    let mut out = error.into_response();
    if status == StatusCode::NOT_FOUND {
        // Elasticsearch answers unknown endpoints with 400.
        *out.status_mut() = StatusCode::BAD_REQUEST;
    }
    out
}

/// `?pretty`: re-indent a JSON body.
async fn prettify(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::to_vec_pretty(&v).ok())
        .unwrap_or_else(|| bytes.to_vec());
    let mut response = Response::from_parts(parts, axum::body::Body::from(pretty));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
