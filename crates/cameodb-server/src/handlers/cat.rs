//! `GET /_cat/indices` in text and JSON.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde_json::{Value, json};

use super::{AppState, Params};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::request::params::flag;
use crate::respond;

pub async fn indices(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let entries = state.catalog.all().await;
    render(&state, entries, &params).await
}

pub async fn indices_for(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve(&index).await?;
    render(&state, entries, &params).await
}

/// `GET /_cat/shards[/{index}]`: every copy of every shard (replica set) with its state,
/// documents, size and node.
pub async fn shards(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let entries = state.catalog.all().await;
    render_shards(&state, entries, &params).await
}

pub async fn shards_for(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve(&index).await?;
    render_shards(&state, entries, &params).await
}

const SHARD_COLUMNS: [&str; 8] = [
    "index", "shard", "prirep", "state", "docs", "store", "ip", "node",
];

async fn render_shards(
    state: &AppState,
    entries: Vec<std::sync::Arc<IndexEntry>>,
    params: &Params,
) -> Result<Response, ApiError> {
    let rows = crate::cluster::admin::shard_rows(&state.cluster, &entries)
        .await
        .into_iter()
        .map(|row| {
            let ip = row
                .http_addr
                .rsplit_once(':')
                .map_or(row.http_addr.as_str(), |(host, _)| host)
                .to_string();
            vec![
                row.index,
                row.shard.to_string(),
                if row.primary { "p" } else { "r" }.to_string(),
                row.state.as_str().to_string(),
                row.docs.map_or_else(String::new, |d| d.to_string()),
                row.bytes.map_or_else(String::new, human_bytes),
                ip,
                super::node_name(&row.node),
            ]
        })
        .collect();
    table(&SHARD_COLUMNS, rows, params)
}

const COLUMNS: [&str; 10] = [
    "health",
    "status",
    "index",
    "uuid",
    "pri",
    "rep",
    "docs.count",
    "docs.deleted",
    "store.size",
    "pri.store.size",
];

async fn render(
    state: &AppState,
    entries: Vec<std::sync::Arc<IndexEntry>>,
    params: &Params,
) -> Result<Response, ApiError> {
    let (sizes, _) = crate::cluster::admin::sizes(&state.cluster).await;
    let view = state.cluster.view().await;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for entry in entries {
        let (_, bytes) = sizes.get(&entry.name).copied().unwrap_or_default();
        let health = crate::cluster::health::health(&view, std::slice::from_ref(&entry));
        // Documents once each (one live copy of every shard), as Elasticsearch counts them.
        let count = crate::cluster::scatter::count(
            &state.cluster,
            &view,
            std::slice::from_ref(&entry),
            &Default::default(),
            cameodb_search::QuerySpec::All,
        )
        .await
        .ok()
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0);
        let copies = entry.wanted_copies().max(1) as u64;
        let setting = |k: &str| {
            entry
                .meta
                .settings
                .get(k)
                .cloned()
                .unwrap_or_else(|| "1".into())
        };
        rows.push(vec![
            health.status().into(),
            "open".into(),
            entry.name.clone(),
            entry.meta.uuid.clone(),
            setting("index.number_of_shards"),
            setting("index.number_of_replicas"),
            count.to_string(),
            "0".into(),
            human_bytes(bytes),
            human_bytes(bytes / copies),
        ]);
    }
    table(&COLUMNS, rows, params)
}

/// A `_cat` answer: JSON objects with `format=json`, else an aligned text table (with a header
/// row when `v` is set).
pub fn table(
    columns: &[&str],
    rows: Vec<Vec<String>>,
    params: &Params,
) -> Result<Response, ApiError> {
    if params.get("format").map(String::as_str) == Some("json") {
        let items: Vec<Value> = rows
            .iter()
            .map(|row| {
                Value::Object(
                    columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.to_string(), json!(v)))
                        .collect(),
                )
            })
            .collect();
        return Ok(respond::ok(Value::Array(items)));
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    if flag(params, "v")?.unwrap_or(false) {
        table.push(columns.iter().map(|c| c.to_string()).collect());
    }
    table.extend(rows);
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        text.push_str(line.join(" ").trim_end());
        text.push('\n');
    }
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    Ok(response)
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["b", "kb", "mb", "gb"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}b")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
