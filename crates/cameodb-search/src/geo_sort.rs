//! The `_geo_distance` sort: documents by their distance from an origin, in a unit.

use cameodb_schema::mapping::geo::{self, GeoPoint};
use serde_json::{Map, Value};
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};
use tantivy::{DocId, SegmentReader};

use crate::error::SearchError;
use crate::sorting::{SortKey, SortValue};

/// How a `_geo_distance` key measures.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GeoSort {
    /// The origin's latitude.
    pub lat: f64,
    /// The origin's longitude.
    pub lon: f64,
    /// Metres per unit of the sort value (`unit`, metres by default).
    pub unit_metres: f64,
    /// `distance_type: plane` rather than `arc`.
    pub plane: bool,
    /// Of several points: `min`, `max` or `avg` distance.
    pub mode: GeoMode,
}

/// Which distance of a document with several points sorts it.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub enum GeoMode {
    /// The nearest point.
    Min,
    /// The farthest point.
    Max,
    /// The mean of the distances.
    Avg,
}

/// A `_geo_distance` sort object as a key.
pub(crate) fn parse(body: &Map<String, Value>) -> Result<SortKey, SearchError> {
    const PARAMS: &[&str] = &[
        "order",
        "unit",
        "mode",
        "distance_type",
        "ignore_unmapped",
        "validation_method",
        "nested",
    ];
    let mut fields = body.iter().filter(|(k, _)| !PARAMS.contains(&k.as_str()));
    let (field, origin) = match (fields.next(), fields.next()) {
        (Some(one), None) => one,
        _ => {
            return Err(SearchError::parse(
                "[_geo_distance] sorts by exactly one geo_point field",
            ));
        }
    };
    if body.contains_key("nested") {
        return Err(SearchError::parse(
            "[nested] of [_geo_distance] is not supported",
        ));
    }
    let origin = match origin {
        Value::Array(items) if !geo::is_coordinate_array(origin) => match items.as_slice() {
            [one] => one,
            _ => {
                return Err(SearchError::parse(
                    "[_geo_distance] with several origin points is not supported",
                ));
            }
        },
        one => one,
    };
    let origin = geo::parse_point(origin).map_err(SearchError::parse)?;
    let descending = match body.get("order").and_then(Value::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(SearchError::parse(format!(
                "[sort] unknown order [{other}]"
            )));
        }
    };
    let unit_metres = geo::unit(body.get("unit").and_then(Value::as_str).unwrap_or("m"))
        .map_err(SearchError::parse)?;
    let plane = match body.get("distance_type").and_then(Value::as_str) {
        None | Some("arc") => false,
        Some("plane") => true,
        Some(other) => {
            return Err(SearchError::parse(format!(
                "[_geo_distance] unknown distance_type [{other}]"
            )));
        }
    };
    let mode = match body.get("mode").and_then(Value::as_str) {
        None if descending => GeoMode::Max,
        None | Some("min") => GeoMode::Min,
        Some("max") => GeoMode::Max,
        Some("avg") => GeoMode::Avg,
        Some(other) => {
            return Err(SearchError::parse(format!(
                "[_geo_distance] mode [{other}] is not supported"
            )));
        }
    };
    Ok(SortKey {
        field: field.clone(),
        descending,
        missing_first: false,
        geo: Some(GeoSort {
            lat: origin.lat,
            lon: origin.lon,
            unit_metres,
            plane,
            mode,
        }),
        nested: None,
    })
}

/// Each document's distance from the origin in `segment`'s column at `column`.
pub(crate) fn reader(
    segment: &SegmentReader,
    column: &str,
    sort: &GeoSort,
) -> Box<dyn Fn(DocId) -> SortValue> {
    let opened = segment
        .fast_fields()
        .u64_lenient_for_type(Some(&[ColumnType::I64]), column)
        .ok()
        .flatten();
    let Some((values, _)) = opened else {
        return Box::new(|_| SortValue::Missing);
    };
    let origin = GeoPoint {
        lat: sort.lat,
        lon: sort.lon,
    };
    let sort = sort.clone();
    Box::new(move |doc| {
        let distances = values.values_for_doc(doc).map(|raw| {
            let point = GeoPoint::decode(i64::from_u64(raw));
            let metres = if sort.plane {
                origin.plane_distance(point)
            } else {
                origin.arc_distance(point)
            };
            metres / sort.unit_metres
        });
        let (mut count, mut best) = (0usize, None::<f64>);
        for d in distances {
            count += 1;
            best = Some(match (best, sort.mode) {
                (None, _) => d,
                (Some(b), GeoMode::Min) => b.min(d),
                (Some(b), GeoMode::Max) => b.max(d),
                (Some(b), GeoMode::Avg) => b + d,
            });
        }
        match (best, sort.mode) {
            (None, _) => SortValue::Missing,
            (Some(sum), GeoMode::Avg) => SortValue::Number(sum / count as f64),
            (Some(d), _) => SortValue::Number(d),
        }
    })
}
