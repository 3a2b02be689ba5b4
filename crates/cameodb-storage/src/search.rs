//! The search entry point: run a tantivy query, return ids, scores and sources.

use tantivy::collector::{Count, TopDocs};
use tantivy::query::Query;
use tantivy::{DocAddress, Searcher};

use crate::error::{Result, StoreError};
use crate::id::{DocId, DocKey};
use crate::kv::StoredDoc;
use crate::store::Store;
use cameodb_schema::fields::{ID_FIELD, SEQ_FIELD, TOKEN_FIELD};

/// One hit.
#[derive(Clone, Debug)]
pub struct SearchHit {
    /// The document's key.
    pub key: DocKey,
    /// BM25 score.
    pub score: f32,
    /// The document as it was in the snapshot that matched it.
    pub doc: Option<StoredDoc>,
}

/// A page of hits and the total number of matches.
#[derive(Clone, Debug)]
pub struct SearchResults {
    /// Number of matching documents.
    pub total: usize,
    /// Hits `offset..offset+limit` by descending score.
    pub hits: Vec<SearchHit>,
}

impl Store {
    /// Runs `query`, returning the total and hits `offset..offset+limit` by score, with sources.
    pub fn search(&self, query: &dyn Query, offset: usize, limit: usize) -> Result<SearchResults> {
        let searcher = self.searcher();
        let (total, top) = if limit == 0 {
            (searcher.search(query, &Count)?, Vec::new())
        } else {
            let collector = (
                Count,
                TopDocs::with_limit(limit)
                    .and_offset(offset)
                    .order_by_score(),
            );
            searcher.search(query, &collector)?
        };
        let addresses: Vec<DocAddress> = top.iter().map(|(_, addr)| *addr).collect();
        let docs = self.snapshot_docs(&searcher, &addresses)?;
        let hits = top
            .into_iter()
            .zip(docs)
            .map(|((score, _), (key, doc))| SearchHit {
                key,
                score,
                doc: Some(doc),
            })
            .collect();
        Ok(SearchResults { total, hits })
    }
}

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
