//! JSON query DSL → tantivy query.

use std::ops::Bound;

use serde_json::{Map, Value};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Term};

use crate::error::{QueryError, parsing};
use crate::fields::{
    QueryContext, Target, bound_term, exact_term, exact_value, raw_text_term, text_terms,
};
use crate::limits::check_terms_count;
use crate::query_string::query_string;
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

fn as_object<'v>(body: &'v Value, clause: &str) -> Result<&'v Map<String, Value>, QueryError> {
    body.as_object()
        .ok_or_else(|| parsing(format!("[{clause}] query malformed, expected an object")))
}

/// Splits `{"field": value}` or `{"field": {params}}` into the field and its value or params.
fn single_field<'v>(body: &'v Value, clause: &str) -> Result<(&'v String, &'v Value), QueryError> {
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

fn check_params(
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

fn boost_of(params: Option<&Map<String, Value>>) -> Result<Option<f32>, QueryError> {
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
fn u32_param(params: Option<&Map<String, Value>>, name: &str) -> Result<Option<u32>, QueryError> {
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

fn apply_boost(query: Boxed, boost: Option<f32>) -> Boxed {
    match boost {
        Some(b) if (b - 1.0).abs() > f32::EPSILON => Box::new(BoostQuery::new(query, b)),
        _ => query,
    }
}

fn term_of(
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

fn term_query_for(term: Option<Term>) -> Boxed {
    match term {
        Some(term) => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
        None => Box::new(EmptyQuery),
    }
}

fn match_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, spec) = single_field(body, "match")?;
    let (text, params) = match spec {
        Value::Object(params) => {
            check_params(
                params,
                "match",
                &[
                    "query",
                    "operator",
                    "boost",
                    "_name",
                    "fuzziness",
                    "minimum_should_match",
                    "prefix_length",
                    "max_expansions",
                ],
            )?;
            (
                params
                    .get("query")
                    .ok_or_else(|| parsing("[match] query requires [query]"))?,
                Some(params),
            )
        }
        value => (value, None),
    };
    let operator_and = match params
        .and_then(|p| p.get("operator"))
        .map(|v| v.as_str().map(str::to_ascii_lowercase))
    {
        None => false,
        Some(Some(op)) if op == "and" => true,
        Some(Some(op)) if op == "or" => false,
        Some(_) => return Err(parsing("[match] operator must be [and] or [or]")),
    };
    let target = ctx.target(field);
    let query: Boxed = match &target {
        Target::Text { .. } => {
            let text = scalar_text(text, "match")?;
            let fuzz = params.and_then(|p| p.get("fuzziness"));
            let analyzed = text_terms(&target, &text);
            ctx.budget.clauses(analyzed.len())?;
            let terms: Vec<Boxed> = analyzed
                .into_iter()
                .map(|(_, term)| -> Result<Boxed, QueryError> {
                    Ok(match fuzz {
                        Some(f) => {
                            let len = term.value().as_str().map_or(0, |s| s.chars().count());
                            term_level::fuzzy_term(term, term_level::fuzziness(f, len)?, false)
                        }
                        None => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                    })
                })
                .collect::<Result<_, _>>()?;
            let minimum = minimum_should_match(
                params.and_then(|p| p.get("minimum_should_match")),
                terms.len(),
            )?;
            if terms.is_empty() {
                Box::new(EmptyQuery)
            } else if operator_and {
                Box::new(BooleanQuery::new(
                    terms.into_iter().map(|q| (Occur::Must, q)).collect(),
                ))
            } else if minimum > 1 {
                Box::new(BooleanQuery::with_minimum_required_clauses(
                    terms.into_iter().map(|q| (Occur::Should, q)).collect(),
                    minimum,
                ))
            } else {
                Box::new(BooleanQuery::new(
                    terms.into_iter().map(|q| (Occur::Should, q)).collect(),
                ))
            }
        }
        _ => term_query_for(term_of(&target, text, ctx)?),
    };
    Ok(apply_boost(query, boost_of(params)?))
}

fn scalar_text(value: &Value, clause: &str) -> Result<String, QueryError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(parsing(format!(
            "[{clause}] query text must be a string, number or boolean"
        ))),
    }
}

fn match_phrase(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, spec) = single_field(body, "match_phrase")?;
    let (text, params) = match spec {
        Value::Object(params) => {
            check_params(
                params,
                "match_phrase",
                &["query", "slop", "boost", "_name", "analyzer"],
            )?;
            (
                params
                    .get("query")
                    .ok_or_else(|| parsing("[match_phrase] requires [query]"))?,
                Some(params),
            )
        }
        value => (value, None),
    };
    let slop = u32_param(params, "slop")?.unwrap_or(0);
    let target = ctx.target(field);
    let query: Boxed = match &target {
        Target::Text { .. } => {
            let terms = text_terms(&target, &scalar_text(text, "match_phrase")?);
            ctx.budget.clauses(terms.len())?;
            match terms.len() {
                0 => Box::new(EmptyQuery),
                1 => term_query_for(terms.into_iter().next().map(|(_, t)| t)),
                _ => Box::new(PhraseQuery::new_with_offset_and_slop(terms, slop)),
            }
        }
        _ => term_query_for(term_of(&target, text, ctx)?),
    };
    Ok(apply_boost(query, boost_of(params)?))
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

fn clauses(value: Option<&Value>, ctx: &QueryContext<'_>) -> Result<Vec<Boxed>, QueryError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|q| translate(q, ctx)).collect(),
        Some(single) => Ok(vec![translate(single, ctx)?]),
    }
}

fn bool_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "bool")?;
    check_params(
        params,
        "bool",
        &[
            "must",
            "should",
            "must_not",
            "filter",
            "minimum_should_match",
            "boost",
            "_name",
        ],
    )?;
    let must = clauses(params.get("must"), ctx)?;
    let filter = clauses(params.get("filter"), ctx)?;
    let should = clauses(params.get("should"), ctx)?;
    let must_not = clauses(params.get("must_not"), ctx)?;
    let min_should = match params.get("minimum_should_match") {
        None => None,
        value => Some(minimum_should_match(value, should.len())?),
    };
    let has_required = !must.is_empty() || !filter.is_empty();
    let mut parts: Vec<(Occur, Boxed)> = Vec::new();
    parts.extend(must.into_iter().map(|q| (Occur::Must, q)));
    parts.extend(
        filter
            .into_iter()
            .map(|q| (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)) as Boxed)),
    );
    let should_count = should.len();
    // Elasticsearch: with must/filter present, should clauses only score unless
    // minimum_should_match asks for some; alone, at least one must match.
    let required_should = min_should
        .unwrap_or(if has_required { 0 } else { 1 })
        .min(should_count);
    if required_should > 1 {
        let should_query = BooleanQuery::with_minimum_required_clauses(
            should.into_iter().map(|q| (Occur::Should, q)).collect(),
            required_should,
        );
        parts.push((Occur::Must, Box::new(should_query)));
    } else if required_should == 1 && has_required {
        let should_query =
            BooleanQuery::new(should.into_iter().map(|q| (Occur::Should, q)).collect());
        parts.push((Occur::Must, Box::new(should_query)));
    } else {
        parts.extend(should.into_iter().map(|q| (Occur::Should, q)));
    }
    if min_should.is_some_and(|m| m > should_count) {
        return Ok(Box::new(EmptyQuery));
    }
    parts.extend(must_not.into_iter().map(|q| (Occur::MustNot, q)));
    if !parts.iter().any(|(occur, _)| *occur != Occur::MustNot) {
        // Only must_not (or nothing): everything else matches.
        parts.push((Occur::Must, Box::new(AllQuery)));
    }
    Ok(apply_boost(
        Box::new(BooleanQuery::new(parts)),
        boost_of(Some(params))?,
    ))
}

fn constant_score(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "constant_score")?;
    check_params(params, "constant_score", &["filter", "boost", "_name"])?;
    let filter = params
        .get("filter")
        .ok_or_else(|| parsing("[constant_score] requires [filter]"))?;
    let boost = boost_of(Some(params))?.unwrap_or(1.0);
    Ok(Box::new(ConstScoreQuery::new(
        translate(filter, ctx)?,
        boost,
    )))
}

fn query_string_clause(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "query_string")?;
    check_params(
        params,
        "query_string",
        &[
            "query",
            "default_field",
            "fields",
            "default_operator",
            "boost",
            "_name",
            "lenient",
        ],
    )?;
    let text = params
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing("[query_string] requires [query]"))?;
    let mut fields: Vec<String> = match params.get("fields") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(_) => return Err(parsing("[query_string] fields must be an array")),
        None => Vec::new(),
    };
    if let Some(default) = params.get("default_field").and_then(Value::as_str) {
        fields.push(default.to_string());
    }
    let and = match params
        .get("default_operator")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    {
        None => false,
        Some(op) if op == "and" => true,
        Some(op) if op == "or" => false,
        Some(op) => {
            return Err(parsing(format!(
                "[query_string] unknown default_operator [{op}]"
            )));
        }
    };
    let fields = (!fields.is_empty() && fields != ["*"]).then_some(fields);
    let query = query_string(text, fields.as_deref(), and, ctx)?;
    Ok(apply_boost(query, boost_of(Some(params))?))
}

/// Elasticsearch's `minimum_should_match`: a count, a negative count, or a (negative) percentage
/// of `clauses`; absent means 1.
fn minimum_should_match(value: Option<&Value>, clauses: usize) -> Result<usize, QueryError> {
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

type FieldValue<'v> = (&'v String, &'v Value, Option<&'v Map<String, Value>>);

fn single_value<'v>(
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

fn match_phrase_prefix(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, value, params) = single_value(
        body,
        "match_phrase_prefix",
        "query",
        &["query", "boost", "_name", "max_expansions"],
    )?;
    let text = scalar_text(value, "match_phrase_prefix")?;
    let target = ctx.target(field);
    let query: Boxed = match &target {
        Target::Text { .. } => {
            let mut terms = text_terms(&target, &text);
            match terms.len() {
                0 => Box::new(EmptyQuery),
                1 => {
                    let (_, last) = terms.remove(0);
                    let token = last.value().as_str().unwrap_or_default().to_string();
                    term_level::regex_on(
                        ctx,
                        field,
                        &format!("{}.*", term_level::escape(&token)),
                        "match_phrase_prefix",
                    )?
                }
                _ => {
                    ctx.budget.clauses(terms.len())?;
                    let mut query = tantivy::query::PhrasePrefixQuery::new_with_offset(terms);
                    if let Some(max) = u32_param(params, "max_expansions")? {
                        query.set_max_expansions(max);
                    }
                    Box::new(query)
                }
            }
        }
        _ => term_level::regex_on(
            ctx,
            field,
            &format!("{}.*", term_level::escape(&text)),
            "match_phrase_prefix",
        )?,
    };
    Ok(apply_boost(query, boost_of(params)?))
}

fn field_and_boost(spec: &str) -> Result<(String, Option<f32>), QueryError> {
    match spec.split_once('^') {
        Some((field, boost)) => {
            let boost = boost
                .parse()
                .map_err(|_| parsing(format!("invalid boost in field [{spec}]")))?;
            Ok((field.to_string(), Some(boost)))
        }
        None => Ok((spec.to_string(), None)),
    }
}

fn multi_match(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "multi_match")?;
    check_params(
        params,
        "multi_match",
        &[
            "query",
            "fields",
            "type",
            "operator",
            "tie_breaker",
            "boost",
            "_name",
            "fuzziness",
            "minimum_should_match",
        ],
    )?;
    let query = params
        .get("query")
        .ok_or_else(|| parsing("[multi_match] requires [query]"))?;
    let fields: Vec<String> = match params.get("fields") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        None => ctx.all_fields(),
        Some(_) => return Err(parsing("[multi_match] fields must be an array of strings")),
    };
    let kind = params
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("best_fields");
    let mut per_field = Vec::new();
    for spec in fields {
        let (field, boost) = field_and_boost(&spec)?;
        let mut inner = Map::new();
        inner.insert("query".into(), query.clone());
        for key in ["operator", "fuzziness", "minimum_should_match"] {
            if let Some(v) = params.get(key) {
                inner.insert(key.into(), v.clone());
            }
        }
        let mut clause = Map::new();
        clause.insert(field, Value::Object(inner));
        per_field.push(apply_boost(
            match_query(&Value::Object(clause), ctx)?,
            boost,
        ));
    }
    let combined: Boxed = match kind {
        "best_fields" => {
            let tie = params
                .get("tie_breaker")
                .and_then(Value::as_f64)
                .unwrap_or(0.0) as f32;
            Box::new(tantivy::query::DisjunctionMaxQuery::with_tie_breaker(
                per_field, tie,
            ))
        }
        "most_fields" => Box::new(BooleanQuery::new(
            per_field.into_iter().map(|q| (Occur::Should, q)).collect(),
        )),
        other => {
            return Err(parsing(format!(
                "[multi_match] type [{other}] is not supported"
            )));
        }
    };
    Ok(apply_boost(combined, boost_of(Some(params))?))
}

fn dis_max(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "dis_max")?;
    check_params(
        params,
        "dis_max",
        &["queries", "tie_breaker", "boost", "_name"],
    )?;
    let queries = clauses(params.get("queries"), ctx)?;
    let tie = params
        .get("tie_breaker")
        .and_then(Value::as_f64)
        .unwrap_or(0.0) as f32;
    let query = Box::new(tantivy::query::DisjunctionMaxQuery::with_tie_breaker(
        queries, tie,
    ));
    Ok(apply_boost(query, boost_of(Some(params))?))
}

fn simple_query_string(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "simple_query_string")?;
    check_params(
        params,
        "simple_query_string",
        &["query", "fields", "default_operator", "boost", "_name"],
    )?;
    let text = params
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing("[simple_query_string] requires [query]"))?;
    let fields: Option<Vec<String>> = match params.get("fields") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|f| field_and_boost(f).map(|(f, _)| f))
                .collect::<Result<_, _>>()?,
        ),
        _ => None,
    };
    let and = params
        .get("default_operator")
        .and_then(Value::as_str)
        .is_some_and(|op| op.eq_ignore_ascii_case("and"));
    // The simple syntax writes OR as `|` and never fails: unparsable input is searched as words.
    let lucene = text.replace('|', " OR ");
    let query = match query_string(&lucene, fields.as_deref(), and, ctx) {
        Ok(query) => query,
        Err(limit @ QueryError::Limit(_)) => return Err(limit),
        Err(_) => {
            let words: String = text
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { ' ' })
                .collect();
            query_string(&words, fields.as_deref(), and, ctx)?
        }
    };
    Ok(apply_boost(query, boost_of(Some(params))?))
}

fn boosting(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "boosting")?;
    check_params(
        params,
        "boosting",
        &["positive", "negative", "negative_boost", "boost", "_name"],
    )?;
    let positive = translate(
        params
            .get("positive")
            .ok_or_else(|| parsing("[boosting] requires [positive]"))?,
        ctx,
    )?;
    let negative = translate(
        params
            .get("negative")
            .ok_or_else(|| parsing("[boosting] requires [negative]"))?,
        ctx,
    )?;
    let negative_boost = params
        .get("negative_boost")
        .and_then(Value::as_f64)
        .filter(|b| *b >= 0.0)
        .ok_or_else(|| parsing("[boosting] requires a non-negative [negative_boost]"))?
        as f32;
    let query = Box::new(crate::boosting::BoostingQuery {
        positive,
        negative,
        negative_boost,
    });
    Ok(apply_boost(query, boost_of(Some(params))?))
}
