//! Coercing JSON values to what a mapped field holds, as Elasticsearch coerces them, and the
//! types dynamic mapping gives first-seen values.

use serde_json::Value;

use cameodb_schema::mapping::{FieldMapping, FieldType, date};

/// The dynamic mapping Elasticsearch gives a first-seen scalar.
pub(crate) fn infer(value: &Value) -> FieldMapping {
    match value {
        Value::Bool(_) => FieldMapping::of(FieldType::Boolean),
        Value::Number(n) if n.is_i64() => FieldMapping::of(FieldType::Long),
        Value::Number(_) => FieldMapping::of(FieldType::Float),
        Value::String(s) if date::looks_like_date(s) => FieldMapping::of(FieldType::Date),
        _ => {
            let mut keyword = FieldMapping::of(FieldType::Keyword);
            keyword.ignore_above = Some(256);
            let mut text = FieldMapping::of(FieldType::Text);
            text.fields.insert("keyword".to_string(), keyword);
            text
        }
    }
}

pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// Integer coercion as Elasticsearch does it: whole numbers as they are, decimals and numeric
/// strings truncated. The outer `None` means "not a number"; the inner `None` "out of range".
pub(crate) fn as_i64(value: &Value) -> Option<Option<i64>> {
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(Some(i)),
            (None, Some(_), _) => Some(None),
            (None, None, Some(f)) => Some(float_to_i64(f)),
            _ => None,
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(i) => Some(Some(i)),
                Err(_) => s
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(float_to_i64),
            }
        }
        _ => None,
    }
}

fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable as f64; i64 covers [-2^63, 2^63).
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let truncated = f.trunc();
    (-TWO_POW_63..TWO_POW_63)
        .contains(&truncated)
        .then_some(truncated as i64)
}
