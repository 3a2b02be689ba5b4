//! Unicast: a request about one document goes to the node owning the document's ring token.
//! This middleware sits in front of the public handlers; requests it does not own (searches,
//! index APIs, …) pass through to the handlers, which do their own cluster work.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::router_actor::View;
use super::{CALL_TIMEOUT, ClusterCtx, Routing, from_wire, query_params, read_body};
use crate::error::ApiError;

/// What a request path addresses, for routing.
enum Target {
    /// One document: its index and id.
    Doc {
        index: String,
        id: String,
        write: bool,
    },
    /// `POST /{index}/_doc`: a new document whose id the coordinator picks, so it knows the owner.
    AutoId { index: String },
    /// `_bulk`, with the index named by the path, if any.
    Bulk(Option<String>),
    /// `_mget`, with the index named by the path, if any.
    Mget(Option<String>),
    /// Anything else.
    Other,
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn classify(method: &Method, path: &str) -> Target {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let write = matches!(*method, Method::PUT | Method::POST);
    match segments.as_slice() {
        [
            index,
            kind @ ("_doc" | "_create" | "_update" | "_source"),
            id,
        ] if !index.starts_with('_') && !id.is_empty() => Target::Doc {
            index: decode(index),
            id: decode(id),
            write: write && *kind != "_source",
        },
        [index, "_doc"] if *method == Method::POST && !index.starts_with('_') => Target::AutoId {
            index: decode(index),
        },
        ["_bulk"] => Target::Bulk(None),
        [index, "_bulk"] => Target::Bulk(Some(decode(index))),
        ["_mget"] => Target::Mget(None),
        [index, "_mget"] => Target::Mget(Some(decode(index))),
        _ => Target::Other,
    }
}

/// Routes document requests to their owners; everything else goes on to the handlers.
pub async fn route(State(state): State<Routing>, request: Request, next: Next) -> Response {
    let Some(ctx) = state.cluster.clone() else {
        return next.run(request).await;
    };
    let target = classify(request.method(), request.uri().path());
    if matches!(target, Target::Other) {
        return next.run(request).await;
    }
    let view = ctx.view().await;
    if view.is_single() {
        return next.run(request).await;
    }
    let result = match target {
        Target::Doc { index, id, write } => {
            unicast(&state, &ctx, &view, request, &index, &id, write).await
        }
        Target::AutoId { index } => {
            let id = crate::ids::generate_id();
            let query = request
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let uri = format!(
                "/{}/_create/{}{query}",
                request
                    .uri()
                    .path()
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default(),
                id
            );
            let (mut parts, body) = request.into_parts();
            parts.method = Method::PUT;
            match uri.parse() {
                Ok(uri) => parts.uri = uri,
                Err(_) => {
                    return ApiError::illegal_argument("invalid request path").into_response();
                }
            }
            unicast(
                &state,
                &ctx,
                &view,
                Request::from_parts(parts, body),
                &index,
                &id,
                true,
            )
            .await
        }
        Target::Bulk(index) => super::bulk::route(&state, &ctx, &view, request, index).await,
        Target::Mget(index) => super::mget::route(&state, &ctx, &view, request, index).await,
        Target::Other => return next.run(request).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn unicast(
    state: &Routing,
    ctx: &ClusterCtx,
    view: &View,
    request: Request,
    index: &str,
    id: &str,
    write: bool,
) -> Result<Response, ApiError> {
    let params = query_params(&request);
    // An invalid id or routing fails the same way on any node: let this one answer.
    let placement = state
        .catalog
        .get(index)
        .await
        .and_then(|e| e.placement.clone());
    let owner_id = view.owner_of(
        placement.as_deref(),
        id,
        params.get("routing").map(String::as_str),
    );
    let owner = view
        .member(&owner_id)
        .cloned()
        .ok_or_else(|| super::forgotten(&owner_id))?;
    if write {
        super::metadata::ensure_index(&state.catalog, ctx, index).await?;
    }
    let method = request.method().clone();
    let uri = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = read_body(ctx, request).await?;
    let response = ctx
        .call(
            &owner,
            super::wire_request(method.as_str(), uri, content_type.as_deref(), body),
            CALL_TIMEOUT,
        )
        .await?;
    Ok(from_wire(response))
}
