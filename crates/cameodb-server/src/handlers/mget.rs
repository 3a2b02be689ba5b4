//! `_mget`: several documents by id in one request.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::{AppState, Params, doc_key, parse_object_body, run};
use crate::error::ApiError;
use crate::request::mget::parse_mget;
use crate::respond;

/// `/_mget` and `/{index}/_mget` (the path's index is the default for lines that name none).
pub async fn mget(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    respond_mget(&state, index.map(|Path(index)| index), &params, &body).await
}

async fn respond_mget(
    state: &AppState,
    index: Option<String>,
    params: &Params,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(body)?;
    let mut docs = Vec::new();
    for want in parse_mget(index.as_deref(), params, body.as_ref())? {
        let Some(entry) = state.catalog.get(&want.index).await else {
            let err = ApiError::index_not_found(&want.index);
            docs.push(json!({"_index": want.index, "_id": want.id, "error": err.cause()}));
            continue;
        };
        let key = match doc_key(&want.id, want.routing.as_deref()) {
            Ok(key) => key,
            Err(err) => {
                docs.push(json!({"_index": want.index, "_id": want.id, "error": err.cause()}));
                continue;
            }
        };
        let found = run(&entry.shard, move |store| Ok(store.get(&key)?)).await?;
        docs.push(match found {
            None => json!({"_index": want.index, "_id": want.id, "found": false}),
            Some(doc) => {
                let mut item = json!({
                    "_index": want.index, "_id": want.id, "_version": doc.version, "_seq_no": doc.seq_no,
                    "_primary_term": super::docs::PRIMARY_TERM, "found": true,
                });
                if let Some(source) = want.filter.apply(doc.source_json()?) {
                    item["_source"] = source;
                }
                item
            }
        });
    }
    Ok(respond::ok(json!({"docs": docs})))
}
