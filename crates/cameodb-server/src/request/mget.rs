//! An `_mget` body parsed once: the documents wanted, each with its index, id, routing and
//! `_source` filter resolved. The coordinator asks each owner for its share; the filter is
//! applied where the answer is rendered.

use std::collections::HashMap;

use cameodb_search::source_filter::SourceFilter;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// One wanted document.
#[derive(Clone, Debug)]
pub struct Wanted {
    /// Its index: the entry's `_index`, else the path's.
    pub index: String,
    /// Its `_id` (a number is taken as its text).
    pub id: String,
    /// Its routing: the entry's, else the request's.
    pub routing: Option<String>,
    /// What of the source to answer: the request's parameters, then the entry's option.
    pub filter: SourceFilter,
}

fn validation(reason: String) -> ApiError {
    ApiError::bad_request(
        "action_request_validation_exception",
        format!("Validation Failed: 1: {reason};"),
    )
}

/// The documents an `_mget` body asks for (`ids` with the path's index, and `docs`), in order.
pub fn parse_mget(
    default_index: Option<&str>,
    params: &HashMap<String, String>,
    body: Option<&Map<String, Value>>,
) -> Result<Vec<Wanted>, ApiError> {
    let Some(body) = body.filter(|b| b.contains_key("ids") || b.contains_key("docs")) else {
        return Err(validation("no documents to get".into()));
    };
    let base = SourceFilter::from_params(params);
    let routing = params.get("routing").cloned();
    let mut out = Vec::new();
    if let Some(ids) = body.get("ids") {
        let index = default_index.ok_or_else(|| validation("index is missing for doc 0".into()))?;
        for id in ids
            .as_array()
            .ok_or_else(|| ApiError::parse("[ids] must be an array"))?
        {
            let id = id
                .as_str()
                .ok_or_else(|| ApiError::parse("[ids] must be strings"))?;
            out.push(Wanted {
                index: index.to_string(),
                id: id.to_string(),
                routing: routing.clone(),
                filter: base.clone(),
            });
        }
    }
    if let Some(docs) = body.get("docs") {
        for (n, doc) in docs
            .as_array()
            .ok_or_else(|| ApiError::parse("[docs] must be an array"))?
            .iter()
            .enumerate()
        {
            let doc = doc
                .as_object()
                .ok_or_else(|| ApiError::parse("[docs] entries must be objects"))?;
            let index = doc
                .get("_index")
                .and_then(Value::as_str)
                .or(default_index)
                .ok_or_else(|| validation(format!("index is missing for doc {n}")))?;
            let id = match doc.get("_id") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(validation(format!("id is missing for doc {n}"))),
            };
            let source = doc.get("_source").cloned();
            let filter = base.clone().with_body(source.as_ref())?;
            out.push(Wanted {
                index: index.to_string(),
                id,
                routing: doc
                    .get("routing")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| routing.clone()),
                filter,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn ids_and_docs_resolve_index_id_and_routing() {
        let params = HashMap::from([("routing".to_string(), "r".to_string())]);
        let wanted = parse_mget(
            Some("p"),
            &params,
            Some(&body(json!({"ids": ["a"], "docs": [
                {"_id": 7},
                {"_index": "x", "_id": "b", "routing": "s", "_source": false},
            ]}))),
        )
        .expect("parses");
        let seen: Vec<_> = wanted
            .iter()
            .map(|w| (w.index.as_str(), w.id.as_str(), w.routing.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("p", "a", Some("r")),
                ("p", "7", Some("r")),
                ("x", "b", Some("s"))
            ]
        );
        assert!(wanted[2].filter.disabled);
    }

    #[test]
    fn what_cannot_be_fetched_is_refused() {
        let none = HashMap::new();
        for (index, value, says) in [
            (Some("p"), json!({}), "no documents to get"),
            (None, json!({"ids": ["a"]}), "index is missing for doc 0"),
            (
                Some("p"),
                json!({"docs": [{"_index": "x"}]}),
                "id is missing for doc 0",
            ),
            (Some("p"), json!({"ids": [1]}), "[ids] must be strings"),
        ] {
            let err = parse_mget(index, &none, Some(&body(value))).expect_err(says);
            assert!(err.reason.contains(says), "{says}: {}", err.reason);
        }
        assert!(parse_mget(Some("p"), &none, None).is_err());
    }
}
