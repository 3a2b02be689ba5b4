//! The completion suggester (`suggest` with `completion`): documents whose completion inputs
//! start with a prefix, best weight first. (`term` suggestions are read here and answered by
//! [`crate::term_suggest`].)
//!
//! An input is indexed in its normalized form (see `cameodb_schema::mapping::completion`) with
//! the document's largest weight beside it. Candidates are the documents holding an input with
//! the prefix, read in order of that largest weight; each is shown with its best matching
//! input. Reading stops once the page's last weight is at least the next candidate's largest,
//! so the answer is exact. Each index answers its own best; the coordinator merges them.

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::completion::{self, DEFAULT_ANALYZER, WEIGHT_KEY};
use cameodb_schema::mapping::variant::Variant;
use cameodb_storage::{Snapshot, Store};
use serde_json::{Map, Value, json};
use tantivy::collector::TopDocs;
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};
use tantivy::{DocId, Score, Searcher, SegmentReader};

use crate::error::SearchError;
use crate::source_filter::{SourceFilter, values_at};

/// Most options one completion suggestion may ask for.
pub const MAX_SUGGEST_SIZE: u64 = 10_000;

/// One option of a suggestion.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SuggestOption {
    /// The matching input, as the document wrote it.
    pub text: String,
    /// The index of the document.
    pub index: String,
    /// Its `_id`.
    pub id: String,
    /// The input's weight.
    pub score: i64,
    /// Its `_source`, filtered as the search asks.
    pub source: Option<Value>,
}

/// One named suggestion's options from one index.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SuggestPart {
    /// The suggestion's name in the request.
    pub name: String,
    /// Its options, best first.
    pub options: Vec<SuggestOption>,
    /// A term suggestion's entries, one per token.
    #[serde(default)]
    pub terms: Vec<crate::term_suggest::TermEntry>,
}

fn parsing(reason: impl Into<String>) -> SearchError {
    SearchError::parse(reason.into())
}

/// A checked completion suggestion.
struct Completion<'r> {
    name: &'r str,
    prefix: String,
    field: &'r str,
    size: usize,
    skip_duplicates: bool,
}

/// A checked suggestion of either kind.
enum Suggestion<'r> {
    Completion(Completion<'r>),
    Term(&'r str, crate::term_suggest::TermSuggestion),
}

/// Every named suggestion of `suggest`, checked.
fn suggestions(suggest: &Value) -> Result<Vec<Suggestion<'_>>, SearchError> {
    let all = suggest
        .as_object()
        .ok_or_else(|| parsing("[suggest] must be an object"))?;
    let global = all.get("text").and_then(Value::as_str);
    let mut out = Vec::new();
    for (name, spec) in all {
        if name == "text" {
            continue;
        }
        let spec = spec
            .as_object()
            .ok_or_else(|| parsing(format!("suggestion [{name}] must be an object")))?;
        let mut kind = None;
        let mut term = None;
        let mut prefix = global.map(String::from);
        for (key, value) in spec {
            match key.as_str() {
                "prefix" | "text" => {
                    prefix = Some(
                        value
                            .as_str()
                            .ok_or_else(|| {
                                parsing(format!("[{key}] of suggestion [{name}] must be a string"))
                            })?
                            .to_string(),
                    )
                }
                "completion" => kind = Some(value),
                "term" => term = Some(value),
                "phrase" | "regex" => {
                    return Err(parsing(format!(
                        "[{key}] in suggestion [{name}] is not supported: only the completion and term suggesters are"
                    )));
                }
                other => {
                    return Err(parsing(format!(
                        "suggestion [{name}] does not support [{other}]"
                    )));
                }
            }
        }
        if let Some(body) = term {
            let body = body.as_object().ok_or_else(|| {
                parsing(format!("[term] of suggestion [{name}] must be an object"))
            })?;
            out.push(Suggestion::Term(
                name,
                crate::term_suggest::parse(name, prefix, body)?,
            ));
            continue;
        }
        let body = kind.and_then(Value::as_object).ok_or_else(|| {
            parsing(format!(
                "suggestion [{name}] needs a [completion] or [term] suggester"
            ))
        })?;
        if let Some(key) = body
            .keys()
            .find(|k| !["field", "size", "skip_duplicates"].contains(&k.as_str()))
        {
            return Err(parsing(format!(
                "[{key}] of completion suggestion [{name}] is not supported"
            )));
        }
        let size = match body.get("size") {
            None => 5,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_SUGGEST_SIZE).contains(n))
                .ok_or_else(|| {
                    parsing(format!(
                        "[size] of suggestion [{name}] must be from 1 to {MAX_SUGGEST_SIZE}"
                    ))
                })?,
        };
        out.push(Suggestion::Completion(Completion {
            name,
            prefix: prefix
                .ok_or_else(|| parsing(format!("suggestion [{name}] needs [prefix] or [text]")))?,
            field: body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| parsing(format!("suggestion [{name}] requires [field]")))?,
            size: size as usize,
            skip_duplicates: body
                .get("skip_duplicates")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }));
    }
    Ok(out)
}

/// Checks the shape of a `suggest` request (before any node runs it).
pub fn check(suggest: &Value) -> Result<(), SearchError> {
    suggestions(suggest).map(|_| ())
}

/// This index's options for every suggestion of `suggest`.
pub(crate) fn run(
    store: &Store,
    snapshot: &Snapshot,
    index: &str,
    suggest: &Value,
    source: &SourceFilter,
) -> Result<Vec<SuggestPart>, SearchError> {
    let mapping = store.mapping();
    let mut parts = Vec::new();
    for wanted in suggestions(suggest)? {
        let wanted = match wanted {
            Suggestion::Completion(wanted) => wanted,
            Suggestion::Term(name, spec) => {
                parts.push(SuggestPart {
                    name: name.to_string(),
                    options: Vec::new(),
                    terms: crate::term_suggest::run(store, snapshot, &spec)?,
                });
                continue;
            }
        };
        let Some((path, field)) = mapping.resolve(wanted.field) else {
            return Err(SearchError::illegal_argument(format!(
                "no mapping found for field [{}]",
                wanted.field
            )));
        };
        let Some(Variant::Completion {
            max_input_length,
            preserve_separators,
        }) = field.variant
        else {
            return Err(SearchError::illegal_argument(format!(
                "Field [{}] is not a completion suggest field",
                wanted.field
            )));
        };
        let analyzer_of = |name: Option<&String>| {
            store
                .analysis()
                .analyzer(name.map_or(DEFAULT_ANALYZER, String::as_str))
                .unwrap_or_else(|| cameodb_schema::analysis::analyzer(DEFAULT_ANALYZER))
        };
        let mut indexing = analyzer_of(field.analyzer.as_ref());
        let mut searching = analyzer_of(field.search_analyzer.as_ref().or(field.analyzer.as_ref()));
        let max = max_input_length as usize;
        let prefix =
            completion::normalized(&mut searching, &wanted.prefix, preserve_separators, max);
        let options = if prefix.is_empty() {
            Vec::new()
        } else {
            let matches = |text: &str| {
                completion::normalized(&mut indexing, text, preserve_separators, max)
                    .starts_with(&prefix)
            };
            best_options(
                store, snapshot, index, path, &prefix, &wanted, source, matches,
            )?
        };
        parts.push(SuggestPart {
            name: wanted.name.to_string(),
            options,
            terms: Vec::new(),
        });
    }
    Ok(parts)
}

#[allow(clippy::too_many_arguments)]
fn best_options(
    store: &Store,
    snapshot: &Snapshot,
    index: &str,
    path: &str,
    prefix: &str,
    wanted: &Completion<'_>,
    source: &SourceFilter,
    mut matches: impl FnMut(&str) -> bool,
) -> Result<Vec<SuggestOption>, SearchError> {
    let searcher: &Searcher = snapshot;
    let query = crate::execute::build_query(
        store,
        &crate::request::QuerySpec::Dsl(json!({"prefix": {path: prefix}})),
    )?;
    let weights = format!("{EXACT_FIELD}.{path}.{WEIGHT_KEY}");
    let mut limit = wanted.size.saturating_mul(4).max(20);
    loop {
        let weights = weights.clone();
        let collector = TopDocs::with_limit(limit).tweak_score(move |segment: &SegmentReader| {
            let column = segment
                .fast_fields()
                .u64_lenient_for_type(Some(&[ColumnType::I64]), &weights)
                .ok()
                .flatten();
            move |doc: DocId, _: Score| {
                column
                    .as_ref()
                    .and_then(|(c, _)| c.first(doc))
                    .map_or(0, i64::from_u64)
            }
        });
        let candidates = searcher.search(query.as_ref(), &collector)?;
        let exhausted = candidates.len() < limit;
        let lowest = candidates.last().map_or(0, |(w, _)| *w);
        let addresses: Vec<_> = candidates.iter().map(|(_, a)| *a).collect();
        let mut options = Vec::new();
        for (key, doc) in store.snapshot_docs(snapshot, &addresses)? {
            let full = doc.source_json()?;
            let best = values_at(&full, path)
                .into_iter()
                .filter_map(|v| completion::inputs(v).ok())
                .flatten()
                .filter(|input| matches(&input.text))
                .max_by(|a, b| a.weight.cmp(&b.weight).then_with(|| b.text.cmp(&a.text)));
            if let Some(input) = best {
                options.push(SuggestOption {
                    text: input.text,
                    index: index.to_string(),
                    id: key.id.to_string(),
                    score: input.weight,
                    source: source.apply(full),
                });
            }
        }
        let options = ranked(options, wanted.size, wanted.skip_duplicates);
        let settled =
            options.len() == wanted.size && options.last().is_some_and(|o| o.score >= lowest);
        if exhausted || settled {
            return Ok(options);
        }
        limit = limit.saturating_mul(4);
    }
}

/// Options best first (weight, then text), duplicates of a text dropped when asked, `size`
/// kept.
fn ranked(
    mut options: Vec<SuggestOption>,
    size: usize,
    skip_duplicates: bool,
) -> Vec<SuggestOption> {
    options.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.text.cmp(&b.text)));
    if skip_duplicates {
        let mut seen = std::collections::HashSet::new();
        options.retain(|o| seen.insert(o.text.clone()));
    }
    options.truncate(size);
    options
}

/// The `suggest` section of the answer: every index's options merged per suggestion.
pub(crate) fn render(suggest: &Value, parts: Vec<SuggestPart>) -> Result<Value, SearchError> {
    let mut out = Map::new();
    for wanted in suggestions(suggest)? {
        let wanted = match wanted {
            Suggestion::Completion(wanted) => wanted,
            Suggestion::Term(name, spec) => {
                let entries: Vec<_> = parts
                    .iter()
                    .filter(|p| p.name == name)
                    .map(|p| p.terms.clone())
                    .collect();
                out.insert(
                    name.to_string(),
                    crate::term_suggest::render(&spec, &entries),
                );
                continue;
            }
        };
        let options: Vec<SuggestOption> = parts
            .iter()
            .filter(|p| p.name == wanted.name)
            .flat_map(|p| p.options.clone())
            .collect();
        let options: Vec<Value> = ranked(options, wanted.size, wanted.skip_duplicates)
            .into_iter()
            .map(|o| {
                let mut shown = json!({"text": o.text, "_index": o.index, "_id": o.id, "_score": o.score as f64});
                if let Some(source) = o.source {
                    shown["_source"] = source;
                }
                shown
            })
            .collect();
        out.insert(
            wanted.name.to_string(),
            json!([{
                "text": wanted.prefix,
                "offset": 0,
                "length": wanted.prefix.chars().count(),
                "options": options,
            }]),
        );
    }
    Ok(Value::Object(out))
}
