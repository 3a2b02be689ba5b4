//! Aggregations whose answer is reshaped after the merge carry what the reshaping needs in
//! their name: `name`, a mark, the plan as JSON, the mark again. The final result is all that
//! comes back from tantivy, so the name is the one place such a plan survives the merge.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::SearchError;

/// The name an aggregation runs under with `plan` (see the module comment).
pub(crate) fn name<P: Serialize>(name: &str, mark: char, plan: &P) -> Result<String, SearchError> {
    let shown = serde_json::to_string(plan).map_err(|e| SearchError::internal(e.to_string()))?;
    Ok(format!("{name}{mark}{shown}{mark}"))
}

/// Replaces every result named with `mark`, at every level of `value`, by what `reshape`
/// makes of it and its plan, under its own name again. `reshape` also gets the document
/// count of the bucket holding the result (`count` at the top level).
pub(crate) fn reshape_all<P: DeserializeOwned>(
    value: &mut Value,
    mark: char,
    count: Option<u64>,
    reshape: &mut dyn FnMut(Value, P, Option<u64>) -> Result<Value, SearchError>,
) -> Result<(), SearchError> {
    match value {
        Value::Object(map) => {
            let count = map.get("doc_count").and_then(Value::as_u64).or(count);
            let marked: Vec<String> = map.keys().filter(|k| k.ends_with(mark)).cloned().collect();
            for key in marked {
                let Some((name, plan)) = key.trim_end_matches(mark).split_once(mark) else {
                    continue;
                };
                let plan: P =
                    serde_json::from_str(plan).map_err(|e| SearchError::internal(e.to_string()))?;
                if let Some(raw) = map.remove(&key) {
                    let shown = reshape(raw, plan, count)?;
                    map.insert(name.to_string(), shown);
                }
            }
            map.values_mut()
                .try_for_each(|child| reshape_all(child, mark, count, reshape))
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| reshape_all(item, mark, count, reshape)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans_survive_in_names_and_come_back_at_every_level() {
        let marked = name("a", '\u{7}', &json!({"k": 1})).unwrap();
        let mut result = json!({"doc_count": 9, "outer": {"buckets": [{"doc_count": 4, marked.clone(): {"v": 2}}]},
            marked: {"v": 3}});
        let mut seen = Vec::new();
        reshape_all(
            &mut result,
            '\u{7}',
            None,
            &mut |raw, plan: Value, count| {
                seen.push((plan["k"].clone(), count));
                Ok(json!({"shown": raw["v"]}))
            },
        )
        .unwrap();
        assert_eq!(result["a"], json!({"shown": 3}));
        assert_eq!(result["outer"]["buckets"][0]["a"], json!({"shown": 2}));
        assert!(seen.contains(&(json!(1), Some(9))) && seen.contains(&(json!(1), Some(4))));
    }
}
