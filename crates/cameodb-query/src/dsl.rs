//! JSON query DSL → tantivy query.

use std::ops::Bound;

use serde_json::{Map, Value};
use tantivy::query::{
    AllQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Term};

use crate::compound::{bool_query, boosting, constant_score, dis_max};
use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, bound_term, exact_term, exact_value, raw_text_term};
use crate::full_text::{
    match_phrase, match_phrase_prefix, match_query, multi_match, query_string_clause, scalar_text,
    simple_query_string,
};
use crate::limits::check_terms_count;
use crate::term_level;

type Boxed = Box<dyn Query>;

/// Translates one Elasticsearch query clause (the value of `"query"`).
pub fn translate(query: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    // Every clause is a level of nesting and counts against the clause limit.
    let _level = ctx.budget.enter()?;
    ctx.budget.clauses(1)?;
    let obj = query
        .as_object()
        .ok_or_else(|| parsing("query must be an object"))?;
    let mut entries = obj.iter();
    let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
        return Err(parsing(format!(
            "query malformed, expected exactly one clause, found {}",
            obj.len()
        )));
    };
    match kind.as_str() {
        "match_all" => Ok(boosted(Box::new(AllQuery), body)?),
        "match_none" => Ok(Box::new(EmptyQuery)),
        "match" => match_query(body, ctx),
        "match_phrase" => match_phrase(body, ctx),
        "term" => term_query(body, ctx),
        "terms" => terms_query(body, ctx),
        "range" => range_query(body, ctx),
        "ids" => ids_query(body, ctx),
        "exists" => exists_query(body, ctx),
        "bool" => bool_query(body, ctx),
        "constant_score" => constant_score(body, ctx),
        "query_string" => query_string_clause(body, ctx),
        "simple_query_string" => simple_query_string(body, ctx),
        "multi_match" => multi_match(body, ctx),
        "dis_max" => dis_max(body, ctx),
        "match_phrase_prefix" => match_phrase_prefix(body, ctx),
        "prefix" => pattern_query(body, ctx, "prefix"),
        "wildcard" => pattern_query(body, ctx, "wildcard"),
        "regexp" => pattern_query(body, ctx, "regexp"),
        "fuzzy" => fuzzy_query(body, ctx),
        "boosting" => boosting(body, ctx),
        other => Err(parsing(format!("unknown query [{other}]"))),
    }
}

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

fn boosted(query: Boxed, body: &Value) -> Result<Boxed, QueryError> {
    let params = body.as_object();
    if let Some(params) = params {
        check_params(params, "match_all", &["boost", "_name"])?;
    }
    Ok(apply_boost(query, boost_of(params)?))
}

pub(crate) fn apply_boost(query: Boxed, boost: Option<f32>) -> Boxed {
    match boost {
        Some(b) if (b - 1.0).abs() > f32::EPSILON => Box::new(BoostQuery::new(query, b)),
        _ => query,
    }
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
            &exact_value(path, mapping, value)?,
        )?),
    })
}

pub(crate) fn term_query_for(term: Option<Term>) -> Boxed {
    match term {
        Some(term) => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
        None => Box::new(EmptyQuery),
    }
}

fn term_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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
    let query = term_query_for(term_of(&ctx.target(field), value, ctx)?);
    Ok(apply_boost(query, boost_of(params)?))
}

fn terms_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, values) = single_field(body, "terms")?;
    let values = values
        .as_array()
        .ok_or_else(|| parsing("[terms] query requires an array of values"))?;
    check_terms_count("terms", values.len())?;
    let target = ctx.target(field);
    let mut terms = Vec::new();
    for value in values {
        if let Some(term) = term_of(&target, value, ctx)? {
            terms.push(term);
        }
    }
    let query: Boxed = Box::new(ConstScoreQuery::new(
        Box::new(TermSetQuery::new(terms)),
        1.0,
    ));
    Ok(apply_boost(query, boost_of(body.as_object())?))
}

fn ids_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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

fn exists_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "exists")?;
    check_params(params, "exists", &["field", "boost", "_name"])?;
    let field = params
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing("[exists] query requires [field]"))?;
    let term = Term::from_field_text(ctx.fields.field_names, field);
    Ok(Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        1.0,
    )))
}

fn range_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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
                Bound::Included(bound_term(&prefix, &exact_value(&path, &mapping, v)?))
            }
            (_, Some(v)) if !v.is_null() => {
                Bound::Excluded(bound_term(&prefix, &exact_value(&path, &mapping, v)?))
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

fn pattern_query(body: &Value, ctx: &QueryContext<'_>, clause: &str) -> Result<Boxed, QueryError> {
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
        "prefix" => format!("{}.*", term_level::escape(text)),
        "wildcard" => term_level::wildcard_to_regex(text),
        _ => text.to_string(),
    };
    Ok(apply_boost(
        term_level::regex_on(ctx, field, &regex, clause)?,
        boost_of(params)?,
    ))
}

fn fuzzy_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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
        term_level::fuzzy_on(ctx, field, &text, &fuzz)?,
        boost_of(params)?,
    ))
}
