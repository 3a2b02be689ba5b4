//! Query-string parameters, checked as Elasticsearch checks them: unknown names refused, values
//! of the wrong shape refused with the parameter's name.

use std::collections::HashMap;

use crate::error::ApiError;

/// Rejects parameters this endpoint does not understand (as Elasticsearch does).
pub fn check_params(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    const ALWAYS: &[&str] = &[
        "pretty",
        "human",
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

/// `require_alias=true` demands the target be an alias; this node has none.
pub fn reject_require_alias(params: &HashMap<String, String>) -> Result<(), ApiError> {
    if flag(params, "require_alias")? == Some(true) {
        return Err(ApiError::bad_request(
            "index_not_found_exception",
            "[require_alias] request flag is [true] and the target is not an alias (aliases are not supported)",
        ));
    }
    Ok(())
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
