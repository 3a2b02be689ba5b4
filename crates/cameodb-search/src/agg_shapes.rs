//! Aggregations whose Elasticsearch shape differs from tantivy's: `composite` and
//! `multi_terms` (sources rewritten one by one, `after` keys typed as tantivy reads them and
//! shown back plain) and `filters` (one `filter` aggregation per bucket, regrouped).

use cameodb_schema::mapping::{FieldType, Mapping};
use serde_json::{Map, Value};

use crate::error::SearchError;

/// How the caller rewrites one aggregation body of a kind for this index's columns.
pub(crate) type Rewrite = dyn Fn(&str, &str, &Value, &Mapping) -> Result<Value, SearchError>;

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

/// The name of the `filter` aggregation that bucket `key` of `filters` aggregation `name`
/// becomes.
pub(crate) fn filters_bucket_name(name: &str, key: &str) -> String {
    format!("{name}{FILTERS_MARK}{key}")
}

/// A `composite` aggregation: each source (`terms`, `histogram`, `date_histogram`) rewritten
/// like the aggregation of its kind.
pub(crate) fn composite(
    name: &str,
    mut body: Map<String, Value>,
    mapping: &Mapping,
    rewrite_body: &Rewrite,
) -> Result<Value, SearchError> {
    let sources = body
        .get("sources")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            parsing(format!(
                "[composite] aggregation [{name}] requires [sources]"
            ))
        })?;
    let mut rewritten = Vec::with_capacity(sources.len());
    let after = body.get("after").and_then(Value::as_object).cloned();
    let mut typed_after = Map::new();
    for source in sources {
        let Some((source_name, spec)) = source.as_object().and_then(|o| o.iter().next()) else {
            return Err(parsing(format!(
                "a source of composite aggregation [{name}] must be an object"
            )));
        };
        let Some((kind, inner)) = spec.as_object().and_then(|o| o.iter().next()) else {
            return Err(parsing(format!(
                "source [{source_name}] of [{name}] must name its kind"
            )));
        };
        if !["terms", "histogram", "date_histogram"].contains(&kind.as_str()) {
            return Err(parsing(format!(
                "source [{source_name}] of composite aggregation [{name}]: [{kind}] sources are not supported"
            )));
        }
        // Calendar intervals are the source's own (tantivy aligns months and years itself).
        let mut inner = inner.clone();
        let calendar = inner
            .as_object_mut()
            .and_then(|o| o.remove("calendar_interval"));
        // What only a composite source takes is put back after the rewrite.
        let own: Vec<(String, Value)> = ["order", "missing_bucket", "missing_order"]
            .iter()
            .filter_map(|k| {
                inner
                    .as_object_mut()?
                    .remove(*k)
                    .map(|v| (k.to_string(), v))
            })
            .collect();
        let mut done = rewrite_body(source_name, kind, &inner, mapping)?;
        if let Some(object) = done.as_object_mut() {
            object.extend(own);
        }
        if let (Some(calendar), Some(object)) = (calendar, done.as_object_mut()) {
            let unit = match calendar.as_str().unwrap_or_default() {
                "1M" | "month" => "month",
                "1y" | "year" => "year",
                "1w" | "week" => "week",
                "1q" | "quarter" => {
                    return Err(parsing(format!(
                        "calendar_interval [quarter] in composite source [{source_name}] is not supported"
                    )));
                }
                other => other,
            };
            object.insert("calendar_interval".into(), Value::String(unit.into()));
        }
        let source_field = inner
            .get("field")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if mapping
            .lookup(source_field)
            .is_some_and(|f| f.variant == Some(cameodb_schema::mapping::Variant::Ip))
        {
            return Err(parsing(format!(
                "source [{source_name}] of [{name}]: ip field [{source_field}] is not supported as a composite source"
            )));
        }
        if let Some(value) = after.as_ref().and_then(|a| a.get(source_name)) {
            let field = inner
                .get("field")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let field_type = mapping.lookup(field).map(|f| f.field_type);
            typed_after.insert(
                source_name.clone(),
                Value::String(after_key(kind, field_type, value)?),
            );
        }
        let kind_object = Value::Object(Map::from_iter([(kind.clone(), done)]));
        rewritten.push(Value::Object(Map::from_iter([(
            source_name.clone(),
            kind_object,
        )])));
    }
    body.insert("sources".into(), Value::Array(rewritten));
    body.entry("size").or_insert(Value::from(10));
    if after.is_some() {
        body.insert("after".into(), Value::Object(typed_after));
    }
    Ok(Value::Object(body))
}

/// An Elasticsearch `after` value in tantivy's typed form (`str:red`, `i64:5`, `dt:<ns>`),
/// from the source's kind and its field's type (whole numbers are indexed as integers).
fn after_key(
    kind: &str,
    field_type: Option<FieldType>,
    value: &Value,
) -> Result<String, SearchError> {
    let as_number = || {
        value
            .as_f64()
            .ok_or_else(|| parsing(format!("after value [{value}] must be a number")))
    };
    Ok(match (kind, field_type, value) {
        (_, _, Value::Null) => "null:".to_string(),
        ("date_histogram", ..) | (_, Some(FieldType::Date), _) => {
            let millis = as_number()?;
            format!("dt:{}", (millis as i64).saturating_mul(1_000_000))
        }
        ("histogram", ..) => format!("f64:{}", as_number()?),
        (_, _, Value::Bool(b)) => format!("bool:{b}"),
        (_, _, Value::String(s)) => format!("str:{s}"),
        (_, _, Value::Number(n)) => match n.as_i64() {
            Some(i) => format!("i64:{i}"),
            None => {
                let f = as_number()?;
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    format!("i64:{}", f as i64)
                } else {
                    format!("f64:{f}")
                }
            }
        },
        (_, _, other) => return Err(parsing(format!("after value [{other}] is not a key"))),
    })
}

/// A tantivy `after_key` value as Elasticsearch shows it: the value itself (dates as epoch
/// milliseconds).
fn plain_after(value: &Value) -> Value {
    let Some(text) = value.as_str() else {
        return value.clone();
    };
    let Some((kind, rest)) = text.split_once(':') else {
        return value.clone();
    };
    match kind {
        "str" | "ip" => Value::String(rest.to_string()),
        "i64" => rest.parse::<i64>().map_or(Value::Null, Value::from),
        "u64" => rest.parse::<u64>().map_or(Value::Null, Value::from),
        "f64" => rest.parse::<f64>().ok().map_or(Value::Null, Value::from),
        "bool" => Value::Bool(rest == "true"),
        "dt" => rest
            .parse::<i64>()
            .map_or(Value::Null, |ns| Value::from(ns / 1_000_000)),
        _ => Value::Null,
    }
}

/// A `multi_terms` aggregation: each term source's field rewritten.
pub(crate) fn multi_terms(
    name: &str,
    mut body: Map<String, Value>,
    mapping: &Mapping,
    rewrite_body: &Rewrite,
) -> Result<Value, SearchError> {
    let terms = body.get("terms").and_then(Value::as_array).ok_or_else(|| {
        parsing(format!(
            "[multi_terms] aggregation [{name}] requires [terms]"
        ))
    })?;
    let mut rewritten = Vec::with_capacity(terms.len());
    for term in terms {
        rewritten.push(rewrite_body(name, "terms", term, mapping)?);
    }
    body.insert("terms".into(), Value::Array(rewritten));
    Ok(Value::Object(body))
}

/// Separates a `filters` aggregation's name from a bucket's key in the names of the `filter`
/// aggregations it becomes (a control character: no request names an aggregation with it).
const FILTERS_MARK: char = '\u{1}';
/// Marks the buckets of a `filters` aggregation given as a list (keys are positions).
const LIST_MARK: &str = "\u{2}";

/// The named queries of a `filters` aggregation: an object of them, or a list (keyed by
/// position, marked so the answer is a list again).
pub(crate) fn filter_list(name: &str, body: &Value) -> Result<Vec<(String, Value)>, SearchError> {
    let object = body
        .as_object()
        .ok_or_else(|| parsing(format!("[filters] aggregation [{name}] must be an object")))?;
    if let Some(key) = object.keys().find(|k| k.as_str() != "filters") {
        return Err(parsing(format!(
            "[{key}] of filters aggregation [{name}] is not supported (other_bucket is not)"
        )));
    }
    match object.get("filters") {
        Some(Value::Object(named)) => {
            Ok(named.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        Some(Value::Array(listed)) => Ok(listed
            .iter()
            .enumerate()
            .map(|(n, v)| (format!("{LIST_MARK}{n:06}"), v.clone()))
            .collect()),
        _ => Err(parsing(format!(
            "[filters] aggregation [{name}] requires [filters]"
        ))),
    }
}

/// Puts the `filter` aggregations a `filters` aggregation became back under its name, as
/// Elasticsearch answers it (`buckets` keyed by name, or a list), at every level.
pub(crate) fn regroup_filters(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let marked: Vec<String> = map
                .keys()
                .filter(|k| k.contains(FILTERS_MARK))
                .cloned()
                .collect();
            let mut grouped: std::collections::BTreeMap<String, Vec<(String, Value)>> =
                std::collections::BTreeMap::new();
            for key in marked {
                if let (Some((name, bucket)), Some(result)) =
                    (key.split_once(FILTERS_MARK), map.get(&key).cloned())
                {
                    grouped
                        .entry(name.to_string())
                        .or_default()
                        .push((bucket.to_string(), result));
                }
                map.remove(&key);
            }
            for (name, buckets) in grouped {
                let listed = buckets.iter().all(|(k, _)| k.starts_with(LIST_MARK));
                let mut buckets = buckets;
                buckets.sort_by(|a, b| a.0.cmp(&b.0));
                let out = if listed {
                    Value::Array(buckets.into_iter().map(|(_, v)| v).collect())
                } else {
                    Value::Object(buckets.into_iter().collect())
                };
                map.insert(name, serde_json::json!({"buckets": out}));
            }
            if let Some(Value::Object(after)) = map.get_mut("after_key") {
                for value in after.values_mut() {
                    *value = plain_after(value);
                }
            }
            for child in map.values_mut() {
                regroup_filters(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(regroup_filters),
        _ => {}
    }
}

/// Marks a `terms` aggregation on an `ip` field, whose keys are shown decoded.
const IP_MARK: char = '\u{3}';

/// The name a `terms` aggregation on an `ip` field runs under.
pub(crate) fn ip_terms_name(name: &str) -> String {
    format!("{name}{IP_MARK}")
}

/// Shows the keys of `terms` aggregations on `ip` fields as addresses (they are indexed
/// encoded, see `cameodb_schema::mapping::variant::encode_ip`), at every level.
pub(crate) fn decode_ip_terms(value: &mut Value) {
    unmark_all(value, IP_MARK, &|result| {
        for_each_bucket(result, &|bucket| {
            let decoded = bucket["key"]
                .as_str()
                .and_then(cameodb_schema::mapping::variant::decode_ip);
            if let Some(address) = decoded {
                bucket["key"] = Value::String(address);
            }
        })
    });
}

/// Gives every aggregation whose name ends in `mark` its name back, after `fix` reshaped its
/// result, at every level of `value`.
pub(crate) fn unmark_all(value: &mut Value, mark: char, fix: &dyn Fn(&mut Value)) {
    match value {
        Value::Object(map) => {
            let marked: Vec<String> = map.keys().filter(|k| k.ends_with(mark)).cloned().collect();
            for key in marked {
                if let Some(mut result) = map.remove(&key) {
                    fix(&mut result);
                    map.insert(key.trim_end_matches(mark).to_string(), result);
                }
            }
            map.values_mut()
                .for_each(|child| unmark_all(child, mark, fix));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| unmark_all(item, mark, fix)),
        _ => {}
    }
}

/// Runs `each` on every bucket of a multi-bucket result, listed or keyed.
pub(crate) fn for_each_bucket(result: &mut Value, each: &dyn Fn(&mut Value)) {
    match result.get_mut("buckets") {
        Some(Value::Array(buckets)) => buckets.iter_mut().for_each(each),
        Some(Value::Object(buckets)) => buckets.values_mut().for_each(each),
        _ => {}
    }
}

/// Marks a `date_range` aggregation, whose bounds tantivy reports in nanoseconds.
const DATE_RANGE_MARK: char = '\u{6}';

/// The name a `date_range` aggregation runs under.
pub(crate) fn date_range_name(name: &str) -> String {
    format!("{name}{DATE_RANGE_MARK}")
}

/// Shows `date_range` buckets as Elasticsearch does: bounds in epoch milliseconds, formatted
/// as `2020-02-01T00:00:00.000Z`, and generated keys spelled with those, at every level.
pub(crate) fn reshape_date_ranges(value: &mut Value) {
    unmark_all(value, DATE_RANGE_MARK, &|result| {
        for_each_bucket(result, &date_range_bucket)
    });
}

fn date_range_bucket(bucket: &mut Value) {
    let Some(bucket) = bucket.as_object_mut() else {
        return;
    };
    let generated = format!(
        "{}-{}",
        bucket
            .get("from_as_string")
            .and_then(Value::as_str)
            .unwrap_or("*"),
        bucket
            .get("to_as_string")
            .and_then(Value::as_str)
            .unwrap_or("*")
    );
    let mut shown = [String::from("*"), String::from("*")];
    for (n, end) in ["from", "to"].into_iter().enumerate() {
        let Some(nanos) = bucket.get(end).and_then(Value::as_f64) else {
            continue;
        };
        let millis = (nanos / 1e6).round();
        let text = chrono::DateTime::from_timestamp_millis(millis as i64)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default();
        bucket.insert(end.into(), Value::from(millis));
        bucket.insert(format!("{end}_as_string"), Value::String(text.clone()));
        shown[n] = text;
    }
    if bucket.get("key").and_then(Value::as_str) == Some(generated.as_str()) {
        bucket.insert(
            "key".into(),
            Value::String(format!("{}-{}", shown[0], shown[1])),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn after_keys_go_to_tantivy_typed_and_come_back_plain() {
        let cases = [
            ("terms", Some(FieldType::Keyword), json!("red"), "str:red"),
            ("terms", Some(FieldType::Long), json!(5), "i64:5"),
            ("terms", Some(FieldType::Double), json!(2.0), "i64:2"),
            ("terms", Some(FieldType::Double), json!(2.5), "f64:2.5"),
            ("terms", Some(FieldType::Boolean), json!(true), "bool:true"),
            (
                "date_histogram",
                Some(FieldType::Date),
                json!(1_767_225_600_000i64),
                "dt:1767225600000000000",
            ),
            ("histogram", Some(FieldType::Long), json!(10), "f64:10"),
        ];
        for (kind, ty, plain, typed) in cases {
            assert_eq!(after_key(kind, ty, &plain).unwrap(), typed);
            let back = plain_after(&json!(typed));
            assert_eq!(back.as_f64().or(None), plain.as_f64().or(None), "{typed}");
            if plain.is_string() || plain.is_boolean() {
                assert_eq!(back, plain);
            }
        }
    }

    #[test]
    fn filters_buckets_are_regrouped_at_every_level() {
        let mut result = json!({
            filters_bucket_name("k", "b"): {"doc_count": 2},
            filters_bucket_name("k", "a"): {"doc_count": 1},
            "terms": {"buckets": [{"key": "x", filters_bucket_name("inner", "\u{2}000001"): {"doc_count": 4},
                filters_bucket_name("inner", "\u{2}000000"): {"doc_count": 3}}]}
        });
        regroup_filters(&mut result);
        assert_eq!(
            result["k"],
            json!({"buckets": {"a": {"doc_count": 1}, "b": {"doc_count": 2}}})
        );
        assert_eq!(
            result["terms"]["buckets"][0]["inner"],
            json!({"buckets": [{"doc_count": 3}, {"doc_count": 4}]})
        );
    }
}
