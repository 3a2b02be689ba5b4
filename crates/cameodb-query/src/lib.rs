//! The Elasticsearch query DSL, translated to tantivy queries. Pure: it reads a mapping and the
//! schema's field handles and builds query objects; it never touches an index or a file.

mod boosting;
mod dsl;
mod error;
mod fields;
mod query_string;
mod term_level;

pub use dsl::translate;
pub use error::QueryError;
pub use fields::QueryContext;
pub use query_string::query_string;
