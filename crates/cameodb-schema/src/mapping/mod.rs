//! Field mappings: the typed, persisted description of how each JSON path is indexed.
//!
//! The tantivy schema never changes (see `schema.rs`); a mapping decides, per dotted path, which
//! fixed tantivy field a value lands in and how it is coerced. That is what lets fields be added
//! — explicitly or dynamically — to a live index without rebuilding it.

pub mod completion;
pub mod date;
mod es_json;
pub mod geo;
pub mod nested;
pub mod variant;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::analysis::ANALYZERS;
use crate::error::{Result, SchemaError};
pub use variant::Variant;

/// Elasticsearch's default cap on the number of mapped fields, which also bounds what hostile
/// documents with thousands of random keys can do to the mapping.
pub const TOTAL_FIELDS_LIMIT: usize = 1000;
/// Elasticsearch's default cap on object nesting depth.
pub const DEPTH_LIMIT: usize = 20;
/// Longest keyword Lucene (and so Elasticsearch) accepts as one term, in bytes.
pub const MAX_KEYWORD_BYTES: usize = 32766;

/// The field types the engine understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Analyzed full text.
    Text,
    /// An exact string: filters, sorting, aggregations.
    Keyword,
    /// 64-bit signed integer.
    Long,
    /// 32-bit signed integer.
    Integer,
    /// 16-bit signed integer.
    Short,
    /// 8-bit signed integer.
    Byte,
    /// 64-bit float.
    Double,
    /// 32-bit float.
    Float,
    /// true / false.
    Boolean,
    /// A point in time, stored with millisecond precision.
    Date,
    /// A container of other fields; never holds a value itself.
    Object,
}

impl FieldType {
    /// The Elasticsearch name of the type.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Keyword => "keyword",
            FieldType::Long => "long",
            FieldType::Integer => "integer",
            FieldType::Short => "short",
            FieldType::Byte => "byte",
            FieldType::Double => "double",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Object => "object",
        }
    }

    /// Parses an Elasticsearch type name.
    pub fn from_name(name: &str) -> Option<FieldType> {
        Some(match name {
            "text" => FieldType::Text,
            "keyword" => FieldType::Keyword,
            "long" => FieldType::Long,
            "integer" => FieldType::Integer,
            "short" => FieldType::Short,
            "byte" => FieldType::Byte,
            "double" => FieldType::Double,
            "float" => FieldType::Float,
            "boolean" => FieldType::Boolean,
            "date" => FieldType::Date,
            "object" => FieldType::Object,
            _ => return None,
        })
    }

    /// True for the types indexed as numbers.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Long
                | FieldType::Integer
                | FieldType::Short
                | FieldType::Byte
                | FieldType::Double
                | FieldType::Float
        )
    }
}

/// What happens to fields a document brings that the mapping does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dynamic {
    /// Add them to the mapping with inferred types (Elasticsearch's default).
    #[default]
    True,
    /// Keep them in `_source` but do not index them.
    False,
    /// Reject the document.
    Strict,
}

/// How one path is indexed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldMapping {
    /// The field's type; fixed once mapped.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The Elasticsearch type when it is a variant of `field_type` (`ip`, `half_float`, …):
    /// indexed as the base type, with the variant's one difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    /// Analyzer for text fields (`None` = standard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzer: Option<String>,
    /// Analyzer for the query text of full-text queries on this text field (`None` = the
    /// index analyzer): lets an index-time n-gram or synonym analyzer search with a plain one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_analyzer: Option<String>,
    /// Normalizer for keyword fields: values and query terms pass through it, so `Café` and
    /// `cafe` are one term under a lowercase + asciifolding normalizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalizer: Option<String>,
    /// `index: false` on a text field: kept in `_source`, not searchable (other types stay
    /// searchable through their columns, as Elasticsearch's doc-values search does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<bool>,
    /// Fields this field's values are also indexed into (`copy_to`), as if the document had
    /// them there; `_source` is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_to: Vec<String>,
    /// Indexed in place of an explicit `null` (`null_value`), so `term` queries find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_value: Option<serde_json::Value>,
    /// `enabled: false` on an object: its contents are kept in `_source` and never indexed
    /// or mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Parameters accepted because they change nothing CameoDB returns (`store`,
    /// `doc_values`, `eager_global_ordinals`, `meta`, …; COMPATIBILITY.md lists them), kept
    /// only to be shown back as they were given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accepted: BTreeMap<String, serde_json::Value>,
    /// Keyword strings longer than this many characters are kept in `_source` but not indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_above: Option<u32>,
    /// Date formats, `||`-separated, for date fields (`None` = the default formats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Per-object override of the dynamic setting (objects only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<Dynamic>,
    /// Multi-fields: the same value indexed again under `path.name` with another mapping.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldMapping>,
    /// Dedicated tantivy text field for this text field, so it gets its own length norms and
    /// analyzer. `None` once the slots are used up: the field then shares the overflow field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
}

impl FieldMapping {
    /// A mapping of the given type with every option at its default.
    pub fn of(field_type: FieldType) -> FieldMapping {
        FieldMapping {
            field_type,
            variant: None,
            analyzer: None,
            search_analyzer: None,
            normalizer: None,
            index: None,
            copy_to: Vec::new(),
            null_value: None,
            enabled: None,
            accepted: BTreeMap::new(),
            ignore_above: None,
            format: None,
            dynamic: None,
            fields: BTreeMap::new(),
            slot: None,
        }
    }

    /// The Elasticsearch name of the field's type (the variant's, when it has one).
    pub fn type_name(&self) -> &'static str {
        match &self.variant {
            Some(variant) => variant.name(),
            None => self.field_type.name(),
        }
    }

    /// True for a `match_only_text` field, whose queries score a constant.
    pub fn constant_scored(&self) -> bool {
        self.variant == Some(Variant::MatchOnlyText)
    }
}

/// The mapping of one index: every mapped path, flattened to dotted names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    /// Root-level dynamic setting.
    #[serde(default)]
    pub dynamic: Dynamic,
    /// Every mapped field and object by full dotted path ("user.name"). Multi-fields live inside
    /// their parent's entry, not here.
    #[serde(default)]
    pub properties: BTreeMap<String, FieldMapping>,
    /// Next unassigned text slot.
    #[serde(default)]
    pub next_slot: u16,
}

impl Mapping {
    /// Parses an Elasticsearch mapping body (`{"properties": …, "dynamic": …}`).
    pub fn from_es_json(json: &serde_json::Value) -> Result<Mapping> {
        let mut mapping = Mapping::default();
        mapping.merge_es_json(json)?;
        Ok(mapping)
    }

    /// Merges an Elasticsearch mapping body into this mapping. New fields are added; a field
    /// that exists keeps its type (a different type is a conflict, as in Elasticsearch). On
    /// error the mapping is left unchanged.
    pub fn merge_es_json(&mut self, json: &serde_json::Value) -> Result<()> {
        let parsed = es_json::parse(json)?;
        let mut next = self.clone();
        if let Some(dynamic) = parsed.dynamic {
            next.dynamic = dynamic;
        }
        for (path, field) in parsed.properties {
            next.add_field(&path, field)?;
        }
        next.check_aliases()?;
        next.check_nested()?;
        *self = next;
        Ok(())
    }

    /// Renders the mapping as Elasticsearch shows it (`{"properties": {...}}`, nested).
    pub fn to_es_json(&self) -> serde_json::Value {
        es_json::render(self)
    }

    /// Number of mapped fields, counting objects and multi-fields, as Elasticsearch counts them
    /// against `index.mapping.total_fields.limit`.
    pub fn total_fields(&self) -> usize {
        self.properties.values().map(|f| 1 + f.fields.len()).sum()
    }

    /// The mapping of `path`, if mapped.
    pub fn get(&self, path: &str) -> Option<&FieldMapping> {
        self.properties.get(path)
    }

    /// The mapping of `path`, including multi-fields (`title.keyword`).
    pub fn lookup(&self, path: &str) -> Option<&FieldMapping> {
        self.properties
            .get(path)
            .or_else(|| {
                let (parent, sub) = path.rsplit_once('.')?;
                self.properties.get(parent)?.fields.get(sub)
            })
            .or_else(|| self.flattened_holding(path))
    }

    /// The `flattened` field a longer path reads a key of (`labels.priority` of `labels`).
    fn flattened_holding(&self, path: &str) -> Option<&FieldMapping> {
        let mut prefix = path;
        while let Some((parent, _)) = prefix.rsplit_once('.') {
            if let Some(field) = self.properties.get(parent) {
                return matches!(field.variant, Some(Variant::Flattened { .. })).then_some(field);
            }
            prefix = parent;
        }
        None
    }

    /// The field `path` names, following a field alias to the field it stands for: the path
    /// that holds the values, and its mapping.
    pub fn resolve<'m>(&'m self, path: &'m str) -> Option<(&'m str, &'m FieldMapping)> {
        let field = self.lookup(path)?;
        match &field.variant {
            Some(Variant::Alias { path: target }) => Some((target.as_str(), self.lookup(target)?)),
            _ => Some((path, field)),
        }
    }

    /// Every alias must stand for a mapped field that is neither an object nor an alias, as
    /// Elasticsearch requires.
    fn check_aliases(&self) -> Result<()> {
        for (path, field) in &self.properties {
            let Some(Variant::Alias { path: target }) = &field.variant else {
                continue;
            };
            let valid = self.lookup(target).is_some_and(|t| {
                t.field_type != FieldType::Object
                    && !matches!(t.variant, Some(Variant::Alias { .. }))
            });
            if target.is_empty() || !valid {
                return Err(SchemaError::InvalidMapping {
                    reason: format!(
                        "Invalid [path] value [{target}] for field alias [{path}]: an alias must refer to an existing field in the mappings."
                    ),
                });
            }
        }
        Ok(())
    }

    /// True when indexing `source` cannot add a field: every path in it is mapped, or sits
    /// under an object whose dynamic setting adds nothing. Walks keys only, so it is cheap; it
    /// may answer false for a document that adds nothing (null values, say), never true for
    /// one that adds a field.
    pub fn covers(&self, source: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.covers_under("", source)
    }

    fn covers_under(
        &self,
        prefix: &str,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        use serde_json::Value;
        object.iter().all(|(key, value)| {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let field = self.properties.get(&path);
            if field.is_none() && !value.is_null() && self.dynamic_for(prefix) == Dynamic::True {
                return false;
            }
            // A `constant_keyword` without a value takes the first one indexed.
            if field.is_some_and(|f| f.variant == Some(Variant::ConstantKeyword { value: None }))
                && !value.is_null()
            {
                return false;
            }
            match value {
                Value::Object(inner) => self.covers_under(&path, inner),
                Value::Array(items) => items.iter().all(|item| match item {
                    Value::Object(inner) => self.covers_under(&path, inner),
                    _ => true,
                }),
                _ => true,
            }
        })
    }

    /// The dynamic setting in force for new children of `parent` ("" = root).
    pub fn dynamic_for(&self, parent: &str) -> Dynamic {
        let mut current = parent;
        loop {
            if current.is_empty() {
                return self.dynamic;
            }
            if let Some(field) = self.properties.get(current) {
                if field.enabled == Some(false) {
                    return Dynamic::False;
                }
                if let Some(dynamic) = field.dynamic {
                    return dynamic;
                }
            }
            current = current.rsplit_once('.').map_or("", |(head, _)| head);
        }
    }

    /// Adds (or merges) one field at `path`, creating missing parent objects and assigning text
    /// slots. Errors if the type conflicts or limits are exceeded.
    pub fn add_field(&mut self, path: &str, mut field: FieldMapping) -> Result<()> {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(SchemaError::InvalidMapping {
                reason: format!("field name [{path}] is not valid: empty path segment"),
            });
        }
        if path.split('.').count() > DEPTH_LIMIT {
            return Err(SchemaError::InvalidMapping {
                reason: format!(
                    "Limit of mapping depth [{DEPTH_LIMIT}] has been exceeded by [{path}]"
                ),
            });
        }
        if let Some((parent, _)) = path.rsplit_once('.') {
            match self.properties.get(parent) {
                Some(p) if p.field_type != FieldType::Object => {
                    return Err(SchemaError::MappingConflict {
                        field: parent.to_string(),
                        existing: p.field_type.name().to_string(),
                        requested: "object".to_string(),
                    });
                }
                Some(_) => {}
                None => self.add_field(parent, FieldMapping::of(FieldType::Object))?,
            }
        }
        match self.properties.get_mut(path) {
            Some(existing) => {
                if existing.field_type != field.field_type
                    || existing.type_name() != field.type_name()
                {
                    return Err(SchemaError::MappingConflict {
                        field: path.to_string(),
                        existing: existing.type_name().to_string(),
                        requested: field.type_name().to_string(),
                    });
                }
                if existing.variant != field.variant {
                    merge_variant(path, existing, field.variant.take())?;
                }
                if field.dynamic.is_some() {
                    existing.dynamic = field.dynamic;
                }
                let new_subfields: Vec<_> = field
                    .fields
                    .into_iter()
                    .filter(|(name, _)| !existing.fields.contains_key(name))
                    .collect();
                let mut added = Vec::new();
                for (name, mut sub) in new_subfields {
                    assign_slot(&mut self.next_slot, &mut sub);
                    added.push((name, sub));
                }
                if let Some(existing) = self.properties.get_mut(path) {
                    existing.fields.extend(added);
                }
            }
            None => {
                assign_slot(&mut self.next_slot, &mut field);
                for sub in field.fields.values_mut() {
                    assign_slot(&mut self.next_slot, sub);
                }
                self.properties.insert(path.to_string(), field);
            }
        }
        if self.total_fields() > TOTAL_FIELDS_LIMIT {
            return Err(SchemaError::InvalidMapping {
                reason: format!("Limit of total fields [{TOTAL_FIELDS_LIMIT}] has been exceeded"),
            });
        }
        Ok(())
    }
}

/// A variant's parameters may change only where Elasticsearch lets them: a
/// `constant_keyword` without a value takes one.
fn merge_variant(path: &str, existing: &mut FieldMapping, next: Option<Variant>) -> Result<()> {
    match (&existing.variant, next) {
        (
            Some(Variant::ConstantKeyword { value: None }),
            Some(next @ Variant::ConstantKeyword { .. }),
        ) => {
            existing.variant = Some(next);
            Ok(())
        }
        (Some(Variant::ConstantKeyword { .. }), Some(Variant::ConstantKeyword { value: None })) => {
            Ok(())
        }
        _ => Err(SchemaError::InvalidMapping {
            reason: format!(
                "Mapper for [{path}] conflicts with existing mapper: cannot change the parameters of a [{}] field",
                existing.type_name()
            ),
        }),
    }
}

fn assign_slot(next_slot: &mut u16, field: &mut FieldMapping) {
    if field.field_type == FieldType::Text
        && field.slot.is_none()
        && usize::from(*next_slot) < crate::fields::TEXT_SLOTS
    {
        field.slot = Some(*next_slot);
        *next_slot += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn covers_only_documents_whose_every_path_is_mapped() {
        let mapping = Mapping::from_es_json(&json!({"properties": {
            "title": {"type": "text"},
            "user": {"properties": {"name": {"type": "keyword"}}},
            "free": {"type": "object", "dynamic": false},
        }}))
        .unwrap();
        let doc = |v: serde_json::Value| v.as_object().cloned().unwrap();
        assert!(mapping.covers(&doc(json!({"title": "a", "user": {"name": "b"}}))));
        assert!(mapping.covers(&doc(json!({"user": [{"name": "b"}], "free": {"x": 1}}))));
        assert!(mapping.covers(&doc(json!({"title": null, "unset": null}))));
        assert!(!mapping.covers(&doc(json!({"title": "a", "year": 1990}))));
        assert!(!mapping.covers(&doc(json!({"user": {"name": "b", "age": 3}}))));
    }

    #[test]
    fn parses_nested_properties_and_renders_them_back() {
        let body = json!({"properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "user": {"properties": {"name": {"type": "keyword"}, "age": {"type": "long"}}},
            "at": {"type": "date"}
        }});
        let mapping = Mapping::from_es_json(&body).unwrap();
        assert_eq!(
            mapping.get("user.name").unwrap().field_type,
            FieldType::Keyword
        );
        assert_eq!(mapping.get("user").unwrap().field_type, FieldType::Object);
        assert_eq!(mapping.get("title").unwrap().slot, Some(0));
        assert_eq!(mapping.to_es_json(), body);
    }

    #[test]
    fn type_changes_are_conflicts_and_leave_the_mapping_alone() {
        let mut mapping =
            Mapping::from_es_json(&json!({"properties": {"n": {"type": "long"}}})).unwrap();
        let before = mapping.clone();
        let err = mapping
            .merge_es_json(&json!({"properties": {"m": {"type": "long"}, "n": {"type": "text"}}}))
            .unwrap_err();
        assert!(matches!(err, SchemaError::MappingConflict { .. }));
        assert_eq!(mapping, before);
    }

    #[test]
    fn unknown_types_and_parameters_are_rejected() {
        assert!(
            Mapping::from_es_json(&json!({"properties": {"a": {"type": "geo_shape"}}})).is_err()
        );
        assert!(
            Mapping::from_es_json(&json!({"properties": {"a": {"type": "long", "bogus": 1}}}))
                .is_err()
        );
        // Accepted parameters that would change results if ignored are refused by name.
        for refused in [
            json!({"type": "text", "norms": false}),
            json!({"type": "text", "index_options": "docs"}),
            json!({"type": "long", "ignore_malformed": true}),
            json!({"type": "text", "similarity": "boolean"}),
        ] {
            assert!(Mapping::from_es_json(&json!({"properties": {"a": refused}})).is_err());
        }
        assert!(Mapping::from_es_json(&json!({"bogus": {}})).is_err());
    }

    #[test]
    fn production_parameters_are_kept_and_rendered_back() {
        let body = json!({"properties": {
            "title": {"type": "text", "analyzer": "english", "search_analyzer": "standard",
                "copy_to": ["all"], "norms": true, "index_options": "offsets", "store": true,
                "fielddata": true, "term_vector": "with_positions_offsets",
                "fields": {"raw": {"type": "keyword", "normalizer": "lowercase",
                    "ignore_above": 256, "doc_values": true, "eager_global_ordinals": true}}},
            "all": {"type": "text"},
            "status": {"type": "keyword", "null_value": "NONE", "norms": false,
                "index_options": "docs", "meta": {"unit": "none"}},
            "secret": {"type": "text", "index": false},
            "free": {"type": "object", "enabled": false}
        }});
        let mapping = Mapping::from_es_json(&body).unwrap();
        assert_eq!(mapping.get("title").unwrap().copy_to, ["all"]);
        assert_eq!(
            mapping.get("status").unwrap().null_value,
            Some(json!("NONE"))
        );
        assert_eq!(mapping.dynamic_for("free"), Dynamic::False);
        assert_eq!(mapping.to_es_json(), body);
    }

    #[test]
    fn dynamic_is_inherited_from_the_nearest_object() {
        let mapping = Mapping::from_es_json(&json!({"dynamic": "strict", "properties": {
            "free": {"type": "object", "dynamic": true, "properties": {"x": {"type": "long"}}}
        }}))
        .unwrap();
        assert_eq!(mapping.dynamic_for(""), Dynamic::Strict);
        assert_eq!(mapping.dynamic_for("free"), Dynamic::True);
        assert_eq!(mapping.dynamic_for("free.x"), Dynamic::True);
    }
}
