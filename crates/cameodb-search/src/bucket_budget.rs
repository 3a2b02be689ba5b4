//! How many buckets a nested aggregation will create, bounded before it runs.
//!
//! tantivy gives every bucket of an aggregation level with bucket sub-aggregations collectors
//! of its own, and grows them inside single calls that nothing can interrupt: with four nested
//! `terms` on a multi-valued field of 8,000 movies, one document added 4.7 GB. The memory
//! breaker cannot stop such a step, so the work is sized first: one pass over the matching
//! documents counts, for every level that has bucket sub-aggregations, an upper bound of the
//! buckets it creates (a document with several values opens a bucket per value, and a bucket
//! per value again under each of them); more than the request's memory allows is refused.

use cameodb_schema::fields::EXACT_FIELD;
use serde_json::Value;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{ColumnIndex, DynamicColumn};
use tantivy::query::Query;
use tantivy::{DocId, Score, Searcher, SegmentOrdinal, SegmentReader};

use crate::error::SearchError;

/// Bytes one counted bucket may cost tantivy at its peak, rounded up from measurements on
/// 8,000 movies (peak resident memory over counted buckets): `Cast > Cast > Cast` 2.9 GB for
/// 2.78 M (1.05 KB), `Cast > Writer > Director` of size 10,000 829 MB for 323 k (2.6 KB),
/// six single-valued levels 125 MB for 126 k (1.0 KB). It sizes the limit on such buckets from
/// the request's memory limit: 262,144 at the default 1 GB.
pub const BYTES_PER_PARENT_BUCKET: u64 = 4096;

/// Aggregation kinds that open buckets.
const BUCKET_KINDS: &[&str] = &["terms", "range", "histogram", "date_histogram"];

/// One bucket aggregation of the request tree, flattened (parents before children).
#[derive(Clone, Debug)]
struct Level {
    /// The aggregated field's path.
    field: String,
    /// Buckets per value: the number of ranges of a `range` aggregation, else 1.
    per_value: u64,
    /// The enclosing bucket aggregation, if any.
    parent: Option<usize>,
    /// Whether it has bucket sub-aggregations (then its buckets are costly, and counted).
    counted: bool,
}

/// The bucket levels of an `aggs` request (already validated by `aggregations::prepare`).
fn levels(aggs: &Value) -> Vec<Level> {
    let mut out = Vec::new();
    walk(aggs, None, &mut out);
    out
}

fn walk(aggs: &Value, parent: Option<usize>, out: &mut Vec<Level>) {
    let Some(aggs) = aggs.as_object() else {
        return;
    };
    for spec in aggs.values().filter_map(Value::as_object) {
        let subs = spec.get("aggs").or_else(|| spec.get("aggregations"));
        let Some((kind, body)) = spec
            .iter()
            .find(|(k, _)| BUCKET_KINDS.contains(&k.as_str()))
        else {
            continue;
        };
        let Some(field) = body.get("field").and_then(Value::as_str) else {
            continue;
        };
        let per_value = match kind.as_str() {
            "range" => body["ranges"]
                .as_array()
                .map_or(1, |r| u64::try_from(r.len()).unwrap_or(u64::MAX)),
            _ => 1,
        };
        let index = out.len();
        out.push(Level {
            field: field.to_string(),
            per_value,
            parent,
            counted: false,
        });
        if let Some(subs) = subs {
            let before = out.len();
            walk(subs, Some(index), out);
            out[index].counted = out[before..].iter().any(|l| l.parent == Some(index));
        }
    }
}

/// Refuses `aggs` when it would create more costly buckets over the documents matching `query`
/// than `memory_limit` allows.
pub fn check(
    searcher: &Searcher,
    query: &dyn Query,
    aggs: &Value,
    memory_limit: u64,
) -> Result<(), SearchError> {
    let levels = levels(aggs);
    if !levels.iter().any(|l| l.counted) {
        return Ok(());
    }
    let allowed = (memory_limit / BYTES_PER_PARENT_BUCKET).max(1);
    let counted = searcher.search(query, &BucketCounter { levels, allowed })?;
    if counted > allowed {
        return Err(SearchError::bad_request(
            "too_many_buckets_exception",
            format!(
                "Trying to create too many buckets: the nested aggregation would open up to [{}] buckets that carry sub-aggregations, more than the [{allowed}] one request's memory allows ([indices.breaker.request.limit] at about {BYTES_PER_PARENT_BUCKET} bytes each). Nest fewer bucket aggregations, or aggregate fewer documents.",
                if counted == u64::MAX {
                    "unbounded".to_string()
                } else {
                    counted.to_string()
                }
            ),
        ));
    }
    Ok(())
}

/// Counts the costly buckets over the matching documents, stopping past `allowed`.
struct BucketCounter {
    levels: Vec<Level>,
    allowed: u64,
}

impl Collector for BucketCounter {
    type Fruit = u64;
    type Child = SegmentBucketCounter;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentBucketCounter> {
        let mut columns = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            let mut indexes = Vec::new();
            let path = format!("{EXACT_FIELD}.{}", level.field);
            for handle in reader.fast_fields().dynamic_column_handles(&path)? {
                indexes.push(column_index(handle.open()?));
            }
            columns.push(indexes);
        }
        Ok(SegmentBucketCounter {
            levels: self.levels.clone(),
            columns,
            products: vec![0; self.levels.len()],
            total: 0,
            allowed: self.allowed,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, counts: Vec<u64>) -> tantivy::Result<u64> {
        Ok(counts.into_iter().fold(0, u64::saturating_add))
    }
}

fn column_index(column: DynamicColumn) -> ColumnIndex {
    match column {
        DynamicColumn::Bool(c) => c.index,
        DynamicColumn::I64(c) => c.index,
        DynamicColumn::U64(c) => c.index,
        DynamicColumn::F64(c) => c.index,
        DynamicColumn::IpAddr(c) => c.index,
        DynamicColumn::DateTime(c) => c.index,
        DynamicColumn::Bytes(c) => c.ords().index.clone(),
        DynamicColumn::Str(c) => c.ords().index.clone(),
    }
}

/// One segment's count.
struct SegmentBucketCounter {
    levels: Vec<Level>,
    /// The columns (one per type the path was indexed as) of each level's field.
    columns: Vec<Vec<ColumnIndex>>,
    /// Buckets the current document opens at each level (scratch).
    products: Vec<u64>,
    /// Costly buckets counted so far.
    total: u64,
    /// Past this, counting stops: the answer is "too many".
    allowed: u64,
}

impl SegmentCollector for SegmentBucketCounter {
    type Fruit = u64;

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.total > self.allowed {
            return;
        }
        for (i, level) in self.levels.iter().enumerate() {
            let values: u64 = self.columns[i]
                .iter()
                .map(|index| u64::try_from(index.value_row_ids(doc).len()).unwrap_or(u64::MAX))
                .sum();
            let above = level.parent.map_or(1, |p| self.products[p]);
            let opened = above.saturating_mul(values).saturating_mul(level.per_value);
            self.products[i] = opened;
            if level.counted {
                self.total = self.total.saturating_add(opened);
            }
        }
    }

    fn harvest(self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_levels_with_bucket_sub_aggregations_are_counted() {
        let aggs = json!({
            "genres": {"terms": {"field": "g"}, "aggs": {
                "years": {"histogram": {"field": "y", "interval": 10}, "aggs": {
                    "avg": {"avg": {"field": "r"}}
                }},
                "ranges": {"range": {"field": "r", "ranges": [{"to": 1}, {"from": 1}]}}
            }},
            "flat": {"terms": {"field": "f"}, "aggs": {"max": {"max": {"field": "r"}}}}
        });
        let levels = levels(&aggs);
        let summary: Vec<(&str, Option<usize>, bool, u64)> = levels
            .iter()
            .map(|l| (l.field.as_str(), l.parent, l.counted, l.per_value))
            .collect();
        assert_eq!(
            summary,
            [
                ("g", None, true, 1),
                ("y", Some(0), false, 1),
                ("r", Some(0), false, 2),
                ("f", None, false, 1),
            ]
        );
    }
}
