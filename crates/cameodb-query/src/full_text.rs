//! Full-text clauses of the query DSL: `match` and its phrase forms, `multi_match`, and the
//! `query_string` / `simple_query_string` clauses over Lucene syntax.

use serde_json::{Map, Value};
use tantivy::query::{BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;

use crate::combined::{field_and_boost, term_centric};
use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, text_terms};
use crate::params::{
    apply_boost, as_object, boost_of, check_params, minimum_should_match, scalar_text,
    single_field, single_value, u32_param,
};
use crate::query_string::query_string;
use crate::term_level::{self, term_of, term_query_for};

type Boxed = Box<dyn Query>;

/// `operator: and` (true) or `or` (false, the default) of a full-text clause.
fn operator_is_and(params: Option<&Map<String, Value>>, clause: &str) -> Result<bool, QueryError> {
    match params
        .and_then(|p| p.get("operator"))
        .map(|v| v.as_str().map(str::to_ascii_lowercase))
    {
        None => Ok(false),
        Some(Some(op)) if op == "and" => Ok(true),
        Some(Some(op)) if op == "or" => Ok(false),
        Some(_) => Err(parsing(format!(
            "[{clause}] operator must be [and] or [or]"
        ))),
    }
}

pub(crate) fn match_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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
                    "lenient",
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
    let operator_and = operator_is_and(params, "match")?;
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
        _ => {
            let lenient = params
                .and_then(|p| p.get("lenient"))
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
            ctx.with_lenient(lenient, || {
                ctx.tolerate(term_of(&target, text, ctx).map(term_query_for))
            })?
        }
    };
    Ok(apply_boost(ctx.scored(field, query), boost_of(params)?))
}

/// `match_bool_prefix`: the analyzed terms as a `bool` of term queries, the last one a prefix.
pub(crate) fn match_bool_prefix(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let (field, value, params) = single_value(
        body,
        "match_bool_prefix",
        "query",
        &[
            "query",
            "operator",
            "minimum_should_match",
            "boost",
            "_name",
            "max_expansions",
            "prefix_length",
        ],
    )?;
    let text = scalar_text(value, "match_bool_prefix")?;
    let operator_and = operator_is_and(params, "match_bool_prefix")?;
    let target = ctx.target(field);
    let query: Boxed = match &target {
        Target::Text { .. } => {
            let mut terms = text_terms(&target, &text);
            ctx.budget.clauses(terms.len())?;
            let Some((_, last)) = terms.pop() else {
                return Ok(Box::new(EmptyQuery));
            };
            let token = last.value().as_str().unwrap_or_default().to_string();
            let mut clauses: Vec<Boxed> = terms
                .into_iter()
                .map(|(_, term)| {
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)) as Boxed
                })
                .collect();
            clauses.push(term_level::regex_on(
                ctx,
                field,
                &format!("{}.*", term_level::escape(&token)),
                "match_bool_prefix",
            )?);
            let minimum = minimum_should_match(
                params.and_then(|p| p.get("minimum_should_match")),
                clauses.len(),
            )?;
            let occur = if operator_and {
                Occur::Must
            } else {
                Occur::Should
            };
            let clauses = clauses.into_iter().map(|q| (occur, q)).collect();
            if !operator_and && minimum > 1 {
                Box::new(BooleanQuery::with_minimum_required_clauses(
                    clauses, minimum,
                ))
            } else {
                Box::new(BooleanQuery::new(clauses))
            }
        }
        _ => term_level::regex_on(
            ctx,
            field,
            &format!("{}.*", term_level::escape(&text)),
            "match_bool_prefix",
        )?,
    };
    Ok(apply_boost(ctx.scored(field, query), boost_of(params)?))
}

pub(crate) fn match_phrase(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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
    Ok(apply_boost(ctx.scored(field, query), boost_of(params)?))
}

pub(crate) fn match_phrase_prefix(
    body: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Boxed, QueryError> {
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
    Ok(apply_boost(ctx.scored(field, query), boost_of(params)?))
}

/// The `multi_match` parameters only some types use.
const PER_TYPE: &[&str] = &[
    "operator",
    "fuzziness",
    "minimum_should_match",
    "lenient",
    "slop",
    "max_expansions",
    "prefix_length",
];

pub(crate) fn multi_match(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "multi_match")?;
    check_params(
        params,
        "multi_match",
        &["query", "fields", "type", "tie_breaker", "boost", "_name"]
            .iter()
            .chain(PER_TYPE)
            .copied()
            .collect::<Vec<_>>(),
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
    let tie = params
        .get("tie_breaker")
        .and_then(Value::as_f64)
        .unwrap_or(0.0) as f32;
    // Each type's per-field clause and the parameters it takes; a parameter the type does not
    // use is refused, since dropping it would change the answer.
    type Build = fn(&Value, &QueryContext<'_>) -> Result<Boxed, QueryError>;
    let (build, keys): (Build, &[&str]) = match kind {
        "best_fields" | "most_fields" => (
            match_query,
            &["operator", "fuzziness", "minimum_should_match", "lenient"],
        ),
        "phrase" => (match_phrase, &["slop"]),
        "phrase_prefix" => (match_phrase_prefix, &["max_expansions"]),
        "bool_prefix" => (
            match_bool_prefix,
            &[
                "operator",
                "minimum_should_match",
                "max_expansions",
                "prefix_length",
            ],
        ),
        "cross_fields" => (match_query, &["operator", "minimum_should_match"]),
        other => {
            return Err(parsing(format!(
                "[multi_match] type [{other}] is not supported"
            )));
        }
    };
    if let Some(key) = PER_TYPE
        .iter()
        .find(|k| params.contains_key(**k) && !keys.contains(k))
    {
        return Err(parsing(format!(
            "[{key}] not allowed for type [{kind}] of [multi_match]"
        )));
    }
    if kind == "cross_fields" {
        let query = term_centric(params, &fields, "multi_match", tie, ctx)?;
        return Ok(apply_boost(query, boost_of(Some(params))?));
    }
    let mut per_field = Vec::new();
    for spec in fields {
        let (field, boost) = field_and_boost(&spec)?;
        let mut inner = Map::new();
        inner.insert("query".into(), query.clone());
        for key in keys {
            if let Some(v) = params.get(*key) {
                inner.insert((*key).into(), v.clone());
            }
        }
        let mut clause = Map::new();
        clause.insert(field, Value::Object(inner));
        per_field.push(apply_boost(build(&Value::Object(clause), ctx)?, boost));
    }
    let combined: Boxed = match kind {
        "most_fields" | "bool_prefix" => Box::new(BooleanQuery::new(
            per_field.into_iter().map(|q| (Occur::Should, q)).collect(),
        )),
        _ => Box::new(tantivy::query::DisjunctionMaxQuery::with_tie_breaker(
            per_field, tie,
        )),
    };
    Ok(apply_boost(combined, boost_of(Some(params))?))
}

pub(crate) fn query_string_clause(
    body: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Boxed, QueryError> {
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
    let lenient = params
        .get("lenient")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    let query = ctx.with_lenient(lenient, || query_string(text, fields.as_deref(), and, ctx))?;
    Ok(apply_boost(query, boost_of(Some(params))?))
}

pub(crate) fn simple_query_string(
    body: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Boxed, QueryError> {
    let params = as_object(body, "simple_query_string")?;
    check_params(
        params,
        "simple_query_string",
        &[
            "query",
            "fields",
            "default_operator",
            "boost",
            "_name",
            "lenient",
        ],
    )?;
    let lenient = params
        .get("lenient")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
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
    let parsed = ctx.with_lenient(lenient, || {
        query_string(&lucene, fields.as_deref(), and, ctx)
    });
    let query = match parsed {
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
