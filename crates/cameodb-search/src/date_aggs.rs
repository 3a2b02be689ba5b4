//! Date aggregations' own parameters: `date_range` bounds, a date histogram's time zone and
//! bounds given as dates, and calendar intervals of fixed length.

use cameodb_schema::mapping::{FieldType, Mapping};
use serde_json::{Map, Value};

use crate::error::SearchError;

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

/// A `date_range` body with its `from` / `to` bounds (dates in the field's or the request's
/// format, or date math) as epoch milliseconds, for a `range` aggregation.
pub(crate) fn date_range_bounds(
    name: &str,
    body: &Value,
    mapping: &Mapping,
) -> Result<Value, SearchError> {
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

/// Time zones whose buckets are UTC's.
const UTC_ZONES: &[&str] = &["UTC", "Z", "+00:00", "-00:00", "+0000", "GMT", "Etc/UTC"];

/// A date histogram's `time_zone` (only UTC: tantivy buckets in UTC, and ignoring another zone
/// would shift every bucket) and its bounds given as dates (tantivy takes epoch milliseconds).
pub(crate) fn date_histogram_options(
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

/// Calendar intervals of fixed length in UTC become fixed intervals (weeks start on Monday, as
/// in Elasticsearch: the epoch was a Thursday, hence the offset). Months and years run as a
/// composite (see `calendar_histogram`); quarters are refused by name.
pub(crate) fn calendar_to_fixed(
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
                "calendar_interval [{other}] in date_histogram [{name}] is not supported; use calendar_interval month or fixed_interval"
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
