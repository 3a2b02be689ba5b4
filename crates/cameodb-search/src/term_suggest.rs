//! The term suggester (`suggest` with `term`): for each token of a text, the indexed terms of a
//! field within a few edits of it — the "did you mean" of a search box.
//!
//! Each index reads its term dictionaries for candidates sharing the token's first
//! `prefix_length` characters, keeps those within `max_edits` (Damerau–Levenshtein, as
//! Lucene's direct spell checker counts) whose similarity reaches `accuracy`, and reports each
//! with its document frequency, and the token's own. The coordinator sums the frequencies of
//! every index and node before it applies `suggest_mode`, `min_doc_freq` and `max_term_freq`,
//! so those read the whole cluster's counts.

use std::collections::BTreeMap;

use cameodb_schema::mapping::FieldType;
use cameodb_storage::{Snapshot, Store};
use serde_json::{Map, Value, json};
use tantivy::schema::Field;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, Term};

use crate::error::SearchError;

/// Most options one term suggestion may ask for per token.
pub const MAX_TERM_SUGGEST_SIZE: u64 = 1_000;
/// Most tokens of one suggestion's text that are looked up.
pub const MAX_SUGGEST_TOKENS: usize = 64;
/// Most dictionary terms one token inspects per segment (`max_inspections` is bounded by it).
pub const MAX_INSPECTED_TERMS: usize = 100_000;

fn parsing(reason: impl Into<String>) -> SearchError {
    SearchError::parse(reason.into())
}

/// Which tokens get suggestions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Only tokens no document holds (the default).
    Missing,
    /// Only more frequent terms than the token.
    Popular,
    /// Every token.
    Always,
}

/// A checked term suggestion.
#[derive(Clone, Debug)]
pub(crate) struct TermSuggestion {
    text: String,
    field: String,
    analyzer: Option<String>,
    size: usize,
    shard_size: usize,
    by_frequency: bool,
    mode: Mode,
    max_edits: usize,
    prefix_length: usize,
    min_word_length: usize,
    min_doc_freq: f64,
    max_term_freq: f64,
    accuracy: f64,
}

fn number(name: &str, key: &str, value: &Value) -> Result<f64, SearchError> {
    value
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| {
            parsing(format!(
                "[{key}] of suggestion [{name}] must be a non-negative number"
            ))
        })
}

fn whole(name: &str, key: &str, value: &Value, max: u64) -> Result<usize, SearchError> {
    value
        .as_u64()
        .filter(|n| *n <= max)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            parsing(format!(
                "[{key}] of suggestion [{name}] must be an integer from 0 to {max}"
            ))
        })
}

/// Reads a `term` suggester body.
pub(crate) fn parse(
    name: &str,
    text: Option<String>,
    body: &Map<String, Value>,
) -> Result<TermSuggestion, SearchError> {
    let mut out = TermSuggestion {
        text: text.ok_or_else(|| parsing(format!("suggestion [{name}] needs [text]")))?,
        field: String::new(),
        analyzer: None,
        size: 5,
        shard_size: 0,
        by_frequency: false,
        mode: Mode::Missing,
        max_edits: 2,
        prefix_length: 1,
        min_word_length: 4,
        min_doc_freq: 0.0,
        max_term_freq: 0.01,
        accuracy: 0.5,
    };
    for (key, value) in body {
        let string = || {
            value
                .as_str()
                .ok_or_else(|| parsing(format!("[{key}] of suggestion [{name}] must be a string")))
        };
        match key.as_str() {
            "field" => out.field = string()?.to_string(),
            "analyzer" => out.analyzer = Some(string()?.to_string()),
            "size" => out.size = whole(name, key, value, MAX_TERM_SUGGEST_SIZE)?,
            "shard_size" => out.shard_size = whole(name, key, value, MAX_TERM_SUGGEST_SIZE)?,
            "sort" => {
                out.by_frequency = match string()? {
                    "score" => false,
                    "frequency" => true,
                    other => {
                        return Err(parsing(format!(
                            "[sort] of suggestion [{name}] must be score or frequency, got [{other}]"
                        )));
                    }
                }
            }
            "suggest_mode" => {
                out.mode = match string()? {
                    "missing" => Mode::Missing,
                    "popular" => Mode::Popular,
                    "always" => Mode::Always,
                    other => {
                        return Err(parsing(format!(
                            "[suggest_mode] of suggestion [{name}] must be missing, popular or always, got [{other}]"
                        )));
                    }
                }
            }
            "max_edits" => {
                out.max_edits = whole(name, key, value, 2)?;
                if out.max_edits == 0 {
                    return Err(parsing(format!(
                        "[max_edits] of suggestion [{name}] must be 1 or 2"
                    )));
                }
            }
            "prefix_length" => out.prefix_length = whole(name, key, value, 64)?,
            "min_word_length" => out.min_word_length = whole(name, key, value, 1024)?,
            "min_doc_freq" => out.min_doc_freq = number(name, key, value)?,
            "max_term_freq" => out.max_term_freq = number(name, key, value)?,
            "accuracy" => out.accuracy = number(name, key, value)?.min(1.0),
            // Bounded by MAX_INSPECTED_TERMS; the default string distance is what is used.
            "max_inspections" => drop(whole(name, key, value, 1_000)?),
            "string_distance" if value.as_str() == Some("internal") => {}
            "lowercase_terms" => {}
            other => {
                return Err(parsing(format!(
                    "[{other}] of term suggestion [{name}] is not supported"
                )));
            }
        }
    }
    if out.field.is_empty() {
        return Err(parsing(format!("suggestion [{name}] requires [field]")));
    }
    if out.size == 0 {
        return Err(parsing(format!(
            "[size] of suggestion [{name}] must be positive"
        )));
    }
    out.shard_size = out.shard_size.max(out.size);
    Ok(out)
}

/// One candidate correction.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TermOption {
    /// The indexed term.
    pub text: String,
    /// Its similarity to the token, 0 to 1.
    pub score: f64,
    /// Documents holding it (summed over the parts at merge).
    pub freq: u64,
}

/// One token's candidates from one index.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TermEntry {
    /// The token as the analyzer gave it.
    pub text: String,
    /// Where it starts in the suggestion's text, in characters.
    pub offset: usize,
    /// Its length in the text, in characters.
    pub length: usize,
    /// Documents holding the token itself.
    pub freq: u64,
    /// Documents in the index (for fractional thresholds).
    pub docs: u64,
    /// Candidates, best first.
    pub options: Vec<TermOption>,
}

/// Where a field's terms are: the tantivy field, and the bytes every term of the path starts
/// with in it (JSON fields key terms by path).
fn term_source(store: &Store, field: &str) -> Result<(Field, Vec<u8>, TextAnalyzer), SearchError> {
    let mapping = store.mapping();
    let fields = store.fields();
    let (path, mapped) = mapping.resolve(field).ok_or_else(|| {
        SearchError::illegal_argument(format!("no mapping found for field [{field}]"))
    })?;
    let tokenizers = store.index().tokenizers();
    let keyword = || cameodb_schema::analysis::analyzer("keyword");
    let json_prefix = |target: Field| {
        let mut term = Term::from_field_json_path(target, path, true);
        term.append_type_and_str("");
        term.serialized_value_bytes().to_vec()
    };
    match (mapped.field_type, fields.text_field(mapped.slot)) {
        (FieldType::Text, Some(slot_field)) => {
            let slot = usize::from(mapped.slot.unwrap_or(0));
            let analyzer = tokenizers
                .get(&cameodb_schema::fields::slot_search_tokenizer(slot))
                .or_else(|| tokenizers.get(&cameodb_schema::fields::slot_tokenizer(slot)))
                .unwrap_or_else(keyword);
            Ok((slot_field, Vec::new(), analyzer))
        }
        (FieldType::Text, None) => {
            let analyzer = tokenizers
                .get(cameodb_schema::fields::OVERFLOW_TOKENIZER)
                .unwrap_or_else(keyword);
            Ok((fields.text, json_prefix(fields.text), analyzer))
        }
        (FieldType::Keyword, _) if mapped.variant.is_none() => {
            Ok((fields.exact, json_prefix(fields.exact), keyword()))
        }
        _ => Err(SearchError::illegal_argument(format!(
            "the term suggester reads text and keyword fields, not [{field}]"
        ))),
    }
}

/// Candidates for `token` in every segment of `searcher`, with the token's own frequency.
fn candidates(
    searcher: &Searcher,
    field: Field,
    prefix: &[u8],
    token: &str,
    wanted: &TermSuggestion,
) -> Result<(u64, BTreeMap<String, u64>), SearchError> {
    let mut own = 0u64;
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    let shared: String = token.chars().take(wanted.prefix_length).collect();
    let mut low = prefix.to_vec();
    low.extend_from_slice(shared.as_bytes());
    let mut high = low.clone();
    high.push(0xff);
    for reader in searcher.segment_readers() {
        let index = reader.inverted_index(field)?;
        let terms = index.terms();
        let mut exact = prefix.to_vec();
        exact.extend_from_slice(token.as_bytes());
        if let Some(info) = terms.get(&exact).map_err(tantivy::TantivyError::from)? {
            own += u64::from(info.doc_freq);
        }
        let mut stream = terms
            .range()
            .ge(&low)
            .lt(&high)
            .into_stream()
            .map_err(tantivy::TantivyError::from)?;
        let mut inspected = 0usize;
        while stream.advance() && inspected < MAX_INSPECTED_TERMS {
            inspected += 1;
            let Some(text) = stream
                .key()
                .strip_prefix(prefix)
                .and_then(|k| std::str::from_utf8(k).ok())
            else {
                continue;
            };
            if text == token {
                continue;
            }
            if strsim::osa_distance(token, text) <= wanted.max_edits {
                *found.entry(text.to_string()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
    }
    Ok((own, found))
}

/// Similarity of a candidate: one minus the edits over the shorter length.
fn similarity(token: &str, candidate: &str) -> f64 {
    let edits = strsim::osa_distance(token, candidate) as f64;
    let shorter = token.chars().count().min(candidate.chars().count()).max(1) as f64;
    (1.0 - edits / shorter).max(0.0)
}

fn rank(options: &mut [TermOption], by_frequency: bool) {
    options.sort_by(|a, b| {
        let by_score = b.score.total_cmp(&a.score).then(b.freq.cmp(&a.freq));
        let by_freq = b.freq.cmp(&a.freq).then(b.score.total_cmp(&a.score));
        if by_frequency { by_freq } else { by_score }.then_with(|| a.text.cmp(&b.text))
    });
}

/// This index's entries for one term suggestion.
pub(crate) fn run(
    store: &Store,
    snapshot: &Snapshot,
    wanted: &TermSuggestion,
) -> Result<Vec<TermEntry>, SearchError> {
    let searcher: &Searcher = snapshot;
    let (field, prefix, search_analyzer) = term_source(store, &wanted.field)?;
    let mut analyzer = match &wanted.analyzer {
        Some(name) => store.analysis().analyzer(name).ok_or_else(|| {
            SearchError::illegal_argument(format!("analyzer [{name}] has not been configured"))
        })?,
        None => search_analyzer,
    };
    let mut tokens = Vec::new();
    let mut stream = analyzer.token_stream(&wanted.text);
    while stream.advance() && tokens.len() < MAX_SUGGEST_TOKENS {
        let token = stream.token();
        let offset = wanted
            .text
            .get(..token.offset_from)
            .map_or(0, |s| s.chars().count());
        let length = wanted
            .text
            .get(token.offset_from..token.offset_to)
            .map_or(0, |s| s.chars().count());
        tokens.push((token.text.clone(), offset, length));
    }
    let docs = searcher.num_docs();
    let mut entries = Vec::new();
    for (text, offset, length) in tokens {
        let (own, found) = if text.chars().count() < wanted.min_word_length {
            (0, BTreeMap::new())
        } else {
            candidates(searcher, field, &prefix, &text, wanted)?
        };
        let mut options: Vec<TermOption> = found
            .into_iter()
            .map(|(candidate, freq)| TermOption {
                score: similarity(&text, &candidate),
                text: candidate,
                freq,
            })
            .filter(|o| o.score >= wanted.accuracy)
            .collect();
        rank(&mut options, wanted.by_frequency);
        options.truncate(wanted.shard_size);
        entries.push(TermEntry {
            text,
            offset,
            length,
            freq: own,
            docs,
            options,
        });
    }
    Ok(entries)
}

/// A threshold given as a fraction of the documents (below 1, rounded up as Lucene's spell
/// checker rounds it) or as a count.
fn threshold(value: f64, docs: u64) -> f64 {
    if value < 1.0 {
        (value * docs as f64).ceil()
    } else {
        value
    }
}

/// The merged answer of one term suggestion from every part's entries.
pub(crate) fn render(wanted: &TermSuggestion, parts: &[Vec<TermEntry>]) -> Value {
    let mut merged: BTreeMap<usize, TermEntry> = BTreeMap::new();
    for entries in parts {
        for entry in entries {
            match merged.get_mut(&entry.offset) {
                None => {
                    merged.insert(entry.offset, entry.clone());
                }
                Some(into) => {
                    into.freq += entry.freq;
                    into.docs += entry.docs;
                    for option in &entry.options {
                        match into.options.iter_mut().find(|o| o.text == option.text) {
                            Some(existing) => existing.freq += option.freq,
                            None => into.options.push(option.clone()),
                        }
                    }
                }
            }
        }
    }
    let shown: Vec<Value> = merged
        .into_values()
        .map(|mut entry| {
            // A token many documents hold is taken as spelled right (`max_term_freq`).
            let corrected = (wanted.mode != Mode::Missing || entry.freq == 0)
                && entry.freq as f64 <= threshold(wanted.max_term_freq, entry.docs);
            let min_freq = threshold(wanted.min_doc_freq, entry.docs);
            let own = entry.freq;
            entry.options.retain(|o| {
                corrected
                    && o.freq as f64 >= min_freq
                    && (wanted.mode != Mode::Popular || o.freq > own)
            });
            rank(&mut entry.options, wanted.by_frequency);
            entry.options.truncate(wanted.size);
            let options: Vec<Value> = entry
                .options
                .iter()
                .map(|o| json!({"text": o.text, "score": o.score, "freq": o.freq}))
                .collect();
            json!({"text": entry.text, "offset": entry.offset, "length": entry.length, "options": options})
        })
        .collect();
    Value::Array(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_counts_edits_over_the_shorter_word() {
        assert_eq!(similarity("quick", "quikc"), 0.8);
        assert_eq!(similarity("color", "colour"), 0.8);
        assert_eq!(similarity("brown", "brown"), 1.0);
    }

    #[test]
    fn fractional_thresholds_read_the_document_count() {
        assert_eq!(threshold(0.01, 1000), 10.0);
        assert_eq!(threshold(0.01, 3), 1.0);
        assert_eq!(threshold(3.0, 1000), 3.0);
    }
}
