//! Reading and writing mappings in Elasticsearch's JSON shape.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{ANALYZERS, Dynamic, FieldMapping, FieldType, Mapping};
use crate::error::{Result, SchemaError};

/// A parsed mapping body, flattened: parents come before their children.
pub(super) struct Parsed {
    /// Root `dynamic`, when the body sets it.
    pub dynamic: Option<Dynamic>,
    /// Every field by dotted path, in an order where each object precedes its children.
    pub properties: Vec<(String, FieldMapping)>,
}

fn invalid(reason: String) -> SchemaError {
    SchemaError::InvalidMapping { reason }
}

/// Parses `{"dynamic": …, "properties": {…}}`.
pub(super) fn parse(json: &Value) -> Result<Parsed> {
    let body = json
        .as_object()
        .ok_or_else(|| invalid("mapping must be a json object".to_string()))?;
    let mut parsed = Parsed {
        dynamic: None,
        properties: Vec::new(),
    };
    let mut unsupported = Vec::new();
    for (key, value) in body {
        match key.as_str() {
            "dynamic" => parsed.dynamic = Some(parse_dynamic(value)?),
            "properties" => parse_properties("", value, &mut parsed.properties)?,
            _ => unsupported.push(format!("{key} : {value}")),
        }
    }
    if !unsupported.is_empty() {
        return Err(invalid(format!(
            "Root mapping definition has unsupported parameters:  [{}]",
            unsupported.join("] [")
        )));
    }
    Ok(parsed)
}

fn parse_dynamic(value: &Value) -> Result<Dynamic> {
    match value {
        Value::Bool(true) => Ok(Dynamic::True),
        Value::Bool(false) => Ok(Dynamic::False),
        Value::String(s) if s == "true" => Ok(Dynamic::True),
        Value::String(s) if s == "false" => Ok(Dynamic::False),
        Value::String(s) if s == "strict" => Ok(Dynamic::Strict),
        other => Err(invalid(format!(
            "dynamic must be one of [true, false, strict], got [{other}]"
        ))),
    }
}

fn parse_properties(
    prefix: &str,
    value: &Value,
    out: &mut Vec<(String, FieldMapping)>,
) -> Result<()> {
    let props = value
        .as_object()
        .ok_or_else(|| invalid(format!("properties of [{prefix}] must be an object")))?;
    for (name, def) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        parse_field(&path, def, out)?;
    }
    Ok(())
}

fn parse_field(path: &str, def: &Value, out: &mut Vec<(String, FieldMapping)>) -> Result<()> {
    let def = def.as_object().ok_or_else(|| {
        invalid(format!(
            "Expected map for property [fields] on field [{path}]"
        ))
    })?;
    let field_type = match def.get("type") {
        None => FieldType::Object,
        Some(Value::String(name)) => FieldType::from_name(name).ok_or_else(|| {
            invalid(format!(
                "No handler for type [{name}] declared on field [{path}]"
            ))
        })?,
        Some(other) => {
            return Err(invalid(format!(
                "type of field [{path}] must be a string, got [{other}]"
            )));
        }
    };
    let mut field = FieldMapping::of(field_type);
    let mut children = None;
    for (key, value) in def {
        match (key.as_str(), field_type) {
            ("type", _) => {}
            ("properties", FieldType::Object) => children = Some(value),
            ("dynamic", FieldType::Object) => field.dynamic = Some(parse_dynamic(value)?),
            ("fields", t) if t != FieldType::Object => {
                field.fields = parse_multi_fields(path, value)?;
            }
            ("analyzer", FieldType::Text) => {
                let name = value
                    .as_str()
                    .ok_or_else(|| invalid(format!("analyzer of [{path}] must be a string")))?;
                if !ANALYZERS.contains(&name) {
                    return Err(invalid(format!(
                        "analyzer [{name}] has not been configured in mappings"
                    )));
                }
                field.analyzer = Some(name.to_string());
            }
            ("ignore_above", FieldType::Keyword) => {
                let limit = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid(format!(
                            "ignore_above of [{path}] must be a non-negative integer"
                        ))
                    })?;
                field.ignore_above = Some(limit);
            }
            ("format", FieldType::Date) => {
                let format = value
                    .as_str()
                    .ok_or_else(|| invalid(format!("format of [{path}] must be a string")))?;
                super::date::validate_formats(format)?;
                field.format = Some(format.to_string());
            }
            _ => {
                return Err(invalid(format!(
                    "unknown parameter [{key}] on mapper [{path}] of type [{}]",
                    field_type.name()
                )));
            }
        }
    }
    out.push((path.to_string(), field));
    if let Some(children) = children {
        parse_properties(path, children, out)?;
    }
    Ok(())
}

fn parse_multi_fields(path: &str, value: &Value) -> Result<BTreeMap<String, FieldMapping>> {
    let defs = value
        .as_object()
        .ok_or_else(|| invalid(format!("fields of [{path}] must be an object")))?;
    let mut fields = BTreeMap::new();
    for (name, def) in defs {
        let sub_path = format!("{path}.{name}");
        let mut parsed = Vec::new();
        parse_field(&sub_path, def, &mut parsed)?;
        match parsed.pop() {
            Some((_, sub))
                if parsed.is_empty()
                    && sub.field_type != FieldType::Object
                    && sub.fields.is_empty() =>
            {
                fields.insert(name.clone(), sub);
            }
            _ => {
                return Err(invalid(format!(
                    "multi-field [{sub_path}] must be a leaf field"
                )));
            }
        }
    }
    Ok(fields)
}

/// Renders a mapping in Elasticsearch's nested shape.
pub(super) fn render(mapping: &Mapping) -> Value {
    let mut root = Map::new();
    for (path, field) in &mapping.properties {
        let mut level = &mut root;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                let entry = level
                    .entry(segment.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(obj) = entry {
                    render_field(field, obj);
                }
                break;
            }
            let parent = level
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(parent) = parent else { break };
            parent.remove("type");
            let props = parent
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(props) = props else { break };
            level = props;
        }
    }
    let mut out = Map::new();
    if mapping.dynamic != Dynamic::True {
        out.insert("dynamic".into(), render_dynamic(mapping.dynamic));
    }
    if !root.is_empty() {
        out.insert("properties".into(), Value::Object(root));
    }
    Value::Object(out)
}

fn render_dynamic(dynamic: Dynamic) -> Value {
    json!(match dynamic {
        Dynamic::True => "true",
        Dynamic::False => "false",
        Dynamic::Strict => "strict",
    })
}

fn render_field(field: &FieldMapping, out: &mut Map<String, Value>) {
    if field.field_type == FieldType::Object {
        if !out.contains_key("properties") {
            out.insert("type".into(), json!("object"));
        }
        if let Some(dynamic) = field.dynamic {
            out.insert("dynamic".into(), render_dynamic(dynamic));
        }
        return;
    }
    out.insert("type".into(), json!(field.field_type.name()));
    if let Some(analyzer) = &field.analyzer {
        out.insert("analyzer".into(), json!(analyzer));
    }
    if let Some(limit) = field.ignore_above {
        out.insert("ignore_above".into(), json!(limit));
    }
    if let Some(format) = &field.format {
        out.insert("format".into(), json!(format));
    }
    if !field.fields.is_empty() {
        let subs = field
            .fields
            .iter()
            .map(|(name, sub)| {
                let mut obj = Map::new();
                render_field(sub, &mut obj);
                (name.clone(), Value::Object(obj))
            })
            .collect();
        out.insert("fields".into(), Value::Object(subs));
    }
}
