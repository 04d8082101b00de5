//! What a DELETE does to an object, decided without I/O: delete it now, or mark it
//! (`deletionTimestamp`, `deletionGracePeriodSeconds`, propagation finalizers) and leave it to
//! finalizers, the garbage collector or the kubelet.
//!
//! kube-apiserver's rules, as users see them:
//! - an object with finalizers is only marked; it goes when the last finalizer is removed;
//! - `propagationPolicy: Foreground` adds the `foregroundDeletion` finalizer, `Orphan` adds
//!   `orphan` (the garbage collector acts on them), `Background` adds neither;
//! - a pod bound to a node and not finished is deleted gracefully: `deletionTimestamp` is now
//!   plus the grace period (the request's `gracePeriodSeconds`, else the pod's
//!   `terminationGracePeriodSeconds`, else 30); its node's agent completes the deletion.
//!   Unbound or finished pods, and a grace period of 0, go at once;
//! - deleting an object that is already being deleted changes nothing, except that a shorter
//!   grace period for a pod shortens its deadline.

use serde_json::{Value, json};

/// `DeleteOptions` as they matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy` (or the deprecated `orphanDependents`).
    pub propagation: Option<Propagation>,
}

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Delete dependents after the owner.
    Background,
    /// Delete dependents first (the owner keeps the `foregroundDeletion` finalizer).
    Foreground,
    /// Leave dependents (the owner keeps the `orphan` finalizer until they are released).
    Orphan,
}

/// The finalizer Foreground deletion adds.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer Orphan deletion adds.
pub const ORPHAN: &str = "orphan";

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum DeletePlan {
    /// Remove the object now.
    Now,
    /// Store this marked version of the object instead.
    Mark(Value),
    /// Already being deleted; nothing changes.
    Unchanged,
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_namespace(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Namespace")
}

/// A namespace's `spec.finalizers` (emptied through the `finalize` subresource).
fn spec_finalizers(obj: &Value) -> usize {
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// Whether an object whose last finalizer is gone may now be removed.
pub fn ready_to_remove(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
        && finalizers(obj).is_empty()
        && (!is_namespace(obj) || spec_finalizers(obj) == 0)
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
}

/// Decides a delete of `obj` (a pod when `is_pod`) at `now` (Unix seconds).
pub fn plan(is_pod: bool, obj: &Value, req: &DeleteRequest, now: i64) -> DeletePlan {
    let mut fins = finalizers(obj);
    let marked = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    let graceful_pod = is_pod && {
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        bound && !finished
    };
    let grace = if graceful_pod {
        req.grace_period_seconds
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            .max(0)
    } else {
        0
    };

    if marked {
        let current = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if graceful_pod && grace < current {
            if grace == 0 && fins.is_empty() {
                return DeletePlan::Now;
            }
            let mut new = obj.clone();
            set_meta(&mut new, "deletionTimestamp", json!(rfc3339(now + grace)));
            set_meta(&mut new, "deletionGracePeriodSeconds", json!(grace));
            return DeletePlan::Mark(new);
        }
        return DeletePlan::Unchanged;
    }

    match req.propagation {
        Some(Propagation::Foreground) => {
            fins.retain(|f| f != ORPHAN);
            if !fins.iter().any(|f| f == FOREGROUND) {
                fins.push(FOREGROUND.into());
            }
        }
        Some(Propagation::Orphan) => {
            fins.retain(|f| f != FOREGROUND);
            if !fins.iter().any(|f| f == ORPHAN) {
                fins.push(ORPHAN.into());
            }
        }
        Some(Propagation::Background) | None => {}
    }
    let namespace_held = is_namespace(obj) && spec_finalizers(obj) > 0;
    if fins.is_empty() && grace == 0 && !namespace_held {
        return DeletePlan::Now;
    }
    let mut new = obj.clone();
    if is_namespace(obj)
        && let Some(o) = new.as_object_mut()
    {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if let Some(st) = status.as_object_mut() {
            st.insert("phase".into(), json!("Terminating"));
        }
    }
    set_meta(&mut new, "deletionTimestamp", json!(rfc3339(now + grace)));
    set_meta(&mut new, "deletionGracePeriodSeconds", json!(grace));
    if !fins.is_empty() {
        set_meta(&mut new, "finalizers", json!(fins));
    }
    DeletePlan::Mark(new)
}

fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn obj(finalizers: &[&str]) -> Value {
        json!({"metadata": {"name": "x", "finalizers": finalizers}})
    }

    fn pod(node: &str, phase: &str, grace: Option<i64>) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"nodeName": node}, "status": {"phase": phase}});
        if let Some(g) = grace {
            p["spec"]["terminationGracePeriodSeconds"] = json!(g);
        }
        p
    }

    fn marked(plan: DeletePlan) -> Value {
        match plan {
            DeletePlan::Mark(v) => v,
            other => panic!("expected Mark, got {other:?}"),
        }
    }

    #[test]
    fn plain_objects_go_at_once_and_finalizers_hold_them() {
        let req = DeleteRequest::default();
        assert_eq!(plan(false, &obj(&[]), &req, NOW), DeletePlan::Now);
        let m = marked(plan(false, &obj(&["example.com/hold"]), &req, NOW));
        assert_eq!(m["metadata"]["deletionTimestamp"], rfc3339(NOW));
        assert_eq!(m["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(m["metadata"]["finalizers"], json!(["example.com/hold"]));
        assert_eq!(plan(false, &m, &req, NOW + 5), DeletePlan::Unchanged);
    }

    #[test]
    fn propagation_policies_add_their_finalizers() {
        let fg = DeleteRequest {
            propagation: Some(Propagation::Foreground),
            ..Default::default()
        };
        let m = marked(plan(false, &obj(&[]), &fg, NOW));
        assert_eq!(m["metadata"]["finalizers"], json!([FOREGROUND]));
        let orphan = DeleteRequest {
            propagation: Some(Propagation::Orphan),
            ..Default::default()
        };
        let m = marked(plan(false, &obj(&["a", FOREGROUND]), &orphan, NOW));
        assert_eq!(m["metadata"]["finalizers"], json!(["a", ORPHAN]));
        let bg = DeleteRequest {
            propagation: Some(Propagation::Background),
            ..Default::default()
        };
        assert_eq!(plan(false, &obj(&[]), &bg, NOW), DeletePlan::Now);
    }

    #[test]
    fn pods_are_deleted_gracefully_only_when_bound_and_running() {
        let req = DeleteRequest::default();
        assert_eq!(
            plan(true, &pod("", "Pending", None), &req, NOW),
            DeletePlan::Now
        );
        assert_eq!(
            plan(true, &pod("n1", "Succeeded", None), &req, NOW),
            DeletePlan::Now
        );
        let m = marked(plan(true, &pod("n1", "Running", None), &req, NOW));
        assert_eq!(m["metadata"]["deletionTimestamp"], rfc3339(NOW + 30));
        assert_eq!(m["metadata"]["deletionGracePeriodSeconds"], 30);
        let m = marked(plan(true, &pod("n1", "Running", Some(5)), &req, NOW));
        assert_eq!(m["metadata"]["deletionGracePeriodSeconds"], 5);
        // A shorter grace period on a terminating pod shortens it; 0 removes it.
        let shorter = DeleteRequest {
            grace_period_seconds: Some(2),
            ..Default::default()
        };
        let m2 = marked(plan(true, &m, &shorter, NOW + 1));
        assert_eq!(m2["metadata"]["deletionTimestamp"], rfc3339(NOW + 3));
        let force = DeleteRequest {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(plan(true, &m, &force, NOW + 1), DeletePlan::Now);
        assert_eq!(
            plan(true, &pod("n1", "Running", None), &force, NOW),
            DeletePlan::Now
        );
        assert_eq!(
            plan(true, &m, &DeleteRequest::default(), NOW + 1),
            DeletePlan::Unchanged
        );
    }

    #[test]
    fn removal_waits_for_the_last_finalizer_and_the_grace_period() {
        let mut m = marked(plan(false, &obj(&["a"]), &DeleteRequest::default(), NOW));
        assert!(!ready_to_remove(&m));
        m["metadata"]["finalizers"] = json!([]);
        assert!(ready_to_remove(&m));
        assert!(!ready_to_remove(&obj(&[])), "not being deleted");
        let p = marked(plan(
            true,
            &pod("n1", "Running", None),
            &DeleteRequest::default(),
            NOW,
        ));
        assert!(!ready_to_remove(&p), "a graceful pod waits for its node");
    }
}
