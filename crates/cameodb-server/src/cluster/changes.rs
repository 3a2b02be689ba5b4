//! The change feed across the cluster: each data node serves its own feed of the index (with
//! replicas, of the ranges it owns, so each change comes once — a change made while its
//! owner was down appears when the owner has caught up); the reader's cursor holds every
//! node's position, so one opaque string resumes them all. A page
//! takes what the nodes have, up to the limit; a reader that asks to wait gets the first
//! changes any node has, as soon as it has them.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{CALL_TIMEOUT, ClusterCtx};
use crate::error::ApiError;
use crate::messages::changes::{ChangeItem, ChangesCall, ChangesPage, NodeCursor};
use crate::messages::{NodeCall, NodeReply};
use cameodb_search::tokens::TokenRanges;

/// A cluster cursor: each node's position, by node id.
pub type ClusterCursor = BTreeMap<String, NodeCursor>;

/// Separates a node's entries in a cursor, and the fields of one (node ids are base58).
const ENTRY_SEPARATOR: char = '.';
const FIELD_SEPARATOR: char = '~';

/// Renders a cursor as the opaque string readers pass back.
pub fn encode_cursor(cursor: &ClusterCursor) -> String {
    cursor
        .iter()
        .map(|(node, c)| {
            format!(
                "{node}{FIELD_SEPARATOR}{}{FIELD_SEPARATOR}{}",
                c.seq, c.floor
            )
        })
        .collect::<Vec<_>>()
        .join(&ENTRY_SEPARATOR.to_string())
}

/// Parses a cursor string; anything but what [`encode_cursor`] makes is a 400.
pub fn decode_cursor(text: &str) -> Result<ClusterCursor, ApiError> {
    let invalid = || {
        ApiError::illegal_argument(format!(
            "[since] is not a cursor this feed gave out: [{}]",
            text.chars().take(64).collect::<String>()
        ))
    };
    let mut out = ClusterCursor::new();
    if text.is_empty() {
        return Ok(out);
    }
    for entry in text.split(ENTRY_SEPARATOR) {
        let mut fields = entry.split(FIELD_SEPARATOR);
        let (Some(node), Some(seq), Some(floor), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid());
        };
        if node.is_empty() || !node.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid());
        }
        let cursor = NodeCursor {
            seq: seq.parse().map_err(|_| invalid())?,
            floor: floor.parse().map_err(|_| invalid())?,
        };
        if out.insert(node.to_string(), cursor).is_some() {
            return Err(invalid());
        }
    }
    Ok(out)
}

/// One page of the feed: (node id, change) in each node's order, and the cursor after them.
pub struct FeedPage {
    /// The changes.
    pub changes: Vec<(String, ChangeItem)>,
    /// Where the reader goes on.
    pub next: ClusterCursor,
}

/// Reads the feed of `index` from `since`: at most `limit` changes; with `wait`, blocks until
/// some node has one (or the wait is over).
pub async fn read(
    ctx: &ClusterCtx,
    index: &str,
    since: ClusterCursor,
    limit: usize,
    wait: Duration,
) -> Result<FeedPage, ApiError> {
    let view = ctx.view().await;
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    let entry = ctx.leaf.catalog.get(index).await;
    let placement = entry.as_ref().and_then(|e| e.placement.clone());
    let ring = view.ring_of(placement.as_deref());
    let replicated = entry
        .as_ref()
        .is_some_and(|e| e.wanted_copies().min(ring.members().len()) > 1);
    let mut calls: FuturesUnordered<_> = view
        .data_members()
        .into_iter()
        .map(|member| {
            // With copies, each node lists the changes of the ranges it owns (the first copy):
            // every change once.
            let ranges = replicated.then(|| {
                TokenRanges::new(
                    ring.ranges()
                        .into_iter()
                        .filter(|r| r.owner == member.id)
                        .map(|r| (r.start, r.end))
                        .collect(),
                )
            });
            let call = NodeCall::Changes(ChangesCall {
                index: index.to_string(),
                since: since.get(&member.id).copied(),
                limit,
                wait_ms,
                ranges,
            });
            async move {
                let answer = ctx.call_node(member, call, CALL_TIMEOUT + wait).await;
                (member.id.clone(), answer)
            }
        })
        .collect();
    let mut pages: Vec<(String, ChangesPage)> = Vec::new();
    while let Some((node, answer)) = calls.next().await {
        match answer? {
            NodeReply::Changes(page) => {
                let found = !page.changes.is_empty();
                pages.push((node, page));
                if found {
                    break;
                }
            }
            other => return Err(other.unexpected("changes")),
        }
    }
    // Whatever else is in already joins the page; nodes still waiting keep their position.
    while let Some(Some((node, answer))) = futures::FutureExt::now_or_never(calls.next()) {
        if let NodeReply::Changes(page) = answer? {
            pages.push((node, page));
        }
    }
    Ok(merge(since, pages, limit))
}

/// Puts the nodes' pages together, at most `limit` changes, moving each node's cursor only
/// past what the page returns.
fn merge(since: ClusterCursor, pages: Vec<(String, ChangesPage)>, limit: usize) -> FeedPage {
    let mut next = since;
    let mut changes = Vec::new();
    for (node, page) in pages {
        let room = limit.saturating_sub(changes.len());
        let taken = page.changes.len().min(room);
        let cursor = if taken == page.changes.len() {
            page.next
        } else {
            // Cut short: resume right after the last change taken (or where it was).
            match page
                .changes
                .get(taken.wrapping_sub(1))
                .filter(|_| taken > 0)
            {
                Some(last) => NodeCursor {
                    seq: last.seq + 1,
                    floor: page.next.floor,
                },
                None => match next.get(&node) {
                    Some(cursor) => *cursor,
                    None => continue,
                },
            }
        };
        changes.extend(
            page.changes
                .into_iter()
                .take(taken)
                .map(|c| (node.clone(), c)),
        );
        next.insert(node, cursor);
    }
    FeedPage { changes, next }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn item(seq: u64) -> ChangeItem {
        ChangeItem {
            id: format!("d{seq}"),
            seq,
            version: 1,
            stamp: cameodb_storage::Stamp::default(),
            source: None,
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(entries in prop::collection::btree_map("[a-zA-Z0-9]{1,52}", (any::<u64>(), any::<u64>()), 0..5)) {
            let cursor: ClusterCursor = entries
                .into_iter()
                .map(|(node, (seq, floor))| (node, NodeCursor { seq, floor }))
                .collect();
            prop_assert_eq!(decode_cursor(&encode_cursor(&cursor)).expect("decodes"), cursor);
        }

        #[test]
        fn garbage_is_refused_not_misread(text in "\\PC{0,80}") {
            if let Ok(cursor) = decode_cursor(&text) {
                prop_assert_eq!(encode_cursor(&cursor), text);
            }
        }

        /// However the limit cuts the pages, reading on from the merged cursor returns exactly
        /// the changes left out, and none twice.
        #[test]
        fn a_cut_page_resumes_where_it_stopped(
            counts in prop::collection::vec(0u64..6, 1..4),
            limit in 0usize..12,
        ) {
            let pages: Vec<(String, ChangesPage)> = counts
                .iter()
                .enumerate()
                .map(|(n, &count)| {
                    let changes: Vec<ChangeItem> = (10..10 + count).map(item).collect();
                    (format!("n{n}"), ChangesPage { changes, next: NodeCursor { seq: 10 + count, floor: 3 } })
                })
                .collect();
            let page = merge(ClusterCursor::new(), pages, limit);
            prop_assert!(page.changes.len() <= limit);
            for (n, &count) in counts.iter().enumerate() {
                let node = format!("n{n}");
                let taken = page.changes.iter().filter(|(c, _)| *c == node).count() as u64;
                match page.next.get(&node) {
                    Some(cursor) => prop_assert_eq!(cursor.seq, 10 + taken),
                    None => prop_assert_eq!(taken, 0),
                }
                prop_assert!(taken <= count);
            }
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "x",
            "a~1",
            "a~1~2~3",
            "a~x~1",
            "a~1~1.a~2~2",
            "~1~1",
            "a b~1~1",
        ] {
            assert!(decode_cursor(text).is_err(), "{text}");
        }
        assert_eq!(decode_cursor("").expect("empty").len(), 0);
    }
}
