//! Index introspection tools call: `_stats`, `_field_caps` (eland, Kibana-style UIs),
//! `_resolve/index`, and `_data_stream` (none exist: the reindex helpers probe for them).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cameodb_schema::mapping::{FieldMapping, FieldType, Mapping};
use cameodb_search::wildcard_match;
use serde_json::{Map, Value, json};

use super::{AppState, Params};
use crate::error::ApiError;
use crate::respond;

/// `GET /_stats` and `GET /{index}/_stats[/{metric}]`: documents and store size per index,
/// primaries (one copy) and total (every copy).
pub async fn stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    stats_for(&state, "_all").await
}

pub async fn stats_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    stats_for(&state, &index).await
}

pub async fn stats_index_metric(
    State(state): State<AppState>,
    Path((index, _metric)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    stats_for(&state, &index).await
}

fn section(docs: u64, bytes: u64) -> Value {
    json!({
        "docs": {"count": docs, "deleted": 0},
        "store": {"size_in_bytes": bytes, "reserved_in_bytes": 0},
        "indexing": {"index_total": 0},
        "search": {"query_total": 0},
    })
}

async fn stats_for(state: &AppState, expression: &str) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve(expression).await?;
    let (sizes, _) = crate::cluster::admin::sizes(&state.cluster).await;
    let view = state.cluster.view().await;
    let mut indices = Map::new();
    let (mut all_docs, mut all_bytes, mut all_primary_bytes, mut shards) = (0u64, 0u64, 0u64, 0u64);
    for entry in &entries {
        let docs = super::cat::doc_count(state, &view, entry).await;
        let (_, bytes) = sizes.get(&entry.name).copied().unwrap_or_default();
        let copies = entry.wanted_copies().max(1) as u64;
        let primary_bytes = bytes / copies;
        all_docs = all_docs.saturating_add(docs);
        all_bytes = all_bytes.saturating_add(bytes);
        all_primary_bytes = all_primary_bytes.saturating_add(primary_bytes);
        shards = shards.saturating_add(copies);
        indices.insert(
            entry.name.clone(),
            json!({
                "uuid": entry.meta.uuid,
                "health": crate::cluster::health::health(&view, std::slice::from_ref(entry)).status(),
                "status": "open",
                "primaries": section(docs, primary_bytes),
                "total": section(docs.saturating_mul(copies), bytes),
            }),
        );
    }
    Ok(respond::ok(json!({
        "_shards": {"total": shards, "successful": shards, "failed": 0},
        "_all": {
            "primaries": section(all_docs, all_primary_bytes),
            "total": section(all_docs, all_bytes),
        },
        "indices": indices,
    })))
}

/// How one mapped field answers `_field_caps`: its type, whether it can be searched and
/// aggregated.
fn capabilities(field: &FieldMapping) -> (String, bool, bool) {
    let name = field.type_name().to_string();
    match field.field_type {
        FieldType::Object => (name, false, false),
        FieldType::Text => (name, field.index != Some(false), false),
        _ => (name, true, true),
    }
}

/// Every mapped path of `mapping`, multi-fields included, with its mapping.
fn fields_of(mapping: &Mapping) -> Vec<(String, &FieldMapping)> {
    let mut out = Vec::new();
    for (path, field) in &mapping.properties {
        out.push((path.clone(), field));
        for (sub, sub_field) in &field.fields {
            out.push((format!("{path}.{sub}"), sub_field));
        }
    }
    out
}

/// One type of one field across indexes: searchable, aggregatable, the indexes that have it.
type Caps = (bool, bool, Vec<String>);

/// `GET|POST /_field_caps` and `/{index}/_field_caps?fields=…`.
pub async fn field_caps(state: State<AppState>, params: Params) -> Result<Response, ApiError> {
    field_caps_for(state, Path("_all".to_string()), params).await
}

pub async fn field_caps_for(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let patterns: Vec<String> = params.get("fields").map_or_else(
        || vec!["*".to_string()],
        |f| f.split(',').map(str::to_string).collect(),
    );
    let wanted = |path: &str| {
        patterns
            .iter()
            .any(|p| p == path || wildcard_match(p, path))
    };
    let entries = state.catalog.resolve(&index).await?;
    let mut found: BTreeMap<String, BTreeMap<String, Caps>> = BTreeMap::new();
    for entry in &entries {
        let mapping = crate::shard::run(&entry.shard, |store| Ok(store.mapping())).await?;
        for (path, field) in fields_of(&mapping) {
            if !wanted(&path) {
                continue;
            }
            let (kind, searchable, aggregatable) = capabilities(field);
            let slot = found.entry(path).or_default().entry(kind).or_insert((
                searchable,
                aggregatable,
                Vec::new(),
            ));
            slot.2.push(entry.name.clone());
        }
        for (path, kind) in [("_id", "_id"), ("_index", "_index")] {
            if wanted(path) {
                let slot = found
                    .entry(path.to_string())
                    .or_default()
                    .entry(kind.to_string())
                    .or_insert((true, kind == "_index", Vec::new()));
                slot.2.push(entry.name.clone());
            }
        }
    }
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let fields: Map<String, Value> = found
        .into_iter()
        .map(|(path, types)| {
            let several = types.len() > 1;
            let by_type: Map<String, Value> = types
                .into_iter()
                .map(|(kind, (searchable, aggregatable, indices))| {
                    let mut caps = json!({
                        "type": kind, "metadata_field": path.starts_with('_'),
                        "searchable": searchable, "aggregatable": aggregatable,
                    });
                    if several && let Some(object) = caps.as_object_mut() {
                        object.insert("indices".into(), json!(indices));
                    }
                    (kind, caps)
                })
                .collect();
            (path, Value::Object(by_type))
        })
        .collect();
    Ok(respond::ok(json!({"indices": names, "fields": fields})))
}

/// `GET /_resolve/index/{name}`: the indexes and aliases an expression names.
pub async fn resolve_index(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve_available(&name).await;
    let indices: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({"name": e.name, "aliases": e.meta.aliases.keys().collect::<Vec<_>>(), "attributes": ["open"]})
        })
        .collect();
    let aliases: Vec<Value> = state
        .catalog
        .alias_map()
        .await
        .into_iter()
        .filter(|(alias, _)| crate::aliases::matches_any(&name, alias))
        .map(|(alias, targets)| {
            json!({"name": alias, "indices": targets.into_iter().map(|(i, _)| i).collect::<Vec<_>>()})
        })
        .collect();
    Ok(respond::ok(
        json!({"indices": indices, "aliases": aliases, "data_streams": []}),
    ))
}

/// `GET /_data_stream`: there are none.
pub async fn data_streams() -> Response {
    respond::ok(json!({"data_streams": []}))
}

/// `GET /_data_stream/{name}`: none exists, answered as Elasticsearch answers a missing one.
pub async fn data_stream(Path(name): Path<String>) -> Result<Response, ApiError> {
    if name == "*" || name == "_all" {
        return Ok(respond::ok(json!({"data_streams": []})));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "index_not_found_exception",
        format!("no such index [{name}]"),
    )
    .with_index(&name))
}

/// `GET|POST /{index}/_validate/query`: whether the query translates under each index's
/// mapping (`explain=true` says why not).
pub async fn validate_query(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    crate::request::params::check_params(
        &params,
        &[
            "q",
            "df",
            "default_operator",
            "explain",
            "rewrite",
            "all_shards",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "lenient",
        ],
    )?;
    let body = crate::request::parse_object_body(&body)?.unwrap_or_default();
    if let Some(key) = body.keys().find(|k| k.as_str() != "query") {
        return Err(ApiError::parse(format!("request does not support [{key}]")));
    }
    let spec = crate::request::search::query_spec(&params, &body);
    let entries = state.catalog.resolve(&index).await?;
    let explain = crate::request::params::flag(&params, "explain")?.unwrap_or(false);
    let mut error = None;
    for entry in &entries {
        let spec = spec.clone();
        let built = crate::shard::run(&entry.shard, move |store| {
            Ok(cameodb_search::build_query(store, &spec).map(drop))
        })
        .await?;
        if let Err(err) = built {
            error = Some(format!("[{}] {}", entry.name, ApiError::from(err).reason));
            break;
        }
    }
    let shards = entries.len();
    let mut answer = json!({
        "_shards": {"total": shards, "successful": shards, "failed": 0},
        "valid": error.is_none(),
    });
    if explain && let Some(error) = error {
        answer["error"] = json!(error);
    }
    Ok(respond::ok(answer))
}

pub async fn validate_query_all(
    state: State<AppState>,
    params: Params,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    validate_query(state, Path("_all".to_string()), params, body).await
}
