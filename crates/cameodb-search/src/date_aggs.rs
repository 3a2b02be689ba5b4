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

/// Milliseconds east of UTC of a UTC zone or a fixed offset (`+01:00`, `-0530`, `+02`,
/// `UTC+01:00`); `None` for a zone with daylight saving or a malformed one.
pub(crate) fn fixed_offset_ms(zone: &str) -> Option<i64> {
    if UTC_ZONES.contains(&zone) {
        return Some(0);
    }
    let offset = zone
        .strip_prefix("UTC")
        .or_else(|| zone.strip_prefix("GMT"))
        .unwrap_or(zone);
    let (sign, digits) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    if hours > 18 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3_600_000 + minutes * 60_000))
}

/// An `offset` like tantivy reads it (`+6h`, `-3d`, `90m`, `500ms`) in milliseconds.
fn offset_ms(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (number, unit) = rest.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(unit_ms)?.checked_mul(sign)
}

/// Time zones whose buckets are UTC's.
pub(crate) const UTC_ZONES: &[&str] = &["UTC", "Z", "+00:00", "-00:00", "+0000", "GMT", "Etc/UTC"];

/// A date histogram's `time_zone` (only UTC: tantivy buckets in UTC, and ignoring another zone
/// would shift every bucket) and its bounds given as dates (tantivy takes epoch milliseconds).
pub(crate) fn date_histogram_options(
    name: &str,
    body: &mut Map<String, Value>,
    format: Option<String>,
) -> Result<(), SearchError> {
    if let Some(zone) = body.remove("time_zone") {
        let text = zone.as_str().unwrap_or_default();
        let Some(zone_ms) = fixed_offset_ms(text) else {
            return Err(SearchError::illegal_argument(format!(
                "time_zone [{text}] of date_histogram [{name}] is not supported: only UTC and fixed offsets (+01:00) are, since tantivy buckets on a fixed grid"
            )));
        };
        // Local midnight is UTC midnight minus the zone's offset: the grid moves by it.
        if zone_ms != 0 {
            let own = match body.get("offset") {
                None => 0,
                Some(Value::String(offset)) => offset_ms(offset).ok_or_else(|| {
                    parsing(format!(
                        "[offset] [{offset}] of date_histogram [{name}] is not a time offset"
                    ))
                })?,
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                Some(other) => {
                    return Err(parsing(format!(
                        "[offset] [{other}] of date_histogram [{name}] is not a time offset"
                    )));
                }
            };
            let total = own.checked_sub(zone_ms).ok_or_else(|| {
                parsing(format!(
                    "[offset] of date_histogram [{name}] is out of range"
                ))
            })?;
            let sign = if total < 0 { "-" } else { "+" };
            body.insert(
                "offset".into(),
                Value::String(format!("{sign}{}ms", total.unsigned_abs())),
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_offsets_and_offsets_parse() {
        assert_eq!(fixed_offset_ms("UTC"), Some(0));
        assert_eq!(fixed_offset_ms("+01:00"), Some(3_600_000));
        assert_eq!(fixed_offset_ms("-05:30"), Some(-19_800_000));
        assert_eq!(fixed_offset_ms("+0200"), Some(7_200_000));
        assert_eq!(fixed_offset_ms("UTC-03"), Some(-10_800_000));
        assert_eq!(fixed_offset_ms("Europe/Paris"), None);
        assert_eq!(fixed_offset_ms("+25:00"), None);
        assert_eq!(offset_ms("-3d"), Some(-259_200_000));
        assert_eq!(offset_ms("+6h"), Some(21_600_000));
        assert_eq!(offset_ms("6x"), None);
    }
}
