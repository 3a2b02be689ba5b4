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
/// whatever the cluster holds elsewhere (how the data is spread, for operators and tests),
/// and its gossip figures (traffic since start, the size of the gossip state it holds).
pub async fn node_stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut indices = serde_json::Map::new();
    for (name, (docs, bytes)) in crate::leaf::admin::sizes(&state.cluster.leaf).await? {
        indices.insert(name, json!({"docs": docs, "store_bytes": bytes}));
    }
    let gossip = state.cluster.cluster.gossip_stats().await;
    Ok(respond::ok(json!({
        "node_id": state.node_id,
        "name": state.node_name,
        "indices": indices,
        "gossip": gossip,
    })))
}

/// The id of the member `{node}` names: its id or its name as `_cat/nodes` shows it — or a
/// decommissioned or removed member's, which gossip may have forgotten.
async fn node_id_of(state: &AppState, node: &str) -> Result<String, ApiError> {
    let known = members(state).await.into_iter().map(|m| m.id);
    known
        .chain(state.cluster.settings.excluded())
        .find(|id| id == node || super::node_name(id) == node)
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "resource_not_found_exception",
                format!("no node [{node}] in the cluster"),
            )
        })
}

/// `GET /_cameo/nodes/{node}`: where a member stands — a member, streaming its ranges away
/// (decommissioning or removed), or decommissioned — and per index whether it is placed
/// there, moving in, moving out or out.
pub async fn node_progress(
    State(state): State<AppState>,
    axum::extract::Path(node): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let id = node_id_of(&state, &node).await?;
    let mut body = crate::cluster::membership::progress(&state.cluster, &id).await;
    body["name"] = json!(super::node_name(&id));
    Ok(respond::ok(body))
}

/// `POST /_cameo/nodes/{node}/_decommission`: moves the member's ranges to the other members;
/// once `GET /_cameo/nodes/{node}` says `decommissioned` it holds nothing and may be stopped.
pub async fn decommission(
    State(state): State<AppState>,
    axum::extract::Path(node): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    exclude(
        &state,
        &node,
        crate::cluster::membership::Exclusion::Decommission,
    )
    .await
}

/// `POST /_cameo/nodes/{node}/_remove`: for a member that is down and not coming back — its
/// ranges are copied again from the surviving copies.
pub async fn remove(
    State(state): State<AppState>,
    axum::extract::Path(node): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    exclude(&state, &node, crate::cluster::membership::Exclusion::Remove).await
}

async fn exclude(
    state: &AppState,
    node: &str,
    how: crate::cluster::membership::Exclusion,
) -> Result<Response, ApiError> {
    let id = node_id_of(state, node).await?;
    let mut body = crate::cluster::membership::exclude(&state.cluster, &id, how).await?;
    body["name"] = json!(super::node_name(&id));
    body["acknowledged"] = json!(true);
    Ok(respond::ok(body))
}
