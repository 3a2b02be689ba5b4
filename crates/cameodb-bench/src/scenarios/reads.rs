//! GET by id and top-10 search, closed-loop at concurrency 1 and 16 plus one open-loop search
//! rate: run once on an idle node and again during a full-speed bulk ingest.

use std::sync::Arc;
use std::time::Duration;

use crate::http::Http;
use crate::load::{self, Summary};

/// One read row: what was run and what it measured.
pub struct ReadRow {
    /// "GET by id", "search" or "search (open loop)".
    pub op: &'static str,
    /// Callers (closed loop) or requests/s (open loop).
    pub load: String,
    pub summary: Summary,
}

/// The read rows on `index`, each for `duration`.
pub async fn run(
    http: &Http,
    index: &str,
    ids: Arc<Vec<String>>,
    queries: Arc<Vec<String>>,
    duration: Duration,
    open_rate: f64,
) -> Result<Vec<ReadRow>, String> {
    let mut rows = Vec::new();
    let closed_ops = [
        ("GET by id", http.get_op(index, Arc::clone(&ids))),
        ("search top-10", http.search_op(index, Arc::clone(&queries))),
    ];
    for (op, call) in closed_ops {
        for concurrency in [1, 16] {
            let summary = load::closed(concurrency, duration, None, Arc::clone(&call)).await;
            check(&summary, op)?;
            rows.push(ReadRow {
                op,
                load: format!("{concurrency} callers"),
                summary,
            });
        }
    }
    let summary = load::open(
        open_rate,
        duration,
        http.search_op(index, Arc::clone(&queries)),
    )
    .await;
    check(&summary, "open-loop search")?;
    rows.push(ReadRow {
        op: "search top-10",
        load: format!("open loop {open_rate} req/s"),
        summary,
    });
    Ok(rows)
}

/// A benchmark of failing requests measures nothing: stop with the reason.
pub fn check(summary: &Summary, what: &str) -> Result<(), String> {
    match &summary.first_error {
        Some(error) => Err(format!(
            "{what}: {} of {} requests failed, first: {error}",
            summary.errors,
            summary.errors + summary.ok
        )),
        None => Ok(()),
    }
}
