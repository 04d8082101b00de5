//! ServiceAccount tokens at the API edge: the signing key in the data dir, the
//! `serviceaccounts/<name>/token` subresource (TokenRequest), `tokenreviews`, and bearer
//! authentication with the tokens issued. The token format itself is
//! [`super::service_account_token`].

use std::path::Path;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth::Identity;
use super::error::ApiError;
use super::service_account_token::{self as sat, SigningKey, TokenError, Verifier};
use crate::store::Store;

/// The issuer kube-apiserver uses by default (`--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// File of the signing key (PKCS#8 DER, base64) inside the data dir's `pki/`.
const KEY_FILE: &str = "service-account-key.pk8";

/// Errors loading the signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("service account key {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// The key that signs ServiceAccount tokens and what verifies them.
pub struct ServiceAccountTokens {
    key: SigningKey,
    verifier: Verifier,
    /// The `iss` claim.
    pub issuer: String,
    /// The API's audiences (a token without an explicit audience gets these).
    pub audiences: Vec<String>,
}

impl ServiceAccountTokens {
    /// Loads the key from `pki_dir`, creating (and fsyncing) it on first start.
    pub fn load_or_create(pki_dir: &Path) -> Result<ServiceAccountTokens, KeyError> {
        use base64::Engine;
        let path = pki_dir.join(KEY_FILE);
        let err = |message: String| KeyError::File {
            path: path.display().to_string(),
            message,
        };
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| err(format!("not base64: {e}")))?;
                SigningKey::from_pkcs8(&der).map_err(|e| err(e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, der) = SigningKey::generate().map_err(|e| err(e.to_string()))?;
                std::fs::create_dir_all(pki_dir).map_err(|e| err(e.to_string()))?;
                let text = base64::engine::general_purpose::STANDARD.encode(der);
                crate::tls::write_secret(&path, &text).map_err(|e| err(e.to_string()))?;
                key
            }
            Err(e) => return Err(err(e.to_string())),
        };
        let verifier = Verifier::from_signing_keys(&[&key]);
        Ok(ServiceAccountTokens {
            key,
            verifier,
            issuer: ISSUER.to_string(),
            audiences: vec![ISSUER.to_string()],
        })
    }

    /// The identity of a bearer token this server issued, if it verifies and the
    /// ServiceAccount (and the object it is bound to, if any) still exists with the uid the
    /// token names.
    pub fn authenticate(&self, store: &Store, token: &str) -> Option<Identity> {
        if token.split('.').count() != 3 {
            return None;
        }
        let now = jiff::Timestamp::now();
        let verified =
            sat::verify(&self.verifier, token, &self.issuer, &self.audiences, now).ok()?;
        if !claims_still_valid(store, &verified.claims) {
            return None;
        }
        let user = sat::user_info(&verified.claims);
        Some(Identity {
            user: user.username,
            groups: user.groups,
        })
    }

    /// `POST serviceaccounts/<name>/token`: the TokenRequest with its token.
    pub fn token_request(
        &self,
        store: &Store,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let sa = store
            .get("serviceaccounts", namespace, name)
            .ok_or_else(|| not_found("serviceaccounts", name))?
            .parsed();
        let bound = match body.pointer("/spec/boundObjectRef") {
            None | Some(Value::Null) => None,
            Some(r) => {
                let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
                let bound_name = r.get("name").and_then(Value::as_str).unwrap_or("");
                let (resource, ns) = match kind {
                    "Pod" => ("pods", namespace),
                    "Secret" => ("secrets", namespace),
                    "Node" => ("nodes", ""),
                    // The pure core reports unsupported kinds with upstream's message.
                    _ => ("", ""),
                };
                if resource.is_empty() {
                    None
                } else {
                    Some(
                        store
                            .get(resource, ns, bound_name)
                            .ok_or_else(|| not_found(resource, bound_name))?
                            .parsed(),
                    )
                }
            }
        };
        let node = bound
            .as_ref()
            .filter(|b| b.get("kind").and_then(Value::as_str) == Some("Pod"))
            .and_then(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
            .and_then(|n| store.get("nodes", "", n))
            .map(|n| n.parsed());
        sat::token_request_response_with_node(
            body,
            &sa,
            bound.as_deref(),
            node.as_deref(),
            &self.issuer,
            &self.audiences,
            jiff::Timestamp::now(),
            &self.key,
        )
        .map_err(to_api_error)
    }

    /// The `status` of a TokenReview (authenticated only while the ServiceAccount and bound
    /// object still exist).
    pub fn token_review(&self, store: &Store, review: &Value) -> Result<Value, ApiError> {
        let now = jiff::Timestamp::now();
        let mut out =
            sat::token_review_response(review, &self.verifier, &self.issuer, &self.audiences, now)
                .map_err(to_api_error)?;
        if out.pointer("/status/authenticated") == Some(&Value::Bool(true)) {
            let token = review
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or("");
            let audiences: Vec<String> = review
                .pointer("/spec/audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .filter(|a: &Vec<String>| !a.is_empty())
                .unwrap_or_else(|| self.audiences.clone());
            let valid = sat::verify(&self.verifier, token, &self.issuer, &audiences, now)
                .ok()
                .is_some_and(|v| claims_still_valid(store, &v.claims));
            if !valid {
                out["status"] = json!({"user": {}, "error": "[invalid bearer token, service account token has been invalidated]"});
            }
        }
        Ok(out.get("status").cloned().unwrap_or(Value::Null))
    }
}

/// The ServiceAccount, and the pod or secret the token is bound to, still exist with the
/// uids the token names (a deleted and recreated namesake does not inherit its tokens).
fn claims_still_valid(store: &Store, claims: &sat::Claims) -> bool {
    let k = &claims.kubernetes;
    let same = |resource: &str, ns: &str, r: &sat::ObjectRef| {
        store
            .get(resource, ns, &r.name)
            .is_some_and(|o| o.uid == r.uid && !o.deleting)
    };
    same("serviceaccounts", &k.namespace, &k.serviceaccount)
        && k.pod.as_ref().is_none_or(|p| same("pods", &k.namespace, p))
        && k.secret
            .as_ref()
            .is_none_or(|s| same("secrets", &k.namespace, s))
}

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::Status(
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{resource} \"{name}\" not found"), "reason": "NotFound",
               "details": {"name": name, "kind": resource}, "code": 404}),
    )
}

fn to_api_error(e: TokenError) -> ApiError {
    let code = e.http_status();
    let reason = match code {
        422 => "Invalid",
        400 => "BadRequest",
        404 => "NotFound",
        409 => "Conflict",
        401 => "Unauthorized",
        _ => "InternalError",
    };
    ApiError::Status(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": e.to_string(), "reason": reason, "code": code}),
    )
}
