//! The namespace lifecycle core: what kube-controller-manager's namespace controller (1.33)
//! does to a namespace being deleted.
//!
//! For a namespace with `deletionTimestamp` and a non-empty `spec.finalizers`:
//! - `status.phase` becomes `Terminating` and the five deletion conditions upstream maintains
//!   are set (`NamespaceDeletionDiscoveryFailure`, `NamespaceDeletionGroupVersionParsingFailure`,
//!   `NamespaceDeletionContentFailure` always `False` here, since discovery cannot fail;
//!   `NamespaceContentRemaining` and `NamespaceFinalizersRemaining` report what is left);
//! - every object in it is deleted with propagation `Background` (uid precondition). Pods go
//!   first (`OrderedNamespaceDeletion`, beta and on by default in 1.33): while pods remain,
//!   nothing else is deleted;
//! - once nothing at all is left, the `kubernetes` finalizer is removed from `spec.finalizers`.
//!
//! "Remaining" is counted the way upstream counts it after its delete calls: objects already
//! marked for deletion, objects with finalizers, and pods that are deleted gracefully (bound
//! to a node, not finished, grace period above zero). Objects without any of these vanish on
//! delete and are not reported.
//!
//! **Finalize subresource.** The finalizer removal is returned as an [`Action::Update`] of the
//! namespace whose `spec.finalizers` no longer holds `kubernetes` (an empty list when it was
//! the only one). The runtime must send it to `PUT /api/v1/namespaces/<name>/finalize`, which
//! only copies `spec.finalizers`; the API removes the namespace when a write leaves it with a
//! `deletionTimestamp`, no `spec.finalizers` and no `metadata.finalizers`.
//!
//! A plan writes the namespace at most once: when the status has to change, the finalize
//! update waits for the next pass (the status write itself triggers it), so the two writes do
//! not race on the same resourceVersion.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::controllers::action::{Action, Kind};

/// core/v1 namespaces.
pub const NAMESPACES: Kind = Kind::new("", "v1", "namespaces");
/// The finalizer this controller owns in `spec.finalizers`.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";
/// Upstream's estimate for content held by finalizers, in seconds.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;
/// Default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// When content without finalizers is still there (its deletes are in flight).
const RECHECK: Duration = Duration::from_secs(1);

/// What to do for one namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespacePlan {
    /// Changes, in order.
    pub actions: Vec<Action>,
    /// Reconcile again after this long even without events.
    pub requeue_after: Option<Duration>,
}

/// Counts of what is left after this pass's deletes.
#[derive(Debug, Default)]
struct Remaining {
    /// `<plural>.<group>` → objects.
    by_resource: BTreeMap<String, usize>,
    /// finalizer → objects carrying it.
    by_finalizer: BTreeMap<String, usize>,
    /// Upstream's estimate of seconds until the content is gone.
    estimate: i64,
}

/// Plans the deletion of `ns` given `contents`: every namespaced kind's objects in it.
pub fn reconcile(
    ns: &Value,
    contents: &[(Kind, Vec<Value>)],
    now: jiff::Timestamp,
) -> NamespacePlan {
    let mut plan = NamespacePlan::default();
    if ns
        .pointer("/metadata/deletionTimestamp")
        .is_none_or(Value::is_null)
    {
        return plan;
    }
    let spec_finalizers = strings(ns.pointer("/spec/finalizers"));
    if spec_finalizers.is_empty() {
        return plan;
    }
    let name = meta_str(ns, "name");
    let in_ns = |o: &&Value| {
        let n = meta_str(o, "namespace");
        n.is_empty() || n == name
    };
    let is_pods = |k: &Kind| k.group.is_empty() && k.plural == "pods";

    let pods: Vec<(&Kind, &Value)> = contents
        .iter()
        .filter(|(k, _)| is_pods(k))
        .flat_map(|(k, objs)| objs.iter().filter(in_ns).map(move |o| (k, o)))
        .collect();
    let others: Vec<(&Kind, &Value)> = contents
        .iter()
        .filter(|(k, _)| !is_pods(k))
        .flat_map(|(k, objs)| objs.iter().filter(in_ns).map(move |o| (k, o)))
        .collect();

    let mut remaining = Remaining::default();
    let mut deletes = Vec::new();
    for (kind, pod) in &pods {
        plan_object(kind, pod, now, &mut remaining, &mut deletes);
    }
    let pods_remaining = remaining.by_resource.values().sum::<usize>() > 0;
    if !pods_remaining {
        for (kind, obj) in &others {
            plan_object(kind, obj, now, &mut remaining, &mut deletes);
        }
    }

    let status_changed = match terminating_status(ns, &remaining, now) {
        Some(updated) => {
            plan.actions.push(Action::UpdateStatus {
                kind: NAMESPACES,
                namespace: String::new(),
                object: updated,
            });
            true
        }
        None => false,
    };
    plan.actions.extend(deletes);

    let nothing_left = pods.is_empty() && others.is_empty();
    if nothing_left {
        if status_changed {
            plan.requeue_after = Some(RECHECK);
        } else if spec_finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
            let mut keep: Vec<String> = spec_finalizers
                .into_iter()
                .filter(|f| f != FINALIZER_KUBERNETES)
                .collect();
            keep.sort();
            keep.dedup();
            let mut finalized = ns.clone();
            if let Some(spec) = finalized.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("finalizers".into(), json!(keep));
            }
            plan.actions.push(Action::Update {
                kind: NAMESPACES,
                namespace: String::new(),
                object: finalized,
            });
        }
    } else if remaining.estimate > 0 {
        let secs = u64::try_from(remaining.estimate / 2 + 1).unwrap_or(1);
        plan.requeue_after = Some(Duration::from_secs(secs));
    } else {
        plan.requeue_after = Some(RECHECK);
    }
    plan
}

/// Deletes `obj` unless it is already being deleted, and counts it if it will outlive the
/// delete.
fn plan_object(
    kind: &Kind,
    obj: &Value,
    now: jiff::Timestamp,
    remaining: &mut Remaining,
    deletes: &mut Vec<Action>,
) {
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let finalizers = strings(obj.pointer("/metadata/finalizers"));
    let is_pod = kind.group.is_empty() && kind.plural == "pods";
    let mut graceful = false;
    if is_pod && !pod_finished(obj) {
        let grace = obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        let left = if deleting {
            obj.pointer("/metadata/deletionTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map_or(grace, |t| (t.as_second() - now.as_second()).max(0))
        } else {
            grace
        };
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        graceful = if deleting { true } else { bound && grace > 0 };
        if graceful {
            remaining.estimate = remaining.estimate.max(left);
        }
    }
    if !deleting {
        deletes.push(Action::Delete {
            kind: kind.clone(),
            namespace: meta_str(obj, "namespace").to_string(),
            name: meta_str(obj, "name").to_string(),
            uid: Some(meta_str(obj, "uid").to_string()).filter(|u| !u.is_empty()),
            propagation: Some("Background"),
        });
    }
    if deleting || graceful || !finalizers.is_empty() {
        *remaining
            .by_resource
            .entry(format!("{}.{}", kind.plural, kind.group))
            .or_insert(0) += 1;
        for f in finalizers {
            *remaining.by_finalizer.entry(f).or_insert(0) += 1;
            remaining.estimate = remaining.estimate.max(FINALIZER_ESTIMATE_SECONDS);
        }
    }
}

fn pod_finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// The five condition types upstream maintains, in its order, with their "all is well"
/// reason and message.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
];

/// The namespace with phase `Terminating` and up-to-date conditions, or `None` when its
/// status already says so.
fn terminating_status(ns: &Value, remaining: &Remaining, now: jiff::Timestamp) -> Option<Value> {
    let now = jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string();
    let mut wanted: Vec<(&str, &str, &str, String)> = CONDITIONS
        .iter()
        .map(|(t, r, m)| (*t, "False", *r, (*m).to_string()))
        .collect();
    let resources: Vec<String> = remaining
        .by_resource
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect();
    if !resources.is_empty() {
        wanted[3] = (
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", sorted_join(resources)),
        );
    }
    let finalizers: Vec<String> = remaining
        .by_finalizer
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    if !finalizers.is_empty() {
        wanted[4] = (
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                sorted_join(finalizers)
            ),
        );
    }

    let mut updated = ns.clone();
    let obj = updated.as_object_mut()?;
    let status = obj.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let status = status.as_object_mut()?;
    let mut changed = false;
    if status.get("phase").and_then(Value::as_str) != Some("Terminating") {
        status.insert("phase".into(), json!("Terminating"));
        changed = true;
    }
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let conditions = conditions.as_array_mut()?;
    for (ctype, cstatus, reason, message) in wanted {
        let existing = conditions
            .iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(ctype));
        match existing {
            None => {
                conditions.push(json!({
                    "type": ctype,
                    "status": cstatus,
                    "lastTransitionTime": now,
                    "reason": reason,
                    "message": message,
                }));
                changed = true;
            }
            Some(c) => {
                let field =
                    |c: &Value, f: &str| c.get(f).and_then(Value::as_str).map(str::to_string);
                let same = field(c, "status").as_deref() == Some(cstatus)
                    && field(c, "reason").as_deref() == Some(reason)
                    && field(c, "message").as_deref() == Some(message.as_str());
                if !same {
                    if let Some(c) = c.as_object_mut() {
                        if c.get("status").and_then(Value::as_str) != Some(cstatus) {
                            c.insert("lastTransitionTime".into(), json!(now));
                        }
                        c.insert("status".into(), json!(cstatus));
                        c.insert("reason".into(), json!(reason));
                        c.insert("message".into(), json!(message));
                    }
                    changed = true;
                }
            }
        }
    }
    changed.then_some(updated)
}

fn sorted_join(mut items: Vec<String>) -> String {
    items.sort();
    items.join(", ")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn meta_str<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::action::PODS;

    const CONFIG_MAPS: Kind = Kind::new("", "v1", "configmaps");

    fn now() -> jiff::Timestamp {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    fn obj(name: &str, extra: Value) -> Value {
        let mut o =
            json!({"metadata": {"name": name, "namespace": "shop", "uid": format!("{name}-uid")}});
        if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                if k == "metadata" {
                    for (mk, mv) in v.as_object().unwrap() {
                        o["metadata"][mk] = mv.clone();
                    }
                } else {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
        o
    }

    fn condition<'a>(ns: &'a Value, t: &str) -> &'a Value {
        ns["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
    }

    fn deleted_names(plan: &NamespacePlan) -> Vec<String> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                Action::Delete {
                    name,
                    propagation,
                    uid,
                    ..
                } => {
                    assert_eq!(*propagation, Some("Background"));
                    assert!(uid.is_some());
                    Some(name.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn status_of(plan: &NamespacePlan) -> Option<Value> {
        plan.actions.iter().find_map(|a| match a {
            Action::UpdateStatus { object, .. } => Some(object.clone()),
            _ => None,
        })
    }

    #[test]
    fn active_namespace_is_left_alone() {
        let ns = json!({"metadata": {"name": "shop"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let plan = reconcile(&ns, &[(CONFIG_MAPS, vec![obj("a", json!({}))])], now());
        assert_eq!(plan, NamespacePlan::default());
    }

    #[test]
    fn deletion_progresses_until_finalize() {
        let mut ns = json!({
            "metadata": {"name": "shop", "uid": "ns-uid", "resourceVersion": "7", "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes", "example.com/keep"]},
            "status": {"phase": "Active"},
        });
        let running = obj(
            "web",
            json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 20}, "status": {"phase": "Running"}}),
        );
        let pending = obj(
            "pending",
            json!({"spec": {}, "status": {"phase": "Pending"}}),
        );
        let cm_plain = obj("plain", json!({}));
        let cm_fin = obj(
            "held",
            json!({"metadata": {"finalizers": ["example.com/x"]}}),
        );

        // Pass 1: pods first; the bound pod is deleted gracefully and remains.
        let contents = vec![
            (PODS, vec![running.clone(), pending.clone()]),
            (CONFIG_MAPS, vec![cm_plain.clone(), cm_fin.clone()]),
        ];
        let plan = reconcile(&ns, &contents, now());
        assert_eq!(deleted_names(&plan), ["web", "pending"]);
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(11)));
        let status = status_of(&plan).unwrap();
        assert_eq!(status["status"]["phase"], "Terminating");
        assert_eq!(
            condition(&status, "NamespaceContentRemaining")["message"],
            "Some resources are remaining: pods. has 1 resource instances"
        );
        assert_eq!(
            condition(&status, "NamespaceContentRemaining")["reason"],
            "SomeResourcesRemain"
        );
        for (t, reason) in [
            ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered"),
            (
                "NamespaceDeletionGroupVersionParsingFailure",
                "ParsedGroupVersions",
            ),
            ("NamespaceDeletionContentFailure", "ContentDeleted"),
            ("NamespaceFinalizersRemaining", "ContentRemoved"),
        ] {
            assert_eq!(condition(&status, t)["status"], "False", "{t}");
            assert_eq!(condition(&status, t)["reason"], reason, "{t}");
        }
        ns = status;

        // Pass 2: the pod is terminating; nothing new happens, status is unchanged.
        let mut terminating = running.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:20Z");
        let contents = vec![
            (PODS, vec![terminating]),
            (CONFIG_MAPS, vec![cm_plain.clone(), cm_fin.clone()]),
        ];
        let plan = reconcile(&ns, &contents, now());
        assert_eq!(plan.actions, vec![]);
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(11)));

        // Pass 3: pods are gone; everything else is deleted, the finalizer holds one.
        let contents = vec![
            (PODS, vec![]),
            (CONFIG_MAPS, vec![cm_plain.clone(), cm_fin.clone()]),
        ];
        let plan = reconcile(&ns, &contents, now());
        assert_eq!(deleted_names(&plan), ["plain", "held"]);
        let status = status_of(&plan).unwrap();
        assert_eq!(
            condition(&status, "NamespaceContentRemaining")["message"],
            "Some resources are remaining: configmaps. has 1 resource instances"
        );
        let fin = condition(&status, "NamespaceFinalizersRemaining");
        assert_eq!(fin["status"], "True");
        assert_eq!(fin["reason"], "SomeFinalizersRemain");
        assert_eq!(
            fin["message"],
            "Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances"
        );
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(8)));
        ns = status;

        // Pass 4: nothing left; the conditions flip back first (one namespace write per pass).
        let plan = reconcile(&ns, &[(PODS, vec![]), (CONFIG_MAPS, vec![])], now());
        assert_eq!(plan.actions.len(), 1);
        let status = status_of(&plan).unwrap();
        assert_eq!(
            condition(&status, "NamespaceContentRemaining")["status"],
            "False"
        );
        assert_eq!(
            condition(&status, "NamespaceFinalizersRemaining")["status"],
            "False"
        );
        ns = status;

        // Pass 5: finalize.
        let plan = reconcile(&ns, &[(PODS, vec![]), (CONFIG_MAPS, vec![])], now());
        let [Action::Update { kind, object, .. }] = plan.actions.as_slice() else {
            panic!("{:?}", plan.actions)
        };
        assert_eq!(*kind, NAMESPACES);
        assert_eq!(object["spec"]["finalizers"], json!(["example.com/keep"]));
        assert_eq!(object["metadata"]["resourceVersion"], "7");
        assert_eq!(plan.requeue_after, None);

        // Already finalized by us: nothing more.
        let plan = reconcile(object, &[], now());
        assert_eq!(plan.actions, vec![]);
        let mut done = object.clone();
        done["spec"]["finalizers"] = json!([]);
        assert_eq!(reconcile(&done, &[], now()), NamespacePlan::default());
    }
}
