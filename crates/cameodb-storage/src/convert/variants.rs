//! The field types whose values are not one scalar each: `completion` (inputs with weights),
//! `flattened` (every leaf of an object) and `geo_point` (a point in any of its forms, or a
//! list of them), each turned into the values the `_exact` field holds.

use cameodb_schema::mapping::{FieldMapping, MAX_KEYWORD_BYTES, Variant, completion, geo};
use serde_json::Value;
use tantivy::schema::OwnedValue;

use super::{Converter, mapper_error, push};
use crate::error::Result;

impl Converter<'_> {
    /// A `completion` value: each input in its normalized form under `path`, and the largest
    /// weight under `<path>._weight` (suggestions read the candidates in that order).
    pub(super) fn completion(
        &mut self,
        path: &str,
        field: &FieldMapping,
        value: &Value,
    ) -> Result<()> {
        let Some(Variant::Completion {
            max_input_length,
            preserve_separators,
        }) = field.variant
        else {
            return Ok(());
        };
        let inputs =
            completion::inputs(value).map_err(|reason| mapper_error(path, "completion", reason))?;
        let name = field
            .analyzer
            .as_deref()
            .unwrap_or(completion::DEFAULT_ANALYZER);
        let mut analyzer = self
            .analysis
            .analyzer(name)
            .unwrap_or_else(|| cameodb_schema::analysis::analyzer(completion::DEFAULT_ANALYZER));
        let mut best = None;
        for input in inputs {
            let text = completion::normalized(
                &mut analyzer,
                &input.text,
                preserve_separators,
                max_input_length as usize,
            );
            if text.is_empty() {
                continue;
            }
            self.bytes += text.len();
            push(&mut self.current.exact, path, OwnedValue::Str(text));
            best = best.max(Some(input.weight));
        }
        if let Some(weight) = best {
            push(
                &mut self.current.exact,
                &format!("{path}.{}", completion::WEIGHT_KEY),
                OwnedValue::I64(weight),
            );
            self.mark_present(path);
        }
        Ok(())
    }

    /// A `flattened` value: every leaf as a keyword under `path` and under its key path.
    pub(super) fn flattened(
        &mut self,
        path: &str,
        field: &FieldMapping,
        value: &Value,
    ) -> Result<()> {
        let Some(Variant::Flattened { depth_limit }) = field.variant else {
            return Ok(());
        };
        let mut leaves = Vec::new();
        flattened_leaves(value, String::new(), 0, depth_limit, &mut leaves)
            .map_err(|reason| mapper_error(path, "flattened", reason))?;
        for (key, text) in leaves {
            if field
                .ignore_above
                .is_some_and(|limit| text.chars().count() > limit as usize)
            {
                continue;
            }
            if text.len() > MAX_KEYWORD_BYTES {
                return Err(mapper_error(
                    path,
                    "flattened",
                    format!("a value of [{path}] is longer than [{MAX_KEYWORD_BYTES}] bytes"),
                ));
            }
            self.bytes += 2 * text.len();
            push(&mut self.current.exact, path, OwnedValue::Str(text.clone()));
            self.mark_present(path);
            if !key.is_empty() {
                let keyed = format!("{path}.{key}");
                push(&mut self.current.exact, &keyed, OwnedValue::Str(text));
                self.mark_present(&keyed);
            }
        }
        Ok(())
    }

    /// A `geo_point` value: one point in any form, or a list of them.
    pub(super) fn geo_points(&mut self, path: &str, value: &Value) -> Result<()> {
        let points: Vec<&Value> = match value {
            Value::Null => Vec::new(),
            Value::Array(items) if !geo::is_coordinate_array(value) => items.iter().collect(),
            one => vec![one],
        };
        for point in points {
            match geo::parse_point(point) {
                Ok(point) => {
                    self.bytes += 8;
                    push(
                        &mut self.current.exact,
                        path,
                        OwnedValue::I64(point.encode()),
                    );
                    self.mark_present(path);
                }
                Err(reason) => return Err(mapper_error(path, "geo_point", reason)),
            }
        }
        Ok(())
    }
}

/// The leaves of a `flattened` value: (key path, value as text), objects at most `limit`
/// deep; nulls hold nothing.
fn flattened_leaves(
    value: &Value,
    key: String,
    depth: u32,
    limit: u32,
    out: &mut Vec<(String, String)>,
) -> std::result::Result<(), String> {
    match value {
        Value::Null => Ok(()),
        Value::Object(map) => {
            if depth >= limit {
                return Err(format!(
                    "the provided [flattened] field has more than the allowed depth of [{limit}]"
                ));
            }
            for (name, child) in map {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                flattened_leaves(child, path, depth + 1, limit, out)?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| flattened_leaves(item, key.clone(), depth, limit, out)),
        Value::String(text) => {
            out.push((key, text.clone()));
            Ok(())
        }
        scalar => {
            out.push((key, scalar.to_string()));
            Ok(())
        }
    }
}
