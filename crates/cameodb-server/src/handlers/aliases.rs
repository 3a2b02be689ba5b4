//! Alias APIs: `PUT|DELETE /{index}/_alias/{name}`, `POST /_aliases` (actions), `GET|HEAD
//! /_alias…`, `GET /_cat/aliases`; aliases in index creation.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{AppState, Params, cat};
use crate::aliases::{self, AliasChange, AliasMeta};
use crate::cluster::aliases::change;
use crate::error::ApiError;
use crate::request::parse_object_body;
use crate::respond;

/// The `aliases` object of an index creation body.
pub fn parse_aliases(value: Option<&Value>) -> Result<BTreeMap<String, AliasMeta>, ApiError> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::parse("[aliases] must be an object"))?;
    let aliases = AliasMeta::parse_all(object)?;
    for name in aliases.keys() {
        crate::catalog::check_alias_name(name)?;
    }
    Ok(aliases)
}

async fn concrete(state: &AppState, index: &str) -> Result<Vec<String>, ApiError> {
    Ok(state
        .catalog
        .resolve_concrete(index)
        .await?
        .into_iter()
        .map(|e| e.name.clone())
        .collect())
}

/// `PUT /{index}/_alias/{name}`.
pub async fn put(
    State(state): State<AppState>,
    Path((index, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let meta = AliasMeta::parse(&name, &body)?;
    let mut changes = BTreeMap::new();
    for index in concrete(&state, &index).await? {
        changes.insert(
            index,
            vec![AliasChange::Add {
                alias: name.clone(),
                meta: meta.clone(),
            }],
        );
    }
    change(&state.cluster, changes).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

/// `DELETE /{index}/_alias/{name}`: 404 when no index named has such an alias.
pub async fn delete(
    State(state): State<AppState>,
    Path((index, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut changes = BTreeMap::new();
    for entry in state.catalog.resolve_concrete(&index).await? {
        if entry
            .meta
            .aliases
            .keys()
            .any(|a| aliases::matches_any(&name, a))
        {
            changes.insert(
                entry.name.clone(),
                vec![AliasChange::Remove {
                    pattern: name.clone(),
                    must_exist: false,
                }],
            );
        }
    }
    if changes.is_empty() {
        return Err(aliases::alias_missing(&name));
    }
    change(&state.cluster, changes).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

/// Names in an action: `index` or `indices`, `alias` or `aliases`.
fn names(action: &Map<String, Value>, one: &str, many: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    if let Some(value) = action.get(one) {
        out.push(
            value
                .as_str()
                .ok_or_else(|| ApiError::parse(format!("[{one}] must be a string")))?
                .to_string(),
        );
    }
    if let Some(value) = action.get(many) {
        let items = value
            .as_array()
            .ok_or_else(|| ApiError::parse(format!("[{many}] must be an array")))?;
        for item in items {
            out.push(
                item.as_str()
                    .ok_or_else(|| ApiError::parse(format!("[{many}] must hold strings")))?
                    .to_string(),
            );
        }
    }
    Ok(out)
}

/// `POST /_aliases`: `add`, `remove` and `remove_index` actions, all checked before any is
/// applied.
pub async fn update(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let actions = body
        .get("actions")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: no actions specified;",
            )
        })?;
    let mut changes: BTreeMap<String, Vec<AliasChange>> = BTreeMap::new();
    let mut removed_indices = Vec::new();
    for action in actions {
        let Some((kind, action)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(ApiError::parse("an alias action must be an object"));
        };
        let action = action
            .as_object()
            .ok_or_else(|| ApiError::parse(format!("[{kind}] must be an object")))?;
        let indices = names(action, "index", "indices")?;
        if indices.is_empty() {
            return Err(ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: One of [index] or [indices] is required;",
            ));
        }
        let mut targets = Vec::new();
        for expression in &indices {
            targets.extend(concrete(&state, expression).await?);
        }
        if kind == "remove_index" {
            removed_indices.extend(targets);
            continue;
        }
        let alias_names = names(action, "alias", "aliases")?;
        if alias_names.is_empty() {
            return Err(ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: One of [alias] or [aliases] is required;",
            ));
        }
        for alias in alias_names {
            let change = match kind.as_str() {
                "add" => AliasChange::Add {
                    meta: AliasMeta::parse(&alias, action)?,
                    alias,
                },
                "remove" => AliasChange::Remove {
                    must_exist: action.get("must_exist").and_then(Value::as_bool) == Some(true),
                    pattern: alias,
                },
                other => {
                    return Err(ApiError::parse(format!(
                        "[alias_action] unknown field [{other}]"
                    )));
                }
            };
            for target in &targets {
                changes
                    .entry(target.clone())
                    .or_default()
                    .push(change.clone());
            }
        }
    }
    change(&state.cluster, changes).await?;
    for index in removed_indices {
        crate::cluster::metadata::delete(&state.cluster, &index).await?;
    }
    Ok(respond::ok(json!({"acknowledged": true, "errors": false})))
}

/// Every index `index` names (all when `None`) with the aliases `name` matches (all when
/// `None`); indexes without a matching alias are left out when a name is given.
async fn matching(
    state: &AppState,
    index: Option<&str>,
    name: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let entries = match index {
        Some(index) => state.catalog.resolve(index).await?,
        None => state.catalog.all().await,
    };
    let mut out = Map::new();
    for entry in entries {
        let found: Map<String, Value> = entry
            .meta
            .aliases
            .iter()
            .filter(|(alias, _)| name.is_none_or(|n| aliases::matches_any(n, alias)))
            .map(|(alias, meta)| (alias.clone(), meta.render()))
            .collect();
        if name.is_none() || !found.is_empty() {
            out.insert(entry.name.clone(), json!({"aliases": found}));
        }
    }
    Ok(out)
}

async fn answer(state: &AppState, index: Option<&str>, name: Option<&str>) -> Response {
    match matching(state, index, name).await {
        Ok(found) if name.is_some() && found.is_empty() => respond::json(
            StatusCode::NOT_FOUND,
            json!({"error": format!("alias [{}] missing", name.unwrap_or_default()), "status": 404}),
        ),
        Ok(found) => respond::ok(Value::Object(found)),
        Err(err) => err.into_response(),
    }
}

pub async fn get_all(State(state): State<AppState>) -> Response {
    answer(&state, None, None).await
}

pub async fn get_named(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    answer(&state, None, Some(&name)).await
}

pub async fn get_of_index(State(state): State<AppState>, Path(index): Path<String>) -> Response {
    answer(&state, Some(&index), None).await
}

pub async fn get_of_index_named(
    State(state): State<AppState>,
    Path((index, name)): Path<(String, String)>,
) -> Response {
    answer(&state, Some(&index), Some(&name)).await
}

async fn exists_answer(state: &AppState, index: Option<&str>, name: &str) -> Response {
    match matching(state, index, Some(name)).await {
        Ok(found) if !found.is_empty() => StatusCode::OK.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn exists_named(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    exists_answer(&state, None, &name).await
}

pub async fn exists_of_index_named(
    State(state): State<AppState>,
    Path((index, name)): Path<(String, String)>,
) -> Response {
    exists_answer(&state, Some(&index), &name).await
}

const CAT_COLUMNS: [&str; 6] = [
    "alias",
    "index",
    "filter",
    "routing.index",
    "routing.search",
    "is_write_index",
];

async fn cat_rows(state: &AppState, name: Option<&str>) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for (alias, targets) in state.catalog.alias_map().await {
        if name.is_some_and(|n| !aliases::matches_any(n, &alias)) {
            continue;
        }
        for (index, meta) in targets {
            let write = meta
                .is_write_index
                .map_or("-".to_string(), |w| w.to_string());
            rows.push(vec![
                alias.clone(),
                index,
                "-".into(),
                "-".into(),
                "-".into(),
                write,
            ]);
        }
    }
    rows
}

/// `GET /_cat/aliases[/{name}]`.
pub async fn cat(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    cat::table(&CAT_COLUMNS, cat_rows(&state, None).await, &params)
}

pub async fn cat_named(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    cat::table(&CAT_COLUMNS, cat_rows(&state, Some(&name)).await, &params)
}

/// An index's aliases as `GET /{index}` shows them.
pub fn rendered(aliases: &BTreeMap<String, AliasMeta>) -> Value {
    Value::Object(
        aliases
            .iter()
            .map(|(name, meta)| (name.clone(), meta.render()))
            .collect(),
    )
}
