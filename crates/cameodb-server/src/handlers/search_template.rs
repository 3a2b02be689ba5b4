//! Search templates: `_search/template` renders a mustache template with its `params` into a
//! search body and runs it like `_search`; `_render/template` shows the rendered body.
//! Templates are inline (`source`): stored scripts are not kept, so `id` is refused.

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::search::{respond_search, targets};
use super::{AppState, Params};
use crate::error::ApiError;
use crate::request::parse_object_body;
use crate::respond;

/// The search body `body` (a template request) renders to.
fn rendered(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let request = parse_object_body(body)?
        .ok_or_else(|| ApiError::parse("a search template request needs a body"))?;
    render_request(&request)
}

/// The search body a template request (`source`, `params`, `explain`) renders to.
pub(super) fn render_request(request: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    for key in request.keys() {
        match key.as_str() {
            "source" | "params" | "explain" | "profile" => {}
            "id" => {
                return Err(ApiError::illegal_argument(
                    "stored search templates are not supported: send the template as [source]",
                ));
            }
            other => {
                return Err(ApiError::parse(format!(
                    "[search_template] unknown field [{other}]"
                )));
            }
        }
    }
    let template = match request.get("source") {
        Some(Value::String(text)) => text.clone(),
        // An object template is its JSON text, with the mustache tags inside its strings.
        Some(object @ Value::Object(_)) => object.to_string(),
        _ => return Err(ApiError::parse("[search_template] requires [source]")),
    };
    let params = request.get("params").cloned().unwrap_or_else(|| json!({}));
    let text = cameodb_template::render(&template, &params)
        .map_err(|e| ApiError::bad_request("script_exception", e.to_string()))?;
    let mut search = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(search)) => search,
        Ok(_) => {
            return Err(ApiError::parse(
                "the rendered template is not a JSON object",
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                "x_content_parse_exception",
                format!("the rendered template is not valid JSON: {e}"),
            ));
        }
    };
    if request.get("explain").and_then(Value::as_bool) == Some(true) {
        search.insert("explain".into(), Value::Bool(true));
    }
    Ok(search)
}

/// `GET/POST /_render/template`.
pub async fn render(body: Bytes) -> Result<Response, ApiError> {
    Ok(respond::ok(
        json!({"template_output": Value::Object(rendered(&body)?)}),
    ))
}

/// `GET/POST /_render/template/{id}`: stored templates are not kept.
pub async fn render_stored(Path(id): Path<String>) -> Result<Response, ApiError> {
    Err(ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "resource_not_found_exception",
        format!("unable to find script [{id}]: stored search templates are not supported"),
    ))
}

/// `GET/POST /{index}/_search/template`.
pub async fn search(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let search = Bytes::from(Value::Object(rendered(&body)?).to_string());
    let entries = targets(&state, &index, &params).await?;
    respond_search(&state, entries, &params, &search).await
}

/// `GET/POST /_search/template`.
pub async fn search_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let search = Bytes::from(Value::Object(rendered(&body)?).to_string());
    let entries = state.catalog.all().await;
    respond_search(&state, entries, &params, &search).await
}
