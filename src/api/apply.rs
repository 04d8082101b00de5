//! Server-side apply (structured merge) and `metadata.managedFields` tracking: a pure core.
//!
//! This follows kube-apiserver 1.33 (`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`
//! over `sigs.k8s.io/structured-merge-diff`) as observed from the outside:
//!
//! * [`apply`] merges an applied configuration (`application/apply-patch+yaml`, decoded) into
//!   the live object by schema, removes what the manager applied last time but no longer
//!   applies (unless someone else owns it), detects conflicts with other managers and records
//!   the manager's ownership as an `Apply` entry;
//! * [`record_update`] records the fields a non-apply write (create, PUT, JSON / merge /
//!   strategic patch) changed as owned by its manager in an `Update` entry, taking them from
//!   other managers.
//!
//! Field sets are [`FieldSet`]s, serialized as `FieldsV1` (`f:<field>`, `k:<keys json>`,
//! `v:<value json>`, `i:<index>`, `.` for the node itself). Schemas come through the
//! [`ApplySchema`] trait: [`BuiltinSchema`] (our generated table), [`CrdSchema`] (a CRD's
//! OpenAPI v3 schema) and [`Deduced`] (unknown kinds: objects merge key by key, lists are
//! atomic).
//!
//! Callers own everything around this: creating the object when apply finds none (pass
//! `live = None` and store the result), strategy resets (status on main-resource writes),
//! validation, admission and persistence.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

use crate::resources::schema::{ListType, MapType, Message, Shape, ValueType, message_by_name};

type JsonMap = Map<String, Value>;

/// The manager kube-apiserver attributes fields to when the first apply meets an object
/// without managedFields (all existing fields are recorded as its `Update`).
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The `Update` manager older update entries are merged into beyond [`MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES: &str = "ancient-changes";
/// How many `Update` entries an object keeps before merging the oldest.
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// kubectl's client-side apply annotation.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The longest field manager name kube-apiserver accepts.
pub const FIELD_MANAGER_MAX_LEN: usize = 128;
/// Upstream's limit on the total size of an object's annotations.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One field another manager owns and this apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: Operation,
    /// The other entry's apiVersion (printed for `Update` managers only).
    pub api_version: String,
    /// The other entry's subresource, if any.
    pub subresource: Option<String>,
    /// The field, formatted like upstream (`.spec.replicas`,
    /// `.spec.template.spec.containers[name="nginx"].image`).
    pub field: String,
}

impl Conflict {
    /// Upstream's rendering of the manager: `"kubectl"`, `"x" with subresource "status"`,
    /// `"kubectl-client-side-apply" using apps/v1` (Update managers).
    pub fn manager_display(&self) -> String {
        let mut out = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(" with subresource ");
            out.push_str(&go_quote(sub));
        }
        if self.operation == Operation::Update {
            out.push_str(" using ");
            out.push_str(&self.api_version);
        }
        out
    }

    fn sort_key(&self) -> String {
        self.manager_display()
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 `Conflict`, one
    /// `FieldManagerConflict` cause per field; see [`ApplyError::causes`]).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration carries `metadata.managedFields` (400 BadRequest).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The applied configuration is not an object (400 BadRequest).
    #[error("the applied configuration must be an object")]
    NotAnObject,
    /// The applied configuration (or the live object) does not fit the schema, e.g. a
    /// list-map item without its key. Upstream wraps this as `failed to create typed patch
    /// object (<ns>/<name>; <group/version>, Kind=<kind>): <detail>` and answers 500.
    #[error("{0}")]
    Schema(String),
}

impl ApplyError {
    /// The HTTP status upstream answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::ManagedFieldsInConfig | ApplyError::NotAnObject => 400,
            ApplyError::Schema(_) => 500,
        }
    }

    /// The `metav1.Status` message (same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// `details.causes` for a conflict: `{type: FieldManagerConflict, message: "conflict
    /// with \"m\" …", field: ".spec.replicas"}` per field; empty for other errors.
    pub fn causes(&self) -> Vec<Value> {
        let ApplyError::Conflicts(conflicts) = self else {
            return Vec::new();
        };
        conflicts
            .iter()
            .map(|c| {
                let mut cause = JsonMap::new();
                cause.insert("type".into(), Value::from("FieldManagerConflict"));
                cause.insert(
                    "message".into(),
                    Value::from(format!("conflict with {}", c.manager_display())),
                );
                cause.insert("field".into(), Value::from(c.field.clone()));
                Value::Object(cause)
            })
            .collect()
    }
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_display(),
            c.field
        );
    }
    let mut by_manager: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.manager_display())
            .or_default()
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

use crate::resources::validation::{go_quote, same_json as same, same_json_items as same_items};

// ---------------------------------------------------------------------------------------
// Field paths and sets (FieldsV1)
// ---------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElement {
    /// A struct field or map key (`f:name`).
    Field(String),
    /// A list-map item by its key fields, sorted by name (`k:{"name":"x"}`).
    Key(Vec<(String, Value)>),
    /// A set item by value (`v:"x"`).
    Value(Value),
    /// A positional item (`i:0`).
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 key (`f:replicas`, `k:{"name":"nginx"}`, `v:"a"`, `i:0`).
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(keys) => {
                // The keys as a compact JSON object, in their (sorted) order.
                let mut out = String::from("k:{");
                for (i, (k, v)) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}:{v}", Value::from(k.as_str()));
                }
                out.push('}');
                out
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 key (not `.`).
    pub fn decode(s: &str) -> Result<PathElement, String> {
        let (prefix, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid FieldsV1 key {s:?}"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_owned())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(obj)) => {
                    let mut keys: Vec<(String, Value)> = obj.into_iter().collect();
                    keys.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(keys))
                }
                _ => Err(format!("invalid FieldsV1 key {s:?}")),
            },
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|_| format!("invalid FieldsV1 key {s:?}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|_| format!("invalid FieldsV1 key {s:?}")),
            _ => Err(format!("invalid FieldsV1 key {s:?}")),
        }
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(keys) => {
                f.write_str("[")?;
                for (i, (k, v)) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let c = ka.cmp(kb).then_with(|| cmp_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => cmp_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A total order on JSON values (numbers < strings < booleans < lists < objects < null, like
/// upstream), consistent with `==`.
fn cmp_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let by_value = match (x.as_i64(), y.as_i64()) {
                (Some(i), Some(j)) => i.cmp(&j),
                _ => x
                    .as_f64()
                    .partial_cmp(&y.as_f64())
                    .unwrap_or(Ordering::Equal),
            };
            by_value.then_with(|| x.to_string().cmp(&y.to_string()))
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = cmp_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(_), Value::Object(_)) => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A field path; displays like upstream (`.spec.containers[name="c"].image`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// A path of struct fields / map keys.
    pub fn fields(names: &[&str]) -> FieldPath {
        FieldPath(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_owned()))
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A set of field paths as a trie. A node is a member when the path itself is in the set
/// (FieldsV1 `.`, or an empty object for a leaf); nodes exist only when they are members or
/// have descendants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// An empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// No paths at all.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Adds a path (the empty path is ignored).
    pub fn insert(&mut self, path: &[PathElement]) {
        if path.is_empty() {
            return;
        }
        let mut node = self;
        for pe in path {
            // Cloned only when the node is new (most of a path usually exists).
            if !node.children.contains_key(pe) {
                node.children.insert(pe.clone(), FieldSet::default());
            }
            node = node
                .children
                .get_mut(pe)
                .expect("the child was just found or inserted");
        }
        node.member = true;
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        !path.is_empty() && self.node(path).is_some_and(|n| n.member)
    }

    fn node(&self, path: &[PathElement]) -> Option<&FieldSet> {
        let mut node = self;
        for pe in path {
            node = node.children.get(pe)?;
        }
        Some(node)
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        for (pe, theirs) in &other.children {
            let mine = self.children.entry(pe.clone()).or_default();
            mine.member |= theirs.member;
            mine.union_with(theirs);
        }
    }

    /// Removes the members of `other` (exactly those paths, not their descendants).
    pub fn difference_with(&mut self, other: &FieldSet) {
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                if theirs.member {
                    mine.member = false;
                }
                mine.difference_with(theirs);
                if !mine.member && mine.children.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    /// The members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, mine) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let mut node = mine.intersection(theirs);
                node.member = mine.member && theirs.member;
                if node.member || !node.children.is_empty() {
                    out.children.insert(pe.clone(), node);
                }
            }
        }
        out
    }

    /// Removes `path` and everything under it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            self.children.clear();
            return;
        };
        if rest.is_empty() {
            self.children.remove(first);
            return;
        }
        if let Some(child) = self.children.get_mut(first) {
            child.remove_subtree(rest);
            if !child.member && child.children.is_empty() {
                self.children.remove(first);
            }
        }
    }

    /// Keeps only `path` and what is under it.
    fn retain_subtree(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let kept = self.children.remove(first);
        self.children.clear();
        if let Some(mut child) = kept {
            if !rest.is_empty() {
                child.member = false;
                child.retain_subtree(rest);
            }
            if child.member || !child.children.is_empty() {
                self.children.insert(first.clone(), child);
            }
        }
    }

    /// The member paths, upstream's iteration order (a level's members before its
    /// children's descendants).
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for (pe, child) in &self.children {
            if child.member {
                prefix.push(pe.clone());
                out.push(FieldPath(prefix.clone()));
                prefix.pop();
            }
        }
        for (pe, child) in &self.children {
            if !child.children.is_empty() {
                prefix.push(pe.clone());
                child.collect_paths(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The FieldsV1 JSON form.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_map(false))
    }

    /// This node's FieldsV1 object; `dot` marks it a member (`.`) when it has children.
    fn fields_v1_map(&self, dot: bool) -> JsonMap {
        let dot = dot && !self.children.is_empty();
        let mut obj = JsonMap::with_capacity(self.children.len() + usize::from(dot));
        if dot {
            obj.insert(".".into(), Value::Object(JsonMap::new()));
        }
        for (pe, child) in &self.children {
            obj.insert(
                pe.encode(),
                Value::Object(child.fields_v1_map(child.member)),
            );
        }
        obj
    }

    /// Parses the FieldsV1 JSON form.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(obj) = v else {
            return Err("FieldsV1 must be an object".into());
        };
        let mut out = FieldSet::new();
        for (k, child) in obj {
            if k == "." {
                out.member = true;
                continue;
            }
            let pe = PathElement::decode(k)?;
            let mut node = FieldSet::from_fields_v1(child)?;
            if matches!(child, Value::Object(m) if m.is_empty()) {
                node.member = true;
            }
            if node.member || !node.children.is_empty() {
                out.children.insert(pe, node);
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------

/// How the list items of a list node are identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (a leaf).
    Atomic,
    /// Scalar items, merged by value (`v:`).
    Set,
    /// Object items merged by these key fields (`k:`).
    Map(Vec<String>),
}

/// What a schema node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaKind {
    /// A leaf: replaced and owned as a whole.
    Scalar,
    /// An object: a struct (declared fields) and/or a map (free keys). Atomic objects are
    /// leaves.
    Object {
        /// `+structType=atomic` / `x-kubernetes-map-type: atomic`.
        atomic: bool,
    },
    /// A list.
    List(ListKind),
    /// Untyped: objects are granular maps of untyped values, lists atomic, others scalars.
    Deduced,
}

/// The schema of one node of an object, as server-side apply sees it.
pub trait ApplySchema: Copy {
    /// What this node is.
    fn kind(self) -> SchemaKind;
    /// For an object node, the schema of `key`'s value and whether `key` is a declared
    /// (struct) field rather than a map entry. `None`: unknown key, treated as an untyped
    /// map entry.
    fn child(self, key: &str) -> Option<(Self, bool)>;
    /// For a list node, the schema of its items (`None`: untyped).
    fn item(self) -> Option<Self>;
    /// For an object node used as a list-map item, the default of key field `key`
    /// (upstream fills list-map keys from OpenAPI defaults, e.g. `protocol: TCP`).
    fn key_default(self, _key: &str) -> Option<Value> {
        None
    }
    /// The Go zero value of an object type as kube-apiserver serializes it (fields that are
    /// present even when unset). Creates are compared against it, which decides which new
    /// nodes count as "added" (and get a `.`). Default: `{}`.
    fn zero_value(self) -> Value {
        Value::Object(JsonMap::new())
    }
}

/// The schema of unknown kinds: every object is a granular map, every list atomic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deduced;

impl ApplySchema for Deduced {
    fn kind(self) -> SchemaKind {
        SchemaKind::Deduced
    }
    fn child(self, _key: &str) -> Option<(Self, bool)> {
        None
    }
    fn item(self) -> Option<Self> {
        None
    }
}

/// A node of a built-in kind, described by the generated schema table.
#[derive(Debug, Clone, Copy)]
pub enum BuiltinSchema {
    /// A top-level object of this message (`apiVersion` and `kind` are its fields).
    Kind(Message),
    /// An object of this message; `atomic` when the referring field is `+mapType=atomic`.
    Object(Message, bool),
    /// The list value of a repeated field.
    List(crate::resources::schema::Field),
    /// The map value of a `map<string, V>` field.
    Map(crate::resources::schema::Field),
    /// A leaf (scalars and special types such as Quantity, IntOrString, RawExtension).
    Scalar,
}

impl BuiltinSchema {
    /// The schema of a top-level kind.
    pub fn for_kind(message: Message) -> BuiltinSchema {
        BuiltinSchema::Kind(message)
    }

    fn of_value(vt: ValueType, atomic: bool) -> BuiltinSchema {
        match vt {
            ValueType::Message(m) => BuiltinSchema::Object(m, atomic),
            _ => BuiltinSchema::Scalar,
        }
    }

    fn of_field(field: crate::resources::schema::Field) -> BuiltinSchema {
        match field.shape() {
            Shape::Single(vt) => {
                BuiltinSchema::of_value(vt, field.map_type() == Some(MapType::Atomic))
            }
            Shape::List(_) => BuiltinSchema::List(field),
            Shape::Map(_) => BuiltinSchema::Map(field),
        }
    }

    fn message(self) -> Option<Message> {
        match self {
            BuiltinSchema::Kind(m) | BuiltinSchema::Object(m, _) => Some(m),
            _ => None,
        }
    }
}

/// A field's list semantics: `+listType`, else upstream's defaults from the patch strategy
/// (merge with a key → map keyed by it, merge without a key → set), else atomic.
fn builtin_list_kind(field: crate::resources::schema::Field) -> ListKind {
    match field.list_type() {
        Some(ListType::Atomic) => ListKind::Atomic,
        Some(ListType::Set) => ListKind::Set,
        Some(ListType::Map(keys)) => ListKind::Map(keys.iter().map(|k| (*k).to_owned()).collect()),
        None if field.patch_merge() => match field.patch_merge_key() {
            Some(key) => ListKind::Map(vec![key.to_owned()]),
            None => ListKind::Set,
        },
        None => ListKind::Atomic,
    }
}

/// How deep [`ApplySchema::zero_value`] descends for built-ins (the table has recursive
/// messages, e.g. JSONSchemaProps).
const ZERO_VALUE_DEPTH: usize = 12;

fn builtin_zero(message: Message, depth: usize) -> Value {
    let mut obj = JsonMap::new();
    if depth == 0 {
        return Value::Object(obj);
    }
    builtin_zero_fields(message, depth, &mut obj);
    Value::Object(obj)
}

fn builtin_zero_fields(message: Message, depth: usize, obj: &mut JsonMap) {
    for field in message.fields() {
        if field.is_inline() {
            if let Some(inner) = field.value_message() {
                builtin_zero_fields(inner, depth - 1, obj);
            }
            continue;
        }
        match field.shape() {
            // Go value (non-pointer) structs are present as their own zero value. The table
            // cannot tell pointers from values: `metadata`, `spec`, `status` and required
            // structs are values by convention; other structs count as (nil) pointers.
            Shape::Single(ValueType::Message(m))
                if !m.is_atomic()
                    && field.map_type() != Some(MapType::Atomic)
                    && (field.is_required()
                        || matches!(field.json_name(), "metadata" | "spec" | "status")) =>
            {
                obj.insert(field.json_name().to_owned(), builtin_zero(m, depth - 1));
            }
            _ if field.is_required() => {
                obj.insert(field.json_name().to_owned(), Value::Null);
            }
            _ => {}
        }
    }
}

impl ApplySchema for BuiltinSchema {
    fn kind(self) -> SchemaKind {
        match self {
            BuiltinSchema::Kind(m) => SchemaKind::Object {
                atomic: m.is_atomic(),
            },
            BuiltinSchema::Object(m, atomic) => SchemaKind::Object {
                atomic: atomic || m.is_atomic(),
            },
            BuiltinSchema::List(f) => SchemaKind::List(builtin_list_kind(f)),
            BuiltinSchema::Map(f) => SchemaKind::Object {
                atomic: f.map_type() == Some(MapType::Atomic),
            },
            BuiltinSchema::Scalar => SchemaKind::Scalar,
        }
    }

    fn child(self, key: &str) -> Option<(Self, bool)> {
        match self {
            BuiltinSchema::Kind(m) | BuiltinSchema::Object(m, _) => {
                let type_meta = matches!(self, BuiltinSchema::Kind(_)) || m.has_type_meta();
                if type_meta && (key == "apiVersion" || key == "kind") {
                    return Some((BuiltinSchema::Scalar, true));
                }
                m.field(key).map(|f| (BuiltinSchema::of_field(f), true))
            }
            BuiltinSchema::Map(f) => Some((
                BuiltinSchema::of_value(f.shape().value_type(), false),
                false,
            )),
            BuiltinSchema::List(_) | BuiltinSchema::Scalar => None,
        }
    }

    fn item(self) -> Option<Self> {
        match self {
            BuiltinSchema::List(f) => Some(BuiltinSchema::of_value(f.shape().value_type(), false)),
            _ => None,
        }
    }

    fn key_default(self, key: &str) -> Option<Value> {
        // The only list-map key with an OpenAPI default among the built-ins: the protocol of
        // container and service ports.
        let m = self.message()?;
        (key == "protocol" && m.field("protocol").is_some()).then(|| Value::from("TCP"))
    }

    fn zero_value(self) -> Value {
        match self.message() {
            Some(m) => builtin_zero(m, ZERO_VALUE_DEPTH),
            None => Value::Object(JsonMap::new()),
        }
    }
}

/// A node of a CustomResourceDefinition's `openAPIV3Schema` (structural schema), with
/// `metadata` described by the built-in ObjectMeta like upstream.
#[derive(Debug, Clone, Copy)]
pub enum CrdSchema<'a> {
    /// The root of the custom resource.
    Root(&'a Value),
    /// A node of the OpenAPI schema.
    Node(&'a Value),
    /// A built-in node (metadata, apiVersion, kind).
    Builtin(BuiltinSchema),
}

impl<'a> CrdSchema<'a> {
    /// The schema of a custom resource from its version's `schema.openAPIV3Schema`.
    pub fn new(open_api_v3_schema: &'a Value) -> CrdSchema<'a> {
        CrdSchema::Root(open_api_v3_schema)
    }

    fn node_kind(node: &Value) -> SchemaKind {
        let ext = |name: &str| node.get(name);
        if ext("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return SchemaKind::Scalar;
        }
        let preserve = ext("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        match node.get("type").and_then(Value::as_str) {
            Some("object") => SchemaKind::Object {
                atomic: ext("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
            },
            Some("array") => SchemaKind::List(
                match ext("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListKind::Set,
                    Some("map") => ListKind::Map(
                        ext("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|keys| {
                                keys.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_owned)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ),
                    _ => ListKind::Atomic,
                },
            ),
            None if preserve || node.get("x-kubernetes-embedded-resource").is_some() => {
                SchemaKind::Deduced
            }
            None if node.get("properties").is_some() => SchemaKind::Object { atomic: false },
            None => SchemaKind::Deduced,
            Some(_) => SchemaKind::Scalar,
        }
    }

    fn node_child(node: &'a Value, key: &str) -> Option<(CrdSchema<'a>, bool)> {
        if let Some(prop) = node.get("properties").and_then(|p| p.get(key)) {
            return Some((CrdSchema::Node(prop), true));
        }
        match node.get("additionalProperties") {
            Some(ap @ Value::Object(_)) => Some((CrdSchema::Node(ap), false)),
            _ => None,
        }
    }
}

fn object_meta() -> BuiltinSchema {
    match message_by_name("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") {
        Some(m) => BuiltinSchema::Object(m, false),
        None => BuiltinSchema::Scalar,
    }
}

impl ApplySchema for CrdSchema<'_> {
    fn kind(self) -> SchemaKind {
        match self {
            CrdSchema::Root(_) => SchemaKind::Object { atomic: false },
            CrdSchema::Node(node) => CrdSchema::node_kind(node),
            CrdSchema::Builtin(b) => b.kind(),
        }
    }

    fn child(self, key: &str) -> Option<(Self, bool)> {
        match self {
            CrdSchema::Root(node) => match key {
                "apiVersion" | "kind" => Some((CrdSchema::Builtin(BuiltinSchema::Scalar), true)),
                "metadata" => Some((CrdSchema::Builtin(object_meta()), true)),
                _ => CrdSchema::node_child(node, key),
            },
            CrdSchema::Node(node) => CrdSchema::node_child(node, key),
            CrdSchema::Builtin(b) => b.child(key).map(|(c, d)| (CrdSchema::Builtin(c), d)),
        }
    }

    fn item(self) -> Option<Self> {
        match self {
            CrdSchema::Root(_) => None,
            CrdSchema::Node(node) => node.get("items").map(CrdSchema::Node),
            CrdSchema::Builtin(b) => b.item().map(CrdSchema::Builtin),
        }
    }

    fn key_default(self, key: &str) -> Option<Value> {
        match self {
            CrdSchema::Node(node) => node
                .get("properties")
                .and_then(|p| p.get(key))
                .and_then(|p| p.get("default"))
                .cloned(),
            CrdSchema::Builtin(b) => b.key_default(key),
            CrdSchema::Root(_) => None,
        }
    }
}

/// A schema node or "untyped" (deduced from the value).
#[derive(Clone, Copy)]
enum Ty<S> {
    Typed(S),
    Deduced,
}

impl<S: ApplySchema> Ty<S> {
    fn kind(self) -> SchemaKind {
        match self {
            Ty::Typed(s) => s.kind(),
            Ty::Deduced => SchemaKind::Deduced,
        }
    }

    fn child(self, key: &str) -> (Ty<S>, bool) {
        match self {
            Ty::Typed(s) => match s.child(key) {
                Some((c, declared)) => (Ty::Typed(c), declared),
                None => (Ty::Deduced, false),
            },
            Ty::Deduced => (Ty::Deduced, false),
        }
    }

    fn item(self) -> Ty<S> {
        match self {
            Ty::Typed(s) => s.item().map_or(Ty::Deduced, Ty::Typed),
            Ty::Deduced => Ty::Deduced,
        }
    }

    fn key_default(self, key: &str) -> Option<Value> {
        match self {
            Ty::Typed(s) => s.key_default(key),
            Ty::Deduced => None,
        }
    }
}

/// How a node is walked, given its schema and its value.
enum Walk {
    Leaf,
    Object,
    List(ListKind),
}

fn walk_kind<S: ApplySchema>(ty: Ty<S>, v: &Value) -> Walk {
    match (ty.kind(), v) {
        (SchemaKind::Object { atomic: false } | SchemaKind::Deduced, Value::Object(_)) => {
            Walk::Object
        }
        (SchemaKind::List(kind @ (ListKind::Set | ListKind::Map(_))), Value::Array(_)) => {
            Walk::List(kind)
        }
        _ => Walk::Leaf,
    }
}

// ---------------------------------------------------------------------------------------
// Walkers
// ---------------------------------------------------------------------------------------

fn path_string(path: &[PathElement]) -> String {
    FieldPath(path.to_vec()).to_string()
}

fn item_element<S: ApplySchema>(
    kind: &ListKind,
    item_ty: Ty<S>,
    item: &Value,
    index: usize,
    path: &[PathElement],
) -> Result<PathElement, String> {
    match kind {
        ListKind::Atomic => Ok(PathElement::Index(index)),
        ListKind::Set => Ok(PathElement::Value(item.clone())),
        ListKind::Map(keys) => {
            let Value::Object(obj) = item else {
                return Err(format!(
                    "{}: element {index}: expected map, got {}",
                    path_string(path),
                    item
                ));
            };
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match obj.get(key) {
                    Some(v) if !v.is_null() => v.clone(),
                    _ => item_ty.key_default(key).ok_or_else(|| {
                        format!(
                            "{}: element {index}: associative list with keys has an element \
                             that omits key field {} (and doesn't have default value)",
                            path_string(path),
                            go_quote(key)
                        )
                    })?,
                };
                out.push((key.clone(), value));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(out))
        }
    }
}

/// The path elements of a list's items, in order.
fn list_elements<S: ApplySchema>(
    kind: &ListKind,
    item_ty: Ty<S>,
    items: &[Value],
    path: &[PathElement],
) -> Result<Vec<PathElement>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| item_element(kind, item_ty, item, i, path))
        .collect()
}

/// The fields an applied configuration sets (upstream `ToFieldSet`): leaves, list items,
/// map entries, and declared fields whose value is null or an empty object.
fn to_field_set<S: ApplySchema>(v: &Value, ty: Ty<S>) -> Result<FieldSet, String> {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    field_set_walk(v, ty, &mut path, &mut set)?;
    Ok(set)
}

fn field_set_walk<S: ApplySchema>(
    v: &Value,
    ty: Ty<S>,
    path: &mut Vec<PathElement>,
    set: &mut FieldSet,
) -> Result<(), String> {
    match walk_kind(ty, v) {
        Walk::Leaf => set.insert(path),
        Walk::Object => {
            let Value::Object(obj) = v else {
                return Ok(());
            };
            for (key, child) in obj {
                let (cty, declared) = ty.child(key);
                path.push(PathElement::Field(key.clone()));
                field_set_walk(child, cty, path, set)?;
                let empty = child.is_null() || matches!(child, Value::Object(m) if m.is_empty());
                if empty || !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Walk::List(kind) => {
            let Value::Array(items) = v else {
                return Ok(());
            };
            let item_ty = ty.item();
            let elements = list_elements(&kind, item_ty, items, path)?;
            let mut seen = FieldSet::new();
            for (pe, item) in elements.into_iter().zip(items) {
                let one = [pe];
                if seen.has(&one) {
                    return Err(format!(
                        "{}: duplicate entries for key {}",
                        path_string(path),
                        one[0]
                    ));
                }
                seen.insert(&one);
                let [pe] = one;
                path.push(pe);
                field_set_walk(item, item_ty, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

/// Drops nulls from a value copied from the applied configuration (a typed decode would).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(obj) => Value::Object(
            obj.iter()
                .filter(|(_, c)| !c.is_null())
                .map(|(k, c)| (k.clone(), without_nulls(c)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Merges the applied configuration into the live value (upstream `Merge`). The
/// configuration must have passed [`to_field_set`] (which checks list keys and duplicates).
fn merge<S: ApplySchema>(
    live: &Value,
    cfg: &Value,
    ty: Ty<S>,
    path: &mut Vec<PathElement>,
) -> Result<Value, String> {
    match (walk_kind(ty, cfg), live, cfg) {
        (Walk::Object, Value::Object(lobj), Value::Object(cobj)) => {
            let mut out = lobj.clone();
            for (key, cv) in cobj {
                if cv.is_null() {
                    out.shift_remove(key);
                    continue;
                }
                let (cty, _) = ty.child(key);
                path.push(PathElement::Field(key.clone()));
                let merged = match lobj.get(key) {
                    Some(lv) => merge(lv, cv, cty, path)?,
                    None => without_nulls(cv),
                };
                path.pop();
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Walk::List(kind), Value::Array(litems), Value::Array(citems)) => {
            merge_list(litems, citems, &kind, ty.item(), path).map(Value::Array)
        }
        _ => Ok(without_nulls(cfg)),
    }
}

fn merge_list<S: ApplySchema>(
    litems: &[Value],
    citems: &[Value],
    kind: &ListKind,
    item_ty: Ty<S>,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, String> {
    let lpes = list_elements(kind, item_ty, litems, path)?;
    let cpes = list_elements(kind, item_ty, citems, path)?;
    let mut lindex: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in lpes.iter().enumerate() {
        lindex.entry(pe).or_insert(i);
    }
    let mut cindex: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in cpes.iter().enumerate() {
        if cindex.insert(pe, i).is_some() {
            return Err(format!(
                "{}: duplicate entries for key {pe}",
                path_string(path)
            ));
        }
    }
    let mut done: BTreeMap<&PathElement, ()> = BTreeMap::new();
    let mut out = Vec::with_capacity(litems.len().max(citems.len()));
    let (mut li, mut ci) = (0, 0);
    while li < lpes.len() || ci < cpes.len() {
        if li < lpes.len() {
            let pe = &lpes[li];
            if done.contains_key(pe) || (cindex.contains_key(pe) && lindex.get(pe) != Some(&li)) {
                // A merged key, or a later duplicate of a key the configuration takes over.
                li += 1;
                continue;
            }
            if !cindex.contains_key(pe) {
                out.push(litems[li].clone());
                li += 1;
                continue;
            }
        }
        if ci < cpes.len() {
            let pe = &cpes[ci];
            path.push(pe.clone());
            let merged = match lindex.get(pe) {
                Some(&l) => merge(&litems[l], &citems[ci], item_ty, path)?,
                None => without_nulls(&citems[ci]),
            };
            path.pop();
            out.push(merged);
            done.insert(pe, ());
            ci += 1;
        } else {
            li += 1;
        }
    }
    Ok(out)
}

/// What changed between two values (upstream `Compare`).
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    /// The added and modified paths; takes the added set (a create's whole object) instead
    /// of copying it.
    fn changed(&mut self) -> FieldSet {
        let mut s = std::mem::take(&mut self.added);
        s.union_with(&self.modified);
        s
    }

    fn filter(&mut self, filter: &Filter) {
        filter.apply(&mut self.added);
        filter.apply(&mut self.modified);
        filter.apply(&mut self.removed);
    }
}

fn compare<S: ApplySchema>(old: &Value, new: &Value, ty: Ty<S>) -> Result<Comparison, String> {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    compare_walk(Some(old), Some(new), ty, &mut path, &mut c)?;
    Ok(c)
}

fn compare_walk<S: ApplySchema>(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Ty<S>,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) -> Result<(), String> {
    // The node's shape comes from the new value, or the old one when the new is absent or
    // null.
    let shape_of = match (old, new) {
        (None, None) => return Ok(()),
        // Nothing under an unchanged node changed (most of a pod on a status or binding
        // write): one equality check instead of a walk.
        (Some(o), Some(n)) if same(o, n) => return Ok(()),
        (Some(o), None) => o,
        (None, Some(n)) => n,
        (Some(o), Some(n)) => {
            if n.is_null() {
                o
            } else {
                n
            }
        }
    };
    let kind = walk_kind(ty, shape_of);
    // A present null on one side is an empty container of the other side's shape (not an
    // addition or removal of the node itself).
    let old_c = old.filter(|v| !(v.is_null() && new.is_some_and(|n| !n.is_null())));
    let new_c = new.filter(|v| !(v.is_null() && old.is_some_and(|o| !o.is_null())));
    let both_present = old.is_some() && new.is_some();
    match kind {
        Walk::Leaf => {
            match (old, new) {
                (None, Some(_)) => c.added.insert(path),
                (Some(_), None) => c.removed.insert(path),
                (Some(o), Some(n)) if o != n => c.modified.insert(path),
                _ => {}
            }
            return Ok(());
        }
        Walk::Object => {
            let empty = JsonMap::new();
            let oobj = old_c.and_then(Value::as_object);
            let nobj = new_c.and_then(Value::as_object);
            if old_c.is_some() && oobj.is_none() || new_c.is_some() && nobj.is_none() {
                // Shape changed: a leaf change.
                if both_present {
                    c.modified.insert(path);
                }
                return Ok(());
            }
            let (oo, no) = (oobj.unwrap_or(&empty), nobj.unwrap_or(&empty));
            // managedFields are the record of fields, never one: an object's own (still on
            // the stored version of a write) are not compared.
            let at_metadata = matches!(path.as_slice(), [PathElement::Field(f)] if f == "metadata");
            let keys = oo
                .keys()
                .chain(no.keys().filter(|k| !oo.contains_key(*k)))
                .filter(|k| !(at_metadata && *k == "managedFields"));
            for key in keys {
                let (cty, _) = ty.child(key);
                path.push(PathElement::Field(key.clone()));
                compare_walk(
                    oobj.and_then(|o| o.get(key)),
                    nobj.and_then(|n| n.get(key)),
                    cty,
                    path,
                    c,
                )?;
                path.pop();
            }
        }
        Walk::List(lk) => {
            let oarr = old_c.and_then(Value::as_array);
            let narr = new_c.and_then(Value::as_array);
            if old_c.is_some() && oarr.is_none() || new_c.is_some() && narr.is_none() {
                if both_present {
                    c.modified.insert(path);
                }
                return Ok(());
            }
            let item_ty = ty.item();
            let oi = index_items(&lk, item_ty, oarr, path)?;
            let ni = index_items(&lk, item_ty, narr, path)?;
            let mut pes: Vec<&PathElement> = oi.keys().collect();
            pes.extend(ni.keys().filter(|k| !oi.contains_key(*k)));
            pes.sort();
            for pe in pes {
                let (o, n) = (oi.get(pe), ni.get(pe));
                path.push(pe.clone());
                if o.is_some_and(|v| v.len() > 1) || n.is_some_and(|v| v.len() > 1) {
                    // Duplicated keys: the items are compared as one leaf.
                    match (o, n) {
                        (None, Some(_)) => c.added.insert(path),
                        (Some(_), None) => c.removed.insert(path),
                        (Some(a), Some(b)) if a != b => c.modified.insert(path),
                        _ => {}
                    }
                } else {
                    compare_walk(
                        o.and_then(|v| v.first().copied()),
                        n.and_then(|v| v.first().copied()),
                        item_ty,
                        path,
                        c,
                    )?;
                }
                path.pop();
            }
        }
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// A list's items by path element (several when keys are duplicated).
fn index_items<'v, S: ApplySchema>(
    kind: &ListKind,
    item_ty: Ty<S>,
    items: Option<&'v Vec<Value>>,
    path: &[PathElement],
) -> Result<BTreeMap<PathElement, Vec<&'v Value>>, String> {
    let mut m: BTreeMap<PathElement, Vec<&'v Value>> = BTreeMap::new();
    if let Some(items) = items {
        for (pe, item) in list_elements(kind, item_ty, items, path)?
            .into_iter()
            .zip(items)
        {
            m.entry(pe).or_default().push(item);
        }
    }
    Ok(m)
}

/// Removes from `value` what the applier owned last time (`last`) that nobody owns now
/// (`owned`: every manager's set, the applier's new one included). A declared field counts
/// as owned when anything under it is; list items and map entries only when they are
/// members themselves.
fn prune<S: ApplySchema>(value: &mut Value, ty: Ty<S>, last: &FieldSet, owned: Option<&FieldSet>) {
    match walk_kind(ty, value) {
        Walk::Leaf => {}
        Walk::Object => {
            let Value::Object(obj) = value else {
                return;
            };
            for (pe, lnode) in &last.children {
                let PathElement::Field(name) = pe else {
                    continue;
                };
                let Some(child) = obj.get_mut(name) else {
                    continue;
                };
                let (cty, declared) = ty.child(name);
                let onode = owned.and_then(|o| o.children.get(pe));
                if prune_child(child, cty, declared, lnode, onode) {
                    obj.shift_remove(name);
                }
            }
        }
        Walk::List(kind) => {
            let Value::Array(items) = value else {
                return;
            };
            let item_ty = ty.item();
            let Ok(pes) = list_elements(&kind, item_ty, items, &[]) else {
                return;
            };
            let mut keep = Vec::with_capacity(items.len());
            for (pe, mut item) in pes.into_iter().zip(items.drain(..)) {
                let remove = match last.children.get(&pe) {
                    Some(lnode) => {
                        let onode = owned.and_then(|o| o.children.get(&pe));
                        prune_child(&mut item, item_ty, false, lnode, onode)
                    }
                    None => false,
                };
                if !remove {
                    keep.push(item);
                }
            }
            *items = keep;
        }
    }
}

/// Prunes one child; true when it must be removed from its parent.
fn prune_child<S: ApplySchema>(
    child: &mut Value,
    ty: Ty<S>,
    declared: bool,
    last: &FieldSet,
    owned: Option<&FieldSet>,
) -> bool {
    let owned_self = owned.is_some_and(|o| o.member);
    let owned_below = owned.is_some_and(|o| !o.children.is_empty());
    if !(owned_self || declared && owned_below) && (last.member || declared) {
        return true;
    }
    if last.children.is_empty() {
        return false;
    }
    let was_empty = is_empty_container(child);
    prune(child, ty, last, owned);
    !was_empty && is_empty_container(child)
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Ignored (server-owned and reset) fields
// ---------------------------------------------------------------------------------------

/// Paths never recorded as owned: upstream's stripped metadata (exact paths) and the
/// strategy's reset fields (whole subtrees).
struct Filter {
    /// Remove these paths (not their descendants): [`STRIPPED`].
    exact: &'static FieldSet,
    /// Remove these subtrees.
    subtrees: Vec<Vec<PathElement>>,
    /// Keep only this subtree (status writes).
    only: Option<Vec<PathElement>>,
}

/// Server-set paths not tracked (upstream strips these; deletionTimestamp and
/// deletionGracePeriodSeconds are set by deletes, which track nothing).
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
    &["metadata", "deletionTimestamp"],
    &["metadata", "deletionGracePeriodSeconds"],
];

/// [`STRIPPED`] as a set, built once.
static STRIPPED_SET: std::sync::LazyLock<FieldSet> = std::sync::LazyLock::new(|| {
    let mut exact = FieldSet::new();
    for p in STRIPPED {
        exact.insert(&FieldPath::fields(p).0);
    }
    exact
});

impl Filter {
    fn new(scope: &Scope<'_>) -> Filter {
        let status = FieldPath::fields(&["status"]).0;
        let mut subtrees = vec![FieldPath::fields(&["metadata", "managedFields"]).0];
        let mut only = None;
        match scope.subresource {
            None if scope.status_subresource => subtrees.push(status),
            Some("status") => only = Some(status),
            _ => {}
        }
        Filter {
            exact: &STRIPPED_SET,
            subtrees,
            only,
        }
    }

    fn apply(&self, set: &mut FieldSet) {
        set.difference_with(self.exact);
        for p in &self.subtrees {
            set.remove_subtree(p);
        }
        if let Some(only) = &self.only {
            set.retain_subtree(only);
        }
    }
}

// ---------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------

/// `managedFields[].operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One decoded `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedFieldsEntry {
    /// `manager`.
    pub manager: String,
    /// `operation`.
    pub operation: Operation,
    /// `apiVersion` of the write.
    pub api_version: String,
    /// `time` (RFC 3339), if any.
    pub time: Option<String>,
    /// `subresource`, if any.
    pub subresource: Option<String>,
    /// The owned fields (`fieldsV1`).
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Upstream identifies an entry by manager, operation, subresource and, for `Update`
    /// entries only, apiVersion.
    fn same_identity(&self, other: &ManagedFieldsEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    fn to_json(&self) -> Value {
        self.to_json_with(self.fields.to_fields_v1())
    }

    /// The JSON form with `fields_v1` as its fields.
    fn to_json_with(&self, fields_v1: Value) -> Value {
        let mut m = JsonMap::new();
        m.insert("manager".into(), Value::from(self.manager.clone()));
        m.insert("operation".into(), Value::from(self.operation.as_str()));
        m.insert("apiVersion".into(), Value::from(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::from(t.clone()));
        }
        m.insert("fieldsType".into(), Value::from("FieldsV1"));
        m.insert("fieldsV1".into(), fields_v1);
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::from(s.clone()));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<ManagedFieldsEntry, String> {
        let mut entry = ManagedFieldsEntry::identity_from_json(v)?;
        if let Some(f) = v.get("fieldsV1") {
            entry.fields = FieldSet::from_fields_v1(f)?;
        }
        Ok(entry)
    }

    /// Everything but the fields (left empty).
    fn identity_from_json(v: &Value) -> Result<ManagedFieldsEntry, String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let operation = match s("operation") {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(format!("invalid operation {other:?}")),
        };
        match s("fieldsType") {
            Some("FieldsV1") => {}
            other => return Err(format!("invalid fieldsType {other:?}")),
        }
        Ok(ManagedFieldsEntry {
            manager: s("manager").unwrap_or_default().to_owned(),
            operation,
            api_version: s("apiVersion").unwrap_or_default().to_owned(),
            time: s("time").map(str::to_owned),
            subresource: s("subresource")
                .filter(|x| !x.is_empty())
                .map(str::to_owned),
            fields: FieldSet::new(),
        })
    }
}

/// A managedFields entry as a write holds it: decoded, or (taken from the stored object,
/// which holds only this module's own encoding) with its FieldsV1 still as JSON until the
/// write changes who owns something in it. Most writes change a few fields of one manager;
/// the other entries keep their JSON instead of being decoded and encoded again.
struct Held {
    entry: ManagedFieldsEntry,
    /// The FieldsV1 not decoded into `entry.fields` (empty while this is set).
    raw: Option<Value>,
}

impl Held {
    fn decoded(entry: ManagedFieldsEntry) -> Held {
        Held { entry, raw: None }
    }

    /// An entry of the stored object, its fields left encoded.
    fn stored(mut item: Value) -> Result<Held, String> {
        let entry = ManagedFieldsEntry::identity_from_json(&item)?;
        let raw = item
            .as_object_mut()
            .and_then(|m| m.shift_remove("fieldsV1"))
            .unwrap_or_else(|| Value::Object(JsonMap::new()));
        Ok(Held {
            entry,
            raw: Some(raw),
        })
    }

    /// The fields, decoded now if they were not.
    fn fields(&mut self) -> Result<&mut FieldSet, String> {
        if let Some(raw) = self.raw.take() {
            self.entry.fields = FieldSet::from_fields_v1(&raw)?;
        }
        Ok(&mut self.entry.fields)
    }

    /// Whether a member of `set` may be a member of these fields (then they must be
    /// decoded to take it away).
    fn may_own_any(&self, set: &FieldSet) -> bool {
        match &self.raw {
            Some(raw) => shares_member(raw, set),
            None => true,
        }
    }

    fn is_empty(&self) -> bool {
        match &self.raw {
            Some(raw) => raw.as_object().is_some_and(JsonMap::is_empty),
            None => self.entry.fields.is_empty(),
        }
    }

    fn into_json(self) -> Value {
        match self.raw {
            Some(raw) => self.entry.to_json_with(raw),
            None => self.entry.to_json(),
        }
    }
}

/// Whether some member path of `set` is a member of the FieldsV1 JSON `raw` (conservatively
/// yes when `raw` is not in that form).
fn shares_member(raw: &Value, set: &FieldSet) -> bool {
    let Value::Object(obj) = raw else {
        return true;
    };
    set.children.iter().any(|(pe, child)| {
        obj.get(pe.encode().as_str()).is_some_and(|node| {
            let member = node
                .as_object()
                .is_some_and(|m| m.is_empty() || m.contains_key("."));
            child.member && member || shares_member(node, child)
        })
    })
}

/// Entries must differ in identity.
fn check_unique<'a>(
    mut entries: impl Iterator<Item = &'a ManagedFieldsEntry>,
) -> Result<(), String> {
    let mut seen: Vec<&ManagedFieldsEntry> = Vec::new();
    entries.try_for_each(|entry| {
        if seen.iter().any(|e| e.same_identity(entry)) {
            return Err(format!(
                "duplicate managedFields entry for manager {:?}",
                entry.manager
            ));
        }
        seen.push(entry);
        Ok(())
    })
}

/// Decodes `metadata.managedFields` of an object (empty when absent).
pub fn decode_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, String> {
    decode_entries(obj.pointer("/metadata/managedFields"))
}

/// Decodes a `managedFields` list (empty when absent).
fn decode_entries(list: Option<&Value>) -> Result<Vec<ManagedFieldsEntry>, String> {
    match list {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let out = items
                .iter()
                .map(ManagedFieldsEntry::from_json)
                .collect::<Result<Vec<_>, _>>()?;
            check_unique(out.iter())?;
            Ok(out)
        }
        Some(_) => Err("metadata.managedFields must be a list".into()),
    }
}

/// `managedFields: [{}]` asks upstream to clear the field.
fn is_reset_request(obj: &Value) -> bool {
    matches!(obj.pointer("/metadata/managedFields"),
        Some(Value::Array(items)) if items.len() == 1 && items[0].as_object().is_some_and(JsonMap::is_empty))
}

/// Takes `metadata.managedFields` out of `obj`.
fn remove_managed_fields(obj: &mut Value) -> Option<Value> {
    match obj.get_mut("metadata") {
        Some(Value::Object(meta)) => meta.shift_remove("managedFields"),
        _ => None,
    }
}

/// Writes the entries (sorted like upstream: Apply before Update, then by time, manager,
/// apiVersion, subresource) into `metadata.managedFields`, or removes it when empty.
fn encode_managed_fields(obj: &mut Value, mut entries: Vec<Held>) {
    entries.retain(|e| !e.is_empty());
    entries.sort_by(|Held { entry: a, .. }, Held { entry: b, .. }| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| {
                a.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(b.time.as_deref().unwrap_or(""))
            })
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Value::Object(root) = obj else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.shift_remove("managedFields");
        }
        return;
    }
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(JsonMap::new()));
    if !meta.is_object() {
        *meta = Value::Object(JsonMap::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.into_iter().map(Held::into_json).collect()),
        );
    }
}

/// Merges the oldest `Update` entries into per-apiVersion `ancient-changes` entries until at
/// most [`MAX_UPDATE_MANAGERS`] remain.
fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>) {
    let count = |es: &Vec<ManagedFieldsEntry>| {
        es.iter()
            .filter(|e| e.operation == Operation::Update)
            .count()
    };
    if count(entries) <= MAX_UPDATE_MANAGERS {
        return;
    }
    let mut updates: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == Operation::Update)
        .collect();
    updates.sort_by(|&a, &b| {
        let (x, y) = (&entries[a], &entries[b]);
        x.time
            .as_deref()
            .unwrap_or("")
            .cmp(y.time.as_deref().unwrap_or(""))
            .then_with(|| x.manager.cmp(&y.manager))
    });
    let mut remaining = updates.len();
    // apiVersion → index of the first (oldest) entry seen or of its bucket.
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let mut dropped = vec![false; entries.len()];
    for &i in &updates {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        match first.get(&version) {
            Some(&bucket) => {
                let fields = entries[i].fields.clone();
                let time = entries[i].time.clone();
                let b = &mut entries[bucket];
                b.manager = ANCIENT_CHANGES.to_owned();
                b.subresource = None;
                b.fields.union_with(&fields);
                b.time = time;
                dropped[i] = true;
                remaining -= 1;
            }
            None => {
                first.insert(version, i);
            }
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        let keep = !dropped[i];
        i += 1;
        keep
    });
    // Two buckets of one version cannot arise; an existing ancient-changes entry of the same
    // version is merged into the new bucket.
    let mut merged: Vec<ManagedFieldsEntry> = Vec::with_capacity(entries.len());
    for e in entries.drain(..) {
        if let Some(existing) = merged.iter_mut().find(|m| m.same_identity(&e)) {
            existing.fields.union_with(&e.fields);
            if e.time > existing.time {
                existing.time = e.time;
            }
        } else {
            merged.push(e);
        }
    }
    *entries = merged;
}

// ---------------------------------------------------------------------------------------
// Public operations
// ---------------------------------------------------------------------------------------

/// Who writes, through which endpoint, and when.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The field manager (`?fieldManager=` or [`default_manager`]).
    pub manager: &'a str,
    /// `Some("status")`, `Some("scale")`, … for subresource writes.
    pub subresource: Option<&'a str>,
    /// The kind has a status subresource: main-resource writes do not track `status`.
    /// (Status writes track only `status`.)
    pub status_subresource: bool,
    /// The write's time, RFC 3339 with seconds (`2024-01-02T03:04:05Z`).
    pub now: &'a str,
}

fn api_version_of(obj: &Value) -> String {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Server-side apply: merges `applied` into `live` (`None` when the object does not exist
/// yet; the caller then creates the result) and returns the new object with its
/// `metadata.managedFields` updated.
///
/// `force` takes conflicting fields from their owners instead of failing. For manager
/// `kubectl`, conflicts on fields whose live value still matches the
/// `last-applied-configuration` annotation are forced (upstream's client-side → server-side
/// apply upgrade), and an existing annotation is rewritten to the applied configuration.
pub fn apply<S: ApplySchema>(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    schema: S,
    scope: &Scope<'_>,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::NotAnObject);
    }
    if !matches!(
        applied.pointer("/metadata/managedFields"),
        None | Some(Value::Null)
    ) {
        return Err(ApplyError::ManagedFieldsInConfig);
    }
    let ty = Ty::Typed(schema);
    let filter = Filter::new(scope);
    let api_version = api_version_of(applied);

    let mut live_obj = live
        .cloned()
        .unwrap_or_else(|| Value::Object(JsonMap::new()));
    let mut entries = live
        .map(decode_managed_fields)
        .transpose()
        .ok()
        .flatten()
        .unwrap_or_default();
    remove_managed_fields(&mut live_obj);
    if live.is_some() && entries.is_empty() {
        let mut before = ManagedFieldsEntry {
            manager: BEFORE_FIRST_APPLY.to_owned(),
            operation: Operation::Update,
            api_version: api_version_of(&live_obj),
            time: Some(scope.now.to_owned()),
            subresource: None,
            fields: FieldSet::new(),
        };
        if let Ok(mut c) = compare(&schema.zero_value(), &live_obj, ty) {
            c.filter(&filter);
            before.fields = c.changed();
            entries.push(before);
        }
    }

    let mut config = applied.clone();
    remove_managed_fields(&mut config);

    let mut config_set = to_field_set(&config, ty).map_err(ApplyError::Schema)?;
    filter.apply(&mut config_set);
    let mut path = Vec::new();
    let merged = merge(&live_obj, &config, ty, &mut path).map_err(ApplyError::Schema)?;

    let me = ManagedFieldsEntry {
        manager: scope.manager.to_owned(),
        operation: Operation::Apply,
        api_version: api_version.clone(),
        time: None,
        subresource: scope.subresource.map(str::to_owned),
        fields: FieldSet::new(),
    };
    let mine = match entries.iter().position(|e| e.same_identity(&me)) {
        Some(i) => i,
        None => {
            entries.push(me);
            entries.len() - 1
        }
    };
    let last_set = std::mem::replace(&mut entries[mine].fields, config_set);
    entries[mine].api_version = api_version;

    let mut result = merged;
    if !last_set.is_empty() {
        let mut owned = FieldSet::new();
        for e in &entries {
            owned.union_with(&e.fields);
        }
        prune(&mut result, ty, &last_set, Some(&owned));
    }

    let mut cmp = compare(&live_obj, &result, ty).map_err(ApplyError::Schema)?;
    cmp.filter(&filter);
    let changed = cmp.changed();

    let mut conflicts: Vec<(usize, FieldSet)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == mine {
            continue;
        }
        let c = e.fields.intersection(&changed);
        if !c.is_empty() {
            conflicts.push((i, c));
        }
    }
    if !conflicts.is_empty() && !force {
        let mut reported = conflicts.clone();
        if scope.manager == "kubectl"
            && let Some(allowed) = allowed_by_last_applied(&live_obj, ty)
        {
            for (_, set) in &mut reported {
                set.difference_with(&allowed);
            }
            reported.retain(|(_, s)| !s.is_empty());
        }
        if !reported.is_empty() {
            return Err(ApplyError::Conflicts(to_conflicts(&entries, &reported)));
        }
    }
    for (i, set) in &conflicts {
        entries[*i].fields.difference_with(set);
    }
    for e in &mut entries {
        e.fields.difference_with(&cmp.removed);
    }

    let object_changed = result != live_obj;
    if object_changed || entries[mine].time.is_none() {
        entries[mine].time = Some(scope.now.to_owned());
    }

    if scope.manager == "kubectl" {
        update_last_applied(&mut result, &config);
    }
    cap_update_managers(&mut entries);
    encode_managed_fields(
        &mut result,
        entries.into_iter().map(Held::decoded).collect(),
    );
    Ok(result)
}

fn to_conflicts(entries: &[ManagedFieldsEntry], sets: &[(usize, FieldSet)]) -> Vec<Conflict> {
    let mut out = Vec::new();
    for (i, set) in sets {
        let e = &entries[*i];
        for p in set.paths() {
            out.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation,
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: p.to_string(),
            });
        }
    }
    out.sort_by_key(Conflict::sort_key);
    out
}

/// The fields of the live object that kubectl's client-side apply set and that still hold
/// the values it set (upstream's allowed conflicts when upgrading to server-side apply).
fn allowed_by_last_applied<S: ApplySchema>(live: &Value, ty: Ty<S>) -> Option<FieldSet> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    let mut set = to_field_set(&last, ty).ok()?;
    let cmp = compare(&last, live, ty).ok()?;
    set.difference_with(&cmp.modified);
    set.difference_with(&cmp.removed);
    Some(set)
}

/// Rewrites an existing last-applied annotation to the applied configuration (JSON with
/// sorted keys and a trailing newline, like kubectl), dropping it when too large.
fn update_last_applied(obj: &mut Value, config: &Value) {
    let Some(Value::Object(annotations)) = obj.pointer_mut("/metadata/annotations") else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED_ANNOTATION) {
        return;
    }
    let mut cfg = config.clone();
    if let Some(Value::Object(a)) = cfg.pointer_mut("/metadata/annotations") {
        a.shift_remove(LAST_APPLIED_ANNOTATION);
    }
    let text = format!("{}\n", sorted_keys(&cfg));
    let others: usize = annotations
        .iter()
        .filter(|(k, _)| k.as_str() != LAST_APPLIED_ANNOTATION)
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if others + LAST_APPLIED_ANNOTATION.len() + text.len() > TOTAL_ANNOTATION_SIZE_LIMIT {
        annotations.shift_remove(LAST_APPLIED_ANNOTATION);
    } else {
        annotations.insert(LAST_APPLIED_ANNOTATION.to_owned(), Value::from(text));
    }
}

fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&m[k.as_str()])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// Records a non-apply write (create when `old` is `None`, update, patch) in
/// `new.metadata.managedFields`: the fields that changed become owned by `scope.manager`
/// with operation `Update` (one entry per manager, apiVersion and subresource) and are taken
/// from every other manager; fields that were removed are dropped from every entry.
///
/// Like upstream, a main-resource write may set `managedFields` itself (kept when it
/// decodes and is not empty; `[{}]` clears them); otherwise, and always for subresource
/// writes, the entries of `old` are used. Never fails: when the object does not fit the
/// schema, its managedFields are removed (upstream logs and does the same).
pub fn record_update<S: ApplySchema>(
    old: Option<&Value>,
    new: &mut Value,
    schema: S,
    scope: &Scope<'_>,
) {
    let ty = Ty::Typed(schema);
    let filter = Filter::new(scope);
    let reset = scope.subresource.is_none() && is_reset_request(new);
    let stored = old.and_then(|o| o.pointer("/metadata/managedFields"));
    // The stored entries, when the write's body carried them unchanged (a GET and PUT round
    // trip, or a subresource write built on the stored object): moved out, not copied.
    let (carried, sent) = match (remove_managed_fields(new), stored) {
        (Some(Value::Array(sent)), Some(Value::Array(stored))) if same_items(stored, &sent) => {
            (Some(sent), None)
        }
        (sent, _) => (None, sent),
    };
    // The stored entries (this module's encoding), their fields decoded only where this write
    // changes them.
    let from_old = |carried: Option<Vec<Value>>| -> Vec<Held> {
        let items = match (carried, stored) {
            (Some(items), _) => items,
            (None, Some(Value::Array(stored))) => stored.clone(),
            _ => return Vec::new(),
        };
        items
            .into_iter()
            .map(Held::stored)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|held| check_unique(held.iter().map(|h| &h.entry)).is_ok())
            .unwrap_or_default()
    };
    let mut entries = if reset {
        Vec::new()
    } else if scope.subresource.is_some() || carried.is_some() {
        from_old(carried)
    } else {
        match decode_entries(sent.as_ref()) {
            Ok(es) if !es.is_empty() => es.into_iter().map(Held::decoded).collect(),
            _ => from_old(None),
        }
    };
    let zero;
    let old_obj = match old {
        Some(o) => o,
        None => {
            zero = schema.zero_value();
            &zero
        }
    };
    let Ok(mut cmp) = compare(old_obj, new, ty) else {
        return;
    };
    cmp.filter(&filter);
    let changed = cmp.changed();
    let taken = entries.iter_mut().try_for_each(|e| {
        if e.may_own_any(&changed) || e.may_own_any(&cmp.removed) {
            let fields = e.fields()?;
            fields.difference_with(&changed);
            fields.difference_with(&cmp.removed);
        }
        Ok::<_, String>(())
    });
    if taken.is_err() {
        // Stored fields that do not decode are dropped, as when none decode.
        entries.clear();
    }
    if !changed.is_empty() {
        let me = ManagedFieldsEntry {
            manager: scope.manager.to_owned(),
            operation: Operation::Update,
            api_version: api_version_of(new),
            time: Some(scope.now.to_owned()),
            subresource: scope.subresource.map(str::to_owned),
            fields: changed,
        };
        match entries.iter_mut().find(|e| e.entry.same_identity(&me)) {
            Some(e) => match e.fields() {
                Ok(fields) => {
                    fields.union_with(&me.fields);
                    e.entry.time = me.time;
                }
                Err(_) => *e = Held::decoded(me),
            },
            None => entries.push(Held::decoded(me)),
        }
    }
    let updates = entries
        .iter()
        .filter(|e| e.entry.operation == Operation::Update)
        .count();
    if updates > MAX_UPDATE_MANAGERS {
        let mut plain: Vec<ManagedFieldsEntry> = entries
            .into_iter()
            .filter_map(|mut e| e.fields().is_ok().then_some(e.entry))
            .collect();
        cap_update_managers(&mut plain);
        entries = plain.into_iter().map(Held::decoded).collect();
    }
    encode_managed_fields(new, entries);
}

/// The field manager of a write that named none: the User-Agent up to its first `/`
/// (`kubectl/v1.33.0 (linux/amd64) …` → `kubectl`), at most 128 characters.
pub fn default_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    prefix.chars().take(FIELD_MANAGER_MAX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::schema::message_for_kind;
    use serde_json::json;

    const T1: &str = "2025-01-01T00:00:00Z";
    const T2: &str = "2025-01-01T00:01:00Z";

    fn kind(group: &str, version: &str, kind: &str) -> BuiltinSchema {
        BuiltinSchema::for_kind(
            message_for_kind(group, version, kind)
                .unwrap_or_else(|| panic!("{group}/{version} {kind} is in the table")),
        )
    }

    fn deployment() -> BuiltinSchema {
        kind("apps", "v1", "Deployment")
    }

    fn scope(manager: &str) -> Scope<'_> {
        Scope {
            manager,
            subresource: None,
            status_subresource: true,
            now: T1,
        }
    }

    fn entries(obj: &Value) -> Vec<ManagedFieldsEntry> {
        decode_managed_fields(obj).expect("managedFields decode")
    }

    fn fields_of(obj: &Value, manager: &str) -> Value {
        entries(obj)
            .into_iter()
            .find(|e| e.manager == manager)
            .map(|e| e.fields.to_fields_v1())
            .unwrap_or(Value::Null)
    }

    fn deploy(replicas: i64, containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": containers}
                }
            }
        })
    }

    fn apply_ok<S: ApplySchema>(
        live: Option<&Value>,
        cfg: &Value,
        schema: S,
        manager: &str,
        force: bool,
    ) -> Value {
        apply(live, cfg, force, schema, &scope(manager))
            .unwrap_or_else(|e| panic!("apply by {manager}: {e}"))
    }

    #[test]
    fn fields_v1_round_trip_and_order() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:ports": {
                    "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}},
                    "k:{\"port\":443,\"protocol\":\"TCP\"}": {}
                },
                "f:finalizers": {"v:\"a\"": {}, "i:0": {}}
            }
        });
        let set = FieldSet::from_fields_v1(&v).expect("parses");
        let back = set.to_fields_v1();
        assert_eq!(back, v);
        // Keys sort by numeric value, not text; values before indexes.
        let spec = &back["f:spec"];
        let ports: Vec<&String> = spec["f:ports"].as_object().expect("obj").keys().collect();
        assert_eq!(
            ports,
            [
                "k:{\"port\":80,\"protocol\":\"TCP\"}",
                "k:{\"port\":443,\"protocol\":\"TCP\"}"
            ]
        );
        let fin: Vec<&String> = spec["f:finalizers"]
            .as_object()
            .expect("obj")
            .keys()
            .collect();
        assert_eq!(fin, ["v:\"a\"", "i:0"]);
        let paths: Vec<String> = set.paths().iter().map(ToString::to_string).collect();
        assert_eq!(
            paths,
            [
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.finalizers[=\"a\"]",
                ".spec.finalizers[0]",
                ".spec.ports[port=80,protocol=\"TCP\"]",
                ".spec.ports[port=443,protocol=\"TCP\"]",
                ".spec.ports[port=80,protocol=\"TCP\"].port",
            ]
        );
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
    }

    #[test]
    fn first_apply_creates_ownership_and_second_apply_removes_dropped_fields() {
        let cm = kind("", "v1", "ConfigMap");
        let cfg = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"test-label": "test"}},
            "data": {"key": "some value", "other": "x"}
        });
        let created = apply_ok(None, &cfg, cm, "kubectl", false);
        let mf = &created["metadata"]["managedFields"];
        assert_eq!(
            mf,
            &json!([{
                "manager": "kubectl",
                "operation": "Apply",
                "apiVersion": "v1",
                "time": T1,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:data": {"f:key": {}, "f:other": {}},
                    "f:metadata": {"f:labels": {"f:test-label": {}}}
                }
            }])
        );
        assert_eq!(created["data"], json!({"key": "some value", "other": "x"}));

        let cfg2 = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"key": "new"}
        });
        let next = apply_ok(Some(&created), &cfg2, cm, "kubectl", false);
        assert_eq!(next["data"], json!({"key": "new"}));
        assert!(next["metadata"].get("labels").is_none(), "{next}");
        assert_eq!(
            fields_of(&next, "kubectl"),
            json!({"f:data": {"f:key": {}}})
        );
    }

    #[test]
    fn dropped_field_owned_by_another_manager_is_kept() {
        let cm = kind("", "v1", "ConfigMap");
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                       "data": {"shared": "v", "mine": "m"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                       "data": {"shared": "v"}});
        let live = apply_ok(None, &a, cm, "a", false);
        let live = apply_ok(Some(&live), &b, cm, "b", false);
        // Same value: shared ownership, no conflict.
        assert_eq!(fields_of(&live, "b"), json!({"f:data": {"f:shared": {}}}));
        let a2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let live = apply_ok(Some(&live), &a2, cm, "a", false);
        assert_eq!(live["data"], json!({"shared": "v"}));
        assert_eq!(fields_of(&live, "a"), Value::Null, "empty entry dropped");
    }

    #[test]
    fn conflicts_between_managers_and_force() {
        let d = deployment();
        let c = json!([{"name": "nginx", "image": "nginx:1"}]);
        let live = apply_ok(None, &deploy(3, c.clone()), d, "alice", false);
        let err = apply(Some(&live), &deploy(5, c.clone()), false, d, &scope("bob"))
            .expect_err("conflict");
        assert_eq!(err.status_code(), 409);
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
        );
        assert_eq!(
            err.causes(),
            vec![json!({"type": "FieldManagerConflict",
                        "message": "conflict with \"alice\"", "field": ".spec.replicas"})]
        );

        let forced = apply_ok(Some(&live), &deploy(5, c.clone()), d, "bob", true);
        assert_eq!(forced["spec"]["replicas"], json!(5));
        let alice = entries(&forced)
            .into_iter()
            .find(|e| e.manager == "alice")
            .expect("alice keeps the rest");
        assert!(
            !alice
                .fields
                .has(&FieldPath::fields(&["spec", "replicas"]).0)
        );
        assert!(
            alice
                .fields
                .has(&FieldPath::fields(&["spec", "selector"]).0)
        );
        let bob = entries(&forced)
            .into_iter()
            .find(|e| e.manager == "bob")
            .expect("bob");
        assert!(bob.fields.has(&FieldPath::fields(&["spec", "replicas"]).0));

        // Alice now conflicts with bob; dropping replicas from her config releases nothing
        // she owns and does not remove bob's value.
        let mut cfg = deploy(0, c);
        if let Some(spec) = cfg["spec"].as_object_mut() {
            spec.shift_remove("replicas");
        }
        let again = apply_ok(Some(&forced), &cfg, d, "alice", false);
        assert_eq!(again["spec"]["replicas"], json!(5));
    }

    #[test]
    fn conflict_with_update_manager_and_multiple_conflicts() {
        let d = deployment();
        let c1 = json!([{"name": "nginx", "image": "nginx:1"}]);
        let mut created = deploy(3, c1);
        record_update(None, &mut created, d, &scope("kubectl-client-side-apply"));
        let c2 = json!([{"name": "nginx", "image": "nginx:2"}]);
        let err =
            apply(Some(&created), &deploy(5, c2), false, d, &scope("helm")).expect_err("conflict");
        assert_eq!(
            err.message(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
             - .spec.replicas\n\
             - .spec.template.spec.containers[name=\"nginx\"].image"
        );
        let causes = err.causes();
        assert_eq!(causes.len(), 2);
        assert_eq!(
            causes[1],
            json!({"type": "FieldManagerConflict",
                   "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
                   "field": ".spec.template.spec.containers[name=\"nginx\"].image"})
        );
        let one = apply(
            Some(&created),
            &deploy(5, json!([{"name": "nginx", "image": "nginx:1"}])),
            false,
            d,
            &scope("helm"),
        )
        .expect_err("conflict");
        assert_eq!(
            one.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
    }

    #[test]
    fn list_map_items_are_owned_per_item() {
        let d = deployment();
        let a = deploy(1, json!([{"name": "a", "image": "img-a"}]));
        let b = deploy(1, json!([{"name": "b", "image": "img-b"}]));
        let live = apply_ok(None, &a, d, "ma", false);
        let live = apply_ok(Some(&live), &b, d, "mb", false);
        let names: Vec<&Value> = live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("a"), &json!("b")]);
        assert_eq!(
            fields_of(&live, "mb")["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({"k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}})
        );
        // ma changes its image and drops nothing: b untouched.
        let a2 = deploy(1, json!([{"name": "a", "image": "img-a2"}]));
        let live = apply_ok(Some(&live), &a2, d, "ma", false);
        let containers = &live["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0], json!({"name": "a", "image": "img-a2"}));
        assert_eq!(containers[1], json!({"name": "b", "image": "img-b"}));
        // ma applies a new container instead of a: a is removed, b stays.
        let a3 = deploy(1, json!([{"name": "c", "image": "img-c"}]));
        let live = apply_ok(Some(&live), &a3, d, "ma", false);
        let names: Vec<&Value> = live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("b"), &json!("c")]);
    }

    #[test]
    fn list_map_key_defaults_and_missing_keys() {
        let d = deployment();
        let cfg = deploy(
            1,
            json!([{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}]),
        );
        let live = apply_ok(None, &cfg, d, "m", false);
        assert_eq!(
            fields_of(&live, "m")["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"a\"}"]
                ["f:ports"],
            json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":
                       {".": {}, "f:containerPort": {}}})
        );
        let bad = deploy(1, json!([{"image": "x"}]));
        let err = apply(None, &bad, false, d, &scope("m")).expect_err("missing key");
        assert_eq!(
            err.to_string(),
            ".spec.template.spec.containers: element 0: associative list with keys has an \
             element that omits key field \"name\" (and doesn't have default value)"
        );
        let dup = deploy(1, json!([{"name": "a"}, {"name": "a"}]));
        let err = apply(None, &dup, false, d, &scope("m")).expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
        );
    }

    #[test]
    fn set_lists_merge_by_value() {
        let cm = kind("", "v1", "ConfigMap");
        let with = |fin: Value| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "finalizers": fin}})
        };
        let live = apply_ok(None, &with(json!(["x", "shared"])), cm, "a", false);
        let live = apply_ok(Some(&live), &with(json!(["shared", "y"])), cm, "b", false);
        assert_eq!(live["metadata"]["finalizers"], json!(["x", "shared", "y"]));
        assert_eq!(
            fields_of(&live, "b"),
            json!({"f:metadata": {"f:finalizers": {"v:\"shared\"": {}, "v:\"y\"": {}}}})
        );
        let live = apply_ok(Some(&live), &with(json!([])), cm, "a", false);
        assert_eq!(live["metadata"]["finalizers"], json!(["shared", "y"]));
    }

    #[test]
    fn atomic_lists_are_replaced_and_owned_whole() {
        let d = deployment();
        let with_args = |args: Value| deploy(1, json!([{"name": "a", "args": args}]));
        let live = apply_ok(None, &with_args(json!(["1", "2"])), d, "m", false);
        let live = apply_ok(Some(&live), &with_args(json!(["3"])), d, "m", false);
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["3"])
        );
        assert_eq!(
            fields_of(&live, "m")["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"a\"}"]
                ["f:args"],
            json!({})
        );
        let err = apply(
            Some(&live),
            &with_args(json!(["3", "4"])),
            false,
            d,
            &scope("n"),
        )
        .expect_err("conflict");
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"m\": \
             .spec.template.spec.containers[name=\"a\"].args"
        );
    }

    #[test]
    fn update_after_apply_moves_ownership() {
        let d = deployment();
        let c = json!([{"name": "a", "image": "x"}]);
        let live = apply_ok(None, &deploy(3, c.clone()), d, "kubectl", false);
        let mut next = live.clone();
        next["spec"]["replicas"] = json!(7);
        let s = Scope {
            now: T2,
            ..scope("kube-controller-manager")
        };
        record_update(Some(&live), &mut next, d, &s);
        let es = entries(&next);
        assert_eq!(es.len(), 2);
        assert_eq!(es[0].manager, "kubectl");
        assert_eq!(es[0].operation, Operation::Apply);
        assert!(
            !es[0]
                .fields
                .has(&FieldPath::fields(&["spec", "replicas"]).0)
        );
        assert_eq!(
            es[1].to_json(),
            json!({"manager": "kube-controller-manager", "operation": "Update",
                   "apiVersion": "apps/v1", "time": T2, "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:spec": {"f:replicas": {}}}})
        );
        // A no-op update records nothing new.
        let mut same = next.clone();
        record_update(Some(&next), &mut same, d, &scope("other"));
        assert_eq!(entries(&same).len(), 2);
        // Re-applying the old value now conflicts with the updater.
        let err =
            apply(Some(&next), &deploy(3, c), false, d, &scope("kubectl-x")).expect_err("conflict");
        assert!(
            err.message()
                .contains("\"kube-controller-manager\" using apps/v1")
        );
    }

    #[test]
    fn realistic_deployment_apply_fields() {
        let d = deployment();
        let cfg = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{
                        "name": "nginx",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80}],
                        "resources": {}
                    }]}
                }
            }
        });
        let live = apply_ok(None, &cfg, d, "kubectl", false);
        let expected = json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}
                        }},
                        "f:resources": {}
                    }}}
                }
            }
        });
        assert_eq!(fields_of(&live, "kubectl"), expected);
        // Byte-for-byte the serialization kube-apiserver produces (keys sorted, `.` first).
        assert_eq!(
            serde_json::to_string(&fields_of(&live, "kubectl")).expect("json"),
            serde_json::to_string(&expected).expect("json")
        );
    }

    #[test]
    fn realistic_deployment_create_fields() {
        let d = deployment();
        let mut obj = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "nginx", "namespace": "default", "uid": "u", "resourceVersion": "1",
                "generation": 1, "creationTimestamp": T1,
                "labels": {"app": "nginx"},
                "annotations": {"deployment.kubernetes.io/revision": "1"}
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "nginx"}},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "containers": [{"name": "nginx", "image": "nginx",
                                        "resources": {}, "imagePullPolicy": "Always"}],
                        "restartPolicy": "Always",
                        "securityContext": {}
                    }
                }
            },
            "status": {}
        });
        record_update(None, &mut obj, d, &scope("kubectl-create"));
        assert_eq!(
            fields_of(&obj, "kubectl-create"),
            json!({
                "f:metadata": {
                    "f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}},
                    "f:labels": {".": {}, "f:app": {}}
                },
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:strategy": {
                        // Deviation: upstream has no `.` here (a Go value struct, which the
                        // table cannot tell from a pointer).
                        ".": {},
                        "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                        "f:type": {}
                    },
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            "f:containers": {"k:{\"name\":\"nginx\"}": {
                                ".": {}, "f:image": {}, "f:imagePullPolicy": {},
                                "f:name": {}, "f:resources": {}
                            }},
                            "f:restartPolicy": {},
                            "f:securityContext": {}
                        }
                    }
                }
            })
        );
        let e = &obj["metadata"]["managedFields"][0];
        assert_eq!(e["operation"], json!("Update"));
        assert_eq!(e["apiVersion"], json!("apps/v1"));
    }

    #[test]
    fn status_is_tracked_only_by_status_writes() {
        let d = deployment();
        let c = json!([{"name": "a", "image": "x"}]);
        let mut obj = deploy(1, c);
        obj["status"] = json!({"replicas": 1});
        record_update(None, &mut obj, d, &scope("creator"));
        assert!(fields_of(&obj, "creator").get("f:status").is_none());
        let mut next = obj.clone();
        next["status"]["replicas"] = json!(2);
        next["metadata"]["labels"]["x"] = json!("y");
        let s = Scope {
            subresource: Some("status"),
            ..scope("controller")
        };
        record_update(Some(&obj), &mut next, d, &s);
        let e = entries(&next)
            .into_iter()
            .find(|e| e.manager == "controller")
            .expect("entry");
        assert_eq!(e.subresource.as_deref(), Some("status"));
        assert_eq!(
            e.fields.to_fields_v1(),
            json!({"f:status": {"f:replicas": {}}})
        );
        assert_eq!(e.to_json()["subresource"], json!("status"));
    }

    #[test]
    fn update_can_replace_or_reset_managed_fields() {
        let d = deployment();
        let live = apply_ok(None, &deploy(1, json!([{"name": "a"}])), d, "m", false);
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        record_update(Some(&live), &mut reset, d, &scope("x"));
        assert!(reset["metadata"].get("managedFields").is_none(), "{reset}");
        // Absent managedFields keep the live ones.
        let mut plain = live.clone();
        remove_managed_fields(&mut plain);
        record_update(Some(&live), &mut plain, d, &scope("x"));
        assert_eq!(entries(&plain).len(), 1);
    }

    #[test]
    fn first_apply_on_untracked_object_uses_before_first_apply() {
        let cm = kind("", "v1", "ConfigMap");
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "c", "uid": "u"}, "data": {"a": "1"}});
        let err = apply(
            Some(&live),
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "c"}, "data": {"a": "2"}}),
            false,
            cm,
            &scope("m"),
        )
        .expect_err("conflict");
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.a"
        );
    }

    #[test]
    fn kubectl_upgrades_from_client_side_apply() {
        let d = deployment();
        let c = json!([{"name": "nginx", "image": "nginx:1"}]);
        let mut last = deploy(3, c.clone());
        let mut created = last.clone();
        if let Some(m) = last["metadata"].as_object_mut() {
            m.shift_remove("namespace");
        }
        created["metadata"]["annotations"] =
            json!({LAST_APPLIED_ANNOTATION: format!("{}\n", last)});
        record_update(None, &mut created, d, &scope("kubectl-client-side-apply"));
        // The file changed replicas: not a conflict for `kubectl` (the live value is the
        // last-applied one), but it is for any other manager.
        let cfg = deploy(5, c);
        assert!(apply(Some(&created), &cfg, false, d, &scope("other")).is_err());
        let live = apply_ok(Some(&created), &cfg, d, "kubectl", false);
        assert_eq!(live["spec"]["replicas"], json!(5));
        let annotation = live["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
            .as_str()
            .expect("annotation kept");
        assert!(annotation.ends_with("}\n"));
        let parsed: Value = serde_json::from_str(annotation).expect("json");
        assert_eq!(parsed["spec"]["replicas"], json!(5));
        // A value someone else changed since is still a conflict.
        let mut drifted = created.clone();
        drifted["spec"]["replicas"] = json!(4);
        record_update(Some(&created), &mut drifted, d, &scope("hpa"));
        let err = apply(Some(&drifted), &cfg, false, d, &scope("kubectl")).expect_err("conflict");
        assert!(
            err.message()
                .contains("\"hpa\" using apps/v1: .spec.replicas"),
            "{err}"
        );
    }

    #[test]
    fn crd_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "integer"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "items": {"type": "string"},
                                 "x-kubernetes-list-type": "set"},
                        "hosts": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["host", "proto"],
                                  "items": {"type": "object", "properties": {
                                      "host": {"type": "string"},
                                      "proto": {"type": "string", "default": "http"},
                                      "weight": {"type": "integer"}}}},
                        "args": {"type": "array", "items": {"type": "string"}},
                        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                                     "additionalProperties": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                },
                "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
            }
        });
        let s = CrdSchema::new(&schema);
        let cfg = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {
                "size": 1, "port": "http", "tags": ["x"],
                "hosts": [{"host": "h1", "weight": 1}],
                "args": ["a"], "selector": {"k": "v"},
                "extra": {"free": {"form": true}}
            }
        });
        let live = apply_ok(None, &cfg, s, "m", false);
        assert_eq!(
            fields_of(&live, "m"),
            json!({
                "f:metadata": {"f:labels": {"f:a": {}}},
                "f:spec": {
                    "f:args": {},
                    "f:extra": {"f:free": {".": {}, "f:form": {}}},
                    "f:hosts": {"k:{\"host\":\"h1\",\"proto\":\"http\"}": {
                        ".": {}, "f:host": {}, "f:weight": {}}},
                    "f:port": {},
                    "f:selector": {},
                    "f:size": {},
                    "f:tags": {"v:\"x\"": {}}
                }
            })
        );
        let other = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"tags": ["y"], "hosts": [{"host": "h2"}], "selector": {"k2": "v"}}
        });
        let err = apply(Some(&live), &other, false, s, &scope("n")).expect_err("atomic map");
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"m\": .spec.selector"
        );
        let mut other2 = other.clone();
        if let Some(spec) = other2["spec"].as_object_mut() {
            spec.shift_remove("selector");
        }
        let merged = apply_ok(Some(&live), &other2, s, "n", false);
        assert_eq!(merged["spec"]["tags"], json!(["x", "y"]));
        assert_eq!(merged["spec"]["hosts"].as_array().map(Vec::len), Some(2));
        // Status of a CRD with a status subresource is not tracked by main writes.
        let mut st = merged.clone();
        st["status"] = json!({"ok": true});
        record_update(Some(&merged), &mut st, s, &scope("u"));
        assert_eq!(fields_of(&st, "u"), Value::Null);
    }

    #[test]
    fn deduced_schema_for_unknown_kinds() {
        let cfg = json!({"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t"},
                         "spec": {"a": 1, "list": [1, 2]}});
        let live = apply_ok(None, &cfg, Deduced, "m", false);
        // Untyped objects are maps: every entry is a member (`.`); lists are atomic.
        assert_eq!(
            fields_of(&live, "m"),
            json!({"f:spec": {".": {}, "f:a": {}, "f:list": {}}})
        );
        let cfg2 = json!({"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t"},
                          "spec": {"list": [3]}});
        let live = apply_ok(Some(&live), &cfg2, Deduced, "m", false);
        assert_eq!(live["spec"], json!({"list": [3]}));

        // A schema-less CRD keeps metadata typed (labels are a granular map of a struct).
        let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        let mut cfg3 = cfg2.clone();
        cfg3["metadata"]["labels"] = json!({"l": "v"});
        let live = apply_ok(None, &cfg3, CrdSchema::new(&open), "m", false);
        assert_eq!(
            fields_of(&live, "m"),
            json!({"f:metadata": {"f:labels": {"f:l": {}}},
                   "f:spec": {".": {}, "f:list": {}}})
        );
    }

    #[test]
    fn apply_rejects_managed_fields_and_non_objects() {
        let cm = kind("", "v1", "ConfigMap");
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "c", "managedFields": []}});
        let err = apply(None, &cfg, false, cm, &scope("m")).expect_err("rejected");
        assert_eq!(err, ApplyError::ManagedFieldsInConfig);
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            apply(None, &json!([]), false, cm, &scope("m")),
            Err(ApplyError::NotAnObject)
        );
    }

    #[test]
    fn an_update_owns_only_what_it_changed() {
        let d = deployment();
        let mut old = deploy(2, json!([{"name": "a", "image": "x"}]));
        // Null on both sides is no change, whatever the field's type.
        old["spec"]["selector"] = Value::Null;
        record_update(None, &mut old, d, &scope("creator"));
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        let s = Scope {
            now: T2,
            ..scope("scaler")
        };
        record_update(Some(&old), &mut new, d, &s);
        assert_eq!(
            fields_of(&new, "scaler"),
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert_eq!(fields_of(&new, "creator")["f:spec"].get("f:replicas"), None);
        assert!(fields_of(&new, "creator")["f:spec"]["f:template"].is_object());
    }

    #[test]
    fn updates_take_list_items_from_stored_entries_and_keep_the_rest_as_stored() {
        let d = deployment();
        let mut v1 = deploy(
            2,
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
        );
        record_update(None, &mut v1, d, &scope("creator"));
        let later = |manager| Scope {
            now: T2,
            ..scope(manager)
        };
        let mut v2 = v1.clone();
        v2["spec"]["replicas"] = json!(3);
        record_update(Some(&v1), &mut v2, d, &later("scaler"));
        // A third manager changes container b's image: the creator loses exactly that.
        let mut v3 = v2.clone();
        v3["spec"]["template"]["spec"]["containers"][1]["image"] = json!("z");
        record_update(Some(&v2), &mut v3, d, &later("imager"));
        let b = r#"k:{"name":"b"}"#;
        let containers = |v: &Value, m| {
            fields_of(v, m)["f:spec"]["f:template"]["f:spec"]["f:containers"].clone()
        };
        assert_eq!(containers(&v3, "imager"), json!({b: {"f:image": {}}}));
        let creator = containers(&v3, "creator");
        assert_eq!(creator[b], json!({".": {}, "f:name": {}}));
        assert_eq!(
            creator[r#"k:{"name":"a"}"#],
            containers(&v1, "creator")[r#"k:{"name":"a"}"#]
        );
        // The scaler's entry is not touched: the same JSON, time and all.
        let entry = |v: &Value, m: &str| {
            v["metadata"]["managedFields"]
                .as_array()
                .and_then(|es| es.iter().find(|e| e["manager"] == m).cloned())
        };
        assert!(entry(&v2, "scaler").is_some());
        assert_eq!(entry(&v3, "scaler"), entry(&v2, "scaler"));
        // A write that changes nothing leaves every entry as it was.
        let mut v4 = v3.clone();
        record_update(Some(&v3), &mut v4, d, &later("idle"));
        assert_eq!(v4, v3);
    }

    #[test]
    fn update_managers_are_capped() {
        let cm = kind("", "v1", "ConfigMap");
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                             "data": {}});
        let times: Vec<String> = (0..12)
            .map(|i| format!("2025-01-01T00:00:{i:02}Z"))
            .collect();
        for (i, t) in times.iter().enumerate() {
            let old = obj.clone();
            obj["data"][format!("k{i}")] = json!("v");
            let manager = format!("m{i:02}");
            let s = Scope {
                now: t,
                ..scope(&manager)
            };
            record_update(Some(&old), &mut obj, cm, &s);
        }
        let es = entries(&obj);
        assert_eq!(es.len(), MAX_UPDATE_MANAGERS);
        assert_eq!(es[0].manager, ANCIENT_CHANGES);
        assert_eq!(
            es[0].fields.to_fields_v1(),
            json!({"f:data": {"f:k0": {}, "f:k1": {}, "f:k2": {}}})
        );
    }

    #[test]
    fn reapply_is_idempotent_and_null_removes() {
        let d = deployment();
        let cfg = deploy(2, json!([{"name": "a", "image": "x"}]));
        let live = apply_ok(None, &cfg, d, "m", false);
        let s2 = Scope {
            now: T2,
            ..scope("m")
        };
        let again = apply(Some(&live), &cfg, false, d, &s2).expect("apply");
        assert_eq!(again, live, "no change, time kept");
        let mut nulled = cfg.clone();
        nulled["spec"]["replicas"] = Value::Null;
        let out = apply(Some(&live), &nulled, false, d, &s2).expect("apply");
        assert!(out["spec"].get("replicas").is_none());
        assert_eq!(out["metadata"]["managedFields"][0]["time"], json!(T2));
    }

    #[test]
    fn status_apply_tracks_status_only() {
        let d = deployment();
        let live = apply_ok(None, &deploy(2, json!([{"name": "a"}])), d, "m", false);
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web"},
                         "status": {"conditions": [{"type": "Available", "status": "True"}]}});
        let s = Scope {
            subresource: Some("status"),
            ..scope("ctrl")
        };
        let out = apply(Some(&live), &cfg, false, d, &s).expect("apply");
        let e = entries(&out)
            .into_iter()
            .find(|e| e.manager == "ctrl")
            .expect("entry");
        assert_eq!(e.operation, Operation::Apply);
        assert_eq!(e.subresource.as_deref(), Some("status"));
        assert_eq!(
            e.fields.to_fields_v1(),
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Available\"}": {
                ".": {}, "f:status": {}, "f:type": {}}}}})
        );
        assert_eq!(fields_of(&out, "m"), fields_of(&live, "m"));
    }

    #[test]
    fn default_manager_from_user_agent() {
        assert_eq!(
            default_manager("kubectl/v1.33.0 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
        assert_eq!(default_manager("Go-http-client/2.0"), "Go-http-client");
        assert_eq!(default_manager(""), "");
        assert_eq!(
            default_manager(&"x".repeat(300)).len(),
            FIELD_MANAGER_MAX_LEN
        );
    }
}
