//! Single-document APIs: index, create, get, exists, `_source`, delete, update. Each parses
//! its request into a typed write or read, has the coordinator run it on the document's owner,
//! and renders the outcome.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cameodb_storage::{PRIMARY_TERM, Source, WriteResult};
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::cluster::docs;
use crate::error::ApiError;
use crate::messages::docs::{WireSource, WriteBody};
use crate::messages::{DocRead, DocWrite, FoundDoc, Written};
use crate::request::docs::{UpdateBody, condition, external_param};
use crate::request::params::ActiveShards;
use crate::request::params::{check_params, flag, not_an_alias, number, refresh_param};
use crate::request::parse_object_body;
use crate::respond;
use cameodb_search::source_filter::SourceFilter;

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
    /// The answer for `outcome` in `index`.
    pub fn new(index: &'a str, outcome: &'a Written) -> WriteAnswer<'a> {
        let copies = u32::from(outcome.result != WriteResult::Noop);
        WriteAnswer {
            _index: index,
            _id: outcome.id.as_str(),
            _version: outcome.version.unwrap_or(1),
            result: outcome.result.as_str(),
            _shards: ShardCounts {
                total: copies,
                successful: copies,
                failed: 0,
            },
            _seq_no: outcome.seq_no.unwrap_or(0),
            _primary_term: PRIMARY_TERM,
            forced_refresh: outcome.forced_refresh.then_some(true),
            status: None,
        }
    }

    /// With the item status, as bulk answers carry it.
    pub fn with_status(mut self, status: StatusCode) -> WriteAnswer<'a> {
        self.status = Some(status.as_u16());
        self
    }
}

/// The HTTP status of a write outcome.
pub fn outcome_status(outcome: &Written) -> StatusCode {
    match outcome.result {
        WriteResult::Created => StatusCode::CREATED,
        WriteResult::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// `wait_for_active_shards`.
fn wait_param(params: &HashMap<String, String>) -> Result<ActiveShards, ApiError> {
    ActiveShards::parse(params.get("wait_for_active_shards").map(String::as_str))
}

/// Runs a write through the coordinator and renders its answer.
async fn write_one(state: &AppState, write: DocWrite) -> Result<Response, ApiError> {
    let index = write.index.clone();
    let outcome = docs::write(&state.cluster, write)
        .await
        .map_err(|e| e.with_index(&index))?;
    respond::serialized(
        outcome_status(&outcome),
        &WriteAnswer::new(&index, &outcome),
    )
}

const INDEX_PARAMS: &[&str] = &[
    "refresh",
    "routing",
    "op_type",
    "if_seq_no",
    "if_primary_term",
    "require_alias",
    "pipeline",
    "version",
    "version_type",
    "wait_for_active_shards",
];

/// The index a write addressed to `index` goes to; with `require_alias=true` it must be an
/// alias.
async fn write_target(
    state: &AppState,
    index: &str,
    params: &HashMap<String, String>,
) -> Result<String, ApiError> {
    if flag(params, "require_alias")? == Some(true)
        && !state.catalog.alias_map().await.contains_key(index)
    {
        return Err(not_an_alias(index));
    }
    state.catalog.write_index(index).await
}

/// Parses an index or create request.
fn index_write(
    index: String,
    id: String,
    params: &HashMap<String, String>,
    body: &Bytes,
    force_create: bool,
) -> Result<DocWrite, ApiError> {
    check_params(params, INDEX_PARAMS)?;
    if params.contains_key("pipeline") {
        return Err(ApiError::illegal_argument(
            "ingest pipelines are not supported",
        ));
    }
    let routing = params.get("routing").cloned();
    // Checked here, before anything is routed: an invalid id or routing fails on any node.
    crate::ids::doc_key(&id, routing.as_deref())?;
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
    Ok(DocWrite {
        index,
        id,
        routing,
        body: WriteBody::Index {
            source: WireSource(source),
            create,
        },
        if_seq_no: condition(params)?,
        external: {
            let external = external_param(params)?;
            if external.is_some() && create {
                return Err(ApiError::bad_request(
                    "action_request_validation_exception",
                    "Validation Failed: 1: create operations only support internal versioning. use index instead;",
                ));
            }
            external
        },
        refresh: refresh_param(params)?,
        auto_create: true,
        stamp: None,
        wait: wait_param(params)?,
    })
}

pub async fn index(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let index = write_target(&state, &index, &params).await?;
    let write = index_write(index, id, &params, &body, false)?;
    write_one(&state, write).await
}

pub async fn create(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let index = write_target(&state, &index, &params).await?;
    let write = index_write(index, id, &params, &body, true)?;
    write_one(&state, write).await
}

pub async fn index_auto_id(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let index = write_target(&state, &index, &params).await?;
    let write = index_write(index, crate::ids::generate_id(), &params, &body, true)?;
    write_one(&state, write).await
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
) -> Result<Option<FoundDoc>, ApiError> {
    check_params(params, GET_PARAMS)?;
    let index = state.catalog.write_index(index).await?;
    let read = DocRead {
        index,
        id: id.to_string(),
        routing: params.get("routing").cloned(),
        refresh: flag(params, "refresh")?.unwrap_or(false),
        local: params.get("preference").map(String::as_str) == Some("_local"),
    };
    crate::ids::doc_key(id, read.routing.as_deref())?;
    docs::read(&state.cluster, read).await
}

pub async fn get(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let index = state.catalog.write_index(&index).await?;
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
    let index = state.catalog.write_index(&index).await?;
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
    let index = state.catalog.write_index(&index).await?;
    check_params(
        &params,
        &[
            "refresh",
            "routing",
            "if_seq_no",
            "if_primary_term",
            "wait_for_active_shards",
            "version",
            "version_type",
        ],
    )?;
    let routing = params.get("routing").cloned();
    crate::ids::doc_key(&id, routing.as_deref())?;
    let write = DocWrite {
        index,
        id,
        routing,
        body: WriteBody::Delete,
        if_seq_no: condition(&params)?,
        external: external_param(&params)?,
        refresh: refresh_param(&params)?,
        auto_create: false,
        stamp: None,
        wait: wait_param(&params)?,
    };
    write_one(&state, write).await
}

pub async fn update(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let index = state.catalog.write_index(&index).await?;
    check_params(
        &params,
        &[
            "refresh",
            "routing",
            "if_seq_no",
            "if_primary_term",
            "retry_on_conflict",
            "wait_for_active_shards",
        ],
    )?;
    let body = parse_object_body(&body)?.unwrap_or_default();
    let routing = params.get("routing").cloned();
    crate::ids::doc_key(&id, routing.as_deref())?;
    let body = match body.get("script") {
        Some(script) => scripted(script, &body, &params)?,
        None => {
            let update = UpdateBody::parse(&body)?;
            WriteBody::Update {
                doc: WireSource(update.doc),
                upsert: update.upsert.map(WireSource),
                doc_as_upsert: update.doc_as_upsert,
            }
        }
    };
    let write = DocWrite {
        index,
        id,
        routing,
        body,
        if_seq_no: condition(&params)?,
        // The update API takes no external version (Elasticsearch refuses one too).
        external: None,
        refresh: refresh_param(&params)?,
        auto_create: true,
        stamp: None,
        wait: wait_param(&params)?,
    };
    write_one(&state, write).await
}

/// Checks an `_update` with a script (the subset of `script.rs`), which its owner runs as a
/// read, the script, and a write conditional on the sequence number read (retried
/// `retry_on_conflict` times if another write got in between).
fn scripted(
    script: &Value,
    body: &serde_json::Map<String, Value>,
    params: &HashMap<String, String>,
) -> Result<WriteBody, ApiError> {
    if let Some(unknown) = body
        .keys()
        .find(|k| !["script", "upsert", "scripted_upsert"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "x_content_parse_exception",
            format!("[UpdateRequest] [{unknown}] cannot be combined with [script]"),
        ));
    }
    // Parsed here so a bad script fails before anything is routed; the owner runs it.
    cameodb_search::script::parse(script)?;
    let upsert = body.get("upsert").cloned();
    if let Some(upsert) = &upsert {
        Source::from_value(upsert.clone())?;
    }
    Ok(WriteBody::Script {
        script: script.clone(),
        upsert,
        scripted_upsert: body
            .get("scripted_upsert")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        retries: number(params, "retry_on_conflict")?.unwrap_or(0),
    })
}
