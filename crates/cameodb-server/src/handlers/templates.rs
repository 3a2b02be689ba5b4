//! Template APIs: `_index_template`, `_component_template`, legacy `_template` (put, get,
//! exists, delete) and `_cat/templates`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{AppState, Params, cat};
use crate::cluster::templates;
use crate::error::ApiError;
use crate::request::parse_body;
use crate::respond;
use crate::templates::{TemplateKind, render};

async fn put(
    state: &AppState,
    kind: TemplateKind,
    name: &str,
    params: &Params,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_body(body)?.ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: request body is missing;",
        )
    })?;
    let create_only = params.get("create").map(String::as_str) == Some("true");
    if create_only
        && state
            .catalog
            .templates()
            .get(&(kind, name.to_string()))
            .is_some_and(|r| r.body.is_some())
    {
        return Err(ApiError::illegal_argument(format!(
            "{} [{name}] already exists",
            kind.api()
        )));
    }
    templates::put(&state.cluster, kind, name, body).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

/// The live templates of `kind` that `name` matches (all without a name).
fn listed(state: &AppState, kind: TemplateKind, name: Option<&str>) -> Vec<(String, Value)> {
    state
        .catalog
        .templates()
        .values()
        .filter(|r| r.kind == kind)
        .filter(|r| name.is_none_or(|n| crate::aliases::matches_any(n, &r.name)))
        .filter_map(|r| render(r).map(|v| (r.name.clone(), v)))
        .collect()
}

fn get(state: &AppState, kind: TemplateKind, name: Option<&str>) -> Result<Response, ApiError> {
    let found = listed(state, kind, name);
    if found.is_empty()
        && let Some(name) = name
    {
        if kind == TemplateKind::Legacy {
            return Ok(respond::json(StatusCode::NOT_FOUND, json!({})));
        }
        return Err(templates::missing(kind, name));
    }
    Ok(respond::ok(match kind {
        TemplateKind::Index => {
            json!({"index_templates": found.into_iter().map(|(_, v)| v).collect::<Vec<_>>()})
        }
        TemplateKind::Component => {
            json!({"component_templates": found.into_iter().map(|(_, v)| v).collect::<Vec<_>>()})
        }
        TemplateKind::Legacy => Value::Object(found.into_iter().collect::<Map<String, Value>>()),
    }))
}

fn exists(state: &AppState, kind: TemplateKind, name: &str) -> Response {
    if listed(state, kind, Some(name)).is_empty() {
        StatusCode::NOT_FOUND.into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

async fn delete(state: &AppState, kind: TemplateKind, name: &str) -> Result<Response, ApiError> {
    templates::delete(&state.cluster, kind, name).await?;
    Ok(respond::ok(json!({"acknowledged": true})))
}

macro_rules! template_api {
    ($put:ident, $get_all:ident, $get:ident, $exists:ident, $delete:ident, $kind:expr) => {
        pub async fn $put(
            State(state): State<AppState>,
            Path(name): Path<String>,
            params: Params,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            put(&state, $kind, &name, &params, &body).await
        }

        pub async fn $get_all(State(state): State<AppState>) -> Result<Response, ApiError> {
            get(&state, $kind, None)
        }

        pub async fn $get(
            State(state): State<AppState>,
            Path(name): Path<String>,
        ) -> Result<Response, ApiError> {
            get(&state, $kind, Some(&name))
        }

        pub async fn $exists(State(state): State<AppState>, Path(name): Path<String>) -> Response {
            exists(&state, $kind, &name)
        }

        pub async fn $delete(
            State(state): State<AppState>,
            Path(name): Path<String>,
        ) -> Result<Response, ApiError> {
            delete(&state, $kind, &name).await
        }
    };
}

template_api!(
    put_index,
    get_index_all,
    get_index,
    exists_index,
    delete_index,
    TemplateKind::Index
);
template_api!(
    put_component,
    get_component_all,
    get_component,
    exists_component,
    delete_component,
    TemplateKind::Component
);
template_api!(
    put_legacy,
    get_legacy_all,
    get_legacy,
    exists_legacy,
    delete_legacy,
    TemplateKind::Legacy
);

const CAT_COLUMNS: [&str; 5] = ["name", "index_patterns", "order", "version", "composed_of"];

/// `GET /_cat/templates`: index and legacy templates.
pub async fn cat(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let mut rows = Vec::new();
    for record in state.catalog.templates().values() {
        let Some(body) = &record.body else { continue };
        if record.kind == TemplateKind::Component {
            continue;
        }
        let patterns = match body.get("index_patterns") {
            Some(Value::Array(items)) => format!(
                "[{}]",
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(Value::String(p)) => format!("[{p}]"),
            _ => "[]".into(),
        };
        let number = |key: &str| body.get(key).map_or(String::new(), |v| v.to_string());
        let composed =
            body.get("composed_of")
                .and_then(Value::as_array)
                .map_or(String::new(), |c| {
                    format!(
                        "[{}]",
                        c.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
        let order = if record.kind == TemplateKind::Index {
            number("priority")
        } else {
            number("order")
        };
        rows.push(vec![
            record.name.clone(),
            patterns,
            order,
            number("version"),
            composed,
        ]);
    }
    cat::table(&CAT_COLUMNS, rows, &params)
}
