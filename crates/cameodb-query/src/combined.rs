//! Term-centric full text over several fields: `combined_fields` and `multi_match` of type
//! `cross_fields`. The query is analyzed once per field; each of its terms matches when any
//! field holds it (scored by the best field, plus `tie_breaker` times the others), and the
//! terms combine by `operator` and `minimum_should_match`, as if the fields were one.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tantivy::query::{BooleanQuery, DisjunctionMaxQuery, EmptyQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;

use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, text_terms};
use crate::params::{apply_boost, as_object, boost_of, check_params, minimum_should_match};

type Boxed = Box<dyn Query>;

/// A field name with its `^boost`.
pub(crate) fn field_and_boost(spec: &str) -> Result<(String, Option<f32>), QueryError> {
    match spec.split_once('^') {
        Some((field, boost)) => {
            let boost = boost
                .parse::<f32>()
                .ok()
                .filter(|b| b.is_finite() && *b >= 0.0)
                .ok_or_else(|| parsing(format!("invalid boost [{boost}] on field [{field}]")))?;
            Ok((field.to_string(), Some(boost)))
        }
        None => Ok((spec.to_string(), None)),
    }
}

/// `combined_fields`.
pub(crate) fn combined_fields(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "combined_fields")?;
    check_params(
        params,
        "combined_fields",
        &[
            "query",
            "fields",
            "operator",
            "minimum_should_match",
            "zero_terms_query",
            "auto_generate_synonyms_phrase_query",
            "boost",
            "_name",
        ],
    )?;
    let fields = match params.get("fields") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| parsing("[combined_fields] fields must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::String(one)) => vec![one.clone()],
        _ => return Err(parsing("[combined_fields] requires [fields]")),
    };
    let query = term_centric(params, &fields, "combined_fields", 0.0, ctx)?;
    Ok(apply_boost(query, boost_of(Some(params))?))
}

/// The term-centric query of `params` (`query`, `operator`, `minimum_should_match`,
/// `zero_terms_query`) over `fields`.
pub(crate) fn term_centric(
    params: &Map<String, Value>,
    fields: &[String],
    clause: &str,
    tie_breaker: f32,
    ctx: &QueryContext<'_>,
) -> Result<Boxed, QueryError> {
    let text = match params.get("query") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(parsing(format!("[{clause}] requires [query] as a string"))),
    };
    // Position in the query -> each field's term there, with the field's boost.
    let mut by_position: BTreeMap<usize, Vec<Boxed>> = BTreeMap::new();
    for spec in fields {
        let (field, boost) = field_and_boost(spec)?;
        let target = ctx.target(&field);
        match &target {
            Target::Text { .. } => {
                let terms = text_terms(&target, &text);
                ctx.budget.clauses(terms.len())?;
                for (position, term) in terms {
                    let query: Boxed = Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                    by_position
                        .entry(position)
                        .or_default()
                        .push(apply_boost(ctx.scored(&field, query), boost));
                }
            }
            Target::Unmapped => {}
            Target::Exact { mapping, .. } => {
                return Err(parsing(format!(
                    "Field [{field}] of type [{}] does not support [{clause}] queries",
                    mapping.type_name()
                )));
            }
        }
    }
    let terms: Vec<Boxed> = by_position
        .into_values()
        .map(|per_field| -> Boxed {
            if per_field.len() == 1 {
                per_field
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Box::new(EmptyQuery))
            } else {
                Box::new(DisjunctionMaxQuery::with_tie_breaker(
                    per_field,
                    tie_breaker,
                ))
            }
        })
        .collect();
    if terms.is_empty() {
        return Ok(
            match params.get("zero_terms_query").and_then(Value::as_str) {
                Some("all") => Box::new(tantivy::query::AllQuery),
                _ => Box::new(EmptyQuery),
            },
        );
    }
    let operator_and = match params.get("operator").and_then(Value::as_str) {
        None => false,
        Some(op) if op.eq_ignore_ascii_case("or") => false,
        Some(op) if op.eq_ignore_ascii_case("and") => true,
        Some(_) => {
            return Err(parsing(format!(
                "[{clause}] operator must be [and] or [or]"
            )));
        }
    };
    let minimum = minimum_should_match(params.get("minimum_should_match"), terms.len())?;
    let occur = if operator_and {
        Occur::Must
    } else {
        Occur::Should
    };
    let clauses = terms.into_iter().map(|q| (occur, q)).collect();
    Ok(if !operator_and && minimum > 1 {
        Box::new(BooleanQuery::with_minimum_required_clauses(
            clauses, minimum,
        ))
    } else {
        Box::new(BooleanQuery::new(clauses))
    })
}
