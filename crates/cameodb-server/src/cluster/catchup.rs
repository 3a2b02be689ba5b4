//! Catch-up: every node keeps pulling, for each index it holds copies of, its peers' change
//! feeds from where it last read them, and applies what it lacks. A replica that was down,
//! frozen or cut off, or that missed a write because it was slow, converges within a round or
//! two of coming back; one whose data was wiped rebuilds from the start of its peers' feeds
//! (which always hold the live version of every document).
//!
//! Why pull the feed rather than hinted handoff: the feed is already durable, ordered and
//! retained on every node (the log is the spine), so nothing new has to be stored on a
//! coordinator that may die with its hints; it also heals both sides after a partition, where
//! each side took writes the other lacks. To keep the steady state cheap, a round reads a
//! digest first (ids and stamps, no bodies) and fetches only the documents newer than what
//! this node holds — after a healthy write that is none. Each peer keeps its feed from this
//! node's cursor on (a change-feed consumer per reader), so history a replica still needs is
//! not collected while it is away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tracing::{debug, info, warn};

use super::health::shared_with_peers;
use super::router_actor::{CATCHING_UP, CAUGHT_UP, SYNC_KEY, View};
use super::{CALL_TIMEOUT, ClusterCtx};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::leaf::replica;
use crate::messages::changes::NodeCursor;
use crate::messages::replica::{DigestCall, FetchCall, ReplicaBatch, ReplicaOp, WireApplied};
use crate::messages::{NodeCall, NodeReply};
use crate::request::params::Refresh;
use cameodb_search::tokens::TokenRanges;

/// How often a node pulls its peers' feeds when it is caught up.
const ROUND_INTERVAL: Duration = Duration::from_millis(500);
/// Feed entries one digest call reads.
const DIGEST_LIMIT: usize = 2_000;
/// Digest pages read from one peer per round, so one far-behind index does not starve others.
const PAGES_PER_ROUND: usize = 50;

/// Where this node is in one peer's feed of one index.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Checkpoint {
    /// The index copy it belongs to (a re-created index starts over).
    uuid: String,
    /// The ranges it was read for (when they change, reading starts over).
    ranges: TokenRanges,
    /// The next feed position.
    cursor: NodeCursor,
}

/// Checkpoints by (index, peer). Kept in memory: after a restart a node reads its peers'
/// digests from the start once, which costs ids and stamps, not bodies.
type Checkpoints = HashMap<(String, String), Checkpoint>;

/// The consumer name under which peers keep their feed for this node.
fn holder(view: &View) -> String {
    format!("replica:{}", view.self_id)
}

/// Runs catch-up rounds until the node stops.
pub async fn catch_up_loop(ctx: Arc<ClusterCtx>) {
    let mut checkpoints = Checkpoints::new();
    // What this node last said under each index's readiness key, so gossip changes only when
    // the report does.
    let mut readiness: HashMap<String, String> = HashMap::new();
    // Until a full round has read every peer's feed to its end, this node's copies may miss
    // writes: health shows them initializing, and writes prefer other copies to resolve on.
    let mut published = CATCHING_UP;
    ctx.cluster.set_value(SYNC_KEY, published).await;
    loop {
        tokio::time::sleep(ROUND_INTERVAL).await;
        let view = ctx.view().await;
        let mut streamed = Vec::new();
        let complete =
            view.is_single() || round(&ctx, &view, &mut checkpoints, &mut streamed).await;
        // Each index's readiness (see `membership::ready_key`): held, or a placement change
        // streamed — once a whole round read every peer's feed of the gained ranges to its end.
        let mut reports: Vec<(String, String)> = ctx
            .leaf
            .catalog
            .all()
            .await
            .iter()
            .filter(|entry| entry.pending.is_none())
            .map(|entry| (entry.name.clone(), super::membership::holding(entry)))
            .collect();
        reports.extend(streamed);
        for (index, value) in reports {
            if readiness.get(&index) != Some(&value) {
                let key = super::membership::ready_key(&index);
                ctx.cluster.set_value(&key, &value).await;
                readiness.insert(index, value);
            }
        }
        let state = if complete { CAUGHT_UP } else { CATCHING_UP };
        if state != published {
            info!(state, "replica sync state changed");
            ctx.cluster.set_value(SYNC_KEY, state).await;
            published = state;
        }
    }
}

/// One catch-up round over every index and peer; whether every peer's feed was read to its
/// end. Indexes in a placement change whose every feed was read to its end are added to
/// `streamed`, with the change's id.
async fn round(
    ctx: &ClusterCtx,
    view: &View,
    checkpoints: &mut Checkpoints,
    streamed: &mut Vec<(String, String)>,
) -> bool {
    let mut complete = true;
    for entry in ctx.leaf.catalog.all().await {
        let Some((mine, peers)) = shared_with_peers(view, &entry) else {
            if let Some(change) = entry.change_id() {
                streamed.push((entry.name.clone(), change));
            }
            continue;
        };
        let mut index_complete = true;
        for (peer, _) in peers {
            match pull(ctx, view, &entry, &peer, &mine, checkpoints).await {
                Ok(at_end) => index_complete &= at_end,
                Err(err) => {
                    index_complete = false;
                    debug!(index = %entry.name, peer = %peer, reason = %err.reason, "catch-up round failed; retried");
                }
            }
        }
        complete &= index_complete;
        let streamed_all = index_complete && super::membership::sources_live(view, &entry);
        if let (true, Some(change)) = (streamed_all, entry.change_id()) {
            streamed.push((entry.name.clone(), change));
        }
    }
    complete
}

/// Reads `peer`'s feed of `entry` from this node's checkpoint and applies what this node
/// lacks; whether it read to the end of the feed.
async fn pull(
    ctx: &ClusterCtx,
    view: &View,
    entry: &IndexEntry,
    peer: &str,
    mine: &TokenRanges,
    checkpoints: &mut Checkpoints,
) -> Result<bool, ApiError> {
    let slot = (entry.name.clone(), peer.to_string());
    let since = checkpoints
        .get(&slot)
        .filter(|c| c.uuid == entry.meta.uuid && &c.ranges == mine)
        .map(|c| c.cursor);
    let mut since = since;
    if since.is_none() {
        ctx.recoveries.start(&entry.name, peer, &view.self_id);
    }
    let mut applied = 0usize;
    let mut at_end = false;
    for _ in 0..PAGES_PER_ROUND {
        let call = NodeCall::Digest(DigestCall {
            index: entry.name.clone(),
            since,
            limit: DIGEST_LIMIT,
            holder: holder(view),
            ranges: mine.clone(),
        });
        let page = match ctx.call_id(view, peer, call).await {
            Ok(NodeReply::Digest(page)) => page,
            Ok(other) => return Err(other.unexpected("digest")),
            Err(err) if err.status == StatusCode::GONE => {
                // The peer collected history past this node's cursor: read it from the start
                // (its live documents are all there).
                warn!(index = %entry.name, peer = %peer, "catch-up cursor expired; reading the peer's feed from the start");
                checkpoints.remove(&slot);
                return Ok(false);
            }
            // The peer has not heard of the index yet (the metadata sync brings it): nothing
            // there to read.
            Err(err) if err.status == StatusCode::NOT_FOUND => return Ok(true),
            Err(err) => return Err(err),
        };
        let lacking = replica::lacking(&ctx.leaf, &entry.name, page.entries).await?;
        if !lacking.is_empty() {
            applied += apply_lacking(ctx, view, entry, peer, lacking).await?;
        }
        since = Some(page.next);
        checkpoints.insert(
            slot.clone(),
            Checkpoint {
                uuid: entry.meta.uuid.clone(),
                ranges: mine.clone(),
                cursor: page.next,
            },
        );
        if page.at_end {
            ctx.recoveries.finish(&entry.name, peer);
            at_end = true;
            break;
        }
    }
    if applied > 0 {
        info!(index = %entry.name, peer = %peer, documents = applied, "caught up from a peer");
    }
    Ok(at_end)
}

/// Fetches and applies the versions this node lacks; returns how many it applied.
pub(super) async fn apply_lacking(
    ctx: &ClusterCtx,
    view: &View,
    entry: &IndexEntry,
    peer: &str,
    lacking: Vec<crate::messages::replica::DigestEntry>,
) -> Result<usize, ApiError> {
    let mut ops: Vec<ReplicaOp> = Vec::with_capacity(lacking.len());
    let mut wanted: Vec<(String, u64)> = Vec::new();
    for change in &lacking {
        if change.deleted {
            ops.push(ReplicaOp {
                index: entry.name.clone(),
                id: change.id.clone(),
                token: change.token,
                applied: WireApplied {
                    version: change.version,
                    stamp: change.stamp,
                    body: None,
                },
            });
        } else {
            wanted.push((change.id.clone(), change.token));
        }
    }
    if !wanted.is_empty() {
        let call = NodeCall::Fetch(FetchCall {
            index: entry.name.clone(),
            keys: wanted.clone(),
        });
        let member = view
            .member(peer)
            .ok_or_else(|| super::forgotten(peer))?
            .clone();
        let fetched = match ctx.call_node(&member, call, CALL_TIMEOUT).await? {
            NodeReply::Fetched(docs) => docs,
            other => return Err(other.unexpected("fetch")),
        };
        // Streaming from peers is paced (`indices.recovery.max_bytes_per_sec`), so a node
        // taking over ranges leaves the network and disks to the requests being served.
        let bytes: usize = fetched
            .iter()
            .flatten()
            .map(|doc| doc.body.as_ref().map_or(0, Vec::len))
            .sum();
        ctx.settings.throttle.pace(bytes as u64).await;
        ctx.recoveries
            .add(&entry.name, peer, fetched.len() as u64, bytes as u64);
        // A document gone from the peer since was deleted: its tombstone is later in the feed.
        for ((id, token), doc) in wanted.into_iter().zip(fetched) {
            if let Some(applied) = doc {
                ops.push(ReplicaOp {
                    index: entry.name.clone(),
                    id,
                    token,
                    applied,
                });
            }
        }
    }
    let count = ops.len();
    let results = replica::apply(
        &ctx.leaf,
        ReplicaBatch {
            ops,
            refresh: Refresh::No,
        },
    )
    .await;
    if let Some(err) = results.into_iter().find_map(Result::err) {
        return Err(err);
    }
    Ok(count)
}
