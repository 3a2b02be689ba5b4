//! `inner_hits` of `nested` queries: for each hit, the nested elements that matched, each
//! shown with its place in the document (`_nested`: field and offset) and its part of the
//! document's `_source`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use cameodb_query::QueryContext;
use cameodb_query::block_join::{Level, holder_of, level_docs};
use cameodb_schema::mapping::Mapping;
use serde_json::{Map, Value, json};
use tantivy::query::{EnableScoring, Weight};
use tantivy::schema::Field;
use tantivy::{DocAddress, DocId, DocSet, Searcher, TERMINATED};

use crate::error::SearchError;
use crate::request::QuerySpec;
use crate::source_filter::SourceFilter;

/// Elements an inner hit shows unless `size` says otherwise (Elasticsearch's default).
const DEFAULT_SIZE: usize = 3;
/// `index.max_inner_result_window`: most `from + size` of one inner hits request.
pub const MAX_INNER_RESULT_WINDOW: usize = 100;

/// One `inner_hits` request, ready to run on one index.
pub struct InnerHits {
    /// The name its results appear under (the path unless `name` is given).
    name: String,
    /// The nested field.
    path: String,
    /// The nested fields from the outermost down to `path` (the `_nested` chain).
    levels: Vec<String>,
    /// The `nested` query's inner query, limited to `path`'s elements.
    weight: Box<dyn Weight>,
    /// Elements skipped.
    from: usize,
    /// Elements shown.
    size: usize,
    /// `_source` of each element.
    source: SourceFilter,
}

fn bad(reason: String) -> SearchError {
    SearchError::bad_request("illegal_argument_exception", reason)
}

/// The `inner_hits` requests of the query, compiled for `searcher`. Only `nested` queries
/// outside other `nested` queries may ask (inner hits within inner hits are refused).
pub fn plan(
    spec: &QuerySpec,
    mapping: &Mapping,
    ctx: &QueryContext<'_>,
    searcher: &Searcher,
) -> Result<Vec<InnerHits>, SearchError> {
    let QuerySpec::Dsl(dsl) = spec else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    collect(dsl, false, &mut found)?;
    let mut plans = Vec::new();
    for (path, query, params) in found {
        let params = params
            .as_object()
            .ok_or_else(|| bad("[inner_hits] must be an object".into()))?;
        if let Some(key) = params
            .keys()
            .find(|k| !["name", "from", "size", "_source", "ignore_unmapped"].contains(&k.as_str()))
        {
            return Err(bad(format!(
                "[inner_hits] option [{key}] is not supported by CameoDB"
            )));
        }
        if !mapping.is_nested_path(&path) {
            continue;
        }
        let number = |key: &str, default: usize| match params.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "[inner_hits] [{key}] must be a non-negative integer"
                    ))
                }),
        };
        let (from, size) = (number("from", 0)?, number("size", DEFAULT_SIZE)?);
        if from
            .checked_add(size)
            .is_none_or(|w| w > MAX_INNER_RESULT_WINDOW)
        {
            return Err(bad(format!(
                "Inner result window is too large, the inner hit definition's [{path}]'s from + size must be less than or equal to: [{MAX_INNER_RESULT_WINDOW}] but was [{}]. This limit can be set by changing the [index.max_inner_result_window] index level setting.",
                from.saturating_add(size)
            )));
        }
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&path)
            .to_string();
        let query = cameodb_query::nested::inner_query(&path, &query, ctx)?;
        let weight = query.weight(EnableScoring::enabled_from_searcher(searcher))?;
        let mut levels = Vec::new();
        let mut level = Some(path.as_str());
        while let Some(current) = level {
            levels.insert(0, current.to_string());
            level = mapping.nested_parent(current);
        }
        plans.push(InnerHits {
            name,
            path: path.clone(),
            levels,
            weight,
            from,
            size,
            source: SourceFilter::default().with_body(params.get("_source"))?,
        });
    }
    Ok(plans)
}

/// Finds `nested` clauses with `inner_hits` in a query: (path, inner query, options).
fn collect(
    value: &Value,
    inside: bool,
    out: &mut Vec<(String, Value, Value)>,
) -> Result<(), SearchError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| collect(v, inside, out)),
        Value::Object(obj) => {
            for (key, body) in obj {
                let nested = (key == "nested")
                    .then_some(body)
                    .and_then(Value::as_object)
                    .filter(|b| b.get("path").is_some_and(Value::is_string));
                let Some(nested) = nested else {
                    collect(body, inside, out)?;
                    continue;
                };
                if let Some(options) = nested.get("inner_hits") {
                    if inside {
                        return Err(bad(
                            "[inner_hits] of a [nested] query inside another [nested] query are not supported by CameoDB".into(),
                        ));
                    }
                    let path = nested["path"].as_str().unwrap_or_default().to_string();
                    let query = nested.get("query").cloned().unwrap_or(json!({}));
                    out.push((path, query, options.clone()));
                }
                if let Some(query) = nested.get("query") {
                    collect(query, true, out)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What a search reads once per segment for every hit's inner hits.
#[derive(Default)]
pub struct Positions {
    /// Each level's documents, by segment and level.
    docs: HashMap<(u32, Level), Vec<DocId>>,
    /// Each plan's matching elements with their scores, by plan and segment.
    matches: HashMap<(usize, u32), Vec<(DocId, f32)>>,
}

impl Positions {
    fn of(
        &mut self,
        searcher: &Searcher,
        field_names: Field,
        segment: u32,
        level: Level,
    ) -> Result<&[DocId], SearchError> {
        let docs = match self.docs.entry((segment, level)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let reader = searcher.segment_reader(segment);
                let docs = level_docs(reader, field_names, &slot.key().1)?;
                slot.insert(docs)
            }
        };
        Ok(docs.as_slice())
    }

    /// The live elements of `segment` that plan number `which` matches, in order.
    fn matches(
        &mut self,
        searcher: &Searcher,
        plans: &[InnerHits],
        which: usize,
        segment: u32,
    ) -> Result<&[(DocId, f32)], SearchError> {
        let found = match self.matches.entry((which, segment)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => {
                let reader = searcher.segment_reader(segment);
                let mut found = Vec::new();
                if let Some(plan) = plans.get(which) {
                    let mut scorer = plan.weight.scorer(reader, 1.0)?;
                    let mut doc = scorer.doc();
                    while doc != TERMINATED {
                        if reader.alive_bitset().is_none_or(|a| a.is_alive(doc)) {
                            found.push((doc, scorer.score()));
                        }
                        doc = scorer.advance();
                    }
                }
                slot.insert(found)
            }
        };
        Ok(found.as_slice())
    }
}

/// Everything one hit's inner hits need besides the plans.
pub struct HitContext<'a> {
    /// The searcher the hit came from.
    pub searcher: &'a Searcher,
    /// The schema's `_field_names` field.
    pub field_names: Field,
    /// Where the hit is.
    pub address: DocAddress,
    /// The hit's whole `_source`.
    pub source: &'a Value,
    /// The hit's index and id.
    pub index: &'a str,
    /// The hit's `_id`.
    pub id: &'a str,
}

/// The `inner_hits` object of one hit.
pub fn for_hit(
    plans: &[InnerHits],
    hit: &HitContext<'_>,
    positions: &mut Positions,
) -> Result<Value, SearchError> {
    let segment = hit.address.segment_ord;
    let parent = hit.address.doc_id;
    let roots = positions.of(hit.searcher, hit.field_names, segment, Level::Root)?;
    // The block of this hit: after the previous top-level document, up to the hit.
    let start = roots
        .partition_point(|r| *r < parent)
        .checked_sub(1)
        .and_then(|i| roots.get(i))
        .map_or(0, |r| r + 1);
    let mut out = Map::new();
    for (which, plan) in plans.iter().enumerate() {
        let all = positions.matches(hit.searcher, plans, which, segment)?;
        let first = all.partition_point(|(d, _)| *d < start);
        let last = all.partition_point(|(d, _)| *d < parent);
        let mut matched = all[first..last].to_vec();
        let total = matched.len();
        let max_score = matched.iter().map(|(_, s)| *s).reduce(f32::max);
        matched.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut shown = Vec::new();
        for (doc, score) in matched.into_iter().skip(plan.from).take(plan.size) {
            let chain = place(plan, hit, positions, start, doc)?;
            let element = element_source(hit.source, &chain);
            let mut rendered = json!({
                "_index": hit.index,
                "_id": hit.id,
                "_nested": nested_json(&chain),
                "_score": score,
            });
            let wrapped = json!({ plan.path.clone(): element });
            if let Some(filtered) = plan.source.apply(wrapped) {
                rendered["_source"] = filtered.get(&plan.path).cloned().unwrap_or(json!({}));
            }
            shown.push(rendered);
        }
        out.insert(
            plan.name.clone(),
            json!({"hits": {
                "total": {"value": total, "relation": "eq"},
                "max_score": max_score,
                "hits": shown,
            }}),
        );
    }
    Ok(Value::Object(out))
}

/// The element's place: (field relative to its parent level, offset) from the outermost
/// nested level down to the element's own.
fn place(
    plan: &InnerHits,
    hit: &HitContext<'_>,
    positions: &mut Positions,
    start: DocId,
    doc: DocId,
) -> Result<Vec<(String, usize)>, SearchError> {
    let segment = hit.address.segment_ord;
    let mut chain = Vec::new();
    let mut current = doc;
    for k in (0..plan.levels.len()).rev() {
        let mine = positions
            .of(
                hit.searcher,
                hit.field_names,
                segment,
                Level::Path(plan.levels[k].clone()),
            )?
            .to_vec();
        // Siblings sit between the previous document of the level above and this one.
        let (lower, holder) = if k == 0 {
            (start, hit.address.doc_id)
        } else {
            let above = positions.of(
                hit.searcher,
                hit.field_names,
                segment,
                Level::Path(plan.levels[k - 1].clone()),
            )?;
            let holder = holder_of(above, current).unwrap_or(hit.address.doc_id);
            let before = above[..above.partition_point(|d| *d < holder)]
                .last()
                .map_or(start, |d| (d + 1).max(start));
            (before, holder)
        };
        let offset = mine
            .iter()
            .filter(|d| **d >= lower && **d < current)
            .count();
        let field = match k {
            0 => plan.levels[0].clone(),
            _ => plan.levels[k]
                .strip_prefix(&format!("{}.", plan.levels[k - 1]))
                .unwrap_or(&plan.levels[k])
                .to_string(),
        };
        chain.push((field, offset));
        current = holder;
    }
    chain.reverse();
    Ok(chain)
}

fn nested_json(chain: &[(String, usize)]) -> Value {
    chain
        .iter()
        .rev()
        .fold(Value::Null, |inner, (field, offset)| {
            let mut level = json!({"field": field, "offset": offset});
            if !inner.is_null() {
                level["_nested"] = inner;
            }
            level
        })
}

/// The element's part of the source: each level's field, then its offset-th object.
fn element_source(source: &Value, chain: &[(String, usize)]) -> Value {
    let mut current = source;
    for (field, offset) in chain {
        let Some(value) = crate::source_filter::values_at(current, field)
            .into_iter()
            .next()
        else {
            return json!({});
        };
        let objects: Vec<&Value> = match value {
            Value::Array(items) => items.iter().filter(|v| v.is_object()).collect(),
            object @ Value::Object(_) => vec![object],
            _ => Vec::new(),
        };
        match objects.get(*offset) {
            Some(element) => current = element,
            None => return json!({}),
        }
    }
    current.clone()
}
