//! Document ids: the ids this node generates and the keys (id + routing) documents are stored
//! and routed under.

use cameodb_storage::{DocId, DocKey};

use crate::error::ApiError;

/// A generated id like Elasticsearch's: 22 URL-safe characters, unique and time-ordered.
pub fn generate_id() -> String {
    // A time-ordered UUID (v7) in an alphabet sorted like ASCII: ids generated one after another
    // sort one after another, so the store's id-keyed table appends instead of scattering writes.
    const ALPHABET: &[u8] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    let bits = uuid::Uuid::now_v7().as_u128();
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let sextet = if shift >= 0 {
                bits >> shift
            } else {
                bits << -shift
            };
            ALPHABET[(sextet & 63) as usize] as char
        })
        .collect()
}

/// The key of document `id`, honouring `routing`.
pub fn doc_key(id: &str, routing: Option<&str>) -> Result<DocKey, ApiError> {
    Ok(DocKey::new(DocId::new(id)?, routing)?)
}

#[cfg(test)]
mod tests {
    use super::generate_id;

    #[test]
    fn generated_ids_are_url_safe_unique_and_sort_in_creation_order() {
        let ids: Vec<String> = (0..2000).map(|_| generate_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 22);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "each id sorts after the one before"
        );
    }
}
