//! Parsing `function_score` and `script_score` into a [`FunctionScoreQuery`]: functions
//! (`weight`, `field_value_factor`, `script_score`, `random_score`, `gauss` / `exp` /
//! `linear` decays on numeric and date fields) with their filters, `score_mode`,
//! `boost_mode`, `max_boost`, `min_score`.

use std::collections::BTreeMap;

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::FieldType;
use serde_json::{Map, Value};
use tantivy::query::{AllQuery, Query};

use crate::dsl::translate;
use crate::error::{QueryError, parsing};
use crate::expr::{Expr, json_val, script_source};
use crate::fields::{QueryContext, date_math};
use crate::params::{apply_boost, as_object, boost_of, check_params};
use crate::score_functions::{
    BoostMode, Column, Decay, Function, FunctionScoreQuery, Kind, Modifier, MultiValue, ScoreMode,
    Shape,
};

type Boxed = Box<dyn Query>;

/// The function kinds one function object may hold (with `filter` and `weight`).
const FUNCTION_KINDS: &[&str] = &[
    "field_value_factor",
    "script_score",
    "random_score",
    "gauss",
    "exp",
    "linear",
];

fn number(value: &Value, what: &str) -> Result<f64, QueryError> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
    .ok_or_else(|| parsing(format!("[{what}] must be a number, got [{value}]")))
}

pub(crate) fn function_score(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "function_score")?;
    let mut allowed = vec![
        "query",
        "functions",
        "score_mode",
        "boost_mode",
        "max_boost",
        "min_score",
        "boost",
        "_name",
        "weight",
        "filter",
    ];
    allowed.extend(FUNCTION_KINDS);
    check_params(params, "function_score", &allowed)?;
    let query = inner_query(params, ctx)?;
    let mut functions = Vec::new();
    match params.get("functions") {
        Some(Value::Array(items)) => {
            if FUNCTION_KINDS.iter().any(|k| params.contains_key(*k))
                || params.contains_key("weight")
            {
                return Err(parsing(
                    "[function_score] already contains [functions]: a function cannot also be given at the top level",
                ));
            }
            for item in items {
                let item = as_object(item, "function_score functions")?;
                functions.push(function(item, ctx)?);
            }
        }
        Some(_) => return Err(parsing("[function_score] [functions] must be an array")),
        None => {
            if FUNCTION_KINDS.iter().any(|k| params.contains_key(*k))
                || params.contains_key("weight")
            {
                let mut single = Map::new();
                for key in FUNCTION_KINDS.iter().chain(&["weight"]) {
                    if let Some(value) = params.get(*key) {
                        single.insert((*key).to_string(), value.clone());
                    }
                }
                functions.push(function(&single, ctx)?);
            }
        }
    }
    let score_mode = match params.get("score_mode").and_then(Value::as_str) {
        None | Some("multiply") => ScoreMode::Multiply,
        Some("sum") => ScoreMode::Sum,
        Some("avg") => ScoreMode::Avg,
        Some("first") => ScoreMode::First,
        Some("max") => ScoreMode::Max,
        Some("min") => ScoreMode::Min,
        Some(other) => return Err(parsing(format!("illegal score_mode [{other}]"))),
    };
    let boost_mode = boost_mode(params.get("boost_mode"))?;
    let max_boost = params
        .get("max_boost")
        .map(|v| number(v, "max_boost"))
        .transpose()?
        .unwrap_or(f64::MAX);
    let min_score = params
        .get("min_score")
        .map(|v| number(v, "min_score"))
        .transpose()?;
    let built = FunctionScoreQuery {
        query,
        functions,
        score_mode,
        boost_mode,
        max_boost,
        min_score,
    };
    Ok(apply_boost(Box::new(built), boost_of(Some(params))?))
}

pub(crate) fn script_score(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "script_score")?;
    check_params(
        params,
        "script_score",
        &["query", "script", "min_score", "boost", "_name"],
    )?;
    if !params.contains_key("query") {
        return Err(parsing("[script_score] requires [query]"));
    }
    let query = inner_query(params, ctx)?;
    let script = params
        .get("script")
        .ok_or_else(|| parsing("[script_score] requires [script]"))?;
    let built = FunctionScoreQuery {
        query,
        functions: vec![Function {
            filter: None,
            weight: 1.0,
            kind: script_kind(script, ctx)?,
        }],
        score_mode: ScoreMode::Multiply,
        boost_mode: BoostMode::Replace,
        max_boost: f64::MAX,
        min_score: params
            .get("min_score")
            .map(|v| number(v, "min_score"))
            .transpose()?,
    };
    Ok(apply_boost(Box::new(built), boost_of(Some(params))?))
}

fn inner_query(params: &Map<String, Value>, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    match params.get("query") {
        Some(query) => translate(query, ctx),
        None => Ok(Box::new(AllQuery)),
    }
}

fn boost_mode(value: Option<&Value>) -> Result<BoostMode, QueryError> {
    Ok(match value.and_then(Value::as_str) {
        None | Some("multiply") => BoostMode::Multiply,
        Some("replace") => BoostMode::Replace,
        Some("sum") => BoostMode::Sum,
        Some("avg") => BoostMode::Avg,
        Some("max") => BoostMode::Max,
        Some("min") => BoostMode::Min,
        Some(other) => return Err(parsing(format!("illegal boost_mode [{other}]"))),
    })
}

fn function(item: &Map<String, Value>, ctx: &QueryContext<'_>) -> Result<Function, QueryError> {
    let mut kind = None;
    for (key, value) in item {
        match key.as_str() {
            "filter" | "weight" => {}
            k if FUNCTION_KINDS.contains(&k) => {
                if kind.is_some() {
                    return Err(parsing(
                        "a function of [function_score] holds one function kind",
                    ));
                }
                kind = Some(function_kind(k, value, ctx)?);
            }
            other => {
                return Err(parsing(format!(
                    "[function_score] function does not support [{other}]"
                )));
            }
        }
    }
    let weight = item
        .get("weight")
        .map(|w| number(w, "weight"))
        .transpose()?;
    if kind.is_none() && weight.is_none() {
        return Err(parsing(
            "a function of [function_score] needs a function or a [weight]",
        ));
    }
    Ok(Function {
        filter: item.get("filter").map(|f| translate(f, ctx)).transpose()?,
        weight: weight.unwrap_or(1.0),
        kind: kind.unwrap_or(Kind::Weight),
    })
}

/// The `_exact` column of a numeric or date field, and whether it is a date.
fn column(path: &str, ctx: &QueryContext<'_>, what: &str) -> Result<(Column, bool), QueryError> {
    let Some((resolved, mapping)) = ctx.mapping.resolve(path) else {
        // Unmapped: no document has values, as in an index without the field.
        return Ok((Column(format!("{EXACT_FIELD}.{path}")), false));
    };
    let geo = mapping.variant == Some(cameodb_schema::mapping::Variant::GeoPoint);
    if geo
        || (!mapping.field_type.is_numeric()
            && !matches!(mapping.field_type, FieldType::Date | FieldType::Boolean))
    {
        return Err(QueryError::Shard(format!(
            "field [{path}] of type [{}] is not supported for [{what}]: only numeric, date and boolean fields are",
            mapping.type_name()
        )));
    }
    Ok((
        Column(format!("{EXACT_FIELD}.{resolved}")),
        mapping.field_type == FieldType::Date,
    ))
}

fn function_kind(kind: &str, value: &Value, ctx: &QueryContext<'_>) -> Result<Kind, QueryError> {
    let body = as_object(value, kind)?;
    match kind {
        "field_value_factor" => {
            check_params(body, kind, &["field", "factor", "modifier", "missing"])?;
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| parsing("[field_value_factor] requires [field]"))?;
            let modifier = match body.get("modifier").and_then(Value::as_str) {
                None => Modifier::None,
                Some(name) => Modifier::from_name(name)
                    .ok_or_else(|| parsing(format!("Illegal modifier [{name}]")))?,
            };
            Ok(Kind::FieldValue {
                column: column(field, ctx, kind)?.0,
                factor: body
                    .get("factor")
                    .map(|f| number(f, "factor"))
                    .transpose()?
                    .unwrap_or(1.0),
                modifier,
                missing: body
                    .get("missing")
                    .map(|m| number(m, "missing"))
                    .transpose()?,
            })
        }
        "script_score" => {
            check_params(body, kind, &["script"])?;
            let script = body
                .get("script")
                .ok_or_else(|| parsing("[script_score] function requires [script]"))?;
            script_kind(script, ctx)
        }
        "random_score" => {
            check_params(body, kind, &["seed", "field"])?;
            if let Some(field) = body.get("field").and_then(Value::as_str)
                && field != "_seq_no"
                && field != "_id"
            {
                return Err(parsing(format!(
                    "[random_score] field [{field}] is not supported: scores are drawn from each document's id"
                )));
            }
            let seed = match body.get("seed") {
                Some(Value::Number(n)) => n.as_i64().map(|s| s as u64).or_else(|| n.as_u64()),
                Some(Value::String(s)) => Some(fxhash(s)),
                None => Some(fxhash(&format!("{:?}", std::time::SystemTime::now()))),
                _ => None,
            }
            .ok_or_else(|| parsing("[random_score] seed must be a number or a string"))?;
            Ok(Kind::Random { seed })
        }
        shape => decay(shape, body, ctx),
    }
}

fn fxhash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn script_kind(script: &Value, ctx: &QueryContext<'_>) -> Result<Kind, QueryError> {
    let (source, params) = script_source(script)?;
    let expr = Expr::parse(&source)?;
    let params = params
        .iter()
        .filter_map(|(k, v)| json_val(v).map(|v| (k.clone(), v)))
        .collect::<BTreeMap<_, _>>();
    let mut columns = Vec::new();
    for field in expr.doc_fields() {
        let (col, _) = column(&field, ctx, "script")?;
        columns.push((field, col));
    }
    Ok(Kind::Script {
        expr,
        params,
        columns,
    })
}

/// A length of time in milliseconds (`10d`, `12h`, `30m`, `1.5s`, `500ms`), or a number.
fn time_millis(value: &Value) -> Option<f64> {
    if let Some(n) = value.as_f64() {
        return Some(n);
    }
    let text = value.as_str()?.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (amount, unit) = text.split_at(split);
    let amount: f64 = amount.trim().parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 6e4,
        "h" => 3.6e6,
        "d" => 8.64e7,
        "w" => 6.048e8,
        _ => return None,
    };
    Some(amount * unit_ms)
}

fn decay(
    shape: &str,
    body: &Map<String, Value>,
    ctx: &QueryContext<'_>,
) -> Result<Kind, QueryError> {
    let shape = match shape {
        "gauss" => Shape::Gauss,
        "exp" => Shape::Exp,
        _ => Shape::Linear,
    };
    let mode = match body.get("multi_value_mode").and_then(Value::as_str) {
        None | Some("min") => MultiValue::Min,
        Some("max") => MultiValue::Max,
        Some("avg") => MultiValue::Avg,
        Some("sum") => MultiValue::Sum,
        Some(other) => return Err(parsing(format!("illegal multi_value_mode [{other}]"))),
    };
    let mut fields = body
        .iter()
        .filter(|(k, _)| k.as_str() != "multi_value_mode");
    let (Some((field, spec)), None) = (fields.next(), fields.next()) else {
        return Err(parsing("a decay function takes exactly one field"));
    };
    let spec = as_object(spec, "decay function")?;
    check_params(
        spec,
        "decay function",
        &["origin", "scale", "offset", "decay"],
    )?;
    let (column, is_date) = column(field, ctx, "decay function")?;
    let point = |key: &str| -> Result<Option<f64>, QueryError> {
        let Some(value) = spec.get(key) else {
            return Ok(None);
        };
        let parsed = if is_date {
            match key {
                "origin" => value
                    .as_str()
                    .and_then(|s| {
                        date_math(s)
                            .or_else(|| cameodb_schema::mapping::date::parse_value(value, None))
                    })
                    .map(|ms| ms as f64)
                    .or_else(|| value.as_f64()),
                _ => time_millis(value),
            }
        } else {
            Some(number(value, key)?)
        };
        parsed.map(Some).ok_or_else(|| {
            parsing(format!(
                "[{key}] [{value}] of the decay on [{field}] is not valid"
            ))
        })
    };
    let scale = point("scale")?.ok_or_else(|| parsing("a decay function requires [scale]"))?;
    let origin = match point("origin")? {
        Some(origin) => origin,
        None if is_date => date_math("now").map_or(0.0, |ms| ms as f64),
        None => return Err(parsing("a decay function on a number requires [origin]")),
    };
    let decay = spec
        .get("decay")
        .map(|d| number(d, "decay"))
        .transpose()?
        .unwrap_or(0.5);
    if !(decay > 0.0 && decay < 1.0) || scale <= 0.0 {
        return Err(parsing(
            "a decay function needs [scale] above 0 and [decay] between 0 and 1",
        ));
    }
    Ok(Kind::Decay {
        column,
        decay: Decay {
            shape,
            origin,
            scale,
            offset: point("offset")?.unwrap_or(0.0),
            decay,
            mode,
        },
    })
}
