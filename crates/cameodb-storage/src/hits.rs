//! Which document, and which version of it, a hit is: read from the fast fields of the
//! snapshot that matched it.

use tantivy::{DocAddress, Searcher};

use crate::error::{Result, StoreError};
use crate::id::{DocId, DocKey};
use cameodb_schema::fields::{ID_FIELD, SEQ_FIELD, TOKEN_FIELD};

/// Reads the keys of `addresses` from the `_id` and `_token` fast fields.
pub fn hit_keys(searcher: &Searcher, addresses: &[DocAddress]) -> Result<Vec<DocKey>> {
    let missing = || StoreError::Index("hit has no _id".into());
    addresses
        .iter()
        .map(|addr| {
            let fast = searcher.segment_reader(addr.segment_ord).fast_fields();
            let ids = fast.str(ID_FIELD)?.ok_or_else(missing)?;
            let ord = ids.ords().first(addr.doc_id).ok_or_else(missing)?;
            let mut id = String::new();
            ids.ord_to_str(ord, &mut id)?;
            let token = fast
                .u64(TOKEN_FIELD)?
                .first(addr.doc_id)
                .ok_or_else(missing)?;
            Ok(DocKey {
                token,
                id: DocId::new(id)?,
            })
        })
        .collect()
}

/// Reads the keys and sequence numbers of `addresses` from the `_id`, `_token` and `_seq` fast
/// fields: which version of which document each hit is.
pub(crate) fn hit_seqs(
    searcher: &Searcher,
    addresses: &[DocAddress],
) -> Result<Vec<(DocKey, u64)>> {
    let keys = hit_keys(searcher, addresses)?;
    let missing = || StoreError::Index("hit has no _seq".into());
    keys.into_iter()
        .zip(addresses)
        .map(|(key, addr)| {
            let seq = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64(SEQ_FIELD)?
                .first(addr.doc_id)
                .ok_or_else(missing)?;
            Ok((key, seq))
        })
        .collect()
}
