//! Fault injection for tests: a request job that panics (answered 500, store untouched), then
//! a failed index actor (restarted by its supervisor, store recovered from its WAL).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::AppState;
use crate::error::ApiError;
use crate::respond;

/// `POST /_cameo/fault/{index}/panic` — only when the node runs with fault injection enabled.
pub async fn panic_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    if !state.fault_injection {
        return Err(ApiError::bad_request(
            "illegal_argument_exception",
            "fault injection is disabled on this node",
        ));
    }
    let entry = state.catalog.require(&index).await?;
    let job_failed = entry
        .shard
        .run(|_store| -> () { panic!("injected fault") })
        .await
        .is_err();
    entry.shard.fail_actor().await;
    Ok(respond::json(
        StatusCode::OK,
        json!({"acknowledged": true, "panicked": job_failed}),
    ))
}

/// `POST /_cameo/fault/{index}/lose/{id}` — this node's copy of the document vanishes as a
/// disk fault would lose it (no tombstone, no change-feed entry), for tests of anti-entropy;
/// only when the node runs with fault injection enabled.
pub async fn lose_document(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !state.fault_injection {
        return Err(ApiError::bad_request(
            "illegal_argument_exception",
            "fault injection is disabled on this node",
        ));
    }
    let entry = state.catalog.require(&index).await?;
    let key = crate::ids::doc_key(&id, None)?;
    let result = crate::shard::run(&entry.shard, move |store| {
        let op = cameodb_storage::WriteOp {
            key,
            kind: cameodb_storage::OpKind::Lose,
            if_seq_no: None,
            stamp: None,
            external: None,
        };
        let outcome = store.write(op)?;
        store.refresh()?;
        Ok(outcome.result.as_str())
    })
    .await?;
    Ok(respond::json(
        StatusCode::OK,
        json!({"acknowledged": true, "result": result}),
    ))
}
