//! `cameodb-bench`: CameoDB measured next to its peers in one run, on the same documents.
//!
//! Starts a `cameodb` server (the binary next to this one) on a temp data directory and
//! measures durable `_bulk` ingest, single-document PUTs, GET and search latency (idle and
//! during a full-speed ingest), write→search visibility lag, memory, disk, cold start and WAL
//! replay after kill -9; then raw tantivy, SQLite FTS5 and (when installed) PostgreSQL load the
//! same documents. Prints a markdown table and writes `report.md` and `report.json`.
//!
//! Run: `./bench.sh` (release build, full corpus) or `./bench.sh --smoke` (a few thousand
//! documents; what CI runs to keep the suite working — it asserts nothing about speed).

mod corpus;
mod http;
mod load;
mod node_rows;
mod peers;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};

use corpus::Corpus;
use node_rows::{CameoFigures, measure_node};
use report::{Report, Table, num};
use server::Node;

#[derive(Parser)]
#[command(about = "CameoDB next to raw tantivy, SQLite FTS5 and PostgreSQL on the same documents")]
struct Args {
    /// A few thousand documents and one-second rows: proves the suite runs, measures little.
    #[arg(long)]
    smoke: bool,
    /// Documents of each corpus to load [default: all; 3000 with --smoke].
    #[arg(long)]
    docs: Option<usize>,
    /// Seconds per latency row [default: 10; 1 with --smoke].
    #[arg(long)]
    seconds: Option<f64>,
    /// Where report.md, report.json and the scratch data go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Measure CameoDB only.
    #[arg(long)]
    no_peers: bool,
    /// Skip PostgreSQL even when it is installed (it is the slowest peer to load).
    #[arg(long)]
    no_postgres: bool,
    /// Only the CameoDB text-all bulk loads (for profiling the ingest path).
    #[arg(long)]
    bulk_only: bool,
    /// Only the cluster rows: one node against three local nodes.
    #[arg(long)]
    cluster_only: bool,
    /// Only the join rows: two nodes load text-all, a third joins (streaming rate, search
    /// latency during the join).
    #[arg(long)]
    join_only: bool,
    /// Only the same-index rows: search latency on the index being bulk-loaded.
    #[arg(long)]
    same_index_only: bool,
    /// The `index.refresh_interval` of the same-index rows' index (default: the server's).
    #[arg(long)]
    same_index_refresh: Option<String>,
    /// Only the gossip rows: 3, 6, 9 and 12 local nodes, idle, traffic and state per node.
    #[arg(long)]
    gossip_only: bool,
    /// With --bulk-only: seconds to keep sampling the node's memory after the loads.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
}

/// Settings derived from the arguments.
struct Plan {
    /// Documents per corpus.
    docs: usize,
    /// Duration of each latency row.
    row: Duration,
    /// Open-loop search rate (requests/s).
    open_rate: f64,
    /// Visibility-lag samples.
    lag_samples: usize,
    /// Stop after the text-all bulk loads.
    bulk_only: bool,
    /// With `bulk_only`: seconds of memory samples afterwards.
    hold_secs: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cameodb-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cameodb-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub(crate) fn progress(what: &str) {
    eprintln!("cameodb-bench: {what}");
}

async fn run(args: Args) -> Result<(), String> {
    let plan = Plan {
        docs: args
            .docs
            .unwrap_or(if args.smoke { 3000 } else { usize::MAX }),
        row: Duration::from_secs_f64(args.seconds.unwrap_or(if args.smoke { 1.0 } else { 10.0 })),
        open_rate: if args.smoke { 50.0 } else { 100.0 },
        lag_samples: if args.smoke { 20 } else { 300 },
        bulk_only: args.bulk_only,
        hold_secs: args.hold_secs,
    };
    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let scratch = tempfile::Builder::new()
        .prefix("scratch-")
        .tempdir_in(&args.out)
        .map_err(|e| e.to_string())?;
    if args.gossip_only {
        let (sizes, window) = gossip_plan(args.smoke);
        let table = scenarios::gossip::run(scratch.path(), &sizes, window).await?;
        let report = Report {
            header: header(&args, &[]),
            tables: vec![table],
        };
        return write_report(&report, &args.out);
    }
    let data = corpus::data_dir();
    progress("reading corpora");
    let text = Corpus::load(&data, "text-all.jsonl.gz", plan.docs)?;
    let movies = Corpus::load(&data, "movies.jsonl.gz", plan.docs)?;
    let queries = Arc::new(corpus::queries(&data)?);
    let mut report = Report {
        header: header(&args, &[&text, &movies]),
        ..Report::default()
    };

    if args.cluster_only {
        cluster_rows(&mut report, &plan, scratch.path(), &text, &queries).await?;
        return write_report(&report, &args.out);
    }
    if args.same_index_only {
        let refresh = args.same_index_refresh.as_deref();
        let table = scenarios::same_index::run(
            scratch.path(),
            &text,
            Arc::clone(&queries),
            plan.row,
            refresh,
        )
        .await?;
        report.tables.push(table);
        return write_report(&report, &args.out);
    }
    if args.join_only {
        let tables =
            scenarios::join::run(scratch.path(), &text, Arc::clone(&queries), plan.row).await?;
        report.tables.extend(tables);
        return write_report(&report, &args.out);
    }

    let mut ingest = Table::new(
        "Durable bulk ingest (until every document is searchable)",
        &[
            "system", "corpus", "batch", "clients", "docs/s", "MB/s", "seconds", "disk MB",
        ],
    );
    if !args.no_peers {
        tokio::task::block_in_place(|| {
            run_peers(
                &mut ingest,
                scratch.path(),
                &[&text, &movies],
                args.no_postgres,
            )
        })?;
    }
    let cameo = measure_node(
        &mut report,
        &mut ingest,
        &plan,
        scratch.path(),
        &text,
        &movies,
        &queries,
    )
    .await;
    if !args.no_peers && cameo.is_ok() {
        // The machine is shared and its speed drifts: the limit is measured again after
        // CameoDB, and the ratios use the better of the two.
        tokio::task::block_in_place(|| -> Result<(), String> {
            let dir = tempfile::Builder::new()
                .prefix("tantivy")
                .tempdir_in(scratch.path())
                .map_err(|e| e.to_string())?;
            progress("raw tantivy again: text-all.jsonl.gz");
            let load = peers::tantivy::bulk(&text, dir.path())?;
            ingest.row(load_row(
                "raw tantivy (again, after CameoDB)",
                &text,
                "—",
                "—",
                &load,
            ));
            Ok(())
        })?;
    }
    report.tables.insert(0, ingest);
    let cameo = match cameo {
        Ok(cameo) => cameo,
        Err(e) => {
            // What was measured before the failure is still worth seeing.
            eprintln!("{}", report.markdown());
            return Err(e);
        }
    };
    report.tables.push(ratios(&report, &cameo));
    if !plan.bulk_only {
        cluster_rows(&mut report, &plan, scratch.path(), &text, &queries).await?;
        let refresh = args.same_index_refresh.as_deref();
        let same = scenarios::same_index::run(
            scratch.path(),
            &text,
            Arc::clone(&queries),
            plan.row,
            refresh,
        );
        report.tables.push(same.await?);
        let join = scenarios::join::run(scratch.path(), &text, Arc::clone(&queries), plan.row);
        report.tables.extend(join.await?);
        let (sizes, window) = gossip_plan(args.smoke);
        let gossip = scenarios::gossip::run(scratch.path(), &sizes, window).await?;
        report.tables.push(gossip);
    }
    write_report(&report, &args.out)
}

/// The cluster tables: one node against three local nodes.
async fn cluster_rows(
    report: &mut Report,
    plan: &Plan,
    scratch: &std::path::Path,
    text: &Corpus,
    queries: &Arc<Vec<String>>,
) -> Result<(), String> {
    let tables =
        scenarios::cluster::run(scratch, text, Arc::clone(queries), plan.row, plan.open_rate)
            .await?;
    report.tables.extend(tables);
    Ok(())
}

/// Cluster sizes and measuring window of the gossip rows.
fn gossip_plan(smoke: bool) -> (Vec<usize>, Duration) {
    if smoke {
        (vec![3], Duration::from_secs(2))
    } else {
        (vec![3, 6, 9, 12], Duration::from_secs(10))
    }
}

/// Prints the report and saves it as markdown and JSON in `out`.
fn write_report(report: &Report, out: &std::path::Path) -> Result<(), String> {
    let markdown = report.markdown();
    println!("{markdown}");
    std::fs::write(out.join("report.md"), &markdown).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
    std::fs::write(out.join("report.json"), json).map_err(|e| e.to_string())?;
    progress(&format!(
        "wrote {}/report.md and report.json",
        out.display()
    ));
    Ok(())
}

/// A progress line with the node's memory, to see which phase holds on to it.
fn note_memory(node: &Node, phase: &str) {
    if let Ok(memory) = node.memory() {
        progress(&format!(
            "  memory {phase}: rss {} MiB (heap {} MiB), peak {} MiB",
            memory.rss >> 20,
            memory.anon >> 20,
            memory.peak >> 20
        ));
    }
}

fn header(args: &Args, corpora: &[&Corpus]) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / 1048576.0))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shell = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let mut header = vec![
        (
            "date".to_string(),
            shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        ),
        (
            "machine".to_string(),
            format!("{cores} cores ({cpu}), {memory} RAM"),
        ),
        (
            "commit".to_string(),
            shell("git", &["rev-parse", "--short", "HEAD"]),
        ),
        (
            "command".to_string(),
            format!(
                "./bench.sh {}",
                std::env::args().skip(1).collect::<Vec<_>>().join(" ")
            )
            .trim()
            .to_string(),
        ),
    ];
    if args.smoke {
        header.push(("mode".into(), "smoke (timings not meaningful)".into()));
    }
    for corpus in corpora {
        header.push((
            format!("corpus {}", corpus.name),
            format!(
                "{} docs, {:.1} MB of JSON",
                corpus.docs.len(),
                corpus.bytes() as f64 / 1e6
            ),
        ));
    }
    header
}

fn load_row(
    system: &str,
    corpus: &Corpus,
    batch: &str,
    clients: &str,
    load: &peers::Load,
) -> Vec<Value> {
    progress(&format!(
        "  {system} {} batch {batch} clients {clients}: {:.0} docs/s, {:.1} MB/s, {:.1} s",
        corpus.name,
        load.docs_per_sec(),
        load.mb_per_sec(),
        load.elapsed.as_secs_f64()
    ));
    vec![
        json!(system),
        json!(corpus.name.trim_end_matches(".jsonl.gz")),
        json!(batch),
        json!(clients),
        num(load.docs_per_sec()),
        num(load.mb_per_sec()),
        num(load.elapsed.as_secs_f64()),
        if load.disk > 0 {
            num(load.disk as f64 / 1e6)
        } else {
            Value::Null
        },
    ]
}

fn run_peers(
    table: &mut Table,
    scratch: &std::path::Path,
    corpora: &[&Corpus],
    no_postgres: bool,
) -> Result<(), String> {
    let fresh = |name: &str| -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new()
            .prefix(name)
            .tempdir_in(scratch)
            .map_err(|e| e.to_string())
    };
    for corpus in corpora {
        progress(&format!("raw tantivy: {}", corpus.name));
        let load = peers::tantivy::bulk(corpus, fresh("tantivy")?.path())?;
        table.row(load_row(
            "raw tantivy (same schema, all cores, one commit)",
            corpus,
            "—",
            "—",
            &load,
        ));
        if corpus.name.starts_with("text-all") {
            progress("raw tantivy, text mapping: text-all");
            let mapping = cameodb_schema::mapping::Mapping::from_es_json(&corpus::text_mapping())
                .map_err(|e| e.to_string())?;
            let load = peers::tantivy::bulk_mapped(corpus, fresh("tantivy")?.path(), mapping)?;
            table.row(load_row(
                "text mapping: raw tantivy (same schema, all cores, one commit)",
                corpus,
                "—",
                "—",
                &load,
            ));
        }
        for batch in [1000, 5000] {
            progress(&format!("sqlite fts5: {} batch {batch}", corpus.name));
            let load = peers::sqlite::bulk(corpus, fresh("sqlite")?.path(), batch)?;
            table.row(load_row(
                "SQLite FTS5 (txn per batch, synchronous=FULL)",
                corpus,
                &batch.to_string(),
                "1",
                &load,
            ));
        }
    }
    match peers::postgres::find_bin().filter(|_| !no_postgres) {
        None if no_postgres => table.note("PostgreSQL: skipped (--no-postgres)."),
        None => table.note("PostgreSQL: not on this machine (no initdb/pg_ctl on PATH or in CAMEODB_BENCH_PG_BIN), not measured."),
        Some(bin) => {
            // A PostgreSQL that will not start (a sandbox without `runuser`, say) costs its rows,
            // not the run: the reason goes under the table.
            let dir = fresh("postgres")?;
            let measured = peers::postgres::Cluster::start(bin, dir.path()).and_then(|cluster| {
                for corpus in corpora {
                    for clients in [1, 4] {
                        progress(&format!("postgresql: {} clients {clients}", corpus.name));
                        let load = cluster.bulk(corpus, 1000, clients, "docs")?;
                        table.row(load_row(
                            "PostgreSQL tsvector + GIN (txn per batch)",
                            corpus,
                            "1000",
                            &clients.to_string(),
                            &load,
                        ));
                    }
                }
                Ok(())
            });
            if let Err(e) = measured {
                progress(&format!("postgresql failed: {e}"));
                table.note(format!("PostgreSQL: failed, not measured: {e}"));
            }
        }
    }
    Ok(())
}

fn ratios(report: &Report, cameo: &CameoFigures) -> Table {
    let mut table = Table::new(
        "Targets (ratios from this run)",
        &["measure", "value", "target", "met"],
    );
    let best_peer = |prefix: &str| -> Option<f64> {
        report
            .tables
            .first()?
            .rows
            .iter()
            .filter(|r| r[0].as_str().is_some_and(|s| s.starts_with(prefix)) && r[1] == "text-all")
            .filter_map(|r| r[4].as_f64())
            .reduce(f64::max)
    };
    let mut add = |measure: &str, value: Option<f64>, target: &str, met: Option<bool>| {
        table.row(vec![
            json!(measure),
            value.map_or(Value::Null, num),
            json!(target),
            json!(match met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "—",
            }),
        ]);
    };
    for (peer, label, target, floor) in [
        ("raw tantivy", "raw tantivy", "≥ 0.8", Some(0.8)),
        ("SQLite", "SQLite FTS5", "≥ 3", Some(3.0)),
        ("PostgreSQL", "PostgreSQL", "—", None),
    ] {
        let ratio = best_peer(peer).map(|p| cameo.best_bulk / p);
        add(
            &format!("HTTP bulk ÷ {label} (text-all, best of each)"),
            ratio,
            target,
            floor.and_then(|floor: f64| ratio.map(|r| r >= floor)),
        );
    }
    // Issue 17's targets: the same explicit text mapping on both sides.
    for (peer, label, floor) in [
        (
            "text mapping: raw tantivy",
            "raw tantivy, text mapping",
            0.9,
        ),
        ("SQLite", "SQLite FTS5", 1.0),
    ] {
        let ratio = best_peer(peer)
            .filter(|_| cameo.best_text_bulk > 0.0)
            .map(|p| cameo.best_text_bulk / p);
        add(
            &format!("HTTP bulk, text mapping ÷ {label} (text-all, best of each)"),
            ratio,
            &format!("≥ {floor}"),
            ratio.map(|r| r >= floor),
        );
    }
    for (i, callers) in ["1 caller", "16 callers"].iter().enumerate() {
        let ratio = cameo
            .search_p99_ingest
            .get(i)
            .zip(cameo.search_p99_idle.get(i))
            .map(|(busy, idle)| busy / idle.max(1e-3));
        add(
            &format!("search p99 during ingest ÷ idle, {callers}"),
            ratio,
            "≤ 2",
            ratio.map(|r| r <= 2.0),
        );
    }
    add(
        "visibility lag p99, ms",
        Some(cameo.lag_p99_ms),
        "≤ 150",
        Some(cameo.lag_p99_ms <= 150.0),
    );
    let rss = cameo.rss_serving as f64 / 1048576.0;
    add(
        "RSS serving the corpus, MiB",
        Some(rss),
        "≤ 200",
        Some(rss <= 200.0),
    );
    table
}
