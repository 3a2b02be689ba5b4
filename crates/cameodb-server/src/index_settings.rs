//! Index settings: which an index accepts, how a create-index or update-settings body is
//! flattened and checked, and the defaults a new index gets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use cameodb_schema::Analysis;
use cameodb_schema::analysis::AnalysisLimits;

use crate::error::ApiError;

/// Settings an index accepts (others are rejected, as Elasticsearch does).
const KNOWN_SETTINGS: &[&str] = &[
    "index.number_of_shards",
    "index.number_of_replicas",
    "index.refresh_interval",
    "index.max_result_window",
    "index.max_ngram_diff",
    "index.max_shingle_diff",
    CHANGES_RETENTION,
];

/// Settings accepted because they change nothing CameoDB returns (allocation, codecs,
/// translog tuning: a write is always fsynced before it is acknowledged), by name or by
/// prefix (`*`). COMPATIBILITY.md lists them.
const NO_EFFECT_SETTINGS: &[&str] = &[
    "index.codec",
    "index.priority",
    "index.hidden",
    "index.auto_expand_replicas",
    "index.routing.*",
    "index.routing_partition_size",
    "index.translog.*",
    "index.unassigned.*",
    "index.store.*",
    "index.lifecycle.*",
    "index.search.idle.after",
    "index.search.slowlog.*",
    "index.indexing.slowlog.*",
    "index.merge.*",
    "index.write.wait_for_active_shards",
    "index.mapping.total_fields.limit",
    "index.mapping.depth.limit",
    "index.mapping.nested_fields.limit",
    "index.mapping.nested_objects.limit",
    "index.mapping.field_name_length.limit",
    "index.max_inner_result_window",
    "index.max_terms_count",
    "index.max_regex_length",
    "index.max_docvalue_fields_search",
    "index.max_script_fields",
    "index.highlight.max_analyzed_offset",
    "index.queries.cache.enabled",
    "index.requests.cache.enable",
    "index.blocks.read_only_allow_delete",
    "index.shard.check_on_startup",
    "index.soft_deletes.*",
    "index.format",
    "index.version.*",
    "index.creation_date",
    "index.uuid",
    "index.provided_name",
];

/// Where an index's analysis settings are kept: the whole `index.analysis` object as JSON
/// text (its lists and nesting do not flatten into one string each).
pub const ANALYSIS: &str = "index.analysis";

fn no_effect(key: &str) -> bool {
    NO_EFFECT_SETTINGS
        .iter()
        .any(|known| match known.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == *known,
        })
}

/// Takes the `analysis` object out of a settings body (`{"analysis": …}`,
/// `{"index": {"analysis": …}}` or `{"index.analysis": …}`).
fn take_analysis(settings: &mut Value) -> Option<Value> {
    let object = settings.as_object_mut()?;
    let mut found = object
        .remove("analysis")
        .or_else(|| object.remove(ANALYSIS));
    if let Some(Value::Object(index)) = object.get_mut("index")
        && let Some(inner) = index.remove("analysis")
    {
        found = Some(inner);
    }
    found
}

/// The analysis settings of an index's flattened settings, built.
pub fn analysis_of(settings: &BTreeMap<String, String>) -> Result<Analysis, ApiError> {
    let limits = analysis_limits(settings);
    match settings.get(ANALYSIS) {
        None => Ok(Analysis::default()),
        Some(text) => {
            let json: Value = serde_json::from_str(text)
                .map_err(|e| ApiError::internal(format!("stored analysis settings: {e}")))?;
            Ok(Analysis::from_es_json(&json, limits)?)
        }
    }
}

fn analysis_limits(settings: &BTreeMap<String, String>) -> AnalysisLimits {
    let mut limits = AnalysisLimits::default();
    let read = |key: &str| settings.get(key).and_then(|v| v.parse::<usize>().ok());
    if let Some(diff) = read("index.max_ngram_diff") {
        limits.max_ngram_diff = diff;
    }
    if let Some(diff) = read("index.max_shingle_diff") {
        limits.max_shingle_diff = diff;
    }
    limits
}

/// How long an index's change feed keeps superseded versions and tombstones.
pub const CHANGES_RETENTION: &str = "index.cameo.changes.retention";

/// Flattens `{"settings": {"index": {"x": 1}, "y": "2"}}` to `index.x = "1"`, `index.y = "2"`
/// (a `null` as the text `null`).
fn flatten_settings(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let mut flat = Vec::new();
    flatten_nullable(prefix, value, &mut flat);
    for (name, value) in flat {
        out.insert(name, value.unwrap_or_else(|| "null".to_string()));
    }
}

/// Flattens nested settings objects to dotted names, a `null` (a reset) as `None`.
pub fn flatten_nullable(prefix: &str, value: &Value, out: &mut Vec<(String, Option<String>)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_nullable(&name, inner, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), None)),
        Value::String(text) => out.push((prefix.to_string(), Some(text.clone()))),
        other => out.push((prefix.to_string(), Some(other.to_string()))),
    }
}

/// Parses and validates the `settings` of an index creation body.
pub fn parse_settings(settings: Option<&Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = match settings {
        Some(settings) => check_settings(settings)?,
        None => BTreeMap::new(),
    };
    out.entry("index.number_of_shards".into())
        .or_insert_with(|| "1".into());
    Ok(out)
}

/// Flattens and checks a settings object: known names, values of the right shape.
fn check_settings(settings: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let mut settings = settings.clone();
    let analysis = take_analysis(&mut settings);
    let mut flat = BTreeMap::new();
    flatten_settings("", &settings, &mut flat);
    let mut out = BTreeMap::new();
    for (key, value) in flat {
        let key = if key.starts_with("index.") {
            key
        } else {
            format!("index.{key}")
        };
        if !KNOWN_SETTINGS.contains(&key.as_str()) && !no_effect(&key) {
            return Err(ApiError::illegal_argument(format!(
                "unknown setting [{key}] please check that any required plugins are installed, or check the breaking changes documentation for removed settings"
            )));
        }
        out.insert(key, value);
    }
    for key in [
        "index.number_of_shards",
        "index.number_of_replicas",
        "index.max_result_window",
        "index.max_ngram_diff",
        "index.max_shingle_diff",
    ] {
        if let Some(v) = out.get(key)
            && v.parse::<u32>().is_err()
        {
            return Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{v}] for setting [{key}]"
            )));
        }
    }
    if let Some(v) = out.get("index.refresh_interval") {
        refresh_interval(v)?;
    }
    if let Some(v) = out.get(CHANGES_RETENTION) {
        crate::units::required_time_value(CHANGES_RETENTION, v)?;
    }
    if let Some(analysis) = analysis {
        // Checked whole now, so a bad analyzer is refused before the index exists.
        Analysis::from_es_json(&analysis, analysis_limits(&out))?;
        out.insert(ANALYSIS.to_string(), analysis.to_string());
    }
    Ok(out)
}

/// The refresh interval an index setting asks for; `None` means disabled (`-1`).
pub fn refresh_interval(text: &str) -> Result<Option<Duration>, ApiError> {
    Ok(crate::units::time_value("index.refresh_interval", text)?)
}

/// `number_of_replicas` when an index is created without one, on a cluster of `members`: two
/// (three copies) from three members on — the fewest copies with which a majority write
/// survives the loss of any one node — one with two members, none on a node alone (a copy on
/// the same node protects nothing).
pub fn default_replicas(members: usize) -> usize {
    members.saturating_sub(1).min(2)
}

/// Settings that may change on an open index (`PUT /{index}/_settings`). The others are fixed
/// when it is created (the refresh interval and the feed's retention configure its store,
/// which reads them when it opens).
const DYNAMIC_SETTINGS: &[&str] = &["index.number_of_replicas", "index.max_result_window"];

/// Parses and checks an update-settings body (`{"index": {...}}`, `{"settings": {...}}` or
/// the settings themselves): the changes, by full name.
pub fn parse_update(body: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let inner = body.get("settings").unwrap_or(body);
    let changes = check_settings(inner)?;
    if changes.is_empty() {
        return Err(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: no settings to update;",
        ));
    }
    if let Some(fixed) = changes
        .keys()
        .find(|k| !DYNAMIC_SETTINGS.contains(&k.as_str()))
    {
        return Err(ApiError::illegal_argument(format!(
            "Can't update non dynamic settings [[{fixed}]] for open indices"
        )));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_flattened_and_checked() {
        let s = parse_settings(Some(
            &serde_json::json!({"number_of_shards": 2, "index": {"refresh_interval": "1s"}}),
        ))
        .unwrap();
        assert_eq!(s["index.number_of_shards"], "2");
        assert_eq!(s["index.refresh_interval"], "1s");
        assert!(parse_settings(Some(&serde_json::json!({"bogus": 1}))).is_err());
        let with_analysis = parse_settings(Some(&serde_json::json!({"index": {
            "codec": "best_compression",
            "analysis": {"analyzer": {"a": {"tokenizer": "whitespace", "filter": ["lowercase"]}}}
        }})))
        .unwrap();
        assert!(analysis_of(&with_analysis).unwrap().has_analyzer("a"));
        assert!(
            parse_settings(Some(
                &serde_json::json!({"analysis": {"analyzer": {"a": {"tokenizer": "nope"}}}})
            ))
            .is_err()
        );
        assert!(parse_update(&serde_json::json!({"index": {"analysis": {}}})).is_err());
        assert!(refresh_interval("100ms").unwrap() == Some(Duration::from_millis(100)));
        assert!(refresh_interval("1h").unwrap() == Some(Duration::from_secs(3600)));
        assert!(refresh_interval("-1").unwrap().is_none());
        assert!(refresh_interval("soon").is_err());
        assert!(refresh_interval("2305843009213693952s").is_err());
    }

    #[test]
    fn updates_take_dynamic_settings_only() {
        let changes =
            parse_update(&serde_json::json!({"index": {"number_of_replicas": 2}})).unwrap();
        assert_eq!(changes["index.number_of_replicas"], "2");
        let flat = parse_update(&serde_json::json!({"number_of_replicas": "0"})).unwrap();
        assert_eq!(flat["index.number_of_replicas"], "0");
        assert!(parse_update(&serde_json::json!({"index": {"number_of_shards": 2}})).is_err());
        assert!(parse_update(&serde_json::json!({"index": {"number_of_replicas": -1}})).is_err());
        assert!(parse_update(&serde_json::json!({})).is_err());
    }
}
