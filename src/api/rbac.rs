//! RBAC: the pure core of `rbac.authorization.k8s.io/v1` authorization.
//!
//! Everything here works on JSON objects (`Role`, `ClusterRole`, `RoleBinding`,
//! `ClusterRoleBinding`) that the caller supplies through [`RbacSource`]; nothing touches the
//! store, Raft or HTTP. The behaviour follows kube-apiserver 1.33:
//!
//! - [`authorize`]: the RBAC authorizer (ClusterRoleBindings first, then the RoleBindings of
//!   the request's namespace; the first rule that allows wins) with the `system:masters`
//!   bypass in front of it, and the reasons the apiserver reports (`RBAC: allowed by …`).
//! - [`forbidden_message`] / [`forbidden_status`]: the 403 `Status` the apiserver writes.
//! - [`rules_review`]: `SelfSubjectRulesReview` status.
//! - [`aggregate`]: the ClusterRole aggregation controller, run to a fixed point.
//! - [`bootstrap_cluster_roles`] / [`bootstrap_cluster_role_bindings`]: default policy.
//! - [`check_escalation`]: the escalation prevention of the RBAC registries.
//!
//! **Invariant:** pure functions of their inputs; output order follows input order (the
//! caller decides list order, e.g. by name) so results are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// The API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Members of this group bypass authorization and escalation checks.
pub const MASTERS_GROUP: &str = "system:masters";
/// Annotation marking bootstrap policy as reconciled on start.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

const SA_PREFIX: &str = "system:serviceaccount:";

// ---------------------------------------------------------------------------------------------
// Request attributes
// ---------------------------------------------------------------------------------------------

/// What a request wants to do, as the authorizer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: String,
    pub groups: Vec<String>,
    /// `get`, `list`, `watch`, `create`, … for resource requests; the lower-case HTTP method
    /// for non-resource requests (see [`non_resource_verb`]).
    pub verb: String,
    pub api_group: String,
    /// Plural resource name (`pods`).
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub resource_request: bool,
    /// The request path; only used for non-resource requests.
    pub path: String,
}

impl Attributes {
    /// A non-resource request (`/healthz`, `/version`, …).
    pub fn non_resource(user: &str, groups: &[String], verb: &str, path: &str) -> Attributes {
        Attributes {
            user: user.to_string(),
            groups: groups.to_vec(),
            verb: verb.to_string(),
            path: path.to_string(),
            resource_request: false,
            ..Attributes::default()
        }
    }
}

/// The authorization verb of a resource request.
///
/// `has_name`: the path names one object. `watch`: the request is a watch (`?watch=true` on a
/// collection, or the legacy `/watch/` prefix). Upstream, `?watch=true` on a named GET stays
/// `get`; the caller passes `watch = false` for it.
pub fn verb_for(method: &str, has_name: bool, watch: bool) -> &'static str {
    match method.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" => {
            if watch {
                "watch"
            } else if has_name {
                "get"
            } else {
                "list"
            }
        }
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => {
            if has_name {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => "",
    }
}

/// The verb of a non-resource request: the lower-case HTTP method (`get`, `post`, …).
pub fn non_resource_verb(method: &str) -> String {
    method.to_ascii_lowercase()
}

/// The decision of [`authorize`]; `reason` is what SubjectAccessReview reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// The RBAC objects, as JSON, from wherever the caller keeps them.
pub trait RbacSource {
    fn cluster_roles(&self) -> Vec<Arc<Value>>;
    fn cluster_role_bindings(&self) -> Vec<Arc<Value>>;
    fn roles(&self, namespace: &str) -> Vec<Arc<Value>>;
    fn role_bindings(&self, namespace: &str) -> Vec<Arc<Value>>;
    fn cluster_role(&self, name: &str) -> Option<Arc<Value>>;
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Value>>;
}

// ---------------------------------------------------------------------------------------------
// Policy rules
// ---------------------------------------------------------------------------------------------

/// One `PolicyRule`; missing, `null` and empty lists are all empty (upstream compares them
/// semantically equal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    pub fn from_json(v: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The v1 JSON form (`verbs` always present, the other lists only when non-empty).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (k, list) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() {
                m.insert(k.into(), json!(list));
            }
        }
        Value::Object(m)
    }

    /// Whether this rule allows the request (upstream `RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        if !verb_matches(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|u| url_covers(u, &a.path));
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.api_groups
            .iter()
            .any(|g| g == "*" || *g == a.api_group)
            && self.resources.iter().any(|r| {
                r == "*"
                    || *r == combined
                    || (!a.subresource.is_empty()
                        && r.len() == a.subresource.len() + 2
                        && r.starts_with("*/")
                        && r.ends_with(a.subresource.as_str()))
            })
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }

    /// Upstream `CompactString`, used in escalation messages.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        for (label, list) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label}:{}", go_quote_list(list)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn verb_matches(verbs: &[String], verb: &str) -> bool {
    verbs.iter().any(|v| v == "*" || v == verb)
}

/// `owner` covers `path`: equal, or `owner` ends in `*` and `path` starts with the rest.
fn url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn rules_of(role: &Value) -> Vec<PolicyRule> {
    role.get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(PolicyRule::from_json).collect())
        .unwrap_or_default()
}

use crate::resources::validation::go_quote;

/// Go's `%q` for a `[]string`: `["a" "b"]`.
fn go_quote_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// `utilerrors.NewAggregate(..).Error()`: one message as is, several deduplicated in `[a, b]`.
fn aggregate_errors(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        [one] => one.clone(),
        many => {
            let mut seen: Vec<&str> = Vec::new();
            for e in many {
                if !seen.contains(&e.as_str()) {
                    seen.push(e);
                }
            }
            if seen.len() == 1 {
                seen[0].to_string()
            } else {
                format!("[{}]", seen.join(", "))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rule resolution
// ---------------------------------------------------------------------------------------------

/// The binding and subject a rule came from (upstream's describers).
struct RuleSource<'a> {
    binding: &'a Value,
    subject: &'a Value,
    /// `None` for a ClusterRoleBinding.
    namespace: Option<&'a str>,
}

impl RuleSource<'_> {
    fn describe(&self) -> String {
        let name = text(self.binding, "/metadata/name");
        let kind = text(self.binding, "/roleRef/kind");
        let role = text(self.binding, "/roleRef/name");
        let subject = describe_subject(self.subject, self.namespace.unwrap_or_default());
        match self.namespace {
            None => format!(
                "ClusterRoleBinding {} of {kind} {} to {subject}",
                go_quote(name),
                go_quote(role)
            ),
            Some(ns) => format!(
                "RoleBinding {} of {kind} {} to {subject}",
                go_quote(&format!("{name}/{ns}")),
                go_quote(role)
            ),
        }
    }
}

fn describe_subject(s: &Value, binding_ns: &str) -> String {
    let kind = text(s, "/kind");
    let name = text(s, "/name");
    if kind == "ServiceAccount" {
        let ns = match text(s, "/namespace") {
            "" => binding_ns,
            ns => ns,
        };
        format!("{kind} {}", go_quote(&format!("{name}/{ns}")))
    } else {
        format!("{kind} {}", go_quote(name))
    }
}

/// Whether a binding subject names this user (upstream `appliesToUser`). `namespace` is the
/// binding's namespace ("" for ClusterRoleBindings) and defaults a ServiceAccount subject's.
fn subject_applies(user: &str, groups: &[String], subject: &Value, namespace: &str) -> bool {
    let name = text(subject, "/name");
    match text(subject, "/kind") {
        "User" => user == name,
        "Group" => groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = match text(subject, "/namespace") {
                "" => namespace,
                ns => ns,
            };
            !ns.is_empty()
                && user
                    .strip_prefix(SA_PREFIX)
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(n, sa)| n == ns && sa == name)
        }
        _ => false,
    }
}

/// The rules a role reference grants (upstream `GetRoleReferenceRules`).
fn role_ref_rules<S: RbacSource + ?Sized>(
    src: &S,
    kind: &str,
    name: &str,
    binding_ns: &str,
) -> Result<Vec<PolicyRule>, String> {
    match kind {
        "ClusterRole" => src
            .cluster_role(name)
            .map(|r| rules_of(&r))
            .ok_or_else(|| format!("clusterrole.{RBAC_GROUP} {} not found", go_quote(name))),
        "Role" => {
            let role = if binding_ns.is_empty() {
                None
            } else {
                src.role(binding_ns, name)
            };
            role.map(|r| rules_of(&r))
                .ok_or_else(|| format!("role.{RBAC_GROUP} {} not found", go_quote(name)))
        }
        other => Err(format!(
            "unsupported role reference kind: {}",
            go_quote(other)
        )),
    }
}

enum Visit<'a> {
    Rule(&'a PolicyRule, &'a RuleSource<'a>),
    Error(String),
}

/// Visits every rule that applies to the user in `namespace` ("" = cluster scope only), in
/// upstream order; stops when `visit` returns false.
fn visit_rules_for<S: RbacSource + ?Sized>(
    src: &S,
    user: &str,
    groups: &[String],
    namespace: &str,
    visit: &mut dyn FnMut(Visit<'_>) -> bool,
) {
    let cluster_bindings = src.cluster_role_bindings();
    let namespaced: Vec<Arc<Value>> = if namespace.is_empty() {
        Vec::new()
    } else {
        src.role_bindings(namespace)
    };
    let all = cluster_bindings
        .iter()
        .map(|b| (&**b, None))
        .chain(namespaced.iter().map(|b| (&**b, Some(namespace))));
    for (binding, ns) in all {
        let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
            continue;
        };
        let Some(subject) = subjects
            .iter()
            .find(|s| subject_applies(user, groups, s, ns.unwrap_or_default()))
        else {
            continue;
        };
        let rules = role_ref_rules(
            src,
            text(binding, "/roleRef/kind"),
            text(binding, "/roleRef/name"),
            ns.unwrap_or_default(),
        );
        match rules {
            Ok(rules) => {
                let source = RuleSource {
                    binding,
                    subject,
                    namespace: ns,
                };
                for rule in &rules {
                    if !visit(Visit::Rule(rule, &source)) {
                        return;
                    }
                }
            }
            Err(e) => {
                if !visit(Visit::Error(e)) {
                    return;
                }
            }
        }
    }
}

/// All rules the user holds in `namespace` plus resolution errors (upstream `RulesFor`).
fn rules_for<S: RbacSource + ?Sized>(
    src: &S,
    user: &str,
    groups: &[String],
    namespace: &str,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    visit_rules_for(src, user, groups, namespace, &mut |v| {
        match v {
            Visit::Rule(r, _) => rules.push(r.clone()),
            Visit::Error(e) => errors.push(e),
        }
        true
    });
    (rules, errors)
}

fn is_master(groups: &[String]) -> bool {
    groups.iter().any(|g| g == MASTERS_GROUP)
}

/// Authorizes a request: `system:masters` first, then RBAC. A denial's reason carries the
/// resolution errors (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), if any.
pub fn authorize<S: RbacSource + ?Sized>(src: &S, a: &Attributes) -> Decision {
    if is_master(&a.groups) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut allowed_by = None;
    let mut errors = Vec::new();
    visit_rules_for(src, &a.user, &a.groups, &a.namespace, &mut |v| match v {
        Visit::Rule(rule, source) => {
            if rule.allows(a) {
                allowed_by = Some(format!("RBAC: allowed by {}", source.describe()));
                false
            } else {
                true
            }
        }
        Visit::Error(e) => {
            errors.push(e);
            true
        }
    });
    match allowed_by {
        Some(reason) => Decision {
            allowed: true,
            reason,
        },
        None => Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate_errors(&errors))
            },
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Forbidden
// ---------------------------------------------------------------------------------------------

/// Escapes `&`, `<`, `>` as the apiserver does before writing a Forbidden message.
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The authorizer half of the message: `User "x" cannot get resource "pods" in API group ""
/// in the namespace "ns"` (or `at the cluster scope`, or `cannot get path "/foo"`).
fn forbidden_detail(a: &Attributes) -> String {
    let user = go_quote(&a.user);
    if !a.resource_request {
        return format!("User {user} cannot {} path {}", a.verb, go_quote(&a.path));
    }
    let mut resource = a.resource.clone();
    if !a.subresource.is_empty() {
        resource = format!("{resource}/{}", a.subresource);
    }
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {}", go_quote(&a.namespace))
    };
    format!(
        "User {user} cannot {} resource {} in API group {} {scope}",
        a.verb,
        go_quote(&resource),
        go_quote(&a.api_group)
    )
}

fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// `NewForbidden`'s message prefix.
fn forbidden_prefix(group: &str, resource: &str, name: &str) -> String {
    if group.is_empty() && resource.is_empty() {
        "forbidden".to_string()
    } else if name.is_empty() {
        format!("{} is forbidden", qualified_resource(group, resource))
    } else {
        format!(
            "{} {} is forbidden",
            qualified_resource(group, resource),
            go_quote(name)
        )
    }
}

/// The message of the 403 kube-apiserver returns for a denied request (without a reason).
pub fn forbidden_message(a: &Attributes) -> String {
    forbidden_message_with_reason(a, "")
}

/// [`forbidden_message`] with the authorizer's reason appended (`…: RBAC: …`) when non-empty.
pub fn forbidden_message_with_reason(a: &Attributes, reason: &str) -> String {
    let (group, resource) = if a.resource_request {
        (a.api_group.as_str(), a.resource.as_str())
    } else {
        ("", "")
    };
    let mut detail = sanitize(&forbidden_detail(a));
    if !reason.is_empty() {
        detail = format!("{detail}: {reason}");
    }
    format!("{}: {detail}", forbidden_prefix(group, resource, &a.name))
}

fn status_details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    Value::Object(d)
}

fn failure_status(message: &str, reason: &str, details: Value, code: u16) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    })
}

/// The full `metav1.Status` of the 403 (details: `name`, `group`, `kind` = resource; `{}` for
/// non-resource requests).
pub fn forbidden_status(a: &Attributes, reason: &str) -> Value {
    let details = if a.resource_request {
        status_details(&a.api_group, &a.resource, &a.name)
    } else {
        json!({})
    };
    failure_status(
        &forbidden_message_with_reason(a, reason),
        "Forbidden",
        details,
        403,
    )
}

// ---------------------------------------------------------------------------------------------
// SelfSubjectRulesReview
// ---------------------------------------------------------------------------------------------

/// `SelfSubjectRulesReview.status` for the user in `namespace`.
pub fn rules_review<S: RbacSource + ?Sized>(
    src: &S,
    user: &str,
    groups: &[String],
    namespace: &str,
) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    if is_master(groups) {
        resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    let (rules, errors) = rules_for(src, user, groups, namespace);
    for r in &rules {
        if !r.resources.is_empty() {
            let mut m = Map::new();
            m.insert("verbs".into(), json!(r.verbs));
            m.insert("apiGroups".into(), json!(r.api_groups));
            m.insert("resources".into(), json!(r.resources));
            if !r.resource_names.is_empty() {
                m.insert("resourceNames".into(), json!(r.resource_names));
            }
            if r.api_groups.is_empty() {
                m.remove("apiGroups");
            }
            resource_rules.push(Value::Object(m));
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(aggregate_errors(&errors));
    }
    status
}

// ---------------------------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------------------------

/// Whether a `metav1.LabelSelector` matches `labels`; `None` if the selector is invalid.
/// `null` matches nothing, `{}` everything.
pub fn label_selector_matches(selector: &Value, labels: &Map<String, Value>) -> Option<bool> {
    let Some(sel) = selector.as_object() else {
        return if selector.is_null() {
            Some(false)
        } else {
            None
        };
    };
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = sel.get("matchLabels").filter(|v| !v.is_null()) {
        for (k, v) in ml.as_object()? {
            if label(k) != Some(v.as_str()?) {
                return Some(false);
            }
        }
    }
    if let Some(me) = sel.get("matchExpressions").filter(|v| !v.is_null()) {
        for expr in me.as_array()? {
            let key = expr.get("key")?.as_str()?;
            let values: Vec<&str> = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => v
                    .as_array()?
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<_>>()?,
            };
            let ok = match expr.get("operator")?.as_str()? {
                "In" if !values.is_empty() => label(key).is_some_and(|l| values.contains(&l)),
                "NotIn" if !values.is_empty() => !label(key).is_some_and(|l| values.contains(&l)),
                "Exists" if values.is_empty() => label(key).is_some(),
                "DoesNotExist" if values.is_empty() => label(key).is_none(),
                _ => return None,
            };
            if !ok {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// ClusterRole aggregation: for every ClusterRole with an `aggregationRule`, the union
/// (first occurrence kept, selectors in order, matched roles by name) of the rules of the
/// other ClusterRoles its `clusterRoleSelectors` match. Iterated to a fixed point, so roles
/// aggregated into roles (`view` → `edit` → `admin`) settle in one call. Returns only the
/// roles whose rules change, with their new `rules` array. A role with an invalid selector
/// is left alone (upstream's controller errors and retries).
pub fn aggregate(cluster_roles: &[Value]) -> Vec<(String, Value)> {
    struct Entry<'a> {
        name: &'a str,
        labels: Map<String, Value>,
        selectors: Option<Vec<Value>>,
        original: Vec<PolicyRule>,
        rules: Vec<PolicyRule>,
    }
    let mut entries: Vec<Entry<'_>> = cluster_roles
        .iter()
        .map(|r| {
            let rules = rules_of(r);
            Entry {
                name: text(r, "/metadata/name"),
                labels: r
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                selectors: r.get("aggregationRule").filter(|a| !a.is_null()).map(|a| {
                    a.get("clusterRoleSelectors")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                }),
                original: rules.clone(),
                rules,
            }
        })
        .collect();
    let mut by_name: Vec<usize> = (0..entries.len()).collect();
    by_name.sort_by(|&a, &b| entries[a].name.cmp(entries[b].name));

    // Each pass can only propagate one level further; a cycle stops changing after as many
    // passes as there are roles.
    for _ in 0..=entries.len() {
        let mut changed = false;
        for i in 0..entries.len() {
            let Some(selectors) = &entries[i].selectors else {
                continue;
            };
            let mut new_rules: Vec<PolicyRule> = Vec::new();
            let mut valid = true;
            'selectors: for sel in selectors {
                for &j in &by_name {
                    if entries[j].name == entries[i].name {
                        continue;
                    }
                    match label_selector_matches(sel, &entries[j].labels) {
                        None => {
                            valid = false;
                            break 'selectors;
                        }
                        Some(false) => {}
                        Some(true) => {
                            for r in &entries[j].rules {
                                if !new_rules.contains(r) {
                                    new_rules.push(r.clone());
                                }
                            }
                        }
                    }
                }
            }
            if valid && new_rules != entries[i].rules {
                entries[i].rules = new_rules;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    entries
        .into_iter()
        .filter(|e| e.selectors.is_some() && e.rules != e.original)
        .map(|e| {
            let rules = e.rules.iter().map(PolicyRule::to_json).collect();
            (e.name.to_string(), Value::Array(rules))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Escalation prevention
// ---------------------------------------------------------------------------------------------

/// The RBAC kind being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl RbacKind {
    pub fn plural(self) -> &'static str {
        match self {
            RbacKind::Role => "roles",
            RbacKind::ClusterRole => "clusterroles",
            RbacKind::RoleBinding => "rolebindings",
            RbacKind::ClusterRoleBinding => "clusterrolebindings",
        }
    }

    pub fn from_plural(plural: &str) -> Option<RbacKind> {
        match plural {
            "roles" => Some(RbacKind::Role),
            "clusterroles" => Some(RbacKind::ClusterRole),
            "rolebindings" => Some(RbacKind::RoleBinding),
            "clusterrolebindings" => Some(RbacKind::ClusterRoleBinding),
            _ => None,
        }
    }
}

/// Why a write of an RBAC object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RbacError {
    /// 403; `message` is the whole Status message.
    #[error("{message}")]
    Forbidden {
        resource: &'static str,
        name: String,
        message: String,
    },
    /// 500; a binding's role reference could not be resolved.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

impl RbacError {
    /// The `metav1.Status` kube-apiserver returns.
    pub fn status(&self) -> Value {
        match self {
            RbacError::Forbidden {
                resource,
                name,
                message,
            } => failure_status(
                message,
                "Forbidden",
                status_details(RBAC_GROUP, resource, name),
                403,
            ),
            RbacError::Internal(cause) => failure_status(
                &self.to_string(),
                "InternalError",
                json!({"causes": [{"message": cause}]}),
                500,
            ),
        }
    }
}

/// Expands a rule into one rule per (group, resource, verb[, name]) and (url, verb).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for g in &rule.api_groups {
        for r in &rule.resources {
            for v in &rule.verbs {
                let base = PolicyRule {
                    api_groups: vec![g.clone()],
                    resources: vec![r.clone()],
                    verbs: vec![v.clone()],
                    ..PolicyRule::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(base);
                } else {
                    for n in &rule.resource_names {
                        out.push(PolicyRule {
                            resource_names: vec![n.clone()],
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: vec![u.clone()],
                verbs: vec![v.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| set.contains(w))
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if owner.iter().any(|r| r == "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        owner.contains(path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| owner.contains(&format!("*/{sub}")))
    })
}

/// Upstream `ruleCovers`.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = owner.verbs.iter().any(|v| v == "*") || has_all(&owner.verbs, &sub.verbs);
    let groups =
        owner.api_groups.iter().any(|g| g == "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resources_cover(&owner.resources, &sub.resources);
    let urls = sub
        .non_resource_urls
        .iter()
        .all(|p| owner.non_resource_urls.iter().any(|o| url_covers(o, p)));
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && names && urls
}

/// The broken-down rules of `wanted` that `owner` does not cover.
fn uncovered(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect()
}

/// Upstream `CompactRules`: merges the verbs of simple (one group, one resource, at most one
/// name, nothing else) rules naming the same thing.
fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for r in rules {
        let is_simple = r.resource_names.len() <= 1
            && r.non_resource_urls.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1;
        if !is_simple {
            out.push(r);
            continue;
        }
        match simple.iter_mut().find(|s| {
            s.api_groups == r.api_groups
                && s.resources == r.resources
                && s.resource_names == r.resource_names
        }) {
            Some(existing) => existing.verbs.extend(r.verbs),
            None => simple.push(r),
        }
    }
    out.extend(simple);
    out
}

/// Upstream `ConfirmNoEscalation`: the error text when `wanted` exceeds what the user holds
/// in `namespace`.
fn confirm_no_escalation<S: RbacSource + ?Sized>(
    src: &S,
    user: &str,
    groups: &[String],
    namespace: &str,
    wanted: &[PolicyRule],
) -> Result<(), String> {
    let (owned, errors) = rules_for(src, user, groups, namespace);
    let missing = uncovered(&owned, wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let descriptions: BTreeSet<String> = compact_rules(missing)
        .iter()
        .map(PolicyRule::compact_string)
        .collect();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(user),
        go_quote_list(groups),
        descriptions.into_iter().collect::<Vec<_>>().join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!(
            "; resolution errors: [{}]",
            aggregate_errors(&errors)
        ));
    }
    Err(msg)
}

/// An update that only changes garbage-collection fields (ownerReferences, finalizers) is
/// never an escalation. System-managed metadata is ignored in the comparison.
fn only_gc_fields_change(new: &Value, old: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
                "uid",
                "creationTimestamp",
                "generation",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
        v
    }
    strip(new) == strip(old)
}

fn full_authority() -> Vec<PolicyRule> {
    let all = || vec!["*".to_string()];
    vec![
        PolicyRule {
            verbs: all(),
            api_groups: all(),
            resources: all(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: all(),
            non_resource_urls: all(),
            ..PolicyRule::default()
        },
    ]
}

fn has_aggregation_rule(v: &Value) -> bool {
    v.get("aggregationRule").is_some_and(|a| !a.is_null())
}

/// Escalation prevention for a create (`old = None`) or update of an RBAC object by
/// `user`/`groups`. `namespace` is the object's namespace ("" for cluster-scoped kinds).
///
/// - `system:masters` may do anything.
/// - Roles/ClusterRoles: allowed with the `escalate` verb on the object, otherwise every rule
///   must be covered by rules the user holds (in `namespace` for Roles, cluster-wide for
///   ClusterRoles); an `aggregationRule` needs full authority.
/// - Bindings: allowed with the `bind` verb on the referenced role, otherwise the user must
///   hold every rule of the referenced role (an unresolvable reference is a 500).
pub fn check_escalation<S: RbacSource + ?Sized>(
    src: &S,
    user: &str,
    groups: &[String],
    kind: RbacKind,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), RbacError> {
    if is_master(groups) {
        return Ok(());
    }
    let name = text(new, "/metadata/name");
    let forbidden = |message: String| RbacError::Forbidden {
        resource: kind.plural(),
        name: name.to_string(),
        message: format!(
            "{}: {message}",
            forbidden_prefix(RBAC_GROUP, kind.plural(), name)
        ),
    };
    let allowed = |verb: &str, resource: &str, object: &str, group: &str| {
        authorize(
            src,
            &Attributes {
                user: user.to_string(),
                groups: groups.to_vec(),
                verb: verb.to_string(),
                api_group: group.to_string(),
                resource: resource.to_string(),
                namespace: namespace.to_string(),
                name: object.to_string(),
                resource_request: true,
                ..Attributes::default()
            },
        )
        .allowed
    };
    match kind {
        RbacKind::Role | RbacKind::ClusterRole => {
            // Upstream checks the request's name, which a create (POST to the collection) lacks.
            let object = if old.is_some() { name } else { "" };
            if allowed("escalate", kind.plural(), object, RBAC_GROUP) {
                return Ok(());
            }
            if old.is_some_and(|o| only_gc_fields_change(new, o)) {
                return Ok(());
            }
            confirm_no_escalation(src, user, groups, namespace, &rules_of(new))
                .map_err(forbidden)?;
            let aggregating = has_aggregation_rule(new) || old.is_some_and(has_aggregation_rule);
            if kind == RbacKind::ClusterRole && aggregating {
                confirm_no_escalation(src, user, groups, "", &full_authority()).map_err(|_| {
                    forbidden(
                        "must have cluster-admin privileges to use the aggregationRule".into(),
                    )
                })?;
            }
            Ok(())
        }
        RbacKind::RoleBinding | RbacKind::ClusterRoleBinding => {
            if old.is_some_and(|o| only_gc_fields_change(new, o)) {
                return Ok(());
            }
            let role_kind = text(new, "/roleRef/kind");
            let role_name = text(new, "/roleRef/name");
            let role_resource = match role_kind {
                "ClusterRole" => Some("clusterroles"),
                "Role" => Some("roles"),
                _ => None,
            };
            if let Some(resource) = role_resource
                && allowed("bind", resource, role_name, text(new, "/roleRef/apiGroup"))
            {
                return Ok(());
            }
            let rules = role_ref_rules(src, role_kind, role_name, namespace)
                .map_err(RbacError::Internal)?;
            confirm_no_escalation(src, user, groups, namespace, &rules).map_err(forbidden)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bootstrap policy
// ---------------------------------------------------------------------------------------------

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A resource rule; lists are sorted like upstream's rule builder does.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        api_groups: sorted(groups),
        resources: sorted(resources),
        ..PolicyRule::default()
    }
}

fn named_rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: sorted(names),
        ..rule(verbs, groups, resources)
    }
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        non_resource_urls: sorted(urls),
        ..PolicyRule::default()
    }
}

fn events_rule() -> PolicyRule {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

fn bootstrap_metadata(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = BTreeMap::from([("kubernetes.io/bootstrapping", "rbac-defaults")]);
    labels.extend(extra_labels.iter().copied());
    json!({
        "name": name,
        "labels": labels,
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    })
}

fn cluster_role(
    name: &str,
    labels: &[(&str, &str)],
    aggregate_from: Option<&str>,
    rules: Vec<PolicyRule>,
) -> Value {
    let mut role = json!({
        "kind": "ClusterRole",
        "apiVersion": format!("{RBAC_GROUP}/v1"),
        "metadata": bootstrap_metadata(name, labels),
        "rules": rules.iter().map(PolicyRule::to_json).collect::<Vec<_>>(),
    });
    if let Some(label) = aggregate_from {
        role["aggregationRule"] =
            json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    }
    role
}

const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The default ClusterRoles of kube-apiserver 1.33 (default feature gates) that matter to
/// users and add-ons, with `admin`/`edit`/`view` already aggregated. Sorted by name.
pub fn bootstrap_cluster_roles() -> Vec<Value> {
    let certs = "certificates.k8s.io";
    let approver = |signer: &str| {
        (
            format!(
                "system:certificates.k8s.io:{}-approver",
                signer.trim_start_matches("kubernetes.io/")
            ),
            vec![named_rule(&["approve"], &[certs], &["signers"], &[signer])],
        )
    };
    let mut simple: Vec<(String, Vec<PolicyRule>)> = vec![
        (
            "cluster-admin".into(),
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        (
            "system:discovery".into(),
            vec![url_rule(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        (
            "system:monitoring".into(),
            vec![url_rule(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        (
            "system:basic-user".into(),
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        (
            "system:public-info-viewer".into(),
            vec![url_rule(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        (
            "system:heapster".into(),
            vec![
                rule(READ, &[""], &["events", "pods", "nodes", "namespaces"]),
                rule(READ, &["extensions"], &["deployments"]),
            ],
        ),
        (
            "system:node-problem-detector".into(),
            vec![
                rule(&["get"], &[""], &["nodes"]),
                rule(&["patch"], &[""], &["nodes/status"]),
                events_rule(),
            ],
        ),
        (
            "system:node-bootstrapper".into(),
            vec![rule(
                &["create", "get", "list", "watch"],
                &[certs],
                &["certificatesigningrequests"],
            )],
        ),
        (
            "system:auth-delegator".into(),
            vec![
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        (
            "system:kube-aggregator".into(),
            vec![rule(READ, &[""], &["services", "endpoints"])],
        ),
        (
            "system:kube-dns".into(),
            vec![rule(&["list", "watch"], &[""], &["endpoints", "services"])],
        ),
        (
            "system:persistent-volume-provisioner".into(),
            vec![
                rule(
                    &["get", "list", "watch", "create", "delete"],
                    &[""],
                    &["persistentvolumes"],
                ),
                rule(
                    &["get", "list", "watch", "update"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                rule(READ, &["storage.k8s.io"], &["storageclasses"]),
                rule(&["watch"], &[""], &["events"]),
                events_rule(),
            ],
        ),
        (
            "system:volume-scheduler".into(),
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                rule(READ, &["storage.k8s.io"], &["storageclasses"]),
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        (
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient".into(),
            vec![rule(
                &["create"],
                &[certs],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        (
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient".into(),
            vec![rule(
                &["create"],
                &[certs],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        approver("kubernetes.io/kube-apiserver-client"),
        approver("kubernetes.io/kube-apiserver-client-kubelet"),
        approver("kubernetes.io/kubelet-serving"),
        approver("kubernetes.io/legacy-unknown"),
        (
            "system:service-account-issuer-discovery".into(),
            vec![url_rule(
                &["get"],
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
            )],
        ),
    ];
    simple.sort_by(|a, b| a.0.cmp(&b.0));

    let mut roles: Vec<Value> = simple
        .into_iter()
        .map(|(name, rules)| cluster_role(&name, &[], None, rules))
        .collect();
    roles.push(cluster_role("admin", &[], Some(TO_ADMIN), vec![]));
    roles.push(cluster_role(
        "edit",
        &[(TO_ADMIN, "true")],
        Some(TO_EDIT),
        vec![],
    ));
    roles.push(cluster_role(
        "view",
        &[(TO_EDIT, "true")],
        Some(TO_VIEW),
        vec![],
    ));
    roles.push(cluster_role(
        "system:aggregate-to-admin",
        &[(TO_ADMIN, "true")],
        None,
        vec![
            rule(
                &["create"],
                &["authorization.k8s.io"],
                &["localsubjectaccessreviews"],
            ),
            rule(READ_WRITE, &[RBAC_GROUP], &["roles", "rolebindings"]),
        ],
    ));
    roles.push(cluster_role(
        "system:aggregate-to-edit",
        &[(TO_EDIT, "true")],
        None,
        aggregate_to_edit_rules(),
    ));
    roles.push(cluster_role(
        "system:aggregate-to-view",
        &[(TO_VIEW, "true")],
        None,
        aggregate_to_view_rules(),
    ));

    for (name, rules) in aggregate(&roles) {
        if let Some(role) = roles.iter_mut().find(|r| text(r, "/metadata/name") == name) {
            role["rules"] = rules;
        }
    }
    roles.sort_by(|a, b| text(a, "/metadata/name").cmp(text(b, "/metadata/name")));
    roles
}

fn aggregate_to_edit_rules() -> Vec<PolicyRule> {
    vec![
        // Read on escalating resources.
        rule(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            WRITE,
            &[""],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["networkpolicies", "ingresses"],
        ),
        rule(READ_WRITE, &["coordination.k8s.io"], &["leases"]),
    ]
}

fn aggregate_to_view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // Reading namespaces at namespace scope means reading *this* namespace.
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["networkpolicies", "ingresses", "ingresses/status"],
        ),
    ]
}

fn subject(kind: &str, name: &str) -> Value {
    match kind {
        "ServiceAccount" => {
            let (ns, sa) = name.split_once('/').unwrap_or(("", name));
            json!({"kind": kind, "name": sa, "namespace": ns})
        }
        _ => json!({"kind": kind, "apiGroup": RBAC_GROUP, "name": name}),
    }
}

/// The default ClusterRoleBindings for the roles of [`bootstrap_cluster_roles`], sorted by
/// name.
pub fn bootstrap_cluster_role_bindings() -> Vec<Value> {
    let bindings: [(&str, Vec<Value>); 8] = [
        ("cluster-admin", vec![subject("Group", MASTERS_GROUP)]),
        (
            "system:basic-user",
            vec![subject("Group", "system:authenticated")],
        ),
        (
            "system:discovery",
            vec![subject("Group", "system:authenticated")],
        ),
        (
            "system:kube-dns",
            vec![subject("ServiceAccount", "kube-system/kube-dns")],
        ),
        (
            "system:monitoring",
            vec![subject("Group", "system:monitoring")],
        ),
        (
            "system:public-info-viewer",
            vec![
                subject("Group", "system:authenticated"),
                subject("Group", "system:unauthenticated"),
            ],
        ),
        (
            "system:service-account-issuer-discovery",
            vec![subject("Group", "system:serviceaccounts")],
        ),
        (
            "system:volume-scheduler",
            vec![subject("User", "system:kube-scheduler")],
        ),
    ];
    bindings
        .into_iter()
        .map(|(name, subjects)| {
            json!({
                "kind": "ClusterRoleBinding",
                "apiVersion": format!("{RBAC_GROUP}/v1"),
                "metadata": bootstrap_metadata(name, &[]),
                "subjects": subjects,
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Mem {
        cluster_roles: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
        roles: Vec<Value>,
        role_bindings: Vec<Value>,
    }

    fn ns_of(v: &Value) -> &str {
        text(v, "/metadata/namespace")
    }

    impl RbacSource for Mem {
        fn cluster_roles(&self) -> Vec<Arc<Value>> {
            shared(self.cluster_roles.iter())
        }
        fn cluster_role_bindings(&self) -> Vec<Arc<Value>> {
            shared(self.cluster_role_bindings.iter())
        }
        fn roles(&self, ns: &str) -> Vec<Arc<Value>> {
            shared(self.roles.iter().filter(|r| ns_of(r) == ns))
        }
        fn role_bindings(&self, ns: &str) -> Vec<Arc<Value>> {
            shared(self.role_bindings.iter().filter(|r| ns_of(r) == ns))
        }
        fn cluster_role(&self, name: &str) -> Option<Arc<Value>> {
            self.cluster_roles
                .iter()
                .find(|r| text(r, "/metadata/name") == name)
                .map(|r| Arc::new(r.clone()))
        }
        fn role(&self, ns: &str, name: &str) -> Option<Arc<Value>> {
            self.roles
                .iter()
                .find(|r| ns_of(r) == ns && text(r, "/metadata/name") == name)
                .map(|r| Arc::new(r.clone()))
        }
    }

    fn shared<'a>(objects: impl Iterator<Item = &'a Value>) -> Vec<Arc<Value>> {
        objects.cloned().map(Arc::new).collect()
    }

    impl Mem {
        fn bootstrap() -> Mem {
            Mem {
                cluster_roles: bootstrap_cluster_roles(),
                cluster_role_bindings: bootstrap_cluster_role_bindings(),
                ..Mem::default()
            }
        }
    }

    fn groups(gs: &[&str]) -> Vec<String> {
        gs.iter().map(|g| g.to_string()).collect()
    }

    fn authn() -> Vec<String> {
        groups(&["system:authenticated"])
    }

    fn res(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user: user.into(),
            groups: authn(),
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            resource_request: true,
            path: String::new(),
        }
    }

    fn role_obj(kind: &str, ns: &str, name: &str, rules: Value) -> Value {
        let mut v = json!({
            "kind": kind,
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name},
            "rules": rules,
        });
        if !ns.is_empty() {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    fn binding(
        kind: &str,
        ns: &str,
        name: &str,
        role_kind: &str,
        role: &str,
        subjects: Value,
    ) -> Value {
        let mut v = json!({
            "kind": kind,
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": name},
            "subjects": subjects,
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
        });
        if !ns.is_empty() {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn verbs_from_methods() {
        let cases = [
            ("GET", true, false, "get"),
            ("GET", false, false, "list"),
            ("GET", false, true, "watch"),
            ("GET", true, true, "watch"),
            ("HEAD", true, false, "get"),
            ("POST", false, false, "create"),
            ("PUT", true, false, "update"),
            ("PATCH", true, false, "patch"),
            ("DELETE", true, false, "delete"),
            ("DELETE", false, false, "deletecollection"),
            ("OPTIONS", false, false, ""),
        ];
        for (method, named, watch, want) in cases {
            assert_eq!(
                verb_for(method, named, watch),
                want,
                "{method} {named} {watch}"
            );
        }
        assert_eq!(non_resource_verb("POST"), "post");
    }

    #[test]
    fn rule_matching() {
        let u = |verb: &str, path: &str| Attributes::non_resource("u", &[], verb, path);
        let cases: Vec<(Value, Attributes, bool)> = vec![
            (
                json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}),
                res("u", "delete", "", "pods", "ns", "p"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
                res("u", "list", "", "pods", "ns", ""),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["deployments"]}),
                res("u", "get", "apps", "deployments", "ns", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["deployments"]}),
                res("u", "get", "apps", "deployments", "ns", "d"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*"]}),
                res("u", "get", "apps", "deployments/scale", "ns", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}),
                res("u", "get", "", "pods/log", "ns", "p"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
                res("u", "get", "", "pods/log", "ns", "p"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}),
                res("u", "get", "", "pods", "ns", "p"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}),
                res("u", "get", "apps", "deployments/scale", "ns", "d"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}),
                res("u", "get", "apps", "deployments", "ns", "d"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}),
                res("u", "get", "", "pods/status", "ns", "d"),
                false,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
                res("u", "get", "", "configmaps", "ns", "a"),
                true,
            ),
            (
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
                res("u", "get", "", "configmaps", "ns", "b"),
                false,
            ),
            (
                json!({"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
                res("u", "list", "", "configmaps", "ns", ""),
                false,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
                u("get", "/healthz"),
                true,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
                u("get", "/healthz/etcd"),
                false,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
                u("get", "/apis/apps/v1"),
                true,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
                u("get", "/apis"),
                false,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/api*"]}),
                u("get", "/apis"),
                true,
            ),
            (
                json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
                u("post", "/anything"),
                true,
            ),
            (
                json!({"verbs": ["get"], "nonResourceURLs": ["/version"]}),
                u("post", "/version"),
                false,
            ),
            (
                json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
                res("u", "get", "", "pods", "ns", ""),
                false,
            ),
            (
                json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                u("get", "/healthz"),
                false,
            ),
        ];
        for (i, (rule, attrs, want)) in cases.iter().enumerate() {
            assert_eq!(
                PolicyRule::from_json(rule).allows(attrs),
                *want,
                "case {i}: {rule}"
            );
        }
    }

    fn pod_reader_source() -> Mem {
        let pods = json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]);
        Mem {
            cluster_roles: vec![role_obj("ClusterRole", "", "pod-reader", pods.clone())],
            roles: vec![role_obj("Role", "team", "local-reader", pods)],
            cluster_role_bindings: vec![binding(
                "ClusterRoleBinding",
                "",
                "crb",
                "ClusterRole",
                "pod-reader",
                json!([
                    {"kind": "User", "apiGroup": RBAC_GROUP, "name": "alice"},
                    {"kind": "Group", "apiGroup": RBAC_GROUP, "name": "readers"},
                    {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
                    {"kind": "ServiceAccount", "name": "nons"}
                ]),
            )],
            role_bindings: vec![
                binding(
                    "RoleBinding",
                    "dev",
                    "rb-cr",
                    "ClusterRole",
                    "pod-reader",
                    json!([
                        {"kind": "User", "apiGroup": RBAC_GROUP, "name": "bob"},
                        {"kind": "ServiceAccount", "name": "local"},
                        {"kind": "Group", "apiGroup": RBAC_GROUP, "name": "system:serviceaccounts:dev"}
                    ]),
                ),
                binding(
                    "RoleBinding",
                    "team",
                    "rb-role",
                    "Role",
                    "local-reader",
                    json!([
                        {"kind": "User", "apiGroup": RBAC_GROUP, "name": "carol"}
                    ]),
                ),
                binding(
                    "RoleBinding",
                    "team",
                    "rb-missing",
                    "ClusterRole",
                    "gone",
                    json!([
                        {"kind": "User", "apiGroup": RBAC_GROUP, "name": "dave"}
                    ]),
                ),
            ],
        }
    }

    #[test]
    fn bindings_and_subjects() {
        let src = pod_reader_source();
        let sa = |ns: &str, name: &str| format!("system:serviceaccount:{ns}:{name}");
        let cases: Vec<(String, Vec<String>, &str, &str, bool)> = vec![
            ("alice".into(), authn(), "any", "list", true),
            ("alice".into(), authn(), "", "list", true),
            ("alice".into(), authn(), "any", "create", false),
            ("eve".into(), groups(&["readers"]), "x", "get", true),
            ("eve".into(), authn(), "x", "get", false),
            (sa("ci", "bot"), authn(), "x", "get", true),
            (sa("other", "bot"), authn(), "x", "get", false),
            // A ServiceAccount subject without namespace never matches in a ClusterRoleBinding.
            (sa("", "nons"), authn(), "x", "get", false),
            // RoleBinding to a ClusterRole: only in the binding's namespace.
            ("bob".into(), authn(), "dev", "get", true),
            ("bob".into(), authn(), "prod", "get", false),
            ("bob".into(), authn(), "", "list", false),
            // A ServiceAccount subject without namespace defaults to the RoleBinding's.
            (sa("dev", "local"), authn(), "dev", "get", true),
            (sa("other", "local"), authn(), "dev", "get", false),
            (
                sa("dev", "x"),
                groups(&["system:serviceaccounts", "system:serviceaccounts:dev"]),
                "dev",
                "get",
                true,
            ),
            ("carol".into(), authn(), "team", "list", true),
            ("carol".into(), authn(), "dev", "list", false),
            ("dave".into(), authn(), "team", "list", false),
            (
                "root".into(),
                groups(&[MASTERS_GROUP]),
                "any",
                "delete",
                true,
            ),
        ];
        for (user, groups, ns, verb, want) in cases {
            let mut a = res(&user, verb, "", "pods", ns, "");
            a.groups = groups;
            assert_eq!(authorize(&src, &a).allowed, want, "{user} {verb} in {ns:?}");
        }
    }

    #[test]
    fn decision_reasons() {
        let src = pod_reader_source();
        let cases = [
            (
                res("alice", "get", "", "pods", "x", "p"),
                true,
                r#"RBAC: allowed by ClusterRoleBinding "crb" of ClusterRole "pod-reader" to User "alice""#,
            ),
            (
                res("system:serviceaccount:ci:bot", "get", "", "pods", "x", "p"),
                true,
                r#"RBAC: allowed by ClusterRoleBinding "crb" of ClusterRole "pod-reader" to ServiceAccount "bot/ci""#,
            ),
            (
                res("bob", "get", "", "pods", "dev", "p"),
                true,
                r#"RBAC: allowed by RoleBinding "rb-cr/dev" of ClusterRole "pod-reader" to User "bob""#,
            ),
            (
                res(
                    "system:serviceaccount:dev:local",
                    "get",
                    "",
                    "pods",
                    "dev",
                    "p",
                ),
                true,
                r#"RBAC: allowed by RoleBinding "rb-cr/dev" of ClusterRole "pod-reader" to ServiceAccount "local/dev""#,
            ),
            (
                res("carol", "get", "", "pods", "team", "p"),
                true,
                r#"RBAC: allowed by RoleBinding "rb-role/team" of Role "local-reader" to User "carol""#,
            ),
            (
                res("dave", "get", "", "pods", "team", "p"),
                false,
                r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#,
            ),
            (res("nobody", "get", "", "pods", "team", "p"), false, ""),
        ];
        for (a, allowed, reason) in cases {
            assert_eq!(
                authorize(&src, &a),
                Decision {
                    allowed,
                    reason: reason.into()
                }
            );
        }
        let mut root = res("root", "get", "", "pods", "", "");
        root.groups = groups(&[MASTERS_GROUP]);
        assert_eq!(
            authorize(&src, &root),
            Decision {
                allowed: true,
                reason: String::new()
            }
        );
        assert_eq!(
            aggregate_errors(&["a".into(), "b".into(), "a".into()]),
            "[a, b]"
        );
    }

    #[test]
    fn forbidden_messages() {
        let mut named_cluster = res("jane", "get", "", "nodes", "", "n1");
        named_cluster.groups = vec![];
        let cases = [
            (
                res("jane", "list", "", "pods", "default", ""),
                r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#,
            ),
            (
                res("jane", "get", "", "pods", "default", "x"),
                r#"pods "x" is forbidden: User "jane" cannot get resource "pods" in API group "" in the namespace "default""#,
            ),
            (
                named_cluster,
                r#"nodes "n1" is forbidden: User "jane" cannot get resource "nodes" in API group "" at the cluster scope"#,
            ),
            (
                res("jane", "list", "", "namespaces", "", ""),
                r#"namespaces is forbidden: User "jane" cannot list resource "namespaces" in API group "" at the cluster scope"#,
            ),
            (
                res("jane", "get", "", "pods/log", "default", "x"),
                r#"pods "x" is forbidden: User "jane" cannot get resource "pods/log" in API group "" in the namespace "default""#,
            ),
            (
                res("jane", "create", "apps", "deployments", "default", ""),
                r#"deployments.apps is forbidden: User "jane" cannot create resource "deployments" in API group "apps" in the namespace "default""#,
            ),
            (
                res(
                    "system:serviceaccount:ns:sa",
                    "watch",
                    "",
                    "secrets",
                    "ns",
                    "",
                ),
                r#"secrets is forbidden: User "system:serviceaccount:ns:sa" cannot watch resource "secrets" in API group "" in the namespace "ns""#,
            ),
            (
                Attributes::non_resource("x", &[], "get", "/foo"),
                r#"forbidden: User "x" cannot get path "/foo""#,
            ),
            (
                Attributes::non_resource("x", &[], "get", "/<b>&"),
                r#"forbidden: User "x" cannot get path "/&lt;b&gt;&amp;""#,
            ),
        ];
        for (a, want) in cases {
            assert_eq!(forbidden_message(&a), want);
        }
        let a = res("jane", "get", "", "pods", "default", "x");
        assert_eq!(
            forbidden_status(&a, ""),
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": r#"pods "x" is forbidden: User "jane" cannot get resource "pods" in API group "" in the namespace "default""#,
                "reason": "Forbidden",
                "details": {"name": "x", "kind": "pods"},
                "code": 403
            })
        );
        let a = res("jane", "list", "apps", "deployments", "default", "");
        assert_eq!(
            forbidden_status(
                &a,
                "RBAC: clusterrole.rbac.authorization.k8s.io \"x\" not found"
            )["message"],
            json!(
                r#"deployments.apps is forbidden: User "jane" cannot list resource "deployments" in API group "apps" in the namespace "default": RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#
            )
        );
        assert_eq!(
            forbidden_status(&a, "")["details"],
            json!({"group": "apps", "kind": "deployments"})
        );
        let nr = Attributes::non_resource("x", &[], "get", "/foo");
        assert_eq!(forbidden_status(&nr, "")["details"], json!({}));
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\x01""#);
    }

    fn view_in_default() -> Mem {
        let mut src = Mem::bootstrap();
        src.role_bindings.push(binding(
            "RoleBinding",
            "default",
            "jane-view",
            "ClusterRole",
            "view",
            json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "jane"}]),
        ));
        src
    }

    #[test]
    fn view_user_in_namespace() {
        let src = view_in_default();
        let cases = [
            (res("jane", "get", "", "pods", "default", "p"), true),
            (res("jane", "list", "", "pods", "default", ""), true),
            (res("jane", "watch", "", "pods", "default", ""), true),
            (res("jane", "get", "", "pods/log", "default", "p"), true),
            (
                res("jane", "list", "apps", "deployments", "default", ""),
                true,
            ),
            (res("jane", "create", "", "pods", "default", ""), false),
            (res("jane", "delete", "", "pods", "default", "p"), false),
            (res("jane", "get", "", "secrets", "default", "s"), false),
            (res("jane", "list", "", "secrets", "default", ""), false),
            (res("jane", "get", "", "pods/exec", "default", "p"), false),
            (res("jane", "list", "", "pods", "kube-system", ""), false),
            (res("jane", "list", "", "pods", "", ""), false),
            (
                res(
                    "jane",
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    "",
                ),
                true,
            ),
            (
                Attributes::non_resource("jane", &authn(), "get", "/apis/apps/v1"),
                true,
            ),
            (
                Attributes::non_resource(
                    "anon",
                    &groups(&["system:unauthenticated"]),
                    "get",
                    "/version",
                ),
                true,
            ),
            (
                Attributes::non_resource(
                    "anon",
                    &groups(&["system:unauthenticated"]),
                    "get",
                    "/api",
                ),
                false,
            ),
        ];
        for (a, want) in cases {
            assert_eq!(authorize(&src, &a).allowed, want, "{a:?}");
        }
        let d = authorize(&src, &res("jane", "get", "", "pods", "default", "p"));
        assert_eq!(
            d.reason,
            r#"RBAC: allowed by RoleBinding "jane-view/default" of ClusterRole "view" to User "jane""#
        );
        let a = res("jane", "create", "", "pods", "default", "");
        assert_eq!(
            forbidden_message_with_reason(&a, &authorize(&src, &a).reason),
            r#"pods is forbidden: User "jane" cannot create resource "pods" in API group "" in the namespace "default""#
        );
    }

    #[test]
    fn self_subject_rules_review() {
        let mut src = view_in_default();
        let review = rules_review(&src, "jane", &authn(), "default");
        let rules = review["resourceRules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(rules.contains(&json!({
            "verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]
        })));
        assert!(rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|rs| rs.contains(&json!("pods")))
                && r["verbs"] == json!(["get", "list", "watch"])
        }));
        assert!(review["nonResourceRules"].as_array().is_some_and(|r| r.contains(&json!({
            "verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]
        }))));
        assert_eq!(review["incomplete"], json!(false));
        assert!(review.get("evaluationError").is_none());

        // Another namespace: only the cluster-wide rules.
        let other = rules_review(&src, "jane", &authn(), "other");
        assert!(
            other["resourceRules"]
                .as_array()
                .is_some_and(|r| r.len() == 2)
        );

        src.role_bindings.push(binding(
            "RoleBinding",
            "default",
            "dangling",
            "Role",
            "nope",
            json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "jane"}]),
        ));
        let review = rules_review(&src, "jane", &authn(), "default");
        assert_eq!(
            review["evaluationError"],
            json!(r#"role.rbac.authorization.k8s.io "nope" not found"#)
        );

        let root = rules_review(&Mem::default(), "root", &groups(&[MASTERS_GROUP]), "x");
        assert_eq!(
            root,
            json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false
            })
        );
    }

    fn labelled(name: &str, labels: Value, rules: Value) -> Value {
        let mut r = role_obj("ClusterRole", "", name, rules);
        r["metadata"]["labels"] = labels;
        r
    }

    #[test]
    fn label_selectors() {
        let labels = json!({"a": "1", "b": "2"});
        let labels = labels.as_object().cloned().unwrap_or_default();
        let cases = [
            (json!({}), Some(true)),
            (Value::Null, Some(false)),
            (json!({"matchLabels": {"a": "1"}}), Some(true)),
            (json!({"matchLabels": {"a": "2"}}), Some(false)),
            (json!({"matchLabels": {"a": "1", "c": "3"}}), Some(false)),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["0", "1"]}]}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "c", "operator": "In", "values": ["1"]}]}),
                Some(false),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}),
                Some(false),
            ),
            (
                json!({"matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["1"]}]}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "Exists"}]}),
                Some(true),
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}),
                Some(false),
            ),
            (
                json!({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}),
                Some(true),
            ),
            (
                json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["3"]}]}),
                Some(false),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                None,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["1"]}]}),
                None,
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
                None,
            ),
        ];
        for (sel, want) in cases {
            assert_eq!(label_selector_matches(&sel, &labels), want, "{sel}");
        }
    }

    #[test]
    fn aggregation() {
        let r1 = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        let r2 = json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]});
        let r3 = json!({"verbs": ["get"], "apiGroups": ["x.io"], "resources": ["widgets"]});
        let sel = |s: Value| json!({"clusterRoleSelectors": s});
        let mut top = labelled("top", json!({}), json!([]));
        top["aggregationRule"] = sel(json!([{"matchLabels": {"agg": "top"}}]));
        let mut mid = labelled("mid", json!({"agg": "top"}), json!([]));
        mid["aggregationRule"] = sel(json!([
            {"matchExpressions": [{"key": "agg", "operator": "In", "values": ["mid"]}]}
        ]));
        let b = labelled("b", json!({"agg": "mid"}), json!([r2, r1]));
        let a = labelled("a", json!({"agg": "mid"}), json!([r1]));
        let c = labelled("c", json!({"agg": "top"}), json!([r3, r1]));
        let mut bad = labelled("bad", json!({}), json!([r3]));
        bad["aggregationRule"] =
            sel(json!([{"matchExpressions": [{"key": "k", "operator": "Nope"}]}]));
        // A self-matching aggregated role does not include itself.
        let mut selfish = labelled("selfish", json!({"agg": "mid"}), json!([]));
        selfish["aggregationRule"] = sel(json!([{"matchLabels": {"agg": "mid"}}]));

        let out = aggregate(&[top, mid, b, a, c, bad, selfish]);
        let expected = vec![
            // mid settles first (a, b by name, deduplicated), then top sees c and mid.
            ("top".to_string(), json!([r3, r1, r2])),
            ("mid".to_string(), json!([r1, r2])),
            ("selfish".to_string(), json!([r1, r2])),
        ];
        assert_eq!(out, expected);

        // Already aggregated: nothing changes.
        let mut done = labelled("done", json!({}), json!([r1]));
        done["aggregationRule"] = sel(json!([{"matchLabels": {"agg": "mid"}}]));
        let a = labelled("a", json!({"agg": "mid"}), json!([r1]));
        assert!(aggregate(&[done.clone(), a]).is_empty());
        // Nothing matches any more: the rules are emptied.
        assert_eq!(aggregate(&[done]), vec![("done".to_string(), json!([]))]);
    }

    #[test]
    fn bootstrap_policy() {
        let roles = bootstrap_cluster_roles();
        let names: Vec<&str> = roles.iter().map(|r| text(r, "/metadata/name")).collect();
        for want in [
            "admin",
            "cluster-admin",
            "edit",
            "view",
            "system:aggregate-to-admin",
            "system:aggregate-to-edit",
            "system:aggregate-to-view",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
            "system:auth-delegator",
        ] {
            assert!(names.contains(&want), "{want}");
        }
        let mut sorted_names = names.clone();
        sorted_names.sort();
        assert_eq!(names, sorted_names);
        for r in &roles {
            assert_eq!(
                r.pointer("/metadata/labels/kubernetes.io~1bootstrapping"),
                Some(&json!("rbac-defaults"))
            );
            assert_eq!(
                r.pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate"),
                Some(&json!("true"))
            );
        }
        let get = |n: &str| {
            roles
                .iter()
                .find(|r| text(r, "/metadata/name") == n)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            get("cluster-admin")["rules"],
            json!([
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]}
            ])
        );
        assert_eq!(
            get("edit")["metadata"]["labels"],
            json!({
                "kubernetes.io/bootstrapping": "rbac-defaults",
                "rbac.authorization.k8s.io/aggregate-to-admin": "true"
            })
        );
        assert_eq!(
            get("admin")["aggregationRule"],
            json!({"clusterRoleSelectors": [
                {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}
            ]})
        );
        // Aggregated: view ⊂ edit ⊂ admin.
        let rules = |n: &str| rules_of(&get(n));
        assert_eq!(rules("view"), rules("system:aggregate-to-view"));
        let edit = rules("edit");
        let admin = rules("admin");
        assert!(rules("view").iter().all(|r| edit.contains(r)));
        assert!(edit.iter().all(|r| admin.contains(r)));
        assert!(
            rules("system:aggregate-to-admin")
                .iter()
                .all(|r| admin.contains(r))
        );
        assert!(aggregate(&roles).is_empty());
        assert_eq!(
            rules("system:aggregate-to-admin")[1].to_json(),
            json!({"verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                   "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"]})
        );

        let bindings = bootstrap_cluster_role_bindings();
        let by_name = |n: &str| {
            bindings
                .iter()
                .find(|b| text(b, "/metadata/name") == n)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            by_name("cluster-admin"),
            json!({
                "kind": "ClusterRoleBinding",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": {
                    "name": "cluster-admin",
                    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}
                },
                "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
            })
        );
        assert_eq!(
            by_name("system:public-info-viewer")["subjects"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            by_name("system:kube-dns")["subjects"],
            json!([{"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}])
        );
        // Every binding refers to a bootstrap role.
        for b in &bindings {
            assert!(names.contains(&text(b, "/roleRef/name")));
        }
    }

    #[test]
    fn escalation() {
        let mut src = Mem::bootstrap();
        let jane = |ns: &str, role: &str, name: &str| {
            binding(
                "RoleBinding",
                ns,
                name,
                "ClusterRole",
                role,
                json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "jane"}]),
            )
        };
        src.role_bindings.push(jane("default", "edit", "jane-edit"));
        let g = authn();
        let pods =
            |verbs: Value| json!([{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]);
        let check = |src: &Mem, kind, ns: &str, obj: &Value| {
            check_escalation(src, "jane", &g, kind, ns, obj, None)
        };

        // Within what she holds.
        let ok_role = role_obj("Role", "default", "r", pods(json!(["get", "create"])));
        assert_eq!(check(&src, RbacKind::Role, "default", &ok_role), Ok(()));
        // Not in another namespace.
        let err = check(&src, RbacKind::Role, "prod", &ok_role);
        assert_eq!(
            err.as_ref().map_err(ToString::to_string),
            Err(concat!(
                r#"roles.rbac.authorization.k8s.io "r" is forbidden: user "jane" (groups=["system:authenticated"]) "#,
                "is attempting to grant RBAC permissions not currently held:\n",
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["get" "create"]}"#
            ).to_string())
        );
        let status = err.err().map(|e| e.status()).unwrap_or_default();
        assert_eq!(status["code"], json!(403));
        assert_eq!(
            status["details"],
            json!({"name": "r", "group": RBAC_GROUP, "kind": "roles"})
        );

        // Several missing rules: sorted, simple ones compacted.
        let wide = role_obj(
            "Role",
            "default",
            "w",
            json!([
                {"apiGroups": [""], "resources": ["nodes", "secrets"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["escalate"]}
            ]),
        );
        assert_eq!(
            check(&src, RbacKind::Role, "default", &wide).map_err(|e| e.to_string()),
            Err(concat!(
                r#"roles.rbac.authorization.k8s.io "w" is forbidden: user "jane" (groups=["system:authenticated"]) "#,
                "is attempting to grant RBAC permissions not currently held:\n",
                r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["a"], Verbs:["escalate"]}"#, "\n",
                r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["b"], Verbs:["escalate"]}"#, "\n",
                r#"{APIGroups:[""], Resources:["nodes"], Verbs:["get" "list"]}"#
            ).to_string())
        );

        // ClusterRoles are checked against cluster-wide rules only.
        let cr = role_obj("ClusterRole", "", "c", pods(json!(["get"])));
        assert!(check(&src, RbacKind::ClusterRole, "", &cr).is_err());
        let mut agg = role_obj("ClusterRole", "", "agg", json!([]));
        agg["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]});
        assert_eq!(
            check(&src, RbacKind::ClusterRole, "", &agg).map_err(|e| e.to_string()),
            Err(r#"clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin privileges to use the aggregationRule"#.to_string())
        );

        // Bindings: to a role whose rules she holds, fine; admin (roles/rolebindings) is not.
        let rb = |role: &str| {
            binding(
                "RoleBinding",
                "default",
                "b",
                "ClusterRole",
                role,
                json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "kim"}]),
            )
        };
        assert_eq!(
            check(&src, RbacKind::RoleBinding, "default", &rb("view")),
            Ok(())
        );
        assert_eq!(
            check(&src, RbacKind::RoleBinding, "default", &rb("edit")),
            Ok(())
        );
        let err =
            check(&src, RbacKind::RoleBinding, "default", &rb("admin")).map_err(|e| e.to_string());
        assert!(err.as_ref().is_err_and(|e| e.starts_with(
            r#"rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#
        )), "{err:?}");
        assert!(err.is_err_and(|e| e.contains(r#"{APIGroups:["rbac.authorization.k8s.io"], Resources:["rolebindings"], Verbs:["create" "delete" "deletecollection" "get" "list" "patch" "update" "watch"]}"#)));
        let missing = check(&src, RbacKind::RoleBinding, "default", &rb("nope"));
        assert_eq!(
            missing.clone().map_err(|e| e.to_string()),
            Err(r#"Internal error occurred: clusterrole.rbac.authorization.k8s.io "nope" not found"#.to_string())
        );
        assert_eq!(
            missing.err().map(|e| e.status()["code"].clone()),
            Some(json!(500))
        );
        let crb = binding(
            "ClusterRoleBinding",
            "",
            "cb",
            "ClusterRole",
            "view",
            json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "kim"}]),
        );
        assert!(check(&src, RbacKind::ClusterRoleBinding, "", &crb).is_err());

        // `bind` on the referenced role, `escalate` on roles, system:masters.
        src.cluster_roles.push(role_obj("ClusterRole", "", "binder", json!([
            {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["admin"]},
            {"apiGroups": [RBAC_GROUP], "resources": ["roles"], "verbs": ["escalate"]}
        ])));
        src.role_bindings
            .push(jane("default", "binder", "jane-binder"));
        assert_eq!(
            check(&src, RbacKind::RoleBinding, "default", &rb("admin")),
            Ok(())
        );
        assert_eq!(check(&src, RbacKind::Role, "default", &wide), Ok(()));
        assert!(check(&src, RbacKind::RoleBinding, "prod", &rb("admin")).is_err());
        let root = groups(&[MASTERS_GROUP]);
        assert_eq!(
            check_escalation(&src, "root", &root, RbacKind::ClusterRole, "", &agg, None),
            Ok(())
        );

        // An update touching only ownerReferences/finalizers is not checked.
        let mut owned = wide.clone();
        owned["metadata"]["ownerReferences"] = json!([{"name": "o"}]);
        owned["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(
            check_escalation(
                &src,
                "jane",
                &g,
                RbacKind::Role,
                "prod",
                &owned,
                Some(&wide)
            ),
            Ok(())
        );
        owned["metadata"]["labels"] = json!({"x": "y"});
        assert!(
            check_escalation(
                &src,
                "jane",
                &g,
                RbacKind::Role,
                "prod",
                &owned,
                Some(&wide)
            )
            .is_err()
        );
    }
}
