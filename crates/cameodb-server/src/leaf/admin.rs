//! Index housekeeping on this node: refreshes and what it holds.

use std::collections::BTreeMap;

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
