//! Reading one analysis component's definition (`{"type": "ngram", "min_gram": 2}`): typed
//! getters that accept Elasticsearch's spellings (numbers as strings, lists as comma-separated
//! strings), and a check that every parameter given was understood — an ignored parameter
//! would silently change what gets indexed.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::{Result, SchemaError};

pub(crate) fn invalid(reason: String) -> SchemaError {
    SchemaError::InvalidAnalysis { reason }
}

/// One component definition being read.
pub(crate) struct Params<'a> {
    /// What kind of component and its name, for messages (`filter [my_stop]`).
    what: String,
    /// The definition.
    object: &'a Map<String, Value>,
    /// Keys read so far.
    used: RefCell<BTreeSet<&'a str>>,
}

impl<'a> Params<'a> {
    pub fn new(what: String, object: &'a Map<String, Value>) -> Params<'a> {
        let used = RefCell::new(BTreeSet::from(["type"]));
        Params { what, object, used }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    fn get(&self, key: &'a str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(key);
        self.object.get(key)
    }

    /// A parameter as given, whatever its shape.
    pub fn raw(&self, key: &'a str) -> Option<&'a Value> {
        self.get(key)
    }

    /// An integer parameter (a number or a numeric string) within `0..=max`.
    pub fn usize_or(&self, key: &'a str, default: usize, max: usize) -> Result<usize> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let parsed = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                invalid(format!(
                    "[{key}] of {} must be an integer between 0 and {max}, got [{value}]",
                    self.what
                ))
            })
    }

    /// A signed integer parameter.
    pub fn i64_or(&self, key: &'a str, default: i64) -> Result<i64> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| {
            invalid(format!(
                "[{key}] of {} must be an integer, got [{value}]",
                self.what
            ))
        })
    }

    /// A boolean parameter (`true`, `"true"`).
    pub fn bool_or(&self, key: &'a str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(other) => Err(invalid(format!(
                "[{key}] of {} must be a boolean, got [{other}]",
                self.what
            ))),
        }
    }

    /// A string parameter.
    pub fn string(&self, key: &'a str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "[{key}] of {} must be a string, got [{other}]",
                self.what
            ))),
        }
    }

    /// A list of strings: an array, or one comma-separated string.
    pub fn list(&self, key: &'a str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(invalid(format!(
                        "[{key}] of {} must hold strings, got [{other}]",
                        self.what
                    ))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(invalid(format!(
                "[{key}] of {} must be a list of strings, got [{other}]",
                self.what
            ))),
        }
    }

    /// Java regex `flags` (`CASE_INSENSITIVE|COMMENTS`) have no equivalent here: refused,
    /// with the inline form to use instead.
    pub fn refuse_flags(&self) -> Result<()> {
        match self.string("flags")? {
            Some(flags) if !flags.is_empty() => Err(invalid(format!(
                "[flags] of {} are not supported: use inline flags such as (?i) in the pattern",
                self.what
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses parameters that were never read.
    pub fn finish(self) -> Result<()> {
        let used = self.used.borrow();
        let unknown: Vec<&str> = self
            .object
            .keys()
            .map(String::as_str)
            .filter(|k| !used.contains(k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(invalid(format!(
            "unknown parameter{} [{}] for {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", "),
            self.what
        )))
    }
}
