//! The DaemonSet controller's pure reconcile core: `(DaemonSet, pods of its namespace, nodes,
//! now) → actions`, level-triggered and idempotent, following kube-controller-manager 1.33's
//! `daemonset-controller` (`daemon_controller.go`, `update.go`, `util/daemonset_util.go`):
//!
//! - **claiming**: pods the selector matches are adopted and kept, pods with this controller
//!   reference that it no longer matches are released (upstream `ClaimPods`). Pods are
//!   attributed to the node of `spec.nodeName`, else of their required node affinity's
//!   `matchFields metadata.name In [node]`; terminal pods being deleted are ignored.
//! - **eligibility** (upstream `NodeShouldRunDaemonPod`): a node should run the daemon pod
//!   when the template's `nodeName` (if any) is the node, its `nodeSelector` and required
//!   node affinity (terms ORed; `matchExpressions` In/NotIn/Exists/DoesNotExist/Gt/Lt on
//!   labels, `matchFields` on `metadata.name`) match, and every NoSchedule/NoExecute taint is
//!   tolerated — counting the tolerations upstream adds to daemon pods: not-ready and
//!   unreachable (NoExecute), disk-pressure, memory-pressure, pid-pressure and unschedulable
//!   (NoSchedule), network-unavailable (NoSchedule) with hostNetwork. An existing pod may
//!   stay on a node whose only untolerated taints are NoSchedule. `spec.unschedulable`
//!   itself is not looked at (upstream tolerates its taint).
//! - **manage**: a pod is created on each eligible node without one; on a node where it may
//!   stay, failed pods are deleted (`FailedDaemonPod` warning), succeeded ones deleted, and of
//!   several running ones all but the oldest (scheduled first, then creation time, then
//!   name); on a node where it may not stay every pod is deleted. At most 250 creations and
//!   250 deletions per sync (upstream `burstReplicas`).
//! - **pods created** from the template with `generateName <ds>-`, the template's labels plus
//!   `controller-revision-hash` and `pod-template-generation`, the default tolerations, a
//!   controller reference, and the required node affinity replaced by `matchFields
//!   metadata.name In [node]` (upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`).
//! - **RollingUpdate** (only in a sync where manage had nothing to do, like upstream's
//!   expectations): out-of-date pods (neither the revision hash nor the template generation
//!   matches) are deleted while at most `maxUnavailable` (default 1; an integer or a
//!   percentage of the desired number, rounded up) pods are unavailable; unavailable old
//!   pods are replaced at once. Nodes without a pod, with an old and a new pod, or with
//!   several pods count as unavailable. Manage then creates the new pods. **OnDelete** only
//!   replaces pods deleted by someone else.
//! - **status**: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled,
//!   numberReady, numberAvailable (ready for `minReadySeconds`), numberUnavailable,
//!   updatedNumberScheduled (judged on each node's oldest pod) and observedGeneration,
//!   computed from the snapshot; written with `UpdateStatus` only when changed.
//! - **events** from `daemonset-controller`: `SuccessfulCreate` "Created pod: <name>",
//!   `SuccessfulDelete` "Deleted pod: <name>", `FailedDaemonPod`.
//!
//! Deviations:
//! - created pods also get `spec.nodeName` = the node, besides the node affinity upstream
//!   relies on for the scheduler to bind them: virtual nodes may have no scheduler serving
//!   them, and `vkube sim`'s scheduler honours `nodeSelector` but not node affinity. A pod
//!   carrying both is bound at creation, which is what the scheduler would do (capacity is
//!   not checked, as upstream's DaemonSet controller does not either);
//! - pods attributed to a node that does not exist are deleted (upstream deletes only the
//!   unscheduled ones and leaves bound ones to the pod garbage collector);
//! - no ControllerRevisions are written (`kubectl rollout history/undo daemonset` see
//!   none); the `controller-revision-hash` label is the hash such a revision would be named
//!   after (FNV-1a of the template, see [`crate::controllers::statefulset::revision_hash`]),
//!   so pods keep their hash when revisions are added;
//! - `pod-template-generation` is the `deprecated.daemonset.template.generation` annotation
//!   when present, else `metadata.generation` (vkube's API does not maintain the annotation;
//!   the generation changes whenever the template does, so "updated" judgements agree);
//! - `maxSurge` is not implemented (pods are replaced delete-first, as with maxSurge 0); a
//!   RollingUpdate allowing no unavailability then replaces one pod at a time;
//! - failed pods are deleted on every sync that sees them, without upstream's per-node
//!   exponential backoff (the runtime's own retry backoff applies to failing writes);
//! - a DaemonSet with an empty selector does nothing (upstream also emits a `SelectingAll`
//!   warning on every sync); one being deleted does nothing, as upstream.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, DAEMON_SETS, PODS};
use crate::controllers::replicaset::{
    Claim, claim, controller_ref_to, creation_time, generate_name_prefix, int_at, involved,
    is_deleting, is_empty_value, is_pod_available, is_pod_ready, labels, meta, meta_map,
    name_suffix, omit_zero_fields, selector_is_empty, selector_matches, status_update, with_owner,
    without_owner,
};
use crate::controllers::statefulset::{REVISION_LABEL, revision_data, revision_hash};

/// The reporting component of the events.
pub const CONTROLLER_NAME: &str = "daemonset-controller";
/// The label holding the template generation a pod was created from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation upstream's API server keeps the template generation in.
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// Upstream's `burstReplicas` for DaemonSets.
const BURST_REPLICAS: usize = 250;
/// `(key, effect)` of the tolerations every daemon pod gets (all `operator: Exists`).
const DEFAULT_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];
/// The toleration added with `hostNetwork`.
const NETWORK_UNAVAILABLE: (&str, &str) = ("node.kubernetes.io/network-unavailable", "NoSchedule");

/// Reconciles one DaemonSet against the pods of its namespace and all nodes.
pub fn reconcile(ds: &Value, pods: &[Value], nodes: &[Value], now: Timestamp) -> Vec<Action> {
    let name = meta(ds, "name");
    let uid = meta(ds, "uid");
    let selector = ds.pointer("/spec/selector").unwrap_or(&Value::Null);
    if name.is_empty() || uid.is_empty() || is_deleting(ds) || !selector.is_object() {
        return Vec::new();
    }
    if selector_is_empty(selector) {
        return Vec::new();
    }
    let ns = meta(ds, "namespace");
    let owner = controller_ref_to(ds, "apps/v1", "DaemonSet");
    let involved = involved(ds, "apps/v1", "DaemonSet");
    let collision = int_at(ds, "/status/collisionCount").unwrap_or(0).max(0);
    let hash = revision_hash(&revision_data(ds), collision);
    let generation = template_generation(ds);
    let spec = daemon_pod_spec(ds);
    let mut actions = Vec::new();

    let mut claimed: Vec<&Value> = Vec::new();
    for pod in pods {
        match claim(ds, false, pod, selector_matches(selector, labels(pod))) {
            Claim::Mine => claimed.push(pod),
            Claim::Adopt => {
                actions.push(update(ns, with_owner(pod, &owner)));
                claimed.push(pod);
            }
            Claim::Release => actions.push(update(ns, without_owner(pod, uid))),
            Claim::Ignore => {}
        }
    }
    let mut by_node: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for pod in claimed {
        if is_terminal(pod) && is_deleting(pod) {
            continue;
        }
        if let Some(node) = target_node(pod) {
            by_node.entry(node).or_default().push(pod);
        }
    }
    let mut nodes: Vec<&Value> = nodes
        .iter()
        .filter(|n| !meta(n, "name").is_empty())
        .collect();
    nodes.sort_by(|a, b| meta(a, "name").cmp(meta(b, "name")));
    let fits: Vec<(&str, bool, bool)> = nodes
        .iter()
        .map(|n| {
            let (run, stay) = node_should_run(ds, &spec, n);
            (meta(n, "name"), run, stay)
        })
        .collect();

    // Manage: what each node needs.
    let mut to_create: Vec<&str> = Vec::new();
    let mut to_delete: Vec<&Value> = Vec::new();
    for &(node, run, stay) in &fits {
        let daemon_pods = by_node.get(node);
        if run && daemon_pods.is_none() {
            to_create.push(node);
        } else if stay {
            let mut running: Vec<&Value> = Vec::new();
            for pod in daemon_pods.into_iter().flatten() {
                if is_deleting(pod) {
                    continue;
                }
                match phase(pod) {
                    "Failed" => {
                        let msg = format!(
                            "Found failed daemon pod {ns}/{} on node {node}, will try to kill it",
                            meta(pod, "name")
                        );
                        actions.push(event(&involved, "Warning", "FailedDaemonPod", msg));
                        to_delete.push(pod);
                    }
                    "Succeeded" => to_delete.push(pod),
                    _ => running.push(pod),
                }
            }
            running.sort_by(|a, b| oldest_first(a, b));
            to_delete.extend(running.into_iter().skip(1));
        } else {
            let live = daemon_pods
                .into_iter()
                .flatten()
                .filter(|p| !is_deleting(p));
            to_delete.extend(live);
        }
    }
    let known: HashSet<&str> = fits.iter().map(|f| f.0).collect();
    for (_, pods) in by_node.iter().filter(|(n, _)| !known.contains(*n)) {
        to_delete.extend(pods.iter().filter(|p| !is_deleting(p)));
    }

    let taken: HashSet<&str> = pods.iter().map(|p| meta(p, "name")).collect();
    let mut used: HashSet<String> = HashSet::new();
    let prefix = generate_name_prefix(name);
    for node in to_create.iter().take(BURST_REPLICAS) {
        let mut attempt = 0u32;
        let pod_name = loop {
            let seed = format!("{uid}/{}/{node}/{attempt}", now.as_nanosecond());
            let candidate = format!("{prefix}{}", name_suffix(&seed));
            if !taken.contains(candidate.as_str()) && !used.contains(&candidate) {
                break candidate;
            }
            attempt += 1;
        };
        used.insert(pod_name.clone());
        let pod = new_pod(
            ds, &spec, &owner, node, &pod_name, &prefix, &hash, generation,
        );
        actions.push(Action::Create {
            kind: PODS,
            namespace: ns.to_string(),
            object: pod,
        });
        let msg = format!("Created pod: {pod_name}");
        actions.push(event(&involved, "Normal", "SuccessfulCreate", msg));
    }
    let rolling = ds
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("RollingUpdate");
    if to_create.is_empty() && to_delete.is_empty() && rolling {
        to_delete = rolling_update(ds, &by_node, &fits, &hash, generation, now);
    }
    for pod in to_delete.iter().take(BURST_REPLICAS) {
        actions.push(Action::Delete {
            kind: PODS,
            namespace: ns.to_string(),
            name: meta(pod, "name").to_string(),
            uid: Some(meta(pod, "uid").to_string()).filter(|u| !u.is_empty()),
            propagation: None,
        });
        let msg = format!("Deleted pod: {}", meta(pod, "name"));
        actions.push(event(&involved, "Normal", "SuccessfulDelete", msg));
    }

    let status = daemon_set_status(ds, &by_node, &fits, &hash, generation, now);
    actions.extend(status_update(ds, DAEMON_SETS, status));
    actions
}

/// When to reconcile `ds` again without an event: the moment its next ready pod becomes
/// available (`minReadySeconds`), if any is waiting for that.
pub fn requeue_after(ds: &Value, pods: &[Value], now: Timestamp) -> Option<Duration> {
    crate::controllers::replicaset::requeue_after(ds, pods, now)
}

/// Old pods to delete now (upstream `rollingUpdate` without surge).
fn rolling_update<'p>(
    ds: &Value,
    by_node: &BTreeMap<&str, Vec<&'p Value>>,
    fits: &[(&str, bool, bool)],
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<&'p Value> {
    let min_ready = int_at(ds, "/spec/minReadySeconds").unwrap_or(0);
    let mut nodes: BTreeMap<&str, &[&Value]> =
        by_node.iter().map(|(n, p)| (*n, p.as_slice())).collect();
    let desired = fits.iter().filter(|f| f.1).count();
    for f in fits.iter().filter(|f| f.1) {
        nodes.entry(f.0).or_insert(&[]);
    }
    let mut max_unavailable = ds
        .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable")
        .map_or(Some(0), |v| scaled_value(v, desired))
        .unwrap_or(1);
    if desired > 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let mut unavailable = 0usize;
    let mut replace: Vec<&Value> = Vec::new();
    let mut candidates: Vec<&Value> = Vec::new();
    for pods in nodes.values() {
        let (mut new, mut old, mut excess) = (None, None, false);
        for pod in pods.iter().filter(|p| !is_deleting(p)) {
            let slot = if is_updated(pod, hash, generation) {
                &mut new
            } else {
                &mut old
            };
            excess |= slot.replace(*pod).is_some();
        }
        match (new, old) {
            _ if excess => unavailable += 1,
            (None, None) | (Some(_), Some(_)) => unavailable += 1,
            (Some(new), None) => {
                unavailable += usize::from(!is_pod_available(new, min_ready, now));
            }
            (None, Some(old)) => {
                if !is_pod_available(old, min_ready, now) {
                    replace.push(old);
                    unavailable += 1;
                } else if unavailable < max_unavailable {
                    candidates.push(old);
                }
            }
        }
    }
    let room = max_unavailable
        .saturating_sub(unavailable)
        .min(candidates.len());
    replace.extend(candidates.into_iter().take(room));
    replace
}

/// The status upstream's `updateDaemonSetStatus` computes.
fn daemon_set_status(
    ds: &Value,
    by_node: &BTreeMap<&str, Vec<&Value>>,
    fits: &[(&str, bool, bool)],
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Value {
    let min_ready = int_at(ds, "/spec/minReadySeconds").unwrap_or(0);
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for &(node, run, _) in fits {
        let pods = by_node.get(node).filter(|p| !p.is_empty());
        if !run {
            misscheduled += i64::from(pods.is_some());
            continue;
        }
        desired += 1;
        let Some(pod) = pods.and_then(|p| p.iter().min_by(|a, b| oldest_first(a, b))) else {
            continue;
        };
        current += 1;
        if is_pod_ready(pod) {
            ready += 1;
            available += i64::from(is_pod_available(pod, min_ready, now));
        }
        updated += i64::from(is_updated(pod, hash, generation));
    }
    let mut status = ds
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        ("currentNumberScheduled", current),
        ("numberMisscheduled", misscheduled),
        ("desiredNumberScheduled", desired),
        ("numberReady", ready),
        (
            "observedGeneration",
            int_at(ds, "/metadata/generation").unwrap_or(0),
        ),
        ("updatedNumberScheduled", updated),
        ("numberAvailable", available),
        ("numberUnavailable", desired - available),
    ] {
        status.insert(k.into(), json!(v));
    }
    let mut status = Value::Object(status);
    omit_zero_fields(
        &mut status,
        &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        ],
    );
    status
}

/// A pod for `node` (upstream `CreatePodTemplate` + the node affinity), bound to it.
#[allow(clippy::too_many_arguments)]
fn new_pod(
    ds: &Value,
    spec: &Value,
    owner: &Value,
    node: &str,
    name: &str,
    prefix: &str,
    hash: &str,
    generation: Option<i64>,
) -> Value {
    let template = ds.pointer("/spec/template").unwrap_or(&Value::Null);
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    metadata.insert("generateName".into(), json!(prefix));
    metadata.insert("namespace".into(), json!(meta(ds, "namespace")));
    let mut pod_labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(g) = generation {
        pod_labels.insert(TEMPLATE_GENERATION_LABEL.into(), json!(g.to_string()));
    }
    pod_labels.insert(REVISION_LABEL.into(), json!(hash));
    metadata.insert("labels".into(), Value::Object(pod_labels));
    for field in ["annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}"))
            && !is_empty_value(v)
        {
            metadata.insert(field.into(), v.clone());
        }
    }
    metadata.insert("ownerReferences".into(), json!([owner]));
    let mut spec = spec.clone();
    if let Some(s) = spec.as_object_mut() {
        let term = json!({"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]});
        let affinity = s.entry("affinity").or_insert_with(|| json!({}));
        if !affinity.is_object() {
            *affinity = json!({});
        }
        let na = &mut affinity["nodeAffinity"];
        if !na.is_object() {
            *na = json!({});
        }
        let required = &mut na["requiredDuringSchedulingIgnoredDuringExecution"];
        if !required.is_object() {
            *required = json!({});
        }
        required["nodeSelectorTerms"] = json!([term]);
        s.insert("nodeName".into(), json!(node));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// The template's pod spec with upstream's daemon tolerations added
/// (`AddOrUpdateDaemonPodTolerations`: appended unless an equal one is there).
fn daemon_pod_spec(ds: &Value) -> Value {
    let mut spec = ds
        .pointer("/spec/template/spec")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let extra = host_network.then_some(NETWORK_UNAVAILABLE);
    let mut tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, effect) in DEFAULT_TOLERATIONS.into_iter().chain(extra) {
        let same = |t: &Value| {
            str_of(t, "key") == key
                && str_of(t, "effect") == effect
                && str_of(t, "operator") == "Exists"
                && str_of(t, "value").is_empty()
        };
        if !tolerations.iter().any(same) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
    spec
}

/// `(should run, may keep running)` of upstream's `NodeShouldRunDaemonPod`, with `spec` the
/// daemon pod spec (default tolerations included).
fn node_should_run(ds: &Value, spec: &Value, node: &Value) -> (bool, bool) {
    let wanted = ds
        .pointer("/spec/template/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !wanted.is_empty() && wanted != meta(node, "name") {
        return (false, false);
    }
    if !node_affinity_matches(spec, node) {
        return (false, false);
    }
    let tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let taints = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|taint| {
            effects.contains(&str_of(taint, "effect"))
                && !tolerations.iter().any(|t| tolerates(t, taint))
        })
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// Upstream `Toleration.ToleratesTaint`.
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let effect = str_of(toleration, "effect");
    let key = str_of(toleration, "key");
    if (!effect.is_empty() && effect != str_of(taint, "effect"))
        || (!key.is_empty() && key != str_of(taint, "key"))
    {
        return false;
    }
    match str_of(toleration, "operator") {
        "" | "Equal" => str_of(toleration, "value") == str_of(taint, "value"),
        "Exists" => true,
        _ => false,
    }
}

/// The pod's `nodeSelector` and required node affinity match `node`.
pub(crate) fn node_affinity_matches(spec: &Value, node: &Value) -> bool {
    let node_labels = labels(node);
    let label = |k: &str| node_labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(sel) = spec.get("nodeSelector").and_then(Value::as_object)
        && !sel
            .iter()
            .all(|(k, v)| label(k).is_some() && label(k) == v.as_str())
    {
        return false;
    }
    let Some(required) = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
        .filter(|r| !r.is_null())
    else {
        return true;
    };
    let name = meta(node, "name");
    required
        .get("nodeSelectorTerms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|term| {
            let list = |f: &str| {
                term.get(f)
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice)
            };
            let (exprs, fields) = (list("matchExpressions"), list("matchFields"));
            (!exprs.is_empty() || !fields.is_empty())
                && exprs
                    .iter()
                    .all(|r| requirement_matches(r, label(str_of(r, "key"))))
                && fields.iter().all(|r| {
                    str_of(r, "key") == "metadata.name" && requirement_matches(r, Some(name))
                })
        })
}

/// One `NodeSelectorRequirement` against the value it names (None when absent).
fn requirement_matches(req: &Value, have: Option<&str>) -> bool {
    let values: Vec<&str> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    let compare = |want: std::cmp::Ordering| match (have.and_then(number), values.as_slice()) {
        (Some(h), [v]) => number(v).is_some_and(|v| h.cmp(&v) == want),
        _ => false,
    };
    match str_of(req, "operator") {
        "In" => have.is_some_and(|h| values.contains(&h)),
        "NotIn" => have.is_none_or(|h| !values.contains(&h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" => compare(std::cmp::Ordering::Greater),
        "Lt" => compare(std::cmp::Ordering::Less),
        _ => false,
    }
}

/// The node a daemon pod is for (upstream `GetTargetNodeName`).
fn target_node(pod: &Value) -> Option<&str> {
    let bound = str_of(pod.get("spec").unwrap_or(&Value::Null), "nodeName");
    if !bound.is_empty() {
        return Some(bound);
    }
    pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|t| t.get("matchFields").and_then(Value::as_array))
        .flatten()
        .find(|r| str_of(r, "key") == "metadata.name" && str_of(r, "operator") == "In")
        .and_then(|r| match r.get("values").and_then(Value::as_array)?.as_slice() {
            [v] => v.as_str(),
            _ => None,
        })
}

/// Upstream `IsPodUpdated`: the hash label or the template-generation label matches.
fn is_updated(pod: &Value, hash: &str, generation: Option<i64>) -> bool {
    let label = |k: &str| labels(pod).and_then(|l| l.get(k)).and_then(Value::as_str);
    (!hash.is_empty() && label(REVISION_LABEL) == Some(hash))
        || generation.is_some_and(|g| label(TEMPLATE_GENERATION_LABEL) == Some(&g.to_string()))
}

/// The template generation pods are labelled with (see the module documentation).
fn template_generation(ds: &Value) -> Option<i64> {
    let annotated = meta_map(ds, "annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    annotated.or_else(|| int_at(ds, "/metadata/generation").filter(|g| *g > 0))
}

/// An int-or-percent scaled against `total`, percentages rounded up; None when malformed.
fn scaled_value(v: &Value, total: usize) -> Option<usize> {
    if let Some(n) = v.as_u64() {
        return usize::try_from(n).ok();
    }
    let pct: usize = v.as_str()?.strip_suffix('%')?.parse().ok()?;
    Some((pct * total).div_ceil(100))
}

/// Upstream `podByCreationTimestampAndPhase`: scheduled first, then oldest, then by name.
fn oldest_first(a: &Value, b: &Value) -> std::cmp::Ordering {
    let unscheduled = |p: &Value| target_unbound(p);
    unscheduled(a)
        .cmp(&unscheduled(b))
        .then_with(|| creation_time(a).cmp(&creation_time(b)))
        .then_with(|| meta(a, "name").cmp(meta(b, "name")))
}

fn target_unbound(pod: &Value) -> bool {
    str_of(pod.get("spec").unwrap_or(&Value::Null), "nodeName").is_empty()
}

fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Failed" | "Succeeded")
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn str_of<'v>(v: &'v Value, field: &str) -> &'v str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn update(ns: &str, object: Value) -> Action {
    Action::Update {
        kind: PODS,
        namespace: ns.to_string(),
        object,
    }
}

fn event(involved: &Value, event_type: &'static str, reason: &str, message: String) -> Action {
    Action::event(CONTROLLER_NAME, involved, event_type, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2025-01-01T12:00:00Z".parse().unwrap()
    }

    fn ds(spec: Value) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system", "uid": "ds-uid",
                "generation": 1, "resourceVersion": "1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "updateStrategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}});
        for (k, v) in spec.as_object().unwrap() {
            d["spec"][k] = v.clone();
        }
        d
    }

    fn node(name: &str, extra: Value) -> Value {
        let mut n = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}});
        if let Some(l) = extra.get("labels").and_then(Value::as_object) {
            for (k, v) in l {
                n["metadata"]["labels"][k] = v.clone();
            }
        }
        if let Some(t) = extra.get("taints") {
            n["spec"]["taints"] = t.clone();
        }
        n
    }

    fn taint(key: &str, effect: &str) -> Value {
        json!([{"key": key, "effect": effect}])
    }

    struct World {
        ds: Value,
        pods: Vec<Value>,
        nodes: Vec<Value>,
        n: u32,
    }

    fn summary(a: &Action) -> String {
        match a {
            Action::Create { object, .. } => format!("create {}", object["spec"]["nodeName"]),
            Action::Update { object, .. } => format!("update {}", meta(object, "name")),
            Action::UpdateStatus { .. } => "status".into(),
            Action::Delete { name, .. } => format!("delete {name}"),
            Action::Event {
                reason, message, ..
            } => format!("event {reason}: {message}"),
            other => format!("{other:?}"),
        }
    }

    impl World {
        fn new(ds: Value, nodes: Vec<Value>) -> World {
            World {
                ds,
                pods: vec![],
                nodes,
                n: 0,
            }
        }
        fn reconcile(&self) -> Vec<Action> {
            reconcile(&self.ds, &self.pods, &self.nodes, now())
        }
        /// Reconciles, applies, and returns the non-event actions.
        fn sync(&mut self) -> Vec<String> {
            let actions = self.reconcile();
            for a in &actions {
                match a {
                    Action::Create { object, .. } => {
                        self.n += 1;
                        let mut o = object.clone();
                        o["metadata"]["uid"] = json!(format!("uid-{}", self.n));
                        o["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
                        o["status"] = json!({"phase": "Pending"});
                        self.pods.push(o);
                    }
                    Action::Update { object, .. } => {
                        let name = meta(object, "name");
                        let i = self.pods.iter().position(|p| meta(p, "name") == name);
                        self.pods[i.unwrap()] = object.clone();
                    }
                    Action::UpdateStatus { object, .. } => self.ds = object.clone(),
                    Action::Delete { name, .. } => self.pods.retain(|p| meta(p, "name") != name),
                    _ => {}
                }
            }
            actions
                .iter()
                .map(summary)
                .filter(|s| !s.starts_with("event"))
                .collect()
        }
        fn ready(&mut self) {
            for p in &mut self.pods {
                p["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready",
                    "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
            }
        }
        fn converge(&mut self) {
            for _ in 0..50 {
                self.ready();
                if self.sync().is_empty() {
                    return;
                }
            }
            panic!("no convergence");
        }
        fn on(&self, node: &str) -> Vec<&Value> {
            self.pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] == node)
                .collect()
        }
        fn status(&self, f: &str) -> Value {
            self.ds["status"].get(f).cloned().unwrap_or(json!(0))
        }
    }

    #[test]
    fn eligibility() {
        let tolerate = json!([{"key": "dedicated", "operator": "Equal", "value": "infra",
            "effect": "NoSchedule"}]);
        let affinity = |op: &str, key: &str, values: Value| {
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": key, "operator": op, "values": values}]}]}}})
        };
        let fields = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}});
        let dedicated = json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]);
        // (template spec additions, node extras, expected (should run, may stay))
        let cases: Vec<(Value, Value, (bool, bool))> = vec![
            (json!({}), json!({}), (true, true)),
            (
                json!({"nodeSelector": {"role": "infra"}}),
                json!({}),
                (false, false),
            ),
            (
                json!({"nodeSelector": {"role": "infra"}}),
                json!({"labels": {"role": "infra"}}),
                (true, true),
            ),
            (json!({}), json!({"taints": dedicated}), (false, true)),
            (
                json!({"tolerations": tolerate}),
                json!({"taints": dedicated}),
                (true, true),
            ),
            (
                json!({}),
                json!({"taints": taint("gpu", "NoExecute")}),
                (false, false),
            ),
            (
                json!({}),
                json!({"taints": taint("gpu", "PreferNoSchedule")}),
                (true, true),
            ),
            (
                json!({}),
                json!({"taints": taint("node.kubernetes.io/not-ready", "NoExecute")}),
                (true, true),
            ),
            (
                json!({}),
                json!({"taints": taint("node.kubernetes.io/unreachable", "NoExecute")}),
                (true, true),
            ),
            (
                json!({}),
                json!({"taints": taint("node.kubernetes.io/unschedulable", "NoSchedule")}),
                (true, true),
            ),
            (
                json!({}),
                json!({"taints": taint("node.kubernetes.io/disk-pressure", "NoSchedule")}),
                (true, true),
            ),
            (
                json!({}),
                json!({"taints": taint("node.kubernetes.io/network-unavailable", "NoSchedule")}),
                (false, true),
            ),
            (
                json!({"hostNetwork": true}),
                json!({"taints": taint("node.kubernetes.io/network-unavailable", "NoSchedule")}),
                (true, true),
            ),
            (
                json!({"affinity": affinity("In", "zone", json!(["a", "b"]))}),
                json!({"labels": {"zone": "b"}}),
                (true, true),
            ),
            (
                json!({"affinity": affinity("In", "zone", json!(["a"]))}),
                json!({"labels": {"zone": "b"}}),
                (false, false),
            ),
            (
                json!({"affinity": affinity("NotIn", "zone", json!(["a"]))}),
                json!({}),
                (true, true),
            ),
            (
                json!({"affinity": affinity("Exists", "zone", json!([]))}),
                json!({}),
                (false, false),
            ),
            (
                json!({"affinity": affinity("DoesNotExist", "zone", json!([]))}),
                json!({}),
                (true, true),
            ),
            (
                json!({"affinity": affinity("Gt", "cpus", json!(["4"]))}),
                json!({"labels": {"cpus": "8"}}),
                (true, true),
            ),
            (
                json!({"affinity": affinity("Lt", "cpus", json!(["4"]))}),
                json!({"labels": {"cpus": "8"}}),
                (false, false),
            ),
            (json!({"affinity": fields}), json!({}), (true, true)),
            (json!({"nodeName": "n2"}), json!({}), (false, false)),
        ];
        for (i, (tpl, extra, want)) in cases.into_iter().enumerate() {
            let mut d = ds(json!({}));
            for (k, v) in tpl.as_object().unwrap() {
                d["spec"]["template"]["spec"][k] = v.clone();
            }
            let spec = daemon_pod_spec(&d);
            assert_eq!(
                node_should_run(&d, &spec, &node("n1", extra)),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn one_pod_per_eligible_node() {
        let mut d = ds(json!({}));
        d["spec"]["template"]["spec"]["nodeSelector"] = json!({"role": "worker"});
        let worker = json!({"labels": {"role": "worker"}});
        let tainted = json!({"labels": {"role": "worker"}, "taints": taint("gpu", "NoSchedule")});
        let cordoned = json!({"labels": {"role": "worker"},
            "taints": taint("node.kubernetes.io/unschedulable", "NoSchedule")});
        let mut nodes = vec![
            node("n1", worker.clone()),
            node("n2", json!({})),
            node("n3", tainted),
            node("n4", cordoned),
        ];
        nodes[3]["spec"]["unschedulable"] = json!(true);
        let mut w = World::new(d, nodes);
        let actions = w.reconcile();
        let texts: Vec<String> = actions.iter().map(summary).collect();
        assert_eq!(texts[0], "create \"n1\"");
        assert!(texts[1].starts_with("event SuccessfulCreate: Created pod: agent-"));
        assert_eq!(texts[2], "create \"n4\"");
        assert_eq!(texts.len(), 5, "{texts:?}");
        let Action::Create { object: pod, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(meta(pod, "generateName"), "agent-");
        assert_eq!(meta(pod, "name").len(), "agent-".len() + 5);
        assert_eq!(
            texts[1],
            format!("event SuccessfulCreate: Created pod: {}", meta(pod, "name"))
        );
        let hash = revision_hash(&revision_data(&w.ds), 0);
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "agent", TEMPLATE_GENERATION_LABEL: "1", REVISION_LABEL: hash})
        );
        assert_eq!(
            pod["spec"]["affinity"],
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}})
        );
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 6);
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "ds-uid");
        assert_eq!(target_node(pod), Some("n1"));
        w.sync();
        assert_eq!(w.sync(), vec!["status"]);
        assert!(w.reconcile().is_empty(), "idempotent");
        assert_eq!(w.status("desiredNumberScheduled"), json!(2));
        assert_eq!(w.status("currentNumberScheduled"), json!(2));
        // A node gaining the label gets a pod; one losing it loses its pod.
        w.nodes[1]["metadata"]["labels"]["role"] = json!("worker");
        w.nodes[0]["metadata"]["labels"]["role"] = json!("db");
        let n1 = meta(w.on("n1")[0], "name").to_string();
        assert_eq!(
            w.sync()[..2],
            ["create \"n2\"".to_string(), format!("delete {n1}")]
        );
        w.converge();
        assert_eq!(
            (w.on("n1").len(), w.on("n2").len(), w.on("n4").len()),
            (0, 1, 1)
        );
        assert!(w.reconcile().is_empty());
    }

    #[test]
    fn cleans_up_misplaced_extra_and_failed_pods() {
        let mut w = World::new(
            ds(json!({})),
            vec![node("n1", json!({})), node("n2", json!({}))],
        );
        w.converge();
        let pod = |name: &str, node: &str, created: &str, phase: &str| {
            let mut p = w.on("n1")[0].clone();
            p["metadata"]["name"] = json!(name);
            p["metadata"]["uid"] = json!(name);
            p["metadata"]["creationTimestamp"] = json!(created);
            p["spec"]["nodeName"] = json!(node);
            p["status"]["phase"] = json!(phase);
            p
        };
        let extra_old = pod("old", "n1", "2024-01-01T00:00:00Z", "Running");
        let gone = pod("gone", "n9", "2024-01-01T00:00:00Z", "Running");
        let failed = pod("failed", "n2", "2024-01-01T00:00:00Z", "Failed");
        let mut going = pod("going", "n2", "2024-01-01T00:00:00Z", "Running");
        going["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
        w.pods.retain(|p| p["spec"]["nodeName"] != "n2");
        w.pods.extend([extra_old, gone, failed, going]);
        let n1_new = meta(w.on("n1")[0], "name").to_string();
        let texts: Vec<String> = w.reconcile().iter().map(summary).collect();
        assert_eq!(
            texts[..5],
            [
                "event FailedDaemonPod: Found failed daemon pod kube-system/failed on node n2, will try to kill it".to_string(),
                format!("delete {n1_new}"),
                format!("event SuccessfulDelete: Deleted pod: {n1_new}"),
                "delete failed".into(),
                "event SuccessfulDelete: Deleted pod: failed".into(),
            ]
        );
        assert_eq!(texts[5], "delete gone");
        w.sync();
        w.pods.retain(|p| meta(p, "name") != "going");
        w.converge();
        assert_eq!(w.pods.len(), 2);
        assert!(w.reconcile().is_empty());
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        // (maxUnavailable, unavailable old pods, pods deleted in the first sync)
        let cases = [
            (json!(1), 0, 1),
            (json!(2), 0, 2),
            (json!("50%"), 0, 2),
            (json!("30%"), 0, 2),
            (json!(0), 0, 1),
            (json!(1), 1, 1),
            (json!(2), 2, 2),
            (json!(2), 1, 2),
        ];
        for (max, broken, want) in cases {
            let nodes = (1..=4).map(|i| node(&format!("n{i}"), json!({}))).collect();
            let mut w = World::new(ds(json!({})), nodes);
            w.converge();
            w.ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = max.clone();
            w.ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
            w.ds["metadata"]["generation"] = json!(2);
            for p in w.pods.iter_mut().take(broken) {
                p["status"]["conditions"][0]["status"] = json!("False");
            }
            let out = w.sync();
            let deleted = out.iter().filter(|a| a.starts_with("delete")).count();
            assert_eq!(
                deleted, want,
                "maxUnavailable {max}, {broken} broken: {out:?}"
            );
            // Replacements come first; no more deletions until they are available.
            assert_eq!(
                w.sync().iter().filter(|a| a.starts_with("create")).count(),
                want
            );
            assert!(w.sync().iter().all(|a| !a.starts_with("delete")));
            w.converge();
            assert_eq!(w.status("updatedNumberScheduled"), json!(4));
            assert!(
                w.pods
                    .iter()
                    .all(|p| p["spec"]["containers"][0]["image"] == "agent:2")
            );
            assert!(w.reconcile().is_empty());
        }
        // OnDelete leaves old pods alone.
        let mut w = World::new(
            ds(json!({"updateStrategy": {"type": "OnDelete"}})),
            vec![node("n1", json!({}))],
        );
        w.converge();
        w.ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
        w.ds["metadata"]["generation"] = json!(2);
        w.converge();
        assert_eq!(w.pods[0]["spec"]["containers"][0]["image"], "agent:1");
        assert_eq!(w.status("updatedNumberScheduled"), json!(0));
        w.pods.clear();
        w.converge();
        assert_eq!(w.pods[0]["spec"]["containers"][0]["image"], "agent:2");
    }

    #[test]
    fn status_counts() {
        let nodes = vec![
            node("n1", json!({})),
            node("n2", json!({})),
            node("n3", json!({})),
            node("n4", json!({"taints": taint("gpu", "NoSchedule")})),
        ];
        let mut w = World::new(ds(json!({"minReadySeconds": 60})), nodes);
        w.converge();
        // n1 ready for long, n2 ready recently, n3 without a pod, n4 misscheduled.
        w.pods[1]["status"]["conditions"][0]["lastTransitionTime"] = json!("2025-01-01T11:59:30Z");
        w.pods.retain(|p| p["spec"]["nodeName"] != "n3");
        let mut mis = w.pods[0].clone();
        mis["metadata"]["name"] = json!("mis");
        mis["spec"]["nodeName"] = json!("n4");
        w.pods.push(mis);
        w.nodes[2]["spec"]["taints"] = taint("x", "NoExecute");
        let status = daemon_set_status(
            &w.ds,
            &BTreeMap::from([
                ("n1", vec![&w.pods[0]]),
                ("n2", vec![&w.pods[1]]),
                ("n4", vec![&w.pods[2]]),
            ]),
            &[
                ("n1", true, true),
                ("n2", true, true),
                ("n3", true, true),
                ("n4", false, true),
            ],
            &revision_hash(&revision_data(&w.ds), 0),
            Some(1),
            now(),
        );
        assert_eq!(
            status,
            json!({"currentNumberScheduled": 2, "numberMisscheduled": 1,
                "desiredNumberScheduled": 3, "numberReady": 2, "observedGeneration": 1,
                "updatedNumberScheduled": 2, "numberAvailable": 1, "numberUnavailable": 2})
        );
        assert_eq!(
            requeue_after(&w.ds, &w.pods, now()),
            Some(Duration::from_millis(30_001))
        );
    }

    #[test]
    fn claiming_and_deletion() {
        let mut w = World::new(ds(json!({})), vec![node("n1", json!({}))]);
        w.pods.push(
            json!({"metadata": {"name": "orphan", "namespace": "kube-system",
            "uid": "o", "labels": {"app": "agent"}, "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
        );
        // Adopted, then replaced: it carries no revision hash, so it is out of date.
        assert_eq!(w.sync(), vec!["update orphan", "delete orphan", "status"]);
        w.converge();
        assert_eq!(w.pods.len(), 1);
        let hash = revision_hash(&revision_data(&w.ds), 0);
        assert_eq!(w.pods[0]["metadata"]["labels"][REVISION_LABEL], hash);
        w.ds["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
        w.nodes.push(node("n2", json!({})));
        assert!(w.reconcile().is_empty());
    }
}
