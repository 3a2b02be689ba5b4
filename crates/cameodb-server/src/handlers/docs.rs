//! Single-document APIs: index, create, get, exists, `_source`, delete, update.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cameodb_storage::{OpKind, Source, WriteOp, WriteOutcome, WriteResult};
use serde_json::{Value, json};

use super::{
    AppState, Params, apply_refresh, doc_key, number, parse_object_body, refresh_param, run,
};
use crate::error::ApiError;
use crate::respond;
use cameodb_search::source_filter::SourceFilter;

pub use crate::request::params::{check_params, reject_require_alias};
/// Elasticsearch's primary term; a single-copy shard never changes it.
pub use cameodb_storage::PRIMARY_TERM;

/// Reads `if_seq_no` / `if_primary_term`.
pub fn condition(params: &HashMap<String, String>) -> Result<Option<u64>, ApiError> {
    let seq: Option<u64> = number(params, "if_seq_no")?;
    let term: Option<u64> = number(params, "if_primary_term")?;
    match (seq, term) {
        (None, None) => Ok(None),
        (Some(seq), Some(PRIMARY_TERM)) => Ok(Some(seq)),
        // Any other term can never match: the write must conflict.
        (Some(_), Some(_)) => Ok(Some(u64::MAX)),
        _ => Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: ifSeqNo is set, but primary term is [0];",
        )),
    }
}

/// What Elasticsearch answers for a write, serialized straight to bytes where many are
/// rendered at once (a bulk of 200k items as `Value`s held about 2 KB each).
#[derive(serde::Serialize)]
pub struct WriteAnswer<'a> {
    _index: &'a str,
    _id: &'a str,
    _version: u64,
    result: &'static str,
    _shards: ShardCounts,
    _seq_no: u64,
    _primary_term: u64,
    /// `true` when the write refreshed the index (`refresh=true`), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    forced_refresh: Option<bool>,
    /// The item's HTTP status, inside bulk answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

/// The `_shards` object of a write.
#[derive(serde::Serialize)]
struct ShardCounts {
    total: u32,
    successful: u32,
    failed: u32,
}

impl<'a> WriteAnswer<'a> {
    /// The answer for `outcome` in `index`; `forced_refresh` when the write refreshed.
    pub fn new(index: &'a str, outcome: &'a WriteOutcome, forced_refresh: bool) -> WriteAnswer<'a> {
        let copies = u32::from(outcome.result != WriteResult::Noop);
        WriteAnswer {
            _index: index,
            _id: outcome.key.id.as_str(),
            _version: outcome.version.unwrap_or(1),
            result: outcome.result.as_str(),
            _shards: ShardCounts {
                total: copies,
                successful: copies,
                failed: 0,
            },
            _seq_no: outcome.seq_no.unwrap_or(0),
            _primary_term: PRIMARY_TERM,
            forced_refresh: forced_refresh.then_some(true),
            status: None,
        }
    }

    /// With the item status, as bulk answers carry it.
    pub fn with_status(mut self, status: StatusCode) -> WriteAnswer<'a> {
        self.status = Some(status.as_u16());
        self
    }
}

/// The answer Elasticsearch gives for a write.
fn outcome_response(
    index: &str,
    outcome: &WriteOutcome,
    forced_refresh: bool,
) -> Result<Response, ApiError> {
    respond::serialized(
        outcome_status(outcome),
        &WriteAnswer::new(index, outcome, forced_refresh),
    )
}

/// The HTTP status of a write outcome.
pub fn outcome_status(outcome: &WriteOutcome) -> StatusCode {
    match outcome.result {
        WriteResult::Created => StatusCode::CREATED,
        WriteResult::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

async fn write_one(
    state: &AppState,
    index: &str,
    op: WriteOp,
    params: &HashMap<String, String>,
    auto_create: bool,
) -> Result<Response, ApiError> {
    let refresh = refresh_param(params)?;
    let entry = if auto_create {
        state.catalog.get_or_create(index).await?
    } else {
        state.catalog.require(index).await?
    };
    let op = crate::cluster::metadata::register_new_fields(
        &state.catalog,
        state.cluster_ctx(),
        &entry,
        vec![op],
    )
    .await
    .pop()
    .ok_or_else(|| ApiError::internal("write lost before it ran"))?;
    let (outcome, forced) = run(&entry.shard, move |store| {
        let outcome = store.write(op)?;
        let forced = apply_refresh(store, refresh, outcome.seq_no)?;
        Ok((outcome, forced))
    })
    .await
    .map_err(|e| e.with_index(index))?;
    outcome_response(index, &outcome, forced)
}

const INDEX_PARAMS: &[&str] = &[
    "refresh",
    "routing",
    "op_type",
    "if_seq_no",
    "if_primary_term",
    "require_alias",
    "pipeline",
];

fn index_op(
    id: &str,
    params: &HashMap<String, String>,
    body: &Bytes,
    force_create: bool,
) -> Result<WriteOp, ApiError> {
    check_params(params, INDEX_PARAMS)?;
    reject_require_alias(params)?;
    if params.contains_key("pipeline") {
        return Err(ApiError::illegal_argument(
            "ingest pipelines are not supported",
        ));
    }
    let key = doc_key(id, params.get("routing").map(String::as_str))?;
    let source = Source::from_slice(body)?;
    let create = force_create
        || match params.get("op_type").map(String::as_str) {
            None | Some("index") => false,
            Some("create") => true,
            Some(other) => {
                return Err(ApiError::illegal_argument(format!(
                    "opType must be 'create' or 'index', found: [{other}]"
                )));
            }
        };
    Ok(WriteOp {
        key,
        kind: OpKind::Index { source, create },
        if_seq_no: condition(params)?,
    })
}

pub async fn index(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = index_op(&id, &params, &body, false)?;
    write_one(&state, &index, op, &params, true).await
}

pub async fn create(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = index_op(&id, &params, &body, true)?;
    write_one(&state, &index, op, &params, true).await
}

pub async fn index_auto_id(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = index_op(&crate::ids::generate_id(), &params, &body, true)?;
    write_one(&state, &index, op, &params, true).await
}

const GET_PARAMS: &[&str] = &[
    "routing",
    "_source",
    "_source_includes",
    "_source_excludes",
    "realtime",
    "refresh",
    "preference",
    "stored_fields",
];

async fn fetch(
    state: &AppState,
    index: &str,
    id: &str,
    params: &HashMap<String, String>,
) -> Result<Option<cameodb_storage::StoredDoc>, ApiError> {
    check_params(params, GET_PARAMS)?;
    let entry = state.catalog.require(index).await?;
    let key = doc_key(id, params.get("routing").map(String::as_str))?;
    let refresh = super::flag(params, "refresh")?.unwrap_or(false);
    run(&entry.shard, move |store| {
        if refresh {
            store.refresh()?;
        }
        Ok(store.get(&key)?)
    })
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let doc = fetch(&state, &index, &id, &params).await?;
    let Some(doc) = doc else {
        return Ok(respond::json(
            StatusCode::NOT_FOUND,
            json!({"_index": index, "_id": id, "found": false}),
        ));
    };
    let mut body = json!({
        "_index": index, "_id": id, "_version": doc.version, "_seq_no": doc.seq_no,
        "_primary_term": PRIMARY_TERM, "found": true,
    });
    if let Some(source) = SourceFilter::from_params(&params).apply(doc.source_json()?) {
        body["_source"] = source;
    }
    Ok(respond::ok(body))
}

pub async fn exists(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Response {
    match fetch(&state, &index, &id, &params).await {
        Ok(Some(_)) => StatusCode::OK.into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(err) => err.status.into_response(),
    }
}

pub async fn get_source(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    match fetch(&state, &index, &id, &params).await? {
        Some(doc) => Ok(respond::ok(
            SourceFilter::from_params(&params)
                .apply(doc.source_json()?)
                .unwrap_or(Value::Null),
        )),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "resource_not_found_exception",
            format!("Document not found [{index}]/[{id}]"),
        )
        .with_index(&index)),
    }
}

pub async fn exists_source(
    state: State<AppState>,
    path: Path<(String, String)>,
    params: Params,
) -> Response {
    exists(state, path, params).await
}

pub async fn delete(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    check_params(
        &params,
        &["refresh", "routing", "if_seq_no", "if_primary_term"],
    )?;
    let key = doc_key(&id, params.get("routing").map(String::as_str))?;
    let op = WriteOp {
        key,
        kind: OpKind::Delete,
        if_seq_no: condition(&params)?,
    };
    write_one(&state, &index, op, &params, false).await
}

/// Builds the write for an `_update` body (shared with `_bulk`).
pub fn update_op(
    key: cameodb_storage::DocKey,
    body: &serde_json::Map<String, Value>,
    if_seq_no: Option<u64>,
) -> Result<WriteOp, ApiError> {
    for k in body.keys() {
        match k.as_str() {
            "doc" | "upsert" | "doc_as_upsert" | "detect_noop" | "_source" => {}
            "script" | "scripted_upsert" => {
                return Err(ApiError::illegal_argument(
                    "scripted updates are not supported; use [doc]",
                ));
            }
            other => {
                return Err(ApiError::bad_request(
                    "x_content_parse_exception",
                    format!("[UpdateRequest] unknown field [{other}]"),
                ));
            }
        }
    }
    let doc = body.get("doc").cloned().ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: script or doc is missing;",
        )
    })?;
    let doc = Source::from_value(doc)?;
    let upsert = body
        .get("upsert")
        .cloned()
        .map(Source::from_value)
        .transpose()?;
    let doc_as_upsert = body
        .get("doc_as_upsert")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(WriteOp {
        key,
        kind: OpKind::Update {
            doc,
            upsert,
            doc_as_upsert,
        },
        if_seq_no,
    })
}

pub async fn update(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_params(
        &params,
        &[
            "refresh",
            "routing",
            "if_seq_no",
            "if_primary_term",
            "retry_on_conflict",
        ],
    )?;
    let body = parse_object_body(&body)?.unwrap_or_default();
    let key = doc_key(&id, params.get("routing").map(String::as_str))?;
    if let Some(script) = body.get("script") {
        return scripted_update(&state, &index, key, script, &body, &params).await;
    }
    let op = update_op(key, &body, condition(&params)?)?;
    write_one(&state, &index, op, &params, true).await
}

/// `_update` with a script (the subset of `script.rs`): read, run, write conditionally on the
/// sequence number read, and retry `retry_on_conflict` times if another write got in between.
async fn scripted_update(
    state: &AppState,
    index: &str,
    key: cameodb_storage::DocKey,
    script: &Value,
    body: &serde_json::Map<String, Value>,
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !["script", "upsert", "scripted_upsert"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "x_content_parse_exception",
            format!("[UpdateRequest] [{unknown}] cannot be combined with [script]"),
        ));
    }
    let script = cameodb_search::script::parse(script)?;
    let upsert = body
        .get("upsert")
        .cloned()
        .map(Source::from_value)
        .transpose()?;
    let scripted_upsert = body
        .get("scripted_upsert")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let retries: usize = number(params, "retry_on_conflict")?.unwrap_or(0);
    let condition = condition(params)?;
    let refresh = refresh_param(params)?;
    let entry = state.catalog.get_or_create(index).await?;
    let (outcome, forced) = run(&entry.shard, move |store| {
        for attempt in 0..=retries {
            let current = store.get(&key)?;
            let op = match (current, &upsert) {
                (None, None) => {
                    return Err(ApiError::from(
                        cameodb_storage::StoreError::DocumentMissing {
                            id: key.id.to_string(),
                        },
                    ));
                }
                (None, Some(upsert)) => {
                    let mut source = upsert.as_map().clone();
                    if scripted_upsert {
                        script.apply(&mut source)?;
                    }
                    WriteOp {
                        key: key.clone(),
                        kind: OpKind::Index {
                            source: Source::from_value(Value::Object(source))?,
                            create: true,
                        },
                        if_seq_no: None,
                    }
                }
                (Some(doc), _) => {
                    if condition.is_some_and(|seq| seq != doc.seq_no) {
                        return Err(cameodb_storage::StoreError::VersionConflict {
                            id: key.id.to_string(),
                            expected: condition.unwrap_or_default(),
                            current: Some(doc.seq_no),
                        }
                        .into());
                    }
                    let Value::Object(mut source) = doc.source_json()? else {
                        return Err(ApiError::internal("stored document is not an object"));
                    };
                    let original = source.clone();
                    script.apply(&mut source)?;
                    if source == original {
                        let noop = WriteOutcome {
                            key: key.clone(),
                            result: WriteResult::Noop,
                            seq_no: Some(doc.seq_no),
                            version: Some(doc.version),
                        };
                        return Ok((noop, false));
                    }
                    WriteOp {
                        key: key.clone(),
                        kind: OpKind::Index {
                            source: Source::from_value(Value::Object(source))?,
                            create: false,
                        },
                        if_seq_no: Some(doc.seq_no),
                    }
                }
            };
            match store.write(op) {
                Err(
                    cameodb_storage::StoreError::VersionConflict { .. }
                    | cameodb_storage::StoreError::DocumentExists { .. },
                ) if attempt < retries => continue,
                Err(err) => return Err(err.into()),
                Ok(outcome) => {
                    let forced = apply_refresh(store, refresh, outcome.seq_no)?;
                    return Ok((outcome, forced));
                }
            }
        }
        Err(ApiError::internal("retries exhausted"))
    })
    .await
    .map_err(|e| e.with_index(index))?;
    outcome_response(index, &outcome, forced)
}
