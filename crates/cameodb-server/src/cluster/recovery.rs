//! What a node streamed from its peers — a placement change's gained ranges, or a copy
//! reading a peer's feed from the start after a restart or a wipe — kept for `_cat/recovery`:
//! per index and source, when it started and ended, documents and bytes, and the rate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Recoveries kept per node; the oldest finished ones go first.
const KEPT: usize = 1_000;

/// One stream from one peer into this node's copy of one index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// The index.
    pub index: String,
    /// The peer read from.
    pub source: String,
    /// The node streamed into.
    pub target: String,
    /// Start, epoch milliseconds.
    pub started_ms: u64,
    /// End, epoch milliseconds (`None` while it runs).
    pub finished_ms: Option<u64>,
    /// Documents (and deletes) applied.
    pub docs: u64,
    /// Body bytes fetched.
    pub bytes: u64,
}

impl Recovery {
    /// `index` while it runs, `done` after (Elasticsearch's stages).
    pub fn stage(&self) -> &'static str {
        if self.finished_ms.is_some() {
            "done"
        } else {
            "index"
        }
    }

    /// How long it ran (or has run), in milliseconds.
    pub fn elapsed_ms(&self) -> u64 {
        self.finished_ms
            .unwrap_or_else(now_ms)
            .saturating_sub(self.started_ms)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// This node's recoveries, by (index, source).
#[derive(Debug, Default)]
pub struct Recoveries {
    /// Each stream's latest record.
    streams: Mutex<BTreeMap<(String, String), Recovery>>,
}

impl Recoveries {
    /// A stream from `source` into `target`'s copy of `index` starts (again) from the start.
    pub fn start(&self, index: &str, source: &str, target: &str) {
        let Ok(mut streams) = self.streams.lock() else {
            return;
        };
        if streams.len() >= KEPT
            && let Some(oldest) = streams
                .iter()
                .filter(|(_, r)| r.finished_ms.is_some())
                .min_by_key(|(_, r)| r.started_ms)
                .map(|(k, _)| k.clone())
        {
            streams.remove(&oldest);
        }
        streams.insert(
            (index.to_string(), source.to_string()),
            Recovery {
                index: index.to_string(),
                source: source.to_string(),
                target: target.to_string(),
                started_ms: now_ms(),
                ..Recovery::default()
            },
        );
    }

    /// `docs` documents of `bytes` bytes were applied from the stream.
    pub fn add(&self, index: &str, source: &str, docs: u64, bytes: u64) {
        if let Ok(mut streams) = self.streams.lock()
            && let Some(stream) = streams.get_mut(&(index.to_string(), source.to_string()))
            && stream.finished_ms.is_none()
        {
            stream.docs = stream.docs.saturating_add(docs);
            stream.bytes = stream.bytes.saturating_add(bytes);
        }
    }

    /// The stream read its source's feed to the end.
    pub fn finish(&self, index: &str, source: &str) {
        if let Ok(mut streams) = self.streams.lock()
            && let Some(stream) = streams.get_mut(&(index.to_string(), source.to_string()))
            && stream.finished_ms.is_none()
        {
            stream.finished_ms = Some(now_ms());
        }
    }

    /// Every recovery kept, oldest first.
    pub fn list(&self) -> Vec<Recovery> {
        let mut out: Vec<Recovery> = self
            .streams
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        out.sort_by_key(|r| r.started_ms);
        out
    }
}

/// Every data node's recoveries, oldest first (nodes that do not answer are left out).
pub async fn cluster_wide(ctx: &super::ClusterCtx) -> Vec<Recovery> {
    let view = ctx.view().await;
    let mut out = Vec::new();
    for (_, answer) in super::fan_out(ctx, &view, crate::messages::NodeCall::Recoveries).await {
        if let Ok(crate::messages::NodeReply::Recoveries(list)) = answer {
            out.extend(list);
        }
    }
    out.sort_by_key(|r| r.started_ms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_counts_until_it_finishes() {
        let recoveries = Recoveries::default();
        recoveries.start("books", "peer-a", "me");
        recoveries.add("books", "peer-a", 10, 1000);
        recoveries.add("books", "peer-b", 5, 5);
        recoveries.finish("books", "peer-a");
        recoveries.add("books", "peer-a", 1, 1);
        let list = recoveries.list();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].docs, list[0].bytes, list[0].stage()),
            (10, 1000, "done")
        );
    }
}
