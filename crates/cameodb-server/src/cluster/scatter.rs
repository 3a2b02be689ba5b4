//! Scatter-gather: searches, counts and scrolls over every node of the cluster. Round one
//! (when scores matter) gathers term statistics from every node; round two asks every node for
//! its top `from + size` hits, total and aggregation partials under those statistics; the
//! coordinator merges them as if they came from one node. A node that fails or does not answer
//! in time is reported in `_shards.failures`, never waited for beyond the call timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cameodb_cluster::Member;
use futures::future::join_all;
use serde_json::{Value, json};

use super::ClusterCtx;
use super::router_actor::View;
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::ids::generate_id;
use crate::messages::{NodeCall, NodeReply, Pin, ScrollCall, ShardRequest};
use crate::scroll_contexts::Contexts;
use cameodb_search::dfs::ClusterStats;
use cameodb_search::{Partial, QuerySpec, SearchSpec, ShardReport, render, shards_json};

/// Prefix of a cluster scroll id: `c.<coordinator node id>.<id>`, so any node can send a
/// scroll request on to the coordinator that holds it.
const SCROLL_PREFIX: &str = "c.";

/// One open scroll on its coordinator.
pub struct ClusterScroll {
    /// The search, with `from` at the next page.
    spec: SearchSpec,
    /// What every node is asked (its `pin` is set per node).
    request: ShardRequest,
    /// Each node's snapshot id.
    pins: Vec<(Member, String)>,
    /// The shards that failed the first page: they hold no snapshot, so every later page is
    /// missing them too and says so.
    missing: Vec<Value>,
}

/// The cluster scrolls this node coordinates.
pub type ClusterScrolls = Contexts<ClusterScroll>;

/// The node that coordinates scroll `id`, if it is a cluster scroll.
pub fn scroll_owner(id: &str) -> Option<&str> {
    id.strip_prefix(SCROLL_PREFIX)?.split('.').next()
}

/// Sends each member its request; gathers partials, shard accounting and snapshot ids.
pub(super) async fn fan_out(
    ctx: &ClusterCtx,
    calls: Vec<(Member, ShardRequest)>,
    timeout: Duration,
) -> Result<(Vec<Partial>, ShardReport, Vec<(Member, String)>), ApiError> {
    let answers = join_all(calls.into_iter().map(|(member, request)| async move {
        let indices = request.indices.clone();
        let answer = match ctx
            .call_node(&member, NodeCall::Search(request), timeout)
            .await
        {
            Ok(NodeReply::Shard(answer)) => Ok(Ok(answer)),
            Ok(other) => Ok(Err(other.unexpected("search"))),
            // A 4xx is the request's own fault and fails the whole search, as on one node.
            Err(err) if err.status.is_client_error() => Err(err),
            Err(err) => Ok(Err(err)),
        };
        (member, indices, answer)
    }))
    .await;
    let mut partials = Vec::new();
    let mut report = ShardReport::default();
    let mut pins = Vec::new();
    let mut refused = None;
    for (member, indices, answer) in answers {
        match answer {
            Err(err) => refused = Some(err),
            Ok(Ok(answer)) => {
                report.total += answer.partial.shards;
                report.successful += answer.partial.shards;
                if let Some(pin) = answer.pin {
                    pins.push((member, pin));
                }
                partials.push(answer.partial);
            }
            Ok(Err(err)) => {
                tracing::warn!(node = %member.id, reason = %err.reason, "node failed its part of a search");
                // `ClusterCtx::call` answers a node that missed the deadline with a 504.
                report.timed_out |= err.status == axum::http::StatusCode::GATEWAY_TIMEOUT;
                for index in &indices {
                    report.total += 1;
                    report.failures.push(json!({
                        "shard": 0, "index": index, "node": member.id,
                        "reason": err.cause(),
                    }));
                }
            }
        }
    }
    if let Some(err) = refused {
        // The request itself was refused (a 4xx, as on one node): the snapshots the other
        // nodes kept for it would otherwise stay pinned until their keep-alive ran out.
        release_pins(ctx, pins).await;
        return Err(err);
    }
    Ok((partials, report, pins))
}

/// Round one: every node's statistics, summed.
pub(super) async fn gather_stats(
    ctx: &ClusterCtx,
    members: &[Member],
    request: &ShardRequest,
    timeout: Duration,
) -> ClusterStats {
    let answers = join_all(members.iter().map(|member| async move {
        ctx.call_node(member, NodeCall::Dfs(request.clone()), timeout)
            .await
    }))
    .await;
    let mut total = ClusterStats::new();
    for answer in answers {
        // A node that fails round one fails round two too, and is reported there.
        let Ok(NodeReply::Stats(stats)) = answer else {
            continue;
        };
        for (index, stats) in stats {
            total.entry(index).or_default().add(&stats);
        }
    }
    total
}

/// The nodes a search asks: every data node, or with `routing` only the owners of the routing
/// values (as Elasticsearch searches only the shards they route to).
fn targets(
    view: &View,
    entries: &[Arc<IndexEntry>],
    params: &HashMap<String, String>,
) -> Vec<Member> {
    let Some(routing) = params.get("routing") else {
        return view.data_members().into_iter().cloned().collect();
    };
    let mut owners: Vec<String> = Vec::new();
    for value in routing.split(',').filter(|v| !v.is_empty()) {
        let token = cameodb_storage::routing_token(value);
        let rings: Vec<&cameodb_ring::Ring> = if entries.is_empty() {
            vec![&view.ring]
        } else {
            entries
                .iter()
                .map(|e| e.placement.as_deref().unwrap_or(&view.ring))
                .collect()
        };
        for ring in rings {
            if let Some(owner) = ring.owner(token)
                && !owners.iter().any(|o| o == owner)
            {
                owners.push(owner.to_string());
            }
        }
    }
    view.data_members()
        .into_iter()
        .filter(|m| owners.contains(&m.id))
        .cloned()
        .collect()
}

/// Reports as failed shards the nodes an index was placed on that the cluster no longer knows
/// (gone longer than gossip remembers a dead node): their documents are missing from the answer.
pub(super) fn report_forgotten(
    view: &View,
    entries: &[Arc<IndexEntry>],
    params: &HashMap<String, String>,
    report: &mut ShardReport,
) {
    if params.contains_key("routing") {
        return;
    }
    for entry in entries {
        for id in entry
            .meta
            .placement
            .iter()
            .filter(|id| view.member(id).is_none())
        {
            report.total += 1;
            report.failures.push(json!({
                "shard": 0, "index": entry.name, "node": id,
                "reason": {
                    "type": "unavailable_shards_exception",
                    "reason": format!("node [{id}] holds part of this index but is no longer in the cluster"),
                },
            }));
        }
    }
}

/// A search over `entries` on every node (or the routing values' owners), merged.
pub async fn search(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    params: &HashMap<String, String>,
    spec: &SearchSpec,
    keep_alive: Option<Duration>,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let timeout = spec.timeout.unwrap_or(super::CALL_TIMEOUT);
    let members = targets(view, entries, params);
    let mut request = ShardRequest {
        indices: entries.iter().map(|e| e.name.clone()).collect(),
        spec: spec.for_nodes(),
        stats: None,
        pin: None,
    };
    // One node's statistics are the cluster's: round one is needed only with several.
    if spec.uses_scores() && members.len() > 1 {
        request.stats = Some(gather_stats(ctx, &members, &request, timeout).await);
    }
    let calls = members
        .iter()
        .enumerate()
        .map(|(part, m)| {
            let mut request = request.clone();
            request.spec.shard = part as u32;
            request.pin = keep_alive.map(|k| Pin::Open {
                keep_alive_ms: k.as_millis() as u64,
            });
            (m.clone(), request)
        })
        .collect();
    let (partials, mut report, pins) = fan_out(ctx, calls, timeout).await?;
    report_forgotten(view, entries, params, &mut report);
    let missing = report.failures.clone();
    let mut out = render(partials, spec, report, started)?;
    if let Some(keep_alive) = keep_alive {
        let id = format!("{SCROLL_PREFIX}{}.{}", view.self_id, generate_id());
        let mut next = spec.clone();
        next.from = next.window();
        let scroll = ClusterScroll {
            spec: next,
            request,
            pins,
            missing,
        };
        let pins = scroll.pins.clone();
        if let Err(err) = ctx.scrolls.insert(id.clone(), scroll, keep_alive) {
            release_pins(ctx, pins).await;
            return Err(err);
        }
        out["_scroll_id"] = json!(id);
    }
    Ok(out)
}

/// The next page of scroll `id`: asked of the node that coordinates it.
pub async fn next_page(
    ctx: &ClusterCtx,
    id: &str,
    keep_alive: Option<Duration>,
) -> Result<Value, ApiError> {
    let call = ScrollCall {
        ids: vec![id.to_string()],
        keep_alive_ms: keep_alive.map(|k| k.as_millis() as u64),
    };
    let owner = scroll_owner(id).ok_or_else(|| missing_context(id, "it is not a scroll id"))?;
    let view = ctx.view().await;
    let member = view
        .member(owner)
        .ok_or_else(|| missing_context(id, &format!("node [{owner}] is not a member")))?;
    match ctx
        .call_node(member, NodeCall::ScrollPage(call), super::CALL_TIMEOUT)
        .await?
    {
        NodeReply::Page(page) => Ok(page),
        other => Err(other.unexpected("scroll page")),
    }
}

/// The 404 for a scroll id no node keeps.
pub(super) fn missing_context(id: &str, why: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "search_context_missing_exception",
        format!("No search context found for id [{id}]: {why}"),
    )
}

/// The next page of a cluster scroll this node coordinates.
pub async fn scroll_page(ctx: &ClusterCtx, call: &ScrollCall) -> Result<Value, ApiError> {
    let id = call.ids.first().map(String::as_str).unwrap_or_default();
    let keep_alive = call.keep_alive_ms.map(Duration::from_millis);
    let started = Instant::now();
    let (spec, missing, calls) = ctx.scrolls.read(id, keep_alive, |context, keep_alive| {
        let spec = context.spec.clone();
        context.spec.from = context.spec.window();
        let keep_alive_ms = Some(keep_alive.as_millis() as u64);
        let calls: Vec<(Member, ShardRequest)> = context
            .pins
            .iter()
            .enumerate()
            .map(|(part, (member, pin))| {
                let mut request = context.request.clone();
                request.spec = spec.for_nodes();
                request.spec.shard = part as u32;
                request.pin = Some(Pin::Use {
                    id: pin.clone(),
                    keep_alive_ms,
                });
                (member.clone(), request)
            })
            .collect();
        (spec, context.missing.clone(), calls)
    })?;
    let timeout = spec.timeout.unwrap_or(super::CALL_TIMEOUT);
    let (partials, mut report, _) = fan_out(ctx, calls, timeout).await?;
    report.total += missing.len();
    report.failures.extend(missing);
    let mut out = render(partials, &spec, report, started)?;
    out["_scroll_id"] = json!(id);
    Ok(out)
}

/// Frees cluster scrolls this node coordinates, and their snapshots on every node; returns
/// how many scrolls it freed.
pub async fn clear_scrolls(ctx: &ClusterCtx, ids: &[String]) -> usize {
    let freed = ctx.scrolls.remove(ids);
    let count = freed.len();
    release_pins(ctx, freed.into_iter().flat_map(|c| c.pins).collect()).await;
    count
}

/// Frees the snapshots `pins` on their nodes.
pub(super) async fn release_pins(ctx: &ClusterCtx, pins: Vec<(Member, String)>) {
    let mut by_node: HashMap<String, (Member, Vec<String>)> = HashMap::new();
    for (member, pin) in pins {
        by_node
            .entry(member.id.clone())
            .or_insert_with(|| (member, Vec::new()))
            .1
            .push(pin);
    }
    join_all(by_node.into_values().map(|(member, pins)| async move {
        // Best effort: a snapshot not freed here expires with its keep-alive.
        let _ = ctx
            .call_node(&member, NodeCall::ReleasePins(pins), super::CALL_TIMEOUT)
            .await;
    }))
    .await;
}

/// Frees cluster scrolls wherever they are coordinated; returns how many were freed.
pub async fn clear_anywhere(ctx: &ClusterCtx, ids: &[String]) -> usize {
    let mut freed = clear_scrolls(ctx, ids).await;
    let view = ctx.view().await;
    let mut remote: HashMap<&str, Vec<String>> = HashMap::new();
    for id in ids {
        if let Some(owner) = scroll_owner(id).filter(|o| *o != view.self_id) {
            remote.entry(owner).or_default().push(id.clone());
        }
    }
    for (owner, ids) in remote {
        let Some(member) = view.member(owner) else {
            continue;
        };
        let call = ScrollCall {
            ids,
            keep_alive_ms: None,
        };
        if let Ok(NodeReply::Freed(n)) = ctx
            .call_node(member, NodeCall::ClearScrolls(call), super::CALL_TIMEOUT)
            .await
        {
            freed += n;
        }
    }
    freed
}

/// `_count` over every node, summed.
pub async fn count(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    params: &HashMap<String, String>,
    query: QuerySpec,
) -> Result<Value, ApiError> {
    let request = ShardRequest {
        indices: entries.iter().map(|e| e.name.clone()).collect(),
        spec: SearchSpec::count(query),
        stats: None,
        pin: None,
    };
    let calls = targets(view, entries, params)
        .into_iter()
        .map(|m| (m, request.clone()))
        .collect();
    let (partials, mut report, _) = fan_out(ctx, calls, super::CALL_TIMEOUT).await?;
    report_forgotten(view, entries, params, &mut report);
    let count: usize = partials.iter().map(|p| p.total).sum();
    Ok(json!({"count": count, "_shards": shards_json(&report)}))
}
