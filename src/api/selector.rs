//! Label and field selectors with kube-apiserver (1.33) syntax, semantics and
//! error texts.
//!
//! * [`parse_label_selector`] implements the set-based label selector grammar
//!   (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`,
//!   `a<1`). Parse errors carry the message text the apiserver puts into its
//!   400 `BadRequest` status.
//! * [`parse_field_selector`] implements the field selector grammar (`a=b`,
//!   `a==b`, `a!=b`, comma-joined, with `\,` `\=` `\\` escapes).
//!   [`check_supported`] applies the per-kind field-label conversion rules
//!   (which fields each built-in kind accepts) and [`FieldSelector::matches`]
//!   evaluates a selector against a JSON object of a given kind.
//!
//! This module is self-contained: it only depends on `serde_json` and
//! `thiserror`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde_json::{Map, Value};
use thiserror::Error;

/// An error parsing a selector or applying it to a resource. The `Display`
/// text is the exact message kube-apiserver returns (as a 400 BadRequest).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectorError {
    /// A label selector that does not parse (or has invalid keys/values).
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// A field selector that does not parse (bad term or bad escaping).
    #[error("{0}")]
    InvalidFieldSelector(String),
    /// A field that the kind's field-label conversion rejects.
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
    /// A field for a kind that only supports the default metadata fields.
    #[error(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        go_quote(.0)
    )]
    UnknownFieldSelector(String),
}

impl SelectorError {
    /// The `reason` of the Status the apiserver answers with.
    pub fn reason(&self) -> &'static str {
        "BadRequest"
    }

    /// The HTTP status code the apiserver answers with.
    pub fn code(&self) -> u16 {
        400
    }
}

// ---------------------------------------------------------------------------
// Shared helpers (Go formatting and the label key/value syntax checks).
// ---------------------------------------------------------------------------

use crate::resources::validation::{go_quote, is_qualified_name, is_valid_label_value};

fn invalid_field_error(path: &str, value: &str, detail: &str) -> String {
    let mut s = format!("{path}: Invalid value: {}", go_quote(value));
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

/// utilerrors.Aggregate formatting (deduplicated, bracketed when several).
fn aggregate(msgs: &[String]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for m in msgs {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    if seen.len() == 1 {
        return seen[0].clone();
    }
    let joined: Vec<&str> = seen.iter().map(|s| s.as_str()).collect();
    format!("[{}]", joined.join(", "))
}

// ---------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------

/// The operator of one label selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOperator {
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v` (also true when the key is absent)
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)` (also true when the key is absent)
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>n` (integer comparison)
    GreaterThan,
    /// `k<n` (integer comparison)
    LessThan,
}

/// One requirement (`key op values`) of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequirement {
    pub key: String,
    pub operator: LabelOperator,
    /// Sorted and de-duplicated, as upstream keeps them.
    pub values: Vec<String>,
}

impl LabelRequirement {
    /// Whether the requirement holds for a label lookup function.
    pub fn matches_with<'a, F>(&self, get: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        let found = get(&self.key);
        match self.operator {
            LabelOperator::In | LabelOperator::Equals | LabelOperator::DoubleEquals => {
                found.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            LabelOperator::NotIn | LabelOperator::NotEquals => {
                found.is_none_or(|v| !self.values.iter().any(|x| x == v))
            }
            LabelOperator::Exists => found.is_some(),
            LabelOperator::DoesNotExist => found.is_none(),
            LabelOperator::GreaterThan | LabelOperator::LessThan => {
                let Some(v) = found else { return false };
                let Ok(have) = v.parse::<i64>() else {
                    return false;
                };
                let Some(want) = self.values.first().and_then(|w| w.parse::<i64>().ok()) else {
                    return false;
                };
                if self.operator == LabelOperator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            LabelOperator::Exists => write!(f, "{}", self.key),
            LabelOperator::DoesNotExist => write!(f, "!{}", self.key),
            LabelOperator::Equals => write!(f, "{}={}", self.key, first),
            LabelOperator::DoubleEquals => write!(f, "{}=={}", self.key, first),
            LabelOperator::NotEquals => write!(f, "{}!={}", self.key, first),
            LabelOperator::GreaterThan => write!(f, "{}>{}", self.key, first),
            LabelOperator::LessThan => write!(f, "{}<{}", self.key, first),
            LabelOperator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            LabelOperator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
        }
    }
}

/// A set of labels a [`LabelSelector`] can be matched against.
pub trait LabelSet {
    /// The value of label `key`, if present.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSet for Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

impl LabelSet for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> LabelSet for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A parsed label selector: the AND of its requirements. An empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// True when the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key (stable), as upstream keeps them.
    pub fn requirements(&self) -> &[LabelRequirement] {
        &self.requirements
    }

    /// Whether the selector matches a label set: a `metadata.labels` JSON
    /// map (non-string values count as absent), a `BTreeMap` or a `HashMap`.
    pub fn matches<L: LabelSet + ?Sized>(&self, labels: &L) -> bool {
        self.matches_with(|k| labels.label(k))
    }

    /// Whether the selector matches an object, reading `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Whether the selector matches a set of `(key, value)` pairs.
    pub fn matches_pairs<'a, I>(&self, pairs: I) -> bool
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        self.matches_with(|k| pairs.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v))
    }

    /// Whether the selector matches, given a label lookup function.
    pub fn matches_with<'a, F>(&self, get: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        self.requirements.iter().all(|r| r.matches_with(&get))
    }

    /// `Some(value)` when the selector contains `key=value` / `key==value`.
    pub fn single_equality(&self, key: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| {
                r.key == key
                    && matches!(
                        r.operator,
                        LabelOperator::Equals | LabelOperator::DoubleEquals
                    )
                    && r.values.len() == 1
            })
            .and_then(|r| r.values.first().map(String::as_str))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword_token(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// A byte lexer mirroring upstream's: a NUL byte ends the input, like the
/// end of the string.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        let b = self.s.as_bytes();
        if self.pos < b.len() {
            let c = b[self.pos];
            self.pos += 1;
            c
        } else {
            0
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Tok, String) {
        let mut ch = self.read();
        while is_ws(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Tok::EndOfString, String::new());
        }
        self.unread();
        if is_special(ch) {
            self.scan_special()
        } else {
            self.scan_identifier()
        }
    }

    fn scan_identifier(&mut self) -> (Tok, String) {
        let start = self.pos;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_ws(ch) {
                self.unread();
                break;
            }
        }
        let end = self.pos.min(self.s.len());
        // Identifiers end at ASCII bytes (or NUL / end), so the slice is on
        // char boundaries; a NUL terminator was consumed and is dropped.
        let raw = &self.s.as_bytes()[start..end];
        let raw = match raw.iter().position(|&b| b == 0) {
            Some(i) => &raw[..i],
            None => raw,
        };
        let lit = String::from_utf8_lossy(raw).into_owned();
        match keyword_token(&lit) {
            Some(t) => (t, lit),
            None => (Tok::Identifier, lit),
        }
    }

    fn scan_special(&mut self) -> (Tok, String) {
        let mut buffer = String::new();
        let mut last: Option<(Tok, String)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) {
                buffer.push(ch as char);
                if let Some(t) = keyword_token(&buffer) {
                    last = Some((t, buffer.clone()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        match last {
            Some(item) => item,
            None => (
                Tok::Error,
                format!("error expected: keyword found '{buffer}'"),
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    position: usize,
}

impl Parser {
    fn item(&self, ctx: Ctx, idx: usize) -> (Tok, String) {
        let (mut tok, lit) = self
            .items
            .get(idx)
            .cloned()
            .unwrap_or((Tok::EndOfString, String::new()));
        if ctx == Ctx::Values && matches!(tok, Tok::In | Tok::NotIn) {
            tok = Tok::Identifier;
        }
        (tok, lit)
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.item(ctx, self.position)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let it = self.item(ctx, self.position);
        if self.position < self.items.len() {
            self.position += 1;
        }
        it
    }

    fn parse(&mut self) -> Result<Vec<LabelRequirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{l}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Tok::EndOfString => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<LabelRequirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op) = op {
            return new_requirement(key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            LabelOperator::In | LabelOperator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<LabelOperator>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(LabelOperator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errs = is_qualified_name(&lit);
        if !errs.is_empty() {
            // Upstream validates the key against a nil field path here.
            return Err(invalid_field_error("<nil>", &lit, &errs.join("; ")));
        }
        let (t, _) = self.lookahead(Ctx::Values);
        if (t == Tok::EndOfString || t == Tok::Comma) && op.is_none() {
            op = Some(LabelOperator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<LabelOperator, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => LabelOperator::In,
            Tok::Equals => LabelOperator::Equals,
            Tok::DoubleEquals => LabelOperator::DoubleEquals,
            Tok::GreaterThan => LabelOperator::GreaterThan,
            Tok::LessThan => LabelOperator::LessThan,
            Tok::NotIn => LabelOperator::NotIn,
            Tok::NotEquals => LabelOperator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: '=', '!=', '==', 'in', notin'"
                ));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        let insert = |s: &mut Vec<String>, v: String| {
            if !s.contains(&v) {
                s.push(v);
            }
        };
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    insert(&mut s, lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        insert(&mut s, String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        insert(&mut s, String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        insert(&mut s, String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::EndOfString || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            return Ok(vec![lit]);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

/// upstream `NewRequirement` checks (with a nil field path).
fn new_requirement(
    key: String,
    operator: LabelOperator,
    mut values: Vec<String>,
) -> Result<LabelRequirement, String> {
    values.sort();
    values.dedup();
    let mut errs: Vec<String> = Vec::new();
    let key_errs = is_qualified_name(&key);
    if !key_errs.is_empty() {
        errs.push(invalid_field_error("key", &key, &key_errs.join("; ")));
    }
    if matches!(
        operator,
        LabelOperator::GreaterThan | LabelOperator::LessThan
    ) {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errs.push(invalid_field_error(
                    &format!("values[{i}]"),
                    v,
                    "for 'Gt', 'Lt' operators, the value must be an integer",
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let v_errs = is_valid_label_value(v);
        if !v_errs.is_empty() {
            errs.push(invalid_field_error(
                &format!("values[{i}][{key}]"),
                v,
                &v_errs.join("; "),
            ));
        }
    }
    if !errs.is_empty() {
        return Err(aggregate(&errs));
    }
    Ok(LabelRequirement {
        key,
        operator,
        values,
    })
}

/// Parse a label selector (`labelSelector` query parameter). The empty
/// string (or only whitespace) yields the match-everything selector.
pub fn parse_label_selector(s: &str) -> Result<LabelSelector, SelectorError> {
    let mut lexer = Lexer { s, pos: 0 };
    let mut items = Vec::new();
    loop {
        let item = lexer.lex();
        let end = item.0 == Tok::EndOfString;
        items.push(item);
        if end {
            break;
        }
    }
    let mut parser = Parser { items, position: 0 };
    let mut requirements = parser
        .parse()
        .map_err(SelectorError::InvalidLabelSelector)?;
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(LabelSelector { requirements })
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// The operator of one field selector term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    Equals,
    DoubleEquals,
    NotEquals,
}

/// One `field op value` term of a field selector (value unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

/// A parsed field selector: the AND of its terms. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

fn escape_field_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match t.operator {
                FieldOperator::Equals => "=",
                FieldOperator::DoubleEquals => "==",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{}{}", t.field, op, escape_field_value(&t.value))?;
        }
        Ok(())
    }
}

fn split_field_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::DoubleEquals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, rhs));
            }
        }
    }
    None
}

fn unescape_field_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(SelectorError::InvalidFieldSelector(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    )));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go prints the rune with %v, i.e. as its code point number.
                return Err(SelectorError::InvalidFieldSelector(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidFieldSelector(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

/// Parse a field selector (`fieldSelector` query parameter). Terms are kept
/// in upstream's order (sorted by their raw text).
pub fn parse_field_selector(s: &str) -> Result<FieldSelector, SelectorError> {
    let mut parts = split_field_terms(s);
    parts.sort();
    let mut terms = Vec::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, operator, rhs)) = split_field_term(part) else {
            return Err(SelectorError::InvalidFieldSelector(format!(
                "invalid selector: '{s}'; can't understand '{part}'"
            )));
        };
        let value = unescape_field_value(rhs)?;
        terms.push(FieldRequirement {
            field: lhs.to_string(),
            operator,
            value,
        });
    }
    Ok(FieldSelector { terms })
}

/// Field-label conversion rules of the built-in kinds (kube-apiserver 1.33).
enum FieldRules {
    /// A kind with its own conversion function: the accepted labels, with
    /// renames (`from`, `to`).
    Custom(
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ),
    /// Built-in kind with the default conversion (name and namespace only).
    Default,
    /// A custom resource: name, namespace (plus CRD selectable fields).
    CustomResource,
}

const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const EVENTS_V1_RENAMES: &[(&str, &str)] = &[
    ("reason", "reason"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
    ("type", "type"),
    ("metadata.namespace", "metadata.namespace"),
    ("metadata.name", "metadata.name"),
];

const BUILTIN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
    "extensions",
];

fn field_rules(group: &str, resource: &str) -> FieldRules {
    match (group, resource) {
        ("", "pods") => FieldRules::Custom(POD_FIELDS, &[("spec.host", "spec.nodeName")]),
        ("", "nodes") => FieldRules::Custom(&["metadata.name", "spec.unschedulable"], &[]),
        ("", "replicationcontrollers") => FieldRules::Custom(
            &["metadata.name", "metadata.namespace", "status.replicas"],
            &[],
        ),
        ("", "events") => FieldRules::Custom(EVENT_FIELDS, &[]),
        ("", "namespaces") => FieldRules::Custom(&["status.phase", "metadata.name"], &[]),
        ("", "secrets") => {
            FieldRules::Custom(&["type", "metadata.namespace", "metadata.name"], &[])
        }
        ("", "services") => FieldRules::Custom(
            &[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ],
            &[],
        ),
        ("batch", "jobs") => FieldRules::Custom(
            &["metadata.name", "metadata.namespace", "status.successful"],
            &[],
        ),
        ("certificates.k8s.io", "certificatesigningrequests") => {
            FieldRules::Custom(&["metadata.name", "spec.signerName"], &[])
        }
        ("events.k8s.io", "events") => FieldRules::Custom(&[], EVENTS_V1_RENAMES),
        ("resource.k8s.io", "resourceslices") => {
            FieldRules::Custom(&["metadata.name", "spec.nodeName", "spec.driver"], &[])
        }
        (g, _) if BUILTIN_GROUPS.contains(&g) => FieldRules::Default,
        _ => FieldRules::CustomResource,
    }
}

/// Convert one field label the way the kind's conversion function does:
/// `Ok(internal label)` or the upstream error.
fn convert_field_label(group: &str, resource: &str, label: &str) -> Result<String, SelectorError> {
    match field_rules(group, resource) {
        FieldRules::Custom(allowed, renames) => {
            if let Some((_, to)) = renames.iter().find(|(from, _)| *from == label) {
                return Ok((*to).to_string());
            }
            if allowed.contains(&label) {
                return Ok(label.to_string());
            }
            Err(SelectorError::FieldLabelNotSupported(label.to_string()))
        }
        FieldRules::Default => match label {
            "metadata.name" | "metadata.namespace" => Ok(label.to_string()),
            _ => Err(SelectorError::UnknownFieldSelector(label.to_string())),
        },
        FieldRules::CustomResource => match label {
            "metadata.name" | "metadata.namespace" => Ok(label.to_string()),
            _ => Err(SelectorError::FieldLabelNotSupported(label.to_string())),
        },
    }
}

/// Check every term of `sel` against the field labels the kind supports,
/// returning upstream's 400 message for the first unsupported one.
/// Resources of non-built-in groups are treated as custom resources (only
/// `metadata.name` / `metadata.namespace`; see [`check_supported_custom`]).
pub fn check_supported(
    group: &str,
    resource: &str,
    sel: &FieldSelector,
) -> Result<(), SelectorError> {
    normalize(group, resource, sel).map(|_| ())
}

/// Like [`check_supported`] for a custom resource whose CRD declares
/// `selectableFields` (given as JSON paths without the leading dot, e.g.
/// `spec.color`).
pub fn check_supported_custom(
    sel: &FieldSelector,
    selectable_fields: &[&str],
) -> Result<(), SelectorError> {
    for t in &sel.terms {
        let f = t.field.as_str();
        if f != "metadata.name" && f != "metadata.namespace" && !selectable_fields.contains(&f) {
            return Err(SelectorError::FieldLabelNotSupported(t.field.clone()));
        }
    }
    Ok(())
}

/// Apply the kind's field-label conversion (e.g. pods `spec.host` →
/// `spec.nodeName`, events.k8s.io `regarding.name` →
/// `involvedObject.name`), failing like [`check_supported`].
pub fn normalize(
    group: &str,
    resource: &str,
    sel: &FieldSelector,
) -> Result<FieldSelector, SelectorError> {
    let mut terms = Vec::with_capacity(sel.terms.len());
    for t in &sel.terms {
        let field = convert_field_label(group, resource, &t.field)?;
        terms.push(FieldRequirement {
            field,
            operator: t.operator,
            value: t.value.clone(),
        });
    }
    Ok(FieldSelector { terms })
}

fn lookup<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

fn str_at(obj: &Value, path: &[&str]) -> String {
    lookup(obj, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn bool_at(obj: &Value, path: &[&str]) -> String {
    let b = lookup(obj, path).and_then(Value::as_bool).unwrap_or(false);
    b.to_string()
}

fn int_at(obj: &Value, path: &[&str]) -> String {
    match lookup(obj, path) {
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

fn scalar_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The value of a (converted) field label for an object of the given kind,
/// as upstream's `ToSelectableFields` computes it. Fields the kind does not
/// set yield "" (like a missing key of a Go `fields.Set`); unknown fields
/// of custom resources are read as a dotted JSON path.
pub fn field_value(group: &str, resource: &str, field: &str, obj: &Value) -> String {
    match field {
        "metadata.name" => return str_at(obj, &["metadata", "name"]),
        "metadata.namespace" => return str_at(obj, &["metadata", "namespace"]),
        _ => {}
    }
    match (group, resource) {
        ("", "pods") => match field {
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            "spec.restartPolicy" => str_at(obj, &["spec", "restartPolicy"]),
            "spec.schedulerName" => str_at(obj, &["spec", "schedulerName"]),
            "spec.serviceAccountName" => str_at(obj, &["spec", "serviceAccountName"]),
            "spec.hostNetwork" => bool_at(obj, &["spec", "hostNetwork"]),
            "status.phase" => str_at(obj, &["status", "phase"]),
            "status.podIP" => {
                let first = lookup(obj, &["status", "podIPs"])
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(|p| p.get("ip"))
                    .and_then(Value::as_str);
                match first {
                    Some(ip) => ip.to_string(),
                    None => str_at(obj, &["status", "podIP"]),
                }
            }
            "status.nominatedNodeName" => str_at(obj, &["status", "nominatedNodeName"]),
            _ => String::new(),
        },
        ("", "nodes") => match field {
            "spec.unschedulable" => bool_at(obj, &["spec", "unschedulable"]),
            _ => String::new(),
        },
        ("", "replicationcontrollers") => match field {
            "status.replicas" => int_at(obj, &["status", "replicas"]),
            _ => String::new(),
        },
        ("", "events") => match field {
            "source" => str_at(obj, &["source", "component"]),
            "reportingComponent" => str_at(obj, &["reportingComponent"]),
            "reason" | "type" => str_at(obj, &[field]),
            f => match f.strip_prefix("involvedObject.") {
                Some(sub) => str_at(obj, &["involvedObject", sub]),
                None => String::new(),
            },
        },
        ("events.k8s.io", "events") => match field {
            "source" => str_at(obj, &["deprecatedSource", "component"]),
            "reportingComponent" => str_at(obj, &["reportingController"]),
            "reason" | "type" => str_at(obj, &[field]),
            f => match f.strip_prefix("involvedObject.") {
                Some(sub) => str_at(obj, &["regarding", sub]),
                None => String::new(),
            },
        },
        ("", "namespaces") => match field {
            "status.phase" => str_at(obj, &["status", "phase"]),
            _ => String::new(),
        },
        ("", "secrets") => match field {
            "type" => str_at(obj, &["type"]),
            _ => String::new(),
        },
        ("", "services") => match field {
            "spec.clusterIP" => str_at(obj, &["spec", "clusterIP"]),
            "spec.type" => str_at(obj, &["spec", "type"]),
            _ => String::new(),
        },
        ("batch", "jobs") => match field {
            "status.successful" => int_at(obj, &["status", "succeeded"]),
            _ => String::new(),
        },
        ("certificates.k8s.io", "certificatesigningrequests") => match field {
            "spec.signerName" => str_at(obj, &["spec", "signerName"]),
            _ => String::new(),
        },
        ("resource.k8s.io", "resourceslices") => match field {
            "spec.nodeName" => str_at(obj, &["spec", "nodeName"]),
            "spec.driver" => str_at(obj, &["spec", "driver"]),
            _ => String::new(),
        },
        (g, _) if BUILTIN_GROUPS.contains(&g) => String::new(),
        _ => {
            let path: Vec<&str> = field.split('.').collect();
            scalar_string(lookup(obj, &path))
        }
    }
}

impl FieldSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// True when the selector has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in upstream's order.
    pub fn terms(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// Whether the object (of kind `group`/`resource`) satisfies every term.
    /// Field labels are converted first (so `spec.host` and the
    /// events.k8s.io names work); a label the kind cannot convert never
    /// matches an `=` term (call [`check_supported`] first to reject it).
    pub fn matches(&self, group: &str, resource: &str, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let field =
                convert_field_label(group, resource, &t.field).unwrap_or_else(|_| t.field.clone());
            let have = field_value(group, resource, &field, obj);
            match t.operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => have == t.value,
                FieldOperator::NotEquals => have != t.value,
            }
        })
    }

    /// `Some(value)` when the selector requires `field` to equal `value`
    /// (an `=`/`==` term), e.g. `metadata.name=x` for a point lookup.
    pub fn single_equality(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| {
                t.field == field
                    && matches!(
                        t.operator,
                        FieldOperator::Equals | FieldOperator::DoubleEquals
                    )
            })
            .map(|t| t.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn label_selector_matching_table() {
        let web = labels(json!({"app": "web", "env": "prod", "tier": "backend", "n": "5"}));
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app!=web", false),
            ("env in (prod, staging),tier!=frontend", true),
            ("env in (staging)", false),
            ("env notin (staging)", true),
            ("missing notin (x)", true),
            ("missing in (x)", false),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("n>3", true),
            ("n<3", false),
            ("missing>3", false),
            ("app=web,env=prod", true),
            ("app=web,env=dev", false),
            ("  app = web  ,  env  in  ( prod )  ", true),
            ("app=", false),
            ("in in (in)", false),
        ];
        for (sel, want) in cases {
            let parsed = parse_label_selector(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(parsed.matches(&web), *want, "selector {sel:?}");
        }
        let empty_value = labels(json!({"app": ""}));
        assert!(parse_label_selector("app=").unwrap().matches(&empty_value));
        assert!(
            parse_label_selector("app in ()")
                .unwrap()
                .matches(&empty_value)
        );
        let kw = labels(json!({"in": "in"}));
        assert!(parse_label_selector("in in (in)").unwrap().matches(&kw));
    }

    #[test]
    fn label_selector_errors_table() {
        let long = "a".repeat(64);
        let cases: Vec<(String, String)> = vec![
            (
                "a=b=c".into(),
                "found '=', expected: ',' or 'end of string'".into(),
            ),
            (
                "a=b,".into(),
                "found '', expected: identifier after ','".into(),
            ),
            (
                "=b".into(),
                "found '=', expected: !, identifier, or 'end of string'".into(),
            ),
            (
                "a b".into(),
                "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'"
                    .into(),
            ),
            (
                "a in x".into(),
                "unable to parse requirement: found 'x' expected: '('".into(),
            ),
            (
                "a in (x".into(),
                "unable to parse requirement: found '', expected: ',' or ')'".into(),
            ),
            (
                "a in (x y)".into(),
                "unable to parse requirement: found 'y', expected: ',' or ')'".into(),
            ),
            (
                "a in (=)".into(),
                "unable to parse requirement: found '=', expected: ',', ')' or identifier"
                    .into(),
            ),
            (
                "a=(".into(),
                "unable to parse requirement: found '(', expected: identifier".into(),
            ),
            (
                "!".into(),
                "unable to parse requirement: found '', expected: identifier".into(),
            ),
            (
                "a=-bad".into(),
                "unable to parse requirement: values[0][a]: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
            ),
            (
                format!("a={long}"),
                format!("unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"),
            ),
            (
                "-a=b".into(),
                "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into(),
            ),
            (
                "a/b/c".into(),
                "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
            ),
            (
                "/a".into(),
                "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty".into(),
            ),
            (
                "Example.com/a".into(),
                "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into(),
            ),
            (
                "a>b".into(),
                "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
            ),
            (
                "a in (-x,-y)".into(),
                "unable to parse requirement: [values[0][a]: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?'), values[1][a]: Invalid value: \"-y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]".into(),
            ),
        ];
        for (sel, want) in cases {
            let err = parse_label_selector(&sel).expect_err(&sel);
            assert_eq!(err.to_string(), want, "selector {sel:?}");
            assert_eq!(err.reason(), "BadRequest");
            assert_eq!(err.code(), 400);
        }
    }

    #[test]
    fn label_selector_display_and_accessors() {
        let s = parse_label_selector("b in (y, x),a=1,!c,d").unwrap();
        assert_eq!(s.to_string(), "a=1,b in (x,y),!c,d");
        assert_eq!(s.single_equality("a"), Some("1"));
        assert_eq!(s.single_equality("b"), None);
        assert!(!s.is_empty());
        assert!(parse_label_selector("   ").unwrap().is_empty());
        assert!(LabelSelector::everything().is_empty());
        assert!(s.matches_pairs([("a", "1"), ("b", "x"), ("d", "")]));
        assert!(!s.matches_pairs([("a", "1"), ("b", "x")]));
        let obj = json!({"metadata": {"labels": {"a": "1", "b": "y", "d": "z"}}});
        assert!(s.matches_object(&obj));
        let mut bt = BTreeMap::new();
        bt.insert("a".to_string(), "1".to_string());
        bt.insert("b".to_string(), "x".to_string());
        bt.insert("d".to_string(), String::new());
        assert!(s.matches(&bt));
        let hm: HashMap<String, String> = bt.into_iter().collect();
        assert!(s.matches(&hm));
    }

    #[test]
    fn field_selector_parse_table() {
        let s = parse_field_selector("metadata.name=x").unwrap();
        assert_eq!(s.single_equality("metadata.name"), Some("x"));
        let s = parse_field_selector("spec.nodeName=").unwrap();
        assert_eq!(s.terms()[0].value, "");
        let s = parse_field_selector("status.phase!=Running,metadata.name==a\\,b\\=c\\\\").unwrap();
        assert_eq!(s.terms().len(), 2);
        assert_eq!(s.terms()[0].field, "metadata.name");
        assert_eq!(s.terms()[0].operator, FieldOperator::DoubleEquals);
        assert_eq!(s.terms()[0].value, "a,b=c\\");
        assert_eq!(s.terms()[1].operator, FieldOperator::NotEquals);
        assert_eq!(s.single_equality("status.phase"), None);
        assert_eq!(
            s.to_string(),
            "metadata.name==a\\,b\\=c\\\\,status.phase!=Running"
        );
        assert!(parse_field_selector("").unwrap().is_empty());
        assert!(parse_field_selector(",,").unwrap().is_empty());
        assert!(FieldSelector::everything().is_empty());

        let errs: &[(&str, &str)] = &[
            ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
            ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a=b\\,c,d=e,f",
                "invalid selector: 'a=b\\,c,d=e,f'; can't understand 'f'",
            ),
            (
                "a=\\x",
                "invalid field selector: invalid escape sequence: \\x",
            ),
            (
                "a=b\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "a!==b",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (sel, want) in errs {
            let err = parse_field_selector(sel).expect_err(sel);
            assert_eq!(err.to_string(), *want, "selector {sel:?}");
        }
    }

    #[test]
    fn field_selector_supported_table() {
        let cases: &[(&str, &str, &str, Result<(), &str>)] = &[
            ("", "pods", "metadata.name=x", Ok(())),
            ("", "pods", "spec.nodeName=", Ok(())),
            ("", "pods", "status.phase!=Running", Ok(())),
            ("", "pods", "spec.host=n1", Ok(())),
            ("", "pods", "status.podIPs=1.2.3.4", Ok(())),
            ("", "pods", "foo=bar", Err("field label not supported: foo")),
            (
                "",
                "pods",
                "metadata.name =x",
                Err("field label not supported: metadata.name "),
            ),
            ("", "nodes", "spec.unschedulable=true", Ok(())),
            (
                "",
                "nodes",
                "metadata.namespace=x",
                Err("field label not supported: metadata.namespace"),
            ),
            (
                "",
                "events",
                "involvedObject.name=x,reason=Failed,source=kubelet",
                Ok(()),
            ),
            (
                "events.k8s.io",
                "events",
                "regarding.name=x,reportingController=c",
                Ok(()),
            ),
            (
                "events.k8s.io",
                "events",
                "involvedObject.name=x",
                Err("field label not supported: involvedObject.name"),
            ),
            ("", "secrets", "type=Opaque", Ok(())),
            ("", "namespaces", "status.phase=Active", Ok(())),
            (
                "",
                "services",
                "spec.type=ClusterIP,spec.clusterIP=None",
                Ok(()),
            ),
            ("", "replicationcontrollers", "status.replicas=0", Ok(())),
            ("batch", "jobs", "status.successful=1", Ok(())),
            (
                "certificates.k8s.io",
                "certificatesigningrequests",
                "spec.signerName=x",
                Ok(()),
            ),
            ("resource.k8s.io", "resourceslices", "spec.driver=d", Ok(())),
            ("", "configmaps", "metadata.namespace=default", Ok(())),
            (
                "",
                "configmaps",
                "data.x=1",
                Err(
                    "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                ),
            ),
            (
                "apps",
                "replicasets",
                "status.replicas=0",
                Err(
                    "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                ),
            ),
            ("example.com", "widgets", "metadata.name=w", Ok(())),
            (
                "example.com",
                "widgets",
                "status=dead",
                Err("field label not supported: status"),
            ),
        ];
        for (group, resource, sel, want) in cases {
            let parsed = parse_field_selector(sel).unwrap();
            let got = check_supported(group, resource, &parsed).map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map_err(str::to_string),
                "{group}/{resource} {sel:?}"
            );
        }
        let sel = parse_field_selector("spec.color=red").unwrap();
        assert!(check_supported_custom(&sel, &["spec.color"]).is_ok());
        assert!(check_supported_custom(&sel, &[]).is_err());
        let n = normalize("", "pods", &parse_field_selector("spec.host=n1").unwrap()).unwrap();
        assert_eq!(n.terms()[0].field, "spec.nodeName");
    }

    #[test]
    fn field_selector_matching_table() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}
        });
        let pending = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {}, "status": {"phase": "Pending"}});
        let cases: &[(&str, &Value, bool)] = &[
            ("metadata.name=web-1", &pod, true),
            ("metadata.name=x", &pod, false),
            ("metadata.namespace=default", &pod, true),
            ("spec.nodeName=", &pod, false),
            ("spec.nodeName=", &pending, true),
            ("spec.host=n1", &pod, true),
            ("status.phase!=Running", &pod, false),
            ("status.phase!=Running", &pending, true),
            ("spec.hostNetwork=false", &pod, true),
            (
                "status.podIP=10.0.0.5,spec.restartPolicy=Always",
                &pod,
                true,
            ),
            ("status.podIPs=10.0.0.5", &pod, false),
            ("spec.schedulerName==default-scheduler", &pod, true),
            ("spec.serviceAccountName=default", &pod, true),
        ];
        for (sel, obj, want) in cases {
            let parsed = parse_field_selector(sel).unwrap();
            assert_eq!(parsed.matches("", "pods", obj), *want, "selector {sel:?}");
        }

        let ev = json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "Failed", "type": "Warning", "source": {"component": "kubelet"}, "reportingComponent": "kubelet"});
        let sel = parse_field_selector("involvedObject.kind=Pod,involvedObject.name=web-1,type=Warning,source=kubelet,reportingComponent=kubelet").unwrap();
        assert!(sel.matches("", "events", &ev));
        let ev1 = json!({"metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "web-1"}, "reportingController": "kubelet"});
        let sel = parse_field_selector("regarding.name=web-1,reportingController=kubelet").unwrap();
        assert!(sel.matches("events.k8s.io", "events", &ev1));

        let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        assert!(
            parse_field_selector("type=kubernetes.io/tls")
                .unwrap()
                .matches("", "secrets", &secret)
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert!(
            parse_field_selector("spec.unschedulable=true")
                .unwrap()
                .matches("", "nodes", &node)
        );
        let ns = json!({"metadata": {"name": "n"}, "status": {"phase": "Active"}});
        assert!(
            parse_field_selector("status.phase=Active")
                .unwrap()
                .matches("", "namespaces", &ns)
        );
        let rc = json!({"metadata": {"name": "r"}, "status": {"replicas": 3}});
        assert!(parse_field_selector("status.replicas=3").unwrap().matches(
            "",
            "replicationcontrollers",
            &rc
        ));
        let job = json!({"metadata": {"name": "j"}, "status": {}});
        assert!(
            parse_field_selector("status.successful=0")
                .unwrap()
                .matches("batch", "jobs", &job)
        );
        let svc =
            json!({"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}});
        assert!(
            parse_field_selector("spec.clusterIP=None")
                .unwrap()
                .matches("", "services", &svc)
        );
        let cr = json!({"metadata": {"name": "w"}, "spec": {"color": "red", "size": 3}});
        assert!(
            parse_field_selector("spec.color=red,spec.size=3")
                .unwrap()
                .matches("example.com", "widgets", &cr)
        );
        assert!(parse_field_selector("").unwrap().matches("", "pods", &pod));
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }
}
