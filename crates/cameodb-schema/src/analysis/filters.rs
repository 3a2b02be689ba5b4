//! Token filters, by their Elasticsearch names: rewrite, drop or add tokens.
//!
//! Stemming, stop word lists and ASCII folding are tantivy's own filters, run on one token at
//! a time; the rest work on the whole token list (synonyms and shingles look across tokens).

use std::collections::HashSet;

use serde_json::Value;
use tantivy::tokenizer::{TextAnalyzer, Token};

use super::languages::{
    self, StopWords, WordSet, folder, language, language_stop_words, stop_words, through,
};
use super::params::{Params, invalid};
use super::synonyms::Synonyms;
use super::tokenizers::{AnalysisLimits, MAX_EDGE_GRAM, check_grams, grams};
use super::word_parts::{WordDelimiter, shingles, strip_possessive};
use crate::error::Result;

/// Longest shingle a `shingle` filter may build (Elasticsearch's `index.max_shingle_diff` is 3).
pub const MAX_SHINGLE_SIZE: usize = 8;

/// A configured token filter.
#[derive(Clone)]
pub(crate) enum TokenFilterSpec {
    Lowercase,
    Uppercase,
    /// tantivy's ASCII folding, per token; the original too when `preserve_original`.
    AsciiFolding {
        folder: TextAnalyzer,
        preserve_original: bool,
    },
    /// Drops the listed words.
    Stop(StopWords),
    /// tantivy's snowball stemmer for a language, per token.
    Stem(TextAnalyzer),
    /// Removes a trailing `'s` (`possessive_english`).
    Possessive,
    Synonyms(Synonyms),
    Grams {
        min: usize,
        max: usize,
        edge: bool,
        preserve_original: bool,
    },
    Shingle {
        min: usize,
        max: usize,
        output_unigrams: bool,
        separator: String,
    },
    Length {
        min: usize,
        max: usize,
    },
    Trim,
    Truncate(usize),
    Unique {
        same_position: bool,
    },
    Elision(WordSet),
    Apostrophe,
    Reverse,
    Limit(usize),
    Keep(WordSet),
    WordDelimiter(WordDelimiter),
}

fn stemmer(name: &str, what: &str) -> Result<TokenFilterSpec> {
    if name == "possessive_english" {
        return Ok(TokenFilterSpec::Possessive);
    }
    let lang = language(name).ok_or_else(|| {
        invalid(format!(
            "unknown stemmer language [{name}] for {what}: the snowball stemmers of arabic, danish, dutch, english (porter, porter2), finnish, french, german, greek, hungarian, italian, norwegian, portuguese, romanian, russian, spanish, swedish, tamil and turkish are available, and possessive_english"
        ))
    })?;
    Ok(TokenFilterSpec::Stem(languages::stemmer(lang)))
}

impl TokenFilterSpec {
    /// The snowball stemmer of a language, by its Elasticsearch name.
    pub(crate) fn builtin_stemmer(language: &str) -> Option<TokenFilterSpec> {
        stemmer(language, "stemmer").ok()
    }

    /// The filter called `name` with no parameters (`"filter": ["lowercase"]`).
    pub fn builtin(name: &str) -> Option<TokenFilterSpec> {
        Some(match name {
            "lowercase" => TokenFilterSpec::Lowercase,
            "uppercase" => TokenFilterSpec::Uppercase,
            "asciifolding" => TokenFilterSpec::AsciiFolding {
                folder: folder(),
                preserve_original: false,
            },
            "stop" => TokenFilterSpec::Stop(language_stop_words("_english_")?),
            "stemmer" | "porter_stem" | "kstem" | "snowball" => stemmer("english", name).ok()?,
            "ngram" | "nGram" => TokenFilterSpec::Grams {
                min: 1,
                max: 2,
                edge: false,
                preserve_original: false,
            },
            "edge_ngram" | "edgeNGram" => TokenFilterSpec::Grams {
                min: 1,
                max: 2,
                edge: true,
                preserve_original: false,
            },
            "shingle" => TokenFilterSpec::Shingle {
                min: 2,
                max: 2,
                output_unigrams: true,
                separator: " ".into(),
            },
            "trim" => TokenFilterSpec::Trim,
            "truncate" => TokenFilterSpec::Truncate(10),
            "unique" => TokenFilterSpec::Unique {
                same_position: false,
            },
            "elision" => TokenFilterSpec::Elision(WordSet::new(
                ["l", "m", "t", "qu", "n", "s", "j"].map(String::from),
                false,
            )),
            "apostrophe" => TokenFilterSpec::Apostrophe,
            "reverse" => TokenFilterSpec::Reverse,
            "limit" => TokenFilterSpec::Limit(1),
            "word_delimiter_graph" | "word_delimiter" => {
                TokenFilterSpec::WordDelimiter(WordDelimiter {
                    word_parts: true,
                    number_parts: true,
                    catenate_words: false,
                    catenate_numbers: false,
                    catenate_all: false,
                    preserve_original: false,
                    split_on_case_change: true,
                    split_on_numerics: true,
                    stem_possessive: true,
                })
            }
            _ => return None,
        })
    }

    /// A filter defined in `settings.analysis.filter`. Synonym rules are analyzed by what comes
    /// before the filter (`analyze_rule`), as Elasticsearch analyzes them.
    pub fn define(
        name: &str,
        def: &Value,
        analyze_rule: &mut dyn FnMut(&str) -> Vec<String>,
        limits: &AnalysisLimits,
    ) -> Result<TokenFilterSpec> {
        let object = def
            .as_object()
            .ok_or_else(|| invalid(format!("filter [{name}] must be an object")))?;
        let params = Params::new(format!("filter [{name}]"), object);
        let kind = params.string("type")?.unwrap_or_default();
        let what = params.what().to_string();
        let spec = match kind.as_str() {
            "lowercase" | "uppercase" => {
                if let Some(lang) = params.string("language")? {
                    return Err(invalid(format!(
                        "[language] [{lang}] of {what} is not supported: only the default lowercasing is"
                    )));
                }
                if kind == "lowercase" {
                    TokenFilterSpec::Lowercase
                } else {
                    TokenFilterSpec::Uppercase
                }
            }
            "asciifolding" => TokenFilterSpec::AsciiFolding {
                folder: folder(),
                preserve_original: params.bool_or("preserve_original", false)?,
            },
            "stop" => {
                let ignore_case = params.bool_or("ignore_case", false)?;
                let list = params.list("stopwords")?;
                params.bool_or("remove_trailing", true)?;
                TokenFilterSpec::Stop(stop_words(list, "_english_", ignore_case, &what)?)
            }
            "stemmer" => {
                let lang = match params.string("language")? {
                    Some(lang) => Some(lang),
                    None => params.string("name")?,
                };
                stemmer(&lang.unwrap_or_else(|| "english".into()), &what)?
            }
            "snowball" => stemmer(
                &params
                    .string("language")?
                    .unwrap_or_else(|| "english".into()),
                &what,
            )?,
            "porter_stem" | "kstem" => stemmer("english", &what)?,
            "synonym" | "synonym_graph" => {
                if params.string("synonyms_path")?.is_some()
                    || params.string("synonyms_set")?.is_some()
                {
                    return Err(invalid(format!(
                        "{what}: synonyms from files or synonym sets are not supported; give the rules inline in [synonyms]"
                    )));
                }
                let rules = params.list("synonyms")?.unwrap_or_default();
                let expand = params.bool_or("expand", true)?;
                let lenient = params.bool_or("lenient", false)?;
                params.string("format")?;
                params.bool_or("updateable", false)?;
                TokenFilterSpec::Synonyms(Synonyms::parse(
                    &rules,
                    expand,
                    lenient,
                    analyze_rule,
                    &what,
                )?)
            }
            "ngram" | "nGram" | "edge_ngram" | "edgeNGram" => {
                let edge = kind.starts_with("edge");
                let min = params.usize_or("min_gram", 1, MAX_EDGE_GRAM)?.max(1);
                let max = params.usize_or("max_gram", 2, MAX_EDGE_GRAM)?;
                check_grams(min, max, edge, &what, limits)?;
                if edge
                    && let Some(side) = params.string("side")?
                    && side != "front"
                {
                    return Err(invalid(format!(
                        "[side] [{side}] of {what} is not supported: use the reverse filter around it"
                    )));
                }
                TokenFilterSpec::Grams {
                    min,
                    max,
                    edge,
                    preserve_original: params.bool_or("preserve_original", false)?,
                }
            }
            "shingle" => {
                let min = params.usize_or("min_shingle_size", 2, MAX_SHINGLE_SIZE)?;
                let max = params.usize_or("max_shingle_size", 2, MAX_SHINGLE_SIZE)?;
                if min < 2 || max < min {
                    return Err(invalid(format!(
                        "{what}: min_shingle_size must be at least 2 and at most max_shingle_size"
                    )));
                }
                if max - min > limits.max_shingle_diff {
                    return Err(invalid(format!(
                        "In Shingle TokenFilter the difference between max_shingle_size and min_shingle_size (and +1 if outputting unigrams) must be less than or equal to: [{}] but was [{}]. This limit can be set by changing the [index.max_shingle_diff] index level setting.",
                        limits.max_shingle_diff,
                        max - min
                    )));
                }
                if let Some(filler) = params.string("filler_token")?
                    && filler != "_"
                {
                    return Err(invalid(format!(
                        "[filler_token] of {what} is not supported"
                    )));
                }
                TokenFilterSpec::Shingle {
                    min,
                    max,
                    output_unigrams: params.bool_or("output_unigrams", true)?,
                    separator: params
                        .string("token_separator")?
                        .unwrap_or_else(|| " ".into()),
                }
            }
            "length" => TokenFilterSpec::Length {
                min: params.usize_or("min", 0, usize::MAX)?,
                max: params.usize_or("max", i32::MAX as usize, usize::MAX)?,
            },
            "trim" => TokenFilterSpec::Trim,
            "truncate" => {
                TokenFilterSpec::Truncate(params.usize_or("length", 10, usize::MAX)?.max(1))
            }
            "unique" => TokenFilterSpec::Unique {
                same_position: params.bool_or("only_on_same_position", false)?,
            },
            "elision" => {
                let ignore_case = params.bool_or("articles_case", false)?;
                let articles = params.list("articles")?.ok_or_else(|| {
                    invalid(format!("elision filter with invalid articles ({what})"))
                })?;
                TokenFilterSpec::Elision(WordSet::new(articles, ignore_case))
            }
            "apostrophe" => TokenFilterSpec::Apostrophe,
            "reverse" => TokenFilterSpec::Reverse,
            "limit" => {
                params.bool_or("consume_all_tokens", false)?;
                TokenFilterSpec::Limit(params.usize_or("max_token_count", 1, usize::MAX)?)
            }
            "keep" => {
                let ignore_case = params.bool_or("keep_words_case", false)?;
                let words = params.list("keep_words")?.ok_or_else(|| {
                    invalid(format!(
                        "keep requires `keep_words` to be configured ({what})"
                    ))
                })?;
                TokenFilterSpec::Keep(WordSet::new(words, ignore_case))
            }
            "word_delimiter_graph" | "word_delimiter" => {
                // Parts always carry their token's offsets (a char filter before could make
                // a part's own offsets point outside the original text), so this changes
                // nothing but highlighting.
                params.bool_or("adjust_offsets", true)?;
                TokenFilterSpec::WordDelimiter(WordDelimiter {
                    word_parts: params.bool_or("generate_word_parts", true)?,
                    number_parts: params.bool_or("generate_number_parts", true)?,
                    catenate_words: params.bool_or("catenate_words", false)?,
                    catenate_numbers: params.bool_or("catenate_numbers", false)?,
                    catenate_all: params.bool_or("catenate_all", false)?,
                    preserve_original: params.bool_or("preserve_original", false)?,
                    split_on_case_change: params.bool_or("split_on_case_change", true)?,
                    split_on_numerics: params.bool_or("split_on_numerics", true)?,
                    stem_possessive: params.bool_or("stem_english_possessive", true)?,
                })
            }
            other => {
                return Err(invalid(format!(
                    "Unknown filter type [{other}] for [{name}]"
                )));
            }
        };
        params.finish()?;
        Ok(spec)
    }

    /// Filters one value's tokens.
    pub fn apply(&mut self, tokens: Vec<Token>) -> Vec<Token> {
        match self {
            TokenFilterSpec::Lowercase => map_text(tokens, |t| Some(t.to_lowercase())),
            TokenFilterSpec::Uppercase => map_text(tokens, |t| Some(t.to_uppercase())),
            TokenFilterSpec::AsciiFolding {
                folder,
                preserve_original,
            } => {
                let mut out = Vec::with_capacity(tokens.len());
                for token in tokens {
                    let folded = through(folder, &token.text).unwrap_or_default();
                    if *preserve_original && folded != token.text {
                        out.push(token.clone());
                    }
                    out.push(Token {
                        text: folded,
                        ..token
                    });
                }
                out
            }
            TokenFilterSpec::Stop(words) => tokens
                .into_iter()
                .filter(|t| !words.is_stop(&t.text))
                .collect(),
            TokenFilterSpec::Stem(stemmer) => map_text(tokens, |t| through(stemmer, t)),
            TokenFilterSpec::Possessive => {
                map_text(tokens, |t| Some(strip_possessive(t).to_string()))
            }
            TokenFilterSpec::Synonyms(synonyms) => synonyms.apply(tokens),
            TokenFilterSpec::Grams {
                min,
                max,
                edge,
                preserve_original,
            } => {
                let mut out = Vec::new();
                for token in tokens {
                    let before = out.len();
                    grams(&token, *min, *max, *edge, false, &mut out);
                    let produced_original = out
                        .get(before..)
                        .is_some_and(|new| new.iter().any(|g| g.text == token.text));
                    if *preserve_original && !produced_original {
                        out.push(token);
                    }
                }
                out
            }
            TokenFilterSpec::Shingle {
                min,
                max,
                output_unigrams,
                separator,
            } => shingles(tokens, *min, *max, *output_unigrams, separator),
            TokenFilterSpec::Length { min, max } => tokens
                .into_iter()
                .filter(|t| (*min..=*max).contains(&t.text.chars().count()))
                .collect(),
            TokenFilterSpec::Trim => map_text(tokens, |t| Some(t.trim().to_string())),
            TokenFilterSpec::Truncate(len) => {
                map_text(tokens, |t| Some(t.chars().take(*len).collect()))
            }
            TokenFilterSpec::Unique { same_position } => {
                let mut seen: HashSet<(usize, String)> = HashSet::new();
                tokens
                    .into_iter()
                    .filter(|t| {
                        let position = if *same_position { t.position } else { 0 };
                        seen.insert((position, t.text.clone()))
                    })
                    .collect()
            }
            TokenFilterSpec::Elision(articles) => map_text(tokens, |t| {
                let Some(at) = t.find(['\'', '\u{2019}']) else {
                    return Some(t.to_string());
                };
                if articles.contains(t.get(..at).unwrap_or_default()) {
                    let quote = t
                        .get(at..)
                        .and_then(|r| r.chars().next())
                        .map_or(1, char::len_utf8);
                    Some(t.get(at + quote..).unwrap_or_default().to_string())
                } else {
                    Some(t.to_string())
                }
            }),
            TokenFilterSpec::Apostrophe => map_text(tokens, |t| {
                Some(
                    t.split(['\'', '\u{2019}'])
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                )
            }),
            TokenFilterSpec::Reverse => map_text(tokens, |t| Some(t.chars().rev().collect())),
            TokenFilterSpec::Limit(count) => tokens.into_iter().take(*count).collect(),
            TokenFilterSpec::Keep(words) => tokens
                .into_iter()
                .filter(|t| words.contains(&t.text))
                .collect(),
            TokenFilterSpec::WordDelimiter(options) => options.apply(tokens),
        }
    }
}

/// Rewrites each token's text; `None` or an empty text drops the token.
fn map_text(tokens: Vec<Token>, mut rewrite: impl FnMut(&str) -> Option<String>) -> Vec<Token> {
    tokens
        .into_iter()
        .filter_map(|token| {
            let text = rewrite(&token.text).filter(|t| !t.is_empty())?;
            Some(Token { text, ..token })
        })
        .collect()
}
