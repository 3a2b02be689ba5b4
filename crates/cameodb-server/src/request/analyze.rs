//! `_analyze`: what to analyze and with what, from the body or the query string.

use std::collections::HashMap;

use cameodb_schema::analysis::AnalyzeChain;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Elasticsearch's `index.analyze.max_token_count`: most tokens one `_analyze` returns.
pub const MAX_TOKEN_COUNT: usize = 10_000;
/// Position gap between the values of a `text` array (Elasticsearch's default
/// `position_increment_gap`).
pub const POSITION_GAP: usize = 100;

/// A parsed `_analyze` request.
#[derive(Debug, Default)]
pub struct AnalyzeRequest {
    /// The texts, analyzed one after the other as the values of one field.
    pub texts: Vec<String>,
    /// The chain named by `analyzer`, `normalizer` or `tokenizer` / `filter` / `char_filter`.
    pub chain: AnalyzeChain,
    /// `field`: analyze as this mapped field would be.
    pub field: Option<String>,
}

fn components(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::String(s) => s
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| Value::String(p.to_string()))
            .collect(),
        other => vec![other.clone()],
    }
}

impl AnalyzeRequest {
    /// Parses the body (if any) and the query string; the body wins where both name a key.
    pub fn parse(
        body: Option<Map<String, Value>>,
        params: &HashMap<String, String>,
    ) -> Result<AnalyzeRequest, ApiError> {
        let mut fields: Map<String, Value> = params
            .iter()
            .filter(|(k, _)| {
                [
                    "text",
                    "analyzer",
                    "tokenizer",
                    "filter",
                    "char_filter",
                    "normalizer",
                    "field",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        fields.extend(body.unwrap_or_default());
        let mut request = AnalyzeRequest::default();
        for (key, value) in &fields {
            match key.as_str() {
                "text" => request.texts = super::string_list(key, value)?,
                "analyzer" => request.chain.analyzer = Some(single(key, value)?),
                "normalizer" => request.chain.normalizer = Some(single(key, value)?),
                "field" => request.field = Some(single(key, value)?),
                "tokenizer" => request.chain.tokenizer = Some(value.clone()),
                "filter" | "token_filter" => request.chain.filters = components(value),
                "char_filter" => request.chain.char_filters = components(value),
                "explain" if value.as_bool() != Some(true) && value.as_str() != Some("true") => {}
                "explain" => {
                    return Err(ApiError::illegal_argument(
                        "[explain] of _analyze is not supported: the tokens are shown without each step's output",
                    ));
                }
                "attributes" => {}
                other => {
                    return Err(ApiError::parse(format!(
                        "Unknown parameter [{other}] in request body or parameter is of the wrong type"
                    )));
                }
            }
        }
        if request.texts.is_empty() {
            return Err(ApiError::bad_request(
                "action_request_validation_exception",
                "Validation Failed: 1: text is missing;",
            ));
        }
        let named = [
            request.chain.analyzer.is_some(),
            request.chain.normalizer.is_some(),
            request.chain.tokenizer.is_some(),
        ];
        if named.iter().filter(|n| **n).count() > 1 {
            return Err(ApiError::illegal_argument(
                "tokenizer/analyze/normalizer should be null if analyzer/tokenizer/normalizer is not null",
            ));
        }
        Ok(request)
    }
}

fn single(key: &str, value: &Value) -> Result<String, ApiError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::parse(format!("[{key}] must be a string, got [{value}]")))
}
