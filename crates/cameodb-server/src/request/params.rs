//! Query-string parameters, checked as Elasticsearch checks them: unknown names refused, values
//! of the wrong shape refused with the parameter's name.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Rejects parameters this endpoint does not understand (as Elasticsearch does).
pub fn check_params(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    const ALWAYS: &[&str] = &[
        "pretty",
        "human",
        // Applied to every response by the compat layer.
        "filter_path",
        "error_trace",
        "timeout",
        "master_timeout",
        "wait_for_active_shards",
    ];
    if let Some(unknown) = params
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && !ALWAYS.contains(&k.as_str()))
    {
        return Err(ApiError::illegal_argument(format!(
            "request contains unrecognized parameter: [{unknown}]"
        )));
    }
    // Accepted everywhere, so checked here: a malformed time value is refused as
    // Elasticsearch refuses it, even where this node has no use for it.
    for name in ["timeout", "master_timeout"] {
        if let Some(value) = params.get(name) {
            crate::units::time_value(name, value)?;
        }
    }
    Ok(())
}

/// `require_alias=true` on `_bulk`: not checked per item, so refused rather than ignored.
pub fn reject_require_alias(params: &HashMap<String, String>) -> Result<(), ApiError> {
    if flag(params, "require_alias")? == Some(true) {
        return Err(ApiError::illegal_argument(
            "[require_alias] on _bulk is not supported: address the alias in each item",
        ));
    }
    Ok(())
}

/// The 404 for `require_alias=true` when `index` is not an alias.
pub fn not_an_alias(index: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "index_not_found_exception",
        format!("no such index [{index}] and [require_alias] request flag is [true] and [{index}] is not an alias"),
    )
    .with_index(index)
}

/// A boolean query parameter (`?x`, `?x=true`, `?x=false`).
pub fn flag(params: &HashMap<String, String>, name: &str) -> Result<Option<bool>, ApiError> {
    match params.get(name).map(String::as_str) {
        None => Ok(None),
        Some("" | "true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))),
    }
}

/// A numeric query parameter.
pub fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse::<T>().map_err(|_| {
                ApiError::illegal_argument(format!("Failed to parse [{name}] value [{v}]"))
            })
        })
        .transpose()
}

/// How a write waits for search visibility (`refresh` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refresh {
    /// Return as soon as durable.
    No,
    /// Refresh now, then return (`refresh=true`).
    Now,
    /// Wait for the next refresh (`refresh=wait_for`).
    WaitFor,
}

/// Reads the `refresh` parameter.
pub fn refresh_param(params: &HashMap<String, String>) -> Result<Refresh, ApiError> {
    match params.get("refresh").map(String::as_str) {
        None | Some("false") => Ok(Refresh::No),
        Some("" | "true") => Ok(Refresh::Now),
        Some("wait_for") => Ok(Refresh::WaitFor),
        Some(other) => Err(ApiError::illegal_argument(format!(
            "Unknown value for refresh: [{other}]."
        ))),
    }
}

/// `wait_for_active_shards`: how many copies must have a write before it is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActiveShards {
    /// Not given: a majority of the copies.
    #[default]
    Majority,
    /// `all`.
    All,
    /// A number.
    Count(usize),
}

impl ActiveShards {
    /// Parses the parameter (`all`, or a number from 1).
    pub fn parse(text: Option<&str>) -> Result<ActiveShards, ApiError> {
        match text {
            None => Ok(ActiveShards::Majority),
            Some("all") => Ok(ActiveShards::All),
            Some(n) => match n.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(ActiveShards::Count(n)),
                _ => Err(ApiError::illegal_argument(format!(
                    "failed to parse [wait_for_active_shards] value [{n}]: expected [all] or a number of at least 1"
                ))),
            },
        }
    }

    /// The copies required out of `rf`; asking for more copies than exist is a 400.
    pub fn required(self, rf: usize) -> Result<usize, ApiError> {
        match self {
            ActiveShards::Majority => Ok(rf / 2 + 1),
            ActiveShards::All => Ok(rf),
            ActiveShards::Count(n) if n <= rf => Ok(n),
            ActiveShards::Count(n) => Err(ApiError::illegal_argument(format!(
                "[wait_for_active_shards] is [{n}] but the index has only [{rf}] copies of each document"
            ))),
        }
    }
}
