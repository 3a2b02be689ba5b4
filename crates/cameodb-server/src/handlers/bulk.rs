//! `_bulk`: NDJSON of action lines and sources. Every item succeeds or fails on its own; the
//! coordinator sends each owner its items, and the answer lists them in request order.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::docs::{WriteAnswer, outcome_status};
use super::{AppState, Params};
use crate::cluster::bulk::{self, ItemOutcome};
use crate::error::ApiError;
use crate::request::bulk::check_bulk_params;
use crate::respond;

/// `/_bulk` and `/{index}/_bulk` (the path's index is the default for lines that name none).
pub async fn bulk(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    handle(&state, index.map(|Path(index)| index), &params, body).await
}

async fn handle(
    state: &AppState,
    default_index: Option<String>,
    params: &Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let refresh = check_bulk_params(params)?;
    let outcomes = bulk::bulk(
        &state.cluster,
        default_index,
        params.0.clone(),
        body,
        refresh,
    )
    .await?;
    state
        .cluster
        .leaf
        .ingest
        .run(move || render(outcomes, started))
        .await?
}

/// Writes the bulk answer straight into bytes: one small value per item, never the whole list
/// as JSON values.
fn render(outcomes: Vec<ItemOutcome>, started: Instant) -> Result<Response, ApiError> {
    let errors = outcomes.iter().any(|o| o.result.is_err());
    let took = started.elapsed().as_millis();
    let mut out = Vec::with_capacity(outcomes.len().saturating_mul(180).saturating_add(64));
    out.extend_from_slice(format!(r#"{{"took":{took},"errors":{errors},"items":["#).as_bytes());
    let encoding =
        |e: serde_json::Error| ApiError::internal(format!("encoding the bulk answer: {e}"));
    for (n, item) in outcomes.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        serde_json::to_writer(&mut out, item.action.name()).map_err(encoding)?;
        out.push(b':');
        match item.result {
            Ok(outcome) => {
                let answer =
                    WriteAnswer::new(&item.index, &outcome).with_status(outcome_status(&outcome));
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
