//! The computed value a calendar histogram buckets by: the start, in epoch milliseconds, of
//! the month, quarter or year (in a fixed-offset time zone) holding each date of a field. A
//! `terms` aggregation over it gives one bucket per calendar period (see
//! `calendar_histogram`); tantivy reads it through a value source registered per request.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tantivy::aggregation::{ValueSource, ValueSourceProvider};
use tantivy::columnar::{Cardinality, Column, ColumnType, MonotonicallyMappableToU64, RowId};
use tantivy::{DocId, SegmentReader};

/// Start of a calendar source's name.
const NAME: &str = "\u{c}calendar\u{c}";

/// Calendar periods of one date column.
#[derive(Clone, Debug)]
pub(crate) struct CalendarStarts {
    /// The date column (`_exact.<path>`).
    pub(crate) column: String,
    /// Months per period: 1, 3 or 12.
    pub(crate) months: u32,
    /// The time zone's offset east of UTC, in milliseconds.
    pub(crate) offset_ms: i64,
}

impl CalendarStarts {
    /// The source's name: its parameters spelled out, so equal requests share one.
    pub(crate) fn name(&self) -> String {
        format!(
            "{NAME}{}\u{c}{}\u{c}{}",
            self.column, self.months, self.offset_ms
        )
    }
}

/// The local date starting the period of `months` months that holds `millis`.
pub(crate) fn period_start(millis: i64, months: u32, offset_ms: i64) -> Option<NaiveDate> {
    let local =
        DateTime::<Utc>::from_timestamp_millis(millis.checked_add(offset_ms)?)?.date_naive();
    let month0 = (local.month0() / months) * months;
    NaiveDate::from_ymd_opt(local.year(), month0 + 1, 1)
}

/// The instant (epoch milliseconds) a local date's midnight is in the zone.
pub(crate) fn instant_of(date: NaiveDate, offset_ms: i64) -> Option<i64> {
    date.and_hms_opt(0, 0, 0)?
        .and_utc()
        .timestamp_millis()
        .checked_sub(offset_ms)
}

#[derive(Debug)]
struct SegmentStarts {
    values: Column<u64>,
    spec: CalendarStarts,
}

impl ValueSource for SegmentStarts {
    fn column_type(&self) -> ColumnType {
        ColumnType::I64
    }

    fn load_block(
        &mut self,
        docs: &[DocId],
        values: &mut Vec<u64>,
        docids: &mut Vec<DocId>,
        _row_ids: &mut Vec<RowId>,
    ) -> Cardinality {
        values.clear();
        docids.clear();
        for &doc in docs {
            for raw in self.values.values_for_doc(doc) {
                let millis = tantivy::DateTime::from_u64(raw).into_timestamp_millis();
                let start = period_start(millis, self.spec.months, self.spec.offset_ms)
                    .and_then(|date| instant_of(date, self.spec.offset_ms));
                if let Some(start) = start {
                    values.push(start.to_u64());
                    docids.push(doc);
                }
            }
        }
        Cardinality::Multivalued
    }

    fn to_f64(self: Box<Self>) -> Box<dyn ValueSource> {
        self
    }
}

impl ValueSourceProvider for CalendarStarts {
    fn for_segment(
        &self,
        reader: &SegmentReader,
        _allowed: Option<&[ColumnType]>,
    ) -> tantivy::Result<Option<Box<dyn ValueSource>>> {
        let opened = reader
            .fast_fields()
            .u64_lenient_for_type(Some(&[ColumnType::DateTime]), &self.column)?;
        Ok(opened.map(|(values, _)| {
            Box::new(SegmentStarts {
                values,
                spec: self.clone(),
            }) as Box<dyn ValueSource>
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_in_the_zone() {
        let ms = |y, m, d, h| {
            NaiveDate::from_ymd_opt(y, m, d)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap()
        };
        let q = period_start(ms(2024, 5, 20, 12), 3, 0).unwrap();
        assert_eq!(q, NaiveDate::from_ymd_opt(2024, 4, 1).unwrap());
        // 2024-03-31T23:30Z is already April in UTC+01:00.
        let hour = 3_600_000;
        let april = period_start(ms(2024, 3, 31, 23), 1, hour).unwrap();
        assert_eq!(april, NaiveDate::from_ymd_opt(2024, 4, 1).unwrap());
        assert_eq!(instant_of(april, hour), Some(ms(2024, 3, 31, 23)));
        let year = period_start(ms(2024, 12, 31, 23), 12, 2 * hour).unwrap();
        assert_eq!(year, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    }
}
