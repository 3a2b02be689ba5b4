//! Text analyzers, by their Elasticsearch names.

use tantivy::tokenizer::{
    Language, LowerCaser, RawTokenizer, RegexTokenizer, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenizerManager, WhitespaceTokenizer,
};

use crate::fields::{OVERFLOW_TOKENIZER, TEXT_SLOTS, slot_tokenizer};
pub use crate::mapping::ANALYZERS;
use crate::mapping::{FieldType, Mapping};

/// Elasticsearch's standard tokenizer splits tokens longer than this; we drop them.
const MAX_TOKEN_CHARS: usize = 255;

/// Builds the analyzer called `name`; unknown names get the standard analyzer (mappings are
/// validated against [`ANALYZERS`] before they get here).
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
        _ => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
            .filter(LowerCaser)
            .build(),
    }
}

/// The analyzer name of every text slot under `mapping` (standard for unassigned slots).
pub fn slot_analyzers(mapping: &Mapping) -> Vec<&str> {
    let mut names = vec!["standard"; TEXT_SLOTS];
    for field in mapping.properties.values() {
        for f in std::iter::once(field).chain(field.fields.values()) {
            if let (FieldType::Text, Some(slot)) = (f.field_type, f.slot)
                && let Some(name) = names.get_mut(usize::from(slot))
            {
                *name = f.analyzer.as_deref().unwrap_or("standard");
            }
        }
    }
    names
}

/// Registers every text slot's analyzer according to `mapping`, plus the overflow field's.
pub fn register(tokenizers: &TokenizerManager, mapping: &Mapping) {
    for (slot, name) in slot_analyzers(mapping).into_iter().enumerate() {
        tokenizers.register(&slot_tokenizer(slot), analyzer(name));
    }
    tokenizers.register(OVERFLOW_TOKENIZER, analyzer("standard"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(name: &str, text: &str) -> Vec<String> {
        let mut analyzer = analyzer(name);
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        out
    }

    #[test]
    fn analyzers_behave_like_their_elasticsearch_namesakes() {
        assert_eq!(
            tokens("standard", "The Quick-Brown fox2"),
            ["the", "quick", "brown", "fox2"]
        );
        assert_eq!(tokens("english", "The running foxes"), ["run", "fox"]);
        assert_eq!(
            tokens("whitespace", "The Quick-Brown"),
            ["The", "Quick-Brown"]
        );
        assert_eq!(tokens("simple", "R2D2 rocks"), ["r", "d", "rocks"]);
        assert_eq!(tokens("keyword", "As Is"), ["As Is"]);
    }
}
