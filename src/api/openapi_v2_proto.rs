//! Protobuf form of `/openapi/v2`: a Swagger 2.0 JSON document encoded as
//! gnostic's `openapi.v2.Document`.
//!
//! kube-apiserver answers `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
//! (client-go discovery's `OpenAPISchema()`, `kubectl explain`) with kube-openapi's
//! `ToProtoBinary`: gnostic-models' `openapi_v2.ParseDocument` (the JSON read as a
//! yaml.v3 node tree, then the generated `NewDocument` compiler) followed by
//! `proto.Marshal`. This module produces those bytes directly from a
//! `serde_json::Value`, writing the wire format by hand.
//!
//! * Messages and field numbers: github.com/google/gnostic-models
//!   `openapiv2/OpenAPIv2.proto` (package `openapi.v2`).
//! * JSON key → field mapping and oneof selection: the generated compilers in
//!   `openapiv2/OpenAPIv2.go` (`NewDocument`, `NewSchema`, `NewParameter`, ...).
//! * `Any.yaml` (vendor extensions, `default`, `example`, `enum`): gnostic's
//!   `compiler.Marshal`, i.e. yaml.v3 `Marshal` of the node with styles cleared;
//!   reproduced by the small emitter in the `yaml` submodule.
//!
//! Proto3 rules applied (as Go's `proto.Marshal`): fields in field-number order,
//! empty strings / `false` / `0` scalars omitted, present sub-messages always
//! written, oneof members always written, repeated entries in JSON order.
//! Validation gnostic performs that does not change the encoding (allowed and
//! required keys, enum values) is not repeated; unknown non-`x-` keys are skipped.

use serde_json::{Map, Value};

/// Why a Swagger document could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A value has a JSON type the corresponding message field cannot hold.
    #[error("{path}: expected {expected}")]
    UnexpectedType {
        path: String,
        expected: &'static str,
    },
    /// An object matches none of the alternatives of a oneof.
    #[error("{path}: {reason}")]
    Unmatched { path: String, reason: &'static str },
}

/// Encodes a Swagger 2.0 document as the protobuf bytes of gnostic's
/// `openapi.v2.Document`.
pub fn encode_document(swagger: &Value) -> Result<Vec<u8>, EncodeError> {
    let root = Path(None, "");
    fields(obj(swagger, &root)?, DOCUMENT, &root)
}

type R = Result<Vec<u8>, EncodeError>;

/// Location inside the document (parent, key); rendered as a JSON pointer for errors only.
struct Path<'a>(Option<&'a Path<'a>>, &'a str);

impl Path<'_> {
    fn child<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path(Some(self), key)
    }

    fn render(&self) -> String {
        let key = self.1.replace('~', "~0").replace('/', "~1");
        self.0
            .map_or(String::new(), |parent| format!("{}/{key}", parent.render()))
    }
}

fn type_err(p: &Path, expected: &'static str) -> EncodeError {
    EncodeError::UnexpectedType {
        path: p.render(),
        expected,
    }
}

fn unmatched(p: &Path, reason: &'static str) -> EncodeError {
    EncodeError::Unmatched {
        path: p.render(),
        reason,
    }
}

fn obj<'v>(v: &'v Value, p: &Path) -> Result<&'v Map<String, Value>, EncodeError> {
    v.as_object().ok_or_else(|| type_err(p, "object"))
}

/// gnostic's `StringForScalarNode`: strings, integers (their text) and null ("").
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Protobuf wire-format writer for one message.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    /// Length-delimited field: sub-message, string or repeated-string element.
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    /// `bool` / `int64` field, omitted when zero.
    fn scalar(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v.to_bits() != 0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

type Enc = fn(&Value, &Path<'_>) -> R;

/// How a JSON key maps onto a message field.
#[derive(Clone, Copy)]
enum K {
    Str,
    Bool,
    I64,
    F64,
    /// `repeated string`.
    Strs,
    /// `Any` holding the YAML text of the value; `Anys` is `repeated Any` from an array.
    Any,
    Anys,
    Msg(Enc),
    /// `repeated` message from an array.
    Msgs(Enc),
    /// Wrapper with `repeated Named* additional_properties = 1`, one entry per key.
    Map(Enc),
    /// `repeated NamedAny vendor_extension`, one entry per `x-` key (JSON key unused).
    Ext,
}

type Field = (&'static str, u32, K);

/// Encodes `m` following `table`, which is sorted by field number.
fn fields(m: &Map<String, Value>, table: &[Field], p: &Path) -> R {
    let mut out = Msg::default();
    for &(key, num, kind) in table {
        if let K::Ext = kind {
            extensions(&mut out, num, m);
            continue;
        }
        let Some(v) = m.get(key) else { continue };
        let p = p.child(key);
        let array = || v.as_array().into_iter().flatten();
        let bad = |expected| type_err(&p, expected);
        match kind {
            K::Str => out.string(num, &scalar_string(v).ok_or_else(|| bad("string"))?),
            K::Bool => out.scalar(num, v.as_bool().ok_or_else(|| bad("boolean"))?.into()),
            K::I64 => out.scalar(num, v.as_i64().ok_or_else(|| bad("integer"))? as u64),
            K::F64 => out.double(num, v.as_f64().ok_or_else(|| bad("number"))?),
            K::Strs => {
                let items = v.as_array().ok_or_else(|| bad("array of strings"))?;
                for s in items.iter().filter_map(scalar_string) {
                    out.bytes(num, s.as_bytes());
                }
            }
            K::Any => out.bytes(num, &any(v)),
            K::Anys => array().for_each(|item| out.bytes(num, &any(item))),
            K::Msg(enc) => out.bytes(num, &enc(v, &p)?),
            K::Msgs(enc) => {
                for item in array() {
                    out.bytes(num, &enc(item, &p)?);
                }
            }
            K::Map(enc) => {
                let mut wrapper = Msg::default();
                for (k, val) in obj(v, &p)? {
                    wrapper.bytes(1, &named(k, &enc(val, &p.child(k))?));
                }
                out.bytes(num, &wrapper.0);
            }
            K::Ext => {}
        }
    }
    Ok(out.0)
}

/// `Named*{string name = 1; <Message> value = 2}`.
fn named(name: &str, value: &[u8]) -> Vec<u8> {
    let mut m = Msg::default();
    m.string(1, name);
    m.bytes(2, value);
    m.0
}

/// `Any{google.protobuf.Any value = 1 (unset); string yaml = 2}`.
fn any(v: &Value) -> Vec<u8> {
    one(2, yaml::to_yaml(v).as_bytes())
}

fn any_enc(v: &Value, _: &Path) -> R {
    Ok(any(v))
}

fn extensions(out: &mut Msg, num: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        out.bytes(num, &named(k, &any(v)));
    }
}

/// `table! { NAME: number "jsonKey" Kind, ...; }` defines a `&[Field]` constant.
macro_rules! table {
    ($($name:ident: $($num:literal $key:literal $kind:ident $(($enc:path))?),+;)+) => {
        $(const $name: &[Field] = &[$(($key, $num, K::$kind $(($enc))?)),+];)+
    };
}

// Field numbers from OpenAPIv2.proto; JSON keys from the NewX compilers.
table! {
    DOCUMENT: 1 "swagger" Str, 2 "info" Msg(info), 3 "host" Str, 4 "basePath" Str, 5 "schemes" Strs,
        6 "consumes" Strs, 7 "produces" Strs, 8 "paths" Msg(paths), 9 "definitions" Map(schema),
        10 "parameters" Map(parameter), 11 "responses" Map(response),
        12 "security" Msgs(security_requirement), 13 "securityDefinitions" Map(security_definition),
        14 "tags" Msgs(tag), 15 "externalDocs" Msg(external_docs), 16 "" Ext;
    INFO: 1 "title" Str, 2 "version" Str, 3 "description" Str, 4 "termsOfService" Str,
        5 "contact" Msg(contact), 6 "license" Msg(license), 7 "" Ext;
    CONTACT: 1 "name" Str, 2 "url" Str, 3 "email" Str, 4 "" Ext;
    LICENSE: 1 "name" Str, 2 "url" Str, 3 "" Ext;
    EXTERNAL_DOCS: 1 "description" Str, 2 "url" Str, 3 "" Ext;
    TAG: 1 "name" Str, 2 "description" Str, 3 "externalDocs" Msg(external_docs), 4 "" Ext;
    XML: 1 "name" Str, 2 "namespace" Str, 3 "prefix" Str, 4 "attribute" Bool, 5 "wrapped" Bool, 6 "" Ext;
    JSON_REFERENCE: 1 "$ref" Str, 2 "description" Str;
    PATH_ITEM: 1 "$ref" Str, 2 "get" Msg(operation), 3 "put" Msg(operation), 4 "post" Msg(operation),
        5 "delete" Msg(operation), 6 "options" Msg(operation), 7 "head" Msg(operation),
        8 "patch" Msg(operation), 9 "parameters" Msgs(parameters_item), 10 "" Ext;
    OPERATION: 1 "tags" Strs, 2 "summary" Str, 3 "description" Str, 4 "externalDocs" Msg(external_docs),
        5 "operationId" Str, 6 "produces" Strs, 7 "consumes" Strs, 8 "parameters" Msgs(parameters_item),
        9 "responses" Msg(responses), 10 "schemes" Strs, 11 "deprecated" Bool,
        12 "security" Msgs(security_requirement), 13 "" Ext;
    BODY_PARAMETER: 1 "description" Str, 2 "name" Str, 3 "in" Str, 4 "required" Bool,
        5 "schema" Msg(schema), 6 "" Ext;
    // Leading fields of the four *ParameterSubSchema messages (5 only in query/formData).
    NON_BODY_HEAD: 1 "required" Bool, 2 "in" Str, 3 "description" Str, 4 "name" Str, 5 "allowEmptyValue" Bool;
    // Primitive-validation block shared by parameter sub-schemas, PrimitivesItems and
    // Header; numbers are offsets from the message's first block field.
    PRIMITIVE: 0 "type" Str, 1 "format" Str, 2 "items" Msg(primitives_items), 3 "collectionFormat" Str,
        4 "default" Any, 5 "maximum" F64, 6 "exclusiveMaximum" Bool, 7 "minimum" F64,
        8 "exclusiveMinimum" Bool, 9 "maxLength" I64, 10 "minLength" I64, 11 "pattern" Str,
        12 "maxItems" I64, 13 "minItems" I64, 14 "uniqueItems" Bool, 15 "enum" Anys, 16 "multipleOf" F64;
    SCHEMA: 1 "$ref" Str, 2 "format" Str, 3 "title" Str, 4 "description" Str, 5 "default" Any,
        6 "multipleOf" F64, 7 "maximum" F64, 8 "exclusiveMaximum" Bool, 9 "minimum" F64,
        10 "exclusiveMinimum" Bool, 11 "maxLength" I64, 12 "minLength" I64, 13 "pattern" Str,
        14 "maxItems" I64, 15 "minItems" I64, 16 "uniqueItems" Bool, 17 "maxProperties" I64,
        18 "minProperties" I64, 19 "required" Strs, 20 "enum" Anys,
        21 "additionalProperties" Msg(additional_properties), 22 "type" Msg(type_item),
        23 "items" Msg(items_item), 24 "allOf" Msgs(schema), 25 "properties" Map(schema),
        26 "discriminator" Str, 27 "readOnly" Bool, 28 "xml" Msg(xml), 29 "externalDocs" Msg(external_docs),
        30 "example" Any, 31 "" Ext;
    FILE_SCHEMA: 1 "format" Str, 2 "title" Str, 3 "description" Str, 4 "default" Any, 5 "required" Strs,
        6 "type" Str, 7 "readOnly" Bool, 8 "externalDocs" Msg(external_docs), 9 "example" Any, 10 "" Ext;
    RESPONSE: 1 "description" Str, 2 "schema" Msg(schema_item), 3 "headers" Map(header),
        4 "examples" Map(any_enc), 5 "" Ext;
    BASIC_SECURITY: 1 "type" Str, 2 "description" Str, 3 "" Ext;
    API_KEY_SECURITY: 1 "type" Str, 2 "name" Str, 3 "in" Str, 4 "description" Str, 5 "" Ext;
    OAUTH2_IMPLICIT: 1 "type" Str, 2 "flow" Str, 3 "scopes" Map(string_value), 4 "authorizationUrl" Str,
        5 "description" Str, 6 "" Ext;
    // Oauth2PasswordSecurity and Oauth2ApplicationSecurity share this layout.
    OAUTH2_TOKEN: 1 "type" Str, 2 "flow" Str, 3 "scopes" Map(string_value), 4 "tokenUrl" Str,
        5 "description" Str, 6 "" Ext;
    OAUTH2_ACCESS_CODE: 1 "type" Str, 2 "flow" Str, 3 "scopes" Map(string_value),
        4 "authorizationUrl" Str, 5 "tokenUrl" Str, 6 "description" Str, 7 "" Ext;
}

/// `head` fields, then the primitive block numbered from `base`, then `tail`.
fn primitive_table(head: &[Field], base: u32, tail: &[Field]) -> Vec<Field> {
    let block: Vec<Field> = PRIMITIVE
        .iter()
        .map(|&(k, offset, kind)| (k, base + offset, kind))
        .collect();
    [head, &block, tail].concat()
}

macro_rules! table_encoders {
    ($($name:ident => $table:expr;)*) => {$(
        fn $name(v: &Value, p: &Path) -> R {
            fields(obj(v, p)?, $table, p)
        }
    )*};
}

table_encoders! {
    info => INFO;
    contact => CONTACT;
    license => LICENSE;
    external_docs => EXTERNAL_DOCS;
    tag => TAG;
    xml => XML;
    path_item => PATH_ITEM;
    operation => OPERATION;
    schema => SCHEMA;
    response => RESPONSE;
    primitives_items => &primitive_table(&[], 1, &[("", 18, K::Ext)]);
    header => &primitive_table(&[], 1, &[("description", 18, K::Str), ("", 19, K::Ext)]);
}

/// A message holding only one length-delimited field.
fn one(field: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Msg::default();
    m.bytes(field, body);
    m.0
}

/// `Paths{repeated NamedAny vendor_extension = 1; repeated NamedPathItem path = 2}`.
fn paths(v: &Value, p: &Path) -> R {
    let m = obj(v, p)?;
    let mut out = Msg::default();
    extensions(&mut out, 1, m);
    for (k, val) in m.iter().filter(|(k, _)| k.starts_with('/')) {
        out.bytes(2, &named(k, &path_item(val, &p.child(k))?));
    }
    Ok(out.0)
}

/// `Responses{repeated NamedResponseValue response_code = 1; vendor_extension = 2}`,
/// codes matching `^([0-9]{3})$|^(default)$`. `ResponseValue` is a oneof of
/// `Response = 1` | `JsonReference = 2`; `$ref` is not a Response key.
fn responses(v: &Value, p: &Path) -> R {
    let m = obj(v, p)?;
    let mut out = Msg::default();
    let is_code =
        |k: &str| k == "default" || (k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()));
    for (k, val) in m.iter().filter(|(k, _)| is_code(k)) {
        let p = p.child(k);
        let rm = obj(val, &p)?;
        let value = if rm.contains_key("$ref") {
            one(2, &fields(rm, JSON_REFERENCE, &p)?)
        } else if rm.contains_key("description") {
            one(1, &fields(rm, RESPONSE, &p)?)
        } else {
            return Err(unmatched(&p, "response needs `description` or `$ref`"));
        };
        out.bytes(1, &named(k, &value));
    }
    extensions(&mut out, 2, m);
    Ok(out.0)
}

/// `ParametersItem` oneof: `Parameter = 1` | `JsonReference = 2` (`$ref` is not a
/// parameter key, so it selects the reference).
fn parameters_item(v: &Value, p: &Path) -> R {
    let m = obj(v, p)?;
    if m.contains_key("$ref") {
        return Ok(one(2, &fields(m, JSON_REFERENCE, p)?));
    }
    Ok(one(1, &parameter(v, p)?))
}

/// `Parameter` oneof: `BodyParameter = 1` | `NonBodyParameter = 2`, whose own oneof
/// is header = 1, formData = 2, query = 3, path = 4, selected by the `in` enum.
fn parameter(v: &Value, p: &Path) -> R {
    let m = obj(v, p)?;
    let has = |k: &str| m.contains_key(k);
    match m.get("in").and_then(Value::as_str) {
        Some("body") if has("name") && has("schema") => Ok(one(1, &fields(m, BODY_PARAMETER, p)?)),
        // PathParameterSubSchema requires `required`; the others require nothing.
        Some(loc @ ("header" | "formData" | "query" | "path"))
            if loc != "path" || has("required") =>
        {
            // (oneof field, NON_BODY_HEAD fields used, first primitive field number)
            let (num, head, base) = match loc {
                "header" => (1, 4, 5),
                "formData" => (2, 5, 6),
                "query" => (3, 5, 6),
                _ => (4, 4, 5),
            };
            let table = primitive_table(&NON_BODY_HEAD[..head], base, &[("", base + 17, K::Ext)]);
            Ok(one(2, &one(num, &fields(m, &table, p)?)))
        }
        _ => Err(unmatched(
            p,
            "not a body/header/formData/query/path parameter",
        )),
    }
}

/// `SchemaItem` oneof: `Schema = 1` | `FileSchema = 2`. gnostic tries both and keeps
/// the last match, so a valid `type: file` schema becomes a FileSchema.
fn schema_item(v: &Value, p: &Path) -> R {
    let m = obj(v, p)?;
    let file_key =
        |k: &String| k.starts_with("x-") || FILE_SCHEMA.iter().any(|f| !k.is_empty() && f.0 == k);
    let is_file = m.get("type").and_then(Value::as_str) == Some("file") && m.keys().all(file_key);
    if is_file {
        return Ok(one(2, &fields(m, FILE_SCHEMA, p)?));
    }
    Ok(one(1, &schema(v, p)?))
}

/// `AdditionalPropertiesItem` oneof: `Schema schema = 1` | `bool boolean = 2`.
fn additional_properties(v: &Value, p: &Path) -> R {
    match v {
        Value::Object(_) => Ok(one(1, &schema(v, p)?)),
        Value::Bool(b) => Ok(vec![0x10, u8::from(*b)]),
        _ => Err(type_err(p, "schema object or boolean")),
    }
}

/// `ItemsItem{repeated Schema schema = 1}`; gnostic accepts a single schema object.
fn items_item(v: &Value, p: &Path) -> R {
    obj(v, p)?;
    Ok(one(1, &schema(v, p)?))
}

/// `TypeItem{repeated string value = 1}` from a scalar or an array of scalars
/// (gnostic takes the node's text, so `null`/`true`/numbers pass through).
fn type_item(v: &Value, p: &Path) -> R {
    let items: Vec<&Value> = v.as_array().map_or_else(|| vec![v], |a| a.iter().collect());
    let mut out = Msg::default();
    for item in items {
        match item {
            Value::String(s) => out.bytes(1, s.as_bytes()),
            Value::Array(_) | Value::Object(_) => return Err(type_err(p, "type name")),
            scalar => out.bytes(1, scalar.to_string().as_bytes()),
        }
    }
    Ok(out.0)
}

/// `SecurityRequirement{repeated NamedStringArray additional_properties = 1}`;
/// `StringArray{repeated string value = 1}` keeps non-strings as "".
fn security_requirement(v: &Value, p: &Path) -> R {
    let mut out = Msg::default();
    for (k, val) in obj(v, p)? {
        let mut array = Msg::default();
        for item in val.as_array().into_iter().flatten() {
            array.bytes(1, scalar_string(item).unwrap_or_default().as_bytes());
        }
        out.bytes(1, &named(k, &array.0));
    }
    Ok(out.0)
}

/// `SecurityDefinitionsItem` oneof, selected by `type` (and `flow` for oauth2).
fn security_definition(v: &Value, p: &Path) -> R {
    let m = obj(v, p)?;
    let get = |k: &str| m.get(k).and_then(Value::as_str);
    let (num, table) = match (get("type"), get("flow")) {
        (Some("basic"), _) => (1, BASIC_SECURITY),
        (Some("apiKey"), _) => (2, API_KEY_SECURITY),
        (Some("oauth2"), Some("implicit")) => (3, OAUTH2_IMPLICIT),
        (Some("oauth2"), Some("password")) => (4, OAUTH2_TOKEN),
        (Some("oauth2"), Some("application")) => (5, OAUTH2_TOKEN),
        (Some("oauth2"), Some("accessCode")) => (6, OAUTH2_ACCESS_CODE),
        _ => return Err(unmatched(p, "unknown security scheme type/flow")),
    };
    Ok(one(num, &fields(m, table, p)?))
}

/// `NamedString.value` of `Oauth2Scopes{repeated NamedString additional_properties = 1}`
/// (written even when empty, where gnostic would omit it).
fn string_value(v: &Value, p: &Path) -> R {
    scalar_string(v)
        .map(String::into_bytes)
        .ok_or_else(|| type_err(p, "string"))
}

/// The text gnostic stores in `Any.yaml`: yaml.v3 `Marshal` of the value's node
/// after `compiler.Marshal` cleared its styles. Reproduces yaml.v3's encoder
/// (`encode.go`: strings that would resolve to another tag are double-quoted) and
/// its libyaml-derived emitter (`emitterc.go`) for the forms kube's spec uses:
/// block mappings and sequences (4-space indent, sequence items indented by 2),
/// `{}`/`[]` for empty collections, plain, single-quoted and forced double-quoted
/// scalars. Values needing literal blocks, escapes, complex keys or 80-column
/// folding fall back to JSON text, which YAML parsers read as the same value.
mod yaml {
    use serde_json::Value;

    const WIDTH: usize = 80;
    const INDENT: i64 = 4;

    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Seq,
        Key,
        Other,
    }

    pub(super) fn to_yaml(v: &Value) -> String {
        let mut e = Emitter {
            ws: true,
            ind: true,
            ..Emitter::default()
        };
        if e.node(v, -1, Ctx::Other).is_none() {
            return json_fallback(v);
        }
        e.write_indent(0);
        e.out
    }

    /// JSON text, with the characters yaml.v3's reader rejects (DEL, C1 controls) or
    /// folds as line breaks (NEL, LS, PS) escaped; they only occur inside strings.
    fn json_fallback(v: &Value) -> String {
        let mut out = String::new();
        for ch in v.to_string().chars() {
            if matches!(ch, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}') {
                out.push_str(&format!("\\u{:04x}", u32::from(ch)));
            } else {
                out.push(ch);
            }
        }
        out + "\n"
    }

    /// `yaml_emitter_increase_indent` for block collections, yaml.v3 variant.
    fn child_indent(cur: i64, ctx: Ctx) -> i64 {
        match (cur < 0, ctx) {
            (true, _) => 0,
            (false, Ctx::Seq) => cur + 2,
            _ => INDENT * ((cur + INDENT) / INDENT),
        }
    }

    fn is_printable(c: char) -> bool {
        matches!(u32::from(c), 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD)
    }

    /// Whether yaml.v3's `resolve("", s)` yields `!!str`; otherwise the string is quoted.
    fn resolves_to_str(s: &str) -> bool {
        const SPECIAL: &[&str] = &[
            "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
            ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
            "-.Inf", "-.INF",
        ];
        match s.as_bytes().first() {
            _ if SPECIAL.contains(&s) => false,
            Some(b'.') => s.parse::<f64>().is_err(),
            Some(b'0'..=b'9' | b'+' | b'-') => !(is_timestamp(s) || is_number(&s.replace('_', ""))),
            _ => true,
        }
    }

    /// `strconv.ParseInt(s, 0, 64)` prefixed forms, or `yamlStyleFloat`
    /// (`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, finite).
    fn is_number(p: &str) -> bool {
        let u = p.strip_prefix(['+', '-']).unwrap_or(p);
        let digits = |d: &str, r: u32| !d.is_empty() && d.chars().all(|c| c.is_digit(r));
        let radix = match u.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("0x") => 16,
            Some("0o") => 8,
            Some("0b") => 2,
            _ => 0,
        };
        let (mantissa, exp) = u.split_once(['e', 'E']).unwrap_or((u, "0"));
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let float = match mantissa.split_once('.') {
            Some(("", f)) => digits(f, 10),
            Some((i, f)) => digits(i, 10) && (f.is_empty() || digits(f, 10)),
            None => digits(mantissa, 10),
        };
        (radix > 0 && digits(&u[2..], radix))
            || (float && digits(exp, 10) && p.parse::<f64>().is_ok_and(f64::is_finite))
    }

    /// Approximates yaml.v3's timestamp check: `YYYY-M-D`, optionally followed by a time.
    fn is_timestamp(s: &str) -> bool {
        let b = s.as_bytes();
        let short = |x: &str| (1..=2).contains(&x.len()) && x.bytes().all(|c| c.is_ascii_digit());
        let date = b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
        date && s[5..].splitn(3, ['-', 'T', 't', ' ']).take(2).all(short)
    }

    /// `yaml_emitter_analyze_scalar`'s block-plain verdict, for scalars without
    /// line breaks, tabs or non-printable characters.
    fn plain_allowed(s: &str, c: &[char]) -> bool {
        let (Some(&first), Some(&last)) = (c.first(), c.last()) else {
            return true;
        };
        let blank = |i: usize| c.get(i).is_none_or(|&n| n == ' ');
        let indicator = s.starts_with("---")
            || s.starts_with("...")
            || "#,[]{}&*!|>'\"%@`".contains(first)
            || ("?:-".contains(first) && blank(1))
            || (1..c.len())
                .any(|i| (c[i] == ':' && blank(i + 1)) || (c[i] == '#' && c[i - 1] == ' '));
        first != ' ' && last != ' ' && !indicator
    }

    /// Output plus the libyaml emitter's column/whitespace/indention state.
    #[derive(Default)]
    struct Emitter {
        out: String,
        col: usize,
        ws: bool,
        ind: bool,
    }

    impl Emitter {
        fn put(&mut self, c: char) {
            self.out.push(c);
            self.col += 1;
        }

        fn write_indent(&mut self, indent: usize) {
            if !self.ind || self.col > indent || (self.col == indent && !self.ws) {
                self.out.push('\n');
                (self.col, self.ind) = (0, true);
            }
            while self.col < indent {
                self.put(' ');
            }
            self.ws = true;
        }

        fn indicator(&mut self, s: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
            if need_ws && !self.ws {
                self.put(' ');
            }
            s.chars().for_each(|c| self.put(c));
            self.ws = is_ws;
            self.ind &= is_indention;
        }

        fn node(&mut self, v: &Value, cur: i64, ctx: Ctx) -> Option<()> {
            let indent = child_indent(cur, ctx);
            match v {
                Value::Array(a) if a.is_empty() => self.indicator("[]", true, false, false),
                Value::Object(m) if m.is_empty() => self.indicator("{}", true, false, false),
                Value::Array(a) => {
                    for item in a {
                        self.write_indent(indent as usize);
                        self.indicator("-", true, false, true);
                        self.node(item, indent, Ctx::Seq)?;
                    }
                }
                Value::Object(m) => {
                    for (k, val) in m {
                        self.write_indent(indent as usize);
                        self.scalar(k, true, Ctx::Key)?;
                        self.indicator(":", false, false, false);
                        self.node(val, indent, Ctx::Other)?;
                    }
                }
                Value::String(s) => self.scalar(s, true, ctx)?,
                scalar => self.scalar(&scalar.to_string(), false, ctx)?,
            }
            Some(())
        }

        /// yaml.v3's style choice (`encoder.node`, `yaml_emitter_select_scalar_style`)
        /// and the plain / quoted scalar writers; `None` where another form is needed.
        fn scalar(&mut self, s: &str, is_str: bool, ctx: Ctx) -> Option<()> {
            let key = ctx == Ctx::Key;
            let c: Vec<char> = s.chars().collect();
            let special = |&ch: &char| {
                matches!(ch, '\t' | '\n' | '\u{2028}' | '\u{2029}') || !is_printable(ch)
            };
            if (key && s.len() > 128) || c.iter().any(special) {
                return None;
            }
            let quote = if is_str && !resolves_to_str(s) {
                Some('"')
            } else if !plain_allowed(s, &c) {
                Some('\'')
            } else {
                None
            };
            if quote == Some('"') && s.contains(['"', '\\']) {
                return None;
            }
            match quote {
                Some(q) => self.indicator(&q.to_string(), true, false, false),
                None if !c.is_empty() && !self.ws => self.put(' '),
                None => {}
            }
            let mut spaces = false;
            for (i, &ch) in c.iter().enumerate() {
                if ch == ' ' {
                    let inner = quote.is_none() || (i > 0 && i + 1 < c.len());
                    if !key && !spaces && self.col > WIDTH && inner {
                        return None; // yaml.v3 would fold the line here
                    }
                } else if ch == '\'' && quote == Some('\'') {
                    self.put('\'');
                }
                spaces = ch == ' ';
                self.put(ch);
            }
            match quote {
                Some(q) => self.indicator(&q.to_string(), false, false, false),
                None => self.ws &= c.is_empty(),
            }
            self.ind = false;
            Some(())
        }
    }

    #[cfg(test)]
    #[test]
    fn yaml_matches_yaml_v3_marshal() {
        // [value, expected yaml.v3 output]; the last rows are JSON fallbacks.
        let cases = serde_json::json!([
            [[{"group": "", "kind": "Pod", "version": "v1"}], "- group: \"\"\n  kind: Pod\n  version: v1\n"],
            [{"group": "apps", "kind": "Deployment"}, "group: apps\nkind: Deployment\n"],
            ["merge", "merge\n"], [true, "true\n"], [null, "null\n"], [42, "42\n"], [1.5, "1.5\n"],
            ["", "\"\"\n"], ["true", "\"true\"\n"], ["1.5", "\"1.5\"\n"], ["0x1F", "\"0x1F\"\n"],
            ["1_000", "\"1_000\"\n"], ["2024-01-02", "\"2024-01-02\"\n"], ["v1.2", "v1.2\n"], ["a: b", "'a: b'\n"],
            ["it's", "it's\n"], ["'q'", "'''q'''\n"], ["- x", "'- x'\n"], ["/dev/termination-log", "/dev/termination-log\n"],
            [{}, "{}\n"], [{"a": [], "b": {}}, "a: []\nb: {}\n"], [["name", "port"], "- name\n- port\n"],
            [{"a": {"b": [1, 2]}}, "a:\n    b:\n        - 1\n        - 2\n"], [{"true": 1}, "\"true\": 1\n"],
            [[["a"], {"k": {"x": 1}, "y": [{"z": 0}]}], "- - a\n- k:\n    x: 1\n  y:\n    - z: 0\n"],
            [{"k": "a\nb"}, "{\"k\":\"a\\nb\"}\n"], ["tab\there", "\"tab\\there\"\n"],
            ["a\u{2028}b\u{85}", "\"a\\u2028b\\u0085\"\n"]
        ]);
        for case in cases.as_array().into_iter().flatten() {
            let expected = case[1].as_str().unwrap_or_default();
            assert_eq!(to_yaml(&case[0]), expected, "{}", case[0]);
        }
        let long = Value::String("word ".repeat(20) + "end");
        assert_eq!(to_yaml(&long), format!("{long}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A decoded field: varint / fixed64 as a number, length-delimited as bytes.
    #[derive(Debug, PartialEq)]
    enum W {
        Int(u64),
        Bytes(Vec<u8>),
    }

    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0;
        for shift in (0..64).step_by(7) {
            *i += 1;
            v |= u64::from(b[*i - 1] & 0x7f) << shift;
            if b[*i - 1] < 0x80 {
                break;
            }
        }
        v
    }

    /// Generic wire-format decoder: one message into `(field number, value)` pairs.
    fn decode(b: &[u8]) -> Vec<(u32, W)> {
        let (mut out, mut i) = (Vec::new(), 0);
        while i < b.len() {
            let key = varint(b, &mut i);
            let value = match key & 7 {
                0 => W::Int(varint(b, &mut i)),
                1 => {
                    i += 8;
                    W::Int(u64::from_le_bytes(b[i - 8..i].try_into().unwrap()))
                }
                2 => {
                    let len = varint(b, &mut i) as usize;
                    i += len;
                    W::Bytes(b[i - len..i].to_vec())
                }
                t => panic!("unexpected wire type {t}"),
            };
            out.push(((key >> 3) as u32, value));
        }
        out
    }

    /// The field at `path`: numbers separated by '.', `n#k` = k-th occurrence of field n.
    fn at(msg: &[u8], path: &str) -> W {
        let mut cur = W::Bytes(msg.to_vec());
        for step in path.split('.').filter(|s| !s.is_empty()) {
            let (num, nth) = step.split_once('#').unwrap_or((step, "0"));
            let W::Bytes(m) = cur else {
                panic!("{path}: {step} is inside a scalar")
            };
            let mut found = decode(&m).into_iter().filter(|(n, _)| n.to_string() == num);
            cur = found
                .nth(nth.parse().unwrap())
                .unwrap_or_else(|| panic!("{path}: no {step}"))
                .1;
        }
        cur
    }

    fn bytes(msg: &[u8], path: &str) -> Vec<u8> {
        match at(msg, path) {
            W::Bytes(b) => b,
            W::Int(v) => panic!("{path}: varint {v}"),
        }
    }

    fn text(msg: &[u8], path: &str) -> String {
        String::from_utf8(bytes(msg, path)).unwrap()
    }

    fn numbers(msg: &[u8], path: &str) -> Vec<u32> {
        decode(&bytes(msg, path))
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    fn enc(v: Value) -> Vec<u8> {
        encode_document(&v).unwrap()
    }

    #[test]
    fn hand_computed_small_messages() {
        assert_eq!(
            enc(json!({"swagger": "2.0"})),
            [0x0a, 0x03, b'2', b'.', b'0']
        );
        // Fields come out in field-number order whatever the JSON order.
        let doc = enc(json!({"info": {"version": "v1", "title": "K"}, "swagger": "2.0"}));
        let info = [0x12, 0x07, 0x0a, 0x01, b'K', 0x12, 0x02, b'v', b'1'];
        assert_eq!(doc, [&[0x0a, 0x03, b'2', b'.', b'0'][..], &info].concat());
        // Empty sub-messages are still present; empty strings are omitted.
        assert_eq!(enc(json!({"swagger": "", "paths": {}})), [0x42, 0x00]);
        // definitions{NamedSchema{"A", Schema{maximum(7) 5.0, additionalProperties(21){boolean false}}}}
        let doc = enc(json!({"definitions": {"A": {"additionalProperties": false, "maximum": 5}}}));
        let head = [0x4a, 0x15, 0x0a, 0x13, 0x0a, 0x01, b'A', 0x12, 0x0e, 0x39];
        let tail = [0xaa, 0x01, 0x02, 0x10, 0x00];
        assert_eq!(doc, [&head[..], &5f64.to_le_bytes(), &tail].concat());
        // maxLength(11) int64 300, required(19) repeated string incl. "", readOnly(27) bool.
        let b = json!({"readOnly": true, "maxLength": 300, "required": ["a", ""]});
        let schema = bytes(&enc(json!({"definitions": {"B": b}})), "9.1.2");
        let expected = [
            0x58, 0xac, 0x02, 0x9a, 0x01, 0x01, b'a', 0x9a, 0x01, 0x00, 0xd8, 0x01, 0x01,
        ];
        assert_eq!(schema, expected);
    }

    #[test]
    fn errors_name_the_location() {
        let doc = json!({"paths": {"/x": {"get": {"parameters": [{"in": "cookie"}]}}}});
        let err = encode_document(&doc).unwrap_err();
        assert!(
            matches!(&err, EncodeError::Unmatched { path, .. } if path == "/paths/~1x/get/parameters")
        );
        assert!(matches!(
            encode_document(&json!([])),
            Err(EncodeError::UnexpectedType { .. })
        ));
        let err = encode_document(&json!({"definitions": {"A": {"readOnly": "yes"}}})).unwrap_err();
        assert_eq!(err.to_string(), "/definitions/A/readOnly: expected boolean");
    }

    #[test]
    fn sample_document_round_trips() {
        let pod = json!({"$ref": "#/definitions/io.k8s.api.core.v1.Pod"});
        let gvk = json!({"group": "", "kind": "Pod", "version": "v1"});
        let doc = enc(json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.30.0"},
            "paths": {"/api/v1/namespaces/{namespace}/pods": {
                "post": {
                    "description": "create a Pod", "consumes": ["*/*"],
                    "produces": ["application/json", "application/yaml"], "schemes": ["https"],
                    "tags": ["core_v1"], "operationId": "createCoreV1NamespacedPod",
                    "parameters": [
                        {"name": "body", "in": "body", "required": true, "schema": pod},
                        {"uniqueItems": true, "type": "string", "description": "dry run", "name": "dryRun", "in": "query"}
                    ],
                    "responses": {"200": {"description": "OK", "schema": pod}, "401": {"description": "Unauthorized"}},
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": gvk
                },
                "parameters": [
                    {"uniqueItems": true, "type": "string", "description": "object name and auth scope",
                     "name": "namespace", "in": "path", "required": true},
                    {"$ref": "#/parameters/pretty-tJGM1-ng"}
                ]
            }},
            "definitions": {"io.k8s.api.core.v1.Pod": {
                "description": "Pod is a collection of containers.", "type": "object", "required": ["spec"],
                "properties": {
                    "metadata": {"default": {}, "$ref": "#/definitions/ObjectMeta"},
                    "spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"},
                    "containers": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
                        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
                },
                "x-kubernetes-group-version-kind": [gvk]
            }},
            "parameters": {"pretty-tJGM1-ng":
                {"uniqueItems": true, "type": "string", "description": "pretty", "name": "pretty", "in": "query"}},
            "securityDefinitions": {"BearerToken":
                {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
            "security": [{"BearerToken": []}]
        }));
        // Field numbers present in each message, in wire order (= field-number order).
        let op = "8.2.2.4"; // Paths.path → NamedPathItem.value → PathItem.post
        let pod = "9.1.2"; // Definitions → NamedSchema.value
        for (path, want) in [
            ("", &[1, 2, 8, 9, 10, 12, 13][..]),
            ("8.2.2", &[4, 9, 9]),
            (op, &[1, 3, 5, 6, 6, 7, 8, 8, 9, 10, 13, 13]),
            (&format!("{op}.8.1.1"), &[2, 3, 4, 5]), // ParametersItem.parameter → body_parameter
            (&format!("{op}.8#1.1.2.3"), &[2, 3, 4, 6, 20]), // → non_body_parameter → query
            ("8.2.2.9.1.2.4", &[1, 2, 3, 4, 5, 19]), // PathItem.parameters → ... → path sub-schema
            (pod, &[4, 19, 22, 25, 31]),
            (&format!("{pod}.25.1.2"), &[1, 5]),
            (&format!("{pod}.25.1#2.2"), &[22, 23, 31, 31]),
            (&format!("{pod}.25.1#3.2.21.1"), &[5, 22]), // additionalProperties.schema
            ("13.1.2.2", &[1, 2, 3, 4]),                 // SecurityDefinitionsItem.api_key_security
        ] {
            assert_eq!(numbers(&doc, path), want, "{path}");
        }
        let pod_ref = "#/definitions/io.k8s.api.core.v1.Pod";
        for (path, want) in [
            ("1", "2.0"),
            ("2.1", "Kubernetes"),
            ("2.2", "v1.30.0"),
            ("8.2.1", "/api/v1/namespaces/{namespace}/pods"),
            (&format!("{op}.5"), "createCoreV1NamespacedPod"),
            (&format!("{op}.6#1"), "application/yaml"),
            (&format!("{op}.8.1.1.3"), "body"),
            (&format!("{op}.8.1.1.5.1"), pod_ref),
            (&format!("{op}.8#1.1.2.3.4"), "dryRun"),
            (&format!("{op}.8#1.1.2.3.6"), "string"),
            (&format!("{op}.9.1#1.1"), "401"), // Responses.response_code → NamedResponseValue
            (&format!("{op}.9.1.2.1.1"), "OK"), // ResponseValue.response → Response.description
            (&format!("{op}.9.1.2.1.2.1.1"), pod_ref), // Response.schema → SchemaItem.schema
            (&format!("{op}.13.1"), "x-kubernetes-action"),
            (&format!("{op}.13.2.2"), "post\n"), // NamedAny.value → Any.yaml
            (
                &format!("{op}.13#1.2.2"),
                "group: \"\"\nkind: Pod\nversion: v1\n",
            ),
            ("8.2.2.9.1.2.4.4", "namespace"),
            ("8.2.2.9#1.2.1", "#/parameters/pretty-tJGM1-ng"), // ParametersItem.json_reference
            ("9.1.1", "io.k8s.api.core.v1.Pod"),
            (&format!("{pod}.19"), "spec"),
            (&format!("{pod}.22.1"), "object"),
            (
                &format!("{pod}.31.2.2"),
                "- group: \"\"\n  kind: Pod\n  version: v1\n",
            ),
            (&format!("{pod}.25.1#2.1"), "containers"),
            (&format!("{pod}.25.1.2.5.2"), "{}\n"),
            (
                &format!("{pod}.25.1#2.2.23.1.1"),
                "#/definitions/io.k8s.api.core.v1.Container",
            ),
            (&format!("{pod}.25.1#2.2.31#1.2.2"), "merge\n"),
            (&format!("{pod}.25.1#3.2.21.1.5.2"), "\"\"\n"),
            ("10.1.2.2.3.4", "pretty"), // NamedParameter → Parameter.non_body → query.name
            ("12.1.1", "BearerToken"),
            ("12.1.2", ""), // empty StringArray is still present
            ("13.1.2.2.3", "header"),
        ] {
            assert_eq!(text(&doc, path), want, "{path}");
        }
        assert_eq!(at(&doc, &format!("{op}.8.1.1.4")), W::Int(1)); // body required
        assert_eq!(at(&doc, &format!("{op}.8#1.1.2.3.20")), W::Int(1)); // query uniqueItems
    }

    #[test]
    fn file_schema_enum_and_type_arrays() {
        let doc = enc(json!({"paths": {"/f": {"get": {"responses": {
            "200": {"description": "file", "schema": {"type": "file"}},
            "default": {"$ref": "#/responses/err"}
        }}}}}));
        assert_eq!(text(&doc, "8.2.2.2.9.1.2.1.2.2.6"), "file"); // SchemaItem.file_schema.type
        assert_eq!(text(&doc, "8.2.2.2.9.1#1.2.2.1"), "#/responses/err");
        let doc =
            enc(json!({"definitions": {"T": {"type": ["string", "null"], "enum": ["a", 1]}}}));
        let got = ["20.2", "20#1.2", "22.1", "22.1#1"].map(|p| text(&doc, &format!("9.1.2.{p}")));
        assert_eq!(got, ["a\n", "1\n", "string", "null"]);
    }
}
