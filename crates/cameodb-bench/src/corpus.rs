//! The documents and queries every system in the run is fed: read into memory before any timing
//! starts, so decompression and parsing never count against anyone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// One corpus document.
pub struct Doc {
    /// The corpus `id`, used as the document id by every system.
    pub id: String,
    /// `title` (empty when absent), for the SQL peers' columns.
    pub title: String,
    /// `body` (empty when absent), for the SQL peers' columns.
    pub body: String,
    /// The JSON line exactly as in the corpus: what CameoDB and raw tantivy receive.
    pub raw: String,
}

/// A corpus in memory.
pub struct Corpus {
    /// File name under the data directory, for the report.
    pub name: String,
    /// The documents, in file order.
    pub docs: Vec<Doc>,
}

impl Corpus {
    /// Reads up to `limit` documents of `file` (gzip JSON lines).
    pub fn load(data_dir: &Path, file: &str, limit: usize) -> Result<Corpus, String> {
        let path = data_dir.join(file);
        let input =
            std::fs::File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let reader = BufReader::new(flate2::read::GzDecoder::new(input));
        let mut docs = Vec::new();
        for line in reader.lines().take(limit) {
            let raw = line.map_err(|e| format!("read {}: {e}", path.display()))?;
            let value: serde_json::Value =
                serde_json::from_str(&raw).map_err(|e| format!("{file}: bad json: {e}"))?;
            let id = match &value["id"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return Err(format!("{file}: a document without an id")),
            };
            let (mut title, mut body) = (String::new(), String::new());
            if let serde_json::Value::Object(fields) = &value {
                for (name, field) in fields {
                    match name.as_str() {
                        "id" => {}
                        "title" | "Title" => collect_text(field, &mut title),
                        _ => collect_text(field, &mut body),
                    }
                }
            }
            docs.push(Doc {
                id,
                title,
                body,
                raw,
            });
        }
        Ok(Corpus {
            name: file.to_string(),
            docs,
        })
    }

    /// Bytes of JSON source, the MB in MB/s.
    pub fn bytes(&self) -> usize {
        self.docs.iter().map(|d| d.raw.len()).sum()
    }

    /// `_bulk` bodies of `batch` index actions each (ids from the corpus, `prefix` prepended).
    pub fn bulk_bodies(&self, batch: usize, prefix: &str) -> Vec<String> {
        self.docs
            .chunks(batch)
            .map(|chunk| {
                let mut body = String::with_capacity(chunk.iter().map(|d| d.raw.len() + 64).sum());
                for doc in chunk {
                    body.push_str("{\"index\":{\"_id\":");
                    body.push_str(
                        &serde_json::Value::String(format!("{prefix}{}", doc.id)).to_string(),
                    );
                    body.push_str("}}\n");
                    body.push_str(&doc.raw);
                    body.push('\n');
                }
                body
            })
            .collect()
    }
}

/// Every string inside `value`, space-separated, appended to `out`: the SQL peers index text
/// columns, so structured corpora (movies) give them their string fields.
fn collect_text(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::String(s) => {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(s);
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

/// Where `../shared/data` is: `CAMEODB_SHARED_DATA`, else relative to the workspace.
pub fn data_dir() -> PathBuf {
    std::env::var_os("CAMEODB_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The search-benchmark-game queries (Lucene syntax), in file order.
pub fn queries(data_dir: &Path) -> Result<Vec<String>, String> {
    let path = data_dir.join("queries.jsonl");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("queries.jsonl: {e}"))?;
            value["query"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| "queries.jsonl: a line without a query".to_string())
        })
        .collect()
}

/// The explicit mapping of the text-mapping ingest rows: the corpus's two text fields and
/// nothing else indexed (`id` is the document id) — what SQLite FTS5's table holds.
pub fn text_mapping() -> serde_json::Value {
    serde_json::json!({"dynamic": false, "properties": {
        "title": {"type": "text"}, "body": {"type": "text"}
    }})
}
