//! The coordinator: every request a handler parsed is planned here — which nodes, which of
//! their documents, which statistics — sent to each node's leaf executor through one client
//! ([`ClusterCtx::call_node`]: a direct call for this node, typed messages over libp2p for the
//! others) and merged. A node alone is a cluster of one and runs the same code.

pub mod admin;
pub mod aliases;
pub mod antientropy;
pub mod bulk;
pub mod catchup;
pub mod changes;
pub mod docs;
pub mod dynamic;
pub mod health;
pub mod inbound;
pub mod liked;
pub mod membership;
pub mod metadata;
pub mod mget;
pub mod pit;
pub mod placement;
pub mod plan;
pub mod recovery;
pub mod reindex;
pub mod replicate;
pub mod router_actor;
pub mod scatter;
mod sync_rules;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use cameodb_cluster::{Cluster, Member, MemberState, WireRequest, WireResponse};
use futures::future::join_all;
use kameo::actor::ActorRef;

use crate::error::ApiError;
use crate::leaf::Leaf;
use crate::messages::{NodeCall, NodeReply, WireAnswer, decode, encode};
use router_actor::{GetView, RouterActor, View};

/// How long a node-to-node call may take before the caller gives up on that node.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The coordinator's state: membership, the view it routes by, and this node's leaf.
pub struct ClusterCtx {
    /// The libp2p transport and gossip membership.
    pub cluster: Cluster,
    /// Holds the current [`View`].
    pub router: ActorRef<RouterActor>,
    /// This node's leaf executor: what a call to this node runs.
    pub leaf: Arc<Leaf>,
    /// Scrolls this node coordinates.
    pub scrolls: scatter::ClusterScrolls,
    /// Points in time this node coordinates.
    pub pits: pit::ClusterPits,
    /// Stamps the writes this node coordinates (last-writer-wins order across replicas).
    pub clock: cameodb_storage::Hlc,
    /// This node in those stamps.
    pub origin: u64,
    /// This context, for work that outlives the request that started it (replica writes
    /// still on their way when the write was acknowledged).
    pub me: std::sync::Weak<ClusterCtx>,
    /// Turns the order in which searches ask replicas, spreading them over the copies.
    pub rotation: std::sync::atomic::AtomicUsize,
    /// Reads coordinated so far, to pick the ones whose copies are compared (read repair).
    pub reads: std::sync::atomic::AtomicU64,
    /// The cluster's dynamic settings as this node holds them, and the recovery throttle.
    pub settings: dynamic::DynamicSettings,
    /// What this node streamed from its peers (`_cat/recovery`).
    pub recoveries: recovery::Recoveries,
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

    /// Sends `call` to `member` (this node included: then a direct call) and returns its
    /// answer. A member that is down, unreachable or too slow is a 503 (504 for too slow)
    /// naming it; an error the member answered comes back as that error.
    pub async fn call_node(
        &self,
        member: &Member,
        call: NodeCall,
        timeout: Duration,
    ) -> Result<NodeReply, ApiError> {
        self.try_call(member, call, timeout).await?
    }

    /// As [`ClusterCtx::call_node`], telling apart a member that did not answer (the outer
    /// error: down, unreachable, too slow — the call may or may not have run there) from the
    /// answer it gave (the inner result), so a caller can try another copy.
    pub async fn try_call(
        &self,
        member: &Member,
        call: NodeCall,
        timeout: Duration,
    ) -> Result<Result<NodeReply, ApiError>, ApiError> {
        if member.is_self {
            return Ok(inbound::serve(self, call).await);
        }
        match member.state {
            MemberState::Down => return Err(unavailable(member, "it is down")),
            MemberState::Left => return Err(unavailable(member, "it left the cluster")),
            MemberState::Joining | MemberState::Up => {}
        }
        let request = WireRequest::new(encode(&call)?);
        let response = match self
            .cluster
            .request_with_timeout(&member.id, request, timeout)
            .await
        {
            Ok(response) => response,
            Err(err @ cameodb_cluster::ClusterError::Timeout { .. }) => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout_exception",
                    format!(
                        "node [{}] ({}) did not answer in time: {err}",
                        member.id, member.http_addr
                    ),
                ));
            }
            Err(err) => return Err(unavailable(member, &err.to_string())),
        };
        Ok(match response {
            WireResponse::Answer(bytes) => decode::<WireAnswer>(&bytes)?.map_err(ApiError::from),
            WireResponse::Refused { reason } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "security_exception",
                format!("node [{}] refused the call: {reason}", member.id),
            )),
            WireResponse::Failed { reason } => Err(ApiError::internal(format!(
                "node [{}] failed the call: {reason}",
                member.id
            ))),
        })
    }

    /// Sends `call` to the first of `nodes` that answers, in order: a node that does not
    /// answer (down but not yet known to be) is passed over for the next. Returns the node
    /// that answered with its answer, or the last failure.
    pub async fn call_first(
        &self,
        view: &View,
        nodes: &[String],
        call: NodeCall,
    ) -> Result<(String, NodeReply), ApiError> {
        let mut failure = None;
        for node in nodes {
            let Some(member) = view.member(node) else {
                failure = Some(forgotten(node));
                continue;
            };
            match self.try_call(member, call.clone(), CALL_TIMEOUT).await {
                Ok(answer) => return answer.map(|reply| (node.clone(), reply)),
                Err(err) => {
                    tracing::debug!(node = %node, reason = %err.reason, "copy did not answer; trying the next");
                    failure = Some(err);
                }
            }
        }
        Err(failure.unwrap_or_else(|| ApiError::internal("no copy to send the call to")))
    }

    /// A stamp for a write this node coordinates.
    pub fn stamp(&self) -> cameodb_storage::Stamp {
        cameodb_storage::Stamp {
            hlc: self.clock.now(),
            origin: self.origin,
        }
    }

    /// Sends `call` to the member with id `node`; one the cluster no longer knows is a 503.
    pub async fn call_id(
        &self,
        view: &View,
        node: &str,
        call: NodeCall,
    ) -> Result<NodeReply, ApiError> {
        match view.member(node) {
            Some(member) => self.call_node(member, call, CALL_TIMEOUT).await,
            None => Err(forgotten(node)),
        }
    }
}

/// One answer per data member of a call sent to all of them.
pub type Answers = Vec<(Member, Result<NodeReply, ApiError>)>;

/// Sends the same call to every data member (this node included), in parallel.
pub async fn fan_out(ctx: &ClusterCtx, view: &View, call: NodeCall) -> Answers {
    let calls = view.data_members().into_iter().cloned().map(|member| {
        let call = call.clone();
        async move {
            let answer = ctx.call_node(&member, call, CALL_TIMEOUT).await;
            (member, answer)
        }
    });
    join_all(calls).await
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
