//! A CameoDB node: the Elasticsearch-compatible HTTP API over per-index storage actors.
//!
//! [`run`] serves on a listener until `shutdown` resolves, then stops accepting, lets in-flight
//! requests finish, and closes every index (committing it).

mod body;
mod catalog;
mod cluster;
mod compat;
mod error;
mod handlers;
mod http_server;
mod ids;
mod ingest_pool;
mod messages;
mod request;
mod respond;
mod scroll_contexts;
mod shard;
pub mod units;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use cameodb_storage::StoreConfig;
use ingest_pool::IngestPool;
use tokio::net::TcpListener;
use tracing::info;

pub use body::BreakerLimits;
pub use cameodb_cluster::MIN_SECRET_BYTES;
pub use error::ApiError;
pub use http_server::HttpLimits;
pub use scroll_contexts::ScrollLimits;

/// Entry points for the fuzz targets (`crates/cameodb-fuzz`): the request parsers alone, with
/// no effect on any store.
#[doc(hidden)]
pub mod fuzz {
    /// Parses a `_bulk` body as the node does (default index `fuzz`); returns how many items it
    /// read, or `None` when the whole request is refused.
    pub fn bulk(body: &[u8]) -> Option<usize> {
        crate::handlers::bulk::parse_items(Some("fuzz"), &Default::default(), body)
            .ok()
            .map(|items| items.len())
    }
}

/// How often the process's resident memory is sampled for the node-wide breaker: short enough
/// that a request allocating at full speed passes the limit by little before it trips.
const MEMORY_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

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
    /// Joins or forms a cluster when set; `None` runs a standalone node without the libp2p and
    /// gossip ports (embedding and in-process tests).
    pub cluster: Option<ClusterSettings>,
    /// Scroll context limits: `search.max_open_scroll_context` and `search.max_keep_alive`.
    pub scroll: ScrollLimits,
    /// Client connection limits and timeouts of the HTTP listener.
    pub http: HttpLimits,
    /// Memory budgets of requests, node-wide and per request (the circuit breaker).
    pub breaker: BreakerLimits,
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
            cluster: None,
            scroll: ScrollLimits::default(),
            http: HttpLimits::default(),
            breaker: BreakerLimits::default(),
            fault_injection: false,
        }
    }
}

/// How a node takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Where libp2p listens (TCP) and gossip runs (UDP), same port number.
    pub cluster_addr: SocketAddr,
    /// Other nodes' cluster addresses to join through; empty forms a cluster of one.
    pub seeds: Vec<String>,
    /// The secret every member holds; required unless the cluster address is loopback.
    pub secret: Option<String>,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Opening the data directory or an index failed.
    #[error("failed to open data directory: {0}")]
    Open(String),
    /// The cluster layer (libp2p transport or gossip) could not start.
    #[error("cannot start the cluster layer: {0}")]
    Cluster(String),
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
    tokio::fs::create_dir_all(&config.data_dir).await?;
    let keypair = cameodb_cluster::load_or_create_identity(&config.data_dir)
        .map_err(|e| ServerError::Open(format!("cannot load the node key: {e}")))?;
    let node_id = keypair.public().to_peer_id().to_string();
    let catalog = catalog::Catalog::open(
        &config.data_dir,
        config.store.clone(),
        config.max_in_flight_per_index,
    )
    .await
    .map_err(|e| ServerError::Open(e.reason))?;
    let catalog = Arc::new(catalog);
    let addr: SocketAddr = listener.local_addr()?;
    let local_state = handlers::AppState {
        catalog: Arc::clone(&catalog),
        node_name: handlers::node_name(&node_id),
        node_id: node_id.clone(),
        cluster_uuid: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b"cameodb")),
        http_addr: addr.to_string(),
        cluster: None,
        coordinator: Arc::default(),
        fault_injection: config.fault_injection,
        scrolls: Arc::new(handlers::scroll::Scrolls::new(config.scroll)),
        ingest: Arc::new(
            IngestPool::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                config.store.background_nice,
            )
            .map_err(|e| ServerError::Open(format!("cannot start ingest threads: {e}")))?,
        ),
    };
    let body_state = body::BodyState {
        limits: body::BodyLimits {
            max_bytes: config.max_body_bytes,
            stall: config.http.body_timeout,
            min_rate: config.http.body_min_rate,
        },
        memory: {
            let memory = cameodb_memory::NodeBudget::new(config.breaker.total);
            memory.watch_process_memory(MEMORY_SAMPLE_INTERVAL);
            memory
        },
        request_memory: config.breaker.request,
    };
    let with_layers = |router: axum::Router| {
        router
            .layer(axum::middleware::from_fn_with_state(
                body_state.clone(),
                body::buffer,
            ))
            .layer(axum::middleware::from_fn(compat::elasticsearch_compat))
            // The body is already read (and bounded) by `body::buffer`; this only lifts axum's
            // own 2 MB default for the extractors that read it again.
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
    };
    let ctx = match &config.cluster {
        Some(settings) => Some(
            start_cluster(
                Arc::clone(&catalog),
                keypair,
                settings,
                addr,
                with_layers(handlers::local_router(local_state.clone())),
                config.max_body_bytes,
                config.scroll,
            )
            .await?,
        ),
        None => None,
    };
    let state = handlers::AppState {
        cluster: ctx.clone(),
        ..local_state
    };
    if let Some(ctx) = &ctx {
        let _ = state.coordinator.set(Arc::clone(ctx));
        tokio::spawn(cluster::metadata::sync_loop(
            Arc::clone(&state.catalog),
            Arc::clone(ctx),
        ));
    }
    let routing = cluster::Routing {
        catalog: Arc::clone(&state.catalog),
        ingest: Arc::clone(&state.ingest),
        cluster: ctx.clone(),
    };
    let app = with_layers(
        handlers::router(state).layer(axum::middleware::from_fn_with_state(
            routing,
            cluster::forward::route,
        )),
    );
    info!(%addr, node_id = %node_id, data_dir = %config.data_dir.display(), "cameodb listening");
    http_server::serve(listener, app, config.http, shutdown).await?;
    info!("http server stopped; closing indexes");
    if let Some(ctx) = &ctx {
        ctx.cluster.shutdown().await;
    }
    catalog.close_all().await;
    info!("shutdown complete");
    Ok(())
}

/// Starts the libp2p transport and gossip, and the router actor that follows membership.
async fn start_cluster(
    catalog: Arc<catalog::Catalog>,
    keypair: cameodb_cluster::Keypair,
    settings: &ClusterSettings,
    http_addr: SocketAddr,
    local: axum::Router,
    max_body_bytes: usize,
    scroll_limits: ScrollLimits,
) -> Result<Arc<cluster::ClusterCtx>, ServerError> {
    let mut config =
        cameodb_cluster::ClusterConfig::new(keypair, settings.cluster_addr, http_addr.to_string());
    config.seeds = settings.seeds.clone();
    config.secret = settings
        .secret
        .as_deref()
        .map(|secret| cameodb_cluster::ClusterSecret::derive(secret, &config.cluster_id))
        .transpose()
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
    let inbound = Arc::new(cluster::inbound::Inbound {
        local: local.clone(),
    });
    let membership = cameodb_cluster::Cluster::start(config, inbound)
        .await
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
    let view = Arc::new(cluster::router_actor::View::new(
        membership.self_id().to_string(),
        membership.members(),
    ));
    catalog.set_members(view.members.iter().map(|m| m.id.clone()).collect());
    let router = <cluster::router_actor::RouterActor as kameo::actor::Spawn>::spawn(view);
    let mut changes = membership.watch();
    let follower = router.clone();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let members = changes.borrow_and_update().clone();
            info!(members = members.len(), "cluster membership changed");
            catalog.set_members(members.iter().map(|m| m.id.clone()).collect());
            if follower
                .tell(cluster::router_actor::MembersChanged(members))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    info!(cluster_addr = %settings.cluster_addr, seeds = ?settings.seeds, "cluster layer started");
    Ok(Arc::new(cluster::ClusterCtx {
        cluster: membership,
        router,
        local,
        max_body_bytes,
        scrolls: cluster::scatter::ClusterScrolls::new(scroll_limits),
    }))
}
