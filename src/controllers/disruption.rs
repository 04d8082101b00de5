//! PodDisruptionBudgets: the disruption controller's pure core (the budget's status from the
//! pods it selects) and the check the `eviction` subresource makes against it, following
//! kube-controller-manager 1.33's `disruption` controller and kube-apiserver's eviction REST:
//!
//! - **expected pods**: with an integer `minAvailable`, the number of selected pods; with
//!   `maxUnavailable` or a percentage, the sum of the `spec.replicas` of the pods'
//!   controllers (ReplicaSet, StatefulSet, ReplicationController), like upstream's scale
//!   lookup; pods without a controller count one each;
//! - **desiredHealthy**: `minAvailable` (a percentage of expected, rounded up), or expected
//!   minus `maxUnavailable` (a percentage rounded up); **currentHealthy**: selected pods that
//!   are Ready and not being deleted, excluding pods evicted moments ago (`disruptedPods`);
//! - **disruptionsAllowed** = max(0, currentHealthy − desiredHealthy), and the
//!   `DisruptionAllowed` condition (`SufficientPods` / `InsufficientPods`).
//!
//! An eviction of a pod that is Running and selected by a budget is allowed only while
//! `disruptionsAllowed` > 0; it is recorded by decrementing it and adding the pod to
//! `disruptedPods`, which a `429 TooManyRequests` otherwise refuses with upstream's message.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::controllers::replicaset::{int_at, is_pod_ready, meta, selector_matches};

/// The reporting component.
pub const CONTROLLER_NAME: &str = "disruption-controller";

/// An int-or-percent of `total`, rounded up (`"50%"` of 3 = 2).
fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((p * total + 99) / 100)
        }
        _ => None,
    }
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The pods `pdb` selects (none when it has no selector, like upstream's empty budget).
pub fn selected<'p>(pdb: &Value, pods: &'p [Value]) -> Vec<&'p Value> {
    let Some(selector) = pdb.pointer("/spec/selector") else {
        return Vec::new();
    };
    pods.iter()
        .filter(|p| {
            selector_matches(
                selector,
                p.pointer("/metadata/labels").and_then(Value::as_object),
            )
        })
        .collect()
}

/// The status `pdb` should have. `replicas_of` maps a controller's uid to its
/// `spec.replicas`.
pub fn status(
    pdb: &Value,
    pods: &[Value],
    replicas_of: &HashMap<String, i64>,
    now: Timestamp,
) -> Value {
    let selected = selected(pdb, pods);
    let integer_min = pdb
        .pointer("/spec/minAvailable")
        .is_some_and(Value::is_number);
    let expected = if integer_min {
        selected.len() as i64
    } else {
        let mut counted = std::collections::HashSet::new();
        let mut total = 0;
        for p in &selected {
            let owner = p
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|refs| {
                    refs.iter()
                        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                })
                .and_then(|r| r.get("uid").and_then(Value::as_str));
            match owner.and_then(|uid| replicas_of.get(uid).map(|n| (uid, *n))) {
                Some((uid, n)) => {
                    if counted.insert(uid.to_string()) {
                        total += n;
                    }
                }
                None => total += 1,
            }
        }
        total
    };
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        scaled(min, expected).unwrap_or(0)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - scaled(max, expected).unwrap_or(0)).max(0)
    } else {
        0
    };
    // Pods evicted in the last two minutes stay counted as gone (upstream's
    // DeletionTimeout), so a burst of evictions cannot overrun the budget.
    let mut disrupted = Map::new();
    if let Some(d) = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
    {
        for (name, at) in d {
            let fresh = at
                .as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .is_some_and(|t| now.duration_since(t).as_secs() < 120);
            let still_there = selected
                .iter()
                .any(|p| meta(p, "name") == name && !deleting(p));
            if fresh && still_there {
                disrupted.insert(name.clone(), at.clone());
            }
        }
    }
    let healthy = selected
        .iter()
        .filter(|p| !deleting(p) && is_pod_ready(p) && !disrupted.contains_key(meta(p, "name")))
        .count() as i64;
    let allowed = (healthy - desired).max(0);
    let generation = int_at(pdb, "/metadata/generation").unwrap_or(0);
    let (cond_status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let transition = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| {
                c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed")
                    && c.get("status").and_then(Value::as_str) == Some(cond_status)
            })
        })
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(seconds(now)));
    let mut status = json!({
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [{
            "type": "DisruptionAllowed", "status": cond_status, "reason": reason, "message": "",
            "observedGeneration": generation, "lastTransitionTime": transition,
        }],
    });
    if !disrupted.is_empty() {
        status["disruptedPods"] = Value::Object(disrupted);
    }
    status
}

fn seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Why an eviction is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 429: the budget allows no disruption now.
    Budget {
        /// The budget.
        name: String,
        /// Its desiredHealthy.
        desired: i64,
        /// Its currentHealthy.
        current: i64,
    },
    /// 500: more than one budget selects the pod.
    SeveralBudgets,
    /// 429: the budget's status is older than its spec.
    Stale,
}

impl Refusal {
    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Refusal::SeveralBudgets => 500,
            _ => 429,
        }
    }

    /// The metav1.Status body kube-apiserver sends.
    pub fn status(&self) -> Value {
        let (message, causes) = match self {
            Refusal::Budget { name, desired, current } => (
                "Cannot evict pod as it would violate the pod's disruption budget.".to_string(),
                json!([{"reason": "DisruptionBudget", "message": format!("The disruption budget {name} needs {desired} healthy pods and has {current} currently")}]),
            ),
            Refusal::SeveralBudgets => (
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".to_string(),
                json!([]),
            ),
            Refusal::Stale => (
                "Cannot evict pod as it would violate the pod's disruption budget.".to_string(),
                json!([{"reason": "DisruptionBudget", "message": "The disruption budget's status is not up to date"}]),
            ),
        };
        let (reason, code) = match self {
            Refusal::SeveralBudgets => ("InternalError", 500),
            _ => ("TooManyRequests", 429),
        };
        let mut details = json!({});
        if causes.as_array().is_some_and(|c| !c.is_empty()) {
            details["causes"] = causes;
        }
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "details": details, "code": code})
    }
}

/// Whether `pod` may be evicted given the budgets of its namespace. `Ok(Some(pdb))` = allowed,
/// and `pdb` (with its status updated to record the eviction) must be written first;
/// `Ok(None)` = allowed without a budget (no budget selects it, or it is not running).
pub fn check_eviction(
    pod: &Value,
    pdbs: &[Value],
    now: Timestamp,
) -> Result<Option<Value>, Refusal> {
    // Pods that are not running (pending, finished) or already going cannot be disrupted.
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase != "Running" || deleting(pod) {
        return Ok(None);
    }
    let one = [pod.clone()];
    let matching: Vec<&Value> = pdbs
        .iter()
        .filter(|b| !selected(b, &one).is_empty())
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(Refusal::SeveralBudgets),
    };
    let generation = int_at(pdb, "/metadata/generation").unwrap_or(0);
    if int_at(pdb, "/status/observedGeneration").unwrap_or(-1) < generation {
        return Err(Refusal::Stale);
    }
    let allowed = int_at(pdb, "/status/disruptionsAllowed").unwrap_or(0);
    if allowed <= 0 {
        return Err(Refusal::Budget {
            name: meta(pdb, "name").to_string(),
            desired: int_at(pdb, "/status/desiredHealthy").unwrap_or(0),
            current: int_at(pdb, "/status/currentHealthy").unwrap_or(0),
        });
    }
    let mut next = pdb.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if !next["status"]
        .get("disruptedPods")
        .is_some_and(Value::is_object)
    {
        next["status"]["disruptedPods"] = json!({});
    }
    next["status"]["disruptedPods"][meta(pod, "name")] = json!(seconds(now));
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn pod(name: &str, ready: bool, owner: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
                           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        if let Some(uid) = owner {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": true}]);
        }
        p
    }

    fn pdb(spec: Value) -> Value {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        json!({"metadata": {"name": "web-pdb", "namespace": "default", "generation": 1}, "spec": spec})
    }

    #[test]
    fn status_from_min_available_and_max_unavailable() {
        let now = t("2026-01-01T00:00:00Z");
        let pods = vec![
            pod("a", true, Some("u")),
            pod("b", true, Some("u")),
            pod("c", false, Some("u")),
        ];
        let replicas = HashMap::from([("u".to_string(), 3)]);
        let s = status(&pdb(json!({"minAvailable": 2})), &pods, &replicas, now);
        assert_eq!(
            (
                s["expectedPods"].as_i64(),
                s["desiredHealthy"].as_i64(),
                s["currentHealthy"].as_i64(),
                s["disruptionsAllowed"].as_i64()
            ),
            (Some(3), Some(2), Some(2), Some(0))
        );
        assert_eq!(s["conditions"][0]["reason"], "InsufficientPods");
        let s = status(
            &pdb(json!({"maxUnavailable": "34%"})),
            &pods,
            &replicas,
            now,
        );
        // 34% of 3 rounds up to 2 unavailable: 1 desired healthy, 2 healthy → 1 allowed.
        assert_eq!(
            (
                s["desiredHealthy"].as_i64(),
                s["disruptionsAllowed"].as_i64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(s["conditions"][0]["reason"], "SufficientPods");
        let s = status(&pdb(json!({"minAvailable": "50%"})), &pods, &replicas, now);
        assert_eq!(s["desiredHealthy"].as_i64(), Some(2));
    }

    #[test]
    fn eviction_allowed_once_then_refused_with_upstream_message() {
        let now = t("2026-01-01T00:00:00Z");
        let pods = vec![pod("a", true, None), pod("b", true, None)];
        let mut budget = pdb(json!({"minAvailable": 1}));
        budget["status"] = status(&budget, &pods, &HashMap::new(), now);
        assert_eq!(budget["status"]["disruptionsAllowed"], 1);
        let next = check_eviction(&pods[0], std::slice::from_ref(&budget), now)
            .expect("allowed")
            .expect("budget to write");
        assert_eq!(next["status"]["disruptionsAllowed"], 0);
        assert_eq!(next["status"]["disruptedPods"]["a"], "2026-01-01T00:00:00Z");
        // The controller keeps the evicted pod counted as gone.
        let again = status(&next, &pods, &HashMap::new(), now);
        assert_eq!(again["disruptionsAllowed"], 0);
        let mut after = next.clone();
        after["status"] = again;
        let refused = check_eviction(&pods[1], &[after], now).unwrap_err();
        assert_eq!(refused.code(), 429);
        let st = refused.status();
        assert_eq!(
            st["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(
            st["details"]["causes"][0]["message"],
            "The disruption budget web-pdb needs 1 healthy pods and has 1 currently"
        );
    }

    #[test]
    fn pods_not_running_or_unselected_are_evicted_freely() {
        let now = t("2026-01-01T00:00:00Z");
        let mut budget = pdb(json!({"minAvailable": 5}));
        budget["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": 0});
        let mut pending = pod("p", false, None);
        pending["status"]["phase"] = json!("Pending");
        assert_eq!(
            check_eviction(&pending, std::slice::from_ref(&budget), now),
            Ok(None)
        );
        let mut other = pod("o", true, None);
        other["metadata"]["labels"] = json!({"app": "other"});
        assert_eq!(
            check_eviction(&other, std::slice::from_ref(&budget), now),
            Ok(None)
        );
        let two = [budget.clone(), budget];
        assert_eq!(
            check_eviction(&pod("x", true, None), &two, now),
            Err(Refusal::SeveralBudgets)
        );
    }
}
