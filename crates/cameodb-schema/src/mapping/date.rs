//! Date parsing for `date` fields: Elasticsearch's common named formats plus simple Java-style
//! patterns (`yyyy-MM-dd HH:mm:ss`). Dates are kept as milliseconds since the epoch, UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use crate::error::{Result, SchemaError};

/// The earliest date the index can hold, epoch milliseconds: tantivy keeps dates as signed
/// 64-bit nanoseconds, so 1677-09-21T00:12:43.146Z.
pub const MIN_MILLIS: i64 = i64::MIN / 1_000_000 + 1;
/// The latest date the index can hold, epoch milliseconds: 2262-04-11T23:47:16.854Z.
pub const MAX_MILLIS: i64 = i64::MAX / 1_000_000;

/// The index's value for a date of `millis`, or `None` when it lies outside
/// [`MIN_MILLIS`]..=[`MAX_MILLIS`] (it would wrap around in nanoseconds).
pub fn index_datetime(millis: i64) -> Option<tantivy::DateTime> {
    (MIN_MILLIS..=MAX_MILLIS)
        .contains(&millis)
        .then(|| tantivy::DateTime::from_timestamp_millis(millis))
}

/// Why a date is refused: it lies outside what the index can hold.
pub fn out_of_range(text: &str) -> String {
    format!(
        "date [{text}] is outside the supported range [1677-09-21T00:12:43.146Z, 2262-04-11T23:47:16.854Z]"
    )
}

/// Formats used when a date field names none, as in Elasticsearch.
pub const DEFAULT_FORMATS: &str = "strict_date_optional_time||epoch_millis";

/// Checks every `||`-separated format is one we can parse.
pub fn validate_formats(formats: &str) -> Result<()> {
    for format in formats.split("||") {
        if named_parser(format).is_none() && java_to_chrono(format).is_none() {
            return Err(SchemaError::InvalidMapping {
                reason: format!("Invalid format: [{format}]: unsupported date format"),
            });
        }
    }
    Ok(())
}

type Parser = fn(&str) -> Option<i64>;

fn named_parser(format: &str) -> Option<Parser> {
    Some(match format {
        "strict_date_optional_time"
        | "date_optional_time"
        | "strict_date_optional_time_nanos"
        | "date_time"
        | "strict_date_time"
        | "strict_date"
        | "date"
        | "iso8601" => parse_iso,
        "epoch_millis" => |s| s.parse::<i64>().ok(),
        "epoch_second" => |s| s.parse::<i64>().ok().and_then(|v| v.checked_mul(1000)),
        _ => return None,
    })
}

/// Parses a JSON value as a date under `formats` (`None` = [`DEFAULT_FORMATS`]), returning epoch
/// milliseconds. Numbers are read as epoch milliseconds when `epoch_millis` is allowed (and as
/// seconds under `epoch_second`).
pub fn parse_value(value: &Value, formats: Option<&str>) -> Option<i64> {
    let formats = formats.unwrap_or(DEFAULT_FORMATS);
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.is_finite() => (f.trunc() as i64).to_string(),
            _ => return None,
        },
        _ => return None,
    };
    parse_str(&text, formats)
}

/// Parses `text` under the `||`-separated `formats`.
pub fn parse_str(text: &str, formats: &str) -> Option<i64> {
    formats
        .split("||")
        .find_map(|format| match named_parser(format) {
            Some(parser) => parser(text),
            None => java_to_chrono(format).and_then(|pattern| parse_pattern(text, &pattern)),
        })
}

/// True when a dynamically mapped string should become a date (Elasticsearch's date detection
/// with `strict_date_optional_time`): it must at least look like `yyyy-MM-dd`.
pub fn looks_like_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && parse_iso(text).is_some()
}

fn digits(text: &str, len: usize) -> Option<(u32, &str)> {
    let head = text.get(..len)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &text[len..]))
}

/// ISO-8601 as Elasticsearch's `strict_date_optional_time` accepts it: `yyyy[-MM[-dd]]` then
/// optionally `THH[:mm[:ss[.fraction]]]` and a zone (`Z`, `±HH:mm`, `±HHmm`, `±HH`).
fn parse_iso(text: &str) -> Option<i64> {
    let (year, rest) = digits(text, 4)?;
    let (month, rest) = match rest.strip_prefix('-') {
        Some(r) => digits(r, 2)?,
        None => (1, rest),
    };
    let (day, rest) = match rest.strip_prefix('-') {
        Some(r) => digits(r, 2)?,
        None => (1, rest),
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let Some(rest) = rest.strip_prefix('T') else {
        return rest
            .is_empty()
            .then(|| date.and_hms_opt(0, 0, 0))
            .flatten()
            .map(|dt| dt.and_utc().timestamp_millis());
    };
    let (hour, rest) = digits(rest, 2)?;
    let (minute, rest) = match rest.strip_prefix(':') {
        Some(r) => digits(r, 2)?,
        None => (0, rest),
    };
    let (second, rest) = match rest.strip_prefix(':') {
        Some(r) => digits(r, 2)?,
        None => (0, rest),
    };
    let (millis, rest) = match rest.strip_prefix(['.', ',']) {
        Some(r) => {
            let len = r.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 || len > 9 {
                return None;
            }
            let frac = &r[..len];
            let millis: u32 = format!("{frac:0<3}")[..3].parse().ok()?;
            (millis, &r[len..])
        }
        None => (0, rest),
    };
    let offset_secs = parse_zone(rest)?;
    let time = date.and_hms_milli_opt(hour, minute, second, millis)?;
    Some(time.and_utc().timestamp_millis() - i64::from(offset_secs) * 1000)
}

fn parse_zone(text: &str) -> Option<i32> {
    if text.is_empty() || text == "Z" {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &text[1..];
    let (hours, rest) = digits(body, 2)?;
    let minutes = match rest {
        "" => 0,
        r => {
            let r = r.strip_prefix(':').unwrap_or(r);
            let (m, tail) = digits(r, 2)?;
            if !tail.is_empty() {
                return None;
            }
            m
        }
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * i32::try_from(hours * 3600 + minutes * 60).ok()?)
}

/// Translates a simple Java `DateTimeFormatter` pattern to a chrono pattern.
fn java_to_chrono(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let mut run = 1;
        while chars.peek() == Some(&c) && c.is_ascii_alphabetic() {
            chars.next();
            run += 1;
        }
        let piece = match (c, run) {
            ('y' | 'u', 4) => "%Y",
            ('y' | 'u', 2) => "%y",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('d', 2) => "%d",
            ('H', 2) => "%H",
            ('m', 2) => "%M",
            ('s', 2) => "%S",
            ('S', 3) => "%3f",
            ('Z', 1) | ('X', 2) => "%z",
            ('X', 3) | ('Z', 3) => "%:z",
            ('\'', 1) => {
                for literal in chars.by_ref() {
                    if literal == '\'' {
                        break;
                    }
                    out.push(literal);
                }
                continue;
            }
            (c, _) if c.is_ascii_alphabetic() => return None,
            (c, n) => {
                for _ in 0..n {
                    out.push(c);
                    if c == '%' {
                        out.push('%');
                    }
                }
                continue;
            }
        };
        out.push_str(piece);
    }
    Some(out)
}

fn parse_pattern(text: &str, pattern: &str) -> Option<i64> {
    if pattern.contains("%z") || pattern.contains("%:z") {
        return DateTime::parse_from_str(text, pattern)
            .ok()
            .map(|dt| dt.timestamp_millis());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(text, pattern) {
        return Some(dt.and_utc().timestamp_millis());
    }
    NaiveDate::parse_from_str(text, pattern)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iso_variants() {
        let day = 1_420_070_400_000; // 2015-01-01T00:00:00Z
        assert_eq!(parse_str("2015-01-01", DEFAULT_FORMATS), Some(day));
        assert_eq!(
            parse_str("2015-01-01T00:00:00Z", DEFAULT_FORMATS),
            Some(day)
        );
        assert_eq!(
            parse_str("2015-01-01T01:00:00+01:00", DEFAULT_FORMATS),
            Some(day)
        );
        assert_eq!(
            parse_str("2015-01-01T00:00:00.250", DEFAULT_FORMATS),
            Some(day + 250)
        );
        assert_eq!(parse_str("2015", DEFAULT_FORMATS), Some(day));
        assert_eq!(parse_str("2015-13-01", "strict_date_optional_time"), None);
        assert_eq!(parse_str("hello", DEFAULT_FORMATS), None);
        assert_eq!(parse_value(&json!(day), None), Some(day));
    }

    #[test]
    fn dates_beyond_the_index_range_are_refused() {
        let far = parse_str("9999-12-31", DEFAULT_FORMATS).expect("parses");
        assert!(index_datetime(far).is_none());
        assert!(index_datetime(MAX_MILLIS).is_some());
        assert!(index_datetime(MIN_MILLIS).is_some());
        assert!(index_datetime(MIN_MILLIS - 1).is_none());
        assert_eq!(
            index_datetime(0).map(|d| d.into_timestamp_millis()),
            Some(0)
        );
    }

    #[test]
    fn java_patterns() {
        assert_eq!(
            parse_str("2015/01/01 00:00:00", "yyyy/MM/dd HH:mm:ss"),
            Some(1_420_070_400_000)
        );
        assert_eq!(
            parse_str("01-01-2015", "dd-MM-yyyy"),
            Some(1_420_070_400_000)
        );
        assert!(validate_formats("yyyy-MM-dd||epoch_millis").is_ok());
        assert!(validate_formats("qqqq").is_err());
    }

    #[test]
    fn date_detection_needs_a_full_date() {
        assert!(looks_like_date("2009-01-19"));
        assert!(!looks_like_date("2009"));
        assert!(!looks_like_date("not a date"));
    }
}
