//! Index APIs: create, delete, get, exists, mappings, refresh.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{AppState, parse_object_body};
use crate::catalog::{Catalog, IndexEntry, parse_settings};
use crate::error::ApiError;
use crate::respond;

pub async fn create(
    State(state): State<AppState>,
    Path(index): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let uri = format!("/_cameo/internal/create/{index}");
    if let Some(answer) = to_metadata_owner(&state, &index, &uri, &body).await? {
        return Ok(answer);
    }
    create_here(&state, state.cluster.as_deref(), &index, &body).await
}

/// `PUT /_cameo/internal/create/{index}`: this node is the index's metadata owner; it creates
/// the index and tells every other node.
pub async fn create_as_owner(
    State(state): State<AppState>,
    Path(index): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    create_here(
        &state,
        state.coordinator.get().map(|c| c.as_ref()),
        &index,
        &body,
    )
    .await
}

/// Sends an index-metadata change to the node that serialises that index's changes (the ring
/// owner of its name), so concurrent conflicting changes meet in one place and the second one
/// fails as in Elasticsearch. `None`: this node is that owner, the owner is not up (then this
/// node decides, and the cluster's uuid rule settles any conflict), or there is no cluster.
async fn to_metadata_owner(
    state: &AppState,
    index: &str,
    uri: &str,
    body: &Bytes,
) -> Result<Option<Response>, ApiError> {
    let Some(ctx) = &state.cluster else {
        return Ok(None);
    };
    let view = ctx.view().await;
    if view.is_single() {
        return Ok(None);
    }
    let Some(owner) = crate::cluster::metadata::metadata_owner(&view, index) else {
        return Ok(None);
    };
    if owner.is_self {
        return Ok(None);
    }
    let request = crate::cluster::wire_request(
        "PUT",
        uri.to_string(),
        Some("application/json"),
        body.to_vec(),
    );
    let answer = ctx
        .call(owner, request, crate::cluster::CALL_TIMEOUT)
        .await?;
    Ok(Some(crate::cluster::from_wire(answer)))
}

/// Creates an index on this node and, with a cluster context, on every other node.
async fn create_here(
    state: &AppState,
    cluster: Option<&crate::cluster::ClusterCtx>,
    index: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(body)?.unwrap_or_default();
    if let Some(key) = body
        .keys()
        .find(|k| !["settings", "mappings", "aliases"].contains(&k.as_str()))
    {
        return Err(ApiError::parse(format!(
            "unknown key [{key}] for create index"
        )));
    }
    if body
        .get("aliases")
        .and_then(Value::as_object)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::illegal_argument("aliases are not supported"));
    }
    let settings = parse_settings(body.get("settings"))?;
    let mappings = body.get("mappings").cloned();
    let entry = state.catalog.create(index, settings, mappings).await?;
    if let Some(ctx) = cluster {
        crate::cluster::metadata::push_create(ctx, &entry).await;
    }
    Ok(respond::ok(
        json!({"acknowledged": true, "shards_acknowledged": true, "index": index}),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    for entry in state.catalog.resolve(&index).await? {
        state.catalog.delete(&entry.name).await?;
        if let Some(ctx) = &state.cluster {
            crate::cluster::metadata::push_delete(ctx, &entry.name, &entry.meta.uuid).await;
        }
    }
    Ok(respond::ok(json!({"acknowledged": true})))
}

pub async fn exists(State(state): State<AppState>, Path(index): Path<String>) -> Response {
    match state.catalog.resolve(&index).await {
        Ok(found) if !found.is_empty() => StatusCode::OK.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn mapping_of(entry: &IndexEntry) -> Result<Value, ApiError> {
    super::run(&entry.shard, |store| Ok(store.mapping().to_es_json())).await
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
            json!({"aliases": {}, "mappings": mappings, "settings": Catalog::settings_json(&entry)}),
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
    // One concrete index: its metadata owner applies the change (see `to_metadata_owner`).
    if !index.contains(['*', ',']) && index != "_all" {
        let uri = format!("/_cameo/internal/mapping/{index}");
        if let Some(answer) = to_metadata_owner(&state, &index, &uri, &body).await? {
            return Ok(answer);
        }
    }
    put_mapping_here(&state, state.cluster.as_deref(), &index, &body).await
}

/// `PUT /_cameo/internal/mapping/{index}`: this node is the index's metadata owner; it applies
/// the change and tells every other node.
pub async fn put_mapping_as_owner(
    State(state): State<AppState>,
    Path(index): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    put_mapping_here(
        &state,
        state.coordinator.get().map(|c| c.as_ref()),
        &index,
        &body,
    )
    .await
}

/// Applies a mapping change on this node and, with a cluster context, on every other node.
async fn put_mapping_here(
    state: &AppState,
    cluster: Option<&crate::cluster::ClusterCtx>,
    index: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(body)?.ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: mapping source is missing;",
        )
    })?;
    crate::cluster::metadata::put_mapping(&state.catalog, cluster, index, &Value::Object(body))
        .await?;
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

async fn refresh_entries(
    state: &AppState,
    entries: Vec<std::sync::Arc<IndexEntry>>,
) -> Result<Response, ApiError> {
    if let Some(ctx) = &state.cluster {
        let view = ctx.view().await;
        if !view.is_single() {
            // Every node refreshes its copy; a node that cannot is a failed shard.
            let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
            let uri = if names.is_empty() {
                "/_refresh".to_string()
            } else {
                format!("/{}/_refresh", names.join(","))
            };
            let answers =
                crate::cluster::fan_out_json(ctx, &view, "POST", &uri, &Value::Null).await;
            let (mut total, mut ok) = (0, 0);
            for (_, answer) in answers {
                total += names.len();
                if let Ok((status, _)) = answer
                    && status.is_success()
                {
                    ok += names.len();
                }
            }
            return Ok(respond::ok(
                json!({"_shards": {"total": total, "successful": ok, "failed": total - ok}}),
            ));
        }
    }
    let count = entries.len();
    for entry in entries {
        super::run(&entry.shard, |store| Ok(store.refresh()?)).await?;
    }
    Ok(respond::ok(
        json!({"_shards": {"total": count, "successful": count, "failed": 0}}),
    ))
}
