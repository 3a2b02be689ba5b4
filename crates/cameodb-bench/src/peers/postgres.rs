//! PostgreSQL, when its server binaries are on the machine (`initdb`, `pg_ctl` on PATH, or in
//! `CAMEODB_BENCH_PG_BIN`): a throwaway cluster in a temp dir, a table with a stored
//! `tsvector` column (english) and a GIN index. Each batch is one transaction (default
//! `synchronous_commit=on`, fsync on): durable and searchable at commit. Nothing is installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::Load;
use crate::corpus::Corpus;

/// A running throwaway PostgreSQL cluster; stopped on drop.
pub struct Cluster {
    /// Where `initdb`/`pg_ctl` live.
    bin: PathBuf,
    /// The cluster's data directory.
    data: PathBuf,
    /// TCP port on 127.0.0.1.
    port: u16,
    /// PostgreSQL refuses to run as root: then every server command runs as `nobody`.
    as_nobody: bool,
}

/// The directory holding `initdb` and `pg_ctl`, if PostgreSQL is on this machine.
pub fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CAMEODB_BENCH_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_nobody {
            let mut command = Command::new("runuser");
            command.args(["-u", "nobody", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// initdb + start in `dir` (which must be empty and is handed to `nobody` when root).
    pub fn start(bin: PathBuf, dir: &Path) -> Result<Cluster, String> {
        let as_nobody = is_root();
        if as_nobody {
            std::os::unix::fs::chown(dir, Some(65534), Some(65534)).map_err(|e| e.to_string())?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cluster = Cluster {
            bin,
            data: dir.join("pgdata"),
            port,
            as_nobody,
        };
        let data = cluster.data.to_string_lossy().to_string();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "bench",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        )?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c shared_buffers=256MB -c max_wal_size=4GB",
            dir.display()
        );
        let log = dir.join("pg.log").to_string_lossy().to_string();
        cluster.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        )?;
        Ok(cluster)
    }

    fn connect(&self) -> Result<postgres::Client, String> {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=bench dbname=postgres",
                self.port
            ),
            postgres::NoTls,
        )
        .map_err(|e| format!("postgres connect: {e}"))
    }

    /// Loads the corpus in `batch`-sized transactions from `clients` connections.
    pub fn bulk(
        &self,
        corpus: &Corpus,
        batch: usize,
        clients: usize,
        table: &str,
    ) -> Result<Load, String> {
        let mut admin = self.connect()?;
        admin
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {table};
                 CREATE TABLE {table} (id text PRIMARY KEY, source text NOT NULL, title text, body text,
                   tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(title,'') || ' ' || coalesce(body,''))) STORED);
                 CREATE INDEX {table}_tsv ON {table} USING GIN (tsv);"
            ))
            .map_err(|e| format!("postgres schema: {e}"))?;
        let chunks: Vec<&[crate::corpus::Doc]> = corpus.docs.chunks(batch).collect();
        let chunks = Arc::new(chunks);
        let next = Arc::new(AtomicUsize::new(0));
        let sql = format!(
            "INSERT INTO {table} (id, source, title, body) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
        );
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<(), String> {
            let workers: Vec<_> = (0..clients)
                .map(|_| {
                    let (chunks, next, sql) = (Arc::clone(&chunks), Arc::clone(&next), sql.clone());
                    scope.spawn(move || -> Result<(), String> {
                        let mut client = self.connect()?;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(chunk) = chunks.get(i) else {
                                return Ok(());
                            };
                            let column = |f: fn(&crate::corpus::Doc) -> &str| -> Vec<&str> {
                                chunk.iter().map(f).collect()
                            };
                            let (ids, sources, titles, bodies) = (
                                column(|d| &d.id),
                                column(|d| &d.raw),
                                column(|d| &d.title),
                                column(|d| &d.body),
                            );
                            // One statement = one implicit transaction, committed (fsynced) before it returns.
                            client
                                .execute(&sql, &[&ids, &sources, &titles, &bodies])
                                .map_err(|e| format!("postgres insert: {e}"))?;
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| "postgres worker panicked".to_string())??;
            }
            Ok(())
        })?;
        let elapsed = started.elapsed();
        let disk: i64 = admin
            .query_one(&format!("SELECT pg_total_relation_size('{table}')"), &[])
            .map_err(|e| e.to_string())?
            .get(0);
        Ok(Load {
            docs: corpus.docs.len(),
            bytes: corpus.bytes(),
            elapsed,
            disk: disk.max(0) as u64,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }
}
