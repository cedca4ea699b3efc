//! The OpenAPI 3 document, generated from the model types themselves so it cannot drift from
//! what the server accepts: each collection's schema lists the fields its type serializes.

use axum::Json;
use fabric_model::{with_object_type, Collection};
use serde_json::{json, Map, Value};

fn schema_of(value: &Value) -> Value {
    match value {
        Value::String(_) => json!({"type": "string"}),
        Value::Number(_) => json!({"type": "integer"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Array(_) => json!({"type": "array", "items": {"type": "string"}}),
        _ => json!({"type": "object"}),
    }
}

/// The JSON schema of a collection's objects.
pub fn schema(collection: Collection) -> Value {
    let sample: Value = with_object_type!(collection, T => serde_json::to_value(T::default()).unwrap_or(Value::Null));
    let mut props = Map::new();
    if let Value::Object(fields) = &sample {
        for (name, v) in fields {
            props.insert(name.clone(), schema_of(v));
        }
    }
    json!({"type": "object", "properties": props, "x-key-fields": collection.key_fields()})
}

pub fn build() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let error = json!({"$ref": "#/components/schemas/Error"});
    for c in Collection::ALL {
        let name = c.object_name();
        let obj = json!({"$ref": format!("#/components/schemas/{name}")});
        schemas.insert(name.to_string(), schema(c));
        let key_param = json!([{"name": "key", "in": "path", "required": true, "schema": {"type": "string"},
            "description": format!("{} joined with ':'", c.key_fields().join(", "))}]);
        let ok = |schema: Value| json!({"description": "OK", "content": {"application/json": {"schema": schema}}});
        let err = json!({"description": "error naming the object, field and reason", "content": {"application/json": {"schema": error}}});
        paths.insert(
            format!("/api/v1/{}/", c.rest_name()),
            json!({"get": {"summary": format!("List {name} objects"), "responses": {"200": ok(json!({"type": "array", "items": obj}))}}}),
        );
        let mut item = json!({
            "parameters": key_param,
            "get": {"responses": {"200": ok(obj.clone()), "404": err.clone()}},
        });
        if c.is_config() {
            let write = json!({"requestBody": {"required": true, "content": {"application/json": {"schema": obj}}},
                "responses": {"200": ok(obj.clone()), "400": err.clone(), "409": err.clone(), "422": err.clone()}});
            item["post"] = write.clone();
            item["put"] = write;
            item["delete"] = json!({"responses": {"200": ok(json!({"type": "object"})), "404": err.clone(), "409": err.clone()}});
        }
        paths.insert(format!("/api/v1/{}/{{key}}/", c.rest_name()), item);
        paths.insert(
            format!("/api/v1/inspect/{}/{{key}}/", c.rest_name()),
            json!({"parameters": key_param, "get": {"responses": {"200": ok(json!({"type": "object",
                "properties": {"Config": obj, "Oper": {"type": "object"}}})), "404": err}}}),
        );
    }
    paths.insert(
        "/api/v1/watch".into(),
        json!({"get": {"parameters": [{"name": "since", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "newline-delimited JSON events after `since`", "content": {"application/x-ndjson": {}}}}}}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["message", "reason"], "properties": {
            "message": {"type": "string"}, "object": {"type": "string"}, "field": {"type": "string"}, "reason": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "netmaster", "version": super::service::VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}
