//! `completion` fields: the inputs a document offers for completion, with their weights, and
//! the one normalized form (analyzed, tokens joined) an input is indexed and matched as.

use serde_json::Value;
use tantivy::tokenizer::TextAnalyzer;

/// The analyzer a completion field uses unless its mapping names one (Elasticsearch's).
pub const DEFAULT_ANALYZER: &str = "simple";

/// `max_input_length` unless the mapping says otherwise (Elasticsearch's).
pub const DEFAULT_MAX_INPUT_LENGTH: u32 = 50;

/// The key under a completion field of a document's largest input weight.
pub const WEIGHT_KEY: &str = "_weight";

/// One input of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// As the document wrote it (suggestions show it).
    pub text: String,
    /// Its weight (1 unless given): suggestions rank by it.
    pub weight: i64,
}

/// The inputs of a completion value: `"text"`, `["a", "b"]`, `{"input": …, "weight": n}` or a
/// list of those objects.
pub fn inputs(value: &Value) -> Result<Vec<Input>, String> {
    let mut out = Vec::new();
    collect(value, 1, &mut out)?;
    Ok(out)
}

fn collect(value: &Value, weight: i64, out: &mut Vec<Input>) -> Result<(), String> {
    match value {
        Value::Null => Ok(()),
        Value::String(text) => {
            out.push(Input {
                text: text.clone(),
                weight,
            });
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| collect(item, weight, out)),
        Value::Object(map) => {
            if let Some(key) = map
                .keys()
                .find(|k| !["input", "weight", "contexts"].contains(&k.as_str()))
            {
                return Err(format!(
                    "unknown field name [{key}], must be one of [input, weight]"
                ));
            }
            if map.contains_key("contexts") {
                return Err("completion contexts are not supported".into());
            }
            let weight = match map.get("weight") {
                None => 1,
                Some(w) => w
                    .as_i64()
                    .or_else(|| w.as_str().and_then(|s| s.parse().ok()))
                    .filter(|w| (0..=i64::from(i32::MAX)).contains(w))
                    .ok_or_else(|| {
                        format!(
                            "weight must be an integer from 0 to {}, got [{w}]",
                            i32::MAX
                        )
                    })?,
            };
            match map.get("input") {
                Some(input @ (Value::String(_) | Value::Array(_))) => collect(input, weight, out),
                _ => Err("completion requires [input]".into()),
            }
        }
        other => Err(format!("completion inputs must be strings, got [{other}]")),
    }
}

/// `text` as a completion field holds and matches it: analyzed, tokens joined by a space
/// (`preserve_separators`) or run together, cut to `max_chars` characters.
pub fn normalized(
    analyzer: &mut TextAnalyzer,
    text: &str,
    preserve_separators: bool,
    max_chars: usize,
) -> String {
    let mut stream = analyzer.token_stream(text);
    let mut out = String::new();
    while let Some(token) = stream.next() {
        if preserve_separators && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&token.text);
    }
    out.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_input_form_is_read() {
        let one = |text: &str, weight| Input {
            text: text.into(),
            weight,
        };
        assert_eq!(inputs(&json!("Nevermind")).unwrap(), [one("Nevermind", 1)]);
        assert_eq!(
            inputs(&json!({"input": ["Nevermind", "Nirvana"], "weight": 34})).unwrap(),
            [one("Nevermind", 34), one("Nirvana", 34)]
        );
        assert_eq!(
            inputs(&json!([{"input": "a", "weight": 2}, {"input": "b"}])).unwrap(),
            [one("a", 2), one("b", 1)]
        );
        assert!(inputs(&json!({"input": "a", "weight": -1})).is_err());
        assert!(inputs(&json!({"weight": 3})).is_err());
        assert!(inputs(&json!(5)).is_err());
    }

    #[test]
    fn inputs_are_analyzed_and_cut() {
        let mut simple = crate::analysis::analyzer("simple");
        assert_eq!(
            normalized(&mut simple, "The Beatles!", true, 50),
            "the beatles"
        );
        assert_eq!(
            normalized(&mut simple, "The Beatles!", false, 50),
            "thebeatles"
        );
        assert_eq!(normalized(&mut simple, "abcdef", true, 3), "abc");
    }
}
