//! One store's part of a search: the query built under the store's mapping, the total, the top
//! `from + size` hits with their sort keys, sources, highlights and fields, and the mergeable
//! aggregation result. What a node sends the coordinator is a [`Partial`] of these.

use cameodb_query::{QueryContext, query_string, translate};
use cameodb_storage::{Snapshot, Store};
use serde_json::{Map, Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, EnableScoring, Occur, Query};
use tantivy::{DocAddress, Searcher};

use crate::error::SearchError;
use crate::request::{QuerySpec, SearchSpec};
use crate::sorting::{self, RankKey};
use crate::{aggregations, highlight};

/// One hit from one index, before merging. Serializable: a node of a cluster answers the
/// coordinator with its top hits.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// The index it was found in.
    pub index: String,
    /// Its `_id`.
    pub id: String,
    /// Its score (NaN when sorted by fields without `_score`).
    pub score: f32,
    /// The rendered `sort` values of the hit.
    pub sort: Option<Value>,
    /// Sort key, for merging hits of several indexes.
    pub rank: Option<RankKey>,
    /// `_source`, filtered as requested.
    pub source: Option<Value>,
    /// `_version`.
    pub version: u64,
    /// `_seq_no`.
    pub seq_no: u64,
    /// Highlighted fragments, when asked.
    pub highlight: Option<Value>,
    /// `fields`, when asked.
    pub fields: Option<Value>,
    /// How its score was computed (`explain: true`), under the statistics the score used.
    #[serde(default)]
    pub explanation: Option<Value>,
    /// Its value of the `collapse` field (the coordinator keeps one hit per value).
    #[serde(default)]
    pub collapse: Option<Value>,
    /// The `inner_hits` of its `nested` queries, rendered.
    #[serde(default)]
    pub inner_hits: Option<Value>,
}

/// The paths hits list under `fields`: those `fields` names, and the stored fields
/// `stored_fields` matches.
fn listed_fields(spec: &SearchSpec, mapping: &cameodb_schema::mapping::Mapping) -> Vec<String> {
    let mut out = spec.fields.clone();
    if spec.stored_fields.is_empty() {
        return out;
    }
    for (path, field) in &mapping.properties {
        let stored = field.accepted.get("store") == Some(&Value::Bool(true));
        let named = spec
            .stored_fields
            .iter()
            .any(|p| p == path || crate::wildcard_match(p, path));
        if stored && named && !out.contains(path) {
            out.push(path.clone());
        }
    }
    out
}

/// `fields` of a hit: every requested path's values, as arrays (as Elasticsearch lists them).
fn field_values(source: &Value, paths: &[String]) -> Value {
    let mut out = Map::new();
    for path in paths {
        let nodes = crate::source_filter::values_at(source, path);
        let mut values = Vec::new();
        for node in nodes {
            match node {
                Value::Array(items) => values.extend(
                    items
                        .iter()
                        .filter(|v| !v.is_object() && !v.is_null())
                        .cloned(),
                ),
                Value::Null | Value::Object(_) => {}
                other => values.push(other.clone()),
            }
        }
        if !values.is_empty() {
            out.insert(path.clone(), Value::Array(values));
        }
    }
    Value::Object(out)
}

/// A tantivy explanation in Elasticsearch's shape: `value`, `description`, `details`.
fn explain_json(explanation: tantivy::query::Explanation) -> Value {
    fn reshape(value: Value) -> Value {
        let details = value
            .get("details")
            .and_then(Value::as_array)
            .map(|d| d.iter().cloned().map(reshape).collect::<Vec<_>>())
            .unwrap_or_default();
        let mut description = value
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(context) = value.get("context").and_then(Value::as_array) {
            for line in context.iter().filter_map(Value::as_str) {
                description.push_str(", ");
                description.push_str(line);
            }
        }
        json!({"value": value.get("value").cloned().unwrap_or(json!(0.0)), "description": description, "details": details})
    }
    reshape(serde_json::to_value(&explanation).unwrap_or_default())
}

/// One index's mergeable aggregation result, with the request it answers.
pub type AggPart = (
    tantivy::aggregation::agg_req::Aggregations,
    tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults,
);

/// What one node found for a search, before merging: everything the coordinator needs to
/// rank, page, count and aggregate across nodes.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Partial {
    /// Matching documents.
    pub total: usize,
    /// The node's top `from + size` hits of every index searched.
    pub hits: Vec<Hit>,
    /// Mergeable aggregation results, with the request they answer.
    pub aggs: Vec<AggPart>,
    /// Indexes searched (Elasticsearch's shard count, one shard per index per node).
    pub shards: usize,
    /// The documents this node's `top_hits` / `top_metrics` candidates name, read from the
    /// snapshot the search read (the coordinator shows the winners from these).
    #[serde(default)]
    pub agg_hits: Vec<Hit>,
    /// This node's completion suggestions.
    #[serde(default)]
    pub suggest: Vec<crate::suggest::SuggestPart>,
}

/// The tantivy query of `spec` under `store`'s mapping.
pub fn build_query(store: &Store, spec: &QuerySpec) -> Result<Box<dyn Query>, SearchError> {
    let mapping = store.mapping();
    let ctx = QueryContext::new(&mapping, store.fields(), store.index().tokenizers());
    // Nested elements' hidden documents never answer a search themselves.
    let query = match spec {
        QuerySpec::All => Box::new(AllQuery),
        QuerySpec::Dsl(dsl) => translate(dsl, &ctx)?,
        QuerySpec::Lucene {
            text,
            default_field,
            and,
        } => {
            let fields = default_field
                .as_ref()
                .filter(|f| f.as_str() != "*")
                .map(|f| vec![f.clone()]);
            query_string(text, fields.as_deref(), *and, &ctx)?
        }
    };
    Ok(cameodb_query::nested::top_level(query, &ctx))
}

/// Runs the search on one index: the total and its top `from + size` hits.
pub fn search_store(
    store: &Store,
    snapshot: &Snapshot,
    index: &str,
    spec: &SearchSpec,
    stats: Option<&crate::dfs::IndexStats>,
    ranges: Option<&std::sync::Arc<crate::tokens::TokenRanges>>,
) -> Result<StoreAnswer, SearchError> {
    let searcher: &Searcher = snapshot;
    let query = crate::tokens::restrict(build_query(store, &spec.query)?, ranges);
    let scoring = stats.map(|stats| crate::dfs::GlobalScoring {
        stats,
        local: searcher,
        keys: crate::dfs::FieldKeys::new(store, &store.mapping()),
    });
    let provider = scoring
        .as_ref()
        .map(|s| s as &dyn tantivy::query::Bm25StatisticsProvider);
    let mut agg_hits = Vec::new();
    let aggs = match &spec.aggs {
        Some(request) => {
            // With a `global` aggregation every document is collected, the others scoped to
            // the query by a filter.
            let (prepared, everything) = if aggregations::has_global(request) {
                let scope = spec.query.to_dsl();
                let prepared =
                    aggregations::prepare_scoped(request, &store.mapping(), Some(&scope))?;
                let all = crate::tokens::restrict(Box::new(AllQuery), ranges);
                (prepared, Some(all))
            } else {
                (aggregations::prepare(request, &store.mapping())?, None)
            };
            let agg_query = everything.as_deref().unwrap_or(query.as_ref());
            if let Some(account) = cameodb_memory::current() {
                crate::bucket_budget::check(searcher, agg_query, request, account.limit())?;
            }
            let part = aggregations::collect(
                searcher,
                agg_query,
                prepared.clone(),
                store.index().tokenizers(),
                aggregations::value_sources(request, &store.mapping())?,
            )?;
            if crate::top_hits::present(request) {
                let scope = everything.is_some().then(|| spec.query.to_dsl());
                agg_hits = candidates(store, snapshot, index, request, scope.as_ref(), &part)?;
            }
            Some((prepared, part))
        }
        None => None,
    };
    // `post_filter` narrows the hits (and their total) after the aggregations saw every match;
    // it adds nothing to scores.
    let query: Box<dyn Query> = match &spec.post_filter {
        Some(filter) => {
            let filter = build_query(store, &QuerySpec::Dsl(filter.clone()))?;
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, query),
                (Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))),
            ]))
        }
        None => query,
    };
    let limit = spec.window();
    type Ranked = (
        f32,
        Option<(Option<Value>, RankKey)>,
        DocAddress,
        Option<Value>,
    );
    let by_fields = !sorting::by_score_only(&spec.sort)
        || spec.search_after.is_some()
        || spec.collapse.is_some();
    let (total, ranked): (usize, Vec<Ranked>) = match () {
        () if by_fields => {
            let mut keys = if spec.sort.is_empty() {
                sorting::parse(&json!("_score"))?
            } else {
                spec.sort.clone()
            };
            // The collapse field ranks last, so each hit's key carries its group.
            if let Some(field) = &spec.collapse {
                crate::collapse::check_field(field, &store.mapping())?;
                keys.push(sorting::SortKey {
                    field: field.clone(),
                    descending: false,
                    missing_first: false,
                    geo: None,
                    nested: None,
                });
            }
            let plan = sorting::plan(
                &keys,
                &store.mapping(),
                spec.search_after.as_ref(),
                spec.shard,
            )?;
            let rank = |limit| sorting::top(searcher, query.as_ref(), &plan, limit, provider);
            let (total, top) = match spec.collapse {
                Some(_) => crate::collapse::top_groups(limit, rank)?,
                None => rank(limit)?,
            };
            let shows_sort = !spec.sort.is_empty() || spec.search_after.is_some();
            let score_key = keys.iter().position(|k| k.field == "_score");
            let ranked = top
                .into_iter()
                .map(|(key, addr)| {
                    let score = match score_key.map(|i| &key.values[i]) {
                        Some(sorting::SortValue::Number(s)) => *s as f32,
                        _ => f32::NAN,
                    };
                    let mut shown = sorting::render(&plan, &key);
                    let group = match (&spec.collapse, shown.as_array_mut()) {
                        (Some(_), Some(values)) => values.pop(),
                        _ => None,
                    };
                    let shown = shows_sort.then_some(shown);
                    (score, Some((shown, key)), addr, group)
                })
                .collect();
            (total, ranked)
        }
        () if limit == 0 => (searcher.search(query.as_ref(), &Count)?, Vec::new()),
        () => {
            let collector = (Count, TopDocs::with_limit(limit).order_by_score());
            let (total, top) = match provider {
                Some(p) => {
                    searcher.search_with_statistics_provider(query.as_ref(), &collector, p)?
                }
                None => searcher.search(query.as_ref(), &collector)?,
            };
            (
                total,
                top.into_iter().map(|(s, a)| (s, None, a, None)).collect(),
            )
        }
    };
    let addresses: Vec<DocAddress> = ranked.iter().map(|(_, _, a, _)| *a).collect();
    // Each hit's source is the version that matched, whatever was written since.
    let docs = store.snapshot_docs(snapshot, &addresses)?;
    let mut hits = Vec::with_capacity(ranked.len());
    let mut highlighter = match &spec.highlight {
        Some(request) => Some(highlight::Highlighter::new(
            request,
            store,
            searcher,
            query.as_ref(),
        )?),
        None => None,
    };
    let wanted_fields = listed_fields(spec, &store.mapping());
    let inner_plans = {
        let mapping = store.mapping();
        let ctx = QueryContext::new(&mapping, store.fields(), store.index().tokenizers());
        crate::inner_hits::plan(&spec.query, &mapping, &ctx, searcher)?
    };
    let mut positions = crate::inner_hits::Positions::default();
    // `explain`: the query's weight under the same statistics as the scores.
    let explainer = if spec.explain {
        let scoring = match provider {
            Some(p) => EnableScoring::enabled_from_statistics_provider(p, searcher),
            None => EnableScoring::enabled_from_searcher(searcher),
        };
        Some(query.weight(scoring)?)
    } else {
        None
    };
    for ((score, sort, address, group), (key, doc)) in ranked.into_iter().zip(docs) {
        let explanation = match &explainer {
            Some(weight) => Some(explain_json(
                weight.explain(searcher.segment_reader(address.segment_ord), address.doc_id)?,
            )),
            None => None,
        };
        let full = doc.source_json()?;
        let inner_hits = match inner_plans.is_empty() {
            true => None,
            false => {
                let context = crate::inner_hits::HitContext {
                    searcher,
                    field_names: store.fields().field_names,
                    address,
                    source: &full,
                    index,
                    id: key.id.as_str(),
                };
                Some(crate::inner_hits::for_hit(
                    &inner_plans,
                    &context,
                    &mut positions,
                )?)
            }
        };
        let highlighted = highlighter.as_mut().and_then(|h| h.highlight(&full));
        let mut fields = (!wanted_fields.is_empty()).then(|| field_values(&full, &wanted_fields));
        if let (Some(field), Some(value)) =
            (&spec.collapse, group.as_ref().filter(|v| !v.is_null()))
        {
            let listed = fields.get_or_insert_with(|| json!({}));
            listed[field.as_str()] = json!([value]);
        }
        let source = spec.source.apply(full);
        hits.push(Hit {
            index: index.to_string(),
            id: key.id.to_string(),
            score,
            sort: sort.as_ref().and_then(|(v, _)| v.clone()),
            rank: sort.map(|(_, k)| k),
            source,
            version: doc.version,
            seq_no: doc.stamp.hlc,
            highlight: highlighted,
            fields,
            explanation,
            collapse: group,
            inner_hits,
        });
    }
    let suggest = match &spec.suggest {
        Some(request) => crate::suggest::run(store, snapshot, index, request, &spec.source)?,
        None => Vec::new(),
    };
    Ok(StoreAnswer {
        total,
        hits,
        aggs,
        agg_hits,
        suggest,
    })
}

/// One index's part of a search.
pub struct StoreAnswer {
    /// Matching documents.
    pub total: usize,
    /// The top `from + size` hits.
    pub hits: Vec<Hit>,
    /// The mergeable aggregation result.
    pub aggs: Option<AggPart>,
    /// The documents its `top_hits` candidates name (see [`Partial::agg_hits`]).
    pub agg_hits: Vec<Hit>,
    /// Its completion suggestions.
    pub suggest: Vec<crate::suggest::SuggestPart>,
}

/// The documents named by the `top_hits` / `top_metrics` candidates of this index's `part`,
/// read from `snapshot`: the part is finished as if alone, with every bucket kept.
fn candidates(
    store: &Store,
    snapshot: &Snapshot,
    index: &str,
    request: &Value,
    scope: Option<&Value>,
    part: &tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults,
) -> Result<Vec<Hit>, SearchError> {
    let widened =
        aggregations::prepare_scoped(&crate::top_hits::widened(request), &store.mapping(), scope)?;
    let local = aggregations::finish(vec![part.clone()], widened)?;
    let searcher: &Searcher = snapshot;
    let mut addresses = Vec::new();
    for id in crate::top_hits::wanted_ids(&local) {
        let term = tantivy::Term::from_field_text(store.fields().id, &id);
        let query = tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::Basic);
        let found = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        addresses.extend(found.into_iter().map(|(_, address)| address));
    }
    let docs = store.snapshot_docs(snapshot, &addresses)?;
    docs.into_iter()
        .map(|(key, doc)| {
            Ok(Hit {
                index: index.to_string(),
                id: key.id.to_string(),
                score: f32::NAN,
                sort: None,
                rank: None,
                source: Some(doc.source_json()?),
                version: doc.version,
                seq_no: doc.stamp.hlc,
                highlight: None,
                fields: None,
                explanation: None,
                collapse: None,
                inner_hits: None,
            })
        })
        .collect()
}
