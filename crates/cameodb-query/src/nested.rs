//! The `nested` query, and the two internal clauses that the search executor wraps queries
//! in: one keeping top-level documents only, one selecting the nested elements of matching
//! documents (for the `nested` aggregation).

use serde_json::{Value, json};
use tantivy::query::{EmptyQuery, Query};

use crate::block_join::{Level, ScoreMode, ToChildrenQuery, ToParentQuery, at_path, roots_only};
use crate::error::{QueryError, parsing};
use crate::fields::QueryContext;
use crate::params::{apply_boost, as_object, boost_of, check_params};

type Boxed = Box<dyn Query>;

/// Key of the internal clause that keeps top-level documents only.
pub const ROOTS_CLAUSE: &str = "\u{1}roots";
/// Key of the internal clause that selects the nested elements (at `path`) of the top-level
/// documents `query` matches.
pub const CHILDREN_CLAUSE: &str = "\u{1}nested_children";

/// `query` (Elasticsearch DSL) limited to top-level documents.
pub fn roots_dsl(query: Value) -> Value {
    json!({ ROOTS_CLAUSE: query })
}

/// The elements of the nested field `path` in the top-level documents `query` matches.
pub fn children_dsl(path: &str, query: Value) -> Value {
    json!({ CHILDREN_CLAUSE: {"path": path, "query": query} })
}

/// `query`, limited to top-level documents when the mapping has nested fields (whose hidden
/// documents would otherwise match).
pub fn top_level(query: Boxed, ctx: &QueryContext<'_>) -> Boxed {
    if ctx.mapping.has_nested() {
        roots_only(query, ctx.fields.field_names)
    } else {
        query
    }
}

pub(crate) fn roots(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    Ok(top_level(crate::translate(body, ctx)?, ctx))
}

pub(crate) fn children(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let path = body
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing("[nested] aggregation requires [path]"))?;
    if !ctx.mapping.is_nested_path(path) {
        return Err(QueryError::Shard(format!(
            "[nested] nested path [{path}] is not nested"
        )));
    }
    let parent = roots(body.get("query").unwrap_or(&json!({"match_all": {}})), ctx)?;
    Ok(Box::new(ToChildrenQuery {
        parent,
        path: path.to_string(),
        field_names: ctx.fields.field_names,
    }))
}

/// `{"nested": {"path", "query", "score_mode", "ignore_unmapped", "inner_hits"}}`: documents
/// with an element of `path` that `query` matches (`inner_hits` are read by the executor).
pub(crate) fn nested_query(body: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let params = as_object(body, "nested")?;
    check_params(
        params,
        "nested",
        &[
            "path",
            "query",
            "score_mode",
            "ignore_unmapped",
            "inner_hits",
            "boost",
            "_name",
        ],
    )?;
    let path = params
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| parsing("[nested] requires 'path' field"))?;
    let inner = params
        .get("query")
        .ok_or_else(|| parsing("[nested] requires 'query' field"))?;
    let mode = match params.get("score_mode") {
        None => ScoreMode::Avg,
        Some(value) => value.as_str().and_then(ScoreMode::parse).ok_or_else(|| {
            parsing(format!(
                "[nested] query does not support [score_mode] [{value}]"
            ))
        })?,
    };
    let ignore_unmapped = params
        .get("ignore_unmapped")
        .is_some_and(|v| v.as_bool() == Some(true));
    if !ctx.mapping.is_nested_path(path) {
        if ignore_unmapped {
            return Ok(Box::new(EmptyQuery));
        }
        return Err(QueryError::Shard(format!(
            "failed to create query: [nested] failed to find nested object under path [{path}]"
        )));
    }
    let outer = ctx.nested_level.borrow().clone();
    if let Some(outer) = &outer
        && !path.starts_with(&format!("{outer}."))
    {
        return Err(QueryError::Shard(format!(
            "failed to create query: [nested] nested path [{path}] is not a child of the enclosing nested path [{outer}]"
        )));
    }
    let parents = match ctx.mapping.nested_parent(path) {
        None => Level::Root,
        Some(parent) => Level::Path(parent.to_string()),
    };
    // A path two levels down from the enclosing one joins straight to it only at the root.
    if let (Some(outer), Level::Path(parent)) = (&outer, &parents)
        && parent != outer
    {
        return Err(QueryError::Shard(format!(
            "failed to create query: [nested] path [{path}] must be queried inside a [nested] query on [{parent}]"
        )));
    }
    let parents = match (&outer, parents) {
        (None, Level::Path(_)) => Level::Root,
        (_, level) => level,
    };
    ctx.nested_level.replace(Some(path.to_string()));
    let child = crate::translate(inner, ctx);
    ctx.nested_level.replace(outer);
    let query = ToParentQuery {
        child: at_path(child?, path, ctx.fields.field_names),
        parents,
        mode,
        field_names: ctx.fields.field_names,
    };
    Ok(apply_boost(Box::new(query), boost_of(Some(params))?))
}

/// The inner query of a `nested` query on `path`, limited to its elements: what its
/// `inner_hits` show.
pub fn inner_query(path: &str, query: &Value, ctx: &QueryContext<'_>) -> Result<Boxed, QueryError> {
    let outer = ctx.nested_level.replace(Some(path.to_string()));
    let inner = crate::translate(query, ctx);
    ctx.nested_level.replace(outer);
    Ok(at_path(inner?, path, ctx.fields.field_names))
}
