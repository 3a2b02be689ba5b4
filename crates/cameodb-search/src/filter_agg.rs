//! The `filter` aggregation: tantivy's filter bucket, with the filter given as an
//! Elasticsearch query and translated under the index's mapping when the aggregation runs.

use cameodb_query::{QueryContext, translate};
use cameodb_schema::mapping::Mapping;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tantivy::aggregation::bucket::QueryBuilder;
use tantivy::query::Query;
use tantivy::schema::Schema;
use tantivy::tokenizer::TokenizerManager;

/// An Elasticsearch query for a `filter` aggregation, with the mapping it is read under
/// (tantivy builds the query from the schema and tokenizers alone, so the mapping travels
/// with the request, as the request itself travels between nodes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DslFilter {
    /// The query, as the request gave it.
    pub query: Value,
    /// The index's mapping.
    pub mapping: Mapping,
}

#[typetag::serde(name = "cameo_dsl")]
impl QueryBuilder for DslFilter {
    fn build_query(
        &self,
        _schema: &Schema,
        tokenizers: &TokenizerManager,
    ) -> tantivy::Result<Box<dyn Query>> {
        // The schema is the fixed one every store uses: its handles are the same.
        let (_, fields) = cameodb_schema::fields::build();
        let ctx = QueryContext::new(&self.mapping, &fields, tokenizers);
        translate(&self.query, &ctx)
            .map_err(|e| tantivy::TantivyError::InvalidArgument(format!("[filter] {e}")))
    }

    fn box_clone(&self) -> Box<dyn QueryBuilder> {
        Box::new(self.clone())
    }
}

/// The body tantivy's `filter` aggregation reads for the Elasticsearch filter `query`.
pub fn filter_body(query: &Value, mapping: &Mapping) -> Result<Value, serde_json::Error> {
    let builder: Box<dyn QueryBuilder> = Box::new(DslFilter {
        query: query.clone(),
        mapping: mapping.clone(),
    });
    serde_json::to_value(&builder)
}
