//! Placement changes: when the cluster's members differ from the members an index is placed
//! on (a node joined), the index's metadata owner starts a change to the current members —
//! `pending` in the index's metadata, spread like any settings change. While it runs, writes
//! go to the copies of both rings (`Copies::moving_to`), reads keep to the old placement, and
//! every member streams the ranges it gains from their old copies: catch-up reads those
//! ranges of its peers' feeds from the start (`health::shared_with_peers`), and once a round
//! reads them all to their end it publishes the change's id under [`ready_key`]. When every
//! member that gains ranges is live and has published it, the owner makes the new ring the
//! placement.
//!
//! Why the feed: it already holds the live version of every document in order, each node
//! keeps it for every reader's cursor, and catch-up already reads it by token range — so a
//! range streams with the same code, checkpoints and back-pressure as a returning replica,
//! and writes that land while it streams are in the feed it is reading.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use cameodb_ring::transition::Transition;
use tracing::{debug, info};

use super::ClusterCtx;
use super::metadata::{metadata_owner, push_meta};
use super::router_actor::View;
use crate::catalog::IndexEntry;
use crate::error::ApiError;

/// How often the metadata owners look at their indexes' placement.
const STEP_INTERVAL: Duration = Duration::from_millis(500);

/// The gossip key under which a member says how far it is with `index`: the index's uuid
/// once it holds the index (so a change starts only when every member can take its writes),
/// and the running change's id (`IndexEntry::change_id`) once it streamed what it gains.
pub fn ready_key(index: &str) -> String {
    format!("ready:{index}")
}

/// Why a member is excluded from the placement (kept in the cluster settings, see
/// `dynamic::Versioned::excluded`).
pub const DECOMMISSIONED: &str = "decommission";
/// See [`DECOMMISSIONED`]: a member that is down for good.
pub const REMOVED: &str = "removed";

/// The members indexes should be placed on: every known member but the excluded ones
/// (sorted, as the ring keeps them).
pub fn target_members(view: &View, gone: &BTreeSet<String>) -> Vec<String> {
    view.ring
        .members()
        .iter()
        .filter(|m| !gone.contains(*m))
        .cloned()
        .collect()
}

/// Whether this node takes the placement steps of `index`: its metadata owner, or — while
/// that member is not up (down, decommissioned and stopped) — the first live target member.
fn acts_for(view: &View, gone: &BTreeSet<String>, index: &str) -> bool {
    if let Some(owner) = metadata_owner(view, index) {
        return owner.is_self;
    }
    let targets = target_members(view, gone);
    targets.iter().find(|m| view.is_live(m)) == Some(&view.self_id)
}

/// How a member leaves the placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// It is up: its ranges stream to the other members, then it holds nothing and may be
    /// stopped (`_decommission`).
    Decommission,
    /// It is down for good: its ranges are copied again from the surviving copies (`_remove`).
    Remove,
}

/// Leaves member `id` out of the placement: the cluster metadata records it (kept on every
/// node's disk, so a restart anywhere does not undo it), and the placement loops move its
/// ranges away. Returns where it stands.
pub async fn exclude(ctx: &ClusterCtx, id: &str, how: Exclusion) -> Result<Value, ApiError> {
    let view = ctx.view().await;
    if view.member(id).is_none() {
        return Err(unknown_node(id));
    }
    let why = match how {
        Exclusion::Decommission => {
            let mut gone = ctx.settings.excluded();
            gone.insert(id.to_string());
            if target_members(&view, &gone).is_empty() {
                return Err(ApiError::bad_request(
                    "illegal_argument_exception",
                    format!("cannot decommission [{id}]: it is the last member holding data"),
                ));
            }
            DECOMMISSIONED
        }
        Exclusion::Remove => {
            if view.is_live(id) {
                return Err(ApiError::bad_request(
                    "illegal_argument_exception",
                    format!("node [{id}] is up: decommission it instead of removing it"),
                ));
            }
            REMOVED
        }
    };
    super::dynamic::exclude(ctx, id, why).await;
    info!(node = %id, why, "member left out of the placement");
    Ok(progress(ctx, id).await)
}

fn unknown_node(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "resource_not_found_exception",
        format!("no node [{id}] in the cluster"),
    )
}

/// Where member `id` stands: a member, leaving or removed, and per index whether it is still
/// placed there, moving out, or out.
pub async fn progress(ctx: &ClusterCtx, id: &str) -> Value {
    let view = ctx.view().await;
    let why = ctx.settings.current().excluded.get(id).cloned();
    let gone = ctx.settings.excluded();
    let mut indices = serde_json::Map::new();
    let mut holding = 0usize;
    for entry in ctx.leaf.catalog.all().await {
        if entry.meta.placement.is_empty() {
            continue;
        }
        let placed = entry.meta.placement.iter().any(|m| m == id);
        let next = entry.meta.pending.iter().any(|m| m == id);
        let state = match (placed, entry.pending.is_some(), next) {
            (true, true, false) => "moving_out",
            (true, false, _) | (true, true, true) => "placed",
            (false, true, true) => "moving_in",
            (false, _, _) => "out",
        };
        holding += usize::from(placed);
        indices.insert(entry.name.clone(), json!(state));
    }
    let member = view.member(id);
    let status = match (gone.contains(id), holding) {
        (false, _) => "member",
        (true, 0) => "decommissioned",
        (true, _) => "streaming",
    };
    json!({
        "node_id": id,
        "state": member.map(|m| m.state.as_str()),
        "leaving": why.as_deref() == Some(DECOMMISSIONED),
        "removed": why.as_deref() == Some(REMOVED),
        "status": status,
        "indices": indices,
    })
}

/// What this node publishes under [`ready_key`] for `entry` while it has nothing to stream:
/// the index's uuid and the placement it routes by, so a member can tell when every other
/// one routes by the same placement.
pub fn holding(entry: &IndexEntry) -> String {
    format!(
        "{}@{:016x}",
        entry.meta.uuid,
        placement_hash(&entry.meta.placement)
    )
}

fn placement_hash(members: &[String]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(members.join(",").as_bytes())
}

/// Whether this node may drop what it holds of `entry` outside its ranges: no change runs,
/// and every live member routes by the same placement (a member still on the old one could
/// send a read here for a document that moved away).
fn may_purge(view: &View, entry: &IndexEntry) -> bool {
    if entry.pending.is_some() || entry.placement.is_none() || !entry.meta.copies_lowered {
        return false;
    }
    let expected = holding(entry);
    let key = ready_key(&entry.name);
    view.members
        .iter()
        .filter(|m| view.is_live(&m.id))
        .all(|m| m.values.get(&key) == Some(&expected))
}

/// Drops the documents this node holds of `entry` outside its ranges (see
/// `leaf::admin::purge_outside`); whether it got through.
async fn purge(ctx: &ClusterCtx, view: &View, entry: &IndexEntry) -> bool {
    let keep = super::health::held_ranges(view, entry, &view.self_id);
    match crate::leaf::admin::purge_outside(&ctx.leaf, &entry.name, keep).await {
        Ok(0) => true,
        Ok(dropped) => {
            info!(index = %entry.name, documents = dropped, "dropped documents of ranges this node no longer holds");
            true
        }
        Err(err) => {
            debug!(index = %entry.name, reason = %err.reason, "purge failed; retried");
            false
        }
    }
}

/// What the owner of an index's metadata does next about its placement.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Placed on the cluster's members: nothing.
    Settled,
    /// Start (or retarget) a change to these members.
    MoveTo(Vec<String>),
    /// Every member that gains ranges has them: the change completes.
    Complete,
    /// Wait for these members to finish streaming.
    Waiting(Vec<String>),
}

/// The next step for `entry`, whose target is `members` (sorted).
fn next_step(view: &View, entry: &IndexEntry, members: &[String]) -> Step {
    let (Some(placed), pending) = (&entry.placement, &entry.pending) else {
        return Step::Settled;
    };
    let Some(next) = pending else {
        if placed.members() == members {
            return Step::Settled;
        }
        // Writes will go to the new copies: each must hold the index first.
        let lacking: Vec<String> = members
            .iter()
            .filter(|m| {
                view.member(m).is_none_or(|member| {
                    !member
                        .values
                        .get(&ready_key(&entry.name))
                        .is_some_and(|v| v.starts_with(&entry.meta.uuid))
                })
            })
            .cloned()
            .collect();
        return if lacking.is_empty() {
            Step::MoveTo(members.to_vec())
        } else {
            Step::Waiting(lacking)
        };
    };
    if next.members() != members {
        return Step::MoveTo(members.to_vec());
    }
    let Some(change) = entry.change_id() else {
        return Step::Settled;
    };
    let transition = Transition::new(placed, next, entry.wanted_copies());
    let waiting: Vec<String> = next
        .members()
        .iter()
        .filter(|m| !transition.gains(m).is_empty())
        .filter(|m| {
            let done = view.member(m).is_some_and(|member| {
                view.is_live(m) && member.values.get(&ready_key(&entry.name)) == Some(&change)
            });
            // This node's own report is read from its gossip state like everyone's.
            !done
        })
        .cloned()
        .collect();
    if waiting.is_empty() {
        Step::Complete
    } else {
        Step::Waiting(waiting)
    }
}

/// Runs placement steps until the node stops.
pub async fn placement_loop(ctx: Arc<ClusterCtx>) {
    // The placement each index was last purged for, so a purge scans an index once per change
    // (and once after a restart).
    let mut purged: std::collections::HashMap<String, String> = Default::default();
    loop {
        tokio::time::sleep(STEP_INTERVAL).await;
        let view = ctx.view().await;
        if view.is_single() {
            continue;
        }
        let gone = ctx.settings.excluded();
        let members = target_members(&view, &gone);
        if members.is_empty() {
            continue;
        }
        // New indexes are placed on the members that stay.
        ctx.leaf.catalog.set_members(members.clone());
        for entry in ctx.leaf.catalog.all().await {
            let placement = holding(&entry);
            if purged.get(&entry.name) != Some(&placement)
                && may_purge(&view, &entry)
                && purge(&ctx, &view, &entry).await
            {
                purged.insert(entry.name.clone(), placement);
            }
        }
        for entry in ctx.leaf.catalog.all().await {
            if !acts_for(&view, &gone, &entry.name) {
                continue;
            }
            match next_step(&view, &entry, &members) {
                Step::Settled => {}
                Step::Waiting(members) => {
                    debug!(index = %entry.name, waiting = ?members, "placement change streaming")
                }
                Step::MoveTo(target) => {
                    let mut meta = entry.meta.clone();
                    info!(index = %entry.name, from = ?meta.placement, to = ?target, "placement change started");
                    meta.pending = target;
                    publish(&ctx, &entry, meta).await;
                }
                Step::Complete => {
                    let mut meta = entry.meta.clone();
                    info!(index = %entry.name, to = ?meta.pending, "placement change complete");
                    meta.placement = std::mem::take(&mut meta.pending);
                    // The members that lost ranges still hold them: searches keep to ranges.
                    meta.copies_lowered = true;
                    publish(&ctx, &entry, meta).await;
                }
            }
        }
    }
}

/// Takes `meta` as the index's new metadata here and sends it to every other node.
async fn publish(ctx: &ClusterCtx, entry: &IndexEntry, mut meta: crate::catalog::IndexMeta) {
    meta.settings_version = meta.settings_version.saturating_add(1);
    if let Err(err) = ctx.leaf.catalog.adopt(&entry.name, meta.clone()).await {
        debug!(index = %entry.name, reason = %err.reason, "placement step not taken; retried");
        return;
    }
    push_meta(ctx, &entry.name, meta).await;
}

/// Whether this node streamed everything it gains in `entry`'s running change: every gained
/// range has a live old copy to read from (a range whose old copies are all down cannot be
/// streamed yet, however complete the reads of the live ones).
pub fn sources_live(view: &View, entry: &IndexEntry) -> bool {
    let (Some(placed), Some(next)) = (&entry.placement, &entry.pending) else {
        return true;
    };
    let transition = Transition::new(placed, next, entry.wanted_copies());
    transition
        .gains(&view.self_id)
        .iter()
        .all(|gain| gain.sources.iter().any(|s| view.is_live(s)))
}
