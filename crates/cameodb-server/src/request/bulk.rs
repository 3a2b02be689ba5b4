//! A `_bulk` body parsed once: its action lines checked strictly (a malformed one fails the
//! whole request, as in Elasticsearch) and each paired with its source line, still raw. The
//! single-node handler builds writes from the lines; the cluster layer routes them by owner.
//! Sources are parsed only by the node that writes them.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::params::{Refresh, check_params, refresh_param, reject_require_alias};
use crate::error::ApiError;

/// Keys an action line may carry; any other fails the whole request.
pub const ACTION_META_KEYS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "if_seq_no",
    "if_primary_term",
    "op_type",
    "retry_on_conflict",
    "version",
    "version_type",
];

/// Checks a `_bulk` request's parameters; the `refresh` it asks for.
pub fn check_bulk_params(params: &HashMap<String, String>) -> Result<Refresh, ApiError> {
    check_params(
        params,
        &[
            "refresh",
            "routing",
            "require_alias",
            "wait_for_active_shards",
        ],
    )?;
    reject_require_alias(params)?;
    refresh_param(params)
}

/// The non-blank lines of an NDJSON body (`\r\n` tolerated).
pub fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

/// What an item does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Action {
    /// Writes the document, replacing any.
    Index,
    /// Writes the document unless one exists.
    Create,
    /// Changes part of an existing document.
    Update,
    /// Removes the document.
    Delete,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            _ => return None,
        })
    }

    /// The action's name, as the answer's item is keyed.
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One item of a bulk request.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// What it does.
    pub action: Action,
    /// The action line's metadata (only [`ACTION_META_KEYS`]).
    pub meta: Map<String, Value>,
    /// Target index: the line's `_index`, else the path's; `None` when neither names one (the
    /// item then fails on its own).
    pub index: Option<String>,
    /// The id the line names (`_id`, a string or a number), if any.
    pub id: Option<String>,
    /// The document or update body, as sent; `None` for a delete.
    pub source: Option<&'a [u8]>,
}

impl Line<'_> {
    /// The routing key: the line's, else the request's.
    pub fn routing<'p>(&'p self, params: &'p HashMap<String, String>) -> Option<&'p str> {
        self.meta
            .get("routing")
            .and_then(Value::as_str)
            .or(params.get("routing").map(String::as_str))
    }
}

/// Splits `body` into its items. A malformed action line, an unknown action or metadata key,
/// or a missing source line fails the whole request with a 400 naming the line; stops with
/// the breaker's error when the request's memory account trips.
pub fn parse_lines<'a>(
    default_index: Option<&str>,
    body: &'a [u8],
) -> Result<Vec<Line<'a>>, ApiError> {
    let mut items = Vec::new();
    let mut lines = ndjson_lines(body);
    while let Some(line) = lines.next() {
        // Decoded items grow with the body: stop when the request's memory account trips.
        cameodb_memory::check()?;
        let number = items.len() + 1;
        let malformed = |why: &str| {
            ApiError::illegal_argument(format!("Malformed action/metadata line [{number}], {why}"))
        };
        let action: Map<String, Value> = serde_json::from_slice(line)
            .map_err(|e| malformed(&format!("expected START_OBJECT: {e}")))?;
        let mut entries = action.into_iter();
        let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
            return Err(malformed("expected a single action"));
        };
        let Value::Object(meta) = meta else {
            return Err(malformed("expected an object"));
        };
        let action = Action::parse(&name).ok_or_else(|| {
            malformed(&format!(
                "expected one of [create, delete, index, update] but found [{name}]"
            ))
        })?;
        if let Some(unknown) = meta
            .keys()
            .find(|k| !ACTION_META_KEYS.contains(&k.as_str()))
        {
            return Err(ApiError::illegal_argument(format!(
                "Action/metadata line [{number}] contains an unknown parameter [{unknown}]"
            )));
        }
        let source = match action {
            Action::Delete => None,
            _ => Some(lines.next().ok_or_else(|| {
                ApiError::illegal_argument("The bulk request must be terminated by a newline [\\n]")
            })?),
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .map(String::from);
        let id = match meta.get("_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        items.push(Line {
            action,
            meta,
            index,
            id,
            source,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_pair_actions_with_their_sources() {
        let body = b"{\"index\":{\"_id\":1}}\n{\"a\":1}\r\n\n{\"delete\":{\"_index\":\"x\",\"_id\":\"2\"}}\n{\"update\":{\"_id\":\"3\",\"routing\":\"r\"}}\n{\"doc\":{}}\n";
        let lines = parse_lines(Some("d"), body).expect("parses");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].action, Action::Index);
        assert_eq!(
            (lines[0].index.as_deref(), lines[0].id.as_deref()),
            (Some("d"), Some("1"))
        );
        assert_eq!(lines[0].source, Some(&b"{\"a\":1}"[..]));
        assert_eq!(lines[1].index.as_deref(), Some("x"));
        assert_eq!(lines[1].source, None);
        assert_eq!(lines[2].routing(&HashMap::new()), Some("r"));
    }

    #[test]
    fn a_malformed_line_fails_the_request_naming_it() {
        for (body, says) in [
            (&b"{\"index\":{}}\n{}\n{\"bogus\":{}}\n"[..], "line [2]"),
            (b"[1]\n", "line [1]"),
            (b"{\"index\":{},\"delete\":{}}\n", "single action"),
            (
                b"{\"index\":{\"_version\":1}}\n{}\n",
                "unknown parameter [_version]",
            ),
            (b"{\"index\":{}}\n", "terminated by a newline"),
        ] {
            let err = parse_lines(None, body).expect_err("refused");
            assert_eq!(err.status.as_u16(), 400);
            assert!(err.reason.contains(says), "{says}: {}", err.reason);
        }
    }
}
