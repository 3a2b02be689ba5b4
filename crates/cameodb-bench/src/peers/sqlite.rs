//! SQLite with FTS5 (bundled build): a `docs` table (id → JSON source) and a contentless FTS5
//! table over title and body keyed by the row id. Each batch is one transaction, WAL journal,
//! `synchronous=FULL`: durable at commit, searchable at commit.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, params};

use super::Load;
use crate::corpus::Corpus;

fn open(dir: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(dir.join("bench.sqlite"))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         CREATE TABLE docs(id TEXT PRIMARY KEY, source TEXT NOT NULL);
         CREATE VIRTUAL TABLE fts USING fts5(title, body, content='');",
    )?;
    Ok(conn)
}

pub fn bulk(corpus: &Corpus, dir: &Path, batch: usize) -> Result<Load, String> {
    let run = || -> rusqlite::Result<Load> {
        let mut conn = open(dir)?;
        let started = Instant::now();
        for chunk in corpus.docs.chunks(batch) {
            let txn = conn.transaction()?;
            {
                let mut put = txn.prepare_cached("INSERT INTO docs(id, source) VALUES (?1, ?2)")?;
                let mut index =
                    txn.prepare_cached("INSERT INTO fts(rowid, title, body) VALUES (?1, ?2, ?3)")?;
                for doc in chunk {
                    put.execute(params![doc.id, doc.raw])?;
                    index.execute(params![txn.last_insert_rowid(), doc.title, doc.body])?;
                }
            }
            txn.commit()?;
        }
        let elapsed = started.elapsed();
        drop(conn);
        Ok(Load {
            docs: corpus.docs.len(),
            bytes: corpus.bytes(),
            elapsed,
            disk: crate::server::disk_usage(dir),
        })
    };
    run().map_err(|e| format!("sqlite: {e}"))
}
