//! Requests from other nodes: run through the local handlers, answered over libp2p.

use axum::Router;
use cameodb_cluster::{RequestHandler, WireRequest, WireResponse};
use futures::future::BoxFuture;
use tracing::debug;

/// Serves other nodes' calls with this node's local router.
pub struct Inbound {
    /// Handlers without cluster context, so a forwarded request is never forwarded again.
    pub local: Router,
}

impl RequestHandler for Inbound {
    fn handle(&self, from: String, request: WireRequest) -> BoxFuture<'static, WireResponse> {
        let local = self.local.clone();
        Box::pin(async move {
            debug!(%from, method = %request.method, uri = %request.uri, "node call");
            match super::run_local(&local, request).await {
                Ok(response) => response,
                Err(err) => WireResponse {
                    status: err.status.as_u16(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    // An error body is a `serde_json::Value`, which always serializes.
                    body: err.body().to_string().into_bytes(),
                },
            }
        })
    }
}
