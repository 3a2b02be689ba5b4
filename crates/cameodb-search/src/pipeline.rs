//! Pipeline aggregations: computed from the merged, final result of the aggregations they
//! read, so they see every node's buckets. Parent pipelines (`derivative`, `cumulative_sum`,
//! `bucket_script`, `bucket_selector`, `bucket_sort`) sit in a multi-bucket aggregation's
//! `aggs` and work bucket by bucket; sibling pipelines (`avg_bucket`, `sum_bucket`,
//! `min_bucket`, `max_bucket`, `stats_bucket`) sit beside one and summarise its buckets.
//! Pure: JSON in, JSON out.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::SearchError;
use cameodb_query::expr::{Expr, Params, Val, json_val, script_source};

/// Pipelines that work on the buckets of the aggregation they sit in.
const PARENT: &[&str] = &[
    "derivative",
    "cumulative_sum",
    "bucket_script",
    "bucket_selector",
    "bucket_sort",
];
/// Pipelines that summarise the buckets of an aggregation beside them.
const SIBLING: &[&str] = &[
    "avg_bucket",
    "sum_bucket",
    "min_bucket",
    "max_bucket",
    "stats_bucket",
];
/// Parents `derivative` and `cumulative_sum` need: buckets in key order without holes.
const HISTOGRAMS: &[&str] = &["histogram", "date_histogram"];

/// Marks a keyed bucket's key while its buckets are worked on as a list.
const KEY_MARK: &str = "\u{4}key";

fn illegal(reason: String) -> SearchError {
    SearchError::illegal_argument(reason)
}

/// The pipeline kind of an aggregation spec, if it is one.
pub fn kind_of(spec: &Map<String, Value>) -> Option<&'static str> {
    PARENT
        .iter()
        .chain(SIBLING)
        .find(|kind| spec.contains_key(**kind))
        .copied()
}

/// The `typed_keys` prefix of a pipeline's result.
pub fn type_prefix(kind: &str) -> &'static str {
    match kind {
        "derivative" => "derivative",
        "min_bucket" | "max_bucket" => "bucket_metric_value",
        "stats_bucket" => "stats_bucket",
        _ => "simple_value",
    }
}

/// One parsed pipeline.
struct Pipeline {
    name: String,
    kind: &'static str,
    /// `buckets_path` by variable (`_value` when given as one string).
    paths: BTreeMap<String, String>,
    /// Gaps become zeros (`insert_zeros`) instead of being skipped.
    zeros: bool,
    /// The script of `bucket_script` / `bucket_selector`, with its parameters.
    script: Option<(Expr, BTreeMap<String, Val>)>,
    /// `bucket_sort`: keys, from, size.
    sort: Vec<(String, bool)>,
    from: usize,
    size: Option<usize>,
}

/// Parses (and so checks) one pipeline's spec.
fn parse(
    name: &str,
    kind: &'static str,
    spec: &Map<String, Value>,
) -> Result<Pipeline, SearchError> {
    if spec.contains_key("aggs") || spec.contains_key("aggregations") {
        return Err(illegal(format!(
            "Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations"
        )));
    }
    let body = spec[kind]
        .as_object()
        .ok_or_else(|| illegal(format!("[{kind}] aggregation [{name}] must be an object")))?;
    let allowed: &[&str] = match kind {
        "bucket_script" | "bucket_selector" => &["buckets_path", "script", "gap_policy"],
        "bucket_sort" => &["sort", "from", "size", "gap_policy"],
        "cumulative_sum" => &["buckets_path"],
        _ => &["buckets_path", "gap_policy"],
    };
    if let Some(key) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(illegal(format!(
            "[{key}] of [{kind}] aggregation [{name}] is not supported"
        )));
    }
    let zeros = match body.get("gap_policy").map(|g| g.as_str()) {
        None | Some(Some("skip" | "keep_values")) => false,
        Some(Some("insert_zeros")) => true,
        Some(other) => {
            return Err(illegal(format!(
                "gap_policy [{}] of [{name}] must be skip, insert_zeros or keep_values",
                other.unwrap_or_default()
            )));
        }
    };
    let mut paths = BTreeMap::new();
    match body.get("buckets_path") {
        Some(Value::String(path)) => {
            paths.insert("_value".to_string(), path.clone());
        }
        Some(Value::Object(named)) if kind == "bucket_script" || kind == "bucket_selector" => {
            for (var, path) in named {
                let path = path.as_str().ok_or_else(|| {
                    illegal(format!("buckets_path [{var}] of [{name}] must be a string"))
                })?;
                paths.insert(var.clone(), path.to_string());
            }
        }
        None if kind == "bucket_sort" => {}
        _ => {
            return Err(illegal(format!(
                "[{kind}] aggregation [{name}] requires a [buckets_path]"
            )));
        }
    }
    let script = match body.get("script") {
        Some(script) => {
            let (source, params) = script_source(script)?;
            let params = params
                .iter()
                .filter_map(|(k, v)| json_val(v).map(|v| (k.clone(), v)))
                .collect();
            Some((Expr::parse(&source)?, params))
        }
        None if kind == "bucket_script" || kind == "bucket_selector" => {
            return Err(illegal(format!(
                "[{kind}] aggregation [{name}] requires a [script]"
            )));
        }
        None => None,
    };
    let mut sort = Vec::new();
    if let Some(keys) = body.get("sort") {
        let keys = match keys {
            Value::Array(keys) => keys.clone(),
            single => vec![single.clone()],
        };
        for key in keys {
            match key {
                Value::String(path) => sort.push((path, false)),
                Value::Object(object) if object.len() == 1 => {
                    for (path, order) in object {
                        let order = order.get("order").unwrap_or(&order).as_str();
                        sort.push((path, order == Some("desc")));
                    }
                }
                other => return Err(illegal(format!("sort [{other}] of [{name}] is not valid"))),
            }
        }
    }
    let count = |key: &str| -> Result<Option<usize>, SearchError> {
        match body.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    illegal(format!(
                        "[{key}] of [{name}] must be a non-negative integer"
                    ))
                }),
        }
    };
    Ok(Pipeline {
        name: name.to_string(),
        kind,
        paths,
        zeros,
        script,
        sort,
        from: count("from")?.unwrap_or(0),
        size: count("size")?,
    })
}

/// Checks every pipeline in an `aggs` request (called before anything runs, so a bad one is a
/// 400 up front).
pub fn check(aggs: &Value) -> Result<(), SearchError> {
    let Some(level) = aggs.as_object() else {
        return Ok(());
    };
    for (name, spec) in level {
        let Some(spec) = spec.as_object() else {
            continue;
        };
        match kind_of(spec) {
            Some(kind) => {
                parse(name, kind, spec)?;
            }
            None => {
                if let Some(sub) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
                    check(sub)?;
                }
            }
        }
    }
    Ok(())
}

/// Computes every pipeline of `request` into `result` (the rendered aggregations).
pub fn apply(request: &Value, result: &mut Value) -> Result<(), SearchError> {
    let (Some(request), Some(result)) = (request.as_object(), result.as_object_mut()) else {
        return Ok(());
    };
    if let Some((name, kind)) = request
        .iter()
        .filter_map(|(n, s)| Some((n, kind_of(s.as_object()?)?)))
        .find(|(_, kind)| PARENT.contains(kind))
    {
        return Err(illegal(format!(
            "[{kind}] aggregation [{name}] must be declared inside a multi-bucket aggregation"
        )));
    }
    apply_level(request, result)
}

fn apply_level(
    request: &Map<String, Value>,
    result: &mut Map<String, Value>,
) -> Result<(), SearchError> {
    for (name, spec) in request {
        let Some(spec) = spec.as_object() else {
            continue;
        };
        if kind_of(spec).is_some() {
            continue;
        }
        let Some(sub) = spec
            .get("aggs")
            .or_else(|| spec.get("aggregations"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let parent_kind = spec
            .keys()
            .find(|k| !["aggs", "aggregations", "meta"].contains(&k.as_str()))
            .map_or("", String::as_str);
        let Some(out) = result.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        match out.get_mut("buckets") {
            Some(Value::Array(buckets)) => {
                for bucket in buckets.iter_mut().filter_map(Value::as_object_mut) {
                    apply_level(sub, bucket)?;
                }
                parents(sub, name, parent_kind, buckets)?;
            }
            Some(Value::Object(keyed)) => {
                let mut buckets: Vec<Value> = std::mem::take(keyed)
                    .into_iter()
                    .map(|(key, mut bucket)| {
                        bucket[KEY_MARK] = Value::String(key);
                        bucket
                    })
                    .collect();
                for bucket in buckets.iter_mut().filter_map(Value::as_object_mut) {
                    apply_level(sub, bucket)?;
                }
                parents(sub, name, parent_kind, &mut buckets)?;
                for mut bucket in buckets {
                    if let Some(Value::String(key)) =
                        bucket.as_object_mut().and_then(|b| b.remove(KEY_MARK))
                    {
                        keyed.insert(key, bucket);
                    }
                }
            }
            // A single-bucket aggregation holds its sub-aggregations beside `doc_count`.
            _ => apply_level(sub, out)?,
        }
    }
    for (name, spec) in request {
        let Some(spec) = spec.as_object() else {
            continue;
        };
        if let Some(kind) = kind_of(spec).filter(|k| SIBLING.contains(k)) {
            let pipeline = parse(name, kind, spec)?;
            let value = sibling(&pipeline, result)?;
            result.insert(name.clone(), value);
        }
    }
    Ok(())
}

/// The parent pipelines of one multi-bucket aggregation, each after those it reads.
fn parents(
    sub: &Map<String, Value>,
    parent: &str,
    parent_kind: &str,
    buckets: &mut Vec<Value>,
) -> Result<(), SearchError> {
    let mut pending: Vec<Pipeline> = Vec::new();
    for (name, spec) in sub {
        if let Some(kind) = spec
            .as_object()
            .and_then(kind_of)
            .filter(|k| PARENT.contains(k))
        {
            let pipeline = parse(name, kind, spec.as_object().unwrap_or(&Map::new()))?;
            if matches!(kind, "derivative" | "cumulative_sum") && !HISTOGRAMS.contains(&parent_kind)
            {
                return Err(illegal(format!(
                    "{kind} aggregation [{name}] must have a histogram or date_histogram as parent, not [{parent}]"
                )));
            }
            pending.push(pipeline);
        }
    }
    while !pending.is_empty() {
        let next = {
            let reads_pending = |p: &Pipeline| {
                p.paths
                    .values()
                    .chain(p.sort.iter().map(|(path, _)| path))
                    .any(|path| {
                        pending
                            .iter()
                            .any(|q| q.name != p.name && first_name(path) == q.name)
                    })
            };
            pending.iter().position(|p| !reads_pending(p)).unwrap_or(0)
        };
        let pipeline = pending.remove(next);
        run_parent(&pipeline, buckets)?;
    }
    Ok(())
}

/// The aggregation a `buckets_path` starts at.
fn first_name(path: &str) -> &str {
    path.split(['>', '.', '[']).next().unwrap_or(path)
}

fn run_parent(p: &Pipeline, buckets: &mut Vec<Value>) -> Result<(), SearchError> {
    let single = p
        .paths
        .get("_value")
        .map(String::as_str)
        .unwrap_or_default();
    match p.kind {
        "derivative" => {
            let mut previous = None;
            for bucket in buckets.iter_mut() {
                let Some(current) = gap(bucket_value(bucket, single), p.zeros) else {
                    continue;
                };
                if let Some(before) = previous {
                    bucket[p.name.as_str()] = json!({"value": current - before});
                }
                previous = Some(current);
            }
        }
        "cumulative_sum" => {
            let mut sum = 0.0;
            for bucket in buckets.iter_mut() {
                sum += bucket_value(bucket, single).unwrap_or(0.0);
                bucket[p.name.as_str()] = json!({"value": sum});
            }
        }
        "bucket_script" | "bucket_selector" => {
            let Some((expr, params)) = &p.script else {
                return Ok(());
            };
            let mut kept = Vec::with_capacity(buckets.len());
            for mut bucket in std::mem::take(buckets) {
                let mut vars = params.clone();
                let mut complete = true;
                for (var, path) in &p.paths {
                    match gap(bucket_value(&bucket, path), p.zeros) {
                        Some(v) => {
                            vars.insert(var.clone(), Val::Num(v));
                        }
                        None => complete = false,
                    }
                }
                let outcome = if complete {
                    expr.eval(&Params(&vars))?
                } else {
                    Val::Null
                };
                if p.kind == "bucket_selector" {
                    if outcome == Val::Bool(true) {
                        kept.push(bucket);
                    }
                    continue;
                }
                if let Val::Num(n) = outcome
                    && n.is_finite()
                {
                    bucket[p.name.as_str()] = json!({"value": n});
                }
                kept.push(bucket);
            }
            *buckets = kept;
        }
        "bucket_sort" => {
            if !p.sort.is_empty() {
                let key = |b: &Value| -> Vec<Option<f64>> {
                    p.sort
                        .iter()
                        .map(|(path, _)| gap(bucket_value(b, path), p.zeros))
                        .collect()
                };
                let mut keyed: Vec<(Vec<Option<f64>>, Value)> = std::mem::take(buckets)
                    .into_iter()
                    .map(|b| (key(&b), b))
                    .collect();
                keyed.sort_by(|(a, _), (b, _)| {
                    for (((x, y), (_, desc)), _) in a.iter().zip(b).zip(&p.sort).zip(0..) {
                        let order = match (x, y) {
                            (Some(x), Some(y)) if *desc => y.total_cmp(x),
                            (Some(x), Some(y)) => x.total_cmp(y),
                            // Buckets without the value go last either way.
                            (Some(_), None) => std::cmp::Ordering::Less,
                            (None, Some(_)) => std::cmp::Ordering::Greater,
                            (None, None) => std::cmp::Ordering::Equal,
                        };
                        if order.is_ne() {
                            return order;
                        }
                    }
                    std::cmp::Ordering::Equal
                });
                *buckets = keyed.into_iter().map(|(_, b)| b).collect();
            }
            let end = p
                .size
                .map_or(buckets.len(), |size| p.from.saturating_add(size));
            let kept: Vec<Value> = buckets
                .drain(..)
                .skip(p.from)
                .take(end.saturating_sub(p.from))
                .collect();
            *buckets = kept;
        }
        _ => {}
    }
    Ok(())
}

/// A gap (a bucket without the value) under the gap policy: skipped, or zero.
fn gap(value: Option<f64>, zeros: bool) -> Option<f64> {
    match value {
        Some(v) if v.is_finite() => Some(v),
        _ if zeros => Some(0.0),
        _ => None,
    }
}

/// The number `path` names in `bucket`: `_count`, `_key`, `agg`, `agg.metric`, `agg[99.0]`,
/// through single-bucket aggregations with `>`.
fn bucket_value(bucket: &Value, path: &str) -> Option<f64> {
    let mut node = bucket;
    let mut segments = path.split('>').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_some() {
            node = node.get(segment)?;
            continue;
        }
        match segment {
            "_count" => return node.get("doc_count")?.as_f64(),
            "_key" => return node.get("key")?.as_f64(),
            _ => {}
        }
        let (agg, metric) = match segment.split_once('[') {
            Some((agg, rest)) => (agg, Some(rest.trim_end_matches(']'))),
            None => match segment.split_once('.') {
                Some((agg, metric)) => (agg, Some(metric)),
                None => (segment, None),
            },
        };
        let out = node.get(agg)?;
        return match metric {
            None => out.get("value").or_else(|| out.get("doc_count"))?.as_f64(),
            Some("_count") => out.get("doc_count")?.as_f64(),
            Some(metric) => {
                let values = out.get("values");
                let percent = metric.parse::<f64>().ok().map(|p| format!("{p:?}"));
                out.get(metric)
                    .or_else(|| values?.get(metric))
                    .or_else(|| values?.get(percent.as_deref()?))?
                    .as_f64()
            }
        };
    }
    None
}

/// A sibling pipeline's result over the buckets its path's first aggregation holds.
fn sibling(p: &Pipeline, level: &Map<String, Value>) -> Result<Value, SearchError> {
    let path = p
        .paths
        .get("_value")
        .map(String::as_str)
        .unwrap_or_default();
    let Some((target, rest)) = path.split_once('>') else {
        return Err(illegal(format!(
            "buckets_path [{path}] of [{}] must name a multi-bucket aggregation and a metric (agg>metric)",
            p.name
        )));
    };
    let buckets: Vec<&Value> = match level.get(target).and_then(|t| t.get("buckets")) {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(Value::Object(keyed)) => keyed.values().collect(),
        _ => {
            return Err(illegal(format!(
                "buckets_path [{path}] of [{}]: [{target}] is not a multi-bucket aggregation beside it",
                p.name
            )));
        }
    };
    let values: Vec<(String, f64)> = buckets
        .iter()
        .filter_map(|b| Some((key_text(b), gap(bucket_value(b, rest), p.zeros)?)))
        .collect();
    let numbers = values.iter().map(|(_, v)| *v);
    let sum: f64 = numbers.clone().sum();
    let count = values.len();
    let avg = (count > 0).then(|| sum / count as f64);
    Ok(match p.kind {
        "avg_bucket" => json!({"value": avg}),
        "sum_bucket" => json!({"value": sum}),
        "min_bucket" | "max_bucket" => {
            let pick = |a: f64, b: f64| {
                if p.kind == "min_bucket" {
                    a.min(b)
                } else {
                    a.max(b)
                }
            };
            let best = numbers.clone().reduce(pick);
            let keys: Vec<&String> = values
                .iter()
                .filter(|(_, v)| Some(*v) == best)
                .map(|(k, _)| k)
                .collect();
            json!({"value": best, "keys": keys})
        }
        _ => json!({
            "count": count,
            "min": numbers.clone().reduce(f64::min),
            "max": numbers.reduce(f64::max),
            "avg": avg,
            "sum": sum,
        }),
    })
}

/// A bucket's key as text, as `min_bucket` / `max_bucket` list it.
fn key_text(bucket: &Value) -> String {
    match bucket.get("key_as_string").or_else(|| bucket.get("key")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => bucket
            .get(KEY_MARK)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monthly() -> Value {
        json!({"sales": {"buckets": [
            {"key": 1, "doc_count": 2, "total": {"value": 10.0}},
            {"key": 2, "doc_count": 0, "total": {"value": null}},
            {"key": 3, "doc_count": 3, "total": {"value": 25.0}},
            {"key": 4, "doc_count": 1, "total": {"value": 5.0}}
        ]}})
    }

    fn request(pipelines: Value) -> Value {
        let mut aggs = json!({"total": {"sum": {"field": "price"}}});
        for (k, v) in pipelines.as_object().unwrap() {
            aggs[k] = v.clone();
        }
        json!({"sales": {"histogram": {"field": "month", "interval": 1}, "aggs": aggs}})
    }

    #[test]
    fn derivative_and_cumulative_sum_follow_the_gap_policy() {
        let mut result = monthly();
        let req = request(json!({
            "diff": {"derivative": {"buckets_path": "total"}},
            "running": {"cumulative_sum": {"buckets_path": "total"}},
            "diff_of_running": {"derivative": {"buckets_path": "running"}}
        }));
        check(&req).unwrap();
        apply(&req, &mut result).unwrap();
        let b = &result["sales"]["buckets"];
        assert!(b[0].get("diff").is_none());
        assert!(b[1].get("diff").is_none());
        assert_eq!(b[2]["diff"]["value"], 15.0);
        assert_eq!(b[3]["diff"]["value"], -20.0);
        assert_eq!(b[3]["running"]["value"], 40.0);
        assert_eq!(b[1]["diff_of_running"]["value"], 0.0);
    }

    #[test]
    fn scripts_select_compute_and_sort_buckets() {
        let mut result = monthly();
        let req = request(json!({
            "per_doc": {"bucket_script": {"buckets_path": {"t": "total", "n": "_count"}, "script": "params.t / params.n"}},
            "big": {"bucket_selector": {"buckets_path": {"t": "total"}, "script": {"source": "params.t >= params.min", "params": {"min": 6}}}},
            "top": {"bucket_sort": {"sort": [{"total": {"order": "desc"}}], "size": 1}}
        }));
        apply(&req, &mut result).unwrap();
        let b = result["sales"]["buckets"].as_array().unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0]["key"], 3);
        assert_eq!(b[0]["per_doc"]["value"].as_f64().unwrap(), 25.0 / 3.0);
    }

    #[test]
    fn siblings_summarise_the_buckets_beside_them() {
        let mut result = monthly();
        let mut req = request(json!({}));
        for (name, kind) in [
            ("avg", "avg_bucket"),
            ("max", "max_bucket"),
            ("stats", "stats_bucket"),
            ("sum", "sum_bucket"),
        ] {
            req[name] = json!({kind: {"buckets_path": "sales>total"}});
        }
        apply(&req, &mut result).unwrap();
        assert_eq!(result["avg"]["value"].as_f64().unwrap(), 40.0 / 3.0);
        assert_eq!(result["max"], json!({"value": 25.0, "keys": ["3"]}));
        assert_eq!(result["stats"]["count"], 3);
        assert_eq!(result["sum"]["value"], 40.0);
    }

    #[test]
    fn misplaced_or_malformed_pipelines_are_refused() {
        let top = json!({"d": {"derivative": {"buckets_path": "x"}}});
        assert!(apply(&top, &mut json!({})).is_err());
        let under_terms = json!({"t": {"terms": {"field": "f"}, "aggs": {"d": {"derivative": {"buckets_path": "_count"}}}}});
        assert!(apply(&under_terms, &mut json!({"t": {"buckets": []}})).is_err());
        for bad in [
            json!({"x": {"derivative": {"buckets_path": "a", "unit": "1d"}}}),
            json!({"x": {"bucket_script": {"buckets_path": {"a": "b"}}}}),
            json!({"x": {"bucket_script": {"buckets_path": {"a": "b"}, "script": "ctx.x = 1"}}}),
            json!({"x": {"avg_bucket": {"buckets_path": "a>b", "gap_policy": "sometimes"}}}),
        ] {
            assert!(check(&bad).is_err(), "{bad}");
        }
    }
}
