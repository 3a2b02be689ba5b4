//! Char filters, by their Elasticsearch names: rewrite the text before it is tokenized.

use regex::Regex;
use serde_json::Value;

use super::mapped::{Mapped, MappedBuilder};
use super::params::{Params, invalid};
use super::tokenizers::compile;
use crate::error::Result;

/// Most entries a `mapping` char filter may hold.
pub const MAX_MAPPINGS: usize = 10_000;

/// A configured char filter.
#[derive(Clone, Debug)]
pub(crate) enum CharFilter {
    /// Removes HTML tags (block-level ones become a newline) and decodes entities.
    HtmlStrip {
        /// Tags left in place (`escaped_tags`), lowercased.
        escaped: Vec<String>,
    },
    /// Replaces each key by its value, longest key first.
    Mapping { rules: Vec<(String, String)> },
    /// Replaces matches of `regex` by `replacement` (`$1` refers to groups).
    PatternReplace { regex: Regex, replacement: String },
}

impl CharFilter {
    pub fn builtin(name: &str) -> Option<CharFilter> {
        (name == "html_strip").then(|| CharFilter::HtmlStrip {
            escaped: Vec::new(),
        })
    }

    pub fn define(name: &str, def: &Value) -> Result<CharFilter> {
        let object = def
            .as_object()
            .ok_or_else(|| invalid(format!("char_filter [{name}] must be an object")))?;
        let params = Params::new(format!("char_filter [{name}]"), object);
        let kind = params.string("type")?.unwrap_or_default();
        let filter = match kind.as_str() {
            "html_strip" => CharFilter::HtmlStrip {
                escaped: params
                    .list("escaped_tags")?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.to_lowercase())
                    .collect(),
            },
            "mapping" => {
                let entries = params.list("mappings")?.ok_or_else(|| {
                    invalid(format!(
                        "mapping requires either `mappings` or `mappings_path` to be configured ({})",
                        params.what()
                    ))
                })?;
                if entries.len() > MAX_MAPPINGS {
                    return Err(invalid(format!(
                        "{} has more than [{MAX_MAPPINGS}] mappings",
                        params.what()
                    )));
                }
                let mut rules = Vec::with_capacity(entries.len());
                for entry in &entries {
                    let (from, to) = entry.split_once("=>").ok_or_else(|| {
                        invalid(format!(
                            "Invalid Mapping Rule : [{entry}] in {}",
                            params.what()
                        ))
                    })?;
                    let from = unescape(from.trim());
                    if from.is_empty() {
                        return Err(invalid(format!(
                            "Invalid Mapping Rule : [{entry}] in {}",
                            params.what()
                        )));
                    }
                    rules.push((from, unescape(to.trim())));
                }
                rules.sort_by_key(|rule| std::cmp::Reverse(rule.0.len()));
                CharFilter::Mapping { rules }
            }
            "pattern_replace" => {
                let pattern = params.string("pattern")?.ok_or_else(|| {
                    invalid(format!("[pattern] is required for {}", params.what()))
                })?;
                params.refuse_flags()?;
                CharFilter::PatternReplace {
                    regex: compile(&pattern, params.what())?,
                    replacement: params.string("replacement")?.unwrap_or_default(),
                }
            }
            other => {
                return Err(invalid(format!(
                    "Unknown char_filter type [{other}] for [{name}]"
                )));
            }
        };
        params.finish()?;
        Ok(filter)
    }

    pub fn apply(&self, input: &Mapped) -> Mapped {
        match self {
            CharFilter::HtmlStrip { escaped } => html_strip(input, escaped),
            CharFilter::Mapping { rules } => {
                let text = &input.text;
                let mut out = MappedBuilder::new(input);
                let mut at = 0;
                let mut kept_from = 0;
                while at < text.len() {
                    let rest = text.get(at..).unwrap_or_default();
                    match rules
                        .iter()
                        .find(|(from, _)| rest.starts_with(from.as_str()))
                    {
                        Some((from, to)) => {
                            out.keep(kept_from, at);
                            out.replace(at, to);
                            at += from.len();
                            kept_from = at;
                        }
                        None => at += rest.chars().next().map_or(1, char::len_utf8),
                    }
                }
                out.keep(kept_from, text.len());
                out.finish()
            }
            CharFilter::PatternReplace { regex, replacement } => {
                let text = &input.text;
                let mut out = MappedBuilder::new(input);
                let mut last = 0;
                for captures in regex.captures_iter(text) {
                    let Some(found) = captures.get(0) else {
                        continue;
                    };
                    out.keep(last, found.start());
                    let mut expanded = String::new();
                    captures.expand(replacement, &mut expanded);
                    out.replace(found.start(), &expanded);
                    last = found.end();
                }
                out.keep(last, text.len());
                out.finish()
            }
        }
    }
}

/// `\n`, `\t`, `\r`, `\\`, `\uXXXX` in mapping rules, as Elasticsearch reads them.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Tags that end a line of text: stripped to a newline so words on either side stay apart.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

fn html_strip(input: &Mapped, escaped: &[String]) -> Mapped {
    let text = &input.text;
    let lower = text.to_ascii_lowercase();
    let mut out = MappedBuilder::new(input);
    let mut at = 0;
    let mut kept_from = 0;
    while at < text.len() {
        let rest = text.get(at..).unwrap_or_default();
        let step = rest.chars().next().map_or(1, char::len_utf8);
        if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(text.len(), |e| at + e + 3);
            out.keep(kept_from, at);
            out.replace(at, "");
            at = end;
            kept_from = at;
        } else if rest.starts_with('<')
            && let Some(close) = rest.find('>')
        {
            let inner = rest.get(1..close).unwrap_or_default();
            let name: String = inner
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            let looks_like_tag = !name.is_empty() || inner.starts_with('!');
            if !looks_like_tag || escaped.contains(&name) {
                at += step;
                continue;
            }
            let mut end = at + close + 1;
            if (name == "script" || name == "style") && !inner.starts_with('/') {
                let closing = format!("</{name}");
                end = lower
                    .get(end..)
                    .and_then(|r| r.find(&closing))
                    .and_then(|e| {
                        let from = end + e;
                        lower.get(from..)?.find('>').map(|g| from + g + 1)
                    })
                    .unwrap_or(text.len());
            }
            out.keep(kept_from, at);
            let block = BLOCK_TAGS.contains(&name.as_str());
            out.replace(at, if block { "\n" } else { "" });
            at = end;
            kept_from = at;
        } else if rest.starts_with('&')
            && let Some((decoded, len)) = entity(rest)
        {
            out.keep(kept_from, at);
            out.replace(at, decoded.encode_utf8(&mut [0u8; 4]));
            at += len;
            kept_from = at;
        } else {
            at += step;
        }
    }
    out.keep(kept_from, text.len());
    out.finish()
}

/// The character an HTML entity at the start of `text` stands for, and its length.
fn entity(text: &str) -> Option<(char, usize)> {
    let end = text
        .char_indices()
        .take(12)
        .find(|(_, c)| *c == ';')
        .map(|(at, _)| at)?;
    let name = text.get(1..end)?;
    let decoded = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse::<u32>().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((decoded, end + 1))
}
