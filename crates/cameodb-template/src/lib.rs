//! Elasticsearch's mustache dialect, as search templates use it: `{{var}}` (JSON-escaped, since
//! the output is a JSON body), `{{{var}}}` / `{{&var}}` (raw), sections `{{#name}}…{{/name}}`
//! over lists, objects and truthy values, inverted sections `{{^name}}…{{/name}}`, comments,
//! and the functions `{{#toJson}}path{{/toJson}}`, `{{#join}}path{{/join}}` (with
//! `delimiter='…'`) and `{{#url}}…{{/url}}`.
//!
//! Generic mustache crates escape for HTML and know none of these functions, so the dialect is
//! implemented here: a parse into a tree, then one rendering pass over parameters, bounded by
//! [`MAX_SECTION_DEPTH`] and [`MAX_OUTPUT_BYTES`].

use serde_json::Value;

/// Deepest nesting of sections: bounds the parser's and the renderer's recursion.
pub const MAX_SECTION_DEPTH: usize = 64;

/// Most bytes one rendering may produce: a section over a long list repeats its body, so the
/// output is bounded independently of the template's size.
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// Why a template cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    /// The template is malformed (unclosed tag or section, mismatched close, …).
    #[error("improperly closed or malformed mustache template: {0}")]
    Syntax(String),
    /// Rendering would exceed a named limit.
    #[error("{0}")]
    Limit(String),
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Var {
        path: String,
        escape: bool,
    },
    Section {
        name: String,
        inverted: bool,
        body: Vec<Node>,
    },
    ToJson(String),
    Join {
        path: String,
        delimiter: String,
    },
    Url(Vec<Node>),
}

/// Renders `template` with `params` as its context.
pub fn render(template: &str, params: &Value) -> Result<String, TemplateError> {
    let mut rest = template;
    let nodes = parse(&mut rest, None, 0)?;
    let mut out = String::new();
    let mut stack = vec![params];
    render_nodes(&nodes, &mut stack, &mut out)?;
    Ok(out)
}

/// Parses until the close tag of `open` (or the end, at the top level).
fn parse(rest: &mut &str, open: Option<&str>, depth: usize) -> Result<Vec<Node>, TemplateError> {
    if depth > MAX_SECTION_DEPTH {
        return Err(TemplateError::Limit(format!(
            "mustache sections nest deeper than [{MAX_SECTION_DEPTH}]"
        )));
    }
    let mut nodes = Vec::new();
    loop {
        let Some(at) = rest.find("{{") else {
            if !rest.is_empty() {
                nodes.push(Node::Text(rest.to_string()));
            }
            *rest = "";
            return match open {
                None => Ok(nodes),
                Some(name) => Err(TemplateError::Syntax(format!(
                    "section [{name}] is not closed"
                ))),
            };
        };
        if at > 0 {
            nodes.push(Node::Text(rest[..at].to_string()));
        }
        let after = &rest[at + 2..];
        let (tag, triple) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find("}}}")
                .ok_or_else(|| TemplateError::Syntax("unclosed {{{ tag".into()))?;
            *rest = &inner[end + 3..];
            (inner[..end].trim(), true)
        } else {
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Syntax("unclosed {{ tag".into()))?;
            *rest = &after[end + 2..];
            (after[..end].trim(), false)
        };
        if triple {
            nodes.push(Node::Var {
                path: tag.to_string(),
                escape: false,
            });
            continue;
        }
        let (sigil, body) = match tag.chars().next() {
            Some(c @ ('#' | '^' | '/' | '!' | '&')) => (Some(c), tag[1..].trim()),
            _ => (None, tag),
        };
        match sigil {
            Some('!') => {}
            Some('&') => nodes.push(Node::Var {
                path: body.to_string(),
                escape: false,
            }),
            Some('/') => {
                let name = body.split_whitespace().next().unwrap_or_default();
                return match open {
                    Some(open) if first_word(open) == name => Ok(nodes),
                    Some(open) => Err(TemplateError::Syntax(format!(
                        "section [{open}] is closed by [{name}]"
                    ))),
                    None => Err(TemplateError::Syntax(format!("[{name}] closes no section"))),
                };
            }
            Some(c @ ('#' | '^')) => {
                let children = parse(rest, Some(body), depth + 1)?;
                nodes.push(section(body, c == '^', children)?);
            }
            _ => {
                if body.is_empty() {
                    return Err(TemplateError::Syntax("empty tag {{}}".into()));
                }
                nodes.push(Node::Var {
                    path: body.to_string(),
                    escape: true,
                });
            }
        }
    }
}

fn first_word(tag: &str) -> &str {
    tag.split_whitespace().next().unwrap_or_default()
}

/// The node a section tag opens: a function (`toJson`, `join`, `url`) or a plain section.
fn section(tag: &str, inverted: bool, body: Vec<Node>) -> Result<Node, TemplateError> {
    let name = first_word(tag);
    let literal = || -> Result<String, TemplateError> {
        match body.as_slice() {
            [Node::Text(path)] => Ok(path.trim().to_string()),
            _ => Err(TemplateError::Syntax(format!(
                "[{name}] takes a parameter name, not a template"
            ))),
        }
    };
    Ok(match (name, inverted) {
        ("toJson", false) => Node::ToJson(literal()?),
        ("join", false) => {
            let delimiter = tag
                .split_once("delimiter=")
                .map(|(_, d)| d.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
                .unwrap_or_else(|| ",".to_string());
            Node::Join {
                path: literal()?,
                delimiter,
            }
        }
        ("url", false) => Node::Url(body),
        _ => Node::Section {
            name: name.to_string(),
            inverted,
            body,
        },
    })
}

/// The value `path` names: `.` is the current context; otherwise the first segment is looked
/// up from the innermost context outwards, the rest below it (`list.0` indexes a list).
fn lookup<'v>(stack: &[&'v Value], path: &str) -> Option<&'v Value> {
    if path == "." {
        return stack.last().copied();
    }
    let mut segments = path.split('.');
    let first = segments.next()?;
    let mut value = stack
        .iter()
        .rev()
        .find_map(|context| child(context, first))?;
    for segment in segments {
        value = child(value, segment)?;
    }
    Some(value)
}

fn child<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// `text` escaped for the inside of a JSON string.
fn json_escaped(text: &str) -> String {
    let quoted = Value::String(text.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn push(out: &mut String, text: &str) -> Result<(), TemplateError> {
    if out.len().saturating_add(text.len()) > MAX_OUTPUT_BYTES {
        return Err(TemplateError::Limit(format!(
            "the rendered template is larger than [{MAX_OUTPUT_BYTES}] bytes"
        )));
    }
    out.push_str(text);
    Ok(())
}

fn render_nodes(
    nodes: &[Node],
    stack: &mut Vec<&Value>,
    out: &mut String,
) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(text) => push(out, text)?,
            Node::Var { path, escape } => {
                let text = lookup(stack, path).map(plain).unwrap_or_default();
                push(out, &if *escape { json_escaped(&text) } else { text })?;
            }
            Node::ToJson(path) => {
                let text = lookup(stack, path)
                    .map(Value::to_string)
                    .unwrap_or_default();
                push(out, &text)?;
            }
            Node::Join { path, delimiter } => {
                let items: Vec<String> = match lookup(stack, path) {
                    Some(Value::Array(items)) => {
                        items.iter().map(|v| json_escaped(&plain(v))).collect()
                    }
                    Some(one) => vec![json_escaped(&plain(one))],
                    None => Vec::new(),
                };
                push(out, &items.join(delimiter))?;
            }
            Node::Url(body) => {
                let mut inner = String::new();
                render_nodes(body, stack, &mut inner)?;
                push(out, &url_encoded(&inner))?;
            }
            Node::Section {
                name,
                inverted,
                body,
            } => {
                let value = lookup(stack, name);
                if *inverted {
                    if !truthy(value) {
                        render_nodes(body, stack, out)?;
                    }
                    continue;
                }
                match value {
                    _ if !truthy(value) => {}
                    Some(Value::Array(items)) => {
                        for item in items {
                            stack.push(item);
                            let done = render_nodes(body, stack, out);
                            stack.pop();
                            done?;
                        }
                    }
                    Some(value) => {
                        stack.push(value);
                        let done = render_nodes(body, stack, out);
                        stack.pop();
                        done?;
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

/// Percent-encoding of everything but unreserved characters (RFC 3986).
fn url_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_are_escaped_for_json_unless_triple() {
        let params = json!({"q": "say \"hi\"\n", "n": 5, "nested": {"k": true}});
        assert_eq!(
            render(r#"{"q": "{{q}}", "n": {{n}}, "k": {{nested.k}}}"#, &params).unwrap(),
            r#"{"q": "say \"hi\"\n", "n": 5, "k": true}"#
        );
        assert_eq!(
            render("{{{q}}}|{{& q}}", &json!({"q": "\""})).unwrap(),
            "\"|\""
        );
        assert_eq!(render("[{{missing}}]", &json!({})).unwrap(), "[]");
    }

    #[test]
    fn sections_iterate_lists_and_test_values() {
        let params =
            json!({"tags": [{"t": "a"}, {"t": "b"}], "on": true, "off": false, "list": [1, 2]});
        assert_eq!(render("{{#tags}}{{t}},{{/tags}}", &params).unwrap(), "a,b,");
        assert_eq!(
            render(
                "{{#on}}yes{{/on}}{{#off}}no{{/off}}{{^off}}not{{/off}}",
                &params
            )
            .unwrap(),
            "yesnot"
        );
        assert_eq!(
            render("{{#list}}{{.}}{{/list}}|{{list.1}}", &params).unwrap(),
            "12|2"
        );
        assert_eq!(render("{{! a comment }}x", &params).unwrap(), "x");
    }

    #[test]
    fn functions_render_json_joins_and_urls() {
        let params = json!({"tags": ["a", "b\"c"], "obj": {"x": [1]}, "u": "a b/c"});
        assert_eq!(
            render("{{#toJson}}obj{{/toJson}}", &params).unwrap(),
            r#"{"x":[1]}"#
        );
        assert_eq!(
            render("{{#join}}tags{{/join}}", &params).unwrap(),
            r#"a,b\"c"#
        );
        assert_eq!(
            render(
                "{{#join delimiter='||'}}tags{{/join delimiter='||'}}",
                &params
            )
            .unwrap(),
            r#"a||b\"c"#
        );
        assert_eq!(
            render("{{#url}}{{u}}{{/url}}", &params).unwrap(),
            "a%20b%2Fc"
        );
    }

    #[test]
    fn malformed_templates_and_limits_are_errors() {
        assert!(matches!(
            render("{{#a}}x", &json!({})),
            Err(TemplateError::Syntax(_))
        ));
        assert!(matches!(
            render("{{#a}}x{{/b}}", &json!({})),
            Err(TemplateError::Syntax(_))
        ));
        assert!(matches!(
            render("{{a", &json!({})),
            Err(TemplateError::Syntax(_))
        ));
        assert!(matches!(
            render("x{{/a}}", &json!({})),
            Err(TemplateError::Syntax(_))
        ));
        let deep = "{{#a}}".repeat(MAX_SECTION_DEPTH + 2);
        assert!(matches!(
            render(&deep, &json!({})),
            Err(TemplateError::Limit(_))
        ));
        let big = json!({"l": vec![0; 1 << 12], "s": "x".repeat(1 << 13)});
        assert!(matches!(
            render("{{#l}}{{s}}{{/l}}", &big),
            Err(TemplateError::Limit(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_input_renders_or_fails_without_panicking(template in ".{0,200}", text in ".{0,40}") {
            let _ = render(&template, &json!({"a": text, "l": [1, 2, 3]}));
        }

        #[test]
        fn an_escaped_string_stays_one_json_string(text in ".{0,60}") {
            let rendered = render("\"{{v}}\"", &json!({"v": text.clone()})).unwrap();
            let parsed: Value = serde_json::from_str(&rendered).unwrap();
            proptest::prop_assert_eq!(parsed, Value::String(text));
        }
    }
}
