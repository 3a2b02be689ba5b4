//! Anti-entropy: every so often each node compares, with every peer that holds copies of the
//! same token ranges, a hash per bucket of the (id, token, stamp, deleted) of every version
//! both should hold, lists the versions of the buckets that differ, and pulls from the peer
//! what it lacks (the peer does the same on its side). Catch-up from the change feed repairs
//! what a replica missed while it was away; this repairs what no feed shows — a copy that
//! lost documents to a disk fault, or history collected before a replica read it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use super::ClusterCtx;
use super::catchup::apply_lacking;
use super::health::shared_with_peers;
use super::router_actor::View;
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::leaf::repair;
use crate::messages::replica::{DigestEntry, RepairCall};
use crate::messages::{NodeCall, NodeReply};
use cameodb_search::tokens::TokenRanges;

/// Runs a repair round every `every` until the node stops.
pub async fn repair_loop(ctx: Arc<ClusterCtx>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let view = ctx.view().await;
        if view.is_single() {
            continue;
        }
        for entry in ctx.leaf.catalog.all().await {
            let Some((_, peers)) = shared_with_peers(&view, &entry) else {
                continue;
            };
            for (peer, shared) in peers {
                match compare(&ctx, &view, &entry, &peer, shared).await {
                    Ok(0) => {}
                    Ok(repaired) => {
                        info!(index = %entry.name, peer = %peer, documents = repaired, "anti-entropy repaired documents from a peer")
                    }
                    Err(err) => {
                        debug!(index = %entry.name, peer = %peer, reason = %err.reason, "anti-entropy round failed; retried")
                    }
                }
            }
        }
    }
}

/// Compares this node's copy of `shared` with `peer`'s and applies what this node lacks;
/// returns how many versions it applied.
async fn compare(
    ctx: &ClusterCtx,
    view: &View,
    entry: &IndexEntry,
    peer: &str,
    shared: TokenRanges,
) -> Result<usize, ApiError> {
    let ours = repair::digest(&ctx.leaf, &entry.name, shared.clone()).await?;
    let call = NodeCall::Repair(RepairCall::Digest {
        index: entry.name.clone(),
        ranges: shared.clone(),
    });
    let theirs = match ctx.call_id(view, peer, call).await? {
        NodeReply::RangeDigest(hashes) => hashes,
        other => return Err(other.unexpected("range digest")),
    };
    let differing: Vec<usize> = ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(n, _)| n)
        .collect();
    if differing.is_empty() {
        return Ok(0);
    }
    let call = NodeCall::Repair(RepairCall::Versions {
        index: entry.name.clone(),
        ranges: shared.clone(),
        buckets: differing.clone(),
    });
    let theirs = match ctx.call_id(view, peer, call).await? {
        NodeReply::Versions(versions) => versions,
        other => return Err(other.unexpected("versions")),
    };
    let ours: BTreeMap<(String, u64), DigestEntry> =
        repair::versions(&ctx.leaf, &entry.name, shared, differing)
            .await?
            .into_iter()
            .map(|v| ((v.id.clone(), v.token), v))
            .collect();
    let lacking: Vec<DigestEntry> = theirs
        .into_iter()
        .filter(|v| {
            ours.get(&(v.id.clone(), v.token))
                .is_none_or(|o| o.stamp < v.stamp)
        })
        .collect();
    if lacking.is_empty() {
        return Ok(0);
    }
    apply_lacking(ctx, view, entry, peer, lacking).await
}
