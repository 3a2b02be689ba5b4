//! Aggregations: Elasticsearch's JSON request, checked against the mapping and pointed at the
//! fast columns that hold each field, then run by tantivy's aggregation module (whose request
//! and response JSON follow Elasticsearch's). Per-index intermediate results are merged before
//! the final result, so several indexes aggregate as one.

use cameodb_query::nested::{children_dsl, roots_dsl};
use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::{FieldType, Mapping};
use serde_json::{Map, Value};
use tantivy::Searcher;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::query::Query;

use crate::agg_shapes;
use crate::error::SearchError;

/// Aggregation types this node runs.
const SUPPORTED: &[&str] = &[
    "terms",
    "range",
    "histogram",
    "date_histogram",
    "avg",
    "min",
    "max",
    "sum",
    "stats",
    "value_count",
    "cardinality",
    "percentiles",
    "extended_stats",
    "composite",
    "multi_terms",
    "date_range",
];

/// `search.max_buckets`: most buckets one aggregation request may return (Elasticsearch's
/// default).
pub const MAX_BUCKETS: u32 = 65_536;

/// `search.max_aggregation_depth`: deepest nesting of sub-aggregations. Each level multiplies
/// the buckets collected; the memory breaker bounds what that costs, this bounds the recursion.
pub const MAX_AGGREGATION_DEPTH: usize = 16;

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

/// Rewrites an Elasticsearch `aggs` object for this index's columns and parses it.
pub fn prepare(aggs: &Value, mapping: &Mapping) -> Result<Aggregations, SearchError> {
    prepare_scoped(aggs, mapping, None)
}

/// True when `aggs` has a top-level `global` aggregation: then the aggregations are collected
/// over every document, and all but the global ones are scoped to the search's query (see
/// [`prepare_scoped`]).
pub fn has_global(aggs: &Value) -> bool {
    aggs.as_object().is_some_and(|level| {
        level
            .values()
            .any(|spec| spec.get("global").is_some() || spec.get("nested").is_some())
    }) || crate::significant::present(aggs)
}

/// Like [`prepare`], for a collection over every document when `scope` is the search's query
/// (as Elasticsearch DSL): each top-level aggregation but the `global` ones becomes a `filter`
/// of `scope` holding it, unwrapped again in [`finish`].
pub fn prepare_scoped(
    aggs: &Value,
    mapping: &Mapping,
    scope: Option<&Value>,
) -> Result<Aggregations, SearchError> {
    crate::pipeline::check(aggs)?;
    // Each significant_terms field's background is a hidden global aggregation.
    let augmented = crate::significant::with_backgrounds(aggs);
    let aggs = &augmented;
    let mut rewritten = rewrite_level(aggs, mapping, 1)?;
    if let (Some(scope), Some(level)) = (scope, rewritten.as_object_mut()) {
        let filter = crate::filter_agg::filter_body(&roots_dsl(scope.clone()), mapping)
            .map_err(|e| parsing(format!("[global] scope: {e}")))?;
        for (name, body) in std::mem::take(level) {
            let spec = aggs.get(&name);
            if let Some(nested) = spec.and_then(|spec| spec.get("nested")) {
                // The elements of the documents the query matches.
                let path = nested_path(&name, nested)?;
                let children = children_dsl(path, scope.clone());
                let mut body = body;
                body["filter"] = crate::filter_agg::filter_body(&children, mapping)
                    .map_err(|e| parsing(format!("[nested] aggregation [{name}]: {e}")))?;
                level.insert(name, body);
                continue;
            }
            if spec.and_then(|spec| spec.get("global")).is_some() {
                level.insert(name, body);
                continue;
            }
            let mut inner = Map::new();
            inner.insert(name.clone(), body);
            level.insert(
                format!("{name}{SCOPE_MARK}"),
                serde_json::json!({"filter": filter, "aggs": inner}),
            );
        }
    }
    serde_json::from_value(rewritten)
        .map_err(|e| parsing(format!("failed to parse aggregations: {e}")))
}

/// Marks the `filter` that scopes a top-level aggregation to the query beside a `global`.
const SCOPE_MARK: char = '\u{5}';

/// Puts scoped top-level aggregations back in place of the filters that held them.
fn unscope(value: &mut Value) {
    let Some(level) = value.as_object_mut() else {
        return;
    };
    let scoped: Vec<String> = level
        .keys()
        .filter(|k| k.ends_with(SCOPE_MARK))
        .cloned()
        .collect();
    for key in scoped {
        let name = key.trim_end_matches(SCOPE_MARK).to_string();
        if let Some(inner) = level
            .remove(&key)
            .and_then(|mut v| v.get_mut(&name).map(Value::take))
        {
            level.insert(name, inner);
        }
    }
}

fn rewrite_level(aggs: &Value, mapping: &Mapping, depth: usize) -> Result<Value, SearchError> {
    if depth > MAX_AGGREGATION_DEPTH {
        return Err(SearchError::illegal_argument(format!(
            "aggregations nest deeper than [{MAX_AGGREGATION_DEPTH}] levels, the maximum set by [search.max_aggregation_depth]"
        )));
    }
    let aggs = aggs
        .as_object()
        .ok_or_else(|| parsing("[aggs] must be an object".into()))?;
    let mut out = Map::new();
    for (name, spec) in aggs {
        let spec = spec
            .as_object()
            .ok_or_else(|| parsing(format!("aggregation [{name}] must be an object")))?;
        if crate::pipeline::kind_of(spec).is_some() {
            // Computed from the final result (see `pipeline`), never by tantivy.
            continue;
        }
        if let Some(filters) = spec.get("filters") {
            // `filters`: one `filter` aggregation per named query, regrouped in `finish`.
            for (key, query) in agg_shapes::filter_list(name, filters)? {
                let mut one = spec.clone();
                one.remove("filters");
                one.insert("filter".into(), query);
                let level = Value::Object(Map::from_iter([(String::new(), Value::Object(one))]));
                let Value::Object(mut built) = rewrite_level(&level, mapping, depth)? else {
                    continue;
                };
                if let Some(body) = built.remove("") {
                    out.insert(agg_shapes::filters_bucket_name(name, &key), body);
                }
            }
            continue;
        }
        // Geo bounds and centroids: metrics over coordinate sources, assembled in `finish`.
        if let Some((marked, body)) = crate::geo_metrics::plan(name, spec, mapping)? {
            out.insert(marked, body);
            continue;
        }
        // Best hits by a sort: tantivy's `top_hits` reading `_id`, shown from fetched sources.
        if let Some((marked, body)) = crate::top_hits::plan(name, spec, mapping)? {
            out.insert(marked, body);
            continue;
        }
        // significant_terms: a terms in a filter of every document, scored in `finish`.
        let significant = crate::significant::plan(name, spec, mapping)?;
        let (name, spec) = match &significant {
            Some((marked, rewritten)) => (marked, rewritten),
            None => (name, spec),
        };
        // Geo grids: terms over the cells of the points, keys spelled as cells in `finish`.
        let grid = crate::geo_grid::plan(name, spec, mapping)?;
        let (name, spec) = match &grid {
            Some((marked, rewritten)) => (marked, rewritten),
            None => (name, spec),
        };
        // Calendar months, quarters and years run as terms over period starts, reshaped in
        // `finish`.
        let calendar = crate::calendar_histogram::plan(name, spec, mapping)?;
        let (name, spec) = match &calendar {
            Some((marked, rewritten)) => (marked, rewritten),
            None => (name, spec),
        };
        let mut rewritten = Map::new();
        for (key, value) in spec {
            match key.as_str() {
                "aggs" | "aggregations" => {
                    rewritten.insert("aggs".into(), rewrite_level(value, mapping, depth + 1)?);
                }
                "meta" => {
                    rewritten.insert(key.clone(), value.clone());
                }
                "global" => {
                    if depth > 1 {
                        return Err(parsing(format!(
                            "Aggregator [{name}] of type [global] cannot be a sub-aggregator"
                        )));
                    }
                    if value.as_object().is_none_or(|o| !o.is_empty()) {
                        return Err(parsing(format!(
                            "[global] aggregation [{name}] takes no parameters"
                        )));
                    }
                    let body = crate::filter_agg::filter_body(
                        &roots_dsl(serde_json::json!({"match_all": {}})),
                        mapping,
                    )
                    .map_err(|e| parsing(format!("[global] aggregation [{name}]: {e}")))?;
                    rewritten.insert("filter".into(), body);
                }
                "nested" => {
                    if depth > 1 {
                        return Err(SearchError::bad_request(
                            "illegal_argument_exception",
                            format!(
                                "[nested] aggregation [{name}] is supported only at the top level of the request; under another aggregation it is not"
                            ),
                        ));
                    }
                    let path = nested_path(name, value)?;
                    if !mapping.is_nested_path(path) {
                        return Err(SearchError::bad_request(
                            "illegal_argument_exception",
                            format!("[nested] nested path [{path}] is not nested"),
                        ));
                    }
                    // Replaced by the elements of the matching documents in `prepare_scoped`.
                    let body = crate::filter_agg::filter_body(
                        &children_dsl(path, serde_json::json!({"match_all": {}})),
                        mapping,
                    )
                    .map_err(|e| parsing(format!("[nested] aggregation [{name}]: {e}")))?;
                    rewritten.insert("filter".into(), body);
                }
                "reverse_nested" => {
                    return Err(SearchError::bad_request(
                        "illegal_argument_exception",
                        format!(
                            "[reverse_nested] aggregation [{name}] is not supported by CameoDB"
                        ),
                    ));
                }
                "missing" => {
                    let field = value.get("field").and_then(Value::as_str).ok_or_else(|| {
                        parsing(format!("[missing] aggregation [{name}] requires [field]"))
                    })?;
                    let query =
                        serde_json::json!({"bool": {"must_not": {"exists": {"field": field}}}});
                    let body = crate::filter_agg::filter_body(&query, mapping)
                        .map_err(|e| parsing(format!("[missing] aggregation [{name}]: {e}")))?;
                    rewritten.insert("filter".into(), body);
                }
                "filter" => {
                    // Checked now, so a bad filter is a 400 before anything runs.
                    let fields = cameodb_schema::fields::build().1;
                    let tokenizers = tantivy::tokenizer::TokenizerManager::default();
                    cameodb_query::translate(
                        value,
                        &cameodb_query::QueryContext::new(mapping, &fields, &tokenizers),
                    )?;
                    let body = crate::filter_agg::filter_body(value, mapping)
                        .map_err(|e| parsing(format!("[filter] aggregation [{name}]: {e}")))?;
                    rewritten.insert(key.clone(), body);
                }
                key if key == crate::calendar_histogram::SOURCE_TERMS => {
                    // Over the calendar value source, passed as is.
                    rewritten.insert("terms".into(), value.clone());
                }
                "geo_distance" => {
                    // tantivy's `range` over the request's distance source.
                    let range = crate::geo_aggs::rewrite(name, value, mapping)?;
                    rewritten.insert("range".into(), range);
                }
                "date_range" => {
                    // tantivy's `range` on the date column, bounds as epoch milliseconds.
                    let body = crate::date_aggs::date_range_bounds(name, value, mapping)?;
                    rewritten.insert("range".into(), rewrite_body(name, "range", &body, mapping)?);
                }
                kind if SUPPORTED.contains(&kind) => {
                    rewritten.insert(key.clone(), rewrite_body(name, kind, value, mapping)?);
                }
                other => {
                    return Err(parsing(format!(
                        "unknown or unsupported aggregation type [{other}] in [{name}]"
                    )));
                }
            }
        }
        let name = if ip_terms_field(spec, mapping, name)? {
            agg_shapes::ip_terms_name(name)
        } else if spec.contains_key("date_range") {
            agg_shapes::date_range_name(name)
        } else if spec.contains_key("geo_distance") {
            crate::geo_aggs::marked(name)
        } else {
            name.clone()
        };
        out.insert(name, Value::Object(rewritten));
    }
    Ok(Value::Object(out))
}

/// True when `spec` is a `terms` aggregation on an `ip` field (its keys are decoded when the
/// result is rendered); the parameters that would need addresses encoded are refused.
fn ip_terms_field(
    spec: &Map<String, Value>,
    mapping: &Mapping,
    name: &str,
) -> Result<bool, SearchError> {
    let Some(terms) = spec.get("terms").and_then(Value::as_object) else {
        return Ok(false);
    };
    let field = terms
        .get("field")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !mapping
        .resolve(field)
        .is_some_and(|(_, f)| f.variant == Some(cameodb_schema::mapping::Variant::Ip))
    {
        return Ok(false);
    }
    if let Some(key) = ["include", "exclude", "missing"]
        .into_iter()
        .find(|k| terms.contains_key(*k))
    {
        return Err(parsing(format!(
            "[{key}] of terms aggregation [{name}] on ip field [{field}] is not supported"
        )));
    }
    Ok(true)
}

fn rewrite_body(
    name: &str,
    kind: &str,
    body: &Value,
    mapping: &Mapping,
) -> Result<Value, SearchError> {
    let mut body = body
        .as_object()
        .cloned()
        .ok_or_else(|| parsing(format!("[{kind}] aggregation [{name}] must be an object")))?;
    if body.contains_key("script") {
        return Err(parsing(format!(
            "scripts are not supported in aggregation [{name}]"
        )));
    }
    match kind {
        "composite" => return agg_shapes::composite(name, body, mapping, &rewrite_body),
        "multi_terms" => return agg_shapes::multi_terms(name, body, mapping, &rewrite_body),
        _ => {}
    }
    if let Some(key) = body
        .keys()
        .find(|k| !allowed_params(kind).contains(&k.as_str()))
    {
        // tantivy ignores what it does not know: refused here, since ignoring it would
        // change the answer.
        return Err(parsing(format!(
            "[{key}] of [{kind}] aggregation [{name}] is not supported"
        )));
    }
    let Some(field) = body.get("field").and_then(Value::as_str).map(String::from) else {
        return Err(parsing(format!(
            "[{kind}] aggregation [{name}] requires [field]"
        )));
    };
    // A field alias aggregates the field it stands for.
    let field = mapping
        .resolve(&field)
        .map_or(field.clone(), |(path, _)| path.to_string());
    if mapping
        .lookup(&field)
        .is_some_and(|f| f.variant == Some(cameodb_schema::mapping::Variant::GeoPoint))
    {
        return Err(SearchError::illegal_argument(format!(
            "Field [{field}] of type [geo_point] is not supported for aggregation [{kind}]"
        )));
    }
    match mapping.lookup(&field).map(|f| f.field_type) {
        Some(FieldType::Text) => {
            return Err(SearchError::illegal_argument(format!(
                "Fielddata is disabled on [{field}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead."
            )));
        }
        Some(FieldType::Object) => {
            return Err(SearchError::illegal_argument(format!(
                "cannot aggregate on object field [{field}]"
            )));
        }
        Some(FieldType::Keyword)
            if kind != "terms" && kind != "cardinality" && kind != "value_count" =>
        {
            return Err(SearchError::illegal_argument(format!(
                "Field [{field}] of type [keyword] is not supported for aggregation [{kind}]"
            )));
        }
        _ => {}
    }
    body.insert(
        "field".into(),
        Value::String(format!("{EXACT_FIELD}.{field}")),
    );
    if kind == "date_histogram" {
        if let Some(calendar) = body.remove("calendar_interval") {
            crate::date_aggs::calendar_to_fixed(name, &calendar, &mut body)?;
        }
        crate::date_aggs::date_histogram_options(
            name,
            &mut body,
            mapping.lookup(&field).and_then(|f| f.format.clone()),
        )?;
    }
    Ok(Value::Object(body))
}

/// The parameters each aggregation takes (those tantivy honours, plus a few that change
/// nothing here: execution hints, `precision_threshold`).
fn allowed_params(kind: &str) -> &'static [&'static str] {
    match kind {
        "terms" => &[
            "field",
            "size",
            "shard_size",
            "min_doc_count",
            "order",
            "missing",
            "include",
            "exclude",
            "show_term_doc_count_error",
            "execution_hint",
            "collect_mode",
        ],
        "range" => &["field", "ranges", "keyed"],
        "histogram" => &[
            "field",
            "interval",
            "offset",
            "min_doc_count",
            "extended_bounds",
            "hard_bounds",
            "keyed",
        ],
        "date_histogram" => &[
            "field",
            "fixed_interval",
            "calendar_interval",
            "offset",
            "min_doc_count",
            "extended_bounds",
            "hard_bounds",
            "keyed",
            "format",
            "time_zone",
        ],
        "percentiles" => &["field", "percents", "keyed", "missing"],
        "extended_stats" => &["field", "sigma", "missing"],
        "cardinality" => &["field", "missing", "precision_threshold"],
        _ => &["field", "missing"],
    }
}

/// The limits tantivy checks during an aggregation: its own estimate of the memory held (the
/// request's breaker limit) and `search.max_buckets`. The breaker, which measures instead of
/// estimating, is checked as well (see `crate::bounded::Bounded`).
fn limits() -> AggregationLimitsGuard {
    let memory = cameodb_memory::current().map(|account| account.limit());
    AggregationLimitsGuard::new(memory, Some(MAX_BUCKETS))
}

/// The computed value sources the Elasticsearch request `aggs` needs (`geo_distance`'s).
pub fn value_sources(
    aggs: &Value,
    mapping: &Mapping,
) -> Result<std::sync::Arc<tantivy::aggregation::ValueSourceRegistry>, SearchError> {
    let mut registry = tantivy::aggregation::ValueSourceRegistry::default();
    crate::geo_aggs::register(aggs, mapping, &mut registry)?;
    crate::geo_metrics::register(aggs, mapping, &mut registry)?;
    crate::geo_grid::register(aggs, mapping, &mut registry)?;
    crate::calendar_histogram::register(aggs, mapping, &mut registry)?;
    Ok(std::sync::Arc::new(registry))
}

/// Runs `aggs` over the documents matching `query`, giving the mergeable intermediate result.
pub fn collect(
    searcher: &Searcher,
    query: &dyn Query,
    aggs: Aggregations,
    tokenizers: &tantivy::tokenizer::TokenizerManager,
    sources: std::sync::Arc<tantivy::aggregation::ValueSourceRegistry>,
) -> Result<IntermediateAggregationResults, SearchError> {
    let context = AggContextParams::new(limits(), tokenizers.clone()).with_value_sources(sources);
    let collector =
        crate::bounded::Bounded(DistributedAggregationCollector::from_aggs(aggs, context));
    let result = searcher.search(query, &collector);
    // A collection the breaker stopped is the breaker's error, whatever tantivy made of it.
    cameodb_memory::check()?;
    result.map_err(|e| SearchError::bad_request("aggregation_execution_exception", e.to_string()))
}

/// Merges per-index results and renders the final JSON.
pub fn finish(
    parts: Vec<IntermediateAggregationResults>,
    request: Aggregations,
) -> Result<Value, SearchError> {
    let mut parts = parts.into_iter();
    let Some(mut merged) = parts.next() else {
        return Ok(Value::Object(Map::new()));
    };
    for part in parts {
        merged
            .merge_fruits(part)
            .map_err(|e| SearchError::internal(format!("merging aggregations failed: {e}")))?;
    }
    let result = merged.into_final_result(request, limits());
    cameodb_memory::check()?;
    let result = result
        .map_err(|e| SearchError::bad_request("aggregation_execution_exception", e.to_string()))?;
    let mut value =
        serde_json::to_value(result).map_err(|e| SearchError::internal(e.to_string()))?;
    unscope(&mut value);
    agg_shapes::regroup_filters(&mut value);
    agg_shapes::decode_ip_terms(&mut value);
    agg_shapes::reshape_date_ranges(&mut value);
    crate::geo_aggs::reshape(&mut value);
    crate::geo_metrics::reshape(&mut value)?;
    crate::geo_grid::reshape(&mut value)?;
    crate::calendar_histogram::reshape(&mut value)?;
    crate::significant::reshape(&mut value)?;
    Ok(value)
}

/// Aggregations answered as one bucket (`doc_count` and the sub-aggregations beside it).
const SINGLE_BUCKET: &[&str] = &["filter", "missing", "global", "nested"];

/// The `path` of a `nested` aggregation.
fn nested_path<'v>(name: &str, spec: &'v Value) -> Result<&'v str, SearchError> {
    spec.get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing(format!("[nested] aggregation [{name}] requires [path]")))
}

/// The `typed_keys` name of an aggregation, as Elasticsearch prefixes it (`sterms#genres`).
fn type_prefix(kind: &str, result: &Value) -> String {
    match kind {
        "terms" => {
            let first_key = result["buckets"]
                .as_array()
                .and_then(|b| b.first())
                .map(|b| &b["key"]);
            match first_key {
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => "lterms".into(),
                Some(Value::Number(_)) => "dterms".into(),
                _ => "sterms".into(),
            }
        }
        "significant_terms" => {
            let numeric = result["buckets"]
                .as_array()
                .and_then(|b| b.first())
                .is_some_and(|b| b["key"].is_number());
            if numeric { "siglterms" } else { "sigsterms" }.into()
        }
        "percentiles" => "tdigest_percentiles".into(),
        other => other.into(),
    }
}

/// Renames every aggregation in `result` to `type#name` (`typed_keys=true`), following the
/// request's tree into buckets for sub-aggregations.
pub fn typed_keys(request: &Value, result: &mut Value) {
    let (Some(request), Some(out)) = (request.as_object(), result.as_object_mut()) else {
        return;
    };
    for (name, spec) in request {
        let Some(spec) = spec.as_object() else {
            continue;
        };
        let Some(kind) = spec.keys().find(|k| {
            SUPPORTED.contains(&k.as_str())
                || SINGLE_BUCKET.contains(&k.as_str())
                || [
                    "filters",
                    "top_hits",
                    "top_metrics",
                    "significant_terms",
                    "geo_distance",
                    "geo_bounds",
                    "geo_centroid",
                    "geohash_grid",
                    "geotile_grid",
                ]
                .contains(&k.as_str())
        }) else {
            if let Some(kind) = crate::pipeline::kind_of(spec)
                && let Some(value) = out.remove(name)
            {
                let prefix = crate::pipeline::type_prefix(kind);
                out.insert(format!("{prefix}#{name}"), value);
            }
            continue;
        };
        let Some(mut value) = out.remove(name) else {
            continue;
        };
        if let Some(sub) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            match value.get_mut("buckets") {
                Some(Value::Array(buckets)) => buckets.iter_mut().for_each(|b| typed_keys(sub, b)),
                Some(Value::Object(buckets)) => {
                    buckets.values_mut().for_each(|b| typed_keys(sub, b))
                }
                // A single bucket holds its sub-aggregations beside its `doc_count`.
                _ if SINGLE_BUCKET.contains(&kind.as_str()) => typed_keys(sub, &mut value),
                _ => {}
            }
        }
        out.insert(format!("{}#{name}", type_prefix(kind, &value)), value);
    }
}
