//! OpenAPI v3: the root index (`/openapi/v3`) and one document per group-version
//! (`/openapi/v3/api/v1`, `/openapi/v3/apis/<g>/<v>`), shaped like kube-apiserver 1.33's.
//!
//! A document has every operation of every served kind (`listCoreV1NamespacedPod`,
//! `patchAppsV1NamespacedDeployment`, … with `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind`; PATCH carries `fieldValidation`, which is how kubectl
//! decides to leave validation of `apply`/`create -f` to the server) and `components.schemas`
//! with the definitions the operations reach, named like upstream (`io.k8s.api.core.v1.Pod`),
//! built from the schema table ([`crate::resources::schema`]): descriptions (for
//! `kubectl explain`), types and formats, `required`, references as `allOf: [{$ref}]`, and the
//! strategic-merge and list/map-type extensions kubectl's client-side apply reads.
//!
//! Documents are built lazily, on first request, and cached as bytes with their hash
//! ([`OpenApi`]); nothing is built at start-up. Custom resources are published with
//! [`OpenApi::set_crd_group_version`] (or built directly with [`crd_group_version`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::resources::schema::{
    self, ListType, MapType, Message, Shape, Special, ValueType, definition_description,
};
use crate::resources::{Registry, ResourceDef};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const REF_PREFIX: &str = "#/components/schemas/";

fn meta(name: &str) -> String {
    format!("{META}.{name}")
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn parse_gv_path(gv: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = gv.split('/').collect();
    match parts.as_slice() {
        ["api", v] => Some(("", *v)),
        ["apis", g, v] => Some((*g, *v)),
        _ => None,
    }
}

/// A stable content hash of `bytes` (hex), for `hash=` query parameters and ETags.
pub fn content_hash(bytes: &[u8]) -> String {
    // FNV-1a, 64 bit, twice with different offsets: stable across runs, enough to bust client
    // caches when a document changes.
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    format!(
        "{:016X}{:016X}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
}

// ---------------------------------------------------------------------------------------------
// Documents and the cache

/// One built document: its JSON bytes and their hash (the `hash` query parameter of the
/// root's `serverRelativeURL`, and a fine `ETag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The serialized document.
    pub json: Bytes,
    /// Hex hash of `json`.
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Document {
        let json = Bytes::from(value.to_string());
        let hash = content_hash(&json);
        Document { json, hash }
    }
}

/// The documents served, built on first use and cached as bytes.
///
/// Built-in group-versions are built from the [`Registry`] (cached per group-version and the
/// registry's kinds in it); custom resources' group-versions are set by the CRD controller
/// with [`OpenApi::set_crd_group_version`] and take precedence.
#[derive(Debug, Default)]
pub struct OpenApi {
    builtin: Mutex<HashMap<String, (String, Arc<Document>)>>,
    crds: Mutex<BTreeMap<String, Arc<Document>>>,
}

impl OpenApi {
    /// An empty cache (builds nothing).
    pub fn new() -> OpenApi {
        OpenApi::default()
    }

    /// The document at `/openapi/v3/<gv>` (`api/v1`, `apis/apps/v1`), or `None` if not served.
    pub fn document(&self, registry: &Registry, gv: &str) -> Option<Arc<Document>> {
        if let Some(doc) = self
            .crds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(gv)
        {
            return Some(doc.clone());
        }
        let (group, version) = parse_gv_path(gv)?;
        let key = fingerprint(registry, group, version)?;
        if let Some((k, doc)) = self
            .builtin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(gv)
            && *k == key
        {
            return Some(doc.clone());
        }
        // Built outside the lock: concurrent first requests may both build, harmlessly.
        let doc = Arc::new(Document::new(&group_version(registry, gv)?));
        self.builtin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(gv.to_string(), (key, doc.clone()));
        Some(doc)
    }

    /// Every served group-version's path (`api/v1`, `apis/apps/v1`) and document: the
    /// registry's, then the CRDs' (building the documents not built yet).
    pub fn all_documents(&self, registry: &Registry) -> Vec<(String, Arc<Document>)> {
        let mut out = Vec::new();
        for (group, versions) in registry.groups() {
            for v in versions {
                let p = gv_path(&group, &v);
                if let Some(doc) = self.document(registry, &p) {
                    out.push((p, doc));
                }
            }
        }
        for (p, doc) in self
            .crds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if !out.iter().any(|(q, _)| q == p) {
                out.push((p.clone(), doc.clone()));
            }
        }
        out
    }

    /// The root index `/openapi/v3` as JSON bytes: every group-version of `registry` and every
    /// CRD group-version, each with the hash of its document.
    pub fn root(&self, registry: &Registry) -> Bytes {
        let mut paths = Map::new();
        for (p, doc) in self.all_documents(registry) {
            paths.insert(p.clone(), root_entry(&p, &doc.hash));
        }
        Bytes::from(json!({"paths": paths}).to_string())
    }

    /// Publish (or, with no kinds, withdraw) the document of a custom resources'
    /// group-version; see [`crd_group_version`]. Returns the document.
    pub fn set_crd_group_version(
        &self,
        group: &str,
        version: &str,
        kinds: &[CrdKind<'_>],
    ) -> Option<Arc<Document>> {
        let p = gv_path(group, version);
        let mut crds = self.crds.lock().unwrap_or_else(PoisonError::into_inner);
        if kinds.is_empty() {
            crds.remove(&p);
            return None;
        }
        let doc = Arc::new(Document::new(&crd_group_version(group, version, kinds)));
        crds.insert(p, doc.clone());
        Some(doc)
    }
}

fn root_entry(p: &str, hash: &str) -> Value {
    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")})
}

/// What a group-version's document depends on besides the binary: its kinds as served.
fn fingerprint(registry: &Registry, group: &str, version: &str) -> Option<String> {
    let mut key = String::new();
    for d in registry.in_group_version(group, version) {
        key.push_str(&format!(
            "{}|{}|{}|{}|{}|{};",
            d.kind,
            d.plural,
            d.namespaced,
            d.has_status,
            d.virtual_only,
            d.verbs.join(",")
        ));
    }
    (!key.is_empty()).then_some(key)
}

/// The process-wide cache behind [`root`] and [`group_version_document`]; the CRD controller
/// publishes custom resources into it with [`OpenApi::set_crd_group_version`].
pub fn shared() -> &'static OpenApi {
    static SHARED: OnceLock<OpenApi> = OnceLock::new();
    SHARED.get_or_init(OpenApi::new)
}

/// `/openapi/v3`.
pub fn root(registry: &Registry) -> Value {
    serde_json::from_slice(&shared().root(registry)).unwrap_or(Value::Null)
}

/// [`group_version`] built once per process and cached as bytes (the cheap way to serve it).
pub fn group_version_document(registry: &Registry, gv: &str) -> Option<Arc<Document>> {
    shared().document(registry, gv)
}

/// `/openapi/v3/<api/v1 | apis/g/v>`, or `None` if not served. Builds the document afresh;
/// serve [`group_version_document`] instead.
pub fn group_version(registry: &Registry, gv: &str) -> Option<Value> {
    let (group, version) = parse_gv_path(gv)?;
    let defs: Vec<_> = registry
        .in_group_version(group, version)
        .into_iter()
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut b = Builder::default();
    for d in defs {
        let gvk = gvk(&d.group, &d.version, &d.kind);
        let list_kind = format!("{}List", d.kind);
        let (kind_ref, list_ref) = match (
            schema::message_for_kind(&d.group, &d.version, &d.kind),
            schema::message_for_kind(&d.group, &d.version, &list_kind),
        ) {
            (Some(m), list) => {
                let k = b.add_kind(m, &gvk);
                let l = list.map(|l| b.add_kind(l, &self::gvk(&d.group, &d.version, &list_kind)));
                (k, l)
            }
            // A kind without a built-in schema (a custom resource served without one).
            (None, _) => {
                let name = crd_definition_name(&d.group, &d.version, &d.kind);
                b.schemas
                    .insert(name.clone(), crd_object_schema(None, &gvk));
                let list = format!("{name}List");
                b.schemas.insert(
                    list.clone(),
                    list_schema(&name, &self::gvk(&d.group, &d.version, &list_kind)),
                );
                (name, Some(list))
            }
        };
        b.add_paths(&PathKind::from_def(&d), &kind_ref, list_ref.as_deref());
    }
    Some(b.finish())
}

// ---------------------------------------------------------------------------------------------
// Custom resources

/// One custom kind of a CRD version, as `crd_group_version` publishes it.
#[derive(Debug, Clone, Copy)]
pub struct CrdKind<'a> {
    /// `spec.names.kind`.
    pub kind: &'a str,
    /// `spec.names.listKind` (usually `<kind>List`).
    pub list_kind: &'a str,
    /// `spec.names.plural`.
    pub plural: &'a str,
    /// `spec.scope == "Namespaced"`.
    pub namespaced: bool,
    /// The version has the `status` subresource.
    pub has_status: bool,
    /// The version has the `scale` subresource.
    pub has_scale: bool,
    /// The version's `schema.openAPIV3Schema`, if any.
    pub schema: Option<&'a Value>,
}

/// Upstream's definition name of a custom kind: the group reversed, then version and kind
/// (`stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`).
pub fn crd_definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

/// The document of a custom resources' group-version: the operations of each kind and its
/// schema (the CRD's `openAPIV3Schema` with `apiVersion`, `kind` and `metadata` filled in like
/// upstream, so `kubectl explain <kind>` works), its list and the meta definitions.
pub fn crd_group_version(group: &str, version: &str, kinds: &[CrdKind<'_>]) -> Value {
    let mut b = Builder::default();
    for k in kinds {
        let name = crd_definition_name(group, version, k.kind);
        b.schemas.insert(
            name.clone(),
            crd_object_schema(k.schema, &gvk(group, version, k.kind)),
        );
        let list = crd_definition_name(group, version, k.list_kind);
        b.schemas.insert(
            list.clone(),
            list_schema(&name, &gvk(group, version, k.list_kind)),
        );
        let def = PathKind {
            group,
            version,
            kind: k.kind,
            plural: k.plural,
            namespaced: k.namespaced,
            has_status: k.has_status,
            has_scale: k.has_scale,
            virtual_only: false,
            verbs: crate::resources::STANDARD_VERBS.to_vec(),
            strategic_merge: false,
        };
        b.add_paths(&def, &name, Some(&list));
    }
    b.finish()
}

/// A meta/v1 message of the table (it holds every one the documents reference).
fn meta_message(name: &str) -> Option<Message> {
    schema::message_by_name(&meta(name))
}

fn type_meta_props(object: Message) -> (Value, Value) {
    let describe =
        |name: &str| json!({"description": object.field_description(name), "type": "string"});
    (describe("apiVersion"), describe("kind"))
}

fn pod() -> Option<Message> {
    schema::message_for_kind("", "v1", "Pod")
}

/// A custom kind's schema: the CRD's structural schema, with TypeMeta and ObjectMeta.
fn crd_object_schema(schema: Option<&Value>, gvk: &Value) -> Value {
    let mut s = match schema {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("type".into(), json!("object"));
            m.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            m
        }
    };
    s.entry("type").or_insert_with(|| json!("object"));
    let props = s
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let (Value::Object(props), Some(pod)) = (props, pod()) {
        let (api_version, kind) = type_meta_props(pod);
        props.insert("apiVersion".into(), api_version);
        props.insert("kind".into(), kind);
        props.insert(
            "metadata".into(),
            json!({
                "allOf": [{"$ref": format!("{REF_PREFIX}{}", meta("ObjectMeta"))}],
                "description": pod.field_description("metadata"),
            }),
        );
        let sorted: BTreeMap<String, Value> = std::mem::take(props).into_iter().collect();
        props.extend(sorted);
    }
    s.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
    Value::Object(s)
}

/// `<Kind>List` of a custom kind (or of a kind without a schema).
fn list_schema(item: &str, gvk: &Value) -> Value {
    let list = schema::message_for_kind("", "v1", "PodList");
    let describe = |f: &str| list.map_or("", |l| l.field_description(f));
    json!({
        "description": list.map_or("", Message::description),
        "type": "object",
        "properties": {
            "apiVersion": {"description": describe("apiVersion"), "type": "string"},
            "items": {
                "description": describe("items"),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{item}")},
            },
            "kind": {"description": describe("kind"), "type": "string"},
            "metadata": {
                "allOf": [{"$ref": format!("{REF_PREFIX}{}", meta("ListMeta"))}],
                "description": describe("metadata"),
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk],
    })
}

// ---------------------------------------------------------------------------------------------
// Schemas

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

/// Accumulates the paths and component schemas of one document.
#[derive(Default)]
struct Builder {
    paths: Map<String, Value>,
    schemas: BTreeMap<String, Value>,
}

impl Builder {
    fn finish(mut self) -> Value {
        for name in ["DeleteOptions", "Status", "ObjectMeta", "ListMeta"] {
            if let Some(m) = meta_message(name) {
                self.add_message(m);
            }
        }
        self.add_special(Special::RawExtension);
        self.add_extra("Patch", json!({"type": "object"}));
        let watch_event = json!({
            "type": "object",
            "properties": {
                "object": {"allOf": [reference("io.k8s.apimachinery.pkg.runtime.RawExtension")]},
                "type": {"type": "string", "default": ""},
            },
            "required": ["type", "object"],
        });
        self.add_extra("WatchEvent", watch_event);
        let schemas: Map<String, Value> = self.schemas.into_iter().collect();
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": super::KUBE_GIT_VERSION},
            "paths": self.paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "name": "authorization",
                        "in": "header",
                        "description": "Bearer Token authentication",
                    },
                },
            },
        })
    }

    /// A meta/v1 definition outside the message table, with its upstream description.
    fn add_extra(&mut self, name: &str, mut schema: Value) {
        let full = meta(name);
        if let (Some(d), Value::Object(m)) = (definition_description(&full), &mut schema) {
            m.insert("description".into(), json!(d));
        }
        self.schemas.insert(full, schema);
    }

    /// A top-level kind's schema (with `x-kubernetes-group-version-kind`); returns its name.
    fn add_kind(&mut self, m: Message, gvk: &Value) -> String {
        let name = self.add_message(m);
        if let Some(Value::Object(s)) = self.schemas.get_mut(&name) {
            match s.get_mut("x-kubernetes-group-version-kind") {
                Some(Value::Array(list)) if !list.contains(gvk) => list.push(gvk.clone()),
                Some(_) => {}
                None => {
                    s.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
                }
            }
        }
        name
    }

    /// The schema of `m` and of everything it references; returns its name.
    fn add_message(&mut self, m: Message) -> String {
        let name = m.name().to_string();
        if self.schemas.contains_key(&name) {
            return name;
        }
        // Placeholder first: schemas may be recursive (JSONSchemaProps).
        self.schemas.insert(name.clone(), Value::Null);
        let mut props = BTreeMap::new();
        let mut required = Vec::new();
        if m.has_type_meta() {
            let (api_version, kind) = type_meta_props(m);
            props.insert("apiVersion".to_string(), api_version);
            props.insert("kind".to_string(), kind);
        }
        self.add_fields(m, m, &mut props, &mut required);
        let mut s = Map::new();
        if !m.description().is_empty() {
            s.insert("description".into(), json!(m.description()));
        }
        s.insert("type".into(), json!("object"));
        if !props.is_empty() {
            s.insert(
                "properties".into(),
                Value::Object(props.into_iter().collect()),
            );
        }
        if !required.is_empty() {
            required.sort_unstable();
            s.insert("required".into(), json!(required));
        }
        if m.is_atomic() {
            s.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
        self.schemas.insert(name.clone(), Value::Object(s));
        name
    }

    /// The JSON fields of `m` (looking through inline fields) as properties; descriptions are
    /// the ones `owner` (the object they appear in) gives them.
    fn add_fields(
        &mut self,
        owner: Message,
        m: Message,
        props: &mut BTreeMap<String, Value>,
        required: &mut Vec<&'static str>,
    ) {
        for f in m.fields() {
            if f.is_inline() {
                if let Some(inner) = f.value_message() {
                    self.add_fields(owner, inner, props, required);
                }
                continue;
            }
            let name = f.json_name();
            // k8s-openapi makes every kind's metadata required; upstream does not.
            if f.is_required() && !(owner.has_type_meta() && name == "metadata") {
                required.push(name);
            }
            let mut s = match f.shape() {
                Shape::Single(v) => {
                    let item = self.value_schema(v);
                    if item.get("$ref").is_some() {
                        json!({"allOf": [item]})
                    } else {
                        item
                    }
                }
                Shape::List(v) => json!({"type": "array", "items": self.value_schema(v)}),
                Shape::Map(v) => {
                    json!({"type": "object", "additionalProperties": self.value_schema(v)})
                }
            };
            if let Value::Object(s) = &mut s {
                let d = owner.field_description(name);
                let d = if d.is_empty() {
                    m.field_description(name)
                } else {
                    d
                };
                if !d.is_empty() {
                    s.insert("description".into(), json!(d));
                }
                let mut strategy = Vec::new();
                if f.patch_merge() {
                    strategy.push("merge");
                }
                if f.patch_retain_keys() {
                    strategy.push("retainKeys");
                }
                if f.patch_replace() {
                    strategy.push("replace");
                }
                if !strategy.is_empty() {
                    s.insert(
                        "x-kubernetes-patch-strategy".into(),
                        json!(strategy.join(",")),
                    );
                }
                if let Some(key) = f.patch_merge_key() {
                    s.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                }
                match f.list_type() {
                    Some(ListType::Atomic) => {
                        s.insert("x-kubernetes-list-type".into(), json!("atomic"));
                    }
                    Some(ListType::Set) => {
                        s.insert("x-kubernetes-list-type".into(), json!("set"));
                    }
                    Some(ListType::Map(keys)) => {
                        s.insert("x-kubernetes-list-type".into(), json!("map"));
                        s.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                    }
                    None => {}
                }
                match f.map_type() {
                    Some(MapType::Atomic) => {
                        s.insert("x-kubernetes-map-type".into(), json!("atomic"));
                    }
                    Some(MapType::Granular) => {
                        s.insert("x-kubernetes-map-type".into(), json!("granular"));
                    }
                    None => {}
                }
            }
            props.insert(name.to_string(), s);
        }
    }

    /// The schema of one value: a primitive type, or a `$ref` (adding the definition).
    fn value_schema(&mut self, v: ValueType) -> Value {
        match v {
            ValueType::String => json!({"type": "string"}),
            ValueType::Bool => json!({"type": "boolean"}),
            ValueType::Int32 => json!({"type": "integer", "format": "int32"}),
            ValueType::Int64 => json!({"type": "integer", "format": "int64"}),
            ValueType::Double => json!({"type": "number", "format": "double"}),
            ValueType::Bytes => json!({"type": "string", "format": "byte"}),
            ValueType::Message(m) => reference(&self.add_message(m)),
            ValueType::Special(Special::Duration) => json!({"type": "string"}),
            ValueType::Special(Special::StringList) => {
                json!({"type": "array", "items": {"type": "string"}})
            }
            ValueType::Special(s) => match self.add_special(s) {
                Some(name) => reference(&name),
                None => json!({}),
            },
        }
    }

    /// The definition of a special type, as upstream's v3 documents spell it.
    fn add_special(&mut self, s: Special) -> Option<String> {
        let name = s.definition_name()?;
        if !self.schemas.contains_key(name) {
            let mut schema = match s {
                Special::Time | Special::MicroTime => {
                    json!({"type": "string", "format": "date-time"})
                }
                Special::Quantity => {
                    json!({"oneOf": [{"type": "string"}, {"type": "number"}]})
                }
                Special::IntOrString => json!({
                    "format": "int-or-string",
                    "oneOf": [{"type": "integer"}, {"type": "string"}],
                }),
                Special::RawExtension | Special::FieldsV1 => json!({"type": "object"}),
                Special::Json => json!({"x-kubernetes-preserve-unknown-fields": true}),
                _ => json!({}),
            };
            if let (Some(d), Value::Object(m)) = (definition_description(name), &mut schema) {
                m.insert("description".into(), json!(d));
            }
            self.schemas.insert(name.to_string(), schema);
        }
        Some(name.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and operations

/// How upstream spells a group in operation ids: `""` → `Core`, `apps` → `Apps`,
/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `stable.example.com` → `StableExampleCom`.
fn group_ident(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .join("")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

const JSON_CONTENT: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const LIST_CONTENT: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const WATCH_CONTENT: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_CONTENT: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Custom kinds take no strategic merge patches.
const PATCH_CONTENT_CUSTOM: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];

fn content(types: &[&str], schema_name: &str) -> Value {
    let mut m = Map::new();
    for t in types {
        m.insert((*t).to_string(), json!({"schema": reference(schema_name)}));
    }
    Value::Object(m)
}

fn responses(codes: &[(&str, &str)], types: &[&str], schema_name: &str) -> Value {
    let mut m = Map::new();
    for (code, text) in codes {
        m.insert(
            (*code).to_string(),
            json!({"description": text, "content": content(types, schema_name)}),
        );
    }
    m.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(m)
}

fn body(types: &[&str], schema_name: &str) -> Value {
    json!({"content": content(types, schema_name), "required": true})
}

/// Query parameters, by name; descriptions summarise the API conventions.
fn param(name: &str) -> Value {
    let (ty, description) = match name {
        "allowWatchBookmarks" => (
            "boolean",
            "Requests watch events of type BOOKMARK; servers may ignore it.",
        ),
        "continue" => (
            "string",
            "The continue token of a previous paginated list response, to fetch the next page.",
        ),
        "dryRun" => (
            "string",
            "When present (the only valid value is All), modifications are not persisted.",
        ),
        "fieldManager" => (
            "string",
            "The name of the actor or entity making these changes, used to track field ownership.",
        ),
        "fieldSelector" => (
            "string",
            "Restricts the returned objects by their fields. Defaults to everything.",
        ),
        "fieldValidation" => (
            "string",
            "How the server handles unknown and duplicate fields in the request body: Ignore, Warn (the default) or Strict.",
        ),
        "force" => (
            "boolean",
            "Force apply requests to take conflicting fields over from other managers. Only for apply patches.",
        ),
        "gracePeriodSeconds" => (
            "integer",
            "The duration in seconds before the object should be deleted; zero means delete immediately.",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => (
            "boolean",
            "Deletes corrupt objects that cannot be read from storage. Unsafe.",
        ),
        "labelSelector" => (
            "string",
            "Restricts the returned objects by their labels. Defaults to everything.",
        ),
        "limit" => (
            "integer",
            "The maximum number of items of a list response; more are fetched with continue.",
        ),
        "orphanDependents" => (
            "boolean",
            "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
        ),
        "propagationPolicy" => (
            "string",
            "Whether and how garbage collection is performed: Orphan, Background or Foreground.",
        ),
        "resourceVersion" => (
            "string",
            "Constrains which resource versions a request may be served from.",
        ),
        "resourceVersionMatch" => (
            "string",
            "How resourceVersion is applied to list calls: Exact or NotOlderThan.",
        ),
        "sendInitialEvents" => (
            "boolean",
            "With watch=true, starts the watch stream with synthetic events of the current state.",
        ),
        "timeoutSeconds" => (
            "integer",
            "Timeout for the list or watch call, regardless of activity.",
        ),
        "watch" => (
            "boolean",
            "Watch for changes to the described resources and return them as a stream of events.",
        ),
        "pretty" => ("string", "If 'true', the output is pretty printed."),
        _ => ("string", ""),
    };
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": ty, "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

/// What the paths of one kind depend on.
struct PathKind<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    plural: &'a str,
    namespaced: bool,
    has_status: bool,
    has_scale: bool,
    virtual_only: bool,
    verbs: Vec<&'a str>,
    /// PATCH accepts strategic merge patches (built-in kinds only; kubectl's client-side
    /// apply reads this to choose between strategic and JSON merge patches).
    strategic_merge: bool,
}

impl<'a> PathKind<'a> {
    fn from_def(d: &'a ResourceDef) -> PathKind<'a> {
        PathKind {
            group: &d.group,
            version: &d.version,
            kind: &d.kind,
            plural: &d.plural,
            namespaced: d.namespaced,
            has_status: d.has_status,
            has_scale: d.has_scale,
            virtual_only: d.virtual_only,
            verbs: d.verbs.iter().map(String::as_str).collect(),
            strategic_merge: d.custom.is_none(),
        }
    }

    fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// One operation's description.
struct Op<'a> {
    id: String,
    action: &'a str,
    description: String,
    params: &'a [&'a str],
    body: Option<Value>,
    responses: Value,
}

impl Builder {
    fn add_paths(&mut self, d: &PathKind<'_>, kind_ref: &str, list_ref: Option<&str>) {
        let gvk = gvk(d.group, d.version, d.kind);
        let prefix = if d.group.is_empty() {
            format!("/api/{}", d.version)
        } else {
            format!("/apis/{}/{}", d.group, d.version)
        };
        let tag = format!(
            "{}_{}",
            if d.group.is_empty() {
                "core".to_string()
            } else {
                group_ident(d.group).to_lowercase()
            },
            d.version
        );
        let gv_id = format!("{}{}", group_ident(d.group), capitalize(d.version));
        let ns = if d.namespaced { "Namespaced" } else { "" };
        let kind = d.kind;
        let plural = d.plural;
        let ns_seg = if d.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let collection = format!("{prefix}{ns_seg}/{plural}");
        let item = format!("{collection}/{{name}}");
        let mut scope_params = Vec::new();
        let name_param = path_param("name", &format!("name of the {kind}"));
        if d.namespaced {
            scope_params.push(path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        scope_params.push(param("pretty"));
        let status_object = meta("Status");
        let delete_options = meta("DeleteOptions");
        let patch = meta("Patch");
        let watch_event = meta("WatchEvent");

        let mut collection_ops = Vec::new();
        let mut item_ops = Vec::new();
        let mut status_ops = Vec::new();
        if let (true, Some(list_ref)) = (d.allows("list"), list_ref) {
            collection_ops.push((
                "get",
                Op {
                    id: format!("list{gv_id}{ns}{kind}"),
                    action: "list",
                    description: format!("list or watch objects of kind {kind}"),
                    params: LIST_PARAMS,
                    body: None,
                    responses: responses(&[("200", "OK")], LIST_CONTENT, list_ref),
                },
            ));
        }
        if d.allows("create") {
            let codes = &[("200", "OK"), ("201", "Created"), ("202", "Accepted")];
            collection_ops.push((
                "post",
                Op {
                    id: format!("create{gv_id}{ns}{kind}"),
                    action: "post",
                    description: format!("create a {kind}"),
                    params: WRITE_PARAMS,
                    body: Some(body(&["*/*"], kind_ref)),
                    responses: responses(codes, JSON_CONTENT, kind_ref),
                },
            ));
        }
        if d.allows("deletecollection") {
            collection_ops.push((
                "delete",
                Op {
                    id: format!("delete{gv_id}Collection{ns}{kind}"),
                    action: "deletecollection",
                    description: format!("delete collection of {kind}"),
                    params: DELETE_COLLECTION_PARAMS,
                    body: Some(body(&["*/*"], &delete_options)),
                    responses: responses(&[("200", "OK")], JSON_CONTENT, &status_object),
                },
            ));
        }
        if d.allows("get") {
            item_ops.push((
                "get",
                Op {
                    id: format!("read{gv_id}{ns}{kind}"),
                    action: "get",
                    description: format!("read the specified {kind}"),
                    params: &[],
                    body: None,
                    responses: responses(&[("200", "OK")], JSON_CONTENT, kind_ref),
                },
            ));
        }
        if d.allows("update") {
            item_ops.push((
                "put",
                Op {
                    id: format!("replace{gv_id}{ns}{kind}"),
                    action: "put",
                    description: format!("replace the specified {kind}"),
                    params: WRITE_PARAMS,
                    body: Some(body(&["*/*"], kind_ref)),
                    responses: responses(
                        &[("200", "OK"), ("201", "Created")],
                        JSON_CONTENT,
                        kind_ref,
                    ),
                },
            ));
        }
        if d.allows("delete") {
            item_ops.push((
                "delete",
                Op {
                    id: format!("delete{gv_id}{ns}{kind}"),
                    action: "delete",
                    description: format!("delete a {kind}"),
                    params: DELETE_PARAMS,
                    body: Some(body(&["*/*"], &delete_options)),
                    responses: responses(
                        &[("200", "OK"), ("202", "Accepted")],
                        JSON_CONTENT,
                        &status_object,
                    ),
                },
            ));
        }
        if d.allows("patch") {
            item_ops.push((
                "patch",
                Op {
                    id: format!("patch{gv_id}{ns}{kind}"),
                    action: "patch",
                    description: format!("partially update the specified {kind}"),
                    params: PATCH_PARAMS,
                    body: Some(body(
                        if d.strategic_merge {
                            PATCH_CONTENT
                        } else {
                            PATCH_CONTENT_CUSTOM
                        },
                        &patch,
                    )),
                    responses: responses(
                        &[("200", "OK"), ("201", "Created")],
                        JSON_CONTENT,
                        kind_ref,
                    ),
                },
            ));
        }
        if d.has_status && !d.virtual_only {
            let status = |verb: &str, action: &'static str, what: &str| Op {
                id: format!("{verb}{gv_id}{ns}{kind}Status"),
                action,
                description: format!("{what} status of the specified {kind}"),
                params: match action {
                    "patch" => PATCH_PARAMS,
                    "put" => WRITE_PARAMS,
                    _ => &[],
                },
                body: match action {
                    "patch" => Some(body(
                        if d.strategic_merge {
                            PATCH_CONTENT
                        } else {
                            PATCH_CONTENT_CUSTOM
                        },
                        &patch,
                    )),
                    "put" => Some(body(&["*/*"], kind_ref)),
                    _ => None,
                },
                responses: match action {
                    "get" => responses(&[("200", "OK")], JSON_CONTENT, kind_ref),
                    _ => responses(&[("200", "OK"), ("201", "Created")], JSON_CONTENT, kind_ref),
                },
            };
            status_ops.push(("get", status("read", "get", "read")));
            status_ops.push(("put", status("replace", "put", "replace")));
            status_ops.push(("patch", status("patch", "patch", "partially update")));
        }
        let mut scale_ops = Vec::new();
        let scale = schema::message_for_kind("autoscaling", "v1", "Scale");
        if let (true, false, Some(scale)) = (d.has_scale, d.virtual_only, scale) {
            let scale_ref = self.add_kind(scale, &self::gvk("autoscaling", "v1", "Scale"));
            let op = |verb: &str, action: &'static str, what: &str| Op {
                id: format!("{verb}{gv_id}{ns}{kind}Scale"),
                action,
                description: format!("{what} scale of the specified {kind}"),
                params: match action {
                    "patch" => PATCH_PARAMS,
                    "put" => WRITE_PARAMS,
                    _ => &[],
                },
                body: match action {
                    "patch" => Some(body(
                        if d.strategic_merge {
                            PATCH_CONTENT
                        } else {
                            PATCH_CONTENT_CUSTOM
                        },
                        &patch,
                    )),
                    "put" => Some(body(&["*/*"], &scale_ref)),
                    _ => None,
                },
                responses: match action {
                    "get" => responses(&[("200", "OK")], JSON_CONTENT, &scale_ref),
                    _ => responses(
                        &[("200", "OK"), ("201", "Created")],
                        JSON_CONTENT,
                        &scale_ref,
                    ),
                },
            };
            scale_ops.push(("get", op("read", "get", "read")));
            scale_ops.push(("put", op("replace", "put", "replace")));
            scale_ops.push(("patch", op("patch", "patch", "partially update")));
        }
        let mut item_params = vec![name_param.clone()];
        item_params.extend(scope_params.iter().cloned());
        self.add_path(&collection, collection_ops, &scope_params, &gvk, &tag);
        self.add_path(&item, item_ops, &item_params, &gvk, &tag);
        self.add_path(
            &format!("{item}/status"),
            status_ops,
            &item_params,
            &gvk,
            &tag,
        );
        let scale_gvk = self::gvk("autoscaling", "v1", "Scale");
        self.add_path(
            &format!("{item}/scale"),
            scale_ops,
            &item_params,
            &scale_gvk,
            &tag,
        );

        if d.virtual_only {
            return;
        }
        if let (true, Some(list_ref)) = (d.namespaced && d.allows("list"), list_ref) {
            let op = Op {
                id: format!("list{gv_id}{kind}ForAllNamespaces"),
                action: "list",
                description: format!("list or watch objects of kind {kind}"),
                params: LIST_PARAMS,
                body: None,
                responses: responses(&[("200", "OK")], LIST_CONTENT, list_ref),
            };
            self.add_path(
                &format!("{prefix}/{plural}"),
                vec![("get", op)],
                &[param("pretty")],
                &gvk,
                &tag,
            );
        }
        if d.allows("watch") {
            let watch = |id: String, action: &'static str, what: String| Op {
                id,
                action,
                description: what,
                params: LIST_PARAMS,
                body: None,
                responses: responses(&[("200", "OK")], WATCH_CONTENT, &watch_event),
            };
            let watch_collection = format!("{prefix}/watch{ns_seg}/{plural}");
            self.add_path(
                &watch_collection,
                vec![(
                    "get",
                    watch(
                        format!("watch{gv_id}{ns}{kind}List"),
                        "watchlist",
                        format!("watch individual changes to a list of {kind}"),
                    ),
                )],
                &scope_params,
                &gvk,
                &tag,
            );
            self.add_path(
                &format!("{watch_collection}/{{name}}"),
                vec![(
                    "get",
                    watch(
                        format!("watch{gv_id}{ns}{kind}"),
                        "watch",
                        format!("watch changes to an object of kind {kind}"),
                    ),
                )],
                &item_params,
                &gvk,
                &tag,
            );
            if d.namespaced {
                self.add_path(
                    &format!("{prefix}/watch/{plural}"),
                    vec![(
                        "get",
                        watch(
                            format!("watch{gv_id}{kind}ListForAllNamespaces"),
                            "watchlist",
                            format!("watch individual changes to a list of {kind}"),
                        ),
                    )],
                    &[param("pretty")],
                    &gvk,
                    &tag,
                );
            }
        }
    }

    fn add_path(
        &mut self,
        path: &str,
        ops: Vec<(&str, Op<'_>)>,
        params: &[Value],
        gvk: &Value,
        tag: &str,
    ) {
        if ops.is_empty() {
            return;
        }
        let mut item = Map::new();
        for (method, op) in ops {
            let mut o = Map::new();
            o.insert("tags".into(), json!([tag]));
            o.insert("description".into(), json!(op.description));
            o.insert("operationId".into(), json!(op.id));
            if !op.params.is_empty() {
                o.insert(
                    "parameters".into(),
                    Value::Array(op.params.iter().map(|p| param(p)).collect()),
                );
            }
            if let Some(b) = op.body {
                o.insert("requestBody".into(), b);
            }
            o.insert("responses".into(), op.responses);
            o.insert("x-kubernetes-action".into(), json!(op.action));
            o.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
            item.insert(method.to_string(), Value::Object(o));
        }
        item.insert("parameters".into(), Value::Array(params.to_vec()));
        self.paths.insert(path.to_string(), Value::Object(item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        &doc["components"]["schemas"][name]
    }

    /// Every `$ref` of `v` names a schema of the document.
    fn refs_resolve(doc: &Value, v: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let name = r.strip_prefix(REF_PREFIX).expect("local ref");
                    assert!(schema(doc, name).is_object(), "dangling {r}");
                }
                m.values().for_each(|x| refs_resolve(doc, x));
            }
            Value::Array(a) => a.iter().for_each(|x| refs_resolve(doc, x)),
            _ => {}
        }
    }

    #[test]
    fn documents_let_kubectl_delegate_validation() {
        let r = Registry::builtin();
        let root = root(&r);
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = group_version(&r, "apis/apps/v1").expect("doc");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert_eq!(patch["x-kubernetes-action"], "patch");
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["dryRun", "fieldManager", "fieldValidation", "force"]
        );
        assert!(group_version(&r, "apis/nope/v1").is_none());
        assert!(group_version(&r, "nope").is_none());
    }

    #[test]
    fn operation_ids_follow_upstream() {
        let r = Registry::builtin();
        let core = group_version(&r, "api/v1").expect("core");
        let ops = [
            (
                "/api/v1/namespaces/{namespace}/pods",
                "get",
                "listCoreV1NamespacedPod",
                "list",
            ),
            (
                "/api/v1/namespaces/{namespace}/pods",
                "post",
                "createCoreV1NamespacedPod",
                "post",
            ),
            (
                "/api/v1/namespaces/{namespace}/pods",
                "delete",
                "deleteCoreV1CollectionNamespacedPod",
                "deletecollection",
            ),
            (
                "/api/v1/namespaces/{namespace}/pods/{name}",
                "get",
                "readCoreV1NamespacedPod",
                "get",
            ),
            (
                "/api/v1/namespaces/{namespace}/pods/{name}",
                "put",
                "replaceCoreV1NamespacedPod",
                "put",
            ),
            (
                "/api/v1/namespaces/{namespace}/pods/{name}/status",
                "patch",
                "patchCoreV1NamespacedPodStatus",
                "patch",
            ),
            (
                "/api/v1/pods",
                "get",
                "listCoreV1PodForAllNamespaces",
                "list",
            ),
            (
                "/api/v1/watch/namespaces/{namespace}/pods",
                "get",
                "watchCoreV1NamespacedPodList",
                "watchlist",
            ),
            (
                "/api/v1/watch/namespaces/{namespace}/pods/{name}",
                "get",
                "watchCoreV1NamespacedPod",
                "watch",
            ),
            (
                "/api/v1/watch/pods",
                "get",
                "watchCoreV1PodListForAllNamespaces",
                "watchlist",
            ),
            ("/api/v1/namespaces", "get", "listCoreV1Namespace", "list"),
            (
                "/api/v1/namespaces/{name}",
                "patch",
                "patchCoreV1Namespace",
                "patch",
            ),
            (
                "/api/v1/watch/namespaces/{name}",
                "get",
                "watchCoreV1Namespace",
                "watch",
            ),
        ];
        for (path, method, id, action) in ops {
            let op = &core["paths"][path][method];
            assert_eq!(op["operationId"], id, "{path} {method}");
            assert_eq!(op["x-kubernetes-action"], action, "{path} {method}");
        }
        let rbac = group_version(&r, "apis/rbac.authorization.k8s.io/v1").expect("rbac");
        assert_eq!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["get"]["operationId"],
            "readRbacAuthorizationV1ClusterRole"
        );
        let authz = group_version(&r, "apis/authorization.k8s.io/v1").expect("authz");
        assert_eq!(
            authz["paths"]["/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews"]
                ["post"]["operationId"],
            "createAuthorizationV1NamespacedLocalSubjectAccessReview"
        );
        assert!(
            authz["paths"]
                .as_object()
                .expect("paths")
                .keys()
                .all(|p| !p.contains("watch"))
        );
    }

    #[test]
    fn schemas_carry_types_docs_and_patch_metadata() {
        let r = Registry::builtin();
        for (group, versions) in r.groups() {
            for v in versions {
                let doc = group_version(&r, &gv_path(&group, &v)).expect("doc");
                refs_resolve(&doc, &doc);
            }
        }
        let core = group_version(&r, "api/v1").expect("core");
        let pod = schema(&core, "io.k8s.api.core.v1.Pod");
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        assert!(
            pod["description"]
                .as_str()
                .expect("d")
                .starts_with("Pod is")
        );
        assert!(pod.get("required").is_none(), "{pod}");
        assert_eq!(
            pod["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(pod["properties"]["kind"]["type"], "string");
        let spec = schema(&core, "io.k8s.api.core.v1.PodSpec");
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["type"], "array");
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert!(
            spec["required"]
                .as_array()
                .expect("req")
                .contains(&json!("containers"))
        );
        assert_eq!(
            spec["properties"]["nodeSelector"]["x-kubernetes-map-type"],
            "atomic"
        );
        assert_eq!(
            spec["properties"]["nodeSelector"]["additionalProperties"]["type"],
            "string"
        );
        assert_eq!(
            spec["properties"]["volumes"]["x-kubernetes-patch-strategy"],
            "merge,retainKeys"
        );
        assert_eq!(
            spec["properties"]["terminationGracePeriodSeconds"]["format"],
            "int64"
        );
        // Inline (embedded) structs are flattened.
        let volume = schema(&core, "io.k8s.api.core.v1.Volume");
        assert!(volume["properties"]["configMap"]["description"].is_string());
        assert!(schema(&core, "io.k8s.api.core.v1.VolumeSource").is_null());
        // Special types.
        let q = schema(&core, "io.k8s.apimachinery.pkg.api.resource.Quantity");
        assert!(q["oneOf"].is_array() && q["description"].is_string());
        let t = schema(&core, "io.k8s.apimachinery.pkg.apis.meta.v1.Time");
        assert_eq!(
            (&t["type"], &t["format"]),
            (&json!("string"), &json!("date-time"))
        );
        let ios = schema(&core, "io.k8s.apimachinery.pkg.util.intstr.IntOrString");
        assert_eq!(ios["format"], "int-or-string");
        let secret = schema(&core, "io.k8s.api.core.v1.Secret");
        assert_eq!(
            secret["properties"]["data"]["additionalProperties"]["format"],
            "byte"
        );
        assert_eq!(
            schema(&core, "io.k8s.api.core.v1.LocalObjectReference")["x-kubernetes-map-type"],
            "atomic"
        );
        assert!(
            schema(&core, "io.k8s.api.core.v1.PodList")["x-kubernetes-group-version-kind"]
                .is_array()
        );
        assert!(schema(&core, "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent").is_object());
        assert!(
            schema(&core, "io.k8s.apimachinery.pkg.apis.meta.v1.Patch")["description"].is_string()
        );

        let apps = group_version(&r, "apis/apps/v1").expect("apps");
        let strategy =
            &schema(&apps, "io.k8s.api.apps.v1.DeploymentSpec")["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        assert_eq!(
            strategy["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
        );
        let crd = group_version(&r, "apis/apiextensions.k8s.io/v1");
        // Not served by the built-in registry (yet): fine either way.
        if let Some(crd) = crd {
            refs_resolve(&crd, &crd);
        }
    }

    #[test]
    fn cache_and_root_agree() {
        let r = Registry::builtin();
        let api = OpenApi::new();
        let doc = api.document(&r, "apis/apps/v1").expect("doc");
        let again = api.document(&r, "apis/apps/v1").expect("doc");
        assert!(Arc::ptr_eq(&doc, &again));
        let parsed: Value = serde_json::from_slice(&doc.json).expect("json");
        assert_eq!(parsed, group_version(&r, "apis/apps/v1").expect("doc"));
        let root: Value = serde_json::from_slice(&api.root(&r)).expect("json");
        assert_eq!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"],
            format!("/openapi/v3/apis/apps/v1?hash={}", doc.hash)
        );
        assert!(api.document(&r, "apis/nope/v1").is_none());
        assert_eq!(
            group_version_document(&r, "api/v1").expect("core").hash,
            api.document(&r, "api/v1").expect("core").hash
        );
    }

    #[test]
    fn crds_are_published() {
        let r = Registry::builtin();
        let api = OpenApi::new();
        let schema_json = json!({
            "type": "object",
            "description": "A cron tab.",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "cronSpec": {"type": "string", "description": "When."},
                    "replicas": {"type": "integer"},
                }},
            },
        });
        let kinds = [CrdKind {
            kind: "CronTab",
            list_kind: "CronTabList",
            plural: "crontabs",
            namespaced: true,
            has_status: false,
            has_scale: true,
            schema: Some(&schema_json),
        }];
        let doc = api
            .set_crd_group_version("stable.example.com", "v1", &kinds)
            .expect("doc");
        let v: Value = serde_json::from_slice(&doc.json).expect("json");
        refs_resolve(&v, &v);
        let s = schema(&v, "com.example.stable.v1.CronTab");
        assert_eq!(
            s["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
        );
        assert_eq!(
            s["properties"]["spec"]["properties"]["cronSpec"]["description"],
            "When."
        );
        assert!(s["properties"]["metadata"]["allOf"].is_array());
        assert!(s["properties"]["apiVersion"]["description"].is_string());
        let patch = &v["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
            ["patch"];
        assert_eq!(
            patch["operationId"],
            "patchStableExampleComV1NamespacedCronTab"
        );
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "CronTab");
        let scale = &v["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale"]
            ["get"];
        assert_eq!(
            scale["operationId"],
            "readStableExampleComV1NamespacedCronTabScale"
        );
        assert_eq!(
            scale["x-kubernetes-group-version-kind"]["group"],
            "autoscaling"
        );
        let root: Value = serde_json::from_slice(&api.root(&r)).expect("json");
        assert!(root["paths"]["apis/stable.example.com/v1"].is_object());
        assert_eq!(
            api.document(&r, "apis/stable.example.com/v1")
                .expect("crd")
                .hash,
            doc.hash
        );
        assert!(
            api.set_crd_group_version("stable.example.com", "v1", &[])
                .is_none()
        );
        assert!(api.document(&r, "apis/stable.example.com/v1").is_none());
    }

    #[test]
    fn group_idents() {
        assert_eq!(group_ident(""), "Core");
        assert_eq!(group_ident("apps"), "Apps");
        assert_eq!(
            group_ident("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(
            group_ident("flowcontrol.apiserver.k8s.io"),
            "FlowcontrolApiserver"
        );
        assert_eq!(group_ident("stable.example.com"), "StableExampleCom");
        assert_eq!(
            crd_definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
    }
}
