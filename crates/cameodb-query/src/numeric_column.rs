//! Numeric fast columns read as `f64`: the one reading shared by scoring functions and sorts,
//! so a date is milliseconds and a boolean 0 or 1 wherever a number is asked of it.

use tantivy::columnar::{Column, ColumnType, MonotonicallyMappableToU64};
use tantivy::{DateTime, DocId, SegmentReader};

/// A numeric column of one segment with the type its raw `u64`s encode.
pub struct NumericColumn {
    /// Raw values, as tantivy stores them (order-preserving `u64`s).
    values: Column<u64>,
    /// How to turn a raw value back into a number.
    typ: ColumnType,
}

impl NumericColumn {
    /// Opens the column at `path` (a full fast-field path, e.g. `_exact.price`) if the
    /// segment has one of a numeric, date or boolean type; text columns are not numbers.
    pub fn open(reader: &SegmentReader, path: &str) -> Option<Self> {
        let allowed = [
            ColumnType::I64,
            ColumnType::U64,
            ColumnType::F64,
            ColumnType::DateTime,
            ColumnType::Bool,
        ];
        let (values, typ) = reader
            .fast_fields()
            .u64_lenient_for_type(Some(&allowed), path)
            .ok()
            .flatten()?;
        Some(Self { values, typ })
    }

    /// The document's first value, if it has one.
    pub fn first(&self, doc: DocId) -> Option<f64> {
        self.values.first(doc).map(|raw| self.number(raw))
    }

    /// Every value of the document, in column order.
    pub fn all(&self, doc: DocId) -> Vec<f64> {
        self.values
            .values_for_doc(doc)
            .map(|raw| self.number(raw))
            .collect()
    }

    fn number(&self, raw: u64) -> f64 {
        match self.typ {
            ColumnType::I64 => i64::from_u64(raw) as f64,
            ColumnType::F64 => f64::from_u64(raw),
            ColumnType::DateTime => DateTime::from_u64(raw).into_timestamp_millis() as f64,
            _ => raw as f64,
        }
    }
}
