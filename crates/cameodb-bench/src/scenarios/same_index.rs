//! Search latency on the index being bulk-loaded: the blocking firewall where users feel it.
//! One node; the corpus loaded into an index with an explicit text mapping; searches on it at
//! 1 and 16 callers idle, then again while 2 clients bulk-load more of the corpus (1,000-doc
//! batches) into the same index.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::corpus::Corpus;
use crate::http::Http;
use crate::load;
use crate::report::{Table, num};
use crate::scenarios::ingest;
use crate::server::Node;

const INDEX: &str = "same-index";

/// The table: per caller count, p50 / p99 idle and during the load, and the p99 ratio.
pub async fn run(
    scratch: &Path,
    corpus: &Corpus,
    queries: Arc<Vec<String>>,
    row: Duration,
    refresh: Option<&str>,
) -> Result<Table, String> {
    let mut node = tokio::task::block_in_place(|| Node::start(&scratch.join("same-index"), &[]))?.0;
    let http = Http::new(&node.url(""))?;
    let mut mapping = json!({"mappings": {"properties": {
        "title": {"type": "text"}, "body": {"type": "text"}
    }}});
    if let Some(interval) = refresh {
        mapping["settings"] = json!({"index": {"refresh_interval": interval}});
    }
    crate::progress("same-index bench: loading");
    ingest::bulk_with(&http, corpus, INDEX, 5000, 4, mapping).await?;
    let search = http.search_op(INDEX, Arc::clone(&queries));
    let mut idle = Vec::new();
    crate::progress("same-index bench: idle searches");
    for callers in [1, 16] {
        idle.push(load::closed(callers, row, None, Arc::clone(&search)).await);
    }
    crate::progress("same-index bench: searches during a bulk load into the same index");
    let background = ingest::Background::start_into(&http, corpus, INDEX, 1000, 2).await?;
    let mut busy = Vec::new();
    for callers in [1, 16] {
        busy.push(load::closed(callers, row, None, Arc::clone(&search)).await);
    }
    let rate = background.stop().await?;
    let mut table = Table::new(
        "Search on the index being bulk-loaded (text-all, explicit text mapping, 1 node)",
        &[
            "callers",
            "idle p50 ms",
            "idle p99 ms",
            "loading p50 ms",
            "loading p99 ms",
            "p99 ratio",
            "errors",
        ],
    );
    for ((callers, idle), busy) in [1, 16].into_iter().zip(&idle).zip(&busy) {
        table.row(vec![
            json!(callers),
            num(idle.ms(0.5)),
            num(idle.ms(0.99)),
            num(busy.ms(0.5)),
            num(busy.ms(0.99)),
            num(busy.ms(0.99) / idle.ms(0.99).max(1e-3)),
            json!(idle.errors + busy.errors),
        ]);
    }
    table.note(format!(
        "Top-10 query_string over title and body; during the load 2 clients bulk 1,000-doc \
         batches of the corpus (new ids) into the searched index at {rate:.0} docs/s; \
         refresh_interval {}.",
        refresh.unwrap_or("at its default")
    ));
    let _ = tokio::task::block_in_place(|| node.stop());
    Ok(table)
}
