//! `GET|POST /{index}/_explain/{id}`: how a query scores one document, or that it does not
//! match it. Run as a search for the query with the document's id as a `post_filter` (which
//! adds nothing to scores), so the explanation is the search's own, under the cluster-wide
//! statistics its scores use.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::search::{search_entries, targets};
use super::{AppState, Params};
use crate::error::ApiError;
use crate::request::params::check_params;
use crate::request::parse_object_body;
use crate::request::search::parse_spec;
use crate::respond;

/// Query parameters `_explain` takes (`q` and its options, or a body `query`).
const EXPLAIN_PARAMS: &[&str] = &["q", "df", "default_operator", "routing", "preference"];

pub async fn explain(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_params(&params, EXPLAIN_PARAMS)?;
    let body = parse_object_body(&body)?.unwrap_or_default();
    if let Some(unknown) = body.keys().find(|k| k.as_str() != "query") {
        return Err(ApiError::bad_request(
            "parsing_exception",
            format!("request does not support [{unknown}]"),
        ));
    }
    if body.is_empty() && !params.contains_key("q") {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: query is missing;",
        ));
    }
    let entries = targets(&state, &index, &params).await?;
    let [entry] = entries.as_slice() else {
        return Err(ApiError::illegal_argument(format!(
            "explain on [{index}] must address exactly one index, it addresses {}",
            entries.len()
        )));
    };
    let name = entry.name.clone();
    let only_this = json!({"ids": {"values": [id]}});
    let mut search = body.clone();
    search.insert("post_filter".into(), only_this.clone());
    search.insert("explain".into(), json!(true));
    search.insert("size".into(), json!(1));
    let spec = parse_spec(&params, Some(search))?;
    let out = search_entries(&state, entries.clone(), &params, spec, None).await?;
    if let Some(hit) = out["hits"]["hits"].get(0) {
        return Ok(respond::ok(json!({
            "_index": name,
            "_id": id,
            "matched": true,
            "explanation": hit.get("_explanation").cloned().unwrap_or(Value::Null),
        })));
    }
    // No match: the document either does not match or does not exist (404, as Elasticsearch).
    let mut exists = Map::new();
    exists.insert("query".into(), only_this);
    exists.insert("size".into(), json!(0));
    let spec = parse_spec(&Default::default(), Some(exists))?;
    let found = search_entries(&state, entries, &params, spec, None).await?;
    let present = found["hits"]["total"]["value"].as_u64().unwrap_or(0) > 0;
    let status = if present {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let mut answer = json!({"_index": name, "_id": id, "matched": false});
    if present {
        answer["explanation"] =
            json!({"value": 0.0, "description": "no matching term", "details": []});
    }
    Ok(respond::json(status, answer))
}
