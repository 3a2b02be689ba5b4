//! Storage engine benchmark (a bench binary, not a test):
//!
//! 1. bulk load of `text-all.jsonl.gz` in batches of 1,000 with durability on, until every
//!    document is searchable — next to raw tantivy indexing of the same documents with the same
//!    schema and conversion (no redb, one commit at the end), in the same run;
//! 2. single-document puts from 1, 16 and 64 concurrent callers (group commit at work);
//! 3. WAL replay rate on open;
//! 4. commit (refresh) latency.
//!
//! Run: `cargo bench -p cameodb-storage --bench ingest` (`CAMEODB_BENCH_REPLAY_ONLY=1`: the
//! replay row alone, over `CAMEODB_BENCH_DOCS`). `CAMEODB_BENCH_DOCS=N` limits the
//! corpus for a quick run; `CAMEODB_SHARED_DATA` points at another data directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cameodb_schema::fields as schema;
use cameodb_schema::mapping::Mapping;
use cameodb_storage::to_index_doc;
use cameodb_storage::{DocId, DocKey, Source, Store, StoreConfig, WriteOp};
use hdrhistogram::Histogram;
use tantivy::{Index, IndexWriter, TantivyDocument};

const BATCH: usize = 1000;

fn data_dir() -> PathBuf {
    std::env::var_os("CAMEODB_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// (id, raw JSON line) for every document of a corpus, read into memory before timing.
fn load(file: &str, limit: usize) -> Vec<(String, Vec<u8>)> {
    let path = data_dir().join(file);
    let reader = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
    ));
    reader
        .lines()
        .take(limit)
        .map(|line| {
            let line = line.expect("corpus line");
            let value: serde_json::Value = serde_json::from_str(&line).expect("corpus json");
            let id = value["id"].as_str().expect("corpus id").to_string();
            (id, line.into_bytes())
        })
        .collect()
}

fn key(id: &str) -> DocKey {
    DocKey::new(DocId::new(id).expect("id"), None).expect("key")
}

struct Rate {
    docs: usize,
    bytes: usize,
    elapsed: Duration,
}

impl Rate {
    fn docs_per_sec(&self) -> f64 {
        self.docs as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

fn bulk_store(docs: &[(String, Vec<u8>)]) -> Rate {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StoreConfig::default();
    // Exploration knob: CAMEODB_BENCH_REFRESH_MS=0 disables timed refresh for the bulk load.
    if let Some(ms) = std::env::var("CAMEODB_BENCH_REFRESH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.refresh_interval = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let store = Store::open(dir.path(), config).expect("open");
    let started = Instant::now();
    for chunk in docs.chunks(BATCH) {
        let ops = chunk
            .iter()
            .map(|(id, raw)| WriteOp::put(key(id), Source::from_slice(raw).expect("source")))
            .collect();
        for result in store.write_batch(ops) {
            result.expect("write");
        }
    }
    store.refresh().expect("refresh");
    let elapsed = started.elapsed();
    assert_eq!(store.searcher().num_docs() as usize, docs.len());
    Rate {
        docs: docs.len(),
        bytes: docs.iter().map(|(_, r)| r.len()).sum(),
        elapsed,
    }
}

fn bulk_raw_tantivy(docs: &[(String, Vec<u8>)]) -> Rate {
    let dir = tempfile::tempdir().expect("tempdir");
    let (schema, fields) = schema::build();
    let index = Index::create_in_dir(dir.path(), schema).expect("index");
    let mut mapping = Mapping::default();
    cameodb_schema::register_analyzers(
        index.tokenizers(),
        &mapping,
        &cameodb_schema::Analysis::default(),
    );
    let config = StoreConfig::default();
    let mut writer: IndexWriter<TantivyDocument> = index
        .writer_with_num_threads(config.indexer_threads, config.writer_memory_bytes)
        .expect("writer");
    let started = Instant::now();
    for (id, raw) in docs {
        let source = Source::from_slice(raw).expect("source");
        let (doc, updated) = to_index_doc(
            &mapping,
            &key(id),
            source.as_map(),
            &cameodb_schema::Analysis::default(),
            &fields,
        )
        .expect("convert");
        if let Some(updated) = updated {
            mapping = updated;
        }
        writer.add_document(doc.into_document()).expect("add");
    }
    writer.commit().expect("commit");
    let elapsed = started.elapsed();
    Rate {
        docs: docs.len(),
        bytes: docs.iter().map(|(_, r)| r.len()).sum(),
        elapsed,
    }
}

/// The redb half alone: the same tables and rows (docs pointer + log body), the same batches,
/// fsynced — no tantivy. Not the engine's code path; it shows what the KV side costs.
fn bulk_redb_only(docs: &[(String, Vec<u8>)]) -> Rate {
    const DOCS: redb::TableDefinition<(u64, &str), &[u8]> = redb::TableDefinition::new("docs");
    const LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = redb::Database::create(dir.path().join("docs.redb")).expect("db");
    let started = Instant::now();
    let mut seq = 0u64;
    for chunk in docs.chunks(BATCH) {
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(DOCS).expect("docs");
            let mut log = txn.open_table(LOG).expect("log");
            for (id, raw) in chunk {
                let source = Source::from_slice(raw).expect("source");
                let key = key(id);
                let mut pointer = [0u8; 16];
                pointer[..8].copy_from_slice(&seq.to_le_bytes());
                pointer[8..].copy_from_slice(&1u64.to_le_bytes());
                table
                    .insert((key.token, id.as_str()), pointer.as_slice())
                    .expect("insert");
                let mut entry = key.encode();
                entry.extend_from_slice(raw);
                log.insert(seq, entry.as_slice()).expect("log");
                seq += 1;
                drop(source);
            }
        }
        txn.commit().expect("commit");
    }
    Rate {
        docs: docs.len(),
        bytes: docs.iter().map(|(_, r)| r.len()).sum(),
        elapsed: started.elapsed(),
    }
}

/// Best (shortest) of `runs` runs: the machine is shared, noise only ever slows a run down.
fn best_of(runs: usize, mut run: impl FnMut() -> Rate) -> Rate {
    (0..runs)
        .map(|_| run())
        .min_by_key(|r| r.elapsed)
        .expect("at least one run")
}

struct Latencies {
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

fn single_puts(docs: &[(String, Vec<u8>)], callers: usize, ops: usize) -> Latencies {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).expect("open"));
    let docs = Arc::new(docs.to_vec());
    let per_caller = ops / callers;
    let started = Instant::now();
    let threads: Vec<_> = (0..callers)
        .map(|c| {
            let store = Arc::clone(&store);
            let docs = Arc::clone(&docs);
            std::thread::spawn(move || {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                for i in 0..per_caller {
                    let (id, raw) = &docs[(c * per_caller + i) % docs.len()];
                    let op = WriteOp::put(
                        key(&format!("{id}-{c}")),
                        Source::from_slice(raw).expect("source"),
                    );
                    let t = Instant::now();
                    store.write(op).expect("put");
                    hist.record(t.elapsed().as_micros() as u64).expect("record");
                }
                hist
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for thread in threads {
        hist.add(thread.join().expect("caller")).expect("merge");
    }
    let elapsed = started.elapsed();
    Latencies {
        ops_per_sec: (per_caller * callers) as f64 / elapsed.as_secs_f64(),
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    }
}

fn wal_replay(docs: &[(String, Vec<u8>)]) -> (u64, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lazy = StoreConfig {
        refresh_interval: None,
        commit_on_close: false,
        ..StoreConfig::default()
    };
    {
        let store = Store::open(dir.path(), lazy).expect("open");
        for chunk in docs.chunks(BATCH) {
            let ops = chunk
                .iter()
                .map(|(id, raw)| WriteOp::put(key(id), Source::from_slice(raw).expect("source")))
                .collect();
            store.write_batch(ops);
        }
    }
    let store = Store::open(dir.path(), StoreConfig::default()).expect("reopen");
    let report = store.recovery_report();
    assert!(report.rebuilt.is_none());
    (report.replayed, report.elapsed)
}

fn commit_latency(docs: &[(String, Vec<u8>)], rounds: usize) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manual = StoreConfig {
        refresh_interval: None,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), manual).expect("open");
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for (round, chunk) in docs.chunks(BATCH).take(rounds).enumerate() {
        let ops = chunk
            .iter()
            .map(|(id, raw)| {
                WriteOp::put(
                    key(&format!("{id}-{round}")),
                    Source::from_slice(raw).expect("source"),
                )
            })
            .collect();
        store.write_batch(ops);
        let t = Instant::now();
        store.refresh().expect("refresh");
        hist.record(t.elapsed().as_micros() as u64).expect("record");
    }
    (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB RAM")
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let limit = std::env::var("CAMEODB_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let docs = load("text-all.jsonl.gz", limit);
    let mb = docs.iter().map(|(_, r)| r.len()).sum::<usize>() as f64 / 1e6;
    println!("machine: {}", machine());
    println!(
        "corpus: text-all.jsonl.gz, {} docs, {mb:.1} MB\n",
        docs.len()
    );

    let runs = std::env::var("CAMEODB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if std::env::var_os("CAMEODB_BENCH_REPLAY_ONLY").is_some() {
        let (replayed, elapsed) = wal_replay(&docs);
        println!(
            "| wal replay ({replayed} records) | {:.0} records/s ({:.2} s) |",
            replayed as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        return;
    }
    if std::env::var_os("CAMEODB_BENCH_RAW_ONLY").is_some() {
        let rate = bulk_raw_tantivy(&docs);
        println!(
            "raw bulk load: {:.0} docs/s, {:.1} s",
            rate.docs_per_sec(),
            rate.elapsed.as_secs_f64()
        );
        return;
    }
    if std::env::var_os("CAMEODB_BENCH_STORE_ONLY").is_some() {
        let rate = bulk_store(&docs);
        println!(
            "store bulk load: {:.0} docs/s, {:.1} s",
            rate.docs_per_sec(),
            rate.elapsed.as_secs_f64()
        );
        return;
    }
    let raw = best_of(runs, || bulk_raw_tantivy(&docs));
    let store = best_of(runs, || bulk_store(&docs));
    let redb_only = best_of(runs, || bulk_redb_only(&docs));
    println!("| bulk load (batches of {BATCH}, best of {runs}) | docs/s | MB/s | seconds |");
    println!("|---|---:|---:|---:|");
    for (name, rate) in [
        ("raw tantivy, one commit at the end", &raw),
        ("cameodb store, durable, searchable at end", &store),
        (
            "redb alone (rows + wal, fsync per batch, no index)",
            &redb_only,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} |",
            rate.docs_per_sec(),
            rate.mb_per_sec(),
            rate.elapsed.as_secs_f64()
        );
    }
    println!(
        "\n**ratio store / raw tantivy: {:.2}**\n",
        store.docs_per_sec() / raw.docs_per_sec()
    );
    if std::env::var_os("CAMEODB_BENCH_BULK_ONLY").is_some() {
        return;
    }

    println!("| single-doc puts | ops/s | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    for (callers, ops) in [(1, 2_000), (16, 16_000), (64, 32_000)] {
        let lat = single_puts(&docs, callers, ops.min(docs.len() * callers));
        println!(
            "| {callers} concurrent callers | {:.0} | {} | {} |",
            lat.ops_per_sec, lat.p50_us, lat.p99_us
        );
    }

    let replay_docs = &docs[..docs.len().min(50_000)];
    let (replayed, elapsed) = wal_replay(replay_docs);
    println!("\n| recovery | value |");
    println!("|---|---:|");
    println!(
        "| wal replay ({replayed} records) | {:.0} records/s ({:.2} s) |",
        replayed as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    let (p50, p99) = commit_latency(&docs, 30);
    println!(
        "| commit + reader reload after a {BATCH}-doc batch | p50 {:.1} ms, p99 {:.1} ms |",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
}
