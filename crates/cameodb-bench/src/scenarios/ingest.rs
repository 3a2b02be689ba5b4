//! Durable bulk ingest over HTTP, counted until every document is searchable, and the
//! full-speed background ingest the read rows run against.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::corpus::Corpus;
use crate::http::Http;
use crate::peers::Load;

/// Loads `corpus` into a new `index` with `_bulk` requests of `batch` documents from
/// `clients` concurrent clients; the clock stops when `_count` shows every document.
pub async fn bulk(
    http: &Http,
    corpus: &Corpus,
    index: &str,
    batch: usize,
    clients: usize,
) -> Result<Load, String> {
    bulk_with(http, corpus, index, batch, clients, serde_json::json!({})).await
}

/// As [`bulk`], into an index created with `body` (its settings and mappings).
pub async fn bulk_with(
    http: &Http,
    corpus: &Corpus,
    index: &str,
    batch: usize,
    clients: usize,
    body: serde_json::Value,
) -> Result<Load, String> {
    http.recreate_index_with(index, body).await?;
    bulk_into(http, corpus, index, batch, clients).await
}

/// As [`bulk`], into `index` as it is.
pub async fn bulk_into(
    http: &Http,
    corpus: &Corpus,
    index: &str,
    batch: usize,
    clients: usize,
) -> Result<Load, String> {
    let bodies = Arc::new(corpus.bulk_bodies(batch, ""));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (http, bodies, next, index) = (
                http.clone(),
                Arc::clone(&bodies),
                Arc::clone(&next),
                index.to_string(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<(), String>(());
                    };
                    http.bulk(&index, body.clone()).await?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    http.wait_count(index, corpus.docs.len() as u64).await?;
    Ok(Load {
        docs: corpus.docs.len(),
        bytes: corpus.bytes(),
        elapsed: started.elapsed(),
        disk: 0,
    })
}

/// A bulk ingest running flat out until stopped, into its own index.
pub struct Background {
    /// Set to stop the clients after their current request.
    stop: Arc<AtomicBool>,
    /// Documents acknowledged so far.
    docs: Arc<AtomicU64>,
    /// When it started, for its rate.
    started: Instant,
    /// The client tasks; each returns its first error.
    tasks: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Background {
    /// Starts `clients` clients cycling over the corpus in batches of `batch`, into `index`
    /// created anew.
    pub async fn start(
        http: &Http,
        corpus: &Corpus,
        index: &str,
        batch: usize,
        clients: usize,
    ) -> Result<Background, String> {
        http.recreate_index(index).await?;
        Background::start_into(http, corpus, index, batch, clients).await
    }

    /// As [`Background::start`], into `index` as it is (documents under new `bg-` ids, so the
    /// index grows while it is searched).
    pub async fn start_into(
        http: &Http,
        corpus: &Corpus,
        index: &str,
        batch: usize,
        clients: usize,
    ) -> Result<Background, String> {
        let bodies = Arc::new(corpus.bulk_bodies(batch, "bg-"));
        let stop = Arc::new(AtomicBool::new(false));
        let docs = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks = (0..clients)
            .map(|_| {
                let (http, bodies, stop, docs, next, index) = (
                    http.clone(),
                    Arc::clone(&bodies),
                    Arc::clone(&stop),
                    Arc::clone(&docs),
                    Arc::clone(&next),
                    index.to_string(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed) % bodies.len();
                        http.bulk(&index, bodies[i].clone()).await?;
                        docs.fetch_add(bodies[i].lines().count() as u64 / 2, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        // Let it reach full speed before anything is measured against it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(Background {
            stop,
            docs,
            started,
            tasks,
        })
    }

    /// Stops the clients; returns the documents per second they sustained.
    pub async fn stop(self) -> Result<f64, String> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(self.docs.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64())
    }
}
