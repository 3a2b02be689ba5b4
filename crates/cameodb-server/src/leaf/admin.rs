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
