//! A CameoDB node: the Elasticsearch-compatible HTTP API over per-index storage actors.
//!
//! [`run`] serves on a listener until `shutdown` resolves, then stops accepting, lets in-flight
//! requests finish, and closes every index (committing it).

mod aliases;
mod body;
mod catalog;
mod cluster;
mod compat;
mod error;
mod filter_path;
mod handlers;
mod http_server;
mod ids;
mod index_settings;
mod ingest_pool;
mod leaf;
mod messages;
mod request;
mod respond;
mod scroll_contexts;
mod shard;
mod templates;
pub mod units;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
        crate::request::bulk::parse_lines(Some("fuzz"), body)
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
    /// How the node joins or forms its cluster (a node alone is a cluster of one).
    pub cluster: ClusterSettings,
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
    /// Defaults for a node keeping its data in `data_dir`, in the cluster `cluster` says.
    pub fn new(data_dir: PathBuf, cluster: ClusterSettings) -> ServerConfig {
        ServerConfig {
            data_dir,
            max_body_bytes: 100 * 1024 * 1024,
            store: StoreConfig::default(),
            max_in_flight_per_index: 512,
            cluster,
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
    /// How often replicas compare what they hold (anti-entropy); see
    /// [`DEFAULT_ANTI_ENTROPY_INTERVAL`].
    pub anti_entropy_interval: Duration,
}

/// Anti-entropy runs once a minute by default: a round hashes every version a node holds
/// once per peer, so it is paced well below the writes it guards; catch-up from the change
/// feed already repairs what replicas miss while away.
pub const DEFAULT_ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(60);

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
    let store_config = cameodb_storage::StoreConfig {
        origin: cameodb_storage::origin_of(&node_id),
        ..config.store.clone()
    };
    let catalog = catalog::Catalog::open(
        &config.data_dir,
        store_config,
        config.max_in_flight_per_index,
    )
    .await
    .map_err(|e| ServerError::Open(e.reason))?;
    let catalog = Arc::new(catalog);
    let addr: SocketAddr = listener.local_addr()?;
    let memory = cameodb_memory::NodeBudget::new(config.breaker.total);
    memory.watch_process_memory(MEMORY_SAMPLE_INTERVAL);
    let leaf = Arc::new(leaf::Leaf {
        catalog: Arc::clone(&catalog),
        scrolls: leaf::scrolls::Scrolls::new(config.scroll),
        ingest: Arc::new(
            IngestPool::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                config.store.background_nice,
            )
            .map_err(|e| ServerError::Open(format!("cannot start ingest threads: {e}")))?,
        ),
    });
    let inbound = Arc::new(cluster::inbound::Inbound {
        ctx: std::sync::OnceLock::new(),
        memory: Arc::clone(&memory),
        request_memory: config.breaker.request,
    });
    let ctx = start_cluster(
        leaf,
        keypair,
        &config.cluster,
        addr,
        Arc::clone(&inbound),
        config.scroll,
        cluster::dynamic::DynamicSettings::load(&config.data_dir),
    )
    .await?;
    let _ = inbound.ctx.set(Arc::downgrade(&ctx));
    tokio::spawn(cluster::metadata::sync_loop(
        Arc::clone(&catalog),
        Arc::clone(&ctx),
    ));
    tokio::spawn(cluster::templates::sync_loop(Arc::clone(&ctx)));
    tokio::spawn(cluster::catchup::catch_up_loop(Arc::clone(&ctx)));
    tokio::spawn(cluster::membership::placement_loop(Arc::clone(&ctx)));
    tokio::spawn(cluster::dynamic::sync_loop(Arc::clone(&ctx)));
    tokio::spawn(cluster::antientropy::repair_loop(
        Arc::clone(&ctx),
        config.cluster.anti_entropy_interval,
    ));
    let state = handlers::AppState {
        catalog: Arc::clone(&catalog),
        node_name: handlers::node_name(&node_id),
        node_id: node_id.clone(),
        cluster_uuid: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b"cameodb")),
        cluster: Arc::clone(&ctx),
        fault_injection: config.fault_injection,
    };
    let body_state = body::BodyState {
        limits: body::BodyLimits {
            max_bytes: config.max_body_bytes,
            stall: config.http.body_timeout,
            min_rate: config.http.body_min_rate,
        },
        memory,
        request_memory: config.breaker.request,
    };
    let app = handlers::router(state)
        .layer(axum::middleware::from_fn_with_state(
            body_state,
            body::buffer,
        ))
        .layer(axum::middleware::from_fn(compat::elasticsearch_compat))
        // The body is already read (and bounded) by `body::buffer`; this only lifts axum's own
        // 2 MB default for the extractors that read it again.
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    info!(%addr, node_id = %node_id, data_dir = %config.data_dir.display(), "cameodb listening");
    http_server::serve(listener, app, config.http, shutdown).await?;
    info!("http server stopped; closing indexes");
    ctx.cluster.shutdown().await;
    catalog.close_all().await;
    info!("shutdown complete");
    Ok(())
}

/// Starts the libp2p transport and gossip, and the router actor that follows membership.
async fn start_cluster(
    leaf: Arc<leaf::Leaf>,
    keypair: cameodb_cluster::Keypair,
    settings: &ClusterSettings,
    http_addr: SocketAddr,
    inbound: Arc<cluster::inbound::Inbound>,
    scroll_limits: ScrollLimits,
    dynamic: cluster::dynamic::DynamicSettings,
) -> Result<Arc<cluster::ClusterCtx>, ServerError> {
    let catalog = Arc::clone(&leaf.catalog);
    let mut config =
        cameodb_cluster::ClusterConfig::new(keypair, settings.cluster_addr, http_addr.to_string());
    config.seeds = settings.seeds.clone();
    config.secret = settings
        .secret
        .as_deref()
        .map(|secret| cameodb_cluster::ClusterSecret::derive(secret, &config.cluster_id))
        .transpose()
        .map_err(|e| ServerError::Cluster(e.to_string()))?;
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
            // New indexes are placed on the members that stay (the placement loop leaves the
            // decommissioned and removed ones out again within a round).
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
    let origin = cameodb_storage::origin_of(membership.self_id());
    Ok(Arc::new_cyclic(|me| cluster::ClusterCtx {
        cluster: membership,
        router,
        leaf,
        scrolls: cluster::scatter::ClusterScrolls::new(scroll_limits),
        pits: cluster::pit::ClusterPits::new(scroll_limits),
        clock: cameodb_storage::Hlc::new(),
        origin,
        me: me.clone(),
        rotation: std::sync::atomic::AtomicUsize::new(0),
        reads: std::sync::atomic::AtomicU64::new(0),
        settings: dynamic,
        recoveries: cluster::recovery::Recoveries::default(),
    }))
}
