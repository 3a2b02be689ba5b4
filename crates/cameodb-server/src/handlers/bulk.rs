//! `_bulk`: NDJSON of action lines and sources. Every item succeeds or fails on its own; the
//! items of one index go to its store as one batch (one durable transaction).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cameodb_storage::{OpKind, Source, WriteOp};
use serde_json::{Map, Value, json};

use super::docs::{WriteAnswer, outcome_status, update_op};
use super::{AppState, Params, Refresh, apply_refresh, doc_key, run};
use crate::error::ApiError;
use crate::ids::generate_id;
use crate::request::bulk::{Action, Line, check_bulk_params, parse_lines};
use crate::respond;

/// `/_bulk` and `/{index}/_bulk` (the path's index is the default for lines that name none).
pub async fn bulk(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, index.map(|Path(index)| index), &params, &body).await
}

/// One parsed item: where it goes and what it does, or why it failed to parse.
pub(crate) struct Item {
    /// What it does.
    action: Action,
    /// Target index.
    index: String,
    /// Document id (generated for `index`/`create` without one).
    id: String,
    /// The write, or the item's error.
    op: Result<WriteOp, ApiError>,
}

/// The items of a bulk body: each line's write, or why that item fails.
pub(crate) fn parse_items(
    default_index: Option<&str>,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<Vec<Item>, ApiError> {
    let lines = parse_lines(default_index, body)?;
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        cameodb_memory::check()?;
        let id = match (&line.id, line.action) {
            (Some(id), _) => id.clone(),
            (None, Action::Index | Action::Create) => generate_id(),
            (None, _) => String::new(),
        };
        let op = build_op(&line, &id, params);
        items.push(Item {
            action: line.action,
            index: line.index.unwrap_or_default(),
            id,
            op,
        });
    }
    Ok(items)
}

fn build_op(
    line: &Line<'_>,
    id: &str,
    params: &HashMap<String, String>,
) -> Result<WriteOp, ApiError> {
    if line.index.is_none() {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: index is missing;",
        ));
    }
    if line.id.is_none() && matches!(line.action, Action::Update | Action::Delete) {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: id is missing;",
        ));
    }
    let meta = &line.meta;
    let key = doc_key(id, line.routing(params))?;
    let if_seq_no = match (
        meta.get("if_seq_no").and_then(Value::as_u64),
        meta.get("if_primary_term").and_then(Value::as_u64),
    ) {
        (Some(seq), Some(super::docs::PRIMARY_TERM)) => Some(seq),
        (Some(_), Some(_)) => Some(u64::MAX),
        _ => None,
    };
    let source = line.source.unwrap_or_default();
    Ok(match line.action {
        Action::Index | Action::Create => WriteOp {
            key,
            kind: OpKind::Index {
                source: Source::from_slice(source)?,
                create: line.action == Action::Create
                    || meta.get("op_type").and_then(Value::as_str) == Some("create"),
            },
            if_seq_no,
        },
        Action::Update => {
            let body: Map<String, Value> = serde_json::from_slice(source)
                .map_err(|e| ApiError::parse(format!("failed to parse update body: {e}")))?;
            update_op(key, &body, if_seq_no)?
        }
        Action::Delete => WriteOp {
            key,
            kind: OpKind::Delete,
            if_seq_no,
        },
    })
}

async fn handle(
    state: &AppState,
    default_index: Option<String>,
    params: &Params,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let refresh = check_bulk_params(params)?;
    // Parsing a large body is CPU work: off the async workers, at ingest priority.
    let (parse_params, parse_body) = (params.0.clone(), body.clone());
    let items = state
        .ingest
        .run(move || parse_items(default_index.as_deref(), &parse_params, &parse_body))
        .await??;
    let mut results: Vec<Option<Result<cameodb_storage::WriteOutcome, ApiError>>> = Vec::new();
    let mut by_index: BTreeMap<String, Vec<(usize, WriteOp)>> = BTreeMap::new();
    let mut heads = Vec::with_capacity(items.len());
    for (n, item) in items.into_iter().enumerate() {
        match item.op {
            Ok(op) => {
                by_index
                    .entry(item.index.clone())
                    .or_default()
                    .push((n, op));
                results.push(None);
            }
            Err(err) => results.push(Some(Err(err))),
        }
        heads.push(ItemHead {
            action: item.action,
            index: item.index,
            id: item.id,
        });
    }
    for (index, ops) in by_index {
        let entry = match state.catalog.get_or_create(&index).await {
            Ok(entry) => entry,
            Err(err) => {
                for (n, _) in ops {
                    results[n] = Some(Err(err.clone()));
                }
                continue;
            }
        };
        let (positions, ops): (Vec<usize>, Vec<WriteOp>) = ops.into_iter().unzip();
        let ops = crate::cluster::metadata::register_new_fields(
            &state.catalog,
            state.cluster_ctx(),
            &entry,
            ops,
        )
        .await;
        let outcomes = run(&entry.shard, move |store| {
            let outcomes = store.write_batch(ops);
            let max_seq = outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok().and_then(|o| o.seq_no))
                .max();
            apply_refresh(store, refresh, max_seq)?;
            Ok(outcomes)
        })
        .await;
        match outcomes {
            Ok(outcomes) => {
                for (n, outcome) in positions.into_iter().zip(outcomes) {
                    results[n] = Some(outcome.map_err(ApiError::from));
                }
            }
            Err(err) => {
                for n in positions {
                    results[n] = Some(Err(err.clone()));
                }
            }
        }
    }
    state
        .ingest
        .run(move || render(heads, results, refresh, started))
        .await?
}

/// What an item's answer names, kept while its write runs.
struct ItemHead {
    action: Action,
    index: String,
    id: String,
}

/// Writes the bulk answer straight into bytes: one small value per item, never the whole list
/// as JSON values.
fn render(
    heads: Vec<ItemHead>,
    results: Vec<Option<Result<cameodb_storage::WriteOutcome, ApiError>>>,
    refresh: Refresh,
    started: Instant,
) -> Result<Response, ApiError> {
    let errors = results.iter().any(|r| !matches!(r, Some(Ok(_))));
    let took = started.elapsed().as_millis();
    let mut out = Vec::with_capacity(heads.len().saturating_mul(180).saturating_add(64));
    out.extend_from_slice(format!(r#"{{"took":{took},"errors":{errors},"items":["#).as_bytes());
    let encoding =
        |e: serde_json::Error| ApiError::internal(format!("encoding the bulk answer: {e}"));
    for (n, (item, result)) in heads.into_iter().zip(results).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        serde_json::to_writer(&mut out, item.action.name()).map_err(encoding)?;
        out.push(b':');
        match result.unwrap_or_else(|| Err(ApiError::internal("bulk item was not executed"))) {
            Ok(outcome) => {
                let answer = WriteAnswer::new(&item.index, &outcome, refresh == Refresh::Now)
                    .with_status(outcome_status(&outcome));
                serde_json::to_writer(&mut out, &answer).map_err(encoding)?;
            }
            Err(err) => {
                let failed = json!({"_index": item.index, "_id": item.id, "status": err.status.as_u16(), "error": err.with_index(&item.index).cause()});
                serde_json::to_writer(&mut out, &failed).map_err(encoding)?;
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok((respond::json_headers(), out).into_response())
}
