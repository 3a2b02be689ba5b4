//! Sorting by a field of `nested` elements (`"nested": {"path": …}`): each document's value is
//! its elements' values folded by `mode` (the lowest ascending, the highest descending unless
//! asked otherwise).

use cameodb_query::block_join::{Level, level_docs};
use cameodb_schema::fields::FIELD_NAMES_FIELD;
use serde_json::{Map, Value};
use tantivy::{DocId, Score, SegmentReader};

use crate::error::SearchError;
use crate::sorting::SortValue;

/// How the elements' values make the document's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// The lowest value.
    Min,
    /// The highest value.
    Max,
    /// The mean (numbers only).
    Avg,
    /// The sum (numbers only).
    Sum,
}

/// A key's `nested` context.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NestedSort {
    /// The nested field whose elements hold the sort field.
    pub path: String,
    /// `mode`, or the direction's default.
    pub mode: Mode,
}

/// Reads the `nested` and `mode` options of a field sort.
pub(crate) fn parse(
    field: &str,
    opts: &Map<String, Value>,
    descending: bool,
) -> Result<Option<NestedSort>, SearchError> {
    let mode = match opts.get("mode").map(|m| m.as_str()) {
        None => None,
        Some(Some("min")) => Some(Mode::Min),
        Some(Some("max")) => Some(Mode::Max),
        Some(Some("avg")) => Some(Mode::Avg),
        Some(Some("sum")) => Some(Mode::Sum),
        Some(_) => {
            return Err(SearchError::parse(format!(
                "[sort] mode of [{field}] must be one of min, max, avg or sum"
            )));
        }
    };
    let Some(nested) = opts.get("nested") else {
        // Without `nested` a key reads a document's first value: a mode would change nothing
        // it says it changes.
        if mode.is_some() {
            return Err(SearchError::parse(format!(
                "[sort] option [mode] of [{field}] is supported only with [nested]"
            )));
        }
        return Ok(None);
    };
    let body = nested
        .as_object()
        .ok_or_else(|| SearchError::parse("[sort] [nested] must be an object"))?;
    if let Some(key) = body.keys().find(|k| k.as_str() != "path") {
        return Err(SearchError::parse(format!(
            "[sort] [nested] option [{key}] is not supported by CameoDB"
        )));
    }
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| SearchError::parse("[sort] [nested] requires [path]"))?;
    let default = if descending { Mode::Max } else { Mode::Min };
    Ok(Some(NestedSort {
        path: path.to_string(),
        mode: mode.unwrap_or(default),
    }))
}

/// Checks a key's `nested` context against the field's place in the mapping.
pub(crate) fn check(
    field: &str,
    nested: Option<&NestedSort>,
    scope: Option<&str>,
    numeric: bool,
) -> Result<(), SearchError> {
    match (nested, scope) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(SearchError::illegal_argument(format!(
            "it is mandatory to set the [nested] context on the nested sort field: [{field}]."
        ))),
        (Some(sort), scope) if scope != Some(sort.path.as_str()) => {
            Err(SearchError::illegal_argument(format!(
                "[nested] nested path [{}] of sort field [{field}] is not the nested object holding it",
                sort.path
            )))
        }
        (Some(sort), _) if !numeric && matches!(sort.mode, Mode::Avg | Mode::Sum) => {
            Err(SearchError::illegal_argument(format!(
                "only the min and max sort modes apply to the non-numeric field [{field}]"
            )))
        }
        _ => Ok(()),
    }
}

type Reader = Box<dyn Fn(DocId, Score) -> SortValue>;

/// Reads a document's value by folding its elements' values, which `element` reads.
pub(crate) fn reader(segment: &SegmentReader, sort: &NestedSort, element: Reader) -> Reader {
    let levels = segment
        .schema()
        .get_field(FIELD_NAMES_FIELD)
        .ok()
        .and_then(|names| {
            let roots = level_docs(segment, names, &Level::Root).ok()?;
            let elements = level_docs(segment, names, &Level::Path(sort.path.clone())).ok()?;
            Some((roots, elements))
        });
    let Some((roots, elements)) = levels else {
        return Box::new(|_, _| SortValue::Missing);
    };
    let mode = sort.mode;
    Box::new(move |doc, score| {
        let start = match roots.partition_point(|r| *r < doc) {
            0 => 0,
            i => roots[i - 1] + 1,
        };
        let first = elements.partition_point(|e| *e < start);
        let last = elements.partition_point(|e| *e < doc);
        let values = elements[first..last]
            .iter()
            .map(|e| element(*e, score))
            .filter(|v| *v != SortValue::Missing);
        fold(values, mode)
    })
}

fn fold(values: impl Iterator<Item = SortValue>, mode: Mode) -> SortValue {
    let mut count = 0u32;
    let mut sum = 0.0;
    let mut best: Option<SortValue> = None;
    for value in values {
        count += 1;
        if let SortValue::Number(n) = value {
            sum += n;
        }
        let better = match (&best, &value) {
            (None, _) => true,
            (Some(SortValue::Number(b)), SortValue::Number(v)) => match mode {
                Mode::Max => v > b,
                _ => v < b,
            },
            (Some(SortValue::Text(b)), SortValue::Text(v)) => match mode {
                Mode::Max => v > b,
                _ => v < b,
            },
            _ => false,
        };
        if better {
            best = Some(value);
        }
    }
    match (mode, best) {
        (_, None) => SortValue::Missing,
        (Mode::Sum, Some(SortValue::Number(_))) => SortValue::Number(sum),
        (Mode::Avg, Some(SortValue::Number(_))) => SortValue::Number(sum / f64::from(count)),
        (_, Some(value)) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(values: &[f64]) -> impl Iterator<Item = SortValue> + '_ {
        values.iter().map(|v| SortValue::Number(*v))
    }

    #[test]
    fn modes_fold_the_elements() {
        let values = [3.0, 1.0, 8.0];
        assert_eq!(fold(numbers(&values), Mode::Min), SortValue::Number(1.0));
        assert_eq!(fold(numbers(&values), Mode::Max), SortValue::Number(8.0));
        assert_eq!(fold(numbers(&values), Mode::Sum), SortValue::Number(12.0));
        assert_eq!(fold(numbers(&values), Mode::Avg), SortValue::Number(4.0));
        assert_eq!(fold(numbers(&[]), Mode::Max), SortValue::Missing);
        let words = ["pear", "apple"].map(|w| SortValue::Text(w.into()));
        assert_eq!(
            fold(words.into_iter(), Mode::Min),
            SortValue::Text("apple".into())
        );
    }
}
