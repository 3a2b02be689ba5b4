//! A deliberately small subset of Painless for `_update_by_query`: statements of the form
//! `ctx._source.<path> <op> [<value>]` separated by `;`, where `<op>` is `=`, `+=`, `-=`, `++`
//! or `--` and `<value>` is a number, a quoted string, `true`, `false`, `null` or `params.<name>`.
//! Anything else is refused with a 400 that shows the statement, never guessed at.

use serde_json::{Map, Number, Value};

use crate::error::SearchError;

/// One assignment.
#[derive(Clone, Debug, PartialEq)]
struct Statement {
    path: Vec<String>,
    op: Op,
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Set(Value),
    Add(Value),
    Sub(Value),
}

/// A parsed script.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    statements: Vec<Statement>,
}

fn unsupported(what: &str) -> SearchError {
    SearchError::bad_request(
        "script_exception",
        format!(
            "unsupported script [{what}]: only `ctx._source.<field> (=|+=|-=) <value>` and `ctx._source.<field>++/--` statements are supported"
        ),
    )
}

fn literal(text: &str, params: &Map<String, Value>) -> Result<Value, SearchError> {
    let text = text.trim();
    if let Some(name) = text.strip_prefix("params.") {
        return params.get(name).cloned().ok_or_else(|| {
            SearchError::bad_request(
                "script_exception",
                format!("missing script parameter [{name}]"),
            )
        });
    }
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" => return Ok(Value::Null),
        _ => {}
    }
    for quote in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return Ok(Value::String(inner.to_string()));
        }
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Value::Number(n.into()));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| unsupported(text))
}

/// Parses `{"source": "...", "params": {...}, "lang": "painless"}` (or a bare string).
pub fn parse(script: &Value) -> Result<Script, SearchError> {
    let (source, params) = match script {
        Value::String(s) => (s.clone(), Map::new()),
        Value::Object(spec) => {
            if let Some(lang) = spec.get("lang").and_then(Value::as_str)
                && lang != "painless"
            {
                return Err(SearchError::bad_request(
                    "script_exception",
                    format!("script lang [{lang}] is not supported"),
                ));
            }
            if let Some(unknown) = spec
                .keys()
                .find(|k| !["source", "params", "lang"].contains(&k.as_str()))
            {
                return Err(SearchError::bad_request(
                    "script_exception",
                    format!("script option [{unknown}] is not supported"),
                ));
            }
            let source = spec.get("source").and_then(Value::as_str).ok_or_else(|| {
                SearchError::bad_request("script_exception", "script requires [source]")
            })?;
            (
                source.to_string(),
                spec.get("params")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            )
        }
        _ => {
            return Err(SearchError::bad_request(
                "script_exception",
                "script must be a string or an object",
            ));
        }
    };
    let mut statements = Vec::new();
    for raw in source.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let target_end = raw
            .find(|c: char| c == '=' || c == '+' || c == '-' || c.is_whitespace())
            .unwrap_or(raw.len());
        let (target, rest) = raw.split_at(target_end);
        let path = target
            .strip_prefix("ctx._source.")
            .ok_or_else(|| unsupported(raw))?;
        if path.is_empty()
            || !path
                .split('.')
                .all(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            return Err(unsupported(raw));
        }
        let rest = rest.trim();
        let op = if rest == "++" {
            Op::Add(Value::Number(1.into()))
        } else if rest == "--" {
            Op::Sub(Value::Number(1.into()))
        } else if let Some(v) = rest.strip_prefix("+=") {
            Op::Add(literal(v, &params)?)
        } else if let Some(v) = rest.strip_prefix("-=") {
            Op::Sub(literal(v, &params)?)
        } else if let Some(v) = rest.strip_prefix('=') {
            Op::Set(literal(v, &params)?)
        } else {
            return Err(unsupported(raw));
        };
        statements.push(Statement {
            path: path.split('.').map(String::from).collect(),
            op,
        });
    }
    if statements.is_empty() {
        return Err(unsupported(&source));
    }
    Ok(Script { statements })
}

fn arithmetic(
    current: Option<&Value>,
    delta: &Value,
    sign: f64,
    path: &str,
) -> Result<Value, SearchError> {
    let fail = || {
        SearchError::bad_request(
            "script_exception",
            format!(
                "cannot add [{delta}] to [{}] at [{path}]",
                current.cloned().unwrap_or(Value::Null)
            ),
        )
    };
    match (current, delta) {
        (Some(Value::Number(a)), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => {
                let y = if sign < 0.0 {
                    y.checked_neg().ok_or_else(fail)?
                } else {
                    y
                };
                Ok(Value::Number(x.checked_add(y).ok_or_else(fail)?.into()))
            }
            _ => {
                Number::from_f64(a.as_f64().ok_or_else(fail)? + sign * b.as_f64().ok_or_else(fail)?)
                    .map(Value::Number)
                    .ok_or_else(fail)
            }
        },
        (Some(Value::String(a)), Value::String(b)) if sign > 0.0 => {
            Ok(Value::String(format!("{a}{b}")))
        }
        _ => Err(fail()),
    }
}

impl Script {
    /// Runs the script on a source document.
    pub fn apply(&self, source: &mut Map<String, Value>) -> Result<(), SearchError> {
        for statement in &self.statements {
            let (last, parents) = statement
                .path
                .split_last()
                .ok_or_else(|| unsupported("empty path"))?;
            let mut node = &mut *source;
            for segment in parents {
                let entry = node
                    .entry(segment.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                node = entry.as_object_mut().ok_or_else(|| {
                    SearchError::bad_request(
                        "script_exception",
                        format!("[{segment}] is not an object"),
                    )
                })?;
            }
            let path = statement.path.join(".");
            let value = match &statement.op {
                Op::Set(v) => v.clone(),
                Op::Add(v) => arithmetic(node.get(last), v, 1.0, &path)?,
                Op::Sub(v) => arithmetic(node.get(last), v, -1.0, &path)?,
            };
            node.insert(last.clone(), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(script: Value, doc: Value) -> Result<Value, SearchError> {
        let Value::Object(mut map) = doc else {
            unreachable!()
        };
        parse(&script)?.apply(&mut map)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn supported_statements() {
        assert_eq!(
            run(json!({"source": "ctx._source.age++"}), json!({"age": 29})).unwrap(),
            json!({"age": 30})
        );
        assert_eq!(
            run(json!({"source": "ctx._source.n += params.k; ctx._source.tag = 'x'; ctx._source.a.b = true", "params": {"k": 2.5}}), json!({"n": 1})).unwrap(),
            json!({"n": 3.5, "tag": "x", "a": {"b": true}})
        );
        assert_eq!(
            run(json!("ctx._source.c -= 3"), json!({"c": 1})).unwrap(),
            json!({"c": -2})
        );
    }

    #[test]
    fn everything_else_is_refused() {
        assert!(parse(&json!("ctx._source.remove('a')")).is_err());
        assert!(parse(&json!("if (ctx._source.a > 1) { ctx.op = 'delete' }")).is_err());
        assert!(parse(&json!({"source": "ctx._source.a = 1", "lang": "expression"})).is_err());
        assert!(run(json!("ctx._source.a += 1"), json!({"a": "text"})).is_err());
        assert!(run(json!("ctx._source.a += params.missing"), json!({"a": 1})).is_err());
    }
}
