//! Cluster APIs: `GET /_cat/nodes`, `GET /_cameo/ring`, and the node-state part of
//! `/_cluster/health`.

use axum::extract::State;
use axum::response::Response;
use cameodb_cluster::{Member, MemberState};
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::error::ApiError;
use crate::respond;

/// The members as this node sees them.
async fn members(state: &AppState) -> Vec<Member> {
    state.cluster.view().await.members.clone()
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Joining => "joining",
        MemberState::Up => "up",
        MemberState::Down => "down",
        MemberState::Left => "left",
    }
}

const NODE_COLUMNS: [&str; 7] = [
    "ip",
    "id",
    "name",
    "http_address",
    "cluster_address",
    "state",
    "node.role",
];

/// `GET /_cat/nodes`.
pub async fn cat_nodes(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let members = members(&state).await;
    let rows = members
        .iter()
        .map(|m| {
            vec![
                m.cluster_addr.ip().to_string(),
                m.id.clone(),
                super::node_name(&m.id),
                m.http_addr.clone(),
                m.cluster_addr.to_string(),
                state_name(m.state).to_string(),
                "dim".into(),
            ]
        })
        .collect();
    super::cat::table(&NODE_COLUMNS, rows, &params)
}

/// `GET /_cameo/ring`: members, their states and shares, and the token ranges each owns.
pub async fn ring(State(state): State<AppState>) -> Result<Response, ApiError> {
    let members = members(&state).await;
    let ring = state.cluster.view().await.ring.clone();
    let shares = ring.ownership();
    let listed: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "name": super::node_name(&m.id), "http_address": m.http_addr,
                "cluster_address": m.cluster_addr.to_string(), "state": state_name(m.state),
                "ownership": shares.get(&m.id).copied().unwrap_or(0.0),
            })
        })
        .collect();
    let ranges: Vec<Value> = ring
        .ranges()
        .into_iter()
        .map(|r| json!({"start": r.start, "end": r.end, "owner": r.owner}))
        .collect();
    Ok(respond::ok(json!({
        "vnodes_per_member": cameodb_ring::VNODES_PER_MEMBER,
        "members": listed,
        "ranges": ranges,
    })))
}

/// `GET /_cameo/node/stats`: what this node itself holds — documents and bytes per index —
/// whatever the cluster holds elsewhere (how the data is spread, for operators and tests).
pub async fn node_stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut indices = serde_json::Map::new();
    for (name, (docs, bytes)) in crate::leaf::admin::sizes(&state.cluster.leaf).await? {
        indices.insert(name, json!({"docs": docs, "store_bytes": bytes}));
    }
    Ok(respond::ok(json!({
        "node_id": state.node_id,
        "name": state.node_name,
        "indices": indices,
    })))
}
