//! Conversion of documents under their mapping: types, dynamic fields, limits.
use super::*;
use crate::id::DocId;
use cameodb_schema::fields as schema;
use serde_json::json;

fn convert(mapping: &Mapping, doc: Value) -> Result<(IndexDoc, Option<Mapping>)> {
    let (_, fields) = schema::build();
    let key = DocKey::new(DocId::new("1").unwrap(), None).unwrap();
    let Value::Object(obj) = doc else {
        panic!("test docs are objects")
    };
    to_index_doc(
        mapping,
        &key,
        &obj,
        &cameodb_schema::Analysis::default(),
        &fields,
    )
}

#[test]
fn dynamic_mapping_follows_elasticsearch_rules() {
    let (_, updated) = convert(
        &Mapping::default(),
        json!({"title": "Dune", "year": 1965, "rating": 4.5, "ok": true, "at": "2020-01-02", "user": {"name": "x"}}),
    )
    .unwrap();
    let mapping = updated.expect("new fields extend the mapping");
    let ty = |p: &str| mapping.get(p).map(|f| f.field_type);
    assert_eq!(ty("title"), Some(FieldType::Text));
    assert_eq!(
        mapping.get("title").unwrap().fields["keyword"].ignore_above,
        Some(256)
    );
    assert_eq!(ty("year"), Some(FieldType::Long));
    assert_eq!(ty("rating"), Some(FieldType::Float));
    assert_eq!(ty("ok"), Some(FieldType::Boolean));
    assert_eq!(ty("at"), Some(FieldType::Date));
    assert_eq!(ty("user"), Some(FieldType::Object));
    assert_eq!(ty("user.name"), Some(FieldType::Text));
    // Second document of the same shape needs no mapping change.
    let (_, again) = convert(&mapping, json!({"title": "Emma", "year": 1815})).unwrap();
    assert!(again.is_none());
}

#[test]
fn mapped_types_coerce_or_reject() {
    let mapping = Mapping::from_es_json(&json!({"properties": {
        "n": {"type": "integer"}, "d": {"type": "date"}, "b": {"type": "boolean"}
    }}))
    .unwrap();
    assert!(convert(&mapping, json!({"n": "42"})).is_ok());
    assert!(convert(&mapping, json!({"n": 4.7})).is_ok());
    assert!(convert(&mapping, json!({"n": "forty"})).is_err());
    assert!(convert(&mapping, json!({"n": 3_000_000_000i64})).is_err());
    assert!(convert(&mapping, json!({"n": true})).is_err());
    assert!(convert(&mapping, json!({"n": {"x": 1}})).is_err());
    assert!(convert(&mapping, json!({"d": "yesterday"})).is_err());
    assert!(convert(&mapping, json!({"b": "maybe"})).is_err());
}

#[test]
fn strict_and_false_dynamic() {
    let strict =
        Mapping::from_es_json(&json!({"dynamic": "strict", "properties": {"a": {"type": "long"}}}))
            .unwrap();
    assert!(matches!(
        convert(&strict, json!({"b": 1})),
        Err(StoreError::Schema(SchemaError::StrictDynamic { .. }))
    ));
    let off = Mapping::from_es_json(&json!({"dynamic": false})).unwrap();
    let (_, updated) = convert(&off, json!({"b": 1})).unwrap();
    assert!(updated.is_none());
}

#[test]
fn a_field_cannot_be_both_object_and_value() {
    let (_, mapping) = convert(&Mapping::default(), json!({"a": {"b": 1}})).unwrap();
    let mapping = mapping.unwrap();
    assert!(convert(&mapping, json!({"a": 5})).is_err());
    assert!(convert(&mapping, json!({"a": {"b": {"c": 1}}})).is_err());
    assert!(convert(&Mapping::default(), json!({"": 1})).is_err());
}

#[test]
fn too_many_fields_are_rejected() {
    let wide: Map<String, Value> = (0..1200).map(|i| (format!("f{i}"), json!(i))).collect();
    assert!(convert(&Mapping::default(), Value::Object(wide)).is_err());
}
