//! The parameters every clause shares: the shape of a clause's body (one field, an object of
//! known keys), `boost`, bounded integers, scalar query text and `minimum_should_match`.

use serde_json::{Map, Value};
use tantivy::query::{BoostQuery, Query};

use crate::error::{QueryError, parsing};

type Boxed = Box<dyn Query>;

pub(crate) fn as_object<'v>(
    body: &'v Value,
    clause: &str,
) -> Result<&'v Map<String, Value>, QueryError> {
    body.as_object()
        .ok_or_else(|| parsing(format!("[{clause}] query malformed, expected an object")))
}

/// Splits `{"field": value}` or `{"field": {params}}` into the field and its value or params.
pub(crate) fn single_field<'v>(
    body: &'v Value,
    clause: &str,
) -> Result<(&'v String, &'v Value), QueryError> {
    let obj = as_object(body, clause)?;
    let mut fields = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "boost" && k.as_str() != "_name");
    match (fields.next(), fields.next()) {
        (Some(pair), None) => Ok(pair),
        (None, _) => Err(parsing(format!("[{clause}] query does not name a field"))),
        _ => Err(parsing(format!(
            "[{clause}] query doesn't support multiple fields"
        ))),
    }
}

pub(crate) fn check_params(
    params: &Map<String, Value>,
    clause: &str,
    allowed: &[&str],
) -> Result<(), QueryError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(parsing(format!(
            "[{clause}] query does not support [{unknown}]"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn boost_of(params: Option<&Map<String, Value>>) -> Result<Option<f32>, QueryError> {
    match params.and_then(|p| p.get("boost")) {
        None => Ok(None),
        Some(v) => {
            let boost = v
                .as_f64()
                .ok_or_else(|| parsing("[boost] must be a number"))?;
            // As in Elasticsearch; and a boost beyond f32 would make every score infinite.
            if !(0.0..=f64::from(f32::MAX)).contains(&boost) {
                return Err(parsing(format!(
                    "[boost] must be a non-negative number no larger than {}, got [{v}]",
                    f32::MAX
                )));
            }
            Ok(Some(boost as f32))
        }
    }
}

/// A non-negative integer parameter that must fit in `u32` (slop, max_expansions, …).
pub(crate) fn u32_param(
    params: Option<&Map<String, Value>>,
    name: &str,
) -> Result<Option<u32>, QueryError> {
    match params.and_then(|p| p.get(name)) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                parsing(format!(
                    "[{name}] must be a non-negative integer no larger than {}, got [{v}]",
                    u32::MAX
                ))
            }),
    }
}

pub(crate) fn apply_boost(query: Boxed, boost: Option<f32>) -> Boxed {
    match boost {
        Some(b) if (b - 1.0).abs() > f32::EPSILON => Box::new(BoostQuery::new(query, b)),
        _ => query,
    }
}

pub(crate) type FieldValue<'v> = (&'v String, &'v Value, Option<&'v Map<String, Value>>);

pub(crate) fn single_value<'v>(
    body: &'v Value,
    clause: &str,
    value_key: &str,
    allowed: &[&str],
) -> Result<FieldValue<'v>, QueryError> {
    let (field, spec) = single_field(body, clause)?;
    match spec {
        Value::Object(params) => {
            check_params(params, clause, allowed)?;
            let value = params
                .get(value_key)
                .ok_or_else(|| parsing(format!("[{clause}] query requires [{value_key}]")))?;
            Ok((field, value, Some(params)))
        }
        value => Ok((field, value, None)),
    }
}

pub(crate) fn scalar_text(value: &Value, clause: &str) -> Result<String, QueryError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(parsing(format!(
            "[{clause}] query text must be a string, number or boolean"
        ))),
    }
}

/// Elasticsearch's `minimum_should_match`: a count, a negative count, or a (negative) percentage
/// of `clauses`; absent means 1.
pub(crate) fn minimum_should_match(
    value: Option<&Value>,
    clauses: usize,
) -> Result<usize, QueryError> {
    let bad = || parsing("[minimum_should_match] must be an integer or a percentage");
    let n = clauses as i64;
    let wanted: i64 = match value {
        None => return Ok(1.min(clauses)),
        Some(Value::Number(v)) => v.as_i64().ok_or_else(bad)?,
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(pct) => {
                let pct: i64 = pct.trim().parse().map_err(|_| bad())?;
                n.saturating_mul(pct.clamp(-100, 100)) / 100
            }
            None => s.trim().parse().map_err(|_| bad())?,
        },
        Some(_) => return Err(bad()),
    };
    let wanted = if wanted < 0 {
        n.saturating_add(wanted)
    } else {
        wanted
    };
    Ok(wanted.clamp(0, n) as usize)
}
