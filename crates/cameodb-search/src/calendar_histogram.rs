//! `date_histogram` on calendar months, quarters and years, whose buckets differ in length:
//! tantivy's date histogram takes only fixed intervals. Such a histogram is collected as a
//! `terms` aggregation over each date's period start (a computed value source, see
//! `calendar_source`, in the request's fixed-offset time zone), merged across indexes and
//! nodes like any aggregation, and shown back as Elasticsearch's date histogram:
//! ascending keys with `key_as_string`, empty buckets filled between the first and the last
//! (and out to `extended_bounds`) unless `min_doc_count` says otherwise, `hard_bounds` applied,
//! `keyed` honoured.
//!
//! What the reshaping needs is carried in the aggregation's name (between two marks), since
//! the final result is all that comes back.

use cameodb_schema::mapping::{FieldType, Mapping};
use chrono::{DateTime, Utc};

use crate::calendar_source::{CalendarStarts, Unit, Zone};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::aggregations::MAX_BUCKETS;
use crate::error::SearchError;

/// Marks a calendar histogram's name; its plan is written between two of them.
const MARK: char = '\u{7}';

/// Sub-aggregations whose value on no documents is zero, not null.
const ZERO_VALUED: &[&str] = &["sum", "value_count", "cardinality"];

/// How the composite's buckets become the histogram's.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Plan {
    /// The calendar period of a bucket.
    unit: Unit,
    /// Buckets with fewer documents are left out; at 0 the gaps are filled.
    min_doc_count: u64,
    /// Buckets as an object keyed by `key_as_string`.
    keyed: bool,
    /// `extended_bounds` in epoch milliseconds: empty buckets are shown out to them.
    extended: [Option<i64>; 2],
    /// `hard_bounds` in epoch milliseconds: no bucket is shown outside them.
    hard: [Option<i64>; 2],
    /// Names of sub-aggregations (at any depth) whose empty value is 0.
    zero_valued: Vec<String>,
    /// The time zone, as the request named it (`UTC` when it named none).
    zone: String,
}

impl Plan {
    fn zone(&self) -> Zone {
        Zone::parse(&self.zone).unwrap_or(Zone::Fixed(0))
    }
}

/// The name an aggregation runs under and its spec as run.
pub(crate) type Rewritten = (String, Map<String, Value>);

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

/// The period of a date histogram this module runs: calendar months, quarters and years in
/// any zone; calendar days and weeks in a zone with daylight saving (in UTC or a fixed offset
/// those are fixed lengths, which tantivy's own histogram buckets).
fn calendar_unit(body: &Map<String, Value>) -> Option<Unit> {
    let named_zone = body
        .get("time_zone")
        .and_then(Value::as_str)
        .and_then(Zone::parse)
        .is_some_and(|z| matches!(z, Zone::Named(_)));
    let unit = match body.get("calendar_interval").and_then(Value::as_str) {
        Some("second" | "1s") => Unit::Fixed(1_000),
        Some("minute" | "1m") => Unit::Fixed(60_000),
        Some("hour" | "1h") => Unit::Fixed(3_600_000),
        Some(interval) => Unit::of(interval)?,
        None => Unit::Fixed(fixed_ms(body.get("fixed_interval")?.as_str()?)?),
    };
    match unit {
        Unit::Months(_) => Some(unit),
        _ if named_zone => Some(unit),
        _ => None,
    }
}

/// A positive `fixed_interval` (`30m`, `1h`, `1d`) in milliseconds.
fn fixed_ms(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number
        .parse::<i64>()
        .ok()?
        .checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
}

/// When `spec` is a calendar-month or -year `date_histogram`, the name it runs under and the
/// spec rewritten as a `composite` (its sub-aggregations kept); `format` is the field's date
/// format, for bounds given as dates.
pub(crate) fn plan(
    name: &str,
    spec: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Option<Rewritten>, SearchError> {
    let Some(body) = spec.get("date_histogram").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some(unit) = calendar_unit(body) else {
        return Ok(None);
    };
    let field = body
        .get("field")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let source = starts(name, body, mapping)?;
    let mut plan = Plan {
        unit,
        min_doc_count: 0,
        keyed: false,
        extended: [None, None],
        hard: [None, None],
        zero_valued: Vec::new(),
        zone: source.zone_name.clone(),
    };
    let format = mapping.resolve(field).and_then(|(_, f)| f.format.clone());
    for (key, value) in body {
        match key.as_str() {
            "field" | "time_zone" | "calendar_interval" | "fixed_interval" => {}
            "format" => {} // accepted, no effect (as for fixed intervals)
            "min_doc_count" => {
                plan.min_doc_count = value.as_u64().ok_or_else(|| {
                    parsing(format!(
                        "[min_doc_count] of date_histogram [{name}] must be a non-negative integer"
                    ))
                })?;
            }
            "keyed" => plan.keyed = value.as_bool().unwrap_or(false),
            "extended_bounds" | "hard_bounds" => {
                let bounds = [
                    bound(name, value.get("min"), format.as_deref())?,
                    bound(name, value.get("max"), format.as_deref())?,
                ];
                if key == "extended_bounds" {
                    plan.extended = bounds;
                } else {
                    plan.hard = bounds;
                }
            }
            other => {
                return Err(parsing(format!(
                    "[{other}] of date_histogram [{name}] is not supported with calendar_interval [{}]",
                    unit.name()
                )));
            }
        }
    }
    if let [Some(min), Some(max)] = plan.extended {
        let span = periods_between(min, max, unit).unwrap_or(u64::MAX);
        if span >= u64::from(MAX_BUCKETS) {
            return Err(too_many_buckets());
        }
    }
    if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
        zero_valued_names(subs, &mut plan.zero_valued);
    }
    // One bucket per period start, in time order (see `calendar_source`).
    let terms = json!({
        "field": source.name(),
        "size": MAX_BUCKETS,
        "order": {"_key": "asc"},
    });
    let mut rewritten = spec.clone();
    rewritten.remove("date_histogram");
    rewritten.insert(SOURCE_TERMS.into(), terms);
    Ok(Some((crate::planned::name(name, MARK, &plan)?, rewritten)))
}

/// The key under which a rewritten spec holds a `terms` over a computed value source (calendar
/// periods, grid cells): passed to tantivy as is (its field is a source, not a mapped path).
pub(crate) const SOURCE_TERMS: &str = "\u{c}source_terms";

/// The calendar source a calendar `date_histogram` body buckets by.
fn starts(
    name: &str,
    body: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<CalendarStarts, SearchError> {
    let unit = calendar_unit(body).unwrap_or(Unit::Months(1));
    let field = body
        .get("field")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let path = match mapping.resolve(field) {
        Some((path, f)) if f.field_type == FieldType::Date => path.to_string(),
        Some(_) => {
            return Err(SearchError::illegal_argument(format!(
                "Field [{field}] of date_histogram [{name}] is not a date field"
            )));
        }
        None => field.to_string(),
    };
    let zone_name = body
        .get("time_zone")
        .and_then(Value::as_str)
        .unwrap_or("UTC")
        .to_string();
    let zone = Zone::parse(&zone_name).ok_or_else(|| {
        SearchError::illegal_argument(format!(
            "time_zone [{zone_name}] of date_histogram [{name}] is not a known time zone"
        ))
    })?;
    Ok(CalendarStarts {
        column: format!("{}.{path}", cameodb_schema::fields::EXACT_FIELD),
        unit,
        zone_name,
        zone,
    })
}

/// Registers the calendar source of every calendar `date_histogram` in `aggs`, at every level.
pub(crate) fn register(
    aggs: &Value,
    mapping: &Mapping,
    registry: &mut tantivy::aggregation::ValueSourceRegistry,
) -> Result<(), SearchError> {
    for (name, spec) in aggs.as_object().into_iter().flatten() {
        if let Some(body) = spec.get("date_histogram").and_then(Value::as_object)
            && calendar_unit(body).is_some()
        {
            let source = starts(name, body, mapping)?;
            registry.register(&source.name(), std::sync::Arc::new(source.provider()));
        }
        if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            register(subs, mapping, registry)?;
        }
    }
    Ok(())
}

fn bound(
    name: &str,
    value: Option<&Value>,
    format: Option<&str>,
) -> Result<Option<i64>, SearchError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let millis = match value.as_i64() {
        Some(millis) => Some(millis),
        None => cameodb_schema::mapping::date::parse_value(value, format),
    };
    millis.map(Some).ok_or_else(|| {
        parsing(format!(
            "bound [{value}] of date_histogram [{name}] is not a date"
        ))
    })
}

fn zero_valued_names(aggs: &Value, out: &mut Vec<String>) {
    for (name, spec) in aggs.as_object().into_iter().flatten() {
        if spec
            .as_object()
            .is_some_and(|s| s.keys().any(|k| ZERO_VALUED.contains(&k.as_str())))
        {
            out.push(name.clone());
        }
        if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            zero_valued_names(subs, out);
        }
    }
}

fn too_many_buckets() -> SearchError {
    SearchError::bad_request(
        "too_many_buckets_exception",
        format!(
            "Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}]. This limit can be set by changing the [search.max_buckets] cluster level setting."
        ),
    )
}

/// How many `unit` periods lie between two instants (UTC calendar, an upper bound's guard).
fn periods_between(from: i64, to: i64, unit: Unit) -> Option<u64> {
    let span = u64::try_from(to.checked_sub(from)?).ok()?;
    let days = span / 86_400_000;
    Some(match unit {
        Unit::Fixed(ms) => span / u64::try_from(ms).ok()?.max(1),
        Unit::Day => days,
        Unit::Week => days / 7,
        Unit::Months(n) => days / (28 * u64::from(n)),
    })
}

/// Shows every calendar histogram in `value` as Elasticsearch does, at every level.
pub(crate) fn reshape(value: &mut Value) -> Result<(), SearchError> {
    crate::planned::reshape_all(value, MARK, None, &mut |result, plan: Plan, _| {
        histogram(result, &plan)
    })
}

fn histogram(terms: Value, plan: &Plan) -> Result<Value, SearchError> {
    let mut found: Vec<(i64, Value)> = Vec::new();
    if let Some(Value::Array(buckets)) = terms.get("buckets") {
        for bucket in buckets {
            let Some(key) = bucket["key"].as_f64() else {
                continue;
            };
            let mut bucket = bucket.clone();
            if let Some(object) = bucket.as_object_mut() {
                object.remove("key");
                object.remove("key_as_string");
            }
            found.push((key as i64, bucket));
        }
    }
    found.sort_by_key(|(key, _)| *key);
    let template = found.first().map(|(_, b)| emptied(b, plan));
    let mut shown: Vec<(i64, Value)> = Vec::new();
    if plan.min_doc_count == 0 {
        let first = [found.first().map(|(k, _)| *k), plan.extended[0]]
            .into_iter()
            .flatten()
            .min();
        let last = [found.last().map(|(k, _)| *k), plan.extended[1]]
            .into_iter()
            .flatten()
            .max();
        if let (Some(first), Some(last)) = (first, last) {
            let zone = plan.zone();
            let start = |millis| {
                zone.period_start(millis, plan.unit)
                    .ok_or_else(too_many_buckets)
            };
            let (mut at, end) = (start(first)?, start(last)?);
            let mut existing = found.into_iter().peekable();
            while at <= end {
                let key = zone.instant(at).ok_or_else(too_many_buckets)?;
                let bucket = match existing.next_if(|(k, _)| *k == key) {
                    Some((_, bucket)) => bucket,
                    None => template.clone().unwrap_or_else(|| json!({"doc_count": 0})),
                };
                shown.push((key, bucket));
                if shown.len() > MAX_BUCKETS as usize {
                    return Err(too_many_buckets());
                }
                at = plan.unit.next(at).ok_or_else(too_many_buckets)?;
            }
        }
    } else {
        shown = found
            .into_iter()
            .filter(|(_, b)| b["doc_count"].as_u64().unwrap_or(0) >= plan.min_doc_count)
            .collect();
    }
    shown.retain(|(key, _)| {
        plan.hard[0].is_none_or(|min| *key >= min) && plan.hard[1].is_none_or(|max| *key <= max)
    });
    let buckets = shown.into_iter().map(|(key, mut bucket)| {
        let text = shown_in_zone(key, plan.zone().offset_at(key));
        if let Some(object) = bucket.as_object_mut() {
            object.insert("key_as_string".into(), Value::String(text.clone()));
            object.insert("key".into(), Value::from(key));
        }
        (text, bucket)
    });
    Ok(if plan.keyed {
        json!({"buckets": Map::from_iter(buckets)})
    } else {
        json!({"buckets": buckets.map(|(_, b)| b).collect::<Vec<_>>()})
    })
}

/// `millis` as Elasticsearch shows a date in a zone: local time with the zone's offset
/// (`2024-01-01T00:00:00.000+01:00`; `Z` for UTC).
fn shown_in_zone(millis: i64, offset_ms: i64) -> String {
    let Some(local) = millis
        .checked_add(offset_ms)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    else {
        return String::new();
    };
    let time = local.format("%Y-%m-%dT%H:%M:%S%.3f");
    if offset_ms == 0 {
        return format!("{time}Z");
    }
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let minutes = offset_ms.unsigned_abs() / 60_000;
    format!("{time}{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A bucket's result as it would be on no documents: counts 0, metrics null (or 0 for the
/// zero-valued kinds), no buckets.
fn emptied(bucket: &Value, plan: &Plan) -> Value {
    fn walk(value: &Value, zero_value: bool, plan: &Plan) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, child)| {
                        let emptied = match key.as_str() {
                            "doc_count"
                            | "count"
                            | "sum_other_doc_count"
                            | "doc_count_error_upper_bound" => json!(0),
                            "sum" if child.is_number() => json!(0.0),
                            "value" if zero_value => json!(0),
                            "buckets" if child.is_array() => json!([]),
                            "buckets" => json!({}),
                            "key" | "key_as_string" | "meta" => child.clone(),
                            name => walk(child, plan.zero_valued.iter().any(|z| z == name), plan),
                        };
                        (key.clone(), emptied)
                    })
                    .collect(),
            ),
            Value::Number(_) => Value::Null,
            other => other.clone(),
        }
    }
    walk(bucket, false, plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        Mapping::from_es_json(
            &json!({"properties": {"at": {"type": "date"}, "n": {"type": "long"}}}),
        )
        .unwrap()
    }

    fn plan_of(spec: Value) -> (String, Map<String, Value>) {
        plan("h", spec.as_object().unwrap(), &mapping())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn months_become_terms_over_period_starts_and_come_back_with_gaps_filled() {
        let (name, rewritten) = plan_of(json!({
            "date_histogram": {"field": "at", "calendar_interval": "month"},
            "aggs": {"total": {"sum": {"field": "n"}}}
        }));
        assert!(rewritten.contains_key(SOURCE_TERMS));
        let jan = 1_704_067_200_000i64; // 2024-01-01
        let mar = 1_709_251_200_000i64; // 2024-03-01
        let mut result = json!({ name: {"after_key": {}, "buckets": [
            {"key": mar, "doc_count": 1, "total": {"value": 5.0}},
            {"key": jan, "doc_count": 2, "total": {"value": 3.0}},
        ]}});
        reshape(&mut result).unwrap();
        let buckets = result["h"]["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 3);
        assert_eq!(buckets[0]["key"], json!(jan));
        assert_eq!(
            buckets[0]["key_as_string"],
            json!("2024-01-01T00:00:00.000Z")
        );
        assert_eq!(
            buckets[1]["key_as_string"],
            json!("2024-02-01T00:00:00.000Z")
        );
        assert_eq!(buckets[1]["doc_count"], json!(0));
        assert_eq!(buckets[1]["total"]["value"], json!(0));
        assert_eq!(buckets[2]["total"]["value"], json!(5.0));
    }

    #[test]
    fn years_honour_min_doc_count_keyed_and_bounds() {
        let (name, _) = plan_of(json!({"date_histogram": {
            "field": "at", "calendar_interval": "1y", "keyed": true,
            "extended_bounds": {"min": "2022-01-01", "max": "2025-06-01"},
            "hard_bounds": {"min": "2023-01-01"}
        }}));
        let mut result =
            json!({ name: {"buckets": [{"key": 1_704_067_200_000i64, "doc_count": 4}]}});
        reshape(&mut result).unwrap();
        let buckets = result["h"]["buckets"].as_object().unwrap();
        let keys: Vec<&str> = buckets.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "2023-01-01T00:00:00.000Z",
                "2024-01-01T00:00:00.000Z",
                "2025-01-01T00:00:00.000Z"
            ]
        );
        assert_eq!(buckets["2024-01-01T00:00:00.000Z"]["doc_count"], json!(4));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let spec = json!({"date_histogram": {"field": "at", "calendar_interval": "month", "offset": "1d"}});
        assert!(plan("h", spec.as_object().unwrap(), &mapping()).is_err());
        let spec = json!({"date_histogram": {"field": "at", "calendar_interval": "month",
            "extended_bounds": {"min": 0, "max": 253_402_300_799_000i64}}});
        assert!(plan("h", spec.as_object().unwrap(), &mapping()).is_err());
        let fixed = json!({"date_histogram": {"field": "at", "calendar_interval": "day"}});
        assert!(
            plan("h", fixed.as_object().unwrap(), &mapping())
                .unwrap()
                .is_none()
        );
    }
}
