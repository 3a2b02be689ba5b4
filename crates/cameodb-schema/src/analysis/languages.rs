//! Stop lists, stemmers and ASCII folding by language: tantivy's own filters, run on one
//! token at a time, and the word sets the list-based filters match against.

use std::collections::HashSet;

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, RawTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

use super::params::invalid;
use crate::error::Result;

/// Words matched as given or, with `ignore_case`, lowercased (stop, keep and elision lists).
#[derive(Clone, Debug, Default)]
pub(crate) struct WordSet {
    /// The words, lowercased when `ignore_case`.
    words: HashSet<String>,
    /// Whether a token matches whatever its case.
    ignore_case: bool,
}

impl WordSet {
    pub fn new(words: impl IntoIterator<Item = String>, ignore_case: bool) -> WordSet {
        WordSet {
            words: words
                .into_iter()
                .map(|w| if ignore_case { w.to_lowercase() } else { w })
                .collect(),
            ignore_case,
        }
    }

    pub fn contains(&self, word: &str) -> bool {
        if self.ignore_case {
            self.words.contains(&word.to_lowercase())
        } else {
            self.words.contains(word)
        }
    }
}

/// A stop list: words, or one of tantivy's language lists.
#[derive(Clone)]
pub(crate) enum StopWords {
    Words(WordSet),
    Language(TextAnalyzer),
}

pub(crate) fn language(name: &str) -> Option<Language> {
    Some(match name.to_ascii_lowercase().as_str() {
        "arabic" => Language::Arabic,
        "danish" => Language::Danish,
        "dutch" => Language::Dutch,
        "english" | "porter" | "porter2" => Language::English,
        "finnish" => Language::Finnish,
        "french" => Language::French,
        "german" => Language::German,
        "greek" => Language::Greek,
        "hungarian" => Language::Hungarian,
        "italian" => Language::Italian,
        "norwegian" => Language::Norwegian,
        "portuguese" => Language::Portuguese,
        "romanian" => Language::Romanian,
        "russian" => Language::Russian,
        "spanish" => Language::Spanish,
        "swedish" => Language::Swedish,
        "tamil" => Language::Tamil,
        "turkish" => Language::Turkish,
        _ => return None,
    })
}

/// tantivy's snowball stemmer for `language`, as a one-token analyzer.
pub(crate) fn stemmer(language: Language) -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(Stemmer::new(language))
        .build()
}

/// The stop list named `_english_` (and the other languages tantivy ships lists for).
pub(crate) fn language_stop_words(name: &str) -> Option<StopWords> {
    if name == "_none_" {
        return Some(StopWords::Words(WordSet::default()));
    }
    let lang = language(name.strip_prefix('_')?.strip_suffix('_')?)?;
    let filter = StopWordFilter::new(lang)?;
    Some(StopWords::Language(
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(filter)
            .build(),
    ))
}

/// A stop list from a `stopwords` parameter: a language list's name or the words.
pub(crate) fn stop_words(
    list: Option<Vec<String>>,
    default: &str,
    ignore_case: bool,
    what: &str,
) -> Result<StopWords> {
    match list {
        None => language_stop_words(default)
            .ok_or_else(|| invalid(format!("no stop word list [{default}] for {what}"))),
        Some(words) => match words.as_slice() {
            [name] if name.starts_with('_') => language_stop_words(name).ok_or_else(|| {
                invalid(format!(
                    "unknown stop word list [{name}] for {what}: _none_ and the lists of danish, dutch, english, finnish, french, german, hungarian, italian, norwegian, portuguese, russian, spanish and swedish (_english_ …) are available"
                ))
            }),
            _ => Ok(StopWords::Words(WordSet::new(words, ignore_case))),
        },
    }
}

impl StopWords {
    pub fn is_stop(&mut self, word: &str) -> bool {
        match self {
            StopWords::Words(words) => words.contains(word),
            StopWords::Language(filter) => through(filter, word).is_none(),
        }
    }
}

/// What one tantivy filter makes of one token's text (`None`: it dropped the token).
pub(crate) fn through(analyzer: &mut TextAnalyzer, text: &str) -> Option<String> {
    let mut stream = analyzer.token_stream(text);
    if stream.advance() {
        Some(stream.token().text.clone())
    } else {
        None
    }
}

/// tantivy's ASCII folding, as a one-token analyzer.
pub(crate) fn folder() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(AsciiFoldingFilter)
        .build()
}
