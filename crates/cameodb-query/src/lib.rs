//! The Elasticsearch query DSL, translated to tantivy queries. Pure: it reads a mapping and the
//! schema's field handles and builds query objects; it never touches an index or a file.

pub mod block_join;
mod boosting;
mod combined;
mod dsl;
mod error;
pub mod expr;
mod fields;
mod full_text;
mod function_score;
mod geo_queries;
mod ip;
mod limits;
mod more_like_this;
pub mod nested;
mod numeric_column;
mod params;
mod query_string;
mod score_functions;
mod term_level;

pub use dsl::translate;
pub use error::QueryError;
pub use fields::{QueryContext, date_math};
pub use limits::{MAX_CLAUSE_COUNT, MAX_NESTED_DEPTH, MAX_TERMS_COUNT};
pub use more_like_this::{liked_documents, with_liked_documents};
pub use numeric_column::NumericColumn;
pub use query_string::query_string;
