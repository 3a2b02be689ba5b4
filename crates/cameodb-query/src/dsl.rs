//! JSON query DSL → tantivy query.

use serde_json::Value;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query};

use crate::error::{QueryError, parsing};
use crate::fields::QueryContext;
use crate::full_text::{
    match_bool_prefix, match_phrase, match_phrase_prefix, match_query, multi_match,
    query_string_clause, simple_query_string,
};
use crate::params::{apply_boost, as_object, boost_of, check_params, minimum_should_match};
use crate::term_level::{
    exists_query, fuzzy_query, ids_query, pattern_query, range_query, term_query, terms_query,
};

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
        "nested" => crate::nested::nested_query(body, ctx),
        crate::nested::ROOTS_CLAUSE => crate::nested::roots(body, ctx),
        crate::nested::CHILDREN_CLAUSE => crate::nested::children(body, ctx),
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
        "combined_fields" => crate::combined::combined_fields(body, ctx),
        "more_like_this" => crate::more_like_this::more_like_this(body, ctx),
        "geo_distance" => crate::geo_queries::geo_distance(body, ctx),
        "geo_bounding_box" => crate::geo_queries::geo_bounding_box(body, ctx),
        "dis_max" => dis_max(body, ctx),
        "match_phrase_prefix" => match_phrase_prefix(body, ctx),
        "match_bool_prefix" => match_bool_prefix(body, ctx),
        "prefix" => pattern_query(body, ctx, "prefix"),
        "wildcard" => pattern_query(body, ctx, "wildcard"),
        "regexp" => pattern_query(body, ctx, "regexp"),
        "fuzzy" => fuzzy_query(body, ctx),
        "boosting" => boosting(body, ctx),
        "function_score" => crate::function_score::function_score(body, ctx),
        "script_score" => crate::function_score::script_score(body, ctx),
        other => Err(parsing(format!("unknown query [{other}]"))),
    }
}

fn boosted(query: Boxed, body: &Value) -> Result<Boxed, QueryError> {
    let params = body.as_object();
    if let Some(params) = params {
        check_params(params, "match_all", &["boost", "_name"])?;
    }
    Ok(apply_boost(query, boost_of(params)?))
}

// Compound clauses (`bool`, `constant_score`, `dis_max`, `boosting`) nest other clauses, so
// they live with `translate`: each nested clause is a level of its depth limit.

pub(crate) fn clauses(
    value: Option<&Value>,
    ctx: &QueryContext<'_>,
) -> Result<Vec<Boxed>, QueryError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|q| translate(q, ctx)).collect(),
        Some(single) => Ok(vec![translate(single, ctx)?]),
    }
}

pub(crate) fn bool_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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

pub(crate) fn constant_score(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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

pub(crate) fn dis_max(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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

pub(crate) fn boosting(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
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
