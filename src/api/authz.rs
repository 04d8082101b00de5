//! Authorization of every request with RBAC over the stored Roles, ClusterRoles and bindings
//! (`system:masters` bypasses it), and the access-review answers built on the same evaluator.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::auth::Identity;
use super::error::ApiError;
use super::rbac::{self, Attributes, RbacSource};
use super::request::{Query, Route};
use crate::store::Store;

const RBAC: &str = "rbac.authorization.k8s.io";

/// The store as RBAC's source of roles and bindings.
pub struct StoreRbac<'a>(pub &'a Store);

impl StoreRbac<'_> {
    fn all(&self, plural: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
        self.0
            .list(&format!("{plural}.{RBAC}"), namespace, None, 0, &|_| true)
            .items
            .iter()
            .map(|o| o.parsed())
            .collect()
    }

    fn one(&self, plural: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.0
            .get(&format!("{plural}.{RBAC}"), namespace, name)
            .map(|o| o.parsed())
    }
}

impl RbacSource for StoreRbac<'_> {
    fn cluster_roles(&self) -> Vec<Arc<Value>> {
        self.all("clusterroles", None)
    }
    fn cluster_role_bindings(&self) -> Vec<Arc<Value>> {
        self.all("clusterrolebindings", None)
    }
    fn roles(&self, namespace: &str) -> Vec<Arc<Value>> {
        self.all("roles", Some(namespace))
    }
    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>> {
        self.all("rolebindings", Some(namespace))
    }
    fn cluster_role(&self, name: &str) -> Option<Arc<Value>> {
        self.one("clusterroles", "", name)
    }
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.one("roles", namespace, name)
    }
}

/// The attributes of a request, as kube-apiserver's RequestInfo derives them.
pub fn attributes(
    identity: &Identity,
    method: &Method,
    path: &str,
    route: &Route,
    query: &Query,
) -> Attributes {
    match route {
        Route::Resource(p) => {
            let watch = p.legacy_watch || query.flag("watch");
            let verb = rbac::verb_for(method.as_str(), p.name.is_some(), watch && p.name.is_none());
            // The namespace object itself is addressed by name in the "namespaces" collection.
            let (namespace, name) =
                if p.group.is_empty() && p.plural == "namespaces" && p.namespace.is_none() {
                    (
                        p.name.clone().unwrap_or_default(),
                        p.name.clone().unwrap_or_default(),
                    )
                } else {
                    (
                        p.namespace.clone().unwrap_or_default(),
                        p.name.clone().unwrap_or_default(),
                    )
                };
            Attributes {
                user: identity.user.clone(),
                groups: identity.groups.clone(),
                verb: verb.to_string(),
                api_group: p.group.clone(),
                resource: p.plural.clone(),
                // `pods/NAME/proxy/some/path` is the `proxy` subresource.
                subresource: p
                    .subresource
                    .as_deref()
                    .map(|s| s.split('/').next().unwrap_or(s).to_string())
                    .unwrap_or_default(),
                namespace,
                name,
                resource_request: true,
                path: path.to_string(),
            }
        }
        _ => Attributes::non_resource(
            &identity.user,
            &identity.groups,
            &rbac::non_resource_verb(method.as_str()),
            path,
        ),
    }
}

/// Allows the request or answers 403 with kube-apiserver's message.
pub fn check(
    store: &Store,
    identity: &Identity,
    method: &Method,
    path: &str,
    route: &Route,
    query: &Query,
) -> Result<(), ApiError> {
    if identity.groups.iter().any(|g| g == rbac::MASTERS_GROUP) {
        return Ok(());
    }
    let a = attributes(identity, method, path, route, query);
    let decision = rbac::authorize(&StoreRbac(store), &a);
    if decision.allowed {
        return Ok(());
    }
    Err(ApiError::Status(
        StatusCode::FORBIDDEN,
        rbac::forbidden_status(&a, &decision.reason),
    ))
}

/// Whether `identity` may do what a (Self|Local)SubjectAccessReview `spec` describes.
fn review_decision(
    store: &Store,
    user: &str,
    groups: &[String],
    spec: &Value,
    namespace_override: Option<&str>,
) -> Value {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let a = if let Some(r) = spec.get("resourceAttributes") {
        Attributes {
            user: user.to_string(),
            groups: groups.to_vec(),
            verb: s(r, "verb"),
            api_group: s(r, "group"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: namespace_override
                .map(str::to_string)
                .unwrap_or_else(|| s(r, "namespace")),
            name: s(r, "name"),
            resource_request: true,
            path: String::new(),
        }
    } else {
        let n = spec
            .get("nonResourceAttributes")
            .cloned()
            .unwrap_or(Value::Null);
        Attributes::non_resource(user, groups, &s(&n, "verb"), &s(&n, "path"))
    };
    let d = rbac::authorize(&StoreRbac(store), &a);
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    status
}

/// The `status` of a review object created by `identity`.
pub fn review_status(
    store: &Store,
    identity: &Identity,
    kind: &str,
    obj: &Value,
    namespace: &str,
) -> Result<Value, ApiError> {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        "SelfSubjectAccessReview" => Ok(review_decision(
            store,
            &identity.user,
            &identity.groups,
            &spec,
            None,
        )),
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let user = spec
                .get("user")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let groups = strings(spec.get("groups"));
            let ns = (kind == "LocalSubjectAccessReview").then_some(namespace);
            Ok(review_decision(store, &user, &groups, &spec, ns))
        }
        "SelfSubjectRulesReview" => {
            let ns = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            Ok(rbac::rules_review(
                &StoreRbac(store),
                &identity.user,
                &identity.groups,
                ns,
            ))
        }
        "SelfSubjectReview" => {
            Ok(json!({"userInfo": {"username": identity.user, "groups": identity.groups}}))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// RBAC's escalation check for writes of roles and bindings.
pub fn check_escalation(
    store: &Store,
    identity: &Identity,
    plural: &str,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(kind) = rbac::RbacKind::from_plural(plural) else {
        return Ok(());
    };
    rbac::check_escalation(
        &StoreRbac(store),
        &identity.user,
        &identity.groups,
        kind,
        namespace,
        new,
        old,
    )
    .map_err(|e| {
        let status = e.status();
        let code = StatusCode::from_u16(status["code"].as_u64().unwrap_or(403) as u16)
            .unwrap_or(StatusCode::FORBIDDEN);
        ApiError::Status(code, status)
    })
}
