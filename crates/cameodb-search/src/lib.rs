//! Search execution over one store, shared by the node that serves a request and the nodes a
//! cluster search fans out to: sort plans and top-k collection, aggregations under the memory
//! breaker and the bucket budget, highlighting, cluster-wide term statistics, `_source`
//! filtering and the small script language of `_update_by_query`. Synchronous: it reads a
//! tantivy searcher and a store's mapping, and knows nothing of HTTP, tokio or the network.

mod agg_shapes;
pub mod aggregations;
mod bounded;
pub mod bucket_budget;
mod calendar_histogram;
mod calendar_source;
pub mod collapse;
mod date_aggs;
pub mod dfs;
mod error;
mod execute;
mod filter_agg;
mod geo_aggs;
mod geo_grid;
mod geo_metrics;
pub mod geo_sort;
pub mod highlight;
mod inner_hits;
mod mapped_source;
mod merge;
mod nested_sort;
pub mod pipeline;
mod planned;
mod request;
pub mod script;
mod significant;
pub mod sorting;
pub mod source_filter;
pub mod suggest;
pub mod term_suggest;
pub mod tokens;
mod top_hits;
mod wildcard;

pub use error::SearchError;
pub use execute::{AggPart, Hit, Partial, StoreAnswer, build_query, search_store};
pub use merge::{ShardReport, render, shards_json};
pub use request::{QuerySpec, SearchSpec};
pub use wildcard::wildcard_match;
