//! `nested` fields: each element read into a document of its own (the hidden documents a
//! nested query joins to their parent), and again into its parent or root document when the
//! mapping asks (`include_in_parent`, `include_in_root`).

use std::collections::{BTreeMap, BTreeSet};

use cameodb_schema::fields::Fields;
use cameodb_schema::mapping::nested::{NESTED_MARK, NESTED_OBJECTS_LIMIT, path_mark};
use serde_json::{Map, Value};
use tantivy::TantivyDocument;
use tantivy::schema::OwnedValue;

use super::{Converter, Outcome, mapper_error};

/// The fields of the document being built: the root document's, or a nested element's
/// while it is read.
#[derive(Default)]
pub(super) struct DocState {
    /// The tantivy document; slot text goes straight in.
    pub(super) doc: TantivyDocument,
    /// Exact values by dotted path, added as one JSON object at the end.
    pub(super) exact: BTreeMap<String, OwnedValue>,
    /// Overflow text values by dotted path.
    pub(super) text: BTreeMap<String, OwnedValue>,
    /// Paths (and their parents) that have a value, for `exists`.
    pub(super) present: BTreeSet<String>,
}

/// The tantivy document of a finished [`DocState`] (without the key fields).
pub(super) fn finish(state: DocState, fields: &Fields) -> TantivyDocument {
    let mut doc = state.doc;
    for path in &state.present {
        doc.add_text(fields.field_names, path);
    }
    if !state.exact.is_empty() {
        doc.add_object(fields.exact, state.exact);
    }
    if !state.text.is_empty() {
        doc.add_object(fields.text, state.text);
    }
    doc
}

impl Converter<'_> {
    /// Indexes one element of the `nested` field at `path` as its own document, and again in
    /// its parent or root document when the mapping asks.
    pub(super) fn nested_element(
        &mut self,
        path: &str,
        obj: &Map<String, Value>,
        depth: usize,
        variant: (bool, bool),
    ) -> Result<(), Outcome> {
        if self.children.len() >= NESTED_OBJECTS_LIMIT {
            return Err(mapper_error(
                path,
                "nested",
                format!(
                    "The number of nested documents has exceeded the allowed limit of [{NESTED_OBJECTS_LIMIT}]. This limit can be set by changing the [index.mapping.nested_objects.limit] index level setting."
                ),
            )
            .into());
        }
        let held = std::mem::take(&mut self.current);
        self.outer.push(held);
        let read = self.object(path, obj, depth + 1);
        let element = std::mem::take(&mut self.current);
        if let Some(held) = self.outer.pop() {
            self.current = held;
        }
        read?;
        let mut child = finish(element, self.fields);
        child.add_text(self.fields.field_names, NESTED_MARK);
        child.add_text(self.fields.field_names, path_mark(path));
        self.children.push(child);
        let (in_parent, in_root) = variant;
        if in_root && !self.outer.is_empty() {
            // The root document is the outermost one held while this element's parent is read.
            std::mem::swap(&mut self.current, &mut self.outer[0]);
            let read = self.flattened_object(path, obj, depth);
            std::mem::swap(&mut self.current, &mut self.outer[0]);
            read?;
        }
        if in_parent || (in_root && self.outer.is_empty()) {
            self.flattened_object(path, obj, depth)?;
        }
        Ok(())
    }

    /// Reads the element into the document being built, nested fields in it as objects.
    fn flattened_object(
        &mut self,
        path: &str,
        obj: &Map<String, Value>,
        depth: usize,
    ) -> Result<(), Outcome> {
        self.flattening += 1;
        let read = self.object(path, obj, depth + 1);
        self.flattening -= 1;
        read
    }
}
