//! `_delete_by_query` and `_update_by_query`: find the matching documents in a snapshot, then
//! write them in batches, each write conditional on the sequence number read just before, so a
//! document changed in between is a version conflict rather than a lost update.
//!
//! `_update_by_query` without a body `doc` or `script` re-indexes each document as it is
//! (Elasticsearch's behaviour without a script, used to pick up mapping changes). Scripts are the
//! small assignment subset of `script.rs`; as a CameoDB extension a partial `doc` may be given
//! instead and is merged into every matching document.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use cameodb_storage::{OpKind, Source, Store, StoreError, WriteOp, WriteResult};
use serde_json::{Map, Value, json};
use tantivy::collector::DocSetCollector;

use super::docs::check_params;
use super::search::query_spec;
use super::{AppState, Params, apply_refresh, parse_object_body, refresh_param, run};
use crate::error::ApiError;
use crate::respond;
use cameodb_search::build_query;

/// Documents written per batch (one durable transaction each).
const BATCH: usize = 1000;

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Delete,
    Update,
}

/// What one index reported.
#[derive(Default)]
struct Tally {
    total: u64,
    done: u64,
    noops: u64,
    batches: u64,
    conflicts: u64,
    failures: Vec<Value>,
}

pub async fn delete_by_query(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, &index, &params, &body, Action::Delete).await
}

pub async fn update_by_query(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, &index, &params, &body, Action::Update).await
}

fn run_on_store(
    store: &Store,
    index: &str,
    body: &Map<String, Value>,
    params: &HashMap<String, String>,
    action: Action,
    proceed: bool,
) -> Result<Tally, ApiError> {
    let query = build_query(store, &query_spec(params, body))?;
    let searcher = store.searcher();
    let addresses: Vec<_> = searcher
        .search(query.as_ref(), &DocSetCollector)?
        .into_iter()
        .collect();
    let keys = cameodb_storage::hit_keys(&searcher, &addresses)?;
    let patch = match body.get("doc") {
        Some(doc) => Some(Source::from_value(doc.clone())?),
        None => None,
    };
    let script = body
        .get("script")
        .map(cameodb_search::script::parse)
        .transpose()?;
    let mut tally = Tally {
        total: keys.len() as u64,
        ..Tally::default()
    };
    let refresh = refresh_param(params)?;
    let mut max_seq = None;
    for chunk in keys.chunks(BATCH) {
        let current = store.get_many(chunk)?;
        let mut ops = Vec::new();
        for (key, doc) in chunk.iter().zip(current) {
            // Deleted since the snapshot: nothing left to do for it.
            let Some(doc) = doc else {
                tally.total -= 1;
                continue;
            };
            let kind = match (action, &patch) {
                (Action::Delete, _) => OpKind::Delete,
                (Action::Update, _) if script.is_some() => {
                    let Value::Object(mut source) = doc.source_json()? else {
                        continue;
                    };
                    let original = source.clone();
                    if let Some(script) = &script {
                        script.apply(&mut source)?;
                    }
                    if source == original {
                        tally.noops += 1;
                        continue;
                    }
                    OpKind::Index {
                        source: Source::from_value(Value::Object(source))?,
                        create: false,
                    }
                }
                (Action::Update, Some(patch)) => OpKind::Update {
                    doc: patch.clone(),
                    upsert: None,
                    doc_as_upsert: false,
                },
                (Action::Update, None) => OpKind::Index {
                    source: Source::from_slice(&doc.source)?,
                    create: false,
                },
            };
            ops.push(WriteOp {
                key: key.clone(),
                kind,
                if_seq_no: Some(doc.seq_no),
            });
        }
        tally.batches += 1;
        let ids: Vec<String> = ops.iter().map(|op| op.key.id.to_string()).collect();
        for (id, result) in ids.iter().zip(store.write_batch(ops)) {
            match result {
                Ok(outcome) if outcome.result == WriteResult::Noop => tally.noops += 1,
                Ok(outcome) => {
                    tally.done += 1;
                    max_seq = max_seq.max(outcome.seq_no);
                }
                Err(StoreError::VersionConflict { .. }) => {
                    tally.conflicts += 1;
                    if !proceed {
                        tally.failures.push(json!({"index": index, "id": id, "status": 409,
                            "cause": {"type": "version_conflict_engine_exception", "reason": format!("[{id}]: version conflict")}}));
                    }
                }
                Err(err) => {
                    let err = ApiError::from(err);
                    tally.failures.push(json!({"index": index, "id": id, "status": err.status.as_u16(), "cause": err.cause()}));
                }
            }
        }
        if !tally.failures.is_empty() {
            break;
        }
    }
    apply_refresh(store, refresh, max_seq)?;
    Ok(tally)
}

async fn handle(
    state: &AppState,
    index: &str,
    params: &Params,
    body: &Bytes,
    action: Action,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    check_params(
        params,
        &[
            "q",
            "df",
            "default_operator",
            "refresh",
            "conflicts",
            "wait_for_completion",
            "scroll_size",
            "slices",
        ],
    )?;
    if params
        .get("wait_for_completion")
        .is_some_and(|v| v == "false")
    {
        return Err(ApiError::illegal_argument(
            "wait_for_completion=false (tasks) is not supported",
        ));
    }
    let proceed = match params.get("conflicts").map(String::as_str) {
        None | Some("abort") => false,
        Some("proceed") => true,
        Some(other) => {
            return Err(ApiError::illegal_argument(format!(
                "conflicts may only be \"proceed\" or \"abort\" but was [{other}]"
            )));
        }
    };
    let body = parse_object_body(body)?.unwrap_or_default();
    let allowed: &[&str] = if action == Action::Update {
        &["query", "doc", "script", "conflicts"]
    } else {
        &["query", "conflicts"]
    };
    if body.contains_key("script") && body.contains_key("doc") {
        return Err(ApiError::illegal_argument(
            "use either [script] or [doc], not both",
        ));
    }
    if let Some(unknown) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "parsing_exception",
            format!("Unknown key for a START_OBJECT in [{unknown}]."),
        ));
    }
    let proceed = proceed || body.get("conflicts").and_then(Value::as_str) == Some("proceed");
    let mut total = Tally::default();
    let entries = state.catalog.resolve(index).await?;
    if let Some(ctx) = &state.cluster {
        let view = ctx.view().await;
        if !view.is_single() {
            // Every node runs the request over the documents it holds; the counts add up.
            let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
            let suffix = if action == Action::Delete {
                "_delete_by_query"
            } else {
                "_update_by_query"
            };
            let uri = format!(
                "/{}/{suffix}{}",
                names.join(","),
                crate::cluster::encode_query(&params.0)
            );
            let answers = crate::cluster::fan_out_json(
                ctx,
                &view,
                "POST",
                &uri,
                &Value::Object(body.clone()),
            )
            .await;
            for (member, answer) in answers {
                match answer {
                    Ok((_, part)) if part.get("total").is_some() => {
                        let n = |k: &str| part[k].as_u64().unwrap_or(0);
                        total.total += n("total");
                        total.done += n("deleted").max(n("updated"));
                        total.noops += n("noops");
                        total.batches += n("batches");
                        total.conflicts += n("version_conflicts");
                        total.failures.extend(part["failures"].as_array().cloned().unwrap_or_default());
                    }
                    Ok((status, part)) if status.is_client_error() => {
                        return Err(ApiError::from_remote(status, &part, "request failed"));
                    }
                    Ok((status, part)) => total.failures.push(json!({"node": member.id, "status": status.as_u16(), "cause": part["error"]})),
                    Err(err) => total.failures.push(json!({"node": member.id, "status": err.status.as_u16(), "cause": err.cause()})),
                }
            }
            return Ok(finish(started, total, action));
        }
    }
    for entry in entries {
        let (body, params, name) = (body.clone(), params.0.clone(), entry.name.clone());
        let tally = run(&entry.shard, move |store| {
            run_on_store(store, &name, &body, &params, action, proceed)
        })
        .await?;
        total.total += tally.total;
        total.done += tally.done;
        total.noops += tally.noops;
        total.batches += tally.batches;
        total.conflicts += tally.conflicts;
        total.failures.extend(tally.failures);
    }
    Ok(finish(started, total, action))
}

/// The by-query answer for `total`.
fn finish(started: Instant, total: Tally, action: Action) -> Response {
    let done_key = if action == Action::Delete {
        "deleted"
    } else {
        "updated"
    };
    let status = if total.failures.iter().any(|f| f["status"] == 409) {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let mut response = json!({
        "took": started.elapsed().as_millis() as u64, "timed_out": false, "total": total.total,
        "batches": total.batches, "version_conflicts": total.conflicts, "noops": total.noops,
        "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
        "throttled_until_millis": 0, "failures": total.failures,
    });
    response[done_key] = json!(total.done);
    if action == Action::Update {
        response["deleted"] = json!(0);
    }
    respond::json(status, response)
}

/// `_rethrottle` of a by-query task. By-query requests run to completion within their HTTP
/// request here, so no task ever runs in the background: an id naming another node gets
/// Elasticsearch's "no such node" failure, one naming this node "task not found".
pub async fn rethrottle(
    State(state): State<AppState>,
    Path(task): Path<String>,
) -> Result<Response, ApiError> {
    let (node, number) = task
        .split_once(':')
        .ok_or_else(|| ApiError::illegal_argument(format!("malformed task id {task}")))?;
    if node == state.node_name || node == state.node_id {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "resource_not_found_exception",
            format!("task [{node}:{number}] is missing"),
        ));
    }
    Ok(respond::ok(json!({
        "nodes": {},
        "node_failures": [{
            "type": "failed_node_exception",
            "reason": format!("Failed node [{node}]"),
            "node_id": node,
            "caused_by": {"type": "no_such_node_exception", "reason": format!("No such node [{node}]"), "node_id": node}
        }]
    })))
}
