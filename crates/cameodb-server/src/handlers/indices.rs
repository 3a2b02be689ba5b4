//! Index APIs: create, delete, get, exists, mappings, refresh.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::AppState;
use crate::catalog::{Catalog, IndexEntry, parse_settings};
use crate::cluster::{admin, metadata};
use crate::error::ApiError;
use crate::messages::CreateIndex;
use crate::request::parse_object_body;
use crate::respond;

pub async fn create(
    State(state): State<AppState>,
    Path(index): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    if let Some(key) = body
        .keys()
        .find(|k| !["settings", "mappings", "aliases"].contains(&k.as_str()))
    {
        return Err(ApiError::parse(format!(
            "unknown key [{key}] for create index"
        )));
    }
    let request = CreateIndex {
        settings: parse_settings(body.get("settings"))?,
        mappings: body.get("mappings").cloned(),
        aliases: super::aliases::parse_aliases(body.get("aliases"))?,
    };
    metadata::create(&state.cluster, &index, request).await?;
    Ok(respond::ok(
        json!({"acknowledged": true, "shards_acknowledged": true, "index": index}),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: super::Params,
) -> Result<Response, ApiError> {
    crate::request::params::check_params(
        &params,
        &["ignore_unavailable", "allow_no_indices", "expand_wildcards"],
    )?;
    if crate::request::params::flag(&params, "ignore_unavailable")? == Some(true) {
        // Names that do not exist are dropped; an alias is still refused.
        if let Some(kept) = state.catalog.available_parts(&index).await {
            metadata::delete(&state.cluster, &kept).await?;
        }
        return Ok(respond::ok(json!({"acknowledged": true})));
    }
    metadata::delete(&state.cluster, &index).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

pub async fn exists(State(state): State<AppState>, Path(index): Path<String>) -> Response {
    match state.catalog.resolve(&index).await {
        Ok(found) if !found.is_empty() => StatusCode::OK.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn mapping_of(entry: &IndexEntry) -> Result<Value, ApiError> {
    crate::shard::run(&entry.shard, |store| Ok(store.mapping().to_es_json())).await
}

pub async fn get(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let mut out = Map::new();
    for entry in state.catalog.resolve(&index).await? {
        let mappings = mapping_of(&entry).await?;
        out.insert(
            entry.name.clone(),
            json!({
                "aliases": super::aliases::rendered(&entry.meta.aliases),
                "mappings": mappings,
                "settings": Catalog::settings_json(&entry),
            }),
        );
    }
    Ok(respond::ok(Value::Object(out)))
}

pub async fn get_mapping(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve(&index).await?;
    mappings_response(entries).await
}

pub async fn get_mapping_all(State(state): State<AppState>) -> Result<Response, ApiError> {
    mappings_response(state.catalog.all().await).await
}

async fn mappings_response(entries: Vec<std::sync::Arc<IndexEntry>>) -> Result<Response, ApiError> {
    let mut out = Map::new();
    for entry in entries {
        out.insert(
            entry.name.clone(),
            json!({"mappings": mapping_of(&entry).await?}),
        );
    }
    Ok(respond::ok(Value::Object(out)))
}

pub async fn put_mapping(
    State(state): State<AppState>,
    Path(index): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: mapping source is missing;",
        )
    })?;
    metadata::put_mapping(&state.cluster, &index, &Value::Object(body)).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

/// `GET /{index}/_settings`.
pub async fn get_settings(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let mut out = Map::new();
    for entry in state.catalog.resolve(&index).await? {
        out.insert(
            entry.name.clone(),
            json!({"settings": Catalog::settings_json(&entry)}),
        );
    }
    Ok(respond::ok(Value::Object(out)))
}

/// `PUT /{index}/_settings`: dynamic settings (`number_of_replicas`, `max_result_window`).
/// A new replica count takes effect at once: writes go to the new copies, searches ask the
/// new replica sets, and a node that becomes a copy fills its new ranges from its peers.
pub async fn put_settings(
    State(state): State<AppState>,
    Path(index): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: settings are missing;",
        )
    })?;
    let changes = crate::index_settings::parse_update(&Value::Object(body))?;
    metadata::put_settings(&state.cluster, &index, changes).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

pub async fn refresh(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    refresh_entries(&state, state.catalog.resolve(&index).await?).await
}

pub async fn refresh_all(State(state): State<AppState>) -> Result<Response, ApiError> {
    refresh_entries(&state, state.catalog.all().await).await
}

/// Every node refreshes its copy; a node that cannot is a failed shard.
async fn refresh_entries(
    state: &AppState,
    entries: Vec<std::sync::Arc<IndexEntry>>,
) -> Result<Response, ApiError> {
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let (total, ok) = admin::refresh(&state.cluster, names).await;
    Ok(respond::ok(
        json!({"_shards": {"total": total, "successful": ok, "failed": total - ok}}),
    ))
}
