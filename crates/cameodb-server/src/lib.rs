//! A CameoDB node: the Elasticsearch-compatible HTTP API over per-index storage actors.
//!
//! [`run`] serves on a listener until `shutdown` resolves, then stops accepting, lets in-flight
//! requests finish, and closes every index (committing it).

mod catalog;
mod compat;
mod error;
mod handlers;
mod ingest_pool;
mod respond;
mod shard;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use cameodb_storage::StoreConfig;
use ingest_pool::IngestPool;
use tokio::net::TcpListener;
use tracing::info;

pub use error::ApiError;

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where indexes live (`<data_dir>/indices/<name>`).
    pub data_dir: PathBuf,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Store settings for every index (the refresh interval can be overridden per index).
    pub store: StoreConfig,
    /// Most requests in flight per index before 429.
    pub max_in_flight_per_index: usize,
    /// Enables `POST /_cameo/fault/{index}/panic`, which panics a job of that index's store
    /// actor, so tests can check the actor recovers. Off unless `CAMEODB_FAULT_INJECTION=1`.
    pub fault_injection: bool,
}

impl ServerConfig {
    /// Defaults for a node keeping its data in `data_dir`.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            max_body_bytes: 100 * 1024 * 1024,
            store: StoreConfig::default(),
            max_in_flight_per_index: 512,
            fault_injection: false,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Opening the data directory or an index failed.
    #[error("failed to open data directory: {0}")]
    Open(String),
    /// The HTTP server failed.
    #[error("http server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let node_id = node_identity(&config.data_dir)
        .await
        .map_err(|e| ServerError::Open(e.to_string()))?;
    let catalog = catalog::Catalog::open(
        &config.data_dir,
        config.store.clone(),
        config.max_in_flight_per_index,
    )
    .await
    .map_err(|e| ServerError::Open(e.reason))?;
    let catalog = Arc::new(catalog);
    let state = handlers::AppState {
        catalog: Arc::clone(&catalog),
        node_name: format!("cameodb-{}", &node_id[..8.min(node_id.len())]),
        cluster_uuid: node_id,
        fault_injection: config.fault_injection,
        scrolls: Arc::default(),
        ingest: Arc::new(
            IngestPool::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                config.store.background_nice,
            )
            .map_err(|e| ServerError::Open(format!("cannot start ingest threads: {e}")))?,
        ),
    };
    let app = handlers::router(state)
        .layer(axum::middleware::from_fn(compat::elasticsearch_compat))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let addr: SocketAddr = listener.local_addr()?;
    info!(%addr, data_dir = %config.data_dir.display(), "cameodb listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    info!("http server stopped; closing indexes");
    catalog.close_all().await;
    info!("shutdown complete");
    Ok(())
}

/// A stable id for this node, created on first start and kept in the data directory.
async fn node_identity(data_dir: &std::path::Path) -> std::io::Result<String> {
    tokio::fs::create_dir_all(data_dir).await?;
    let path = data_dir.join("node_id");
    match tokio::fs::read_to_string(&path).await {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            tokio::fs::write(&path, &id).await?;
            Ok(id)
        }
    }
}
