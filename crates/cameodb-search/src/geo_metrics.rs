//! `geo_bounds` and `geo_centroid`: the box around a bucket's points and their mean.
//!
//! Each runs as a `filter` of every document holding metric aggregations over computed
//! coordinate sources (latitudes, longitudes, and longitudes east and west of Greenwich for
//! the bounds, so a box may cross the antimeridian as Elasticsearch's does). The metrics merge
//! across nodes like any; the answer is assembled from them after the merge.

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::geo::GeoPoint;
use cameodb_schema::mapping::{Mapping, Variant};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tantivy::aggregation::ValueSourceRegistry;
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};

use crate::error::SearchError;

/// Marks a geo metric's name; its plan is written between two of them.
const MARK: char = '\u{e}';

/// Start of a coordinate source's name.
const SOURCE: &str = "\u{e}coordinate\u{e}";

/// Which coordinate of each point a source gives.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coordinate {
    Lat,
    Lon,
    /// Longitudes ≥ 0 only.
    East,
    /// Longitudes < 0 only.
    West,
}

impl Coordinate {
    fn name(self) -> &'static str {
        match self {
            Coordinate::Lat => "lat",
            Coordinate::Lon => "lon",
            Coordinate::East => "east",
            Coordinate::West => "west",
        }
    }
}

#[derive(Clone, Debug)]
struct Coordinates {
    column: String,
    which: Coordinate,
}

impl Coordinates {
    /// The provider tantivy reads the coordinates through.
    fn provider(&self) -> crate::mapped_source::Mapped {
        let which = self.which;
        crate::mapped_source::Mapped {
            column: self.column.clone(),
            input: ColumnType::I64,
            output: ColumnType::F64,
            map: std::sync::Arc::new(move |raw| {
                let point = GeoPoint::decode(i64::from_u64(raw));
                let value = match which {
                    Coordinate::Lat => Some(point.lat),
                    Coordinate::Lon => Some(point.lon),
                    Coordinate::East => (point.lon >= 0.0).then_some(point.lon),
                    Coordinate::West => (point.lon < 0.0).then_some(point.lon),
                };
                value.map(f64::to_u64)
            }),
        }
    }

    fn name(&self) -> String {
        format!("{SOURCE}{}\u{e}{}", self.column, self.which.name())
    }
}

/// What the answer is assembled into.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    /// `geo_bounds` (else `geo_centroid`).
    bounds: bool,
    /// `wrap_longitude`: a box may cross the antimeridian when it is narrower that way.
    wrap: bool,
}

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

fn kind_of(spec: &Map<String, Value>) -> Option<(&'static str, &Value)> {
    ["geo_bounds", "geo_centroid"]
        .into_iter()
        .find_map(|kind| spec.get(kind).map(|body| (kind, body)))
}

/// The geo_point column a geo metric reads.
fn column(name: &str, kind: &str, body: &Value, mapping: &Mapping) -> Result<String, SearchError> {
    let field = body
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing(format!("[{kind}] aggregation [{name}] requires [field]")))?;
    match mapping.resolve(field) {
        Some((path, f)) if f.variant == Some(Variant::GeoPoint) => {
            Ok(format!("{EXACT_FIELD}.{path}"))
        }
        _ => Err(SearchError::illegal_argument(format!(
            "field [{field}] of [{kind}] aggregation [{name}] is not a geo_point field"
        ))),
    }
}

fn sources(column: &str, bounds: bool) -> Vec<Coordinates> {
    let whiches: &[Coordinate] = if bounds {
        &[Coordinate::Lat, Coordinate::East, Coordinate::West]
    } else {
        &[Coordinate::Lat, Coordinate::Lon]
    };
    whiches
        .iter()
        .map(|which| Coordinates {
            column: column.to_string(),
            which: *which,
        })
        .collect()
}

/// When `spec` is a geo metric, the name it runs under and its tantivy body (a filter of
/// every document holding the metrics).
pub(crate) fn plan(
    name: &str,
    spec: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Option<(String, Value)>, SearchError> {
    let Some((kind, body)) = kind_of(spec) else {
        return Ok(None);
    };
    if spec.contains_key("aggs") || spec.contains_key("aggregations") {
        return Err(parsing(format!(
            "Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations"
        )));
    }
    let allowed: &[&str] = if kind == "geo_bounds" {
        &["field", "wrap_longitude"]
    } else {
        &["field"]
    };
    if let Some(key) = body
        .as_object()
        .and_then(|b| b.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(parsing(format!(
            "[{key}] of [{kind}] aggregation [{name}] is not supported"
        )));
    }
    let column = column(name, kind, body, mapping)?;
    let bounds = kind == "geo_bounds";
    let plan = Plan {
        bounds,
        wrap: body
            .get("wrap_longitude")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    };
    let named = sources(&column, bounds);
    let field = |n: usize| named[n].name();
    let metrics = if bounds {
        json!({
            "top": {"max": {"field": field(0)}}, "bottom": {"min": {"field": field(0)}},
            "east_left": {"min": {"field": field(1)}}, "east_right": {"max": {"field": field(1)}},
            "west_left": {"min": {"field": field(2)}}, "west_right": {"max": {"field": field(2)}},
        })
    } else {
        json!({
            "lat": {"avg": {"field": field(0)}}, "lon": {"avg": {"field": field(1)}},
            "count": {"value_count": {"field": field(0)}},
        })
    };
    let every = crate::filter_agg::filter_body(&json!({"match_all": {}}), mapping)
        .map_err(|e| parsing(format!("[{kind}] aggregation [{name}]: {e}")))?;
    Ok(Some((
        crate::planned::name(name, MARK, &plan)?,
        json!({"filter": every, "aggs": metrics}),
    )))
}

/// Registers the coordinate sources of every geo metric in `aggs`, at every level.
pub(crate) fn register(
    aggs: &Value,
    mapping: &Mapping,
    registry: &mut ValueSourceRegistry,
) -> Result<(), SearchError> {
    for (name, spec) in aggs.as_object().into_iter().flatten() {
        if let Some((kind, body)) = spec.as_object().and_then(kind_of) {
            let column = column(name, kind, body, mapping)?;
            for source in sources(&column, kind == "geo_bounds") {
                registry.register(&source.name(), std::sync::Arc::new(source.provider()));
            }
        }
        if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            register(subs, mapping, registry)?;
        }
    }
    Ok(())
}

/// Shows every geo metric in `value` as Elasticsearch does.
pub(crate) fn reshape(value: &mut Value) -> Result<(), SearchError> {
    crate::planned::reshape_all(value, MARK, None, &mut |raw, plan: Plan, _| {
        Ok(if plan.bounds {
            bounds(&raw, plan.wrap)
        } else {
            centroid(&raw)
        })
    })
}

fn metric(raw: &Value, name: &str) -> Option<f64> {
    raw[name]["value"].as_f64()
}

fn bounds(raw: &Value, wrap: bool) -> Value {
    let (Some(top), Some(bottom)) = (metric(raw, "top"), metric(raw, "bottom")) else {
        return json!({});
    };
    let east = metric(raw, "east_left").zip(metric(raw, "east_right"));
    let west = metric(raw, "west_left").zip(metric(raw, "west_right"));
    let (left, right) = match (east, west) {
        (Some(east), None) => east,
        (None, Some(west)) => west,
        (Some((east_left, east_right)), Some((west_left, west_right))) => {
            // Across Greenwich, or across the antimeridian when that box is narrower.
            let unwrapped = east_right - west_left;
            let wrapped = (180.0 - east_left) + (west_right + 180.0);
            if !wrap || unwrapped <= wrapped {
                (west_left, east_right)
            } else {
                (east_left, west_right)
            }
        }
        (None, None) => return json!({}),
    };
    json!({"bounds": {
        "top_left": {"lat": top, "lon": left},
        "bottom_right": {"lat": bottom, "lon": right},
    }})
}

fn centroid(raw: &Value) -> Value {
    let count = raw["count"]["value"].as_f64().unwrap_or(0.0) as u64;
    match (metric(raw, "lat"), metric(raw, "lon")) {
        (Some(lat), Some(lon)) if count > 0 => {
            json!({"location": {"lat": lat, "lon": lon}, "count": count})
        }
        _ => json!({"count": count}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cross_the_antimeridian_when_narrower() {
        let raw = json!({"top": {"value": 10.0}, "bottom": {"value": -5.0},
            "east_left": {"value": 170.0}, "east_right": {"value": 175.0},
            "west_left": {"value": -178.0}, "west_right": {"value": -170.0}});
        assert_eq!(
            bounds(&raw, true)["bounds"]["top_left"]["lon"],
            json!(170.0)
        );
        assert_eq!(
            bounds(&raw, true)["bounds"]["bottom_right"]["lon"],
            json!(-170.0)
        );
        assert_eq!(
            bounds(&raw, false)["bounds"]["top_left"]["lon"],
            json!(-178.0)
        );
        assert_eq!(bounds(&json!({}), true), json!({}));
        let mean = json!({"lat": {"value": 1.0}, "lon": {"value": 2.0}, "count": {"value": 3.0}});
        assert_eq!(
            centroid(&mean),
            json!({"location": {"lat": 1.0, "lon": 2.0}, "count": 3})
        );
    }
}
