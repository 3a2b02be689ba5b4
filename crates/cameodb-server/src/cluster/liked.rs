//! The documents a `more_like_this` likes by `_id`, read before the search fans out so every
//! node selects terms from the same text (Elasticsearch reads them in its rewrite phase).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::ClusterCtx;
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::messages::DocRead;
use cameodb_search::{QuerySpec, SearchSpec};

/// Most documents one search may like by `_id`: each is a read before the search starts.
pub const MAX_LIKED_DOCUMENTS: usize = 100;

/// `spec` with the sources of the documents its `more_like_this` clauses like by `_id` in
/// place (as `{"doc": source, "_id": id}`); the spec itself when there are none.
pub async fn resolve(
    ctx: &ClusterCtx,
    entries: &[Arc<IndexEntry>],
    spec: &SearchSpec,
) -> Result<SearchSpec, ApiError> {
    let QuerySpec::Dsl(query) = &spec.query else {
        return Ok(spec.clone());
    };
    let wanted = cameodb_query::liked_documents(query);
    if wanted.is_empty() {
        return Ok(spec.clone());
    }
    if wanted.len() > MAX_LIKED_DOCUMENTS {
        return Err(ApiError::illegal_argument(format!(
            "[more_like_this] likes [{}] documents by [_id], more than the [{MAX_LIKED_DOCUMENTS}] allowed",
            wanted.len()
        )));
    }
    let mut sources: HashMap<(Option<String>, String), Value> = HashMap::new();
    for (index, id, routing) in wanted {
        let name = match (&index, entries) {
            (Some(name), _) => name.clone(),
            (None, [only]) => only.name.clone(),
            (None, _) => {
                return Err(ApiError::illegal_argument(
                    "[more_like_this] a document liked by [_id] needs [_index] when the search reads several indexes",
                ));
            }
        };
        let read = DocRead {
            index: name,
            id: id.clone(),
            routing,
            refresh: false,
            local: false,
        };
        if let Some(found) = super::docs::read(ctx, read).await? {
            let source: Value = serde_json::from_slice(&found.source)
                .map_err(|e| ApiError::internal(format!("stored source is not JSON: {e}")))?;
            sources.insert((index, id), source);
        }
    }
    let mut query = query.clone();
    cameodb_query::with_liked_documents(&mut query, &|index, id| {
        sources
            .get(&(index.map(String::from), id.to_string()))
            .cloned()
    });
    Ok(SearchSpec {
        query: QuerySpec::Dsl(query),
        ..spec.clone()
    })
}
