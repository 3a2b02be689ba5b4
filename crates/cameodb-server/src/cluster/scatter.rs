//! Scatter-gather: searches, counts and scrolls over the cluster, one live copy of every shard
//! (see `plan`). Round one (when scores matter) gathers term statistics from every asked node
//! for the ranges it answers for; round two asks each for its top `from + size` hits, total
//! and aggregation partials under those statistics; the coordinator merges them as if they
//! came from one node. A node that fails or does not answer in time is reported in
//! `_shards.failures` (one entry per shard it answered for), never waited for beyond the call
//! timeout; a shard with no live copy is a failed shard.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cameodb_cluster::Member;
use futures::future::join_all;
use serde_json::{Value, json};

use super::ClusterCtx;
use super::plan::{Part, Plan, plan, plan_some, stats_plan};
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
    /// Cluster-wide statistics of the first page, used by every page.
    stats: Option<ClusterStats>,
    /// Each asked node's part and snapshot id.
    pins: Vec<(Part, String)>,
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

/// What a fan-out gathered.
pub(super) struct Gathered {
    /// Each answering node's partial result.
    pub partials: Vec<Partial>,
    /// Shard accounting.
    pub report: ShardReport,
    /// Snapshot ids the nodes kept, with their parts.
    pub pins: Vec<(Part, String)>,
    /// Parts whose node did not answer at all (with `retry`; otherwise they are failed
    /// shards in `report`).
    pub unanswered: Vec<(Part, ApiError)>,
}

/// Sends each part its request; gathers partials, shard accounting and snapshot ids. With
/// `retry`, parts whose node did not answer (dead, not yet known to be) are handed back for
/// another copy instead of being reported failed.
pub(super) async fn fan_out(
    ctx: &ClusterCtx,
    calls: Vec<(Part, ShardRequest)>,
    timeout: Duration,
    retry: bool,
) -> Result<Gathered, ApiError> {
    let answers = join_all(calls.into_iter().map(|(part, request)| async move {
        let answer = match ctx
            .try_call(&part.member, NodeCall::Search(request), timeout)
            .await
        {
            Err(unanswered) if retry => Err(Ok(unanswered)),
            Err(err) => Ok(Err(err)),
            Ok(Ok(NodeReply::Shard(answer))) => Ok(Ok(answer)),
            Ok(Ok(other)) => Ok(Err(other.unexpected("search"))),
            // A 4xx is the request's own fault and fails the whole search, as on one node.
            Ok(Err(err)) if err.status.is_client_error() => Err(Err(err)),
            Ok(Err(err)) => Ok(Err(err)),
        };
        (part, answer)
    }))
    .await;
    let mut partials = Vec::new();
    let mut report = ShardReport::default();
    let mut pins = Vec::new();
    let mut unanswered = Vec::new();
    let mut refused = None;
    for (part, answer) in answers {
        match answer {
            Err(Ok(err)) => unanswered.push((part, err)),
            Err(Err(err)) => refused = Some(err),
            Ok(Ok(answer)) => {
                report.total += part.shards.len();
                report.successful += part.shards.len();
                if let Some(pin) = answer.pin {
                    pins.push((part, pin));
                }
                partials.push(answer.partial);
            }
            Ok(Err(err)) => {
                tracing::warn!(node = %part.member.id, reason = %err.reason, "node failed its part of a search");
                // `ClusterCtx::call` answers a node that missed the deadline with a 504.
                report.timed_out |= err.status == axum::http::StatusCode::GATEWAY_TIMEOUT;
                for (index, shard) in &part.shards {
                    report.total += 1;
                    report.failures.push(json!({
                        "shard": shard, "index": index, "node": part.member.id,
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
    Ok(Gathered {
        partials,
        report,
        pins,
        unanswered,
    })
}

/// A fan-out whose parts that do not answer are asked of other live copies, once.
/// `request(part, n)` makes the request of the `n`-th part.
pub(super) async fn fan_out_with_retry(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    routing: Option<&str>,
    plan: &Plan,
    request: impl Fn(&Part, usize) -> ShardRequest,
    timeout: Duration,
) -> Result<Gathered, ApiError> {
    let calls = plan
        .parts
        .iter()
        .enumerate()
        .map(|(n, part)| (part.clone(), request(part, n)))
        .collect();
    let mut gathered = fan_out(ctx, calls, timeout, true).await?;
    report_unserved(plan, &mut gathered.report);
    if gathered.unanswered.is_empty() {
        return Ok(gathered);
    }
    let unanswered = std::mem::take(&mut gathered.unanswered);
    let dead: Vec<String> = unanswered
        .iter()
        .map(|(p, _)| p.member.id.clone())
        .collect();
    let shards: BTreeSet<(String, usize)> = unanswered
        .iter()
        .flat_map(|(p, _)| p.shards.iter().cloned())
        .collect();
    tracing::debug!(nodes = ?dead, "asking other copies for the parts of nodes that did not answer");
    let retry = plan_some(ctx, view, entries, routing, Some(&shards), &dead);
    let offset = plan.parts.len();
    let calls = retry
        .parts
        .iter()
        .enumerate()
        .map(|(n, part)| (part.clone(), request(part, offset + n)))
        .collect();
    let more = fan_out(ctx, calls, timeout, false).await?;
    gathered.partials.extend(more.partials);
    gathered.pins.extend(more.pins);
    let report = &mut gathered.report;
    report.total += more.report.total;
    report.successful += more.report.successful;
    report.failures.extend(more.report.failures);
    report.timed_out |= more.report.timed_out;
    report_unserved(&retry, report);
    Ok(gathered)
}

/// Adds the shards no live copy answers to `report`, as failed shards.
pub(super) fn report_unserved(plan: &Plan, report: &mut ShardReport) {
    report.total += plan.unserved.len();
    report.failures.extend(plan.unserved.iter().cloned());
}

/// Round one: the statistics of `entries` for `spec`'s query as `stats_plan` asks for them,
/// summed (and divided back to one copy of each document).
pub(super) async fn gather_stats(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    parts: &[Part],
    spec: &SearchSpec,
    timeout: Duration,
) -> ClusterStats {
    let plan = stats_plan(view, entries, parts);
    let answers = join_all(
        plan.asks
            .iter()
            .map(|(member, indices, ranges)| async move {
                let request = ShardRequest {
                    indices: indices.clone(),
                    spec: spec.clone(),
                    stats: None,
                    pin: None,
                    ranges: ranges.clone(),
                };
                ctx.call_node(member, NodeCall::Dfs(request), timeout).await
            }),
    )
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
    for (index, stats) in total.iter_mut() {
        if let Some(copies) = plan.copies.get(index).filter(|c| **c > 1) {
            stats.one_copy_of(*copies as u64);
        }
    }
    total
}

/// A search over `entries`, one live copy of every shard (or of those `routing` selects),
/// merged.
pub async fn search(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    params: &HashMap<String, String>,
    spec: &SearchSpec,
    keep_alive: Option<Duration>,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let resolved = super::liked::resolve(ctx, entries, spec).await?;
    let spec = &resolved;
    let timeout = spec.timeout.unwrap_or(super::CALL_TIMEOUT);
    let plan = plan(
        ctx,
        view,
        entries,
        params.get("routing").map(String::as_str),
    );
    let node_spec = spec.for_nodes();
    let pin = keep_alive.map(|k| Pin::Open {
        keep_alive_ms: u64::try_from(k.as_millis()).unwrap_or(u64::MAX),
    });
    // One node's statistics are the cluster's: round one is needed only with several.
    let stats = if spec.uses_scores() && plan.parts.len() > 1 {
        Some(gather_stats(ctx, view, entries, &plan.parts, &node_spec, timeout).await)
    } else {
        None
    };
    let routing = params.get("routing").map(String::as_str);
    let request = |part: &Part, n: usize| {
        let mut request = part.request(&node_spec, n, pin.clone());
        request.stats = stats.clone();
        request
    };
    let gathered = fan_out_with_retry(ctx, view, entries, routing, &plan, request, timeout).await?;
    let (partials, report, pins) = (gathered.partials, gathered.report, gathered.pins);
    let missing = report.failures.clone();
    let mut out = render(partials, spec, report, started)?;
    if let Some(keep_alive) = keep_alive {
        let id = format!("{SCROLL_PREFIX}{}.{}", view.self_id, generate_id());
        let mut next = spec.clone();
        next.from = next.window();
        let scroll = ClusterScroll {
            spec: next,
            stats,
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
        let keep_alive_ms = Some(u64::try_from(keep_alive.as_millis()).unwrap_or(u64::MAX));
        let node_spec = spec.for_nodes();
        let calls: Vec<(Part, ShardRequest)> = context
            .pins
            .iter()
            .enumerate()
            .map(|(n, (part, pin))| {
                let pin = Pin::Use {
                    id: pin.clone(),
                    keep_alive_ms,
                };
                let mut request = part.request(&node_spec, n, Some(pin));
                request.stats = context.stats.clone();
                (part.clone(), request)
            })
            .collect();
        (spec, context.missing.clone(), calls)
    })?;
    let timeout = spec.timeout.unwrap_or(super::CALL_TIMEOUT);
    let gathered = fan_out(ctx, calls, timeout, false).await?;
    let (partials, mut report) = (gathered.partials, gathered.report);
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
pub(super) async fn release_pins(ctx: &ClusterCtx, pins: Vec<(Part, String)>) {
    let mut by_node: HashMap<String, (Member, Vec<String>)> = HashMap::new();
    for (part, pin) in pins {
        by_node
            .entry(part.member.id.clone())
            .or_insert_with(|| (part.member, Vec::new()))
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

/// `_count` over one live copy of every shard, summed.
pub async fn count(
    ctx: &ClusterCtx,
    view: &View,
    entries: &[Arc<IndexEntry>],
    params: &HashMap<String, String>,
    query: QuerySpec,
) -> Result<Value, ApiError> {
    let plan = plan(
        ctx,
        view,
        entries,
        params.get("routing").map(String::as_str),
    );
    let spec = SearchSpec::count(query);
    let request = |part: &Part, n: usize| part.request(&spec, n, None);
    let routing = params.get("routing").map(String::as_str);
    let gathered = fan_out_with_retry(
        ctx,
        view,
        entries,
        routing,
        &plan,
        request,
        super::CALL_TIMEOUT,
    )
    .await?;
    let (partials, report) = (gathered.partials, gathered.report);
    let count: usize = partials.iter().map(|p| p.total).sum();
    Ok(json!({"count": count, "_shards": shards_json(&report)}))
}
