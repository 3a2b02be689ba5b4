//! `_reindex`: what to copy from where to where, checked once.

use std::collections::HashMap;

use cameodb_search::SearchSpec;
use serde_json::{Map, Value, json};

use super::params::{check_params, flag};
use super::search::parse_spec;
use crate::error::ApiError;

/// Most documents one page of the copy reads and writes (Elasticsearch's `source.size`
/// default is 1000).
pub const DEFAULT_BATCH: u64 = 1000;
/// The largest `source.size`: one page's documents are held in memory at once.
pub const MAX_BATCH: u64 = 10_000;

/// A parsed `_reindex` request.
#[derive(Debug)]
pub struct ReindexRequest {
    /// The source index expression.
    pub source: String,
    /// One page of the source: its query, size, `_source` filter and sort.
    pub spec: SearchSpec,
    /// The destination index (or alias with a write index).
    pub dest: String,
    /// `dest.op_type: create`: existing documents are conflicts, not overwritten.
    pub create: bool,
    /// `conflicts: proceed`: count conflicts and go on instead of stopping.
    pub proceed: bool,
    /// `max_docs`: copy at most this many.
    pub max_docs: Option<u64>,
}

impl ReindexRequest {
    pub fn parse(
        params: &HashMap<String, String>,
        body: Map<String, Value>,
    ) -> Result<ReindexRequest, ApiError> {
        check_params(
            params,
            &[
                "refresh",
                "wait_for_completion",
                "requests_per_second",
                "slices",
                "scroll",
                "max_docs",
                "require_alias",
            ],
        )?;
        if flag(params, "wait_for_completion")? == Some(false) {
            return Err(ApiError::illegal_argument(
                "wait_for_completion=false (tasks) is not supported: _reindex answers when the copy is done",
            ));
        }
        let mut proceed = false;
        let mut max_docs = params.get("max_docs").and_then(|v| v.parse::<u64>().ok());
        let mut source = None;
        let mut dest = None;
        for (key, value) in &body {
            match key.as_str() {
                "source" => source = Some(value),
                "dest" => dest = Some(value),
                "conflicts" => match value.as_str() {
                    Some("proceed") => proceed = true,
                    Some("abort") => {}
                    _ => {
                        return Err(ApiError::illegal_argument(format!(
                            "conflicts may only be \"proceed\" or \"abort\" but was [{value}]"
                        )));
                    }
                },
                "max_docs" | "size" => {
                    max_docs = Some(value.as_u64().ok_or_else(|| {
                        ApiError::parse(format!("[{key}] must be a non-negative integer"))
                    })?);
                }
                "script" => {
                    return Err(ApiError::illegal_argument(
                        "[script] in _reindex is not supported: copy, then _update_by_query",
                    ));
                }
                other => {
                    return Err(ApiError::parse(format!(
                        "[reindex] unknown field [{other}]"
                    )));
                }
            }
        }
        let source = source
            .and_then(Value::as_object)
            .ok_or_else(|| validation("source is missing"))?;
        let dest = dest
            .and_then(Value::as_object)
            .ok_or_else(|| validation("destination index is missing"))?;
        let mut page = Map::new();
        let mut batch = DEFAULT_BATCH;
        let mut indices = None;
        for (key, value) in source {
            match key.as_str() {
                "index" => indices = Some(super::string_list("source.index", value)?.join(",")),
                "query" | "_source" | "sort" => {
                    page.insert(key.clone(), value.clone());
                }
                "size" => {
                    batch = value
                        .as_u64()
                        .filter(|n| (1..=MAX_BATCH).contains(n))
                        .ok_or_else(|| {
                            ApiError::illegal_argument(format!(
                                "[source.size] must be between 1 and {MAX_BATCH}"
                            ))
                        })?;
                }
                "slice" => {}
                "remote" => {
                    return Err(ApiError::illegal_argument(
                        "reindex from a remote cluster is not supported",
                    ));
                }
                other => {
                    return Err(ApiError::parse(format!("[source] unknown field [{other}]")));
                }
            }
        }
        let indices = indices.ok_or_else(|| validation("source index is missing"))?;
        let mut create = false;
        let mut dest_index = None;
        for (key, value) in dest {
            match key.as_str() {
                "index" => dest_index = value.as_str().map(str::to_string),
                "op_type" => match value.as_str() {
                    Some("create") => create = true,
                    Some("index") => {}
                    _ => {
                        return Err(ApiError::illegal_argument(format!(
                            "opType must be 'create' or 'index', found: [{value}]"
                        )));
                    }
                },
                "version_type" if value.as_str() == Some("internal") => {}
                "pipeline" | "routing" | "version_type" => {
                    return Err(ApiError::illegal_argument(format!(
                        "[dest.{key}] in _reindex is not supported"
                    )));
                }
                other => {
                    return Err(ApiError::parse(format!("[dest] unknown field [{other}]")));
                }
            }
        }
        let dest = dest_index.ok_or_else(|| validation("index must be specified"))?;
        page.insert("size".into(), json!(batch));
        let spec = parse_spec(&HashMap::new(), Some(page))?;
        Ok(ReindexRequest {
            source: indices,
            spec,
            dest,
            create,
            proceed,
            max_docs,
        })
    }
}

fn validation(what: &str) -> ApiError {
    ApiError::bad_request(
        "action_request_validation_exception",
        format!("Validation Failed: 1: {what};"),
    )
}
