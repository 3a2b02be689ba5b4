//! The parts of single-document requests shared with `_bulk`: the `_update` body and the
//! optimistic-concurrency parameters.

use std::collections::HashMap;

use cameodb_storage::{PRIMARY_TERM, Source};
use serde_json::{Map, Value};

use super::params::number;
use crate::error::ApiError;

/// A checked partial-update body.
pub struct UpdateBody {
    /// The partial document merged into the stored one.
    pub doc: Source,
    /// What to store when the document is missing.
    pub upsert: Option<Source>,
    /// Store `doc` itself when the document is missing.
    pub doc_as_upsert: bool,
}

impl UpdateBody {
    /// Checks an `_update` body without a script.
    pub fn parse(body: &Map<String, Value>) -> Result<UpdateBody, ApiError> {
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
        Ok(UpdateBody {
            doc: Source::from_value(doc)?,
            upsert: body
                .get("upsert")
                .cloned()
                .map(Source::from_value)
                .transpose()?,
            doc_as_upsert: body
                .get("doc_as_upsert")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// Reads `if_seq_no` / `if_primary_term` from the query string.
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

/// `version` with `version_type` (query parameters, or a bulk item's metadata): the client's
/// own version. Internal versions as conditions are refused, as in Elasticsearch since 7.
pub fn external_version(
    version: Option<&str>,
    version_type: Option<&str>,
) -> Result<Option<cameodb_storage::ExternalVersion>, ApiError> {
    let gte = match version_type {
        None | Some("internal") => {
            if version.is_some() {
                return Err(ApiError::bad_request(
                    "action_request_validation_exception",
                    "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;",
                ));
            }
            return Ok(None);
        }
        Some("external") => false,
        Some("external_gte") => true,
        Some(other) => {
            return Err(ApiError::illegal_argument(format!(
                "No version type match [{other}]"
            )));
        }
    };
    let version = version
        .ok_or_else(|| {
            ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: an external version is required with version_type external;",
            )
        })?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: illegal version value: it must be a non-negative integer below 2^63;",
            )
        })?;
    Ok(Some(cameodb_storage::ExternalVersion { version, gte }))
}

/// The external version of a request's query parameters.
pub fn external_param(
    params: &HashMap<String, String>,
) -> Result<Option<cameodb_storage::ExternalVersion>, ApiError> {
    let external = external_version(
        params.get("version").map(String::as_str),
        params.get("version_type").map(String::as_str),
    )?;
    if external.is_some() && params.contains_key("if_seq_no") {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: compare and write operations can not use versioning;",
        ));
    }
    Ok(external)
}
