//! Painless expressions, the subset dashboards and scoring scripts are written in:
//! arithmetic, comparisons, `&&` `||` `!`, `? :`, numbers, `true`/`false`/`null`,
//! `params.<name>`, `_score`, `doc['<field>'].value`, `doc['<field>'].size()` /
//! `.length` / `.empty`, and `Math.` functions (`log`, `log10`, `sqrt`, `pow`, `abs`, `min`,
//! `max`, `exp`, `floor`, `ceil`, `round`), optionally written as `return <expr>;`. Anything
//! else is refused when the script is parsed, with a 400 naming the first thing not
//! understood — never guessed at.

use serde_json::Value;

use crate::error::QueryError;

mod parse;
use parse::Parser;

/// `script.max_size_in_bytes`, in the spirit of Elasticsearch's limit: longer sources are
/// refused before they are parsed.
pub const MAX_SCRIPT_BYTES: usize = 16 * 1024;
/// Deepest nesting of an expression (parentheses, ternaries, unary operators): bounds the
/// parser's recursion.
pub const MAX_EXPRESSION_DEPTH: usize = 64;
/// Most operators and operands in one expression: bounds the depth of the tree evaluation and
/// dropping walk (`1+1+…` nests one level per operator).
pub const MAX_EXPRESSION_NODES: usize = 1024;

/// A value a script computes with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    Num(f64),
    Bool(bool),
    Null,
}

/// What a script can read: its parameters, and (when scoring) the document and its score.
pub trait Env {
    /// `params.<name>`: `None` when there is no such parameter.
    fn param(&self, name: &str) -> Option<Val>;
    /// `_score`.
    fn score(&self) -> Option<f64> {
        None
    }
    /// The values of `field` in the current document (`doc['field']`); `None` when scripts
    /// here cannot read documents.
    fn doc(&self, _field: &str) -> Option<Vec<f64>> {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum DocRead {
    Value,
    Size,
    Empty,
}

/// A node of a parsed expression.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Lit(Val),
    Param(String),
    Score,
    Doc(String, DocRead),
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    Call(String, Vec<Node>),
}

fn script_error(reason: String) -> QueryError {
    QueryError::Script(reason)
}

/// The source of a `script` value: a string, or `{"source": …, "lang": "painless",
/// "params": {…}}` (then its params too).
pub fn script_source(
    script: &Value,
) -> Result<(String, serde_json::Map<String, Value>), QueryError> {
    match script {
        Value::String(source) => Ok((source.clone(), serde_json::Map::new())),
        Value::Object(object) => {
            if let Some(key) = object
                .keys()
                .find(|k| !["source", "lang", "params"].contains(&k.as_str()))
            {
                return Err(script_error(format!(
                    "[{key}] of a script is not supported (stored scripts are not)"
                )));
            }
            if let Some(lang) = object.get("lang")
                && lang.as_str() != Some("painless")
                && lang.as_str() != Some("expression")
            {
                return Err(script_error(format!(
                    "script lang [{lang}] is not supported"
                )));
            }
            let source = object
                .get("source")
                .and_then(Value::as_str)
                .ok_or_else(|| script_error("a script requires [source]".into()))?;
            let params = match object.get("params") {
                None => serde_json::Map::new(),
                Some(Value::Object(params)) => params.clone(),
                Some(_) => return Err(script_error("script [params] must be an object".into())),
            };
            Ok((source.to_string(), params))
        }
        _ => Err(script_error(
            "a script must be a string or an object".into(),
        )),
    }
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr(Node);

impl Expr {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Expr, QueryError> {
        if source.len() > MAX_SCRIPT_BYTES {
            return Err(script_error(format!(
                "script is longer than [{MAX_SCRIPT_BYTES}] bytes"
            )));
        }
        let mut text = source.trim();
        text = text.strip_suffix(';').unwrap_or(text).trim_end();
        if let Some(rest) = text.strip_prefix("return")
            && rest.starts_with(|c: char| c.is_whitespace() || c == '(')
        {
            text = rest;
        }
        let mut parser = Parser {
            chars: text.as_bytes(),
            at: 0,
            depth: 0,
            nodes: 0,
        };
        let expr = parser.ternary()?;
        parser.skip_space();
        if parser.at < parser.chars.len() {
            return Err(parser.unexpected());
        }
        Ok(Expr(expr))
    }

    /// Evaluates the expression; `Null` where a value is missing (a bucket without the metric,
    /// a document without the field).
    pub fn eval(&self, env: &dyn Env) -> Result<Val, QueryError> {
        self.0.eval(env)
    }
}

impl Expr {
    /// The fields the expression reads from the document (`doc['…']`).
    pub fn doc_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.0.doc_fields(&mut out);
        out.sort();
        out.dedup();
        out
    }

    /// True when the expression reads `_score`.
    pub fn reads_score(&self) -> bool {
        self.0.reads_score()
    }
}

impl Node {
    fn children(&self) -> Vec<&Node> {
        match self {
            Node::Neg(a) | Node::Not(a) => vec![a],
            Node::Bin(_, a, b) => vec![a, b],
            Node::If(a, b, c) => vec![a, b, c],
            Node::Call(_, args) => args.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn doc_fields(&self, out: &mut Vec<String>) {
        if let Node::Doc(field, _) = self {
            out.push(field.clone());
        }
        self.children().into_iter().for_each(|c| c.doc_fields(out));
    }

    fn reads_score(&self) -> bool {
        matches!(self, Node::Score) || self.children().into_iter().any(Node::reads_score)
    }

    fn eval(&self, env: &dyn Env) -> Result<Val, QueryError> {
        Ok(match self {
            Node::Lit(v) => *v,
            Node::Param(name) => env
                .param(name)
                .ok_or_else(|| script_error(format!("missing script parameter [{name}]")))?,
            Node::Score => Val::Num(
                env.score()
                    .ok_or_else(|| script_error("[_score] cannot be read here".into()))?,
            ),
            Node::Doc(field, read) => {
                let values = env
                    .doc(field)
                    .ok_or_else(|| script_error("[doc] cannot be read here".into()))?;
                match read {
                    DocRead::Value => values.first().map_or(Val::Null, |v| Val::Num(*v)),
                    DocRead::Size => Val::Num(values.len() as f64),
                    DocRead::Empty => Val::Bool(values.is_empty()),
                }
            }
            Node::Neg(inner) => match inner.eval(env)? {
                Val::Num(n) => Val::Num(-n),
                _ => Val::Null,
            },
            Node::Not(inner) => match inner.eval(env)? {
                Val::Bool(b) => Val::Bool(!b),
                _ => Val::Null,
            },
            Node::Bin(op, left, right) => binary(*op, left, right, env)?,
            Node::If(cond, then, otherwise) => match cond.eval(env)? {
                Val::Bool(true) => then.eval(env)?,
                Val::Bool(false) => otherwise.eval(env)?,
                _ => Val::Null,
            },
            Node::Call(name, args) => {
                let mut numbers = Vec::with_capacity(args.len());
                for arg in args {
                    match arg.eval(env)? {
                        Val::Num(n) => numbers.push(n),
                        _ => return Ok(Val::Null),
                    }
                }
                Val::Num(call(name, &numbers)?)
            }
        })
    }
}

fn binary(op: Op, left: &Node, right: &Node, env: &dyn Env) -> Result<Val, QueryError> {
    // `&&` and `||` short-circuit, as in Painless.
    if matches!(op, Op::And | Op::Or) {
        let l = left.eval(env)?;
        return Ok(match (op, l) {
            (Op::And, Val::Bool(false)) => Val::Bool(false),
            (Op::Or, Val::Bool(true)) => Val::Bool(true),
            (_, Val::Bool(_)) => match right.eval(env)? {
                Val::Bool(r) => Val::Bool(r),
                _ => Val::Null,
            },
            _ => Val::Null,
        });
    }
    let (l, r) = (left.eval(env)?, right.eval(env)?);
    Ok(match (l, r) {
        (Val::Num(a), Val::Num(b)) => match op {
            Op::Add => Val::Num(a + b),
            Op::Sub => Val::Num(a - b),
            Op::Mul => Val::Num(a * b),
            Op::Div => Val::Num(a / b),
            Op::Rem => Val::Num(a % b),
            Op::Lt => Val::Bool(a < b),
            Op::Le => Val::Bool(a <= b),
            Op::Gt => Val::Bool(a > b),
            Op::Ge => Val::Bool(a >= b),
            Op::Eq => Val::Bool(a == b),
            Op::Ne => Val::Bool(a != b),
            Op::And | Op::Or => Val::Null,
        },
        (a, b) if op == Op::Eq => Val::Bool(a == b),
        (a, b) if op == Op::Ne => Val::Bool(a != b),
        _ => Val::Null,
    })
}

fn call(name: &str, args: &[f64]) -> Result<f64, QueryError> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(script_error(format!(
                "Math.{name} takes {n} argument(s), got {}",
                args.len()
            )))
        }
    };
    let one = |f: fn(f64) -> f64| arity(1).map(|()| f(args[0]));
    let two = |f: fn(f64, f64) -> f64| arity(2).map(|()| f(args[0], args[1]));
    match name {
        "log" => one(f64::ln),
        "log10" => one(f64::log10),
        "sqrt" => one(f64::sqrt),
        "abs" => one(f64::abs),
        "exp" => one(f64::exp),
        "floor" => one(f64::floor),
        "ceil" => one(f64::ceil),
        "round" => one(f64::round),
        "pow" => two(f64::powf),
        // Painless's score-script helpers.
        "saturation" => two(|value, pivot| value / (pivot + value)),
        "sigmoid" => arity(3).map(|()| {
            let (value, k, a) = (args[0], args[1], args[2]);
            value.powf(a) / (k.powf(a) + value.powf(a))
        }),
        "min" => two(f64::min),
        "max" => two(f64::max),
        other => Err(script_error(format!("Math.{other} is not supported"))),
    }
}

/// An [`Env`] of parameters only (bucket scripts).
pub struct Params<'a>(pub &'a std::collections::BTreeMap<String, Val>);

impl Env for Params<'_> {
    fn param(&self, name: &str) -> Option<Val> {
        self.0.get(name).copied()
    }
}

/// A JSON parameter as a script value (`None` for what is not a number, boolean or null).
pub fn json_val(value: &Value) -> Option<Val> {
    match value {
        Value::Number(n) => n.as_f64().map(Val::Num),
        Value::Bool(b) => Some(Val::Bool(*b)),
        Value::Null => Some(Val::Null),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn eval(source: &str, params: &[(&str, f64)]) -> Val {
        let map: BTreeMap<String, Val> = params
            .iter()
            .map(|(k, v)| (k.to_string(), Val::Num(*v)))
            .collect();
        Expr::parse(source).unwrap().eval(&Params(&map)).unwrap()
    }

    #[test]
    fn arithmetic_comparisons_and_precedence() {
        assert_eq!(eval("1 + 2 * 3", &[]), Val::Num(7.0));
        assert_eq!(eval("(1 + 2) * 3", &[]), Val::Num(9.0));
        assert_eq!(
            eval("params.a / params.b * 100", &[("a", 1.0), ("b", 4.0)]),
            Val::Num(25.0)
        );
        assert_eq!(
            eval(
                "params.total > 100 && params.count >= 2",
                &[("total", 150.0), ("count", 2.0)]
            ),
            Val::Bool(true)
        );
        assert_eq!(
            eval("return params.x > 1 ? 10 : 20;", &[("x", 0.0)]),
            Val::Num(20.0)
        );
        assert_eq!(
            eval("Math.log(Math.max(1, 2.718281828459045))", &[]),
            Val::Num(1.0)
        );
        assert_eq!(eval("-2 - -3", &[]), Val::Num(1.0));
        assert_eq!(eval("!(1 > 2) || false", &[]), Val::Bool(true));
        assert_eq!(eval("10 % 4 == 2", &[]), Val::Bool(true));
        assert_eq!(eval("1.5e2 + 1L", &[]), Val::Num(151.0));
    }

    #[test]
    fn what_is_not_understood_is_refused() {
        for source in [
            "ctx._source.x = 1",
            "params.a +",
            "Math.foo(1)",
            "Math.pow(1)",
            "doc['x']",
            "for (int i = 0; i < 3; i++) {}",
            "1 1",
            "'text'",
        ] {
            assert!(Expr::parse(source).is_err(), "{source}");
        }
        assert!(Expr::parse(&"(".repeat(200)).is_err());
        assert!(Expr::parse(&"1+".repeat(10_000)).is_err());
    }

    proptest! {
        #[test]
        fn any_input_parses_or_is_refused_without_panicking(source in ".{0,80}") {
            let _ = Expr::parse(&source).map(|e| e.eval(&Params(&BTreeMap::new())));
        }

        #[test]
        fn sums_match_rust(a in -1.0e6f64..1.0e6, b in -1.0e6f64..1.0e6) {
            prop_assert_eq!(eval("params.a + params.b", &[("a", a), ("b", b)]), Val::Num(a + b));
        }
    }
}
