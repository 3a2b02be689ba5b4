//! Turning a JSON document into the tantivy document that indexes it, under a mapping —
//! adding dynamically discovered fields to the mapping as Elasticsearch does.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tantivy::TantivyDocument;
use tantivy::schema::OwnedValue;
use tantivy::tokenizer::TextAnalyzer;

use cameodb_schema::SchemaError;
use cameodb_schema::analysis::{Analysis, normalize};
use cameodb_schema::fields::Fields;
use cameodb_schema::mapping::variant::encode_ip;
use cameodb_schema::mapping::{
    DEPTH_LIMIT, Dynamic, FieldMapping, FieldType, MAX_KEYWORD_BYTES, Mapping, Variant, date,
};

use crate::coerce::{as_f64, as_i64, as_text, infer};
use crate::error::{Result, StoreError};
use crate::id::DocKey;

mod nested;
mod variants;

use nested::{DocState, finish};

/// A document ready for the tantivy writer.
pub struct IndexDoc {
    /// The tantivy document, including the `_id`, `_key` and `_token` system fields.
    pub(crate) doc: TantivyDocument,
    /// Rough indexing cost in bytes, for the writer's memory-budget refresh trigger.
    pub(crate) approx_bytes: usize,
    /// The hidden documents of its `nested` elements, in the order they must be indexed:
    /// each before the element holding it, all before `doc` (see
    /// [`cameodb_schema::mapping::nested`]).
    pub(crate) children: Vec<TantivyDocument>,
}

impl IndexDoc {
    /// The tantivy document, for callers that index it themselves (benchmarks, tools).
    pub fn into_document(self) -> TantivyDocument {
        self.doc
    }

    /// Every tantivy document it indexes as, in indexing order: the nested elements' hidden
    /// documents, then the document itself. They must go to the writer as one batch
    /// (`IndexWriter::run`), which keeps them together and in order.
    pub fn into_documents(self) -> Vec<TantivyDocument> {
        let mut docs = self.children;
        docs.push(self.doc);
        docs
    }
}

/// Converts `source` (the document body) for indexing under `mapping`.
///
/// Returns the document and, when the document introduced new fields under dynamic mapping,
/// the extended mapping that must be persisted with it. Mapping violations are errors and
/// nothing is changed.
pub fn to_index_doc(
    mapping: &Mapping,
    key: &DocKey,
    source: &Map<String, Value>,
    analysis: &Analysis,
    fields: &Fields,
) -> Result<(IndexDoc, Option<Mapping>)> {
    // Fast path: the mapping already covers every field, so it is only borrowed.
    match Converter::new(Cow::Borrowed(mapping), false, analysis, fields).run(key, source) {
        Ok((doc, _)) => Ok((doc, None)),
        Err(Outcome::NeedsDynamic) => {
            match Converter::new(Cow::Owned(mapping.clone()), true, analysis, fields)
                .run(key, source)
            {
                Ok((doc, updated)) => Ok((doc, Some(updated))),
                Err(Outcome::Failed(err)) => Err(err),
                Err(Outcome::NeedsDynamic) => Err(SchemaError::InvalidMapping {
                    reason: "dynamic mapping did not converge".into(),
                }
                .into()),
            }
        }
        Err(Outcome::Failed(err)) => Err(err),
    }
}

enum Outcome {
    /// An unmapped field must be added: redo the conversion with a mutable mapping copy.
    NeedsDynamic,
    /// The document violates the mapping.
    Failed(StoreError),
}

impl From<StoreError> for Outcome {
    fn from(err: StoreError) -> Self {
        Outcome::Failed(err)
    }
}

impl From<cameodb_schema::SchemaError> for Outcome {
    fn from(err: cameodb_schema::SchemaError) -> Self {
        Outcome::Failed(err.into())
    }
}

struct Converter<'a> {
    /// The mapping; owned only on the dynamic pass.
    mapping: Cow<'a, Mapping>,
    /// Whether unmapped fields may be added (second pass) or abort the fast pass.
    may_extend: bool,
    /// The index's analysis settings, for keyword normalizers.
    analysis: &'a Analysis,
    /// Normalizers built for this document so far, by name.
    normalizers: BTreeMap<String, TextAnalyzer>,
    /// Schema field handles.
    fields: &'a Fields,
    /// The document being built (the root's, or the nested element's being read).
    current: DocState,
    /// The documents a nested element interrupted, outermost (the root's) first.
    outer: Vec<DocState>,
    /// Finished nested elements, in indexing order.
    children: Vec<TantivyDocument>,
    /// Above zero while a nested element is indexed again into its parent
    /// (`include_in_parent` / `include_in_root`): nested fields then read as objects.
    flattening: usize,
    /// Running byte estimate.
    bytes: usize,
}

fn mapper_error(path: &str, field_type: &str, reason: impl Into<String>) -> StoreError {
    SchemaError::MapperParsing {
        field: path.to_string(),
        field_type: field_type.to_string(),
        reason: reason.into(),
    }
    .into()
}

fn push(map: &mut BTreeMap<String, OwnedValue>, path: &str, value: OwnedValue) {
    match map.get_mut(path) {
        None => {
            map.insert(path.to_string(), value);
        }
        Some(OwnedValue::Array(items)) => items.push(value),
        Some(existing) => {
            let first = std::mem::replace(existing, OwnedValue::Null);
            *existing = OwnedValue::Array(vec![first, value]);
        }
    }
}

impl<'a> Converter<'a> {
    fn new(
        mapping: Cow<'a, Mapping>,
        may_extend: bool,
        analysis: &'a Analysis,
        fields: &'a Fields,
    ) -> Self {
        Converter {
            mapping,
            may_extend,
            analysis,
            normalizers: BTreeMap::new(),
            fields,
            current: DocState::default(),
            outer: Vec::new(),
            children: Vec::new(),
            flattening: 0,
            bytes: 0,
        }
    }

    fn run(
        mut self,
        key: &DocKey,
        source: &Map<String, Value>,
    ) -> Result<(IndexDoc, Mapping), Outcome> {
        self.object("", source, 0)?;
        self.constants();
        let encoded = key.encode();
        let state = std::mem::take(&mut self.current);
        let mut doc = finish(state, self.fields);
        doc.add_text(self.fields.id, key.id.as_str());
        doc.add_bytes(self.fields.key, &encoded);
        doc.add_u64(self.fields.token, key.token);
        // A nested element shares the key, so whatever deletes the document deletes it too.
        for child in &mut self.children {
            child.add_bytes(self.fields.key, &encoded);
            child.add_u64(self.fields.token, key.token);
        }
        let approx_bytes = self.bytes + key.id.as_str().len() + 64 * (1 + self.children.len());
        let indexed = IndexDoc {
            doc,
            approx_bytes,
            children: self.children,
        };
        Ok((indexed, self.mapping.into_owned()))
    }

    fn object(
        &mut self,
        prefix: &str,
        obj: &Map<String, Value>,
        depth: usize,
    ) -> Result<(), Outcome> {
        if depth > DEPTH_LIMIT {
            return Err(mapper_error(
                prefix,
                "object",
                format!("Limit of mapping depth [{DEPTH_LIMIT}] has been exceeded"),
            )
            .into());
        }
        for (name, value) in obj {
            if name.is_empty() || name.split('.').any(str::is_empty) {
                return Err(mapper_error(
                    &format!("{prefix}{name}"),
                    "object",
                    "field name cannot be empty or contain empty path segments",
                )
                .into());
            }
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            self.value(&path, value, depth)?;
        }
        Ok(())
    }

    fn value(&mut self, path: &str, value: &Value, depth: usize) -> Result<(), Outcome> {
        if self
            .mapping
            .get(path)
            .is_some_and(|f| f.variant == Some(Variant::GeoPoint))
        {
            // A point may be an object or an array itself: it is read whole.
            return Ok(self.geo_points(path, value)?);
        }
        if let Some(field) = self
            .mapping
            .get(path)
            .filter(|f| matches!(f.variant, Some(Variant::Flattened { .. })))
            .cloned()
        {
            return Ok(self.flattened(path, &field, value)?);
        }
        if let Some(field) = self
            .mapping
            .get(path)
            .filter(|f| matches!(f.variant, Some(Variant::Completion { .. })))
            .cloned()
        {
            return Ok(self.completion(path, &field, value)?);
        }
        match value {
            Value::Null => {
                // `null_value`: an explicit null is indexed as the mapped stand-in.
                if let Some(field) = self.mapping.get(path).cloned()
                    && let Some(stand_in) = &field.null_value
                {
                    self.emit(path, &field, stand_in)?;
                }
                Ok(())
            }
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| self.value(path, item, depth)),
            _ if self
                .mapping
                .get(path)
                .is_some_and(|f| matches!(f.variant, Some(Variant::Alias { .. }))) =>
            {
                Err(mapper_error(
                    path,
                    "alias",
                    format!("Cannot write to a field alias [{path}]."),
                )
                .into())
            }
            Value::Object(obj) => {
                if self.flattening == 0
                    && let Some(Variant::Nested {
                        include_in_parent,
                        include_in_root,
                    }) = self.mapping.get(path).and_then(|f| f.variant.clone())
                {
                    return self.nested_element(
                        path,
                        obj,
                        depth,
                        (include_in_parent, include_in_root),
                    );
                }
                match self.mapping.get(path).map(|f| f.field_type) {
                    Some(FieldType::Object) => {}
                    Some(other) => {
                        return Err(mapper_error(
                            path,
                            other.name(),
                            "tried to parse field as a value, but found an object",
                        )
                        .into());
                    }
                    None => {
                        if !self.introduce(path, FieldMapping::of(FieldType::Object))? {
                            return Ok(());
                        }
                    }
                }
                self.object(path, obj, depth + 1)
            }
            scalar => {
                let field = match self.mapping.get(path) {
                    Some(field) => field.clone(),
                    None => {
                        let inferred = infer(scalar);
                        if !self.introduce(path, inferred)? {
                            return Ok(());
                        }
                        match self.mapping.get(path) {
                            Some(field) => field.clone(),
                            None => return Ok(()),
                        }
                    }
                };
                if field.field_type == FieldType::Object {
                    return Err(mapper_error(
                        path,
                        "object",
                        "object mapping tried to parse field as object, but found a concrete value",
                    )
                    .into());
                }
                let field = self.settle_constant(path, field, scalar)?;
                self.emit(path, &field, scalar)?;
                self.copy(path, &field, scalar)
            }
        }
    }

    /// `copy_to`: indexes `value` again under each target, as if the document held it there
    /// (copies are not copied on: Elasticsearch does not chain them).
    fn copy(&mut self, path: &str, field: &FieldMapping, value: &Value) -> Result<(), Outcome> {
        for target in &field.copy_to {
            let mapped = match self.mapping.get(target) {
                Some(mapped) => mapped.clone(),
                None => {
                    if !self.introduce(target, infer(value))? {
                        continue;
                    }
                    match self.mapping.get(target) {
                        Some(mapped) => mapped.clone(),
                        None => continue,
                    }
                }
            };
            if mapped.field_type == FieldType::Object {
                return Err(mapper_error(
                    target,
                    "object",
                    format!("Cannot copy field [{path}] to an object field [{target}]"),
                )
                .into());
            }
            self.emit(target, &mapped, value)?;
        }
        Ok(())
    }

    /// A `constant_keyword` without a value takes the first one a document gives it (a
    /// mapping change, so made on the pass that may change the mapping).
    fn settle_constant(
        &mut self,
        path: &str,
        field: FieldMapping,
        value: &Value,
    ) -> Result<FieldMapping, Outcome> {
        if field.variant != Some(Variant::ConstantKeyword { value: None }) {
            return Ok(field);
        }
        if !self.may_extend {
            return Err(Outcome::NeedsDynamic);
        }
        let text = as_text(value)
            .ok_or_else(|| mapper_error(path, field.type_name(), "expected a string"))?;
        let mut settled = field;
        settled.variant = Some(Variant::ConstantKeyword { value: Some(text) });
        if let Some(mapped) = self.mapping.to_mut().properties.get_mut(path) {
            *mapped = settled.clone();
        }
        Ok(settled)
    }

    /// Documents without a `constant_keyword` field hold its value all the same, as
    /// Elasticsearch answers queries and aggregations on them.
    fn constants(&mut self) {
        let missing: Vec<(String, String)> = self
            .mapping
            .properties
            .iter()
            .filter(|(path, _)| !self.current.present.contains(path.as_str()))
            .filter_map(|(path, field)| match &field.variant {
                Some(Variant::ConstantKeyword { value: Some(value) }) => {
                    Some((path.clone(), value.clone()))
                }
                _ => None,
            })
            .collect();
        for (path, value) in missing {
            push(&mut self.current.exact, &path, OwnedValue::Str(value));
            self.mark_present(&path);
        }
    }

    /// `text` through the keyword's normalizer, when it has one.
    fn normalized(&mut self, field: &FieldMapping, text: String) -> String {
        let Some(name) = &field.normalizer else {
            return text;
        };
        if !self.normalizers.contains_key(name)
            && let Some(built) = self.analysis.normalizer(name)
        {
            self.normalizers.insert(name.clone(), built);
        }
        match self.normalizers.get_mut(name) {
            Some(normalizer) => normalize(normalizer, &text),
            None => text,
        }
    }

    /// Handles a field the mapping lacks. Returns whether it should be indexed.
    fn introduce(&mut self, path: &str, field: FieldMapping) -> Result<bool, Outcome> {
        let parent = path.rsplit_once('.').map_or("", |(head, _)| head);
        match self.mapping.dynamic_for(parent) {
            Dynamic::False => Ok(false),
            Dynamic::Strict => Err(SchemaError::StrictDynamic {
                field: path
                    .rsplit_once('.')
                    .map_or(path, |(_, leaf)| leaf)
                    .to_string(),
                parent: if parent.is_empty() {
                    "_doc".to_string()
                } else {
                    parent.to_string()
                },
            }
            .into()),
            Dynamic::True if !self.may_extend => Err(Outcome::NeedsDynamic),
            Dynamic::True => {
                self.mapping.to_mut().add_field(path, field)?;
                Ok(true)
            }
        }
    }

    fn mark_present(&mut self, path: &str) {
        let mut current = path;
        while self.current.present.insert(current.to_string()) {
            match current.rsplit_once('.') {
                Some((parent, _)) => current = parent,
                None => break,
            }
        }
    }

    fn emit(&mut self, path: &str, field: &FieldMapping, value: &Value) -> Result<()> {
        let type_name = field.type_name();
        match field.field_type {
            FieldType::Text => {
                let text = as_text(value)
                    .ok_or_else(|| mapper_error(path, type_name, "expected a string"))?;
                if field.index == Some(false) {
                    // Kept in `_source` only; its multi-fields are still indexed.
                    for (name, sub) in &field.fields {
                        self.emit(&format!("{path}.{name}"), sub, value)?;
                    }
                    return Ok(());
                }
                self.bytes += text.len();
                match self.fields.text_field(field.slot) {
                    Some(slot) => self.current.doc.add_text(slot, &text),
                    None => push(&mut self.current.text, path, OwnedValue::Str(text)),
                }
            }
            FieldType::Keyword => {
                let text = as_text(value)
                    .ok_or_else(|| mapper_error(path, type_name, "expected a string"))?;
                if field
                    .ignore_above
                    .is_some_and(|limit| text.chars().count() > limit as usize)
                {
                    return Ok(());
                }
                let text = match &field.variant {
                    Some(Variant::Ip) => {
                        let address = text.trim().parse().map_err(|_| {
                            mapper_error(
                                path,
                                type_name,
                                format!("'{text}' is not an IP string literal."),
                            )
                        })?;
                        encode_ip(address)
                    }
                    Some(Variant::ConstantKeyword {
                        value: Some(constant),
                    }) if *constant != text => {
                        return Err(mapper_error(
                            path,
                            type_name,
                            format!(
                                "[constant_keyword] field [{path}] only accepts values that are equal to the value defined in the mappings [{constant}], but got [{text}]"
                            ),
                        ));
                    }
                    _ => self.normalized(field, text),
                };
                if text.len() > MAX_KEYWORD_BYTES {
                    return Err(mapper_error(
                        path,
                        type_name,
                        format!(
                            "Document contains at least one immense term in field=\"{path}\" (whose UTF8 encoding is longer than the max length {MAX_KEYWORD_BYTES})"
                        ),
                    ));
                }
                self.bytes += text.len();
                push(&mut self.current.exact, path, OwnedValue::Str(text));
            }
            FieldType::Long if field.variant == Some(Variant::UnsignedLong) => {
                if value.as_u64().is_some_and(|n| n > i64::MAX as u64) {
                    return Err(mapper_error(
                        path,
                        type_name,
                        format!(
                            "Value [{value}] is out of range for [unsigned_long]: CameoDB holds unsigned longs up to [{}]",
                            i64::MAX
                        ),
                    ));
                }
                self.integer(path, type_name, value, 0, i64::MAX)?
            }
            FieldType::Long => self.integer(path, type_name, value, i64::MIN, i64::MAX)?,
            FieldType::Integer => {
                self.integer(path, type_name, value, i32::MIN.into(), i32::MAX.into())?
            }
            FieldType::Short => {
                self.integer(path, type_name, value, i16::MIN.into(), i16::MAX.into())?
            }
            FieldType::Byte => {
                self.integer(path, type_name, value, i8::MIN.into(), i8::MAX.into())?
            }
            FieldType::Double | FieldType::Float => {
                let mut number = as_f64(value).ok_or_else(|| {
                    mapper_error(
                        path,
                        type_name,
                        format!("cannot parse [{value}] as a number"),
                    )
                })?;
                if field.field_type == FieldType::Float {
                    number = f64::from(number as f32);
                }
                if let Some(variant) = &field.variant {
                    number = variant.round(number);
                }
                if !number.is_finite() {
                    return Err(mapper_error(
                        path,
                        type_name,
                        format!("[{type_name}] supports only finite values"),
                    ));
                }
                self.bytes += 8;
                push(&mut self.current.exact, path, OwnedValue::F64(number));
            }
            FieldType::Boolean => {
                let flag = match value {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" => true,
                    Value::String(s) if s == "false" || s.is_empty() => false,
                    other => {
                        return Err(mapper_error(
                            path,
                            type_name,
                            format!(
                                "Failed to parse value [{other}] as only [true] or [false] are allowed."
                            ),
                        ));
                    }
                };
                self.bytes += 1;
                push(&mut self.current.exact, path, OwnedValue::Bool(flag));
            }
            FieldType::Date => {
                let millis =
                    date::parse_value(value, field.format.as_deref()).ok_or_else(|| {
                        mapper_error(
                            path,
                            type_name,
                            format!(
                                "failed to parse date field [{value}] with format [{}]",
                                field.format.as_deref().unwrap_or(date::DEFAULT_FORMATS)
                            ),
                        )
                    })?;
                let datetime = date::index_datetime(millis).ok_or_else(|| {
                    mapper_error(path, type_name, date::out_of_range(&value.to_string()))
                })?;
                self.bytes += 8;
                push(&mut self.current.exact, path, OwnedValue::Date(datetime));
            }
            FieldType::Object => {
                return Err(mapper_error(path, type_name, "found a concrete value"));
            }
        }
        self.mark_present(path);
        for (name, sub) in &field.fields {
            self.emit(&format!("{path}.{name}"), sub, value)?;
        }
        Ok(())
    }

    fn integer(
        &mut self,
        path: &str,
        type_name: &str,
        value: &Value,
        min: i64,
        max: i64,
    ) -> Result<()> {
        let number = as_i64(value).ok_or_else(|| {
            mapper_error(
                path,
                type_name,
                format!("cannot parse [{value}] as an integer"),
            )
        })?;
        let number = number.filter(|n| (min..=max).contains(n)).ok_or_else(|| {
            mapper_error(
                path,
                type_name,
                format!("Value [{value}] is out of range for [{type_name}]"),
            )
        })?;
        self.bytes += 8;
        push(&mut self.current.exact, path, OwnedValue::I64(number));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
