//! `_reindex` across the cluster: the source read page by page through a scroll (one live
//! copy of every shard, a snapshot of the source as it was when the copy began), each page
//! written to the destination as one bulk request through the ordinary replicated write path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::ClusterCtx;
use super::bulk::ItemOutcome;
use crate::error::ApiError;
use crate::request::params::Refresh;
use crate::request::reindex::ReindexRequest;
use cameodb_storage::WriteResult;

/// How long the source scroll is kept between pages.
const PAGE_KEEP_ALIVE: Duration = Duration::from_secs(300);

/// What the copy did, as Elasticsearch reports it.
#[derive(Default)]
struct Tally {
    total: u64,
    created: u64,
    updated: u64,
    conflicts: u64,
    batches: u64,
    failures: Vec<Value>,
}

impl Tally {
    fn count(&mut self, outcome: ItemOutcome, proceed: bool) {
        self.total += 1;
        match outcome.result {
            Ok(written) => match written.result {
                WriteResult::Created => self.created += 1,
                _ => self.updated += 1,
            },
            Err(err) if err.status == axum::http::StatusCode::CONFLICT => {
                self.conflicts += 1;
                if !proceed {
                    self.failures
                        .push(failure(&outcome.index, &outcome.id, &err));
                }
            }
            Err(err) => self
                .failures
                .push(failure(&outcome.index, &outcome.id, &err)),
        }
    }
}

fn failure(index: &str, id: &str, err: &ApiError) -> Value {
    json!({"index": index, "id": id, "cause": err.cause(), "status": err.status.as_u16()})
}

/// Copies what `request` names; answers Elasticsearch's `_reindex` response.
pub async fn reindex(
    ctx: &ClusterCtx,
    request: ReindexRequest,
    refresh: Refresh,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let entries = ctx.leaf.catalog.resolve(&request.source).await?;
    let dest = ctx.leaf.catalog.write_index(&request.dest).await?;
    if entries.iter().any(|e| e.name == dest) {
        return Err(ApiError::illegal_argument(format!(
            "reindex cannot write into an index its reading from [{dest}]"
        )));
    }
    let view = ctx.view().await;
    let params = HashMap::new();
    let mut page = super::scatter::search(
        ctx,
        &view,
        &entries,
        &params,
        &request.spec,
        Some(PAGE_KEEP_ALIVE),
    )
    .await?;
    let scroll_id = page["_scroll_id"].as_str().map(str::to_string);
    let mut tally = Tally::default();
    let mut remaining = request.max_docs.unwrap_or(u64::MAX);
    let action = if request.create { "create" } else { "index" };
    loop {
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() || remaining == 0 {
            break;
        }
        let mut body = Vec::new();
        for hit in hits
            .iter()
            .take(usize::try_from(remaining).unwrap_or(usize::MAX))
        {
            let header = json!({action: {"_index": dest, "_id": hit["_id"]}});
            body.extend_from_slice(header.to_string().as_bytes());
            body.push(b'\n');
            body.extend_from_slice(hit["_source"].to_string().as_bytes());
            body.push(b'\n');
        }
        let written = super::bulk::bulk(
            ctx,
            Some(dest.clone()),
            HashMap::new(),
            Bytes::from(body),
            Refresh::No,
        )
        .await?;
        remaining = remaining.saturating_sub(written.len() as u64);
        tally.batches += 1;
        for outcome in written {
            tally.count(outcome, request.proceed);
        }
        if !tally.failures.is_empty() {
            break;
        }
        let Some(id) = &scroll_id else { break };
        page = super::scatter::next_page(ctx, id, Some(PAGE_KEEP_ALIVE)).await?;
    }
    if let Some(id) = &scroll_id {
        super::scatter::clear_anywhere(ctx, std::slice::from_ref(id)).await;
    }
    if refresh != Refresh::No {
        super::admin::refresh(ctx, vec![dest.clone()]).await;
    }
    Ok(json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "total": tally.total,
        "updated": tally.updated,
        "created": tally.created,
        "deleted": 0,
        "batches": tally.batches,
        "version_conflicts": tally.conflicts,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": tally.failures,
    }))
}
