//! The StatefulSet controller's pure reconcile core: `(StatefulSet, pods, claims and
//! ControllerRevisions of its namespace, now) → actions`, level-triggered and idempotent,
//! following kube-controller-manager 1.33's `statefulset-controller` (`stateful_set.go`,
//! `stateful_set_control.go`, `stateful_pod_control.go`, `stateful_set_utils.go`) with the
//! feature gates at their 1.33 defaults (`StatefulSetAutoDeletePVC`, `PodIndexLabel` and
//! `StatefulSetStartOrdinal` on, `MaxUnavailableStatefulSet` off):
//!
//! - **revisions**: the template is recorded as a ControllerRevision `<set>-<hash>` (data
//!   `{"spec":{"template":{…,"$patch":"replace"}}}`, labels of the template plus
//!   `controller-revision-hash`, the set's annotations, `revision` = last + 1); a template
//!   equal to the last revision reuses it, one equal to an older revision (a rollback) bumps
//!   that revision's number; a name taken by different data raises `collisionCount`. Orphan
//!   revisions the selector matches are adopted. Non-live revisions (not current, update,
//!   or any pod's) beyond `revisionHistoryLimit` are deleted, oldest first. The current
//!   revision is `status.currentRevision` (the update revision when absent or gone).
//! - **claiming**: pods named `<set>-<ordinal>` that the selector matches are adopted and
//!   kept, others with this controller reference released, as upstream's `ClaimPods`.
//! - **identity**: pod `<set>-<ordinal>` for ordinals `spec.ordinals.start` … `+replicas-1`,
//!   labels `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
//!   `controller-revision-hash` (the revision's name), `spec.hostname` = the pod name,
//!   `spec.subdomain` = `spec.serviceName`, a controller reference; an existing pod whose
//!   pod-name label is wrong is updated (`SuccessfulUpdate`). A missing pod is created at the
//!   current revision when its ordinal is below the partition (below `currentReplicas` when
//!   RollingUpdate has no `rollingUpdate`), else at the update revision.
//! - **storage**: each `volumeClaimTemplates` entry gives a claim `<template>-<set>-<ordinal>`
//!   (template labels plus the selector's matchLabels), created before the pod (and for a
//!   Pending pod whose claim is missing); the pod's volume of the template's name refers to
//!   it. A claim being deleted, or (whenScaled Delete) still owned by an earlier pod of the
//!   same name, blocks the pod's creation.
//! - **retention** (`persistentVolumeClaimRetentionPolicy`, default Retain/Retain): claims
//!   carry a controller reference to the set when whenDeleted is Delete (and the ordinal is in
//!   range), to the pod when whenScaled is Delete and the ordinal was scaled away, none
//!   otherwise — the garbage collector then deletes them with their owner. Claims with stale
//!   or foreign controller references are left alone, as upstream's `isClaimOwnerUpToDate`.
//! - **OrderedReady**: one step per sync in ordinal order: a failed or succeeded pod is deleted
//!   and recreated (`RecreatingFailedPod` / `RecreatingTerminatedPod`), a missing one created,
//!   and nothing further happens while a pod is terminating, not Running and Ready, or not
//!   available for `minReadySeconds`; only then is the highest out-of-range pod deleted (the
//!   lowest unhealthy one may go without waiting). **Parallel** does every step at once.
//! - **updates**: RollingUpdate deletes the highest pod with ordinal index ≥ `partition`
//!   whose revision differs from the update revision, one at a time, waiting for each
//!   replaced pod to be Running and Ready (and for all updates to follow scaling); OnDelete
//!   never deletes for an update.
//! - **status**: observedGeneration, replicas, readyReplicas, currentReplicas,
//!   updatedReplicas, availableReplicas, currentRevision, updateRevision, collisionCount,
//!   computed as upstream after the sync's steps (pods created in it do not count yet) and
//!   completed (current = update) once every pod is updated and ready; written with
//!   `UpdateStatus` only when changed. A set being deleted only has its status recomputed.
//! - **events** from `statefulset-controller` with upstream's wording: `SuccessfulCreate`
//!   "create Pod web-0 in StatefulSet web successful", "create Claim data-web-0 Pod web-0 in
//!   StatefulSet web success", `SuccessfulDelete` "delete Pod web-2 in StatefulSet web
//!   successful", `SuccessfulUpdate` "update Pod …".
//!
//! Deviations:
//! - the revision hash is FNV-1a (32 bit) of the revision data serialized as JSON with sorted
//!   keys plus `/<collisionCount>`, mapped onto upstream's safe alphabet like
//!   `HashControllerRevision`; upstream hashes Go's serialization, so the values differ from
//!   a real cluster's but are stable and collision-handled the same way;
//! - a failed pod is deleted and its replacement created in the same sync, as upstream (the
//!   API deletes finished pods at once); a failed pod already being deleted (finalizers) is
//!   waited for instead of being deleted again and failing the Create with AlreadyExists;
//! - a claim whose owner references must change is updated alone (upstream also writes the
//!   unchanged pod and records an "update Pod" event); storage mismatches of an existing pod
//!   (pod volumes are immutable) are not rewritten, only missing claims created;
//! - the rolling update does not delete a pod created in the same sync (upstream could, when
//!   a replacement below `currentReplicas` was created at the current revision); the next
//!   sync does;
//! - an orphan revision adopted in the sync that also renumbers it (a rollback) gets two
//!   Updates; the second fails its resourceVersion precondition and the next sync redoes it;
//! - upstream's expectations and informer-cache races do not exist: the runtime reconciles
//!   from the store after its writes were applied.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, CONTROLLER_REVISIONS, Kind, PODS, PVCS, STATEFUL_SETS};
use crate::controllers::replicaset::{
    Claim, claim, controller_ref_to, controller_uid, creation_time, int_at, involved, is_deleting,
    is_empty_value, is_pod_available, is_pod_ready, labels, meta, omit_zero_fields,
    selector_matches, semantic_eq, status_update, with_owner, without_owner,
};

/// The reporting component of the events.
pub const CONTROLLER_NAME: &str = "statefulset-controller";
/// The label naming a pod's stable identity.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label holding a pod's (or revision's) ControllerRevision.
pub const REVISION_LABEL: &str = "controller-revision-hash";
const API_VERSION: &str = "apps/v1";
const KIND: &str = "StatefulSet";
/// Upstream's longest revision name prefix.
const MAX_REVISION_PREFIX: usize = 223;

/// Reconciles one StatefulSet. `pods`, `pvcs` and `revisions` are the pods,
/// PersistentVolumeClaims and ControllerRevisions of its namespace (other objects are
/// ignored; the revisions must include every one of the namespace for collision detection).
pub fn reconcile(
    sts: &Value,
    pods: &[Value],
    pvcs: &[Value],
    revisions: &[Value],
    now: Timestamp,
) -> Vec<Action> {
    let name = meta(sts, "name");
    let uid = meta(sts, "uid");
    if name.is_empty() || uid.is_empty() {
        return Vec::new();
    }
    let ns = meta(sts, "namespace");
    let deleting = is_deleting(sts);
    let selector = sts.pointer("/spec/selector").unwrap_or(&Value::Null);
    let owner = controller_ref_to(sts, API_VERSION, KIND);
    let mut actions = Vec::new();

    // Revisions: adopt orphans the selector matches, then find current and update.
    let mut history: Vec<&Value> = Vec::new();
    for r in revisions.iter().filter(|r| meta(r, "namespace") == ns) {
        if !selector_matches(selector, labels(r)) {
            continue;
        }
        match controller_uid(r) {
            Some(u) if u == uid => history.push(r),
            None if !is_deleting(r) => {
                if !deleting {
                    actions.push(update(CONTROLLER_REVISIONS, ns, with_owner(r, &owner)));
                }
                history.push(r);
            }
            _ => {}
        }
    }
    history.sort_by(|a, b| compare_revisions(a, b));
    let mut revs = sync_revisions(sts, &owner, &history, revisions, !deleting);
    actions.append(&mut revs.actions);

    // Pods: claim members of the set.
    let mut claimed: Vec<&Value> = Vec::new();
    let mut adopted: HashSet<&str> = HashSet::new();
    for pod in pods {
        let member = parent_and_ordinal(meta(pod, "name")).is_some_and(|(p, _)| p == name);
        match claim(
            sts,
            deleting,
            pod,
            member && selector_matches(selector, labels(pod)),
        ) {
            Claim::Mine => claimed.push(pod),
            Claim::Adopt => {
                actions.push(update(PODS, ns, with_owner(pod, &owner)));
                adopted.insert(meta(pod, "name"));
                claimed.push(pod);
            }
            Claim::Release => actions.push(update(PODS, ns, without_owner(pod, uid))),
            Claim::Ignore => {}
        }
    }

    let mut sync = Sync {
        sts,
        ns,
        now,
        min_ready: int_at(sts, "/spec/minReadySeconds").unwrap_or(0),
        start: int_at(sts, "/spec/ordinals/start").unwrap_or(0).max(0),
        revs: &revs,
        pvcs: pvcs
            .iter()
            .filter(|c| meta(c, "namespace") == ns)
            .map(|c| (meta(c, "name"), c))
            .collect(),
        involved: involved(sts, API_VERSION, KIND),
        actions,
    };
    let status = if deleting {
        sync.count(claimed.iter().copied())
    } else {
        sync.run(&claimed, &adopted)
    };
    let mut actions = sync.actions;

    if !deleting {
        let mut live: HashSet<&str> = [revs.current.as_str(), revs.update.as_str()].into();
        live.extend(claimed.iter().map(|p| pod_revision(p)));
        actions.extend(truncate_history(sts, &history, &live));
    }

    let status = status_value(sts, &revs, status);
    actions.extend(status_update(sts, STATEFUL_SETS, status));
    actions
}

/// When to reconcile `sts` again without an event: the moment its next ready pod becomes
/// available (`minReadySeconds`), if any is waiting for that.
pub fn requeue_after(sts: &Value, pods: &[Value], now: Timestamp) -> Option<Duration> {
    crate::controllers::replicaset::requeue_after(sts, pods, now)
}

/// What a slot of the ordinal range holds during a sync.
#[derive(Clone, Copy)]
enum Slot<'a> {
    /// An existing pod.
    Pod(&'a Value),
    /// No pod (or one created or deleted in this sync, which upstream does not count yet).
    Missing,
}

/// How processing a replica ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Go on with the next replica.
    Next,
    /// OrderedReady stops here (a creation, or a pod not yet healthy).
    Wait,
    /// An error upstream: the sync stops after this pass.
    Error,
}

/// The status counters upstream's `computeReplicaStatus` keeps.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    replicas: i64,
    ready: i64,
    available: i64,
    current: i64,
    updated: i64,
}

/// One sync's inputs and accumulated actions.
struct Sync<'a> {
    sts: &'a Value,
    ns: &'a str,
    now: Timestamp,
    min_ready: i64,
    start: i64,
    revs: &'a RevisionSync,
    pvcs: HashMap<&'a str, &'a Value>,
    involved: Value,
    actions: Vec<Action>,
}

impl<'a> Sync<'a> {
    /// Upstream's `updateStatefulSet` for a set not being deleted: returns the counts.
    fn run(&mut self, claimed: &[&'a Value], adopted: &HashSet<&str>) -> Counts {
        let sts = self.sts;
        let replicas = int_at(sts, "/spec/replicas").unwrap_or(1).max(0);
        let end = self.start.saturating_add(replicas);
        let mut slots: Vec<Slot<'a>> = (0..replicas).map(|_| Slot::Missing).collect();
        let mut condemned: Vec<(i64, &'a Value)> = Vec::new();
        for pod in claimed {
            let Some((_, ord)) = parent_and_ordinal(meta(pod, "name")) else {
                continue;
            };
            if ord >= self.start && ord < end {
                if let Some(s) = usize::try_from(ord - self.start)
                    .ok()
                    .and_then(|i| slots.get_mut(i))
                {
                    *s = Slot::Pod(pod);
                }
            } else {
                condemned.push((ord, pod));
            }
        }
        condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
        let condemned: Vec<&Value> = condemned.into_iter().map(|(_, p)| p).collect();
        // The lowest unhealthy condemned pod, when every replica is healthy (otherwise the
        // first unhealthy pod is a replica, which no condemned pod equals).
        let first_unhealthy = if slots
            .iter()
            .all(|s| matches!(s, Slot::Pod(p) if healthy(p)))
        {
            condemned
                .iter()
                .rev()
                .find(|p| !healthy(p))
                .map(|p| meta(p, "name"))
        } else {
            None
        };
        let monotonic = sts
            .pointer("/spec/podManagementPolicy")
            .and_then(Value::as_str)
            != Some("Parallel");

        let mut blocked = false;
        for (i, slot) in slots.iter_mut().enumerate() {
            let ord = self.start + i as i64;
            match self.process_replica(slot, ord, monotonic, adopted) {
                Step::Next => {}
                // Parallel ignores a replica that must wait (upstream's runForAll).
                Step::Wait if !monotonic => {}
                Step::Wait | Step::Error => {
                    blocked = true;
                    if monotonic {
                        break;
                    }
                }
            }
        }
        let count = |s: &Sync, slots: &[Slot<'a>]| {
            let existing = slots.iter().filter_map(|s| match s {
                Slot::Pod(p) => Some(*p),
                Slot::Missing => None,
            });
            s.count(existing.chain(condemned.iter().copied()))
        };
        if blocked {
            return count(self, &slots);
        }
        // Claims of condemned pods follow the retention policy before the pods go.
        for pod in &condemned {
            self.fix_claims(pod, false);
        }
        for pod in &condemned {
            if is_deleting(pod) {
                if monotonic {
                    return count(self, &slots);
                }
                continue;
            }
            let first = first_unhealthy == Some(meta(pod, "name"));
            if monotonic && !first && (!running_ready(pod) || !self.available(pod)) {
                return count(self, &slots);
            }
            self.delete_pod(pod);
            if monotonic {
                return count(self, &slots);
            }
        }
        let mut counts = count(self, &slots);
        let strategy = sts.pointer("/spec/updateStrategy");
        if strategy.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("OnDelete") {
            return counts;
        }
        let partition = strategy
            .and_then(|s| s.pointer("/rollingUpdate/partition"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0);
        let update_min = usize::try_from(partition).unwrap_or(usize::MAX);
        for slot in slots.iter().skip(update_min).rev() {
            let Slot::Pod(pod) = *slot else { break };
            if pod_revision(pod) != self.revs.update && !is_deleting(pod) {
                self.delete_pod(pod);
                counts.current -= 1;
                break;
            }
            if !healthy(pod) {
                break;
            }
        }
        counts
    }

    /// Upstream's `processReplica`.
    fn process_replica(
        &mut self,
        slot: &mut Slot<'a>,
        ord: i64,
        monotonic: bool,
        adopted: &HashSet<&str>,
    ) -> Step {
        if let Slot::Pod(pod) = *slot {
            let phase = phase(pod);
            if matches!(phase, "Failed" | "Succeeded") && !is_deleting(pod) {
                let (kind, reason, what) = if phase == "Failed" {
                    ("Warning", "RecreatingFailedPod", "failed")
                } else {
                    ("Normal", "RecreatingTerminatedPod", "terminated")
                };
                let msg = format!(
                    "StatefulSet {}/{} is recreating {what} Pod {}",
                    self.ns,
                    meta(self.sts, "name"),
                    meta(pod, "name")
                );
                self.actions.push(event(&self.involved, kind, reason, msg));
                self.delete_pod(pod);
                *slot = Slot::Missing;
            }
        }
        let pod = match *slot {
            Slot::Pod(pod) => pod,
            Slot::Missing => {
                let pod = self.new_pod(ord);
                let pod_name = meta(&pod, "name").to_string();
                if self.claims_stale(&pod_name, ord) {
                    return Step::Wait;
                }
                if !self.create_claims(&pod_name, ord) {
                    return Step::Error;
                }
                self.actions.push(Action::Create {
                    kind: PODS,
                    namespace: self.ns.to_string(),
                    object: pod,
                });
                self.pod_event("create", &pod_name);
                return if monotonic { Step::Wait } else { Step::Next };
            }
        };
        if phase(pod) == "Pending" && !self.create_claims(meta(pod, "name"), ord) {
            return Step::Error;
        }
        if monotonic && (is_deleting(pod) || !running_ready(pod) || !self.available(pod)) {
            return Step::Wait;
        }
        self.fix_claims(pod, true);
        if !identity_matches(self.sts, pod) && !adopted.contains(meta(pod, "name")) {
            let mut fixed = pod.clone();
            set_identity(&mut fixed, meta(self.sts, "name"), ord);
            self.actions.push(update(PODS, self.ns, fixed));
            self.pod_event("update", meta(pod, "name"));
        }
        Step::Next
    }

    /// A new pod for `ord` at the revision upstream's `newVersionedStatefulSetPod` picks.
    fn new_pod(&self, ord: i64) -> Value {
        let sts = self.sts;
        let strategy = sts.pointer("/spec/updateStrategy");
        let rolling =
            strategy.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("RollingUpdate");
        let ru = strategy
            .and_then(|s| s.get("rollingUpdate"))
            .filter(|v| !v.is_null());
        let at_current = match ru {
            Some(ru) => ord < self.start + int_at(ru, "/partition").unwrap_or(0),
            None => {
                rolling && ord < self.start + int_at(sts, "/status/currentReplicas").unwrap_or(0)
            }
        };
        let (template, revision) = if at_current {
            (&self.revs.current_template, &self.revs.current)
        } else {
            (&self.revs.update_template, &self.revs.update)
        };
        let set_name = meta(sts, "name");
        let pod_name = format!("{set_name}-{ord}");
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(pod_name));
        metadata.insert("namespace".into(), json!(self.ns));
        for field in ["labels", "annotations", "finalizers"] {
            if let Some(v) = template.pointer(&format!("/metadata/{field}"))
                && !is_empty_value(v)
            {
                metadata.insert(field.into(), v.clone());
            }
        }
        metadata.insert(
            "ownerReferences".into(),
            json!([controller_ref_to(sts, API_VERSION, KIND)]),
        );
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))});
        set_identity(&mut pod, set_name, ord);
        set_label(&mut pod, REVISION_LABEL, revision);
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("hostname".into(), json!(pod_name));
            match sts.pointer("/spec/serviceName").and_then(Value::as_str) {
                Some(svc) if !svc.is_empty() => {
                    spec.insert("subdomain".into(), json!(svc));
                }
                _ => {}
            }
            // Claim volumes first, then the template's other volumes (upstream updateStorage).
            let claims: Vec<(String, String)> = claim_templates(sts)
                .map(|(t, _)| (t.to_string(), claim_name(t, set_name, ord)))
                .collect();
            let mut volumes: Vec<Value> = claims
                .iter()
                .map(|(t, c)| json!({"name": t, "persistentVolumeClaim": {"claimName": c}}))
                .collect();
            if let Some(Value::Array(old)) = spec.get("volumes") {
                volumes.extend(
                    old.iter()
                        .filter(|v| {
                            let n = v.get("name").and_then(Value::as_str).unwrap_or("");
                            !claims.iter().any(|(t, _)| t == n)
                        })
                        .cloned(),
                );
            }
            if !volumes.is_empty() {
                spec.insert("volumes".into(), Value::Array(volumes));
            }
        }
        pod
    }

    /// Upstream `PodClaimIsStale`: with whenScaled Delete, a claim still owned by an earlier
    /// pod of this name must go before the pod is created again.
    fn claims_stale(&self, pod_name: &str, ord: i64) -> bool {
        if !retention(self.sts).scaled_delete {
            return false;
        }
        let set_name = meta(self.sts, "name");
        claim_templates(self.sts).any(|(t, _)| {
            self.pvcs
                .get(claim_name(t, set_name, ord).as_str())
                .is_some_and(|c| stale_ref(c, "v1", "Pod", pod_name, ""))
        })
    }

    /// Creates the missing claims of ordinal `ord` (upstream `createPersistentVolumeClaims`);
    /// false when one is being deleted (an error upstream).
    fn create_claims(&mut self, pod_name: &str, ord: i64) -> bool {
        let sts = self.sts;
        let set_name = meta(sts, "name");
        let match_labels = sts
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object);
        let policy = retention(sts);
        let mut ok = true;
        for (t, template) in claim_templates(sts) {
            let name = claim_name(t, set_name, ord);
            if let Some(existing) = self.pvcs.get(name.as_str()) {
                ok &= !is_deleting(existing);
                continue;
            }
            let mut metadata = Map::new();
            metadata.insert("name".into(), json!(name));
            metadata.insert("namespace".into(), json!(self.ns));
            let mut claim_labels = template
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(ml) = match_labels {
                claim_labels.extend(ml.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if !claim_labels.is_empty() {
                metadata.insert("labels".into(), Value::Object(claim_labels));
            }
            for field in ["annotations", "finalizers"] {
                if let Some(v) = template.pointer(&format!("/metadata/{field}"))
                    && !is_empty_value(v)
                {
                    metadata.insert(field.into(), v.clone());
                }
            }
            // An in-range claim's only possible reference is the set's (whenDeleted Delete);
            // upstream adds it right after creating the pod.
            if policy.deleted_delete {
                metadata.insert(
                    "ownerReferences".into(),
                    json!([controller_ref_to(sts, API_VERSION, KIND)]),
                );
            }
            self.actions.push(Action::Create {
                kind: PVCS,
                namespace: self.ns.to_string(),
                object: json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": metadata,
                    "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))}),
            });
            self.actions.push(event(
                &self.involved,
                "Normal",
                "SuccessfulCreate",
                format!("create Claim {name} Pod {pod_name} in StatefulSet {set_name} success"),
            ));
        }
        ok
    }

    /// Updates the existing claims of `pod` whose owner references do not follow the
    /// retention policy (upstream `UpdatePodClaimForRetentionPolicy`).
    fn fix_claims(&mut self, pod: &Value, in_range: bool) {
        let Some((_, ord)) = parent_and_ordinal(meta(pod, "name")) else {
            return;
        };
        let sts = self.sts;
        let policy = retention(sts);
        let want_set = policy.deleted_delete && (in_range || !policy.scaled_delete);
        let want_pod = policy.scaled_delete && !in_range;
        for (t, _) in claim_templates(sts) {
            let Some(claim) = self
                .pvcs
                .get(claim_name(t, meta(sts, "name"), ord).as_str())
            else {
                continue;
            };
            if let Some(fixed) = claim_owners_fixed(claim, sts, pod, want_set, want_pod) {
                self.actions.push(update(PVCS, self.ns, fixed));
            }
        }
    }

    fn delete_pod(&mut self, pod: &Value) {
        self.actions.push(delete(PODS, self.ns, pod));
        self.pod_event("delete", meta(pod, "name"));
    }

    /// Upstream `recordPodEvent` for a successful `verb`.
    fn pod_event(&mut self, verb: &str, pod_name: &str) {
        let mut reason = String::from("Successful");
        let mut chars = verb.chars();
        if let Some(c) = chars.next() {
            reason.extend(c.to_uppercase());
            reason.push_str(chars.as_str());
        }
        let message = format!(
            "{verb} Pod {pod_name} in StatefulSet {} successful",
            meta(self.sts, "name")
        );
        self.actions
            .push(event(&self.involved, "Normal", &reason, message));
    }

    fn available(&self, pod: &Value) -> bool {
        phase(pod) == "Running" && is_pod_available(pod, self.min_ready, self.now)
    }

    /// Upstream `computeReplicaStatus` over `pods`.
    fn count<'p>(&self, pods: impl Iterator<Item = &'p Value>) -> Counts {
        let mut c = Counts::default();
        for pod in pods {
            let created = !phase(pod).is_empty();
            if created {
                c.replicas += 1;
            }
            if running_ready(pod) {
                c.ready += 1;
                if self.available(pod) {
                    c.available += 1;
                }
            }
            if created && !is_deleting(pod) {
                let rev = pod_revision(pod);
                c.current += i64::from(rev == self.revs.current);
                c.updated += i64::from(rev == self.revs.update);
            }
        }
        c
    }
}

/// The status object (upstream's, after `completeRollingUpdate`).
fn status_value(sts: &Value, revs: &RevisionSync, mut c: Counts) -> Value {
    let mut current_revision = revs.current.clone();
    let rolling = sts
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        == Some("RollingUpdate");
    if rolling && c.updated == c.replicas && c.ready == c.replicas {
        c.current = c.updated;
        current_revision = revs.update.clone();
    }
    let mut status = json!({
        "observedGeneration": int_at(sts, "/metadata/generation").unwrap_or(0),
        "replicas": c.replicas,
        "readyReplicas": c.ready,
        "currentReplicas": c.current,
        "updatedReplicas": c.updated,
        "currentRevision": current_revision,
        "updateRevision": revs.update,
        "collisionCount": revs.collision_count,
        "availableReplicas": c.available,
    });
    omit_zero_fields(
        &mut status,
        &["replicas", "availableReplicas", "collisionCount"],
    );
    status
}

// ---------------------------------------------------------------------------------------
// ControllerRevisions.
// ---------------------------------------------------------------------------------------

/// The revisions one sync works with.
pub(crate) struct RevisionSync {
    /// Name of the current revision.
    pub current: String,
    /// Its pod template.
    pub current_template: Value,
    /// Name of the update revision.
    pub update: String,
    /// Its pod template (the owner's).
    pub update_template: Value,
    /// The collision count to record.
    pub collision_count: i64,
    /// Creates and updates of revisions.
    pub actions: Vec<Action>,
}

/// Upstream `getStatefulSetRevisions`: `history` is the owner's revisions sorted by
/// [`compare_revisions`], `all` every revision of the namespace; `write` false computes the
/// names without creating or renumbering anything.
pub(crate) fn sync_revisions(
    owner: &Value,
    owner_ref: &Value,
    history: &[&Value],
    all: &[Value],
    write: bool,
) -> RevisionSync {
    let ns = meta(owner, "namespace");
    let data = revision_data(owner);
    let update_template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut collision = int_at(owner, "/status/collisionCount").unwrap_or(0).max(0);
    let next = history
        .last()
        .map_or(1, |r| int_at(r, "/revision").unwrap_or(0) + 1);
    let mut actions = Vec::new();
    let equal = history
        .iter()
        .rev()
        .find(|r| semantic_eq(r.get("data").unwrap_or(&Value::Null), &data));
    let update = match equal {
        Some(eq)
            if history
                .last()
                .is_some_and(|l| meta(l, "name") == meta(eq, "name")) =>
        {
            meta(eq, "name").to_string()
        }
        Some(eq) => {
            if write {
                let mut bumped = (*eq).clone();
                bumped["revision"] = json!(next);
                actions.push(update(CONTROLLER_REVISIONS, ns, bumped));
            }
            meta(eq, "name").to_string()
        }
        None => loop {
            let hash = revision_hash(&data, collision);
            let prefix: String = meta(owner, "name")
                .chars()
                .take(MAX_REVISION_PREFIX)
                .collect();
            let name = format!("{prefix}-{hash}");
            let taken = all
                .iter()
                .find(|r| meta(r, "namespace") == ns && meta(r, "name") == name);
            match taken {
                Some(r) if !semantic_eq(r.get("data").unwrap_or(&Value::Null), &data) => {
                    collision += 1;
                }
                Some(_) => break name,
                None => {
                    if write {
                        let mut rev_labels = update_template
                            .pointer("/metadata/labels")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        rev_labels.insert(REVISION_LABEL.into(), json!(hash));
                        let mut metadata = json!({"name": name, "namespace": ns,
                            "labels": rev_labels, "ownerReferences": [owner_ref]});
                        if let Some(a) = owner.pointer("/metadata/annotations")
                            && !is_empty_value(a)
                        {
                            metadata["annotations"] = a.clone();
                        }
                        actions.push(Action::Create {
                            kind: CONTROLLER_REVISIONS,
                            namespace: ns.to_string(),
                            object: json!({"apiVersion": "apps/v1",
                                "kind": "ControllerRevision", "metadata": metadata,
                                "data": data, "revision": next}),
                        });
                    }
                    break name;
                }
            }
        },
    };
    let (current, current_template) = match history
        .iter()
        .find(|r| meta(r, "name") == status_str(owner, "currentRevision"))
    {
        Some(r) if meta(r, "name") != update => {
            let mut t = r
                .pointer("/data/spec/template")
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let Some(o) = t.as_object_mut() {
                o.remove("$patch");
            }
            (meta(r, "name").to_string(), t)
        }
        _ => (update.clone(), update_template.clone()),
    };
    RevisionSync {
        current,
        current_template,
        update,
        update_template,
        collision_count: collision,
        actions,
    }
}

/// A revision's data: `{"spec":{"template":{…,"$patch":"replace"}}}` (upstream `getPatch`).
pub(crate) fn revision_data(owner: &Value) -> Value {
    let mut template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(o) = template.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The hash naming a revision of `data`: the Deployment controller's template hash (FNV-1a
/// over key-sorted JSON plus the collision count).
pub(crate) fn revision_hash(data: &Value, collision_count: i64) -> String {
    crate::controllers::deployment::pod_template_hash(data, Some(collision_count))
}

/// Upstream's revision order: by `revision`, then creation time, then name.
pub(crate) fn compare_revisions(a: &Value, b: &Value) -> Ordering {
    int_at(a, "/revision")
        .unwrap_or(0)
        .cmp(&int_at(b, "/revision").unwrap_or(0))
        .then_with(|| creation_time(a).cmp(&creation_time(b)))
        .then_with(|| meta(a, "name").cmp(meta(b, "name")))
}

/// Deletes of non-live revisions beyond `revisionHistoryLimit`, oldest first.
fn truncate_history(sts: &Value, history: &[&Value], live: &HashSet<&str>) -> Vec<Action> {
    let limit =
        usize::try_from(int_at(sts, "/spec/revisionHistoryLimit").unwrap_or(10)).unwrap_or(0);
    let old: Vec<&&Value> = history
        .iter()
        .filter(|r| !live.contains(meta(r, "name")))
        .collect();
    let excess = old.len().saturating_sub(limit);
    old.into_iter()
        .take(excess)
        .map(|r| delete(CONTROLLER_REVISIONS, meta(sts, "namespace"), r))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Claims and their retention policy.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Retention {
    scaled_delete: bool,
    deleted_delete: bool,
}

/// The retention policy; an unknown combination is Retain/Retain, as upstream.
fn retention(sts: &Value) -> Retention {
    let get = |f: &str| {
        sts.pointer(&format!("/spec/persistentVolumeClaimRetentionPolicy/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("Retain")
    };
    let known = |v: &str| matches!(v, "Retain" | "Delete" | "");
    let (scaled, deleted) = (get("whenScaled"), get("whenDeleted"));
    if !known(scaled) || !known(deleted) {
        return Retention {
            scaled_delete: false,
            deleted_delete: false,
        };
    }
    Retention {
        scaled_delete: scaled == "Delete",
        deleted_delete: deleted == "Delete",
    }
}

/// `(template name, template)` of each `volumeClaimTemplates` entry with a name.
fn claim_templates(sts: &Value) -> impl Iterator<Item = (&str, &Value)> {
    sts.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t.pointer("/metadata/name")?.as_str()?, t)))
        .filter(|(n, _)| !n.is_empty())
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i64) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn refs(obj: &Value) -> &[Value] {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn ref_str<'v>(r: &'v Value, f: &str) -> &'v str {
    r.get(f).and_then(Value::as_str).unwrap_or("")
}

fn is_controller(r: &Value) -> bool {
    r.get("controller").and_then(Value::as_bool) == Some(true)
}

/// A reference of the given type and name to another uid (upstream `hasStaleOwnerRef`).
fn stale_ref(obj: &Value, api_version: &str, kind: &str, name: &str, uid: &str) -> bool {
    refs(obj).iter().any(|r| {
        ref_str(r, "apiVersion") == api_version
            && ref_str(r, "kind") == kind
            && ref_str(r, "name") == name
            && ref_str(r, "uid") != uid
    })
}

/// The claim with owner references following the policy, or None when it already does or
/// must not be touched (upstream `isClaimOwnerUpToDate` / `updateClaimOwnerRefForSetAndPod`).
fn claim_owners_fixed(
    claim: &Value,
    sts: &Value,
    pod: &Value,
    want_set: bool,
    want_pod: bool,
) -> Option<Value> {
    let (set_uid, pod_uid) = (meta(sts, "uid"), meta(pod, "uid"));
    if stale_ref(claim, API_VERSION, KIND, meta(sts, "name"), set_uid)
        || stale_ref(claim, "v1", "Pod", meta(pod, "name"), pod_uid)
    {
        return None;
    }
    let owns = |uid: &str| !uid.is_empty() && refs(claim).iter().any(|r| ref_str(r, "uid") == uid);
    let ours = |r: &Value| {
        let uid = ref_str(r, "uid");
        !uid.is_empty() && (uid == set_uid || uid == pod_uid)
    };
    let unexpected = refs(claim).iter().any(|r| is_controller(r) && !ours(r));
    let (has_set, has_pod) = (owns(set_uid), owns(pod_uid));
    let up_to_date = if unexpected {
        !has_set && !has_pod
    } else {
        !refs(claim).iter().any(|r| ours(r) && !is_controller(r))
            && has_set == want_set
            && (has_pod == want_pod || pod_uid.is_empty())
    };
    if up_to_date {
        return None;
    }
    let mut new_refs: Vec<Value> = refs(claim).iter().filter(|r| !ours(r)).cloned().collect();
    if !unexpected {
        if want_set {
            new_refs.push(controller_ref_to(sts, API_VERSION, KIND));
        }
        if want_pod && !pod_uid.is_empty() {
            new_refs.push(controller_ref_to(pod, "v1", "Pod"));
        }
    }
    let mut fixed = claim.clone();
    if let Some(m) = fixed.get_mut("metadata").and_then(Value::as_object_mut) {
        if new_refs.is_empty() {
            m.remove("ownerReferences");
        } else {
            m.insert("ownerReferences".into(), Value::Array(new_refs));
        }
    }
    Some(fixed)
}

// ---------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------

/// `(parent, ordinal)` of a pod name `<parent>-<ordinal>` (upstream's `(.*)-([0-9]+)$`).
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, ord) = name.rsplit_once('-')?;
    if ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ord: i64 = ord.parse().ok()?;
    (ord <= i64::from(i32::MAX)).then_some((parent, ord))
}

/// Upstream `identityMatches`.
fn identity_matches(sts: &Value, pod: &Value) -> bool {
    let name = meta(pod, "name");
    parent_and_ordinal(name).is_some_and(|(p, _)| p == meta(sts, "name"))
        && meta(pod, "namespace") == meta(sts, "namespace")
        && labels(pod)
            .and_then(|l| l.get(POD_NAME_LABEL))
            .and_then(Value::as_str)
            == Some(name)
}

/// Upstream `updateIdentity`: the name and the identity labels.
fn set_identity(pod: &mut Value, set_name: &str, ord: i64) {
    let name = format!("{set_name}-{ord}");
    pod["metadata"]["name"] = json!(name);
    set_label(pod, POD_NAME_LABEL, &name);
    set_label(pod, POD_INDEX_LABEL, &ord.to_string());
}

fn set_label(obj: &mut Value, key: &str, value: &str) {
    if let Some(l) = crate::controllers::replicaset::meta_map_mut(obj, "labels") {
        l.insert(key.into(), json!(value));
    }
}

/// The pod's `controller-revision-hash` label.
fn pod_revision(pod: &Value) -> &str {
    labels(pod)
        .and_then(|l| l.get(REVISION_LABEL))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn status_str<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.pointer(&format!("/status/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn running_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && is_pod_ready(pod)
}

/// Running, ready and not terminating (upstream `isHealthy`).
fn healthy(pod: &Value) -> bool {
    running_ready(pod) && !is_deleting(pod)
}

fn update(kind: Kind, ns: &str, object: Value) -> Action {
    Action::Update {
        kind,
        namespace: ns.to_string(),
        object,
    }
}

fn delete(kind: Kind, ns: &str, obj: &Value) -> Action {
    Action::Delete {
        kind,
        namespace: ns.to_string(),
        name: meta(obj, "name").to_string(),
        uid: Some(meta(obj, "uid").to_string()).filter(|u| !u.is_empty()),
        propagation: None,
    }
}

fn event(involved: &Value, event_type: &'static str, reason: &str, message: String) -> Action {
    Action::event(CONTROLLER_NAME, involved, event_type, reason, message)
}

#[cfg(test)]
mod tests;
