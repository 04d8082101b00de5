//! The ReplicaSet controller's pure reconcile core: `(ReplicaSet, pods of its namespace, now)
//! → actions`, level-triggered and idempotent, following kube-controller-manager 1.33's
//! `replicaset-controller`:
//!
//! - **claiming**: among the *active* pods (not terminal, no `deletionTimestamp`), a pod whose
//!   controller reference is this ReplicaSet is kept when the selector still matches and
//!   released (the reference removed, an `Update`) when it does not; an orphan that matches is
//!   adopted (a controller reference added, an `Update`). A ReplicaSet being deleted neither
//!   adopts nor releases.
//! - **scaling**: too few pods → pods are created from the template (`generateName
//!   <rs>-`, template labels/annotations/finalizers, the controller reference, the namespace),
//!   at most 500 per sync like upstream's burst limit. Upstream creates them in slow-start
//!   batches (1, 2, 4, …) that stop at the first failure; here the creations are returned as
//!   one ordered list and the runtime executes actions in order and stops at the first
//!   failure, which is the same guarantee with batches of one. Too many pods → the surplus is
//!   deleted in upstream's preference order (see [`deletion_order`]).
//! - **status**: `replicas`, `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas`
//!   (ready for `minReadySeconds`), `observedGeneration`, computed from the claimed pods of the
//!   snapshot (before this sync's creations and deletions, like upstream) and written with
//!   `UpdateStatus` only when something changed.
//! - **events**: `SuccessfulCreate` "Created pod: <name>" and `SuccessfulDelete`
//!   "Deleted pod: <name>" from `replicaset-controller`, about the ReplicaSet.
//!
//! Deviations, all forced by the pure-core shape:
//! - a pod to create carries a deterministic `metadata.name` (`<generateName><5 characters>`
//!   drawn from upstream's alphabet, derived from the ReplicaSet uid, `now` and the index)
//!   besides `generateName`, so the `SuccessfulCreate` event can name it; a clash is an
//!   `AlreadyExists` and the next reconcile picks other names;
//! - upstream's expectations (which stop a second sync from acting before the informer saw
//!   the first sync's writes) are not needed: the runtime reconciles from the store after
//!   its writes were applied;
//! - the `ReplicaFailure` condition records a failed create or delete; a pure core never sees
//!   one, so it is only ever removed (when upstream removes it: a sync without errors);
//! - the "pods of the same owner on the same node" rank counts this ReplicaSet's own pods
//!   (upstream also counts pods of sibling ReplicaSets of the same Deployment, which this
//!   function is not given).
//!
//! The module also holds the small JSON helpers (labels, selectors, owner references,
//! conditions, times) the Deployment core shares.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, PODS, REPLICA_SETS};

/// The reporting component of the events.
pub const CONTROLLER_NAME: &str = "replicaset-controller";
/// Upstream's `burstReplicas`: the most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;
/// Pods with a lower cost are deleted first (upstream `PodDeletionCost`, on by default).
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The characters of generated name suffixes (upstream's `rand.String` alphabet).
pub(crate) const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// The longest `generateName` prefix kept (63 - 5 random characters).
const MAX_GENERATED_PREFIX: usize = 58;

/// What a sync reads of every pod, taken from the pod once. The runtime keeps it per stored
/// version, so a sync over a thousand unchanged pods does not walk their JSON again.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    namespace: String,
    name: String,
    labels: Option<Map<String, Value>>,
    /// The controller reference's uid: `None` without one, `Some(None)` if it has no uid.
    controller: Option<Option<String>>,
    deleting: bool,
    active: bool,
    ready: bool,
    ready_since: Option<Timestamp>,
}

impl PodFacts {
    /// The facts of `pod`.
    pub fn of(pod: &Value) -> PodFacts {
        PodFacts {
            namespace: meta(pod, "namespace").to_string(),
            name: meta(pod, "name").to_string(),
            labels: labels(pod).cloned(),
            controller: controller_ref(pod)
                .map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string)),
            deleting: is_deleting(pod),
            active: is_pod_active(pod),
            ready: is_pod_ready(pod),
            ready_since: pod_ready_time(pod),
        }
    }
}

/// A pod as a sync sees it: the object (for the pods it writes) and its facts.
#[derive(Debug, Clone, Copy)]
pub struct ObservedPod<'a> {
    /// The pod.
    pub object: &'a Value,
    /// [`PodFacts::of`] the pod.
    pub facts: &'a PodFacts,
}

/// Reconciles one ReplicaSet against the pods of its namespace.
///
/// `pods` are values or shared values (`Arc<Value>`, as the store's parse cache hands out).
pub fn reconcile<P: Borrow<Value>>(rs: &Value, pods: &[P], now: Timestamp) -> Vec<Action> {
    let facts: Vec<PodFacts> = pods.iter().map(|p| PodFacts::of(p.borrow())).collect();
    reconcile_observed(rs, &observe(pods, &facts), now)
}

/// Each of `pods` with its facts (`facts[i]` is [`PodFacts::of`] `pods[i]`).
pub fn observe<'a, P: Borrow<Value>, F: Borrow<PodFacts>>(
    pods: &'a [P],
    facts: &'a [F],
) -> Vec<ObservedPod<'a>> {
    pods.iter()
        .zip(facts)
        .map(|(p, f)| ObservedPod {
            object: p.borrow(),
            facts: f.borrow(),
        })
        .collect()
}

/// [`reconcile`] with the pods' facts already taken.
pub fn reconcile_observed(rs: &Value, pods: &[ObservedPod], now: Timestamp) -> Vec<Action> {
    let name = meta(rs, "name");
    let ns = meta(rs, "namespace");
    let uid = meta(rs, "uid");
    if name.is_empty() || uid.is_empty() {
        return Vec::new();
    }
    let deleting = is_deleting(rs);
    let selector = rs.pointer("/spec/selector").unwrap_or(&Value::Null);
    let desired = usize::try_from(int_at(rs, "/spec/replicas").unwrap_or(1).max(0)).unwrap_or(0);
    let owner = controller_ref_to(rs, "apps/v1", "ReplicaSet");

    let mut actions = Vec::new();
    let mut claimed: Vec<&ObservedPod> = Vec::new();
    for pod in pods.iter().filter(|p| p.facts.active) {
        let f = pod.facts;
        let matches = selector_matches(selector, f.labels.as_ref());
        let controller = f.controller.as_ref().map(Option::as_deref);
        match claim_by(rs, deleting, &f.namespace, controller, f.deleting, matches) {
            Claim::Mine => claimed.push(pod),
            Claim::Adopt => {
                actions.push(Action::Update {
                    kind: PODS,
                    namespace: ns.to_string(),
                    object: with_owner(pod.object, &owner),
                });
                claimed.push(pod);
            }
            Claim::Release => actions.push(Action::Update {
                kind: PODS,
                namespace: ns.to_string(),
                object: without_owner(pod.object, uid),
            }),
            Claim::Ignore => {}
        }
    }

    if !deleting {
        let involved = involved(rs, "apps/v1", "ReplicaSet");
        if claimed.len() < desired {
            let n = (desired - claimed.len()).min(BURST_REPLICAS);
            let taken: HashSet<&str> = pods.iter().map(|p| p.facts.name.as_str()).collect();
            for pod in new_pods(rs, &owner, n, &taken, now) {
                let pod_name = meta(&pod, "name").to_string();
                actions.push(Action::Create {
                    kind: PODS,
                    namespace: ns.to_string(),
                    object: pod,
                });
                actions.push(event(
                    &involved,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created pod: {pod_name}"),
                ));
            }
        } else if claimed.len() > desired {
            let n = (claimed.len() - desired).min(BURST_REPLICAS);
            let objects: Vec<&Value> = claimed.iter().map(|p| p.object).collect();
            for pod in deletion_order(&objects, now).into_iter().take(n) {
                actions.push(Action::Delete {
                    kind: PODS,
                    namespace: ns.to_string(),
                    name: meta(pod, "name").to_string(),
                    uid: Some(meta(pod, "uid").to_string()).filter(|u| !u.is_empty()),
                    propagation: None,
                });
                actions.push(event(
                    &involved,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", meta(pod, "name")),
                ));
            }
        }
    }

    let claimed: Vec<&PodFacts> = claimed.iter().map(|p| p.facts).collect();
    let status = replica_set_status(rs, &claimed, now);
    actions.extend(status_update(rs, REPLICA_SETS, status));
    actions
}

/// An `UpdateStatus` of `obj` to `status`, unless that is what it has.
pub(crate) fn status_update(
    obj: &Value,
    kind: crate::controllers::action::Kind,
    status: Value,
) -> Option<Action> {
    if status_eq(obj.get("status").unwrap_or(&Value::Null), &status) {
        return None;
    }
    let mut object = obj.clone();
    if let Some(o) = object.as_object_mut() {
        o.insert("status".into(), status);
    }
    Some(Action::UpdateStatus {
        kind,
        namespace: meta(obj, "namespace").to_string(),
        object,
    })
}

/// When to reconcile `rs` again without an event: the moment its next ready pod has been
/// ready for `minReadySeconds` (and so becomes available), if any is waiting for that.
pub fn requeue_after<P: Borrow<Value>>(rs: &Value, pods: &[P], now: Timestamp) -> Option<Duration> {
    let min_ready = int_at(rs, "/spec/minReadySeconds").unwrap_or(0);
    if min_ready <= 0 {
        return None;
    }
    let uid = meta(rs, "uid");
    pods.iter()
        .map(P::borrow)
        .filter(|p| is_pod_active(p) && controller_uid(p) == Some(uid))
        .filter(|p| is_pod_ready(p) && !is_pod_available(p, min_ready, now))
        .filter_map(|p| {
            let since = pod_ready_time(p)?;
            let at = since
                .checked_add(jiff::SignedDuration::from_secs(min_ready))
                .ok()?;
            let wait = at.duration_since(now);
            // Available once strictly after the deadline.
            Some(Duration::from_millis(
                u64::try_from(wait.as_millis().max(0)).unwrap_or(0) + 1,
            ))
        })
        .min()
}

/// The status upstream computes from the claimed pods.
fn replica_set_status(rs: &Value, claimed: &[&PodFacts], now: Timestamp) -> Value {
    let min_ready = int_at(rs, "/spec/minReadySeconds").unwrap_or(0);
    let template_labels = rs
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    let fully_labeled = claimed
        .iter()
        .filter(|p| {
            let pl = p.labels.as_ref();
            template_labels.is_none_or(|tl| {
                tl.iter()
                    .all(|(k, v)| pl.and_then(|l| l.get(k)).is_some_and(|pv| pv == v))
            })
        })
        .count();
    let ready = claimed.iter().filter(|p| p.ready).count();
    let available = claimed
        .iter()
        .filter(|p| available(p.ready, || p.ready_since, min_ready, now))
        .count();
    let mut status = rs
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    status.insert("replicas".into(), json!(claimed.len()));
    status.insert("fullyLabeledReplicas".into(), json!(fully_labeled));
    status.insert("readyReplicas".into(), json!(ready));
    status.insert("availableReplicas".into(), json!(available));
    status.insert(
        "observedGeneration".into(),
        json!(int_at(rs, "/metadata/generation").unwrap_or(0)),
    );
    // A sync without a failed create/delete clears ReplicaFailure.
    if let Some(Value::Array(conds)) = status.get_mut("conditions") {
        conds.retain(|c| c.get("type").and_then(Value::as_str) != Some("ReplicaFailure"));
    }
    let mut status = Value::Object(status);
    omit_zero_fields(&mut status, &["replicas"]);
    status
}

/// Pods to create: `n` copies of the template owned by `rs`.
fn new_pods(
    rs: &Value,
    owner: &Value,
    n: usize,
    taken: &HashSet<&str>,
    now: Timestamp,
) -> Vec<Value> {
    let rs_name = meta(rs, "name");
    let template = rs.pointer("/spec/template").unwrap_or(&Value::Null);
    let prefix = generate_name_prefix(rs_name);
    let mut used: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let seed = format!("{}/{}", meta(rs, "uid"), now.as_nanosecond());
    for i in 0..n {
        let mut attempt = 0u32;
        let name = loop {
            let candidate = format!("{prefix}{}", name_suffix(&format!("{seed}/{i}/{attempt}")));
            if !taken.contains(candidate.as_str()) && !used.contains(&candidate) {
                break candidate;
            }
            attempt += 1;
        };
        used.insert(name.clone());
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        metadata.insert("generateName".into(), json!(prefix));
        metadata.insert("namespace".into(), json!(meta(rs, "namespace")));
        for field in ["labels", "annotations", "finalizers"] {
            if let Some(v) = template.pointer(&format!("/metadata/{field}"))
                && !is_empty_value(v)
            {
                metadata.insert(field.into(), v.clone());
            }
        }
        metadata.insert("ownerReferences".into(), json!([owner]));
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
        }));
    }
    out
}

/// `<name>-` when that is a valid name prefix, else `<name>`; cut to leave room for the
/// random suffix, as the API server does.
pub(crate) fn generate_name_prefix(name: &str) -> String {
    let dashed = format!("{name}-");
    let base = if dashed.len() <= 253 {
        dashed
    } else {
        name.to_string()
    };
    base.chars().take(MAX_GENERATED_PREFIX).collect()
}

/// Five characters of [`NAME_ALPHABET`] derived from `seed`.
pub(crate) fn name_suffix(seed: &str) -> String {
    let mut h = fnv1a32(seed.as_bytes());
    let base = NAME_ALPHABET.len() as u32;
    (0..5)
        .map(|_| {
            let c = NAME_ALPHABET[(h % base) as usize] as char;
            h /= base;
            c
        })
        .collect()
}

/// The claimed pods in the order upstream deletes them (`ActivePodsWithRanks`, with
/// `LogarithmicScaleDown` and `PodDeletionCost` on, their 1.33 defaults):
/// 1. unassigned before assigned;
/// 2. Pending before Unknown before Running;
/// 3. not ready before ready;
/// 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
/// 5. more pods of the ReplicaSet on the same node first;
/// 6. both ready: ready for less time first (times in the same power-of-two bucket of age
///    tie, then the lower uid first);
/// 7. more container restarts first;
/// 8. newer creation first (bucketed the same way).
pub fn deletion_order<'p>(pods: &[&'p Value], now: Timestamp) -> Vec<&'p Value> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in pods {
        *per_node.entry(node_name(p)).or_insert(0) += 1;
    }
    // One key per pod: a total order (a pairwise comparator with bucketed ties is not
    // transitive, which sorting may not be given).
    let mut keyed: Vec<(DeletionKey<'p>, &'p Value)> = pods
        .iter()
        .map(|p| {
            let same_node = per_node.get(node_name(p)).copied().unwrap_or(0);
            (deletion_key(p, same_node, now), *p)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// (assigned, phase rank, ready, deletion cost, fewer pods on its node, ready-time bucket,
/// fewer restarts, creation bucket, uid): smallest first.
type DeletionKey<'p> = (
    bool,
    u8,
    bool,
    i32,
    std::cmp::Reverse<usize>,
    i64,
    std::cmp::Reverse<i64>,
    i64,
    &'p str,
);

fn deletion_key<'p>(p: &'p Value, same_node: usize, now: Timestamp) -> DeletionKey<'p> {
    let phase = match p.pointer("/status/phase").and_then(Value::as_str) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let ready = is_pod_ready(p);
    let cost = meta_map(p, "annotations")
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0);
    // Only ready pods are told apart by how long they have been ready.
    let ready_for = if ready {
        log_rank(pod_ready_time(p), now)
    } else {
        0
    };
    (
        !node_name(p).is_empty(),
        phase,
        ready,
        cost,
        std::cmp::Reverse(same_node),
        ready_for,
        std::cmp::Reverse(max_restarts(p)),
        log_rank(creation_time(p), now),
        meta(p, "uid"),
    )
}

/// ⌊log2(age in nanoseconds)⌋, -1 for no age, 63 for an unknown time (Go's zero time).
fn log_rank(t: Option<Timestamp>, now: Timestamp) -> i64 {
    let Some(t) = t else { return 63 };
    let age = now.as_nanosecond() - t.as_nanosecond();
    if age <= 0 {
        return -1;
    }
    // ⌊log2(x)⌋ of a positive integer is the index of its highest set bit.
    127 - i64::from(age.leading_zeros())
}

fn max_restarts(pod: &Value) -> i64 {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn event(involved: &Value, event_type: &'static str, reason: &str, message: String) -> Action {
    Action::event(CONTROLLER_NAME, involved, event_type, reason, message)
}

// ---------------------------------------------------------------------------------------
// Helpers shared with the Deployment core.
// ---------------------------------------------------------------------------------------

/// A string field of `metadata` ("" when absent).
pub(crate) fn meta<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A map field of `metadata` (`labels`, `annotations`).
pub(crate) fn meta_map<'v>(obj: &'v Value, field: &str) -> Option<&'v Map<String, Value>> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
}

/// `metadata.labels`.
pub(crate) fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    meta_map(obj, "labels")
}

/// An integer at a JSON pointer.
pub(crate) fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// A `metadata.annotations` (or `labels`) map, created when missing.
pub(crate) fn meta_map_mut<'v>(
    obj: &'v mut Value,
    field: &str,
) -> Option<&'v mut Map<String, Value>> {
    let meta = obj
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let map = meta
        .as_object_mut()?
        .entry(field)
        .or_insert_with(|| json!({}));
    if !map.is_object() {
        *map = json!({});
    }
    map.as_object_mut()
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    !meta(obj, "deletionTimestamp").is_empty()
}

/// Parses an RFC 3339 time.
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Formats a time as the API does (RFC 3339, whole seconds, UTC).
pub(crate) fn format_time(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// `metadata.creationTimestamp`.
pub(crate) fn creation_time(obj: &Value) -> Option<Timestamp> {
    parse_time(meta(obj, "creationTimestamp"))
}

/// A condition of `status.conditions` by type.
pub(crate) fn condition<'v>(obj: &'v Value, kind: &str) -> Option<&'v Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// A pod is active while it is neither terminal nor being deleted.
pub(crate) fn is_pod_active(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    !matches!(phase, Some("Succeeded" | "Failed")) && !is_deleting(pod)
}

/// Condition `Ready` is `True`.
pub(crate) fn is_pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// When a ready pod became ready.
fn pod_ready_time(pod: &Value) -> Option<Timestamp> {
    if !is_pod_ready(pod) {
        return None;
    }
    condition(pod, "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)
}

/// Ready, and (with `min_ready` seconds) ready since strictly more than that long.
pub(crate) fn is_pod_available(pod: &Value, min_ready: i64, now: Timestamp) -> bool {
    available(is_pod_ready(pod), || pod_ready_time(pod), min_ready, now)
}

/// Whether a pod that is `ready` (since `since`) is available with `min_ready` seconds.
fn available(
    ready: bool,
    since: impl FnOnce() -> Option<Timestamp>,
    min_ready: i64,
    now: Timestamp,
) -> bool {
    if !ready {
        return false;
    }
    if min_ready <= 0 {
        return true;
    }
    since()
        .and_then(|t| {
            t.checked_add(jiff::SignedDuration::from_secs(min_ready))
                .ok()
        })
        .is_some_and(|t| t < now)
}

/// The owner reference with `controller: true`, if any.
pub(crate) fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// The uid of the controller reference.
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    controller_ref(obj)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

/// A controller reference to `owner`.
pub(crate) fn controller_ref_to(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta(owner, "name"),
        "uid": meta(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `owner` as an event's involved object (with its apiVersion and kind set).
pub(crate) fn involved(owner: &Value, api_version: &str, kind: &str) -> Value {
    let mut v = super::action::involved_object(owner);
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    v
}

/// What a controller does with a candidate object (upstream `ClaimObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Already controlled by the owner and selected.
    Mine,
    /// An orphan the owner selects: add a controller reference.
    Adopt,
    /// Controlled by the owner but no longer selected: drop the reference.
    Release,
    /// Someone else's, or not for the owner.
    Ignore,
}

/// Decides what `owner` does with `obj`, which its selector `matches` or not.
pub(crate) fn claim(owner: &Value, owner_deleting: bool, obj: &Value, matches: bool) -> Claim {
    let controller = controller_ref(obj).map(|r| r.get("uid").and_then(Value::as_str));
    claim_by(
        owner,
        owner_deleting,
        meta(obj, "namespace"),
        controller,
        is_deleting(obj),
        matches,
    )
}

/// [`claim`] from what it reads of the object: its namespace, its controller reference's uid
/// (`None` without one), whether it is being deleted.
fn claim_by(
    owner: &Value,
    owner_deleting: bool,
    namespace: &str,
    controller: Option<Option<&str>>,
    deleting: bool,
    matches: bool,
) -> Claim {
    let owner_ns = meta(owner, "namespace");
    if !owner_ns.is_empty() && namespace != owner_ns {
        return Claim::Ignore;
    }
    if let Some(uid) = controller {
        if uid != Some(meta(owner, "uid")) {
            return Claim::Ignore;
        }
        if matches {
            return Claim::Mine;
        }
        if owner_deleting {
            return Claim::Ignore;
        }
        return Claim::Release;
    }
    if owner_deleting || !matches || deleting {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// `obj` with the controller reference `owner` appended.
pub(crate) fn with_owner(obj: &Value, owner: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(meta) = v
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        let refs = meta.entry("ownerReferences").or_insert_with(|| json!([]));
        if !refs.is_array() {
            *refs = json!([]);
        }
        if let Some(a) = refs.as_array_mut() {
            a.push(owner.clone());
        }
    }
    v
}

/// `obj` without the owner reference to `owner_uid`.
pub(crate) fn without_owner(obj: &Value, owner_uid: &str) -> Value {
    let mut v = obj.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        let empty = match meta
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            Some(refs) => {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                refs.is_empty()
            }
            None => false,
        };
        if empty {
            meta.remove("ownerReferences");
        }
    }
    v
}

/// Whether a `metav1.LabelSelector` selects `labels`. A missing or malformed selector
/// selects nothing; an empty one selects everything (upstream `LabelSelectorAsSelector`).
pub(crate) fn selector_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(ml) = sel.get("matchLabels").filter(|v| !v.is_null()) {
        let Some(ml) = ml.as_object() else {
            return false;
        };
        for (k, v) in ml {
            if get(k) != v.as_str() || v.as_str().is_none() {
                return false;
            }
        }
    }
    if let Some(me) = sel.get("matchExpressions").filter(|v| !v.is_null()) {
        let Some(me) = me.as_array() else {
            return false;
        };
        for req in me {
            let key = req.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = req
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let have = get(key);
            let ok = match req.get("operator").and_then(Value::as_str) {
                Some("In") => have.is_some_and(|h| values.contains(&h)),
                Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
                Some("Exists") => have.is_some(),
                Some("DoesNotExist") => have.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// Whether a selector has no requirements at all (selects everything).
pub(crate) fn selector_is_empty(selector: &Value) -> bool {
    selector.as_object().is_some_and(|s| {
        s.get("matchLabels").is_none_or(is_empty_value)
            && s.get("matchExpressions").is_none_or(is_empty_value)
    })
}

/// `null`, `{}`, `[]`, `""`, `false` or `0`: what a Go struct cannot tell from absent.
pub(crate) fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Equality as upstream's `equality.Semantic.DeepEqual` on typed objects sees it: a field
/// holding its zero value (or an empty list or map) equals an absent one.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.iter().all(|(k, v)| {
                y.get(k)
                    .map_or_else(|| is_empty_value(v), |w| semantic_eq(v, w))
            }) && y
                .iter()
                .all(|(k, w)| x.contains_key(k) || is_empty_value(w))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| semantic_eq(v, w))
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ if is_empty_value(a) && is_empty_value(b) => true,
        _ => a == b,
    }
}

/// Removes integer fields equal to zero (Go's `omitempty`) except `keep`, and empty
/// `conditions`.
pub(crate) fn omit_zero_fields(status: &mut Value, keep: &[&str]) {
    if let Some(o) = status.as_object_mut() {
        o.retain(|k, v| {
            keep.contains(&k.as_str())
                || !(v.as_i64() == Some(0)
                    || v.is_null()
                    || v.as_array().is_some_and(Vec::is_empty))
        });
    }
}

/// Whether two statuses are the same once zero-valued fields are ignored.
pub(crate) fn status_eq(old: &Value, new: &Value) -> bool {
    semantic_eq(old, new)
}

/// 32-bit FNV-1a.
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn rs(replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid",
                "resourceVersion": "10", "generation": 2,
                "creationTimestamp": "2025-01-01T00:00:00Z", "labels": {"app": "web"}},
            "spec": {"replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn pod(
        name: &str,
        created: &str,
        node: &str,
        phase: &str,
        ready_since: Option<&str>,
        restarts: i64,
        owned: bool,
    ) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "resourceVersion": "5", "creationTimestamp": created,
                "labels": {"app": "web", "tier": "fe"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": phase,
                "containerStatuses": [{"name": "c", "restartCount": restarts}]},
        });
        if let Some(since) = ready_since {
            p["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}]);
        }
        if owned {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": true,
                "blockOwnerDeletion": true}]);
        }
        p
    }

    fn now() -> Timestamp {
        t("2025-01-01T12:00:00Z")
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Create { object, .. } => format!("create {}", meta(object, "name")),
                Action::Update { object, .. } => format!("update {}", meta(object, "name")),
                Action::UpdateStatus { object, .. } => format!("status {}", meta(object, "name")),
                Action::Delete { name, .. } => format!("delete {name}"),
                Action::Bind { .. } | Action::DeleteNow { .. } => panic!("unexpected {a:?}"),
                Action::Event {
                    reason, message, ..
                } => format!("event {reason}: {message}"),
            })
            .collect()
    }

    #[test]
    fn creates_missing_pods_from_the_template() {
        let actions = reconcile::<Value>(&rs(3), &[], now());
        let creates: Vec<&Value> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Create {
                    object,
                    kind,
                    namespace,
                } => {
                    assert_eq!(*kind, PODS);
                    assert_eq!(namespace, "default");
                    Some(object)
                }
                _ => None,
            })
            .collect();
        assert_eq!(creates.len(), 3);
        let names: HashSet<&str> = creates.iter().map(|p| meta(p, "name")).collect();
        assert_eq!(names.len(), 3);
        for p in &creates {
            assert_eq!(meta(p, "generateName"), "web-");
            assert!(meta(p, "name").starts_with("web-") && meta(p, "name").len() == 9);
            assert_eq!(p["metadata"]["labels"], json!({"app": "web", "tier": "fe"}));
            assert_eq!(
                p["metadata"]["ownerReferences"],
                json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                    "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}])
            );
            assert_eq!(p["spec"]["containers"][0]["image"], "nginx");
        }
        let events: Vec<String> = kinds(&actions)
            .into_iter()
            .filter(|k| k.starts_with("event"))
            .collect();
        assert_eq!(events.len(), 3);
        assert!(events[0].starts_with("event SuccessfulCreate: Created pod: web-"));
        // Status: observedGeneration catches up, zero counts omitted.
        let Some(Action::UpdateStatus { object, .. }) = actions.last() else {
            panic!("no status update: {actions:?}");
        };
        assert_eq!(
            object["status"],
            json!({"replicas": 0, "observedGeneration": 2})
        );
        // Deterministic for the same input.
        assert_eq!(reconcile::<Value>(&rs(3), &[], now()), actions);
    }

    #[test]
    fn status_counts_and_idempotency() {
        let mut r = rs(2);
        r["spec"]["minReadySeconds"] = json!(10);
        let pods = vec![
            pod(
                "a",
                "2025-01-01T00:00:00Z",
                "n1",
                "Running",
                Some("2025-01-01T11:00:00Z"),
                0,
                true,
            ),
            pod(
                "b",
                "2025-01-01T00:00:00Z",
                "n1",
                "Running",
                Some("2025-01-01T11:59:55Z"),
                0,
                true,
            ),
        ];
        let actions = reconcile(&r, &pods, now());
        assert_eq!(kinds(&actions), vec!["status web"]);
        let Some(Action::UpdateStatus { object, .. }) = actions.last() else {
            panic!()
        };
        assert_eq!(
            object["status"],
            json!({"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                "availableReplicas": 1, "observedGeneration": 2})
        );
        assert_eq!(
            requeue_after(&r, &pods, now()),
            Some(Duration::from_millis(5001))
        );
        r["status"] = object["status"].clone();
        assert!(reconcile(&r, &pods, now()).is_empty());
    }

    #[test]
    fn adopts_orphans_releases_strays_ignores_others() {
        let mut stray = pod(
            "stray",
            "2025-01-01T00:00:00Z",
            "",
            "Pending",
            None,
            0,
            true,
        );
        stray["metadata"]["labels"] = json!({"app": "other"});
        let mut foreign = pod(
            "foreign",
            "2025-01-01T00:00:00Z",
            "",
            "Pending",
            None,
            0,
            false,
        );
        foreign["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "x",
                "controller": true}]);
        let mut done = pod(
            "done",
            "2025-01-01T00:00:00Z",
            "",
            "Succeeded",
            None,
            0,
            false,
        );
        done["status"]["phase"] = json!("Succeeded");
        let orphan = pod(
            "orphan",
            "2025-01-01T00:00:00Z",
            "",
            "Pending",
            None,
            0,
            false,
        );
        let actions = reconcile(&rs(1), &[stray, foreign, done, orphan], now());
        assert_eq!(
            kinds(&actions),
            vec!["update stray", "update orphan", "status web"]
        );
        let Action::Update {
            object: released, ..
        } = &actions[0]
        else {
            panic!()
        };
        assert!(released["metadata"].get("ownerReferences").is_none());
        let Action::Update {
            object: adopted, ..
        } = &actions[1]
        else {
            panic!()
        };
        assert_eq!(adopted["metadata"]["ownerReferences"][0]["uid"], "rs-uid");
        assert_eq!(adopted["metadata"]["resourceVersion"], "5");
    }

    #[test]
    fn scale_down_picks_pods_in_upstream_order() {
        // One pod per rule, each preferred over the next.
        let old = "2024-01-01T00:00:00Z";
        let pods = vec![
            pod(
                "z-ready-long",
                old,
                "n1",
                "Running",
                Some("2024-06-01T00:00:00Z"),
                0,
                true,
            ),
            pod(
                "y-restarts",
                old,
                "n2",
                "Running",
                Some("2024-06-01T00:00:00Z"),
                5,
                true,
            ),
            pod(
                "x-ready-recent",
                old,
                "n3",
                "Running",
                Some("2025-01-01T11:59:00Z"),
                0,
                true,
            ),
            pod(
                "w-doubled",
                old,
                "n4",
                "Running",
                Some("2024-06-01T00:00:00Z"),
                0,
                true,
            ),
            pod(
                "v-doubled",
                old,
                "n4",
                "Running",
                Some("2024-06-01T00:00:00Z"),
                0,
                true,
            ),
            pod("u-not-ready", old, "n5", "Running", None, 0, true),
            pod("t-pending", old, "n6", "Pending", None, 0, true),
            pod("s-unassigned", old, "", "Pending", None, 0, true),
        ];
        let refs: Vec<&Value> = pods.iter().collect();
        let order: Vec<&str> = deletion_order(&refs, now())
            .into_iter()
            .map(|p| meta(p, "name"))
            .collect();
        assert_eq!(
            order,
            vec![
                "s-unassigned",
                "t-pending",
                "u-not-ready",
                // Tied on every rule: the uid decides, so the order is total.
                "v-doubled",
                "w-doubled",
                "x-ready-recent",
                "y-restarts",
                "z-ready-long"
            ]
        );
        // Deletion cost before age; newer first when nothing else differs.
        let mut cheap = pod("cheap", old, "n7", "Running", None, 0, true);
        cheap["metadata"]["annotations"] = json!({POD_DELETION_COST: "-10"});
        let newer = pod(
            "newer",
            "2025-01-01T11:00:00Z",
            "n8",
            "Running",
            None,
            0,
            true,
        );
        let older = pod("older", old, "n9", "Running", None, 0, true);
        let refs = vec![&older, &cheap, &newer];
        let order: Vec<&str> = deletion_order(&refs, now())
            .into_iter()
            .map(|p| meta(p, "name"))
            .collect();
        assert_eq!(order, vec!["cheap", "newer", "older"]);

        let actions = reconcile(&rs(6), &pods, now());
        assert_eq!(
            kinds(&actions)[..4],
            [
                "delete s-unassigned",
                "event SuccessfulDelete: Deleted pod: s-unassigned",
                "delete t-pending",
                "event SuccessfulDelete: Deleted pod: t-pending"
            ]
        );
        let Action::Delete { uid, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(uid.as_deref(), Some("uid-s-unassigned"));
    }

    #[test]
    fn terminating_pods_do_not_count_and_deleting_rs_does_not_manage() {
        let mut going = pod(
            "going",
            "2025-01-01T00:00:00Z",
            "n1",
            "Running",
            None,
            0,
            true,
        );
        going["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
        let actions = reconcile(&rs(1), std::slice::from_ref(&going), now());
        assert_eq!(
            kinds(&actions)
                .iter()
                .filter(|k| k.starts_with("create"))
                .count(),
            1
        );
        let mut r = rs(1);
        r["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
        let orphan = pod(
            "orphan",
            "2025-01-01T00:00:00Z",
            "",
            "Pending",
            None,
            0,
            false,
        );
        assert_eq!(
            kinds(&reconcile(&r, &[going, orphan], now())),
            vec!["status web"]
        );
    }

    #[test]
    fn selectors() {
        let l = json!({"app": "web", "env": "prod"});
        let l = l.as_object();
        let sel = |s: Value| selector_matches(&s, l);
        assert!(sel(json!({"matchLabels": {"app": "web"}})));
        assert!(!sel(json!({"matchLabels": {"app": "db"}})));
        assert!(sel(
            json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "qa"]}]})
        ));
        assert!(sel(
            json!({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]})
        ));
        assert!(!sel(
            json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]})
        ));
        assert!(sel(
            json!({"matchExpressions": [{"key": "env", "operator": "Exists"}]})
        ));
        assert!(sel(
            json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]})
        ));
        assert!(!sel(
            json!({"matchExpressions": [{"key": "x", "operator": "Bogus"}]})
        ));
        assert!(sel(json!({})));
        assert!(!sel(Value::Null));
        assert!(semantic_eq(
            &json!({"a": {}, "b": 1, "c": false}),
            &json!({"b": 1.0})
        ));
        assert!(!semantic_eq(&json!({"a": [1]}), &json!({})));
    }

    #[test]
    fn deletion_order_is_a_total_order_whatever_the_ready_times() {
        // Ready times one second apart share a power-of-two age bucket with their neighbours
        // but not with pods far away: the order must still be consistent (sorting panics
        // on a comparator that is not).
        let mut pods = Vec::new();
        for i in 0..40 {
            let ready = format!("2025-01-01T11:{:02}:{:02}Z", 59 - i / 60, 59 - i % 60);
            let mut p = pod(
                &format!("p{i}"),
                "2024-01-01T00:00:00Z",
                "n1",
                "Running",
                Some(&ready),
                i % 3,
                true,
            );
            p["metadata"]["uid"] = json!(format!("{:02}", (i * 7) % 40));
            pods.push(p);
        }
        let refs: Vec<&Value> = pods.iter().collect();
        let once = deletion_order(&refs, now());
        let mut reversed = refs.clone();
        reversed.reverse();
        let again = deletion_order(&reversed, now());
        let names = |v: Vec<&Value>| {
            v.into_iter()
                .map(|p| meta(p, "name").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(once), names(again));
    }
}
