//! What a CameoDB index is, as opposed to how it is stored: Elasticsearch mappings (parsing,
//! rendering, merging, dynamic fields), date formats, the analyzers, and the fixed tantivy schema
//! every index uses. Pure: no files, no redb; the storage engine and the query translator both
//! build on it.

pub mod analysis;
mod error;
pub mod fields;
pub mod mapping;

pub use analysis::{ANALYZERS, Analysis, analyzer, register as register_analyzers};
pub use error::{Result, SchemaError};
