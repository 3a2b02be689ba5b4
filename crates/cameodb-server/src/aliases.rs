//! Aliases, pure: what one alias of an index is, the changes `_aliases` and `_alias` make, and
//! how an index expression (`logs-*,-logs-2,current`) resolves against the indexes and their
//! aliases. No I/O: the catalog holds the aliases (in each index's metadata, which the cluster
//! replicates like settings) and calls these.

use std::collections::BTreeMap;

use cameodb_search::wildcard_match;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One alias of one index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasMeta {
    /// `is_write_index`: the index writes through the alias go to when it names several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_write_index: Option<bool>,
    /// `is_hidden`: left out of wildcard expressions that do not ask for hidden aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_hidden: Option<bool>,
}

impl AliasMeta {
    /// Parses an alias body (`{"is_write_index": true}`). `filter` and routing are refused:
    /// ignoring them would widen what a search through the alias sees, or move writes.
    pub fn parse(alias: &str, body: &Map<String, Value>) -> Result<AliasMeta, ApiError> {
        let mut meta = AliasMeta::default();
        for (key, value) in body {
            match key.as_str() {
                "is_write_index" => meta.is_write_index = Some(flag(alias, key, value)?),
                "is_hidden" => meta.is_hidden = Some(flag(alias, key, value)?),
                "filter" | "routing" | "index_routing" | "search_routing" => {
                    return Err(ApiError::illegal_argument(format!(
                        "[{key}] of alias [{alias}] is not supported: CameoDB aliases name indexes without a filter or routing"
                    )));
                }
                "must_exist" | "index" | "indices" | "alias" | "aliases" => {}
                other => {
                    return Err(ApiError::parse(format!("[alias] unknown field [{other}]")));
                }
            }
        }
        Ok(meta)
    }

    /// An `aliases` object (`{"name": {…}, …}`), as index creation and templates carry it;
    /// names are checked by the catalog (`check_alias_name`).
    pub fn parse_all(value: &Map<String, Value>) -> Result<BTreeMap<String, AliasMeta>, ApiError> {
        value
            .iter()
            .map(|(name, body)| {
                let body = body.as_object().cloned().unwrap_or_default();
                Ok((name.clone(), AliasMeta::parse(name, &body)?))
            })
            .collect()
    }

    /// As Elasticsearch shows it (`{}` or `{"is_write_index": true}`).
    pub fn render(&self) -> Value {
        let mut out = Map::new();
        if let Some(write) = self.is_write_index {
            out.insert("is_write_index".into(), json!(write));
        }
        if let Some(hidden) = self.is_hidden {
            out.insert("is_hidden".into(), json!(hidden));
        }
        Value::Object(out)
    }
}

fn flag(alias: &str, key: &str, value: &Value) -> Result<bool, ApiError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(ApiError::parse(format!(
            "[{key}] of alias [{alias}] must be a boolean, got [{other}]"
        ))),
    }
}

/// One change to one index's aliases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AliasChange {
    /// Adds (or replaces) an alias.
    Add { alias: String, meta: AliasMeta },
    /// Removes the aliases `pattern` matches; an error when none does and `must_exist`.
    Remove { pattern: String, must_exist: bool },
}

/// Applies `changes` in order to one index's aliases.
pub fn apply(
    index: &str,
    aliases: &mut BTreeMap<String, AliasMeta>,
    changes: &[AliasChange],
) -> Result<(), ApiError> {
    for change in changes {
        match change {
            AliasChange::Add { alias, meta } => {
                aliases.insert(alias.clone(), meta.clone());
            }
            AliasChange::Remove {
                pattern,
                must_exist,
            } => {
                let before = aliases.len();
                aliases.retain(|name, _| !matches_any(pattern, name));
                if before == aliases.len() && *must_exist {
                    return Err(alias_missing(pattern).with_index(index));
                }
            }
        }
    }
    Ok(())
}

/// Elasticsearch's 404 for an alias that is not there.
pub fn alias_missing(alias: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "aliases_not_found_exception",
        format!("aliases [{alias}] missing"),
    )
}

/// True when `name` matches one of the comma-separated patterns (`_all` and `*` match all).
pub fn matches_any(patterns: &str, name: &str) -> bool {
    patterns
        .split(',')
        .any(|p| p == "_all" || p == name || (p.contains('*') && wildcard_match(p, name)))
}

/// Why an index expression did not resolve.
#[derive(Debug, PartialEq, Eq)]
pub enum ExprError {
    /// A concrete name that is neither an index nor an alias.
    Missing(String),
    /// An alias where only concrete indexes may stand (index deletion).
    AliasNotAllowed(String),
}

/// Resolves an index expression to concrete index names, in the order first matched.
/// `indices` are the index names; `aliases` maps each alias to its indexes. Parts: names,
/// wildcards (over indexes and, when `with_aliases`, aliases), `_all`, and exclusions
/// (`-name` or `-pattern`, removing what the parts before matched, as Elasticsearch does once a
/// wildcard has come before).
pub fn resolve(
    expression: &str,
    indices: &[&str],
    aliases: &BTreeMap<String, Vec<String>>,
    with_aliases: bool,
) -> Result<Vec<String>, ExprError> {
    let mut out: Vec<String> = Vec::new();
    let mut wildcard_seen = false;
    let add = |out: &mut Vec<String>, name: &str| {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    };
    for part in expression
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if let Some(excluded) = part.strip_prefix('-')
            && wildcard_seen
        {
            let gone: Vec<String> = matching(excluded, indices, aliases, with_aliases);
            out.retain(|name| !gone.contains(name));
            continue;
        }
        if part == "_all" || part.contains('*') {
            wildcard_seen = true;
            for name in matching(part, indices, aliases, with_aliases) {
                add(&mut out, &name);
            }
            continue;
        }
        if indices.contains(&part) {
            add(&mut out, part);
        } else if let Some(targets) = aliases.get(part) {
            if !with_aliases {
                return Err(ExprError::AliasNotAllowed(part.to_string()));
            }
            for name in targets {
                add(&mut out, name);
            }
        } else {
            return Err(ExprError::Missing(part.to_string()));
        }
    }
    Ok(out)
}

/// The indexes one part names: matching index names and the indexes of matching aliases.
fn matching(
    pattern: &str,
    indices: &[&str],
    aliases: &BTreeMap<String, Vec<String>>,
    with_aliases: bool,
) -> Vec<String> {
    let all = pattern == "_all" || pattern == "*";
    let hit = |name: &str| all || name == pattern || wildcard_match(pattern, name);
    let mut out: Vec<String> = indices
        .iter()
        .filter(|name| hit(name))
        .map(|name| name.to_string())
        .collect();
    if with_aliases && !all {
        for (alias, targets) in aliases {
            if hit(alias) {
                out.extend(targets.iter().cloned());
            }
        }
    }
    out
}

/// The index a write through `name` goes to: the index itself, an alias's only index, or the
/// one of its indexes marked `is_write_index`.
pub fn write_target(
    name: &str,
    aliases: &BTreeMap<String, Vec<(String, AliasMeta)>>,
) -> Result<String, ApiError> {
    let Some(targets) = aliases.get(name) else {
        return Ok(name.to_string());
    };
    let writers: Vec<&String> = targets
        .iter()
        .filter(|(_, meta)| meta.is_write_index == Some(true))
        .map(|(index, _)| index)
        .collect();
    match (writers.as_slice(), targets.as_slice()) {
        ([only], _) => Ok((*only).clone()),
        ([], [(only, meta)]) if meta.is_write_index != Some(false) => Ok(only.clone()),
        _ => Err(ApiError::illegal_argument(format!(
            "no write index is defined for alias [{name}]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alias_map(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(a, t)| (a.to_string(), t.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn expressions_resolve_names_aliases_wildcards_and_exclusions() {
        let indices = ["logs-1", "logs-2", "logs-3", "books"];
        let aliases = alias_map(&[("current", &["logs-3"]), ("reading", &["books", "logs-1"])]);
        let r = |e: &str| resolve(e, &indices, &aliases, true);
        assert_eq!(r("books").unwrap(), ["books"]);
        assert_eq!(r("current").unwrap(), ["logs-3"]);
        assert_eq!(r("logs-*,-logs-2").unwrap(), ["logs-1", "logs-3"]);
        assert_eq!(
            r("*,-logs-*").unwrap(),
            ["logs-1", "logs-2", "logs-3", "books"][3..]
        );
        assert_eq!(r("read*").unwrap(), ["books", "logs-1"]);
        assert_eq!(r("current,logs-3").unwrap(), ["logs-3"]);
        assert_eq!(r("nope"), Err(ExprError::Missing("nope".into())));
        assert_eq!(r("-books"), Err(ExprError::Missing("-books".into())));
        assert_eq!(
            resolve("current", &indices, &aliases, false),
            Err(ExprError::AliasNotAllowed("current".into()))
        );
        assert_eq!(r("nothing-*").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn writes_go_to_the_only_index_or_the_write_index() {
        let meta = |w: Option<bool>| AliasMeta {
            is_write_index: w,
            is_hidden: None,
        };
        let mut aliases = BTreeMap::new();
        aliases.insert("one".to_string(), vec![("a".to_string(), meta(None))]);
        aliases.insert(
            "two".to_string(),
            vec![
                ("a".to_string(), meta(None)),
                ("b".to_string(), meta(Some(true))),
            ],
        );
        aliases.insert(
            "none".to_string(),
            vec![("a".to_string(), meta(None)), ("b".to_string(), meta(None))],
        );
        assert_eq!(write_target("one", &aliases).unwrap(), "a");
        assert_eq!(write_target("two", &aliases).unwrap(), "b");
        assert_eq!(write_target("plain", &aliases).unwrap(), "plain");
        assert!(write_target("none", &aliases).is_err());
    }

    #[test]
    fn changes_apply_in_order() {
        let mut aliases = BTreeMap::new();
        let add = |a: &str| AliasChange::Add {
            alias: a.into(),
            meta: AliasMeta::default(),
        };
        let remove = |p: &str, must_exist| AliasChange::Remove {
            pattern: p.into(),
            must_exist,
        };
        apply("i", &mut aliases, &[add("x"), add("y"), remove("x", true)]).unwrap();
        assert_eq!(aliases.keys().collect::<Vec<_>>(), ["y"]);
        assert!(apply("i", &mut aliases, &[remove("x", true)]).is_err());
        apply("i", &mut aliases, &[remove("x", false), remove("*", true)]).unwrap();
        assert!(aliases.is_empty());
        let filtered: Map<String, Value> =
            serde_json::from_value(json!({"filter": {"term": {"a": 1}}})).unwrap();
        assert!(AliasMeta::parse("x", &filtered).is_err());
    }

    proptest! {
        /// Resolution never names an index twice, names only existing indexes, and an
        /// exclusion after a wildcard leaves none of what it names.
        #[test]
        fn resolved_names_are_existing_distinct_and_exclusions_hold(
            names in prop::collection::btree_set("[ab][0-9]", 1..8),
            alias_of in prop::collection::vec(0usize..8, 0..4),
            pattern in "[ab*][0-9*]?",
            excluded in "[ab][0-9*]",
        ) {
            let indices: Vec<&str> = names.iter().map(String::as_str).collect();
            let aliases: BTreeMap<String, Vec<String>> = alias_of
                .iter()
                .enumerate()
                .map(|(n, i)| (format!("al{n}"), vec![indices[i % indices.len()].to_string()]))
                .collect();
            let expr = format!("*{pattern},-{excluded}");
            let out = resolve(&expr, &indices, &aliases, true).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            for name in &out {
                prop_assert!(indices.contains(&name.as_str()));
                prop_assert!(seen.insert(name.clone()));
                prop_assert!(!(name == &excluded || wildcard_match(&excluded, name)));
            }
        }
    }
}
