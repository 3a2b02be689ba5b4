//! Highlighting: fragments of text fields around the query's terms, wrapped in tags. Built with
//! tantivy's snippet generator from the document's `_source` (text is not stored in the index).

use cameodb_schema::mapping::FieldType;
use cameodb_storage::Store;
use serde_json::{Map, Value};
use tantivy::Searcher;
use tantivy::query::Query;
use tantivy::snippet::SnippetGenerator;

use crate::error::SearchError;

/// Options of one highlighted field.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct FieldOptions {
    path: String,
    pre: String,
    post: String,
    fragment_size: usize,
    /// 0 highlights whole values.
    fragments: usize,
}

/// A parsed `highlight` request.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HighlightSpec {
    fields: Vec<FieldOptions>,
}

const OPTIONS: &[&str] = &[
    "pre_tags",
    "post_tags",
    "fragment_size",
    "number_of_fragments",
    "type",
    "require_field_match",
];

fn options(
    defaults: Option<&FieldOptions>,
    spec: &Map<String, Value>,
    path: &str,
) -> Result<FieldOptions, SearchError> {
    if let Some(unknown) = spec
        .keys()
        .find(|k| !OPTIONS.contains(&k.as_str()) && k.as_str() != "fields")
    {
        return Err(SearchError::parse(format!(
            "[highlight] option [{unknown}] is not supported"
        )));
    }
    let tag = |key: &str, default: &str| -> Result<String, SearchError> {
        match spec.get(key) {
            None => Ok(default.to_string()),
            Some(Value::Array(items)) => Ok(items
                .first()
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(SearchError::parse(format!(
                "[highlight] [{key}] must be an array of strings"
            ))),
        }
    };
    let number = |key: &str, default: usize| -> Result<usize, SearchError> {
        match spec.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                SearchError::parse(format!(
                    "[highlight] [{key}] must be a non-negative integer"
                ))
            }),
        }
    };
    if let Some(kind) = spec.get("type").and_then(Value::as_str)
        && !["unified", "plain"].contains(&kind)
    {
        return Err(SearchError::parse(format!(
            "[highlight] type [{kind}] is not supported"
        )));
    }
    let base = defaults.cloned().unwrap_or(FieldOptions {
        path: String::new(),
        pre: "<em>".into(),
        post: "</em>".into(),
        fragment_size: 100,
        fragments: 5,
    });
    Ok(FieldOptions {
        path: path.to_string(),
        pre: tag("pre_tags", &base.pre)?,
        post: tag("post_tags", &base.post)?,
        fragment_size: number("fragment_size", base.fragment_size)?,
        fragments: number("number_of_fragments", base.fragments)?,
    })
}

/// Parses the `highlight` object of a search body.
pub fn parse(value: &Value) -> Result<HighlightSpec, SearchError> {
    let spec = value
        .as_object()
        .ok_or_else(|| SearchError::parse("[highlight] must be an object"))?;
    let defaults = options(None, spec, "")?;
    let mut fields = Vec::new();
    let mut add = |path: &str, opts: &Value| -> Result<(), SearchError> {
        let opts = opts.as_object().cloned().unwrap_or_default();
        fields.push(options(Some(&defaults), &opts, path)?);
        Ok(())
    };
    match spec.get("fields") {
        Some(Value::Object(map)) => {
            for (path, opts) in map {
                add(path, opts)?;
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                for (path, opts) in item.as_object().ok_or_else(|| {
                    SearchError::parse("[highlight] fields entries must be objects")
                })? {
                    add(path, opts)?;
                }
            }
        }
        _ => return Err(SearchError::parse("[highlight] requires [fields]")),
    }
    Ok(HighlightSpec { fields })
}

/// The text values at a dotted path of a source.
fn texts_at<'v>(source: &'v Value, path: &str, out: &mut Vec<&'v str>) {
    for node in crate::source_filter::values_at(source, path) {
        match node {
            Value::String(s) => out.push(s),
            Value::Array(items) => out.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
}

/// Ready-to-use generators for one index and query.
pub struct Highlighter {
    fields: Vec<(FieldOptions, SnippetGenerator)>,
}

impl Highlighter {
    /// Prepares the text fields of `spec` that have their own text field in this index
    /// (`*` stands for every such field).
    pub fn new(
        spec: &HighlightSpec,
        store: &Store,
        searcher: &Searcher,
        query: &dyn Query,
    ) -> Result<Highlighter, SearchError> {
        let mapping = store.mapping();
        let mut fields = Vec::new();
        for opts in &spec.fields {
            let paths: Vec<String> = if opts.path.contains('*') {
                mapping
                    .properties
                    .iter()
                    .filter(|(p, f)| {
                        f.field_type == FieldType::Text && crate::wildcard_match(&opts.path, p)
                    })
                    .map(|(p, _)| p.clone())
                    .collect()
            } else {
                vec![opts.path.clone()]
            };
            for path in paths {
                let Some(field) = mapping
                    .lookup(&path)
                    .filter(|f| f.field_type == FieldType::Text)
                else {
                    continue;
                };
                let Some(text_field) = store.fields().text_field(field.slot) else {
                    continue;
                };
                let generator = SnippetGenerator::create(searcher, query, text_field)?;
                fields.push((
                    FieldOptions {
                        path,
                        ..opts.clone()
                    },
                    generator,
                ));
            }
        }
        Ok(Highlighter { fields })
    }

    /// The `highlight` object of one hit, if anything matched.
    pub fn highlight(&mut self, source: &Value) -> Option<Value> {
        let mut out = Map::new();
        for (opts, generator) in &mut self.fields {
            let mut texts = Vec::new();
            texts_at(source, &opts.path, &mut texts);
            let mut fragments = Vec::new();
            for text in texts {
                let size = if opts.fragments == 0 {
                    text.len().max(1)
                } else {
                    opts.fragment_size.max(1)
                };
                generator.set_max_num_chars(size);
                let snippet = generator.snippet(text);
                if snippet.highlighted().is_empty() {
                    continue;
                }
                let fragment = snippet.fragment();
                let mut rendered = String::new();
                let mut at = 0;
                for range in tantivy::snippet::collapse_overlapped_ranges(snippet.highlighted()) {
                    rendered.push_str(part(fragment, at..range.start));
                    rendered.push_str(&opts.pre);
                    rendered.push_str(part(fragment, range.clone()));
                    rendered.push_str(&opts.post);
                    at = range.end;
                }
                rendered.push_str(part(fragment, at..fragment.len()));
                if opts.fragments == 0 {
                    // Whole-value mode: put back what the fragment trimmed off either end.
                    let range = snippet.fragment_range();
                    rendered = format!(
                        "{}{rendered}{}",
                        part(text, 0..range.start),
                        part(text, range.end..text.len())
                    );
                }
                fragments.push(Value::String(rendered));
                if opts.fragments > 0 && fragments.len() >= opts.fragments {
                    break;
                }
            }
            if !fragments.is_empty() {
                out.insert(opts.path.clone(), Value::Array(fragments));
            }
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

/// `text[range]`, or nothing when the range is not on character boundaries: the ranges are an
/// analyzer's byte offsets, and a request's text must never make them a panic.
fn part(text: &str, range: std::ops::Range<usize>) -> &str {
    text.get(range).unwrap_or("")
}
