//! Term-level clauses — term, terms, ids, exists, range, and the patterns prefix, wildcard,
//! regexp and fuzzy — on text tokens and keywords.
//!
//! Keywords live as terms of the `_exact` JSON field, whose bytes are the path (segments joined
//! by 0x01), a 0x00, a type byte (`s` for strings) and the value; a pattern on a keyword is
//! therefore a regex over those bytes with the path part fixed.

use std::ops::Bound;

use cameodb_schema::mapping::FieldType;
use serde_json::Value;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, EmptyQuery, FuzzyTermQuery, Occur, Query, RangeQuery,
    RegexQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Term};

use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, bound_term, exact_term, raw_text_term};
use crate::limits::check_terms_count;
use crate::params::{
    apply_boost, as_object, boost_of, check_params, scalar_text, single_field, single_value,
};

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
                mapping.type_name()
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
            term.append_type_and_str(&ctx.normalized(mapping, value));
            Some(term)
        }
        Target::Exact { mapping, .. } => {
            return Err(QueryError::Shard(format!(
                "fuzzy queries are not supported on [{field_path}] of type [{}]",
                mapping.type_name()
            )));
        }
    };
    Ok(term.map_or_else(
        || Box::new(EmptyQuery) as Boxed,
        |t| fuzzy_term(t, distance, false),
    ))
}

pub(crate) fn term_of(
    target: &Target,
    value: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Option<Term>, QueryError> {
    Ok(match target {
        Target::Unmapped => None,
        Target::Text { .. } => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(parsing("[term] value must be a string, number or boolean")),
            };
            raw_text_term(target, &text)
        }
        Target::Exact { path, mapping } => Some(exact_term(
            &ctx.exact_prefix(path),
            &ctx.exact_value(path, mapping, value)?,
        )?),
    })
}

pub(crate) fn term_query_for(term: Option<Term>) -> Boxed {
    match term {
        Some(term) => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
        None => Box::new(EmptyQuery),
    }
}

pub(crate) fn term_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, spec) = single_field(body, "term")?;
    let (value, params) = match spec {
        Value::Object(params) => {
            check_params(
                params,
                "term",
                &["value", "boost", "_name", "case_insensitive"],
            )?;
            (
                params
                    .get("value")
                    .ok_or_else(|| parsing("[term] query requires [value]"))?,
                Some(params),
            )
        }
        value => (value, None),
    };
    let target = ctx.target(field);
    let query = match crate::ip::cidr_query(&target, value, ctx)? {
        Some(block) => block,
        None => term_query_for(term_of(&target, value, ctx)?),
    };
    Ok(apply_boost(ctx.scored(field, query), boost_of(params)?))
}

pub(crate) fn terms_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, values) = single_field(body, "terms")?;
    let values = values
        .as_array()
        .ok_or_else(|| parsing("[terms] query requires an array of values"))?;
    check_terms_count("terms", values.len())?;
    let target = ctx.target(field);
    let mut terms = Vec::new();
    let mut blocks = Vec::new();
    for value in values {
        if let Some(block) = crate::ip::cidr_query(&target, value, ctx)? {
            blocks.push((Occur::Should, block));
        } else if let Some(term) = term_of(&target, value, ctx)? {
            terms.push(term);
        }
    }
    let mut matching: Boxed = Box::new(TermSetQuery::new(terms));
    if !blocks.is_empty() {
        blocks.push((Occur::Should, matching));
        matching = Box::new(BooleanQuery::new(blocks));
    }
    let query: Boxed = Box::new(ConstScoreQuery::new(matching, 1.0));
    Ok(apply_boost(query, boost_of(body.as_object())?))
}

pub(crate) fn ids_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "ids")?;
    check_params(params, "ids", &["values", "boost", "_name"])?;
    let values = params
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| parsing("[ids] query requires [values]"))?;
    check_terms_count("ids", values.len())?;
    let terms = values
        .iter()
        .map(|v| {
            v.as_str()
                .map(|id| Term::from_field_text(ctx.fields.id, id))
                .ok_or_else(|| parsing("[ids] values must be strings"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let query: Boxed = Box::new(ConstScoreQuery::new(
        Box::new(TermSetQuery::new(terms)),
        1.0,
    ));
    Ok(apply_boost(query, boost_of(Some(params))?))
}

pub(crate) fn exists_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "exists")?;
    check_params(params, "exists", &["field", "boost", "_name"])?;
    let field = params
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing("[exists] query requires [field]"))?;
    let field = ctx.mapping.resolve(field).map_or(field, |(path, _)| path);
    let term = Term::from_field_text(ctx.fields.field_names, field);
    Ok(Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        1.0,
    )))
}

pub(crate) fn range_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, spec) = single_field(body, "range")?;
    let params = spec
        .as_object()
        .ok_or_else(|| parsing("[range] query malformed"))?;
    check_params(
        params,
        "range",
        &[
            "gt",
            "gte",
            "lt",
            "lte",
            "boost",
            "_name",
            "format",
            "time_zone",
        ],
    )?;
    let (path, mapping) = match ctx.target(field) {
        Target::Exact { path, mapping } => (path, mapping),
        Target::Unmapped => return Ok(Box::new(EmptyQuery)),
        Target::Text { .. } => {
            return Err(QueryError::Shard(format!(
                "range queries on text field [{field}] are not supported; use a keyword field"
            )));
        }
    };
    let mut mapping = mapping;
    if let Some(format) = params.get("format").and_then(Value::as_str) {
        mapping.format = Some(format.to_string());
    }
    let prefix = ctx.exact_prefix(&path);
    let bound = |inclusive: &str, exclusive: &str| -> Result<Bound<Term>, QueryError> {
        Ok(match (params.get(inclusive), params.get(exclusive)) {
            (Some(v), _) if !v.is_null() => {
                Bound::Included(bound_term(&prefix, &ctx.exact_value(&path, &mapping, v)?))
            }
            (_, Some(v)) if !v.is_null() => {
                Bound::Excluded(bound_term(&prefix, &ctx.exact_value(&path, &mapping, v)?))
            }
            _ => Bound::Unbounded,
        })
    };
    let lower = bound("gte", "gt")?;
    let upper = bound("lte", "lt")?;
    let query: Boxed = Box::new(ConstScoreQuery::new(
        Box::new(RangeQuery::new(lower, upper)),
        1.0,
    ));
    Ok(apply_boost(query, boost_of(Some(params))?))
}

pub(crate) fn pattern_query(
    body: &Value,
    ctx: &QueryContext<'_>,
    clause: &str,
) -> Result<Boxed, QueryError> {
    let (field, value, params) = single_value(
        body,
        clause,
        "value",
        &["value", "boost", "_name", "rewrite"],
    )?;
    let text = value
        .as_str()
        .ok_or_else(|| parsing(format!("[{clause}] value must be a string")))?;
    let regex = match clause {
        "prefix" => format!("{}.*", escape(text)),
        "wildcard" => wildcard_to_regex(text),
        _ => text.to_string(),
    };
    Ok(apply_boost(
        ctx.scored(field, regex_on(ctx, field, &regex, clause)?),
        boost_of(params)?,
    ))
}

pub(crate) fn fuzzy_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, value, params) = single_value(
        body,
        "fuzzy",
        "value",
        &["value", "fuzziness", "boost", "_name"],
    )?;
    let text = scalar_text(value, "fuzzy")?;
    let fuzz = params
        .and_then(|p| p.get("fuzziness"))
        .cloned()
        .unwrap_or(Value::String("AUTO".into()));
    Ok(apply_boost(
        ctx.scored(field, fuzzy_on(ctx, field, &text, &fuzz)?),
        boost_of(params)?,
    ))
}
