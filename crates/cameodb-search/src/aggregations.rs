//! Aggregations: Elasticsearch's JSON request, checked against the mapping and pointed at the
//! fast columns that hold each field, then run by tantivy's aggregation module (whose request
//! and response JSON follow Elasticsearch's). Per-index intermediate results are merged before
//! the final result, so several indexes aggregate as one.

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::{FieldType, Mapping};
use serde_json::{Map, Value};
use tantivy::Searcher;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::collector::{Collector, SegmentCollector};
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
    aggs.as_object()
        .is_some_and(|level| level.values().any(|spec| spec.get("global").is_some()))
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
    let mut rewritten = rewrite_level(aggs, mapping, 1)?;
    if let (Some(scope), Some(level)) = (scope, rewritten.as_object_mut()) {
        let filter = crate::filter_agg::filter_body(scope, mapping)
            .map_err(|e| parsing(format!("[global] scope: {e}")))?;
        for (name, body) in std::mem::take(level) {
            if aggs
                .get(&name)
                .and_then(|spec| spec.get("global"))
                .is_some()
            {
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
                        &serde_json::json!({"match_all": {}}),
                        mapping,
                    )
                    .map_err(|e| parsing(format!("[global] aggregation [{name}]: {e}")))?;
                    rewritten.insert("filter".into(), body);
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
                "date_range" => {
                    // tantivy's `range` on the date column, bounds as epoch milliseconds.
                    let body = date_range_bounds(name, value, mapping)?;
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
            calendar_to_fixed(name, &calendar, &mut body)?;
        }
        date_histogram_options(
            name,
            &mut body,
            mapping.lookup(&field).and_then(|f| f.format.clone()),
        )?;
    }
    Ok(Value::Object(body))
}

/// A `date_range` body with its `from` / `to` bounds (dates in the field's or the request's
/// format, or date math) as epoch milliseconds, for a `range` aggregation.
fn date_range_bounds(name: &str, body: &Value, mapping: &Mapping) -> Result<Value, SearchError> {
    let mut body = body.as_object().cloned().ok_or_else(|| {
        parsing(format!(
            "[date_range] aggregation [{name}] must be an object"
        ))
    })?;
    let field = body
        .get("field")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some((_, mapped)) = mapping.resolve(&field) else {
        return Err(parsing(format!(
            "[date_range] aggregation [{name}] requires a mapped [field]"
        )));
    };
    if mapped.field_type != FieldType::Date {
        return Err(SearchError::illegal_argument(format!(
            "Field [{field}] of type [{}] is not supported for aggregation [date_range]",
            mapped.type_name()
        )));
    }
    if body.contains_key("format") {
        // It would also format the bounds shown back, which are always ISO 8601 here.
        return Err(parsing(format!(
            "[format] of date_range [{name}] is not supported: give bounds in the field's format or as date math"
        )));
    }
    let format = mapped.format.clone();
    if let Some(zone) = body.remove("time_zone")
        && !zone.as_str().is_some_and(|z| UTC_ZONES.contains(&z))
    {
        return Err(SearchError::illegal_argument(format!(
            "time_zone [{zone}] of date_range [{name}] is not supported: dates are in UTC"
        )));
    }
    if let Some(Value::Array(ranges)) = body.get_mut("ranges") {
        for range in ranges.iter_mut().filter_map(Value::as_object_mut) {
            for end in ["from", "to"] {
                let Some(value) = range.get_mut(end) else {
                    continue;
                };
                if value.is_number() || value.is_null() {
                    continue;
                }
                let millis = value
                    .as_str()
                    .and_then(cameodb_query::date_math)
                    .or_else(|| {
                        cameodb_schema::mapping::date::parse_value(value, format.as_deref())
                    })
                    .ok_or_else(|| {
                        parsing(format!(
                            "[{end}] [{value}] of date_range [{name}] is not a date"
                        ))
                    })?;
                // tantivy reads date bounds as nanoseconds.
                let nanos = millis.checked_mul(1_000_000).ok_or_else(|| {
                    parsing(format!(
                        "[{end}] [{value}] of date_range [{name}] is out of range"
                    ))
                })?;
                *value = Value::from(nanos);
            }
        }
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

/// Time zones whose buckets are UTC's.
const UTC_ZONES: &[&str] = &["UTC", "Z", "+00:00", "-00:00", "+0000", "GMT", "Etc/UTC"];

/// A date histogram's `time_zone` (only UTC: tantivy buckets in UTC, and ignoring another zone
/// would shift every bucket) and its bounds given as dates (tantivy takes epoch milliseconds).
fn date_histogram_options(
    name: &str,
    body: &mut Map<String, Value>,
    format: Option<String>,
) -> Result<(), SearchError> {
    if let Some(zone) = body.remove("time_zone")
        && !zone.as_str().is_some_and(|z| UTC_ZONES.contains(&z))
    {
        return Err(SearchError::illegal_argument(format!(
            "time_zone [{}] of date_histogram [{name}] is not supported: buckets are in UTC",
            zone.as_str().unwrap_or_default()
        )));
    }
    for bounds in ["extended_bounds", "hard_bounds"] {
        let Some(Value::Object(bounds)) = body.get_mut(bounds) else {
            continue;
        };
        for end in ["min", "max"] {
            if let Some(value) = bounds.get_mut(end)
                && value.is_string()
            {
                let millis = cameodb_schema::mapping::date::parse_value(value, format.as_deref())
                    .ok_or_else(|| {
                    parsing(format!(
                        "[{end}] bound [{value}] of date_histogram [{name}] is not a date"
                    ))
                })?;
                *value = Value::from(millis);
            }
        }
    }
    Ok(())
}

/// The limits tantivy checks during an aggregation: its own estimate of the memory held (the
/// request's breaker limit) and `search.max_buckets`. The breaker, which measures instead of
/// estimating, is checked as well (see [`Bounded`]).
fn limits() -> AggregationLimitsGuard {
    let memory = cameodb_memory::current().map(|account| account.limit());
    AggregationLimitsGuard::new(memory, Some(MAX_BUCKETS))
}

/// Runs `aggs` over the documents matching `query`, giving the mergeable intermediate result.
pub fn collect(
    searcher: &Searcher,
    query: &dyn Query,
    aggs: Aggregations,
    tokenizers: &tantivy::tokenizer::TokenizerManager,
) -> Result<IntermediateAggregationResults, SearchError> {
    let context = AggContextParams::new(limits(), tokenizers.clone());
    let collector = Bounded(DistributedAggregationCollector::from_aggs(aggs, context));
    let result = searcher.search(query, &collector);
    // A collection the breaker stopped is the breaker's error, whatever tantivy made of it.
    cameodb_memory::check()?;
    result.map_err(|e| SearchError::bad_request("aggregation_execution_exception", e.to_string()))
}

/// A collector that stops feeding documents to `C` once the request's memory account has
/// tripped: aggregations grow with every document collected, and tantivy has no way to be
/// interrupted from outside.
struct Bounded<C>(C);

/// Most documents collected between two breaker checks.
const MAX_STEP: usize = 64;

/// Growth of the request's memory over one step above which the next steps are one document
/// long: one document can add a bucket at every level of a nested aggregation, with all the
/// collectors of the levels below it.
const FAST_GROWTH: i64 = 1 << 20;

/// How much more than collection holds the conversion of a segment's collectors into
/// mergeable results may take (`harvest`, which cannot be interrupted). Measured on 8,000
/// movies, six nested terms aggregations of size 100: 103 MB collected, 506 MB held after the
/// conversion, 820 MB resident at its peak.
const HARVEST_GROWTH: i64 = 6;

impl<C: Collector> Collector for Bounded<C> {
    type Fruit = C::Fruit;
    type Child = BoundedSegment<C::Child>;

    fn for_segment(
        &self,
        segment: tantivy::SegmentOrdinal,
        reader: &tantivy::SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let account = cameodb_memory::current();
        let held = account.as_ref().map_or(0, |a| a.total());
        Ok(BoundedSegment {
            inner: self.0.for_segment(segment, reader)?,
            account,
            held,
            step: 1,
            stopped: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.0.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Option<<C::Child as SegmentCollector>::Fruit>>,
    ) -> tantivy::Result<Self::Fruit> {
        let fruits: Option<Vec<_>> = fruits.into_iter().collect();
        match fruits {
            Some(fruits) => self.0.merge_fruits(fruits),
            None => Err(tantivy::TantivyError::InternalError(
                "aggregation stopped by the memory breaker".into(),
            )),
        }
    }
}

/// One segment's side of [`Bounded`]: its fruit is `None` when it stopped early.
struct BoundedSegment<S> {
    inner: S,
    /// The request's memory account (none outside a request: nothing is checked).
    account: Option<std::sync::Arc<cameodb_memory::Account>>,
    /// What the account held at the last check.
    held: i64,
    /// Documents fed between checks: one while memory grows fast, up to [`MAX_STEP`].
    step: usize,
    /// The breaker tripped: nothing more is collected.
    stopped: bool,
}

impl<S: SegmentCollector> BoundedSegment<S> {
    /// Checks the breaker after a step, and sizes the next step by how fast memory grew.
    fn after_step(&mut self) {
        let Some(account) = &self.account else {
            self.step = MAX_STEP;
            return;
        };
        let held = account.total();
        // tantivy grows its per-bucket vectors by doubling, inside a step: what is held may be
        // needed again before the next check.
        self.stopped = account.ensure_headroom(held).is_err();
        self.step = if held - self.held > FAST_GROWTH {
            1
        } else {
            (self.step * 2).min(MAX_STEP)
        };
        self.held = held;
    }
}

impl<S: SegmentCollector> SegmentCollector for BoundedSegment<S> {
    type Fruit = Option<S::Fruit>;

    fn collect(&mut self, doc: tantivy::DocId, score: tantivy::Score) {
        if !self.stopped {
            self.inner.collect(doc, score);
            self.after_step();
        }
    }

    fn collect_block(&mut self, mut docs: &[tantivy::DocId]) {
        while !self.stopped && !docs.is_empty() {
            let (piece, rest) = docs.split_at(self.step.min(docs.len()));
            self.inner.collect_block(piece);
            self.after_step();
            docs = rest;
        }
    }

    fn harvest(self) -> Self::Fruit {
        if self.stopped {
            return None;
        }
        if let Some(account) = &self.account
            && account
                .ensure_headroom(account.total().saturating_mul(HARVEST_GROWTH))
                .is_err()
        {
            return None;
        }
        Some(self.inner.harvest())
    }
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
    Ok(value)
}

/// Aggregations answered as one bucket (`doc_count` and the sub-aggregations beside it).
const SINGLE_BUCKET: &[&str] = &["filter", "missing", "global"];

/// Calendar intervals of fixed length in UTC become fixed intervals (weeks start on Monday, as
/// in Elasticsearch: the epoch was a Thursday, hence the offset). Months, quarters and years
/// vary in length and are refused by name.
fn calendar_to_fixed(
    name: &str,
    calendar: &Value,
    body: &mut Map<String, Value>,
) -> Result<(), SearchError> {
    let unit = calendar.as_str().unwrap_or_default();
    let fixed = match unit {
        "second" | "1s" => "1s",
        "minute" | "1m" => "1m",
        "hour" | "1h" => "1h",
        "day" | "1d" => "1d",
        "week" | "1w" => "7d",
        other => {
            return Err(parsing(format!(
                "calendar_interval [{other}] in date_histogram [{name}] is not supported (months, quarters and years vary in length); use fixed_interval"
            )));
        }
    };
    if body.contains_key("fixed_interval") {
        return Err(parsing(format!(
            "date_histogram [{name}] sets both calendar_interval and fixed_interval"
        )));
    }
    body.insert("fixed_interval".into(), Value::String(fixed.into()));
    if fixed == "7d" && !body.contains_key("offset") {
        body.insert("offset".into(), Value::String("-3d".into()));
    }
    Ok(())
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
                || k.as_str() == "filters"
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
