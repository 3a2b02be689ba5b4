//! `_source` filtering: on/off, includes and excludes with `*` wildcards on dotted paths.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::SearchError;
use crate::wildcard_match;

/// Which parts of `_source` a response shows.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SourceFilter {
    /// `_source: false` turns the source off entirely.
    pub disabled: bool,
    /// Paths (with `*`) to keep; empty keeps everything.
    pub includes: Vec<String>,
    /// Paths (with `*`) to drop.
    pub excludes: Vec<String>,
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn strings(value: &Value) -> Result<Vec<String>, SearchError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| SearchError::parse("[_source] entries must be strings"))
            })
            .collect(),
        _ => Err(SearchError::parse(
            "[_source] must be a boolean, a string, an array or an object",
        )),
    }
}

impl SourceFilter {
    /// From the `_source`, `_source_includes` and `_source_excludes` query parameters.
    pub fn from_params(params: &HashMap<String, String>) -> SourceFilter {
        let mut filter = SourceFilter::default();
        match params.get("_source").map(String::as_str) {
            Some("false") => filter.disabled = true,
            Some("true") | Some("") | None => {}
            Some(fields) => filter.includes = list(fields),
        }
        if let Some(v) = params.get("_source_includes") {
            filter.includes = list(v);
        }
        if let Some(v) = params.get("_source_excludes") {
            filter.excludes = list(v);
        }
        filter
    }

    /// From a `_source` value in a request body, on top of `self` (from the parameters).
    pub fn with_body(mut self, value: Option<&Value>) -> Result<SourceFilter, SearchError> {
        match value {
            None => {}
            Some(Value::Bool(enabled)) => self.disabled = !enabled,
            Some(Value::Object(spec)) => {
                for (key, v) in spec {
                    match key.as_str() {
                        "includes" | "include" => self.includes = strings(v)?,
                        "excludes" | "exclude" => self.excludes = strings(v)?,
                        // No field type holds vectors here, so there are none to leave out
                        // (the 9.x clients send it on every search).
                        "exclude_vectors" if v.is_boolean() => {}
                        other => {
                            return Err(SearchError::parse(format!(
                                "unknown key [{other}] in [_source]"
                            )));
                        }
                    }
                }
            }
            Some(other) => self.includes = strings(other)?,
        }
        Ok(self)
    }

    /// The filtered source, or `None` when disabled.
    pub fn apply(&self, source: Value) -> Option<Value> {
        if self.disabled {
            return None;
        }
        if self.includes.is_empty() && self.excludes.is_empty() {
            return Some(source);
        }
        match source {
            Value::Object(map) => Some(Value::Object(self.filter_map("", map))),
            other => Some(other),
        }
    }

    fn keep(&self, path: &str, is_object: bool) -> (bool, bool) {
        let excluded = self.excludes.iter().any(|p| wildcard_match(p, path));
        let included = self.includes.is_empty()
            || self
                .includes
                .iter()
                .any(|p| wildcard_match(p, path) || wildcard_match(&format!("{p}.*"), path));
        // An object is descended into when some include might match below it.
        let descend = is_object
            && !self.includes.is_empty()
            && self
                .includes
                .iter()
                .any(|p| p.starts_with(&format!("{path}.")) || p.starts_with('*'));
        (included && !excluded, descend && !excluded)
    }

    fn filter_map(&self, prefix: &str, map: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let (keep, descend) = self.keep(&path, value.is_object());
            if keep {
                match value {
                    Value::Object(inner) if !self.excludes.is_empty() => {
                        out.insert(key, Value::Object(self.filter_map_excludes(&path, inner)));
                    }
                    other => {
                        out.insert(key, other);
                    }
                }
            } else if descend && let Value::Object(inner) = value {
                let filtered = self.filter_map(&path, inner);
                if !filtered.is_empty() {
                    out.insert(key, Value::Object(filtered));
                }
            }
        }
        out
    }

    fn filter_map_excludes(&self, prefix: &str, map: Map<String, Value>) -> Map<String, Value> {
        map.into_iter()
            .filter_map(|(key, value)| {
                let path = format!("{prefix}.{key}");
                if self.excludes.iter().any(|p| wildcard_match(p, &path)) {
                    return None;
                }
                Some(match value {
                    Value::Object(inner) => {
                        (key, Value::Object(self.filter_map_excludes(&path, inner)))
                    }
                    other => (key, other),
                })
            })
            .collect()
    }
}

/// The values at a dotted path of a source, descending through arrays of objects.
pub fn values_at<'v>(source: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut nodes = vec![source];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for node in nodes {
            match node {
                Value::Object(map) => next.extend(map.get(segment)),
                Value::Array(items) => next.extend(items.iter().filter_map(|i| i.get(segment))),
                _ => {}
            }
        }
        nodes = next;
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn includes_and_excludes() {
        let doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        let f = SourceFilter {
            includes: vec!["b.c".into(), "a".into()],
            ..Default::default()
        };
        assert_eq!(f.apply(doc.clone()), Some(json!({"a": 1, "b": {"c": 2}})));
        let f = SourceFilter {
            excludes: vec!["b.d".into(), "e".into()],
            ..Default::default()
        };
        assert_eq!(f.apply(doc.clone()), Some(json!({"a": 1, "b": {"c": 2}})));
        let f = SourceFilter {
            includes: vec!["b".into()],
            ..Default::default()
        };
        assert_eq!(f.apply(doc.clone()), Some(json!({"b": {"c": 2, "d": 3}})));
        let f = SourceFilter {
            disabled: true,
            ..Default::default()
        };
        assert_eq!(f.apply(doc), None);
    }
}
