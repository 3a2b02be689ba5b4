//! Tokenizers, by their Elasticsearch names: how a text is split into tokens.

use regex::Regex;
use serde_json::Value;
use tantivy::tokenizer::Token;

use super::params::{Params, invalid};
use crate::error::Result;

/// Elasticsearch's default `index.max_ngram_diff`: the widest `max_gram - min_gram` an ngram
/// tokenizer or filter may span (each extra gram length multiplies the tokens per word).
pub const MAX_NGRAM_DIFF: usize = 1;
/// Elasticsearch's default `index.max_shingle_diff`.
pub const MAX_SHINGLE_DIFF: usize = 3;

/// The index settings that bound analysis components (`index.max_ngram_diff`,
/// `index.max_shingle_diff`).
#[derive(Clone, Copy, Debug)]
pub struct AnalysisLimits {
    pub max_ngram_diff: usize,
    pub max_shingle_diff: usize,
}

impl Default for AnalysisLimits {
    fn default() -> Self {
        AnalysisLimits {
            max_ngram_diff: MAX_NGRAM_DIFF,
            max_shingle_diff: MAX_SHINGLE_DIFF,
        }
    }
}
/// Longest gram an edge n-gram may ask for, bounding the tokens one word yields.
pub const MAX_EDGE_GRAM: usize = 255;
/// Longest token the standard tokenizer keeps whole (Elasticsearch's default); longer runs are
/// split at this many characters.
pub const MAX_TOKEN_LENGTH: usize = 255;

/// Which characters an n-gram tokenizer keeps inside its tokens (`token_chars`).
#[derive(Clone, Debug, Default)]
pub(crate) struct CharClasses {
    letter: bool,
    digit: bool,
    whitespace: bool,
    punctuation: bool,
    symbol: bool,
    /// `custom_token_chars`.
    custom: Vec<char>,
}

impl CharClasses {
    fn parse(params: &Params<'_>) -> Result<Option<CharClasses>> {
        let Some(names) = params.list("token_chars")? else {
            return Ok(None);
        };
        let mut classes = CharClasses::default();
        for name in &names {
            match name.as_str() {
                class if classes.add_class(class) => {}
                "custom" => {}
                other => {
                    return Err(invalid(format!(
                        "Unknown token type: '{other}', must be one of [letter, digit, whitespace, punctuation, symbol, custom] ({})",
                        params.what()
                    )));
                }
            }
        }
        if let Some(custom) = params.string("custom_token_chars")? {
            classes.custom = custom.chars().collect();
        }
        Ok((!names.is_empty()).then_some(classes))
    }

    /// Turns on the class called `name`; false when there is none.
    fn add_class(&mut self, name: &str) -> bool {
        let flag = match name {
            "letter" => &mut self.letter,
            "digit" => &mut self.digit,
            "whitespace" => &mut self.whitespace,
            "punctuation" => &mut self.punctuation,
            "symbol" => &mut self.symbol,
            _ => return false,
        };
        *flag = true;
        true
    }

    fn keeps(&self, c: char) -> bool {
        (self.letter && c.is_alphabetic())
            || (self.digit && c.is_numeric())
            || (self.whitespace && c.is_whitespace())
            || (self.punctuation && is_punctuation(c))
            || (self.symbol && is_symbol(c))
            || self.custom.contains(&c)
    }
}

fn is_symbol(c: char) -> bool {
    matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
        || (!c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control())
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() && !is_symbol(c)
}

/// A configured tokenizer.
#[derive(Clone, Debug)]
pub(crate) enum TokenizerSpec {
    /// Runs of letters and digits, split past `max_token_length` characters.
    Standard { max_len: usize },
    /// Runs of non-whitespace.
    Whitespace { max_len: usize },
    /// The whole text as one token.
    Keyword,
    /// Runs of letters, lowercased when `lowercase`.
    Letter { lowercase: bool },
    /// Split on a regex (`group: -1`), or each match's capture group.
    Pattern { regex: Regex, group: i64 },
    /// Split on the given characters and classes.
    CharGroup { split: CharClasses },
    /// Grams of `min..=max` characters of each run of kept characters (`edge`: from the run's
    /// start only).
    Ngram {
        min: usize,
        max: usize,
        keep: Option<CharClasses>,
        edge: bool,
    },
}

impl TokenizerSpec {
    /// The tokenizer called `name` with no parameters (`"tokenizer": "whitespace"`).
    pub fn builtin(name: &str) -> Option<TokenizerSpec> {
        Some(match name {
            "standard" | "classic_letters" => TokenizerSpec::Standard {
                max_len: MAX_TOKEN_LENGTH,
            },
            "whitespace" => TokenizerSpec::Whitespace {
                max_len: MAX_TOKEN_LENGTH,
            },
            "keyword" => TokenizerSpec::Keyword,
            "letter" => TokenizerSpec::Letter { lowercase: false },
            "lowercase" => TokenizerSpec::Letter { lowercase: true },
            "pattern" => TokenizerSpec::Pattern {
                regex: Regex::new(r"\W+").ok()?,
                group: -1,
            },
            "ngram" | "nGram" => TokenizerSpec::Ngram {
                min: 1,
                max: 2,
                keep: None,
                edge: false,
            },
            "edge_ngram" | "edgeNGram" => TokenizerSpec::Ngram {
                min: 1,
                max: 2,
                keep: None,
                edge: true,
            },
            _ => return None,
        })
    }

    /// A tokenizer defined in `settings.analysis.tokenizer`.
    pub fn define(name: &str, def: &Value, limits: &AnalysisLimits) -> Result<TokenizerSpec> {
        let object = def
            .as_object()
            .ok_or_else(|| invalid(format!("tokenizer [{name}] must be an object")))?;
        let params = Params::new(format!("tokenizer [{name}]"), object);
        let kind = params.string("type")?.ok_or_else(|| {
            invalid(format!(
                "tokenizer [{name}] must specify either an analyzer type, or a tokenizer"
            ))
        })?;
        let spec = match kind.as_str() {
            "standard" => TokenizerSpec::Standard {
                max_len: params
                    .usize_or("max_token_length", MAX_TOKEN_LENGTH, 1 << 20)?
                    .max(1),
            },
            "whitespace" => TokenizerSpec::Whitespace {
                max_len: params
                    .usize_or("max_token_length", MAX_TOKEN_LENGTH, 1 << 20)?
                    .max(1),
            },
            "keyword" => {
                params.usize_or("buffer_size", 256, usize::MAX)?;
                TokenizerSpec::Keyword
            }
            "letter" => TokenizerSpec::Letter { lowercase: false },
            "lowercase" => TokenizerSpec::Letter { lowercase: true },
            "pattern" => {
                let pattern = params.string("pattern")?.unwrap_or_else(|| r"\W+".into());
                params.refuse_flags()?;
                TokenizerSpec::Pattern {
                    regex: compile(&pattern, params.what())?,
                    group: params.i64_or("group", -1)?,
                }
            }
            "char_group" => {
                let mut split = CharClasses::default();
                for entry in params.list("tokenize_on_chars")?.unwrap_or_default() {
                    match entry.as_str() {
                        class if split.add_class(class) => {}
                        "\\n" => split.custom.push('\n'),
                        "\\t" => split.custom.push('\t'),
                        single if single.chars().count() == 1 => {
                            split.custom.extend(single.chars())
                        }
                        other => {
                            return Err(invalid(format!(
                                "invalid escaped char [{other}] in tokenize_on_chars of {}",
                                params.what()
                            )));
                        }
                    }
                }
                TokenizerSpec::CharGroup { split }
            }
            "ngram" | "nGram" | "edge_ngram" | "edgeNGram" => {
                let edge = kind.starts_with("edge");
                let min = params.usize_or("min_gram", 1, MAX_EDGE_GRAM)?.max(1);
                let max = params.usize_or("max_gram", 2, MAX_EDGE_GRAM)?;
                check_grams(min, max, edge, params.what(), limits)?;
                TokenizerSpec::Ngram {
                    min,
                    max,
                    keep: CharClasses::parse(&params)?,
                    edge,
                }
            }
            other => {
                return Err(invalid(format!(
                    "Unknown tokenizer type [{other}] for [{name}]"
                )));
            }
        };
        params.finish()?;
        Ok(spec)
    }

    /// The tokens of `text`, positions counted from 0.
    pub fn tokenize(&self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        match self {
            TokenizerSpec::Standard { max_len } => {
                runs(text, char::is_alphanumeric, *max_len, &mut out)
            }
            TokenizerSpec::Whitespace { max_len } => {
                runs(text, |c| !c.is_whitespace(), *max_len, &mut out)
            }
            TokenizerSpec::Keyword => {
                if !text.is_empty() {
                    push(&mut out, text, 0, text.len());
                }
            }
            TokenizerSpec::Letter { lowercase } => {
                runs(text, char::is_alphabetic, usize::MAX, &mut out);
                if *lowercase {
                    for token in &mut out {
                        token.text = token.text.to_lowercase();
                    }
                }
            }
            TokenizerSpec::Pattern { regex, group } => pattern(text, regex, *group, &mut out),
            TokenizerSpec::CharGroup { split } => {
                runs(text, |c| !split.keeps(c), usize::MAX, &mut out)
            }
            TokenizerSpec::Ngram {
                min,
                max,
                keep,
                edge,
            } => {
                let mut words = Vec::new();
                match keep {
                    Some(keep) => runs(text, |c| keep.keeps(c), usize::MAX, &mut words),
                    None if !text.is_empty() => push(&mut words, text, 0, text.len()),
                    None => {}
                }
                for word in words {
                    grams(&word, *min, *max, *edge, true, &mut out);
                }
            }
        }
        for (position, token) in out.iter_mut().enumerate() {
            token.position = position;
        }
        out
    }
}

pub(crate) fn compile(pattern: &str, what: &str) -> Result<Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| invalid(format!("invalid pattern [{pattern}] of {what}: {e}")))
}

pub(crate) fn check_grams(
    min: usize,
    max: usize,
    edge: bool,
    what: &str,
    limits: &AnalysisLimits,
) -> Result<()> {
    if max < min {
        return Err(invalid(format!(
            "[max_gram] of {what} must be at least [min_gram] ({min}), got {max}"
        )));
    }
    if !edge && max - min > limits.max_ngram_diff {
        return Err(invalid(format!(
            "The difference between max_gram and min_gram in NGram Tokenizer must be less than or equal to: [{}] but was [{}]. This limit can be set by changing the [index.max_ngram_diff] index level setting.",
            limits.max_ngram_diff,
            max - min
        )));
    }
    Ok(())
}

fn push(out: &mut Vec<Token>, text: &str, from: usize, to: usize) {
    if let Some(piece) = text.get(from..to) {
        out.push(Token {
            offset_from: from,
            offset_to: to,
            position: out.len(),
            text: piece.to_string(),
            position_length: 1,
        });
    }
}

/// Tokens of the maximal runs of characters `keep` accepts, each split every `max_len` chars.
fn runs(text: &str, keep: impl Fn(char) -> bool, max_len: usize, out: &mut Vec<Token>) {
    let mut start: Option<usize> = None;
    let mut chars_in_run = 0usize;
    for (at, c) in text.char_indices() {
        if keep(c) {
            if start.is_some() && chars_in_run == max_len {
                if let Some(from) = start {
                    push(out, text, from, at);
                }
                start = None;
            }
            if start.is_none() {
                start = Some(at);
                chars_in_run = 0;
            }
            chars_in_run += 1;
        } else if let Some(from) = start.take() {
            push(out, text, from, at);
        }
    }
    if let Some(from) = start {
        push(out, text, from, text.len());
    }
}

fn pattern(text: &str, regex: &Regex, group: i64, out: &mut Vec<Token>) {
    if group < 0 {
        let mut last = 0;
        for found in regex.find_iter(text) {
            if found.start() > last {
                push(out, text, last, found.start());
            }
            last = found.end();
        }
        if last < text.len() {
            push(out, text, last, text.len());
        }
        return;
    }
    let Ok(group) = usize::try_from(group) else {
        return;
    };
    for captures in regex.captures_iter(text) {
        if let Some(found) = captures.get(group)
            && !found.as_str().is_empty()
        {
            push(out, text, found.start(), found.end());
        }
    }
}

/// The n-grams of one token. From a tokenizer (`own_offsets`) each gram gets its own offsets;
/// from a filter each keeps its token's (as Elasticsearch's do: a filtered token's text need
/// not match the original bytes).
pub(crate) fn grams(
    word: &Token,
    min: usize,
    max: usize,
    edge: bool,
    own_offsets: bool,
    out: &mut Vec<Token>,
) {
    let bounds: Vec<usize> = word
        .text
        .char_indices()
        .map(|(at, _)| at)
        .chain(std::iter::once(word.text.len()))
        .collect();
    let chars = bounds.len().saturating_sub(1);
    let starts = if edge { 0..1.min(chars) } else { 0..chars };
    for start in starts {
        for len in min..=max {
            let Some(end) = start.checked_add(len).filter(|end| *end <= chars) else {
                break;
            };
            let (Some(&from), Some(&to)) = (bounds.get(start), bounds.get(end)) else {
                break;
            };
            if let Some(piece) = word.text.get(from..to) {
                let (offset_from, offset_to) = if own_offsets {
                    (word.offset_from + from, word.offset_from + to)
                } else {
                    (word.offset_from, word.offset_to)
                };
                out.push(Token {
                    offset_from,
                    offset_to,
                    position: word.position,
                    text: piece.to_string(),
                    position_length: 1,
                });
            }
        }
    }
}
