//! Kubernetes ServiceAccount tokens as kube-apiserver 1.33 issues them through
//! the TokenRequest API (`POST .../serviceaccounts/{name}/token`) and checks
//! them for TokenReview.
//!
//! **Format.** A compact JWS `b64(header).b64(payload).b64(sig)` (base64url, no
//! padding). Header `{"alg":"ES256","kid":..}` (no `typ`, as upstream); the kid
//! is upstream's `keyIDFromPublicKey`: base64url(SHA-256(DER SubjectPublicKeyInfo)).
//! The signature is ECDSA P-256/SHA-256 in fixed `r || s` form. The payload has
//! go-jose's sorted keys, `aud` always an array, private claims under
//! `"kubernetes.io"`:
//!
//! ```json
//! {"aud":["https://kubernetes.default.svc"],"exp":1700003600,"iat":1700000000,
//!  "iss":"https://kubernetes.default.svc","jti":"<uuid>","kubernetes.io":{
//!  "namespace":"default","node":{"name":"n1","uid":".."},"pod":{"name":"p","uid":".."},
//!  "serviceaccount":{"name":"default","uid":".."},"warnafter":1700003607},
//!  "nbf":1700000000,"sub":"system:serviceaccount:default:default"}
//! ```
//!
//! **Validation** (`pkg/serviceaccount/jwt.go`, `claims.go`, go-jose): `iss` must
//! equal the issuer; the `kid` picks the keys to try (all when absent); go-jose's
//! 60 s leeway applies to `nbf`, `iat` *and* `exp` (expired once `now - 60s >
//! exp`); requested audiences must intersect `aud` (a token without `aud` counts
//! as carrying the requested ones; no requested audiences accept any).
//!
//! **Deviations / notes.** ES256 only (ring cannot make RSA keys). Checking that
//! the ServiceAccount / bound Pod, Secret or Node still exist with the claimed
//! uid is the caller's job. Legacy Secret-based tokens are not handled.
//! TokenReview error text depends on upstream's authenticator chain; we answer
//! `"invalid bearer token"` for tokens that are not JWTs of our issuer (upstream
//! declines those silently) and `"[invalid bearer token, <reason>]"` otherwise,
//! `<reason>` being upstream's text, e.g. `go-jose/go-jose: error in
//! cryptographic primitive` (1.33 vendors gopkg.in/go-jose/go-jose.v2; older
//! releases said `square/go-jose: ...`). `--service-account-max-token-expiration`
//! is not modelled; `--service-account-extend-token-expiration` (on by default:
//! pod-bound 3607 s tokens for API audiences get one year plus `warnafter`) is.
//! Like upstream, `spec.boundObjectRef` is echoed as sent (`uid` not filled in),
//! and its `apiVersion` only needs the core group.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

/// go-jose `DefaultLeeway`, used by kube-apiserver for exp/nbf/iat.
pub const LEEWAY_SECONDS: i64 = 60;
/// TokenRequest `spec.expirationSeconds` default (v1 defaulting).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// `MinTokenAgeSec`.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Largest accepted `spec.expirationSeconds` (2^32).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// Expiration kubelet requests for projected tokens; triggers the extension.
pub const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// Extended lifetime of such tokens (one year).
pub const EXPIRATION_EXTENSION_SECONDS: i64 = 24 * 365 * 60 * 60;

pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// DER header of a SubjectPublicKeyInfo holding an uncompressed P-256 point
/// (SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING }).
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Everything that can go wrong issuing or checking a token. The `Display`
/// text mirrors upstream's message where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("signing key error: {0}")]
    Key(String),
    /// Not a compact JWS / undecodable segment or JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unexpected signature algorithm {0:?} in JWS header (only ES256 is accepted)")]
    UnsupportedAlgorithm(String),
    #[error("invalid signature, no keys found")]
    NoMatchingKey,
    #[error("go-jose/go-jose: error in cryptographic primitive")]
    InvalidSignature,
    #[error("token issuer {0:?} is invalid")]
    InvalidIssuer(String),
    #[error("token audiences {} is invalid for the target audiences {}", go_quote_list(.token), go_quote_list(.requested))]
    InvalidAudience {
        token: Vec<String>,
        requested: Vec<String>,
    },
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future; upstream maps this to an opaque message.
    #[error(
        "service account token claims could not be validated due to unexpected validation error"
    )]
    IssuedInFuture,
    /// HTTP 422 (`StatusReasonInvalid`).
    #[error("TokenRequest.authentication.k8s.io {name:?} is invalid: {}", go_aggregate(.causes))]
    Invalid { name: String, causes: Vec<String> },
    /// HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// HTTP 404.
    #[error("{resource} {name:?} not found")]
    NotFound { resource: String, name: String },
    /// HTTP 409: the bound object reference's uid does not match the object.
    #[error(
        "Operation cannot be fulfilled on {kind} {name:?}: the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
    )]
    Conflict {
        kind: String,
        name: String,
        uid: String,
    },
    /// HTTP 500.
    #[error("failed to generate token: {0}")]
    Internal(String),
}

impl TokenError {
    fn invalid(name: &str, causes: Vec<String>) -> Self {
        let name = name.to_owned();
        TokenError::Invalid { name, causes }
    }

    fn bad(msg: impl Into<String>) -> Self {
        TokenError::BadRequest(msg.into())
    }

    /// HTTP status code the API server should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::Invalid { .. } => 422,
            TokenError::BadRequest(_) => 400,
            TokenError::NotFound { .. } => 404,
            TokenError::Conflict { .. } => 409,
            TokenError::Key(_) | TokenError::Internal(_) => 500,
            _ => 401,
        }
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// `utilerrors.Aggregate` formatting: one error bare, several in brackets.
fn go_aggregate(causes: &[String]) -> String {
    match causes {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn unb64(s: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| TokenError::Malformed(format!("{what}: {e}")))
}

/// A P-256 public key with its upstream-style key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    point: Vec<u8>,
    kid: String,
}

impl VerifyingKey {
    /// From an uncompressed SEC1 point (`0x04 || x || y`, 65 bytes).
    pub fn from_uncompressed_point(point: &[u8]) -> Result<Self, TokenError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(TokenError::Key(
                "expected a 65-byte uncompressed P-256 point".into(),
            ));
        }
        let mut spki = SPKI_P256_PREFIX.to_vec();
        spki.extend_from_slice(point);
        let kid = b64(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
        Ok(Self {
            point: point.to_vec(),
            kid,
        })
    }

    /// From one JWK (`kty` EC, `crv` P-256, `x`, `y`).
    pub fn from_jwk(jwk: &Value) -> Result<Self, TokenError> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or("");
        if field("kty") != "EC" || field("crv") != "P-256" {
            return Err(TokenError::Key("JWK is not an EC P-256 key".into()));
        }
        let (x, y) = (unb64(field("x"), "jwk x")?, unb64(field("y"), "jwk y")?);
        if x.len() != 32 || y.len() != 32 {
            return Err(TokenError::Key("JWK coordinates must be 32 bytes".into()));
        }
        let mut point = vec![0x04];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Self::from_uncompressed_point(&point)
    }

    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// DER `SubjectPublicKeyInfo` (what the kid hashes; also PEM-able).
    pub fn spki_der(&self) -> Vec<u8> {
        let mut spki = SPKI_P256_PREFIX.to_vec();
        spki.extend_from_slice(&self.point);
        spki
    }

    /// The JWK as served by `/openid/v1/jwks` (go-jose field order).
    pub fn jwk(&self) -> Value {
        json!({
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": b64(&self.point[1..33]),
            "y": b64(&self.point[33..65]),
        })
    }
}

/// An ES256 signing key (ECDSA P-256, SHA-256).
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: VerifyingKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key; also returns its PKCS#8 v1 DER for persisting.
    pub fn generate() -> Result<(SigningKey, Vec<u8>), TokenError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| TokenError::Key("failed to generate a P-256 key pair".into()))?;
        let der = doc.as_ref().to_vec();
        Ok((Self::from_pkcs8(&der)?, der))
    }

    /// Loads a P-256 private key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, TokenError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair = EcdsaKeyPair::from_pkcs8(alg, der, &rng)
            .map_err(|e| TokenError::Key(format!("invalid P-256 PKCS#8 private key: {e}")))?;
        let public = VerifyingKey::from_uncompressed_point(pair.public_key().as_ref())?;
        Ok(SigningKey { pair, public, rng })
    }

    pub fn key_id(&self) -> String {
        self.public.kid.clone()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// JWK Set containing this key's public half.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public.jwk()] })
    }
}

/// The set of public keys tokens are checked against (supports rotation).
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    keys: Vec<VerifyingKey>,
}

impl Verifier {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        Self { keys }
    }

    pub fn from_signing_keys(keys: &[&SigningKey]) -> Self {
        Self::new(keys.iter().map(|k| k.public.clone()).collect())
    }

    /// JWK Set of all keys (for `/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(VerifyingKey::jwk).collect::<Vec<_>>() })
    }
}

/// `{name, uid}` reference inside the `kubernetes.io` claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The private `kubernetes.io` claim. Fields in upstream's (sorted) JSON order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubernetesClaims {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    pub serviceaccount: ObjectRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// All claims of a bound token. Field order = upstream's sorted JSON order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Claims {
    #[serde(
        deserialize_with = "de_audience",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub iss: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    pub nbf: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sub: String,
}

/// `aud` may be a single string or an array (RFC 7519 §4.1.3).
fn de_audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
    })
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn make_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Signs `claims` into a compact JWS.
pub fn issue(key: &SigningKey, claims: &Claims) -> Result<String, TokenError> {
    let internal = |e: serde_json::Error| TokenError::Internal(e.to_string());
    let header =
        serde_json::to_vec(&json!({"alg": "ES256", "kid": key.public.kid})).map_err(internal)?;
    let payload = serde_json::to_vec(claims).map_err(internal)?;
    let mut token = format!("{}.{}", b64(&header), b64(&payload));
    let sig = key
        .pair
        .sign(&key.rng, token.as_bytes())
        .map_err(|_| TokenError::Internal("ECDSA signing failed".into()))?;
    token.push('.');
    token.push_str(&b64(sig.as_ref()));
    Ok(token)
}

/// A successfully verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub claims: Claims,
    /// Requested audiences the token is valid for (TokenReview `status.audiences`).
    pub audiences: Vec<String>,
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// Verifies signature, issuer, audiences and time claims (see module docs).
pub fn verify(
    verifier: &Verifier,
    token: &str,
    issuer: &str,
    audiences: &[String],
    now: Timestamp,
) -> Result<VerifiedToken, TokenError> {
    let malformed =
        |what: &str, e: &dyn std::fmt::Display| TokenError::Malformed(format!("{what}: {e}"));
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, sig_b64] = parts.as_slice() else {
        return Err(malformed("segments", &"expected 3 dot-separated segments"));
    };
    // Upstream first peeks at the unverified issuer to pick the authenticator.
    let payload: Value = serde_json::from_slice(&unb64(payload_b64, "payload")?)
        .map_err(|e| malformed("payload", &e))?;
    let iss = str_of(payload.get("iss"));
    if iss != issuer {
        return Err(TokenError::InvalidIssuer(iss.to_owned()));
    }
    let header: Value = serde_json::from_slice(&unb64(header_b64, "header")?)
        .map_err(|e| malformed("header", &e))?;
    let (alg, kid) = (str_of(header.get("alg")), str_of(header.get("kid")));
    if alg != "ES256" {
        return Err(TokenError::UnsupportedAlgorithm(alg.to_owned()));
    }
    let sig = unb64(sig_b64, "signature")?;
    let keys = verifier
        .keys
        .iter()
        .filter(|k| kid.is_empty() || k.kid == kid);
    let keys: Vec<&VerifyingKey> = keys.collect();
    if keys.is_empty() {
        return Err(TokenError::NoMatchingKey);
    }
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let alg = &signature::ECDSA_P256_SHA256_FIXED;
    if !keys.iter().any(|k| {
        UnparsedPublicKey::new(alg, &k.point)
            .verify(signed, &sig)
            .is_ok()
    }) {
        return Err(TokenError::InvalidSignature);
    }
    let claims: Claims = serde_json::from_value(payload).map_err(|e| malformed("claims", &e))?;

    let token_auds = if claims.aud.is_empty() {
        audiences
    } else {
        &claims.aud[..]
    };
    let matched: Vec<String> = audiences
        .iter()
        .filter(|a| token_auds.contains(a))
        .cloned()
        .collect();
    if matched.is_empty() && !audiences.is_empty() {
        let (token, requested) = (token_auds.to_vec(), audiences.to_vec());
        return Err(TokenError::InvalidAudience { token, requested });
    }

    // go-jose ValidateWithLeeway, with Go's nanosecond time precision.
    let secs = |s: i64| i128::from(s) * 1_000_000_000;
    let (now, leeway) = (now.as_nanosecond(), secs(LEEWAY_SECONDS));
    if now + leeway < secs(claims.nbf) {
        return Err(TokenError::NotYetValid);
    }
    if now - leeway > secs(claims.exp) {
        return Err(TokenError::Expired);
    }
    if now + leeway < secs(claims.iat) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(VerifiedToken {
        claims,
        audiences: matched,
    })
}

/// The user a token authenticates as (`ServiceAccountInfo.UserInfo()` plus
/// the `system:authenticated` group the authenticator chain adds).
/// Serializes as authentication.k8s.io/v1 `UserInfo` (empty uid/extra omitted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Maps verified claims to the authenticated user.
pub fn user_info(claims: &Claims) -> UserInfo {
    let k = &claims.kubernetes;
    let mut extra = BTreeMap::new();
    let mut put = |key: &str, value: &str| extra.insert(key.to_owned(), vec![value.to_owned()]);
    if let Some(pod) = k
        .pod
        .as_ref()
        .filter(|p| !p.name.is_empty() && !p.uid.is_empty())
    {
        put(POD_NAME_KEY, &pod.name);
        put(POD_UID_KEY, &pod.uid);
    }
    if let Some(node) = k.node.as_ref().filter(|n| !n.name.is_empty()) {
        put(NODE_NAME_KEY, &node.name);
        if !node.uid.is_empty() {
            put(NODE_UID_KEY, &node.uid);
        }
    }
    if !claims.jti.is_empty() {
        put(CREDENTIAL_ID_KEY, &format!("JTI={}", claims.jti));
    }
    let ns = &k.namespace;
    UserInfo {
        username: make_username(ns, &k.serviceaccount.name),
        uid: k.serviceaccount.uid.clone(),
        groups: vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".to_owned(),
        ],
        extra,
    }
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    str_of(obj.get("metadata").and_then(|m| m.get(field)))
}

fn obj_ref(obj: &Value) -> ObjectRef {
    let (name, uid) = (meta(obj, "name").to_owned(), meta(obj, "uid").to_owned());
    ObjectRef { name, uid }
}

fn decode_error(kind: &str, field: &str, ty: &str) -> TokenError {
    TokenError::BadRequest(format!(
        "{kind} in version \"v1\" cannot be handled as a {kind}: json: cannot unmarshal field {field} into Go value of type {ty}"
    ))
}

fn string_list(v: Option<&Value>, kind: &str, field: &str) -> Result<Vec<String>, TokenError> {
    let err = |ty| decode_error(kind, field, ty);
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let item = |i: &Value| i.as_str().map(str::to_owned).ok_or_else(|| err("string"));
            items.iter().map(item).collect()
        }
        Some(_) => Err(err("[]string")),
    }
}

fn rfc3339(seconds: i64) -> Result<String, TokenError> {
    let t = Timestamp::from_second(seconds)
        .map_err(|e| TokenError::Internal(format!("timestamp out of range: {e}")))?;
    Ok(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Handles `POST .../serviceaccounts/{name}/token`. `sa` is the looked-up
/// ServiceAccount, `bound` the object named by `spec.boundObjectRef` (already
/// looked up by the caller, `None` if absent). Pod-bound tokens record the
/// pod's `spec.nodeName` without a node uid; use
/// [`token_request_response_with_node`] to pass the Node object.
pub fn token_request_response(
    request_body: &Value,
    sa: &Value,
    bound: Option<&Value>,
    issuer: &str,
    default_audiences: &[String],
    now: Timestamp,
    key: &SigningKey,
) -> Result<Value, TokenError> {
    let (auds, body) = (default_audiences, request_body);
    token_request_response_with_node(body, sa, bound, None, issuer, auds, now, key)
}

/// Like [`token_request_response`]; `node` is the Node named by a bound pod's
/// `spec.nodeName` (if it exists), so the `node` claim carries its uid.
#[allow(clippy::too_many_arguments)]
pub fn token_request_response_with_node(
    request_body: &Value,
    sa: &Value,
    bound: Option<&Value>,
    node: Option<&Value>,
    issuer: &str,
    default_audiences: &[String],
    now: Timestamp,
    key: &SigningKey,
) -> Result<Value, TokenError> {
    const KIND: &str = "TokenRequest";
    let body = request_body.as_object();
    let body = body.ok_or_else(|| TokenError::bad("TokenRequest body must be a JSON object"))?;
    let (sa_name, sa_ns) = (meta(sa, "name"), meta(sa, "namespace"));
    for (field, want) in [("name", sa_name), ("namespace", sa_ns)] {
        let got = meta(request_body, field);
        if !got.is_empty() && got != want {
            let cause = format!(
                "metadata.{field}: Invalid value: {got:?}: must match the service account {field} if specified"
            );
            return Err(TokenError::invalid(sa_name, vec![cause]));
        }
    }

    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let mut audiences = string_list(spec.get("audiences"), KIND, "spec.audiences")?;
    if audiences.is_empty() {
        audiences = default_audiences.to_vec();
    }
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| decode_error(KIND, "spec.expirationSeconds", "int64"))?,
    };
    let invalid_exp = |msg: &str| {
        format!(
            "spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration {msg}"
        )
    };
    let mut causes = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        causes.push(invalid_exp("less than 10 minutes"));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        causes.push(invalid_exp("larger than 2^32 seconds"));
    }
    if !causes.is_empty() {
        return Err(TokenError::invalid("", causes));
    }

    let mut k8s = KubernetesClaims {
        namespace: sa_ns.to_owned(),
        serviceaccount: obj_ref(sa),
        ..Default::default()
    };
    let mut spec_out = Map::new();
    spec_out.insert("audiences".into(), json!(audiences));
    spec_out.insert("expirationSeconds".into(), json!(expiration));
    match spec.get("boundObjectRef") {
        None | Some(Value::Null) => {}
        Some(Value::Object(r)) => {
            bind(r, bound, node, sa_name, &mut k8s)?;
            // Echo in BoundObjectReference field order, empty fields omitted.
            let mut out = Map::new();
            for f in ["kind", "apiVersion", "name", "uid"] {
                let v = str_of(r.get(f));
                if !v.is_empty() {
                    out.insert(f.to_owned(), json!(v));
                }
            }
            spec_out.insert("boundObjectRef".into(), Value::Object(out));
        }
        Some(_) => {
            return Err(decode_error(
                KIND,
                "spec.boundObjectRef",
                "BoundObjectReference",
            ));
        }
    }

    // --service-account-extend-token-expiration (upstream default: on).
    let now_s = now.as_second();
    let mut token_exp = expiration;
    if k8s.pod.is_some()
        && expiration == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
        && audiences.iter().all(|a| default_audiences.contains(a))
    {
        k8s.warnafter = Some(now_s + expiration);
        token_exp = EXPIRATION_EXTENSION_SECONDS;
    }
    let claims = Claims {
        aud: audiences,
        exp: now_s + token_exp,
        iat: now_s,
        iss: issuer.to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: k8s,
        nbf: now_s,
        sub: make_username(sa_ns, sa_name),
    };
    let token = issue(key, &claims)?;

    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(sa_name));
    metadata.insert("namespace".into(), json!(sa_ns));
    if let Some(Value::Object(m)) = body.get("metadata") {
        for (k, v) in m.iter().filter(|(k, _)| *k != "name" && *k != "namespace") {
            metadata.insert(k.clone(), v.clone());
        }
    }
    metadata.insert("creationTimestamp".into(), json!(rfc3339(now_s)?));
    Ok(json!({
        "kind": KIND,
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": metadata,
        "spec": spec_out,
        "status": { "token": token, "expirationTimestamp": rfc3339(now_s + expiration)? },
    }))
}

/// Resolves `spec.boundObjectRef` against the looked-up object into `k8s`.
fn bind(
    r: &Map<String, Value>,
    bound: Option<&Value>,
    node: Option<&Value>,
    sa_name: &str,
    k8s: &mut KubernetesClaims,
) -> Result<(), TokenError> {
    let field = |f: &str| str_of(r.get(f)).to_owned();
    let (kind, api_version, name, uid) = (
        field("kind"),
        field("apiVersion"),
        field("name"),
        field("uid"),
    );
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let resource = match (group, kind.as_str()) {
        ("", "Pod") => "pods",
        ("", "Secret") => "secrets",
        ("", "Node") => "nodes",
        _ => {
            let gvk = format!("{group}/{version}, Kind={kind}");
            return Err(TokenError::BadRequest(format!(
                "cannot bind token to object of type {gvk}"
            )));
        }
    };
    if name.is_empty() {
        return Err(TokenError::bad("Name parameter required."));
    }
    let resource = resource.to_owned();
    let obj = bound.ok_or_else(|| TokenError::NotFound {
        resource: resource.clone(),
        name: name.clone(),
    })?;
    let found = obj_ref(obj);
    if !uid.is_empty() && uid != found.uid {
        return Err(TokenError::Conflict { kind, name, uid });
    }
    match resource.as_str() {
        "pods" => {
            let pod_spec = obj.get("spec");
            let field = |f: &str| str_of(pod_spec.and_then(|s| s.get(f)));
            // Defaulted by the ServiceAccount admission plugin upstream.
            let pod_sa = [
                field("serviceAccountName"),
                field("serviceAccount"),
                "default",
            ];
            if pod_sa.into_iter().find(|s| !s.is_empty()) != Some(sa_name) {
                return Err(TokenError::BadRequest(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            let node_name = field("nodeName");
            if !node_name.is_empty() {
                let node = node.filter(|n| meta(n, "name") == node_name);
                let uid = node.map(|n| meta(n, "uid")).unwrap_or("").to_owned();
                k8s.node = Some(ObjectRef {
                    name: node_name.to_owned(),
                    uid,
                });
            }
            k8s.pod = Some(found);
        }
        "secrets" => k8s.secret = Some(found),
        _ => k8s.node = Some(found),
    }
    Ok(())
}

/// TokenReview `status.error` text for a failed verification (see module docs).
pub fn review_error_message(err: &TokenError) -> String {
    match err {
        TokenError::Malformed(_) | TokenError::InvalidIssuer(_) => "invalid bearer token".into(),
        other => format!("[invalid bearer token, {other}]"),
    }
}

/// Handles `POST /apis/authentication.k8s.io/v1/tokenreviews`. Returns the
/// review with `status` filled in; `Err` only for a missing `spec.token` or a
/// malformed body (HTTP 400). Like upstream, `status.authenticated` is
/// omitted (false) on failure and `status.user` is then `{}`. The caller
/// still has to confirm the ServiceAccount / bound objects exist and match.
pub fn token_review_response(
    review: &Value,
    verifier: &Verifier,
    issuer: &str,
    api_audiences: &[String],
    now: Timestamp,
) -> Result<Value, TokenError> {
    const KIND: &str = "TokenReview";
    let body = review.as_object();
    let body = body.ok_or_else(|| TokenError::bad("TokenReview body must be a JSON object"))?;
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let token = match spec.get("token") {
        None | Some(Value::Null) => "",
        Some(v) => v
            .as_str()
            .ok_or_else(|| decode_error(KIND, "spec.token", "string"))?,
    };
    if token.is_empty() {
        return Err(TokenError::bad(
            "token is required for TokenReview in authentication",
        ));
    }
    let mut requested = string_list(spec.get("audiences"), KIND, "spec.audiences")?;
    if requested.is_empty() {
        requested = api_audiences.to_vec();
    }
    let status = match verify(verifier, token, issuer, &requested, now) {
        Ok(v) => {
            let mut st = Map::new();
            st.insert("authenticated".into(), json!(true));
            st.insert("user".into(), json!(user_info(&v.claims)));
            if !v.audiences.is_empty() {
                st.insert("audiences".into(), json!(v.audiences));
            }
            Value::Object(st)
        }
        Err(e) => json!({ "user": {}, "error": review_error_message(&e) }),
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!(KIND));
    out.insert("apiVersion".into(), json!("authentication.k8s.io/v1"));
    out.insert("metadata".into(), json!({ "creationTimestamp": null }));
    for (k, v) in body.iter().filter(|(k, _)| *k != "status") {
        out.insert(k.clone(), v.clone());
    }
    out.insert("status".into(), status);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenError as E;

    const ISS: &str = "https://kubernetes.default.svc.cluster.local";
    const JTI: &str = "0f8e4a5c-1111-4222-8333-444455556666";
    const T0: i64 = 1_700_000_000;

    fn auds() -> Vec<String> {
        vec![ISS.to_owned()]
    }

    fn at(offset: i64) -> Timestamp {
        Timestamp::from_second(T0 + offset).unwrap()
    }

    fn r(name: &str, uid: &str) -> ObjectRef {
        let (name, uid) = (name.to_owned(), uid.to_owned());
        ObjectRef { name, uid }
    }

    fn claims() -> Claims {
        let kubernetes = KubernetesClaims {
            namespace: "default".into(),
            pod: Some(r("web", "pod-uid")),
            serviceaccount: r("default", "sa-uid"),
            ..Default::default()
        };
        let (iss, jti, aud) = (ISS.into(), JTI.into(), auds());
        let sub = make_username("default", "default");
        let (exp, iat, nbf) = (T0 + 3600, T0, T0);
        Claims {
            aud,
            exp,
            iat,
            iss,
            jti,
            kubernetes,
            nbf,
            sub,
        }
    }

    fn setup() -> (Verifier, SigningKey, String) {
        let (key, _) = SigningKey::generate().unwrap();
        let token = issue(&key, &claims()).unwrap();
        (Verifier::from_signing_keys(&[&key]), key, token)
    }

    fn check(v: &Verifier, token: &str, auds: &[String], now: i64) -> Result<Claims, E> {
        verify(v, token, ISS, auds, at(now)).map(|t| t.claims)
    }

    fn segment(token: &str, i: usize) -> Value {
        let part = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn flip_sig(token: &str) -> String {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[0] ^= 0x80;
        format!("{input}.{}", b64(&sig))
    }

    #[test]
    fn round_trip_and_wire_format() {
        let (v, key, token) = setup();
        let header = json!({"alg": "ES256", "kid": key.key_id()});
        assert_eq!(segment(&token, 0), header);
        let payload = segment(&token, 1);
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        let sorted = "aud exp iat iss jti kubernetes.io nbf sub";
        assert_eq!(keys, sorted.split(' ').collect::<Vec<_>>());
        assert_eq!(payload["kubernetes.io"]["serviceaccount"]["uid"], "sa-uid");
        let got = verify(&v, &token, ISS, &auds(), at(0)).unwrap();
        assert_eq!((got.claims, got.audiences), (claims(), auds()));
        // No requested audiences: any token audience is accepted.
        assert!(check(&v, &token, &[], 0).is_ok());
    }

    #[test]
    fn tampering_is_rejected() {
        let (v, _, token) = setup();
        let err = |t: &str| check(&v, t, &auds(), 0).unwrap_err();
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims();
        evil.kubernetes.serviceaccount.name = "admin".into();
        let evil = b64(&serde_json::to_vec(&evil).unwrap());
        let forged = format!("{}.{evil}.{}", parts[0], parts[2]);
        assert_eq!(err(&forged), E::InvalidSignature);
        assert_eq!(err(&flip_sig(&token)), E::InvalidSignature);
        let (_, _, foreign) = setup(); // other key, unknown kid
        assert_eq!(err(&foreign), E::NoMatchingKey);
        assert!(matches!(err("a.b"), E::Malformed(_)));
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(err(&none), E::UnsupportedAlgorithm("none".into()));
    }

    #[test]
    fn issuer_time_and_audience_checks() {
        let (v, _, token) = setup();
        let err = verify(&v, &token, "https://other", &auds(), at(0));
        assert_eq!(err, Err(E::InvalidIssuer(ISS.into())));
        // exp = T0 + 3600, nbf = iat = T0, leeway 60 s.
        let when = |now: i64| check(&v, &token, &auds(), now).err();
        assert_eq!(when(3660), None);
        assert_eq!(when(3661), Some(E::Expired));
        assert_eq!(when(-60), None);
        assert_eq!(when(-61), Some(E::NotYetValid));
        let err = check(&v, &token, &["vault".into()], 0).unwrap_err();
        let want =
            format!("token audiences [{ISS:?}] is invalid for the target audiences [\"vault\"]");
        assert_eq!(err.to_string(), want);
        let both = ["vault".into(), ISS.into()];
        let ok = verify(&v, &token, ISS, &both, at(0)).unwrap();
        assert_eq!(ok.audiences, auds());
    }

    #[test]
    fn kid_and_jwks() {
        let (key, der) = SigningKey::generate().unwrap();
        let reloaded = SigningKey::from_pkcs8(&der).unwrap();
        assert_eq!(key.key_id(), reloaded.key_id());
        let spki = key.verifying_key().spki_der();
        assert_eq!(spki.len(), 91);
        let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
        assert_eq!(key.key_id(), b64(digest.as_ref()));
        assert!(SigningKey::from_pkcs8(b"garbage").is_err());

        let jwks = key.jwks();
        let jwk = &jwks["keys"][0];
        let fields = ["kty", "crv", "alg", "use", "kid"].map(|f| jwk[f].as_str().unwrap());
        assert_eq!(fields, ["EC", "P-256", "ES256", "sig", &key.key_id()]);
        let coord = |f: &str| URL_SAFE_NO_PAD.decode(jwk[f].as_str().unwrap()).unwrap();
        let point = [&[4u8][..], &coord("x"), &coord("y")].concat();
        assert_eq!(point, key.pair.public_key().as_ref());
        // A verifier built from the published JWKS accepts the key's tokens.
        let v = Verifier::new(vec![VerifyingKey::from_jwk(jwk).unwrap()]);
        assert_eq!(v.jwks(), jwks);
        let token = issue(&reloaded, &claims()).unwrap();
        assert!(check(&v, &token, &auds(), 0).is_ok());
    }

    fn sa() -> Value {
        json!({"metadata": {"name": "default", "namespace": "default", "uid": "sa-uid"}})
    }

    fn pod() -> Value {
        let meta = json!({"name": "web", "namespace": "default", "uid": "pod-uid"});
        let spec = json!({"serviceAccountName": "default", "nodeName": "node-1"});
        json!({"kind": "Pod", "metadata": meta, "spec": spec})
    }

    fn tr(spec: Value) -> Value {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    }

    fn bind(kind: &str, name: &str, uid: &str) -> Value {
        let r = json!({"kind": kind, "apiVersion": "v1", "name": name, "uid": uid});
        json!({ "boundObjectRef": r })
    }

    type Res = Result<Value, TokenError>;

    fn request(req: &Value, bound: Option<&Value>, node: Option<&Value>) -> Res {
        let (key, _) = SigningKey::generate().unwrap();
        let (sa, auds) = (sa(), auds());
        token_request_response_with_node(req, &sa, bound, node, ISS, &auds, at(0), &key)
    }

    fn token_claims(out: &Value) -> Claims {
        let token = out["status"]["token"].as_str().unwrap();
        serde_json::from_value(segment(token, 1)).unwrap()
    }

    #[test]
    fn token_request_defaults() {
        let (v, key, _) = setup();
        let (req, sa, auds) = (tr(json!({})), sa(), auds());
        let out = token_request_response(&req, &sa, None, ISS, &auds, at(0), &key).unwrap();
        let created = "2023-11-14T22:13:20Z";
        let meta = json!({"name": "default", "namespace": "default", "creationTimestamp": created});
        assert_eq!(out["metadata"], meta);
        let spec = json!({"audiences": [ISS], "expirationSeconds": 3600});
        assert_eq!(out["spec"], spec);
        assert_eq!(out["status"]["expirationTimestamp"], "2023-11-14T23:13:20Z");
        let token = out["status"]["token"].as_str().unwrap();
        let c = check(&v, token, &auds, 0).unwrap();
        assert_eq!(
            (c.sub, c.exp, c.iat),
            (make_username("default", "default"), T0 + 3600, T0)
        );
        assert_eq!(c.kubernetes.serviceaccount, r("default", "sa-uid"));
        assert!(uuid::Uuid::parse_str(&c.jti).is_ok());
        assert!(c.kubernetes.pod.is_none() && c.kubernetes.warnafter.is_none());
    }

    #[test]
    fn token_request_bound_objects() {
        let mut spec = bind("Pod", "web", "pod-uid");
        spec["expirationSeconds"] = json!(7200);
        spec["audiences"] = json!(["api"]);
        let out = request(&tr(spec.clone()), Some(&pod()), None).unwrap();
        assert_eq!(out["spec"]["boundObjectRef"], spec["boundObjectRef"]);
        let k = token_claims(&out).kubernetes;
        assert_eq!(
            (k.pod, k.node),
            (Some(r("web", "pod-uid")), Some(r("node-1", "")))
        );
        assert_eq!(k.warnafter, None);

        // Kubelet's 3607 s projected token: node uid, one-year token, warnafter.
        let node = json!({"metadata": {"name": "node-1", "uid": "node-uid"}});
        let mut spec = bind("Pod", "web", "");
        spec["expirationSeconds"] = json!(3607);
        let out = request(&tr(spec), Some(&pod()), Some(&node)).unwrap();
        assert_eq!(out["status"]["expirationTimestamp"], "2023-11-14T23:13:27Z");
        let c = token_claims(&out);
        assert_eq!(c.kubernetes.node, Some(r("node-1", "node-uid")));
        assert_eq!(c.kubernetes.warnafter, Some(T0 + 3607));
        assert_eq!(c.exp, T0 + EXPIRATION_EXTENSION_SECONDS);

        let secret = json!({"metadata": {"name": "s", "uid": "sec-uid"}});
        let out = request(&tr(bind("Secret", "s", "")), Some(&secret), None).unwrap();
        assert_eq!(
            token_claims(&out).kubernetes.secret,
            Some(r("s", "sec-uid"))
        );
    }

    #[test]
    fn token_request_validation() {
        let err = |spec: Value, bound: Option<&Value>| request(&tr(spec), bound, None).unwrap_err();
        let msg = |spec: Value, bound: Option<&Value>| err(spec, bound).to_string();
        let e = err(json!({"expirationSeconds": 60}), None);
        assert_eq!(e.http_status(), 422);
        let want = "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: \
                    Invalid value: 60: may not specify a duration less than 10 minutes";
        assert_eq!(e.to_string(), want);
        let e = msg(json!({"expirationSeconds": (1i64 << 32) + 1}), None);
        assert!(e.ends_with("may not specify a duration larger than 2^32 seconds"));
        assert_eq!(
            err(json!({"expirationSeconds": "1h"}), None).http_status(),
            400
        );
        let e = msg(bind("ConfigMap", "c", ""), None);
        assert_eq!(e, "cannot bind token to object of type /v1, Kind=ConfigMap");
        let mut apps = bind("Pod", "c", "");
        apps["boundObjectRef"]["apiVersion"] = json!("apps/v1");
        let e = msg(apps, None);
        assert_eq!(e, "cannot bind token to object of type apps/v1, Kind=Pod");
        assert_eq!(msg(bind("Pod", "", ""), None), "Name parameter required.");
        assert_eq!(msg(bind("Pod", "web", ""), None), "pods \"web\" not found");
        let e = err(bind("Pod", "web", "x"), Some(&pod()));
        assert_eq!(e.http_status(), 409);
        let want = "Operation cannot be fulfilled on Pod \"web\": the UID in the bound object \
                    reference (x) does not match the UID in record.";
        assert!(e.to_string().starts_with(want));
        let mut other = pod();
        other["spec"]["serviceAccountName"] = json!("builder");
        let e = msg(bind("Pod", "web", ""), Some(&other));
        assert!(e.contains("to pod running with different serviceaccount name."));
        let mut req = tr(json!({}));
        req["metadata"] = json!({"name": "other"});
        let e = request(&req, None, None).unwrap_err().to_string();
        let want = "metadata.name: Invalid value: \"other\": must match the service account name";
        assert!(e.contains(want));
    }

    fn review(v: &Verifier, token: &str, audiences: Value, now: i64) -> Value {
        let spec = json!({"token": token, "audiences": audiences});
        let body =
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec});
        token_review_response(&body, v, ISS, &auds(), at(now)).unwrap()
    }

    #[test]
    fn token_review_success_and_failure() {
        let (v, _, token) = setup();
        let out = review(&v, &token, json!([]), 0);
        assert_eq!(out["metadata"], json!({"creationTimestamp": null}));
        let ns = "system:serviceaccounts:default";
        let user = json!({
            "username": make_username("default", "default"),
            "uid": "sa-uid",
            "groups": ["system:serviceaccounts", ns, "system:authenticated"],
            "extra": {
                CREDENTIAL_ID_KEY: [format!("JTI={JTI}")],
                POD_NAME_KEY: ["web"],
                POD_UID_KEY: ["pod-uid"],
            },
        });
        let status = json!({"authenticated": true, "user": user, "audiences": [ISS]});
        assert_eq!(out["status"], status);

        let error =
            |token: &str, auds: Value, now: i64| review(&v, token, auds, now)["status"].clone();
        let crypto = "[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]";
        let bad = error(&flip_sig(&token), json!(null), 0);
        assert_eq!(bad, json!({"user": {}, "error": crypto}));
        let e = error(&token, json!(["vault"]), 0)["error"].to_string();
        assert!(e.contains("for the target audiences"));
        let expired = "[invalid bearer token, service account token has expired]";
        assert_eq!(error(&token, json!([]), 4000)["error"], expired);
        assert_eq!(
            error("garbage", json!([]), 0)["error"],
            "invalid bearer token"
        );
        let empty = json!({"spec": {"token": ""}});
        let e = token_review_response(&empty, &v, ISS, &auds(), at(0)).unwrap_err();
        assert_eq!(e.http_status(), 400);
    }
}
