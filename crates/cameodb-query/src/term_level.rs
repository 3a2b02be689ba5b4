//! Term-level pattern queries — prefix, wildcard, regexp, fuzzy — on text tokens and keywords.
//!
//! Keywords live as terms of the `_exact` JSON field, whose bytes are the path (segments joined
//! by 0x01), a 0x00, a type byte (`s` for strings) and the value; a pattern on a keyword is
//! therefore a regex over those bytes with the path part fixed.

use cameodb_storage::mapping::FieldType;
use serde_json::Value;
use tantivy::query::{EmptyQuery, FuzzyTermQuery, Query, RegexQuery};
use tantivy::schema::{Field, Term};

use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, raw_text_term};

type Boxed = Box<dyn Query>;

/// Escapes regex metacharacters.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~\"<>@".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lucene wildcard (`*`, `?`) to regex.
pub(crate) fn wildcard_to_regex(pattern: &str) -> String {
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            other => out.push_str(&escape(&other.to_string())),
        }
    }
    out
}

fn json_prefix(path: &str) -> String {
    let segments: Vec<String> = path.split('.').map(escape).collect();
    format!("{}\\x00s", segments.join("\\x01"))
}

/// A regex query over the terms of `field_path`'s target.
pub(crate) fn regex_on(
    ctx: &QueryContext<'_>,
    field_path: &str,
    value_regex: &str,
    clause: &str,
) -> Result<Boxed, QueryError> {
    let (field, full): (Field, String) = match ctx.target(field_path) {
        Target::Unmapped => return Ok(Box::new(EmptyQuery)),
        Target::Text {
            field,
            json_path: None,
            ..
        } => (field, value_regex.to_string()),
        Target::Text {
            field,
            json_path: Some(path),
            ..
        } => (field, format!("{}{value_regex}", json_prefix(&path))),
        Target::Exact { path, mapping } if mapping.field_type == FieldType::Keyword => (
            ctx.fields.exact,
            format!("{}{value_regex}", json_prefix(&path)),
        ),
        Target::Exact { mapping, .. } => {
            return Err(QueryError::Shard(format!(
                "Can only use {clause} queries on keyword and text fields - not on [{field_path}] which is of type [{}]",
                mapping.field_type.name()
            )));
        }
    };
    RegexQuery::from_pattern(&full, field)
        .map(|q| Box::new(q) as Boxed)
        .map_err(|e| parsing(format!("[{clause}] invalid pattern: {e}")))
}

/// Edit distance for `fuzziness` (`AUTO`, `AUTO:low,high`, 0, 1, 2) and a term of `len` chars.
pub(crate) fn fuzziness(value: &Value, len: usize) -> Result<u8, QueryError> {
    let auto = |low: usize, high: usize| {
        if len < low {
            0
        } else if len < high {
            1
        } else {
            2
        }
    };
    match value {
        Value::Number(n) => n
            .as_u64()
            .filter(|d| *d <= 2)
            .map(|d| d as u8)
            .ok_or_else(|| parsing("fuzziness must be 0, 1, 2 or AUTO")),
        Value::String(s) if s.eq_ignore_ascii_case("auto") => Ok(auto(3, 6)),
        Value::String(s) if s.to_ascii_lowercase().starts_with("auto:") => {
            let (low, high) = s[5..]
                .split_once(',')
                .ok_or_else(|| parsing(format!("invalid fuzziness [{s}]")))?;
            let low = low
                .trim()
                .parse()
                .map_err(|_| parsing(format!("invalid fuzziness [{s}]")))?;
            let high = high
                .trim()
                .parse()
                .map_err(|_| parsing(format!("invalid fuzziness [{s}]")))?;
            Ok(auto(low, high))
        }
        Value::String(s) => s
            .parse::<u8>()
            .ok()
            .filter(|d| *d <= 2)
            .ok_or_else(|| parsing(format!("invalid fuzziness [{s}]"))),
        _ => Err(parsing("fuzziness must be 0, 1, 2 or AUTO")),
    }
}

/// A fuzzy query for one already-built term.
pub(crate) fn fuzzy_term(term: Term, distance: u8, prefix: bool) -> Boxed {
    if prefix {
        Box::new(FuzzyTermQuery::new_prefix(term, distance, true))
    } else {
        Box::new(FuzzyTermQuery::new(term, distance, true))
    }
}

/// The `fuzzy` query: an unanalyzed value within an edit distance.
pub(crate) fn fuzzy_on(
    ctx: &QueryContext<'_>,
    field_path: &str,
    value: &str,
    fuzz: &Value,
) -> Result<Boxed, QueryError> {
    let distance = fuzziness(fuzz, value.chars().count())?;
    let target = ctx.target(field_path);
    let term = match &target {
        Target::Unmapped => return Ok(Box::new(EmptyQuery)),
        Target::Text { .. } => raw_text_term(&target, value),
        Target::Exact { path, mapping } if mapping.field_type == FieldType::Keyword => {
            let mut term = ctx.exact_prefix(path);
            term.append_type_and_str(value);
            Some(term)
        }
        Target::Exact { mapping, .. } => {
            return Err(QueryError::Shard(format!(
                "fuzzy queries are not supported on [{field_path}] of type [{}]",
                mapping.field_type.name()
            )));
        }
    };
    Ok(term.map_or_else(
        || Box::new(EmptyQuery) as Boxed,
        |t| fuzzy_term(t, distance, false),
    ))
}
