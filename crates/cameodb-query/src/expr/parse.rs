//! The parser of the Painless expression subset (see the parent module): recursive descent
//! with the precedence of Java's operators, every recursion counted against the named limits.

use super::{
    DocRead, MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_NODES, Node, Op, Val, call, script_error,
};
use crate::error::QueryError;

pub(super) struct Parser<'s> {
    /// The source.
    pub(super) chars: &'s [u8],
    /// Where parsing has got to.
    pub(super) at: usize,
    /// Current nesting, checked against [`MAX_EXPRESSION_DEPTH`].
    pub(super) depth: usize,
    /// Nodes built so far, checked against [`MAX_EXPRESSION_NODES`].
    pub(super) nodes: usize,
}

impl Parser<'_> {
    pub(super) fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.chars[self.at..].starts_with(token.as_bytes()) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    pub(super) fn unexpected(&self) -> QueryError {
        let rest = String::from_utf8_lossy(&self.chars[self.at.min(self.chars.len())..]);
        let shown: String = rest.chars().take(40).collect();
        script_error(format!(
            "unsupported script: cannot parse from [{shown}] (only arithmetic, comparisons, params, _score, doc values and Math functions are supported)"
        ))
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        self.nodes += 1;
        if self.nodes > MAX_EXPRESSION_NODES {
            return Err(script_error(format!(
                "script has more than [{MAX_EXPRESSION_NODES}] operators and operands"
            )));
        }
        self.depth += 1;
        if self.depth > MAX_EXPRESSION_DEPTH {
            return Err(script_error(format!(
                "script nests deeper than [{MAX_EXPRESSION_DEPTH}] levels"
            )));
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    pub(super) fn ternary(&mut self) -> Result<Node, QueryError> {
        self.nested(|p| {
            let cond = p.binary_level(0)?;
            if !p.eat("?") {
                return Ok(cond);
            }
            let then = p.ternary()?;
            if !p.eat(":") {
                return Err(p.unexpected());
            }
            let otherwise = p.ternary()?;
            Ok(Node::If(
                Box::new(cond),
                Box::new(then),
                Box::new(otherwise),
            ))
        })
    }

    /// Binary operators by precedence, loosest first.
    fn binary_level(&mut self, level: usize) -> Result<Node, QueryError> {
        const LEVELS: &[&[(&str, Op)]] = &[
            &[("||", Op::Or)],
            &[("&&", Op::And)],
            &[("==", Op::Eq), ("!=", Op::Ne)],
            &[("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div), ("%", Op::Rem)],
        ];
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary_level(level + 1)?;
        'more: loop {
            for (token, op) in *ops {
                if self.eat(token) {
                    // Each operator is a node: a long chain is a deep tree.
                    let right = self.nested(|p| p.binary_level(level + 1))?;
                    left = Node::Bin(*op, Box::new(left), Box::new(right));
                    continue 'more;
                }
            }
            return Ok(left);
        }
    }

    fn unary(&mut self) -> Result<Node, QueryError> {
        if self.eat("-") {
            return self.nested(|p| Ok(Node::Neg(Box::new(p.unary()?))));
        }
        if self.eat("!") {
            return self.nested(|p| Ok(Node::Not(Box::new(p.unary()?))));
        }
        self.primary()
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.chars[start..self.at]).into_owned())
    }

    fn primary(&mut self) -> Result<Node, QueryError> {
        if self.eat("(") {
            let inner = self.ternary()?;
            return if self.eat(")") {
                Ok(inner)
            } else {
                Err(self.unexpected())
            };
        }
        self.skip_space();
        if self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
        {
            return self.number();
        }
        let mark = self.at;
        let Some(word) = self.identifier() else {
            return Err(self.unexpected());
        };
        match word.as_str() {
            "true" => Ok(Node::Lit(Val::Bool(true))),
            "false" => Ok(Node::Lit(Val::Bool(false))),
            "null" => Ok(Node::Lit(Val::Null)),
            "_score" => Ok(Node::Score),
            "params" if self.eat(".") => match self.identifier() {
                Some(name) => Ok(Node::Param(name)),
                None => Err(self.unexpected()),
            },
            "params" if self.eat("[") => {
                let name = self.quoted()?;
                if self.eat("]") {
                    Ok(Node::Param(name))
                } else {
                    Err(self.unexpected())
                }
            }
            "doc" if self.eat("[") => {
                let field = self.quoted()?;
                if !self.eat("]") {
                    return Err(self.unexpected());
                }
                let read = if self.eat(".value") {
                    DocRead::Value
                } else if self.eat(".size()") || self.eat(".length") {
                    DocRead::Size
                } else if self.eat(".empty") || self.eat(".isEmpty()") {
                    DocRead::Empty
                } else {
                    return Err(self.unexpected());
                };
                Ok(Node::Doc(field, read))
            }
            "Math" | "saturation" | "sigmoid" => {
                let name = if word == "Math" {
                    if !self.eat(".") {
                        return Err(self.unexpected());
                    }
                    self.identifier().ok_or_else(|| self.unexpected())?
                } else {
                    word.clone()
                };
                if !self.eat("(") {
                    return Err(self.unexpected());
                }
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.ternary()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.unexpected());
                        }
                    }
                }
                call(&name, &vec![0.0; args.len()]).map(|_| ())?;
                Ok(Node::Call(name, args))
            }
            _ => {
                self.at = mark;
                Err(self.unexpected())
            }
        }
    }

    fn quoted(&mut self) -> Result<String, QueryError> {
        self.skip_space();
        let quote = match self.chars.get(self.at) {
            Some(q @ (b'\'' | b'"')) => *q,
            _ => return Err(self.unexpected()),
        };
        let start = self.at + 1;
        let end = self.chars[start..]
            .iter()
            .position(|c| *c == quote)
            .map(|n| start + n)
            .ok_or_else(|| self.unexpected())?;
        self.at = end + 1;
        Ok(String::from_utf8_lossy(&self.chars[start..end]).into_owned())
    }

    fn number(&mut self) -> Result<Node, QueryError> {
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
        {
            self.at += 1;
        }
        if self
            .chars
            .get(self.at)
            .is_some_and(|c| *c == b'e' || *c == b'E')
        {
            self.at += 1;
            if self
                .chars
                .get(self.at)
                .is_some_and(|c| *c == b'-' || *c == b'+')
            {
                self.at += 1;
            }
            while self.chars.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
        }
        let text = String::from_utf8_lossy(&self.chars[start..self.at]).into_owned();
        // Java's literal suffixes: `1L`, `2.0d`, `3f`.
        if self
            .chars
            .get(self.at)
            .is_some_and(|c| matches!(c, b'L' | b'l' | b'd' | b'D' | b'f' | b'F'))
        {
            self.at += 1;
        }
        text.parse::<f64>()
            .map(|n| Node::Lit(Val::Num(n)))
            .map_err(|_| {
                self.at = start;
                self.unexpected()
            })
    }
}
