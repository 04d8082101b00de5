/// What the strategic-merge algorithm needs to know about one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldPatchMeta {
    /// `+patchStrategy` contains `merge`.
    pub merge: bool,
    /// `+patchStrategy` contains `retainKeys`.
    pub retain_keys: bool,
    /// `+patchMergeKey`, for lists of objects merged by key.
    pub merge_key: Option<&'static str>,
}
/// The schema of an object as strategic merge sees it.
pub trait PatchSchema: Copy {
    /// Field `name` of the object this schema describes: its patch metadata and, when the
    /// field's value (for a list: its items; for a map: its values) is an object with a known
    /// schema, that schema.
    fn field(self, name: &str) -> Option<(FieldPatchMeta, Option<Self>)>;
}

// Server-side application of Kubernetes strategic merge patches
// (`application/strategic-merge-patch+json`).
//
// This follows the apply half of `k8s.io/apimachinery/pkg/util/strategicpatch` as
// kube-apiserver runs it (`MergeParallelList` and `IgnoreUnmatchedNulls` both on),
// including the patch-version-2 directives emitted by `kubectl apply`:
//
// * objects merge recursively and `null` deletes a key;
// * lists whose field carries the `merge` strategy merge by their merge key (lists of
//   objects) or as an ordered set union (lists of primitives); other lists are replaced;
// * `$patch: replace | delete` on maps and on items of merged lists;
// * `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.
//
// Where the upstream algorithm leaves directives or `null`s in values that it copies
// verbatim from the patch (kube-apiserver relies on decoding into typed structs to drop
// them), this module strips them, so the result never contains a directive key.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

/// Go's name for the type of a decoded JSON list, used in upstream's messages.
const GO_LIST_TYPE: &str = "[]interface {}";
/// Go's name for the type of a decoded JSON object, used in upstream's messages.
const GO_MAP_TYPE: &str = "map[string]interface {}";

type JsonMap = Map<String, Value>;

/// Why a strategic merge patch could not be applied.
///
/// Messages follow the ones kube-apiserver returns (Go's `%v` rendering of maps and lists
/// included) so clients that match on them keep working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    /// The patch document is not a JSON object (`found` is the JSON type it is).
    #[error("json: cannot unmarshal {found} into Go value of type map[string]interface {{}}")]
    PatchNotObject {
        /// `array`, `string`, `number` or `bool`.
        found: &'static str,
    },
    /// The object being patched is not a JSON object.
    #[error("the object to patch is not a JSON object but a {found}")]
    OriginalNotObject {
        /// `array`, `string`, `number` or `bool`.
        found: &'static str,
    },
    /// An item of a list merged by key lacks the key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The offending item, rendered as Go prints it.
        map: String,
        /// The merge key.
        key: String,
    },
    /// A `$patch` directive with a value other than `replace` or `delete`.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType {
        /// The directive's value.
        directive: String,
        /// The map holding it.
        map: String,
    },
    /// `$patch: merge` inside a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// `$retainKeys` is not a list, or the patch sets a field the list does not name.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A `$deleteFromPrimitiveList…` key without `/<field>`.
    #[error("invalid patch format of primitive list")]
    BadDeleteFromPrimitiveList,
    /// A `$setElementOrder…` key without `/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// The patch list's items are not in the order `$setElementOrder` gives.
    #[error("the order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}")]
    SetElementOrderMismatch {
        /// The patch list.
        patch: String,
        /// The `$setElementOrder` list.
        order: String,
    },
    /// A value has the wrong JSON type for where it appears.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// Go's name for the expected type.
        expected: &'static str,
        /// Go's name for the type found.
        actual: &'static str,
    },
    /// A list merged by key holds something other than objects.
    #[error("value for key {index} is not a map")]
    ListItemNotMap {
        /// Position of the offending item.
        index: usize,
    },
    /// A merged list contains lists.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// A merged list mixes item types.
    #[error("list element types are not identical: {lists}")]
    MixedListItems {
        /// The lists involved.
        lists: String,
    },
    /// A list of objects has the `merge` strategy but no merge key.
    #[error("cannot merge lists without merge key for {field}")]
    MissingMergeKeyDeclaration {
        /// The list's field name.
        field: String,
    },
}

impl StrategicMergeError {
    /// The HTTP status kube-apiserver answers a failed strategic merge patch with:
    /// 400 (Bad Request) for malformed patches, 422 for lists of lists, and 500 for the
    /// rest, which upstream passes through unclassified (reason `""`).
    pub fn status_code(&self) -> u16 {
        match self {
            Self::PatchNotObject { .. }
            | Self::BadRetainKeys
            | Self::BadDeleteFromPrimitiveList
            | Self::BadSetElementOrder => 400,
            Self::NoListOfLists => 422,
            _ => 500,
        }
    }
}

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// Applies the strategic merge patch `patch` to `original` and returns the patched object.
///
/// `schema` describes `original`'s type; `None` means no type information, in which case
/// objects still merge recursively but every list is replaced by the patch's list (the
/// directives keep working). A `null` patch changes nothing, as upstream.
///
/// Ordering of merged lists is upstream's: items the patch names follow the patch's order
/// (or `$setElementOrder`'s), items only the server has keep their relative order, and an
/// item new to the list is placed before the server-only items that follow it — so without
/// `$setElementOrder` a new item lands at the front, as with kube-apiserver.
///
/// Known differences from upstream, all in corner cases: a map carrying
/// `$patch: replace` where the original has no such field keeps its contents (upstream
/// drops the field); nulls and directives are removed from every value copied verbatim
/// from the patch (upstream leaves some for typed decoding to discard); a
/// `$setElementOrder` for a list that is empty on both sides is accepted (upstream fails);
/// inputs upstream would panic on (maps compared as primitives, `null` list items)
/// produce an error or a best-effort result instead.
pub fn apply_patch<S: PatchSchema>(
    original: &Value,
    patch: &Value,
    schema: Option<S>,
) -> std::result::Result<Value, StrategicMergeError> {
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => JsonMap::new(),
        other => {
            return Err(StrategicMergeError::OriginalNotObject {
                found: json_type_name(other),
            });
        }
    };
    let patch = match patch {
        Value::Object(map) => map.clone(),
        Value::Null => return Ok(Value::Object(original)),
        other => {
            return Err(StrategicMergeError::PatchNotObject {
                found: json_type_name(other),
            });
        }
    };
    merge_map(original, patch, schema).map(Value::Object)
}

/// JSON's name for a value's type, as Go's decoder reports it.
fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn lookup<S: PatchSchema>(schema: Option<S>, name: &str) -> (FieldPatchMeta, Option<S>) {
    schema.and_then(|s| s.field(name)).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------

fn merge_map<S: PatchSchema>(
    mut original: JsonMap,
    mut patch: JsonMap,
    schema: Option<S>,
) -> Result<JsonMap> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
        return map_directive(&directive, patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (field, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.shift_remove(&field);
            continue;
        }
        let same_type = original
            .get(&field)
            .map(|current| coarse_type(current) == coarse_type(&patch_value));
        if same_type != Some(true) {
            // Absent from the original, or of another type: the patch value wins, except
            // that a deletion list never adds anything.
            if !delete_list {
                match sanitize(patch_value) {
                    Some(value) => {
                        original.insert(field, value);
                    }
                    None => {
                        original.shift_remove(&field);
                    }
                }
            }
            continue;
        }
        let Some(current) = original.get_mut(&field) else {
            continue;
        };
        let (meta, sub_schema) = lookup(schema, &field);
        match (current, patch_value) {
            (Value::Object(current_map), Value::Object(patch_map)) => {
                let merged = merge_map(std::mem::take(current_map), patch_map, sub_schema)?;
                *current_map = merged;
            }
            (Value::Array(current_list), Value::Array(patch_list)) => {
                let merged = merge_list(
                    std::mem::take(current_list),
                    patch_list,
                    sub_schema,
                    meta,
                    delete_list,
                    &field,
                )?;
                *current_list = merged.items;
            }
            (current, patch_value) => *current = patch_value,
        }
    }
    Ok(original)
}

/// A map carrying `$patch`: `replace` swaps in the rest of the patch map, `delete` empties it.
fn map_directive(directive: &Value, mut patch: JsonMap) -> Result<JsonMap> {
    match directive.as_str() {
        Some(REPLACE_DIRECTIVE) => {
            patch.shift_remove(DIRECTIVE_MARKER);
            Ok(sanitize_map(patch))
        }
        Some(DELETE_DIRECTIVE) => Ok(JsonMap::new()),
        _ => Err(StrategicMergeError::BadPatchType {
            directive: go_format_s(directive),
            map: go_format(&Value::Object(patch)),
        }),
    }
}

/// `$retainKeys`: drops every key of `original` the list does not name, after checking
/// that the patch itself only sets named keys.
fn apply_retain_keys(original: &mut JsonMap, patch: &mut JsonMap) -> Result<()> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(StrategicMergeError::BadRetainKeys);
    };
    let keep: HashSet<&str> = retain.iter().filter_map(Value::as_str).collect();
    let unnamed = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !key.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !keep.contains(key.as_str())
    });
    if unnamed {
        return Err(StrategicMergeError::BadRetainKeys);
    }
    original.retain(|key, _| keep.contains(key.as_str()));
    Ok(())
}

/// Splits `<prefix>/<field>` and returns `<field>`.
fn extract_key(key: &str, prefix: &str) -> Result<String> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_owned()),
        _ if prefix == SET_ELEMENT_ORDER_PREFIX => Err(StrategicMergeError::BadSetElementOrder),
        _ => Err(StrategicMergeError::BadDeleteFromPrimitiveList),
    }
}

// ---------------------------------------------------------------------------------------
// $setElementOrder
// ---------------------------------------------------------------------------------------

/// Merges every list that has a `$setElementOrder/<field>` companion and orders the
/// result: items named by the directive in its order, items only the server has kept in
/// their relative places between them. Both the directive and the list leave the patch.
fn apply_element_orders<S: PatchSchema>(
    original: &mut JsonMap,
    patch: &mut JsonMap,
    schema: Option<S>,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type(GO_LIST_TYPE, &order));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
        let original_list = optional_list(original.get(&field))?;
        let patch_list = optional_list(patch.get(&field))?;
        let (meta, sub_schema) = lookup(schema, &field);
        let merge_key = meta.merge_key;
        validate_against_order(patch_list.unwrap_or(&[]), &order, merge_key)?;

        let kind = item_kind(&[original_list.unwrap_or(&[]), patch_list.unwrap_or(&[])])?;
        let (merged, server_order) = match (original_list, patch_list) {
            (None, None) => continue,
            (Some(current), None) => (current.to_vec(), current.to_vec()),
            (None, Some(list)) => (sanitize_list(list.to_vec()), Vec::new()),
            (Some(current), Some(list)) => {
                let merged = merge_list(
                    current.to_vec(),
                    list.to_vec(),
                    sub_schema,
                    meta,
                    false,
                    &field,
                )?;
                let server_order = merged.reference.unwrap_or_else(|| current.to_vec());
                (merged.items, server_order)
            }
        };
        let ordered = match kind {
            // Only empty lists: nothing to order (upstream rejects this corner case).
            None => merged,
            Some(kind) => {
                let (in_order, server_only) = partition(merged, &order, merge_key)?;
                normalize_element_order(
                    in_order,
                    server_only,
                    &order,
                    &server_order,
                    merge_key,
                    kind,
                )?
            }
        };
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

fn optional_list(value: Option<&Value>) -> Result<Option<&[Value]>> {
    match value {
        None => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(other) => Err(bad_arg_type(GO_LIST_TYPE, other)),
    }
}

/// Every (non-deletion, non-directive) item of the patch list must appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_against_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<()> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if merge_key.is_some() {
            let Value::Object(map) = item else {
                return Err(bad_arg_type(GO_MAP_TYPE, item));
            };
            if is_delete_item(map) {
                continue;
            }
        }
        items.push(item);
    }
    let (mut at_patch, mut at_order) = (0, 0);
    while at_patch < items.len() && at_order < order.len() {
        let item = items[at_patch];
        if item
            .as_object()
            .is_some_and(|map| map.contains_key(DIRECTIVE_MARKER))
        {
            at_patch += 1;
            continue;
        }
        if same_identity(item, &order[at_order], merge_key)? {
            at_patch += 1;
        }
        at_order += 1;
    }
    if at_patch < items.len() {
        return Err(StrategicMergeError::SetElementOrderMismatch {
            patch: go_format_list(patch_list),
            order: go_format_list(order),
        });
    }
    Ok(())
}

/// Whether two list items denote the same element: equal merge-key values, or equal
/// values for lists without a merge key.
fn same_identity(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    Ok(merge_key_value(left, key)? == merge_key_value(right, key)?)
}

fn merge_key_value<'a>(item: &'a Value, key: &str) -> Result<&'a Value> {
    let Value::Object(map) = item else {
        return Err(bad_arg_type(GO_MAP_TYPE, item));
    };
    map.get(key).ok_or_else(|| no_merge_key(map, key))
}

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

/// The result of merging a list.
struct MergedList {
    items: Vec<Value>,
    /// What the `$setElementOrder` step must use as the server's order for a list of
    /// objects merged by key (see [`merge_keyed_list`]); `None` means the original list.
    reference: Option<Vec<Value>>,
}

impl MergedList {
    fn plain(items: Vec<Value>) -> Self {
        Self {
            items,
            reference: None,
        }
    }
}

/// Kinds of list items as Go's decoder types them (integers and floats differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ItemKind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Map,
}

fn merge_list<S: PatchSchema>(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Option<S>,
    meta: FieldPatchMeta,
    delete_list: bool,
    field: &str,
) -> Result<MergedList> {
    // A deletion list deletes whatever the field's strategy.
    if !meta.merge && !delete_list {
        return Ok(MergedList::plain(sanitize_list(patch)));
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(MergedList::plain(original));
    }
    let Some(kind) = item_kind(&[&original, &patch])? else {
        return Ok(MergedList::plain(original));
    };
    if kind == ItemKind::Map {
        let Some(merge_key) = meta.merge_key else {
            return Err(StrategicMergeError::MissingMergeKeyDeclaration {
                field: field.to_owned(),
            });
        };
        return merge_keyed_list(original, patch, schema, merge_key);
    }
    if delete_list {
        let kept = original
            .into_iter()
            .filter(|item| !patch.contains(item))
            .collect();
        return Ok(MergedList::plain(kept));
    }
    // Set union; the order is fixed by the normalization below.
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.iter().chain(patch.iter()) {
        if !merged.contains(item) {
            merged.push(item.clone());
        }
    }
    let (in_patch, server_only) = partition(merged, &patch, meta.merge_key)?;
    let items = normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &original,
        meta.merge_key,
        kind,
    )?;
    Ok(MergedList::plain(items))
}

/// Merges a list of objects by `merge_key`: `$patch: delete` items remove every match,
/// a `$patch: replace` item makes the remaining patch items the whole list, other items
/// merge into the first original item with the same key or are appended.
fn merge_keyed_list<S: PatchSchema>(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Option<S>,
    merge_key: &str,
) -> Result<MergedList> {
    let mut remaining = original;
    let mut regular: Vec<JsonMap> = Vec::with_capacity(patch.len());
    let mut replace = false;
    let mut deleted = 0;
    for item in patch {
        let Value::Object(map) = item else {
            return Err(bad_arg_type(GO_MAP_TYPE, &item));
        };
        let Some(directive) = map.get(DIRECTIVE_MARKER) else {
            regular.push(map);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(key_value) = map.get(merge_key) else {
                    return Err(no_merge_key(&map, merge_key));
                };
                ensure_all_maps(&remaining)?;
                let before = remaining.len();
                remaining.retain(|candidate| candidate.get(merge_key) != Some(key_value));
                deleted += before - remaining.len();
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => return Err(StrategicMergeError::MergeDirectiveInList),
            _ => {
                return Err(StrategicMergeError::BadPatchType {
                    directive: go_format_s(directive),
                    map: go_format(&Value::Object(map)),
                });
            }
        }
    }

    if replace {
        let items: Vec<Value> = regular
            .into_iter()
            .filter_map(|map| sanitize(Value::Object(map)))
            .collect();
        let (in_patch, server_only) = partition(items.clone(), &[], Some(merge_key))?;
        let items = normalize_element_order(
            in_patch,
            server_only,
            &[],
            &items,
            Some(merge_key),
            ItemKind::Map,
        )?;
        return Ok(MergedList {
            items,
            reference: None,
        });
    }

    let patch_order: Vec<Value> = regular.iter().cloned().map(Value::Object).collect();
    let server_order = remaining.clone();
    let mut merged = remaining;
    let mut appended = Vec::new();
    for item in regular {
        let Some(key_value) = item.get(merge_key).cloned() else {
            return Err(no_merge_key(&item, merge_key));
        };
        match find_by_key(&merged, merge_key, &key_value)? {
            Some(position) => {
                let current = match std::mem::take(&mut merged[position]) {
                    Value::Object(map) => map,
                    _ => JsonMap::new(),
                };
                merged[position] = Value::Object(merge_map(current, item, schema)?);
            }
            None => {
                if let Some(value) = sanitize(Value::Object(item)) {
                    appended.push(value.clone());
                    merged.push(value);
                }
            }
        }
    }

    // Upstream deletes and appends in place in the backing array of the original list,
    // and its `$setElementOrder` step then reads that array with the original length: the
    // list after deletions followed by as many appended items as there were deletions.
    // Reproduce that view so ordering matches kube-apiserver exactly.
    let mut reference = server_order.clone();
    reference.extend(appended.into_iter().take(deleted));

    let (in_patch, server_only) = partition(merged, &patch_order, Some(merge_key))?;
    let items = normalize_element_order(
        in_patch,
        server_only,
        &patch_order,
        &server_order,
        Some(merge_key),
        ItemKind::Map,
    )?;
    Ok(MergedList {
        items,
        reference: Some(reference),
    })
}

fn ensure_all_maps(list: &[Value]) -> Result<()> {
    match list.iter().position(|item| !item.is_object()) {
        Some(index) => Err(StrategicMergeError::ListItemNotMap { index }),
        None => Ok(()),
    }
}

/// Position of the first object in `list` whose `key` equals `value`.
fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(StrategicMergeError::ListItemNotMap { index });
        };
        if map.get(key) == Some(value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

fn is_delete_item(map: &JsonMap) -> bool {
    map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE)
}

/// The common kind of the items of `lists`, `None` when they are all empty.
fn item_kind(lists: &[&[Value]]) -> Result<Option<ItemKind>> {
    let mut kind = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let this = match item {
            Value::Array(_) => return Err(StrategicMergeError::NoListOfLists),
            Value::Null => ItemKind::Null,
            Value::Bool(_) => ItemKind::Bool,
            Value::Number(n) if n.is_f64() => ItemKind::Float,
            Value::Number(_) => ItemKind::Int,
            Value::String(_) => ItemKind::String,
            Value::Object(_) => ItemKind::Map,
        };
        match kind {
            None => kind = Some(this),
            Some(previous) if previous != this => {
                let rendered: Vec<String> = lists.iter().map(|list| go_format_list(list)).collect();
                return Err(StrategicMergeError::MixedListItems {
                    lists: format!("[{}]", rendered.join(" ")),
                });
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// Splits `items` into those present in `by` (by merge key when there is one) and the
/// others, keeping their order.
fn partition(
    items: Vec<Value>,
    by: &[Value],
    merge_key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = Vec::with_capacity(items.len());
    let mut absent = Vec::new();
    for item in items {
        let found = match merge_key {
            None => by.contains(&item),
            Some(key) => {
                let Value::Object(map) = &item else {
                    return Err(bad_arg_type(GO_MAP_TYPE, &item));
                };
                let Some(value) = map.get(key) else {
                    return Err(no_merge_key(map, key));
                };
                find_by_key(by, key, value)?.is_some()
            }
        };
        if found {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// Sorts `from_patch` by `patch_order` and `server_only` by `server_order`, then
/// interleaves them (upstream `normalizeElementOrder`).
fn normalize_element_order(
    from_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: ItemKind,
) -> Result<Vec<Value>> {
    let from_patch = sort_by_order(from_patch, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    Ok(interleave(
        server_only,
        from_patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// Stable sort of `items` by their position in `order`; for objects, every item on both
/// sides must carry the merge key, and `$patch: delete` items go last.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
    kind: ItemKind,
) -> Result<Vec<Value>> {
    let mut items = items;
    let mut deletions = Vec::new();
    if kind == ItemKind::Map {
        let key = merge_key.unwrap_or("");
        for item in items.iter().chain(order.iter()) {
            merge_key_value(item, key)?;
        }
        let (keep, delete): (Vec<Value>, Vec<Value>) = items
            .into_iter()
            .partition(|item| !item.as_object().is_some_and(is_delete_item));
        items = keep;
        deletions = delete;
    }
    items.sort_by_key(|item| position_in(order, item, merge_key, kind).unwrap_or(usize::MAX));
    items.extend(deletions);
    Ok(items)
}

/// Position of the first entry of `list` denoting the same element as `item`.
fn position_in(
    list: &[Value],
    item: &Value,
    merge_key: Option<&str>,
    kind: ItemKind,
) -> Option<usize> {
    if kind == ItemKind::Map {
        let key = merge_key.unwrap_or("");
        let wanted = item.as_object().and_then(|map| map.get(key));
        list.iter()
            .position(|entry| entry.as_object().and_then(|map| map.get(key)) == wanted)
    } else {
        list.iter().position(|entry| entry == item)
    }
}

/// Interleaves two sorted lists (upstream `mergeSortedSlice`): walking both, a
/// server-only item goes first only when both items appear in `server_order` and the
/// server-only one comes earlier there; otherwise the patch item goes first.
fn interleave(
    server_only: Vec<Value>,
    from_patch: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: ItemKind,
) -> Vec<Value> {
    let mut result = Vec::with_capacity(server_only.len() + from_patch.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    position_in(server_order, l, merge_key, kind),
                    position_in(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(item) = next {
            result.push(item);
        }
    }
    result
}

// ---------------------------------------------------------------------------------------
// Values taken verbatim from the patch
// ---------------------------------------------------------------------------------------

/// Prepares a patch value that lands where the original has nothing to merge with:
/// `null`s inside maps are dropped (upstream `discardNullValuesFromPatch`), maps and list
/// items carrying `$patch` are dropped (upstream `removeDirectives`) — except that a map
/// with `$patch: replace` keeps its contents — and parallel-list / `$retainKeys`
/// directives are removed. `None` means the value disappears.
fn sanitize(value: Value) -> Option<Value> {
    match value {
        Value::Object(mut map) => match map.get(DIRECTIVE_MARKER) {
            None => Some(Value::Object(sanitize_map(map))),
            Some(directive) if directive.as_str() == Some(REPLACE_DIRECTIVE) => {
                map.shift_remove(DIRECTIVE_MARKER);
                Some(Value::Object(sanitize_map(map)))
            }
            Some(_) => None,
        },
        Value::Array(list) => Some(Value::Array(sanitize_list(list))),
        other => Some(other),
    }
}

fn sanitize_map(map: JsonMap) -> JsonMap {
    map.into_iter()
        .filter(|(key, value)| !value.is_null() && !is_directive_key(key))
        .filter_map(|(key, value)| sanitize(value).map(|value| (key, value)))
        .collect()
}

fn sanitize_list(list: Vec<Value>) -> Vec<Value> {
    list.into_iter()
        .filter(|item| {
            !item
                .as_object()
                .is_some_and(|map| map.contains_key(DIRECTIVE_MARKER))
        })
        .filter_map(sanitize)
        .collect()
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE_MARKER
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// Same type for the "does the patch value replace the original one" check.
fn coarse_type(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(n) if n.is_f64() => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

// ---------------------------------------------------------------------------------------
// Errors rendered the way Go prints them
// ---------------------------------------------------------------------------------------

fn no_merge_key(map: &JsonMap, key: &str) -> StrategicMergeError {
    StrategicMergeError::NoMergeKey {
        map: go_format_map(map),
        key: key.to_owned(),
    }
}

fn bad_arg_type(expected: &'static str, actual: &Value) -> StrategicMergeError {
    StrategicMergeError::BadArgType {
        expected,
        actual: go_type_name(actual),
    }
}

/// Go's name for the dynamic type of a decoded JSON value (`%s` of its `reflect.Type`).
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => GO_LIST_TYPE,
        Value::Object(_) => GO_MAP_TYPE,
    }
}

/// Go's `%s` of a decoded JSON value.
fn go_format_s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_owned(),
        Value::Bool(_) | Value::Number(_) => {
            format!("%!s({}={})", go_type_name(value), go_format(value))
        }
        Value::Array(_) | Value::Object(_) => go_format(value),
    }
}

/// Go's `%v` of a decoded JSON value: `map[k:v ...]` with sorted keys, `[a b]`, `<nil>`.
fn go_format(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value);
    out
}

fn go_format_map(map: &JsonMap) -> String {
    let mut out = String::new();
    write_go_map(&mut out, map);
    out
}

fn go_format_list(list: &[Value]) -> String {
    let mut out = String::new();
    write_go_list(&mut out, list);
    out
}

fn write_go(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&go_float(f)),
            _ => {
                let _ = write!(out, "{n}");
            }
        },
        Value::String(s) => out.push_str(s),
        Value::Array(list) => write_go_list(out, list),
        Value::Object(map) => write_go_map(out, map),
    }
}

fn write_go_list(out: &mut String, list: &[Value]) {
    out.push('[');
    for (index, item) in list.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        write_go(out, item);
    }
    out.push(']');
}

fn write_go_map(out: &mut String, map: &JsonMap) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push_str("map[");
    for (index, key) in keys.into_iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        if let Some(value) = map.get(key) {
            write_go(out, value);
        }
    }
    out.push(']');
}

/// Go's `%v` of a float64: shortest representation, exponent form outside [1e-4, 1e21).
fn go_float(f: f64) -> String {
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-4..1e21).contains(&magnitude) {
        let rendered = format!("{f:e}");
        if let Some((mantissa, exponent)) = rendered.split_once('e') {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return rendered;
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hand-written slice of the Pod / Deployment schema.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        Pod,
        Deployment,
        ObjectMeta,
        DeploymentSpec,
        PodTemplate,
        PodSpec,
        Container,
        Strategy,
    }

    const PLAIN: FieldPatchMeta = FieldPatchMeta {
        merge: false,
        retain_keys: false,
        merge_key: None,
    };

    const fn merge_by(key: &'static str) -> FieldPatchMeta {
        FieldPatchMeta {
            merge: true,
            retain_keys: false,
            merge_key: Some(key),
        }
    }

    impl PatchSchema for Kind {
        fn field(self, name: &str) -> Option<(FieldPatchMeta, Option<Self>)> {
            use Kind::*;
            let found = match (self, name) {
                (Pod | Deployment | PodTemplate, "metadata") => (PLAIN, Some(ObjectMeta)),
                (Pod | PodTemplate, "spec") => (PLAIN, Some(PodSpec)),
                (Deployment, "spec") => (PLAIN, Some(DeploymentSpec)),
                (DeploymentSpec, "template") => (PLAIN, Some(PodTemplate)),
                (DeploymentSpec, "strategy") => (
                    FieldPatchMeta {
                        retain_keys: true,
                        ..PLAIN
                    },
                    Some(Strategy),
                ),
                (ObjectMeta, "finalizers") => (
                    FieldPatchMeta {
                        merge: true,
                        ..PLAIN
                    },
                    None,
                ),
                (ObjectMeta, "ownerReferences") => (merge_by("uid"), None),
                (PodSpec, "containers" | "initContainers") => (merge_by("name"), Some(Container)),
                (PodSpec, "volumes") => (
                    FieldPatchMeta {
                        retain_keys: true,
                        ..merge_by("name")
                    },
                    None,
                ),
                // A list of objects without a patch strategy: replaced wholesale.
                (PodSpec, "tolerations") => (PLAIN, None),
                (Container, "ports") => (merge_by("containerPort"), None),
                (Container, "env") => (merge_by("name"), None),
                (Container, "volumeMounts") => (merge_by("mountPath"), None),
                // Lists of primitives without a patch strategy: replaced wholesale.
                (Container, "args" | "command") => (PLAIN, None),
                _ => return None,
            };
            Some(found)
        }
    }

    enum Expect {
        Ok(Value),
        /// The error message must contain this text.
        Err(&'static str),
    }

    struct Case {
        name: &'static str,
        schema: Option<Kind>,
        original: Value,
        patch: Value,
        expect: Expect,
    }

    fn ok(
        name: &'static str,
        schema: Option<Kind>,
        original: Value,
        patch: Value,
        result: Value,
    ) -> Case {
        Case {
            name,
            schema,
            original,
            patch,
            expect: Expect::Ok(result),
        }
    }

    fn err(
        name: &'static str,
        schema: Option<Kind>,
        original: Value,
        patch: Value,
        message: &'static str,
    ) -> Case {
        Case {
            name,
            schema,
            original,
            patch,
            expect: Expect::Err(message),
        }
    }

    const POD: Option<Kind> = Some(Kind::Pod);
    const DEPLOY: Option<Kind> = Some(Kind::Deployment);

    /// Every key starting with a directive prefix, anywhere in `value`.
    fn directive_keys(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    if is_directive_key(key) {
                        found.push(key.clone());
                    }
                    directive_keys(item, found);
                }
            }
            Value::Array(list) => list.iter().for_each(|item| directive_keys(item, found)),
            _ => {}
        }
    }

    fn run(cases: Vec<Case>) {
        let mut failures = Vec::new();
        for case in cases {
            let got = apply_patch(&case.original, &case.patch, case.schema);
            match (&case.expect, got) {
                (Expect::Ok(want), Ok(got)) => {
                    if &got != want {
                        failures.push(format!(
                            "{}: want {}\n   got {}",
                            case.name,
                            serde_json::to_string(want).unwrap(),
                            serde_json::to_string(&got).unwrap()
                        ));
                        continue;
                    }
                    let mut leftovers = Vec::new();
                    directive_keys(&got, &mut leftovers);
                    if !leftovers.is_empty() {
                        failures.push(format!("{}: directives left: {leftovers:?}", case.name));
                    }
                    // Applying the same patch again changes nothing.
                    match apply_patch(&got, &case.patch, case.schema) {
                        Ok(again) if again == got => {}
                        Ok(again) => failures.push(format!(
                            "{}: not idempotent, second application gave {}",
                            case.name,
                            serde_json::to_string(&again).unwrap()
                        )),
                        Err(e) => {
                            failures.push(format!("{}: second application failed: {e}", case.name))
                        }
                    }
                }
                (Expect::Ok(_), Err(e)) => {
                    failures.push(format!("{}: unexpected error {e}", case.name))
                }
                (Expect::Err(text), Ok(got)) => failures.push(format!(
                    "{}: expected error containing {text:?}, got {}",
                    case.name,
                    serde_json::to_string(&got).unwrap()
                )),
                (Expect::Err(text), Err(e)) => {
                    if !e.to_string().contains(text) {
                        failures.push(format!(
                            "{}: expected error containing {text:?}, got {e:?}: {e}",
                            case.name
                        ));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failure(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn maps_and_nulls() {
        run(vec![
            ok(
                "maps merge recursively",
                POD,
                json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"b": "3", "c": "4"}}}),
                json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "3", "c": "4"}}}),
            ),
            ok(
                "null deletes a key, unmatched null is ignored",
                POD,
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"a": null, "zz": null}}}),
                json!({"metadata": {"labels": {"b": "2"}}}),
            ),
            ok(
                "null deletes a whole subtree",
                POD,
                json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}}),
                json!({"spec": null}),
                json!({"metadata": {"name": "p"}}),
            ),
            ok(
                "nulls inside a new subtree are dropped",
                POD,
                json!({"metadata": {"name": "p"}}),
                json!({"metadata": {"annotations": {"a": "x", "b": null}}, "spec": {"x": {"y": null}}}),
                json!({"metadata": {"name": "p", "annotations": {"a": "x"}}, "spec": {"x": {}}}),
            ),
            ok(
                "primitives are replaced, type changes take the patch value",
                POD,
                json!({"spec": {"priority": 1, "nodeSelector": "odd", "hostNetwork": false}}),
                json!({"spec": {"priority": 2.5, "nodeSelector": {"disk": "ssd"}, "hostNetwork": true}}),
                json!({"spec": {"priority": 2.5, "nodeSelector": {"disk": "ssd"}, "hostNetwork": true}}),
            ),
            ok(
                "an object replaces a list of another type",
                POD,
                json!({"spec": {"containers": [{"name": "a"}]}}),
                json!({"spec": {"containers": {"weird": true, "gone": null}}}),
                json!({"spec": {"containers": {"weird": true}}}),
            ),
            ok(
                "$deleteFromPrimitiveList on a non-list leaves it alone",
                POD,
                json!({"metadata": {"finalizers": "a"}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": "a"}}),
            ),
            ok(
                "empty patch changes nothing",
                POD,
                json!({"metadata": {"name": "p"}}),
                json!({}),
                json!({"metadata": {"name": "p"}}),
            ),
            ok(
                "null patch changes nothing",
                POD,
                json!({"metadata": {"name": "p"}}),
                Value::Null,
                json!({"metadata": {"name": "p"}}),
            ),
            ok(
                "null original is an empty object",
                POD,
                Value::Null,
                json!({"metadata": {"name": "p", "labels": null}}),
                json!({"metadata": {"name": "p"}}),
            ),
            ok(
                "dollar keys that are not directives are ordinary fields",
                None,
                json!({"schema": {"$ref": "#/a"}}),
                json!({"schema": {"$ref": "#/b", "$schema": "s"}}),
                json!({"schema": {"$ref": "#/b", "$schema": "s"}}),
            ),
        ]);
    }

    #[test]
    fn map_directives() {
        run(vec![
            ok(
                "$patch: replace on a map",
                POD,
                json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "p"}}),
                json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
                json!({"metadata": {"labels": {"c": "3"}, "name": "p"}}),
            ),
            ok(
                "$patch: replace drops nested directives and nulls",
                POD,
                json!({"spec": {"nodeSelector": {"a": "1"}}}),
                json!({"spec": {"nodeSelector": {"$patch": "replace", "b": "2", "c": null, "$retainKeys": ["b"]}}}),
                json!({"spec": {"nodeSelector": {"b": "2"}}}),
            ),
            ok(
                "$patch: delete on a map empties it",
                POD,
                json!({"metadata": {"labels": {"a": "1"}, "name": "p"}}),
                json!({"metadata": {"labels": {"$patch": "delete"}}}),
                json!({"metadata": {"labels": {}, "name": "p"}}),
            ),
            ok(
                "$patch: replace at the top level",
                POD,
                json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}}),
                json!({"$patch": "replace", "metadata": {"name": "q"}}),
                json!({"metadata": {"name": "q"}}),
            ),
            ok(
                "$patch: delete at the top level",
                POD,
                json!({"metadata": {"name": "p"}}),
                json!({"$patch": "delete", "metadata": {"name": "q"}}),
                json!({}),
            ),
            ok(
                "$patch: delete on a field the original lacks adds nothing",
                POD,
                json!({"metadata": {"name": "p"}}),
                json!({"metadata": {"labels": {"$patch": "delete"}}}),
                json!({"metadata": {"name": "p"}}),
            ),
            ok(
                "$patch: replace on a field the original lacks keeps the contents",
                POD,
                json!({"metadata": {"name": "p"}}),
                json!({"metadata": {"labels": {"$patch": "replace", "a": "1"}}}),
                json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            ),
            err(
                "unknown $patch value on a map",
                POD,
                json!({"metadata": {"labels": {"a": "1"}}}),
                json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}),
                "unknown patch type: merge in map: map[$patch:merge b:2]",
            ),
            err(
                "non-string $patch value",
                POD,
                json!({"metadata": {"labels": {"a": "1"}}}),
                json!({"metadata": {"labels": {"$patch": 1}}}),
                "unknown patch type: %!s(int64=1) in map: map[$patch:1]",
            ),
        ]);
    }

    #[test]
    fn keyed_lists() {
        let c = |name: &str, image: &str| json!({"name": name, "image": image});
        run(vec![
            ok(
                "items merge by key and keep their place",
                POD,
                json!({"spec": {"containers": [c("a", "a:1"), c("b", "b:1")]}}),
                json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
                json!({"spec": {"containers": [c("a", "a:1"), c("b", "b:2")]}}),
            ),
            ok(
                "new items go before server-only items",
                POD,
                json!({"spec": {"containers": [c("a", "a:1"), c("b", "b:1")]}}),
                json!({"spec": {"containers": [c("c", "c:1")]}}),
                json!({"spec": {"containers": [c("c", "c:1"), c("a", "a:1"), c("b", "b:1")]}}),
            ),
            ok(
                "patch order wins for items it names",
                POD,
                json!({"spec": {"containers": [{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}]}}),
                json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
                json!({"spec": {"containers": [{"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
            ),
            ok(
                "nested keyed lists merge (ports by containerPort, env by name)",
                POD,
                json!({"spec": {"containers": [{
                    "name": "a",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
                }]}}),
                json!({"spec": {"containers": [{
                    "name": "a",
                    "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                    "env": [{"name": "Y", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                }]}}),
                json!({"spec": {"containers": [{
                    "name": "a",
                    "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}],
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                }]}}),
            ),
            ok(
                "merge keys compare with their JSON type",
                POD,
                json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}),
                json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}}),
                json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}, {"containerPort": 80}]}]}}),
            ),
            ok(
                "$patch: delete removes every matching item",
                POD,
                json!({"spec": {"containers": [c("a", "1"), c("b", "2"), c("a", "3"), c("c", "4")]}}),
                json!({"spec": {"containers": [{"$patch": "delete", "name": "a"}, {"$patch": "delete", "name": "zz"}]}}),
                json!({"spec": {"containers": [c("b", "2"), c("c", "4")]}}),
            ),
            ok(
                "$patch: delete and additions together",
                POD,
                json!({"spec": {"containers": [c("a", "1"), c("b", "2")]}}),
                json!({"spec": {"containers": [c("c", "3"), {"$patch": "delete", "name": "a"}]}}),
                json!({"spec": {"containers": [c("c", "3"), c("b", "2")]}}),
            ),
            ok(
                "$patch: replace item replaces the whole list",
                POD,
                json!({"spec": {"containers": [c("a", "1"), c("b", "2")]}}),
                json!({"spec": {"containers": [c("z", "9"), {"$patch": "replace"}, c("y", "8")]}}),
                json!({"spec": {"containers": [c("z", "9"), c("y", "8")]}}),
            ),
            ok(
                "$patch: replace alone empties the list",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": [{"$patch": "replace"}]}}),
                json!({"spec": {"containers": []}}),
            ),
            ok(
                "empty patch list leaves a merged list alone",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": []}}),
                json!({"spec": {"containers": [c("a", "1")]}}),
            ),
            ok(
                "new list is taken from the patch without directives",
                POD,
                json!({"spec": {}}),
                json!({"spec": {"containers": [
                    {"name": "a", "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": "1"}, {"$patch": "delete", "name": "gone"}], "image": null},
                    {"$patch": "delete", "name": "b"}
                ]}}),
                json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}}),
            ),
            ok(
                "appended items lose their directives",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": [{"name": "b", "$retainKeys": ["name", "env"], "env": [{"$patch": "delete", "name": "q"}], "args": null}]}}),
                json!({"spec": {"containers": [{"name": "b", "env": []}, c("a", "1")]}}),
            ),
            ok(
                "volumes merge by name with $retainKeys per item",
                POD,
                json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
                json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}),
                json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
            ),
            err(
                "patch item without its merge key",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": [{"image": "nginx"}]}}),
                "map: map[image:nginx] does not contain declared merge key: name",
            ),
            err(
                "delete item without its merge key",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": [{"$patch": "delete", "image": "x"}]}}),
                "map: map[$patch:delete image:x] does not contain declared merge key: name",
            ),
            err(
                "original item without the merge key",
                POD,
                json!({"spec": {"containers": [{"image": "x"}]}}),
                json!({"spec": {"containers": [c("a", "1")]}}),
                "map: map[image:x] does not contain declared merge key: name",
            ),
            err(
                "$patch: merge inside a list",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}),
                "merging lists cannot yet be specified in the patch",
            ),
            err(
                "unknown $patch inside a list",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": [{"$patch": "frobnicate", "name": "a"}]}}),
                "unknown patch type: frobnicate in map: map[$patch:frobnicate name:a]",
            ),
            err(
                "mixed item types",
                POD,
                json!({"spec": {"containers": [c("a", "1")]}}),
                json!({"spec": {"containers": ["b"]}}),
                "list element types are not identical: [[map[image:1 name:a]] [b]]",
            ),
        ]);
    }

    #[test]
    fn primitive_and_replaced_lists() {
        run(vec![
            ok(
                "merged primitive list is a set union",
                POD,
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"finalizers": ["b", "c"]}}),
                json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            ),
            ok(
                "new primitives go first",
                POD,
                json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
                json!({"metadata": {"finalizers": ["d"]}}),
                json!({"metadata": {"finalizers": ["d", "a", "b", "c"]}}),
            ),
            ok(
                "patch order wins for primitives it names",
                POD,
                json!({"metadata": {"finalizers": ["1", "2", "3"]}}),
                json!({"metadata": {"finalizers": ["3", "1"]}}),
                json!({"metadata": {"finalizers": ["2", "3", "1"]}}),
            ),
            ok(
                "$deleteFromPrimitiveList removes values",
                POD,
                json!({"metadata": {"finalizers": ["a", "b", "c", "b"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}),
                json!({"metadata": {"finalizers": ["a", "c"]}}),
            ),
            ok(
                "$deleteFromPrimitiveList on a missing list adds nothing",
                POD,
                json!({"metadata": {"name": "p"}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
                json!({"metadata": {"name": "p"}}),
            ),
            ok(
                "$deleteFromPrimitiveList works on a list without merge strategy",
                POD,
                json!({"spec": {"containers": [{"name": "a", "args": ["x", "y", "z"]}]}}),
                json!({"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["y"]}]}}),
                json!({"spec": {"containers": [{"name": "a", "args": ["x", "z"]}]}}),
            ),
            ok(
                "additions and deletions of primitives together",
                POD,
                json!({"metadata": {"finalizers": ["1", "2", "3"]}}),
                json!({"metadata": {
                    "$setElementOrder/finalizers": ["1", "2", "4"],
                    "$deleteFromPrimitiveList/finalizers": ["3"],
                    "finalizers": ["4"]
                }}),
                json!({"metadata": {"finalizers": ["1", "2", "4"]}}),
            ),
            ok(
                "list without merge strategy is replaced",
                POD,
                json!({"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}),
                json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}}),
                json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}}),
            ),
            ok(
                "list of objects without merge strategy is replaced",
                POD,
                json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}),
                json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}, {"$patch": "delete", "key": "a"}]}}),
                json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
            ),
            ok(
                "without a schema maps merge and lists are replaced",
                None,
                json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x"]}, "spec": {"containers": [{"name": "a", "image": "1"}]}}),
                json!({"metadata": {"labels": {"b": "2"}, "finalizers": ["y"]}, "spec": {"containers": [{"name": "b"}]}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["y"]}, "spec": {"containers": [{"name": "b"}]}}),
            ),
            ok(
                "without a schema $deleteFromPrimitiveList still deletes",
                None,
                json!({"metadata": {"finalizers": ["x", "y"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!({"metadata": {"finalizers": ["y"]}}),
            ),
            ok(
                "null in $deleteFromPrimitiveList deletes the whole list (as upstream)",
                POD,
                json!({"metadata": {"finalizers": ["x"], "name": "p"}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": null}}),
                json!({"metadata": {"name": "p"}}),
            ),
            err(
                "list of lists",
                POD,
                json!({"metadata": {"finalizers": [["a"]]}}),
                json!({"metadata": {"finalizers": [["b"]]}}),
                "lists of lists are not supported",
            ),
            err(
                "list of objects with merge but no merge key",
                POD,
                json!({"metadata": {"finalizers": [{"a": 1}]}}),
                json!({"metadata": {"finalizers": [{"b": 1}]}}),
                "cannot merge lists without merge key for finalizers",
            ),
            err(
                "malformed $deleteFromPrimitiveList key",
                POD,
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
                "invalid patch format of primitive list",
            ),
        ]);
    }

    #[test]
    fn set_element_order() {
        let n = |name: &str| json!({"name": name});
        run(vec![
            ok(
                "reorders without a patch list",
                POD,
                json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}),
                json!({"spec": {"$setElementOrder/containers": [n("b"), n("a")]}}),
                json!({"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "1"}]}}),
            ),
            ok(
                "patch items follow the directive, server-only items keep their place",
                POD,
                json!({"spec": {"containers": [n("1"), n("x"), {"name": "2", "image": "two"}]}}),
                json!({"spec": {
                    "$setElementOrder/containers": [n("4"), n("1"), n("2"), n("3")],
                    "containers": [{"name": "4", "image": "four"}, {"name": "3", "image": "three"}]
                }}),
                json!({"spec": {"containers": [
                    {"name": "4", "image": "four"}, n("1"), n("x"), {"name": "2", "image": "two"}, {"name": "3", "image": "three"}
                ]}}),
            ),
            ok(
                "directive may name items that exist nowhere",
                POD,
                json!({"spec": {"containers": [n("1"), n("3")]}}),
                json!({"spec": {
                    "$setElementOrder/containers": [n("3"), n("2"), n("1")],
                    "containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]
                }}),
                json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
            ),
            ok(
                "new list with its order",
                POD,
                json!({"spec": {}}),
                json!({"spec": {
                    "$setElementOrder/containers": [n("a"), n("b")],
                    "containers": [n("a"), {"$patch": "delete", "name": "zz"}, n("b")]
                }}),
                json!({"spec": {"containers": [n("a"), n("b")]}}),
            ),
            ok(
                "directive for a list nobody has is dropped",
                POD,
                json!({"spec": {}}),
                json!({"spec": {"$setElementOrder/containers": [n("a")]}}),
                json!({"spec": {}}),
            ),
            ok(
                "primitive list order",
                POD,
                json!({"metadata": {"finalizers": ["1", "3"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}}),
                json!({"metadata": {"finalizers": ["3", "1"]}}),
            ),
            ok(
                "server-only primitive keeps its place among ordered ones",
                POD,
                json!({"metadata": {"finalizers": ["1", "2", "3", "4"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["1", "2"], "$deleteFromPrimitiveList/finalizers": ["3"]}}),
                json!({"metadata": {"finalizers": ["1", "2", "4"]}}),
            ),
            ok(
                "server-only items with deletions and additions (upstream's in-place view)",
                POD,
                json!({"spec": {"containers": [{"name": "a", "env": [
                    {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "X", "value": "9"}
                ]}]}}),
                json!({"spec": {"containers": [{"name": "a",
                    "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                    "env": [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}]
                }]}}),
                json!({"spec": {"containers": [{"name": "a", "env": [
                    {"name": "A", "value": "10"}, {"name": "X", "value": "9"}, {"name": "C", "value": "3"}
                ]}]}}),
            ),
            err(
                "patch list out of the directive's order",
                POD,
                json!({"spec": {"containers": [n("1"), n("3"), n("2")]}}),
                json!({"spec": {
                    "$setElementOrder/containers": [n("1"), n("2"), n("3")],
                    "containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]
                }}),
                "doesn't match $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]",
            ),
            err(
                "primitive patch list out of order",
                POD,
                json!({"metadata": {"finalizers": ["1", "3", "2"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["1", "2", "3"], "finalizers": ["3", "1"]}}),
                "the order in patch list:\n[3 1]\n doesn't match",
            ),
            err(
                "directive value is not a list",
                POD,
                json!({"metadata": {"finalizers": ["1"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": "1"}}),
                "expected a []interface {}, but received a string",
            ),
            err(
                "directive item without the merge key",
                POD,
                json!({"spec": {"containers": [n("a")]}}),
                json!({"spec": {"$setElementOrder/containers": [{"image": "x"}]}}),
                "map: map[image:x] does not contain declared merge key: name",
            ),
            err(
                "malformed $setElementOrder key",
                POD,
                json!({"metadata": {"finalizers": ["1"]}}),
                json!({"metadata": {"$setElementOrderfinalizers": ["1"]}}),
                "invalid patch format of setElementOrder list",
            ),
        ]);
    }

    #[test]
    fn retain_keys() {
        run(vec![
            ok(
                "$retainKeys clears fields it does not name",
                DEPLOY,
                json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}, "replicas": 1}}),
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
                json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 1}}),
            ),
            ok(
                "$retainKeys keeps named fields and merges them",
                DEPLOY,
                json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}}}),
                json!({"spec": {"strategy": {"$retainKeys": ["rollingUpdate", "type"], "rollingUpdate": {"maxSurge": 2}}}}),
                json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}}}}),
            ),
            ok(
                "without $retainKeys a retainKeys field merges normally",
                DEPLOY,
                json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}),
                json!({"spec": {"strategy": {"type": "Recreate"}}}),
                json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": "25%"}}}}),
            ),
            ok(
                "nulls and parallel directives need not be named",
                POD,
                json!({"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x", "y"]}}),
                json!({"metadata": {"$retainKeys": ["name", "finalizers"], "labels": null, "$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!({"metadata": {"name": "p", "finalizers": ["y"]}}),
            ),
            err(
                "$retainKeys must be a list",
                DEPLOY,
                json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
                json!({"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}}),
                "invalid patch format of retainKeys",
            ),
            err(
                "patch sets a field $retainKeys does not name",
                DEPLOY,
                json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}),
                "invalid patch format of retainKeys",
            ),
        ]);
    }

    #[test]
    fn bad_documents() {
        run(vec![
            err(
                "patch is a list",
                POD,
                json!({}),
                json!([{"op": "add"}]),
                "json: cannot unmarshal array into Go value of type map[string]interface {}",
            ),
            err(
                "patch is a string",
                POD,
                json!({}),
                json!("x"),
                "cannot unmarshal string",
            ),
            err(
                "original is not an object",
                POD,
                json!([1]),
                json!({}),
                "not a JSON object",
            ),
            err(
                "setElementOrder with a null list",
                POD,
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["a"], "finalizers": null}}),
                "expected a []interface {}, but received a %!s(<nil>)",
            ),
        ]);
    }

    #[test]
    fn status_codes() {
        let not_object = apply_patch(&json!({}), &json!([]), POD).unwrap_err();
        assert_eq!(not_object.status_code(), 400);
        assert_eq!(StrategicMergeError::BadRetainKeys.status_code(), 400);
        assert_eq!(StrategicMergeError::NoListOfLists.status_code(), 422);
        let no_key = apply_patch(
            &json!({"spec": {"containers": []}}),
            &json!({"spec": {"containers": [{"image": "x"}]}}),
            POD,
        )
        .unwrap_err();
        assert_eq!(no_key.status_code(), 500);
    }

    #[test]
    fn go_formatting() {
        assert_eq!(
            go_format(&json!({"b": [1, 2.5, null, true], "a": {"y": "s", "x": 1e21}})),
            "map[a:map[x:1e+21 y:s] b:[1 2.5 <nil> true]]"
        );
        assert_eq!(go_format(&json!(0.00001)), "1e-05");
        assert_eq!(go_format(&json!(80.0)), "80");
    }

    /// The live Deployment: created from `LAST_APPLIED` plus server defaults, then
    /// changed by others (an env var, a finalizer).
    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "uid": "0d1c2b3a",
                "resourceVersion": "1234",
                "generation": 1,
                "labels": {"app": "web"},
                "annotations": {
                    "deployment.kubernetes.io/revision": "1",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}\n"
                },
                "finalizers": ["other.io/x"]
            },
            "spec": {
                "replicas": 2,
                "progressDeadlineSeconds": 600,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.25",
                                "imagePullPolicy": "IfNotPresent",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "env": [
                                    {"name": "A", "value": "1"},
                                    {"name": "B", "value": "2"},
                                    {"name": "X", "value": "9"}
                                ],
                                "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File"
                            },
                            {
                                "name": "log",
                                "image": "busybox",
                                "args": ["tail", "-f", "/var/log/app.log"],
                                "imagePullPolicy": "Always",
                                "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File"
                            }
                        ],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            },
            "status": {"observedGeneration": 1, "replicas": 2}
        })
    }

    #[test]
    fn kubectl_client_side_apply() {
        // What `kubectl apply` sends when the new config bumps the image and replica
        // count, replaces env B by C (A changes), drops container `log`, adds `metrics`,
        // switches to the Recreate strategy and adds a finalizer.
        let patch = json!({
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"},
                "$setElementOrder/finalizers": ["example.com/protect"],
                "finalizers": ["example.com/protect"]
            },
            "spec": {
                "replicas": 3,
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}, {"name": "metrics"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                            "env": [
                                {"name": "A", "value": "10"},
                                {"name": "C", "value": "3"},
                                {"$patch": "delete", "name": "B"}
                            ],
                            "image": "nginx:1.26",
                            "name": "nginx"
                        },
                        {"image": "prom/exporter:2", "name": "metrics", "ports": [{"containerPort": 9100}]},
                        {"$patch": "delete", "name": "log"}
                    ]
                }}
            }
        });
        let mut want = live_deployment();
        want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!("{\"new\":true}\n");
        want["metadata"]["finalizers"] = json!(["example.com/protect", "other.io/x"]);
        want["spec"]["replicas"] = json!(3);
        want["spec"]["strategy"] = json!({"type": "Recreate"});
        let nginx = &mut want["spec"]["template"]["spec"]["containers"][0];
        nginx["image"] = json!("nginx:1.26");
        // X was added by someone else: it keeps its place; C lands where upstream puts it.
        nginx["env"] = json!([
            {"name": "A", "value": "10"},
            {"name": "X", "value": "9"},
            {"name": "C", "value": "3"}
        ]);
        want["spec"]["template"]["spec"]["containers"][1] = json!({"image": "prom/exporter:2", "name": "metrics", "ports": [{"containerPort": 9100}]});

        let got = apply_patch(&live_deployment(), &patch, DEPLOY).unwrap();
        assert_eq!(got, want);
        // Re-applying the same patch (kubectl apply run twice) is stable.
        let again = apply_patch(&got, &patch, DEPLOY).unwrap();
        assert_eq!(again, want);
    }

    #[test]
    fn kubectl_apply_of_unchanged_config_is_stable() {
        // The object was created from the same config: kubectl only refreshes the
        // annotation, possibly with order directives for lists the config names.
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}\n"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "log"}]
            }}}
        });
        let live = live_deployment();
        let got = apply_patch(&live, &patch, DEPLOY).unwrap();
        assert_eq!(got, live);
        assert_eq!(apply_patch(&got, &patch, DEPLOY).unwrap(), live);
    }

    #[test]
    fn inputs_are_not_modified_and_order_of_keys_is_kept() {
        let original = json!({"b": 1, "a": {"y": 1, "x": 2}, "c": 3});
        let patch = json!({"a": {"x": 5}, "d": 4});
        let got = apply_patch(&original, &patch, POD).unwrap();
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            r#"{"b":1,"a":{"y":1,"x":5},"c":3,"d":4}"#
        );
        assert_eq!(original, json!({"b": 1, "a": {"y": 1, "x": 2}, "c": 3}));
    }
}
