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

const RECOVERY_COLUMNS: [&str; 24] = [
    "index",
    "shard",
    "time",
    "type",
    "stage",
    "source_host",
    "source_node",
    "target_host",
    "target_node",
    "repository",
    "snapshot",
    "files",
    "files_recovered",
    "files_percent",
    "files_total",
    "bytes",
    "bytes_recovered",
    "bytes_percent",
    "bytes_total",
    "translog_ops",
    "translog_ops_recovered",
    "translog_ops_percent",
    "docs",
    "rate",
];

/// `GET /_cat/recovery`: every stream a node read from a peer — the ranges a placement change
/// moved, or a copy reading a peer's feed from the start — with its documents, bytes and rate
/// (bytes per second). `active_only=true` keeps the running ones. Totals are not known before
/// a stream ends, so running ones show their totals as `n/a`.
pub async fn recovery(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    render_recovery(&state, None, &params).await
}

pub async fn recovery_for(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let names: Vec<String> = state
        .catalog
        .resolve(&index)
        .await?
        .iter()
        .map(|e| e.name.clone())
        .collect();
    render_recovery(&state, Some(names), &params).await
}

async fn render_recovery(
    state: &AppState,
    only: Option<Vec<String>>,
    params: &Params,
) -> Result<Response, ApiError> {
    let active_only = params.get("active_only").map(String::as_str) == Some("true");
    let view = state.cluster.view().await;
    let host = |id: &str| {
        view.member(id)
            .map(|m| {
                m.http_addr
                    .rsplit_once(':')
                    .map_or(m.http_addr.clone(), |(h, _)| h.to_string())
            })
            .unwrap_or_default()
    };
    let rows = crate::cluster::recovery::cluster_wide(&state.cluster)
        .await
        .into_iter()
        .filter(|r| only.as_ref().is_none_or(|names| names.contains(&r.index)))
        .filter(|r| !active_only || r.finished_ms.is_none())
        .map(|r| {
            let done = r.finished_ms.is_some();
            let total = |n: u64| if done { n.to_string() } else { "n/a".into() };
            let percent = if done { "100.0%" } else { "n/a" };
            let seconds = r.elapsed_ms() as f64 / 1000.0;
            let rate = if seconds > 0.0 {
                ((r.bytes as f64) / seconds) as u64
            } else {
                0
            };
            vec![
                r.index.clone(),
                "0".into(),
                format!("{}ms", r.elapsed_ms()),
                "peer".into(),
                r.stage().into(),
                host(&r.source),
                super::node_name(&r.source),
                host(&r.target),
                super::node_name(&r.target),
                "n/a".into(),
                "n/a".into(),
                "0".into(),
                "0".into(),
                "100.0%".into(),
                "0".into(),
                human_bytes(r.bytes),
                r.bytes.to_string(),
                percent.into(),
                total(r.bytes),
                r.docs.to_string(),
                r.docs.to_string(),
                percent.into(),
                r.docs.to_string(),
                rate.to_string(),
            ]
        })
        .collect();
    table(&RECOVERY_COLUMNS, rows, params)
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
        let count = doc_count(state, &view, &entry).await;
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

/// Documents in `entry`, each counted once (one live copy of every shard), as Elasticsearch
/// counts them; 0 when no copy answers.
pub async fn doc_count(
    state: &AppState,
    view: &crate::cluster::router_actor::View,
    entry: &std::sync::Arc<IndexEntry>,
) -> u64 {
    crate::cluster::scatter::count(
        &state.cluster,
        view,
        std::slice::from_ref(entry),
        &Default::default(),
        cameodb_search::QuerySpec::All,
    )
    .await
    .ok()
    .and_then(|c| c["count"].as_u64())
    .unwrap_or(0)
}

/// A `_cat` answer: JSON objects with `format=json`, YAML with `format=yaml`, else an aligned
/// text table (with a header row when `v` is set). `h` picks and orders the columns (names or
/// wildcards), `s` sorts by columns (`name:desc` for descending).
pub fn table(
    columns: &[&str],
    rows: Vec<Vec<String>>,
    params: &Params,
) -> Result<Response, ApiError> {
    let picked: Vec<usize> = match params.get("h") {
        Some(wanted) => {
            let mut picked = Vec::new();
            for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let before = picked.len();
                for (i, column) in columns.iter().enumerate() {
                    if (*column == name || cameodb_search::wildcard_match(name, column))
                        && !picked.contains(&i)
                    {
                        picked.push(i);
                    }
                }
                if picked.len() == before {
                    return Err(ApiError::illegal_argument(format!(
                        "header [{name}] does not exist"
                    )));
                }
            }
            picked
        }
        None => (0..columns.len()).collect(),
    };
    let mut rows = rows;
    if let Some(sort) = params.get("s") {
        let mut keys = Vec::new();
        for spec in sort.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, descending) = match spec.rsplit_once(':') {
                Some((name, "desc")) => (name, true),
                Some((name, _)) => (name, false),
                None => (spec, false),
            };
            let column = columns.iter().position(|c| *c == name).ok_or_else(|| {
                ApiError::illegal_argument(format!("Unable to sort by unknown sort key `{name}`"))
            })?;
            keys.push((column, descending));
        }
        rows.sort_by(|a, b| {
            for (column, descending) in &keys {
                let (x, y) = (a.get(*column), b.get(*column));
                let order = match (
                    x.and_then(|v| v.parse::<f64>().ok()),
                    y.and_then(|v| v.parse::<f64>().ok()),
                ) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    _ => x.cmp(&y),
                };
                let order = if *descending { order.reverse() } else { order };
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let columns: Vec<&str> = picked
        .iter()
        .filter_map(|i| columns.get(*i).copied())
        .collect();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            picked
                .iter()
                .map(|i| row.get(*i).cloned().unwrap_or_default())
                .collect()
        })
        .collect();
    let objects = || -> Vec<Value> {
        rows.iter()
            .map(|row| {
                Value::Object(
                    columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.to_string(), json!(v)))
                        .collect(),
                )
            })
            .collect()
    };
    match params.get("format").map(String::as_str) {
        Some("json") => return Ok(respond::ok(Value::Array(objects()))),
        Some("yaml") => {
            let mut text = String::from("---\n");
            for row in &rows {
                for (n, (column, value)) in columns.iter().zip(row).enumerate() {
                    text.push_str(if n == 0 { "- " } else { "  " });
                    text.push_str(&format!("{column}: {}\n", json!(value)));
                }
            }
            let mut response = (StatusCode::OK, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            );
            return Ok(response);
        }
        None | Some("text" | "txt") => {}
        Some(other) => {
            return Err(ApiError::illegal_argument(format!(
                "Unsupported format [{other}]: json, yaml and text are"
            )));
        }
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
