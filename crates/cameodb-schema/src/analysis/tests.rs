use proptest::prelude::*;
use serde_json::json;

use super::*;

fn texts(analysis: &Analysis, chain: AnalyzeChain, text: &str) -> Vec<String> {
    analysis
        .analyze(&chain, text)
        .unwrap()
        .into_iter()
        .map(|t| t.text)
        .collect()
}

fn with_analyzer(name: &str) -> AnalyzeChain {
    AnalyzeChain {
        analyzer: Some(name.to_string()),
        ..AnalyzeChain::default()
    }
}

fn tokens(name: &str, text: &str) -> Vec<String> {
    texts(&Analysis::default(), with_analyzer(name), text)
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
    assert_eq!(tokens("stop", "The quick fox"), ["quick", "fox"]);
    assert_eq!(tokens("french", "les chevaux"), ["cheval"]);
}

fn sample() -> Analysis {
    Analysis::from_es_json(&json!({
        "char_filter": {
            "emoticons": {"type": "mapping", "mappings": [":) => _happy_", ":( => _sad_"]},
            "digits": {"type": "pattern_replace", "pattern": "(\\d+)-(\\d+)", "replacement": "$1$2"}
        },
        "tokenizer": {
            "grams": {"type": "ngram", "min_gram": 2, "max_gram": 3, "token_chars": ["letter"]},
            "edges": {"type": "edge_ngram", "min_gram": 1, "max_gram": 4, "token_chars": ["letter", "digit"]},
            "commas": {"type": "pattern", "pattern": ","}
        },
        "filter": {
            "my_stop": {"type": "stop", "stopwords": ["foo", "Bar"], "ignore_case": true},
            "syn": {"type": "synonym", "synonyms": ["laptop, notebook", "ny, nyc => new york"]},
            "shingles": {"type": "shingle", "min_shingle_size": 2, "max_shingle_size": 3},
            "short": {"type": "length", "min": 2, "max": 4},
            "cut": {"type": "truncate", "length": 3},
            "fr_elision": {"type": "elision", "articles": ["l", "d"], "articles_case": true},
            "snow": {"type": "snowball", "language": "German"},
            "parts": {"type": "word_delimiter_graph", "catenate_words": true}
        },
        "analyzer": {
            "folding": {"tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
            "html": {"type": "custom", "tokenizer": "standard", "char_filter": ["html_strip"], "filter": ["lowercase"]},
            "moods": {"tokenizer": "whitespace", "char_filter": ["emoticons"]},
            "synonyms": {"tokenizer": "standard", "filter": ["lowercase", "syn"]},
            "std_stop": {"type": "standard", "stopwords": "_english_"},
            "autocomplete": {"tokenizer": "edges", "filter": ["lowercase"]}
        },
        "normalizer": {
            "folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}
        }
    }), AnalysisLimits::default())
    .unwrap()
}

fn chain(tokenizer: &str, filters: &[&str], char_filters: &[&str]) -> AnalyzeChain {
    AnalyzeChain {
        tokenizer: Some(json!(tokenizer)),
        filters: filters.iter().map(|f| json!(f)).collect(),
        char_filters: char_filters.iter().map(|f| json!(f)).collect(),
        ..AnalyzeChain::default()
    }
}

#[test]
fn custom_analyzers_chain_char_filters_tokenizers_and_filters() {
    let a = sample();
    assert_eq!(
        texts(&a, with_analyzer("folding"), "Crème Brûlée"),
        ["creme", "brulee"]
    );
    assert_eq!(
        texts(
            &a,
            with_analyzer("html"),
            "<p>I&apos;m so <b>happy</b>!</p>"
        ),
        ["i", "m", "so", "happy"]
    );
    assert_eq!(
        texts(&a, with_analyzer("moods"), "I feel :)"),
        ["I", "feel", "_happy_"]
    );
    assert_eq!(
        texts(&a, with_analyzer("synonyms"), "NYC laptop"),
        ["new", "york", "laptop", "notebook"]
    );
    assert_eq!(texts(&a, with_analyzer("std_stop"), "The Fox"), ["fox"]);
    assert_eq!(
        texts(&a, with_analyzer("autocomplete"), "Quick 4x"),
        ["q", "qu", "qui", "quic", "4", "4x"]
    );
    assert_eq!(
        texts(&a, chain("grams", &[], &[]), "abcd"),
        ["ab", "abc", "bc", "bcd", "cd"]
    );
    assert_eq!(
        texts(&a, chain("commas", &["trim"], &[]), "a, b ,c"),
        ["a", "b", "c"]
    );
    assert_eq!(
        texts(&a, chain("whitespace", &["my_stop"], &[]), "FOO bar baz"),
        ["baz"]
    );
    assert_eq!(
        texts(&a, chain("whitespace", &["shingles"], &[]), "a b c"),
        ["a", "a b", "a b c", "b", "b c", "c"]
    );
    assert_eq!(
        texts(
            &a,
            chain("whitespace", &["short", "cut", "unique"], &[]),
            "x abcd abcd ab toolong"
        ),
        ["abc", "ab"]
    );
    assert_eq!(
        texts(&a, chain("whitespace", &["fr_elision"], &[]), "l'avion"),
        ["avion"]
    );
    assert_eq!(
        texts(&a, chain("whitespace", &["snow"], &[]), "katzen"),
        ["katz"]
    );
    assert_eq!(
        texts(
            &a,
            chain("whitespace", &["parts"], &[]),
            "Wi-Fi PowerShot500"
        ),
        ["WiFi", "Wi", "Fi", "PowerShot", "Power", "Shot", "500"]
    );
    assert_eq!(
        texts(&a, chain("keyword", &[], &["digits"]), "12-34"),
        ["1234"]
    );
    let normalized = AnalyzeChain {
        normalizer: Some("folded".into()),
        ..AnalyzeChain::default()
    };
    assert_eq!(texts(&a, normalized, "Ça Va"), ["ca va"]);
}

#[test]
fn synonyms_share_the_position_of_what_they_replace() {
    let a = sample();
    let found = a.analyze(&with_analyzer("synonyms"), "my laptop").unwrap();
    let positions: Vec<(String, usize)> = found.into_iter().map(|t| (t.text, t.position)).collect();
    assert_eq!(
        positions,
        [
            ("my".into(), 0),
            ("laptop".into(), 1),
            ("notebook".into(), 1)
        ]
    );
}

#[test]
fn bad_definitions_are_refused_by_name() {
    for (bad, says) in [
        (
            json!({"analyzer": {"a": {"tokenizer": "nope"}}}),
            "failed to find tokenizer",
        ),
        (
            json!({"analyzer": {"a": {"tokenizer": "standard", "filter": ["nope"]}}}),
            "failed to find filter",
        ),
        (
            json!({"analyzer": {"a": {"type": "fancy"}}}),
            "Unknown analyzer type",
        ),
        (
            json!({"tokenizer": {"t": {"type": "ngram", "min_gram": 1, "max_gram": 5}}}),
            "max_ngram_diff",
        ),
        (
            json!({"filter": {"f": {"type": "stop", "bogus": 1}}}),
            "unknown parameter",
        ),
        (
            json!({"filter": {"f": {"type": "stemmer", "language": "klingon"}}}),
            "unknown stemmer language",
        ),
        (
            json!({"char_filter": {"c": {"type": "pattern_replace", "pattern": "("}}}),
            "invalid pattern",
        ),
        (
            json!({"normalizer": {"n": {"filter": ["shingle"]}}}),
            "may not use filter",
        ),
        (json!({"analyzers": {}}), "unknown setting"),
    ] {
        let err = Analysis::from_es_json(&bad, AnalysisLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn mappings_may_only_name_analyzers_that_exist() {
    let a = sample();
    let ok = Mapping::from_es_json(&json!({"properties": {
        "t": {"type": "text", "analyzer": "autocomplete", "search_analyzer": "standard"},
        "k": {"type": "keyword", "normalizer": "folded"}
    }}))
    .unwrap();
    a.check(&ok).unwrap();
    let bad =
        Mapping::from_es_json(&json!({"properties": {"t": {"type": "text", "analyzer": "nope"}}}))
            .unwrap();
    assert!(a.check(&bad).is_err());
    let bad = Mapping::from_es_json(
        &json!({"properties": {"k": {"type": "keyword", "normalizer": "nope"}}}),
    )
    .unwrap();
    assert!(a.check(&bad).is_err());
}

proptest! {
    /// Whatever the text, every token's offsets lie within it, on character boundaries, for
    /// every analyzer of the sample (char filters rewrite lengths; highlighting slices by them).
    #[test]
    fn offsets_always_point_into_the_original_text(text in "[a-zA-Zé0-9 <>&;:()/,.'-]{0,40}") {
        let a = sample();
        for name in ["folding", "html", "moods", "synonyms", "std_stop", "autocomplete"] {
            for token in a.analyze(&with_analyzer(name), &text).unwrap() {
                prop_assert!(token.offset_from <= token.offset_to);
                prop_assert!(text.get(token.offset_from..token.offset_to).is_some(), "{name}: {token:?}");
            }
        }
        for filters in [&["parts"][..], &["shingles"], &["syn"]] {
            for token in a.analyze(&chain("standard", filters, &["emoticons", "html_strip"]), &text).unwrap() {
                prop_assert!(text.get(token.offset_from..token.offset_to).is_some());
            }
        }
    }
}
