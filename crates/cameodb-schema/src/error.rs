//! The schema layer's one error enum: what is wrong with a mapping, or with a value for it.

/// Result alias used throughout the schema crate.
pub type Result<T, E = SchemaError> = std::result::Result<T, E>;

/// A mapping or a value that does not fit it. Every variant is the caller's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// A value does not fit the type its field is mapped to.
    #[error("failed to parse field [{field}] of type [{field_type}]: {reason}")]
    MapperParsing {
        field: String,
        field_type: String,
        reason: String,
    },
    /// A mapping definition is malformed or uses something unsupported.
    #[error("{reason}")]
    InvalidMapping { reason: String },
    /// An analysis setting (analyzer, tokenizer, filter, char filter, normalizer) is malformed,
    /// unknown, or names a component that does not exist.
    #[error("{reason}")]
    InvalidAnalysis { reason: String },
    /// A mapping update tries to change the type of an existing field.
    #[error("mapper [{field}] cannot be changed from type [{existing}] to [{requested}]")]
    MappingConflict {
        field: String,
        existing: String,
        requested: String,
    },
    /// `dynamic: strict` forbids introducing the field.
    #[error(
        "mapping set to strict, dynamic introduction of [{field}] within [{parent}] is not allowed"
    )]
    StrictDynamic { field: String, parent: String },
}
