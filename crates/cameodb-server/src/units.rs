//! Elasticsearch's units in request parameters and settings: time values (`30s`, `1h`, `-1`)
//! and byte sizes (`512mb`, `2gb`). Pure: every number read from a request is checked, so a
//! value too large for its unit is an error naming the parameter, never a wrapped number.

use std::time::Duration;

/// Why a time value or byte size was refused; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse [{name}] with value [{value}]: {why}")]
pub struct UnitError {
    /// The parameter or setting being parsed (`scroll`, `index.refresh_interval`, …).
    pub name: String,
    /// The value as sent.
    pub value: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Nanoseconds per unit of the time units Elasticsearch accepts (`nanos micros ms s m h d`).
const TIME_UNITS: &[(&str, u64)] = &[
    ("nanos", 1),
    ("micros", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses an Elasticsearch time value. `-1` (and, where allowed, `0`) mean "disabled" and give
/// `None`; every other value needs a unit. Fractions are refused (as Elasticsearch does for
/// most settings); values whose nanosecond count overflows 64 bits are refused.
pub fn time_value(name: &str, value: &str) -> Result<Option<Duration>, UnitError> {
    let err = |why| UnitError {
        name: name.to_string(),
        value: value.to_string(),
        why,
    };
    let text = value.trim().to_ascii_lowercase();
    let text = text.as_str();
    if text == "-1" {
        return Ok(None);
    }
    if text == "0" {
        return Ok(Some(Duration::ZERO));
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(err(
            "expected a number followed by a unit (nanos, micros, ms, s, m, h, d), or -1",
        ));
    }
    let (number, unit) = text.split_at(digits);
    let per_unit = TIME_UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .map(|(_, nanos)| *nanos)
        .ok_or_else(|| {
            err("unknown or missing time unit; use one of nanos, micros, ms, s, m, h, d")
        })?;
    let number: u64 = number.parse().map_err(|_| err("the number is too large"))?;
    let nanos = number
        .checked_mul(per_unit)
        .ok_or_else(|| err("the duration is too large"))?;
    Ok(Some(Duration::from_nanos(nanos)))
}

/// [`time_value`] where `-1` is not allowed: a duration is required.
pub fn required_time_value(name: &str, value: &str) -> Result<Duration, UnitError> {
    time_value(name, value)?.ok_or_else(|| UnitError {
        name: name.to_string(),
        value: value.to_string(),
        why: "a duration is required here",
    })
}

/// Bytes per unit of the byte-size units Elasticsearch accepts.
const BYTE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1 << 10),
    ("mb", 1 << 20),
    ("gb", 1 << 30),
    ("tb", 1 << 40),
    ("pb", 1 << 50),
];

/// Parses a byte size: a number of bytes (`1048576`) or a number with a unit (`512mb`, `2gb`;
/// units are powers of 1024, case-insensitive, as in Elasticsearch).
pub fn byte_size(name: &str, value: &str) -> Result<u64, UnitError> {
    let err = |why| UnitError {
        name: name.to_string(),
        value: value.to_string(),
        why,
    };
    let text = value.trim().to_ascii_lowercase();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(err(
            "expected a number of bytes, optionally with a unit (kb, mb, gb, tb)",
        ));
    }
    let (number, unit) = text.split_at(digits);
    let per_unit = match unit.trim() {
        "" => 1,
        unit => BYTE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, bytes)| *bytes)
            .ok_or_else(|| err("unknown byte unit; use one of b, kb, mb, gb, tb, pb"))?,
    };
    let number: u64 = number.parse().map_err(|_| err("the number is too large"))?;
    number
        .checked_mul(per_unit)
        .ok_or_else(|| err("the size is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_elasticsearch_time_unit() {
        let ok = |v: &str| time_value("t", v).expect(v);
        assert_eq!(ok("250nanos"), Some(Duration::from_nanos(250)));
        assert_eq!(ok("7micros"), Some(Duration::from_micros(7)));
        assert_eq!(ok("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(ok("30s"), Some(Duration::from_secs(30)));
        assert_eq!(ok("5m"), Some(Duration::from_secs(300)));
        assert_eq!(ok("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(ok("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(ok("-1"), None);
        assert_eq!(ok("0"), Some(Duration::ZERO));
    }

    #[test]
    fn bad_and_huge_time_values_are_refused_by_name() {
        for bad in [
            "",
            "soon",
            "10",
            "10x",
            "1.5s",
            "-5s",
            "s",
            "2305843009213693952s",
            "18446744073709551616ms",
            "999999999999d",
            "1h\u{e9}",
        ] {
            let err = time_value("index.refresh_interval", bad).expect_err(bad);
            assert_eq!(err.name, "index.refresh_interval");
            assert!(err.to_string().contains("[index.refresh_interval]"));
        }
        assert!(required_time_value("scroll", "-1").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(byte_size("b", "100"), Ok(100));
        assert_eq!(byte_size("b", "1kb"), Ok(1024));
        assert_eq!(byte_size("b", "512MB"), Ok(512 << 20));
        assert_eq!(byte_size("b", "2gb"), Ok(2 << 30));
        for bad in ["", "mb", "1.5gb", "1xb", "99999999pb", "-1"] {
            assert!(byte_size("b", bad).is_err(), "{bad}");
        }
    }
}
