//! Elasticsearch wire compatibility on every response: the `X-Elastic-Product` header the
//! official clients check, and errors from the framework (unknown route, wrong method, body
//! too large, unsupported media) rewritten into Elasticsearch's error shape.

use axum::body::to_bytes;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::filter_path::FilterPath;

pub async fn elasticsearch_compat(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let pretty = query
        .split('&')
        .any(|p| p == "pretty" || p == "pretty=true");
    let filter = query_param(&query, "filter_path").and_then(|f| FilterPath::parse(&f));
    let response = if names_an_unknown_endpoint(&request) {
        unknown_endpoint(&method, &path)
    } else {
        next.run(request).await
    };
    let response = if is_framework_error(&response) {
        reshape(response, &method, &path).await
    } else {
        response
    };
    let mut response = if pretty || filter.is_some() {
        rewrite(response, pretty, filter.as_ref()).await
    } else {
        response
    };
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// True when the path's first segment starts with `_` but the route that matched takes an
/// index name there (`GET /_alias` matched `GET /{index}`): index names never start with `_`
/// (except the `_all` expression), so this is an endpoint CameoDB does not have.
fn names_an_unknown_endpoint(request: &Request) -> bool {
    let Some(matched) = request.extensions().get::<MatchedPath>() else {
        return false;
    };
    if !matched.as_str().starts_with("/{index}") {
        return false;
    }
    let first = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    first.starts_with('_') && first != "_all"
}

/// Elasticsearch's answer to a path it has no handler for: 400, `no handler found`.
fn unknown_endpoint(method: &Method, path: &str) -> Response {
    let mut out = ApiError::bad_request(
        "illegal_argument_exception",
        format!("no handler found for uri [{path}] and method [{method}]"),
    )
    .into_response();
    if method == Method::HEAD {
        *out.body_mut() = axum::body::Body::empty();
    }
    out
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
        // Elasticsearch answers unknown endpoints with 400.
        StatusCode::NOT_FOUND => return unknown_endpoint(method, path),
        _ => ApiError::new(status, "exception", detail),
    };
    error.into_response()
}

/// The percent-decoded value of query parameter `name`, if present.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| {
            let value = value.replace('+', " ");
            percent_encoding::percent_decode_str(&value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// `?pretty` re-indents a JSON body; `?filter_path` keeps only the paths it names.
async fn rewrite(response: Response, pretty: bool, filter: Option<&FilterPath>) -> Response {
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
    let rewritten = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .map(|value| match filter {
            Some(filter) => filter.apply(value),
            None => value,
        })
        .and_then(|value| {
            if pretty {
                serde_json::to_vec_pretty(&value).ok()
            } else {
                serde_json::to_vec(&value).ok()
            }
        })
        .unwrap_or_else(|| bytes.to_vec());
    let mut response = Response::from_parts(parts, axum::body::Body::from(rewritten));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}
