//! `_bulk` across the cluster: the coordinator reads only the action lines, picks each item's
//! owner from its ring token (generating missing ids itself, so it knows where they go), sends
//! every owner its items as one sub-batch, in parallel, and puts the answers back in request
//! order. Sources are passed through as raw lines, never parsed here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use cameodb_ring::Ring;
use futures::future::join_all;
use serde_json::{Map, Value, json};

use super::router_actor::View;
use super::{ClusterCtx, from_wire, ndjson_request, query_params, read_body};
use crate::error::ApiError;
use crate::handlers::{ACTION_META_KEYS, AppState, ndjson_lines};
use crate::ids::generate_id;
use crate::respond;

/// One item: what its answer names if its node fails, and where it goes.
struct Planned {
    /// `index`, `create`, `update` or `delete`.
    action: String,
    /// Target index ("" when missing; the owner then reports the error).
    index: String,
    /// Document id (generated when the line had none).
    id: String,
    /// Owner's node id.
    node: String,
}

/// The request split by owner, or `None` when the body is malformed in a way that fails the
/// whole request (then one node answers the 400 for it, writing nothing).
struct Plan {
    items: Vec<Planned>,
    /// NDJSON body per node id.
    bodies: BTreeMap<String, Vec<u8>>,
}

fn split(
    body: &[u8],
    default_index: Option<&str>,
    params: &HashMap<String, String>,
    view: &View,
    placements: &HashMap<String, Arc<Ring>>,
) -> Option<Plan> {
    let mut items = Vec::new();
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut lines = ndjson_lines(body);
    while let Some(line) = lines.next() {
        // Over the memory budget: the strict parser then answers with the breaker's error
        // (the request's account stays tripped).
        if cameodb_memory::tripped() {
            return None;
        }
        let mut action: Map<String, Value> = serde_json::from_slice(line).ok()?;
        if action.len() != 1 {
            return None;
        }
        let (name, meta) = action.iter_mut().next()?;
        let name = name.clone();
        let meta = meta.as_object_mut()?;
        if !["index", "create", "update", "delete"].contains(&name.as_str())
            || meta.keys().any(|k| !ACTION_META_KEYS.contains(&k.as_str()))
        {
            return None;
        }
        let source = if name == "delete" {
            None
        } else {
            Some(lines.next()?)
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .unwrap_or_default()
            .to_string();
        let id = match meta.get("_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let id = match (id, name.as_str()) {
            (Some(id), _) => id,
            (None, "index" | "create") => {
                let id = generate_id();
                meta.insert("_id".into(), Value::String(id.clone()));
                id
            }
            (None, _) => String::new(),
        };
        if !index.is_empty() {
            // The path's index is spelled out, so the sub-batch can go to `/_bulk`.
            meta.insert("_index".into(), Value::String(index.clone()));
        }
        let routing = meta
            .get("routing")
            .and_then(Value::as_str)
            .or(params.get("routing").map(String::as_str));
        let node = view.owner_of(placements.get(&index).map(|r| r.as_ref()), &id, routing);
        let out = bodies.entry(node.clone()).or_default();
        out.extend_from_slice(&serde_json::to_vec(&action).ok()?);
        out.push(b'\n');
        if let Some(source) = source {
            out.extend_from_slice(source);
            out.push(b'\n');
        }
        items.push(Planned {
            action: name,
            index,
            id,
            node,
        });
    }
    Some(Plan { items, bodies })
}

/// Handles `_bulk` on a node of a multi-node cluster.
pub async fn route(
    state: &AppState,
    ctx: &ClusterCtx,
    view: &Arc<View>,
    request: Request,
    default_index: Option<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = query_params(&request);
    // Bad parameters fail the whole request, before anything is sent anywhere.
    crate::handlers::check_bulk_params(&params)?;
    let query = request.uri().query().map(String::from);
    let path = request.uri().path().to_string();
    let body = read_body(ctx, request).await?;
    let split_view = Arc::clone(view);
    // Each existing index's fixed placement; indexes this request creates get the live ring.
    let placements: HashMap<String, Arc<Ring>> = state
        .catalog
        .all()
        .await
        .into_iter()
        .filter_map(|e| Some((e.name.clone(), e.placement.clone()?)))
        .collect();
    let (plan, body) = state
        .ingest
        .run(move || {
            let plan = split(
                &body,
                default_index.as_deref(),
                &params,
                &split_view,
                &placements,
            );
            (plan, body)
        })
        .await?;
    let with_query = |p: &str| match &query {
        Some(q) => format!("{p}?{q}"),
        None => p.to_string(),
    };
    let Some(plan) = plan.filter(|p| !p.items.is_empty()) else {
        // Malformed or empty: this node's parser answers the 400 (before writing anything).
        let response = ctx
            .call_local(ndjson_request("POST", with_query(&path), body))
            .await?;
        return Ok(from_wire(response));
    };
    let mut indices: Vec<&str> = plan.items.iter().map(|i| i.index.as_str()).collect();
    indices.sort_unstable();
    indices.dedup();
    for index in indices.into_iter().filter(|i| !i.is_empty()) {
        // Failures show up per item, from the owners.
        let _ = super::metadata::ensure_index(&state.catalog, ctx, index).await;
    }
    let calls = plan.bodies.into_iter().map(|(node, body)| {
        let uri = with_query("/_bulk");
        async move {
            let answer = match view.member(&node) {
                Some(member) => {
                    ctx.call_json(member, ndjson_request("POST", uri, body))
                        .await
                }
                None => Err(super::forgotten(&node)),
            };
            (node, answer)
        }
    });
    let answers: HashMap<String, Result<(axum::http::StatusCode, Value), ApiError>> =
        join_all(calls).await.into_iter().collect();
    let mut per_node: HashMap<&str, std::vec::IntoIter<Value>> = HashMap::new();
    let mut errors = false;
    let mut rendered = Vec::with_capacity(plan.items.len());
    for item in &plan.items {
        let answer = answers.get(&item.node);
        let got = match answer {
            Some(Ok((status, body))) if status.is_success() => per_node
                .entry(item.node.as_str())
                .or_insert_with(|| {
                    body["items"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                })
                .next(),
            _ => None,
        };
        let value = match got {
            Some(value) => value,
            None => {
                let err = match answer {
                    Some(Err(err)) => err.clone(),
                    Some(Ok((status, body))) => {
                        ApiError::from_remote(*status, body, "sub-batch failed")
                    }
                    None => ApiError::internal("bulk item was not executed"),
                };
                json!({ item.action.clone(): {
                    "_index": item.index, "_id": item.id, "status": err.status.as_u16(),
                    "error": err.with_index(&item.index).cause(),
                }})
            }
        };
        errors |= value
            .as_object()
            .and_then(|o| o.values().next())
            .is_some_and(|v| v.get("error").is_some());
        rendered.push(value);
    }
    Ok(respond::ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": rendered,
    })))
}
