//! `_mget`: several documents by id in one request.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{AppState, Params, doc_key, parse_object_body, run};
use crate::error::ApiError;
use crate::respond;
use cameodb_search::source_filter::SourceFilter;

/// `/_mget` and `/{index}/_mget` (the path's index is the default for lines that name none).
pub async fn mget(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    respond_mget(&state, index.map(|Path(index)| index), &params, &body).await
}

/// One requested document.
struct Wanted {
    index: String,
    id: String,
    routing: Option<String>,
    filter: SourceFilter,
}

fn wanted(
    default_index: Option<&str>,
    params: &Params,
    body: &serde_json::Map<String, Value>,
) -> Result<Vec<Wanted>, ApiError> {
    let base = SourceFilter::from_params(params);
    let mut out = Vec::new();
    if let Some(ids) = body.get("ids") {
        let index = default_index.ok_or_else(|| {
            ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: index is missing for doc 0;",
            )
        })?;
        for id in ids
            .as_array()
            .ok_or_else(|| ApiError::parse("[ids] must be an array"))?
        {
            let id = id
                .as_str()
                .ok_or_else(|| ApiError::parse("[ids] must be strings"))?;
            out.push(Wanted {
                index: index.to_string(),
                id: id.to_string(),
                routing: params.get("routing").cloned(),
                filter: base.clone(),
            });
        }
    }
    if let Some(docs) = body.get("docs") {
        for (n, doc) in docs
            .as_array()
            .ok_or_else(|| ApiError::parse("[docs] must be an array"))?
            .iter()
            .enumerate()
        {
            let doc = doc
                .as_object()
                .ok_or_else(|| ApiError::parse("[docs] entries must be objects"))?;
            let index = doc
                .get("_index")
                .and_then(Value::as_str)
                .or(default_index)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "action_request_validation_exception",
                        format!("Validation Failed: 1: index is missing for doc {n};"),
                    )
                })?;
            let id = match doc.get("_id") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(ApiError::bad_request(
                        "action_request_validation_exception",
                        format!("Validation Failed: 1: id is missing for doc {n};"),
                    ));
                }
            };
            let routing = doc
                .get("routing")
                .and_then(Value::as_str)
                .map(String::from)
                .or_else(|| params.get("routing").cloned());
            let filter = base.clone().with_body(doc.get("_source"))?;
            out.push(Wanted {
                index: index.to_string(),
                id,
                routing,
                filter,
            });
        }
    }
    if body.get("ids").is_none() && body.get("docs").is_none() {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: no documents to get;",
        ));
    }
    Ok(out)
}

async fn respond_mget(
    state: &AppState,
    index: Option<String>,
    params: &Params,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body = parse_object_body(body)?.ok_or_else(|| {
        ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: no documents to get;",
        )
    })?;
    let mut docs = Vec::new();
    for want in wanted(index.as_deref(), params, &body)? {
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
