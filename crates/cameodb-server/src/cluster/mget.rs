//! `_mget` across the cluster: each wanted document is asked of its owner (one sub-request per
//! owner, in parallel) and the answers are put back in request order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use futures::future::join_all;
use serde_json::{Map, Value, json};

use super::router_actor::View;
use super::{ClusterCtx, from_wire, query_params, read_body};
use crate::error::ApiError;
use crate::handlers::AppState;
use crate::respond;

/// The `docs` entries of an `_mget` body with their index filled in, or `None` when the body is
/// not something to split (the local handler then answers its error).
fn entries(body: &[u8], default_index: Option<&str>) -> Option<Vec<Map<String, Value>>> {
    let body: Map<String, Value> = serde_json::from_slice(body).ok()?;
    if body.keys().any(|k| k != "ids" && k != "docs") {
        return None;
    }
    let mut out = Vec::new();
    if let Some(ids) = body.get("ids") {
        for id in ids.as_array()? {
            let mut entry = Map::new();
            entry.insert("_index".into(), Value::String(default_index?.to_string()));
            entry.insert("_id".into(), Value::String(id.as_str()?.to_string()));
            out.push(entry);
        }
    }
    if let Some(docs) = body.get("docs") {
        for doc in docs.as_array()? {
            let mut doc = doc.as_object()?.clone();
            if !doc.contains_key("_index") {
                doc.insert("_index".into(), Value::String(default_index?.to_string()));
            }
            doc.get("_id").filter(|v| v.is_string() || v.is_number())?;
            out.push(doc);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A wanted document with its place in the request.
type Positioned = (usize, Map<String, Value>);

/// Handles `_mget` on a node of a multi-node cluster.
pub async fn route(
    state: &AppState,
    ctx: &ClusterCtx,
    view: &Arc<View>,
    request: Request,
    default_index: Option<String>,
) -> Result<Response, ApiError> {
    let params = query_params(&request);
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let path = request.uri().path().to_string();
    let body = read_body(ctx, request).await?;
    let Some(entries) = entries(&body, default_index.as_deref()) else {
        let wire = super::wire_request(
            "POST",
            format!("{path}{query}"),
            Some("application/json"),
            body,
        );
        return Ok(from_wire(ctx.call_local(wire).await?));
    };
    let mut groups: BTreeMap<String, Vec<Positioned>> = BTreeMap::new();
    for (n, entry) in entries.into_iter().enumerate() {
        let id = match &entry["_id"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let routing = entry
            .get("routing")
            .and_then(Value::as_str)
            .or(params.get("routing").map(String::as_str));
        let index = entry["_index"].as_str().unwrap_or_default();
        let placement = state
            .catalog
            .get(index)
            .await
            .and_then(|e| e.placement.clone());
        let node = view.owner_of(placement.as_deref(), &id, routing);
        groups.entry(node).or_default().push((n, entry));
    }
    let total: usize = groups.values().map(Vec::len).sum();
    let calls = groups.into_iter().map(|(node, docs)| {
        let uri = format!("/_mget{query}");
        async move {
            let (positions, docs): (Vec<usize>, Vec<Map<String, Value>>) = docs.into_iter().unzip();
            let answer = match view.member(&node) {
                Some(member) => {
                    ctx.json_call(member, "POST", uri, &json!({"docs": docs}))
                        .await
                }
                None => Err(super::forgotten(&node)),
            };
            (positions, docs, answer)
        }
    });
    let mut out: Vec<Value> = vec![Value::Null; total];
    for (positions, docs, answer) in join_all(calls).await {
        let answered = match answer {
            Ok((status, body)) if status.is_success() => {
                Ok(body["docs"].as_array().cloned().unwrap_or_default())
            }
            Ok((status, body)) => Err(ApiError::from_remote(status, &body, "sub-request failed")),
            Err(err) => Err(err),
        };
        match answered {
            Ok(found) => {
                for (position, doc) in positions.into_iter().zip(found) {
                    out[position] = doc;
                }
            }
            Err(err) => {
                for (position, doc) in positions.into_iter().zip(docs) {
                    out[position] =
                        json!({"_index": doc["_index"], "_id": doc["_id"], "error": err.cause()});
                }
            }
        }
    }
    Ok(respond::ok(json!({"docs": out})))
}
