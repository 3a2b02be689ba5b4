//! A node's part of a search: collect its top hits, total and aggregation partials (under the
//! cluster-wide statistics the coordinator sent), and its term statistics for round one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cameodb_search::dfs::{ClusterStats, IndexStats};
use cameodb_search::tokens::TokenRanges;
use cameodb_search::{Partial, SearchSpec, build_query, search_store};
use cameodb_storage::Snapshot;

use super::Leaf;
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::messages::{Pin, ShardAnswer, ShardRequest};
use crate::shard::run;

/// An index to search, with the snapshot to read (a scroll's snapshot) or `None`
/// for the latest refreshed state.
pub type Target = (Arc<IndexEntry>, Option<Snapshot>);

/// Runs `spec` over `targets` (with cluster-wide statistics, when the coordinator sent them).
/// Also returns the searcher each index used, so a scroll can keep reading the same snapshot.
pub async fn collect(
    targets: Vec<Target>,
    spec: &SearchSpec,
    stats: Option<&ClusterStats>,
    ranges: &BTreeMap<String, TokenRanges>,
) -> Result<(Partial, Vec<(Arc<IndexEntry>, Snapshot)>), ApiError> {
    let mut partial = Partial {
        shards: targets.len(),
        ..Partial::default()
    };
    let mut used = Vec::with_capacity(targets.len());
    for (entry, snapshot) in targets {
        let spec = spec.clone();
        let name = entry.name.clone();
        let index_stats = stats.and_then(|s| s.get(&entry.name)).cloned();
        let keep_to = ranges.get(&entry.name).cloned().map(Arc::new);
        let (answer, searcher) = run(&entry.shard, move |store| {
            let searcher = snapshot.unwrap_or_else(|| store.searcher());
            let answer = search_store(
                store,
                &searcher,
                &name,
                &spec,
                index_stats.as_ref(),
                keep_to.as_ref(),
            )?;
            Ok((answer, searcher))
        })
        .await
        .map_err(|e| e.with_index(&entry.name))?;
        partial.total += answer.total;
        partial.hits.extend(answer.hits);
        partial.aggs.extend(answer.aggs);
        partial.agg_hits.extend(answer.agg_hits);
        partial.suggest.extend(answer.suggest);
        used.push((entry, searcher));
    }
    Ok((partial, used))
}

/// The indexes of `names` this node holds (a node skips those it lacks).
async fn local_entries(leaf: &Leaf, names: &[String]) -> Vec<Arc<IndexEntry>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(entry) = leaf.catalog.get(name).await {
            out.push(entry);
        }
    }
    out
}

/// This node's part of a search, opening or reading a scroll snapshot as the request says.
pub async fn search(leaf: &Leaf, request: ShardRequest) -> Result<ShardAnswer, ApiError> {
    // Parsed and checked by the coordinator; its window is already this node's part (scroll
    // pages go past the result window by design).
    let spec = request.spec;
    let targets: Vec<Target> = match &request.pin {
        Some(Pin::Use { id, keep_alive_ms }) => leaf
            .scrolls
            .snapshot(id, keep_alive_ms.map(Duration::from_millis))?,
        _ => local_entries(leaf, &request.indices)
            .await
            .into_iter()
            .map(|e| (e, None))
            .collect(),
    };
    let (partial, used) = collect(targets, &spec, request.stats.as_ref(), &request.ranges).await?;
    let pin = match request.pin {
        Some(Pin::Open { keep_alive_ms }) => Some(
            leaf.scrolls
                .open(used, Duration::from_millis(keep_alive_ms))?,
        ),
        Some(Pin::Use { id, .. }) => Some(id),
        None => None,
    };
    Ok(ShardAnswer { partial, pin })
}

/// This node's term statistics for a search's query.
pub async fn dfs(leaf: &Leaf, request: ShardRequest) -> Result<ClusterStats, ApiError> {
    let mut out = ClusterStats::new();
    for entry in local_entries(leaf, &request.indices).await {
        let query = request.spec.query.clone();
        let keep_to = request.ranges.get(&entry.name).cloned();
        let stats: IndexStats = run(&entry.shard, move |store| {
            let searcher = store.searcher();
            let query = build_query(store, &query)?;
            Ok(cameodb_search::dfs::collect(
                store,
                &searcher,
                query.as_ref(),
                keep_to.as_ref(),
            )?)
        })
        .await
        .map_err(|e| e.with_index(&entry.name))?;
        out.insert(entry.name.clone(), stats);
    }
    Ok(out)
}
