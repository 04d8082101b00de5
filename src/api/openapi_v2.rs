//! `/openapi/v2`: the Swagger 2.0 document older clients read, derived from the OpenAPI v3
//! documents of every served group-version (so custom resources appear as soon as their v3
//! document is published).
//!
//! The conversion follows what kube-openapi's v2 builder emits for the same definitions:
//! - `#/components/schemas/X` references become `#/definitions/X`;
//! - a property that v3 wraps as `allOf: [{$ref}]` (to carry a description and default) is
//!   a plain `$ref` beside its description;
//! - v3-only keywords (`nullable`, `anyOf`, `oneOf`, `default` on references) are dropped;
//! - a query/path parameter's `schema` is inlined (`type`, `uniqueItems`), a `requestBody`
//!   becomes the `body` parameter and response `content` becomes one `schema` plus the
//!   operation's `produces`/`consumes`.
//!
//! The document is cached and rebuilt only when the set of v3 documents (their hashes)
//! changes.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};

use crate::api::openapi;
use crate::resources::Registry;

const V3_REF: &str = "#/components/schemas/";
const V2_REF: &str = "#/definitions/";

/// A built v2 document: its JSON bytes and, built on first request, its protobuf form.
#[derive(Debug)]
pub struct SwaggerDocument {
    /// The key of the v3 documents it was built from.
    key: String,
    /// JSON.
    pub json: bytes::Bytes,
    /// The gnostic protobuf encoding (what client-go's `OpenAPISchema()` asks for).
    pub protobuf: bytes::Bytes,
    /// A content hash, served as the ETag.
    pub hash: String,
}

static CACHE: Mutex<Option<Arc<SwaggerDocument>>> = Mutex::new(None);

/// The `/openapi/v2` document for what `registry` serves now.
pub fn document(registry: &Registry) -> Arc<SwaggerDocument> {
    let docs = openapi::shared().all_documents(registry);
    let key: String = docs
        .iter()
        .map(|(p, d)| format!("{p}={};", d.hash))
        .collect();
    if let Some(doc) = CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .filter(|d| d.key == key)
    {
        return doc.clone();
    }
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (_, doc) in &docs {
        let Ok(v3) = serde_json::from_slice::<Value>(&doc.json) else {
            continue;
        };
        if let Some(schemas) = v3.pointer("/components/schemas").and_then(Value::as_object) {
            for (name, s) in schemas {
                definitions
                    .entry(name.clone())
                    .or_insert_with(|| convert_schema(s));
            }
        }
        if let Some(ps) = v3.get("paths").and_then(Value::as_object) {
            for (p, item) in ps {
                paths.insert(p.clone(), convert_path_item(item));
            }
        }
    }
    let swagger = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::api::KUBE_GIT_VERSION},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header"
            }
        },
        "security": [{"BearerToken": []}]
    });
    let json = bytes::Bytes::from(swagger.to_string());
    let protobuf = match crate::api::openapi_v2_proto::encode_document(&swagger) {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => {
            tracing::warn!(error = %e, "the OpenAPI v2 document has no protobuf form");
            bytes::Bytes::new()
        }
    };
    let built = Arc::new(SwaggerDocument {
        key,
        hash: openapi::content_hash(&json),
        json,
        protobuf,
    });
    *CACHE.lock().unwrap_or_else(PoisonError::into_inner) = Some(built.clone());
    built
}

/// A v3 schema as v2 writes it.
fn convert_schema(s: &Value) -> Value {
    match s {
        Value::Object(m) => {
            let mut out = Map::new();
            // `allOf: [{$ref}]` (v3's way to put a description beside a reference).
            if let Some([only]) = m.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
                && let Some(r) = only.get("$ref").and_then(Value::as_str)
            {
                out.insert("$ref".into(), Value::String(convert_ref(r)));
                for (k, v) in m {
                    if !matches!(k.as_str(), "allOf" | "default" | "nullable") {
                        out.insert(k.clone(), convert_schema(v));
                    }
                }
                return Value::Object(out);
            }
            for (k, v) in m {
                match k.as_str() {
                    "nullable" | "anyOf" | "oneOf" => {}
                    "$ref" => {
                        out.insert(
                            k.clone(),
                            Value::String(convert_ref(v.as_str().unwrap_or(""))),
                        );
                    }
                    // Values, not schemas: copied as they are.
                    "default"
                    | "enum"
                    | "example"
                    | "x-kubernetes-group-version-kind"
                    | "x-kubernetes-list-map-keys"
                    | "x-kubernetes-unions"
                    | "required" => {
                        out.insert(k.clone(), v.clone());
                    }
                    "properties" => {
                        let props = v
                            .as_object()
                            .map(|ps| {
                                ps.iter()
                                    .map(|(n, p)| (n.clone(), convert_schema(p)))
                                    .collect::<Map<_, _>>()
                            })
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    _ => {
                        out.insert(k.clone(), convert_schema(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(convert_schema).collect()),
        other => other.clone(),
    }
}

fn convert_ref(r: &str) -> String {
    match r.strip_prefix(V3_REF) {
        Some(name) => format!("{V2_REF}{name}"),
        None => r.to_string(),
    }
}

fn convert_path_item(item: &Value) -> Value {
    let Some(m) = item.as_object() else {
        return item.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "parameters" => {
                out.insert(k.clone(), convert_parameters(v));
            }
            "get" | "put" | "post" | "delete" | "patch" | "head" | "options" => {
                out.insert(k.clone(), convert_operation(v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn convert_parameters(v: &Value) -> Value {
    Value::Array(
        v.as_array()
            .map(|ps| ps.iter().map(convert_parameter).collect())
            .unwrap_or_default(),
    )
}

/// A v3 query/path/header parameter: its `schema` keywords move up beside `name` and `in`.
fn convert_parameter(p: &Value) -> Value {
    let Some(m) = p.as_object() else {
        return p.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        if k == "schema" {
            if let Some(s) = v.as_object() {
                for (sk, sv) in s {
                    out.insert(sk.clone(), sv.clone());
                }
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn convert_operation(op: &Value) -> Value {
    let Some(m) = op.as_object() else {
        return op.clone();
    };
    let mut out = Map::new();
    let mut params = m
        .get("parameters")
        .map(convert_parameters)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut consumes: Vec<Value> = Vec::new();
    if let Some(body) = m.get("requestBody").and_then(Value::as_object) {
        let content = body.get("content").and_then(Value::as_object);
        consumes = content
            .map(|c| c.keys().map(|k| Value::String(k.clone())).collect())
            .unwrap_or_default();
        let schema = content
            .and_then(|c| c.values().next())
            .and_then(|mt| mt.get("schema"))
            .map(convert_schema)
            .unwrap_or_else(|| json!({"type": "object"}));
        params.insert(
            0,
            json!({
                "name": "body",
                "in": "body",
                "required": body.get("required").cloned().unwrap_or(Value::Bool(false)),
                "schema": schema,
            }),
        );
    }
    let mut produces: Vec<Value> = Vec::new();
    let mut responses = Map::new();
    if let Some(rs) = m.get("responses").and_then(Value::as_object) {
        for (code, r) in rs {
            let mut resp = Map::new();
            resp.insert(
                "description".into(),
                r.get("description").cloned().unwrap_or(json!("")),
            );
            if let Some(content) = r.get("content").and_then(Value::as_object) {
                for t in content.keys() {
                    let t = Value::String(t.clone());
                    if !produces.contains(&t) {
                        produces.push(t);
                    }
                }
                if let Some(s) = content.values().next().and_then(|mt| mt.get("schema")) {
                    resp.insert("schema".into(), convert_schema(s));
                }
            }
            responses.insert(code.clone(), Value::Object(resp));
        }
    }
    for (k, v) in m {
        match k.as_str() {
            "parameters" | "requestBody" | "responses" => {}
            "description" => {
                out.insert(k.clone(), v.clone());
                if !consumes.is_empty() {
                    out.insert("consumes".into(), Value::Array(consumes.clone()));
                }
                if !produces.is_empty() {
                    out.insert("produces".into(), Value::Array(produces.clone()));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    out.insert("responses".into(), Value::Object(responses));
    out.insert("schemes".into(), json!(["https"]));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_of_reference_becomes_plain_ref() {
        let v3 = json!({
            "description": "d",
            "allOf": [{"$ref": "#/components/schemas/io.k8s.X"}],
            "default": {}
        });
        assert_eq!(
            convert_schema(&v3),
            json!({"$ref": "#/definitions/io.k8s.X", "description": "d"})
        );
    }

    #[test]
    fn nested_references_and_v3_keywords() {
        let v3 = json!({
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/io.k8s.Y", "default": {}}},
                "m": {"type": "object", "nullable": true, "additionalProperties": {"type": "string"}}
            },
            "required": ["items"],
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "Z", "version": "v1"}]
        });
        let v2 = convert_schema(&v3);
        assert_eq!(
            v2.pointer("/properties/items/items/$ref"),
            Some(&json!("#/definitions/io.k8s.Y"))
        );
        assert_eq!(v2.pointer("/properties/m/nullable"), None);
        assert_eq!(
            v2.pointer("/properties/m/additionalProperties/type"),
            Some(&json!("string"))
        );
        assert_eq!(v2["required"], json!(["items"]));
    }

    #[test]
    fn operation_body_parameters_and_responses() {
        let v3 = json!({
            "description": "create a Pod",
            "operationId": "createCoreV1NamespacedPod",
            "parameters": [{"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
            "requestBody": {"content": {"*/*": {"schema": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"}}}, "required": true},
            "responses": {
                "200": {"description": "OK", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"}},
                    "application/yaml": {"schema": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"}}
                }},
                "401": {"description": "Unauthorized"}
            },
            "x-kubernetes-action": "post"
        });
        let v2 = convert_operation(&v3);
        assert_eq!(v2["parameters"][0]["in"], "body");
        assert_eq!(v2["parameters"][0]["required"], true);
        assert_eq!(
            v2["parameters"][0]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Pod"
        );
        assert_eq!(
            v2["parameters"][1],
            json!({"name": "dryRun", "in": "query", "type": "string", "uniqueItems": true})
        );
        assert_eq!(v2["consumes"], json!(["*/*"]));
        assert_eq!(
            v2["produces"],
            json!(["application/json", "application/yaml"])
        );
        assert_eq!(
            v2["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Pod"
        );
        assert_eq!(
            v2["responses"]["401"],
            json!({"description": "Unauthorized"})
        );
        assert_eq!(v2["x-kubernetes-action"], "post");
    }
}
