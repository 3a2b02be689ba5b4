//! A search request, parsed once where it arrives: what every node needs to run its part and
//! what the coordinator needs to merge the parts.

use serde_json::Value;

use crate::highlight;
use crate::sorting::SortKey;
use crate::source_filter::SourceFilter;

/// A parsed search request.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SearchSpec {
    /// The query DSL (or a `q=` string).
    pub query: QuerySpec,
    /// `from`: hits skipped.
    pub from: usize,
    /// `size`: hits answered.
    pub size: usize,
    /// `sort`: empty ranks by score.
    pub sort: Vec<SortKey>,
    /// `search_after` cursor values.
    pub search_after: Option<Value>,
    /// `track_total_hits`: `None` = don't report, `Some(n)` = exact up to `n`.
    pub track_total: Option<usize>,
    /// `_source` filtering of hits.
    pub source: SourceFilter,
    /// `rest_total_hits_as_int`: the total as a number, as Elasticsearch 6 answered.
    pub rest_total_as_int: bool,
    /// `typed_keys=true`: aggregation names carry their type.
    pub typed_keys: bool,
    /// The `aggs` request, as sent.
    pub aggs: Option<Value>,
    /// `version: true`: hits carry `_version`.
    pub version: bool,
    /// `seq_no_primary_term: true`: hits carry `_seq_no` and `_primary_term`.
    pub seq_no: bool,
    /// The `highlight` request.
    pub highlight: Option<highlight::HighlightSpec>,
    /// `fields` and `docvalue_fields`: paths whose values hits list under `fields`.
    pub fields: Vec<String>,
    /// `explain: true`: hits carry `_explanation`.
    #[serde(default)]
    pub explain: bool,
    /// `post_filter`: a query the hits must also match, applied after the aggregations.
    #[serde(default)]
    pub post_filter: Option<Value>,
    /// `stored_fields`: patterns of fields mapped with `store: true` whose values hits list
    /// under `fields` (read from the stored `_source`, which holds the same values).
    #[serde(default)]
    pub stored_fields: Vec<String>,
    /// `timeout`: how long a cluster search waits for each node before answering without it.
    pub timeout: Option<std::time::Duration>,
    /// `suggest`: the completion suggestions asked, as sent.
    #[serde(default)]
    pub suggest: Option<Value>,
    /// `collapse.field`: one hit per value of this field.
    #[serde(default)]
    pub collapse: Option<String>,
    /// Which part of the search this node's is (set by the coordinator per node): the high
    /// bits of `_shard_doc`, so that tiebreaker is unique across the cluster.
    #[serde(default)]
    pub shard: u32,
}

/// The query of a request.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum QuerySpec {
    /// No query: every document.
    All,
    /// The query DSL, as sent.
    Dsl(Value),
    /// `q=`: Lucene syntax.
    Lucene {
        /// The query text.
        text: String,
        /// `df`: the field terms without one search.
        default_field: Option<String>,
        /// `default_operator=AND`.
        and: bool,
    },
}

impl QuerySpec {
    /// The query as Elasticsearch DSL (a `q=` query as the `query_string` it is).
    pub fn to_dsl(&self) -> Value {
        match self {
            QuerySpec::All => serde_json::json!({"match_all": {}}),
            QuerySpec::Dsl(dsl) => dsl.clone(),
            QuerySpec::Lucene {
                text,
                default_field,
                and,
            } => {
                let mut body = serde_json::json!({
                    "query": text,
                    "default_operator": if *and { "AND" } else { "OR" },
                });
                if let Some(field) = default_field {
                    body["default_field"] = Value::String(field.clone());
                }
                serde_json::json!({"query_string": body})
            }
        }
    }
}

impl SearchSpec {
    /// A `_count`: how many documents `query` matches, no hits.
    pub fn count(query: QuerySpec) -> SearchSpec {
        SearchSpec {
            query,
            from: 0,
            size: 0,
            sort: Vec::new(),
            search_after: None,
            track_total: Some(usize::MAX),
            source: SourceFilter::default(),
            rest_total_as_int: false,
            typed_keys: false,
            aggs: None,
            version: false,
            seq_no: false,
            highlight: None,
            fields: Vec::new(),
            stored_fields: Vec::new(),
            post_filter: None,
            explain: false,
            collapse: None,
            suggest: None,
            timeout: None,
            shard: 0,
        }
    }

    /// What each node of a cluster runs for this search: its own top `from + size` (the
    /// coordinator pages the merge), everything else as asked.
    pub fn for_nodes(&self) -> SearchSpec {
        SearchSpec {
            from: 0,
            size: self.window(),
            ..self.clone()
        }
    }

    /// `from + size`: how many hits each index must rank (a scroll's `from` grows page by
    /// page, so this saturates rather than wraps).
    pub fn window(&self) -> usize {
        self.from.saturating_add(self.size)
    }

    /// True when hits are ranked or reported by score, so cluster-wide term statistics matter.
    pub fn uses_scores(&self) -> bool {
        self.window() > 0 && (self.sort.is_empty() || self.sort.iter().any(|k| k.field == "_score"))
    }
}
