//! A `_search` request parsed once into a [`SearchSpec`]: parameters and body checked (unknown
//! keys, types, limits) before any index is touched.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::params::{check_params, number};

use crate::error::ApiError;
use cameodb_search::highlight;
use cameodb_search::sorting;
use cameodb_search::source_filter::SourceFilter;
use cameodb_search::{QuerySpec, SearchSpec};

/// Elasticsearch's default `index.max_result_window`.
const MAX_RESULT_WINDOW: usize = 10_000;

const SEARCH_PARAMS: &[&str] = &[
    "scroll",
    "q",
    "df",
    "default_operator",
    "from",
    "size",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "rest_total_hits_as_int",
    "ignore_unavailable",
    "allow_no_indices",
    "expand_wildcards",
    "preference",
    "routing",
    "search_type",
    "typed_keys",
    "request_cache",
    "batched_reduce_size",
    "ccs_minimize_roundtrips",
    "timeout",
    "explain",
    "stored_fields",
];

/// The query of a request: `q=` (Lucene syntax) wins over a body `query`; neither is match_all.
pub fn query_spec(params: &HashMap<String, String>, body: &Map<String, Value>) -> QuerySpec {
    if let Some(q) = params.get("q") {
        let and = params
            .get("default_operator")
            .is_some_and(|op| op.eq_ignore_ascii_case("and"));
        return QuerySpec::Lucene {
            text: q.clone(),
            default_field: params.get("df").cloned(),
            and,
        };
    }
    body.get("query")
        .cloned()
        .map_or(QuerySpec::All, QuerySpec::Dsl)
}

pub fn parse_spec(
    params: &HashMap<String, String>,
    body: Option<Map<String, Value>>,
) -> Result<SearchSpec, ApiError> {
    check_params(params, SEARCH_PARAMS)?;
    let body = body.unwrap_or_default();
    const BODY_KEYS: &[&str] = &[
        "query",
        "from",
        "size",
        "sort",
        "_source",
        "track_total_hits",
        "search_after",
        "highlight",
        "fields",
        "docvalue_fields",
        "stored_fields",
        "timeout",
        "aggs",
        "aggregations",
        "version",
        "seq_no_primary_term",
        "post_filter",
        "explain",
        "collapse",
        "suggest",
        // Read by the handler (a point in time, not an index in the path).
        "pit",
    ];
    if let Some(unknown) = body.keys().find(|k| !BODY_KEYS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "parsing_exception",
            format!("Unknown key for a START_OBJECT in [{unknown}]."),
        ));
    }
    let query = query_spec(params, &body);
    let from = number::<usize>(params, "from")?
        .or(body.get("from").and_then(Value::as_u64).map(|v| v as usize))
        .unwrap_or(0);
    let size = number::<usize>(params, "size")?
        .or(body.get("size").and_then(Value::as_u64).map(|v| v as usize))
        .unwrap_or(10);
    for key in ["from", "size"] {
        if body.get(key).is_some_and(|v| !v.is_u64()) {
            return Err(ApiError::parse(format!(
                "[{key}] must be a non-negative integer"
            )));
        }
    }
    match from.checked_add(size) {
        Some(window) if window <= MAX_RESULT_WINDOW => {}
        window => {
            let shown = window.map_or_else(|| format!("{from} + {size}"), |w| w.to_string());
            return Err(ApiError::illegal_argument(format!(
                "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{shown}]. See the scroll api for a more efficient way to request large data sets."
            )));
        }
    }
    let sort = match (params.get("sort"), body.get("sort")) {
        (Some(s), _) => sorting::parse(&Value::Array(
            s.split(',').map(|k| Value::String(k.to_string())).collect(),
        ))?,
        (None, Some(v)) => sorting::parse(v)?,
        (None, None) => Vec::new(),
    };
    let source = SourceFilter::from_params(params).with_body(body.get("_source"))?;
    let rest_total_as_int = super::params::flag(params, "rest_total_hits_as_int")?.unwrap_or(false);
    let aggs = body
        .get("aggs")
        .or_else(|| body.get("aggregations"))
        .cloned();
    let version = body
        .get("version")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let seq_no = body
        .get("seq_no_primary_term")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let search_after = body.get("search_after").cloned();
    let suggest = body.get("suggest").cloned();
    if let Some(request) = &suggest {
        cameodb_search::suggest::check(request)?;
    }
    let collapse = body
        .get("collapse")
        .map(cameodb_search::collapse::parse)
        .transpose()?;
    if collapse.is_some() {
        if params.contains_key("scroll") {
            return Err(ApiError::bad_request(
                "illegal_argument_exception",
                "cannot use `collapse` in a scroll context",
            ));
        }
        if search_after.is_some() {
            return Err(ApiError::bad_request(
                "illegal_argument_exception",
                "[search_after] with [collapse] is not supported",
            ));
        }
    }
    if search_after.is_some() && from > 0 {
        return Err(ApiError::bad_request(
            "illegal_argument_exception",
            "[from] parameter must be set to 0 when [search_after] is used",
        ));
    }
    let track_total =
        match (params.get("track_total_hits"), body.get("track_total_hits")) {
            (Some(v), _) if v == "false" => None,
            (Some(v), _) if v == "true" => Some(usize::MAX),
            (Some(v), _) => Some(v.parse::<usize>().map_err(|_| {
                ApiError::illegal_argument(format!("invalid track_total_hits [{v}]"))
            })?),
            (None, Some(Value::Bool(false))) => None,
            (None, Some(Value::Bool(true))) => Some(usize::MAX),
            (None, Some(Value::Number(n))) => Some(n.as_u64().ok_or_else(|| {
                ApiError::parse("[track_total_hits] must be a boolean or a non-negative integer")
            })? as usize),
            (None, Some(_)) => {
                return Err(ApiError::parse(
                    "[track_total_hits] must be a boolean or an integer",
                ));
            }
            (None, None) => Some(10_000),
        };
    let highlight = body.get("highlight").map(highlight::parse).transpose()?;
    let typed_keys = super::params::flag(params, "typed_keys")?.unwrap_or(false);
    let mut fields = Vec::new();
    for key in ["fields", "docvalue_fields"] {
        match body.get(key) {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(path) => fields.push(path.clone()),
                        Value::Object(spec) => match spec.get("field").and_then(Value::as_str) {
                            Some(path) => fields.push(path.to_string()),
                            None => {
                                return Err(ApiError::parse(format!(
                                    "[{key}] entries need a [field]"
                                )));
                            }
                        },
                        _ => {
                            return Err(ApiError::parse(format!(
                                "[{key}] entries must be strings or objects"
                            )));
                        }
                    }
                }
            }
            Some(_) => return Err(ApiError::parse(format!("[{key}] must be an array"))),
        }
    }
    // `stored_fields`: named stored fields come back under `fields`, and `_source` only
    // when asked for explicitly (as in Elasticsearch); `_none_` returns neither.
    let stored_fields: Vec<String> = match (body.get("stored_fields"), params.get("stored_fields"))
    {
        (Some(value), _) => super::string_list("stored_fields", value)?,
        (None, Some(listed)) => listed.split(',').map(str::to_string).collect(),
        (None, None) => Vec::new(),
    };
    let explicit_source = body.contains_key("_source")
        || params.contains_key("_source")
        || params.contains_key("_source_includes")
        || params.contains_key("_source_excludes");
    let none = stored_fields.iter().any(|f| f == "_none_");
    let source = if (none || !stored_fields.is_empty()) && !explicit_source {
        source.with_body(Some(&Value::Bool(false)))?
    } else {
        source
    };
    let stored_fields = if none { Vec::new() } else { stored_fields };
    let timeout = match params
        .get("timeout")
        .map(String::as_str)
        .or_else(|| body.get("timeout").and_then(Value::as_str))
    {
        Some(text) => crate::units::time_value("timeout", text)?,
        None => None,
    };
    Ok(SearchSpec {
        shard: 0,
        timeout,
        query,
        from,
        size,
        sort,
        search_after,
        track_total,
        source,
        rest_total_as_int,
        typed_keys,
        aggs,
        version,
        seq_no,
        highlight,
        fields,
        stored_fields,
        collapse,
        suggest,
        post_filter: body.get("post_filter").cloned(),
        explain: body
            .get("explain")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || super::params::flag(params, "explain")?.unwrap_or(false),
    })
}
