//! `nested` fields: which paths are nested, and the marks their hidden documents carry.
//!
//! Each element of a nested array is indexed as its own document, written just before the
//! document that holds it (children first, then the parent, in one indexing batch, so they sit
//! in one segment in that order and merges keep it). A hidden document carries the parent's key
//! (so deleting the document deletes its elements) and two marks in `_field_names`: one every
//! nested document has, which top-level queries exclude, and one naming its nested path.

use super::{FieldMapping, Mapping, Variant};

/// `index.mapping.nested_fields.limit`: most `nested` fields one mapping may declare
/// (Elasticsearch's default).
pub const NESTED_FIELDS_LIMIT: usize = 50;

/// `index.mapping.nested_objects.limit`: most nested elements one document may hold, across
/// all its nested fields (Elasticsearch's default). Each is a document in the index.
pub const NESTED_OBJECTS_LIMIT: usize = 10_000;

/// The `_field_names` term every nested (hidden) document carries. The leading control
/// character keeps it apart from any field path a document can name.
pub const NESTED_MARK: &str = "\u{1}nested";

/// The `_field_names` term the nested documents of `path` carry.
pub fn path_mark(path: &str) -> String {
    format!("{NESTED_MARK}:{path}")
}

/// True for a `nested` field's mapping.
pub fn is_nested(field: &FieldMapping) -> bool {
    matches!(field.variant, Some(Variant::Nested { .. }))
}

impl Mapping {
    /// True when some field is `nested`: only then do documents have hidden parts that
    /// top-level queries must exclude.
    pub fn has_nested(&self) -> bool {
        self.properties.values().any(is_nested)
    }

    /// True when `path` is a `nested` field.
    pub fn is_nested_path(&self, path: &str) -> bool {
        self.properties.get(path).is_some_and(is_nested)
    }

    /// The innermost `nested` field strictly above `path` (`None` at the root level).
    pub fn nested_parent<'p>(&self, path: &'p str) -> Option<&'p str> {
        let (parent, _) = path.rsplit_once('.')?;
        self.nested_scope(parent)
    }

    /// The innermost `nested` field holding `path` (itself when `path` is nested): the level
    /// whose documents hold its values. `None` for fields of the root document.
    pub fn nested_scope<'p>(&self, path: &'p str) -> Option<&'p str> {
        let mut prefix = path;
        loop {
            if self.is_nested_path(prefix) {
                return Some(prefix);
            }
            prefix = prefix.rsplit_once('.')?.0;
        }
    }

    /// Refuses more `nested` fields than [`NESTED_FIELDS_LIMIT`].
    pub(super) fn check_nested(&self) -> crate::error::Result<()> {
        let count = self.properties.values().filter(|f| is_nested(f)).count();
        if count > NESTED_FIELDS_LIMIT {
            return Err(crate::error::SchemaError::InvalidMapping {
                reason: format!("Limit of nested fields [{NESTED_FIELDS_LIMIT}] has been exceeded"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_levels_are_found_from_any_path() {
        let mapping = Mapping::from_es_json(&json!({"properties": {
            "title": {"type": "text"},
            "comments": {"type": "nested", "properties": {
                "author": {"type": "keyword"},
                "replies": {"type": "nested", "properties": {"who": {"type": "keyword"}}},
                "meta": {"properties": {"lang": {"type": "keyword"}}}
            }}
        }}))
        .unwrap();
        assert!(mapping.has_nested());
        assert_eq!(mapping.nested_scope("title"), None);
        assert_eq!(mapping.nested_scope("comments"), Some("comments"));
        assert_eq!(mapping.nested_scope("comments.meta.lang"), Some("comments"));
        assert_eq!(
            mapping.nested_scope("comments.replies.who"),
            Some("comments.replies")
        );
        assert_eq!(mapping.nested_parent("comments.replies"), Some("comments"));
        assert_eq!(mapping.nested_parent("comments"), None);
        let rendered = mapping.to_es_json();
        assert_eq!(rendered["properties"]["comments"]["type"], "nested");
        assert_eq!(
            rendered["properties"]["comments"]["properties"]["replies"]["type"],
            "nested"
        );
        assert_eq!(
            rendered["properties"]["comments"]["properties"]["meta"].get("type"),
            None
        );
        assert_eq!(Mapping::from_es_json(&rendered).unwrap(), mapping);
    }
}
