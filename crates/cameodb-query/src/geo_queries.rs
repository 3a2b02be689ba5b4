//! `geo_distance` and `geo_bounding_box` on `geo_point` fields: constant-score filters that
//! read each document's encoded points (see `cameodb_schema::mapping::geo`) from the field's
//! column and keep the documents with a point inside the circle or the box.

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::geo::{self, GeoPoint};
use cameodb_schema::mapping::variant::Variant;
use serde_json::{Map, Value};
use tantivy::BitSet;
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};
use tantivy::query::{
    BitSetDocSet, ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

use crate::error::{QueryError, parsing};
use crate::fields::QueryContext;
use crate::params::{apply_boost, boost_of};

/// Which points a geo filter keeps.
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// Within `metres` of `center`, by arc (great circle) or plane distance.
    Circle {
        center: GeoPoint,
        metres: f64,
        plane: bool,
    },
    /// Inside the box; `left > right` when it crosses the antimeridian.
    Box {
        top: f64,
        bottom: f64,
        left: f64,
        right: f64,
    },
}

impl Shape {
    fn holds(&self, point: GeoPoint) -> bool {
        match *self {
            Shape::Circle {
                center,
                metres,
                plane,
            } => {
                let distance = if plane {
                    center.plane_distance(point)
                } else {
                    center.arc_distance(point)
                };
                distance <= metres
            }
            Shape::Box {
                top,
                bottom,
                left,
                right,
            } => {
                let lat_in = point.lat <= top && point.lat >= bottom;
                let lon_in = if left <= right {
                    point.lon >= left && point.lon <= right
                } else {
                    point.lon >= left || point.lon <= right
                };
                lat_in && lon_in
            }
        }
    }
}

/// The filter: documents of `column` with a point `shape` holds.
#[derive(Clone, Debug)]
struct GeoQuery {
    column: String,
    shape: Shape,
}

impl Query for GeoQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl GeoQuery {
    fn matching(&self, reader: &SegmentReader) -> Option<BitSet> {
        let (values, _) = reader
            .fast_fields()
            .u64_lenient_for_type(Some(&[ColumnType::I64]), &self.column)
            .ok()
            .flatten()?;
        let mut set = BitSet::with_max_value(reader.max_doc());
        for doc in 0..reader.max_doc() {
            if values
                .values_for_doc(doc)
                .any(|raw| self.shape.holds(GeoPoint::decode(i64::from_u64(raw))))
            {
                set.insert(doc);
            }
        }
        Some(set)
    }
}

impl Weight for GeoQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.matching(reader) {
            Some(set) => Box::new(ConstScorer::new(BitSetDocSet::from(set), boost)),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc && doc != TERMINATED {
            Ok(Explanation::new("geo filter", scorer.score()))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document #{doc} does not match"
            )))
        }
    }
}

/// The geo field a geo query names (the one key that is not a parameter) and its value.
fn field_of<'b>(
    body: &'b Map<String, Value>,
    clause: &str,
    params: &[&str],
) -> Result<(&'b str, &'b Value), QueryError> {
    let mut fields = body.iter().filter(|(k, _)| !params.contains(&k.as_str()));
    match (fields.next(), fields.next()) {
        (Some((field, value)), None) => Ok((field.as_str(), value)),
        _ => Err(parsing(format!("[{clause}] requires one geo field"))),
    }
}

/// The filter on `field`, or `None` when it is unmapped and `ignore_unmapped` is set.
fn filter(
    field: &str,
    shape: Shape,
    body: &Map<String, Value>,
    clause: &str,
    ctx: &QueryContext<'_>,
) -> Result<Box<dyn Query>, QueryError> {
    let resolved = ctx.mapping.resolve(field);
    match resolved {
        Some((path, mapping)) if mapping.variant == Some(Variant::GeoPoint) => {
            let query = GeoQuery {
                column: format!("{EXACT_FIELD}.{path}"),
                shape,
            };
            Ok(apply_boost(Box::new(query), boost_of(Some(body))?))
        }
        Some((_, mapping)) => Err(QueryError::Shard(format!(
            "field [{field}] is of type [{}], but {clause} query only supports geo_point fields",
            mapping.type_name()
        ))),
        None if body.get("ignore_unmapped").and_then(Value::as_bool) == Some(true) => {
            Ok(Box::new(tantivy::query::EmptyQuery))
        }
        None => Err(QueryError::Shard(format!(
            "failed to find geo field [{field}]"
        ))),
    }
}

fn point(value: &Value, what: &str) -> Result<GeoPoint, QueryError> {
    geo::parse_point(value).map_err(|e| parsing(format!("[{what}]: {e}")))
}

/// `geo_distance`.
pub(crate) fn geo_distance(
    body: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Box<dyn Query>, QueryError> {
    let body = body
        .as_object()
        .ok_or_else(|| parsing("[geo_distance] must be an object"))?;
    const PARAMS: &[&str] = &[
        "distance",
        "distance_type",
        "validation_method",
        "ignore_unmapped",
        "boost",
        "_name",
    ];
    let (field, center) = field_of(body, "geo_distance", PARAMS)?;
    let metres = geo::parse_distance(
        body.get("distance")
            .ok_or_else(|| parsing("geo_distance requires 'distance' to be specified"))?,
    )
    .map_err(parsing)?;
    let plane = match body.get("distance_type").and_then(Value::as_str) {
        None | Some("arc") => false,
        Some("plane") => true,
        Some(other) => {
            return Err(parsing(format!(
                "[geo_distance] unknown distance_type [{other}]"
            )));
        }
    };
    let shape = Shape::Circle {
        center: point(center, "geo_distance")?,
        metres,
        plane,
    };
    filter(field, shape, body, "geo_distance", ctx)
}

/// `geo_bounding_box`.
pub(crate) fn geo_bounding_box(
    body: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Box<dyn Query>, QueryError> {
    let body = body
        .as_object()
        .ok_or_else(|| parsing("[geo_bounding_box] must be an object"))?;
    const PARAMS: &[&str] = &[
        "validation_method",
        "type",
        "ignore_unmapped",
        "boost",
        "_name",
    ];
    let (field, corners) = field_of(body, "geo_bounding_box", PARAMS)?;
    let corners = corners
        .as_object()
        .ok_or_else(|| parsing("[geo_bounding_box] corners must be an object"))?;
    let number = |key: &str| corners.get(key).and_then(Value::as_f64);
    let (top, bottom, left, right) = if let Some(wkt) = corners.get("wkt").and_then(Value::as_str) {
        bbox_wkt(wkt)?
    } else if let (Some(tl), Some(br)) = (corners.get("top_left"), corners.get("bottom_right")) {
        let (tl, br) = (point(tl, "top_left")?, point(br, "bottom_right")?);
        (tl.lat, br.lat, tl.lon, br.lon)
    } else if let (Some(tr), Some(bl)) = (corners.get("top_right"), corners.get("bottom_left")) {
        let (tr, bl) = (point(tr, "top_right")?, point(bl, "bottom_left")?);
        (tr.lat, bl.lat, bl.lon, tr.lon)
    } else if let (Some(t), Some(b), Some(l), Some(r)) = (
        number("top"),
        number("bottom"),
        number("left"),
        number("right"),
    ) {
        (t, b, l, r)
    } else {
        return Err(parsing(
            "[geo_bounding_box] needs top_left and bottom_right, top_right and bottom_left, top/left/bottom/right or wkt",
        ));
    };
    let in_range = |v: f64, limit: f64| v.is_finite() && v.abs() <= limit;
    if !(in_range(top, 90.0)
        && in_range(bottom, 90.0)
        && in_range(left, 180.0)
        && in_range(right, 180.0))
    {
        return Err(parsing(format!(
            "[geo_bounding_box] corners out of range: top [{top}], bottom [{bottom}], left [{left}], right [{right}]"
        )));
    }
    if top < bottom {
        return Err(parsing(format!(
            "top is below bottom corner: {top} vs. {bottom}"
        )));
    }
    filter(
        field,
        Shape::Box {
            top,
            bottom,
            left,
            right,
        },
        body,
        "geo_bounding_box",
        ctx,
    )
}

/// `BBOX (minLon, maxLon, maxLat, minLat)` as (top, bottom, left, right).
fn bbox_wkt(wkt: &str) -> Result<(f64, f64, f64, f64), QueryError> {
    let upper = wkt.trim().to_ascii_uppercase();
    let inner = upper
        .strip_prefix("BBOX")
        .map(|r| r.trim().trim_start_matches('(').trim_end_matches(')'))
        .ok_or_else(|| parsing(format!("[geo_bounding_box] unsupported wkt [{wkt}]")))?;
    let numbers: Vec<f64> = inner
        .split(',')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| parsing(format!("[geo_bounding_box] invalid wkt [{wkt}]")))?;
    match numbers.as_slice() {
        [left, right, top, bottom] => Ok((*top, *bottom, *left, *right)),
        _ => Err(parsing(format!("[geo_bounding_box] invalid wkt [{wkt}]"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_circles_hold_what_they_should() {
        let p = |lat, lon| GeoPoint::new(lat, lon).unwrap();
        let plain = Shape::Box {
            top: 10.0,
            bottom: 0.0,
            left: 0.0,
            right: 10.0,
        };
        assert!(plain.holds(p(5.0, 5.0)) && !plain.holds(p(5.0, 11.0)));
        let across = Shape::Box {
            top: 10.0,
            bottom: 0.0,
            left: 170.0,
            right: -170.0,
        };
        assert!(across.holds(p(5.0, 175.0)) && across.holds(p(5.0, -175.0)));
        assert!(!across.holds(p(5.0, 0.0)));
        let circle = Shape::Circle {
            center: p(0.0, 0.0),
            metres: 200_000.0,
            plane: false,
        };
        assert!(circle.holds(p(1.0, 1.0)) && !circle.holds(p(2.0, 2.0)));
        assert_eq!(
            bbox_wkt("BBOX (-74.1, -71.12, 40.73, 40.01)").unwrap(),
            (40.73, 40.01, -74.1, -71.12)
        );
    }
}
