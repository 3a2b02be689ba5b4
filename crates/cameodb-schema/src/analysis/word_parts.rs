//! Filters that build tokens from parts of others or across them: `shingle`,
//! `word_delimiter_graph` and `possessive_english`'s suffix.

use tantivy::tokenizer::Token;

/// `word_delimiter_graph`'s switches.
#[derive(Clone, Debug)]
pub(crate) struct WordDelimiter {
    pub word_parts: bool,
    pub number_parts: bool,
    pub catenate_words: bool,
    pub catenate_numbers: bool,
    pub catenate_all: bool,
    pub preserve_original: bool,
    pub split_on_case_change: bool,
    pub split_on_numerics: bool,
    pub stem_possessive: bool,
}

/// A word without its trailing `'s`.
pub(crate) fn strip_possessive(text: &str) -> &str {
    for suffix in ["'s", "'S", "\u{2019}s", "\u{2019}S"] {
        if let Some(stem) = text.strip_suffix(suffix) {
            return stem;
        }
    }
    text
}

/// Each token followed by the shingles that start at it.
pub(crate) fn shingles(
    tokens: Vec<Token>,
    min: usize,
    max: usize,
    output_unigrams: bool,
    separator: &str,
) -> Vec<Token> {
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if output_unigrams {
            out.push(token.clone());
        }
        for size in min..=max {
            let Some(window) = i.checked_add(size).and_then(|end| tokens.get(i..end)) else {
                break;
            };
            let text = window
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(separator);
            let last = window.last().map_or(token.offset_to, |t| t.offset_to);
            out.push(Token {
                offset_from: token.offset_from,
                offset_to: last.max(token.offset_from),
                position: token.position,
                text,
                position_length: size,
            });
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Lower,
    Upper,
    Digit,
    Other,
}

fn class(c: char) -> Class {
    if c.is_numeric() {
        Class::Digit
    } else if c.is_uppercase() {
        Class::Upper
    } else if c.is_alphabetic() {
        Class::Lower
    } else {
        Class::Other
    }
}

impl WordDelimiter {
    /// The parts of one word: (text, is a number).
    fn parts<'t>(&self, text: &'t str) -> Vec<(&'t str, bool)> {
        let text = if self.stem_possessive {
            strip_possessive(text)
        } else {
            text
        };
        let mut parts = Vec::new();
        let mut start: Option<usize> = None;
        let mut previous = Class::Other;
        for (at, c) in text.char_indices() {
            let current = class(c);
            let boundary = match (previous, current) {
                (_, Class::Other) => true,
                (Class::Lower, Class::Upper) => self.split_on_case_change,
                (Class::Digit, Class::Lower | Class::Upper)
                | (Class::Lower | Class::Upper, Class::Digit) => self.split_on_numerics,
                _ => false,
            };
            if boundary && let Some(from) = start.take() {
                parts.push((
                    text.get(from..at).unwrap_or_default(),
                    previous == Class::Digit,
                ));
            }
            if current != Class::Other && start.is_none() {
                start = Some(at);
            }
            previous = current;
        }
        if let Some(from) = start {
            parts.push((
                text.get(from..).unwrap_or_default(),
                previous == Class::Digit,
            ));
        }
        parts
    }

    pub fn apply(&self, tokens: Vec<Token>) -> Vec<Token> {
        let mut out = Vec::new();
        let mut shift = 0usize;
        for token in tokens {
            let parts = self.parts(&token.text);
            let position = token.position.saturating_add(shift);
            let kept: Vec<&str> = parts
                .iter()
                .filter(|(_, number)| {
                    if *number {
                        self.number_parts
                    } else {
                        self.word_parts
                    }
                })
                .map(|(text, _)| *text)
                .collect();
            let single = parts.len() == 1 && parts.first().is_some_and(|(t, _)| *t == token.text);
            if single || parts.is_empty() {
                if !parts.is_empty() || self.preserve_original {
                    out.push(Token { position, ..token });
                }
                continue;
            }
            let span = kept.len().max(1);
            if self.preserve_original {
                out.push(Token {
                    position,
                    position_length: span,
                    ..token.clone()
                });
            }
            let joined = |numbers: Option<bool>| -> String {
                parts
                    .iter()
                    .filter(|(_, n)| numbers.is_none_or(|want| *n == want))
                    .map(|(t, _)| *t)
                    .collect()
            };
            let mut catenations = Vec::new();
            if self.catenate_all {
                catenations.push(joined(None));
            } else {
                if self.catenate_words && parts.iter().filter(|(_, n)| !n).count() > 1 {
                    catenations.push(joined(Some(false)));
                }
                if self.catenate_numbers && parts.iter().filter(|(_, n)| *n).count() > 1 {
                    catenations.push(joined(Some(true)));
                }
            }
            for text in catenations {
                out.push(Token {
                    offset_from: token.offset_from,
                    offset_to: token.offset_to,
                    position,
                    text,
                    position_length: span,
                });
            }
            for (i, text) in kept.iter().enumerate() {
                out.push(Token {
                    offset_from: token.offset_from,
                    offset_to: token.offset_to,
                    position: position.saturating_add(i),
                    text: (*text).to_string(),
                    position_length: 1,
                });
            }
            shift = shift.saturating_add(span - 1);
        }
        out
    }
}
