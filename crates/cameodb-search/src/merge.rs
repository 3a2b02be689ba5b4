//! Partial results of several nodes merged into Elasticsearch's search answer: hits ranked by
//! score or sort key, paged by `from`/`size`, totals, `_shards` and aggregations.

use std::cmp::Ordering;
use std::time::Instant;

use cameodb_storage::PRIMARY_TERM;
use serde_json::{Value, json};

use crate::aggregations;
use crate::error::SearchError;
use crate::execute::{AggPart, Hit, Partial};
use crate::request::SearchSpec;

fn compare_hits(a: &Hit, b: &Hit) -> Ordering {
    match (&a.rank, &b.rank) {
        (Some(x), Some(y)) => y.rank_cmp(x),
        _ => b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal),
    }
}

/// Shard accounting of a merged answer.
#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    /// Shards asked.
    pub total: usize,
    /// Shards that answered.
    pub successful: usize,
    /// Why the others did not (Elasticsearch's `_shards.failures` entries).
    pub failures: Vec<Value>,
    /// A node missed the search's `timeout` (Elasticsearch's `timed_out`).
    pub timed_out: bool,
}

/// Merges partial results (one per node) into Elasticsearch's search answer.
pub fn render(
    partials: Vec<Partial>,
    spec: &SearchSpec,
    shards: ShardReport,
    started: Instant,
) -> Result<Value, SearchError> {
    let mut total = 0usize;
    let mut hits: Vec<Hit> = Vec::new();
    let mut agg_parts: Vec<AggPart> = Vec::new();
    let mut agg_hits: Vec<Hit> = Vec::new();
    let mut suggested = Vec::new();
    for partial in partials {
        total += partial.total;
        hits.extend(partial.hits);
        agg_parts.extend(partial.aggs);
        agg_hits.extend(partial.agg_hits);
        suggested.extend(partial.suggest);
    }
    hits.sort_by(compare_hits);
    if spec.collapse.is_some() {
        hits = crate::collapse::first_of_each(hits, |hit| {
            hit.collapse
                .as_ref()
                .map_or(String::new(), Value::to_string)
        });
    }
    let page: Vec<Value> = hits
        .into_iter()
        .skip(spec.from)
        .take(spec.size)
        .map(|hit| {
            let score = if hit.score.is_nan() {
                Value::Null
            } else {
                json!(hit.score)
            };
            let mut out = json!({"_index": hit.index, "_id": hit.id, "_score": score});
            if let Some(source) = hit.source {
                out["_source"] = source;
            }
            if let Some(sort) = hit.sort {
                out["sort"] = sort;
            }
            if let Some(h) = hit.highlight {
                out["highlight"] = h;
            }
            if let Some(f) = hit.fields {
                out["fields"] = f;
            }
            if let Some(explanation) = hit.explanation {
                out["_explanation"] = explanation;
            }
            if let Some(inner) = hit.inner_hits {
                out["inner_hits"] = inner;
            }
            if spec.version {
                out["_version"] = json!(hit.version);
            }
            if spec.seq_no {
                out["_seq_no"] = json!(hit.seq_no);
                out["_primary_term"] = json!(PRIMARY_TERM);
            }
            out
        })
        .collect();
    let max_score = page
        .iter()
        .filter_map(|h| h["_score"].as_f64())
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    let total_json = match spec.track_total {
        None => Value::Null,
        Some(limit) if total > limit => {
            if spec.rest_total_as_int {
                json!(limit)
            } else {
                json!({"value": limit, "relation": "gte"})
            }
        }
        Some(_) if spec.rest_total_as_int => json!(total),
        Some(_) => json!({"value": total, "relation": "eq"}),
    };
    let mut body = json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": shards.timed_out,
        "_shards": shards_json(&shards),
        "hits": {"total": total_json, "max_score": max_score, "hits": page},
    });
    if spec.track_total.is_none()
        && let Some(hits) = body["hits"].as_object_mut()
    {
        hits.remove("total");
    }
    if let Some(request) = &spec.suggest {
        body["suggest"] = crate::suggest::render(request, suggested)?;
    }
    if let Some((request, _)) = agg_parts.first() {
        let request = request.clone();
        let parts = agg_parts.into_iter().map(|(_, part)| part).collect();
        let mut result = aggregations::finish(parts, request)?;
        crate::top_hits::fill(&mut result, &agg_hits, total)?;
        if let Some(raw) = &spec.aggs {
            crate::pipeline::apply(raw, &mut result)?;
        }
        if spec.typed_keys
            && let Some(raw) = &spec.aggs
        {
            aggregations::typed_keys(raw, &mut result);
        }
        body["aggregations"] = result;
    }
    Ok(body)
}

/// The `_shards` object.
pub fn shards_json(shards: &ShardReport) -> Value {
    let mut out = json!({
        "total": shards.total,
        "successful": shards.successful,
        "skipped": 0,
        "failed": shards.total - shards.successful.min(shards.total),
    });
    if !shards.failures.is_empty() {
        out["failures"] = Value::Array(shards.failures.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::request::QuerySpec;
    use crate::sorting::{RankKey, SortValue};

    fn spec(from: usize, size: usize) -> SearchSpec {
        SearchSpec {
            shard: 0,
            from,
            size,
            ..SearchSpec::count(QuerySpec::All)
        }
    }

    fn hit(n: usize, score: f32, rank: Option<RankKey>) -> Hit {
        Hit {
            index: "i".into(),
            id: n.to_string(),
            score,
            sort: rank.as_ref().map(|key| json!(key.values)),
            rank,
            source: None,
            version: 1,
            seq_no: n as u64,
            highlight: None,
            fields: None,
            explanation: None,
            collapse: None,
            inner_hits: None,
        }
    }

    /// What a page shows of each hit's rank: its score and its sort values (ids may tie).
    fn page(answer: &Value) -> Vec<(Value, Value)> {
        answer["hits"]["hits"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|h| (h["_score"].clone(), h["sort"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Each node keeps only its own top `from + size`, as `search_store` does; the merge of
    /// those must show the page one node holding every hit would show.
    fn merged_equals_one_node(hits: Vec<(Hit, usize)>, nodes: usize, from: usize, size: usize) {
        let spec = spec(from, size);
        let mut per_node: Vec<Vec<Hit>> = (0..nodes).map(|_| Vec::new()).collect();
        let mut everything = Vec::new();
        for (hit, node) in hits {
            everything.push(hit.clone());
            per_node[node % nodes].push(hit);
        }
        let partials = per_node
            .into_iter()
            .map(|mut hits| {
                let total = hits.len();
                hits.sort_by(compare_hits);
                hits.truncate(spec.window());
                Partial {
                    total,
                    hits,
                    aggs: Vec::new(),
                    shards: 1,
                    agg_hits: Vec::new(),
                    suggest: Vec::new(),
                }
            })
            .collect();
        let one = Partial {
            total: everything.len(),
            hits: everything,
            aggs: Vec::new(),
            shards: 1,
            agg_hits: Vec::new(),
            suggest: Vec::new(),
        };
        let merged =
            render(partials, &spec, ShardReport::default(), Instant::now()).expect("renders");
        let single =
            render(vec![one], &spec, ShardReport::default(), Instant::now()).expect("renders");
        assert_eq!(page(&merged), page(&single));
        assert_eq!(merged["hits"]["total"], single["hits"]["total"]);
    }

    proptest! {
        #[test]
        fn top_k_by_score_merges_like_one_node(
            scores in prop::collection::vec((0u16..200, 0usize..4), 0..60),
            nodes in 1usize..5,
            from in 0usize..15,
            size in 0usize..15,
        ) {
            let hits = scores
                .into_iter()
                .enumerate()
                .map(|(n, (score, node))| (hit(n, f32::from(score) / 8.0, None), node))
                .collect();
            merged_equals_one_node(hits, nodes, from, size);
        }

        #[test]
        fn top_k_by_sort_keys_merges_like_one_node(
            keys in prop::collection::vec(
                ((0i32..20, prop::option::of("[a-c]{0,2}")), 0usize..4),
                0..60,
            ),
            descending in (any::<bool>(), any::<bool>()),
            nodes in 1usize..5,
            from in 0usize..15,
            size in 0usize..15,
        ) {
            let directions = [descending.0, descending.1];
            let hits = keys
                .into_iter()
                .enumerate()
                .map(|(n, ((number, text), node))| {
                    let values = vec![
                        SortValue::Number(f64::from(number)),
                        text.map_or(SortValue::Missing, SortValue::Text),
                    ];
                    let key = RankKey::for_test(values, &directions);
                    (hit(n, f32::NAN, Some(key)), node)
                })
                .collect();
            merged_equals_one_node(hits, nodes, from, size);
        }
    }

    #[test]
    fn shards_report_failures_and_never_underflows() {
        let report = ShardReport {
            total: 2,
            successful: 3,
            failures: vec![json!({"reason": "x"})],
            timed_out: false,
        };
        let out = shards_json(&report);
        assert_eq!(out["failed"], 0);
        assert_eq!(out["failures"][0]["reason"], "x");
    }
}
