//! Index templates, pure: composable (`_index_template`), component (`_component_template`)
//! and legacy (`_template`) templates as records that replicate last-writer-wins, and what
//! they give a new index whose name they match. No I/O: the catalog keeps the records (and a
//! file of them), the cluster layer spreads them.

use std::collections::BTreeMap;

use cameodb_search::wildcard_match;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Which API a template belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TemplateKind {
    /// `_index_template`: the highest-priority match applies, with its component templates.
    Index,
    /// `_component_template`: building blocks an index template lists in `composed_of`.
    Component,
    /// `_template` (legacy): every match applies, by `order`.
    Legacy,
}

impl TemplateKind {
    /// The API's name, for messages.
    pub fn api(self) -> &'static str {
        match self {
            TemplateKind::Index => "index template",
            TemplateKind::Component => "component template",
            TemplateKind::Legacy => "template",
        }
    }
}

/// One template as every node keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub kind: TemplateKind,
    pub name: String,
    /// The template body as given (checked when it was put); `None` once deleted.
    pub body: Option<Value>,
    /// When it was written (milliseconds, strictly growing per name on the node that wrote
    /// it), then the writer's id: the larger pair wins when two nodes disagree.
    pub version: (u64, String),
}

/// The templates a node knows, deleted ones kept as tombstones so a node that missed the
/// deletion does not bring them back.
pub type TemplateSet = BTreeMap<(TemplateKind, String), TemplateRecord>;

/// Takes `record` if it is newer than what `set` holds for its name; whether it did.
pub fn merge(set: &mut TemplateSet, record: TemplateRecord) -> bool {
    let key = (record.kind, record.name.clone());
    match set.get(&key) {
        Some(existing) if existing.version >= record.version => false,
        _ => {
            set.insert(key, record);
            true
        }
    }
}

/// A digest of the set, gossiped so nodes that disagree pull from each other.
pub fn digest(set: &TemplateSet) -> u64 {
    let mut text = String::new();
    for record in set.values() {
        text.push_str(&format!(
            "{:?}/{}/{}/{}\n",
            record.kind, record.name, record.version.0, record.version.1
        ));
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// What templates give a new index: settings (as a settings body), mappings and aliases,
/// merged in order (later wins), before the index's own request is merged on top.
#[derive(Debug, Default, PartialEq)]
pub struct Composed {
    pub settings: Map<String, Value>,
    pub mappings: Map<String, Value>,
    pub aliases: Map<String, Value>,
}

impl Composed {
    fn add(&mut self, settings: Option<&Value>, mappings: Option<&Value>, aliases: Option<&Value>) {
        if let Some(Value::Object(s)) = settings {
            deep_merge(&mut self.settings, s);
        }
        if let Some(Value::Object(m)) = mappings {
            deep_merge(&mut self.mappings, m);
        }
        if let Some(Value::Object(a)) = aliases {
            for (k, v) in a {
                self.aliases.insert(k.clone(), v.clone());
            }
        }
    }

    /// True when no template matched.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.mappings.is_empty() && self.aliases.is_empty()
    }
}

/// Merges `from` into `into`, objects recursively, anything else replaced.
pub fn deep_merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                deep_merge(existing, incoming)
            }
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

fn patterns(body: &Value) -> Vec<&str> {
    match body.get("index_patterns") {
        Some(Value::String(p)) => vec![p.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn matches(body: &Value, index: &str) -> bool {
    patterns(body)
        .iter()
        .any(|p| *p == index || wildcard_match(p, index))
}

fn live(set: &TemplateSet, kind: TemplateKind) -> impl Iterator<Item = (&str, &Value)> {
    set.values()
        .filter(move |r| r.kind == kind)
        .filter_map(|r| r.body.as_ref().map(|b| (r.name.as_str(), b)))
}

/// What the templates in `set` give a new index called `index`: the composable template of
/// highest priority that matches (its component templates first, then its own), or, when none
/// matches, every matching legacy template by ascending `order`.
pub fn compose(set: &TemplateSet, index: &str) -> Composed {
    let mut out = Composed::default();
    let best = live(set, TemplateKind::Index)
        .filter(|(_, body)| matches(body, index))
        .max_by_key(|(name, body)| {
            (
                body.get("priority").and_then(Value::as_i64).unwrap_or(0),
                *name,
            )
        });
    if let Some((_, body)) = best {
        return compose_index_template(set, body);
    }
    let mut legacy: Vec<(&str, &Value)> = live(set, TemplateKind::Legacy)
        .filter(|(_, body)| matches(body, index))
        .collect();
    legacy.sort_by_key(|(name, body)| {
        (
            body.get("order").and_then(Value::as_i64).unwrap_or(0),
            *name,
        )
    });
    for (_, body) in legacy {
        out.add(
            body.get("settings"),
            body.get("mappings"),
            body.get("aliases"),
        );
    }
    out
}

/// The component templates an index template lists (`composed_of`), in order.
pub fn components(body: &Value) -> impl Iterator<Item = &str> {
    body.get("composed_of")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// What one composable template gives: its component templates in order, then its own.
pub fn compose_index_template(set: &TemplateSet, body: &Value) -> Composed {
    let mut out = Composed::default();
    {
        for component in components(body) {
            let key = (TemplateKind::Component, component.to_string());
            if let Some(template) = set
                .get(&key)
                .and_then(|r| r.body.as_ref())
                .and_then(|b| b.get("template"))
            {
                out.add(
                    template.get("settings"),
                    template.get("mappings"),
                    template.get("aliases"),
                );
            }
        }
        if let Some(template) = body.get("template") {
            out.add(
                template.get("settings"),
                template.get("mappings"),
                template.get("aliases"),
            );
        }
    }
    out
}

/// Checks a template body's shape (its settings and mappings are checked by the caller);
/// returns the settings, mappings and aliases it carries.
pub fn check(kind: TemplateKind, name: &str, body: &Value) -> Result<Composed, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| ApiError::parse(format!("{} [{name}] must be an object", kind.api())))?;
    let allowed: &[&str] = match kind {
        TemplateKind::Index => &[
            "index_patterns",
            "template",
            "composed_of",
            "priority",
            "version",
            "_meta",
            "allow_auto_create",
            "ignore_missing_component_templates",
            "deprecated",
        ],
        TemplateKind::Component => &["template", "version", "_meta", "deprecated"],
        TemplateKind::Legacy => &[
            "index_patterns",
            "order",
            "settings",
            "mappings",
            "aliases",
            "version",
        ],
    };
    if object.contains_key("data_stream") {
        return Err(ApiError::illegal_argument(format!(
            "{} [{name}]: data streams are not supported",
            kind.api()
        )));
    }
    if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::parse(format!(
            "[{}] unknown field [{key}]",
            kind.api().replace(' ', "_")
        )));
    }
    if kind != TemplateKind::Component && patterns(body).is_empty() {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;",
        ));
    }
    let mut out = Composed::default();
    match kind {
        TemplateKind::Legacy => out.add(
            body.get("settings"),
            body.get("mappings"),
            body.get("aliases"),
        ),
        _ => {
            if let Some(template) = body.get("template") {
                let template_object = template.as_object().ok_or_else(|| {
                    ApiError::parse(format!("[template] of [{name}] must be an object"))
                })?;
                if let Some(key) = template_object.keys().find(|k| {
                    !["settings", "mappings", "aliases", "lifecycle"].contains(&k.as_str())
                }) {
                    return Err(ApiError::parse(format!("[template] unknown field [{key}]")));
                }
                out.add(
                    template.get("settings"),
                    template.get("mappings"),
                    template.get("aliases"),
                );
            }
        }
    }
    Ok(out)
}

/// A record rendered as its API lists it.
pub fn render(record: &TemplateRecord) -> Option<Value> {
    let body = record.body.clone()?;
    Some(match record.kind {
        TemplateKind::Index => json!({"name": record.name, "index_template": body}),
        TemplateKind::Component => json!({"name": record.name, "component_template": body}),
        TemplateKind::Legacy => {
            let mut body = body;
            if let Some(object) = body.as_object_mut() {
                object.entry("order").or_insert(json!(0));
                object.entry("settings").or_insert(json!({}));
                object.entry("mappings").or_insert(json!({}));
                object.entry("aliases").or_insert(json!({}));
            }
            body
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(kind: TemplateKind, name: &str, body: Value, at: u64) -> TemplateRecord {
        TemplateRecord {
            kind,
            name: name.into(),
            body: Some(body),
            version: (at, "n1".into()),
        }
    }

    fn set(records: Vec<TemplateRecord>) -> TemplateSet {
        let mut out = TemplateSet::new();
        for r in records {
            merge(&mut out, r);
        }
        out
    }

    #[test]
    fn the_highest_priority_index_template_applies_with_its_components() {
        let templates = set(vec![
            record(
                TemplateKind::Component,
                "base",
                json!({"template": {"settings": {"number_of_replicas": 0}, "mappings": {"properties": {"a": {"type": "keyword"}}}}}),
                1,
            ),
            record(
                TemplateKind::Index,
                "logs",
                json!({"index_patterns": ["logs-*"], "priority": 5, "composed_of": ["base"], "template": {"mappings": {"properties": {"b": {"type": "long"}}}, "aliases": {"all-logs": {}}}}),
                1,
            ),
            record(
                TemplateKind::Index,
                "low",
                json!({"index_patterns": ["*"], "priority": 1, "template": {"settings": {"refresh_interval": "5s"}}}),
                1,
            ),
            record(
                TemplateKind::Legacy,
                "old",
                json!({"index_patterns": ["logs-*"], "settings": {"max_result_window": 5}}),
                1,
            ),
        ]);
        let composed = compose(&templates, "logs-1");
        assert_eq!(
            composed.settings,
            json!({"number_of_replicas": 0})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(
            Value::Object(composed.mappings),
            json!({"properties": {"a": {"type": "keyword"}, "b": {"type": "long"}}})
        );
        assert_eq!(Value::Object(composed.aliases), json!({"all-logs": {}}));
        assert_eq!(
            Value::Object(compose(&templates, "other").settings),
            json!({"refresh_interval": "5s"})
        );
    }

    #[test]
    fn legacy_templates_apply_by_order_when_no_index_template_matches() {
        let templates = set(vec![
            record(
                TemplateKind::Legacy,
                "late",
                json!({"index_patterns": "x*", "order": 2, "settings": {"a": "2"}}),
                1,
            ),
            record(
                TemplateKind::Legacy,
                "early",
                json!({"index_patterns": ["x*"], "order": 1, "settings": {"a": "1", "b": "1"}}),
                1,
            ),
        ]);
        assert_eq!(
            Value::Object(compose(&templates, "xy").settings),
            json!({"a": "2", "b": "1"})
        );
        assert!(compose(&templates, "y").is_empty());
    }

    #[test]
    fn bodies_are_checked() {
        assert!(check(TemplateKind::Index, "t", &json!({"template": {}})).is_err());
        assert!(
            check(
                TemplateKind::Index,
                "t",
                &json!({"index_patterns": ["a"], "data_stream": {}})
            )
            .is_err()
        );
        assert!(
            check(
                TemplateKind::Legacy,
                "t",
                &json!({"index_patterns": ["a"], "bogus": 1})
            )
            .is_err()
        );
        assert!(
            check(
                TemplateKind::Component,
                "c",
                &json!({"template": {"settings": {}}})
            )
            .is_ok()
        );
    }

    proptest! {
        /// Whatever order the versions of one template arrive in, every node ends with the
        /// newest, and a deletion newer than a write stays deleted.
        #[test]
        fn last_writer_wins_in_any_order(versions in prop::collection::vec((0u64..20, any::<bool>()), 1..8), shuffle in any::<u64>()) {
            let records: Vec<TemplateRecord> = versions.iter().enumerate().map(|(n, (at, deleted))| TemplateRecord {
                kind: TemplateKind::Index,
                name: "t".into(),
                body: (!deleted).then(|| json!({"index_patterns": ["a"], "n": n})),
                version: (*at, format!("node{n}")),
            }).collect();
            let newest = records.iter().max_by(|a, b| a.version.cmp(&b.version)).cloned();
            let mut order: Vec<usize> = (0..records.len()).collect();
            let len = order.len();
            for i in 0..len {
                let j = (shuffle.wrapping_mul(i as u64 + 7) % len as u64) as usize;
                order.swap(i, j);
            }
            let mut a = TemplateSet::new();
            for i in order {
                merge(&mut a, records[i].clone());
            }
            let mut b = TemplateSet::new();
            for r in records.iter().rev() {
                merge(&mut b, r.clone());
            }
            prop_assert_eq!(a.values().next().cloned(), newest);
            prop_assert_eq!(digest(&a), digest(&b));
        }
    }
}
