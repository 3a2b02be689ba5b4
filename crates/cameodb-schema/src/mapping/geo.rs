//! `geo_point`: the point forms Elasticsearch accepts, the one integer a point is indexed as,
//! distances and their units.
//!
//! A point is held as one `i64` — latitude in the high 31 bits, longitude in the low 32 — so a
//! document's latitudes and longitudes can never be paired wrongly, and both survive to about
//! a centimetre (180° / 2^31 and 360° / 2^32).

use serde_json::Value;

/// Mean Earth radius in metres (the sphere Elasticsearch's `arc` distance uses).
pub const EARTH_RADIUS_M: f64 = 6_371_008.771_4;

/// A point in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoPoint {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

impl GeoPoint {
    /// A point, if its coordinates are finite and in range.
    pub fn new(lat: f64, lon: f64) -> Result<GeoPoint, String> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(format!("illegal latitude value [{lat}]"));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("illegal longitude value [{lon}]"));
        }
        Ok(GeoPoint { lat, lon })
    }

    /// The indexed form (see the module comment).
    pub fn encode(self) -> i64 {
        let lat = ((self.lat + 90.0) / 180.0 * f64::from((1u32 << 31) - 1)).round() as i64;
        let lon = ((self.lon + 180.0) / 360.0 * f64::from(u32::MAX)).round() as i64;
        (lat << 32) | lon
    }

    /// The point an indexed value holds.
    pub fn decode(encoded: i64) -> GeoPoint {
        let lat = (encoded >> 32) as f64 / f64::from((1u32 << 31) - 1) * 180.0 - 90.0;
        let lon = (encoded & 0xffff_ffff) as f64 / f64::from(u32::MAX) * 360.0 - 180.0;
        GeoPoint { lat, lon }
    }

    /// Great-circle distance in metres (haversine on the mean-radius sphere).
    pub fn arc_distance(self, other: GeoPoint) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }

    /// Distance in metres on the plane tangent at the mean latitude (`distance_type: plane`).
    pub fn plane_distance(self, other: GeoPoint) -> f64 {
        let mean = ((self.lat + other.lat) / 2.0).to_radians();
        let mut dl = (other.lon - self.lon).abs();
        if dl > 180.0 {
            dl = 360.0 - dl;
        }
        let x = dl.to_radians() * mean.cos();
        let y = (other.lat - self.lat).to_radians();
        EARTH_RADIUS_M * (x * x + y * y).sqrt()
    }
}

fn coordinate(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True when `value` is one point written as `[lon, lat]` (or `[lon, lat, z]`), not a list.
pub fn is_coordinate_array(value: &Value) -> bool {
    matches!(value, Value::Array(items) if (2..=3).contains(&items.len()) && items.iter().all(Value::is_number))
}

/// One point in any of Elasticsearch's forms: `{"lat", "lon"}`, GeoJSON `{"type": "Point",
/// "coordinates": [lon, lat]}`, `[lon, lat]`, `"lat,lon"`, a geohash, or WKT `POINT (lon lat)`.
pub fn parse_point(value: &Value) -> Result<GeoPoint, String> {
    match value {
        Value::Object(map) => {
            if let Some(coordinates) = map.get("coordinates") {
                return parse_point(coordinates);
            }
            let lat = map.get("lat").and_then(coordinate);
            let lon = map.get("lon").and_then(coordinate);
            match (lat, lon) {
                (Some(lat), Some(lon)) => GeoPoint::new(lat, lon),
                _ => Err("field [lat] and [lon] must be valid numbers".into()),
            }
        }
        Value::Array(items) if is_coordinate_array(value) => {
            let lon = items[0].as_f64().unwrap_or(f64::NAN);
            let lat = items[1].as_f64().unwrap_or(f64::NAN);
            GeoPoint::new(lat, lon)
        }
        Value::String(text) => parse_text(text.trim()),
        other => Err(format!("unsupported geo point [{other}]")),
    }
}

fn parse_text(text: &str) -> Result<GeoPoint, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix("POINT") {
        let inner = rest.trim().trim_start_matches('(').trim_end_matches(')');
        let mut numbers = inner.split_whitespace().map(str::parse::<f64>);
        return match (numbers.next(), numbers.next()) {
            (Some(Ok(lon)), Some(Ok(lat))) => GeoPoint::new(lat, lon),
            _ => Err(format!("invalid WKT point [{text}]")),
        };
    }
    if let Some((lat, lon)) = text.split_once(',') {
        return match (lat.trim().parse(), lon.trim().parse()) {
            (Ok(lat), Ok(lon)) => GeoPoint::new(lat, lon),
            _ => Err(format!("unsupported symbol in geo point [{text}]")),
        };
    }
    geohash(text)
}

const GEOHASH_ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The centre of a geohash cell.
fn geohash(text: &str) -> Result<GeoPoint, String> {
    if text.is_empty() || text.len() > 12 {
        return Err(format!("unsupported geo point [{text}]"));
    }
    let (mut lat, mut lon) = ((-90.0f64, 90.0f64), (-180.0f64, 180.0f64));
    let mut even = true;
    for c in text.bytes() {
        let value = GEOHASH_ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_lowercase())
            .ok_or_else(|| format!("unsupported symbol [{}] in geohash [{text}]", c as char))?;
        for bit in (0..5).rev() {
            let on = (value >> bit) & 1 == 1;
            let range = if even { &mut lon } else { &mut lat };
            let mid = (range.0 + range.1) / 2.0;
            if on {
                range.0 = mid;
            } else {
                range.1 = mid;
            }
            even = !even;
        }
    }
    GeoPoint::new((lat.0 + lat.1) / 2.0, (lon.0 + lon.1) / 2.0)
}

/// Metres in one of a distance unit.
fn unit_metres(unit: &str) -> Option<f64> {
    Some(match unit {
        "" | "m" | "meters" => 1.0,
        "km" | "kilometers" => 1000.0,
        "cm" | "centimeters" => 0.01,
        "mm" | "millimeters" => 0.001,
        "mi" | "miles" => 1609.344,
        "yd" | "yards" => 0.9144,
        "ft" | "feet" => 0.3048,
        "in" | "inch" => 0.0254,
        "nmi" | "NM" | "nauticalmiles" => 1852.0,
        _ => return None,
    })
}

/// Metres in one `unit` (`km`, `mi`, …), for sort values and distances without a unit.
pub fn unit(unit: &str) -> Result<f64, String> {
    unit_metres(unit).ok_or_else(|| format!("unknown distance unit [{unit}]"))
}

/// A distance (`"12km"`, `"1.5mi"`, `200` metres) in metres.
pub fn parse_distance(value: &Value) -> Result<f64, String> {
    let metres = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => {
            let text = text.trim();
            let split = text
                .find(|c: char| c.is_ascii_alphabetic())
                .unwrap_or(text.len());
            let (number, suffix) = text.split_at(split);
            match (number.trim().parse::<f64>(), unit_metres(suffix.trim())) {
                (Ok(n), Some(factor)) => Some(n * factor),
                _ => None,
            }
        }
        _ => None,
    };
    metres
        .filter(|m| m.is_finite() && *m >= 0.0)
        .ok_or_else(|| format!("failed to parse distance [{value}]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_form_gives_the_same_point() {
        let forms = [
            json!({"lat": 41.12, "lon": -71.34}),
            json!({"lat": "41.12", "lon": "-71.34"}),
            json!([-71.34, 41.12]),
            json!("41.12,-71.34"),
            json!("POINT (-71.34 41.12)"),
            json!({"type": "Point", "coordinates": [-71.34, 41.12]}),
        ];
        for form in forms {
            let point = parse_point(&form).unwrap();
            assert!(
                (point.lat - 41.12).abs() < 1e-9 && (point.lon + 71.34).abs() < 1e-9,
                "{form}"
            );
        }
        let hashed = parse_point(&json!("drm3btev3e86")).unwrap();
        assert!((hashed.lat - 41.12).abs() < 1e-4 && (hashed.lon + 71.34).abs() < 1e-4);
        assert!(parse_point(&json!({"lat": 91, "lon": 0})).is_err());
        assert!(parse_point(&json!("not a point!")).is_err());
    }

    #[test]
    fn distances_and_units() {
        let paris = GeoPoint::new(48.8566, 2.3522).unwrap();
        let london = GeoPoint::new(51.5074, -0.1278).unwrap();
        let arc = paris.arc_distance(london);
        assert!((arc - 343_500.0).abs() < 1_500.0, "{arc}");
        assert!((paris.plane_distance(london) - arc).abs() / arc < 0.01);
        assert_eq!(parse_distance(&json!("12km")).unwrap(), 12_000.0);
        assert_eq!(parse_distance(&json!("1mi")).unwrap(), 1609.344);
        assert_eq!(parse_distance(&json!(200)).unwrap(), 200.0);
        assert!(parse_distance(&json!("12 parsecs")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn encoding_keeps_a_point_to_a_centimetre(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0) {
            let point = GeoPoint::new(lat, lon).unwrap();
            let back = GeoPoint::decode(point.encode());
            proptest::prop_assert!(point.arc_distance(back) < 0.02);
            proptest::prop_assert!(point.encode() >= 0);
        }
    }
}
