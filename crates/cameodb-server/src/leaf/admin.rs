//! Index housekeeping on this node: refreshes and what it holds.

use std::collections::BTreeMap;

use cameodb_search::tokens::TokenRanges;

use super::Leaf;
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::shard::run;

/// Refreshes the indexes of `names` this node holds.
pub async fn refresh(leaf: &Leaf, names: &[String]) -> Result<(), ApiError> {
    for name in names {
        if let Some(entry) = leaf.catalog.get(name).await {
            run(&entry.shard, |store| Ok(store.refresh()?))
                .await
                .map_err(|e| e.with_index(name))?;
        }
    }
    Ok(())
}

/// Documents and bytes of every index this node holds.
pub async fn sizes(leaf: &Leaf) -> Result<BTreeMap<String, (u64, u64)>, ApiError> {
    let mut out = BTreeMap::new();
    for entry in leaf.catalog.all().await {
        out.insert(entry.name.clone(), local_size(&entry).await?);
    }
    Ok(out)
}

/// Documents and bytes of one index on this node.
async fn local_size(entry: &IndexEntry) -> Result<(u64, u64), ApiError> {
    run(&entry.shard, |store| {
        Ok((store.doc_count()?, dir_bytes(store.dir())))
    })
    .await
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Documents of `index` here per shard (`shards`: each shard's id and token ranges), counted
/// in the latest refreshed state; and the bytes the index takes here.
pub async fn shard_docs(
    leaf: &Leaf,
    index: &str,
    shards: Vec<(usize, TokenRanges)>,
) -> Result<(Vec<u64>, u64), ApiError> {
    let entry = leaf.catalog.require(index).await?;
    run(&entry.shard, move |store| {
        // Every range with its shard's position, sorted, for one binary search per document.
        let mut ranges: Vec<(u64, u64, usize)> = shards
            .iter()
            .enumerate()
            .flat_map(|(n, (_, r))| r.ranges().iter().map(move |&(a, b)| (a, b, n)))
            .collect();
        ranges.sort_unstable();
        let mut counts = vec![0u64; shards.len()];
        let searcher = store.searcher();
        for segment in searcher.segment_readers() {
            let column = cameodb_search::tokens::token_column(segment)?;
            for doc in segment.doc_ids_alive() {
                let Some(token) = column.first(doc) else {
                    continue;
                };
                let i = ranges.partition_point(|(_, end, _)| *end < token);
                if let Some((start, _, n)) = ranges.get(i)
                    && *start <= token
                {
                    counts[*n] += 1;
                }
            }
        }
        Ok((counts, dir_bytes(store.dir())))
    })
    .await
    .map_err(|e| e.with_index(index))
}

/// Documents one purge batch drops.
const PURGE_BATCH: usize = 1_000;

/// Drops every document (and tombstone) of `index` here whose token is outside `keep`: the
/// ranges this node no longer holds after a placement change. Nothing of it enters the change
/// feed — a purge is this copy letting go, not a delete (a delete would spread, and would win
/// over the documents if the ranges ever came back). Returns how many it dropped.
pub async fn purge_outside(leaf: &Leaf, index: &str, keep: TokenRanges) -> Result<u64, ApiError> {
    let entry = leaf.catalog.require(index).await?;
    run(&entry.shard, move |store| {
        let mut outside = Vec::new();
        store.versions(|id, token, _, _, _| {
            if !keep.contains(token) {
                outside.push((id.to_string(), token));
            }
        })?;
        let mut dropped = 0u64;
        for chunk in outside.chunks(PURGE_BATCH) {
            let mut ops = Vec::with_capacity(chunk.len());
            for (id, token) in chunk {
                let Ok(id) = cameodb_storage::DocId::new(id.clone()) else {
                    continue;
                };
                ops.push(cameodb_storage::WriteOp {
                    key: cameodb_storage::DocKey { token: *token, id },
                    kind: cameodb_storage::OpKind::Lose,
                    if_seq_no: None,
                    stamp: None,
                    external: None,
                });
            }
            for outcome in store.write_batch(ops) {
                dropped += u64::from(outcome.is_ok());
            }
        }
        Ok(dropped)
    })
    .await
    .map_err(|e| e.with_index(index))
}
