//! The `geo_distance` aggregation: documents bucketed by their distance from an origin.
//!
//! tantivy's range aggregation runs over a computed value source (registered per request under
//! a name that spells its parameters): each document's distances, from its encoded points, in
//! the request's unit. Ranges merge across indexes and nodes like any range aggregation; the
//! buckets are shown back with Elasticsearch's keys (`*-100.0`, `100.0-300.0`).

use std::sync::Arc;

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::geo::{self, GeoPoint};
use cameodb_schema::mapping::{Mapping, Variant};
use serde_json::{Map, Value, json};
use tantivy::aggregation::ValueSourceRegistry;
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};

use crate::error::SearchError;

/// Marks a `geo_distance` aggregation's name, for its buckets to be reshaped.
const MARK: char = '\u{b}';

/// Start of a computed distance source's name.
const SOURCE: &str = "\u{b}distance\u{b}";

/// Distances from one origin to the points of one field.
#[derive(Clone, Debug)]
struct Distances {
    /// The field's column (`_exact.<path>`).
    column: String,
    origin: GeoPoint,
    /// Metres per unit of the values.
    unit_metres: f64,
    /// `distance_type: plane`.
    plane: bool,
}

impl Distances {
    /// The provider tantivy reads the distances through.
    fn provider(&self) -> crate::mapped_source::Mapped {
        let spec = self.clone();
        crate::mapped_source::Mapped {
            column: self.column.clone(),
            input: ColumnType::I64,
            output: ColumnType::F64,
            map: std::sync::Arc::new(move |raw| {
                let point = GeoPoint::decode(i64::from_u64(raw));
                let metres = if spec.plane {
                    spec.origin.plane_distance(point)
                } else {
                    spec.origin.arc_distance(point)
                };
                Some((metres / spec.unit_metres).to_u64())
            }),
        }
    }

    /// The source's name: its parameters spelled out, so equal requests share one.
    fn name(&self) -> String {
        format!(
            "{SOURCE}{}\u{b}{}\u{b}{}\u{b}{}\u{b}{}",
            self.column, self.origin.lat, self.origin.lon, self.unit_metres, self.plane
        )
    }
}

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

fn distances(
    name: &str,
    body: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Distances, SearchError> {
    let field = body.get("field").and_then(Value::as_str).ok_or_else(|| {
        parsing(format!(
            "[geo_distance] aggregation [{name}] requires [field]"
        ))
    })?;
    let path = match mapping.resolve(field) {
        Some((path, f)) if f.variant == Some(Variant::GeoPoint) => path.to_string(),
        _ => {
            return Err(SearchError::illegal_argument(format!(
                "field [{field}] of [geo_distance] aggregation [{name}] is not a geo_point field"
            )));
        }
    };
    let origin = body.get("origin").ok_or_else(|| {
        parsing(format!(
            "[geo_distance] aggregation [{name}] requires [origin]"
        ))
    })?;
    let origin =
        geo::parse_point(origin).map_err(|e| parsing(format!("[origin] of [{name}]: {e}")))?;
    let unit_metres = geo::unit(body.get("unit").and_then(Value::as_str).unwrap_or("m"))
        .map_err(|e| parsing(format!("[{name}]: {e}")))?;
    let plane = match body.get("distance_type").and_then(Value::as_str) {
        None | Some("arc") => false,
        Some("plane") => true,
        Some(other) => return Err(parsing(format!("[{name}] unknown distance_type [{other}]"))),
    };
    Ok(Distances {
        column: format!("{EXACT_FIELD}.{path}"),
        origin,
        unit_metres,
        plane,
    })
}

/// The name a `geo_distance` aggregation runs under.
pub(crate) fn marked(name: &str) -> String {
    format!("{name}{MARK}")
}

/// A `geo_distance` body as tantivy's `range` over its distance source.
pub(crate) fn rewrite(name: &str, body: &Value, mapping: &Mapping) -> Result<Value, SearchError> {
    let body = body.as_object().ok_or_else(|| {
        parsing(format!(
            "[geo_distance] aggregation [{name}] must be an object"
        ))
    })?;
    const PARAMS: &[&str] = &[
        "field",
        "origin",
        "unit",
        "distance_type",
        "ranges",
        "keyed",
    ];
    if let Some(key) = body.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(parsing(format!(
            "[{key}] of [geo_distance] aggregation [{name}] is not supported"
        )));
    }
    let source = distances(name, body, mapping)?;
    let ranges = body
        .get("ranges")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            parsing(format!(
                "[geo_distance] aggregation [{name}] requires [ranges]"
            ))
        })?;
    let mut range = json!({"field": source.name(), "ranges": ranges});
    if let Some(keyed) = body.get("keyed") {
        range["keyed"] = keyed.clone();
    }
    Ok(range)
}

/// Registers the distance sources `aggs` (an Elasticsearch request) needs, at every level.
pub(crate) fn register(
    aggs: &Value,
    mapping: &Mapping,
    registry: &mut ValueSourceRegistry,
) -> Result<(), SearchError> {
    for (name, spec) in aggs.as_object().into_iter().flatten() {
        if let Some(Value::Object(body)) = spec.get("geo_distance") {
            let source = distances(name, body, mapping)?;
            registry.register(&source.name(), Arc::new(source.provider()));
        }
        if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            register(subs, mapping, registry)?;
        }
    }
    Ok(())
}

/// A bound as Elasticsearch spells it in keys (`100.0`).
fn spelled(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

/// Shows `geo_distance` buckets as Elasticsearch does: distances start at 0, and generated
/// keys spell their bounds as floats.
pub(crate) fn reshape(value: &mut Value) {
    crate::agg_shapes::unmark_all(value, MARK, &|result| {
        crate::agg_shapes::for_each_bucket(result, &|bucket| {
            let Some(bucket) = bucket.as_object_mut() else {
                return;
            };
            let from = bucket.get("from").and_then(Value::as_f64);
            let to = bucket.get("to").and_then(Value::as_f64);
            let bound = |v: Option<f64>, show: &dyn Fn(f64) -> String| v.map_or("*".into(), show);
            let generated = format!(
                "{}-{}",
                bound(from, &|v| v.to_string()),
                bound(to, &|v| v.to_string())
            );
            if bucket.get("key").and_then(Value::as_str) == Some(generated.as_str()) {
                let key = format!("{}-{}", bound(from, &spelled), bound(to, &spelled));
                bucket.insert("key".into(), Value::String(key));
            }
            if from.is_none() {
                bucket.insert("from".into(), json!(0.0));
            }
        })
    });
}
