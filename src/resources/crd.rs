//! CustomResourceDefinition support as pure functions (apiextensions.k8s.io/v1, kube-apiserver
//! 1.33 behaviour and messages).
//!
//! - [`parse_crd`]: a CRD's JSON into [`CrdInfo`], with the create-time validation users hit
//!   (`metadata.name` = `<plural>.<group>`, names, scope, exactly one storage version, structural
//!   schema, printer columns, subresources, selectable fields) and upstream's field errors.
//! - [`crd_status`]: the `status` the naming and establishing controllers would write
//!   (`NamesAccepted`, `Established`, `acceptedNames`, `storedVersions`).
//! - [`validate`]: a custom object against a version's `openAPIV3Schema`, the way
//!   kube-openapi's schema validator reports it through apiextensions' error mapping
//!   (`spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer:
//!   "string"`), plus the embedded-resource `apiVersion`/`kind` checks.
//! - [`prune`]: drops fields the structural schema does not specify and returns their paths
//!   (for `fieldValidation=Strict|Warn`: `unknown field "spec.foo"`).
//! - [`apply_schema_defaults`]: `default` keywords, top-down.
//! - [`scale_from`] / [`apply_scale`]: the `scale` subresource (`autoscaling/v1` `Scale`).
//! - [`printer_cells`]: `additionalPrinterColumns` cells for server-side tables.
//!
//! `pattern` uses a small hand-written regular-expression engine ([`Regex`], a Pike VM, linear
//! time) for the RE2 syntax Go's `regexp` accepts; see [`Regex`] for what is not supported.
//!
//! Not covered: CEL (`x-kubernetes-validations` rules are accepted but not evaluated), ratcheting
//! on update, conversion webhooks, `x-kubernetes-list-type` uniqueness of set/map lists, and
//! validation of embedded resources' `metadata` contents (only its type; the root `metadata` is
//! the caller's).
//!
//! Self-contained: depends only on `serde_json` and `thiserror`.

use serde_json::{Map, Value, json};
use thiserror::Error;

// ---------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------

/// The kind of a field error (apimachinery `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    TypeInvalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
    TooMany,
}

impl FieldErrorType {
    /// The human text (`"Required value"`, `"Invalid value"`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid | FieldErrorType::TypeInvalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
        }
    }

    /// The `StatusCause.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
        }
    }
}

/// The offending value of a field error, as Go would print the value it held.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// No value is printed.
    Omit,
    /// A value decoded from JSON into `interface{}` (strings quoted, numbers bare, objects as
    /// `map[string]interface {}{…}`, arrays as `[]interface {}{…}`, `null` as `null`).
    Json(Value),
    /// A Go `int`.
    Int(i64),
    /// Printed verbatim (renderings of Go structs).
    Raw(String),
}

/// One field-level error (apimachinery `field.Error`).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {}", self.message())]
pub struct FieldError {
    pub kind: FieldErrorType,
    /// The field path (`spec.replicas`, `spec.versions[0].name`); `<nil>` for errors about the
    /// whole object, as upstream prints a nil path.
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

impl FieldError {
    fn new(kind: FieldErrorType, field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        Self {
            kind,
            field: field.to_string(),
            value,
            detail: detail.into(),
        }
    }

    pub fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Required, field, BadValue::Omit, detail)
    }

    pub fn invalid(field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Invalid, field, value, detail)
    }

    pub fn type_invalid(field: &str, value: BadValue, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::TypeInvalid, field, value, detail)
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: BadValue, supported: &[String]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(FieldErrorType::NotSupported, field, value, detail)
    }

    pub fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Forbidden, field, BadValue::Omit, detail)
    }

    pub fn duplicate(field: &str, value: BadValue) -> Self {
        Self::new(FieldErrorType::Duplicate, field, value, "")
    }

    /// `Too long: may not be more than N bytes` (negative max: `value is too long`).
    pub fn too_long(field: &str, max: i64) -> Self {
        let detail = if max >= 0 {
            let unit = if max == 1 { "byte" } else { "bytes" };
            format!("may not be more than {max} {unit}")
        } else {
            "value is too long".to_string()
        };
        Self::new(FieldErrorType::TooLong, field, BadValue::Omit, detail)
    }

    /// `Too many: 4: must have at most 3 items`.
    pub fn too_many(field: &str, actual: i64, max: i64) -> Self {
        let detail = if max >= 0 {
            let unit = if max == 1 { "item" } else { "items" };
            format!("must have at most {max} {unit}")
        } else {
            "has too many items".to_string()
        };
        let value = if actual >= 0 {
            BadValue::Int(actual)
        } else {
            BadValue::Omit
        };
        Self::new(FieldErrorType::TooMany, field, value, detail)
    }

    /// The `StatusCause.reason`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field (Go `ErrorBody()`), e.g.
    /// `Invalid value: "huge": spec.size in body should be one of [small large]`.
    pub fn message(&self) -> String {
        let mut s = match self.kind {
            FieldErrorType::Required | FieldErrorType::Forbidden | FieldErrorType::TooLong => {
                self.kind.as_str().to_string()
            }
            _ => match &self.value {
                BadValue::Omit => self.kind.as_str().to_string(),
                BadValue::Json(v) => format!("{}: {}", self.kind.as_str(), go_error_value(v)),
                BadValue::Int(i) => format!("{}: {i}", self.kind.as_str()),
                BadValue::Raw(r) => format!("{}: {r}", self.kind.as_str()),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

use crate::resources::validation::go_quote;

/// Go's `%v` of a `float64` (shortest `'g'`): exponent form when the decimal exponent is < -4
/// or >= 6, e.g. `1e+06`, `123456`, `1.5e-05`, `0.5`.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mant, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// A JSON number as Go holds it after unstructured decoding: `int64` when integral and in
/// range, otherwise `float64`.
fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(f) = n.as_f64() {
        go_float(f)
    } else {
        n.to_string()
    }
}

/// How `field.Error.ErrorBody` prints a bad value decoded into `interface{}`.
fn go_error_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::Array(_) | Value::Object(_) => go_sharp_v(v),
    }
}

/// Go's `%#v` of an `interface{}` JSON value.
fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_sharp_v).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", go_quote(k), go_sharp_v(&m[k.as_str()])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%v` (fmt.Print) of an `interface{}` JSON value: `map[a:1 b:x]`, `[a b]`.
fn go_plain_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_plain_v).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_plain_v(&m[k.as_str()])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

// ---------------------------------------------------------------------------
// Name validation helpers (apimachinery util/validation)
// ---------------------------------------------------------------------------

const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_dns1123_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(is_dns1123_label_chars) {
        errs.push(DNS1123_SUBDOMAIN_ERR.to_string());
    }
    errs
}

/// `IsDNS1035Label`.
fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    if !ok {
        errs.push(DNS1035_LABEL_ERR.to_string());
    }
    errs
}

// ---------------------------------------------------------------------------
// Regular expressions (the `pattern` keyword)
// ---------------------------------------------------------------------------

/// A compiled regular expression in the RE2 syntax Go's `regexp` accepts (which is what
/// kube-apiserver uses for `pattern`), matched unanchored like `MatchString`.
///
/// Supported: literals and escapes (`\.`, `\\`, `\n`, `\t`, `\x41`, `\x{263a}`, any escaped
/// punctuation), `.`, anchors `^` `$` `\A` `\z`, word boundaries `\b` `\B`, classes `[a-z0-9-]`,
/// `[^…]`, `\d \w \s \D \W \S` (ASCII, as RE2) inside and outside classes, POSIX classes
/// `[[:alpha:]]`, `\pL`/`\p{L}`/`\p{Lu}`/`\p{Ll}`/`\p{N}`/`\p{Nd}` (approximated with Rust's
/// Unicode predicates), groups `(…)`, `(?:…)`, `(?P<n>…)`, `(?<n>…)`, flags `(?i)`, `(?s)`,
/// `(?m)`, `(?U)` and `(?i:…)`, alternation, quantifiers `* + ? {n} {n,} {n,m}` and their lazy
/// forms (laziness does not change whether a string matches).
///
/// Not supported (RE2 rejects them too, so CRDs using them are refused at creation):
/// backreferences, lookahead/lookbehind, possessive quantifiers. Also not supported: other
/// Unicode classes and scripts (`\p{Greek}`), `\Q…\E`, `\C`; these are reported as invalid.
#[derive(Debug, Clone)]
pub struct Regex {
    prog: Vec<Inst>,
}

/// A pattern Go's `regexp` would refuse, with its error text
/// (`error parsing regexp: missing closing ]: `[a-z``).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("error parsing regexp: {code}: `{fragment}`")]
pub struct RegexError {
    pub code: &'static str,
    pub fragment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pred {
    Letter,
    Upper,
    Lower,
    Number,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClassItem {
    Range(char, char),
    Pred(Pred, bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    items: Vec<ClassItem>,
    negated: bool,
    fold: bool,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        let hit = |c: char| {
            self.items.iter().any(|it| match it {
                ClassItem::Range(lo, hi) => *lo <= c && c <= *hi,
                ClassItem::Pred(p, neg) => {
                    let r = match p {
                        Pred::Letter => c.is_alphabetic(),
                        Pred::Upper => c.is_uppercase(),
                        Pred::Lower => c.is_lowercase(),
                        Pred::Number => c.is_numeric(),
                    };
                    r != *neg
                }
            })
        };
        let mut m = hit(c);
        if !m && self.fold {
            m = c.to_lowercase().any(hit) || c.to_uppercase().any(hit);
        }
        m != self.negated
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assert {
    TextStart,
    TextEnd,
    LineStart,
    LineEnd,
    WordBoundary,
    NotWordBoundary,
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Class(Class),
    Any {
        newline: bool,
    },
    Assert(Assert),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

#[derive(Debug, Clone)]
enum Inst {
    Class(Class),
    Any { newline: bool },
    Assert(Assert),
    Split(usize, usize),
    Jmp(usize),
    Match,
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    fold: bool,
    dot_nl: bool,
    multi_line: bool,
}

const MAX_REPEAT: u32 = 1000;

struct Parser<'a> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
}

fn perl_class(c: char) -> Option<(Vec<ClassItem>, bool)> {
    let digit = vec![ClassItem::Range('0', '9')];
    let word = vec![
        ClassItem::Range('0', '9'),
        ClassItem::Range('A', 'Z'),
        ClassItem::Range('_', '_'),
        ClassItem::Range('a', 'z'),
    ];
    let space = vec![
        ClassItem::Range('\t', '\n'),
        ClassItem::Range('\u{c}', '\r'),
        ClassItem::Range(' ', ' '),
    ];
    match c {
        'd' => Some((digit, false)),
        'D' => Some((digit, true)),
        'w' => Some((word, false)),
        'W' => Some((word, true)),
        's' => Some((space, false)),
        'S' => Some((space, true)),
        _ => None,
    }
}

/// The complement of the ranges in `items` over the Unicode scalar values.
fn negate_ranges(items: &[ClassItem]) -> Vec<ClassItem> {
    fn push(out: &mut Vec<ClassItem>, lo: u32, hi: u32) {
        let mut add = |a: u32, b: u32| {
            if a <= b
                && let (Some(a), Some(b)) = (char::from_u32(a), char::from_u32(b))
            {
                out.push(ClassItem::Range(a, b));
            }
        };
        if lo < 0xD800 {
            add(lo, hi.min(0xD7FF));
        }
        if hi > 0xDFFF {
            add(lo.max(0xE000), hi);
        }
    }
    let mut ranges: Vec<(u32, u32)> = items
        .iter()
        .filter_map(|i| match i {
            ClassItem::Range(a, b) => Some((*a as u32, *b as u32)),
            ClassItem::Pred(..) => None,
        })
        .collect();
    ranges.sort_unstable();
    let mut out = Vec::new();
    let mut next: u32 = 0;
    for (a, b) in ranges {
        if a > next {
            push(&mut out, next, a - 1);
        }
        next = next.max(b + 1);
    }
    if next <= 0x10FFFF {
        push(&mut out, next, 0x10FFFF);
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Parser<'a> {
    fn err(&self, code: &'static str, fragment: impl Into<String>) -> RegexError {
        RegexError {
            code,
            fragment: fragment.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn parse_alt(&mut self, flags: &mut Flags, depth: usize) -> Result<Node, RegexError> {
        if depth > 1000 {
            return Err(self.err("expression nests too deeply", self.src));
        }
        let mut alts = vec![self.parse_concat(flags, depth)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.parse_concat(flags, depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn parse_concat(&mut self, flags: &mut Flags, depth: usize) -> Result<Node, RegexError> {
        let mut items: Vec<Node> = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let start = self.pos;
            let atom = match self.parse_atom(flags, depth)? {
                Some(a) => a,
                None => continue, // a flag group like (?i)
            };
            let atom = self.parse_quantifiers(atom, start)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// `{n}`, `{n,}`, `{n,m}` at the current position, if well-formed.
    fn try_repeat_count(&self) -> Option<(usize, u32, Option<u32>)> {
        let mut i = self.pos + 1;
        let num = |i: &mut usize| -> Option<u32> {
            let s = *i;
            while *i < self.chars.len() && self.chars[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i == s {
                return None;
            }
            let text: String = self.chars[s..*i].iter().collect();
            Some(text.parse::<u32>().unwrap_or(u32::MAX))
        };
        let min = num(&mut i)?;
        let max = if self.chars.get(i) == Some(&',') {
            i += 1;
            if self.chars.get(i) == Some(&'}') {
                None
            } else {
                Some(num(&mut i)?)
            }
        } else {
            Some(min)
        };
        if self.chars.get(i) != Some(&'}') {
            return None;
        }
        Some((i + 1, min, max))
    }

    fn parse_quantifiers(&mut self, atom: Node, atom_start: usize) -> Result<Node, RegexError> {
        let _ = atom_start;
        let mut node = atom;
        let mut prev_op: Option<usize> = None;
        loop {
            let op_start = self.pos;
            let (min, max) = match self.peek() {
                Some('*') => {
                    self.pos += 1;
                    (0, None)
                }
                Some('+') => {
                    self.pos += 1;
                    (1, None)
                }
                Some('?') => {
                    self.pos += 1;
                    (0, Some(1))
                }
                Some('{') => match self.try_repeat_count() {
                    Some((end, min, max)) => {
                        let text: String = self.chars[op_start..end].iter().collect();
                        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                            return Err(self.err("invalid repeat count", text));
                        }
                        self.pos = end;
                        (min, max)
                    }
                    None => return Ok(node),
                },
                _ => return Ok(node),
            };
            if self.peek() == Some('?') {
                self.pos += 1; // lazy: same language
            }
            if let Some(prev) = prev_op {
                let op: String = self.chars[prev..self.pos].iter().collect();
                return Err(self.err("invalid nested repetition operator", op));
            }
            prev_op = Some(op_start);
            node = Node::Repeat {
                node: Box::new(node),
                min,
                max,
            };
        }
    }

    fn literal(&self, c: char, flags: &Flags) -> Node {
        Node::Class(Class {
            items: vec![ClassItem::Range(c, c)],
            negated: false,
            fold: flags.fold,
        })
    }

    fn parse_atom(&mut self, flags: &mut Flags, depth: usize) -> Result<Option<Node>, RegexError> {
        let Some(c) = self.peek() else {
            return Ok(Some(Node::Empty));
        };
        match c {
            '(' => self.parse_group(flags, depth),
            '[' => Ok(Some(self.parse_class(flags)?)),
            '.' => {
                self.pos += 1;
                Ok(Some(Node::Any {
                    newline: flags.dot_nl,
                }))
            }
            '^' => {
                self.pos += 1;
                Ok(Some(Node::Assert(if flags.multi_line {
                    Assert::LineStart
                } else {
                    Assert::TextStart
                })))
            }
            '$' => {
                self.pos += 1;
                Ok(Some(Node::Assert(if flags.multi_line {
                    Assert::LineEnd
                } else {
                    Assert::TextEnd
                })))
            }
            '*' | '+' | '?' => {
                let op: String = self.chars[self.pos..(self.pos + 1)].iter().collect();
                Err(self.err("missing argument to repetition operator", op))
            }
            '{' => {
                if let Some((end, _, _)) = self.try_repeat_count() {
                    let op: String = self.chars[self.pos..end].iter().collect();
                    return Err(self.err("missing argument to repetition operator", op));
                }
                self.pos += 1;
                Ok(Some(self.literal('{', flags)))
            }
            '\\' => Ok(Some(self.parse_escape(flags)?)),
            _ => {
                self.pos += 1;
                Ok(Some(self.literal(c, flags)))
            }
        }
    }

    fn parse_group(&mut self, flags: &mut Flags, depth: usize) -> Result<Option<Node>, RegexError> {
        let open = self.pos;
        self.pos += 1;
        let mut inner_flags = *flags;
        if self.peek() == Some('?') {
            let rest: String = self.chars[self.pos..].iter().collect();
            if rest.starts_with("?P<")
                || rest.starts_with("?<") && !rest.starts_with("?<=") && !rest.starts_with("?<!")
            {
                // named capture
                let skip = if rest.starts_with("?P<") { 3 } else { 2 };
                self.pos += skip;
                let name_start = self.pos;
                while let Some(c) = self.peek() {
                    if c == '>' {
                        break;
                    }
                    self.pos += 1;
                }
                let name: String = self.chars[name_start..self.pos].iter().collect();
                if self.peek() != Some('>')
                    || name.is_empty()
                    || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
                {
                    let frag: String = self.chars[open..self.pos.min(self.chars.len())]
                        .iter()
                        .collect();
                    return Err(self.err("invalid named capture", frag));
                }
                self.pos += 1;
            } else {
                // flags: (?i) (?i:...) (?:...)
                self.pos += 1;
                let mut neg = false;
                let mut new_flags = *flags;
                loop {
                    match self.peek() {
                        Some('i') => new_flags.fold = !neg,
                        Some('s') => new_flags.dot_nl = !neg,
                        Some('m') => new_flags.multi_line = !neg,
                        Some('U') => {}
                        Some('-') if !neg => neg = true,
                        Some(')') => {
                            self.pos += 1;
                            *flags = new_flags;
                            return Ok(None);
                        }
                        Some(':') => {
                            self.pos += 1;
                            inner_flags = new_flags;
                            break;
                        }
                        _ => {
                            let end = (self.pos + 1).min(self.chars.len());
                            let frag: String = self.chars[open..end].iter().collect();
                            return Err(self.err("invalid or unsupported Perl syntax", frag));
                        }
                    }
                    self.pos += 1;
                }
            }
        }
        let node = self.parse_alt(&mut inner_flags, depth + 1)?;
        if self.peek() != Some(')') {
            return Err(self.err("missing closing )", self.src));
        }
        self.pos += 1;
        Ok(Some(node))
    }

    /// After a backslash: one escape, as an item usable inside or outside a class.
    fn parse_escape_items(&mut self) -> Result<(Vec<ClassItem>, bool), RegexError> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.err("trailing backslash at end of expression", ""));
        };
        self.pos += 1;
        if let Some(p) = perl_class(c) {
            return Ok(p);
        }
        let single = |ch: char| Ok((vec![ClassItem::Range(ch, ch)], false));
        match c {
            'n' => single('\n'),
            't' => single('\t'),
            'r' => single('\r'),
            'f' => single('\u{c}'),
            'v' => single('\u{b}'),
            'a' => single('\u{7}'),
            '0'..='7' if c == '0' || self.peek().is_some_and(|d| ('0'..='7').contains(&d)) => {
                // octal (Go accepts \0 and \NNN with a leading digit followed by octal digits)
                let mut v = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                single(char::from_u32(v).unwrap_or('\0'))
            }
            'x' => {
                let digits: String = if self.peek() == Some('{') {
                    self.pos += 1;
                    let s = self.pos;
                    while self.peek().is_some_and(|d| d != '}') {
                        self.pos += 1;
                    }
                    let d: String = self.chars[s..self.pos].iter().collect();
                    if self.peek() != Some('}') {
                        let frag: String = self.chars[start..self.pos].iter().collect();
                        return Err(self.err("invalid escape sequence", frag));
                    }
                    self.pos += 1;
                    d
                } else {
                    let s = self.pos;
                    self.pos = (self.pos + 2).min(self.chars.len());
                    self.chars[s..self.pos].iter().collect()
                };
                match u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(ch) if !digits.is_empty() => single(ch),
                    _ => {
                        let frag: String = self.chars[start..self.pos].iter().collect();
                        Err(self.err("invalid escape sequence", frag))
                    }
                }
            }
            'p' | 'P' => {
                let negated = c == 'P';
                let name: String = if self.peek() == Some('{') {
                    self.pos += 1;
                    let s = self.pos;
                    while self.peek().is_some_and(|d| d != '}') {
                        self.pos += 1;
                    }
                    let n: String = self.chars[s..self.pos].iter().collect();
                    if self.peek() == Some('}') {
                        self.pos += 1;
                    }
                    n
                } else {
                    let n = self.peek().map(String::from).unwrap_or_default();
                    self.pos = (self.pos + 1).min(self.chars.len());
                    n
                };
                let (name, neg2) = match name.strip_prefix('^') {
                    Some(n) => (n.to_string(), true),
                    None => (name, false),
                };
                let pred = match name.as_str() {
                    "L" => Pred::Letter,
                    "Lu" => Pred::Upper,
                    "Ll" => Pred::Lower,
                    "N" | "Nd" => Pred::Number,
                    _ => {
                        let frag: String = self.chars[start..self.pos].iter().collect();
                        return Err(self.err("invalid character class range", frag));
                    }
                };
                Ok((vec![ClassItem::Pred(pred, negated != neg2)], false))
            }
            c if c.is_ascii_punctuation() => single(c),
            _ => {
                let frag: String = self.chars[start..self.pos].iter().collect();
                Err(self.err("invalid escape sequence", frag))
            }
        }
    }

    fn parse_escape(&mut self, flags: &Flags) -> Result<Node, RegexError> {
        match self.chars.get(self.pos + 1) {
            Some('b') => {
                self.pos += 2;
                return Ok(Node::Assert(Assert::WordBoundary));
            }
            Some('B') => {
                self.pos += 2;
                return Ok(Node::Assert(Assert::NotWordBoundary));
            }
            Some('A') => {
                self.pos += 2;
                return Ok(Node::Assert(Assert::TextStart));
            }
            Some('z') => {
                self.pos += 2;
                return Ok(Node::Assert(Assert::TextEnd));
            }
            _ => {}
        }
        let (items, negated) = self.parse_escape_items()?;
        Ok(Node::Class(Class {
            items,
            negated,
            fold: flags.fold,
        }))
    }

    fn parse_class(&mut self, flags: &Flags) -> Result<Node, RegexError> {
        let open = self.pos;
        self.pos += 1;
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut items: Vec<ClassItem> = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                let frag: String = self.chars[open..].iter().collect();
                return Err(self.err("missing closing ]", frag));
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            let item_start = self.pos;
            // POSIX class
            if c == '['
                && self.chars.get(self.pos + 1) == Some(&':')
                && let Some(end) = self.chars[self.pos + 2..]
                    .windows(2)
                    .position(|w| w[0] == ':' && w[1] == ']')
            {
                let name: String = self.chars[self.pos + 2..self.pos + 2 + end]
                    .iter()
                    .collect();
                let (name, neg) = match name.strip_prefix('^') {
                    Some(n) => (n.to_string(), true),
                    None => (name, false),
                };
                let ranges: Vec<(char, char)> = match name.as_str() {
                    "alpha" => vec![('A', 'Z'), ('a', 'z')],
                    "digit" => vec![('0', '9')],
                    "alnum" => vec![('0', '9'), ('A', 'Z'), ('a', 'z')],
                    "upper" => vec![('A', 'Z')],
                    "lower" => vec![('a', 'z')],
                    "space" => vec![('\t', '\r'), (' ', ' ')],
                    "xdigit" => vec![('0', '9'), ('A', 'F'), ('a', 'f')],
                    "word" => vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
                    "punct" => vec![('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
                    "blank" => vec![('\t', '\t'), (' ', ' ')],
                    "cntrl" => vec![('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')],
                    "print" => vec![(' ', '~')],
                    "graph" => vec![('!', '~')],
                    "ascii" => vec![('\0', '\u{7f}')],
                    _ => {
                        let frag: String =
                            self.chars[self.pos..self.pos + 4 + end].iter().collect();
                        return Err(self.err("invalid character class range", frag));
                    }
                };
                let its: Vec<ClassItem> = ranges
                    .into_iter()
                    .map(|(a, b)| ClassItem::Range(a, b))
                    .collect();
                if neg {
                    items.extend(negate_ranges(&its));
                } else {
                    items.extend(its);
                }
                self.pos += 4 + end;
                continue;
            }
            let lo = if c == '\\' {
                let (its, neg) = self.parse_escape_items()?;
                let single = match its.as_slice() {
                    [ClassItem::Range(a, b)] if a == b && !neg => Some(*a),
                    _ => None,
                };
                match single {
                    Some(ch) => ch,
                    None => {
                        if neg {
                            items.extend(negate_ranges(&its));
                        } else {
                            items.extend(its);
                        }
                        continue;
                    }
                }
            } else {
                self.pos += 1;
                c
            };
            // range?
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|n| *n != ']') {
                self.pos += 1;
                let hi = if self.peek() == Some('\\') {
                    let (its, _) = self.parse_escape_items()?;
                    match its.as_slice() {
                        [ClassItem::Range(a, b)] if a == b => *a,
                        _ => {
                            let frag: String = self.chars[item_start..self.pos].iter().collect();
                            return Err(self.err("invalid character class range", frag));
                        }
                    }
                } else {
                    let Some(h) = self.peek() else {
                        let frag: String = self.chars[open..].iter().collect();
                        return Err(self.err("missing closing ]", frag));
                    };
                    self.pos += 1;
                    h
                };
                if hi < lo {
                    let frag: String = self.chars[item_start..self.pos].iter().collect();
                    return Err(self.err("invalid character class range", frag));
                }
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(Node::Class(Class {
            items,
            negated,
            fold: flags.fold,
        }))
    }
}

struct Compiler {
    prog: Vec<Inst>,
}

impl Compiler {
    fn emit(&mut self, i: Inst) -> usize {
        self.prog.push(i);
        self.prog.len() - 1
    }

    fn compile(&mut self, n: &Node) -> Result<(), RegexError> {
        if self.prog.len() > 100_000 {
            return Err(RegexError {
                code: "expression too large",
                fragment: String::new(),
            });
        }
        match n {
            Node::Empty => {}
            Node::Class(c) => {
                self.emit(Inst::Class(c.clone()));
            }
            Node::Any { newline } => {
                self.emit(Inst::Any { newline: *newline });
            }
            Node::Assert(a) => {
                self.emit(Inst::Assert(*a));
            }
            Node::Concat(items) => {
                for i in items {
                    self.compile(i)?;
                }
            }
            Node::Alt(alts) => {
                let mut jumps = Vec::new();
                for (idx, a) in alts.iter().enumerate() {
                    if idx + 1 < alts.len() {
                        let split = self.emit(Inst::Split(0, 0));
                        self.compile(a)?;
                        jumps.push(self.emit(Inst::Jmp(0)));
                        let next = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, next);
                    } else {
                        self.compile(a)?;
                    }
                }
                let end = self.prog.len();
                for j in jumps {
                    self.prog[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat { node, min, max } => {
                for _ in 0..*min {
                    self.compile(node)?;
                }
                match max {
                    None => {
                        // L: split body, end; body; jmp L
                        let split = self.emit(Inst::Split(0, 0));
                        self.compile(node)?;
                        self.emit(Inst::Jmp(split));
                        let end = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, end);
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.emit(Inst::Split(0, 0)));
                            self.compile(node)?;
                        }
                        let end = self.prog.len();
                        for s in splits {
                            self.prog[s] = Inst::Split(s + 1, end);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Regex {
    /// Compile `pattern` (RE2 syntax).
    pub fn new(pattern: &str) -> Result<Regex, RegexError> {
        let mut p = Parser {
            src: pattern,
            chars: pattern.chars().collect(),
            pos: 0,
        };
        let mut flags = Flags {
            fold: false,
            dot_nl: false,
            multi_line: false,
        };
        let node = p.parse_alt(&mut flags, 0)?;
        if p.pos < p.chars.len() {
            // only an unmatched ')' stops the top level early
            return Err(p.err("unexpected )", pattern));
        }
        let mut c = Compiler { prog: Vec::new() };
        c.compile(&node)?;
        c.emit(Inst::Match);
        Ok(Regex { prog: c.prog })
    }

    /// Whether the pattern matches anywhere in `text` (Go `MatchString`).
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let n = self.prog.len();
        let mut clist: Vec<usize> = Vec::new();
        let mut nlist: Vec<usize> = Vec::new();
        let mut seen = vec![usize::MAX; n];
        for i in 0..=chars.len() {
            // unanchored: a new thread may start at every position
            if self.add_thread(&mut clist, &mut seen, 0, i, &chars) {
                return true;
            }
            if i == chars.len() {
                break;
            }
            let c = chars[i];
            nlist.clear();
            for &pc in clist.iter() {
                let ok = match &self.prog[pc] {
                    Inst::Class(cl) => cl.matches(c),
                    Inst::Any { newline } => *newline || c != '\n',
                    _ => false,
                };
                if ok && self.add_thread(&mut nlist, &mut seen, pc + 1, i + 1, &chars) {
                    return true;
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        false
    }

    /// Follow epsilon transitions from `pc` at position `pos`; true when `Match` is reached.
    fn add_thread(
        &self,
        list: &mut Vec<usize>,
        seen: &mut [usize],
        pc: usize,
        pos: usize,
        chars: &[char],
    ) -> bool {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if seen[pc] == pos {
                continue;
            }
            seen[pc] = pos;
            match &self.prog[pc] {
                Inst::Match => return true,
                Inst::Jmp(t) => stack.push(*t),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Assert(a) => {
                    let before = if pos > 0 { Some(chars[pos - 1]) } else { None };
                    let after = chars.get(pos).copied();
                    let ok = match a {
                        Assert::TextStart => pos == 0,
                        Assert::TextEnd => pos == chars.len(),
                        Assert::LineStart => before.is_none_or(|c| c == '\n'),
                        Assert::LineEnd => after.is_none_or(|c| c == '\n'),
                        Assert::WordBoundary | Assert::NotWordBoundary => {
                            let wb =
                                before.is_some_and(is_word_char) != after.is_some_and(is_word_char);
                            wb == (*a == Assert::WordBoundary)
                        }
                    };
                    if ok {
                        stack.push(pc + 1);
                    }
                }
                Inst::Class(_) | Inst::Any { .. } => list.push(pc),
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------
// Custom object validation (kube-openapi schema validator + apiextensions mapping)
// ---------------------------------------------------------------------------

/// The string formats apiextensions keeps (others, e.g. `int32`, are stripped and not checked).
const SUPPORTED_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
];

/// One kube-openapi result error before the apiextensions mapping.
#[derive(Debug, Clone)]
enum OaErr {
    /// An `errors.Validation` (name = kube-openapi path, possibly with a leading dot).
    Validation {
        code: OaCode,
        name: String,
        value: Option<Value>,
        message: String,
        enum_values: Vec<Value>,
        max: i64,
    },
    /// A composite (anyOf/oneOf/allOf/not) message: reported against the base path.
    Composite(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OaCode {
    InvalidType,
    Required,
    TooLong,
    Enum,
    MaxItems,
    TooManyProperties,
    Other,
}

fn oa(code: OaCode, name: &str, value: Option<Value>, message: String) -> OaErr {
    OaErr::Validation {
        code,
        name: name.to_string(),
        value,
        message,
        enum_values: Vec::new(),
        max: -1,
    }
}

/// `%s in body …` with Go's quirk of an empty name.
fn in_body(name: &str) -> String {
    format!("{name} in body")
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Number(n) => {
            if n.is_i64() {
                "integer"
            } else {
                "number"
            }
        }
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn schema_types(schema: &Map<String, Value>) -> Vec<String> {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return vec!["integer".into(), "string".into()];
    }
    match schema.get("type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t.clone()],
        _ => Vec::new(),
    }
}

fn flag(schema: &Map<String, Value>, key: &str) -> bool {
    schema.get(key) == Some(&Value::Bool(true))
}

fn num_of(schema: &Map<String, Value>, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn int_of(schema: &Map<String, Value>, key: &str) -> Option<i64> {
    schema
        .get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

fn format_of(schema: &Map<String, Value>) -> String {
    match schema.get("format").and_then(Value::as_str) {
        Some(f) if SUPPORTED_FORMATS.contains(&f) => f.to_string(),
        _ => String::new(),
    }
}

/// Go's `%v` of a `[]interface{}` (the enum list in kube-openapi's message).
fn go_slice_v(values: &[Value]) -> String {
    go_plain_v(&Value::Array(values.to_vec()))
}

/// Whether `v` equals an enum member the way kube-openapi compares (deep equality; integers and
/// floats compare by numeric value).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_uint_in(s: &str, max: u32) -> bool {
    !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|v| v <= max)
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| parse_uint_in(p, 255))
}

fn is_ipv6(s: &str) -> bool {
    if !s.contains(':') || s.len() < 2 {
        return false;
    }
    let (head, v4) = match s.rsplit_once(':') {
        Some((h, t)) if t.contains('.') => (format!("{h}:0:0"), is_ipv4(t)),
        _ => (s.to_string(), true),
    };
    if !v4 {
        return false;
    }
    let double = head.matches("::").count();
    if double > 1 {
        return false;
    }
    let groups: Vec<&str> = head.split(':').collect();
    let nonempty = groups.iter().filter(|g| !g.is_empty()).count();
    groups
        .iter()
        .all(|g| g.is_empty() || (g.len() <= 4 && is_hex(g)))
        && if double == 1 {
            nonempty < 8
        } else {
            nonempty == 8
        }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s[0..4].bytes().all(|c| c.is_ascii_digit())
        && parse_uint_in(&s[5..7], 12)
        && parse_uint_in(&s[8..10], 31)
        && &s[5..7] != "00"
        && &s[8..10] != "00"
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05Z`,
/// `…05.123+01:00`; a space or lower-case `t` separator is accepted as strfmt does).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !is_date(&s[0..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let two = |i: usize| -> Option<i64> {
        let t = s.get(i..i + 2)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (two(11)?, two(14)?, two(17)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let st = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == st {
            return None;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(b'+') | Some(b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (two(i + 1)?, two(i + 4)?);
            let sign = if b[i] == b'+' { 1 } else { -1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let y: i64 = s[0..4].parse().ok()?;
    let m: i64 = s[5..7].parse().ok()?;
    let d: i64 = s[8..10].parse().ok()?;
    // days from civil (proleptic Gregorian)
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// strfmt's checks, loosely (see the module docs).
fn format_valid(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => parse_rfc3339(s).is_some(),
        "date" => is_date(s),
        "byte" => is_base64(s),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => {
            is_uuid(s)
                && match format {
                    "uuid3" => s.as_bytes()[14] == b'3',
                    "uuid4" => s.as_bytes()[14] == b'4',
                    "uuid5" => s.as_bytes()[14] == b'5',
                    _ => true,
                }
        }
        "ipv4" => is_ipv4(s),
        "ipv6" => is_ipv6(s),
        "cidr" => match s.split_once('/') {
            Some((ip, bits)) => {
                (is_ipv4(ip) && parse_uint_in(bits, 32))
                    || (is_ipv6(ip) && parse_uint_in(bits, 128))
            }
            None => false,
        },
        "hostname" => {
            !s.is_empty()
                && s.len() <= 255
                && s.trim_end_matches('.').split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        "email" => s
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@')),
        "uri" => {
            s.split_once(':').is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme.as_bytes()[0].is_ascii_alphabetic()
                    && scheme
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            }) || s.starts_with('/')
        }
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            matches!(parts.len(), 6 | 8 | 20) && parts.iter().all(|p| p.len() == 2 && is_hex(p))
        }
        "hexcolor" => {
            s.len() == 7 && s.starts_with('#') && is_hex(&s[1..])
                || s.len() == 4 && s.starts_with('#') && is_hex(&s[1..])
        }
        "bsonobjectid" => s.len() == 24 && is_hex(s),
        "duration" => {
            let t = s.trim();
            !t.is_empty()
                && t.chars().next().is_some_and(|c| c.is_ascii_digit())
                && t.chars().any(|c| c.is_ascii_alphabetic())
        }
        _ => true,
    }
}

struct Validator {
    errors: Vec<OaErr>,
}

impl Validator {
    /// kube-openapi `SchemaValidator.Validate` at kube-openapi path `path`.
    fn validate(&mut self, path: &str, data: &Value, schema: &Value) {
        let Some(s) = schema.as_object() else {
            return;
        };
        let types = schema_types(s);
        let format = format_of(s);
        let nullable = flag(s, "nullable");
        // type validator
        if !types.is_empty() || !format.is_empty() {
            self.type_check(path, data, &types, &format, nullable);
        }
        if data.is_null() {
            self.enum_check(path, data, s);
            return;
        }
        self.schema_props(path, data, s);
        if let Value::String(text) = data {
            self.string_check(path, text, s);
            if !format.is_empty() && !format_valid(&format, text) {
                self.errors.push(oa(
                    OaCode::InvalidType,
                    path,
                    Some(data.clone()),
                    format!(
                        "{} must be of type {format}: {}",
                        in_body(path),
                        go_quote(text)
                    ),
                ));
            }
        }
        if let Value::Number(n) = data {
            self.number_check(path, n, s);
        }
        if let Value::Array(items) = data {
            self.slice_check(path, items, s);
        }
        self.enum_check(path, data, s);
        if let Value::Object(m) = data {
            self.object_check(path, m, s);
        }
    }

    fn type_check(
        &mut self,
        path: &str,
        data: &Value,
        types: &[String],
        format: &str,
        nullable: bool,
    ) {
        let joined = types.join(",");
        let fail = |this: &mut Self, want: &str, got: &str| {
            this.errors.push(oa(
                OaCode::InvalidType,
                path,
                Some(Value::String(got.to_string())),
                format!(
                    "{} must be of type {want}: {}",
                    in_body(path),
                    go_quote(got)
                ),
            ));
        };
        if data.is_null() {
            if !types.is_empty() && !types.iter().any(|t| t == "null") && !nullable {
                fail(self, &joined, "null");
            }
            return;
        }
        let sch_type = json_type_name(data);
        let has = |t: &str| types.iter().any(|x| x == t);
        let is_float_int = sch_type == "number"
            && data
                .as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
            && has("integer");
        let is_int_float = sch_type == "integer" && has("number");
        let detected_format = match sch_type {
            "integer" => "int64",
            "number" => "float64",
            _ => "",
        };
        let is_string_or_slice = matches!(data, Value::String(_) | Value::Array(_));
        if !(is_string_or_slice
            || format.is_empty()
            || has(sch_type)
            || detected_format == format
            || is_float_int
            || is_int_float)
        {
            fail(self, format, detected_format);
            return;
        }
        if is_string_or_slice && !(has("number") || has("integer") || format.is_empty()) {
            return;
        }
        if !(has(sch_type) || is_float_int || is_int_float) {
            fail(self, &joined, sch_type);
        }
    }

    fn enum_check(&mut self, path: &str, data: &Value, s: &Map<String, Value>) {
        let Some(Value::Array(values)) = s.get("enum") else {
            return;
        };
        if values.is_empty() {
            return;
        }
        if !data.is_null() && values.iter().any(|e| json_equal(data, e)) {
            return;
        }
        self.errors.push(OaErr::Validation {
            code: OaCode::Enum,
            name: path.to_string(),
            value: Some(data.clone()),
            message: format!("{} should be one of {}", in_body(path), go_slice_v(values)),
            enum_values: values.clone(),
            max: -1,
        });
    }

    fn string_check(&mut self, path: &str, text: &str, s: &Map<String, Value>) {
        let len = text.chars().count() as i64;
        let val = Some(Value::String(text.to_string()));
        if let Some(max) = int_of(s, "maxLength")
            && len > max
        {
            self.errors.push(OaErr::Validation {
                code: OaCode::TooLong,
                name: path.to_string(),
                value: val,
                message: format!("{} should be at most {max} chars long", in_body(path)),
                enum_values: Vec::new(),
                max,
            });
            return;
        }
        if let Some(min) = int_of(s, "minLength")
            && len < min
        {
            self.errors.push(oa(
                OaCode::Other,
                path,
                val,
                format!("{} should be at least {min} chars long", in_body(path)),
            ));
            return;
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
            && !pattern.is_empty()
        {
            match Regex::new(pattern) {
                Ok(re) => {
                    if !re.is_match(text) {
                        self.errors.push(oa(
                            OaCode::Other,
                            path,
                            val,
                            format!("{} should match '{pattern}'", in_body(path)),
                        ));
                    }
                }
                Err(e) => self.errors.push(oa(
                    OaCode::Other,
                    path,
                    val,
                    format!(
                        "{} should match '{pattern}, but pattern is invalid: {e}'",
                        in_body(path)
                    ),
                )),
            }
        }
    }

    fn number_check(&mut self, path: &str, n: &serde_json::Number, s: &Map<String, Value>) {
        let data = Value::Number(n.clone());
        let as_int = n.as_i64();
        let f = n.as_f64().unwrap_or(0.0);
        if let Some(factor) = num_of(s, "multipleOf") {
            if factor < 0.0 {
                self.errors.push(oa(
                    OaCode::Other,
                    path,
                    Some(Value::from(factor)),
                    format!(
                        "factor MultipleOf declared for {path} must be positive: {}",
                        go_float(factor)
                    ),
                ));
            } else {
                let (bad, shown) = match as_int {
                    Some(i) => {
                        let fi = factor as i64;
                        (fi == 0 || i % fi != 0, fi.to_string())
                    }
                    None => {
                        let mult = if factor < 1.0 {
                            1.0 / factor * f
                        } else {
                            f / factor
                        };
                        (mult.fract() != 0.0 || !mult.is_finite(), go_float(factor))
                    }
                };
                if bad {
                    self.errors.push(oa(
                        OaCode::Other,
                        path,
                        Some(data.clone()),
                        format!("{} should be a multiple of {shown}", in_body(path)),
                    ));
                }
            }
        }
        if let Some(min) = num_of(s, "minimum") {
            let excl = flag(s, "exclusiveMinimum");
            let (bad, shown) = match as_int {
                Some(i) => {
                    let m = min as i64;
                    (if excl { i <= m } else { i < m }, m.to_string())
                }
                None => (if excl { f <= min } else { f < min }, go_float(min)),
            };
            if bad {
                let op = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.errors.push(oa(
                    OaCode::Other,
                    path,
                    Some(data.clone()),
                    format!("{} should be {op} {shown}", in_body(path)),
                ));
            }
        }
        if let Some(max) = num_of(s, "maximum") {
            let excl = flag(s, "exclusiveMaximum");
            let (bad, shown) = match as_int {
                Some(i) => {
                    let m = max as i64;
                    (if excl { i >= m } else { i > m }, m.to_string())
                }
                None => (if excl { f >= max } else { f > max }, go_float(max)),
            };
            if bad {
                let op = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.errors.push(oa(
                    OaCode::Other,
                    path,
                    Some(data),
                    format!("{} should be {op} {shown}", in_body(path)),
                ));
            }
        }
    }

    fn slice_check(&mut self, path: &str, items: &[Value], s: &Map<String, Value>) {
        if let Some(item_schema) = s.get("items").filter(|v| v.is_object()) {
            for (i, it) in items.iter().enumerate() {
                self.validate(&format!("{path}[{i}]"), it, item_schema);
            }
        }
        let size = items.len() as i64;
        if let Some(min) = int_of(s, "minItems")
            && size < min
        {
            self.errors.push(oa(
                OaCode::Other,
                path,
                Some(Value::from(size)),
                format!("{} should have at least {min} items", in_body(path)),
            ));
        }
        if let Some(max) = int_of(s, "maxItems")
            && size > max
        {
            self.errors.push(OaErr::Validation {
                code: OaCode::MaxItems,
                name: path.to_string(),
                value: Some(Value::from(size)),
                message: format!("{} should have at most {max} items", in_body(path)),
                enum_values: Vec::new(),
                max,
            });
        }
        if flag(s, "uniqueItems") {
            let dup = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)));
            if dup {
                self.errors.push(oa(
                    OaCode::Other,
                    path,
                    None,
                    format!("{} shouldn't contain duplicates", in_body(path)),
                ));
            }
        }
    }

    fn object_check(&mut self, path: &str, m: &Map<String, Value>, s: &Map<String, Value>) {
        let n = m.len() as i64;
        if let Some(min) = int_of(s, "minProperties")
            && n < min
        {
            self.errors.push(oa(
                OaCode::Other,
                path,
                Some(Value::from(n)),
                format!("{} should have at least {min} properties", in_body(path)),
            ));
            return;
        }
        if let Some(max) = int_of(s, "maxProperties")
            && n > max
        {
            self.errors.push(OaErr::Validation {
                code: OaCode::TooManyProperties,
                name: path.to_string(),
                value: Some(Value::from(n)),
                message: format!("{} should have at most {max} properties", in_body(path)),
                enum_values: Vec::new(),
                max,
            });
            return;
        }
        let props = s.get("properties").and_then(Value::as_object);
        let is_prop = |k: &str| props.is_some_and(|p| p.contains_key(k));
        match s.get("additionalProperties") {
            Some(Value::Bool(false)) => {
                for k in m.keys() {
                    if !is_prop(k) {
                        self.errors.push(oa(
                            OaCode::Other,
                            path,
                            Some(Value::String(k.clone())),
                            format!("{path}.{k} in body is a forbidden property"),
                        ));
                    }
                }
            }
            Some(ap @ Value::Object(_)) => {
                for (k, v) in m {
                    if !is_prop(k) {
                        self.validate(&format!("{path}.{k}"), v, ap);
                    }
                }
            }
            _ => {}
        }
        if let Some(props) = props {
            for (k, ps) in props {
                if let Some(v) = m.get(k) {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    self.validate(&child, v, ps);
                }
            }
        }
        if let Some(Value::Array(req)) = s.get("required") {
            for k in req.iter().filter_map(Value::as_str) {
                if !m.contains_key(k) {
                    let name = format!("{path}.{k}");
                    self.errors.push(oa(
                        OaCode::Required,
                        &name,
                        None,
                        format!("{} is required", in_body(&name)),
                    ));
                }
            }
        }
    }

    fn sub(&self, path: &str, data: &Value, schema: &Value) -> Vec<OaErr> {
        let mut v = Validator { errors: Vec::new() };
        v.validate(path, data, schema);
        v.errors
    }

    fn schema_props(&mut self, path: &str, data: &Value, s: &Map<String, Value>) {
        let list = |k: &str| -> Vec<Value> {
            match s.get(k) {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            }
        };
        let quoted = go_quote(path);
        let any_of = list("anyOf");
        if !any_of.is_empty() {
            let results: Vec<Vec<OaErr>> = any_of.iter().map(|a| self.sub(path, data, a)).collect();
            if !results.iter().any(Vec::is_empty) {
                self.errors.push(OaErr::Composite(format!(
                    "{quoted} must validate at least one schema (anyOf)"
                )));
                if let Some(best) = results.iter().min_by_key(|r| r.len()) {
                    self.errors.extend(best.iter().cloned());
                }
            }
        }
        let one_of = list("oneOf");
        if !one_of.is_empty() {
            let results: Vec<Vec<OaErr>> = one_of.iter().map(|a| self.sub(path, data, a)).collect();
            let valid = results.iter().filter(|r| r.is_empty()).count();
            if valid != 1 {
                let extra = if valid == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                self.errors.push(OaErr::Composite(format!(
                    "{quoted} must validate one and only one schema (oneOf). {extra}"
                )));
                if valid == 0
                    && let Some(best) = results.iter().min_by_key(|r| r.len())
                {
                    self.errors.extend(best.iter().cloned());
                }
            }
        }
        let all_of = list("allOf");
        if !all_of.is_empty() {
            let mut validated = 0;
            for a in &all_of {
                let r = self.sub(path, data, a);
                if r.is_empty() {
                    validated += 1;
                }
                self.errors.extend(r);
            }
            if validated != all_of.len() {
                let extra = if validated == 0 {
                    ". None validated"
                } else {
                    ""
                };
                self.errors.push(OaErr::Composite(format!(
                    "{quoted} must validate all the schemas (allOf){extra}"
                )));
            }
        }
        if let Some(not) = s.get("not")
            && self.sub(path, data, not).is_empty()
        {
            self.errors.push(OaErr::Composite(format!(
                "{quoted} must not validate the schema (not)"
            )));
        }
    }
}

/// Join a base field path and a kube-openapi name (`field.Path.Child`).
fn child_path(base: Option<&str>, name: &str) -> String {
    let name = name.strip_prefix('.').unwrap_or(name);
    match base {
        None if name.is_empty() => "<nil>".to_string(),
        None => name.to_string(),
        Some(b) if name.is_empty() => b.to_string(),
        Some(b) => format!("{b}.{name}"),
    }
}

/// apiextensions' `kubeOpenAPIResultToFieldErrors`.
fn to_field_errors(base: Option<&str>, errs: Vec<OaErr>) -> Vec<FieldError> {
    let mut out = Vec::new();
    for e in errs {
        match e {
            OaErr::Composite(msg) => out.push(FieldError::invalid(
                base.unwrap_or("<nil>"),
                BadValue::Json(Value::String(String::new())),
                msg,
            )),
            OaErr::Validation {
                code,
                name,
                value,
                message,
                enum_values,
                max,
            } => {
                let field = if name.is_empty() || name == "." {
                    base.unwrap_or("<nil>").to_string()
                } else {
                    child_path(base, &name)
                };
                let value_or_empty =
                    || BadValue::Json(value.clone().unwrap_or(Value::String(String::new())));
                out.push(match code {
                    OaCode::Required => FieldError::required(&field, ""),
                    OaCode::Enum => {
                        let supported: Vec<String> = enum_values
                            .iter()
                            .map(|v| match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect();
                        FieldError::not_supported(
                            &field,
                            BadValue::Json(value.clone().unwrap_or(Value::Null)),
                            &supported,
                        )
                    }
                    OaCode::TooLong => FieldError::too_long(&field, max),
                    OaCode::MaxItems | OaCode::TooManyProperties => {
                        let actual = value.as_ref().and_then(Value::as_i64).unwrap_or(-1);
                        FieldError::too_many(&field, actual, max)
                    }
                    OaCode::InvalidType => {
                        FieldError::type_invalid(&field, value_or_empty(), message)
                    }
                    OaCode::Other => FieldError::invalid(&field, value_or_empty(), message),
                });
            }
        }
    }
    out
}

/// `validateEmbeddedResource` for every `x-kubernetes-embedded-resource` node below the root.
fn validate_embedded(
    path: &str,
    data: &Value,
    schema: &Value,
    is_root: bool,
    out: &mut Vec<FieldError>,
) {
    let Some(s) = schema.as_object() else {
        return;
    };
    match data {
        Value::Object(m) => {
            if flag(s, "x-kubernetes-embedded-resource") && !is_root {
                let p = |k: &str| {
                    if path.is_empty() {
                        k.to_string()
                    } else {
                        format!("{path}.{k}")
                    }
                };
                if !m.contains_key("apiVersion") {
                    out.push(FieldError::required(&p("apiVersion"), "must not be empty"));
                }
                if !m.contains_key("kind") {
                    out.push(FieldError::required(&p("kind"), "must not be empty"));
                }
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("apiVersion", Value::String(av)) => {
                            if av.is_empty() {
                                out.push(FieldError::invalid(
                                    &p(k),
                                    BadValue::Json(v.clone()),
                                    "must not be empty",
                                ));
                            } else if av.matches('/').count() > 1 {
                                out.push(FieldError::invalid(
                                    &p(k),
                                    BadValue::Json(v.clone()),
                                    format!("unexpected GroupVersion string: {av}"),
                                ));
                            }
                        }
                        ("kind", Value::String(kind)) => {
                            if kind.is_empty() {
                                out.push(FieldError::invalid(
                                    &p(k),
                                    BadValue::Json(v.clone()),
                                    "must not be empty",
                                ));
                            } else {
                                let errs = dns1035_label_errors(&kind.to_lowercase());
                                if !errs.is_empty() {
                                    out.push(FieldError::invalid(
                                        &p(k),
                                        BadValue::Json(v.clone()),
                                        format!(
                                            "may have mixed case, but should otherwise match: {}",
                                            errs.join(",")
                                        ),
                                    ));
                                }
                            }
                        }
                        ("apiVersion" | "kind", _) => out.push(FieldError::invalid(
                            &p(k),
                            BadValue::Json(v.clone()),
                            "must be a string",
                        )),
                        _ => {}
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, v) in m {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate_embedded(&child, v, ps, false, out);
                } else if let Some(ap @ Value::Object(_)) = s.get("additionalProperties") {
                    validate_embedded(&child, v, ap, false, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    validate_embedded(&format!("{path}[{i}]"), it, is, false, out);
                }
            }
        }
        _ => {}
    }
}

fn validate_at(base: Option<&str>, obj: &Value, schema: &Value) -> Vec<FieldError> {
    let mut v = Validator { errors: Vec::new() };
    v.validate("", obj, schema);
    to_field_errors(base, v.errors)
}

/// Validate a custom object against a version's `openAPIV3Schema`, as kube-apiserver's custom
/// resource strategy does (metadata of the object itself is validated by the caller). Errors
/// carry upstream's paths and messages; errors about the whole object use the field `<nil>`.
pub fn validate(obj: &Value, schema: &Value) -> Vec<FieldError> {
    let mut errs = validate_at(None, obj, schema);
    validate_embedded("", obj, schema, true, &mut errs);
    errs
}

// ---------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------

/// The `ObjectMeta` fields kept when an embedded resource's metadata is coerced.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

struct Pruner {
    pruned: Vec<String>,
}

fn join_key(parent: &str, k: &str) -> String {
    if parent.is_empty() {
        k.to_string()
    } else {
        format!("{parent}.{k}")
    }
}

impl Pruner {
    /// Upstream `prune` for one value; `schema` None means "nothing is specified here".
    fn prune(
        &mut self,
        path: &str,
        x: &mut Value,
        schema: Option<&Map<String, Value>>,
        is_root: bool,
    ) {
        if let Some(s) = schema
            && flag(s, "x-kubernetes-preserve-unknown-fields")
        {
            self.skip_prune(path, x, s, is_root);
            return;
        }
        match x {
            Value::Object(m) => {
                let Some(s) = schema else {
                    for k in m.keys() {
                        self.pruned.push(join_key(path, k));
                    }
                    m.clear();
                    return;
                };
                let embedded = is_root || flag(s, "x-kubernetes-embedded-resource");
                let props = s.get("properties").and_then(Value::as_object);
                let ap = s.get("additionalProperties");
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if embedded && self.keep_meta(path, m, &k, is_root) {
                        continue;
                    }
                    let child = join_key(path, &k);
                    if let Some(ps) = props.and_then(|p| p.get(&k)) {
                        if let Some(v) = m.get_mut(&k) {
                            self.prune(&child, v, ps.as_object(), false);
                        }
                    } else if let Some(ap) = ap.filter(|a| !matches!(a, Value::Bool(false))) {
                        let sub = ap.as_object();
                        // additionalProperties: true keeps the value as it is
                        if let (Some(sub), Some(v)) = (sub, m.get_mut(&k)) {
                            self.prune(&child, v, Some(sub), false);
                        }
                    } else {
                        m.shift_remove(&k);
                        self.pruned.push(child);
                    }
                }
            }
            Value::Array(items) => {
                let item_schema = schema
                    .and_then(|s| s.get("items"))
                    .and_then(Value::as_object);
                for (i, it) in items.iter_mut().enumerate() {
                    let child = format!("{path}[{i}]");
                    self.prune(&child, it, item_schema, false);
                }
            }
            _ => {}
        }
    }

    /// apiVersion/kind (strings) and metadata (an object) of an embedded resource are kept;
    /// below the root, metadata is coerced to `ObjectMeta`'s fields.
    fn keep_meta(
        &mut self,
        path: &str,
        m: &mut Map<String, Value>,
        k: &str,
        is_root: bool,
    ) -> bool {
        match k {
            "apiVersion" | "kind" => is_root || m.get(k).is_some_and(Value::is_string),
            "metadata" => {
                if is_root {
                    return true;
                }
                match m.get_mut(k) {
                    Some(Value::Object(meta)) => {
                        let mpath = join_key(path, "metadata");
                        let unknown: Vec<String> = meta
                            .keys()
                            .filter(|f| !OBJECT_META_FIELDS.contains(&f.as_str()))
                            .cloned()
                            .collect();
                        for f in unknown {
                            meta.shift_remove(&f);
                            self.pruned.push(join_key(&mpath, &f));
                        }
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Upstream `skipPrune`: under preserve-unknown-fields, only specified children are pruned.
    fn skip_prune(&mut self, path: &str, x: &mut Value, s: &Map<String, Value>, is_root: bool) {
        match x {
            Value::Object(m) => {
                let embedded = is_root || flag(s, "x-kubernetes-embedded-resource");
                let props = s.get("properties").and_then(Value::as_object);
                let ap = s.get("additionalProperties").and_then(Value::as_object);
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        if !is_root && k == "metadata" {
                            self.keep_meta(path, m, &k, false);
                        }
                        continue;
                    }
                    let child = join_key(path, &k);
                    let sub = props
                        .and_then(|p| p.get(&k))
                        .and_then(Value::as_object)
                        .or(ap);
                    if let (Some(sub), Some(v)) = (sub, m.get_mut(&k)) {
                        self.prune(&child, v, Some(sub), false);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(is) = s.get("items").and_then(Value::as_object) {
                    for (i, it) in items.iter_mut().enumerate() {
                        let child = format!("{path}[{i}]");
                        self.skip_prune(&child, it, is, false);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Remove the fields `schema` does not specify (structural pruning), never touching
/// `apiVersion`, `kind` and `metadata` at the root. Embedded resources keep their
/// `apiVersion`/`kind` and their `metadata` reduced to `ObjectMeta`'s fields. Returns the pruned
/// paths (`spec.foo`, `spec.items[0].bar`) in document order, for `unknown field "…"`.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut p = Pruner { pruned: Vec::new() };
    let empty = Map::new();
    let s = schema.as_object().unwrap_or(&empty);
    p.prune("", obj, Some(s), true);
    p.pruned
}

// ---------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------

fn is_non_nullable_null(v: &Value, s: &Map<String, Value>) -> bool {
    v.is_null() && !flag(s, "nullable")
}

/// Apply `default` keywords top-down (upstream `structuraldefaulting.Default`): a missing
/// property, or a `null` one whose schema is not nullable, gets its default; defaults are then
/// defaulted further inside. Array items and additionalProperties values that are `null` (and
/// not nullable) get the item/value default.
pub fn apply_schema_defaults(obj: &mut Value, schema: &Value) {
    let Some(s) = schema.as_object() else {
        return;
    };
    match obj {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(props) = props {
                for (k, ps) in props {
                    let Some(psm) = ps.as_object() else { continue };
                    let Some(def) = psm.get("default") else {
                        continue;
                    };
                    let missing = match m.get(k) {
                        None => true,
                        Some(v) => is_non_nullable_null(v, psm),
                    };
                    if missing {
                        m.insert(k.clone(), def.clone());
                    }
                }
            }
            let ap = s.get("additionalProperties").and_then(Value::as_object);
            for (k, v) in m.iter_mut() {
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    apply_schema_defaults(v, ps);
                } else if let Some(ap) = ap {
                    if let Some(def) = ap.get("default")
                        && is_non_nullable_null(v, ap)
                    {
                        *v = def.clone();
                    }
                    apply_schema_defaults(v, &Value::Object(ap.clone()));
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items").and_then(Value::as_object) {
                let item_schema = Value::Object(is.clone());
                for it in items.iter_mut() {
                    if let Some(def) = is.get("default")
                        && is_non_nullable_null(it, is)
                    {
                        *it = def.clone();
                    }
                    apply_schema_defaults(it, &item_schema);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Scale subresource
// ---------------------------------------------------------------------------

/// `spec.versions[*].subresources.scale`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CrdScale {
    /// `.spec.replicas`.
    pub spec_replicas_path: String,
    /// `.status.replicas`.
    pub status_replicas_path: String,
    /// `.status.selector` (a string field holding a serialized label selector).
    pub label_selector_path: Option<String>,
}

fn path_fields(p: &str) -> Vec<&str> {
    p.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

/// `unstructured.NestedFieldNoCopy`: Ok(None) when missing, Err when a parent is not an object.
fn nested<'a>(obj: &'a Value, fields: &[&str]) -> Result<Option<&'a Value>, ()> {
    let mut cur = obj;
    for f in fields {
        match cur {
            Value::Object(m) => match m.get(*f) {
                Some(v) => cur = v,
                None => return Ok(None),
            },
            Value::Null => return Ok(None),
            _ => return Err(()),
        }
    }
    Ok(Some(cur))
}

fn nested_i64(obj: &Value, path: &str) -> Option<i64> {
    match nested(obj, &path_fields(path)) {
        Ok(None) => Some(0),
        Ok(Some(v)) => v.as_i64(),
        Err(()) => None,
    }
}

/// The `autoscaling/v1` `Scale` of a custom object, or None when a replicas field is not an
/// integer (or the selector not a string): upstream answers 500 then.
pub fn scale_from(obj: &Value, scale: &CrdScale) -> Option<Value> {
    let spec = nested_i64(obj, &scale.spec_replicas_path)?;
    let status = nested_i64(obj, &scale.status_replicas_path)?;
    let selector = match scale
        .label_selector_path
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => String::new(),
        Some(p) => match nested(obj, &path_fields(p)) {
            Ok(None) => String::new(),
            Ok(Some(Value::String(s))) => s.clone(),
            _ => return None,
        },
    };
    let meta = obj.get("metadata");
    let get = |k: &str| meta.and_then(|m| m.get(k)).cloned();
    let mut m = Map::new();
    for k in ["name", "namespace", "uid", "resourceVersion"] {
        if let Some(v) = get(k).filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
            m.insert(k.to_string(), v);
        }
    }
    m.insert(
        "creationTimestamp".to_string(),
        get("creationTimestamp").unwrap_or(Value::Null),
    );
    let mut spec_obj = Map::new();
    if spec as i32 != 0 {
        spec_obj.insert("replicas".into(), Value::from(spec as i32));
    }
    let mut status_obj = Map::new();
    status_obj.insert("replicas".into(), Value::from(status as i32));
    if !selector.is_empty() {
        status_obj.insert("selector".into(), Value::String(selector));
    }
    Some(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": Value::Object(m),
        "spec": Value::Object(spec_obj),
        "status": Value::Object(status_obj),
    }))
}

/// Write a Scale's `spec.replicas` into the custom object at `specReplicasPath`
/// (`unstructured.SetNestedField`: missing parents are created).
pub fn apply_scale(obj: &mut Value, replicas: i64, scale: &CrdScale) -> Result<(), String> {
    let fields = path_fields(&scale.spec_replicas_path);
    let Some((last, parents)) = fields.split_last() else {
        return Err("empty specReplicasPath".into());
    };
    let mut cur = obj;
    for (i, f) in parents.iter().enumerate() {
        let Value::Object(m) = cur else {
            return Err(format!(
                "value cannot be set because {} is not a map[string]interface{{}}",
                fields[..i].join(".")
            ));
        };
        let entry = m
            .entry(f.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        cur = entry;
    }
    let Value::Object(m) = cur else {
        return Err(format!(
            "value cannot be set because {} is not a map[string]interface{{}}",
            parents.join(".")
        ));
    };
    m.insert(last.to_string(), Value::from(replicas));
    Ok(())
}

// ---------------------------------------------------------------------------
// Printer columns (simple JSONPath)
// ---------------------------------------------------------------------------

/// `spec.versions[*].additionalPrinterColumns[*]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub column_type: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    /// `.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`.
    pub json_path: String,
}

#[derive(Debug, Clone, PartialEq)]
enum JpStep {
    Field(String),
    Index(i64),
    Wildcard,
    Filter {
        path: Vec<String>,
        op: Option<(bool, Value)>, // (equal?, literal)
    },
}

fn parse_jsonpath(p: &str) -> Option<Vec<JpStep>> {
    let p = p.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let s = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[s..i].iter().collect();
                if name == "*" {
                    steps.push(JpStep::Wildcard);
                } else if !name.is_empty() {
                    steps.push(JpStep::Field(name));
                }
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']')? + i;
                // a filter may contain ']' only inside quotes; find the matching ")]"
                let inner_end = if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i..].iter().collect();
                    i + rest.find(")]")? + 1
                } else {
                    close
                };
                let inner: String = chars[i + 1..inner_end].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(JpStep::Wildcard);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
                    let f = f.trim();
                    let (lhs, op) = if let Some((l, r)) = f.split_once("==") {
                        (l.trim(), Some((true, parse_literal(r.trim())?)))
                    } else if let Some((l, r)) = f.split_once("!=") {
                        (l.trim(), Some((false, parse_literal(r.trim())?)))
                    } else {
                        (f, None)
                    };
                    let lhs = lhs.strip_prefix('@')?;
                    let path = lhs
                        .split('.')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    steps.push(JpStep::Filter { path, op });
                } else if (inner.starts_with('\'') && inner.ends_with('\'')
                    || inner.starts_with('"') && inner.ends_with('"'))
                    && inner.len() >= 2
                {
                    steps.push(JpStep::Field(inner[1..inner.len() - 1].to_string()));
                } else {
                    steps.push(JpStep::Index(inner.parse().ok()?));
                }
                i = inner_end + 1;
            }
            _ => {
                // a leading bare name (`spec.replicas`)
                let s = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                steps.push(JpStep::Field(chars[s..i].iter().collect()));
            }
        }
    }
    Some(steps)
}

fn parse_literal(s: &str) -> Option<Value> {
    if (s.starts_with('"') && s.ends_with('"') || s.starts_with('\'') && s.ends_with('\''))
        && s.len() >= 2
    {
        return Some(Value::String(s[1..s.len() - 1].to_string()));
    }
    match s {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        "null" | "nil" => Some(Value::Null),
        _ => serde_json::from_str::<serde_json::Number>(s)
            .ok()
            .map(Value::Number),
    }
}

/// All results of a simple JSONPath, in order (missing keys give no result).
fn eval_jsonpath<'a>(obj: &'a Value, steps: &[JpStep]) -> Vec<&'a Value> {
    let mut cur: Vec<&Value> = vec![obj];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                JpStep::Field(f) => {
                    if let Some(x) = v.get(f.as_str()) {
                        next.push(x);
                    }
                }
                JpStep::Index(i) => {
                    if let Value::Array(a) = v {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        if idx >= 0
                            && let Some(x) = a.get(idx as usize)
                        {
                            next.push(x);
                        }
                    }
                }
                JpStep::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                JpStep::Filter { path, op } => {
                    if let Value::Array(a) = v {
                        for it in a {
                            let mut t = Some(it);
                            for p in path {
                                t = t.and_then(|x| x.get(p.as_str()));
                            }
                            let keep = match (t, op) {
                                (None, _) => false,
                                (Some(_), None) => true,
                                (Some(x), Some((eq, lit))) => json_equal(x, lit) == *eq,
                            };
                            if keep {
                                next.push(it);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

/// apimachinery `duration.HumanDuration` of a number of seconds.
fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The table cells of a custom object for `columns`, as kube-apiserver's CRD table convertor
/// builds them: the first JSONPath result, `null` when missing or of the wrong type; `string`
/// columns print any value Go-style (`map[a:b]`, `[a b]`); `date` columns are the object's age
/// relative to `now_rfc3339` (`5m`, `3d4h`; `<invalid>` when not a timestamp), exactly as the
/// server sends them.
pub fn printer_cells(obj: &Value, columns: &[PrinterColumn], now_rfc3339: &str) -> Vec<Value> {
    let now = parse_rfc3339(now_rfc3339);
    columns
        .iter()
        .map(|col| {
            let Some(steps) = parse_jsonpath(&col.json_path) else {
                return Value::Null;
            };
            let results = eval_jsonpath(obj, &steps);
            let Some(value) = results.first().copied() else {
                return Value::Null;
            };
            match col.column_type.as_str() {
                "string" => match value {
                    Value::String(s) => Value::String(s.clone()),
                    other => Value::String(go_plain_v(other)),
                },
                "integer" => match value {
                    Value::Number(n) => n
                        .as_i64()
                        .map(Value::from)
                        .or_else(|| n.as_f64().map(|f| Value::from(f as i64)))
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                },
                "number" => match value {
                    Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
                    _ => Value::Null,
                },
                "boolean" => match value {
                    Value::Bool(b) => Value::Bool(*b),
                    _ => Value::Null,
                },
                "date" => match value {
                    Value::String(s) => match (parse_rfc3339(s), now) {
                        (Some(t), Some(n)) => Value::String(human_duration(n - t)),
                        _ => Value::String("<invalid>".into()),
                    },
                    _ => Value::Null,
                },
                _ => Value::Null,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// CustomResourceDefinition parsing and validation
// ---------------------------------------------------------------------------

/// `spec.names` (and `status.acceptedNames`), with upstream's defaults applied
/// (`singular` = lower-case kind, `listKind` = kind + `List`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CrdNames {
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

/// One entry of `spec.versions`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrdVersionInfo {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub deprecated: bool,
    pub deprecation_warning: Option<String>,
    /// `schema.openAPIV3Schema`.
    pub schema: Option<Value>,
    /// `subresources.status` is set.
    pub status_subresource: bool,
    pub scale: Option<CrdScale>,
    pub additional_printer_columns: Vec<PrinterColumn>,
    /// `selectableFields[*].jsonPath`.
    pub selectable_fields: Vec<String>,
}

/// A parsed, validated CustomResourceDefinition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrdInfo {
    /// `metadata.name` (`<plural>.<group>`).
    pub name: String,
    pub group: String,
    pub names: CrdNames,
    /// `scope: Namespaced`.
    pub namespaced: bool,
    pub versions: Vec<CrdVersionInfo>,
    /// `spec.conversion.strategy` (`None` or `Webhook`).
    pub conversion_strategy: String,
}

impl CrdInfo {
    /// The version marked `storage: true`.
    pub fn storage_version(&self) -> Option<&CrdVersionInfo> {
        self.versions.iter().find(|v| v.storage)
    }

    /// A version by name.
    pub fn version(&self, name: &str) -> Option<&CrdVersionInfo> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// The served versions, in `spec.versions` order.
    pub fn served_versions(&self) -> impl Iterator<Item = &CrdVersionInfo> {
        self.versions.iter().filter(|v| v.served)
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_names(v: &Value) -> CrdNames {
    let kind = str_at(v, "kind").to_string();
    let mut singular = str_at(v, "singular").to_string();
    if singular.is_empty() {
        singular = kind.to_lowercase();
    }
    let mut list_kind = str_at(v, "listKind").to_string();
    if list_kind.is_empty() && !kind.is_empty() {
        list_kind = format!("{kind}List");
    }
    CrdNames {
        plural: str_at(v, "plural").to_string(),
        singular,
        kind,
        list_kind,
        short_names: strings_at(v, "shortNames"),
        categories: strings_at(v, "categories"),
    }
}

fn parse_version(v: &Value) -> CrdVersionInfo {
    let sub = v.get("subresources");
    let scale = sub
        .and_then(|s| s.get("scale"))
        .filter(|s| s.is_object())
        .map(|s| CrdScale {
            spec_replicas_path: str_at(s, "specReplicasPath").to_string(),
            status_replicas_path: str_at(s, "statusReplicasPath").to_string(),
            label_selector_path: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    let columns = match v.get("additionalPrinterColumns") {
        Some(Value::Array(cols)) => cols
            .iter()
            .map(|c| PrinterColumn {
                name: str_at(c, "name").to_string(),
                column_type: str_at(c, "type").to_string(),
                format: str_at(c, "format").to_string(),
                description: str_at(c, "description").to_string(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
                json_path: str_at(c, "jsonPath").to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let selectable = match v.get("selectableFields") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| str_at(f, "jsonPath").to_string())
            .collect(),
        _ => Vec::new(),
    };
    CrdVersionInfo {
        name: str_at(v, "name").to_string(),
        served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
        storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
        deprecated: v
            .get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        deprecation_warning: v
            .get("deprecationWarning")
            .and_then(Value::as_str)
            .map(str::to_string),
        schema: v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .filter(|s| s.is_object())
            .cloned(),
        status_subresource: sub
            .and_then(|s| s.get("status"))
            .is_some_and(|s| !s.is_null()),
        scale,
        additional_printer_columns: columns,
        selectable_fields: selectable,
    }
}

/// A rough `%#v` of the internal versions slice (pointers shown as a fixed address).
fn go_versions_value(versions: &[CrdVersionInfo]) -> BadValue {
    if versions.is_empty() {
        return BadValue::Raw("[]apiextensions.CustomResourceDefinitionVersion(nil)".into());
    }
    let items: Vec<String> = versions
        .iter()
        .map(|v| {
            format!(
                "apiextensions.CustomResourceDefinitionVersion{{Name:{}, Served:{}, Storage:{}, Deprecated:{}, DeprecationWarning:(*string)({}), Schema:(*apiextensions.CustomResourceValidation)({}), Subresources:(*apiextensions.CustomResourceSubresources)({}), AdditionalPrinterColumns:[]apiextensions.CustomResourceColumnDefinition({}), SelectableFields:[]apiextensions.SelectableField({})}}",
                go_quote(&v.name),
                v.served,
                v.storage,
                v.deprecated,
                if v.deprecation_warning.is_some() { "0xc000000000" } else { "nil" },
                if v.schema.is_some() { "0xc000000000" } else { "nil" },
                if v.status_subresource || v.scale.is_some() { "0xc000000000" } else { "nil" },
                if v.additional_printer_columns.is_empty() { "nil" } else { "..." },
                if v.selectable_fields.is_empty() { "nil" } else { "..." },
            )
        })
        .collect();
    BadValue::Raw(format!(
        "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
        items.join(", ")
    ))
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// The JSON key → Go field name of JSONSchemaProps keys allowed at the root when the status
/// subresource is enabled.
const ROOT_ALLOWED_WITH_STATUS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
];

fn is_zero_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(_) => false,
    }
}

const INT_OR_STRING_ANY_OF: &str = r#"[{"type":"integer"},{"type":"string"}]"#;

fn is_int_or_string_any_of(v: Option<&Value>) -> bool {
    let expected: Value = serde_json::from_str(INT_OR_STRING_ANY_OF).unwrap_or(Value::Null);
    v == Some(&expected)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// `ValidateStructural` (invariants part) on a JSON schema.
fn structural_invariants(s: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = s.as_object() else { return };
    let ty = str_at(s, "type");
    let embedded = flag(m, "x-kubernetes-embedded-resource");
    let preserve = flag(m, "x-kubernetes-preserve-unknown-fields");
    let ios = flag(m, "x-kubernetes-int-or-string");
    if ty == "array" && m.get("items").is_none() {
        errs.push(FieldError::required(
            &format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(items) = m.get("items").filter(|i| i.is_object()) {
        structural_invariants(items, Level::Item, &format!("{path}.items"), errs);
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, v) in props {
            structural_invariants(
                v,
                Level::Field,
                &key(&format!("{path}.properties"), k),
                errs,
            );
        }
    }
    if let Some(ap) = m.get("additionalProperties") {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                &format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if ap.is_object() {
            structural_invariants(
                ap,
                Level::Field,
                &format!("{path}.additionalProperties"),
                errs,
            );
        }
    }
    if ios && preserve {
        errs.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            BadValue::Json(Value::Bool(true)),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if ios && embedded {
        errs.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-embedded-resource"),
            BadValue::Json(Value::Bool(true)),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    // value validation
    let skip_any_of = is_int_or_string_any_of(m.get("anyOf"));
    let skip_first_all_of_any_of = m
        .get("allOf")
        .and_then(|a| a.get(0))
        .is_some_and(|f| is_int_or_string_any_of(f.get("anyOf")));
    value_validation(m, skip_any_of, skip_first_all_of_any_of, path, errs);

    let check_metadata = lvl == Level::Root || embedded;
    if embedded && ty != "object" {
        let p = format!("{path}.type");
        if ty.is_empty() {
            errs.push(FieldError::required(
                &p,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid(
                &p,
                BadValue::Json(Value::String(ty.into())),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !ios && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&format!("{path}.type"), detail));
    }
    if embedded && m.contains_key("additionalProperties") {
        errs.push(FieldError::forbidden(
            &format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(FieldError::invalid(
            &format!("{path}.type"),
            BadValue::Json(Value::String(ty.into())),
            "must be object at the root",
        ));
    }
    let props = m.get("properties").and_then(Value::as_object);
    if check_metadata && let Some(props) = props {
        for (k, want) in [
            ("kind", "string"),
            ("apiVersion", "string"),
            ("metadata", "object"),
        ] {
            if let Some(p) = props.get(k) {
                let t = str_at(p, "type");
                if t != want {
                    errs.push(FieldError::invalid(
                        &format!("{}.type", key(&format!("{path}.properties"), k)),
                        BadValue::Json(Value::String(t.into())),
                        format!("must be {want}"),
                    ));
                }
            }
        }
    }
    if lvl == Level::Root
        && let Some(meta) = props
            .and_then(|p| p.get("metadata"))
            .and_then(Value::as_object)
    {
        let mut rest = meta.clone();
        rest.shift_remove("type");
        rest.shift_remove("default");
        if let Some(Value::Object(mp)) = rest.get("properties") {
            let only_names = mp.keys().all(|k| k == "name" || k == "generateName");
            if only_names {
                rest.shift_remove("properties");
            }
        }
        if !rest.is_empty() {
            errs.push(FieldError::forbidden(
                &key(&format!("{path}.properties"), "metadata"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if embedded && !preserve && props.is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            &format!("{path}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn value_validation(
    m: &Map<String, Value>,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if !skip_any_of && let Some(Value::Array(a)) = m.get("anyOf") {
        for (i, v) in a.iter().enumerate() {
            nested_value_validation(v, false, &format!("{path}.anyOf[{i}]"), errs);
        }
    }
    if let Some(Value::Array(a)) = m.get("allOf") {
        for (i, v) in a.iter().enumerate() {
            nested_value_validation(
                v,
                skip_first_all_of_any_of && i == 0,
                &format!("{path}.allOf[{i}]"),
                errs,
            );
        }
    }
    if let Some(Value::Array(a)) = m.get("oneOf") {
        for (i, v) in a.iter().enumerate() {
            nested_value_validation(v, false, &format!("{path}.oneOf[{i}]"), errs);
        }
    }
    if let Some(not) = m.get("not") {
        nested_value_validation(not, false, &format!("{path}.not"), errs);
    }
    if let Some(Value::String(p)) = m.get("pattern")
        && !p.is_empty()
        && let Err(e) = Regex::new(p)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.pattern"),
            BadValue::Json(Value::String(p.clone())),
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

fn nested_value_validation(v: &Value, skip_any_of: bool, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = v.as_object() else { return };
    value_validation(m, skip_any_of, false, path, errs);
    if let Some(items) = m.get("items") {
        nested_value_validation(items, false, &format!("{path}.items"), errs);
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, p) in props {
            nested_value_validation(p, false, &key(&format!("{path}.properties"), k), errs);
        }
    }
    let forbid = |errs: &mut Vec<FieldError>, k: &str, detail: &str| {
        errs.push(FieldError::forbidden(&format!("{path}.{k}"), detail));
    };
    if !str_at(v, "type").is_empty() {
        forbid(errs, "type", "must be empty to be structural");
    }
    if m.contains_key("additionalProperties") {
        forbid(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if m.contains_key("default") {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if !str_at(v, "title").is_empty() {
        forbid(errs, "title", "must be empty to be structural");
    }
    if !str_at(v, "description").is_empty() {
        forbid(errs, "description", "must be empty to be structural");
    }
    if flag(m, "nullable") {
        forbid(errs, "nullable", "must be false to be structural");
    }
    if flag(m, "x-kubernetes-preserve-unknown-fields") {
        forbid(
            errs,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if flag(m, "x-kubernetes-embedded-resource") {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if flag(m, "x-kubernetes-int-or-string") {
        forbid(
            errs,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if m.get("x-kubernetes-list-map-keys")
        .is_some_and(|k| !is_zero_json(k))
    {
        forbid(
            errs,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if m.get("x-kubernetes-list-type")
        .is_some_and(|k| !k.is_null())
    {
        forbid(
            errs,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if m.get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.contains_key("metadata"))
    {
        errs.push(FieldError::forbidden(
            &key(&format!("{path}.properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// `structuraldefaulting.ValidateDefaults` (without CEL).
fn validate_defaults(s: &Value, path: &str, inside_meta: bool, errs: &mut Vec<FieldError>) {
    let Some(m) = s.as_object() else { return };
    let embedded = flag(m, "x-kubernetes-embedded-resource");
    let inside_meta = inside_meta && !embedded;
    if let Some(def) = m.get("default")
        && !inside_meta
    {
        let dpath = format!("{path}.default");
        let mut pruned = def.clone();
        let mut p = Pruner { pruned: Vec::new() };
        p.prune("", &mut pruned, Some(m), embedded);
        if pruned != *def {
            errs.push(FieldError::invalid(
                &dpath,
                BadValue::Json(def.clone()),
                "must not have unknown fields",
            ));
        } else {
            errs.extend(validate_at(Some(&dpath), def, s));
        }
    }
    if let Some(items) = m.get("items").filter(|i| i.is_object()) {
        validate_defaults(items, &format!("{path}.items"), inside_meta, errs);
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, p) in props {
            let sub_meta =
                inside_meta || embedded && matches!(k.as_str(), "metadata" | "apiVersion" | "kind");
            validate_defaults(p, &key(&format!("{path}.properties"), k), sub_meta, errs);
        }
    }
}

#[derive(Clone)]
struct SchemaCtx {
    allow_defaults: bool,
    disallow_reason: String,
    inside_resource_meta: bool,
}

const OPENAPI_V3_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// `ValidateCustomResourceDefinitionOpenAPISchema` (without CEL compilation).
fn openapi_schema_checks(
    s: &Value,
    path: &str,
    ctx: &SchemaCtx,
    is_root: bool,
    errs: &mut Vec<FieldError>,
) {
    let Some(m) = s.as_object() else { return };
    let ty = str_at(s, "type");
    let p = |k: &str| format!("{path}.{k}");
    // specStandardValidatorV3
    if !ty.is_empty() && !OPENAPI_V3_TYPES.contains(&ty) {
        let supported: Vec<String> = OPENAPI_V3_TYPES.iter().map(|s| s.to_string()).collect();
        errs.push(FieldError::not_supported(
            &p("type"),
            BadValue::Json(Value::String(ty.into())),
            &supported,
        ));
    }
    if m.contains_key("default") && !ctx.allow_defaults {
        let mut detail = "must not be set".to_string();
        if !ctx.disallow_reason.is_empty() {
            detail.push(' ');
            detail.push_str(&ctx.disallow_reason);
        }
        errs.push(FieldError::forbidden(&p("default"), detail));
    }
    for (k, what) in [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ] {
        if m.get(k).is_some_and(|v| !is_zero_json(v)) {
            errs.push(FieldError::forbidden(&p(k), what));
        }
    }
    if ty == "null" {
        errs.push(FieldError::forbidden(
            &p("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if m.get("items").is_some_and(Value::is_array) {
        errs.push(FieldError::forbidden(
            &p("items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.inside_resource_meta && flag(m, "x-kubernetes-embedded-resource") {
        errs.push(FieldError::forbidden(
            &p("x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if flag(m, "uniqueItems") {
        errs.push(FieldError::forbidden(
            &p("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let props = m
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty());
    if let Some(ap) = m.get("additionalProperties") {
        if props.is_some() && (matches!(ap, Value::Bool(false)) || ap.is_object()) {
            errs.push(FieldError::forbidden(
                &p("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let mut sub = ctx.clone();
        if ctx.inside_resource_meta {
            sub.allow_defaults = false;
            sub.disallow_reason = "inside additionalProperties applying to object metadata".into();
        }
        openapi_schema_checks(ap, &p("additionalProperties"), &sub, false, errs);
    }
    if let Some(props) = props {
        let embedded = flag(m, "x-kubernetes-embedded-resource");
        for (k, ps) in props {
            let mut sub = ctx.clone();
            if (is_root || embedded) && matches!(k.as_str(), "metadata" | "kind" | "apiVersion") {
                sub.inside_resource_meta = true;
                if is_root {
                    sub.allow_defaults = false;
                    sub.disallow_reason = format!("in top-level {k}");
                }
            }
            openapi_schema_checks(ps, &key(&p("properties"), k), &sub, false, errs);
        }
    }
    if let Some(not) = m.get("not") {
        openapi_schema_checks(not, &p("not"), ctx, false, errs);
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(a)) = m.get(junctor) {
            for (i, v) in a.iter().enumerate() {
                openapi_schema_checks(v, &format!("{path}.{junctor}[{i}]"), ctx, false, errs);
            }
        }
    }
    if let Some(items) = m.get("items").filter(|i| i.is_object()) {
        openapi_schema_checks(items, &p("items"), ctx, false, errs);
    }
    if m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(FieldError::invalid(
            &p("x-kubernetes-preserve-unknown-fields"),
            BadValue::Json(Value::Bool(false)),
            "must be true or undefined",
        ));
    }
    let map_type = m.get("x-kubernetes-map-type").and_then(Value::as_str);
    if map_type.is_some() && ty != "object" {
        if ty.is_empty() {
            errs.push(FieldError::required(
                &p("type"),
                "must be object if x-kubernetes-map-type is specified",
            ));
        } else {
            errs.push(FieldError::invalid(
                &p("type"),
                BadValue::Json(Value::String(ty.into())),
                "must be object if x-kubernetes-map-type is specified",
            ));
        }
    }
    if let Some(mt) = map_type
        && mt != "atomic"
        && mt != "granular"
    {
        errs.push(FieldError::not_supported(
            &p("x-kubernetes-map-type"),
            BadValue::Json(Value::String(mt.into())),
            &["atomic".into(), "granular".into()],
        ));
    }
    let list_type = m.get("x-kubernetes-list-type").and_then(Value::as_str);
    let item_schema = m.get("items").filter(|i| i.is_object());
    if list_type.is_some() && ty != "array" {
        if ty.is_empty() {
            errs.push(FieldError::required(
                &p("type"),
                "must be array if x-kubernetes-list-type is specified",
            ));
        } else {
            errs.push(FieldError::invalid(
                &p("type"),
                BadValue::Json(Value::String(ty.into())),
                "must be array if x-kubernetes-list-type is specified",
            ));
        }
    } else if list_type == Some("set")
        && let Some(is) = item_schema
    {
        match str_at(is, "type") {
            "array" => {
                if let Some(lt) = is.get("x-kubernetes-list-type").and_then(Value::as_str)
                    && lt != "atomic"
                {
                    errs.push(FieldError::invalid(
                        &format!("{path}.items.x-kubernetes-list-type"),
                        BadValue::Json(Value::String(lt.into())),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
            }
            "object"
                if is.get("x-kubernetes-map-type").and_then(Value::as_str) != Some("atomic") =>
            {
                errs.push(FieldError::invalid(
                    &format!("{path}.items.x-kubernetes-map-type"),
                    BadValue::Json(Value::Null),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
            _ => {}
        }
    }
    if let Some(lt) = list_type
        && !matches!(lt, "atomic" | "set" | "map")
    {
        errs.push(FieldError::not_supported(
            &p("x-kubernetes-list-type"),
            BadValue::Json(Value::String(lt.into())),
            &["atomic".into(), "set".into(), "map".into()],
        ));
    }
    let map_keys = strings_at(s, "x-kubernetes-list-map-keys");
    if !map_keys.is_empty() {
        match list_type {
            None => errs.push(FieldError::required(
                &p("x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some(lt) if lt != "map" => errs.push(FieldError::invalid(
                &p("x-kubernetes-list-type"),
                BadValue::Json(Value::String(lt.into())),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            _ => {}
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            errs.push(FieldError::required(
                &p("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match item_schema {
            None => errs.push(FieldError::required(
                &p("items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(is) if str_at(is, "type") != "object" => errs.push(FieldError::invalid(
                &format!("{path}.items.type"),
                BadValue::Json(Value::String(str_at(is, "type").into())),
                "must be object if parent array's x-kubernetes-list-type is map",
            )),
            Some(is) => {
                let iprops = is.get("properties").and_then(Value::as_object);
                let mut seen: Vec<&str> = Vec::new();
                let keys_value = BadValue::Raw(format!(
                    "[]string{{{}}}",
                    map_keys
                        .iter()
                        .map(|k| go_quote(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                for k in &map_keys {
                    match iprops.and_then(|p| p.get(k)) {
                        Some(ks) => {
                            if matches!(str_at(ks, "type"), "array" | "object") {
                                errs.push(FieldError::invalid(
                                    &format!("{}.type", key(&format!("{path}.items.properties"), k)),
                                    BadValue::Json(Value::String("object".into())),
                                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                ));
                            }
                        }
                        None => errs.push(FieldError::invalid(
                            &p("x-kubernetes-list-map-keys"),
                            keys_value.clone(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if seen.contains(&k.as_str()) {
                        errs.push(FieldError::invalid(
                            &p("x-kubernetes-list-map-keys"),
                            keys_value.clone(),
                            "must not contain duplicate entries",
                        ));
                    }
                    seen.push(k);
                }
            }
        }
    }
    // requireMapListKeysMapSetValidation
    if let (Some(lt @ ("set" | "map")), Some(is)) = (list_type, item_schema) {
        if is.get("nullable") == Some(&Value::Bool(true)) {
            errs.push(FieldError::forbidden(
                &format!("{path}.items.nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required = strings_at(is, "required");
            for k in &map_keys {
                let Some(ks) = is.get("properties").and_then(|p| p.get(k)) else {
                    continue;
                };
                let kp = key(&format!("{path}.items.properties"), k);
                if !required.contains(k) && ks.get("default").is_none() {
                    errs.push(FieldError::required(
                        &format!("{kp}.default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if ks.get("nullable") == Some(&Value::Bool(true)) {
                    errs.push(FieldError::forbidden(
                        &format!("{kp}.nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
    if let Some(Value::Array(rules)) = m.get("x-kubernetes-validations") {
        for (i, r) in rules.iter().enumerate() {
            let rp = format!("{path}.x-kubernetes-validations[{i}]");
            let rule = str_at(r, "rule");
            let msg = str_at(r, "message");
            if rule.trim().is_empty() {
                errs.push(FieldError::required(
                    &format!("{rp}.rule"),
                    "rule is not specified",
                ));
            } else if !msg.is_empty() && msg.trim().is_empty() {
                errs.push(FieldError::invalid(
                    &format!("{rp}.message"),
                    BadValue::Json(Value::String(msg.into())),
                    "message must be non-empty if specified",
                ));
            } else if msg.trim().contains(['\n', '\r']) {
                errs.push(FieldError::invalid(
                    &format!("{rp}.message"),
                    BadValue::Json(Value::String(msg.into())),
                    "message must not contain line breaks",
                ));
            } else if rule.trim().contains(['\n', '\r']) && msg.trim().is_empty() {
                errs.push(FieldError::required(
                    &format!("{rp}.message"),
                    "message must be specified if rule contains line breaks",
                ));
            }
            if let Some(reason) = r.get("reason").and_then(Value::as_str) {
                let supported = [
                    "FieldValueDuplicate",
                    "FieldValueForbidden",
                    "FieldValueInvalid",
                    "FieldValueRequired",
                ];
                if !supported.contains(&reason) {
                    errs.push(FieldError::not_supported(
                        &format!("{rp}.reason"),
                        BadValue::Json(Value::String(reason.into())),
                        &supported.map(String::from),
                    ));
                }
            }
        }
    }
}

/// `validateCustomResourceDefinitionValidation` for one version's schema.
fn validate_schema(schema: &Value, status_enabled: bool, path: &str, errs: &mut Vec<FieldError>) {
    let sp = format!("{path}.openAPIV3Schema");
    let Some(m) = schema.as_object() else {
        errs.push(FieldError::invalid(
            &sp,
            BadValue::Json(schema.clone()),
            "must be an object",
        ));
        return;
    };
    let mut all: Vec<FieldError> = Vec::new();
    if status_enabled {
        for (k, v) in m {
            if is_zero_json(v) {
                continue;
            }
            if k == "type" {
                if v.as_str() != Some("object") {
                    all.push(FieldError::invalid(
                        &format!("{sp}.type"),
                        BadValue::Json(v.clone()),
                        "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                    ));
                    break;
                }
                continue;
            }
            if !ROOT_ALLOWED_WITH_STATUS.contains(&k.as_str()) {
                all.push(FieldError::invalid(
                    &sp,
                    BadValue::Raw("apiextensions.JSONSchemaProps{…}".into()),
                    "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled",
                ));
                break;
            }
        }
    }
    if flag(m, "nullable") {
        all.push(FieldError::forbidden(
            &format!("{sp}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut structural: Vec<FieldError> = Vec::new();
    structural_invariants(schema, Level::Root, &sp, &mut structural);
    structural.sort_by_key(|e| e.to_string());
    if !structural.is_empty() {
        all.extend(structural);
    } else {
        let mut d = Vec::new();
        validate_defaults(schema, &sp, false, &mut d);
        all.extend(d);
    }
    let ctx = SchemaCtx {
        allow_defaults: true,
        disallow_reason: String::new(),
        inside_resource_meta: false,
    };
    openapi_schema_checks(schema, &sp, &ctx, true, &mut all);
    errs.extend(all);
}

fn validate_simple_json_path(s: &str, path: &str) -> Option<FieldError> {
    let v = BadValue::Json(Value::String(s.into()));
    if s.is_empty() {
        Some(FieldError::invalid(path, v, "must not be empty"))
    } else if !s.starts_with('.') {
        Some(FieldError::invalid(
            path,
            v,
            "must be a simple json path starting with .",
        ))
    } else {
        None
    }
}

fn validate_subresources(v: &CrdVersionInfo, path: &str, errs: &mut Vec<FieldError>) {
    let Some(scale) = &v.scale else { return };
    let check =
        |p: &str, name: &str, prefixes: &[&str], detail: &str, errs: &mut Vec<FieldError>| {
            let fp = format!("{path}.scale.{name}");
            if let Some(e) = validate_simple_json_path(p, &fp) {
                errs.push(e);
            } else if !prefixes.iter().any(|pre| p.starts_with(pre)) {
                errs.push(FieldError::invalid(
                    &fp,
                    BadValue::Json(Value::String(p.into())),
                    detail,
                ));
            }
        };
    if scale.spec_replicas_path.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.scale.specReplicasPath"),
            "",
        ));
    } else {
        check(
            &scale.spec_replicas_path,
            "specReplicasPath",
            &[".spec."],
            "should be a json path under .spec",
            errs,
        );
    }
    if scale.status_replicas_path.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.scale.statusReplicasPath"),
            "",
        ));
    } else {
        check(
            &scale.status_replicas_path,
            "statusReplicasPath",
            &[".status."],
            "should be a json path under .status",
            errs,
        );
    }
    if let Some(l) = scale
        .label_selector_path
        .as_deref()
        .filter(|l| !l.is_empty())
    {
        check(
            l,
            "labelSelectorPath",
            &[".spec.", ".status."],
            "should be a json path under either .spec or .status",
            errs,
        );
    }
}

fn validate_column(c: &PrinterColumn, path: &str, errs: &mut Vec<FieldError>) {
    const TYPES: &str = "boolean,date,integer,number,string";
    const FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
    if c.name.is_empty() {
        errs.push(FieldError::required(&format!("{path}.name"), ""));
    }
    if c.column_type.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.type"),
            format!("must be one of {TYPES}"),
        ));
    } else if !TYPES.split(',').any(|t| t == c.column_type) {
        errs.push(FieldError::invalid(
            &format!("{path}.type"),
            BadValue::Json(Value::String(c.column_type.clone())),
            format!("must be one of {TYPES}"),
        ));
    }
    if !c.format.is_empty() && !FORMATS.split(',').any(|t| t == c.format) {
        errs.push(FieldError::invalid(
            &format!("{path}.format"),
            BadValue::Json(Value::String(c.format.clone())),
            format!("must be one of {FORMATS}"),
        ));
    }
    if c.json_path.is_empty() {
        errs.push(FieldError::required(&format!("{path}.JSONPath"), ""));
    } else if let Some(e) = validate_simple_json_path(&c.json_path, &format!("{path}.JSONPath")) {
        errs.push(e);
    }
}

fn validate_selectable_fields(v: &CrdVersionInfo, path: &str, errs: &mut Vec<FieldError>) {
    let sp = format!("{path}.selectableFields");
    let Some(schema) = &v.schema else {
        errs.push(FieldError::invalid(
            &sp,
            BadValue::Json(Value::String(String::new())),
            "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
        ));
        return;
    };
    let mut unique: Vec<String> = Vec::new();
    for (i, f) in v.selectable_fields.iter().enumerate() {
        let fp = format!("{sp}[{i}].jsonPath");
        if f.is_empty() {
            errs.push(FieldError::required(&fp, ""));
            continue;
        }
        let val = BadValue::Json(Value::String(f.clone()));
        let fields = path_fields(f);
        let mut cur = Some(schema);
        for seg in &fields {
            cur = cur
                .and_then(|s| s.get("properties"))
                .and_then(|p| p.get(*seg));
        }
        let Some(target) = cur.filter(|_| f.starts_with('.') && !fields.is_empty()) else {
            errs.push(FieldError::invalid(
                &fp,
                val,
                "is an invalid path: does not refer to a valid field",
            ));
            continue;
        };
        if fields.first() == Some(&"metadata") {
            errs.push(FieldError::invalid(
                &fp,
                val.clone(),
                "must not point to fields in metadata",
            ));
        }
        if !matches!(str_at(target, "type"), "string" | "boolean" | "integer") {
            errs.push(FieldError::invalid(
                &fp,
                val.clone(),
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            ));
        }
        let norm = fields.join(".");
        if unique.contains(&norm) {
            errs.push(FieldError::duplicate(&fp, val));
        } else {
            unique.push(norm);
        }
    }
    if unique.len() > 8 {
        errs.push(FieldError::too_many(&sp, unique.len() as i64, 8));
    }
}

fn validate_deprecation_warning(v: &CrdVersionInfo) -> Vec<String> {
    let Some(w) = &v.deprecation_warning else {
        return Vec::new();
    };
    if !v.deprecated {
        return vec!["can only be set for deprecated versions".into()];
    }
    let mut out = Vec::new();
    if w.len() > 256 {
        out.push("must be <= 256 characters long".into());
    }
    if w.is_empty() {
        out.push("must not be an empty string".into());
    }
    for (i, c) in w.char_indices() {
        if c.is_control() {
            out.push(format!(
                "must only contain printable UTF-8 characters; non-printable character found at index {i}"
            ));
            break;
        }
    }
    out
}

fn has_defaults(s: &Value) -> bool {
    match s {
        Value::Object(m) => m.contains_key("default") || m.values().any(has_defaults),
        Value::Array(a) => a.iter().any(has_defaults),
        _ => false,
    }
}

/// Parse and validate a CustomResourceDefinition (`apiextensions.k8s.io/v1`) the way
/// kube-apiserver does on create (after defaulting `singular`, `listKind` and the conversion
/// strategy). Errors carry upstream's paths (`spec.versions[0].schema.openAPIV3Schema…`) and
/// messages; Go struct values in messages are approximated.
pub fn parse_crd(crd: &Value) -> Result<CrdInfo, Vec<FieldError>> {
    let mut errs: Vec<FieldError> = Vec::new();
    let empty = Value::Object(Map::new());
    let spec = crd.get("spec").unwrap_or(&empty);
    let meta = crd.get("metadata").unwrap_or(&empty);
    let name = str_at(meta, "name").to_string();
    let group = str_at(spec, "group").to_string();
    let names = parse_names(spec.get("names").unwrap_or(&empty));
    let scope = str_at(spec, "scope").to_string();
    let versions: Vec<CrdVersionInfo> = match spec.get("versions") {
        Some(Value::Array(vs)) => vs.iter().map(parse_version).collect(),
        _ => Vec::new(),
    };
    let raw_versions: Vec<Value> = match spec.get("versions") {
        Some(Value::Array(vs)) => vs.clone(),
        _ => Vec::new(),
    };
    let preserve_unknown = spec
        .get("preserveUnknownFields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let conversion = spec.get("conversion").filter(|c| c.is_object());
    let strategy = conversion
        .map(|c| str_at(c, "strategy").to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "None".to_string());

    // metadata
    if name.is_empty() {
        if str_at(meta, "generateName").is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        let mut msgs = dns1123_subdomain_errors(&name);
        if name != format!("{}.{}", names.plural, group) {
            msgs.push("must be spec.names.plural+\".\"+spec.group".into());
        }
        for m in msgs {
            errs.push(FieldError::invalid(
                "metadata.name",
                BadValue::Json(Value::String(name.clone())),
                m,
            ));
        }
    }

    // spec.group
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        let e = dns1123_subdomain_errors(&group);
        if !e.is_empty() {
            errs.push(FieldError::invalid(
                "spec.group",
                BadValue::Json(Value::String(group.clone())),
                e.join(","),
            ));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                BadValue::Json(Value::String(group.clone())),
                "should be a domain with at least one dot",
            ));
        }
    }

    // spec.scope
    if scope.is_empty() {
        errs.push(FieldError::required("spec.scope", ""));
    } else if scope != "Cluster" && scope != "Namespaced" {
        errs.push(FieldError::not_supported(
            "spec.scope",
            BadValue::Json(Value::String(scope.clone())),
            &["Cluster".into(), "Namespaced".into()],
        ));
    }

    // schemas are required
    for (i, v) in versions.iter().enumerate() {
        if v.schema.is_none() {
            errs.push(FieldError::required(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
    if versions
        .iter()
        .filter_map(|v| v.schema.as_ref())
        .any(has_defaults)
        && preserve_unknown
    {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            BadValue::Json(Value::Bool(true)),
            "must be false in order to use defaults in the schema",
        ));
    }

    // versions
    let mut storage = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vp = format!("spec.versions[{i}]");
        if v.storage {
            storage += 1;
        }
        if seen.contains(&v.name.as_str()) {
            unique = false;
        } else {
            seen.push(&v.name);
        }
        let e = dns1035_label_errors(&v.name);
        if !e.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{vp}.name"),
                BadValue::Json(Value::String(v.name.clone())),
                e.join(","),
            ));
        }
        for m in validate_deprecation_warning(v) {
            errs.push(FieldError::invalid(
                &format!("{vp}.deprecationWarning"),
                BadValue::Json(
                    v.deprecation_warning
                        .clone()
                        .map(Value::String)
                        .unwrap_or(Value::Null),
                ),
                m,
            ));
        }
        if let Some(schema) = raw_versions[i]
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
        {
            validate_schema(
                schema,
                v.status_subresource,
                &format!("{vp}.schema"),
                &mut errs,
            );
        }
        validate_subresources(v, &format!("{vp}.subresources"), &mut errs);
        for (j, c) in v.additional_printer_columns.iter().enumerate() {
            validate_column(c, &format!("{vp}.additionalPrinterColumns[{j}]"), &mut errs);
        }
        if !v.selectable_fields.is_empty() {
            validate_selectable_fields(v, &vp, &mut errs);
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            "spec.versions",
            go_versions_value(&versions),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            go_versions_value(&versions),
            "must have exactly one version marked as storage version",
        ));
    }

    // names
    for (v, p) in [
        (&names.plural, "plural"),
        (&names.singular, "singular"),
        (&names.kind, "kind"),
        (&names.list_kind, "listKind"),
    ] {
        if v.is_empty() {
            errs.push(FieldError::required(&format!("spec.names.{p}"), ""));
        }
    }
    errs.extend(validate_names(&names, "spec.names"));

    // conversion
    if strategy != "None" && strategy != "Webhook" {
        errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            BadValue::Json(Value::String(strategy.clone())),
            &["None".into(), "Webhook".into()],
        ));
    }
    let webhook = conversion
        .and_then(|c| c.get("webhook"))
        .filter(|w| w.is_object());
    if strategy == "Webhook" {
        if preserve_unknown {
            errs.push(FieldError::invalid(
                "spec.conversion.strategy",
                BadValue::Json(Value::String(strategy.clone())),
                "must be None if spec.preserveUnknownFields is true",
            ));
        }
        match webhook
            .and_then(|w| w.get("clientConfig"))
            .filter(|c| c.is_object())
        {
            None => errs.push(FieldError::required(
                "spec.conversion.webhookClientConfig",
                "required when strategy is set to Webhook",
            )),
            Some(cc) => {
                if cc.get("url").is_some() == cc.get("service").is_some() {
                    errs.push(FieldError::required(
                        "spec.conversion.webhookClientConfig",
                        "exactly one of url or service is required",
                    ));
                }
            }
        }
        let crv = webhook
            .map(|w| strings_at(w, "conversionReviewVersions"))
            .unwrap_or_default();
        if crv.is_empty() {
            errs.push(FieldError::required(
                "spec.conversion.conversionReviewVersions",
                "",
            ));
        } else if !crv.iter().any(|v| v == "v1" || v == "v1beta1") {
            errs.push(FieldError::invalid(
                "spec.conversion.conversionReviewVersions",
                BadValue::Raw(format!(
                    "[]string{{{}}}",
                    crv.iter()
                        .map(|k| go_quote(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                "must include at least one of v1, v1beta1",
            ));
        }
    } else if webhook.is_some() {
        errs.push(FieldError::forbidden(
            "spec.conversion.webhookClientConfig",
            "should not be set when strategy is not set to Webhook",
        ));
    }
    if preserve_unknown {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            BadValue::Json(Value::Bool(true)),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(CrdInfo {
        name,
        group,
        names,
        namespaced: scope == "Namespaced",
        versions,
        conversion_strategy: strategy,
    })
}

/// `ValidateCustomResourceDefinitionNames`.
fn validate_names(n: &CrdNames, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let s = |x: &str| BadValue::Json(Value::String(x.to_string()));
    for (v, p) in [(&n.plural, "plural"), (&n.singular, "singular")] {
        let e = dns1035_label_errors(v);
        if !v.is_empty() && !e.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.{p}"),
                s(v),
                e.join(","),
            ));
        }
    }
    for (v, p) in [(&n.kind, "kind"), (&n.list_kind, "listKind")] {
        let e = dns1035_label_errors(&v.to_lowercase());
        if !v.is_empty() && !e.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.{p}"),
                s(v),
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    e.join(",")
                ),
            ));
        }
    }
    for (i, sn) in n.short_names.iter().enumerate() {
        let e = dns1035_label_errors(sn);
        if !e.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.shortNames[{i}]"),
                s(sn),
                e.join(","),
            ));
        }
    }
    if !n.kind.is_empty() && n.kind == n.list_kind {
        errs.push(FieldError::invalid(
            &format!("{path}.listKind"),
            s(&n.list_kind),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in n.categories.iter().enumerate() {
        let e = dns1035_label_errors(c);
        if !e.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.categories[{i}]"),
                s(c),
                e.join(","),
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Status (naming and establishing controllers)
// ---------------------------------------------------------------------------

fn names_json(n: &CrdNames) -> Value {
    let mut m = Map::new();
    m.insert("plural".into(), Value::String(n.plural.clone()));
    m.insert("singular".into(), Value::String(n.singular.clone()));
    if !n.short_names.is_empty() {
        m.insert("shortNames".into(), json!(n.short_names));
    }
    m.insert("kind".into(), Value::String(n.kind.clone()));
    m.insert("listKind".into(), Value::String(n.list_kind.clone()));
    if !n.categories.is_empty() {
        m.insert("categories".into(), json!(n.categories));
    }
    Value::Object(m)
}

/// The `status` kube-apiserver's controllers converge a CRD to: `conditions` (`NamesAccepted`,
/// then `Established`), `acceptedNames` and `storedVersions`. `existing` are the other CRDs
/// (a CRD with the same `metadata.name` is ignored); their names in the same group are taken.
/// Condition times come from the CRD's previous conditions when unchanged, else from its
/// `metadata.creationTimestamp` (see [`crd_status_at`] to pass the time).
pub fn crd_status(crd: &Value, existing: &[CrdInfo]) -> Value {
    let now = crd
        .get("metadata")
        .map(|m| str_at(m, "creationTimestamp"))
        .unwrap_or("")
        .to_string();
    crd_status_at(crd, existing, &now)
}

/// [`crd_status`] with the transition time of changed conditions.
pub fn crd_status_at(crd: &Value, existing: &[CrdInfo], now_rfc3339: &str) -> Value {
    let empty = Value::Object(Map::new());
    let spec = crd.get("spec").unwrap_or(&empty);
    let group = str_at(spec, "group");
    let name = crd.get("metadata").map(|m| str_at(m, "name")).unwrap_or("");
    let requested = parse_names(spec.get("names").unwrap_or(&empty));
    let status = crd.get("status");
    let accepted = status
        .and_then(|s| s.get("acceptedNames"))
        .map(parse_names_raw)
        .unwrap_or_default();

    let mut resources: Vec<&str> = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    for other in existing
        .iter()
        .filter(|o| o.group == group && o.name != name)
    {
        resources.push(&other.names.plural);
        resources.push(&other.names.singular);
        resources.extend(other.names.short_names.iter().map(String::as_str));
        kinds.push(&other.names.kind);
        kinds.push(&other.names.list_kind);
    }
    let fresh = |requested: &str, accepted: &str, used: &[&str]| -> Result<(), String> {
        if requested == accepted || !used.contains(&requested) {
            Ok(())
        } else {
            Err(format!("{} is already in use", go_quote(requested)))
        }
    };
    let mut new_names = accepted.clone();
    let mut cond: Option<(&str, String)> = None;
    match fresh(&requested.plural, &accepted.plural, &resources) {
        Ok(()) => new_names.plural = requested.plural.clone(),
        Err(m) => cond = Some(("PluralConflict", m)),
    }
    match fresh(&requested.singular, &accepted.singular, &resources) {
        Ok(()) => new_names.singular = requested.singular.clone(),
        Err(m) => cond = Some(("SingularConflict", m)),
    }
    if requested.short_names != accepted.short_names {
        let errs: Vec<String> = requested
            .short_names
            .iter()
            .filter(|s| !accepted.short_names.contains(s))
            .filter_map(|s| fresh(s, "", &resources).err())
            .collect();
        if errs.is_empty() {
            new_names.short_names = requested.short_names.clone();
        } else {
            let msg = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("[{}]", errs.join(", "))
            };
            cond = Some(("ShortNamesConflict", msg));
        }
    }
    match fresh(&requested.kind, &accepted.kind, &kinds) {
        Ok(()) => new_names.kind = requested.kind.clone(),
        Err(m) => cond = Some(("KindConflict", m)),
    }
    match fresh(&requested.list_kind, &accepted.list_kind, &kinds) {
        Ok(()) => new_names.list_kind = requested.list_kind.clone(),
        Err(m) => cond = Some(("ListKindConflict", m)),
    }
    new_names.categories = requested.categories.clone();

    let (na_status, na_reason, na_msg) = match &cond {
        None => ("True", "NoConflicts", "no conflicts found".to_string()),
        Some((r, m)) => ("False", *r, m.clone()),
    };
    let old_established_true = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| str_at(c, "type") == "Established" && str_at(c, "status") == "True")
        });
    let (es_status, es_reason, es_msg) = if na_status == "True" || old_established_true {
        (
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        )
    } else {
        ("False", "NotAccepted", "not all names are accepted")
    };
    let old_conditions = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array);
    let condition = |ty: &str, st: &str, reason: &str, msg: &str| -> Value {
        let previous = old_conditions.and_then(|cs| cs.iter().find(|c| str_at(c, "type") == ty));
        let time = match previous {
            Some(p) if str_at(p, "status") == st && !str_at(p, "lastTransitionTime").is_empty() => {
                str_at(p, "lastTransitionTime").to_string()
            }
            _ => now_rfc3339.to_string(),
        };
        json!({
            "type": ty,
            "status": st,
            "lastTransitionTime": if time.is_empty() { Value::Null } else { Value::String(time) },
            "reason": reason,
            "message": msg,
        })
    };
    let mut stored: Vec<String> = status
        .and_then(|s| s.get("storedVersions"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(vs)) = spec.get("versions")
        && let Some(sv) = vs
            .iter()
            .find(|v| v.get("storage") == Some(&Value::Bool(true)))
    {
        let n = str_at(sv, "name").to_string();
        if !n.is_empty() && !stored.contains(&n) {
            stored.push(n);
        }
    }
    json!({
        "conditions": [
            condition("NamesAccepted", na_status, na_reason, &na_msg),
            condition("Established", es_status, es_reason, es_msg),
        ],
        "acceptedNames": names_json(&new_names),
        "storedVersions": stored,
    })
}

/// Names as stored (no defaulting): `status.acceptedNames`.
fn parse_names_raw(v: &Value) -> CrdNames {
    CrdNames {
        plural: str_at(v, "plural").to_string(),
        singular: str_at(v, "singular").to_string(),
        kind: str_at(v, "kind").to_string(),
        list_kind: str_at(v, "listKind").to_string(),
        short_names: strings_at(v, "shortNames"),
        categories: strings_at(v, "categories"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_crd() -> Value {
        serde_json::from_str(
            r#"{
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "databases.example.com", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "databases", "kind": "Database", "shortNames": ["db"], "categories": ["all"]},
                "versions": [{
                    "name": "v1",
                    "served": true,
                    "storage": true,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector"
                        }
                    },
                    "additionalPrinterColumns": [
                        {"name": "Engine", "type": "string", "jsonPath": ".spec.engine"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                        {"name": "First", "type": "string", "jsonPath": ".spec.users[0].name", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                    ],
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "required": ["engine"],
                                "properties": {
                                    "engine": {"type": "string", "enum": ["postgres", "mysql"]},
                                    "version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"},
                                    "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                    "storage": {"type": "object", "default": {}, "properties": {
                                        "size": {"type": "string", "default": "1Gi", "maxLength": 8},
                                        "class": {"type": "string"}
                                    }},
                                    "users": {"type": "array", "maxItems": 3, "items": {
                                        "type": "object",
                                        "required": ["name"],
                                        "properties": {
                                            "name": {"type": "string", "minLength": 2},
                                            "roles": {"type": "array", "items": {"type": "string", "default": "read"}}
                                        }
                                    }},
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": true,
                                        "x-kubernetes-preserve-unknown-fields": true
                                    },
                                    "backup": {"type": "object", "nullable": true, "properties": {"schedule": {"type": "string"}}},
                                    "createdAt": {"type": "string", "format": "date-time"}
                                }
                            },
                            "status": {"type": "object", "properties": {
                                "replicas": {"type": "integer"},
                                "selector": {"type": "string"},
                                "conditions": {"type": "array", "items": {"type": "object", "properties": {
                                    "type": {"type": "string"}, "status": {"type": "string"}
                                }}}
                            }}
                        }
                    }}
                }]
            }
        }"#,
        )
        .unwrap()
    }

    fn schema() -> Value {
        database_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn parse_realistic_crd() {
        let info = parse_crd(&database_crd()).unwrap();
        assert_eq!(info.name, "databases.example.com");
        assert_eq!(info.names.singular, "database");
        assert_eq!(info.names.list_kind, "DatabaseList");
        assert_eq!(info.names.short_names, vec!["db"]);
        assert!(info.namespaced);
        let v = info.storage_version().unwrap();
        assert_eq!(v.name, "v1");
        assert!(v.status_subresource);
        let scale = v.scale.as_ref().unwrap();
        assert_eq!(
            scale.label_selector_path.as_deref(),
            Some(".status.selector")
        );
        assert_eq!(v.additional_printer_columns.len(), 5);
        assert_eq!(v.additional_printer_columns[3].priority, 1);
        assert_eq!(info.conversion_strategy, "None");
    }

    #[test]
    fn parse_crd_errors() {
        type Mutate = fn(&mut Value);
        let cases: Vec<(&str, Mutate, Vec<&str>)> = vec![
            (
                "wrong name",
                |c| c["metadata"]["name"] = json!("dbs.example.com"),
                vec![
                    "metadata.name: Invalid value: \"dbs.example.com\": must be spec.names.plural+\".\"+spec.group",
                ],
            ),
            (
                "two storage versions",
                |c| {
                    let mut v2 = c["spec"]["versions"][0].clone();
                    v2["name"] = json!("v2");
                    c["spec"]["versions"].as_array_mut().unwrap().push(v2);
                },
                vec![
                    "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{",
                ],
            ),
            (
                "bad scope",
                |c| c["spec"]["scope"] = json!("Global"),
                vec![
                    "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
                ],
            ),
            (
                "group without dot",
                |c| {
                    c["spec"]["group"] = json!("example");
                    c["metadata"]["name"] = json!("databases.example");
                },
                vec![
                    "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
                ],
            ),
            (
                "uppercase plural",
                |c| {
                    c["spec"]["names"]["plural"] = json!("Databases");
                    c["metadata"]["name"] = json!("Databases.example.com");
                },
                vec![
                    "metadata.name: Invalid value: \"Databases.example.com\": a lowercase RFC 1123 subdomain",
                    "spec.names.plural: Invalid value: \"Databases\": a DNS-1035 label must consist",
                ],
            ),
            (
                "missing schema",
                |c| {
                    c["spec"]["versions"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("schema");
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
                ],
            ),
            (
                "root not object",
                |c| {
                    c["spec"]["versions"][0]["subresources"] = json!(null);
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] =
                        json!({"type": "string"});
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.type: Invalid value: \"string\": must be object at the root",
                ],
            ),
            (
                "property without type",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                        ["x"] = json!({});
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
                ],
            ),
            (
                "additionalProperties with properties",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["additionalProperties"] =
                        json!({"type": "string"});
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
                ],
            ),
            (
                "array without items",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                        ["tags"] = json!({"type": "array"});
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags].items: Required value: must be specified",
                ],
            ),
            (
                "invalid pattern",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                        ["version"]["pattern"] = json!("[a-z");
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[version].pattern: Invalid value: \"[a-z\": must be a valid regular expression, but isn't: error parsing regexp: missing closing ]: `[a-z`",
                ],
            ),
            (
                "bad default",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                        ["replicas"]["default"] = json!("one");
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: \"string\":  in body must be of type integer: \"string\"",
                ],
            ),
            (
                "bad printer column",
                |c| {
                    c["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = json!("text");
                    c["spec"]["versions"][0]["additionalPrinterColumns"][1]["jsonPath"] =
                        json!("spec.replicas");
                },
                vec![
                    "spec.versions[0].additionalPrinterColumns[0].type: Invalid value: \"text\": must be one of boolean,date,integer,number,string",
                    "spec.versions[0].additionalPrinterColumns[1].JSONPath: Invalid value: \"spec.replicas\": must be a simple json path starting with .",
                ],
            ),
            (
                "bad scale path",
                |c| {
                    c["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] =
                        json!(".status.replicas");
                },
                vec![
                    "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: \".status.replicas\": should be a json path under .spec",
                ],
            ),
            (
                "status subresource with root enum",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["nullable"] = json!(true);
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema: Invalid value: apiextensions.JSONSchemaProps{…}: only [Description",
                    "spec.versions[0].schema.openAPIV3Schema.nullable: Forbidden: nullable cannot be true at the root",
                ],
            ),
            (
                "uniqueItems",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                        ["users"]["uniqueItems"] = json!(true);
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[users].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
                ],
            ),
            (
                "metadata restricted",
                |c| {
                    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] =
                        json!({"type": "object", "properties": {"labels": {"type": "object"}}});
                },
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
                ],
            ),
            (
                "kind equals listKind",
                |c| c["spec"]["names"]["listKind"] = json!("Database"),
                vec![
                    "spec.names.listKind: Invalid value: \"Database\": kind and listKind may not be the same",
                ],
            ),
            (
                "selectable field",
                |c| {
                    c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.engine"}, {"jsonPath": ".spec.storage"}, {"jsonPath": ".spec.nope"}]);
                },
                vec![
                    "spec.versions[0].selectableFields[1].jsonPath: Invalid value: \".spec.storage\": must point to a field of type string, boolean or integer.",
                    "spec.versions[0].selectableFields[2].jsonPath: Invalid value: \".spec.nope\": is an invalid path",
                ],
            ),
            (
                "webhook without config",
                |c| c["spec"]["conversion"] = json!({"strategy": "Webhook"}),
                vec![
                    "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                    "spec.conversion.conversionReviewVersions: Required value",
                ],
            ),
        ];
        for (name, mutate, want) in cases {
            let mut crd = database_crd();
            mutate(&mut crd);
            let errs = match parse_crd(&crd) {
                Ok(_) => panic!("{name}: expected errors"),
                Err(e) => msgs(&e),
            };
            for w in &want {
                assert!(
                    errs.iter().any(|e| e.starts_with(w)),
                    "{name}: missing {w:?} in {errs:#?}"
                );
            }
            assert_eq!(errs.len(), want.len(), "{name}: {errs:#?}");
        }
    }

    #[test]
    fn field_error_rendering() {
        let e = FieldError::type_invalid(
            "spec.replicas",
            BadValue::Json(json!("string")),
            "spec.replicas in body must be of type integer: \"string\"",
        );
        assert_eq!(e.reason(), "FieldValueTypeInvalid");
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        );
        let e = FieldError::invalid(
            "x",
            BadValue::Json(json!({"b": [1, "a", null], "a": 1.5})),
            "bad",
        );
        assert_eq!(
            e.message(),
            "Invalid value: map[string]interface {}{\"a\":1.5, \"b\":[]interface {}{1, \"a\", interface {}(nil)}}: bad"
        );
        assert_eq!(
            FieldError::too_many("x", 4, 3).message(),
            "Too many: 4: must have at most 3 items"
        );
        assert_eq!(
            FieldError::too_long("x", 1).message(),
            "Too long: may not be more than 1 byte"
        );
        for (f, want) in [
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (0.5, "0.5"),
            (1.5e-5, "1.5e-05"),
            (-2.0, "-2"),
        ] {
            assert_eq!(go_float(f), want);
        }
    }

    #[test]
    fn validate_table() {
        let base = json!({
            "apiVersion": "example.com/v1", "kind": "Database",
            "metadata": {"name": "db1"},
            "spec": {"engine": "postgres", "replicas": 3}
        });
        type Mutate = fn(&mut Value);
        type Case = (&'static str, Mutate, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            ("valid", |_| {}, vec![]),
            (
                "type",
                |o| o["spec"]["replicas"] = json!("three"),
                vec![(
                    "FieldValueTypeInvalid",
                    "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
                )],
            ),
            (
                "enum",
                |o| o["spec"]["engine"] = json!("oracle"),
                vec![(
                    "FieldValueNotSupported",
                    "spec.engine: Unsupported value: \"oracle\": supported values: \"postgres\", \"mysql\"",
                )],
            ),
            (
                "required",
                |o| {
                    o["spec"].as_object_mut().unwrap().remove("engine");
                },
                vec![("FieldValueRequired", "spec.engine: Required value")],
            ),
            (
                "pattern",
                |o| o["spec"]["version"] = json!("v15"),
                vec![(
                    "FieldValueInvalid",
                    "spec.version: Invalid value: \"v15\": spec.version in body should match '^[0-9]+\\.[0-9]+$'",
                )],
            ),
            (
                "maximum",
                |o| o["spec"]["replicas"] = json!(9),
                vec![(
                    "FieldValueInvalid",
                    "spec.replicas: Invalid value: 9: spec.replicas in body should be less than or equal to 5",
                )],
            ),
            (
                "minimum",
                |o| o["spec"]["replicas"] = json!(0),
                vec![(
                    "FieldValueInvalid",
                    "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
                )],
            ),
            (
                "float for integer",
                |o| o["spec"]["replicas"] = json!(2.5),
                vec![(
                    "FieldValueTypeInvalid",
                    "spec.replicas: Invalid value: \"number\": spec.replicas in body must be of type integer: \"number\"",
                )],
            ),
            (
                "integral float ok",
                |o| o["spec"]["replicas"] = json!(2.0),
                vec![],
            ),
            (
                "maxLength",
                |o| o["spec"]["storage"] = json!({"size": "123456789"}),
                vec![(
                    "FieldValueTooLong",
                    "spec.storage.size: Too long: may not be more than 8 bytes",
                )],
            ),
            (
                "maxItems + nested",
                |o| {
                    o["spec"]["users"] = json!([{"name": "a"}, {"name": "bob"}, {}, {"name": "cy"}])
                },
                vec![
                    (
                        "FieldValueInvalid",
                        "spec.users[0].name: Invalid value: \"a\": spec.users[0].name in body should be at least 2 chars long",
                    ),
                    ("FieldValueRequired", "spec.users[2].name: Required value"),
                    (
                        "FieldValueTooMany",
                        "spec.users: Too many: 4: must have at most 3 items",
                    ),
                ],
            ),
            (
                "additionalProperties",
                |o| o["spec"]["labels"] = json!({"a": "x", "b": 1}),
                vec![(
                    "FieldValueTypeInvalid",
                    "spec.labels.b: Invalid value: \"integer\": spec.labels.b in body must be of type string: \"integer\"",
                )],
            ),
            (
                "int-or-string ok",
                |o| o["spec"]["port"] = json!("http"),
                vec![],
            ),
            (
                "int-or-string bad",
                |o| o["spec"]["port"] = json!(true),
                vec![
                    (
                        "FieldValueTypeInvalid",
                        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
                    ),
                    (
                        "FieldValueInvalid",
                        "<nil>: Invalid value: \"\": \"spec.port\" must validate at least one schema (anyOf)",
                    ),
                    (
                        "FieldValueTypeInvalid",
                        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer: \"boolean\"",
                    ),
                ],
            ),
            ("nullable", |o| o["spec"]["backup"] = json!(null), vec![]),
            (
                "null not nullable",
                |o| o["spec"]["storage"] = json!(null),
                vec![(
                    "FieldValueTypeInvalid",
                    "spec.storage: Invalid value: \"null\": spec.storage in body must be of type object: \"null\"",
                )],
            ),
            (
                "format",
                |o| o["spec"]["createdAt"] = json!("yesterday"),
                vec![(
                    "FieldValueTypeInvalid",
                    "spec.createdAt: Invalid value: \"yesterday\": spec.createdAt in body must be of type date-time: \"yesterday\"",
                )],
            ),
            (
                "format ok",
                |o| o["spec"]["createdAt"] = json!("2024-05-06T07:08:09.5+02:00"),
                vec![],
            ),
            (
                "embedded resource",
                |o| o["spec"]["template"] = json!({"kind": "Pod", "apiVersion": "a/b/c"}),
                vec![(
                    "FieldValueInvalid",
                    "spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c",
                )],
            ),
            (
                "embedded resource missing kind",
                |o| o["spec"]["template"] = json!({"apiVersion": "v1"}),
                vec![(
                    "FieldValueRequired",
                    "spec.template.kind: Required value: must not be empty",
                )],
            ),
            (
                "preserve unknown",
                |o| o["spec"]["config"] = json!({"anything": [1, {"x": true}]}),
                vec![],
            ),
        ];
        let schema = schema();
        for (name, mutate, want) in cases {
            let mut obj = base.clone();
            mutate(&mut obj);
            let errs = validate(&obj, &schema);
            let got: Vec<(&str, String)> =
                errs.iter().map(|e| (e.reason(), e.to_string())).collect();
            let want: Vec<(&str, String)> = want.iter().map(|(r, m)| (*r, m.to_string())).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn validate_keywords() {
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (
                json!({"type": "object", "properties": {"a": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5}}}),
                json!({"a": 1.5}),
                vec!["a: Invalid value: 1.5: a in body should be less than 1.5"],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 3}}}),
                json!({"a": 4}),
                vec!["a: Invalid value: 4: a in body should be a multiple of 3"],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true, "minItems": 3, "items": {"type": "string"}}}}),
                json!({"a": ["x", "x"]}),
                vec![
                    "a: Invalid value: 2: a in body should have at least 3 items",
                    "a: Invalid value: \"\": a in body shouldn't contain duplicates",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object", "maxProperties": 1}}}),
                json!({"a": {"x": 1, "y": 2}}),
                vec!["a: Too many: 2: must have at most 1 item"],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object", "minProperties": 2}}}),
                json!({"a": {"x": 1}}),
                vec!["a: Invalid value: 1: a in body should have at least 2 properties"],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "oneOf": [{"pattern": "^x"}, {"pattern": "y$"}]}}}),
                json!({"a": "xy"}),
                vec![
                    "<nil>: Invalid value: \"\": \"a\" must validate one and only one schema (oneOf). Found 2 valid alternatives",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "not": {"enum": ["no"]}}}}),
                json!({"a": "no"}),
                vec!["<nil>: Invalid value: \"\": \"a\" must not validate the schema (not)"],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 1}]}}}),
                json!({"a": "abc"}),
                vec![
                    "a: Too long: may not be more than 1 byte",
                    "<nil>: Invalid value: \"\": \"a\" must validate all the schemas (allOf)",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2]}}}),
                json!({"a": 3}),
                vec!["a: Unsupported value: 3: supported values: \"1\", \"2\""],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "format": "uuid"}, "b": {"type": "string", "format": "byte"}, "c": {"type": "integer", "format": "int32"}}}),
                json!({"a": "123e4567-e89b-12d3-a456-426614174000", "b": "aGVsbG8=", "c": 99999999999i64}),
                vec![],
            ),
        ];
        for (schema, obj, want) in cases {
            assert_eq!(msgs(&validate(&obj, &schema)), want, "{schema}");
        }
    }

    #[test]
    fn prune_table() {
        let schema = schema();
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (
                json!({"apiVersion": "example.com/v1", "kind": "Database", "metadata": {"name": "x", "odd": 1}, "extra": 1,
                       "spec": {"engine": "mysql", "foo": "bar", "users": [{"name": "ab", "x": 1}],
                                "labels": {"a": "b"}, "config": {"keep": {"me": 1}},
                                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}, "spec": {"any": 1}}}}),
                json!({"apiVersion": "example.com/v1", "kind": "Database", "metadata": {"name": "x", "odd": 1},
                       "spec": {"engine": "mysql", "users": [{"name": "ab"}],
                                "labels": {"a": "b"}, "config": {"keep": {"me": 1}},
                                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}}}}),
                vec![
                    "extra",
                    "spec.foo",
                    "spec.users[0].x",
                    "spec.template.metadata.junk",
                ],
            ),
            (
                json!({"spec": {"storage": {"size": "1Gi", "tier": "gold"}}, "status": {"conditions": [{"type": "Ready", "reason": "x"}]}}),
                json!({"spec": {"storage": {"size": "1Gi"}}, "status": {"conditions": [{"type": "Ready"}]}}),
                vec!["spec.storage.tier", "status.conditions[0].reason"],
            ),
        ];
        for (mut obj, want, paths) in cases {
            let pruned = prune(&mut obj, &schema);
            assert_eq!(obj, want);
            assert_eq!(pruned, paths);
        }
        // embedded resource without preserve-unknown-fields
        let s = json!({"type": "object", "properties": {"t": {"type": "object", "x-kubernetes-embedded-resource": true,
            "properties": {"spec": {"type": "object"}}}}});
        let mut obj = json!({"t": {"apiVersion": "v1", "kind": 5, "spec": {"x": 1}, "other": 1}});
        let pruned = prune(&mut obj, &s);
        assert_eq!(obj, json!({"t": {"apiVersion": "v1", "spec": {}}}));
        assert_eq!(pruned, vec!["t.kind", "t.spec.x", "t.other"]);
    }

    #[test]
    fn defaults_table() {
        let schema = schema();
        let cases: Vec<(Value, Value)> = vec![
            (
                json!({"spec": {"engine": "mysql"}}),
                json!({"spec": {"engine": "mysql", "replicas": 1, "storage": {"size": "1Gi"}}}),
            ),
            (
                json!({"spec": {"replicas": null, "storage": {"size": "5Gi"}, "users": [{"name": "a", "roles": [null, "w"]}]}}),
                json!({"spec": {"replicas": 1, "storage": {"size": "5Gi"}, "users": [{"name": "a", "roles": ["read", "w"]}]}}),
            ),
            (
                json!({"metadata": {"name": "x"}}),
                json!({"metadata": {"name": "x"}}),
            ),
        ];
        for (mut obj, want) in cases {
            apply_schema_defaults(&mut obj, &schema);
            assert_eq!(obj, want);
        }
        let s = json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"x": {"type": "integer", "default": 7}}}}}});
        let mut obj = json!({"m": {"a": {}, "b": {"x": 1}}});
        apply_schema_defaults(&mut obj, &s);
        assert_eq!(obj, json!({"m": {"a": {"x": 7}, "b": {"x": 1}}}));
    }

    #[test]
    fn scale_roundtrip() {
        let info = parse_crd(&database_crd()).unwrap();
        let scale = info.versions[0].scale.clone().unwrap();
        let mut obj = json!({"metadata": {"name": "db1", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                                          "creationTimestamp": "2024-01-01T00:00:00Z"},
                             "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=db"}});
        assert_eq!(
            scale_from(&obj, &scale),
            Some(json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "db1", "namespace": "ns", "uid": "u1", "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z"},
                "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=db"}
            }))
        );
        apply_scale(&mut obj, 5, &scale).unwrap();
        assert_eq!(obj["spec"]["replicas"], json!(5));
        let mut bare = json!({"metadata": {"name": "x"}});
        let s = scale_from(&bare, &scale).unwrap();
        assert_eq!(s["spec"], json!({}));
        assert_eq!(s["status"], json!({"replicas": 0}));
        apply_scale(&mut bare, 2, &scale).unwrap();
        assert_eq!(bare["spec"], json!({"replicas": 2}));
        assert_eq!(
            scale_from(&json!({"spec": {"replicas": "x"}}), &scale),
            None
        );
        assert!(apply_scale(&mut json!({"spec": 1}), 2, &scale).is_err());
    }

    #[test]
    fn printer_cells_table() {
        let info = parse_crd(&database_crd()).unwrap();
        let cols = &info.versions[0].additional_printer_columns;
        let obj = json!({
            "metadata": {"name": "db1", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"engine": "postgres", "replicas": 3, "users": [{"name": "alice"}, {"name": "bob"}]},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}
        });
        assert_eq!(
            printer_cells(&obj, cols, "2024-01-03T05:00:00Z"),
            vec![
                json!("postgres"),
                json!(3),
                json!("True"),
                json!("alice"),
                json!("2d5h")
            ]
        );
        let empty = json!({"metadata": {}});
        assert_eq!(
            printer_cells(&empty, cols, "2024-01-01T00:00:00Z"),
            vec![Value::Null; 5]
        );
        let extra = vec![
            PrinterColumn {
                name: "S".into(),
                column_type: "string".into(),
                json_path: ".spec.users[-1]".into(),
                ..Default::default()
            },
            PrinterColumn {
                name: "N".into(),
                column_type: "number".into(),
                json_path: ".spec.replicas".into(),
                ..Default::default()
            },
            PrinterColumn {
                name: "B".into(),
                column_type: "boolean".into(),
                json_path: ".spec.engine".into(),
                ..Default::default()
            },
            PrinterColumn {
                name: "K".into(),
                column_type: "string".into(),
                json_path: ".metadata['name']".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            printer_cells(&obj, &extra, ""),
            vec![
                json!("map[name:bob]"),
                json!(3.0),
                Value::Null,
                json!("db1")
            ]
        );
        for (secs, want) in [
            (5, "5s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (3 * 86400, "3d"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(secs), want);
        }
    }

    #[test]
    fn status_table() {
        let crd = database_crd();
        let st = crd_status(&crd, &[]);
        assert_eq!(
            st,
            json!({
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
                ],
                "acceptedNames": {"plural": "databases", "singular": "database", "shortNames": ["db"], "kind": "Database", "listKind": "DatabaseList", "categories": ["all"]},
                "storedVersions": ["v1"]
            })
        );
        // another CRD of the same group already uses the short name and the kind
        let mut other = parse_crd(&database_crd()).unwrap();
        other.name = "dbclusters.example.com".into();
        other.names.plural = "dbclusters".into();
        other.names.singular = "dbcluster".into();
        let st = crd_status_at(&crd, &[other.clone()], "2024-02-02T00:00:00Z");
        assert_eq!(st["conditions"][0]["status"], "False");
        // the last conflicting name decides the reason, as upstream
        assert_eq!(st["conditions"][0]["reason"], "ListKindConflict");
        assert_eq!(
            st["conditions"][0]["message"],
            "\"DatabaseList\" is already in use"
        );
        assert_eq!(st["conditions"][1]["reason"], "NotAccepted");
        assert_eq!(st["acceptedNames"]["plural"], "databases");
        assert!(st["acceptedNames"].get("shortNames").is_none());
        // other group: no conflict
        other.group = "other.io".into();
        let st = crd_status(&crd, &[other]);
        assert_eq!(st["conditions"][0]["reason"], "NoConflicts");
        // stored versions accumulate
        let mut crd2 = crd.clone();
        crd2["status"] = json!({"storedVersions": ["v1beta1"]});
        assert_eq!(
            crd_status(&crd2, &[])["storedVersions"],
            json!(["v1beta1", "v1"])
        );
    }

    #[test]
    fn regex_table() {
        let cases: Vec<(&str, &str, bool)> = vec![
            ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "my-name", true),
            ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "-bad", false),
            ("^[0-9]+(\\.[0-9]+){1,2}$", "1.2.3", true),
            ("^[0-9]+(\\.[0-9]+){1,2}$", "1.2.3.4", false),
            ("ab|cd", "xxcdxx", true),
            ("^(ab|cd)$", "abcd", false),
            ("(?i)^hello$", "HeLLo", true),
            ("^\\d{3}-\\w+\\s?$", "123-abc ", true),
            ("^[^@]+@[^@]+$", "a@b", true),
            ("^[^@]+@[^@]+$", "a@b@c", false),
            ("^$", "", true),
            ("a.c", "a\nc", false),
            ("(?s)a.c", "a\nc", true),
            ("^(\\d+(Ki|Mi|Gi)?)$", "512Mi", true),
            ("\\bword\\b", "a word here", true),
            ("\\bword\\b", "swordfish", false),
            ("^[[:alpha:]]+$", "abcXYZ", true),
            (
                "^(?:a+)+$",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                false,
            ),
            ("^x{0}y$", "y", true),
            ("a{,2}", "a{,2}", true),
            ("^\\p{Lu}", "Émile", true),
            ("^[\\w.-]+$", "a.b-c_d", true),
            (
                "^(https?|ftp)://[^\\s/$.?#].[^\\s]*$",
                "https://example.com/x",
                true,
            ),
            ("^[a-z]{2,}?$", "ab", true),
        ];
        for (p, text, want) in cases {
            let re = Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(re.is_match(text), want, "{p} on {text:?}");
        }
        let errors: Vec<(&str, &str)> = vec![
            ("[a-z", "error parsing regexp: missing closing ]: `[a-z`"),
            ("(abc", "error parsing regexp: missing closing ): `(abc`"),
            ("abc)", "error parsing regexp: unexpected ): `abc)`"),
            (
                "a**",
                "error parsing regexp: invalid nested repetition operator: `**`",
            ),
            (
                "*a",
                "error parsing regexp: missing argument to repetition operator: `*`",
            ),
            (
                "(?=a)",
                "error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
            ),
            (
                "\\1",
                "error parsing regexp: invalid escape sequence: `\\1`",
            ),
            (
                "[z-a]",
                "error parsing regexp: invalid character class range: `z-a`",
            ),
            (
                "a{1001}",
                "error parsing regexp: invalid repeat count: `{1001}`",
            ),
        ];
        for (p, want) in errors {
            assert_eq!(
                Regex::new(p).map(|_| ()).unwrap_err().to_string(),
                want,
                "{p}"
            );
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00+01:00"),
            Some(1_704_067_200)
        );
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
