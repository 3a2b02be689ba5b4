//! The search entry point: run a tantivy query, return ids, scores and sources.

use tantivy::DocAddress;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::Query;

use crate::error::Result;
use crate::id::DocKey;
use crate::kv::StoredDoc;
use crate::store::Store;

/// One hit.
#[derive(Clone, Debug)]
pub struct SearchHit {
    /// The document's key.
    pub key: DocKey,
    /// BM25 score.
    pub score: f32,
    /// The document as it was in the snapshot that matched it.
    pub doc: StoredDoc,
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
            .map(|((score, _), (key, doc))| SearchHit { key, score, doc })
            .collect();
        Ok(SearchResults { total, hits })
    }
}
