//! Sorting by fields: several keys, each ascending or descending with missing values first or
//! last, `_score` and `_doc` among them, and `search_after`.
//!
//! tantivy's ready-made field sorts resolve only schema field names, while every mapped field
//! lives under a path of the `_exact` JSON field; so each document's sort key is computed from
//! the fast columns its paths resolve to, and ranked with `TopDocs::tweak_score`.

use std::cmp::Ordering;
use std::sync::Arc;

use cameodb_query::NumericColumn;
use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::{FieldType, Mapping};
use serde_json::{Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::Query;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentReader};

use crate::error::SearchError;

/// One requested sort key.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// Field path, `_score`, `_doc` or `_shard_doc`.
    pub field: String,
    /// Direction.
    pub descending: bool,
    /// `missing: _first` (default `_last`, in either direction).
    pub missing_first: bool,
    /// A `_geo_distance` key: distances from an origin to the points of `field`.
    #[serde(default)]
    pub geo: Option<crate::geo_sort::GeoSort>,
    /// The `nested` context of a field of nested elements.
    #[serde(default)]
    pub nested: Option<crate::nested_sort::NestedSort>,
}

/// Parses Elasticsearch's `sort` (a string, `field:order`, an object or an array of them).
pub fn parse(value: &Value) -> Result<Vec<SortKey>, SearchError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items.into_iter().map(parse_one).collect()
}

fn key(field: &str, order: Option<&str>, missing: Option<&Value>) -> Result<SortKey, SearchError> {
    let descending = match order {
        None => field == "_score",
        Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(SearchError::parse(format!(
                "[sort] unknown order [{other}]"
            )));
        }
    };
    let missing_first = match missing {
        None => false,
        Some(Value::String(s)) if s == "_last" => false,
        Some(Value::String(s)) if s == "_first" => true,
        Some(other) => {
            return Err(SearchError::parse(format!(
                "[sort] missing must be _first or _last, got [{other}]"
            )));
        }
    };
    Ok(SortKey {
        geo: None,
        nested: None,
        field: field.to_string(),
        descending,
        missing_first,
    })
}

fn parse_one(item: &Value) -> Result<SortKey, SearchError> {
    match item {
        Value::String(s) => match s.split_once(':') {
            Some((field, order)) => key(field, Some(order), None),
            None => key(s, None, None),
        },
        Value::Object(map) if map.len() == 1 && map.contains_key("_geo_distance") => {
            match &map["_geo_distance"] {
                Value::Object(body) => crate::geo_sort::parse(body),
                _ => Err(SearchError::parse("[_geo_distance] must be an object")),
            }
        }
        Value::Object(map) if map.len() == 1 => {
            let (field, spec) = map
                .iter()
                .next()
                .ok_or_else(|| SearchError::parse("[sort] is empty"))?;
            match spec {
                Value::String(order) => key(field, Some(order), None),
                Value::Object(opts) => {
                    if let Some(unknown) = opts.keys().find(|k| {
                        !["order", "missing", "unmapped_type", "nested", "mode"]
                            .contains(&k.as_str())
                    }) {
                        return Err(SearchError::parse(format!(
                            "[sort] option [{unknown}] is not supported"
                        )));
                    }
                    let mut parsed = key(
                        field,
                        opts.get("order").and_then(Value::as_str),
                        opts.get("missing"),
                    )?;
                    parsed.nested = crate::nested_sort::parse(field, opts, parsed.descending)?;
                    Ok(parsed)
                }
                _ => Err(SearchError::parse("[sort] malformed")),
            }
        }
        _ => Err(SearchError::parse("[sort] malformed")),
    }
}

/// True when the keys ask for nothing but relevance order.
pub fn by_score_only(keys: &[SortKey]) -> bool {
    keys.is_empty() || (keys.len() == 1 && keys[0].field == "_score" && keys[0].descending)
}

/// A document's value for one key.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SortValue {
    /// No value: sorts last (or first with `missing: _first`).
    Missing,
    /// Numbers, dates (epoch millis), booleans (0/1), scores and `_doc`.
    Number(f64),
    /// Keywords.
    Text(String),
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Direction {
    descending: bool,
    missing_first: bool,
}

/// A document's whole sort key, ordered so that greater means earlier in the results (tantivy
/// keeps the greatest). Serializable: nodes of a cluster send their top hits' keys to the
/// coordinator, which merges them.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RankKey {
    /// One value per sort key.
    pub values: Vec<SortValue>,
    dirs: Arc<Vec<Direction>>,
    /// Not after the `search_after` cursor: never returned.
    excluded: bool,
}

fn compare_one(a: &SortValue, b: &SortValue, dir: Direction) -> Ordering {
    let missing = if dir.missing_first {
        Ordering::Greater
    } else {
        Ordering::Less
    };
    let natural = match (a, b) {
        (SortValue::Missing, SortValue::Missing) => return Ordering::Equal,
        (SortValue::Missing, _) => return missing,
        (_, SortValue::Missing) => return missing.reverse(),
        (SortValue::Number(x), SortValue::Number(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
        (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
    };
    // Ascending: the smaller value comes first, i.e. ranks greater.
    if dir.descending {
        natural
    } else {
        natural.reverse()
    }
}

impl RankKey {
    /// Greater means earlier in the results.
    pub fn rank_cmp(&self, other: &RankKey) -> Ordering {
        match (self.excluded, other.excluded) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        for ((a, b), dir) in self.values.iter().zip(&other.values).zip(self.dirs.iter()) {
            let ord = compare_one(a, b, *dir);
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }
}

#[cfg(test)]
impl RankKey {
    /// A key of `values` under the given directions (tests of the merge build keys directly).
    pub(crate) fn for_test(values: Vec<SortValue>, descending: &[bool]) -> RankKey {
        let dirs = descending
            .iter()
            .map(|&descending| Direction {
                descending,
                missing_first: false,
            })
            .collect();
        RankKey {
            values,
            dirs: Arc::new(dirs),
            excluded: false,
        }
    }
}

impl PartialEq for RankKey {
    fn eq(&self, other: &Self) -> bool {
        self.rank_cmp(other) == Ordering::Equal
    }
}

impl PartialOrd for RankKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.rank_cmp(other))
    }
}

/// Where a key's values come from in this index.
#[derive(Clone, Debug)]
enum Source {
    Score,
    Doc,
    /// `_doc` made unique across the parts of a search (the point-in-time tiebreaker).
    ShardDoc(u32),
    Keyword(String),
    Number(String),
    /// Distance from an origin to the points in the column.
    GeoDistance(String, crate::geo_sort::GeoSort),
    /// Values of nested elements, folded per document.
    Nested(Box<Source>, crate::nested_sort::NestedSort),
}

/// Sorting resolved against one index's mapping.
pub struct Plan {
    sources: Vec<Source>,
    /// Render numbers as integers (long, date, boolean, _doc columns).
    integral: Vec<bool>,
    dirs: Arc<Vec<Direction>>,
    /// `search_after` cursor.
    after: Option<Vec<SortValue>>,
}

/// Resolves `keys` against `mapping`.
pub fn plan(
    keys: &[SortKey],
    mapping: &Mapping,
    search_after: Option<&Value>,
    shard: u32,
) -> Result<Plan, SearchError> {
    let mut sources = Vec::new();
    let mut integral = Vec::new();
    for key in keys {
        let (source, whole) = match key.field.as_str() {
            "_score" => (Source::Score, false),
            "_doc" => (Source::Doc, true),
            "_shard_doc" => (Source::ShardDoc(shard), true),
            field => {
                // A field alias sorts by the field it stands for.
                let (field, mapped) = match mapping.resolve(field) {
                    Some((path, mapped)) => (path, Some(mapped)),
                    None => (field, None),
                };
                let column = format!("{EXACT_FIELD}.{field}");
                let geo_point = mapped
                    .is_some_and(|f| f.variant == Some(cameodb_schema::mapping::Variant::GeoPoint));
                match (&key.geo, geo_point) {
                    (Some(sort), true) => {
                        sources.push(Source::GeoDistance(column, sort.clone()));
                        integral.push(false);
                        continue;
                    }
                    (Some(_), false) => {
                        return Err(SearchError::illegal_argument(format!(
                            "field [{field}] isn't a geo_point field"
                        )));
                    }
                    (None, true) => {
                        return Err(SearchError::illegal_argument(format!(
                            "can't sort on geo_point field [{field}] without using specific sorting feature, like geo_distance"
                        )));
                    }
                    (None, false) => {}
                }
                if mapped.is_some_and(|f| f.variant == Some(cameodb_schema::mapping::Variant::Ip)) {
                    return Err(SearchError::illegal_argument(format!(
                        "sorting on ip field [{field}] is not supported"
                    )));
                }
                let numeric = mapped
                    .is_some_and(|f| !matches!(f.field_type, FieldType::Keyword | FieldType::Text));
                let scope = mapping.nested_scope(field);
                crate::nested_sort::check(field, key.nested.as_ref(), scope, numeric)?;
                let (source, whole) = match mapped.map(|f| f.field_type) {
                    Some(FieldType::Keyword) => (Source::Keyword(column), false),
                    Some(
                        FieldType::Long
                        | FieldType::Integer
                        | FieldType::Short
                        | FieldType::Byte
                        | FieldType::Date
                        | FieldType::Boolean,
                    ) => (Source::Number(column), true),
                    Some(FieldType::Double | FieldType::Float) => (Source::Number(column), false),
                    Some(FieldType::Text) => {
                        return Err(SearchError::illegal_argument(format!(
                            "Fielddata is disabled on [{field}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead."
                        )));
                    }
                    _ => {
                        return Err(SearchError::bad_request(
                            "query_shard_exception",
                            format!("No mapping found for [{field}] in order to sort on"),
                        ));
                    }
                };
                match &key.nested {
                    Some(nested) => (Source::Nested(Box::new(source), nested.clone()), whole),
                    None => (source, whole),
                }
            }
        };
        sources.push(source);
        integral.push(whole);
    }
    let dirs = Arc::new(
        keys.iter()
            .map(|k| Direction {
                descending: k.descending,
                missing_first: k.missing_first,
            })
            .collect(),
    );
    let after = match search_after {
        None => None,
        Some(Value::Array(values)) if values.len() == keys.len() => Some(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => SortValue::Missing,
                    Value::Number(n) => SortValue::Number(n.as_f64().unwrap_or(0.0)),
                    Value::String(s) => s
                        .parse::<f64>()
                        .map(SortValue::Number)
                        .unwrap_or_else(|_| SortValue::Text(s.clone())),
                    other => SortValue::Text(other.to_string()),
                })
                .collect(),
        ),
        Some(_) => {
            return Err(SearchError::parse(format!(
                "search_after must be an array of {} values, one per sort key",
                keys.len()
            )));
        }
    };
    Ok(Plan {
        sources,
        integral,
        dirs,
        after,
    })
}

type Reader = Box<dyn Fn(DocId, Score) -> SortValue>;

fn reader(segment: &SegmentReader, segment_ord: u32, source: &Source) -> Reader {
    match source {
        Source::Score => Box::new(|_, score| SortValue::Number(f64::from(score))),
        Source::Doc => Box::new(move |doc, _| {
            SortValue::Number((u64::from(segment_ord) << 32 | u64::from(doc)) as f64)
        }),
        // The shard in bits 48-52, the segment in 32-47, the document below: unique in the
        // cluster and exact in an f64's 53 bits while a node has under 65,536 segments and a
        // search under 32 parts.
        &Source::ShardDoc(shard) => Box::new(move |doc, _| {
            let key = u64::from(shard & 0x1f) << 48
                | u64::from(segment_ord & 0xffff) << 32
                | u64::from(doc);
            SortValue::Number(key as f64)
        }),
        Source::GeoDistance(column, sort) => {
            let distance = crate::geo_sort::reader(segment, column, sort);
            Box::new(move |doc, _| distance(doc))
        }
        Source::Nested(element, sort) => {
            let element = reader(segment, segment_ord, element);
            crate::nested_sort::reader(segment, sort, element)
        }
        Source::Keyword(column) => match segment.fast_fields().str(column).ok().flatten() {
            Some(values) => Box::new(move |doc, _| {
                let Some(ord) = values.ords().first(doc) else {
                    return SortValue::Missing;
                };
                let mut text = String::new();
                match values.ord_to_str(ord, &mut text) {
                    Ok(true) => SortValue::Text(text),
                    _ => SortValue::Missing,
                }
            }),
            None => Box::new(|_, _| SortValue::Missing),
        },
        Source::Number(column) => match NumericColumn::open(segment, column) {
            Some(values) => Box::new(move |doc, _| match values.first(doc) {
                None => SortValue::Missing,
                Some(number) => SortValue::Number(number),
            }),
            None => Box::new(|_, _| SortValue::Missing),
        },
    }
}

/// The number of documents matching `query`, and the top `limit` of them in `plan`'s order
/// (after its cursor, if any).
pub fn top(
    searcher: &Searcher,
    query: &dyn Query,
    plan: &Plan,
    limit: usize,
    stats: Option<&dyn tantivy::query::Bm25StatisticsProvider>,
) -> Result<(usize, Vec<(RankKey, DocAddress)>), SearchError> {
    let sources = plan.sources.clone();
    let dirs = Arc::clone(&plan.dirs);
    let cursor = plan.after.clone().map(|values| RankKey {
        values,
        dirs: Arc::clone(&dirs),
        excluded: false,
    });
    let segment_ords: Vec<_> = searcher
        .segment_readers()
        .iter()
        .map(|r| r.segment_id())
        .collect();
    let collector =
        TopDocs::with_limit(limit.max(1)).tweak_score(move |segment: &SegmentReader| {
            let ord = segment_ords
                .iter()
                .position(|id| *id == segment.segment_id())
                .unwrap_or(0) as u32;
            let readers: Vec<Reader> = sources.iter().map(|s| reader(segment, ord, s)).collect();
            let (dirs, cursor) = (Arc::clone(&dirs), cursor.clone());
            move |doc: DocId, score: Score| {
                let mut key = RankKey {
                    values: readers.iter().map(|read| read(doc, score)).collect(),
                    dirs: Arc::clone(&dirs),
                    excluded: false,
                };
                if let Some(cursor) = &cursor {
                    // Only documents that come after the cursor in result order.
                    key.excluded = cursor.rank_cmp(&key) != Ordering::Greater;
                }
                key
            }
        });
    // One pass gives both the total and the page.
    let collector = (Count, collector);
    let (total, top) = match stats {
        Some(stats) => searcher.search_with_statistics_provider(query, &collector, stats)?,
        None => searcher.search(query, &collector)?,
    };
    Ok((
        total,
        top.into_iter().filter(|(key, _)| !key.excluded).collect(),
    ))
}

/// The `sort` array of a hit.
pub fn render(plan: &Plan, key: &RankKey) -> Value {
    Value::Array(
        key.values
            .iter()
            .zip(&plan.integral)
            .map(|(value, integral)| match value {
                SortValue::Missing => Value::Null,
                SortValue::Number(n) if *integral => json!(*n as i64),
                SortValue::Number(n) => json!(n),
                SortValue::Text(s) => json!(s),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(values: Vec<SortValue>, dirs: &[(bool, bool)]) -> RankKey {
        let dirs = Arc::new(
            dirs.iter()
                .map(|(d, m)| Direction {
                    descending: *d,
                    missing_first: *m,
                })
                .collect(),
        );
        RankKey {
            values,
            dirs,
            excluded: false,
        }
    }

    #[test]
    fn order_follows_direction_and_missing() {
        use SortValue::*;
        let asc = [(false, false)];
        assert!(rank(vec![Number(1.0)], &asc) > rank(vec![Number(2.0)], &asc));
        assert!(
            rank(vec![Number(2.0)], &asc) > rank(vec![Missing], &asc),
            "missing last when ascending"
        );
        let desc = [(true, false)];
        assert!(rank(vec![Number(2.0)], &desc) > rank(vec![Number(1.0)], &desc));
        assert!(
            rank(vec![Number(1.0)], &desc) > rank(vec![Missing], &desc),
            "missing last when descending"
        );
        let first = [(false, true)];
        assert!(rank(vec![Missing], &first) > rank(vec![Number(1.0)], &first));
        let two = [(false, false), (true, false)];
        assert!(
            rank(vec![Text("a".into()), Number(1.0)], &two)
                > rank(vec![Text("b".into()), Number(9.0)], &two)
        );
        assert!(
            rank(vec![Text("a".into()), Number(9.0)], &two)
                > rank(vec![Text("a".into()), Number(1.0)], &two)
        );
    }

    #[test]
    fn parse_forms() {
        let keys = parse(&json!(["_score", {"year": "desc"}, {"title": {"order": "asc", "missing": "_first"}}, "n:desc"])).unwrap();
        assert_eq!(keys.len(), 4);
        assert!(
            keys[0].descending
                && keys[1].descending
                && !keys[2].descending
                && keys[2].missing_first
                && keys[3].descending
        );
        assert!(parse(&json!({"a": {"mode": "avg"}})).is_err());
        assert!(parse(&json!({"a": "sideways"})).is_err());
    }
}
