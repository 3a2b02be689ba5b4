//! The CameoDB rows of the side-by-side report: bulk ingest on both corpora, single-document
//! PUTs, GET and search latency idle and during an ingest, visibility lag, memory, disk, cold
//! start and WAL replay, all on one node this process starts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::corpus::Corpus;
use crate::http::Http;
use crate::report::{Report, Table, num};
use crate::server::Node;
use crate::{Plan, load, load_row, note_memory, progress, scenarios, server};

/// CameoDB figures the ratio table needs.
#[derive(Default)]
pub struct CameoFigures {
    /// Fastest durable bulk rate on text-all, docs/s (against raw tantivy's).
    pub best_bulk: f64,
    /// As `best_bulk`, into an index with the explicit text mapping (`corpus::text_mapping`).
    pub best_text_bulk: f64,
    /// Search p99 per load row on an idle node, ms.
    pub search_p99_idle: Vec<f64>,
    /// The same rows during a full-speed ingest, ms (the blocking firewall's ratio).
    pub search_p99_ingest: Vec<f64>,
    /// Write-to-search visibility lag p99, ms.
    pub lag_p99_ms: f64,
    /// Resident memory while serving, bytes.
    pub rss_serving: u64,
}

pub async fn measure_node(
    report: &mut Report,
    ingest: &mut Table,
    plan: &Plan,
    scratch: &std::path::Path,
    text: &Corpus,
    movies: &Corpus,
    queries: &Arc<Vec<String>>,
) -> Result<CameoFigures, String> {
    let mut figures = CameoFigures::default();
    let data_dir = scratch.join("node");
    progress("starting cameodb");
    let (mut node, _) = tokio::task::block_in_place(|| Node::start(&data_dir, &[]))?;
    let http = Http::new(&node.url(""))?;
    let configs = [(1000, 1), (1000, 4), (5000, 1), (5000, 4)];
    let corpora: &[&Corpus] = if plan.bulk_only {
        &[text]
    } else {
        &[movies, text]
    };
    for &corpus in corpora {
        for (i, &(batch, clients)) in configs.iter().enumerate() {
            // The last text-all load stays as the index every later row reads.
            let keep = std::ptr::eq(corpus, text) && i == configs.len() - 1;
            let index = if keep {
                "corpus".to_string()
            } else {
                format!("bulk-{batch}-{clients}")
            };
            progress(&format!(
                "cameodb bulk: {} batch {batch} clients {clients}",
                corpus.name
            ));
            let mut load = scenarios::ingest::bulk(&http, corpus, &index, batch, clients).await?;
            load.disk = server::disk_usage(&data_dir.join("indices").join(&index));
            figures.best_bulk = if std::ptr::eq(corpus, text) {
                figures.best_bulk.max(load.docs_per_sec())
            } else {
                figures.best_bulk
            };
            ingest.row(load_row(
                "CameoDB HTTP _bulk (fsync per request)",
                corpus,
                &batch.to_string(),
                &clients.to_string(),
                &load,
            ));
            if !keep {
                http.delete_index(&index).await?;
            }
        }
    }

    for (batch, clients) in [(1000, 1), (5000, 4)] {
        progress(&format!(
            "cameodb bulk, text mapping: text-all batch {batch} clients {clients}"
        ));
        let index = format!("text-{batch}-{clients}");
        let body = json!({"mappings": crate::corpus::text_mapping()});
        let mut load =
            scenarios::ingest::bulk_with(&http, text, &index, batch, clients, body).await?;
        load.disk = server::disk_usage(&data_dir.join("indices").join(&index));
        figures.best_text_bulk = figures.best_text_bulk.max(load.docs_per_sec());
        ingest.row(load_row(
            "text mapping: CameoDB HTTP _bulk (fsync per request)",
            text,
            &batch.to_string(),
            &clients.to_string(),
            &load,
        ));
        http.delete_index(&index).await?;
    }

    let after_loads = node.memory()?;
    progress(&format!(
        "  memory after the bulk loads: rss {} MiB (heap {} MiB), peak {} MiB",
        after_loads.rss >> 20,
        after_loads.anon >> 20,
        after_loads.peak >> 20
    ));
    if plan.bulk_only {
        // Profiling aid: how memory settles once the loads are done.
        for second in 1..=plan.hold_secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let memory = node.memory()?;
            progress(&format!(
                "  +{second}s: rss {} MiB (heap {} MiB)",
                memory.rss >> 20,
                memory.anon >> 20
            ));
        }
        return Ok(figures);
    }
    progress("single-document PUTs");
    let mut puts = Table::new(
        "Single-document PUT _doc (durable, default refresh)",
        &["callers", "ops/s", "p50 ms", "p99 ms"],
    );
    let put_docs: Arc<Vec<(String, String)>> = Arc::new(
        text.docs
            .iter()
            .take(10_000)
            .map(|d| (d.id.clone(), d.raw.clone()))
            .collect(),
    );
    for callers in [1, 16, 64] {
        let summary = load::closed(
            callers,
            plan.row,
            None,
            http.put_op("puts", Arc::clone(&put_docs)),
        )
        .await;
        scenarios::reads::check(&summary, "PUT")?;
        puts.row(vec![
            json!(callers),
            num(summary.rate()),
            num(summary.ms(0.5)),
            num(summary.ms(0.99)),
        ]);
    }
    http.delete_index("puts").await?;
    note_memory(&node, "after single-document PUTs");
    report.tables.push(puts);

    let ids: Arc<Vec<String>> = Arc::new(text.docs.iter().map(|d| d.id.clone()).collect());
    let mut reads = Table::new(
        "GET by id and search (index holding the corpus)",
        &[
            "operation",
            "load",
            "node",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
        ],
    );
    let read_rows = || {
        scenarios::reads::run(
            &http,
            "corpus",
            Arc::clone(&ids),
            Arc::clone(queries),
            plan.row,
            plan.open_rate,
        )
    };
    progress("reads, idle");
    let idle = read_rows().await?;
    note_memory(&node, "after the idle read rows");
    progress("reads, during a full-speed bulk ingest");
    let background =
        scenarios::ingest::Background::start(&http, text, "background", 1000, 2).await?;
    note_memory(&node, "with the background ingest running");
    let busy = read_rows().await;
    let background_rate = background.stop().await?;
    let busy = busy?;
    http.delete_index("background").await?;
    note_memory(&node, "after the read rows and background ingest");
    for (state, rows) in [("idle", &idle), ("during ingest", &busy)] {
        for row in rows.iter() {
            reads.row(vec![
                json!(row.op),
                json!(row.load),
                json!(state),
                num(row.summary.rate()),
                num(row.summary.ms(0.5)),
                num(row.summary.ms(0.99)),
                num(row.summary.ms(0.999)),
            ]);
            if row.op == "search top-10" && !row.load.starts_with("open") {
                let target = if state == "idle" {
                    &mut figures.search_p99_idle
                } else {
                    &mut figures.search_p99_ingest
                };
                target.push(row.summary.ms(0.99));
            }
        }
    }
    reads.note(format!(
        "During ingest: 2 clients bulk the corpus (batches of 1000) into another index on the same node flat out, {background_rate:.0} docs/s while the reads ran. Queries: ../shared/data/queries.jsonl as `query_string` over title and body, top 10."
    ));
    report.tables.push(reads);

    progress("visibility lag");
    let lag = scenarios::lag::run(&http, "corpus", plan.lag_samples).await?;
    figures.lag_p99_ms = lag.value_at_quantile(0.99) as f64 / 1000.0;
    let mut lag_table = Table::new(
        "Write→search visibility lag (default 100 ms refresh)",
        &["samples", "p50 ms", "p99 ms", "max ms"],
    );
    lag_table.row(vec![
        json!(lag.len()),
        num(lag.value_at_quantile(0.5) as f64 / 1000.0),
        num(figures.lag_p99_ms),
        num(lag.max() as f64 / 1000.0),
    ]);
    lag_table.note("From the PUT's acknowledgement to the first `ids` search that finds the document, on the index holding the corpus.");
    report.tables.push(lag_table);

    progress("memory, disk, cold start");
    let loaded = node.memory()?;
    let disk = server::disk_usage(&data_dir.join("indices").join("corpus"));
    let cold = scenarios::resources::cold_start(
        &mut node,
        &http,
        "corpus",
        text.docs.len() as u64 + plan.lag_samples as u64,
        queries,
    )
    .await?;
    figures.rss_serving = cold.serving_memory.rss;
    drop(node);
    progress("wal replay after kill -9");
    let replay = scenarios::resources::wal_replay(&scratch.join("replay"), text).await?;
    let mb = |bytes: u64| num(bytes as f64 / 1048576.0);
    let mut resources = Table::new(
        "Memory, disk, start and recovery",
        &["measure", "value", "unit"],
    );
    resources.row(vec![
        json!("peak RSS over the whole run (bulk loads, reads, background ingest)"),
        mb(loaded.peak),
        json!("MiB"),
    ]);
    for (what, memory) in [
        ("after the run (all loads done, corpus index open)", loaded),
        ("after a restart", cold.started_memory),
        (
            "after a restart and every benchmark query once (serving)",
            cold.serving_memory,
        ),
    ] {
        resources.row(vec![
            json!(format!("RSS {what}")),
            mb(memory.rss),
            json!("MiB"),
        ]);
        resources.row(vec![
            json!("  of which heap (RssAnon) / mapped index files (RssFile)"),
            json!(format!(
                "{:.1} / {:.1}",
                memory.anon as f64 / 1048576.0,
                memory.file as f64 / 1048576.0
            )),
            json!("MiB"),
        ]);
    }
    resources.row(vec![
        json!("on-disk size of the corpus index (redb + tantivy)"),
        mb(disk),
        json!("MiB"),
    ]);
    resources.row(vec![
        json!("graceful stop (SIGTERM → exit, commits)"),
        num(cold.stop.as_secs_f64() * 1000.0),
        json!("ms"),
    ]);
    resources.row(vec![
        json!("cold start: process start → HTTP answers"),
        num(cold.ready.as_secs_f64() * 1000.0),
        json!("ms"),
    ]);
    resources.row(vec![
        json!("cold start: process start → corpus searchable"),
        num(cold.searchable.as_secs_f64() * 1000.0),
        json!("ms"),
    ]);
    resources.row(vec![
        json!("kill -9 with refresh off, then restart: WAL records replayed"),
        json!(replay.replayed),
        json!("records"),
    ]);
    resources.row(vec![
        json!("  store open incl. replay"),
        num(replay.open.as_secs_f64() * 1000.0),
        json!("ms"),
    ]);
    resources.row(vec![
        json!("  WAL replay rate"),
        num(replay.replayed as f64 / replay.open.as_secs_f64().max(1e-3)),
        json!("records/s"),
    ]);
    resources.row(vec![
        json!("  process start → HTTP answers"),
        num(replay.ready.as_secs_f64() * 1000.0),
        json!("ms"),
    ]);
    report.tables.push(resources);
    Ok(figures)
}
