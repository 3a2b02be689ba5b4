//! Reading and writing mappings in Elasticsearch's JSON shape.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Dynamic, FieldMapping, FieldType, Mapping, Variant};
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
    let (field_type, variant) = match def.get("type") {
        None => (FieldType::Object, None),
        Some(Value::String(name)) => match FieldType::from_name(name) {
            Some(field_type) => (field_type, None),
            None => {
                let variant = Variant::from_name(name).ok_or_else(|| {
                    invalid(format!(
                        "No handler for type [{name}] declared on field [{path}]"
                    ))
                })?;
                (variant.base(), Some(variant))
            }
        },
        Some(other) => {
            return Err(invalid(format!(
                "type of field [{path}] must be a string, got [{other}]"
            )));
        }
    };
    let mut field = FieldMapping::of(field_type);
    if let Some(allowed) = variant.as_ref().and_then(Variant::parameters)
        && let Some(key) = def
            .keys()
            .find(|k| k.as_str() != "type" && !allowed.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unknown parameter [{key}] on mapper [{path}] of type [{}]",
            variant.as_ref().map_or("", Variant::name)
        )));
    }
    field.variant = variant;
    let mut children = None;
    for (key, value) in def {
        match (key.as_str(), field_type) {
            ("type", _) => {}
            ("scaling_factor", _) if matches!(field.variant, Some(Variant::ScaledFloat { .. })) => {
                let factor = value
                    .as_f64()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .ok_or_else(|| {
                        invalid(format!(
                            "[scaling_factor] of [{path}] must be a positive number, got [{value}]"
                        ))
                    })?;
                field.variant = Some(Variant::ScaledFloat {
                    scaling_factor: factor,
                });
            }
            ("analyzer" | "search_analyzer", _)
                if matches!(field.variant, Some(Variant::Completion { .. })) =>
            {
                let name = string(path, key, value)?;
                if key == "analyzer" {
                    field.analyzer = Some(name);
                } else {
                    field.search_analyzer = Some(name);
                }
            }
            ("max_input_length" | "preserve_separators", _)
                if matches!(field.variant, Some(Variant::Completion { .. })) =>
            {
                if let Some(Variant::Completion {
                    max_input_length,
                    preserve_separators,
                }) = &mut field.variant
                {
                    if key == "max_input_length" {
                        *max_input_length = value
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "[max_input_length] of [{path}] must be a positive integer"
                                ))
                            })?;
                    } else {
                        *preserve_separators = boolean(path, key, value)?;
                    }
                }
            }
            ("preserve_position_increments", _)
                if matches!(field.variant, Some(Variant::Completion { .. })) =>
            {
                field.accepted.insert(key.to_string(), value.clone());
            }
            ("max_shingle_size", _)
                if matches!(field.variant, Some(Variant::SearchAsYouType { .. })) =>
            {
                let size = value
                    .as_u64()
                    .filter(|n| (2..=4).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "[max_shingle_size] must be at least [2] and at most [4], got [{value}]"
                        ))
                    })?;
                field.variant = Some(Variant::SearchAsYouType {
                    max_shingle_size: size as u8,
                });
            }
            ("search_quote_analyzer", FieldType::Text) => {
                field.accepted.insert(key.to_string(), value.clone());
            }
            ("depth_limit", _) if matches!(field.variant, Some(Variant::Flattened { .. })) => {
                let depth = value
                    .as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .filter(|d| *d > 0)
                    .ok_or_else(|| {
                        invalid(format!(
                            "[depth_limit] of [{path}] must be a positive integer, got [{value}]"
                        ))
                    })?;
                field.variant = Some(Variant::Flattened { depth_limit: depth });
            }
            ("path", _) if matches!(field.variant, Some(Variant::Alias { .. })) => {
                field.variant = Some(Variant::Alias {
                    path: string(path, key, value)?,
                });
            }
            ("value", _) if matches!(field.variant, Some(Variant::ConstantKeyword { .. })) => {
                field.variant = Some(Variant::ConstantKeyword {
                    value: Some(string(path, key, value)?),
                });
            }
            ("include_in_parent", _) | ("include_in_root", _)
                if matches!(field.variant, Some(Variant::Nested { .. })) =>
            {
                let flag = boolean(path, key, value)?;
                if let Some(Variant::Nested {
                    include_in_parent,
                    include_in_root,
                }) = &mut field.variant
                {
                    if key == "include_in_parent" {
                        *include_in_parent = flag;
                    } else {
                        *include_in_root = flag;
                    }
                }
            }
            ("properties", FieldType::Object) => children = Some(value),
            ("dynamic", FieldType::Object) => field.dynamic = Some(parse_dynamic(value)?),
            ("fields", t) if t != FieldType::Object => {
                field.fields = parse_multi_fields(path, value)?;
            }
            ("analyzer", FieldType::Text) => field.analyzer = Some(string(path, key, value)?),
            ("search_analyzer", FieldType::Text) => {
                field.search_analyzer = Some(string(path, key, value)?)
            }
            ("normalizer", FieldType::Keyword) => {
                field.normalizer = Some(string(path, key, value)?)
            }
            ("index", t) if t != FieldType::Object => {
                field.index = Some(boolean(path, key, value)?)
            }
            ("copy_to", t) if t != FieldType::Object => field.copy_to = copy_to(path, value)?,
            ("null_value", t) if t != FieldType::Object && t != FieldType::Text => {
                if !value.is_null() {
                    field.null_value = Some(value.clone());
                }
            }
            ("enabled", FieldType::Object) => field.enabled = Some(boolean(path, key, value)?),
            (key, t) if accepted(key, t, value, path)? => {
                field.accepted.insert(key.to_string(), value.clone());
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
                    field.type_name()
                )));
            }
        }
    }
    if field.variant
        == Some(Variant::ScaledFloat {
            scaling_factor: 0.0,
        })
    {
        return Err(invalid(format!(
            "Field [scaling_factor] is required on mapper [{path}] of type [scaled_float]"
        )));
    }
    if let Some(Variant::SearchAsYouType { max_shingle_size }) = field.variant {
        shingle_subfields(&mut field, max_shingle_size);
    }
    out.push((path.to_string(), field));
    if let Some(children) = children {
        parse_properties(path, children, out)?;
    }
    Ok(())
}

/// The subfields a `search_as_you_type` field indexes besides itself.
fn shingle_subfields(field: &mut FieldMapping, max: u8) {
    use crate::analysis::shingled::{prefixes_of, shingles_of, up_to};
    let root = field.analyzer.clone().unwrap_or_else(|| "standard".into());
    let search = field
        .search_analyzer
        .clone()
        .unwrap_or_else(|| root.clone());
    for size in 2..=max {
        let mut sub = FieldMapping::of(FieldType::Text);
        sub.analyzer = Some(shingles_of(size, &root));
        sub.search_analyzer = Some(shingles_of(size, &search));
        field.fields.insert(format!("_{size}gram"), sub);
    }
    let mut prefix = FieldMapping::of(FieldType::Text);
    prefix.analyzer = Some(prefixes_of(max, &root));
    prefix.search_analyzer = Some(up_to(max, &search));
    field.fields.insert("_index_prefix".into(), prefix);
}

fn string(path: &str, key: &str, value: &Value) -> Result<String> {
    value.as_str().map(str::to_string).ok_or_else(|| {
        invalid(format!(
            "[{key}] of [{path}] must be a string, got [{value}]"
        ))
    })
}

fn boolean(path: &str, key: &str, value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(invalid(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed for [{key}] of [{path}]"
        ))),
    }
}

fn copy_to(path: &str, value: &Value) -> Result<Vec<String>> {
    let targets: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| string(path, "copy_to", item))
            .collect::<Result<_>>()?,
        other => {
            return Err(invalid(format!(
                "[copy_to] of [{path}] must be a field name or a list of them, got [{other}]"
            )));
        }
    };
    if let Some(target) = targets.iter().find(|t| t.as_str() == path || t.is_empty()) {
        return Err(invalid(format!(
            "[copy_to] of [{path}] cannot copy to [{target}]"
        )));
    }
    Ok(targets)
}

/// Parameters accepted because honouring them changes nothing CameoDB returns; a value that
/// would (`norms: false` on text, `index_options: docs`, a non-BM25 similarity, …) is refused
/// by name rather than silently ignored.
fn accepted(key: &str, ty: FieldType, value: &Value, path: &str) -> Result<bool> {
    let leaf = ty != FieldType::Object;
    let text = ty == FieldType::Text;
    let refuse = |why: &str| {
        Err(invalid(format!(
            "[{key}: {value}] on field [{path}] is not supported: {why}"
        )))
    };
    Ok(match key {
        "store" | "meta" | "boost" if leaf => {
            if key == "boost" && value.as_f64() != Some(1.0) {
                return refuse("index-time boosts are not supported; boost the query instead");
            }
            true
        }
        "doc_values" if leaf && !text => true,
        "time_series_dimension" | "time_series_metric" if leaf => true,
        "eager_global_ordinals" if text || ty == FieldType::Keyword => true,
        "fielddata"
        | "fielddata_frequency_filter"
        | "term_vector"
        | "position_increment_gap"
        | "index_phrases"
        | "index_prefixes"
        | "search_quote_analyzer"
            if text =>
        {
            true
        }
        "norms" if ty == FieldType::Keyword => true,
        "norms" if text => {
            if value.as_bool() == Some(false) || value.as_str() == Some("false") {
                return refuse("text fields always score with length norms");
            }
            true
        }
        "index_options" if ty == FieldType::Keyword => true,
        "index_options" if text => {
            if !matches!(value.as_str(), Some("positions" | "offsets")) {
                return refuse("text fields always index frequencies and positions");
            }
            true
        }
        "similarity" if text || ty == FieldType::Keyword => {
            if !matches!(value.as_str(), Some("BM25" | "default")) {
                return refuse("only the BM25 similarity is available");
            }
            true
        }
        "coerce" if ty.is_numeric() => {
            if value.as_bool() == Some(false) || value.as_str() == Some("false") {
                return refuse("numeric fields always accept numbers given as strings");
            }
            true
        }
        "ignore_malformed"
            if ty.is_numeric()
                || matches!(
                    ty,
                    FieldType::Date | FieldType::Boolean | FieldType::Keyword
                ) =>
        {
            if value.as_bool() == Some(true) || value.as_str() == Some("true") {
                return refuse("a malformed value is always refused with the document");
            }
            true
        }
        "locale" if ty == FieldType::Date => true,
        "split_queries_on_whitespace" if ty == FieldType::Keyword => {
            if value.as_bool() == Some(true) || value.as_str() == Some("true") {
                return refuse("keyword queries are never split on whitespace");
            }
            true
        }
        "subobjects" if !leaf => {
            if value.as_bool() == Some(false) || value.as_str() == Some("false") {
                return refuse("objects always hold sub-objects");
            }
            true
        }
        _ => false,
    })
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
            if parent.get("type") == Some(&json!("object")) {
                parent.remove("type");
            }
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

fn render_accepted(field: &FieldMapping, out: &mut Map<String, Value>) {
    for (key, value) in &field.accepted {
        out.insert(key.clone(), value.clone());
    }
}

fn render_dynamic(dynamic: Dynamic) -> Value {
    json!(match dynamic {
        Dynamic::True => "true",
        Dynamic::False => "false",
        Dynamic::Strict => "strict",
    })
}

fn render_field(field: &FieldMapping, out: &mut Map<String, Value>) {
    if let Some(Variant::Alias { path }) = &field.variant {
        out.insert("type".into(), json!("alias"));
        out.insert("path".into(), json!(path));
        return;
    }
    if field.field_type == FieldType::Object {
        if let Some(Variant::Nested {
            include_in_parent,
            include_in_root,
        }) = &field.variant
        {
            out.insert("type".into(), json!("nested"));
            if *include_in_parent {
                out.insert("include_in_parent".into(), json!(true));
            }
            if *include_in_root {
                out.insert("include_in_root".into(), json!(true));
            }
        } else if !out.contains_key("properties") {
            out.insert("type".into(), json!("object"));
        }
        if let Some(dynamic) = field.dynamic {
            out.insert("dynamic".into(), render_dynamic(dynamic));
        }
        if let Some(enabled) = field.enabled {
            out.insert("enabled".into(), json!(enabled));
        }
        render_accepted(field, out);
        return;
    }
    out.insert("type".into(), json!(field.type_name()));
    match &field.variant {
        Some(Variant::ScaledFloat { scaling_factor }) => {
            out.insert("scaling_factor".into(), json!(scaling_factor));
        }
        Some(Variant::ConstantKeyword { value: Some(value) }) => {
            out.insert("value".into(), json!(value));
        }
        Some(Variant::Completion {
            max_input_length,
            preserve_separators,
        }) => {
            out.insert(
                "analyzer".into(),
                json!(
                    field
                        .analyzer
                        .as_deref()
                        .unwrap_or(super::completion::DEFAULT_ANALYZER)
                ),
            );
            out.insert("preserve_separators".into(), json!(preserve_separators));
            out.insert("preserve_position_increments".into(), json!(true));
            out.insert("max_input_length".into(), json!(max_input_length));
        }
        Some(Variant::SearchAsYouType { max_shingle_size }) if *max_shingle_size != 3 => {
            out.insert("max_shingle_size".into(), json!(max_shingle_size));
        }
        Some(Variant::Flattened { depth_limit })
            if *depth_limit != super::variant::DEFAULT_FLATTENED_DEPTH =>
        {
            out.insert("depth_limit".into(), json!(depth_limit));
        }
        _ => {}
    }
    if let Some(analyzer) = &field.analyzer {
        out.insert("analyzer".into(), json!(analyzer));
    }
    if let Some(analyzer) = &field.search_analyzer {
        out.insert("search_analyzer".into(), json!(analyzer));
    }
    if let Some(normalizer) = &field.normalizer {
        out.insert("normalizer".into(), json!(normalizer));
    }
    if let Some(index) = field.index {
        out.insert("index".into(), json!(index));
    }
    match field.copy_to.as_slice() {
        [] => {}
        targets => {
            out.insert("copy_to".into(), json!(targets));
        }
    }
    if let Some(null_value) = &field.null_value {
        out.insert("null_value".into(), null_value.clone());
    }
    render_accepted(field, out);
    if let Some(limit) = field.ignore_above {
        out.insert("ignore_above".into(), json!(limit));
    }
    if let Some(format) = &field.format {
        out.insert("format".into(), json!(format));
    }
    // A search_as_you_type field's subfields are made from it, never declared.
    let declared = !matches!(field.variant, Some(Variant::SearchAsYouType { .. }));
    if declared && !field.fields.is_empty() {
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
