//! `filter_path`: the response filter every Elasticsearch API takes
//! (`filter_path=hits.hits._id,-took`). Pure: a parsed filter applied to a JSON value.
//!
//! Each comma-separated entry is a dotted path whose segments may hold `*` (any run of
//! characters within one key) or be `**` (any number of keys, none included). Arrays are
//! transparent: a path applies to every element. Entries starting with `-` exclude. With only
//! exclusions, everything else is kept; with both, the inclusions are taken first. Objects and
//! arrays left empty by an inclusion are dropped, as Elasticsearch drops them.

use serde_json::{Map, Value};

/// A parsed `filter_path`.
#[derive(Debug, Default, PartialEq)]
pub struct FilterPath {
    /// Paths to keep, each split into its segments; none = keep everything.
    include: Vec<Vec<String>>,
    /// Paths to drop, applied after the inclusions.
    exclude: Vec<Vec<String>>,
}

impl FilterPath {
    /// Parses the parameter's value; `None` when it filters nothing (empty).
    pub fn parse(text: &str) -> Option<FilterPath> {
        let mut filter = FilterPath::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (list, path) = match entry.strip_prefix('-') {
                Some(rest) => (&mut filter.exclude, rest),
                None => (&mut filter.include, entry),
            };
            let segments: Vec<String> = path
                .split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if !segments.is_empty() {
                list.push(segments);
            }
        }
        (!filter.include.is_empty() || !filter.exclude.is_empty()).then_some(filter)
    }

    /// `value` filtered: `{}` when an inclusion matched nothing at the top.
    pub fn apply(&self, value: Value) -> Value {
        let included = if self.include.is_empty() {
            Some(value)
        } else {
            let patterns: Vec<&[String]> = self.include.iter().map(Vec::as_slice).collect();
            include(value, &patterns)
        };
        let kept = included.unwrap_or_else(|| Value::Object(Map::new()));
        if self.exclude.is_empty() {
            return kept;
        }
        let patterns: Vec<&[String]> = self.exclude.iter().map(Vec::as_slice).collect();
        exclude(kept, &patterns)
    }
}

/// Does one key match one segment pattern (`*` = any run of characters)?
fn segment_matches(pattern: &str, key: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == key;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return true,
    };
    let Some(mut remaining) = key.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = remaining.get(at + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// What remains of each pattern after matching `key` against its head; an empty remainder
/// means the key's whole value matched.
fn advance<'a>(patterns: &[&'a [String]], key: &str) -> Vec<&'a [String]> {
    let mut next = Vec::new();
    for pattern in patterns {
        step(pattern, key, &mut next);
    }
    next
}

fn step<'a>(pattern: &'a [String], key: &str, next: &mut Vec<&'a [String]>) {
    let Some((head, tail)) = pattern.split_first() else {
        return;
    };
    if head == "**" {
        // `**` takes this key and stays, or takes none and lets the rest match the key.
        next.push(pattern);
        if tail.is_empty() {
            next.push(tail);
        } else {
            step(tail, key, next);
        }
    } else if segment_matches(head, key) {
        next.push(tail);
    }
}

fn include(value: Value, patterns: &[&[String]]) -> Option<Value> {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let next = advance(patterns, &key);
                if next.is_empty() {
                    continue;
                }
                if next.iter().any(|p| p.is_empty()) {
                    out.insert(key, child);
                } else if let Some(kept) = include(child, &next) {
                    out.insert(key, kept);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .into_iter()
                .filter_map(|item| include(item, patterns))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        // A scalar under a path that goes on deeper holds nothing the path names.
        _ => None,
    }
}

fn exclude(value: Value, patterns: &[&[String]]) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let next = advance(patterns, &key);
                if next.iter().any(|p| p.is_empty()) {
                    continue;
                }
                let child = if next.is_empty() {
                    child
                } else {
                    exclude(child, &next)
                };
                out.insert(key, child);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| exclude(item, patterns))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn filtered(filter: &str, value: Value) -> Value {
        FilterPath::parse(filter).map_or(value.clone(), |f| f.apply(value))
    }

    fn search_answer() -> Value {
        json!({"took": 3, "timed_out": false,
            "hits": {"total": {"value": 2, "relation": "eq"}, "hits": [
                {"_id": "1", "_score": 1.0, "_source": {"title": "a", "tags": ["x"]}},
                {"_id": "2", "_score": 0.5, "_source": {"title": "b"}}]}})
    }

    #[test]
    fn inclusions_keep_the_named_paths_through_arrays() {
        assert_eq!(
            filtered("hits.hits._id,took", search_answer()),
            json!({"took": 3, "hits": {"hits": [{"_id": "1"}, {"_id": "2"}]}})
        );
        assert_eq!(
            filtered("hits.total.value", search_answer()),
            json!({"hits": {"total": {"value": 2}}})
        );
    }

    #[test]
    fn wildcards_match_within_a_key_and_double_stars_across_keys() {
        assert_eq!(
            filtered("hits.hits._s*", search_answer()),
            json!({"hits": {"hits": [
                {"_score": 1.0, "_source": {"title": "a", "tags": ["x"]}},
                {"_score": 0.5, "_source": {"title": "b"}}]}})
        );
        assert_eq!(
            filtered("**.title", search_answer()),
            json!({"hits": {"hits": [{"_source": {"title": "a"}}, {"_source": {"title": "b"}}]}})
        );
        assert_eq!(
            filtered("hits.**.tags", search_answer()),
            json!({"hits": {"hits": [{"_source": {"tags": ["x"]}}]}})
        );
    }

    #[test]
    fn exclusions_drop_paths_and_combine_with_inclusions() {
        assert_eq!(
            filtered("-hits,-timed_out", search_answer()),
            json!({"took": 3})
        );
        assert_eq!(
            filtered("hits.hits,-hits.hits._source", search_answer()),
            json!({"hits": {"hits": [{"_id": "1", "_score": 1.0}, {"_id": "2", "_score": 0.5}]}})
        );
    }

    #[test]
    fn nothing_matched_is_an_empty_object() {
        assert_eq!(filtered("nope", search_answer()), json!({}));
        assert_eq!(FilterPath::parse(" , "), None);
    }

    #[test]
    fn segment_patterns() {
        assert!(segment_matches("*", "anything"));
        assert!(segment_matches("_s*e", "_score"));
        assert!(segment_matches("a*b*c", "aXbYc"));
        assert!(!segment_matches("a*b*c", "aXcYb"));
        assert!(!segment_matches("ab*ba", "aba"));
        assert!(segment_matches("exact", "exact"));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![Just(Value::Null), any::<i32>().prop_map(Value::from)];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[abc]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Excluding a path and including it split an object's top-level keys exactly.
        #[test]
        fn including_and_excluding_a_key_partition_the_object(
            map in prop::collection::btree_map("[abc]", json_value(), 0..4),
            key in "[abc]",
        ) {
            let value = Value::Object(map.clone().into_iter().collect());
            let kept = filtered(&key, value.clone());
            let dropped = filtered(&format!("-{key}"), value);
            let mut together = dropped.as_object().cloned().unwrap_or_default();
            together.extend(kept.as_object().cloned().unwrap_or_default());
            prop_assert_eq!(together, map.into_iter().collect::<Map<String, Value>>());
        }

        /// `**` keeps everything; filtering twice with one filter changes nothing more.
        #[test]
        fn filters_are_idempotent(value in json_value(), filter in "[-]?[abc*]{1,2}(\\.[abc*]{1,2}){0,2}") {
            let Some(parsed) = FilterPath::parse(&filter) else { return Ok(()) };
            let once = parsed.apply(value);
            prop_assert_eq!(parsed.apply(once.clone()), once);
        }
    }
}
