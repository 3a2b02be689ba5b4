//! The analyzers Elasticsearch has built in, by name, and built-in analyzer types configured
//! in `settings.analysis.analyzer` (`{"type": "standard", "stopwords": "_english_"}`).

use tantivy::tokenizer::{
    Language, LowerCaser, RawTokenizer, RegexTokenizer, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, WhitespaceTokenizer,
};

use super::filters::TokenFilterSpec;
use super::languages::{StopWords, language_stop_words, stop_words};
use super::params::Params;
use super::pipeline::Pipeline;
use super::tokenizers::{MAX_TOKEN_LENGTH, TokenizerSpec, compile};
use crate::error::Result;

/// Language analyzers (standard tokenizer, lowercase, the language's stop words where tantivy
/// has a list, its snowball stemmer).
const LANGUAGES: &[&str] = &[
    "arabic",
    "danish",
    "dutch",
    "finnish",
    "french",
    "german",
    "greek",
    "hungarian",
    "italian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
    "turkish",
];

/// Analyzer names every index has, besides the [`LANGUAGES`].
pub const ANALYZERS: &[&str] = &[
    "standard",
    "english",
    "whitespace",
    "simple",
    "keyword",
    "stop",
    "pattern",
];

/// True when `name` is a built-in analyzer.
pub fn is_builtin(name: &str) -> bool {
    ANALYZERS.contains(&name) || LANGUAGES.contains(&name)
}

/// Elasticsearch's standard tokenizer splits tokens longer than this; the built-in analyzers
/// drop them (as they always have: indexes made before custom analysis keep their terms).
const MAX_TOKEN_CHARS: usize = 255;

/// Builds the built-in analyzer called `name`; unknown names get the standard analyzer
/// (mappings are checked against the index's analysis before they get here).
pub fn analyzer(name: &str) -> TextAnalyzer {
    match name {
        "english" => {
            let builder = TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
                .filter(LowerCaser);
            match StopWordFilter::new(Language::English) {
                Some(stop) => builder
                    .filter(stop)
                    .filter(Stemmer::new(Language::English))
                    .build(),
                None => builder.filter(Stemmer::new(Language::English)).build(),
            }
        }
        "whitespace" => TextAnalyzer::builder(WhitespaceTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
            .build(),
        "simple" => match RegexTokenizer::new(r"\p{L}+") {
            Ok(letters) => TextAnalyzer::builder(letters).filter(LowerCaser).build(),
            Err(_) => analyzer("standard"),
        },
        "keyword" => TextAnalyzer::from(RawTokenizer::default()),
        "stop" | "pattern" => {
            language_pipeline(name, None).map_or_else(|| analyzer("standard"), TextAnalyzer::from)
        }
        lang if LANGUAGES.contains(&lang) => {
            language_pipeline(lang, None).map_or_else(|| analyzer("standard"), TextAnalyzer::from)
        }
        _ => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
            .filter(LowerCaser)
            .build(),
    }
}

/// The `stop`, `pattern` and language analyzers as pipelines, with an optional stop list.
pub(crate) fn language_pipeline(name: &str, stop: Option<StopWords>) -> Option<Pipeline> {
    let (tokenizer, default_stop) = match name {
        "stop" => (
            TokenizerSpec::Letter { lowercase: true },
            "_english_".to_string(),
        ),
        "pattern" => (
            TokenizerSpec::Pattern {
                regex: compile(r"\W+", "pattern").ok()?,
                group: -1,
            },
            "_none_".to_string(),
        ),
        lang => (
            TokenizerSpec::Standard {
                max_len: MAX_TOKEN_LENGTH,
            },
            format!("_{lang}_"),
        ),
    };
    let mut filters = vec![TokenFilterSpec::Lowercase];
    let stop = stop.or_else(|| language_stop_words(&default_stop));
    if let Some(stop) = stop {
        filters.push(TokenFilterSpec::Stop(stop));
    }
    if LANGUAGES.contains(&name) {
        filters.push(TokenFilterSpec::builtin_stemmer(name)?);
    }
    Some(Pipeline {
        char_filters: Vec::new(),
        tokenizer,
        filters,
    })
}

/// A built-in analyzer type with its parameters; `None` when `kind` is no such type.
pub(crate) fn configured(kind: &str, params: &Params<'_>) -> Result<Option<Pipeline>> {
    let what = params.what().to_string();
    Ok(Some(match kind {
        "standard" => {
            let max_len = params
                .usize_or("max_token_length", MAX_TOKEN_LENGTH, 1 << 20)?
                .max(1);
            let stop = stop_words(params.list("stopwords")?, "_none_", false, &what)?;
            Pipeline {
                char_filters: Vec::new(),
                tokenizer: TokenizerSpec::Standard { max_len },
                filters: vec![TokenFilterSpec::Lowercase, TokenFilterSpec::Stop(stop)],
            }
        }
        "simple" => Pipeline {
            char_filters: Vec::new(),
            tokenizer: TokenizerSpec::Letter { lowercase: true },
            filters: Vec::new(),
        },
        "whitespace" => Pipeline {
            char_filters: Vec::new(),
            tokenizer: TokenizerSpec::Whitespace {
                max_len: MAX_TOKEN_LENGTH,
            },
            filters: Vec::new(),
        },
        "keyword" => Pipeline {
            char_filters: Vec::new(),
            tokenizer: TokenizerSpec::Keyword,
            filters: Vec::new(),
        },
        "pattern" => {
            let pattern = params.string("pattern")?.unwrap_or_else(|| r"\W+".into());
            let mut filters = Vec::new();
            if params.bool_or("lowercase", true)? {
                filters.push(TokenFilterSpec::Lowercase);
            }
            filters.push(TokenFilterSpec::Stop(stop_words(
                params.list("stopwords")?,
                "_none_",
                false,
                &what,
            )?));
            Pipeline {
                char_filters: Vec::new(),
                tokenizer: TokenizerSpec::Pattern {
                    regex: compile(&pattern, &what)?,
                    group: -1,
                },
                filters,
            }
        }
        "stop" | "english" => {
            let stop = stop_words(params.list("stopwords")?, "_english_", false, &what)?;
            if kind == "stop" {
                match language_pipeline("stop", Some(stop)) {
                    Some(pipeline) => pipeline,
                    None => return Ok(None),
                }
            } else {
                Pipeline {
                    char_filters: Vec::new(),
                    tokenizer: TokenizerSpec::Standard {
                        max_len: MAX_TOKEN_LENGTH,
                    },
                    filters: vec![
                        TokenFilterSpec::Possessive,
                        TokenFilterSpec::Lowercase,
                        TokenFilterSpec::Stop(stop),
                        TokenFilterSpec::builtin_stemmer("english")
                            .ok_or_else(|| super::params::invalid("no english stemmer".into()))?,
                    ],
                }
            }
        }
        lang if LANGUAGES.contains(&lang) => {
            let stop = match params.list("stopwords")? {
                Some(list) => Some(stop_words(Some(list), "_none_", false, &what)?),
                None => None,
            };
            match language_pipeline(lang, stop) {
                Some(pipeline) => pipeline,
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    }))
}
