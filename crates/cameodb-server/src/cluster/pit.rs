//! Points in time across the cluster. Opening one pins a snapshot of the indexes on every data
//! node (as a scroll's first page does) and keeps, on the opening node, which node holds which
//! snapshot; the id names that node (`p.<node id>.<id>`), so a search with the id arriving at
//! any node is sent on to it. Each search reads the pinned snapshots with its own query, sort
//! and `search_after`; `_shard_doc` (this search's part in the high bits, then segment and
//! document) makes sort values unique across the cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::plan::{Part, plan};
use super::scatter::{fan_out, fan_out_with_retry, gather_stats, missing_context, release_pins};
use super::{CALL_TIMEOUT, ClusterCtx};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::ids::generate_id;
use crate::messages::{NodeCall, NodeReply, Pin, ShardRequest};
use crate::scroll_contexts::Contexts;
use cameodb_search::{QuerySpec, SearchSpec, render};

/// Prefix of a point-in-time id.
const PIT_PREFIX: &str = "p.";

/// One open point in time on its coordinator.
pub struct ClusterPit {
    /// Each asked node's part and snapshot id, in a fixed order (a node's place is its
    /// `_shard_doc` part).
    pins: Vec<(Part, String)>,
    /// Nodes that held none (down when it opened): every search reports them failed.
    missing: Vec<Value>,
}

/// The points in time this node coordinates.
pub type ClusterPits = Contexts<ClusterPit>;

/// The node that coordinates point in time `id`.
fn owner(id: &str) -> Option<&str> {
    id.strip_prefix(PIT_PREFIX)?.split('.').next()
}

/// Opens a point in time over `entries`; returns its id.
pub async fn open(
    ctx: &ClusterCtx,
    entries: &[Arc<IndexEntry>],
    keep_alive: Duration,
) -> Result<String, ApiError> {
    ctx.pits.check_keep_alive(keep_alive)?;
    ctx.pits.check_room()?;
    ctx.leaf.scrolls.check_open(keep_alive)?;
    let view = ctx.view().await;
    let plan = plan(ctx, &view, entries, None);
    let spec = SearchSpec::count(QuerySpec::All);
    let pin = Pin::Open {
        keep_alive_ms: u64::try_from(keep_alive.as_millis()).unwrap_or(u64::MAX),
    };
    let request = |part: &Part, n: usize| part.request(&spec, n, Some(pin.clone()));
    let gathered =
        fan_out_with_retry(ctx, &view, entries, None, &plan, request, CALL_TIMEOUT).await?;
    let (report, pins) = (gathered.report, gathered.pins);
    let id = format!("{PIT_PREFIX}{}.{}", view.self_id, generate_id());
    let pit = ClusterPit {
        pins: pins.clone(),
        missing: report.failures,
    };
    if let Err(err) = ctx.pits.insert(id.clone(), pit, keep_alive) {
        release_pins(ctx, pins).await;
        return Err(err);
    }
    Ok(id)
}

/// Runs `spec` on point in time `id`, wherever it is coordinated; the answer carries `pit_id`.
pub async fn search(
    ctx: &ClusterCtx,
    id: &str,
    keep_alive: Option<Duration>,
    spec: SearchSpec,
) -> Result<Value, ApiError> {
    let node = owner(id).ok_or_else(|| missing_context(id, "it is not a point-in-time id"))?;
    let view = ctx.view().await;
    let member = view
        .member(node)
        .ok_or_else(|| missing_context(id, &format!("node [{node}] is not a member")))?;
    let call = NodeCall::PitSearch {
        id: id.to_string(),
        keep_alive_ms: keep_alive.map(|k| u64::try_from(k.as_millis()).unwrap_or(u64::MAX)),
        spec,
    };
    match ctx.call_node(member, call, CALL_TIMEOUT).await? {
        NodeReply::Page(page) => Ok(page),
        other => Err(other.unexpected("point-in-time search")),
    }
}

/// Runs `spec` on point in time `id`, which this node coordinates.
pub async fn search_here(
    ctx: &ClusterCtx,
    id: &str,
    keep_alive: Option<Duration>,
    spec: SearchSpec,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let (pins, missing) = ctx.pits.read(id, keep_alive, |pit, _| {
        (pit.pins.clone(), pit.missing.clone())
    })?;
    let keep_alive_ms = keep_alive.map(|k| u64::try_from(k.as_millis()).unwrap_or(u64::MAX));
    let timeout = spec.timeout.unwrap_or(CALL_TIMEOUT);
    let node_spec = spec.for_nodes();
    let mut calls: Vec<(Part, ShardRequest)> = pins
        .into_iter()
        .enumerate()
        .map(|(n, (part, pin))| {
            let pin = Pin::Use {
                id: pin,
                keep_alive_ms,
            };
            let request = part.request(&node_spec, n, Some(pin));
            (part, request)
        })
        .collect();
    if spec.uses_scores() && calls.len() > 1 {
        // Statistics from the live searchers (as a scroll's first page does).
        let view = ctx.view().await;
        let parts: Vec<Part> = calls.iter().map(|(p, _)| p.clone()).collect();
        let mut names: Vec<&String> = parts.iter().flat_map(|p| p.indices.iter()).collect();
        names.sort_unstable();
        names.dedup();
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            if let Some(entry) = ctx.leaf.catalog.get(name).await {
                entries.push(entry);
            }
        }
        let stats = gather_stats(ctx, &view, &entries, &parts, &node_spec, timeout).await;
        for (_, request) in &mut calls {
            request.stats = Some(stats.clone());
        }
    }
    let gathered = fan_out(ctx, calls, timeout, false).await?;
    let (partials, mut report) = (gathered.partials, gathered.report);
    report.total += missing.len();
    report.failures.extend(missing);
    let mut out = render(partials, &spec, report, started)?;
    out["pit_id"] = json!(id);
    Ok(out)
}

/// Frees points in time this node coordinates and their snapshots; how many it freed.
pub async fn close_here(ctx: &ClusterCtx, ids: &[String]) -> usize {
    let freed = ctx.pits.remove(ids);
    let count = freed.len();
    release_pins(ctx, freed.into_iter().flat_map(|p| p.pins).collect()).await;
    count
}

/// Frees points in time wherever they are coordinated; how many were freed.
pub async fn close(ctx: &ClusterCtx, ids: &[String]) -> usize {
    let view = ctx.view().await;
    let mut by_node: HashMap<&str, Vec<String>> = HashMap::new();
    for id in ids {
        if let Some(node) = owner(id) {
            by_node.entry(node).or_default().push(id.clone());
        }
    }
    let mut freed = 0;
    for (node, ids) in by_node {
        let Some(member) = view.member(node) else {
            continue;
        };
        if let Ok(NodeReply::Freed(n)) = ctx
            .call_node(member, NodeCall::ClosePits(ids), CALL_TIMEOUT)
            .await
        {
            freed += n;
        }
    }
    freed
}
