//! `_msearch`: NDJSON pairs of a header (`{"index": ...}`) and a search body; each search
//! answers on its own, errors included.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::search::search_entries;
use super::{AppState, Params};
use crate::error::ApiError;
use crate::request::search::parse_spec;
use crate::respond;

/// `/_msearch` and `/{index}/_msearch` (the path's index is the default for lines that name none).
pub async fn msearch(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(
        &state,
        index.map(|Path(index)| index),
        &params,
        &body,
        false,
    )
    .await
}

/// `/_msearch/template` and `/{index}/_msearch/template`: each body line is a search template
/// request, rendered before it runs.
pub async fn msearch_template(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, index.map(|Path(index)| index), &params, &body, true).await
}

fn object_line(line: &[u8], what: &str) -> Result<Map<String, Value>, ApiError> {
    serde_json::from_slice::<Map<String, Value>>(line)
        .map_err(|e| ApiError::parse(format!("failed to parse {what} line of msearch: {e}")))
}

async fn one(
    state: &AppState,
    default_index: Option<&str>,
    header: &Map<String, Value>,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let index = match header.get("index") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => default_index.unwrap_or("_all").to_string(),
    };
    let params = HashMap::new();
    let spec = parse_spec(&params, Some(body.clone()))?;
    let entries = state.catalog.resolve(&index).await?;
    let mut result = search_entries(state, entries, &params, spec, None).await?;
    result["status"] = json!(200);
    Ok(result)
}

async fn handle(
    state: &AppState,
    default_index: Option<String>,
    params: &Params,
    body: &Bytes,
    templates: bool,
) -> Result<Response, ApiError> {
    crate::request::params::check_params(
        params,
        &[
            "max_concurrent_searches",
            "typed_keys",
            "rest_total_hits_as_int",
            "search_type",
            "ccs_minimize_roundtrips",
        ],
    )?;
    let started = Instant::now();
    let lines: Vec<&[u8]> = crate::request::bulk::ndjson_lines(body).collect();
    if !lines.len().is_multiple_of(2) {
        return Err(ApiError::illegal_argument(
            "msearch request must have a body line for every header line",
        ));
    }
    let mut responses = Vec::new();
    for pair in lines.chunks(2) {
        let header = object_line(pair[0], "header")?;
        let search = object_line(pair[1], "body")?;
        let search = if templates {
            super::search_template::render_request(&search)
        } else {
            Ok(search)
        };
        let answer = match search {
            Ok(search) => one(state, default_index.as_deref(), &header, search).await,
            Err(err) => Err(err),
        };
        responses.push(match answer {
            Ok(result) => result,
            Err(err) => {
                json!({"error": err.body()["error"].clone(), "status": err.status.as_u16()})
            }
        });
    }
    Ok(respond::ok(
        json!({"took": started.elapsed().as_millis() as u64, "responses": responses}),
    ))
}
