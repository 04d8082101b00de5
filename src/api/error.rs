//! API errors and their one mapping into `metav1.Status` responses, with the reasons, codes
//! and messages kube-apiserver uses (kubectl prints them as `Error from server (<reason>):
//! <message>`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A `details.causes[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, …
    pub reason: String,
    /// The message.
    pub message: String,
    /// The field path.
    pub field: String,
}

/// What the resource in an error is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// API group.
    pub group: String,
    /// Plural resource name (details.kind).
    pub resource: String,
    /// Object name.
    pub name: String,
}

impl Target {
    /// `deployments.apps` or `configmaps`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// An error answered to an API client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404 for an object.
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Target),
    /// 404 for a path the server does not serve.
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    /// 409 on create.
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Target),
    /// 409 on a stale write.
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .0.qualified(), .0.name, .1)]
    Conflict(Target, String),
    /// 422 with field causes; the message is built by the caller.
    #[error("{message}")]
    Invalid {
        /// The kind (details.kind for Invalid is the kind, not the plural).
        kind: String,
        /// The group.
        group: String,
        /// The name.
        name: String,
        /// The full message.
        message: String,
        /// The causes.
        causes: Vec<Cause>,
    },
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 405.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// 410 Expired (resourceVersion or continue token too old).
    #[error("{0}")]
    Expired(String),
    /// 413.
    #[error("the request is too large (limit is {0} bytes)")]
    TooLarge(usize),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 504.
    #[error("{0}")]
    Timeout(String),
    /// A complete Status built elsewhere (RBAC's 403, server-side apply conflicts).
    #[error("{}", .1["message"].as_str().unwrap_or("error"))]
    Status(StatusCode, Value),
    /// 504 for a resourceVersion the store has not reached.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// Asked for.
        requested: u64,
        /// The store's revision.
        current: u64,
    },
}

impl ApiError {
    /// The HTTP code.
    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) | ApiError::NoSuchPath => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists(_) | ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Expired(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) | ApiError::TooLargeResourceVersion { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ApiError::Status(code, _) => *code,
        }
    }

    /// The Status reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::NoSuchPath => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(..) => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Expired(_) => "Expired",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(_) | ApiError::TooLargeResourceVersion { .. } => "Timeout",
            ApiError::Status(..) => "",
        }
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        if let ApiError::Status(_, v) = self {
            return v.clone();
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound(t) | ApiError::AlreadyExists(t) | ApiError::Conflict(t, _) => {
                let mut d = json!({"name": t.name, "kind": t.resource});
                if !t.group.is_empty() {
                    d["group"] = json!(t.group);
                }
                Some(d)
            }
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
                ..
            } => {
                let mut d = json!({"name": name, "kind": kind});
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                d["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                Some(d)
            }
            ApiError::TooLargeResourceVersion { .. } => Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1
            })),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut resp = (self.code(), body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if matches!(self, ApiError::TooLargeResourceVersion { .. }) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_kube_apiserver() {
        let t = Target {
            group: "apps".into(),
            resource: "deployments".into(),
            name: "web".into(),
        };
        let nf = ApiError::NotFound(t.clone()).status();
        assert_eq!(nf["message"], "deployments.apps \"web\" not found");
        assert_eq!(nf["code"], 404);
        assert_eq!(
            nf["details"],
            json!({"name": "web", "kind": "deployments", "group": "apps"})
        );
        let c = ApiError::Conflict(t, "the object has been modified; please apply your changes to the latest version and try again".into());
        assert_eq!(
            c.to_string(),
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(c.status()["reason"], "Conflict");
        let ae = ApiError::AlreadyExists(Target {
            group: String::new(),
            resource: "configmaps".into(),
            name: "cfg".into(),
        });
        assert_eq!(ae.to_string(), "configmaps \"cfg\" already exists");
        assert_eq!(
            ae.status()["details"],
            json!({"name": "cfg", "kind": "configmaps"})
        );
    }
}
