//! The `synonym` / `synonym_graph` filters with inline rules in Solr's format:
//! `"laptop, notebook"` (equivalent words: each becomes all of them with `expand`, or the first
//! without) and `"ny, nyc => new york"` (the left side replaced by the right).

use std::collections::HashMap;

use tantivy::tokenizer::Token;

use super::params::invalid;
use crate::error::Result;

/// Most rules one synonym filter may hold.
pub const MAX_SYNONYM_RULES: usize = 10_000;

/// A rule's left side (analyzed words) and what it becomes.
#[derive(Clone, Debug)]
struct Rule {
    /// The words matched, in order.
    words: Vec<String>,
    /// Each alternative emitted in their place (the words themselves, when kept, among them).
    outputs: Vec<Vec<String>>,
}

/// A parsed synonym filter.
#[derive(Clone, Debug, Default)]
pub(crate) struct Synonyms {
    /// Rules by their first word; longest first within each.
    rules: HashMap<String, Vec<Rule>>,
}

impl Synonyms {
    /// Parses `rules`, analyzing each side with `analyze` (the analyzer's chain before the
    /// filter). A side that analyzes to nothing is an error unless `lenient`.
    pub fn parse(
        rules: &[String],
        expand: bool,
        lenient: bool,
        analyze: &mut dyn FnMut(&str) -> Vec<String>,
        what: &str,
    ) -> Result<Synonyms> {
        if rules.len() > MAX_SYNONYM_RULES {
            return Err(invalid(format!(
                "{what} has more than [{MAX_SYNONYM_RULES}] synonym rules"
            )));
        }
        let mut out = Synonyms::default();
        for line in rules {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut side = |text: &str| -> Result<Vec<Vec<String>>> {
                let mut terms = Vec::new();
                for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let words = analyze(term);
                    if words.is_empty() {
                        if lenient {
                            continue;
                        }
                        return Err(invalid(format!(
                            "failed to build synonyms of {what}: term: {term} was completely eliminated by analyzer"
                        )));
                    }
                    terms.push(words);
                }
                Ok(terms)
            };
            match line.split_once("=>") {
                Some((left, right)) => {
                    let outputs = side(right)?;
                    if outputs.is_empty() {
                        continue;
                    }
                    for words in side(left)? {
                        out.add(words, outputs.clone());
                    }
                }
                None => {
                    let terms = side(line)?;
                    let outputs = if expand {
                        terms.clone()
                    } else {
                        terms.first().cloned().into_iter().collect()
                    };
                    for words in terms {
                        out.add(words, outputs.clone());
                    }
                }
            }
        }
        for rules in out.rules.values_mut() {
            rules.sort_by_key(|rule| std::cmp::Reverse(rule.words.len()));
        }
        Ok(out)
    }

    fn add(&mut self, words: Vec<String>, outputs: Vec<Vec<String>>) {
        let Some(first) = words.first().cloned() else {
            return;
        };
        let rules = self.rules.entry(first).or_default();
        match rules.iter_mut().find(|r| r.words == words) {
            Some(rule) => {
                for output in outputs {
                    if !rule.outputs.contains(&output) {
                        rule.outputs.push(output);
                    }
                }
            }
            None => rules.push(Rule { words, outputs }),
        }
    }

    pub fn apply(&self, tokens: Vec<Token>) -> Vec<Token> {
        if self.rules.is_empty() {
            return tokens;
        }
        let mut out = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while let Some(token) = tokens.get(i) {
            let matched = self.rules.get(&token.text).and_then(|rules| {
                rules.iter().find(|rule| {
                    tokens
                        .get(i..i + rule.words.len())
                        .is_some_and(|window| window.iter().map(|t| &t.text).eq(rule.words.iter()))
                })
            });
            let Some(rule) = matched else {
                out.push(token.clone());
                i += 1;
                continue;
            };
            let span = rule.words.len();
            let window = tokens.get(i..i + span).unwrap_or_default();
            let end = window.last().map_or(token.offset_to, |t| t.offset_to);
            for output in &rule.outputs {
                if *output == rule.words {
                    out.extend(window.iter().cloned());
                    continue;
                }
                for (j, word) in output.iter().enumerate() {
                    out.push(Token {
                        offset_from: token.offset_from,
                        offset_to: end.max(token.offset_from),
                        position: token.position.saturating_add(j),
                        text: word.clone(),
                        position_length: if output.len() == 1 { span } else { 1 },
                    });
                }
            }
            i += span;
        }
        out
    }
}
