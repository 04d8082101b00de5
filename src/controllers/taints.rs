//! Taint-based eviction (kube-controller-manager's `taint-eviction-controller`): a pod on a
//! node with `NoExecute` taints it does not tolerate is deleted at once; one that tolerates
//! them with `tolerationSeconds` is deleted that long after the taint was added (the
//! smallest such bound over the taints); one that tolerates them without a bound stays.
//!
//! In vkube the `unreachable` taint comes from a syncer that lost its physical cluster, so
//! the pods' controllers recreate them and the scheduler places the new ones elsewhere.
//! Also here: the default tolerations kube-apiserver's `DefaultTolerationSeconds` admission
//! gives every pod (`not-ready` and `unreachable`, `NoExecute`, 300 s).

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::scheduler::tolerates;

/// The default `tolerationSeconds` of the `not-ready` and `unreachable` tolerations.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;
/// The taint a node gets when it stops reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint a node gets when it is not ready.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// What to do with a pod on a tainted node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (no NoExecute taint, or tolerated forever).
    Keep,
    /// Delete it now.
    Evict,
    /// Look again after this long.
    EvictAfter(Duration),
}

/// The decision for `pod` on `node` at `now`.
pub fn decide(pod: &Value, node: &Value, now: Timestamp) -> Decision {
    let taints: Vec<&Value> = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("effect").and_then(Value::as_str) == Some("NoExecute"))
        .collect();
    if taints.is_empty() {
        return Decision::Keep;
    }
    let tolerations: Vec<&Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut deadline: Option<Timestamp> = None;
    for taint in taints {
        let used: Vec<&&Value> = tolerations
            .iter()
            .filter(|tol| tolerates(tol, taint))
            .collect();
        if used.is_empty() {
            return Decision::Evict;
        }
        // A toleration without tolerationSeconds tolerates forever.
        if used
            .iter()
            .any(|tol| tol.get("tolerationSeconds").is_none_or(Value::is_null))
        {
            continue;
        }
        let secs = used
            .iter()
            .filter_map(|tol| tol.get("tolerationSeconds").and_then(Value::as_i64))
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint
            .get("timeAdded")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Timestamp>().ok())
            .unwrap_or(now);
        let due = added
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap_or(added);
        deadline = Some(deadline.map_or(due, |d| d.min(due)));
    }
    match deadline {
        None => Decision::Keep,
        Some(due) if due <= now => Decision::Evict,
        Some(due) => Decision::EvictAfter(due.duration_since(now).unsigned_abs()),
    }
}

/// Adds the `not-ready` and `unreachable` NoExecute tolerations (300 s) a pod lacks, as the
/// `DefaultTolerationSeconds` admission plugin does on create.
pub fn add_default_tolerations(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    for key in [NOT_READY, UNREACHABLE] {
        let taint = json!({"key": key, "effect": "NoExecute"});
        if !list.iter().any(|tol| tolerates(tol, &taint)) {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn node(taints: Value) -> Value {
        json!({"metadata": {"name": "n"}, "spec": {"taints": taints}})
    }

    #[test]
    fn decisions() {
        let now = t("2026-01-01T00:01:00Z");
        let unreachable = node(
            json!([{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]),
        );
        let mut pod = json!({"spec": {"containers": []}});
        assert_eq!(decide(&pod, &node(json!([])), now), Decision::Keep);
        assert_eq!(
            decide(&pod, &unreachable, now),
            Decision::Evict,
            "not tolerated"
        );
        add_default_tolerations(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            decide(&pod, &unreachable, now),
            Decision::EvictAfter(Duration::from_secs(240))
        );
        assert_eq!(
            decide(&pod, &unreachable, t("2026-01-01T00:05:00Z")),
            Decision::Evict
        );
        let forever = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        assert_eq!(decide(&forever, &unreachable, now), Decision::Keep);
        // NoSchedule taints never evict.
        let cordon = node(json!([{"key": "x", "effect": "NoSchedule"}]));
        assert_eq!(decide(&json!({}), &cordon, now), Decision::Keep);
    }

    #[test]
    fn default_tolerations_are_not_duplicated() {
        let mut pod = json!({"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        add_default_tolerations(&mut pod);
        let tols = pod["spec"]["tolerations"].as_array().expect("list");
        assert_eq!(tols.len(), 2);
        assert_eq!(tols[0]["tolerationSeconds"], 5);
        assert_eq!(tols[1]["key"], NOT_READY);
    }
}
