//! Sorting hits by a field's fast column. tantivy's ready-made field sorts resolve only schema
//! field names, and every mapped field here lives under a path of the `_exact` JSON field, so
//! the sort key is computed per document from the column the path resolves to.

use std::cmp::Ordering;

use cameodb_storage::schema::EXACT_FIELD;
use serde_json::{Value, json};
use tantivy::collector::TopDocs;
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};
use tantivy::query::Query;
use tantivy::{DateTime, DocAddress, DocId, Score, Searcher, SegmentReader};

use crate::error::ApiError;

/// A document's value for the sort field.
#[derive(Clone, Debug, PartialEq)]
pub enum SortValue {
    /// The document has no value: sorts last in either direction, as in Elasticsearch.
    Missing,
    /// Numbers, dates (epoch millis) and booleans (0/1).
    Number(f64),
    /// Keywords.
    Text(String),
}

impl SortValue {
    pub fn to_json(&self, integral: bool) -> Value {
        match self {
            SortValue::Missing => Value::Null,
            SortValue::Number(n) if integral => json!(*n as i64),
            SortValue::Number(n) => json!(n),
            SortValue::Text(s) => json!(s),
        }
    }
}

/// A sort value with its direction, ordered so that "greater" means "earlier in the results"
/// (tantivy keeps the greatest keys).
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    pub value: SortValue,
    pub descending: bool,
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let natural = match (&self.value, &other.value) {
            (SortValue::Missing, SortValue::Missing) => return Some(Ordering::Equal),
            (SortValue::Missing, _) => return Some(Ordering::Less),
            (_, SortValue::Missing) => return Some(Ordering::Greater),
            (SortValue::Number(a), SortValue::Number(b)) => a.partial_cmp(b)?,
            (SortValue::Text(a), SortValue::Text(b)) => a.cmp(b),
            (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
            (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
        };
        Some(if self.descending {
            natural
        } else {
            natural.reverse()
        })
    }
}

fn number_reader(segment: &SegmentReader, column: &str) -> Option<Box<dyn Fn(DocId) -> SortValue>> {
    let allowed = [
        ColumnType::I64,
        ColumnType::U64,
        ColumnType::F64,
        ColumnType::DateTime,
        ColumnType::Bool,
    ];
    let (values, typ) = segment
        .fast_fields()
        .u64_lenient_for_type(Some(&allowed), column)
        .ok()??;
    Some(Box::new(move |doc| match values.first(doc) {
        None => SortValue::Missing,
        Some(raw) => SortValue::Number(match typ {
            ColumnType::I64 => i64::from_u64(raw) as f64,
            ColumnType::F64 => f64::from_u64(raw),
            ColumnType::DateTime => DateTime::from_u64(raw).into_timestamp_millis() as f64,
            _ => raw as f64,
        }),
    }))
}

fn text_reader(segment: &SegmentReader, column: &str) -> Option<Box<dyn Fn(DocId) -> SortValue>> {
    let values = segment.fast_fields().str(column).ok()??;
    Some(Box::new(move |doc| {
        let Some(ord) = values.ords().first(doc) else {
            return SortValue::Missing;
        };
        let mut text = String::new();
        match values.ord_to_str(ord, &mut text) {
            Ok(true) => SortValue::Text(text),
            _ => SortValue::Missing,
        }
    }))
}

/// The top `limit` documents matching `query`, ordered by the `_exact` column of `path`.
pub fn top_by_field(
    searcher: &Searcher,
    query: &dyn Query,
    path: &str,
    keyword: bool,
    descending: bool,
    limit: usize,
) -> Result<Vec<(SortValue, DocAddress)>, ApiError> {
    let column = format!("{EXACT_FIELD}.{path}");
    let collector =
        TopDocs::with_limit(limit.max(1)).tweak_score(move |segment: &SegmentReader| {
            let reader = if keyword {
                text_reader(segment, &column)
            } else {
                number_reader(segment, &column)
            };
            move |doc: DocId, _score: Score| Ranked {
                value: reader.as_ref().map_or(SortValue::Missing, |read| read(doc)),
                descending,
            }
        });
    Ok(searcher
        .search(query, &collector)?
        .into_iter()
        .map(|(ranked, addr)| (ranked.value, addr))
        .collect())
}
