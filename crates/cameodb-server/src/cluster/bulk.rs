//! `_bulk` across the cluster: the coordinator parses the action lines once (the same strict
//! parser a single node uses), picks each item's owner from its ring token (generating missing
//! ids itself, so it knows where they go), sends every owner its items as one sub-batch, in
//! parallel, and puts the answers back in request order. Sources are passed through as raw
//! lines, never parsed here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use cameodb_ring::Ring;
use futures::future::join_all;
use serde_json::{Value, json};

use super::router_actor::View;
use super::{ClusterCtx, Routing, from_wire, ndjson_request, query_params, read_body};
use crate::error::ApiError;
use crate::ids::generate_id;
use crate::request::bulk::{Action, Line, check_bulk_params, parse_lines};
use crate::respond;

/// One item: what its answer names if its node fails, and where it goes.
#[derive(Debug)]
struct Planned {
    /// What it does.
    action: Action,
    /// Target index ("" when missing; the owner then reports the error).
    index: String,
    /// Document id (generated when the line had none).
    id: String,
    /// Owner's node id.
    node: String,
}

/// The request split by owner.
struct Plan {
    /// Every item, in request order.
    items: Vec<Planned>,
    /// NDJSON body per node id.
    bodies: BTreeMap<String, Vec<u8>>,
}

/// Splits parsed `lines` by owner (`owner(index, id, routing)` names the node), giving
/// `index`/`create` items without an id a generated one and every item its index, so each
/// sub-batch can go to `/_bulk`.
fn split(
    lines: Vec<Line<'_>>,
    params: &HashMap<String, String>,
    owner: impl Fn(&str, &str, Option<&str>) -> String,
) -> Result<Plan, ApiError> {
    let mut items = Vec::with_capacity(lines.len());
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for mut line in lines {
        cameodb_memory::check()?;
        let index = line.index.clone().unwrap_or_default();
        let id = match (&line.id, line.action) {
            (Some(id), _) => id.clone(),
            (None, Action::Index | Action::Create) => {
                let id = generate_id();
                line.meta.insert("_id".into(), Value::String(id.clone()));
                id
            }
            (None, _) => String::new(),
        };
        if !index.is_empty() {
            line.meta
                .insert("_index".into(), Value::String(index.clone()));
        }
        let node = owner(&index, &id, line.routing(params));
        let out = bodies.entry(node.clone()).or_default();
        serde_json::to_writer(&mut *out, &json!({ line.action.name(): line.meta }))
            .map_err(|e| ApiError::internal(format!("cannot encode a bulk sub-batch: {e}")))?;
        out.push(b'\n');
        if let Some(source) = line.source {
            out.extend_from_slice(source);
            out.push(b'\n');
        }
        items.push(Planned {
            action: line.action,
            index,
            id,
            node,
        });
    }
    Ok(Plan { items, bodies })
}

/// Each node's answer to its sub-batch.
type Answers = HashMap<String, Result<(StatusCode, Value), ApiError>>;

/// Puts the sub-batches' items back in request order; an item whose node failed gets that
/// failure as its error. Also says whether any item failed.
fn reassemble(items: &[Planned], answers: &Answers) -> (bool, Vec<Value>) {
    let mut per_node: HashMap<&str, std::vec::IntoIter<Value>> = HashMap::new();
    let mut errors = false;
    let mut rendered = Vec::with_capacity(items.len());
    for item in items {
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
                json!({ item.action.name(): {
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
    (errors, rendered)
}

/// Handles `_bulk` on a node of a multi-node cluster.
pub async fn route(
    state: &Routing,
    ctx: &ClusterCtx,
    view: &Arc<View>,
    request: Request,
    default_index: Option<String>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = query_params(&request);
    // Bad parameters fail the whole request, before anything is sent anywhere.
    check_bulk_params(&params)?;
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
            let plan = parse_lines(default_index.as_deref(), &body).and_then(|lines| {
                split(lines, &params, |index, id, routing| {
                    split_view.owner_of(placements.get(index).map(|r| r.as_ref()), id, routing)
                })
            });
            (plan, body)
        })
        .await?;
    let with_query = |p: &str| match &query {
        Some(q) => format!("{p}?{q}"),
        None => p.to_string(),
    };
    let plan = plan?;
    if plan.items.is_empty() {
        // Nothing to route: this node answers as a single node would.
        let response = ctx
            .call_local(ndjson_request("POST", with_query(&path), body))
            .await?;
        return Ok(from_wire(response));
    }
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
    let answers: Answers = join_all(calls).await.into_iter().collect();
    let (errors, rendered) = reassemble(&plan.items, &answers);
    Ok(respond::ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": rendered,
    })))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Answers a sub-batch as an owner would: one item per line, in order.
    fn answer_sub_batch(body: &[u8]) -> Value {
        let items: Vec<Value> = parse_lines(None, body)
            .expect("a sub-batch parses")
            .into_iter()
            .map(|line| {
                json!({ line.action.name(): {
                    "_index": line.index, "_id": line.id, "status": 200,
                }})
            })
            .collect();
        json!({ "errors": false, "items": items })
    }

    fn body_of(items: &[(u8, u8, Option<u16>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(action, index, id) in items {
            let name = ["index", "create", "update", "delete"][usize::from(action % 4)];
            let mut meta = serde_json::Map::new();
            if index % 3 != 0 {
                meta.insert("_index".into(), json!(format!("i{}", index % 3)));
            }
            if let Some(id) = id {
                meta.insert("_id".into(), json!(id));
            }
            body.extend_from_slice(json!({ name: meta }).to_string().as_bytes());
            body.push(b'\n');
            if name != "delete" {
                body.extend_from_slice(b"{\"doc\":{\"n\":1},\"n\":1}\n");
            }
        }
        body
    }

    proptest! {
        /// Whatever the owners, the answer lists every item once, in request order, under its
        /// action, index and id; items of a node that failed carry that node's error.
        #[test]
        fn split_and_reassembly_keep_request_order(
            items in prop::collection::vec((any::<u8>(), any::<u8>(), prop::option::of(0u16..50)), 0..40),
            nodes in 1usize..5,
            failing in prop::option::of(0usize..5),
        ) {
            let body = body_of(&items);
            let lines = parse_lines(Some("p"), &body).expect("parses");
            let owner = |index: &str, id: &str, _: Option<&str>| {
                let hash = index.bytes().chain(id.bytes()).fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
                format!("n{}", hash % nodes)
            };
            let plan = split(lines, &HashMap::new(), owner).expect("splits");
            prop_assert_eq!(plan.items.len(), items.len());
            let answers: Answers = plan
                .bodies
                .iter()
                .map(|(node, body)| {
                    let answer = if failing.map(|f| format!("n{f}")) == Some(node.clone()) {
                        Err(ApiError::internal("node lost"))
                    } else {
                        Ok((StatusCode::OK, answer_sub_batch(body)))
                    };
                    (node.clone(), answer)
                })
                .collect();
            let (errors, rendered) = reassemble(&plan.items, &answers);
            prop_assert_eq!(rendered.len(), items.len());
            let mut any_failed = false;
            for (planned, value) in plan.items.iter().zip(&rendered) {
                let item = &value[planned.action.name()];
                prop_assert_eq!(item["_id"].as_str().unwrap_or_default(), planned.id.as_str());
                let failed = failing.map(|f| format!("n{f}")) == Some(planned.node.clone());
                any_failed |= failed;
                prop_assert_eq!(item.get("error").is_some(), failed);
                if !failed {
                    prop_assert_eq!(item["_index"].as_str().unwrap_or_default(), planned.index.as_str());
                }
            }
            prop_assert_eq!(errors, any_failed);
        }
    }

    #[test]
    fn items_without_an_id_get_one_their_owner_sees() {
        let body = b"{\"index\":{}}\n{\"a\":1}\n{\"delete\":{\"_id\":\"x\"}}\n";
        let lines = parse_lines(Some("p"), body).expect("parses");
        let plan = split(lines, &HashMap::new(), |_, _, _| "n0".into()).expect("splits");
        assert_eq!(plan.items[0].id.len(), 22, "a generated id");
        let sent = answer_sub_batch(&plan.bodies["n0"]);
        assert_eq!(sent["items"][0]["index"]["_id"], json!(plan.items[0].id));
        assert_eq!(sent["items"][0]["index"]["_index"], "p");
        assert_eq!(sent["items"][1]["delete"]["_id"], "x");
    }
}
