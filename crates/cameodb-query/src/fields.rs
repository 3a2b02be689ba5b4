//! Resolving a field path to the tantivy field(s) and terms that index it.

use cameodb_schema::analysis::{normalize, normalizer_tokenizer};
use cameodb_schema::fields::{Fields, OVERFLOW_TOKENIZER, slot_search_tokenizer, slot_tokenizer};
use cameodb_schema::mapping::variant::encode_ip;
use cameodb_schema::mapping::{FieldMapping, FieldType, Mapping, Variant, date};
use serde_json::Value;
use tantivy::DateTime;
use tantivy::query::{ConstScoreQuery, Query};
use tantivy::schema::{DATE_TIME_PRECISION_INDEXED, Field, Term};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

use crate::error::QueryError;
use crate::limits::Budget;

/// What translation needs to know about the index, and the running limits of one translation.
pub struct QueryContext<'a> {
    /// The index mapping.
    pub(crate) mapping: &'a Mapping,
    /// Schema field handles.
    pub(crate) fields: &'a Fields,
    /// The index's analyzers (registered per text slot).
    pub(crate) tokenizers: &'a TokenizerManager,
    /// Nesting depth and clause count so far, checked against the named limits.
    pub(crate) budget: Budget,
    /// Inside a clause with `lenient: true`: a value that cannot be coerced to its field's
    /// type matches nothing instead of failing the query.
    pub(crate) lenient: std::cell::Cell<bool>,
    /// Inside a `nested` query: its path, the level the clauses within it match elements of
    /// (and the level a `nested` query within it joins to).
    pub(crate) nested_level: std::cell::RefCell<Option<String>>,
}

/// How a path is indexed.
pub(crate) enum Target {
    /// Analyzed text: in `field` (a slot) or, with `json_path`, in the overflow JSON field.
    Text {
        field: Field,
        json_path: Option<String>,
        analyzer: TextAnalyzer,
    },
    /// An exact value in the `_exact` JSON field.
    Exact {
        path: String,
        mapping: Box<FieldMapping>,
    },
    /// Not mapped (or an object): matches nothing, as in Elasticsearch.
    Unmapped,
}

impl<'a> QueryContext<'a> {
    /// A context for translating one query against `mapping` (use a new one per query: it
    /// counts the query's clauses).
    pub fn new(
        mapping: &'a Mapping,
        fields: &'a Fields,
        tokenizers: &'a TokenizerManager,
    ) -> QueryContext<'a> {
        QueryContext {
            mapping,
            fields,
            tokenizers,
            budget: Budget::default(),
            lenient: std::cell::Cell::new(false),
            nested_level: std::cell::RefCell::new(None),
        }
    }
}

impl QueryContext<'_> {
    pub(crate) fn target(&self, path: &str) -> Target {
        let Some((path, mapping)) = self.mapping.resolve(path) else {
            return Target::Unmapped;
        };
        match mapping.field_type {
            FieldType::Object => Target::Unmapped,
            // `index: false`: nothing is indexed under it, so nothing matches.
            FieldType::Text if mapping.index == Some(false) => Target::Unmapped,
            FieldType::Text => match self.fields.text_field(mapping.slot) {
                Some(field) => {
                    let slot = usize::from(mapping.slot.unwrap_or(0));
                    let analyzer = self
                        .tokenizers
                        .get(&slot_search_tokenizer(slot))
                        .unwrap_or_else(|| self.analyzer(&slot_tokenizer(slot)));
                    Target::Text {
                        field,
                        json_path: None,
                        analyzer,
                    }
                }
                None => Target::Text {
                    field: self.fields.text,
                    json_path: Some(path.to_string()),
                    analyzer: self.analyzer(OVERFLOW_TOKENIZER),
                },
            },
            _ => Target::Exact {
                path: path.to_string(),
                mapping: Box::new(mapping.clone()),
            },
        }
    }

    fn analyzer(&self, name: &str) -> TextAnalyzer {
        self.tokenizers
            .get(name)
            .unwrap_or_else(|| cameodb_schema::analyzer("standard"))
    }

    /// Every mapped leaf path that a query over "all fields" should search: text fields and
    /// keyword fields (Elasticsearch's `index.query.default_field: *`).
    pub(crate) fn all_fields(&self) -> Vec<String> {
        let mut paths = Vec::new();
        for (path, field) in &self.mapping.properties {
            if matches!(field.field_type, FieldType::Text | FieldType::Keyword) {
                paths.push(path.clone());
            }
        }
        paths
    }

    /// Runs `build` leniently when `lenient` is set (see [`QueryContext::lenient`]), restoring
    /// the outer setting after.
    pub(crate) fn with_lenient<T>(&self, lenient: bool, build: impl FnOnce() -> T) -> T {
        let outer = self.lenient.replace(self.lenient.get() || lenient);
        let out = build();
        self.lenient.set(outer);
        out
    }

    /// A field's clause under the lenient setting: a value its field cannot hold matches
    /// nothing when lenient, and is the error otherwise.
    pub(crate) fn tolerate(
        &self,
        clause: Result<Box<dyn Query>, QueryError>,
    ) -> Result<Box<dyn Query>, QueryError> {
        match clause {
            Err(QueryError::Shard(_)) if self.lenient.get() => {
                Ok(Box::new(tantivy::query::EmptyQuery))
            }
            other => other,
        }
    }

    /// `query` on `path` as its field scores it: a constant for `match_only_text`.
    pub(crate) fn scored(&self, path: &str, query: Box<dyn Query>) -> Box<dyn Query> {
        if self
            .mapping
            .resolve(path)
            .is_some_and(|(_, field)| field.constant_scored())
        {
            return Box::new(ConstScoreQuery::new(query, 1.0));
        }
        query
    }

    /// `text` as a keyword with a normalizer indexes it (unchanged without one).
    pub(crate) fn normalized(&self, mapping: &FieldMapping, text: &str) -> String {
        let normalizer = mapping
            .normalizer
            .as_deref()
            .filter(|_| mapping.field_type == FieldType::Keyword)
            .and_then(|name| self.tokenizers.get(&normalizer_tokenizer(name)));
        match normalizer {
            Some(mut normalizer) => normalize(&mut normalizer, text),
            None => text.to_string(),
        }
    }

    /// A query value coerced to the field's type (and normalized, for a keyword with a
    /// normalizer), as Elasticsearch does at query time.
    pub(crate) fn exact_value(
        &self,
        path: &str,
        mapping: &FieldMapping,
        value: &Value,
    ) -> Result<ExactValue, QueryError> {
        Ok(match exact_value(path, mapping, value)? {
            ExactValue::Str(text) if mapping.normalizer.is_some() => {
                ExactValue::Str(self.normalized(mapping, &text))
            }
            other => other,
        })
    }

    /// The JSON-path term prefix of `path` in the exact field.
    pub(crate) fn exact_prefix(&self, path: &str) -> Term {
        Term::from_field_json_path(self.fields.exact, path, true)
    }
}

/// Tokenizes `text` for a text target: (position, term) pairs.
pub(crate) fn text_terms(target: &Target, text: &str) -> Vec<(usize, Term)> {
    text_tokens(target, text)
        .into_iter()
        .map(|(position, _, term)| (position, term))
        .collect()
}

/// Tokenizes `text` for a text target: (position, token text, term).
pub(crate) fn text_tokens(target: &Target, text: &str) -> Vec<(usize, String, Term)> {
    let Target::Text {
        field,
        json_path,
        analyzer,
    } = target
    else {
        return Vec::new();
    };
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        let term = match json_path {
            None => Term::from_field_text(*field, &token.text),
            Some(path) => {
                let mut term = Term::from_field_json_path(*field, path, true);
                term.append_type_and_str(&token.text);
                term
            }
        };
        out.push((token.position, token.text.clone(), term));
    }
    out
}

/// A text target's term for a raw (unanalyzed) value, as `term` queries use.
pub(crate) fn raw_text_term(target: &Target, text: &str) -> Option<Term> {
    let Target::Text {
        field, json_path, ..
    } = target
    else {
        return None;
    };
    Some(match json_path {
        None => Term::from_field_text(*field, text),
        Some(path) => {
            let mut term = Term::from_field_json_path(*field, path, true);
            term.append_type_and_str(text);
            term
        }
    })
}

fn shard_error(path: &str, mapping: &FieldMapping, value: &Value) -> QueryError {
    QueryError::Shard(format!(
        "failed to create query: cannot parse [{value}] as [{}] for field [{path}]",
        mapping.type_name()
    ))
}

/// A typed value as the index stores it for an exact field.
pub(crate) enum ExactValue {
    Str(String),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// Epoch milliseconds, possibly outside what the index can hold (see [`exact_term`]).
    Date(i64),
}

/// Coerces a query value to the field's type, as Elasticsearch does at query time.
fn exact_value(
    path: &str,
    mapping: &FieldMapping,
    value: &Value,
) -> Result<ExactValue, QueryError> {
    let ty = mapping.field_type;
    let err = || shard_error(path, mapping, value);
    if mapping.variant == Some(Variant::GeoPoint) {
        return Err(QueryError::Shard(format!(
            "Field [{path}] of type [geo_point] does not support exact or range queries: use geo_distance or geo_bounding_box"
        )));
    }
    if mapping.variant == Some(Variant::Ip) {
        let address = value.as_str().and_then(|s| s.trim().parse().ok());
        return Ok(ExactValue::Str(encode_ip(address.ok_or_else(err)?)));
    }
    Ok(match ty {
        FieldType::Keyword | FieldType::Text | FieldType::Object => ExactValue::Str(match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(err()),
        }),
        FieldType::Long | FieldType::Integer | FieldType::Short | FieldType::Byte => {
            let number = match value {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            ExactValue::I64(number.ok_or_else(err)?)
        }
        FieldType::Double | FieldType::Float => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|f| f.is_finite())
            .ok_or_else(err)?;
            let number = if ty == FieldType::Float {
                f64::from(number as f32)
            } else {
                number
            };
            let number = mapping.variant.as_ref().map_or(number, |v| v.round(number));
            // The index stores whole floats as integers; query the same way.
            if number.fract() == 0.0 && number.abs() < 9.0e15 {
                ExactValue::I64(number as i64)
            } else {
                ExactValue::F64(number)
            }
        }
        FieldType::Boolean => ExactValue::Bool(match value {
            Value::Bool(b) => *b,
            Value::String(s) if s == "true" => true,
            Value::String(s) if s == "false" => false,
            _ => return Err(err()),
        }),
        FieldType::Date => ExactValue::Date(match value.as_str().and_then(date_math) {
            Some(millis) => millis,
            None => date::parse_value(value, mapping.format.as_deref()).ok_or_else(err)?,
        }),
    })
}

/// The exact-field term for `value` at `path`. A date the index cannot hold is refused: no
/// document can have it.
pub(crate) fn exact_term(prefix: &Term, value: &ExactValue) -> Result<Term, QueryError> {
    if let ExactValue::Date(millis) = value
        && date::index_datetime(*millis).is_none()
    {
        return Err(QueryError::Shard(date::out_of_range(&millis.to_string())));
    }
    Ok(bound_term(prefix, value))
}

/// The exact-field term for a range bound at `path`. A date beyond what the index can hold is
/// clamped to its range, which every stored date lies within, so the range selects the same
/// documents.
pub(crate) fn bound_term(prefix: &Term, value: &ExactValue) -> Term {
    let mut term = prefix.clone();
    match value {
        ExactValue::Str(s) => term.append_type_and_str(s),
        ExactValue::I64(n) => term.append_type_and_fast_value(*n),
        ExactValue::F64(f) => term.append_type_and_fast_value(*f),
        ExactValue::Bool(b) => term.append_type_and_fast_value(*b),
        ExactValue::Date(millis) => {
            let clamped = (*millis).clamp(date::MIN_MILLIS, date::MAX_MILLIS);
            let datetime = DateTime::from_timestamp_millis(clamped);
            term.append_type_and_fast_value(datetime.truncate(DATE_TIME_PRECISION_INDEXED))
        }
    }
    term
}

/// Elasticsearch date math anchored at `now`: `now`, `now-1d`, `now+2h/d`, … (units y, M, w,
/// d, h, H, m, s; months and years are taken as 30 and 365 days). `None` when `text` is not date
/// math, or when its arithmetic leaves the 64-bit millisecond range.
pub fn date_math(text: &str) -> Option<i64> {
    let rest = text.strip_prefix("now")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    date_math_from(i64::try_from(now).ok()?, rest)
}

fn unit_millis(unit: char) -> Option<i64> {
    Some(match unit {
        'y' => 365 * 86_400_000,
        'M' => 30 * 86_400_000,
        'w' => 7 * 86_400_000,
        'd' => 86_400_000,
        'h' | 'H' => 3_600_000,
        'm' => 60_000,
        's' => 1_000,
        _ => return None,
    })
}

/// Applies the operations of date math (`-1d/d`, …) to `millis`, checked: any overflow is
/// `None`, never a wrapped date.
pub(crate) fn date_math_from(mut millis: i64, rest: &str) -> Option<i64> {
    let mut chars = rest.chars().peekable();
    while let Some(op) = chars.next() {
        if op == '/' {
            let unit = unit_millis(chars.next()?)?;
            millis = millis.div_euclid(unit).checked_mul(unit)?;
            continue;
        }
        let mut amount: Option<i64> = None;
        while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
            chars.next();
            amount = Some(
                amount
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(i64::from(digit))?,
            );
        }
        let delta = amount
            .unwrap_or(1)
            .checked_mul(unit_millis(chars.next()?)?)?;
        millis = match op {
            '+' => millis.checked_add(delta)?,
            '-' => millis.checked_sub(delta)?,
            _ => return None,
        };
    }
    Some(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_math_offsets_and_rounding() {
        let day = 86_400_000;
        assert_eq!(date_math_from(10 * day + 5, ""), Some(10 * day + 5));
        assert_eq!(date_math_from(10 * day + 5, "-1d"), Some(9 * day + 5));
        assert_eq!(date_math_from(10 * day + 5, "+2h/d"), Some(10 * day));
        assert_eq!(date_math_from(10 * day, "-1w"), Some(3 * day));
        assert_eq!(date_math_from(0, "-1x"), None);
        assert!(date_math("now-1d").is_some());
        assert!(date_math("2020-01-01").is_none());
    }

    #[test]
    fn hostile_date_math_is_refused_not_wrapped_or_panicking() {
        for text in [
            "now\u{e9}",
            "now+\u{e9}",
            "now/\u{e9}",
            "now+1\u{e9}",
            "now+9999999999y",
            "now-9999999999y",
            "now+99999999999999999999d",
            "now+",
            "now/",
            "now-1",
        ] {
            assert_eq!(date_math(text), None, "{text}");
        }
        assert_eq!(
            date_math_from(i64::MAX - 5, "/y"),
            Some((i64::MAX - 5).div_euclid(365 * 86_400_000) * 365 * 86_400_000)
        );
        assert_eq!(date_math_from(i64::MIN, "/y"), None);
    }
}
