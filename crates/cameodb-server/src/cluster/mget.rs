//! `_mget` across the cluster: each wanted document is asked of its owner (one sub-request per
//! owner, in parallel) and the answers are put back in request order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use futures::future::join_all;
use serde_json::{Value, json};

use super::router_actor::View;
use super::{ClusterCtx, Routing, query_params, read_body};
use crate::error::ApiError;
use crate::request::mget::parse_mget;
use crate::request::parse_object_body;
use crate::respond;

/// A wanted document with its place in the request.
type Positioned = (usize, Value);

/// Handles `_mget` on a node of a multi-node cluster.
pub async fn route(
    state: &Routing,
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
    let body = bytes::Bytes::from(read_body(ctx, request).await?);
    let wanted = parse_mget(
        default_index.as_deref(),
        &params,
        parse_object_body(&body)?.as_ref(),
    )?;
    let mut groups: BTreeMap<String, Vec<Positioned>> = BTreeMap::new();
    for (n, want) in wanted.into_iter().enumerate() {
        let placement = state
            .catalog
            .get(&want.index)
            .await
            .and_then(|e| e.placement.clone());
        let node = view.owner_of(placement.as_deref(), &want.id, want.routing.as_deref());
        groups.entry(node).or_default().push((n, want.entry()));
    }
    let total: usize = groups.values().map(Vec::len).sum();
    let calls = groups.into_iter().map(|(node, docs)| {
        let uri = format!("/_mget{query}");
        async move {
            let (positions, docs): (Vec<usize>, Vec<Value>) = docs.into_iter().unzip();
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
