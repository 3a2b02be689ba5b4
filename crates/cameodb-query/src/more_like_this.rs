//! `more_like_this`: the terms that best characterize the liked texts and documents, searched
//! as a `bool` of `should` term queries.
//!
//! Candidate terms come from analyzing the liked texts (and the chosen fields of liked
//! documents) with each field's analyzer; which of them are kept depends on their document
//! frequencies, so the selection happens when the query is weighted, from the statistics the
//! search scores with (cluster-wide when the search has them). Documents liked by `_id` are
//! read by the coordinator before the query is translated (see [`liked_documents`]) and come
//! here as `{"doc": source, "_id": id}`.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};
use tantivy::query::{
    BooleanQuery, BoostQuery, EmptyQuery, EnableScoring, Occur, Query, TermQuery, Weight,
};
use tantivy::schema::{IndexRecordOption, Term};

use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, text_tokens};
use crate::params::{as_object, boost_of, check_params, minimum_should_match};

/// Most characters of liked text analyzed per field (a larger text is a document to index,
/// not a query): bounds the work one request can ask for.
pub const MAX_LIKE_TEXT: usize = 1 << 20;

const PARAMS: &[&str] = &[
    "fields",
    "like",
    "unlike",
    "min_term_freq",
    "max_query_terms",
    "min_doc_freq",
    "max_doc_freq",
    "min_word_length",
    "max_word_length",
    "stop_words",
    "minimum_should_match",
    "boost_terms",
    "include",
    "fail_on_unsupported_field",
    "boost",
    "_name",
];

/// How candidate terms are chosen.
#[derive(Clone, Debug)]
struct Selection {
    min_term_freq: u64,
    max_query_terms: usize,
    min_doc_freq: u64,
    max_doc_freq: u64,
    minimum_should_match: Option<Value>,
    boost_terms: f32,
}

/// The query: candidate terms with their frequency in the liked input.
#[derive(Clone, Debug)]
pub(crate) struct MoreLikeThisQuery {
    candidates: Vec<(Term, u64)>,
    selection: Selection,
}

/// The `(index, id, routing)` of each document a `more_like_this` in `query` likes or unlikes
/// by `_id`, for the coordinator to read before the query runs.
pub fn liked_documents(query: &Value) -> Vec<(Option<String>, String, Option<String>)> {
    let mut out = Vec::new();
    visit_items(query, &mut |item| {
        if let (Some(id), None) = (item.get("_id").and_then(Value::as_str), item.get("doc")) {
            let index = item.get("_index").and_then(Value::as_str).map(String::from);
            let routing = item
                .get("routing")
                .and_then(Value::as_str)
                .map(String::from);
            out.push((index, id.to_string(), routing));
        }
    });
    out
}

/// Puts the sources the coordinator read into the `more_like_this` items that named them:
/// `source(index, id)` gives a document's source, `None` when it does not exist.
pub fn with_liked_documents(
    query: &mut Value,
    source: &dyn Fn(Option<&str>, &str) -> Option<Value>,
) {
    visit_items_mut(query, &mut |item| {
        if item.get("doc").is_some() {
            return;
        }
        let Some(id) = item.get("_id").and_then(Value::as_str).map(String::from) else {
            return;
        };
        let index = item.get("_index").and_then(Value::as_str).map(String::from);
        // A document that does not exist likes nothing, as in Elasticsearch.
        let doc = source(index.as_deref(), &id).unwrap_or(Value::Object(Map::new()));
        if let Some(object) = item.as_object_mut() {
            object.insert("doc".into(), doc);
        }
    });
}

fn like_items(body: &Map<String, Value>, key: &str) -> Vec<Value> {
    match body.get(key) {
        Some(Value::Array(items)) => items.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    }
}

fn visit_items(value: &Value, each: &mut dyn FnMut(&Value)) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(mlt)) = map.get("more_like_this") {
                for key in ["like", "unlike"] {
                    for item in like_items(mlt, key) {
                        each(&item);
                    }
                }
            }
            map.values().for_each(|child| visit_items(child, each));
        }
        Value::Array(items) => items.iter().for_each(|i| visit_items(i, each)),
        _ => {}
    }
}

fn visit_items_mut(value: &mut Value, each: &mut dyn FnMut(&mut Value)) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(mlt)) = map.get_mut("more_like_this") {
                for key in ["like", "unlike"] {
                    match mlt.get_mut(key) {
                        Some(Value::Array(items)) => items.iter_mut().for_each(&mut *each),
                        Some(one) => each(one),
                        None => {}
                    }
                }
            }
            map.values_mut()
                .for_each(|child| visit_items_mut(child, each));
        }
        Value::Array(items) => items.iter_mut().for_each(|i| visit_items_mut(i, each)),
        _ => {}
    }
}

fn count(body: &Map<String, Value>, key: &str, default: u64) -> Result<u64, QueryError> {
    match body.get(key) {
        None => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            parsing(format!(
                "[more_like_this] [{key}] must be a non-negative integer"
            ))
        }),
    }
}

/// The texts of an item for `field`: a string as is, a document's values at the field.
fn item_texts(item: &Value, field: &str) -> Result<Vec<String>, QueryError> {
    match item {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Object(object) => match object.get("doc") {
            Some(doc) => {
                let mut texts = Vec::new();
                leaf_texts(doc, field, &mut texts);
                Ok(texts)
            }
            None if object.contains_key("_id") => Err(parsing(
                "[more_like_this] documents liked by [_id] are read only by _search",
            )),
            None => Err(parsing(
                "[more_like_this] like items must be texts, {\"doc\": ...} or {\"_index\", \"_id\"}",
            )),
        },
        _ => Err(parsing(
            "[more_like_this] like items must be texts or objects",
        )),
    }
}

fn leaf_texts(value: &Value, path: &str, out: &mut Vec<String>) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    match value {
        Value::Array(items) => items.iter().for_each(|i| leaf_texts(i, path, out)),
        Value::Object(map) => {
            // A dotted key (`"a.b": ...`) holds the whole path too.
            if let Some(v) = map.get(path) {
                collect_scalars(v, out);
            }
            if let (Some(child), Some(rest)) = (map.get(head), rest) {
                leaf_texts(child, rest, out);
            }
        }
        _ => {}
    }
}

fn collect_scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect_scalars(i, out)),
        _ => {}
    }
}

/// `more_like_this`.
pub(crate) fn more_like_this(
    body: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Box<dyn Query>, QueryError> {
    let body = as_object(body, "more_like_this")?;
    check_params(body, "more_like_this", PARAMS)?;
    let fields: Vec<String> = match body.get("fields") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| parsing("[more_like_this] fields must be strings"))
            })
            .collect::<Result<_, _>>()?,
        None => ctx
            .all_fields()
            .into_iter()
            .filter(|f| matches!(ctx.target(f), Target::Text { .. }))
            .collect(),
        Some(_) => return Err(parsing("[more_like_this] fields must be an array")),
    };
    let like = like_items(body, "like");
    if like.is_empty() {
        return Err(parsing("more_like_this requires 'like' to be specified"));
    }
    let unlike = like_items(body, "unlike");
    let stop: HashSet<String> = body
        .get("stop_words")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_lowercase)
        .collect();
    let min_len = count(body, "min_word_length", 0)? as usize;
    let max_len = match count(body, "max_word_length", 0)? {
        0 => usize::MAX,
        n => n as usize,
    };
    let keep = |text: &str| {
        let len = text.chars().count();
        len >= min_len && len <= max_len && !stop.contains(&text.to_lowercase())
    };
    let mut frequencies: BTreeMap<Term, u64> = BTreeMap::new();
    let mut unliked: HashSet<Term> = HashSet::new();
    for field in &fields {
        let target = ctx.target(field);
        match &target {
            Target::Text { .. } => {}
            Target::Unmapped => continue,
            Target::Exact { mapping, .. } => {
                return Err(parsing(format!(
                    "more_like_this only supports text fields: [{field}] is of type [{}]",
                    mapping.type_name()
                )));
            }
        }
        for (items, liked) in [(&like, true), (&unlike, false)] {
            for item in items {
                for text in item_texts(item, field)? {
                    if text.len() > MAX_LIKE_TEXT {
                        return Err(parsing(format!(
                            "[more_like_this] a liked text is longer than [{MAX_LIKE_TEXT}] bytes"
                        )));
                    }
                    for (_, token, term) in text_tokens(&target, &text) {
                        if !keep(&token) {
                            continue;
                        }
                        if liked {
                            *frequencies.entry(term).or_insert(0) += 1;
                        } else {
                            unliked.insert(term);
                        }
                    }
                }
            }
        }
    }
    let candidates: Vec<(Term, u64)> = frequencies
        .into_iter()
        .filter(|(term, _)| !unliked.contains(term))
        .collect();
    ctx.budget
        .clauses(candidates.len().min(MAX_QUERY_TERMS_CEILING))?;
    let selection = Selection {
        min_term_freq: count(body, "min_term_freq", 2)?,
        max_query_terms: (count(body, "max_query_terms", 25)? as usize)
            .min(MAX_QUERY_TERMS_CEILING),
        min_doc_freq: count(body, "min_doc_freq", 5)?,
        max_doc_freq: count(body, "max_doc_freq", u64::MAX)?,
        minimum_should_match: Some(
            body.get("minimum_should_match")
                .cloned()
                .unwrap_or(Value::String("30%".into())),
        ),
        boost_terms: body
            .get("boost_terms")
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as f32,
    };
    let mut query: Box<dyn Query> = Box::new(MoreLikeThisQuery {
        candidates,
        selection,
    });
    // The liked documents themselves are not results unless `include` says so.
    let include = body
        .get("include")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let excluded: Vec<String> = like
        .iter()
        .filter_map(|item| item.get("doc").and(item.get("_id")))
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if !include && !excluded.is_empty() {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, query)];
        for id in excluded {
            let term = Term::from_field_text(ctx.fields.id, &id);
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        query = Box::new(BooleanQuery::new(clauses));
    }
    Ok(match boost_of(Some(body))? {
        Some(boost) => Box::new(BoostQuery::new(query, boost)),
        None => query,
    })
}

/// Most terms one `more_like_this` may select, whatever `max_query_terms` asks (each becomes
/// a clause; `indices.query.bool.max_clause_count` bounds them anyway).
const MAX_QUERY_TERMS_CEILING: usize = 1024;

impl MoreLikeThisQuery {
    /// The selected terms' query under the statistics `scoring` gives.
    fn select(&self, scoring: &EnableScoring<'_>) -> tantivy::Result<Box<dyn Query>> {
        let doc_freq = |term: &Term| -> tantivy::Result<Option<(u64, u64)>> {
            Ok(match scoring {
                EnableScoring::Enabled {
                    statistics_provider,
                    ..
                } => Some((
                    statistics_provider.doc_freq(term)?,
                    statistics_provider.total_num_docs()?,
                )),
                EnableScoring::Disabled { searcher_opt, .. } => match searcher_opt {
                    Some(searcher) => Some((searcher.doc_freq(term)?, searcher.num_docs())),
                    None => None,
                },
            })
        };
        let s = &self.selection;
        let mut scored: Vec<(f32, &Term)> = Vec::new();
        for (term, tf) in &self.candidates {
            if *tf < s.min_term_freq {
                continue;
            }
            let idf = match doc_freq(term)? {
                Some((df, _)) if df < s.min_doc_freq || df > s.max_doc_freq => continue,
                Some((df, docs)) => {
                    (1.0 + (docs as f32 - df as f32 + 0.5) / (df as f32 + 0.5)).ln()
                }
                None => 1.0,
            };
            scored.push((*tf as f32 * idf, term));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored.truncate(s.max_query_terms);
        if scored.is_empty() {
            return Ok(Box::new(EmptyQuery));
        }
        let top = scored[0].0.max(f32::MIN_POSITIVE);
        let clauses: Vec<(Occur, Box<dyn Query>)> = scored
            .iter()
            .map(|(score, term)| {
                let query: Box<dyn Query> = Box::new(TermQuery::new(
                    (*term).clone(),
                    IndexRecordOption::WithFreqs,
                ));
                let query = if s.boost_terms > 0.0 {
                    Box::new(BoostQuery::new(query, s.boost_terms * score / top))
                } else {
                    query
                };
                (Occur::Should, query)
            })
            .collect();
        let minimum = minimum_should_match(s.minimum_should_match.as_ref(), clauses.len())
            .unwrap_or(1)
            .max(1);
        Ok(Box::new(BooleanQuery::with_minimum_required_clauses(
            clauses, minimum,
        )))
    }
}

impl Query for MoreLikeThisQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        self.select(&scoring)?.weight(scoring)
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for (term, _) in &self.candidates {
            visitor(term, false);
        }
    }
}
