//! `geohash_grid` and `geotile_grid`: documents bucketed by the grid cell their points fall in.
//!
//! Each cell is a number computed per point (a tantivy value source registered per request:
//! the geohash's bits, or a map tile's `x << 32 | y`); a `terms` aggregation over it counts
//! the documents of each cell, merged across nodes like any terms, and the keys are shown back
//! as Elasticsearch spells cells (`u09tv`, `7/64/42`).

use std::f64::consts::PI;

use cameodb_schema::fields::EXACT_FIELD;
use cameodb_schema::mapping::geo::GeoPoint;
use cameodb_schema::mapping::{Mapping, Variant};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tantivy::aggregation::ValueSourceRegistry;
use tantivy::columnar::{ColumnType, MonotonicallyMappableToU64};

use crate::error::SearchError;

/// Marks a grid aggregation's name; its plan is written between two of them.
const MARK: char = '\u{f}';

/// Start of a cell source's name.
const SOURCE: &str = "\u{f}cell\u{f}";

const GEOHASH_ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// Which grid, at which precision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Grid {
    /// Geohash cells of 1 to 12 characters.
    Geohash(u32),
    /// Web map tiles at zoom 0 to 29.
    Tile(u32),
}

impl Grid {
    /// The cell of `point`, as a number.
    fn cell(self, point: GeoPoint) -> i64 {
        match self {
            Grid::Geohash(chars) => {
                let (mut lat, mut lon) = ((-90.0f64, 90.0f64), (-180.0f64, 180.0f64));
                let mut bits = 0i64;
                for n in 0..chars * 5 {
                    let (range, value) = if n % 2 == 0 {
                        (&mut lon, point.lon)
                    } else {
                        (&mut lat, point.lat)
                    };
                    let mid = (range.0 + range.1) / 2.0;
                    bits <<= 1;
                    if value >= mid {
                        bits |= 1;
                        range.0 = mid;
                    } else {
                        range.1 = mid;
                    }
                }
                bits
            }
            Grid::Tile(zoom) => {
                let tiles = f64::from(1u32 << zoom);
                let max = (1i64 << zoom) - 1;
                let x = ((point.lon + 180.0) / 360.0 * tiles).floor() as i64;
                let lat = point
                    .lat
                    .clamp(-85.051_128_779_806_59, 85.051_128_779_806_59)
                    .to_radians();
                let y =
                    ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * tiles).floor() as i64;
                (x.clamp(0, max) << 32) | y.clamp(0, max)
            }
        }
    }

    /// A cell number as Elasticsearch spells the cell.
    fn spelled(self, cell: i64) -> String {
        match self {
            Grid::Geohash(chars) => (0..chars)
                .rev()
                .map(|n| GEOHASH_ALPHABET[((cell >> (5 * n)) & 31) as usize] as char)
                .collect(),
            Grid::Tile(zoom) => format!("{zoom}/{}/{}", cell >> 32, cell & 0xffff_ffff),
        }
    }
}

#[derive(Clone, Debug)]
struct Cells {
    column: String,
    grid: Grid,
}

impl Cells {
    /// The provider tantivy reads the cells through.
    fn provider(&self) -> crate::mapped_source::Mapped {
        let grid = self.grid;
        crate::mapped_source::Mapped {
            column: self.column.clone(),
            input: ColumnType::I64,
            output: ColumnType::I64,
            map: std::sync::Arc::new(move |raw| {
                Some(grid.cell(GeoPoint::decode(i64::from_u64(raw))).to_u64())
            }),
        }
    }

    fn name(&self) -> String {
        format!("{SOURCE}{}\u{f}{:?}", self.column, self.grid)
    }
}

fn parsing(reason: String) -> SearchError {
    SearchError::bad_request("parsing_exception", reason)
}

/// The grid kind of `spec` and its body.
fn kind_of(spec: &Map<String, Value>) -> Option<(&'static str, &Value)> {
    ["geohash_grid", "geotile_grid"]
        .into_iter()
        .find_map(|kind| spec.get(kind).map(|body| (kind, body)))
}

/// The cells, size and column a grid body asks for.
fn cells(
    name: &str,
    kind: &str,
    body: &Value,
    mapping: &Mapping,
) -> Result<(Cells, u64), SearchError> {
    let body = body
        .as_object()
        .ok_or_else(|| parsing(format!("[{kind}] aggregation [{name}] must be an object")))?;
    if let Some(key) = body
        .keys()
        .find(|k| !["field", "precision", "size", "shard_size"].contains(&k.as_str()))
    {
        return Err(parsing(format!(
            "[{key}] of [{kind}] aggregation [{name}] is not supported"
        )));
    }
    let field = body
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing(format!("[{kind}] aggregation [{name}] requires [field]")))?;
    let column = match mapping.resolve(field) {
        Some((path, f)) if f.variant == Some(Variant::GeoPoint) => format!("{EXACT_FIELD}.{path}"),
        _ => {
            return Err(SearchError::illegal_argument(format!(
                "field [{field}] of [{kind}] aggregation [{name}] is not a geo_point field"
            )));
        }
    };
    let (default, max) = if kind == "geohash_grid" {
        (5, 12)
    } else {
        (7, 29)
    };
    let precision = match body.get("precision") {
        None => default,
        Some(v) => v
            .as_u64()
            .filter(|p| (if kind == "geohash_grid" { 1 } else { 0 }..=max).contains(p))
            .ok_or_else(|| {
                SearchError::illegal_argument(format!(
                    "Invalid geo grid precision of [{v}] for [{name}]: must be from {} to {max}",
                    if kind == "geohash_grid" { 1 } else { 0 }
                ))
            })? as u32,
    };
    let grid = if kind == "geohash_grid" {
        Grid::Geohash(precision)
    } else {
        Grid::Tile(precision)
    };
    let size = body.get("size").and_then(Value::as_u64).unwrap_or(10_000);
    Ok((
        Cells { column, grid },
        size.clamp(1, u64::from(crate::aggregations::MAX_BUCKETS)),
    ))
}

/// What the reshaping needs.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    grid: Grid,
}

/// When `spec` is a grid aggregation, the name it runs under and the spec rewritten as a
/// terms over its cell source (sub-aggregations kept).
pub(crate) fn plan(
    name: &str,
    spec: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Option<crate::calendar_histogram::Rewritten>, SearchError> {
    let Some((kind, body)) = kind_of(spec) else {
        return Ok(None);
    };
    let (cells, size) = cells(name, kind, body, mapping)?;
    let mut rewritten = spec.clone();
    rewritten.remove(kind);
    rewritten.insert(
        crate::calendar_histogram::SOURCE_TERMS.into(),
        json!({"field": cells.name(), "size": size}),
    );
    let plan = Plan { grid: cells.grid };
    Ok(Some((crate::planned::name(name, MARK, &plan)?, rewritten)))
}

/// Registers the cell source of every grid aggregation in `aggs`, at every level.
pub(crate) fn register(
    aggs: &Value,
    mapping: &Mapping,
    registry: &mut ValueSourceRegistry,
) -> Result<(), SearchError> {
    for (name, spec) in aggs.as_object().into_iter().flatten() {
        if let Some((kind, body)) = spec.as_object().and_then(kind_of) {
            let (cells, _) = cells(name, kind, body, mapping)?;
            registry.register(&cells.name(), std::sync::Arc::new(cells.provider()));
        }
        if let Some(subs) = spec.get("aggs").or_else(|| spec.get("aggregations")) {
            register(subs, mapping, registry)?;
        }
    }
    Ok(())
}

/// Shows every grid aggregation's keys as cells.
pub(crate) fn reshape(value: &mut Value) -> Result<(), SearchError> {
    crate::planned::reshape_all(value, MARK, None, &mut |mut raw, plan: Plan, _| {
        let buckets: Vec<Value> = match raw.get_mut("buckets").map(Value::take) {
            Some(Value::Array(buckets)) => buckets
                .into_iter()
                .map(|mut bucket| {
                    let cell = bucket["key"]
                        .as_i64()
                        .or_else(|| bucket["key"].as_f64().map(|f| f as i64));
                    if let Some(cell) = cell {
                        bucket["key"] = Value::String(plan.grid.spelled(cell));
                    }
                    if let Some(object) = bucket.as_object_mut() {
                        object.remove("key_as_string");
                    }
                    bucket
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(json!({"buckets": buckets}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_spelled_as_elasticsearch_spells_them() {
        let point = GeoPoint::new(52.374081, 4.912350).unwrap();
        let hash = Grid::Geohash(5);
        assert_eq!(hash.spelled(hash.cell(point)), "u173z");
        let tile = Grid::Tile(8);
        assert_eq!(tile.spelled(tile.cell(point)), "8/131/84");
        assert_eq!(Grid::Tile(0).spelled(Grid::Tile(0).cell(point)), "0/0/0");
    }
}
