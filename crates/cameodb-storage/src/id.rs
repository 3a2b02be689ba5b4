//! Document ids, routing tokens and the key that ties a document's KV row to its index entry.

use crate::error::{Result, StoreError};

/// Longest id accepted, in bytes, as in Elasticsearch.
pub const MAX_ID_BYTES: usize = 512;

/// A validated document id: 1 to 512 bytes of UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(String);

impl DocId {
    /// Validates an id given as a string.
    pub fn new(id: impl Into<String>) -> Result<DocId> {
        let id = id.into();
        if id.is_empty() {
            return Err(StoreError::InvalidId {
                reason: "id must not be empty".into(),
            });
        }
        if id.len() > MAX_ID_BYTES {
            return Err(StoreError::InvalidId {
                reason: format!(
                    "id [{}...] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {}",
                    id.chars().take(16).collect::<String>(),
                    id.len()
                ),
            });
        }
        Ok(DocId(id))
    }

    /// Validates an id given as raw bytes (as it arrives off the wire).
    pub fn from_bytes(bytes: &[u8]) -> Result<DocId> {
        let text = std::str::from_utf8(bytes).map_err(|_| StoreError::InvalidId {
            reason: "id is not valid utf-8".into(),
        })?;
        DocId::new(text)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ring token of a routing key: a stable 64-bit hash, identical on every node and release
/// (xxh3 with its fixed default seed), because the cluster places documents by it.
pub fn routing_token(routing_key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(routing_key.as_bytes())
}

/// Where a document lives: its ring token and its id. The pair is the redb key, so documents
/// are clustered by token and a token range is one range scan.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey {
    /// Hash of the routing key (the id unless a routing value was given).
    pub token: u64,
    /// The document id.
    pub id: DocId,
}

impl DocKey {
    /// Key for `id`, routed by `routing` when given and by the id otherwise.
    pub fn new(id: DocId, routing: Option<&str>) -> Result<DocKey> {
        let token = match routing {
            Some("") => {
                return Err(StoreError::InvalidRouting {
                    reason: "routing must not be empty".into(),
                });
            }
            Some(routing) => routing_token(routing),
            None => routing_token(id.as_str()),
        };
        Ok(DocKey { token, id })
    }

    /// Binary form used as the tantivy `_key` term and in WAL records: the token big-endian,
    /// then the id's bytes. Big-endian keeps byte order equal to key order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.id.0.len());
        out.extend_from_slice(&self.token.to_be_bytes());
        out.extend_from_slice(self.id.0.as_bytes());
        out
    }

    /// Inverse of [`DocKey::encode`]; `None` for bytes that no valid key encodes to.
    pub fn decode(bytes: &[u8]) -> Option<DocKey> {
        let (token, id) = bytes.split_first_chunk::<8>()?;
        let id = DocId::from_bytes(id).ok()?;
        Some(DocKey {
            token: u64::from_be_bytes(*token),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn id_limits() {
        assert!(DocId::new("").is_err());
        assert!(DocId::new("a".repeat(512)).is_ok());
        assert!(DocId::new("a".repeat(513)).is_err());
        assert!(DocId::from_bytes(&[0xff, 0xfe]).is_err());
        // 128 four-byte characters are exactly 512 bytes.
        assert!(DocId::new("😀".repeat(128)).is_ok());
        assert!(DocId::new("😀".repeat(129)).is_err());
    }

    #[test]
    fn routing_changes_token_and_empty_routing_is_rejected() {
        let id = DocId::new("1").unwrap();
        let plain = DocKey::new(id.clone(), None).unwrap();
        let routed = DocKey::new(id.clone(), Some("user-7")).unwrap();
        assert_eq!(plain.token, routing_token("1"));
        assert_eq!(routed.token, routing_token("user-7"));
        assert!(DocKey::new(id, Some("")).is_err());
    }

    proptest! {
        #[test]
        fn key_encoding_round_trips_and_keeps_order(
            a in (any::<u64>(), "[a-z0-9]{1,20}"),
            b in (any::<u64>(), "[a-z0-9]{1,20}"),
        ) {
            let ka = DocKey { token: a.0, id: DocId::new(a.1).unwrap() };
            let kb = DocKey { token: b.0, id: DocId::new(b.1).unwrap() };
            prop_assert_eq!(DocKey::decode(&ka.encode()), Some(ka.clone()));
            prop_assert_eq!(ka.cmp(&kb), ka.encode().cmp(&kb.encode()));
        }
    }
}
