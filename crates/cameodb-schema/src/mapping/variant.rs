//! Elasticsearch field types that CameoDB indexes as one of its base types with one twist each:
//! a coarser number (`half_float`, `scaled_float`), a narrower range (`unsigned_long`), one
//! value for every document (`constant_keyword`), constant scores (`match_only_text`), an
//! address encoded so that its order is numeric order (`ip`), or nothing at all (`wildcard`,
//! whose queries are a keyword's).
//!
//! The variant rides beside the base [`FieldType`] in the mapping, so everything that works on
//! the base type (columns, aggregations, sorting) works on the variant unchanged; only the few
//! places where the twist matters ask for it.

use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::FieldType;

/// The twist a field type puts on its base type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Variant {
    /// A float held at half precision, as Elasticsearch's doc values hold it.
    HalfFloat,
    /// A double held as a whole multiple of `1 / scaling_factor`.
    ScaledFloat {
        /// What values are multiplied by before rounding to a whole number (required).
        scaling_factor: f64,
    },
    /// A long that refuses negative values. CameoDB's columns are signed, so values above
    /// `i64::MAX` are refused by name too.
    UnsignedLong,
    /// Every document holds `value`; a document that names another is refused.
    ConstantKeyword {
        /// The value; `None` until the first document that has the field sets it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// A keyword for grep-like queries; CameoDB's keyword queries already serve them.
    Wildcard,
    /// Text whose every query scores a constant 1.0 (times its boost).
    MatchOnlyText,
    /// An IPv4 or IPv6 address, indexed as [`encode_ip`] spells it.
    Ip,
    /// A whole object held as keywords: each leaf value under the field itself (a query on the
    /// field matches any leaf) and under `<field>.<key path>` (a query there matches that key).
    Flattened {
        /// `depth_limit`: deepest object nesting accepted inside the field.
        depth_limit: u32,
    },
    /// Text for as-you-type completion: besides the field, subfields of word shingles
    /// (`._2gram` up to `._<max>gram`) and of their edge n-grams (`._index_prefix`), made when
    /// the mapping is read.
    SearchAsYouType {
        /// `max_shingle_size`: 2 to 4.
        max_shingle_size: u8,
    },
    /// Inputs offered for completion (the completion suggester), each with a weight: indexed
    /// as keywords in their normalized form (see [`super::completion`]).
    Completion {
        /// `max_input_length`: characters of an input kept.
        max_input_length: u32,
        /// `preserve_separators`: tokens of an input stay apart.
        preserve_separators: bool,
    },
    /// A latitude / longitude pair, indexed as one integer (see [`super::geo`]); only the geo
    /// queries, the `_geo_distance` sort and `exists` read it.
    GeoPoint,
    /// Another name for the field at `path`: queries, aggregations and sorts on it read that
    /// field; documents cannot write to it.
    Alias {
        /// The full dotted path of the field it stands for.
        path: String,
    },
    /// An object whose array elements are indexed each as its own hidden document beside the
    /// parent, so a `nested` query matches fields of one element together (see
    /// [`super::nested`]).
    Nested {
        /// `include_in_parent`: the element's fields are also indexed in the parent document,
        /// as an object's would be.
        #[serde(default)]
        include_in_parent: bool,
        /// `include_in_root`: the same, in the root document.
        #[serde(default)]
        include_in_root: bool,
    },
}

impl Variant {
    /// The variant a type name declares, with its parameters at their defaults.
    pub fn from_name(name: &str) -> Option<Variant> {
        Some(match name {
            "half_float" => Variant::HalfFloat,
            "scaled_float" => Variant::ScaledFloat {
                scaling_factor: 0.0,
            },
            "unsigned_long" => Variant::UnsignedLong,
            "constant_keyword" => Variant::ConstantKeyword { value: None },
            "wildcard" => Variant::Wildcard,
            "match_only_text" => Variant::MatchOnlyText,
            "ip" => Variant::Ip,
            "geo_point" => Variant::GeoPoint,
            "completion" => Variant::Completion {
                max_input_length: super::completion::DEFAULT_MAX_INPUT_LENGTH,
                preserve_separators: true,
            },
            "search_as_you_type" => Variant::SearchAsYouType {
                max_shingle_size: 3,
            },
            "flattened" => Variant::Flattened {
                depth_limit: DEFAULT_FLATTENED_DEPTH,
            },
            "alias" => Variant::Alias {
                path: String::new(),
            },
            "nested" => Variant::Nested {
                include_in_parent: false,
                include_in_root: false,
            },
            _ => return None,
        })
    }

    /// The Elasticsearch name of the type.
    pub fn name(&self) -> &'static str {
        match self {
            Variant::HalfFloat => "half_float",
            Variant::ScaledFloat { .. } => "scaled_float",
            Variant::UnsignedLong => "unsigned_long",
            Variant::ConstantKeyword { .. } => "constant_keyword",
            Variant::Wildcard => "wildcard",
            Variant::MatchOnlyText => "match_only_text",
            Variant::Ip => "ip",
            Variant::GeoPoint => "geo_point",
            Variant::Completion { .. } => "completion",
            Variant::SearchAsYouType { .. } => "search_as_you_type",
            Variant::Flattened { .. } => "flattened",
            Variant::Alias { .. } => "alias",
            Variant::Nested { .. } => "nested",
        }
    }

    /// The base type the variant is indexed as.
    pub fn base(&self) -> FieldType {
        match self {
            Variant::HalfFloat => FieldType::Float,
            Variant::ScaledFloat { .. } => FieldType::Double,
            Variant::UnsignedLong => FieldType::Long,
            Variant::ConstantKeyword { .. }
            | Variant::Wildcard
            | Variant::Ip
            | Variant::Flattened { .. }
            | Variant::Completion { .. } => FieldType::Keyword,
            Variant::MatchOnlyText | Variant::SearchAsYouType { .. } => FieldType::Text,
            // A number column holds it; what reads numbers refuses it by name.
            Variant::GeoPoint => FieldType::Long,
            // Holds nothing itself, like an object.
            Variant::Alias { .. } | Variant::Nested { .. } => FieldType::Object,
        }
    }

    /// The mapping parameters the variant takes besides `type`; `None` means its base type's.
    pub fn parameters(&self) -> Option<&'static [&'static str]> {
        match self {
            Variant::ConstantKeyword { .. } => Some(&["value", "meta"]),
            Variant::MatchOnlyText => Some(&["fields", "meta"]),
            Variant::Alias { .. } => Some(&["path"]),
            Variant::Nested { .. } => Some(&[
                "properties",
                "dynamic",
                "include_in_parent",
                "include_in_root",
            ]),
            Variant::Wildcard => Some(&["null_value", "ignore_above", "meta"]),
            Variant::SearchAsYouType { .. } => Some(&[
                "analyzer",
                "search_analyzer",
                "search_quote_analyzer",
                "max_shingle_size",
                "index",
                "store",
                "similarity",
                "term_vector",
                "norms",
                "index_options",
                "meta",
            ]),
            Variant::Completion { .. } => Some(&[
                "analyzer",
                "search_analyzer",
                "preserve_separators",
                "preserve_position_increments",
                "max_input_length",
                "meta",
            ]),
            Variant::Flattened { .. } => Some(&[
                "depth_limit",
                "ignore_above",
                "index",
                "doc_values",
                "eager_global_ordinals",
                "similarity",
                "split_queries_on_whitespace",
                "meta",
            ]),
            Variant::GeoPoint => Some(&[
                "ignore_malformed",
                "ignore_z_value",
                "index",
                "doc_values",
                "store",
                "meta",
            ]),
            Variant::Ip => Some(&[
                "null_value",
                "index",
                "doc_values",
                "store",
                "meta",
                "ignore_malformed",
                "time_series_dimension",
            ]),
            _ => None,
        }
    }

    /// A number as the variant holds it: rounded to half precision or to the scale.
    pub fn round(&self, number: f64) -> f64 {
        match self {
            Variant::HalfFloat => half::f16::from_f64(number).to_f64(),
            Variant::ScaledFloat { scaling_factor } => {
                (number * scaling_factor).round() / scaling_factor
            }
            _ => number,
        }
    }
}

/// `depth_limit` of a `flattened` field unless its mapping says otherwise (Elasticsearch's).
pub const DEFAULT_FLATTENED_DEPTH: u32 = 20;

/// Number of characters in an encoded address.
const IP_CHARS: usize = 32;

/// An address as the index holds it: the 128 bits of its IPv6 form (IPv4 mapped, as
/// Elasticsearch maps it) in fixed-width hex, so that string order is address order and a
/// CIDR block is one string range.
pub fn encode_ip(address: IpAddr) -> String {
    let v6 = match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    format!("{:032x}", u128::from(v6))
}

/// The address an encoded string stands for, shown as Elasticsearch shows it (IPv4 for a
/// mapped address).
pub fn decode_ip(encoded: &str) -> Option<String> {
    if encoded.len() != IP_CHARS {
        return None;
    }
    let bits = u128::from_str_radix(encoded, 16).ok()?;
    let v6 = Ipv6Addr::from(bits);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => v6.to_string(),
    })
}

/// The first and last encoded addresses of `text`: one address (both ends the same) or a CIDR
/// block (`10.0.0.0/8`, `2001:db8::/32`). `None` when `text` is neither.
pub fn ip_range(text: &str) -> Option<(String, String)> {
    let (address, prefix) = match text.split_once('/') {
        None => {
            let address: IpAddr = text.trim().parse().ok()?;
            let encoded = encode_ip(address);
            return Some((encoded.clone(), encoded));
        }
        Some((address, prefix)) => (address.trim().parse::<IpAddr>().ok()?, prefix),
    };
    let prefix: u32 = prefix.trim().parse().ok()?;
    let (bits, prefix) = match address {
        IpAddr::V4(v4) if prefix <= 32 => (u128::from(v4.to_ipv6_mapped()), prefix + 96),
        IpAddr::V6(v6) if prefix <= 128 => (u128::from(v6), prefix),
        _ => return None,
    };
    let host_mask = u128::MAX.checked_shr(prefix).unwrap_or(0);
    let low = bits & !host_mask;
    let high = bits | host_mask;
    Some((format!("{low:032x}"), format!("{high:032x}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cidr_blocks_are_string_ranges() {
        let (low, high) = ip_range("192.168.0.0/16").unwrap();
        let inside = encode_ip("192.168.42.7".parse().unwrap());
        let outside = encode_ip("192.169.0.1".parse().unwrap());
        assert!(low <= inside && inside <= high);
        assert!(outside > high);
        assert_eq!(decode_ip(&low).unwrap(), "192.168.0.0");
        assert_eq!(decode_ip(&high).unwrap(), "192.168.255.255");
        let (low, high) = ip_range("2001:db8::/32").unwrap();
        assert_eq!(decode_ip(&low).unwrap(), "2001:db8::");
        assert_eq!(
            decode_ip(&high).unwrap(),
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(
            ip_range("0.0.0.0/0").unwrap().1,
            encode_ip("255.255.255.255".parse().unwrap())
        );
        assert!(ip_range("10.0.0.0/33").is_none());
        assert!(ip_range("not an ip").is_none());
        assert!(ip_range("10.0.0.1/x").is_none());
    }

    #[test]
    fn scaled_and_half_floats_round_as_elasticsearch_holds_them() {
        let scaled = Variant::ScaledFloat {
            scaling_factor: 100.0,
        };
        assert_eq!(scaled.round(1.2345), 1.23);
        assert_eq!(Variant::HalfFloat.round(0.1), 0.0999755859375);
        assert_eq!(Variant::Wildcard.round(0.1), 0.1);
    }

    proptest! {
        #[test]
        fn encoding_keeps_address_order(a: u128, b: u128) {
            let (x, y) = (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)));
            prop_assert_eq!(a.cmp(&b), encode_ip(x).cmp(&encode_ip(y)));
            let decoded: IpAddr = decode_ip(&encode_ip(x)).unwrap().parse().unwrap();
            prop_assert_eq!(encode_ip(decoded), encode_ip(x));
        }
    }
}
