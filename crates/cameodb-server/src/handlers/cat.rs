//! `GET /_cat/indices` in text and JSON.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use serde_json::{Value, json};

use super::{AppState, Params, flag};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
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

/// Documents and bytes per index over every node of the cluster, and whether every node
/// answered; `None` on a node without peers.
async fn cluster_sizes(state: &AppState) -> Option<(HashMap<String, (u64, u64)>, bool)> {
    let ctx = state.cluster.as_ref()?;
    let view = ctx.view().await;
    if view.is_single() {
        return None;
    }
    let answers =
        crate::cluster::fan_out_json(ctx, &view, "GET", "/_cameo/node/stats", &Value::Null).await;
    let mut sizes: HashMap<String, (u64, u64)> = HashMap::new();
    let mut complete = true;
    for (_, answer) in answers {
        let Ok((status, body)) = answer.as_ref().map(|(s, b)| (*s, b)) else {
            complete = false;
            continue;
        };
        if !status.is_success() {
            complete = false;
            continue;
        }
        for (name, stats) in body["indices"].as_object().into_iter().flatten() {
            let size = sizes.entry(name.clone()).or_default();
            size.0 += stats["docs"].as_u64().unwrap_or(0);
            size.1 += stats["store_bytes"].as_u64().unwrap_or(0);
        }
    }
    Some((sizes, complete))
}

async fn render(
    state: &AppState,
    entries: Vec<std::sync::Arc<IndexEntry>>,
    params: &Params,
) -> Result<Response, ApiError> {
    let cluster = cluster_sizes(state).await;
    let health = match &cluster {
        Some((_, false)) => "red",
        _ => "green",
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for entry in entries {
        let (count, bytes) = match &cluster {
            Some((sizes, _)) => sizes.get(&entry.name).copied().unwrap_or_default(),
            None => local_size(&entry).await?,
        };
        let setting = |k: &str| {
            entry
                .meta
                .settings
                .get(k)
                .cloned()
                .unwrap_or_else(|| "1".into())
        };
        rows.push(vec![
            health.into(),
            "open".into(),
            entry.name.clone(),
            entry.meta.uuid.clone(),
            setting("index.number_of_shards"),
            setting("index.number_of_replicas"),
            count.to_string(),
            "0".into(),
            human_bytes(bytes),
            human_bytes(bytes),
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

/// Documents and bytes of one index on this node.
pub async fn local_size(entry: &IndexEntry) -> Result<(u64, u64), ApiError> {
    super::run(&entry.shard, |store| {
        Ok((store.doc_count()?, dir_bytes(store.dir())))
    })
    .await
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
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
