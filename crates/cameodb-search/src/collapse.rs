//! Field collapsing (`collapse: {field}`): one hit per value of a keyword or numeric field, the
//! best of its group in the search's order.
//!
//! The collapse field is ranked as a last sort key, so every ranked hit carries its group.
//! Walking hits in rank order, a group's first hit is its best; so once a ranked prefix holds
//! `from + size` groups, those are exactly the top groups, and the prefix is widened until it
//! does or every match is ranked. Nodes answer their own top groups; the coordinator keeps
//! each group's first hit again (a group's best overall is the best of the nodes' bests).

use std::collections::HashSet;

use cameodb_schema::mapping::{FieldType, Mapping, Variant};
use serde_json::Value;
use tantivy::DocAddress;

use crate::error::SearchError;
use crate::sorting::{RankKey, SortValue};

/// Hits ranked first, per group wanted, before the prefix is widened.
const FIRST_PREFIX_PER_GROUP: usize = 4;

/// The collapse field of a `collapse` request body.
pub fn parse(value: &Value) -> Result<String, SearchError> {
    let body = value
        .as_object()
        .ok_or_else(|| SearchError::parse("[collapse] must be an object"))?;
    for key in body.keys() {
        match key.as_str() {
            "field" | "max_concurrent_group_searches" => {}
            "inner_hits" => {
                return Err(SearchError::parse(
                    "[inner_hits] of [collapse] is not supported",
                ));
            }
            other => {
                return Err(SearchError::parse(format!(
                    "[collapse] unknown field [{other}]"
                )));
            }
        }
    }
    body.get("field")
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| SearchError::parse("[collapse] requires [field]"))
}

/// Refuses a collapse field that cannot group: it must be a keyword, numeric or date field.
pub(crate) fn check_field(field: &str, mapping: &Mapping) -> Result<(), SearchError> {
    match mapping
        .resolve(field)
        .map(|(_, f)| (f.field_type, f.variant.clone()))
    {
        None => Err(SearchError::illegal_argument(format!(
            "no mapping found for `{field}` in order to collapse on"
        ))),
        Some((_, Some(Variant::Ip))) | Some((FieldType::Text | FieldType::Object, _)) => {
            Err(SearchError::illegal_argument(format!(
                "collapse field [{field}] must be of type keyword or a numeric type"
            )))
        }
        Some(_) => Ok(()),
    }
}

/// A hashable form of a group's value.
fn group_of(key: &RankKey) -> String {
    match key.values.last() {
        Some(SortValue::Text(text)) => format!("t{text}"),
        Some(SortValue::Number(n)) => format!("n{}", n.to_bits()),
        _ => String::from("-"),
    }
}

/// The top `window` groups' best hits, from `rank(limit)` (the total and the top `limit`
/// hits, the collapse field last in each key).
pub(crate) fn top_groups(
    window: usize,
    mut rank: impl FnMut(usize) -> Result<(usize, Vec<(RankKey, DocAddress)>), SearchError>,
) -> Result<(usize, Vec<(RankKey, DocAddress)>), SearchError> {
    let mut limit = window.saturating_mul(FIRST_PREFIX_PER_GROUP).max(16);
    loop {
        let (total, ranked) = rank(limit)?;
        let exhausted = ranked.len() < limit;
        let mut seen = HashSet::new();
        let best: Vec<(RankKey, DocAddress)> = ranked
            .into_iter()
            .filter(|(key, _)| seen.insert(group_of(key)))
            .take(window)
            .collect();
        if best.len() >= window || exhausted || limit >= total {
            return Ok((total, best));
        }
        limit = limit
            .saturating_mul(FIRST_PREFIX_PER_GROUP)
            .min(total.max(1));
    }
}

/// Keeps the first hit of each group (hits in rank order).
pub(crate) fn first_of_each<T>(hits: Vec<T>, group: impl Fn(&T) -> String) -> Vec<T> {
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|hit| seen.insert(group(hit)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_one_field() {
        assert_eq!(
            parse(&serde_json::json!({"field": "user"})).unwrap(),
            "user"
        );
        assert!(parse(&serde_json::json!({"field": "user", "inner_hits": {}})).is_err());
        assert!(parse(&serde_json::json!({})).is_err());
        assert!(parse(&serde_json::json!("user")).is_err());
    }

    #[test]
    fn first_of_each_group_keeps_order() {
        let hits = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let kept = first_of_each(hits, |(g, _)| g.to_string());
        assert_eq!(kept, vec![("a", 1), ("b", 2), ("c", 4)]);
    }
}
