//! The cluster side of a node: routing requests to the nodes that own them and merging what
//! several nodes answer. Node-to-node calls are HTTP requests carried over libp2p: the target
//! runs them through its *local* router (handlers with no cluster context), so a forwarded
//! request executes exactly as it would on a single node.

pub mod bulk;
pub mod forward;
pub mod inbound;
pub mod metadata;
pub mod mget;
pub mod router_actor;
pub mod scatter;
mod sync_rules;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use cameodb_cluster::{Cluster, Member, MemberState, WireRequest, WireResponse};
use kameo::actor::ActorRef;
use serde_json::Value;
use tower::ServiceExt;

use crate::error::ApiError;
use router_actor::{GetView, RouterActor, View};

/// How long a node-to-node call may take before the caller gives up on that node.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the cluster paths of the handlers need.
pub struct ClusterCtx {
    /// The libp2p transport and gossip membership.
    pub cluster: Cluster,
    /// Holds the current [`View`].
    pub router: ActorRef<RouterActor>,
    /// The handlers without cluster context: what a call to this node runs.
    pub local: Router,
    /// Largest body a forwarded request may carry (the public limit).
    pub max_body_bytes: usize,
    /// Scrolls this node coordinates.
    pub scrolls: scatter::ClusterScrolls,
}

impl ClusterCtx {
    /// The current view of the cluster.
    pub async fn view(&self) -> Arc<View> {
        match self.router.ask(GetView).await {
            Ok(view) => view,
            // The router actor never fails; should it be gone, act as a cluster of one.
            Err(_) => Arc::new(View::new(
                self.cluster.self_id().to_string(),
                self.cluster
                    .members()
                    .into_iter()
                    .filter(|m| m.is_self)
                    .collect(),
            )),
        }
    }

    /// Sends `request` to `member` (this node included) and returns its answer. A member that
    /// is down, unreachable or too slow is a 503 naming it.
    pub async fn call(
        &self,
        member: &Member,
        request: WireRequest,
        timeout: Duration,
    ) -> Result<WireResponse, ApiError> {
        if member.is_self {
            return self.call_local(request).await;
        }
        match member.state {
            MemberState::Down => return Err(unavailable(member, "it is down")),
            MemberState::Left => return Err(unavailable(member, "it left the cluster")),
            MemberState::Joining | MemberState::Up => {}
        }
        match self
            .cluster
            .request_with_timeout(&member.id, request, timeout)
            .await
        {
            Ok(response) => Ok(response),
            Err(err @ cameodb_cluster::ClusterError::Timeout { .. }) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout_exception",
                format!(
                    "node [{}] ({}) did not answer in time: {err}",
                    member.id, member.http_addr
                ),
            )),
            Err(err) => Err(unavailable(member, &err.to_string())),
        }
    }

    /// Runs `request` through this node's local handlers.
    pub async fn call_local(&self, request: WireRequest) -> Result<WireResponse, ApiError> {
        run_local(&self.local, request).await
    }

    /// Calls `member` and parses its JSON answer; the status says whether it is an error
    /// (`ApiError::from_remote` reads one).
    pub async fn call_json(
        &self,
        member: &Member,
        request: WireRequest,
    ) -> Result<(StatusCode, Value), ApiError> {
        self.call_json_within(member, request, CALL_TIMEOUT).await
    }

    /// Encodes `body` as JSON, sends it to `member` as `method uri` and parses the answer.
    pub async fn json_call(
        &self,
        member: &Member,
        method: &str,
        uri: String,
        body: &impl serde::Serialize,
    ) -> Result<(StatusCode, Value), ApiError> {
        self.call_json(member, json_request(method, uri, body)?)
            .await
    }

    /// [`ClusterCtx::call_json`] with its own deadline.
    pub async fn call_json_within(
        &self,
        member: &Member,
        request: WireRequest,
        timeout: Duration,
    ) -> Result<(StatusCode, Value), ApiError> {
        let response = self.call(member, request, timeout).await?;
        let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            ApiError::internal(format!("node [{}] answered invalid json: {e}", member.id))
        })?;
        Ok((status, body))
    }
}

/// What the routing middleware reads: the node's indexes (their placements), its ingest
/// threads (a bulk body is split there) and the cluster, when the node has one.
#[derive(Clone)]
pub struct Routing {
    /// The node's indexes.
    pub catalog: Arc<crate::catalog::Catalog>,
    /// Low-priority threads for parsing bulk bodies.
    pub ingest: Arc<crate::ingest_pool::IngestPool>,
    /// The cluster; `None` on a node without one (everything goes on to the handlers).
    pub cluster: Option<Arc<ClusterCtx>>,
}

/// The query-string parameters of a request.
pub fn query_params(request: &Request<Body>) -> std::collections::HashMap<String, String> {
    axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(request.uri())
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Reads a request's body, within the node's body limit.
pub async fn read_body(ctx: &ClusterCtx, request: Request<Body>) -> Result<Vec<u8>, ApiError> {
    axum::body::to_bytes(request.into_body(), ctx.max_body_bytes)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| crate::body::too_large(ctx.max_body_bytes))
}

/// The 503 for a ring owner the cluster no longer knows.
pub fn forgotten(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable_shards_exception",
        format!("node [{id}] owns this document but is no longer in the cluster"),
    )
}

/// The 503 for a node that cannot serve.
pub fn unavailable(member: &Member, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable_shards_exception",
        format!(
            "node [{}] ({}) cannot serve this request: {why}",
            member.id, member.http_addr
        ),
    )
}

/// A request for another node: `body` as sent, with its content type when it has one.
pub fn wire_request(
    method: &str,
    uri: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> WireRequest {
    WireRequest {
        method: method.to_string(),
        uri,
        headers: content_type
            .map(|ct| vec![("content-type".to_string(), ct.to_string())])
            .unwrap_or_default(),
        body,
    }
}

/// A JSON request for another node, `body` serialized once, straight to bytes.
pub fn json_request(
    method: &str,
    uri: String,
    body: &impl serde::Serialize,
) -> Result<WireRequest, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::internal(format!("cannot encode a request for [{uri}]: {e}")))?;
    Ok(wire_request(method, uri, Some("application/json"), bytes))
}

/// An NDJSON request for another node.
pub fn ndjson_request(method: &str, uri: String, body: Vec<u8>) -> WireRequest {
    wire_request(method, uri, Some("application/x-ndjson"), body)
}

/// Runs `request` through `router` in-process.
pub async fn run_local(router: &Router, request: WireRequest) -> Result<WireResponse, ApiError> {
    let mut builder = Request::builder()
        .method(request.method.as_str())
        .uri(request.uri.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let http_request = builder
        .body(Body::from(request.body))
        .map_err(|e| ApiError::bad_request("illegal_argument_exception", e.to_string()))?;
    let response = router
        .clone()
        .oneshot(http_request)
        .await
        .map_err(|e| ApiError::internal(format!("local dispatch failed: {e}")))?;
    to_wire(response).await
}

/// Flattens an HTTP response for the wire.
pub async fn to_wire(response: Response) -> Result<WireResponse, ApiError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| *name == header::CONTENT_TYPE)
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::internal(format!("reading a local answer failed: {e}")))?;
    Ok(WireResponse {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// Turns another node's answer back into an HTTP response for our client.
pub fn from_wire(response: WireResponse) -> Response {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

/// One answer per data member of a request sent to all of them.
pub type Answers = Vec<(Member, Result<(StatusCode, Value), ApiError>)>;

/// Sends the same JSON request to every data member (this node included), in parallel.
pub async fn fan_out_json(
    ctx: &ClusterCtx,
    view: &View,
    method: &str,
    uri: &str,
    body: &Value,
) -> Answers {
    let calls = view
        .data_members()
        .into_iter()
        .cloned()
        .map(|member| async move {
            let answer = ctx.json_call(&member, method, uri.to_string(), body).await;
            (member, answer)
        });
    futures::future::join_all(calls).await
}

/// A query string (`?a=1&b=x%20y`, or "" when empty) from parameters.
pub fn encode_query(params: &std::collections::HashMap<String, String>) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}
