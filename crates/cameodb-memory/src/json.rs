//! JSON parsed under the breaker: the same `serde_json::Value` serde_json builds, but the
//! parse polls the current account at every element, so a small body that expands into a huge
//! value (`[1,1,1,…]` is 2 bytes of input and 32+ bytes of `Value` per element) stops at the
//! limit instead of after it.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::BreakerError;

/// Why a body could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not valid JSON (or nested deeper than serde_json's 128 levels).
    #[error("{0}")]
    Syntax(serde_json::Error),
    /// The value grew past the current account's limit.
    #[error(transparent)]
    Breaker(BreakerError),
}

/// Parses `bytes` as one JSON value, giving up as soon as the current account trips.
pub fn from_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = CheckedValue
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(err) => match crate::check() {
            Err(breaker) => Err(JsonError::Breaker(breaker)),
            Ok(()) => Err(JsonError::Syntax(err)),
        },
    }
}

/// Builds a `Value`, checking the breaker before every array element and object member.
struct CheckedValue;

fn checked<E: serde::de::Error>() -> Result<(), E> {
    crate::check().map_err(|_| E::custom("the memory limit was reached"))
}

impl<'de> DeserializeSeed<'de> for CheckedValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(CheckedValue)
    }
}

impl<'de> Visitor<'de> for CheckedValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        checked()?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Value, E> {
        checked()?;
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        CheckedValue.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items: Vec<Value> = Vec::new();
        loop {
            checked::<A::Error>()?;
            if items.len() == items.capacity() {
                // The next push doubles the array in one allocation: it must fit first.
                let growth = items.capacity().max(4).saturating_mul(size_of::<Value>());
                crate::ensure_headroom(i64::try_from(growth).unwrap_or(i64::MAX))
                    .map_err(|_| A::Error::custom("the memory limit was reached"))?;
            }
            match seq.next_element_seed(CheckedValue)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        loop {
            checked::<A::Error>()?;
            let Some(key) = access.next_key::<String>()? else {
                return Ok(Value::Object(map));
            };
            let value = access.next_value_seed(CheckedValue)?;
            map.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_serde_json_parses() {
        for text in [
            r#"{"a":[1,-2,3.5,"x",true,null,{"b":{}}],"c":"\u00e9"}"#,
            "[]",
            "18446744073709551615",
            "\"s\"",
        ] {
            let ours = from_slice(text.as_bytes()).expect(text);
            let theirs: Value = serde_json::from_str(text).expect(text);
            assert_eq!(ours, theirs);
        }
        for bad in ["", "{", "[1,]", "{} {}", &"[".repeat(200)] {
            assert!(
                matches!(from_slice(bad.as_bytes()), Err(JsonError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
