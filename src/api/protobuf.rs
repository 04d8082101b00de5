//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//! into the JSON form the rest of the server works with.
//!
//! A body is the 4-byte prefix `k8s\0` followed by a `runtime.Unknown` message:
//! `{1: TypeMeta {1: apiVersion, 2: kind}, 2: raw (the object's message), 3: contentEncoding,
//! 4: contentType}`. The object's message is decoded with the schema table
//! ([`crate::resources::schema`]), producing what Go's JSON encoding of the same object
//! would contain:
//!
//! - a field is emitted only if it is on the wire; Go writes every non-pointer field, so
//!   empty strings and empty bytes are dropped unless the field is required (or one of the
//!   few pointer strings whose empty value matters, like `storageClassName`), while `false`
//!   and `0` are kept (pointer fields like `replicas: 0` mean something) except for the
//!   non-pointer `omitempty` fields the table knows ([`Field::omits_zero`]: `generation`,
//!   `hostNetwork`, `nodePort`, status counters, …), and empty nested objects are kept
//!   (`resources: {}`, `status: {}`);
//! - a zero `Time` (an empty message) is dropped (Go prints `null`);
//! - special types get their JSON form: Time and MicroTime as RFC 3339 strings, Duration as
//!   a Go duration string, Quantity as its string, IntOrString as a number or a string,
//!   RawExtension / JSON / FieldsV1 as the embedded JSON value, `bytes` as base64;
//! - unknown field numbers (newer Kubernetes versions) are skipped.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::resources::schema::{self, Field, Message, Shape, Special, ValueType};

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nested messages deeper than this are rejected (JSONSchemaProps is recursive).
const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"")]
    BadMagic,
    /// The envelope names no kind.
    #[error("protobuf body has no kind in its type information (apiVersion {api_version:?})")]
    MissingKind {
        /// The apiVersion of the envelope, possibly empty.
        api_version: String,
    },
    /// The kind is not a built-in kind this server can decode from protobuf.
    #[error("protobuf is not supported for {api_version}, Kind={kind}; send JSON instead")]
    UnknownKind {
        /// apiVersion of the envelope.
        api_version: String,
        /// kind of the envelope.
        kind: String,
    },
    /// `contentEncoding` is set (no encoding is defined for request bodies).
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The bytes end inside a field.
    #[error("truncated protobuf message at {path}")]
    Truncated {
        /// Where: a JSON path such as `spec.template.spec.containers[0].image`.
        path: String,
    },
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("malformed protobuf at {path}: {reason}")]
    Malformed {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A string field is not UTF-8.
    #[error("invalid UTF-8 in protobuf string at {path}")]
    InvalidUtf8 {
        /// Where.
        path: String,
    },
    /// An embedded JSON value (RawExtension, JSON, FieldsV1) does not parse.
    #[error("invalid embedded JSON at {path}: {reason}")]
    InvalidJson {
        /// Where.
        path: String,
        /// The parser's message.
        reason: String,
    },
}

impl ProtobufError {
    /// Whether the body is well-formed but this server cannot decode it as protobuf (HTTP
    /// 415 Unsupported Media Type); otherwise it is a bad request (HTTP 400).
    pub fn is_unsupported_media_type(&self) -> bool {
        matches!(
            self,
            ProtobufError::UnknownKind { .. } | ProtobufError::UnsupportedEncoding(_)
        )
    }
}

/// The `runtime.Unknown` envelope of a protobuf body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `apiVersion` from the envelope's TypeMeta (`v1`, `apps/v1`).
    pub api_version: String,
    /// `kind` from the envelope's TypeMeta.
    pub kind: String,
    /// The encoded object message.
    pub raw: &'a [u8],
    /// `contentEncoding` (empty in practice).
    pub content_encoding: String,
    /// `contentType` (empty or `application/vnd.kubernetes.protobuf`).
    pub content_type: String,
}

/// Whether `body` starts with the Kubernetes protobuf prefix.
pub fn has_magic(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Parse the prefix and the `runtime.Unknown` envelope without decoding the object.
pub fn decode_envelope(body: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::BadMagic)?;
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut d = Decoder::default();
    for item in Fields::new(rest) {
        let (tag, value) = item.map_err(|e| d.wire_error(e))?;
        match tag {
            1 => {
                d.path.push(Seg::Name("typeMeta"));
                let bytes = d.expect_bytes(value)?;
                for item in Fields::new(bytes) {
                    let (tag, value) = item.map_err(|e| d.wire_error(e))?;
                    match tag {
                        1 => env.api_version = d.string(value, "apiVersion")?,
                        2 => env.kind = d.string(value, "kind")?,
                        _ => {}
                    }
                }
                d.path.pop();
            }
            2 => {
                d.path.push(Seg::Name("raw"));
                env.raw = d.expect_bytes(value)?;
                d.path.pop();
            }
            3 => env.content_encoding = d.string(value, "contentEncoding")?,
            4 => env.content_type = d.string(value, "contentType")?,
            _ => {}
        }
    }
    Ok(env)
}

/// Decode a protobuf body into a JSON object with `apiVersion` and `kind` set.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_nested(body, 0)
}

fn decode_nested(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    let env = decode_envelope(body)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(env.content_encoding));
    }
    if env.kind.is_empty() {
        return Err(ProtobufError::MissingKind {
            api_version: env.api_version,
        });
    }
    let Some(msg) = schema::message_for_api_version(&env.api_version, &env.kind) else {
        return Err(ProtobufError::UnknownKind {
            api_version: env.api_version,
            kind: env.kind,
        });
    };
    let mut d = Decoder {
        path: Vec::new(),
        depth,
    };
    let fields = d.message(msg, env.raw)?;
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".to_owned(), Value::String(env.api_version));
    out.insert("kind".to_owned(), Value::String(env.kind));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// Decode the bytes of one message (no prefix, no envelope) into a JSON object.
pub fn decode_message(msg: Message, bytes: &[u8]) -> Result<Value, ProtobufError> {
    Decoder::default().message(msg, bytes).map(Value::Object)
}

// ---------------------------------------------------------------------------------------------
// Wire format

/// A field value as it is on the wire.
#[derive(Clone, Copy, Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl Wire<'_> {
    fn type_name(self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "64-bit",
            Wire::Bytes(_) => "length-delimited",
            Wire::Fixed32 => "32-bit",
        }
    }
}

/// A wire-level problem, before its position is known.
#[derive(Debug)]
enum WireError {
    Truncated,
    Invalid(String),
}

/// Iterator over the `(field number, value)` pairs of an encoded message.
struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, failed: false }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<(u32, Wire<'a>), WireError> {
        let key = read_varint(&mut self.buf)?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|t| *t != 0 && *t < (1 << 29))
            .ok_or_else(|| WireError::Invalid(format!("invalid field number {}", key >> 3)))?;
        let value = match key & 7 {
            0 => Wire::Varint(read_varint(&mut self.buf)?),
            1 => {
                let b = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(
                    b.try_into().expect("take(8) returns 8 bytes"),
                ))
            }
            2 => {
                let len = read_varint(&mut self.buf)?;
                let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                // No built-in kind has 32-bit fields; only skipped.
                self.take(4)?;
                Wire::Fixed32
            }
            wt => {
                return Err(WireError::Invalid(format!(
                    "unsupported wire type {wt} for field {tag}"
                )));
            }
        };
        Ok((tag, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let item = self.next_field();
        self.failed = item.is_err();
        Some(item)
    }
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some((&byte, rest)) = buf.split_first() else {
            return Err(WireError::Truncated);
        };
        *buf = rest;
        if i == 9 && byte > 1 {
            return Err(WireError::Invalid("varint overflows 64 bits".to_owned()));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::Invalid("varint longer than 10 bytes".to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Decoder

/// One step of the JSON path of the value being decoded, for error messages.
#[derive(Debug, Clone)]
enum Seg {
    Name(&'static str),
    Index(usize),
    Key(String),
}

#[derive(Default)]
struct Decoder {
    path: Vec<Seg>,
    depth: usize,
}

/// What has been read for one field of a message, before it is turned into JSON.
enum Slot<'a> {
    Empty,
    /// A non-repeated scalar, string or bytes value (the last one on the wire wins).
    Scalar(Value),
    /// A non-repeated message: every occurrence, merged in order (protobuf semantics).
    Message(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

impl Decoder {
    fn path_string(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Name(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Key(key) => {
                    out.push('[');
                    out.push_str(key);
                    out.push(']');
                }
            }
        }
        if out.is_empty() {
            out.push_str("the top level");
        }
        out
    }

    fn wire_error(&self, e: WireError) -> ProtobufError {
        match e {
            WireError::Truncated => ProtobufError::Truncated {
                path: self.path_string(),
            },
            WireError::Invalid(reason) => self.malformed(reason),
        }
    }

    fn malformed(&self, reason: String) -> ProtobufError {
        ProtobufError::Malformed {
            path: self.path_string(),
            reason,
        }
    }

    fn wrong_wire(&self, got: Wire<'_>, want: &str) -> ProtobufError {
        self.malformed(format!(
            "wire type {} where {want} was expected",
            got.type_name()
        ))
    }

    fn expect_bytes<'a>(&self, value: Wire<'a>) -> Result<&'a [u8], ProtobufError> {
        match value {
            Wire::Bytes(b) => Ok(b),
            other => Err(self.wrong_wire(other, "length-delimited")),
        }
    }

    fn expect_varint(&self, value: Wire<'_>) -> Result<u64, ProtobufError> {
        match value {
            Wire::Varint(v) => Ok(v),
            other => Err(self.wrong_wire(other, "varint")),
        }
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, ProtobufError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| ProtobufError::InvalidUtf8 {
                path: self.path_string(),
            })
    }

    /// A string field of a fixed (non-schema) message, named `name` in errors.
    fn string(&mut self, value: Wire<'_>, name: &'static str) -> Result<String, ProtobufError> {
        self.path.push(Seg::Name(name));
        let s = self.expect_bytes(value).and_then(|b| self.utf8(b));
        self.path.pop();
        s
    }

    fn enter(&mut self) -> Result<(), ProtobufError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.malformed(format!("messages nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    /// Decode one message into the JSON fields of its object.
    fn message(&mut self, msg: Message, bytes: &[u8]) -> Result<Map<String, Value>, ProtobufError> {
        self.enter()?;
        let mut out = Map::new();
        self.message_into(msg, &[bytes], &mut out)?;
        self.depth -= 1;
        Ok(out)
    }

    /// Decode the concatenation of `chunks` as one message of type `msg`, appending its
    /// JSON fields to `out` (inline fields append their own fields in place).
    fn message_into<'c>(
        &mut self,
        msg: Message,
        chunks: &[&'c [u8]],
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        let fields: Vec<Field> = msg.fields().collect();
        let mut slots: Vec<Slot<'c>> = fields.iter().map(|_| Slot::Empty).collect();
        for &chunk in chunks {
            for item in Fields::new(chunk) {
                let (tag, value) = item.map_err(|e| self.wire_error(e))?;
                let Some(i) = fields.iter().position(|f| f.tag() == tag) else {
                    continue;
                };
                let field = fields[i];
                self.path.push(Seg::Name(field.json_name()));
                self.read_field(field, value, &mut slots[i])?;
                self.path.pop();
            }
        }
        for (field, slot) in fields.into_iter().zip(slots) {
            self.emit(field, slot, out)?;
        }
        Ok(())
    }

    /// Record one wire occurrence of `field`.
    fn read_field<'a>(
        &mut self,
        field: Field,
        value: Wire<'a>,
        slot: &mut Slot<'a>,
    ) -> Result<(), ProtobufError> {
        match field.shape() {
            Shape::Single(ValueType::Message(_) | ValueType::Special(_)) => {
                let bytes = self.expect_bytes(value)?;
                match slot {
                    Slot::Message(chunks) => chunks.push(bytes),
                    _ => *slot = Slot::Message(vec![bytes]),
                }
            }
            Shape::Single(vt) => *slot = Slot::Scalar(self.scalar(vt, value)?),
            Shape::List(vt) => {
                let first = match slot {
                    Slot::List(items) => items.len(),
                    _ => 0,
                };
                let mut items = Vec::new();
                match (vt, value) {
                    // Packed encoding of a repeated numeric field.
                    (ValueType::Bool | ValueType::Int32 | ValueType::Int64, Wire::Bytes(b)) => {
                        let mut buf = b;
                        while !buf.is_empty() {
                            let v = read_varint(&mut buf).map_err(|e| self.wire_error(e))?;
                            items.push(self.scalar(vt, Wire::Varint(v))?);
                        }
                    }
                    (ValueType::Double, Wire::Bytes(b)) => {
                        if b.len() % 8 != 0 {
                            return Err(self.malformed("packed doubles of odd length".to_owned()));
                        }
                        for c in b.chunks_exact(8) {
                            let v = u64::from_le_bytes(c.try_into().expect("chunks of 8 bytes"));
                            items.push(self.scalar(vt, Wire::Fixed64(v))?);
                        }
                    }
                    _ => {
                        self.path.push(Seg::Index(first));
                        items.push(self.value(vt, value)?);
                        self.path.pop();
                    }
                }
                match slot {
                    Slot::List(existing) => existing.extend(items),
                    _ => *slot = Slot::List(items),
                }
            }
            Shape::Map(vt) => {
                let entry = self.expect_bytes(value)?;
                let mut key = String::new();
                let mut raw_value: Option<Wire<'a>> = None;
                for item in Fields::new(entry) {
                    let (tag, v) = item.map_err(|e| self.wire_error(e))?;
                    match tag {
                        1 => key = self.expect_bytes(v).and_then(|b| self.utf8(b))?,
                        2 => raw_value = Some(v),
                        _ => {}
                    }
                }
                self.path.push(Seg::Key(key.clone()));
                let v = match raw_value {
                    Some(v) => self.value(vt, v)?,
                    // A missing value is the zero value of its type.
                    None => self.value(vt, default_wire(vt))?,
                };
                self.path.pop();
                match slot {
                    Slot::Map(map) => {
                        map.insert(key, v);
                    }
                    _ => *slot = Slot::Map(Map::from_iter([(key, v)])),
                }
            }
        }
        Ok(())
    }

    /// A list item or map value: any type, always present (Null for an empty special).
    fn value(&mut self, vt: ValueType, value: Wire<'_>) -> Result<Value, ProtobufError> {
        match vt {
            ValueType::Message(m) => {
                let bytes = self.expect_bytes(value)?;
                self.message(m, bytes).map(Value::Object)
            }
            ValueType::Special(sp) => {
                let bytes = self.expect_bytes(value)?;
                Ok(self.special(sp, &[bytes])?.unwrap_or(Value::Null))
            }
            vt => self.scalar(vt, value),
        }
    }

    fn scalar(&self, vt: ValueType, value: Wire<'_>) -> Result<Value, ProtobufError> {
        Ok(match vt {
            ValueType::String => Value::String(self.utf8(self.expect_bytes(value)?)?),
            ValueType::Bytes => Value::String(
                base64::engine::general_purpose::STANDARD.encode(self.expect_bytes(value)?),
            ),
            ValueType::Bool => Value::Bool(self.expect_varint(value)? != 0),
            // Go converts the varint to the field's width.
            ValueType::Int32 => Value::from(self.expect_varint(value)? as i32),
            ValueType::Int64 => Value::from(self.expect_varint(value)? as i64),
            ValueType::Double => match value {
                Wire::Fixed64(bits) => self.double(f64::from_bits(bits))?,
                other => return Err(self.wrong_wire(other, "64-bit")),
            },
            ValueType::Message(_) | ValueType::Special(_) => {
                unreachable!("scalar() is only called for scalar types")
            }
        })
    }

    fn double(&self, v: f64) -> Result<Value, ProtobufError> {
        // Go prints integral floats without a fraction ("10", not "10.0").
        if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
            return Ok(Value::from(v as i64));
        }
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| self.malformed(format!("{v} cannot be represented in JSON")))
    }

    /// Turn the collected occurrences of `field` into JSON in `out`.
    fn emit(
        &mut self,
        field: Field,
        slot: Slot<'_>,
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        let name = field.json_name();
        match slot {
            Slot::Empty => {}
            Slot::Scalar(Value::String(s))
                if s.is_empty() && !field.is_required() && !field.keeps_empty() => {}
            Slot::Scalar(v) if field.omits_zero() && is_zero(&v) => {}
            Slot::Scalar(v) => {
                out.insert(name.to_owned(), v);
            }
            Slot::Message(chunks) => {
                self.path.push(Seg::Name(name));
                match field.shape().value_type() {
                    ValueType::Message(m) if field.is_inline() => {
                        self.enter()?;
                        self.message_into(m, &chunks, out)?;
                        self.depth -= 1;
                    }
                    ValueType::Message(m) => {
                        self.enter()?;
                        let mut obj = Map::new();
                        self.message_into(m, &chunks, &mut obj)?;
                        self.depth -= 1;
                        out.insert(name.to_owned(), Value::Object(obj));
                    }
                    ValueType::Special(sp) => {
                        if let Some(v) = self.special(sp, &chunks)? {
                            out.insert(name.to_owned(), v);
                        }
                    }
                    _ => unreachable!("only message fields collect chunks"),
                }
                self.path.pop();
            }
            Slot::List(items) => {
                out.insert(name.to_owned(), Value::Array(items));
            }
            Slot::Map(map) => {
                out.insert(name.to_owned(), Value::Object(map));
            }
        }
        Ok(())
    }

    /// The JSON form of a special type, or None when Go would print `null` (dropped).
    fn special(&mut self, sp: Special, chunks: &[&[u8]]) -> Result<Option<Value>, ProtobufError> {
        let joined;
        let bytes: &[u8] = match chunks {
            [one] => one,
            many => {
                joined = many.concat();
                &joined
            }
        };
        let mut f = SpecialFields::default();
        for item in Fields::new(bytes) {
            let (tag, value) = item.map_err(|e| self.wire_error(e))?;
            f.read(self, sp, tag, value)?;
        }
        Ok(match sp {
            Special::Time | Special::MicroTime => {
                if bytes.is_empty() {
                    None
                } else {
                    Some(Value::String(self.time(sp, f.int1, f.int2)?))
                }
            }
            Special::Duration => Some(Value::String(go_duration(f.int1 as i64))),
            Special::Quantity => Some(Value::String(match f.str1 {
                Some(s) if !s.is_empty() => s,
                _ => "0".to_owned(),
            })),
            Special::IntOrString => Some(if f.int1 == 1 {
                Value::String(f.str3.unwrap_or_default())
            } else {
                Value::from(f.int2 as i32)
            }),
            Special::RawExtension | Special::Json | Special::FieldsV1 => match f.bytes1 {
                Some(raw) if !raw.is_empty() => Some(self.embedded_json(raw)?),
                _ => None,
            },
            Special::StringList => Some(Value::Array(f.list2)),
            Special::SchemaOrArray => {
                if !f.list2.is_empty() {
                    Some(Value::Array(f.list2))
                } else {
                    f.schema
                }
            }
            Special::SchemaOrBool => Some(f.schema.unwrap_or(Value::Bool(f.int1 != 0))),
            Special::SchemaOrStringArray => {
                if !f.list2.is_empty() {
                    Some(Value::Array(f.list2))
                } else {
                    f.schema
                }
            }
        })
    }

    fn time(&self, sp: Special, seconds: u64, nanos: u64) -> Result<String, ProtobufError> {
        let seconds = seconds as i64;
        // Go's metav1.Time keeps whole seconds only; MicroTime keeps microseconds.
        let nanos = if sp == Special::MicroTime {
            i128::from(nanos as i32)
        } else {
            0
        };
        let total = i128::from(seconds) * 1_000_000_000 + nanos;
        let ts = jiff::Timestamp::from_nanosecond(total)
            .map_err(|e| self.malformed(format!("time out of range: {e}")))?;
        let dt = jiff::tz::Offset::UTC.to_datetime(ts);
        if dt.year() < 0 {
            return Err(self.malformed(format!("year {} out of range", dt.year())));
        }
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        if sp == Special::MicroTime {
            s.push_str(&format!(".{:06}", dt.subsec_nanosecond() / 1000));
        }
        s.push('Z');
        Ok(s)
    }

    fn embedded_json(&self, raw: &[u8]) -> Result<Value, ProtobufError> {
        if has_magic(raw) {
            // An embedded object encoded as protobuf itself.
            return decode_nested(raw, self.depth + 1);
        }
        serde_json::from_slice(raw).map_err(|e| ProtobufError::InvalidJson {
            path: self.path_string(),
            reason: e.to_string(),
        })
    }
}

/// The fields of the special messages, by number: `int1`/`int2` for varints 1 and 2,
/// `str1`/`str3` for strings 1 and 3, `bytes1` for bytes 1, `list2` for repeated field 2
/// (strings or schemas), `schema` for a JSONSchemaProps in field 1 or 2.
#[derive(Default)]
struct SpecialFields<'a> {
    int1: u64,
    int2: u64,
    str1: Option<String>,
    str3: Option<String>,
    bytes1: Option<&'a [u8]>,
    list2: Vec<Value>,
    schema: Option<Value>,
}

impl<'a> SpecialFields<'a> {
    fn read(
        &mut self,
        d: &mut Decoder,
        sp: Special,
        tag: u32,
        value: Wire<'a>,
    ) -> Result<(), ProtobufError> {
        let props = schema::json_schema_props();
        match (sp, tag) {
            (Special::Time | Special::MicroTime | Special::IntOrString, 1 | 2)
            | (Special::Duration | Special::SchemaOrBool, 1) => {
                let v = d.expect_varint(value)?;
                if tag == 1 {
                    self.int1 = v;
                } else {
                    self.int2 = v;
                }
            }
            (Special::Quantity, 1) => self.str1 = Some(d.utf8(d.expect_bytes(value)?)?),
            (Special::IntOrString, 3) => self.str3 = Some(d.utf8(d.expect_bytes(value)?)?),
            (Special::RawExtension | Special::Json | Special::FieldsV1, 1) => {
                self.bytes1 = Some(d.expect_bytes(value)?);
            }
            (Special::StringList, 1) | (Special::SchemaOrStringArray, 2) => {
                self.list2
                    .push(Value::String(d.utf8(d.expect_bytes(value)?)?));
            }
            (Special::SchemaOrArray, 2) => {
                d.path.push(Seg::Index(self.list2.len()));
                let obj = d.message(props, d.expect_bytes(value)?)?;
                d.path.pop();
                self.list2.push(Value::Object(obj));
            }
            (Special::SchemaOrArray | Special::SchemaOrStringArray, 1)
            | (Special::SchemaOrBool, 2) => {
                let obj = d.message(props, d.expect_bytes(value)?)?;
                self.schema = Some(Value::Object(obj));
            }
            _ => {}
        }
        Ok(())
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// The encoding of a zero value, for map entries that omit their value.
fn default_wire(vt: ValueType) -> Wire<'static> {
    match vt {
        ValueType::Bool | ValueType::Int32 | ValueType::Int64 => Wire::Varint(0),
        ValueType::Double => Wire::Fixed64(0),
        ValueType::String | ValueType::Bytes | ValueType::Message(_) | ValueType::Special(_) => {
            Wire::Bytes(&[])
        }
    }
}

/// Format nanoseconds like Go's `time.Duration.String`: "1h2m3s", "1.5s", "500ms", "0s".
pub fn go_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: one unit, with a fraction.
        let (unit, prec) = match u {
            0 => return "0s".to_owned(),
            1..=999 => ("ns", 0),
            1_000..=999_999 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (int, frac) = split_frac(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (secs, frac) = split_frac(u, 9);
        u = secs;
        out = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            out = format!("{}m{out}", u % 60);
            u /= 60;
            if u > 0 {
                out = format!("{u}h{out}");
            }
        }
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Split `v` into `v / 10^prec` and the fraction `.ddd` without trailing zeros ("" if 0).
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/protobuf/",
                    $name,
                    ".bin"
                )) as &[u8],
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/protobuf/",
                    $name,
                    ".json"
                )),
            )
        };
    }

    /// `kubectl-*`: bodies sent by kubectl 1.32 (`kubectl create …`, `kubectl auth can-i`);
    /// their expected JSON is Go's JSON of the same object (`--dry-run=client -o json`)
    /// without its `null`s. The others are built with k8s-pb/prost.
    const FIXTURES: &[(&str, &[u8], &str)] = &[
        fixture!("kubectl-namespace"),
        fixture!("kubectl-deployment"),
        fixture!("kubectl-configmap"),
        fixture!("kubectl-secret"),
        fixture!("kubectl-service-clusterip"),
        fixture!("kubectl-service-nodeport"),
        fixture!("kubectl-service-loadbalancer"),
        fixture!("kubectl-selfsubjectaccessreview"),
        fixture!("kubectl-cronjob"),
        fixture!("kubectl-job"),
        fixture!("kubectl-resourcequota"),
        fixture!("kubectl-role"),
        fixture!("kubectl-rolebinding"),
        fixture!("kubectl-clusterrolebinding"),
        fixture!("kubectl-ingress"),
        fixture!("kubectl-ingress-tls"),
        fixture!("kubectl-pdb"),
        fixture!("kubectl-pdb-percent"),
        fixture!("kubectl-priorityclass"),
        fixture!("kubectl-tokenrequest"),
        fixture!("pod"),
        fixture!("event"),
        fixture!("crd"),
        fixture!("controllerrevision"),
        fixture!("subjectaccessreview"),
        fixture!("deleteoptions"),
        fixture!("lease"),
        fixture!("hpa"),
    ];

    fn fixture(name: &str) -> &'static [u8] {
        FIXTURES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, bin, _)| *bin)
            .expect("known fixture")
    }

    #[test]
    fn fixtures_decode_to_expected_json() {
        for (name, bin, expected) in FIXTURES {
            let expected: Value = serde_json::from_str(expected).expect("fixture JSON");
            let got = decode(bin).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, expected, "{name}: {got:#}");
        }
    }

    #[test]
    fn output_starts_with_type_meta_then_declaration_order() {
        let got = decode(fixture("kubectl-deployment")).expect("decodes");
        let keys: Vec<&str> = got
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec", "status"]);
        let container = &got["spec"]["template"]["spec"]["containers"][0];
        let keys: Vec<&str> = container
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["name", "image", "ports", "resources"]);
    }

    #[test]
    fn spot_checks() {
        let pod = decode(fixture("pod")).expect("pod");
        assert_eq!(pod["metadata"]["creationTimestamp"], "2024-01-02T03:04:05Z");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(
            c["resources"]["limits"],
            json!({"cpu": "500m", "memory": "128Mi"})
        );
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
        assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);
        assert_eq!(pod["spec"]["volumes"][0]["configMap"]["name"], "web-config");
        // Pointer fields keep their zero values; empty optional strings are dropped.
        assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 0);
        assert!(pod["spec"].get("hostname").is_none());
        assert!(pod["spec"].get("hostNetwork").is_none());
        assert_eq!(pod["metadata"]["labels"]["tier"], "");

        let cm = decode(fixture("kubectl-configmap")).expect("configmap");
        assert_eq!(cm["binaryData"]["blob"], "AAEC//4gYmluYXJ5");
        let secret = decode(fixture("kubectl-secret")).expect("secret");
        assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
        let ev = decode(fixture("event")).expect("event");
        assert_eq!(ev["eventTime"], "2024-01-02T03:04:05.123456Z");
        let del = decode(fixture("deleteoptions")).expect("delete options");
        assert_eq!(del["kind"], "DeleteOptions");
        assert_eq!(del["gracePeriodSeconds"], 0);
    }

    #[test]
    fn envelope_fields() {
        let env = decode_envelope(fixture("kubectl-deployment")).expect("envelope");
        assert_eq!(env.api_version, "apps/v1");
        assert_eq!(env.kind, "Deployment");
        assert!(env.content_encoding.is_empty());
        assert!(!env.raw.is_empty());
    }

    /// Wrap an object message in the prefix and envelope.
    fn wrap(api_version: &str, kind: &str, raw: &[u8], encoding: &str) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
            out.push(tag << 3 | 2);
            let mut len = bytes.len();
            loop {
                let b = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
            out.extend_from_slice(bytes);
        }
        let mut tm = Vec::new();
        field(&mut tm, 1, api_version.as_bytes());
        field(&mut tm, 2, kind.as_bytes());
        let mut out = MAGIC.to_vec();
        field(&mut out, 1, &tm);
        field(&mut out, 2, raw);
        if !encoding.is_empty() {
            field(&mut out, 3, encoding.as_bytes());
        }
        out
    }

    #[test]
    fn bad_magic() {
        assert_eq!(decode(b""), Err(ProtobufError::BadMagic));
        assert_eq!(decode(b"k8s"), Err(ProtobufError::BadMagic));
        assert_eq!(decode(br#"{"kind":"Pod"}"#), Err(ProtobufError::BadMagic));
        assert!(!ProtobufError::BadMagic.is_unsupported_media_type());
    }

    #[test]
    fn every_truncation_fails_without_panicking() {
        for (name, bin, _) in FIXTURES {
            let env = decode_envelope(bin).expect("envelope");
            let raw_start = env.raw.as_ptr() as usize - bin.as_ptr() as usize;
            let raw_end = raw_start + env.raw.len();
            for cut in 0..raw_end {
                let got = decode(&bin[..cut]);
                // A cut on a field boundary of the envelope leaves a shorter valid envelope.
                if cut < 4 || cut >= raw_start {
                    assert!(got.is_err(), "{name} cut at {cut}");
                }
            }
            // Truncated object messages inside a valid envelope: errors or shorter objects,
            // never a panic.
            for cut in 0..env.raw.len() {
                let _ = decode(&wrap(&env.api_version, &env.kind, &env.raw[..cut], ""));
            }
        }
    }

    #[test]
    fn mutated_bodies_never_panic() {
        // Deterministic xorshift; flips, inserts and deletes bytes of every fixture.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (_, bin, _) in FIXTURES {
            for _ in 0..300 {
                let mut body = bin.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let at = 4 + (next() as usize) % (body.len() - 4);
                    match next() % 3 {
                        0 => body[at] = next() as u8,
                        1 => body.insert(at, next() as u8),
                        _ => {
                            body.remove(at);
                        }
                    }
                }
                let _ = decode(&body);
            }
        }
    }

    #[test]
    fn truncated_message_names_the_field() {
        // Namespace {metadata: {name: "abc" but 2 bytes short}}.
        let raw = [0x0a, 0x05, 0x0a, 0x05, b'a', b'b', b'c'];
        let err = decode(&wrap("v1", "Namespace", &raw, "")).expect_err("truncated");
        assert_eq!(
            err,
            ProtobufError::Truncated {
                path: "metadata".into()
            }
        );
        assert_eq!(err.to_string(), "truncated protobuf message at metadata");
    }

    #[test]
    fn garbage_is_rejected() {
        let mut body = MAGIC.to_vec();
        body.extend([0xff; 12]);
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::Malformed { .. })
        ));
        // Field number 0.
        let body = wrap("v1", "Namespace", &[0x02, 0x00], "");
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::Malformed { .. })
        ));
        // Group wire types.
        let body = wrap("v1", "Namespace", &[0x0b, 0x0c], "");
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::Malformed { .. })
        ));
        // A message field sent as a varint.
        let err = decode(&wrap("v1", "Namespace", &[0x08, 0x01], "")).expect_err("wire type");
        assert_eq!(
            err.to_string(),
            "malformed protobuf at metadata: wire type varint where length-delimited was expected"
        );
    }

    #[test]
    fn unknown_and_missing_kind() {
        let err = decode(&wrap("example.com/v1", "Widget", &[], "")).expect_err("unknown");
        assert_eq!(
            err,
            ProtobufError::UnknownKind {
                api_version: "example.com/v1".into(),
                kind: "Widget".into()
            }
        );
        assert!(err.is_unsupported_media_type());
        assert_eq!(
            err.to_string(),
            "protobuf is not supported for example.com/v1, Kind=Widget; send JSON instead"
        );
        let err = decode(&wrap("v1", "", &[], "")).expect_err("missing");
        assert_eq!(
            err,
            ProtobufError::MissingKind {
                api_version: "v1".into()
            }
        );
        let err = decode(&wrap("v1", "Namespace", &[], "gzip")).expect_err("encoding");
        assert_eq!(err, ProtobufError::UnsupportedEncoding("gzip".into()));
        assert!(err.is_unsupported_media_type());
    }

    #[test]
    fn empty_object_and_meta_kinds_under_any_group() {
        assert_eq!(
            decode(&wrap("v1", "Namespace", &[], "")).expect("empty"),
            json!({"apiVersion": "v1", "kind": "Namespace"})
        );
        // DeleteOptions {gracePeriodSeconds: 30} as client-go may label it.
        for api_version in ["meta.k8s.io/v1", "apps/v1", "v1"] {
            let got = decode(&wrap(api_version, "DeleteOptions", &[0x08, 30], "")).expect("ok");
            assert_eq!(got["gracePeriodSeconds"], 30, "{api_version}");
        }
    }

    #[test]
    fn invalid_utf8_names_the_field() {
        let raw = [0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe];
        let err = decode(&wrap("v1", "Namespace", &raw, "")).expect_err("utf-8");
        assert_eq!(
            err,
            ProtobufError::InvalidUtf8 {
                path: "metadata.name".into()
            }
        );
        // Map keys and values too: ConfigMap.data {"k": <invalid>}.
        let raw = [0x12, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0xc3, 0x28];
        let err = decode(&wrap("v1", "ConfigMap", &raw, "")).expect_err("utf-8");
        assert_eq!(
            err,
            ProtobufError::InvalidUtf8 {
                path: "data[k]".into()
            }
        );
    }

    #[test]
    fn invalid_embedded_json() {
        // ControllerRevision {data: RawExtension {raw: "{nope"}}.
        let raw = [0x12, 0x07, 0x0a, 0x05, b'{', b'n', b'o', b'p', b'e'];
        let err = decode(&wrap("apps/v1", "ControllerRevision", &raw, "")).expect_err("json");
        assert!(
            matches!(&err, ProtobufError::InvalidJson { path, .. } if path == "data"),
            "{err}"
        );
    }

    #[test]
    fn embedded_protobuf_object_in_raw_extension() {
        let inner = wrap("v1", "Namespace", &[0x0a, 0x03, 0x0a, 0x01, b'x'], "");
        let mut data = vec![0x0a, inner.len() as u8];
        data.extend(&inner);
        let mut raw = vec![0x12, data.len() as u8];
        raw.extend(&data);
        let got = decode(&wrap("apps/v1", "ControllerRevision", &raw, "")).expect("ok");
        assert_eq!(
            got["data"],
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        );
    }

    #[test]
    fn nesting_depth_is_limited() {
        // JSONSchemaProps {not: {not: … }} 150 deep (field 28).
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..150 {
            let mut outer = vec![0xe2, 0x01];
            let mut len = bytes.len();
            loop {
                let b = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    outer.push(b);
                    break;
                }
                outer.push(b | 0x80);
            }
            outer.extend(&bytes);
            bytes = outer;
        }
        let err = decode_message(schema::json_schema_props(), &bytes).expect_err("too deep");
        assert!(err.to_string().contains("nested deeper than 100"), "{err}");
    }

    #[test]
    fn repeated_message_merge_and_last_scalar_wins() {
        // Namespace {metadata: {name: "a"}, metadata: {namespace: "b"}, metadata: {name: "c"}}.
        let raw = [
            0x0a, 0x03, 0x0a, 0x01, b'a', 0x0a, 0x03, 0x1a, 0x01, b'b', 0x0a, 0x03, 0x0a, 0x01,
            b'c',
        ];
        let got = decode(&wrap("v1", "Namespace", &raw, "")).expect("ok");
        assert_eq!(got["metadata"], json!({"name": "c", "namespace": "b"}));
    }

    #[test]
    fn packed_and_unpacked_repeated_ints() {
        let psc = schema::message_by_name("io.k8s.api.core.v1.PodSecurityContext").expect("known");
        // supplementalGroups (4): unpacked 1, 2, then packed [3, 300].
        let bytes = [0x20, 0x01, 0x20, 0x02, 0x22, 0x03, 0x03, 0xac, 0x02];
        let got = decode_message(psc, &bytes).expect("ok");
        assert_eq!(got, json!({"supplementalGroups": [1, 2, 3, 300]}));
    }

    #[test]
    fn special_types() {
        let event = schema::message_for_kind("", "v1", "Event").expect("core event");
        // firstTimestamp (6) = Time {seconds: 0} (explicit epoch), lastTimestamp (7) = zero
        // Time (empty message, dropped), count (8) = 3, eventTime (10) = MicroTime {1, 5000}.
        let bytes = [
            0x32, 0x02, 0x08, 0x00, 0x3a, 0x00, 0x40, 0x03, 0x52, 0x05, 0x08, 0x01, 0x10, 0x88,
            0x27,
        ];
        let got = decode_message(event, &bytes).expect("ok");
        assert_eq!(
            got,
            json!({
                "firstTimestamp": "1970-01-01T00:00:00Z",
                "count": 3,
                "eventTime": "1970-01-01T00:00:01.000005Z",
            })
        );
        // Negative int32 (10-byte varint): LimitRange? Use ServicePort.port = -1.
        let port = schema::message_by_name("io.k8s.api.core.v1.ServicePort").expect("known");
        let mut bytes = vec![0x18];
        bytes.extend([0xff; 9]);
        bytes.push(0x01);
        // targetPort (4) = IntOrString {} (Go's zero value): 0.
        bytes.extend([0x22, 0x00]);
        let got = decode_message(port, &bytes).expect("ok");
        assert_eq!(got, json!({"port": -1, "targetPort": 0}));
    }

    #[test]
    fn go_durations() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (1_100_000, "1.1ms"),
            (500_000_000, "500ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (90_061_000_000_000, "25h1m1s"),
            (-1_500_000_000, "-1.5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(*nanos), *want, "{nanos}");
        }
    }
}
