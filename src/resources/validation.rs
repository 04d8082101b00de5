//! Object validation with kube-apiserver (1.33) rules and exact messages.
//!
//! [`validate_create`] / [`validate_update`] return the field errors the
//! apiserver would report for the object (after defaulting: absent fields
//! that upstream defaults are treated as their default). [`invalid_message`]
//! builds the `Status.message` of the 422 `Invalid` response exactly like
//! apimachinery's `NewInvalid`; each [`FieldError`] gives one
//! `StatusCause` (`reason()`, `field`, `message()`).
//!
//! Values that Go would have rejected while decoding the request body
//! (malformed quantities, non-string labels, bad base64) are reported by
//! [`decode_check`] as a 400 `BadRequest`; [`validate_create`] also reports
//! malformed quantities as field errors so they are never silently accepted.
//!
//! Self-contained: depends only on `serde_json` and `thiserror`.

use serde_json::{Map, Value};
use thiserror::Error;

// ---------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------

/// The kind of a field error (apimachinery `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    TooLong,
    Forbidden,
    TooMany,
    NotFound,
}

impl FieldErrorType {
    /// The human text (`"Required value"`, `"Invalid value"`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::NotFound => "Not found",
        }
    }

    /// The `StatusCause.reason` (`"FieldValueRequired"`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::NotFound => "FieldValueNotFound",
        }
    }
}

/// One field-level validation error.
///
/// `value` is the offending value as Go would print it: strings are quoted,
/// numbers and booleans printed bare, JSON `null` prints `null`, an object of
/// strings prints as `map[string]string{…}`, an array of strings as
/// `[]string{…}`. An object `{"$go": "<text>"}` prints `<text>` verbatim
/// (used for Go struct renderings). `None` omits the value.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    pub field: String,
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Required, field, None, detail)
    }

    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Invalid, field, Some(value), detail)
    }

    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(FieldErrorType::NotSupported, field, Some(value), detail)
    }

    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        Self::new(FieldErrorType::Duplicate, field, Some(value), "")
    }

    pub fn not_found(field: impl Into<String>, value: Value) -> Self {
        Self::new(FieldErrorType::NotFound, field, Some(value), "")
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Forbidden, field, None, detail)
    }

    /// `Too long: may not be more than N bytes` (the 1.32+ wording).
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self::new(
            FieldErrorType::TooLong,
            field,
            None,
            format!("may not be more than {max_bytes} {unit}"),
        )
    }

    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(
            FieldErrorType::TooMany,
            field,
            Some(Value::from(actual)),
            format!("must have at most {max} items"),
        )
    }

    fn new(
        kind: FieldErrorType,
        field: impl Into<String>,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    /// The message without the field (Go `ErrorBody()`), e.g.
    /// `Invalid value: "Foo": a lowercase RFC 1123 subdomain …`.
    pub fn message(&self) -> String {
        let mut s = match self.kind {
            FieldErrorType::Required | FieldErrorType::Forbidden | FieldErrorType::TooLong => {
                self.kind.as_str().to_string()
            }
            _ => match &self.value {
                None => self.kind.as_str().to_string(),
                Some(v) => format!("{}: {}", self.kind.as_str(), go_render(v)),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// The `StatusCause.reason`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
}

impl std::fmt::Display for FieldError {
    /// `field: body`, as Go's `field.Error.Error()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// `Kind.group "name" is invalid: …` exactly as apimachinery `NewInvalid`
/// builds the Status message (duplicates dropped, `[a, b]` when several).
pub fn invalid_message(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut msgs: Vec<String> = Vec::new();
    for e in errors {
        let m = e.to_string();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    match msgs.len() {
        0 => format!("{qualified} {} is invalid", go_quote(name)),
        1 => format!("{qualified} {} is invalid: {}", go_quote(name), msgs[0]),
        _ => format!(
            "{qualified} {} is invalid: [{}]",
            go_quote(name),
            msgs.join(", ")
        ),
    }
}

/// Quote a string the way Go's `%q` / `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render a JSON value the way Go's field.Error prints the Go value it was
/// decoded into (see [`FieldError`]).
fn go_render(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Object(m) => {
            if let (1, Some(Value::String(raw))) = (m.len(), m.get("$go")) {
                return raw.clone();
            }
            go_string_map(Some(m))
        }
        Value::Array(a) => go_string_slice(Some(a)),
    }
}

/// `map[string]string{"a":"b", "c":"d"}` (keys sorted), or
/// `map[string]string(nil)` for an absent map.
fn go_string_map(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else {
        return "map[string]string(nil)".to_string();
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            let v = m.get(*k).and_then(Value::as_str).unwrap_or_default();
            format!("{}:{}", go_quote(k), go_quote(v))
        })
        .collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

/// `[]string{"a", "b"}`, or `[]string(nil)` for an absent slice.
fn go_string_slice(a: Option<&Vec<Value>>) -> String {
    match a {
        None => "[]string(nil)".to_string(),
        Some(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|v| go_quote(v.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
    }
}

fn go_literal(text: String) -> Value {
    let mut m = Map::new();
    m.insert("$go".to_string(), Value::String(text));
    Value::Object(m)
}

/// `%#v` of a `*metav1.LabelSelector` decoded from JSON.
fn go_label_selector(sel: Option<&Value>) -> Value {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Value::Null;
    };
    let ml = go_string_map(sel.get("matchLabels").and_then(Value::as_object));
    let me = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(exprs) => {
            let parts: Vec<String> = exprs
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(str_of(e, "key")),
                        go_quote(str_of(e, "operator")),
                        go_string_slice(e.get("values").and_then(Value::as_array))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
    };
    go_literal(format!(
        "v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}"
    ))
}

fn go_label_map(labels: Option<&Value>) -> Value {
    go_literal(go_string_map(labels.and_then(Value::as_object)))
}

// ---------------------------------------------------------------------------
// Name and value syntax checks (apimachinery pkg/util/validation)
// ---------------------------------------------------------------------------

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(ex);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    matches_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    b.iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// apimachinery `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !matches_dns1123_subdomain(s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// apimachinery `IsDNS1123Label`.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1123_label(s) {
        if matches_dns1123_subdomain(s) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// apimachinery `IsDNS1035Label` (service names).
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1035_label(s) {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// apimachinery `IsQualifiedName` (label keys, annotation keys, finalizers).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.len() {
        1 => parts[0],
        2 => {
            let prefix = parts[0];
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            parts[1]
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// apimachinery `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// apimachinery `IsConfigMapKey` (ConfigMap and Secret data keys).
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    if !ok {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// apimachinery `IsValidPathSegmentName` (RBAC object names).
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for bad in [".", ".."] {
        if name == bad {
            return vec![format!("may not be '{bad}'")];
        }
    }
    path_segment_prefix_errors(name)
}

fn path_segment_prefix_errors(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// apimachinery `IsValidPortNum`.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// apimachinery `IsValidPortName` (IANA_SVC_NAME).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// The relaxed environment variable name check (1.32+ default).
fn env_var_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if value
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=')
    {
        errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string());
    }
    errs
}

// ---------------------------------------------------------------------------
// Name rules per kind
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

fn mask_trailing_dash(name: &str) -> String {
    if name.ends_with('-') && name.len() >= 2 {
        let bytes = &name.as_bytes()[..name.len() - 2];
        format!("{}a", String::from_utf8_lossy(bytes))
    } else if name == "-" {
        "a".to_string()
    } else {
        name.to_string()
    }
}

fn name_errors(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let n = if prefix && rule != NameRule::PathSegment {
        masked = mask_trailing_dash(name);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(n),
        NameRule::Label => is_dns1123_label(n),
        NameRule::Dns1035 => is_dns1035_label(n),
        NameRule::PathSegment => {
            if prefix {
                path_segment_prefix_errors(n)
            } else {
                is_valid_path_segment_name(n)
            }
        }
    }
}

fn name_rule(group: &str, resource: &str) -> NameRule {
    match (group, resource) {
        ("", "namespaces") => NameRule::Label,
        ("", "services") => NameRule::Dns1035,
        ("apps", "statefulsets") => NameRule::Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Whether a built-in resource is cluster-scoped (`Some(true)`), namespaced
/// (`Some(false)`), or unknown to this module (`None`).
pub fn is_cluster_scoped(group: &str, resource: &str) -> Option<bool> {
    let cluster = matches!(
        (group, resource),
        (
            "",
            "namespaces" | "nodes" | "persistentvolumes" | "componentstatuses"
        ) | (
            "rbac.authorization.k8s.io",
            "clusterroles" | "clusterrolebindings"
        ) | (
            "storage.k8s.io",
            "storageclasses"
                | "csidrivers"
                | "csinodes"
                | "volumeattachments"
                | "volumeattributesclasses"
        ) | ("apiextensions.k8s.io", "customresourcedefinitions")
            | ("apiregistration.k8s.io", "apiservices")
            | ("admissionregistration.k8s.io", _)
            | ("scheduling.k8s.io", "priorityclasses")
            | ("node.k8s.io", "runtimeclasses")
            | (
                "certificates.k8s.io",
                "certificatesigningrequests" | "clustertrustbundles"
            )
            | (
                "networking.k8s.io",
                "ingressclasses" | "ipaddresses" | "servicecidrs"
            )
            | ("flowcontrol.apiserver.k8s.io", _)
            | ("resource.k8s.io", "deviceclasses" | "resourceslices")
            | ("storagemigration.k8s.io", _)
    );
    if cluster {
        return Some(true);
    }
    let namespaced = matches!(
        group,
        "" | "apps"
            | "batch"
            | "autoscaling"
            | "policy"
            | "networking.k8s.io"
            | "rbac.authorization.k8s.io"
            | "coordination.k8s.io"
            | "discovery.k8s.io"
            | "events.k8s.io"
            | "storage.k8s.io"
            | "resource.k8s.io"
    );
    namespaced.then_some(false)
}

// ---------------------------------------------------------------------------
// Small JSON helpers
// ---------------------------------------------------------------------------

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn obj_of<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

fn arr_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn nonnegative(errs: &mut Vec<FieldError>, v: &Value, key: &str, path: &str) {
    if let Some(n) = int_of(v, key)
        && n < 0
    {
        errs.push(FieldError::invalid(
            child(path, key),
            Value::from(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// `a == b`, without hashing where both objects hold their keys in the same order (a write
/// built on the stored object, or the JSON of one encoder): they are compared pairwise, and
/// by lookup only from the first key out of order.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            for ((kx, vx), (ky, vy)) in x.iter().zip(y) {
                if kx != ky {
                    return x == y;
                }
                if !same_json(vx, vy) {
                    return false;
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => same_json_items(x, y),
        _ => a == b,
    }
}

/// [`same_json`] for lists.
pub fn same_json_items(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| same_json(p, q))
}

/// Semantic equality of JSON values: absent, null, `{}`, `[]`, `""`, `0`
/// and `false` are Go zero values and compare equal to each other.
fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    fn is_zero(v: Option<&Value>) -> bool {
        match v {
            None | Some(Value::Null) => true,
            Some(Value::Object(m)) => m.values().all(|x| is_zero(Some(x))),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Bool(b)) => !b,
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        }
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => x
            .keys()
            .chain(y.keys())
            .all(|k| semantic_eq(x.get(k), y.get(k))),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| semantic_eq(Some(p), Some(q)))
        }
        _ if is_zero(a) && is_zero(b) => true,
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Quantities (resource.Quantity)
// ---------------------------------------------------------------------------

/// A failure decoding a request body value the way Go's decoder would.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    QuantityFormat,
    #[error("unable to parse quantity's numeric part")]
    QuantityNumeric,
    #[error("unable to parse quantity's suffix")]
    QuantitySuffix,
    #[error("json: cannot unmarshal {found} into Go struct field {path} of type string")]
    NotAString { found: &'static str, path: String },
    #[error("illegal base64 data at input byte {0}")]
    Base64(usize),
}

impl DecodeError {
    /// The full 400 message: `Pod in version "v1" cannot be handled as a Pod: …`.
    pub fn status_message(&self, kind: &str, version: &str) -> String {
        format!(
            "{kind} in version {} cannot be handled as a {kind}: {self}",
            go_quote(version)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QFormat {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity: value in nano-units (rounded up) and its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quantity {
    nanos: i128,
    format: QFormat,
}

const NANO: i128 = 1_000_000_000;

fn parse_quantity(raw: &str) -> Result<Quantity, DecodeError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(DecodeError::QuantityFormat);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if b[0] == b'+' || b[0] == b'-' {
        negative = b[0] == b'-';
        i = 1;
    }
    let num_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let number = &s[num_start..i];
    if number.is_empty() {
        return Err(DecodeError::QuantityFormat);
    }
    let suffix_start = i;
    while i < b.len() && b"eEinumkKMGTP".contains(&b[i]) {
        i += 1;
    }
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i != b.len() {
        return Err(DecodeError::QuantityFormat);
    }
    let suffix = &s[suffix_start..];
    if !number.bytes().any(|c| c.is_ascii_digit()) {
        return Err(DecodeError::QuantityNumeric);
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let frac_len = frac_part.len() as i32;

    let (base2_pow, exp10, format) = match suffix {
        "" => (0, 0, QFormat::DecimalSi),
        "n" => (0, -9, QFormat::DecimalSi),
        "u" => (0, -6, QFormat::DecimalSi),
        "m" => (0, -3, QFormat::DecimalSi),
        "k" => (0, 3, QFormat::DecimalSi),
        "M" => (0, 6, QFormat::DecimalSi),
        "G" => (0, 9, QFormat::DecimalSi),
        "T" => (0, 12, QFormat::DecimalSi),
        "P" => (0, 15, QFormat::DecimalSi),
        "E" => (0, 18, QFormat::DecimalSi),
        "Ki" => (10, 0, QFormat::BinarySi),
        "Mi" => (20, 0, QFormat::BinarySi),
        "Gi" => (30, 0, QFormat::BinarySi),
        "Ti" => (40, 0, QFormat::BinarySi),
        "Pi" => (50, 0, QFormat::BinarySi),
        "Ei" => (60, 0, QFormat::BinarySi),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i32 = s[1..].parse().map_err(|_| DecodeError::QuantitySuffix)?;
            (0, e, QFormat::DecimalExponent)
        }
        _ => return Err(DecodeError::QuantitySuffix),
    };
    if digits.is_empty() {
        return Ok(Quantity { nanos: 0, format });
    }
    // value = digits * 2^base2_pow * 10^(exp10 - frac_len); in nanos: +9.
    let scale = exp10 - frac_len + 9;
    let mut mantissa: i128 = 0;
    let mut overflow = false;
    for c in digits.bytes() {
        match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
        {
            Some(m) => mantissa = m,
            None => {
                overflow = true;
                break;
            }
        }
    }
    let mut nanos = if overflow {
        i128::MAX / 4
    } else {
        mantissa.checked_shl(base2_pow).unwrap_or(i128::MAX / 4)
    };
    if scale >= 0 {
        for _ in 0..scale {
            nanos = nanos.checked_mul(10).unwrap_or(i128::MAX / 4);
        }
    } else {
        let mut div: i128 = 1;
        for _ in 0..(-scale).min(38) {
            div = div.saturating_mul(10);
        }
        // Round up to the nearest nano, as upstream does.
        nanos = (nanos + div - 1) / div;
    }
    if negative {
        nanos = -nanos;
    }
    Ok(Quantity { nanos, format })
}

impl Quantity {
    /// The canonical string (Go `Quantity.String()`).
    fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let mut format = self.format;
        if format == QFormat::BinarySi {
            let whole = abs.is_multiple_of(NANO as u128);
            if abs < 1024 * NANO as u128 || !whole {
                format = QFormat::DecimalSi;
            }
        }
        if format == QFormat::BinarySi {
            let mut units = abs / NANO as u128;
            let mut pow = 0;
            while pow < 6 && units.is_multiple_of(1024) {
                units /= 1024;
                pow += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][pow];
            return format!("{sign}{units}{suffix}");
        }
        // Decimal: the largest exponent (multiple of 3, from -9) keeping the
        // mantissa integral.
        let mut mantissa = abs;
        let mut exp: i32 = -9;
        while exp < 18 && mantissa.is_multiple_of(1000) {
            mantissa /= 1000;
            exp += 3;
        }
        let suffix = if format == QFormat::DecimalExponent {
            if exp == 0 {
                String::new()
            } else {
                format!("e{exp}")
            }
        } else {
            match exp {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                _ => "",
            }
            .to_string()
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

fn quantity_of(v: &Value) -> Result<Quantity, DecodeError> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => parse_quantity(&n.to_string()),
        _ => Err(DecodeError::QuantityFormat),
    }
}

// ---------------------------------------------------------------------------
// Decode-level checks
// ---------------------------------------------------------------------------

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn base64_error(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut pad = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'=' {
            pad += 1;
            continue;
        }
        if pad > 0 || !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/') {
            return Some(i);
        }
    }
    if !b.len().is_multiple_of(4) || pad > 2 {
        return Some(b.len() - b.len() % 4);
    }
    None
}

fn base64_decoded_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|&c| c == b'=').count();
    (s.len() / 4 * 3).saturating_sub(pad)
}

fn check_string_map(m: Option<&Map<String, Value>>, go_path: &str) -> Result<(), DecodeError> {
    for v in m.into_iter().flat_map(|m| m.values()) {
        if !v.is_string() && !v.is_null() {
            return Err(DecodeError::NotAString {
                found: json_type_name(v),
                path: go_path.to_string(),
            });
        }
    }
    Ok(())
}

fn check_pod_spec_quantities(spec: &Value) -> Result<(), DecodeError> {
    for list in ["containers", "initContainers"] {
        for c in arr_of(spec, list) {
            let Some(res) = c.get("resources") else {
                continue;
            };
            for part in ["limits", "requests"] {
                for q in obj_of(res, part).into_iter().flat_map(|m| m.values()) {
                    quantity_of(q)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks that upstream performs while decoding the body (a 400
/// `BadRequest`, before validation): label/annotation values must be
/// strings, resource quantities must parse, Secret `data` / ConfigMap
/// `binaryData` must be base64.
pub fn decode_check(group: &str, resource: &str, obj: &Value) -> Result<(), DecodeError> {
    if let Some(meta) = obj.get("metadata") {
        check_string_map(obj_of(meta, "labels"), "ObjectMeta.metadata.labels")?;
        check_string_map(
            obj_of(meta, "annotations"),
            "ObjectMeta.metadata.annotations",
        )?;
    }
    if let Some(spec) = pod_spec_of(group, resource, obj) {
        check_pod_spec_quantities(spec)?;
    }
    let b64 = match (group, resource) {
        ("", "secrets") => obj_of(obj, "data"),
        ("", "configmaps") => obj_of(obj, "binaryData"),
        _ => None,
    };
    for v in b64.into_iter().flat_map(|m| m.values()) {
        if let Some(s) = v.as_str()
            && let Some(at) = base64_error(s)
        {
            return Err(DecodeError::Base64(at));
        }
    }
    Ok(())
}

/// The pod spec embedded in an object of the given kind, if any.
fn pod_spec_of<'a>(group: &str, resource: &str, obj: &'a Value) -> Option<&'a Value> {
    match (group, resource) {
        ("", "pods") => obj.get("spec"),
        ("", "podtemplates") => obj.get("template")?.get("spec"),
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => obj.get("spec")?.get("template")?.get("spec"),
        ("batch", "cronjobs") => obj
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// ObjectMeta
// ---------------------------------------------------------------------------

fn validate_labels(errs: &mut Vec<FieldError>, labels: Option<&Map<String, Value>>, path: &str) {
    for (k, v) in labels.into_iter().flatten() {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, Value::from(k.as_str()), msg));
        }
        if let Some(v) = v.as_str() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(path, Value::from(v), msg));
            }
        }
    }
}

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn validate_annotations(
    errs: &mut Vec<FieldError>,
    annotations: Option<&Map<String, Value>>,
    path: &str,
) {
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, Value::from(k.as_str()), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn validate_object_meta(
    errs: &mut Vec<FieldError>,
    obj: &Value,
    cluster_scoped: Option<bool>,
    rule: NameRule,
) {
    let empty = Value::Object(Map::new());
    let meta = obj.get("metadata").unwrap_or(&empty);
    let generate_name = str_of(meta, "generateName");
    let name = str_of(meta, "name");
    if !generate_name.is_empty() {
        for msg in name_errors(rule, generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                Value::from(generate_name),
                msg,
            ));
        }
    }
    if name.is_empty() {
        // With generateName set the name is generated before validation.
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_errors(rule, name, false) {
            errs.push(FieldError::invalid("metadata.name", Value::from(name), msg));
        }
    }
    let namespace = str_of(meta, "namespace");
    match cluster_scoped {
        Some(true) => {
            if !namespace.is_empty() {
                errs.push(FieldError::forbidden(
                    "metadata.namespace",
                    "not allowed on this type",
                ));
            }
        }
        Some(false) if namespace.is_empty() => {
            errs.push(FieldError::required("metadata.namespace", ""));
        }
        _ => {
            if !namespace.is_empty() {
                for msg in name_errors(NameRule::Label, namespace, false) {
                    errs.push(FieldError::invalid(
                        "metadata.namespace",
                        Value::from(namespace),
                        msg,
                    ));
                }
            }
        }
    }
    nonnegative(errs, meta, "generation", "metadata");
    validate_labels(errs, obj_of(meta, "labels"), "metadata.labels");
    validate_annotations(errs, obj_of(meta, "annotations"), "metadata.annotations");
    for r in arr_of(meta, "ownerReferences") {
        let path = "metadata.ownerReferences";
        let api_version = str_of(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                Value::from(api_version),
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if str_of(r, key).is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.{key}"),
                    Value::from(""),
                    "must not be empty",
                ));
            }
        }
    }
    for f in arr_of(meta, "finalizers") {
        let f = f.as_str().unwrap_or_default();
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(
                "metadata.finalizers",
                Value::from(f),
                msg,
            ));
        }
    }
}

fn validate_object_meta_update(errs: &mut Vec<FieldError>, old: &Value, new: &Value) {
    let empty = Value::Object(Map::new());
    let old_meta = old.get("metadata").unwrap_or(&empty);
    let new_meta = new.get("metadata").unwrap_or(&empty);
    for key in ["name", "namespace", "uid", "creationTimestamp"] {
        // An absent value on the new object means "unchanged" (upstream
        // fills these from the stored object before validating).
        let Some(nv) = new_meta.get(key).and_then(Value::as_str) else {
            continue;
        };
        let ov = str_of(old_meta, key);
        if nv != ov {
            errs.push(FieldError::invalid(
                format!("metadata.{key}"),
                Value::from(nv),
                "field is immutable",
            ));
        }
    }
    if let (Some(n), Some(o)) = (
        int_of(new_meta, "generation"),
        int_of(old_meta, "generation"),
    ) && n < o
    {
        errs.push(FieldError::invalid(
            "metadata.generation",
            Value::from(n),
            "must not be decremented",
        ));
    }
    validate_labels(errs, obj_of(new_meta, "labels"), "metadata.labels");
    validate_annotations(
        errs,
        obj_of(new_meta, "annotations"),
        "metadata.annotations",
    );
}

// ---------------------------------------------------------------------------
// Label selectors embedded in objects (metav1.LabelSelector)
// ---------------------------------------------------------------------------

fn validate_label_selector(errs: &mut Vec<FieldError>, sel: &Value, path: &str) {
    validate_labels(
        errs,
        obj_of(sel, "matchLabels"),
        &format!("{path}.matchLabels"),
    );
    for (i, expr) in arr_of(sel, "matchExpressions").iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = arr_of(expr, "values");
        let op = str_of(expr, "operator");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                format!("{p}.operator"),
                Value::from(op),
                "not a valid selector operator",
            )),
        }
        let key = str_of(expr, "key");
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(
                format!("{p}.key"),
                Value::from(key),
                msg,
            ));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or_default();
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    format!("{p}.values[{j}]"),
                    Value::from(v),
                    msg,
                ));
            }
        }
    }
}

/// How a `metav1.LabelSelector` converts to a selector.
enum SelectorMatch {
    /// nil selector: matches nothing.
    Nothing,
    /// empty selector: matches everything.
    Everything,
    /// A selector with requirements.
    Some,
    /// An operator that cannot be converted.
    Invalid,
}

fn selector_kind(sel: Option<&Value>) -> SelectorMatch {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return SelectorMatch::Nothing;
    };
    let exprs = arr_of(sel, "matchExpressions");
    if exprs.iter().any(|e| {
        !matches!(
            str_of(e, "operator"),
            "In" | "NotIn" | "Exists" | "DoesNotExist"
        )
    }) {
        return SelectorMatch::Invalid;
    }
    if obj_of(sel, "matchLabels").is_none_or(Map::is_empty) && exprs.is_empty() {
        SelectorMatch::Everything
    } else {
        SelectorMatch::Some
    }
}

fn selector_matches(sel: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    for (k, v) in obj_of(sel, "matchLabels").into_iter().flatten() {
        if get(k) != v.as_str() {
            return false;
        }
    }
    arr_of(sel, "matchExpressions").iter().all(|e| {
        let have = get(str_of(e, "key"));
        let values: Vec<&str> = arr_of(e, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match str_of(e, "operator") {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

// ---------------------------------------------------------------------------
// Pod specs
// ---------------------------------------------------------------------------

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn validate_resources(errs: &mut Vec<FieldError>, res: &Value, path: &str) {
    let lim_path = format!("{path}.limits");
    let req_path = format!("{path}.requests");
    let limits = obj_of(res, "limits");
    let requests = obj_of(res, "requests");
    let mut parsed_limits: Vec<(&str, Quantity)> = Vec::new();
    for (part, map, ppath) in [
        ("limits", limits, &lim_path),
        ("requests", requests, &req_path),
    ] {
        for (name, raw) in map.into_iter().flatten() {
            let fpath = format!("{ppath}[{name}]");
            if !name.contains('/') {
                if !STANDARD_CONTAINER_RESOURCES.contains(&name.as_str())
                    && !name.starts_with("hugepages-")
                {
                    errs.push(FieldError::invalid(
                        &fpath,
                        Value::from(name.as_str()),
                        "must be a standard resource for containers",
                    ));
                }
            } else if !is_native_resource(name) && name.starts_with("requests.") {
                errs.push(FieldError::invalid(
                    &fpath,
                    Value::from(name.as_str()),
                    "doesn't follow extended resource name standard",
                ));
            }
            let q = match quantity_of(raw) {
                Ok(q) => q,
                Err(e) => {
                    errs.push(FieldError::invalid(&fpath, raw.clone(), e.to_string()));
                    continue;
                }
            };
            if q.nanos < 0 {
                errs.push(FieldError::invalid(
                    &fpath,
                    Value::from(q.canonical()),
                    "must be greater than or equal to 0",
                ));
            }
            if !is_native_resource(name) && q.nanos % NANO != 0 {
                errs.push(FieldError::invalid(
                    &fpath,
                    Value::from(q.canonical()),
                    "must be an integer",
                ));
            }
            if part == "limits" {
                parsed_limits.push((name.as_str(), q));
                continue;
            }
            match parsed_limits.iter().find(|(n, _)| *n == name.as_str()) {
                Some((_, lim)) => {
                    if q.nanos != lim.nanos && !is_overcommit_allowed(name) {
                        errs.push(FieldError::invalid(
                            &req_path,
                            Value::from(q.canonical()),
                            format!("must be equal to {name} limit of {}", lim.canonical()),
                        ));
                    } else if q.nanos > lim.nanos {
                        errs.push(FieldError::invalid(
                            &req_path,
                            Value::from(q.canonical()),
                            format!(
                                "must be less than or equal to {name} limit of {}",
                                lim.canonical()
                            ),
                        ));
                    }
                }
                None => {
                    if !is_overcommit_allowed(name) {
                        errs.push(FieldError::required(
                            &lim_path,
                            "Limit must be set for non overcommitable resources",
                        ));
                    }
                }
            }
        }
    }
}

fn validate_container_ports(errs: &mut Vec<FieldError>, ports: &[Value], path: &str) {
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = str_of(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(
                        format!("{p}.name"),
                        Value::from(name),
                        m,
                    ));
                }
            } else if names.contains(&name) {
                errs.push(FieldError::duplicate(
                    format!("{p}.name"),
                    Value::from(name),
                ));
            } else {
                names.push(name);
            }
        }
        match int_of(port, "containerPort") {
            None | Some(0) => errs.push(FieldError::required(format!("{p}.containerPort"), "")),
            Some(n) => {
                for m in is_valid_port_num(n) {
                    errs.push(FieldError::invalid(
                        format!("{p}.containerPort"),
                        Value::from(n),
                        m,
                    ));
                }
            }
        }
        if let Some(h) = int_of(port, "hostPort").filter(|h| *h != 0) {
            for m in is_valid_port_num(h) {
                errs.push(FieldError::invalid(
                    format!("{p}.hostPort"),
                    Value::from(h),
                    m,
                ));
            }
        }
        let proto = str_of(port, "protocol");
        if !proto.is_empty() && !matches!(proto, "TCP" | "UDP" | "SCTP") {
            errs.push(FieldError::not_supported(
                format!("{p}.protocol"),
                Value::from(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
}

fn validate_container_common(errs: &mut Vec<FieldError>, c: &Value, path: &str, volumes: &[&str]) {
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                Value::from(name),
                m,
            ));
        }
    }
    if str_of(c, "image").is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    let tmp = str_of(c, "terminationMessagePolicy");
    if !tmp.is_empty() && !matches!(tmp, "File" | "FallbackToLogsOnError") {
        errs.push(FieldError::not_supported(
            format!("{path}.terminationMessagePolicy"),
            Value::from(tmp),
            &["File", "FallbackToLogsOnError"],
        ));
    }
    validate_container_ports(errs, arr_of(c, "ports"), &format!("{path}.ports"));
    for (i, env) in arr_of(c, "env").iter().enumerate() {
        let ename = str_of(env, "name");
        let p = format!("{path}.env[{i}].name");
        if ename.is_empty() {
            errs.push(FieldError::required(p, ""));
        } else {
            for m in env_var_name_errors(ename) {
                errs.push(FieldError::invalid(&p, Value::from(ename), m));
            }
        }
    }
    let pull = str_of(c, "imagePullPolicy");
    if !pull.is_empty() && !matches!(pull, "Always" | "IfNotPresent" | "Never") {
        errs.push(FieldError::not_supported(
            format!("{path}.imagePullPolicy"),
            Value::from(pull),
            &["Always", "IfNotPresent", "Never"],
        ));
    }
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in arr_of(c, "volumeMounts").iter().enumerate() {
        let p = format!("{path}.volumeMounts[{i}]");
        let mname = str_of(m, "name");
        if mname.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        }
        if !volumes.contains(&mname) {
            errs.push(FieldError::not_found(
                format!("{p}.name"),
                Value::from(mname),
            ));
        }
        let mp = str_of(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(format!("{p}.mountPath"), ""));
        }
        if mount_points.contains(&mp) {
            errs.push(FieldError::invalid(
                format!("{p}.mountPath"),
                Value::from(mp),
                "must be unique",
            ));
        }
        mount_points.push(mp);
    }
    if let Some(res) = c.get("resources") {
        validate_resources(errs, res, &format!("{path}.resources"));
    }
}

/// `ValidatePodSpec` (the commonly hit subset). `path` is `spec` for pods
/// and e.g. `spec.template.spec` for templates.
fn validate_pod_spec(errs: &mut Vec<FieldError>, spec: Option<&Value>, path: &str, is_pod: bool) {
    let empty = Value::Object(Map::new());
    let spec = spec.unwrap_or(&empty);

    let mut volumes: Vec<&str> = Vec::new();
    for (i, vol) in arr_of(spec, "volumes").iter().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        let before = errs.len();
        let sources = vol.as_object().map_or(0, |m| {
            m.iter()
                .filter(|(k, v)| *k != "name" && !v.is_null())
                .count()
        });
        if sources == 0 {
            errs.push(FieldError::required(&p, "must specify a volume type"));
        }
        let name = str_of(vol, "name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            for m in is_dns1123_label(name) {
                errs.push(FieldError::invalid(
                    format!("{p}.name"),
                    Value::from(name),
                    m,
                ));
            }
        }
        if volumes.contains(&name) {
            errs.push(FieldError::duplicate(
                format!("{p}.name"),
                Value::from(name),
            ));
        }
        if errs.len() == before {
            volumes.push(name);
        }
    }

    let containers = arr_of(spec, "containers");
    let mut names: Vec<&str> = Vec::new();
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        validate_container_common(errs, c, &p, &volumes);
        let name = str_of(c, "name");
        if names.contains(&name) {
            errs.push(FieldError::duplicate(
                format!("{p}.name"),
                Value::from(name),
            ));
        } else {
            names.push(name);
        }
    }
    for (i, c) in arr_of(spec, "initContainers").iter().enumerate() {
        let p = format!("{path}.initContainers[{i}]");
        validate_container_common(errs, c, &p, &volumes);
        let name = str_of(c, "name");
        if names.contains(&name) {
            errs.push(FieldError::duplicate(
                format!("{p}.name"),
                Value::from(name),
            ));
        } else {
            names.push(name);
        }
    }
    let rp = str_of(spec, "restartPolicy");
    if !rp.is_empty() && !matches!(rp, "Always" | "OnFailure" | "Never") {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            Value::from(rp),
            &["Always", "OnFailure", "Never"],
        ));
    }
    nonnegative(errs, spec, "terminationGracePeriodSeconds", path);
    if let Some(ads) = int_of(spec, "activeDeadlineSeconds")
        && ads <= 0
    {
        errs.push(FieldError::invalid(
            format!("{path}.activeDeadlineSeconds"),
            Value::from(ads),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    if is_pod {
        for (list, items) in [
            ("containers", containers),
            ("initContainers", arr_of(spec, "initContainers")),
        ] {
            for (i, c) in items.iter().enumerate() {
                let image = str_of(c, "image");
                if image.trim() != image {
                    errs.push(FieldError::invalid(
                        format!("{path}.{list}[{i}].image"),
                        Value::from(image),
                        "must not have leading or trailing whitespace",
                    ));
                }
            }
        }
    }
}

/// `ValidatePodTemplateSpec`: template labels/annotations and the pod spec.
fn validate_pod_template(errs: &mut Vec<FieldError>, template: Option<&Value>, path: &str) {
    let meta = template.and_then(|t| t.get("metadata"));
    validate_labels(
        errs,
        meta.and_then(|m| obj_of(m, "labels")),
        &format!("{path}.labels"),
    );
    validate_annotations(
        errs,
        meta.and_then(|m| obj_of(m, "annotations")),
        &format!("{path}.annotations"),
    );
    validate_pod_spec(
        errs,
        template.and_then(|t| t.get("spec")),
        &format!("{path}.spec"),
        false,
    );
}

fn restart_policy_of(template: Option<&Value>) -> &str {
    let rp = template
        .and_then(|t| t.get("spec"))
        .map(|s| str_of(s, "restartPolicy"))
        .unwrap_or_default();
    if rp.is_empty() { "Always" } else { rp }
}

fn template_labels(template: Option<&Value>) -> Option<&Value> {
    template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// Deployment / ReplicaSet / DaemonSet / StatefulSet spec checks.
fn validate_workload_spec(errs: &mut Vec<FieldError>, resource: &str, obj: &Value) {
    let empty = Value::Object(Map::new());
    let spec = obj.get("spec").unwrap_or(&empty);
    let template = spec.get("template");
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let what = match resource {
        "daemonsets" => "daemonset",
        "statefulsets" => "statefulset",
        _ => "deployment",
    };

    if resource == "statefulsets" {
        let pmp = str_of(spec, "podManagementPolicy");
        if !pmp.is_empty() && !matches!(pmp, "OrderedReady" | "Parallel") {
            errs.push(FieldError::invalid(
                "spec.podManagementPolicy",
                Value::from(pmp),
                "must be 'OrderedReady' or 'Parallel'",
            ));
        }
    }
    if resource != "daemonsets" {
        nonnegative(errs, spec, "replicas", "spec");
    }
    if resource == "statefulsets" {
        nonnegative(errs, spec, "minReadySeconds", "spec");
    }

    // Selector.
    if resource == "daemonsets" {
        if let Some(sel) = selector {
            validate_label_selector(errs, sel, "spec.selector");
        }
        let matches = match selector_kind(selector) {
            SelectorMatch::Nothing => Some(false),
            SelectorMatch::Everything => Some(true),
            SelectorMatch::Some => selector
                .map(|s| selector_matches(s, template_labels(template).and_then(Value::as_object))),
            SelectorMatch::Invalid => None,
        };
        if matches == Some(false) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                go_label_map(template_labels(template)),
                "`selector` does not match template `labels`",
            ));
        }
        if matches!(selector_kind(selector), SelectorMatch::Everything) {
            errs.push(FieldError::invalid(
                "spec.selector",
                go_label_selector(selector),
                "empty selector is invalid for daemonset",
            ));
        }
    } else {
        match selector {
            None => errs.push(FieldError::required("spec.selector", "")),
            Some(sel) => {
                validate_label_selector(errs, sel, "spec.selector");
                if matches!(selector_kind(selector), SelectorMatch::Everything) {
                    errs.push(FieldError::invalid(
                        "spec.selector",
                        go_label_selector(selector),
                        format!("empty selector is invalid for {what}"),
                    ));
                }
            }
        }
    }

    if resource != "daemonsets" {
        let kind = selector_kind(selector);
        if let SelectorMatch::Invalid = kind {
            let detail = if resource == "statefulsets" {
                ""
            } else {
                "invalid label selector"
            };
            errs.push(FieldError::invalid(
                "spec.selector",
                go_label_selector(selector),
                detail,
            ));
        } else {
            // A nil selector converts to "nothing", which matches no labels;
            // an empty one to "everything", which skips the check.
            let mismatch = match (kind, selector) {
                (SelectorMatch::Nothing, _) => true,
                (SelectorMatch::Some, Some(sel)) => {
                    !selector_matches(sel, template_labels(template).and_then(Value::as_object))
                }
                _ => false,
            };
            if mismatch {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    go_label_map(template_labels(template)),
                    "`selector` does not match template `labels`",
                ));
            }
            if resource == "statefulsets" {
                // Upstream does not validate a StatefulSet's pod spec, only
                // the template's labels and annotations.
                let meta = template.and_then(|t| t.get("metadata"));
                validate_labels(
                    errs,
                    meta.and_then(|m| obj_of(m, "labels")),
                    "spec.template.labels",
                );
                validate_annotations(
                    errs,
                    meta.and_then(|m| obj_of(m, "annotations")),
                    "spec.template.annotations",
                );
            } else {
                validate_pod_template(errs, template, "spec.template");
                let rp = restart_policy_of(template);
                if rp != "Always" {
                    errs.push(FieldError::not_supported(
                        "spec.template.spec.restartPolicy",
                        Value::from(rp),
                        &["Always"],
                    ));
                }
                if let Some(ads) = template
                    .and_then(|t| t.get("spec"))
                    .and_then(|s| s.get("activeDeadlineSeconds"))
                    .filter(|v| !v.is_null())
                {
                    errs.push(FieldError::invalid(
                        "spec.template.spec.activeDeadlineSeconds",
                        ads.clone(),
                        "activeDeadlineSeconds in ReplicaSet is not Supported",
                    ));
                }
            }
        }
        if resource == "statefulsets" {
            let rp = restart_policy_of(template);
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    Value::from(rp),
                    &["Always"],
                ));
            }
        }
    } else {
        validate_pod_template(errs, template, "spec.template");
        let rp = restart_policy_of(template);
        if rp != "Always" {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                Value::from(rp),
                &["Always"],
            ));
        }
    }

    if resource == "deployments" {
        let strategy = spec.get("strategy");
        let stype = strategy.map(|s| str_of(s, "type")).unwrap_or_default();
        if stype == "Recreate"
            && strategy
                .and_then(|s| s.get("rollingUpdate"))
                .is_some_and(|r| !r.is_null())
        {
            errs.push(FieldError::forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            ));
        }
    }
    if resource != "statefulsets" {
        nonnegative(errs, spec, "minReadySeconds", "spec");
    }
    nonnegative(errs, spec, "revisionHistoryLimit", "spec");
    if resource == "deployments"
        && let Some(pds) = int_of(spec, "progressDeadlineSeconds")
    {
        if pds < 0 {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                Value::from(pds),
                "must be greater than or equal to 0",
            ));
        }
        let mrs = int_of(spec, "minReadySeconds").unwrap_or(0);
        if pds <= mrs {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                Value::from(pds),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn validate_job_spec(errs: &mut Vec<FieldError>, spec: Option<&Value>, path: &str) {
    let empty = Value::Object(Map::new());
    let spec = spec.unwrap_or(&empty);
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
    ] {
        nonnegative(errs, spec, key, path);
    }
    let template = spec.get("template");
    let tpath = format!("{path}.template");
    validate_pod_template(errs, template, &tpath);
    let rp = restart_policy_of(template);
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            format!("{tpath}.spec.restartPolicy"),
            Value::from(rp),
            &["OnFailure", "Never"],
        ));
    }
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

fn effective_cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = arr_of(spec, "clusterIPs")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    let ip = str_of(spec, "clusterIP");
    if ip.is_empty() {
        Vec::new()
    } else {
        vec![ip.to_string()]
    }
}

fn go_service_port(port: &Value) -> Value {
    go_literal(format!(
        "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
        go_quote(match str_of(port, "protocol") {
            "" => "TCP",
            p => p,
        }),
        int_of(port, "port").unwrap_or(0)
    ))
}

fn validate_service(errs: &mut Vec<FieldError>, obj: &Value) {
    let empty = Value::Object(Map::new());
    let spec = obj.get("spec").unwrap_or(&empty);
    let stype = match str_of(spec, "type") {
        "" => "ClusterIP",
        t => t,
    };
    let ips = effective_cluster_ips(spec);
    let headless = ips.first().is_some_and(|ip| ip == "None");
    let ports = arr_of(spec, "ports");

    if ports.is_empty() && !headless && stype != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    if !matches!(
        stype,
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort"
    ) {
        errs.push(FieldError::not_supported(
            "spec.type",
            Value::from(stype),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    if stype == "ExternalName" {
        if !arr_of(spec, "clusterIPs").is_empty() {
            errs.push(FieldError::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
        let cname = str_of(spec, "externalName");
        let cname = cname.strip_suffix('.').unwrap_or(cname);
        if cname.is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        } else {
            for m in is_dns1123_subdomain(cname) {
                errs.push(FieldError::invalid(
                    "spec.externalName",
                    Value::from(cname),
                    m,
                ));
            }
        }
    }

    let require_name = ports.len() > 1;
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        let name = str_of(port, "name");
        if require_name && name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(FieldError::invalid(
                    format!("{p}.name"),
                    Value::from(name),
                    m,
                ));
            }
            if names.contains(&name) {
                errs.push(FieldError::duplicate(
                    format!("{p}.name"),
                    Value::from(name),
                ));
            } else {
                names.push(name);
            }
        }
        let num = int_of(port, "port").unwrap_or(0);
        for m in is_valid_port_num(num) {
            errs.push(FieldError::invalid(
                format!("{p}.port"),
                Value::from(num),
                m,
            ));
        }
        let proto = str_of(port, "protocol");
        if !proto.is_empty() && !matches!(proto, "TCP" | "UDP" | "SCTP") {
            errs.push(FieldError::not_supported(
                format!("{p}.protocol"),
                Value::from(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        match port.get("targetPort") {
            Some(Value::Number(n)) => {
                let t = n.as_i64().unwrap_or(0);
                for m in is_valid_port_num(t) {
                    errs.push(FieldError::invalid(
                        format!("{p}.targetPort"),
                        Value::from(t),
                        m,
                    ));
                }
            }
            Some(Value::String(s)) => {
                for m in is_valid_port_name(s) {
                    errs.push(FieldError::invalid(
                        format!("{p}.targetPort"),
                        Value::from(s.as_str()),
                        m,
                    ));
                }
            }
            _ => {}
        }
    }

    if !matches!(stype, "ExternalName") {
        let raw_ips = arr_of(spec, "clusterIPs");
        let single = str_of(spec, "clusterIP");
        if !raw_ips.is_empty() && !single.is_empty() && raw_ips[0].as_str() != Some(single) {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                Value::Array(raw_ips.to_vec()),
                "first value must match `clusterIP`",
            ));
        }
        for (i, ip) in ips.iter().enumerate() {
            if i == 0 && ip == "None" {
                if ips.len() > 1 {
                    errs.push(FieldError::invalid(
                        format!("spec.clusterIPs[{i}]"),
                        Value::from(ip.as_str()),
                        "'None' must be the first and only value",
                    ));
                }
                continue;
            }
            if ip.parse::<std::net::IpAddr>().is_err() {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    Value::from(ip.as_str()),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
            }
        }
    }

    let mut seen: Vec<(&str, i64)> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let proto = match str_of(port, "protocol") {
            "" => "TCP",
            p => p,
        };
        let key = (proto, int_of(port, "port").unwrap_or(0));
        if seen.contains(&key) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                go_service_port(port),
            ));
        }
        seen.push(key);
    }

    let affinity = str_of(spec, "sessionAffinity");
    if !affinity.is_empty() && !matches!(affinity, "ClientIP" | "None") {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            Value::from(affinity),
            &["ClientIP", "None"],
        ));
    }
    for (i, port) in ports.iter().enumerate() {
        let Some(np) = int_of(port, "nodePort").filter(|n| *n != 0) else {
            continue;
        };
        let p = format!("spec.ports[{i}].nodePort");
        if stype == "ClusterIP" {
            errs.push(FieldError::forbidden(
                p,
                "may not be used when `type` is 'ClusterIP'",
            ));
        } else if stype != "ExternalName" && !(30000..=32767).contains(&np) {
            errs.push(FieldError::invalid(
                p,
                Value::from(np),
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ));
        }
    }
}

fn validate_service_update(errs: &mut Vec<FieldError>, old: &Value, new: &Value) {
    let empty = Value::Object(Map::new());
    let os = old.get("spec").unwrap_or(&empty);
    let ns = new.get("spec").unwrap_or(&empty);
    if str_of(os, "type") == "ExternalName" || str_of(ns, "type") == "ExternalName" {
        return;
    }
    let old_ips = effective_cluster_ips(os);
    let mut new_ips = effective_cluster_ips(ns);
    if new_ips.is_empty() {
        // Upstream carries allocated IPs over when the update omits them.
        new_ips = old_ips.clone();
    }
    let headless = |ips: &[String]| ips.first().is_some_and(|ip| ip == "None");
    if headless(&old_ips) && headless(&new_ips) {
        return;
    }
    let value = Value::Array(new_ips.iter().map(|s| Value::from(s.as_str())).collect());
    let changed = if old_ips.len() == new_ips.len() {
        old_ips.iter().zip(new_ips.iter()).any(|(a, b)| a != b)
    } else {
        !old_ips.is_empty() && !new_ips.is_empty() && old_ips[0] != new_ips[0]
    };
    if changed {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            value,
            "may not change once set",
        ));
    }
}

// ---------------------------------------------------------------------------
// ConfigMaps and Secrets
// ---------------------------------------------------------------------------

const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn validate_config_map(errs: &mut Vec<FieldError>, obj: &Value) {
    let data = obj_of(obj, "data");
    let binary = obj_of(obj, "binaryData");
    let mut total = 0usize;
    for (k, v) in data.into_iter().flatten() {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(
                format!("data[{k}]"),
                Value::from(k.as_str()),
                m,
            ));
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                format!("data[{k}]"),
                Value::from(k.as_str()),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary.into_iter().flatten() {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(
                format!("binaryData[{k}]"),
                Value::from(k.as_str()),
                m,
            ));
        }
        total += v.as_str().map_or(0, base64_decoded_len);
    }
    if total > MAX_SECRET_SIZE {
        // Upstream reports this against the empty path, which prints "[]".
        errs.push(FieldError::too_long("[]", MAX_SECRET_SIZE));
    }
}

fn validate_secret(errs: &mut Vec<FieldError>, obj: &Value) {
    let data = obj_of(obj, "data");
    let string_data = obj_of(obj, "stringData");
    let mut total = 0usize;
    let mut keys: Vec<&str> = Vec::new();
    for (k, v) in data.into_iter().flatten() {
        keys.push(k);
        if !string_data.is_some_and(|s| s.contains_key(k)) {
            total += v.as_str().map_or(0, base64_decoded_len);
        }
    }
    for (k, v) in string_data.into_iter().flatten() {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
        total += v.as_str().map_or(0, str::len);
    }
    for k in &keys {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(
                format!("data[{k}]"),
                Value::from(*k),
                m,
            ));
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| keys.contains(&k);
    let nonempty = |k: &str| {
        string_data
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
            || data
                .and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
    };
    match str_of(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let annotations = obj.get("metadata").and_then(|m| obj_of(m, "annotations"));
            let sa = annotations
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if sa.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            errs.push(FieldError::required("data[.dockercfg]", ""));
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(FieldError::required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if !nonempty("ssh-privatekey") => {
            errs.push(FieldError::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(FieldError::required("data[tls.crt]", ""));
            }
            if !has("tls.key") {
                errs.push(FieldError::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
}

fn validate_immutable_data(errs: &mut Vec<FieldError>, old: &Value, new: &Value, keys: &[&str]) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for key in keys {
        if !semantic_eq(old.get(*key), new.get(*key)) {
            errs.push(FieldError::forbidden(
                *key,
                "field is immutable when `immutable` is set",
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Validate an object being created. `group` is the API group (`""` for
/// core) and `resource` the plural resource name. The object is expected to
/// have been defaulted and its name generated; absent defaulted fields are
/// treated as their defaults.
pub fn validate_create(group: &str, resource: &str, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_object_meta(
        &mut errs,
        obj,
        is_cluster_scoped(group, resource),
        name_rule(group, resource),
    );
    validate_kind(&mut errs, group, resource, obj, true);
    errs
}

fn validate_kind(
    errs: &mut Vec<FieldError>,
    group: &str,
    resource: &str,
    obj: &Value,
    create: bool,
) {
    match (group, resource) {
        ("", "pods") => {
            validate_pod_spec(errs, obj.get("spec"), "spec", true);
            let ephemeral = obj.pointer("/spec/ephemeralContainers");
            if create
                && ephemeral
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            {
                errs.push(FieldError::forbidden(
                    "spec.ephemeralContainers",
                    "cannot be set on create",
                ));
            }
        }
        ("", "podtemplates") => validate_pod_template(errs, obj.get("template"), "template"),
        ("", "services") => validate_service(errs, obj),
        ("", "configmaps") => validate_config_map(errs, obj),
        ("", "secrets") => validate_secret(errs, obj),
        ("", "replicationcontrollers") => {
            let empty = Value::Object(Map::new());
            let spec = obj.get("spec").unwrap_or(&empty);
            nonnegative(errs, spec, "replicas", "spec");
            let template = spec.get("template");
            let selector = obj_of(spec, "selector");
            if let Some(sel) = selector.filter(|s| !s.is_empty()) {
                validate_labels(errs, Some(sel), "spec.selector");
                let labels = template_labels(template).and_then(Value::as_object);
                let ok = sel.iter().all(|(k, v)| {
                    labels.and_then(|l| l.get(k)).and_then(Value::as_str) == v.as_str()
                });
                if !ok {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        go_label_map(template_labels(template)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            match template {
                None => errs.push(FieldError::required("spec.template", "")),
                Some(_) => {
                    validate_pod_template(errs, template, "spec.template");
                    let rp = restart_policy_of(template);
                    if rp != "Always" {
                        errs.push(FieldError::not_supported(
                            "spec.template.spec.restartPolicy",
                            Value::from(rp),
                            &["Always"],
                        ));
                    }
                }
            }
        }
        ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets") => {
            validate_workload_spec(errs, resource, obj);
        }
        ("batch", "jobs") => validate_job_spec(errs, obj.get("spec"), "spec"),
        ("batch", "cronjobs") => {
            let name = obj
                .get("metadata")
                .map(|m| str_of(m, "name"))
                .unwrap_or_default();
            if create && name.len() > 52 {
                errs.push(FieldError::invalid(
                    "metadata.name",
                    Value::from(name),
                    "must be no more than 52 characters",
                ));
            }
            let empty = Value::Object(Map::new());
            let spec = obj.get("spec").unwrap_or(&empty);
            if str_of(spec, "schedule").is_empty() {
                errs.push(FieldError::required("spec.schedule", ""));
            }
            let policy = str_of(spec, "concurrencyPolicy");
            if !policy.is_empty() && !matches!(policy, "Allow" | "Forbid" | "Replace") {
                errs.push(FieldError::not_supported(
                    "spec.concurrencyPolicy",
                    Value::from(policy),
                    &["Allow", "Forbid", "Replace"],
                ));
            }
            for key in [
                "startingDeadlineSeconds",
                "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit",
            ] {
                nonnegative(errs, spec, key, "spec");
            }
            let job_template = spec.get("jobTemplate");
            validate_job_spec(
                errs,
                job_template.and_then(|t| t.get("spec")),
                "spec.jobTemplate.spec",
            );
        }
        _ => {}
    }
}

/// Validate an update of `old` to `new`: metadata immutability plus the
/// kind's update rules and a re-validation of `new` (names are not
/// re-validated, as upstream).
pub fn validate_update(group: &str, resource: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_object_meta_update(&mut errs, old, new);
    match (group, resource) {
        ("", "services") => {
            validate_service_update(&mut errs, old, new);
            validate_kind(&mut errs, group, resource, new, false);
        }
        ("", "configmaps") => {
            validate_immutable_data(&mut errs, old, new, &["data", "binaryData"]);
            validate_kind(&mut errs, group, resource, new, false);
        }
        ("", "secrets") => {
            let ot = match str_of(old, "type") {
                "" => "Opaque",
                t => t,
            };
            let nt = match str_of(new, "type") {
                "" => "Opaque",
                t => t,
            };
            if ot != nt {
                errs.push(FieldError::invalid(
                    "type",
                    Value::from(nt),
                    "field is immutable",
                ));
            }
            validate_immutable_data(&mut errs, old, new, &["data"]);
            validate_kind(&mut errs, group, resource, new, false);
        }
        ("", "pods") => {
            validate_kind(&mut errs, group, resource, new, false);
            validate_pod_update(&mut errs, old, new);
        }
        ("apps", "statefulsets") => {
            validate_kind(&mut errs, group, resource, new, false);
            let empty = Value::Object(Map::new());
            let os = old.get("spec").unwrap_or(&empty);
            let ns = new.get("spec").unwrap_or(&empty);
            let mutable = [
                "replicas",
                "template",
                "updateStrategy",
                "minReadySeconds",
                "ordinals",
                "persistentVolumeClaimRetentionPolicy",
            ];
            let keys: Vec<&String> = os
                .as_object()
                .into_iter()
                .chain(ns.as_object())
                .flat_map(|m| m.keys())
                .collect();
            if keys
                .iter()
                .any(|k| !mutable.contains(&k.as_str()) && !semantic_eq(os.get(*k), ns.get(*k)))
            {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        ("apps", "deployments" | "replicasets" | "daemonsets") => {
            validate_kind(&mut errs, group, resource, new, false);
            let os = old.get("spec").and_then(|s| s.get("selector"));
            let ns = new.get("spec").and_then(|s| s.get("selector"));
            if !semantic_eq(os, ns) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    go_label_selector(ns),
                    "field is immutable",
                ));
            }
        }
        ("batch", "jobs") => {
            validate_kind(&mut errs, group, resource, new, false);
            let os = old.get("spec").and_then(|s| s.get("selector"));
            let ns = new.get("spec").and_then(|s| s.get("selector"));
            if ns.is_some() && !semantic_eq(os, ns) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    go_label_selector(ns),
                    "field is immutable",
                ));
            }
        }
        _ => validate_kind(&mut errs, group, resource, new, false),
    }
    errs
}

const POD_UPDATABLE_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// What kube-apiserver's `ValidatePodEphemeralContainersUpdate` checks of the pod
/// `ephemeralcontainers` subresource (`old` the stored pod, `new` it with the requested
/// ephemeral containers): the ones already there are neither removed nor changed, and each new
/// one has a unique DNS-label name, an image, none of the fields an ephemeral container may not
/// set, and a target container the pod has. (Upstream appends a struct diff to "may not be
/// changed"; it is not reproduced.)
pub fn validate_pod_ephemeral_containers(old: &Value, new: &Value) -> Vec<FieldError> {
    if is_static_pod(old) {
        return vec![FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        )];
    }
    let empty = Value::Null;
    let (old_spec, new_spec) = (
        old.get("spec").unwrap_or(&empty),
        new.get("spec").unwrap_or(&empty),
    );
    let (before, after) = (arr_of(old_spec, EPHEMERAL), arr_of(new_spec, EPHEMERAL));
    let mut errs = Vec::new();
    for o in before {
        let name = str_of(o, "name");
        match after.iter().find(|n| str_of(n, "name") == name) {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) if n != o => errs.push(FieldError::forbidden(
                format!("spec.ephemeralContainers[{name}]"),
                format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    let targets = arr_of(new_spec, "containers");
    let regular: Vec<&str> = targets
        .iter()
        .chain(arr_of(new_spec, "initContainers"))
        .map(|c| str_of(c, "name"))
        .collect();
    let volumes: Vec<&str> = arr_of(new_spec, "volumes")
        .iter()
        .map(|v| str_of(v, "name"))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in after.iter().enumerate() {
        let p = format!("spec.ephemeralContainers[{i}]");
        let name = str_of(c, "name");
        if !name.is_empty() && (regular.contains(&name) || seen.contains(&name)) {
            errs.push(FieldError::duplicate(
                format!("{p}.name"),
                Value::from(name),
            ));
        }
        seen.push(name);
        if before.contains(c) {
            continue; // Unchanged: checked when it was added.
        }
        validate_container_common(&mut errs, c, &p, &volumes);
        for field in EPHEMERAL_FORBIDDEN {
            // Upstream checks against the zero value: `resources: {}` (kubectl's) is unset.
            let set = c.get(*field).is_some_and(|v| match v {
                Value::Null => false,
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::String(s) => !s.is_empty(),
                _ => true,
            });
            if set {
                errs.push(FieldError::forbidden(
                    format!("{p}.{field}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        let target = str_of(c, "targetContainerName");
        if !target.is_empty() && !targets.iter().any(|t| str_of(t, "name") == target) {
            errs.push(FieldError::not_found(
                format!("{p}.targetContainerName"),
                Value::from(target),
            ));
        }
    }
    errs
}

const EPHEMERAL: &str = "ephemeralContainers";

/// Whether `pod` is a kubelet's mirror of a static pod.
fn is_static_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some()
}

/// The container fields an ephemeral container may not set (upstream's
/// `validateEphemeralContainers`).
const EPHEMERAL_FORBIDDEN: &[&str] = &[
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "restartPolicy",
    "startupProbe",
];

/// What kube-apiserver 1.33's `ValidatePodResize` adds to the update checks for the pod
/// `resize` subresource (`old` the stored pod, `new` it with the requested resources): the
/// new spec is valid, static and Windows pods are not resized, the QoS class stays, no
/// request or limit is removed, and only cpu and memory change. (Its version-skew check, a
/// running container reporting no `resources`, is left out: it guards old kubelets.)
pub fn validate_pod_resize(old: &Value, new: &Value) -> Vec<FieldError> {
    if is_static_pod(old) {
        return vec![FieldError::forbidden("", "static pods cannot be resized")];
    }
    if old.pointer("/spec/os/name").and_then(Value::as_str) == Some("windows") {
        return vec![FieldError::forbidden("", "windows pods cannot be resized")];
    }
    let mut errs = Vec::new();
    validate_pod_spec(&mut errs, new.get("spec"), "spec", true);
    let empty = Map::new();
    let old_spec = old.get("spec").and_then(Value::as_object).unwrap_or(&empty);
    let new_spec = new.get("spec").and_then(Value::as_object).unwrap_or(&empty);
    let old_qos = old
        .pointer("/status/qosClass")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| super::defaults::qos_class(old_spec));
    if old_qos != super::defaults::qos_class(new_spec) {
        let shown = new
            .pointer("/status/qosClass")
            .cloned()
            .unwrap_or(Value::from(""));
        errs.push(FieldError::invalid(
            "spec",
            shown,
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    fn containers<'s>(spec: &'s Map<String, Value>, list: &str) -> &'s [Value] {
        spec.get(list)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    }
    let resources = |c: &Value, part: &str| -> Map<String, Value> {
        c.pointer(&format!("/resources/{part}"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let removed = |new: &Map<String, Value>, old: &Map<String, Value>| {
        old.keys().any(|k| !new.contains_key(k))
    };
    let mut only_cpu_memory = true;
    for list in ["initContainers", "containers"] {
        let (olds, news) = (containers(old_spec, list), containers(new_spec, list));
        for (ix, (o, n)) in olds.iter().zip(news.iter()).enumerate() {
            let sidecar = list == "initContainers"
                && o.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            if list == "initContainers" && !sidecar {
                // A regular init container's resources do not change at all.
                only_cpu_memory &= semantic_eq(o.get("resources"), n.get("resources"))
                    && semantic_eq(o.get("resizePolicy"), n.get("resizePolicy"));
                continue;
            }
            let path = format!("spec.{list}[{ix}].resources");
            let parts: &[&str] = if sidecar {
                &["requests"]
            } else {
                &["requests", "limits"]
            };
            for part in parts {
                if removed(&resources(n, part), &resources(o, part)) {
                    errs.push(FieldError::forbidden(
                        format!("{path}.{part}"),
                        format!("resource {part} cannot be removed"),
                    ));
                }
            }
            for part in ["requests", "limits"] {
                let old_list = resources(o, part);
                let present = o.pointer(&format!("/resources/{part}")).is_some();
                // The new list with cpu and memory as they were: anything else must be equal.
                let mut munged = if present {
                    resources(n, part)
                } else {
                    Map::new()
                };
                for name in ["cpu", "memory"] {
                    munged.remove(name);
                    if let Some(q) = old_list.get(name) {
                        munged.insert(name.into(), q.clone());
                    }
                }
                only_cpu_memory &= same_quantities(&munged, &old_list);
            }
        }
    }
    if !only_cpu_memory {
        errs.push(FieldError::forbidden(
            "spec",
            "only cpu and memory resources are mutable",
        ));
    }
    errs
}

/// Two resource lists name the same resources with equal quantities.
fn same_quantities(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, q)| {
            b.get(k)
                .is_some_and(|other| match (quantity_of(q), quantity_of(other)) {
                    (Ok(x), Ok(y)) => x.nanos == y.nanos,
                    _ => q == other,
                })
        })
}

/// Pod spec immutability (`pod updates may not change fields other than …`).
/// The trailing struct diff upstream appends is not reproduced.
fn validate_pod_update(errs: &mut Vec<FieldError>, old: &Value, new: &Value) {
    // A write that keeps the spec (status, labels, annotations: most pod writes) changes
    // nothing checked here.
    match (old.get("spec"), new.get("spec")) {
        (Some(o), Some(n)) if same_json(o, n) => return,
        (None, None) => return,
        _ => {}
    }
    let empty = Value::Object(Map::new());
    let mut os = old.get("spec").cloned().unwrap_or_else(|| empty.clone());
    let mut ns = new.get("spec").cloned().unwrap_or(empty);
    if arr_of(&os, "containers").len() != arr_of(&ns, "containers").len() {
        errs.push(FieldError::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        ));
        return;
    }
    for spec in [&mut os, &mut ns] {
        if let Some(m) = spec.as_object_mut() {
            m.remove("activeDeadlineSeconds");
            m.remove("tolerations");
            m.remove("terminationGracePeriodSeconds");
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(items)) = m.get_mut(list) {
                    for c in items.iter_mut() {
                        if let Some(cm) = c.as_object_mut() {
                            cm.remove("image");
                        }
                    }
                }
            }
        }
    }
    if !semantic_eq(Some(&os), Some(&ns)) {
        errs.push(FieldError::forbidden(
            "spec",
            format!("pod updates may not change fields other than {POD_UPDATABLE_FIELDS}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_json_is_equality_whatever_the_key_order() {
        let a = json!({"a": 1, "b": {"c": [1, {"d": "x"}]}});
        assert!(same_json(&a, &a.clone()));
        let reordered = json!({"b": {"c": [1, {"d": "x"}]}, "a": 1});
        assert!(same_json(&a, &reordered));
        for different in [
            json!({"a": 1, "b": {"c": [1, {"d": "y"}]}}),
            json!({"b": {"c": [1, {"d": "x"}]}, "a": 2}),
            json!({"a": 1, "b": {"c": [{"d": "x"}, 1]}}),
            json!({"a": 1, "b": {"c": [1, {"d": "x"}]}, "e": null}),
            json!({"a": 1, "x": {"c": [1, {"d": "x"}]}}),
        ] {
            assert!(!same_json(&a, &different), "{different} equals {a}");
            assert!(!same_json(&different, &a), "{a} equals {different}");
        }
    }

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    /// The ephemeralcontainers subresource: existing ones stay as they are, new ones are
    /// checked as upstream checks them.
    #[test]
    fn ephemeral_container_refusals() {
        let pod = |ephemeral: Value| {
            json!({"metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "c", "image": "x"}],
                            "ephemeralContainers": ephemeral}})
        };
        let dbg = json!({"name": "dbg", "image": "busybox", "resources": {}});
        let old = pod(json!([dbg]));
        let added =
            pod(json!([dbg, {"name": "two", "image": "busybox", "targetContainerName": "c"}]));
        assert!(validate_pod_ephemeral_containers(&old, &added).is_empty());
        let cases = [
            (
                json!([]),
                r#"spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be removed"#,
            ),
            (
                json!([{"name": "dbg", "image": "alpine"}]),
                r#"spec.ephemeralContainers[dbg]: Forbidden: existing ephemeral containers "dbg" may not be changed"#,
            ),
            (
                json!([dbg, {"name": "c", "image": "x"}]),
                r#"spec.ephemeralContainers[1].name: Duplicate value: "c""#,
            ),
            (
                json!([dbg, {"name": "e"}]),
                "spec.ephemeralContainers[1].image: Required value",
            ),
            (
                json!([dbg, {"name": "e", "image": "x", "ports": [{"containerPort": 80}]}]),
                "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container",
            ),
            (
                json!([dbg, {"name": "e", "image": "x", "targetContainerName": "nope"}]),
                r#"spec.ephemeralContainers[1].targetContainerName: Not found: "nope""#,
            ),
        ];
        for (ephemeral, want) in cases {
            let got = msgs(&validate_pod_ephemeral_containers(
                &old,
                &pod(ephemeral.clone()),
            ));
            assert!(
                got.iter().any(|m| m.starts_with(want)),
                "{ephemeral}: {got:?}"
            );
        }
        // Only a pod's create refuses them outright.
        let errs = validate_create("", "pods", &added);
        assert!(
            msgs(&errs).contains(
                &"spec.ephemeralContainers: Forbidden: cannot be set on create".to_string()
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn pod_resize_refusals() {
        let pod = |annotations: Value, os: Value, init: Value| {
            json!({"metadata": {"name": "p", "annotations": annotations},
                   "spec": {"os": os, "initContainers": init, "containers": [{"name": "c", "image": "x",
                       "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}}]},
                   "status": {"qosClass": "Burstable"}})
        };
        let init = json!([
            {"name": "side", "image": "x", "restartPolicy": "Always",
             "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}},
            {"name": "once", "image": "x", "resources": {"requests": {"cpu": "10m"}}}]);
        let plain = pod(json!({}), Value::Null, init.clone());
        // Equal quantities in another spelling change nothing.
        let mut same = plain.clone();
        same["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("1000m");
        assert!(validate_pod_resize(&plain, &same).is_empty());
        // A sidecar's cpu may change, its requests may not go; a regular init container's
        // resources are fixed.
        let mut sidecar = plain.clone();
        sidecar["spec"]["initContainers"][0]["resources"]["requests"] = json!({"cpu": "20m"});
        assert_eq!(
            msgs(&validate_pod_resize(&plain, &sidecar)),
            [
                "spec.initContainers[0].resources.requests: Forbidden: resource requests cannot be removed"
            ]
        );
        let mut regular = plain.clone();
        regular["spec"]["initContainers"][1]["resources"]["requests"]["cpu"] = json!("20m");
        assert_eq!(
            msgs(&validate_pod_resize(&plain, &regular)),
            ["spec: Forbidden: only cpu and memory resources are mutable"]
        );
        // Without a stored class, the old spec's counts; gaining limits makes it Guaranteed.
        let mut unclassed = plain.clone();
        unclassed["status"] = json!({});
        unclassed["spec"]["initContainers"] = json!([]);
        let mut guaranteed = unclassed.clone();
        guaranteed["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(
            msgs(&validate_pod_resize(&unclassed, &guaranteed)),
            [r#"spec: Invalid value: "": Pod QOS Class may not change as a result of resizing"#]
        );
        let mirror = pod(
            json!({"kubernetes.io/config.mirror": "x"}),
            Value::Null,
            json!([]),
        );
        assert_eq!(
            msgs(&validate_pod_resize(&mirror, &mirror)),
            [": Forbidden: static pods cannot be resized"]
        );
        let windows = pod(json!({}), json!({"name": "windows"}), json!([]));
        assert_eq!(
            msgs(&validate_pod_resize(&windows, &windows)),
            [": Forbidden: windows pods cannot be resized"]
        );
    }

    const SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const NAME_PART_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const CONFIG_KEY_ERR: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn deployment(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn name_checks_table() {
        let long = "a".repeat(64);
        let very_long = "a".repeat(254);
        type Check = fn(&str) -> Vec<String>;
        let cases: Vec<(Check, &str, Vec<String>)> = vec![
            (is_dns1123_subdomain, "example.com", vec![]),
            (is_dns1123_subdomain, "Foo", vec![SUBDOMAIN_ERR.into()]),
            (
                is_dns1123_subdomain,
                &very_long,
                vec!["must be no more than 253 characters".into()],
            ),
            (is_dns1123_label, "my-name", vec![]),
            (
                is_dns1123_label,
                "a.b",
                vec!["must not contain dots".into()],
            ),
            (is_dns1123_label, "-a", vec![LABEL_ERR.into()]),
            (
                is_dns1123_label,
                &long,
                vec!["must be no more than 63 characters".into()],
            ),
            (is_dns1035_label, "1abc", vec![DNS1035_ERR.into()]),
            (is_dns1035_label, "abc", vec![]),
            (is_qualified_name, "example.com/MyName", vec![]),
            (is_qualified_name, "-bad", vec![NAME_PART_ERR.into()]),
            (
                is_qualified_name,
                "/x",
                vec!["prefix part must be non-empty".into()],
            ),
            (
                is_qualified_name,
                "a/",
                vec!["name part must be non-empty".into(), NAME_PART_ERR.into()],
            ),
            (is_valid_label_value, "", vec![]),
            (is_valid_label_value, "a b", vec![LABEL_VALUE_ERR.into()]),
            (is_config_map_key, "key.name", vec![]),
            (is_config_map_key, "a/b", vec![CONFIG_KEY_ERR.into()]),
            (is_config_map_key, "..", vec!["must not be '..'".into()]),
            (
                is_config_map_key,
                "..a",
                vec!["must not start with '..'".into()],
            ),
            (is_valid_path_segment_name, "system:admin", vec![]),
            (
                is_valid_path_segment_name,
                "..",
                vec!["may not be '..'".into()],
            ),
            (
                is_valid_path_segment_name,
                "a/b%c",
                vec!["may not contain '/'".into(), "may not contain '%'".into()],
            ),
            (is_valid_port_name, "http", vec![]),
            (
                is_valid_port_name,
                "HTTP",
                vec![
                    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
                    "must contain at least one letter (a-z)".into(),
                ],
            ),
            (
                is_valid_port_name,
                "a--b-",
                vec![
                    "must not contain consecutive hyphens".into(),
                    "must not begin or end with a hyphen".into(),
                ],
            ),
        ];
        for (f, input, want) in cases {
            assert_eq!(f(input), want, "input {input:?}");
        }
        assert_eq!(
            is_valid_port_num(0),
            vec!["must be between 1 and 65535, inclusive".to_string()]
        );
        assert!(is_valid_port_num(80).is_empty());
    }

    #[test]
    fn field_error_messages() {
        let cases = vec![
            (
                FieldError::required("spec.containers[0].image", ""),
                "spec.containers[0].image: Required value",
                "FieldValueRequired",
            ),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "metadata.name: Required value: name or generateName is required",
                "FieldValueRequired",
            ),
            (
                FieldError::invalid(
                    "spec.replicas",
                    json!(-1),
                    "must be greater than or equal to 0",
                ),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "FieldValueInvalid",
            ),
            (
                FieldError::not_supported(
                    "spec.restartPolicy",
                    json!("Foo"),
                    &["Always", "OnFailure", "Never"],
                ),
                "spec.restartPolicy: Unsupported value: \"Foo\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "FieldValueNotSupported",
            ),
            (
                FieldError::duplicate("spec.containers[1].name", json!("web")),
                "spec.containers[1].name: Duplicate value: \"web\"",
                "FieldValueDuplicate",
            ),
            (
                FieldError::too_long("metadata.annotations", 262144),
                "metadata.annotations: Too long: may not be more than 262144 bytes",
                "FieldValueTooLong",
            ),
            (
                FieldError::forbidden("metadata.namespace", "not allowed on this type"),
                "metadata.namespace: Forbidden: not allowed on this type",
                "FieldValueForbidden",
            ),
            (
                FieldError::too_many("spec.x", 5, 3),
                "spec.x: Too many: 5: must have at most 3 items",
                "FieldValueTooMany",
            ),
            (
                FieldError::not_found("spec.containers[0].volumeMounts[0].name", json!("data")),
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                "FieldValueNotFound",
            ),
            (
                FieldError::invalid("x", Value::Null, "d"),
                "x: Invalid value: null: d",
                "FieldValueInvalid",
            ),
            (
                FieldError::invalid("x", json!({"b": "2", "a": "1"}), "d"),
                "x: Invalid value: map[string]string{\"a\":\"1\", \"b\":\"2\"}: d",
                "FieldValueInvalid",
            ),
            (
                FieldError::invalid("x", json!(["10.0.0.1"]), "d"),
                "x: Invalid value: []string{\"10.0.0.1\"}: d",
                "FieldValueInvalid",
            ),
        ];
        for (e, want, reason) in cases {
            assert_eq!(e.to_string(), want);
            assert_eq!(e.reason(), reason);
        }
    }

    #[test]
    fn invalid_message_formats() {
        let one = vec![FieldError::required(
            "spec.template.spec.containers[0].image",
            "",
        )];
        assert_eq!(
            invalid_message("Deployment", "apps", "web", &one),
            "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
        );
        let two = vec![
            FieldError::required("spec.selector", ""),
            FieldError::required("spec.selector", ""),
            FieldError::required("spec.ports", ""),
        ];
        assert_eq!(
            invalid_message("Service", "", "s", &two),
            "Service \"s\" is invalid: [spec.selector: Required value, spec.ports: Required value]"
        );
        assert_eq!(invalid_message("Pod", "", "p", &[]), "Pod \"p\" is invalid");
    }

    #[test]
    fn metadata_table() {
        let cases: Vec<(&str, &str, Value, Vec<String>)> = vec![
            ("", "configmaps", json!({"metadata": {"namespace": "default"}}), vec!["metadata.name: Required value: name or generateName is required".into()]),
            ("", "configmaps", json!({"metadata": {"generateName": "cfg-", "namespace": "default"}}), vec![]),
            ("", "configmaps", json!({"metadata": {"generateName": "Cfg-", "namespace": "default"}}), vec![format!("metadata.generateName: Invalid value: \"Cfg-\": {SUBDOMAIN_ERR}")]),
            ("", "configmaps", json!({"metadata": {"name": "Foo", "namespace": "default"}}), vec![format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_ERR}")]),
            ("", "namespaces", json!({"metadata": {"name": "a.b"}}), vec!["metadata.name: Invalid value: \"a.b\": must not contain dots".into()]),
            ("", "namespaces", json!({"metadata": {"name": "ns", "namespace": "x"}}), vec!["metadata.namespace: Forbidden: not allowed on this type".into()]),
            ("", "services", json!({"metadata": {"name": "1svc", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}), vec![format!("metadata.name: Invalid value: \"1svc\": {DNS1035_ERR}")]),
            ("rbac.authorization.k8s.io", "clusterroles", json!({"metadata": {"name": "system:Thing"}}), vec![]),
            ("rbac.authorization.k8s.io", "roles", json!({"metadata": {"name": "a/b", "namespace": "ns"}}), vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'".into()]),
            ("", "configmaps", json!({"metadata": {"name": "c"}}), vec!["metadata.namespace: Required value".into()]),
            ("", "configmaps", json!({"metadata": {"name": "c", "namespace": "Bad_NS"}}), vec![format!("metadata.namespace: Invalid value: \"Bad_NS\": {LABEL_ERR}")]),
            ("", "configmaps", json!({"metadata": {"name": "c", "namespace": "d", "labels": {"-k": "v", "k": "bad value"}}}), vec![
                format!("metadata.labels: Invalid value: \"-k\": {NAME_PART_ERR}"),
                format!("metadata.labels: Invalid value: \"bad value\": {LABEL_VALUE_ERR}"),
            ]),
            ("", "configmaps", json!({"metadata": {"name": "c", "namespace": "d", "annotations": {"Example.com/X": "ok", "a b": "x"}}}), vec![
                "metadata.annotations: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into(),
            ]),
            ("", "configmaps", json!({"metadata": {"name": "c", "namespace": "d", "annotations": {"big": "x".repeat(262144)}}}), vec!["metadata.annotations: Too long: may not be more than 262144 bytes".into()]),
            ("batch", "cronjobs", json!({"metadata": {"name": "c".repeat(53), "namespace": "d"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}}), vec![format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "c".repeat(53))]),
        ];
        for (group, resource, obj, want) in cases {
            assert_eq!(
                msgs(&validate_create(group, resource, &obj)),
                want,
                "{resource} {obj}"
            );
        }
    }

    #[test]
    fn pod_table() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"containers": [{"name": "web", "image": "nginx"}]}),
                vec![],
            ),
            (json!({}), vec!["spec.containers: Required value"]),
            (
                json!({"containers": [{"name": "web"}]}),
                vec!["spec.containers[0].image: Required value"],
            ),
            (
                json!({"containers": [{"image": "x"}]}),
                vec!["spec.containers[0].name: Required value"],
            ),
            (
                json!({"containers": [{"name": "Web", "image": "x"}]}),
                vec![
                    "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}),
                vec!["spec.containers[1].name: Duplicate value: \"a\""],
            ),
            (
                json!({"containers": [{"name": "a", "image": " x"}]}),
                vec![
                    "spec.containers[0].image: Invalid value: \" x\": must not have leading or trailing whitespace",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "HTTP"}, {"containerPort": 0}]}]}),
                vec![
                    "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                    "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    "spec.containers[0].ports[1].containerPort: Required value",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}]}]}),
                vec!["spec.containers[0].ports[1].name: Duplicate value: \"http\""],
            ),
            (
                json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]}),
                vec![
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2000m"}}}]}),
                vec![
                    "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"memory": "-1Gi", "cpus": "1"}}}]}),
                vec![
                    "spec.containers[0].resources.limits[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
                    "spec.containers[0].resources.limits[cpus]: Invalid value: \"cpus\": must be a standard resource for containers",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "abc"}}}]}),
                vec![
                    "spec.containers[0].resources.requests[cpu]: Invalid value: \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                ],
            ),
            (
                json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
                vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""],
            ),
            (
                json!({"volumes": [{"name": "data"}], "containers": [{"name": "a", "image": "x"}]}),
                vec!["spec.volumes[0]: Required value: must specify a volume type"],
            ),
            (
                json!({"volumes": [{"name": "data", "emptyDir": {}}], "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}], "env": [{"name": "A=B"}]}]}),
                vec![
                    "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                ],
            ),
        ];
        for (spec, want) in cases {
            let got = msgs(&validate_create("", "pods", &pod(spec.clone())));
            assert_eq!(got, want, "spec {spec}");
        }
    }

    #[test]
    fn workload_table() {
        let good_tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "deployments",
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": good_tpl}),
                vec![],
            ),
            (
                "deployments",
                json!({"template": good_tpl}),
                vec![
                    "spec.selector: Required value",
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                "deployments",
                json!({"selector": {"matchLabels": {"app": "db"}}, "template": good_tpl}),
                vec![
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                "deployments",
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}),
                vec![
                    "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
                ],
            ),
            (
                "deployments",
                json!({"replicas": -1, "selector": {"matchLabels": {"app": "web"}}, "template": good_tpl}),
                vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                "deployments",
                json!({"selector": {}, "template": good_tpl}),
                vec![
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
                ],
            ),
            (
                "deployments",
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}}),
                vec!["spec.template.spec.containers[0].image: Required value"],
            ),
            (
                "deployments",
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "web", "image": "x"}]}}}),
                vec![
                    "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                ],
            ),
            (
                "replicasets",
                json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, "template": good_tpl}),
                vec![],
            ),
            (
                "replicasets",
                json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}, "template": good_tpl}),
                vec![
                    "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                "daemonsets",
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": good_tpl}),
                vec![],
            ),
            (
                "daemonsets",
                json!({"template": good_tpl}),
                vec![
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                "statefulsets",
                json!({"selector": {"matchLabels": {"app": "web"}}, "template": good_tpl}),
                vec![],
            ),
            (
                "statefulsets",
                json!({"template": good_tpl}),
                vec![
                    "spec.selector: Required value",
                    "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                "statefulsets",
                json!({"selector": {"matchlabels": {"app": "web"}}, "template": good_tpl}),
                vec![
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset",
                ],
            ),
        ];
        for (resource, spec, want) in cases {
            let got = msgs(&validate_create(
                "apps",
                resource,
                &deployment(spec.clone()),
            ));
            assert_eq!(got, want, "{resource} {spec}");
        }
        let errs = validate_create(
            "apps",
            "deployments",
            &deployment(json!({"template": {"spec": {"containers": [{"name": "web"}]}}})),
        );
        assert_eq!(
            invalid_message("Deployment", "apps", "web", &errs),
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`, spec.template.spec.containers[0].image: Required value]"
        );
    }

    #[test]
    fn job_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "jobs",
                json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}),
                vec![],
            ),
            (
                "jobs",
                json!({"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}),
                vec![
                    "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
                ],
            ),
            (
                "jobs",
                json!({"parallelism": -1, "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x"}]}}}),
                vec!["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                "cronjobs",
                json!({"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "x"}]}}}}}),
                vec![
                    "spec.schedule: Required value",
                    "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
                ],
            ),
        ];
        for (resource, spec, want) in cases {
            let got = msgs(&validate_create(
                "batch",
                resource,
                &deployment(spec.clone()),
            ));
            assert_eq!(got, want, "{resource} {spec}");
        }
    }

    #[test]
    fn service_table() {
        let svc = |spec: Value| json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"ports": [{"port": 80, "targetPort": 8080}]}), vec![]),
            (json!({}), vec!["spec.ports: Required value"]),
            (json!({"clusterIP": "None"}), vec![]),
            (
                json!({"type": "ExternalName", "externalName": "example.com."}),
                vec![],
            ),
            (
                json!({"type": "ExternalName"}),
                vec!["spec.externalName: Required value"],
            ),
            (
                json!({"type": "Cluster", "ports": [{"port": 80}]}),
                vec![
                    "spec.type: Unsupported value: \"Cluster\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                ],
            ),
            (
                json!({"ports": [{"port": 0, "targetPort": "HTTP"}]}),
                vec![
                    "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                    "spec.ports[0].targetPort: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    "spec.ports[0].targetPort: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
                ],
            ),
            (
                json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}),
                vec!["spec.ports[1].name: Duplicate value: \"http\""],
            ),
            (
                json!({"ports": [{"port": 80}, {"name": "b", "port": 81}]}),
                vec!["spec.ports[0].name: Required value"],
            ),
            (
                json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
                vec![
                    "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
                ],
            ),
            (
                json!({"ports": [{"port": 80, "nodePort": 30080}]}),
                vec![
                    "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                ],
            ),
            (
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
                vec![
                    "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
                ],
            ),
            (
                json!({"clusterIP": "abc", "ports": [{"port": 80}]}),
                vec![
                    "spec.clusterIPs[0]: Invalid value: \"abc\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ],
            ),
        ];
        for (spec, want) in cases {
            let got = msgs(&validate_create("", "services", &svc(spec.clone())));
            assert_eq!(got, want, "spec {spec}");
        }
    }

    #[test]
    fn config_map_and_secret_table() {
        let cm = |extra: Value| {
            let mut o = json!({"metadata": {"name": "c", "namespace": "d"}});
            if let (Some(m), Value::Object(e)) = (o.as_object_mut(), extra) {
                m.extend(e);
            }
            o
        };
        let cases: Vec<(&str, Value, Vec<String>)> = vec![
            ("configmaps", cm(json!({"data": {"good.key": "v"}})), vec![]),
            (
                "configmaps",
                cm(json!({"data": {"a/b": "v"}})),
                vec![format!(
                    "data[a/b]: Invalid value: \"a/b\": {CONFIG_KEY_ERR}"
                )],
            ),
            (
                "configmaps",
                cm(json!({"data": {"k": "v"}, "binaryData": {"k": "dg=="}})),
                vec![
                    "data[k]: Invalid value: \"k\": duplicate of key present in binaryData".into(),
                ],
            ),
            (
                "configmaps",
                cm(json!({"data": {"k": "x".repeat(1024 * 1024 + 1)}})),
                vec!["[]: Too long: may not be more than 1048576 bytes".into()],
            ),
            (
                "secrets",
                cm(json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}})),
                vec!["data[tls.key]: Required value".into()],
            ),
            (
                "secrets",
                cm(json!({"type": "kubernetes.io/dockerconfigjson"})),
                vec!["data[.dockerconfigjson]: Required value".into()],
            ),
            (
                "secrets",
                cm(json!({"stringData": {"bad key": "v"}})),
                vec![format!(
                    "data[bad key]: Invalid value: \"bad key\": {CONFIG_KEY_ERR}"
                )],
            ),
            (
                "secrets",
                cm(json!({"type": "kubernetes.io/service-account-token"})),
                vec![
                    "metadata.annotations[kubernetes.io/service-account.name]: Required value"
                        .into(),
                ],
            ),
        ];
        for (resource, obj, want) in cases {
            assert_eq!(
                msgs(&validate_create("", resource, &obj)),
                want,
                "{resource}"
            );
        }
    }

    #[test]
    fn update_table() {
        let dep = |name: &str, app: &str| json!({"metadata": {"name": name, "namespace": "d", "uid": "u1"}, "spec": {"selector": {"matchLabels": {"app": app}}, "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        let cases: Vec<(&str, &str, Value, Value, Vec<&str>)> = vec![
            (
                "apps",
                "deployments",
                dep("web", "web"),
                dep("web", "web"),
                vec![],
            ),
            (
                "apps",
                "deployments",
                dep("web", "web"),
                dep("web2", "web"),
                vec!["metadata.name: Invalid value: \"web2\": field is immutable"],
            ),
            (
                "apps",
                "deployments",
                dep("web", "web"),
                dep("web", "api"),
                vec![
                    "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"api\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
                ],
            ),
            (
                "",
                "configmaps",
                json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"a": "1"}}),
                json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"a": "2"}}),
                vec!["data: Forbidden: field is immutable when `immutable` is set"],
            ),
            (
                "",
                "configmaps",
                json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"a": "1"}}),
                json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "1"}}),
                vec!["immutable: Forbidden: field is immutable when `immutable` is set"],
            ),
            (
                "",
                "secrets",
                json!({"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"}),
                json!({"metadata": {"name": "s", "namespace": "d", "uid": "other"}, "type": "kubernetes.io/basic-auth", "data": {"username": "dQ=="}}),
                vec![
                    "metadata.uid: Invalid value: \"other\": field is immutable",
                    "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable",
                ],
            ),
            (
                "",
                "services",
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]}}),
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.0.0.2", "ports": [{"port": 80}]}}),
                vec![
                    "spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set",
                ],
            ),
            (
                "",
                "services",
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}}),
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"ports": [{"port": 81}]}}),
                vec![],
            ),
            (
                "",
                "pods",
                json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
                json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "c", "image": "y"}]}}),
                vec![],
            ),
            (
                "",
                "pods",
                json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
                json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "c", "image": "x", "command": ["sh"]}]}}),
                vec![
                    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ],
            ),
            (
                "apps",
                "statefulsets",
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"serviceName": "a", "selector": {"matchLabels": {"app": "s"}}, "template": {"metadata": {"labels": {"app": "s"}}}}}),
                json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"serviceName": "b", "replicas": 3, "selector": {"matchLabels": {"app": "s"}}, "template": {"metadata": {"labels": {"app": "s"}}}}}),
                vec![
                    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ],
            ),
        ];
        for (group, resource, old, new, want) in cases {
            assert_eq!(
                msgs(&validate_update(group, resource, &old, &new)),
                want,
                "{resource} {new}"
            );
        }
    }

    #[test]
    fn quantities_and_decode() {
        let cases = [
            ("2000m", "2"),
            ("0.5", "500m"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("2000", "2k"),
            ("1e3", "1e3"),
            ("-1Gi", "-1Gi"),
            ("0", "0"),
            ("100m", "100m"),
            ("1.5", "1500m"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_quantity(raw).map(|q| q.canonical()),
                Ok(want.to_string()),
                "{raw}"
            );
        }
        assert_eq!(parse_quantity("1.2.3"), Err(DecodeError::QuantityFormat));
        assert_eq!(parse_quantity("1Qi"), Err(DecodeError::QuantityFormat));
        assert_eq!(parse_quantity("1mi"), Err(DecodeError::QuantitySuffix));
        assert_eq!(parse_quantity("."), Err(DecodeError::QuantityNumeric));

        let bad = json!({"metadata": {"name": "p", "labels": {"v": 1}}});
        let err = decode_check("", "pods", &bad).expect_err("labels");
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        );
        let bad = pod(
            json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1x"}}}]}),
        );
        let err = decode_check("", "pods", &bad).expect_err("quantity");
        assert_eq!(
            err.status_message("Pod", "v1"),
            "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        let bad = json!({"metadata": {"name": "s"}, "data": {"k": "ab!d"}});
        assert_eq!(
            decode_check("", "secrets", &bad),
            Err(DecodeError::Base64(2))
        );
        let ok = json!({"metadata": {"name": "s"}, "data": {"k": "YWJj"}});
        assert_eq!(decode_check("", "secrets", &ok), Ok(()));
        assert_eq!(base64_decoded_len("YWJj"), 3);
        assert_eq!(base64_decoded_len("YQ=="), 1);
    }

    #[test]
    fn scope_and_masking() {
        assert_eq!(is_cluster_scoped("", "nodes"), Some(true));
        assert_eq!(is_cluster_scoped("apps", "deployments"), Some(false));
        assert_eq!(is_cluster_scoped("example.com", "widgets"), None);
        assert_eq!(mask_trailing_dash("web-"), "wea");
        assert_eq!(mask_trailing_dash("web"), "web");
        assert!(
            validate_create(
                "example.com",
                "widgets",
                &json!({"metadata": {"name": "w"}})
            )
            .is_empty()
        );
    }
}
