//! `_mget`: several documents by id in one request, each read from its owner.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use cameodb_storage::PRIMARY_TERM;
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::error::ApiError;
use crate::messages::DocRead;
use crate::request::mget::parse_mget;
use crate::request::parse_object_body;
use crate::respond;

/// `/_mget` and `/{index}/_mget` (the path's index is the default for entries that name none).
pub async fn mget(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(&body)?;
    let default_index = index.map(|Path(index)| index);
    let mut wanted = parse_mget(default_index.as_deref(), &params, body.as_ref())?;
    // A document addressed through an alias is read from the alias's (write) index.
    let aliases = state.catalog.alias_map().await;
    for want in wanted.iter_mut() {
        if aliases.contains_key(&want.index)
            && let Ok(target) = crate::aliases::write_target(&want.index, &aliases)
        {
            want.index = target;
        }
    }
    let reads = wanted
        .iter()
        .map(|w| DocRead {
            index: w.index.clone(),
            id: w.id.clone(),
            routing: w.routing.clone(),
            refresh: false,
            local: params.get("preference").map(String::as_str) == Some("_local"),
        })
        .collect();
    let found = crate::cluster::mget::mget(&state.cluster, reads).await;
    let mut docs = Vec::with_capacity(wanted.len());
    for (want, found) in wanted.into_iter().zip(found) {
        docs.push(match found {
            Err(err) => json!({"_index": want.index, "_id": want.id, "error": err.cause()}),
            Ok(None) => json!({"_index": want.index, "_id": want.id, "found": false}),
            Ok(Some(doc)) => {
                let mut item = json!({
                    "_index": want.index, "_id": want.id, "_version": doc.version,
                    "_seq_no": doc.seq_no, "_primary_term": PRIMARY_TERM, "found": true,
                });
                if let Some(source) = want.filter.apply(doc.source_json()?) {
                    item["_source"] = source;
                }
                item
            }
        });
    }
    Ok(respond::ok(json!({ "docs": Value::Array(docs) })))
}
