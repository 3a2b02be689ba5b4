//! The computed value a calendar histogram buckets by: the start, in epoch milliseconds, of
//! the fixed interval, day, week, month, quarter or year holding each date of a field, in the
//! request's time zone (a fixed offset, or a named zone with its daylight saving rules); the
//! periods are cut in local time, as Elasticsearch rounds dates in a zone. A `terms`
//! aggregation over it gives one bucket per calendar period (see `calendar_histogram`);
//! tantivy reads it through a value source registered per request.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};

/// Start of a calendar source's name.
const NAME: &str = "\u{c}calendar\u{c}";

/// A calendar period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Unit {
    /// A fixed number of milliseconds of local time, counted from the epoch.
    Fixed(i64),
    /// A day, from local midnight.
    Day,
    /// A week, from Monday's local midnight.
    Week,
    /// 1, 3 or 12 months, from the first of a month (quarters and years start in January).
    Months(u32),
}

impl Unit {
    /// The unit a `calendar_interval` names.
    pub(crate) fn of(interval: &str) -> Option<Unit> {
        Some(match interval {
            "day" | "1d" => Unit::Day,
            "week" | "1w" => Unit::Week,
            "month" | "1M" => Unit::Months(1),
            "quarter" | "1q" => Unit::Months(3),
            "year" | "1y" => Unit::Months(12),
            _ => return None,
        })
    }

    /// Its Elasticsearch name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Fixed(_) => "fixed_interval",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Months(1) => "month",
            Unit::Months(3) => "quarter",
            Unit::Months(_) => "year",
        }
    }

    /// The period after the one starting at local time `start`.
    pub(crate) fn next(self, start: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            Unit::Fixed(ms) => start.checked_add_signed(chrono::Duration::milliseconds(ms)),
            Unit::Day => start.checked_add_days(Days::new(1)),
            Unit::Week => start.checked_add_days(Days::new(7)),
            Unit::Months(n) => start.checked_add_months(Months::new(n)),
        }
    }

    /// The local time starting the period that holds local time `local`.
    fn start(self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let date = local.date();
        let day = match self {
            Unit::Fixed(ms) => {
                let millis = local.and_utc().timestamp_millis();
                let floor = millis.checked_sub(millis.checked_rem_euclid(ms)?)?;
                return Some(DateTime::<Utc>::from_timestamp_millis(floor)?.naive_utc());
            }
            Unit::Day => Some(date),
            Unit::Week => {
                date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
            }
            Unit::Months(n) => {
                let month0 = (date.month0() / n) * n;
                NaiveDate::from_ymd_opt(date.year(), month0 + 1, 1)
            }
        }?;
        day.and_hms_opt(0, 0, 0)
    }
}

/// A time zone: UTC or a fixed offset, or a named zone whose offset changes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Zone {
    /// Milliseconds east of UTC.
    Fixed(i64),
    /// An IANA zone (`Europe/Paris`).
    Named(Tz),
}

impl Zone {
    /// The zone `text` names: a fixed offset (`+01:00`, `UTC`) or an IANA name.
    pub(crate) fn parse(text: &str) -> Option<Zone> {
        crate::date_aggs::fixed_offset_ms(text)
            .map(Zone::Fixed)
            .or_else(|| text.parse::<Tz>().ok().map(Zone::Named))
    }

    /// Milliseconds east of UTC at instant `millis`.
    pub(crate) fn offset_at(self, millis: i64) -> i64 {
        match self {
            Zone::Fixed(offset) => offset,
            Zone::Named(tz) => tz
                .timestamp_millis_opt(millis)
                .single()
                .map_or(0, |t| i64::from(t.offset().fix().local_minus_utc()) * 1000),
        }
    }

    /// The local time at instant `millis`.
    fn local_time(self, millis: i64) -> Option<NaiveDateTime> {
        let local = millis.checked_add(self.offset_at(millis))?;
        Some(DateTime::<Utc>::from_timestamp_millis(local)?.naive_utc())
    }

    /// The instant local time `local` is (the first instant after a daylight saving gap when
    /// `local` falls in one; the earlier of two when it is repeated).
    pub(crate) fn instant(self, local: NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Fixed(offset) => local.and_utc().timestamp_millis().checked_sub(offset),
            Zone::Named(tz) => {
                let mut probe = local;
                // A gap is at most a few hours long: the first valid local time after it.
                for _ in 0..48 {
                    if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                        return Some(t.timestamp_millis());
                    }
                    probe = probe.checked_add_signed(chrono::Duration::minutes(30))?;
                }
                None
            }
        }
    }

    /// The local time starting the `unit` period that holds instant `millis`.
    pub(crate) fn period_start(self, millis: i64, unit: Unit) -> Option<NaiveDateTime> {
        unit.start(self.local_time(millis)?)
    }
}

/// Calendar periods of one date column.
#[derive(Clone, Debug)]
pub(crate) struct CalendarStarts {
    /// The date column (`_exact.<path>`).
    pub(crate) column: String,
    /// The period.
    pub(crate) unit: Unit,
    /// The zone, as the request named it.
    pub(crate) zone_name: String,
    /// The zone.
    pub(crate) zone: Zone,
}

impl CalendarStarts {
    /// The provider tantivy reads the period starts through.
    pub(crate) fn provider(&self) -> crate::mapped_source::Mapped {
        let (unit, zone) = (self.unit, self.zone);
        crate::mapped_source::Mapped {
            column: self.column.clone(),
            input: ColumnType::DateTime,
            output: ColumnType::I64,
            map: std::sync::Arc::new(move |raw| {
                let millis = tantivy::DateTime::from_u64(raw).into_timestamp_millis();
                let start = zone.period_start(millis, unit)?;
                zone.instant(start).map(|instant| instant.to_u64())
            }),
        }
    }

    /// The source's name: its parameters spelled out, so equal requests share one.
    pub(crate) fn name(&self) -> String {
        format!(
            "{NAME}{}\u{c}{:?}\u{c}{}",
            self.column, self.unit, self.zone_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i32, m: u32, d: u32, h: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap()
    }

    #[test]
    fn periods_start_in_fixed_offsets() {
        let utc = Zone::Fixed(0);
        assert_eq!(
            utc.period_start(ms(2024, 5, 20, 12), Unit::Months(3)),
            Some(date(2024, 4, 1))
        );
        // 2024-03-31T23:00Z is already April in UTC+01:00.
        let plus_one = Zone::Fixed(3_600_000);
        let april = plus_one
            .period_start(ms(2024, 3, 31, 23), Unit::Months(1))
            .unwrap();
        assert_eq!(april, date(2024, 4, 1));
        assert_eq!(plus_one.instant(april), Some(ms(2024, 3, 31, 23)));
        // 2024-05-22 was a Wednesday: its week starts on Monday the 20th.
        assert_eq!(
            utc.period_start(ms(2024, 5, 22, 9), Unit::Week),
            Some(date(2024, 5, 20))
        );
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        // Winter: midnight is 23:00Z the day before; summer: 22:00Z.
        assert_eq!(paris.instant(date(2024, 1, 15)), Some(ms(2024, 1, 14, 23)));
        assert_eq!(paris.instant(date(2024, 7, 15)), Some(ms(2024, 7, 14, 22)));
        // 2024-03-31T22:30Z is 00:30 on April 1st in Paris (summer time).
        let start = paris.period_start(ms(2024, 3, 31, 22) + 1_800_000, Unit::Day);
        assert_eq!(start, Some(date(2024, 4, 1)));
        assert_eq!(paris.offset_at(ms(2024, 7, 1, 0)), 7_200_000);
        assert!(Zone::parse("Mars/Olympus").is_none());
        // An hour in Paris on the night clocks go forward: 01:00 local is 00:00Z, 03:00 local
        // is 01:00Z (02:00 local does not exist).
        let hour = Unit::Fixed(3_600_000);
        let start = paris
            .period_start(ms(2024, 3, 31, 1) + 60_000, hour)
            .unwrap();
        assert_eq!(paris.instant(start), Some(ms(2024, 3, 31, 1)));
        assert_eq!(
            paris.instant(hour.next(start).unwrap()),
            Some(ms(2024, 3, 31, 2))
        );
    }
}
