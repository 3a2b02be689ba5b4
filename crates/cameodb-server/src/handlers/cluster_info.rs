//! Cluster introspection the official clients and tools call: `_nodes` (sniffing reads each
//! node's HTTP address there), `_nodes/stats`, `_cluster/settings`, `_cluster/state`,
//! `_cat/health`, `_cat/count`.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use cameodb_cluster::{Member, MemberState};
use serde_json::{Map, Value, json};

use super::root::COMPAT_VERSION;
use super::{AppState, Params};
use crate::error::ApiError;
use crate::request::parse_object_body;
use crate::respond;

/// The members this node sees as up, as `_nodes` lists them.
async fn live_members(state: &AppState) -> Vec<Member> {
    let view = state.cluster.view().await;
    view.members
        .iter()
        .filter(|m| m.state == MemberState::Up || m.is_self)
        .cloned()
        .collect()
}

fn node_json(member: &Member) -> Value {
    let host = member
        .http_addr
        .rsplit_once(':')
        .map_or(member.http_addr.as_str(), |(host, _)| host)
        .to_string();
    json!({
        "name": super::node_name(&member.id),
        "transport_address": member.cluster_addr.to_string(),
        "host": host,
        "ip": member.cluster_addr.ip().to_string(),
        "version": COMPAT_VERSION,
        "build_flavor": "default",
        "build_type": "cameodb",
        "roles": ["data", "ingest", "master"],
        "attributes": {},
        "http": {
            "bound_address": [member.http_addr],
            "publish_address": member.http_addr,
            "max_content_length_in_bytes": 104857600
        },
    })
}

fn nodes_answer(members: &[Member], body: impl Fn(&Member) -> Value) -> Value {
    let nodes: Map<String, Value> = members.iter().map(|m| (m.id.clone(), body(m))).collect();
    json!({
        "_nodes": {"total": nodes.len(), "successful": nodes.len(), "failed": 0},
        "cluster_name": "cameodb",
        "nodes": nodes,
    })
}

/// Keeps the members a node filter names (`_all`, `_local`, an id or name; comma-separated).
fn filtered(state: &AppState, members: Vec<Member>, filter: &str) -> Vec<Member> {
    members
        .into_iter()
        .filter(|m| {
            filter.split(',').any(|f| match f {
                "_all" | "*" => true,
                "_local" => m.is_self,
                "_master" => m.is_self,
                other => {
                    other == m.id
                        || other == super::node_name(&m.id)
                        || other == state.node_id && m.is_self
                }
            })
        })
        .collect()
}

/// Path segments after `_nodes` that name metrics rather than nodes.
const NODE_METRICS: &[&str] = &[
    "settings",
    "os",
    "process",
    "jvm",
    "thread_pool",
    "transport",
    "http",
    "plugins",
    "ingest",
    "indices",
    "aggregations",
    "_none",
    "_all",
];

pub async fn nodes_info(State(state): State<AppState>) -> Response {
    respond::ok(nodes_answer(&live_members(&state).await, node_json))
}

/// `GET /_nodes/{filter}`: a node filter or a metric list (`_nodes/http`, `_nodes/_all/http`).
pub async fn nodes_info_for(State(state): State<AppState>, Path(filter): Path<String>) -> Response {
    let members = live_members(&state).await;
    let metrics_only = filter.split(',').all(|p| NODE_METRICS.contains(&p));
    let members = if metrics_only {
        members
    } else {
        filtered(&state, members, &filter)
    };
    respond::ok(nodes_answer(&members, node_json))
}

pub async fn nodes_info_for_metric(
    State(state): State<AppState>,
    Path((filter, _metric)): Path<(String, String)>,
) -> Response {
    let members = filtered(&state, live_members(&state).await, &filter);
    respond::ok(nodes_answer(&members, node_json))
}

/// `GET /_nodes/stats`: what each node holds (documents and bytes per index), in the shape
/// of Elasticsearch's `indices` section.
pub async fn nodes_stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (sizes, _) = crate::cluster::admin::sizes(&state.cluster).await;
    let docs: u64 = sizes.values().map(|(d, _)| d).sum();
    let bytes: u64 = sizes.values().map(|(_, b)| b).sum();
    let members = live_members(&state).await;
    let count = members.len().max(1) as u64;
    Ok(respond::ok(nodes_answer(&members, |m| {
        let mut node = node_json(m);
        if let Some(object) = node.as_object_mut() {
            // Spread evenly: the per-node split is in `/_cameo/node/stats` on each node.
            object.insert(
                "indices".into(),
                json!({
                    "docs": {"count": docs / count, "deleted": 0},
                    "store": {"size_in_bytes": bytes / count},
                }),
            );
        }
        node
    })))
}

pub async fn nodes_stats_for(
    state: State<AppState>,
    _filter: Path<String>,
) -> Result<Response, ApiError> {
    nodes_stats(state).await
}

/// `GET /_cluster/settings`: the cluster's dynamic settings (see `cluster::dynamic`).
pub async fn cluster_settings(State(state): State<AppState>, params: Params) -> Response {
    let defaults = params.get("include_defaults").map(String::as_str) == Some("true");
    let current = state.cluster.settings.current();
    respond::ok(crate::cluster::dynamic::render(&current, defaults))
}

/// `PUT /_cluster/settings`: changes `indices.recovery.max_bytes_per_sec` (a `null` resets
/// it); any other setting is refused by name.
pub async fn put_cluster_settings(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?.unwrap_or_default();
    let answer = crate::cluster::dynamic::put(&state.cluster, &body).await?;
    Ok(respond::ok(answer))
}

/// `GET /_cluster/state[/{metric}[/{index}]]`: nodes and index metadata.
pub async fn cluster_state(State(state): State<AppState>) -> Result<Response, ApiError> {
    state_for(&state, "_all", "_all").await
}

pub async fn cluster_state_metric(
    State(state): State<AppState>,
    Path(metric): Path<String>,
) -> Result<Response, ApiError> {
    state_for(&state, &metric, "_all").await
}

pub async fn cluster_state_metric_index(
    State(state): State<AppState>,
    Path((metric, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state_for(&state, &metric, &index).await
}

async fn state_for(state: &AppState, metric: &str, index: &str) -> Result<Response, ApiError> {
    let wants = |m: &str| metric == "_all" || metric.split(',').any(|p| p == m);
    let mut body = json!({"cluster_name": "cameodb", "cluster_uuid": state.cluster_uuid});
    if wants("master_node") || wants("nodes") {
        body["master_node"] = json!(state.node_id);
    }
    if wants("nodes") {
        let nodes: Map<String, Value> = live_members(state)
            .await
            .iter()
            .map(|m| (m.id.clone(), node_json(m)))
            .collect();
        body["nodes"] = Value::Object(nodes);
    }
    if wants("metadata") {
        let mut indices = Map::new();
        for entry in state.catalog.resolve(index).await? {
            let mapping =
                crate::shard::run(&entry.shard, |store| Ok(store.mapping().to_es_json())).await?;
            indices.insert(
                entry.name.clone(),
                json!({
                    "state": "open",
                    "settings": crate::catalog::Catalog::settings_json(&entry),
                    "mappings": {"_doc": mapping},
                    "aliases": entry.meta.aliases.keys().collect::<Vec<_>>(),
                }),
            );
        }
        body["metadata"] = json!({
            "cluster_uuid": state.cluster_uuid,
            "templates": {},
            "indices": indices,
        });
    }
    Ok(respond::ok(body))
}

/// `GET /_cat/health`.
pub async fn cat_health(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let entries = state.catalog.all().await;
    let view = state.cluster.view().await;
    let nodes = view.members.iter().filter(|m| view.is_live(&m.id)).count();
    let health = crate::cluster::health::health(&view, &entries);
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let total = health
        .active
        .saturating_add(health.initializing)
        .saturating_add(health.unassigned);
    let percent = if total == 0 {
        100.0
    } else {
        health.active as f64 * 100.0 / total as f64
    };
    let row = vec![
        epoch.to_string(),
        chrono_like_time(epoch),
        "cameodb".into(),
        health.status().into(),
        nodes.to_string(),
        nodes.to_string(),
        health.active.to_string(),
        health.active_primary.to_string(),
        "0".into(),
        health.initializing.to_string(),
        health.unassigned.to_string(),
        "0".into(),
        "-".into(),
        format!("{percent:.1}%"),
    ];
    super::cat::table(&HEALTH_COLUMNS, vec![row], &params)
}

const HEALTH_COLUMNS: [&str; 14] = [
    "epoch",
    "timestamp",
    "cluster",
    "status",
    "node.total",
    "node.data",
    "shards",
    "pri",
    "relo",
    "init",
    "unassign",
    "pending_tasks",
    "max_task_wait_time",
    "active_shards_percent",
];

/// `HH:MM:SS` of an epoch second (UTC).
fn chrono_like_time(epoch: u64) -> String {
    let day = epoch % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// `GET /_cat/count[/{index}]`.
pub async fn cat_count(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    count_rows(&state, "_all", &params).await
}

pub async fn cat_count_for(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    count_rows(&state, &index, &params).await
}

async fn count_rows(state: &AppState, index: &str, params: &Params) -> Result<Response, ApiError> {
    let entries = state.catalog.resolve(index).await?;
    let view = state.cluster.view().await;
    let count = crate::cluster::scatter::count(
        &state.cluster,
        &view,
        &entries,
        &Default::default(),
        cameodb_search::QuerySpec::All,
    )
    .await?["count"]
        .as_u64()
        .unwrap_or(0);
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let row = vec![
        epoch.to_string(),
        chrono_like_time(epoch),
        count.to_string(),
    ];
    super::cat::table(&["epoch", "timestamp", "count"], vec![row], params)
}
