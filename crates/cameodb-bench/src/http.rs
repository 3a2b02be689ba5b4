//! The few HTTP calls the scenarios make against a node, as `load::Op`s and plain helpers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::load::Op;

/// A pooled async client bound to one node.
#[derive(Clone)]
pub struct Http {
    /// Connection pool shared by every caller.
    client: reqwest::Client,
    /// `http://host:port`.
    base: Arc<str>,
}

impl Http {
    pub fn new(base: &str) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').into(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request whose answer must be 2xx; returns the body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        content_type: &str,
    ) -> Result<String, String> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let resp = request.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!(
                "{status}: {}",
                text.chars().take(300).collect::<String>()
            ))
        }
    }

    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let text = self
            .send(method, path, Some(body.to_string()), "application/json")
            .await?;
        serde_json::from_str(&text).map_err(|e| format!("bad json from {path}: {e}"))
    }

    /// One `_bulk` request; any item error fails it (the bench only sends valid documents).
    pub async fn bulk(&self, index: &str, body: String) -> Result<(), String> {
        let text = self
            .send(
                reqwest::Method::POST,
                &format!("/{index}/_bulk"),
                Some(body),
                "application/x-ndjson",
            )
            .await?;
        // The summary flag comes first in the answer: no need to parse thousands of items.
        let head: String = text.chars().take(80).collect();
        if head.contains("\"errors\":false") {
            Ok(())
        } else {
            Err(format!(
                "bulk item errors: {}",
                text.chars().take(400).collect::<String>()
            ))
        }
    }

    /// `_count` of an index.
    pub async fn count(&self, index: &str) -> Result<u64, String> {
        let text = self
            .send(reqwest::Method::GET, &format!("/{index}/_count"), None, "")
            .await?;
        let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        value["count"]
            .as_u64()
            .ok_or_else(|| format!("no count in {text}"))
    }

    /// Waits until `_count` reaches `expected` (polling every 2 ms).
    pub async fn wait_count(&self, index: &str, expected: u64) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        loop {
            if self.count(index).await? >= expected {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{index}: count never reached {expected}"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Deletes `index` if it exists and creates it empty.
    pub async fn recreate_index(&self, index: &str) -> Result<(), String> {
        self.recreate_index_with(index, serde_json::json!({})).await
    }

    /// Deletes `index` if it exists and creates it with `body` (settings, mappings).
    pub async fn recreate_index_with(&self, index: &str, body: Value) -> Result<(), String> {
        let _ = self.delete_index(index).await;
        self.json(reqwest::Method::PUT, &format!("/{index}"), body)
            .await
            .map(drop)
    }

    pub async fn delete_index(&self, index: &str) -> Result<(), String> {
        self.send(reqwest::Method::DELETE, &format!("/{index}"), None, "")
            .await
            .map(drop)
    }

    /// PUT a document (no refresh): the operation of the single-document rows.
    pub fn put_op(&self, index: &str, docs: Arc<Vec<(String, String)>>) -> Op {
        let (http, index) = (self.clone(), index.to_string());
        Arc::new(move |n| {
            let (http, index, docs) = (http.clone(), index.clone(), Arc::clone(&docs));
            Box::pin(async move {
                let (id, raw) = &docs[n as usize % docs.len()];
                let path = format!("/{index}/_doc/{}", segment(&format!("{id}-{n}")));
                http.send(
                    reqwest::Method::PUT,
                    &path,
                    Some(raw.clone()),
                    "application/json",
                )
                .await
                .map(drop)
            })
        })
    }

    /// GET a document by id; a miss is an error (every id asked for exists).
    pub fn get_op(&self, index: &str, ids: Arc<Vec<String>>) -> Op {
        let (http, index) = (self.clone(), index.to_string());
        Arc::new(move |n| {
            let (http, index, ids) = (http.clone(), index.clone(), Arc::clone(&ids));
            Box::pin(async move {
                // A fixed stride spreads the reads over the corpus without an RNG per call.
                let id = &ids[(n as usize).wrapping_mul(7919) % ids.len()];
                http.send(
                    reqwest::Method::GET,
                    &format!("/{index}/_doc/{}", segment(id)),
                    None,
                    "",
                )
                .await
                .map(drop)
            })
        })
    }

    /// A top-10 `query_string` search over title and body.
    pub fn search_op(&self, index: &str, queries: Arc<Vec<String>>) -> Op {
        let (http, index) = (self.clone(), index.to_string());
        Arc::new(move |n| {
            let (http, index, queries) = (http.clone(), index.clone(), Arc::clone(&queries));
            Box::pin(async move {
                let body = search_body(&queries[n as usize % queries.len()]);
                http.send(
                    reqwest::Method::POST,
                    &format!("/{index}/_search"),
                    Some(body.to_string()),
                    "application/json",
                )
                .await
                .map(drop)
            })
        })
    }
}

/// The search every system runs for a benchmark query: Lucene syntax over title and body, top 10.
pub fn search_body(query: &str) -> Value {
    serde_json::json!({
        "size": 10,
        "query": {"query_string": {"query": query, "fields": ["title", "body"]}}
    })
}

/// `text` as one URL path segment: corpus ids contain `/` and other reserved characters.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
