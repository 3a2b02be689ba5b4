//! A node's part of a change-feed read: its feed of one index from the reader's cursor,
//! waiting for a change when asked to and there is none yet.

use std::time::{Duration, Instant};

use cameodb_storage::Cursor;

use super::Leaf;
use crate::error::ApiError;
use crate::messages::changes::{ChangeItem, ChangesCall, ChangesPage, NodeCursor};
use crate::shard::run;

/// Reads this node's feed of `call.index`.
pub async fn changes(leaf: &Leaf, call: ChangesCall) -> Result<ChangesPage, ApiError> {
    let entry = leaf.catalog.require(&call.index).await?;
    let since = call.since.map(|c| Cursor {
        seq: c.seq,
        floor: c.floor,
    });
    let (limit, wait) = (call.limit, Duration::from_millis(call.wait_ms));
    let ranges = call.ranges;
    run(&entry.shard, move |store| {
        let deadline = Instant::now() + wait;
        let mut cursor = since;
        let page = loop {
            let mut page = store.changes(cursor, limit)?;
            let at_end = page.changes.len() < limit;
            if let Some(ranges) = &ranges {
                page.changes.retain(|c| ranges.contains(c.key.token));
            }
            cursor = Some(page.next);
            if !page.changes.is_empty() {
                break page;
            }
            if at_end {
                // Blocks this job's thread (a blocking-pool thread) for at most the wait.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !store.wait_for_changes(page.next.seq, left) {
                    break page;
                }
            }
        };
        Ok(ChangesPage {
            changes: page
                .changes
                .into_iter()
                .map(|c| ChangeItem {
                    id: c.key.id.to_string(),
                    seq: c.seq,
                    version: c.version,
                    stamp: c.stamp,
                    source: c.source,
                })
                .collect(),
            next: NodeCursor {
                seq: page.next.seq,
                floor: page.next.floor,
            },
        })
    })
    .await
    .map_err(|e| e.with_index(&call.index))
}
