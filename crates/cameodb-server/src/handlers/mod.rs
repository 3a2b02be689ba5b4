//! HTTP handlers, one file per API area, and the router that maps Elasticsearch's paths to them.

pub(crate) mod bulk;
mod by_query;
mod cat;
mod docs;
mod fault;
mod indices;
pub mod internal;
mod mget;
mod msearch;
mod nodes;
mod root;
pub mod scroll;
pub mod search;
mod search_spec;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use cameodb_storage::Store;

use crate::catalog::Catalog;
use crate::error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The node's indexes.
    pub catalog: Arc<Catalog>,
    /// This node's id: its libp2p PeerId (`GET /`, `_cat/nodes`).
    pub node_id: String,
    /// This node's name (`GET /`): derived from its id.
    pub node_name: String,
    /// Cluster id (`GET /`): the same on every node of a cluster.
    pub cluster_uuid: String,
    /// The HTTP address this node serves on (`_cat/nodes` without a cluster).
    pub http_addr: String,
    /// The cluster, when this state serves public requests of a node with peers; `None` for
    /// the local handlers other nodes call (a forwarded request must not be forwarded again).
    pub cluster: Option<Arc<crate::cluster::ClusterCtx>>,
    /// The cluster context for the node-to-node calls that need it even on the local router:
    /// pages of scrolls this node coordinates, asked for through another node. Set once the
    /// cluster layer runs.
    pub coordinator: Arc<std::sync::OnceLock<Arc<crate::cluster::ClusterCtx>>>,
    /// Whether the fault-injection endpoint answers (tests only).
    pub fault_injection: bool,
    /// Open scroll contexts.
    pub scrolls: Arc<scroll::Scrolls>,
    /// Low-priority threads for parsing and answering bulk writes.
    pub ingest: Arc<crate::ingest_pool::IngestPool>,
}

impl AppState {
    /// The cluster this node belongs to, for work that must reach the other nodes: set on the
    /// public state of a node with peers, and through `coordinator` on the local one.
    pub fn cluster_ctx(&self) -> Option<&crate::cluster::ClusterCtx> {
        self.cluster
            .as_deref()
            .or(self.coordinator.get().map(|c| c.as_ref()))
    }
}

/// Query-string parameters.
pub type Params = axum::extract::Query<HashMap<String, String>>;

/// The router for every Elasticsearch-compatible endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root::info).head(root::ping))
        .route("/_cluster/health", get(root::health))
        .route("/_cluster/health/{index}", get(root::health_index))
        .route("/_cat/indices", get(cat::indices))
        .route("/_cat/indices/{index}", get(cat::indices_for))
        .route("/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route("/{index}/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route("/_mget", get(mget::mget).post(mget::mget))
        .route("/{index}/_mget", get(mget::mget).post(mget::mget))
        .route("/_search", get(search::search_all).post(search::search_all))
        .route("/{index}/_search", get(search::search).post(search::search))
        .route(
            "/_search/scroll",
            get(scroll::scroll)
                .post(scroll::scroll)
                .delete(scroll::clear),
        )
        .route(
            "/_search/scroll/{id}",
            get(scroll::scroll_by_id)
                .post(scroll::scroll_by_id)
                .delete(scroll::clear_by_id),
        )
        .route("/_msearch", get(msearch::msearch).post(msearch::msearch))
        .route(
            "/{index}/_msearch",
            get(msearch::msearch).post(msearch::msearch),
        )
        .route("/{index}/_delete_by_query", post(by_query::delete_by_query))
        .route("/{index}/_update_by_query", post(by_query::update_by_query))
        .route(
            "/_delete_by_query/{task}/_rethrottle",
            post(by_query::rethrottle),
        )
        .route(
            "/_update_by_query/{task}/_rethrottle",
            post(by_query::rethrottle),
        )
        .route("/_count", get(search::count_all).post(search::count_all))
        .route("/{index}/_count", get(search::count).post(search::count))
        .route(
            "/_refresh",
            get(indices::refresh_all).post(indices::refresh_all),
        )
        .route(
            "/{index}/_refresh",
            get(indices::refresh).post(indices::refresh),
        )
        .route("/_mapping", get(indices::get_mapping_all))
        .route(
            "/{index}/_mapping",
            get(indices::get_mapping)
                .put(indices::put_mapping)
                .post(indices::put_mapping),
        )
        .route(
            "/{index}",
            put(indices::create)
                .delete(indices::delete)
                .get(indices::get)
                .head(indices::exists),
        )
        .route("/{index}/_doc", post(docs::index_auto_id))
        .route(
            "/{index}/_doc/{id}",
            put(docs::index)
                .post(docs::index)
                .get(docs::get)
                .head(docs::exists)
                .delete(docs::delete),
        )
        .route(
            "/{index}/_create/{id}",
            put(docs::create).post(docs::create),
        )
        .route(
            "/{index}/_source/{id}",
            get(docs::get_source).head(docs::exists_source),
        )
        .route("/{index}/_update/{id}", post(docs::update))
        .route("/_cameo/fault/{index}/panic", post(fault::panic_index))
        .route("/_cat/nodes", get(nodes::cat_nodes))
        .route("/_cameo/ring", get(nodes::ring))
        .route("/_cameo/node/stats", get(nodes::node_stats))
        .with_state(state)
}

/// The router other nodes call: every public endpoint (run locally, never forwarded) plus the
/// node-to-node ones.
pub fn local_router(state: AppState) -> Router {
    let internal = Router::new()
        .route("/_cameo/internal/search", post(internal::shard_search))
        .route("/_cameo/internal/dfs", post(internal::shard_stats))
        .route(
            "/_cameo/internal/scroll",
            post(internal::scroll_page).delete(internal::clear_scroll),
        )
        .route(
            "/_cameo/internal/create/{index}",
            put(indices::create_as_owner),
        )
        .route(
            "/_cameo/internal/ensure/{index}",
            put(internal::ensure_index_as_owner),
        )
        .route(
            "/_cameo/internal/mapping/{index}",
            put(indices::put_mapping_as_owner),
        )
        .route(
            "/_cameo/internal/index/{name}",
            get(internal::get_index)
                .put(internal::put_index)
                .delete(internal::delete_index),
        )
        .with_state(state.clone());
    router(state).merge(internal)
}

/// A node's display name, from its id: `cameodb-` and the id's last eight characters (every
/// ed25519 PeerId starts alike).
pub fn node_name(node_id: &str) -> String {
    let tail = node_id.len().saturating_sub(8);
    format!("cameodb-{}", node_id.get(tail..).unwrap_or(node_id))
}

pub use crate::ids::doc_key;
pub use crate::request::bulk::ndjson_lines;
pub use crate::request::params::{Refresh, flag, number, refresh_param};
pub use crate::request::parse_object_body;
pub use crate::shard::run;

/// How long `refresh=wait_for` waits at most.
const WAIT_FOR_LIMIT: Duration = Duration::from_secs(30);

/// Applies `refresh` after a write whose highest sequence number is `seq` (on a blocking thread).
pub fn apply_refresh(store: &Store, refresh: Refresh, seq: Option<u64>) -> Result<bool, ApiError> {
    match (refresh, seq) {
        (Refresh::No, _) | (_, None) => Ok(false),
        (Refresh::Now, Some(_)) => {
            store.refresh()?;
            Ok(true)
        }
        (Refresh::WaitFor, Some(seq)) => {
            store.wait_searchable(seq, WAIT_FOR_LIMIT);
            Ok(false)
        }
    }
}
