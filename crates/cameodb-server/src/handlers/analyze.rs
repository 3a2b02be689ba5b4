//! `_analyze`: the tokens an analyzer, normalizer or ad-hoc chain makes of a text — with an
//! index, its own analysis settings and field mappings; without one, the built-in analyzers.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use cameodb_schema::Analysis;
use cameodb_schema::analysis::AnalyzeChain;
use cameodb_schema::mapping::{FieldType, Mapping};
use serde_json::{Value, json};

use super::{AppState, Params};
use crate::error::ApiError;
use crate::request::analyze::{AnalyzeRequest, MAX_TOKEN_COUNT, POSITION_GAP};
use crate::request::parse_object_body;
use crate::respond;

/// Longest text (all values together) `_analyze` takes, in bytes: its tokens are held whole,
/// and an n-gram chain makes many of them per byte.
pub const MAX_ANALYZE_BYTES: usize = 1 << 20;

pub async fn analyze_any(
    axum::extract::Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = AnalyzeRequest::parse(parse_object_body(&body)?, &params)?;
    if request.field.is_some() {
        return Err(ApiError::illegal_argument(
            "analysis by [field] needs an index: use /{index}/_analyze",
        ));
    }
    let account = cameodb_memory::current();
    let job = move || {
        cameodb_memory::run_in(account.as_ref(), || {
            run(&Analysis::default(), &Mapping::default(), request)
        })
    };
    let answer = tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ApiError::internal(format!("analysis failed: {e}")))??;
    Ok(respond::ok(answer))
}

pub async fn analyze(
    State(state): State<AppState>,
    Path(index): Path<String>,
    axum::extract::Query(params): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = AnalyzeRequest::parse(parse_object_body(&body)?, &params)?;
    let entry = state.catalog.require(&index).await?;
    let answer = crate::shard::run(&entry.shard, move |store| {
        run(store.analysis(), &store.mapping(), request)
    })
    .await?;
    Ok(respond::ok(answer))
}

/// The chain a mapped field analyzes with (its index analyzer, or its normalizer).
fn field_chain(mapping: &Mapping, path: &str) -> AnalyzeChain {
    let mut chain = AnalyzeChain::default();
    match mapping.lookup(path) {
        Some(field) if field.field_type == FieldType::Text => {
            chain.analyzer = Some(field.analyzer.clone().unwrap_or_else(|| "standard".into()));
        }
        Some(field) if field.normalizer.is_some() => chain.normalizer = field.normalizer.clone(),
        Some(_) => chain.analyzer = Some("keyword".into()),
        // Elasticsearch analyzes an unmapped field with the index's default analyzer.
        None => chain.analyzer = Some("standard".into()),
    }
    chain
}

fn run(analysis: &Analysis, mapping: &Mapping, request: AnalyzeRequest) -> Result<Value, ApiError> {
    let total: usize = request.texts.iter().map(String::len).sum();
    if total > MAX_ANALYZE_BYTES {
        return Err(ApiError::illegal_argument(format!(
            "the text to analyze is {total} bytes, more than the limit of [{MAX_ANALYZE_BYTES}]"
        )));
    }
    let chain = match &request.field {
        Some(field) if request.chain.analyzer.is_none() && request.chain.tokenizer.is_none() => {
            field_chain(mapping, field)
        }
        _ => request.chain.clone(),
    };
    let standard = chain.tokenizer.is_none()
        && chain.normalizer.is_none()
        && chain.filters.is_empty()
        && chain.analyzer.as_deref().is_none_or(|a| a == "standard");
    let mut out = Vec::new();
    let (mut position_base, mut offset_base) = (0usize, 0usize);
    for text in &request.texts {
        let tokens = analysis.analyze(&chain, text)?;
        let mut last_position = None;
        for token in tokens {
            if out.len() >= MAX_TOKEN_COUNT {
                return Err(ApiError::illegal_argument(format!(
                    "The number of tokens produced by calling _analyze has exceeded the allowed maximum of [{MAX_TOKEN_COUNT}]. This limit can be set by changing the [index.analyze.max_token_count] index level setting."
                )));
            }
            let kind = if !standard {
                "word"
            } else if token.text.chars().all(char::is_numeric) {
                "<NUM>"
            } else {
                "<ALPHANUM>"
            };
            let position = position_base.saturating_add(token.position);
            last_position = Some(position);
            let mut rendered = json!({
                "token": token.text,
                "start_offset": offset_base.saturating_add(token.offset_from),
                "end_offset": offset_base.saturating_add(token.offset_to),
                "type": kind,
                "position": position,
            });
            if token.position_length > 1
                && let Some(object) = rendered.as_object_mut()
            {
                object.insert("positionLength".into(), json!(token.position_length));
            }
            out.push(rendered);
        }
        if let Some(last) = last_position {
            position_base = last.saturating_add(POSITION_GAP).saturating_add(1);
        }
        offset_base = offset_base.saturating_add(text.len()).saturating_add(1);
    }
    Ok(json!({"tokens": out}))
}
