//! HTTP handlers, one file per API area, and the router that maps Elasticsearch's paths to them.

mod aliases;
mod analyze;
mod bulk;
mod by_query;
mod cat;
mod changes;
mod cluster_info;
mod docs;
mod explain;
mod fault;
mod index_info;
mod indices;
mod mget;
mod msearch;
mod nodes;
mod pit;
mod root;
mod scroll;
mod search;
mod search_template;
mod templates;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use crate::catalog::Catalog;
use crate::cluster::ClusterCtx;

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
    /// The coordinator every request is executed through (a node alone is a cluster of one).
    pub cluster: Arc<ClusterCtx>,
    /// Whether the fault-injection endpoint answers (tests only).
    pub fault_injection: bool,
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
        .route("/_cat/shards", get(cat::shards))
        .route("/_cat/recovery", get(cat::recovery))
        .route("/_cat/recovery/{index}", get(cat::recovery_for))
        .route("/_cat/shards/{index}", get(cat::shards_for))
        .route(
            "/_analyze",
            get(analyze::analyze_any).post(analyze::analyze_any),
        )
        .route(
            "/{index}/_analyze",
            get(analyze::analyze).post(analyze::analyze),
        )
        .route("/_aliases", post(aliases::update).get(aliases::get_all))
        .route("/_alias", get(aliases::get_all))
        .route(
            "/_alias/{name}",
            get(aliases::get_named).head(aliases::exists_named),
        )
        .route("/{index}/_alias", get(aliases::get_of_index))
        .route("/{index}/_aliases", get(aliases::get_of_index))
        .route(
            "/{index}/_alias/{name}",
            put(aliases::put)
                .post(aliases::put)
                .delete(aliases::delete)
                .get(aliases::get_of_index_named)
                .head(aliases::exists_of_index_named),
        )
        .route(
            "/{index}/_aliases/{name}",
            put(aliases::put)
                .post(aliases::put)
                .delete(aliases::delete)
                .get(aliases::get_of_index_named)
                .head(aliases::exists_of_index_named),
        )
        .route("/_cat/aliases", get(aliases::cat))
        .route("/_cat/aliases/{name}", get(aliases::cat_named))
        .route("/_nodes", get(cluster_info::nodes_info))
        .route("/_nodes/stats", get(cluster_info::nodes_stats))
        .route("/_nodes/{filter}", get(cluster_info::nodes_info_for))
        .route("/_nodes/{filter}/stats", get(cluster_info::nodes_stats_for))
        .route(
            "/_nodes/{filter}/{metric}",
            get(cluster_info::nodes_info_for_metric),
        )
        .route(
            "/_cluster/settings",
            get(cluster_info::cluster_settings).put(cluster_info::put_cluster_settings),
        )
        .route("/_cluster/state", get(cluster_info::cluster_state))
        .route(
            "/_cluster/state/{metric}",
            get(cluster_info::cluster_state_metric),
        )
        .route(
            "/_cluster/state/{metric}/{index}",
            get(cluster_info::cluster_state_metric_index),
        )
        .route("/_cat/health", get(cluster_info::cat_health))
        .route("/_cat/count", get(cluster_info::cat_count))
        .route("/_cat/count/{index}", get(cluster_info::cat_count_for))
        .route("/_stats", get(index_info::stats))
        .route("/{index}/_stats", get(index_info::stats_index))
        .route(
            "/{index}/_stats/{metric}",
            get(index_info::stats_index_metric),
        )
        .route(
            "/_field_caps",
            get(index_info::field_caps).post(index_info::field_caps),
        )
        .route(
            "/{index}/_field_caps",
            get(index_info::field_caps_for).post(index_info::field_caps_for),
        )
        .route("/_resolve/index/{name}", get(index_info::resolve_index))
        .route(
            "/_validate/query",
            get(index_info::validate_query_all).post(index_info::validate_query_all),
        )
        .route(
            "/{index}/_validate/query",
            get(index_info::validate_query).post(index_info::validate_query),
        )
        .route("/_data_stream", get(index_info::data_streams))
        .route("/_data_stream/{name}", get(index_info::data_stream))
        .route("/{index}/_mappings", get(indices::get_mapping))
        .route("/_mappings", get(indices::get_mapping_all))
        .route("/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route("/{index}/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route("/_mget", get(mget::mget).post(mget::mget))
        .route("/{index}/_mget", get(mget::mget).post(mget::mget))
        .route("/_search", get(search::search_all).post(search::search_all))
        .route("/{index}/_search", get(search::search).post(search::search))
        .route(
            "/_search/template",
            get(search_template::search_all).post(search_template::search_all),
        )
        .route(
            "/{index}/_search/template",
            get(search_template::search).post(search_template::search),
        )
        .route(
            "/_render/template",
            get(search_template::render).post(search_template::render),
        )
        .route(
            "/_render/template/{id}",
            get(search_template::render_stored).post(search_template::render_stored),
        )
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
            "/_msearch/template",
            get(msearch::msearch_template).post(msearch::msearch_template),
        )
        .route(
            "/{index}/_msearch/template",
            get(msearch::msearch_template).post(msearch::msearch_template),
        )
        .route(
            "/{index}/_msearch",
            get(msearch::msearch).post(msearch::msearch),
        )
        .route("/_reindex", post(by_query::reindex))
        .route("/_index_template", get(templates::get_index_all))
        .route(
            "/_index_template/{name}",
            put(templates::put_index)
                .post(templates::put_index)
                .get(templates::get_index)
                .head(templates::exists_index)
                .delete(templates::delete_index),
        )
        .route("/_component_template", get(templates::get_component_all))
        .route(
            "/_component_template/{name}",
            put(templates::put_component)
                .post(templates::put_component)
                .get(templates::get_component)
                .head(templates::exists_component)
                .delete(templates::delete_component),
        )
        .route("/_template", get(templates::get_legacy_all))
        .route(
            "/_template/{name}",
            put(templates::put_legacy)
                .post(templates::put_legacy)
                .get(templates::get_legacy)
                .head(templates::exists_legacy)
                .delete(templates::delete_legacy),
        )
        .route("/_cat/templates", get(templates::cat))
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
        .route(
            "/{index}/_explain/{id}",
            get(explain::explain).post(explain::explain),
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
            "/{index}/_settings",
            get(indices::get_settings).put(indices::put_settings),
        )
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
        .route(
            "/_cameo/fault/{index}/lose/{id}",
            post(fault::lose_document),
        )
        .route("/{index}/_cameo/changes", get(changes::changes))
        .route("/{index}/_pit", post(pit::open))
        .route("/_pit", axum::routing::delete(pit::close))
        .route("/{index}/_search/point_in_time", post(pit::open_opensearch))
        .route(
            "/_search/point_in_time",
            axum::routing::delete(pit::close_opensearch),
        )
        .route("/_cat/nodes", get(nodes::cat_nodes))
        .route("/_cameo/ring", get(nodes::ring))
        .route("/_cameo/node/stats", get(nodes::node_stats))
        .route("/_cameo/nodes/{node}", get(nodes::node_progress))
        .route(
            "/_cameo/nodes/{node}/_decommission",
            post(nodes::decommission),
        )
        .route("/_cameo/nodes/{node}/_remove", post(nodes::remove))
        .with_state(state)
}

/// A node's display name, from its id: `cameodb-` and the id's last eight characters (every
/// ed25519 PeerId starts alike).
pub fn node_name(node_id: &str) -> String {
    let tail = node_id.len().saturating_sub(8);
    format!("cameodb-{}", node_id.get(tail..).unwrap_or(node_id))
}
