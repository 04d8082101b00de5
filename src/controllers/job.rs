//! The Job controller's pure reconcile core (`batch/v1` Job, as kube-controller-manager 1.33's
//! `job-controller` behaves with its default feature gates).
//!
//! [`reconcile`] takes one Job and the pods of its namespace and returns the writes that move
//! the world one step towards the Job's spec. It is level-triggered and idempotent: the runtime
//! carries the actions out in order, stops at the first failure and calls it again on every
//! change (and after `requeue_after`), so each call only has to make progress from what it
//! sees. It never remembers anything between calls.
//!
//! What it does, per call:
//! - **pods**: those with a controller ownerReference to the Job's uid that match
//!   `spec.selector` (no adoption of orphans). Active = not terminal and not being deleted;
//!   terminating = being deleted and not terminal (→ `status.terminating`).
//! - **tracking with finalizers** (upstream's algorithm, one status write per call): a
//!   finished pod that still carries `batch.kubernetes.io/job-tracking` is first recorded in
//!   `status.uncountedTerminatedPods` (Indexed successes go straight to
//!   `status.completedIndexes`), then — in the same plan, after that status write — its
//!   finalizer is removed; the next call moves uids whose pods lost the finalizer (or are gone)
//!   into `status.succeeded` / `status.failed`. A pod is never counted twice and never lost.
//! - **creating pods** from `spec.template` (name `<job>-<5 chars>`, or `<job>-<index>-<5
//!   chars>` for Indexed; the core picks the name itself so the `SuccessfulCreate` event can
//!   name the pod — `generateName` is set too), up to `parallelism` active pods and never more
//!   than `completions` still needs; excess active pods are removed (not-ready, unscheduled,
//!   pending and newer first). After failures, re-creation waits 10 s, 20 s, 40 s … capped at
//!   6 min, counted from the last failure after the last success (via `requeue_after`).
//! - **failure**: more failed pods than `backoffLimit` (or, with `restartPolicy: OnFailure`,
//!   container restarts reaching it) → `FailureTarget` (reason `BackoffLimitExceeded`), active
//!   pods deleted and counted failed, then `Failed` once every pod is accounted for and none
//!   is terminating; `activeDeadlineSeconds` past `status.startTime` → the same with reason
//!   `DeadlineExceeded`.
//! - **success**: enough successes and nothing active → `SuccessCriteriaMet` (reason
//!   `CompletionsReached`), then `Complete` with `status.completionTime`.
//! - **suspend**: active pods are deleted (not counted as failures) and `Suspended=True`;
//!   resuming sets `Suspended=False` and restarts `status.startTime`.
//! - **ttlSecondsAfterFinished**: a finished Job is deleted (propagation `Background`, uid
//!   precondition) once the finish time plus the TTL has passed.
//!
//! Deviations from upstream, on purpose:
//! - the pod-failure backoff is derived from the pods still present (upstream keeps an
//!   in-memory record that a controller restart loses); its cap is 6 min as the Kubernetes
//!   documentation states (the 1.33 code caps at 10 min);
//! - `podFailurePolicy`, `successPolicy`, `backoffLimitPerIndex` and orphan adoption are not
//!   implemented (a `podFailurePolicy` only switches the default `podReplacementPolicy` to
//!   `Failed`, as upstream defaulting does); Jobs with `spec.managedBy` set to another
//!   controller are left alone;
//! - the TTL is handled here rather than by a separate ttl-after-finished controller, and
//!   deletes with `Background` propagation (upstream's TTL controller uses `Foreground`);
//! - while pods are being created after a backoff, `status.active` keeps counting the pods
//!   that exist (upstream reports 0 in that one sync).

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, JOBS, PODS};
use crate::controllers::replicaset::selector_matches;

/// What one Job reconcile asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct JobPlan {
    /// Writes, in order.
    pub actions: Vec<Action>,
    /// Reconcile again after this long even without events.
    pub requeue_after: Option<Duration>,
}

impl JobPlan {
    fn requeue(&mut self, d: Duration) {
        let d = d.max(Duration::from_millis(100));
        self.requeue_after = Some(self.requeue_after.map_or(d, |old| old.min(d)));
    }
}

/// The finalizer that keeps a finished pod until the Job counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Label with the owning Job's uid.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Label with the owning Job's name.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Legacy label with the owning Job's uid.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// Legacy label with the owning Job's name.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
/// Annotation and label with the completion index of a pod of an Indexed Job.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The `spec.managedBy` value meaning this controller.
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";

const SOURCE: &str = "job-controller";
const MAX_CREATE_DELETE_PER_SYNC: i64 = 500;
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);
/// `names.MaxGeneratedNameLength`: 63 minus the 5 random characters.
const MAX_GENERATED_NAME: usize = 58;
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

// ---------------------------------------------------------------------------------------
// Small JSON helpers shared with the CronJob core.

pub(crate) fn meta_str<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub(crate) fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// RFC 3339 at whole seconds, as `metav1.Time` serializes.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

pub(crate) fn to_duration(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

/// The condition of `type_` with status `True`, if any.
pub(crate) fn true_condition<'v>(obj: &'v Value, type_: &str) -> Option<&'v Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| {
            c.get("type").and_then(Value::as_str) == Some(type_)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// `Complete` or `Failed` (status True) and when it was reached.
pub(crate) fn finished(job: &Value) -> Option<(&'static str, Option<Timestamp>)> {
    for t in ["Complete", "Failed"] {
        if let Some(c) = true_condition(job, t) {
            let t: &'static str = if t == "Complete" {
                "Complete"
            } else {
                "Failed"
            };
            return Some((t, parse_time(c.get("lastTransitionTime"))));
        }
    }
    None
}

/// Whether `obj` has a controller ownerReference to `uid`.
pub(crate) fn controlled_by(obj: &Value, uid: &str) -> bool {
    !uid.is_empty()
        && obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("controller").and_then(Value::as_bool) == Some(true)
                        && r.get("uid").and_then(Value::as_str) == Some(uid)
                })
            })
}

fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `base` cut to the generated-name limit plus five characters derived from `seed`.
pub(crate) fn generated_name(base: &str, seed: u64) -> String {
    let mut name: String = base.chars().take(MAX_GENERATED_NAME).collect();
    let mut s = seed;
    for _ in 0..5 {
        let i = (s % NAME_ALPHABET.len() as u64) as usize;
        name.push(char::from(NAME_ALPHABET[i]));
        s /= NAME_ALPHABET.len() as u64;
    }
    name
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> Value {
    let t = rfc3339(now);
    json!({
        "type": type_,
        "status": status,
        "lastProbeTime": t,
        "lastTransitionTime": t,
        "reason": reason,
        "message": message,
    })
}

/// Sets condition `type_` to (`status`, `reason`, `message`), appending it unless it is
/// absent and `status` is `False`; true when something changed.
fn ensure_condition(
    conds: &mut Vec<Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let s = |c: &Value, f: &str| c.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(c) = conds.iter_mut().find(|c| s(c, "type") == type_) {
        if s(c, "status") != status || s(c, "reason") != reason || s(c, "message") != message {
            *c = condition(type_, status, reason, message, now);
            return true;
        }
        return false;
    }
    if status != "False" {
        conds.push(condition(type_, status, reason, message, now));
        return true;
    }
    false
}

// ---------------------------------------------------------------------------------------
// Indexes.

/// Sorted, merged closed intervals of completion indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// Parses `status.completedIndexes` ("1,3-5,7"), ignoring indexes ≥ `completions` and
    /// corrupt parts, as upstream does.
    pub fn parse(s: &str, completions: i64) -> Intervals {
        let mut set = BTreeSet::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<i64>(), b.parse::<i64>()),
                None => (part.parse::<i64>(), part.parse::<i64>()),
            };
            let (Ok(a), Ok(b)) = (a, b) else { continue };
            if a < 0 || a >= completions {
                continue;
            }
            for i in a..=b.min(completions - 1) {
                set.insert(i);
            }
        }
        Intervals::from_set(&set)
    }

    fn from_set(set: &BTreeSet<i64>) -> Intervals {
        let mut out: Vec<(i64, i64)> = Vec::new();
        for &i in set {
            match out.last_mut() {
                Some(last) if last.1 + 1 == i => last.1 = i,
                _ => out.push((i, i)),
            }
        }
        Intervals(out)
    }

    fn to_set(&self) -> BTreeSet<i64> {
        self.0.iter().flat_map(|&(a, b)| a..=b).collect()
    }

    /// With `more` added.
    pub fn with(&self, more: impl IntoIterator<Item = i64>) -> Intervals {
        let mut set = self.to_set();
        set.extend(more);
        Intervals::from_set(&set)
    }

    /// Whether `i` is included.
    pub fn has(&self, i: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= i && i <= b)
    }

    /// How many indexes.
    pub fn total(&self) -> i64 {
        self.0.iter().map(|&(a, b)| b - a + 1).sum()
    }
}

impl std::fmt::Display for Intervals {
    /// Upstream's format: a run of two is written "3,4", longer runs "3-5".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, &(a, b)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
            if b > a {
                let sep = if b == a + 1 { "," } else { "-" };
                write!(f, "{sep}{b}")?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The job's spec and its pods.

struct Spec {
    parallelism: i64,
    completions: Option<i64>,
    backoff_limit: i64,
    indexed: bool,
    suspend: bool,
    active_deadline: Option<i64>,
    ttl: Option<i64>,
    only_replace_failed: bool,
    restart_on_failure: bool,
}

impl Spec {
    fn of(job: &Value) -> Spec {
        let spec = job.get("spec").unwrap_or(&Value::Null);
        let int = |f: &str| spec.get(f).and_then(Value::as_i64);
        let parallelism = int("parallelism");
        let completions = match (int("completions"), parallelism) {
            (Some(c), _) => Some(c),
            // Defaulting: neither set means one pod to one completion.
            (None, None) => Some(1),
            (None, Some(_)) => None,
        };
        let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
        let replacement = spec.get("podReplacementPolicy").and_then(Value::as_str);
        let only_replace_failed = match replacement {
            Some(p) => p == "Failed",
            None => spec.get("podFailurePolicy").is_some_and(|p| !p.is_null()),
        };
        Spec {
            parallelism: parallelism.unwrap_or(1).max(0),
            completions,
            backoff_limit: int("backoffLimit").unwrap_or(6),
            indexed: indexed && completions.is_some(),
            suspend: spec.get("suspend").and_then(Value::as_bool) == Some(true),
            active_deadline: int("activeDeadlineSeconds"),
            ttl: int("ttlSecondsAfterFinished"),
            only_replace_failed,
            restart_on_failure: spec
                .pointer("/template/spec/restartPolicy")
                .and_then(Value::as_str)
                == Some("OnFailure"),
        }
    }
}

struct Pod<'a> {
    obj: &'a Value,
    uid: &'a str,
    name: &'a str,
    phase: &'a str,
    deleting: bool,
    finalizer: bool,
    ready: bool,
    index: Option<i64>,
}

impl<'a> Pod<'a> {
    fn of(obj: &'a Value) -> Pod<'a> {
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ready = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        let finalizer = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|f| f.as_str() == Some(TRACKING_FINALIZER)));
        let index = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(COMPLETION_INDEX))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|i| *i >= 0);
        Pod {
            obj,
            uid: meta_str(obj, "uid"),
            name: meta_str(obj, "name"),
            phase,
            deleting: obj
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null()),
            finalizer,
            ready,
            index,
        }
    }

    fn terminal(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }

    fn active(&self) -> bool {
        !self.terminal() && !self.deleting
    }

    fn terminating(&self) -> bool {
        !self.terminal() && self.deleting
    }

    /// Upstream's `isPodFailed` without pod failure policies.
    fn failed(&self, spec: &Spec) -> bool {
        if spec.only_replace_failed {
            return self.phase == "Failed";
        }
        self.phase == "Failed" || (self.deleting && self.phase != "Succeeded")
    }

    fn valid_index(&self, spec: &Spec) -> Option<i64> {
        self.index
            .filter(|i| spec.completions.is_some_and(|c| *i < c))
    }

    /// When the pod finished: latest container finish, else when Ready turned False, else
    /// deletion time minus grace, else creation.
    fn finished_at(&self) -> Option<Timestamp> {
        let statuses = self
            .obj
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array);
        if let Some(statuses) = statuses.filter(|s| !s.is_empty()) {
            let mut latest: Option<Timestamp> = None;
            let mut all = true;
            for s in statuses {
                match parse_time(s.pointer("/state/terminated/finishedAt")) {
                    Some(t) => latest = Some(latest.map_or(t, |l| l.max(t))),
                    None => all = false,
                }
            }
            if all && latest.is_some() {
                return latest;
            }
        }
        let ready_false = self
            .obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter().find(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("False")
                })
            })
            .and_then(|c| parse_time(c.get("lastTransitionTime")));
        if ready_false.is_some() {
            return ready_false;
        }
        if let Some(d) = parse_time(self.obj.pointer("/metadata/deletionTimestamp")) {
            let grace = self
                .obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            return d.checked_sub(SignedDuration::from_secs(grace)).ok();
        }
        parse_time(self.obj.pointer("/metadata/creationTimestamp"))
    }

    fn restarts(&self) -> i64 {
        ["initContainerStatuses", "containerStatuses"]
            .iter()
            .filter_map(|f| self.obj.pointer(&format!("/status/{f}")))
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
            .sum()
    }

    /// Sort key for removal: unscheduled, pending, not ready and newer pods go first.
    fn removal_key(&self) -> (bool, u8, bool, std::cmp::Reverse<Option<Timestamp>>) {
        let scheduled = self
            .obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = match self.phase {
            "Pending" => 0,
            "Unknown" => 1,
            "Running" => 2,
            _ => 0,
        };
        let created = parse_time(self.obj.pointer("/metadata/creationTimestamp"));
        (scheduled, phase, self.ready, std::cmp::Reverse(created))
    }
}

fn event(job: &Value, type_: &'static str, reason: &str, message: String) -> Action {
    Action::Event {
        involved: super::action::involved_object(job),
        event_type: type_,
        reason: reason.to_string(),
        message,
        source: SOURCE,
    }
}

fn without_finalizer(pod: &Value) -> Action {
    let mut obj = pod.clone();
    if let Some(f) = obj
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        f.retain(|f| f.as_str() != Some(TRACKING_FINALIZER));
    }
    Action::Update {
        kind: PODS,
        namespace: meta_str(pod, "namespace").to_string(),
        object: obj,
    }
}

fn delete_pod(pod: &Pod<'_>, ns: &str) -> Action {
    Action::Delete {
        kind: PODS,
        namespace: ns.to_string(),
        name: pod.name.to_string(),
        uid: Some(pod.uid.to_string()).filter(|u| !u.is_empty()),
        propagation: None,
    }
}

fn uid_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Pod-failure backoff still to wait before creating pods: `10 s × 2^(n-1)` (capped) after
/// the last of the `n` failures that happened after the last success.
fn backoff_remaining(pods: &[Pod<'_>], spec: &Spec, now: Timestamp) -> Duration {
    let last_success = pods
        .iter()
        .filter(|p| p.phase == "Succeeded")
        .filter_map(Pod::finished_at)
        .max();
    let failures: Vec<Timestamp> = pods
        .iter()
        .filter(|p| p.failed(spec))
        .filter_map(Pod::finished_at)
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let Some(last_failure) = failures.iter().max().copied() else {
        return Duration::ZERO;
    };
    let mut backoff = BACKOFF_BASE;
    for _ in 1..failures.len() {
        backoff = backoff.saturating_mul(2);
        if backoff >= BACKOFF_MAX {
            backoff = BACKOFF_MAX;
            break;
        }
    }
    let elapsed = to_duration(now.duration_since(last_failure));
    backoff.saturating_sub(elapsed)
}

/// Indexes below `completions` not succeeded and not held by an active (or, with
/// `podReplacementPolicy: Failed`, terminating) pod, lowest first.
fn pending_indexes(
    succeeded: &Intervals,
    pods: &[Pod<'_>],
    spec: &Spec,
    count: i64,
    completions: i64,
) -> Vec<i64> {
    let taken: HashSet<i64> = pods
        .iter()
        .filter(|p| p.active() || (spec.only_replace_failed && p.terminating()))
        .filter_map(|p| p.index)
        .collect();
    (0..completions)
        .filter(|i| !succeeded.has(*i) && !taken.contains(i))
        .take(usize::try_from(count).unwrap_or(0))
        .collect()
}

/// Active pods to delete: for Indexed Jobs every pod without a valid index and all but one
/// pod per index, then the first `rm_at_least` by removal order.
fn pods_for_removal<'p, 'a>(
    active: &[&'p Pod<'a>],
    spec: &Spec,
    rm_at_least: usize,
) -> Vec<&'p Pod<'a>> {
    let mut rm: Vec<&Pod<'_>> = Vec::new();
    let mut left: Vec<&Pod<'_>> = Vec::new();
    if spec.indexed {
        let mut sorted: Vec<&Pod<'_>> = active.to_vec();
        sorted.sort_by_key(|p| (p.index, p.removal_key()));
        let mut i = 0;
        while i < sorted.len() {
            let ix = sorted[i].valid_index(spec);
            let mut j = i + 1;
            while j < sorted.len() && sorted[j].index == sorted[i].index {
                j += 1;
            }
            if ix.is_none() {
                rm.extend(&sorted[i..j]);
            } else {
                // Keep the pod furthest along (last in removal order).
                rm.extend(&sorted[i..j - 1]);
                left.push(sorted[j - 1]);
            }
            i = j;
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < rm_at_least {
        left.sort_by_key(|p| p.removal_key());
        let more = rm_at_least - rm.len();
        rm.extend(left.into_iter().take(more));
    }
    rm
}

// ---------------------------------------------------------------------------------------
// Pod creation.

fn new_pod(job: &Value, index: Option<i64>, seed: u64) -> Value {
    let job_name = meta_str(job, "name");
    let ns = meta_str(job, "namespace");
    let uid = meta_str(job, "uid");
    let template = job.pointer("/spec/template").unwrap_or(&Value::Null);
    let tmeta = template.get("metadata").unwrap_or(&Value::Null);

    let mut labels = tmeta
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, job_name),
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, job_name),
    ] {
        labels
            .entry(k.to_string())
            .or_insert_with(|| Value::String(v.to_string()));
    }
    let mut annotations = tmeta
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut finalizers: Vec<Value> = tmeta
        .get("finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !finalizers
        .iter()
        .any(|f| f.as_str() == Some(TRACKING_FINALIZER))
    {
        finalizers.push(Value::String(TRACKING_FINALIZER.to_string()));
    }
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));

    let base = match index {
        Some(ix) => {
            let suffix = format!("-{ix}-");
            let keep = MAX_GENERATED_NAME.saturating_sub(suffix.len());
            let prefix: String = job_name.chars().take(keep).collect();
            format!("{prefix}{suffix}")
        }
        None => format!("{job_name}-"),
    };
    if let Some(ix) = index {
        annotations.insert(COMPLETION_INDEX.to_string(), Value::String(ix.to_string()));
        labels.insert(COMPLETION_INDEX.to_string(), Value::String(ix.to_string()));
        if let Some(obj) = spec.as_object_mut() {
            obj.insert(
                "hostname".to_string(),
                Value::String(format!("{job_name}-{ix}")),
            );
            for list in ["initContainers", "containers"] {
                if let Some(cs) = obj.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        add_index_env(c);
                    }
                }
            }
        }
    }

    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(generated_name(&base, seed)));
    metadata.insert("generateName".into(), Value::String(base));
    metadata.insert("namespace".into(), Value::String(ns.to_string()));
    metadata.insert("labels".into(), Value::Object(labels));
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    metadata.insert("finalizers".into(), Value::Array(finalizers));
    metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": Value::Object(metadata),
        "spec": spec,
    })
}

fn add_index_env(container: &mut Value) {
    let Some(c) = container.as_object_mut() else {
        return;
    };
    let env = c.entry("env").or_insert_with(|| Value::Array(Vec::new()));
    let Some(env) = env.as_array_mut() else {
        return;
    };
    if env
        .iter()
        .any(|e| e.get("name").and_then(Value::as_str) == Some("JOB_COMPLETION_INDEX"))
    {
        return;
    }
    env.push(json!({
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.labels['{COMPLETION_INDEX}']")}},
    }));
}

// ---------------------------------------------------------------------------------------
// Reconcile.

/// What the job is heading to, before every pod is accounted for.
struct Finish {
    success: bool,
    reason: String,
    message: String,
    /// The interim condition (`FailureTarget`/`SuccessCriteriaMet`) is already recorded.
    recorded: bool,
}

/// Reconciles one Job against the pods of its namespace at `now`.
pub fn reconcile(job: &Value, pods: &[Value], now: Timestamp) -> JobPlan {
    let mut plan = JobPlan::default();
    let ns = meta_str(job, "namespace");
    let uid = meta_str(job, "uid");
    if let Some(m) = job.pointer("/spec/managedBy").and_then(Value::as_str)
        && m != MANAGED_BY
    {
        return plan;
    }
    let spec = Spec::of(job);
    let selector = job.pointer("/spec/selector");
    let all: Vec<Pod<'_>> = pods
        .iter()
        .filter(|p| controlled_by(p, uid))
        .filter(|p| {
            selector.is_none_or(|s| {
                s.is_null()
                    || selector_matches(s, p.pointer("/metadata/labels").and_then(Value::as_object))
            })
        })
        .map(Pod::of)
        .collect();

    // A finished or deleted job only lets go of its pods (and expires).
    let finished_job = finished(job);
    let deleting = job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if finished_job.is_some() || deleting {
        for p in all.iter().filter(|p| p.finalizer) {
            plan.actions.push(without_finalizer(p.obj));
        }
        if let (Some((_, at)), Some(ttl), false) = (finished_job, spec.ttl, deleting) {
            let at = at.or_else(|| parse_time(job.pointer("/status/completionTime")));
            if let Some(at) = at {
                let expire = at.checked_add(SignedDuration::from_secs(ttl)).unwrap_or(at);
                if now >= expire {
                    plan.actions.push(Action::Delete {
                        kind: JOBS,
                        namespace: ns.to_string(),
                        name: meta_str(job, "name").to_string(),
                        uid: Some(uid.to_string()).filter(|u| !u.is_empty()),
                        propagation: Some("Background"),
                    });
                } else {
                    plan.requeue(to_duration(expire.duration_since(now)));
                }
            }
        }
        return plan;
    }

    let old_status = job.get("status").cloned().unwrap_or_else(|| json!({}));
    let int = |f: &str| old_status.get(f).and_then(Value::as_i64).unwrap_or(0);
    let mut counted_succeeded = int("succeeded");
    let mut counted_failed = int("failed");
    let mut unc_succeeded = uid_list(old_status.pointer("/uncountedTerminatedPods/succeeded"));
    let mut unc_failed = uid_list(old_status.pointer("/uncountedTerminatedPods/failed"));

    // Uncounted pods whose finalizer is gone are counted now.
    let with_finalizer: HashSet<&str> = all.iter().filter(|p| p.finalizer).map(|p| p.uid).collect();
    unc_succeeded.retain(|u| {
        let keep = with_finalizer.contains(u.as_str());
        if !keep {
            counted_succeeded += 1;
        }
        keep
    });
    unc_failed.retain(|u| {
        let keep = with_finalizer.contains(u.as_str());
        if !keep {
            counted_failed += 1;
        }
        keep
    });

    let active_pods: Vec<&Pod<'_>> = all.iter().filter(|p| p.active()).collect();
    let mut active = active_pods.len() as i64;
    let mut ready = active_pods.iter().filter(|p| p.ready).count() as i64;
    let mut terminating = all.iter().filter(|p| p.terminating()).count() as i64;

    // Newly finished pods, not yet in the status.
    let countable = |p: &&Pod<'_>| {
        p.finalizer
            && (!spec.indexed || p.valid_index(&spec).is_some())
            && !unc_succeeded.iter().any(|u| u == p.uid)
            && !unc_failed.iter().any(|u| u == p.uid)
    };
    let new_succeeded = all
        .iter()
        .filter(countable)
        .filter(|p| p.phase == "Succeeded")
        .count() as i64;
    let new_failed = all
        .iter()
        .filter(countable)
        .filter(|p| p.failed(&spec))
        .count() as i64;
    let mut succeeded = counted_succeeded + new_succeeded + unc_succeeded.len() as i64;
    let failed = counted_failed + new_failed + unc_failed.len() as i64;

    let completions = spec.completions;
    let prev_indexes = Intervals::parse(
        old_status
            .get("completedIndexes")
            .and_then(Value::as_str)
            .unwrap_or(""),
        completions.unwrap_or(0),
    );
    let mut indexes = prev_indexes.clone();
    if spec.indexed {
        indexes = prev_indexes.with(
            all.iter()
                .filter(|p| p.phase == "Succeeded" && p.finalizer)
                .filter_map(|p| p.valid_index(&spec)),
        );
        succeeded = indexes.total();
    }

    let mut start_time = parse_time(old_status.get("startTime"));
    if start_time.is_none() && !spec.suspend {
        start_time = Some(now);
    }

    // Is the job heading for an end?
    let mut finish: Option<Finish> = None;
    if let Some(c) = true_condition(job, "SuccessCriteriaMet") {
        finish = Some(Finish {
            success: true,
            reason: str_field(c, "reason"),
            message: str_field(c, "message"),
            recorded: true,
        });
    } else if let Some(c) = true_condition(job, "FailureTarget") {
        finish = Some(Finish {
            success: false,
            reason: str_field(c, "reason"),
            message: str_field(c, "message"),
            recorded: true,
        });
    }
    if finish.is_none() {
        let restarts_exceeded = spec.restart_on_failure && {
            let restarts: i64 = all
                .iter()
                .filter(|p| p.phase == "Running" || p.phase == "Pending")
                .map(Pod::restarts)
                .sum();
            if spec.backoff_limit == 0 {
                restarts > 0
            } else {
                restarts >= spec.backoff_limit
            }
        };
        let deadline = match (spec.active_deadline, start_time, spec.suspend) {
            (Some(ads), Some(start), false) => {
                start.checked_add(SignedDuration::from_secs(ads)).ok()
            }
            _ => None,
        };
        if failed > spec.backoff_limit || restarts_exceeded {
            finish = Some(Finish {
                success: false,
                reason: "BackoffLimitExceeded".into(),
                message: "Job has reached the specified backoff limit".into(),
                recorded: false,
            });
        } else if let Some(deadline) = deadline {
            if now >= deadline {
                finish = Some(Finish {
                    success: false,
                    reason: "DeadlineExceeded".into(),
                    message: "Job was active longer than specified deadline".into(),
                    recorded: false,
                });
            } else {
                plan.requeue(to_duration(deadline.duration_since(now)));
            }
        }
    }

    let old_conditions: Vec<Value> = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut conditions = old_conditions.clone();
    let mut create_actions: Vec<Action> = Vec::new();
    let mut remove_actions: Vec<Action> = Vec::new();
    let mut after_status: Vec<Action> = Vec::new();
    let mut events_after: Vec<Action> = Vec::new();
    // Pods already handled by a deletion that removes their finalizer first.
    let mut released: HashSet<&str> = HashSet::new();
    // Active pods deleted because the job is ending (counted, then deleted).
    let mut ending_deletes: Vec<&Pod<'_>> = Vec::new();

    if finish.is_some() {
        ending_deletes = active_pods.clone();
        active = 0;
        terminating += ending_deletes.len() as i64;
        ready = 0;
    } else {
        let release = |p: &Pod<'_>, acts: &mut Vec<Action>| {
            if p.finalizer {
                acts.push(without_finalizer(p.obj));
            }
            acts.push(delete_pod(p, ns));
        };
        if spec.suspend {
            for p in &active_pods {
                release(p, &mut remove_actions);
                released.insert(p.uid);
            }
            terminating += active;
            active = 0;
            ready = 0;
        } else {
            let want = match completions {
                None if succeeded > 0 => active,
                None => spec.parallelism,
                Some(c) => (c - succeeded).clamp(0, spec.parallelism),
            };
            let rm_at_least = usize::try_from(active - want).unwrap_or(0);
            let mut to_remove = pods_for_removal(&active_pods, &spec, rm_at_least);
            to_remove.truncate(MAX_CREATE_DELETE_PER_SYNC as usize);
            if !to_remove.is_empty() {
                for p in &to_remove {
                    release(p, &mut remove_actions);
                    released.insert(p.uid);
                    if p.ready {
                        ready -= 1;
                    }
                }
                active -= to_remove.len() as i64;
                terminating += to_remove.len() as i64;
            } else {
                let held = if spec.only_replace_failed {
                    terminating
                } else {
                    0
                };
                let mut diff = (want - held - active).min(MAX_CREATE_DELETE_PER_SYNC);
                if diff > 0 {
                    let wait = backoff_remaining(&all, &spec, now);
                    if !wait.is_zero() {
                        plan.requeue(wait);
                        diff = 0;
                    }
                }
                if diff > 0 {
                    let slots: Vec<Option<i64>> = match (spec.indexed, completions) {
                        (true, Some(c)) => pending_indexes(&indexes, &all, &spec, diff, c)
                            .into_iter()
                            .map(Some)
                            .collect(),
                        _ => (0..diff).map(|_| None).collect(),
                    };
                    let nanos = now.as_nanosecond().to_le_bytes();
                    let count = (all.len() as u64).to_le_bytes();
                    for (n, ix) in slots.iter().enumerate() {
                        let seed =
                            hash(&[uid.as_bytes(), &nanos, &count, &(n as u64).to_le_bytes()]);
                        let pod = new_pod(job, *ix, seed);
                        let pod_name = meta_str(&pod, "name").to_string();
                        create_actions.push(Action::Create {
                            kind: PODS,
                            namespace: ns.to_string(),
                            object: pod,
                        });
                        create_actions.push(event(
                            job,
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created pod: {pod_name}"),
                        ));
                    }
                    active += slots.len() as i64;
                }
            }
        }

        let complete = match completions {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= c && active == 0,
        };
        if complete {
            finish = Some(Finish {
                success: true,
                reason: "CompletionsReached".into(),
                message: "Reached expected number of succeeded pods".into(),
                recorded: false,
            });
        } else if spec.suspend {
            if ensure_condition(
                &mut conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                events_after.push(event(job, "Normal", "Suspended", "Job suspended".into()));
            }
        } else if ensure_condition(
            &mut conditions,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        ) {
            events_after.push(event(job, "Normal", "Resumed", "Job resumed".into()));
            // activeDeadlineSeconds counts from the resumption.
            start_time = Some(now);
        }
    }

    // Track finished pods: record them, then (after the status write) drop their finalizer.
    let finishing_failed = finish.as_ref().is_some_and(|f| !f.success);
    let mut new_indexes: Vec<i64> = Vec::new();
    for p in all
        .iter()
        .filter(|p| p.finalizer && !released.contains(p.uid))
    {
        let considered_failed = p.failed(&spec);
        if !(finish.is_some() || p.phase == "Succeeded" || considered_failed) {
            continue;
        }
        after_status.push(without_finalizer(p.obj));
        let in_failed = unc_failed.iter().any(|u| u == p.uid);
        if p.phase == "Succeeded" && !in_failed {
            if spec.indexed {
                if let Some(ix) = p.valid_index(&spec)
                    && !prev_indexes.has(ix)
                {
                    new_indexes.push(ix);
                }
            } else if !unc_succeeded.iter().any(|u| u == p.uid) {
                unc_succeeded.push(p.uid.to_string());
            }
        } else if (considered_failed || finishing_failed)
            && !in_failed
            && (!spec.indexed || p.valid_index(&spec).is_some())
        {
            unc_failed.push(p.uid.to_string());
        }
    }
    for p in &ending_deletes {
        after_status.push(delete_pod(p, ns));
    }
    if spec.indexed {
        indexes = prev_indexes.with(new_indexes);
        succeeded = indexes.total();
    }

    // Conditions: the interim one first, the final one once every pod is accounted for.
    let mut final_cond: Option<(&'static str, String, String)> = None;
    if let Some(f) = &finish {
        let (interim, fin) = if f.success {
            ("SuccessCriteriaMet", "Complete")
        } else {
            ("FailureTarget", "Failed")
        };
        if !f.recorded {
            ensure_condition(&mut conditions, interim, "True", &f.reason, &f.message, now);
        }
        final_cond = Some((fin, f.reason.clone(), f.message.clone()));
    }
    let mut completion_time = parse_time(old_status.get("completionTime"));
    let all_accounted = unc_succeeded.is_empty()
        && unc_failed.is_empty()
        && after_status.is_empty()
        && terminating == 0;
    if let Some((fin, reason, message)) = final_cond.filter(|_| all_accounted) {
        ensure_condition(&mut conditions, fin, "True", &reason, &message, now);
        if fin == "Complete" {
            completion_time = Some(now);
            if completions.is_some_and(|c| counted_succeeded > c) {
                events_after.push(event(
                    job,
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached".into(),
                ));
            }
            events_after.push(event(job, "Normal", "Completed", "Job completed".into()));
        } else {
            events_after.push(event(job, "Warning", &reason, message));
        }
    }

    // The new status.
    let mut status = old_status.as_object().cloned().unwrap_or_default();
    if let Some(t) = start_time {
        status.insert("startTime".into(), Value::String(rfc3339(t)));
    }
    status.insert("active".into(), json!(active));
    status.insert("ready".into(), json!(ready));
    status.insert("terminating".into(), json!(terminating));
    status.insert(
        "succeeded".into(),
        json!(if spec.indexed {
            succeeded
        } else {
            counted_succeeded
        }),
    );
    status.insert("failed".into(), json!(counted_failed));
    let mut unc = Map::new();
    if !unc_succeeded.is_empty() {
        unc.insert("succeeded".into(), json!(unc_succeeded));
    }
    if !unc_failed.is_empty() {
        unc.insert("failed".into(), json!(unc_failed));
    }
    status.insert("uncountedTerminatedPods".into(), Value::Object(unc));
    if spec.indexed {
        let s = indexes.to_string();
        if s.is_empty() {
            status.remove("completedIndexes");
        } else {
            status.insert("completedIndexes".into(), Value::String(s));
        }
    }
    if conditions.is_empty() {
        status.remove("conditions");
    } else {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if let Some(t) = completion_time {
        status.insert("completionTime".into(), Value::String(rfc3339(t)));
    }
    let status = Value::Object(status);

    plan.actions.extend(create_actions);
    plan.actions.extend(remove_actions);
    if status != old_status {
        let mut obj = job.clone();
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), status);
        }
        plan.actions.push(Action::UpdateStatus {
            kind: JOBS,
            namespace: ns.to_string(),
            object: obj,
        });
    }
    plan.actions.extend(after_status);
    plan.actions.extend(events_after);
    plan
}

fn str_field(v: &Value, f: &str) -> String {
    v.get(f).and_then(Value::as_str).unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A simulated namespace: applies actions the way kube-apiserver would (resourceVersion
    /// preconditions, finalizers delaying deletion).
    struct World {
        job: Option<Value>,
        pods: Vec<Value>,
        now: Timestamp,
        rv: u64,
        uids: u64,
        events: Vec<(String, String)>,
        created: usize,
        last: JobPlan,
    }

    impl World {
        fn new(job: Value) -> World {
            let mut w = World {
                job: None,
                pods: Vec::new(),
                now: ts("2024-01-01T00:00:00Z"),
                rv: 1,
                uids: 0,
                events: Vec::new(),
                created: 0,
                last: JobPlan::default(),
            };
            let mut job = job;
            job["metadata"]["resourceVersion"] = json!("1");
            job["metadata"]["creationTimestamp"] = json!(rfc3339(w.now));
            w.job = Some(job);
            w
        }

        fn job(&self) -> &Value {
            self.job.as_ref().unwrap()
        }

        fn bump(&mut self) -> String {
            self.rv += 1;
            self.rv.to_string()
        }

        fn step(&mut self) -> JobPlan {
            let plan = reconcile(self.job(), &self.pods, self.now);
            for a in &plan.actions {
                self.apply(a);
            }
            self.last = plan.clone();
            plan
        }

        /// Reconciles until nothing is left to do.
        fn settle(&mut self) {
            for _ in 0..20 {
                if self.job.is_none() || self.step().actions.is_empty() {
                    return;
                }
            }
            panic!("did not settle: {:#?}", self.last);
        }

        fn apply(&mut self, a: &Action) {
            match a {
                Action::Create { kind, object, .. } => {
                    assert_eq!(*kind, PODS);
                    let mut o = object.clone();
                    let name = meta_str(&o, "name").to_string();
                    assert!(self.pods.iter().all(|p| meta_str(p, "name") != name));
                    self.uids += 1;
                    o["metadata"]["uid"] = json!(format!("pod-uid-{}", self.uids));
                    o["metadata"]["resourceVersion"] = json!(self.bump());
                    o["metadata"]["creationTimestamp"] = json!(rfc3339(self.now));
                    o["status"] = json!({"phase": "Pending"});
                    self.created += 1;
                    self.pods.push(o);
                }
                Action::Update { kind, object, .. } => {
                    assert_eq!(*kind, PODS);
                    let name = meta_str(object, "name");
                    let i = self
                        .pods
                        .iter()
                        .position(|p| meta_str(p, "name") == name)
                        .expect("pod exists");
                    assert_eq!(
                        meta_str(&self.pods[i], "resourceVersion"),
                        meta_str(object, "resourceVersion"),
                        "stale pod update"
                    );
                    let mut o = object.clone();
                    o["metadata"]["resourceVersion"] = json!(self.bump());
                    let gone = o.pointer("/metadata/deletionTimestamp").is_some()
                        && o["metadata"]["finalizers"]
                            .as_array()
                            .is_none_or(|f| f.is_empty());
                    if gone {
                        self.pods.remove(i);
                    } else {
                        self.pods[i] = o;
                    }
                }
                Action::UpdateStatus { kind, object, .. } => {
                    assert_eq!(*kind, JOBS);
                    assert_eq!(
                        meta_str(self.job(), "resourceVersion"),
                        meta_str(object, "resourceVersion"),
                        "stale job status update"
                    );
                    let rv = self.bump();
                    let job = self.job.as_mut().unwrap();
                    job["status"] = object["status"].clone();
                    job["metadata"]["resourceVersion"] = json!(rv);
                }
                Action::Delete {
                    kind, name, uid, ..
                } => {
                    if *kind == JOBS {
                        assert_eq!(uid.as_deref(), Some(meta_str(self.job(), "uid")));
                        self.job = None;
                        return;
                    }
                    let Some(i) = self.pods.iter().position(|p| meta_str(p, "name") == name) else {
                        return;
                    };
                    let has_finalizers = self.pods[i]["metadata"]["finalizers"]
                        .as_array()
                        .is_some_and(|f| !f.is_empty());
                    if has_finalizers {
                        let rv = self.bump();
                        self.pods[i]["metadata"]["deletionTimestamp"] = json!(rfc3339(self.now));
                        self.pods[i]["metadata"]["resourceVersion"] = json!(rv);
                    } else {
                        self.pods.remove(i);
                    }
                }
                Action::Bind { .. } | Action::DeleteNow { .. } => panic!("unexpected {a:?}"),
                Action::Event {
                    reason,
                    message,
                    source,
                    ..
                } => {
                    assert_eq!(*source, "job-controller");
                    self.events.push((reason.clone(), message.clone()));
                }
            }
        }

        fn set_phase(&mut self, name: &str, phase: &str) {
            let now = rfc3339(self.now);
            let rv = self.bump();
            let p = self
                .pods
                .iter_mut()
                .find(|p| meta_str(p, "name") == name)
                .unwrap();
            p["status"] = json!({
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
            });
            p["metadata"]["resourceVersion"] = json!(rv);
        }

        fn set_running(&mut self, name: &str) {
            let rv = self.bump();
            let p = self
                .pods
                .iter_mut()
                .find(|p| meta_str(p, "name") == name)
                .unwrap();
            p["status"] = json!({
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            });
            p["metadata"]["resourceVersion"] = json!(rv);
        }

        fn active_names(&self) -> Vec<String> {
            self.pods
                .iter()
                .filter(|p| Pod::of(p).active())
                .map(|p| meta_str(p, "name").to_string())
                .collect()
        }

        fn advance(&mut self, secs: i64) {
            self.now = self
                .now
                .checked_add(SignedDuration::from_secs(secs))
                .unwrap();
        }

        fn status(&self, f: &str) -> Value {
            self.job()["status"].get(f).cloned().unwrap_or(Value::Null)
        }

        fn condition(&self, t: &str) -> Option<(String, String)> {
            self.job()["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == t)
                .map(|c| {
                    (
                        c["status"].as_str().unwrap().to_string(),
                        c["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
        }

        fn condition_types(&self) -> Vec<String> {
            self.job()["status"]["conditions"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| c["type"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        }

        fn has_event(&self, reason: &str) -> bool {
            self.events.iter().any(|(r, _)| r == reason)
        }
    }

    fn job(extra: Value) -> Value {
        let mut j = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "job-uid"},
            "spec": {
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
                "template": {
                    "metadata": {"labels": {"app": "pi", "batch.kubernetes.io/controller-uid": "job-uid"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}
                }
            }
        });
        for (k, v) in extra.as_object().unwrap() {
            j["spec"][k] = v.clone();
        }
        j
    }

    #[test]
    fn completions_three_parallelism_two_completes() {
        let mut w = World::new(job(json!({"completions": 3, "parallelism": 2})));
        w.settle();
        let first = w.active_names();
        assert_eq!(first.len(), 2);
        assert_eq!(w.status("active"), json!(2));
        assert_eq!(w.status("startTime"), json!("2024-01-01T00:00:00Z"));
        let pod = &w.pods[0];
        assert_eq!(pod["metadata"]["generateName"], "pi-");
        assert!(meta_str(pod, "name").starts_with("pi-") && meta_str(pod, "name").len() == 8);
        assert_eq!(pod["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(pod["metadata"]["labels"]["controller-uid"], "job-uid");
        assert_eq!(
            pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "pi"
        );
        assert_eq!(pod["metadata"]["labels"]["app"], "pi");
        assert_eq!(pod["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            w.events[0],
            (
                "SuccessfulCreate".to_string(),
                format!("Created pod: {}", first[0])
            )
        );

        w.set_running(&first[0]);
        w.set_running(&first[1]);
        w.settle();
        assert_eq!(w.status("ready"), json!(2));

        w.advance(5);
        w.set_phase(&first[0], "Succeeded");
        w.settle();
        // The succeeded pod is counted, its finalizer gone, and a third pod started.
        assert_eq!(w.status("succeeded"), json!(1));
        assert_eq!(w.status("uncountedTerminatedPods"), json!({}));
        assert_eq!(w.active_names().len(), 2);
        assert_eq!(w.created, 3);
        let done = w
            .pods
            .iter()
            .find(|p| meta_str(p, "name") == first[0])
            .unwrap();
        assert_eq!(done["metadata"]["finalizers"], json!([]));

        for name in w.active_names() {
            w.set_phase(&name, "Succeeded");
        }
        w.advance(5);
        // Step by step: record uncounted, then count, then finish.
        w.step();
        assert_eq!(
            w.job()["status"]["uncountedTerminatedPods"]["succeeded"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            w.condition("SuccessCriteriaMet"),
            Some(("True".into(), "CompletionsReached".into()))
        );
        assert_eq!(w.condition("Complete"), None);
        w.settle();
        assert_eq!(w.condition_types(), vec!["SuccessCriteriaMet", "Complete"]);
        assert_eq!(w.status("succeeded"), json!(3));
        assert_eq!(w.status("active"), json!(0));
        assert_eq!(w.status("completionTime"), json!("2024-01-01T00:00:10Z"));
        assert_eq!(w.created, 3);
        assert!(w.has_event("Completed"));
        assert!(
            w.events
                .contains(&("Completed".into(), "Job completed".into()))
        );
        // Idempotent once finished.
        assert!(w.step().actions.is_empty());
    }

    #[test]
    fn backoff_limit_with_exponential_backoff() {
        let mut w = World::new(job(json!({"backoffLimit": 2})));
        w.settle();
        let mut failures = 0;
        let mut waits = Vec::new();
        loop {
            let pods = w.active_names();
            if pods.is_empty() {
                break;
            }
            w.advance(1);
            w.set_phase(&pods[0], "Failed");
            failures += 1;
            w.settle();
            if w.condition("Failed").is_some() {
                break;
            }
            // Nothing re-created before the backoff passed.
            assert!(w.active_names().is_empty());
            let wait = w.last.requeue_after.expect("requeue for backoff");
            waits.push(wait.as_secs());
            w.advance(wait.as_secs() as i64);
            w.settle();
            assert_eq!(w.active_names().len(), 1);
        }
        assert_eq!(failures, 3);
        assert_eq!(waits, vec![10, 20]);
        assert_eq!(w.status("failed"), json!(3));
        assert_eq!(
            w.condition("FailureTarget"),
            Some(("True".into(), "BackoffLimitExceeded".into()))
        );
        assert_eq!(
            w.condition("Failed"),
            Some(("True".into(), "BackoffLimitExceeded".into()))
        );
        assert_eq!(w.condition_types(), vec!["FailureTarget", "Failed"]);
        assert!(w.events.contains(&(
            "BackoffLimitExceeded".into(),
            "Job has reached the specified backoff limit".into()
        )));
        assert!(
            w.pods
                .iter()
                .all(|p| p["metadata"]["finalizers"] == json!([]))
        );
        assert!(w.step().actions.is_empty());
    }

    #[test]
    fn backoff_is_capped() {
        let j = job(json!({}));
        let spec = Spec::of(&j);
        let now = ts("2024-01-01T01:00:00Z");
        let failed: Vec<Value> = (0..10)
            .map(|i| {
                json!({"metadata": {"name": format!("p{i}"), "uid": format!("u{i}")},
                       "status": {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False",
                                  "lastTransitionTime": "2024-01-01T01:00:00Z"}]}})
            })
            .collect();
        let pods: Vec<Pod<'_>> = failed.iter().map(Pod::of).collect();
        assert_eq!(
            backoff_remaining(&pods, &spec, now),
            Duration::from_secs(360)
        );
        assert_eq!(
            backoff_remaining(&pods[..1], &spec, now),
            Duration::from_secs(10)
        );
        assert_eq!(
            backoff_remaining(&pods[..3], &spec, now),
            Duration::from_secs(40)
        );
    }

    #[test]
    fn indexed_job_indexes() {
        let mut w = World::new(job(
            json!({"completions": 4, "parallelism": 3, "completionMode": "Indexed"}),
        ));
        w.settle();
        let idx = |p: &Value| {
            p["metadata"]["annotations"][COMPLETION_INDEX]
                .as_str()
                .unwrap()
                .to_string()
        };
        let mut got: Vec<String> = w.pods.iter().map(idx).collect();
        got.sort();
        assert_eq!(got, vec!["0", "1", "2"]);
        let p1 = w.pods.iter().find(|p| idx(p) == "1").unwrap().clone();
        assert_eq!(p1["metadata"]["labels"][COMPLETION_INDEX], "1");
        assert_eq!(p1["metadata"]["generateName"], "pi-1-");
        assert_eq!(p1["spec"]["hostname"], "pi-1");
        assert_eq!(
            p1["spec"]["containers"][0]["env"][0],
            json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}})
        );
        let name_of = |w: &World, i: &str| {
            meta_str(
                w.pods
                    .iter()
                    .find(|p| idx(p) == i && Pod::of(p).active())
                    .unwrap(),
                "name",
            )
            .to_string()
        };
        let (n0, n1, n2) = (name_of(&w, "0"), name_of(&w, "1"), name_of(&w, "2"));
        w.set_phase(&n0, "Succeeded");
        w.set_phase(&n2, "Succeeded");
        w.settle();
        assert_eq!(w.status("completedIndexes"), json!("0,2"));
        assert_eq!(w.status("succeeded"), json!(2));
        // Index 3 started; index 1 still running.
        let mut active: Vec<String> = w
            .pods
            .iter()
            .filter(|p| Pod::of(p).active())
            .map(idx)
            .collect();
        active.sort();
        assert_eq!(active, vec!["1", "3"]);

        w.advance(1);
        w.set_phase(&n1, "Failed");
        w.settle();
        assert_eq!(w.status("failed"), json!(1));
        let wait = w.last.requeue_after.unwrap();
        w.advance(wait.as_secs() as i64);
        w.settle();
        let n1b = name_of(&w, "1");
        assert_ne!(n1b, n1);
        w.set_phase(&n1b, "Succeeded");
        w.set_phase(&name_of(&w, "3"), "Succeeded");
        w.settle();
        assert_eq!(w.status("completedIndexes"), json!("0-3"));
        assert_eq!(w.status("succeeded"), json!(4));
        assert_eq!(
            w.condition("Complete"),
            Some(("True".into(), "CompletionsReached".into()))
        );
    }

    #[test]
    fn intervals_format() {
        let cases: &[(&[i64], &str)] = &[
            (&[], ""),
            (&[0], "0"),
            (&[0, 1], "0,1"),
            (&[0, 1, 2, 5], "0-2,5"),
            (&[1, 3, 4, 5, 7, 8], "1,3-5,7,8"),
        ];
        for (set, want) in cases {
            let iv = Intervals::default().with(set.iter().copied());
            assert_eq!(iv.to_string(), *want);
            assert_eq!(Intervals::parse(want, 100), iv);
        }
        assert_eq!(Intervals::parse("0-9", 5).to_string(), "0-4");
        assert_eq!(Intervals::parse("x,2", 5).to_string(), "2");
    }

    #[test]
    fn suspend_and_resume() {
        let mut w = World::new(job(
            json!({"suspend": true, "completions": 2, "parallelism": 2}),
        ));
        w.settle();
        assert!(w.pods.is_empty());
        assert_eq!(
            w.condition("Suspended"),
            Some(("True".into(), "JobSuspended".into()))
        );
        assert_eq!(w.status("startTime"), Value::Null);
        assert!(w.has_event("Suspended"));

        w.advance(30);
        w.job.as_mut().unwrap()["spec"]["suspend"] = json!(false);
        w.settle();
        assert_eq!(
            w.condition("Suspended"),
            Some(("False".into(), "JobResumed".into()))
        );
        assert_eq!(w.active_names().len(), 2);
        assert_eq!(w.status("startTime"), json!("2024-01-01T00:00:30Z"));
        assert!(w.has_event("Resumed"));

        // Suspending again deletes the running pods without counting them as failures.
        w.job.as_mut().unwrap()["spec"]["suspend"] = json!(true);
        w.settle();
        assert!(w.pods.is_empty());
        assert_eq!(w.status("failed"), json!(0));
        assert_eq!(w.status("active"), json!(0));
        assert_eq!(
            w.condition("Suspended"),
            Some(("True".into(), "JobSuspended".into()))
        );
        assert!(w.step().actions.is_empty());
    }

    #[test]
    fn active_deadline_fails_the_job() {
        let mut w = World::new(job(
            json!({"activeDeadlineSeconds": 30, "parallelism": 2, "completions": 4}),
        ));
        w.settle();
        assert_eq!(w.active_names().len(), 2);
        assert_eq!(w.last.requeue_after, Some(Duration::from_secs(30)));
        w.advance(30);
        w.settle();
        assert!(w.pods.is_empty());
        assert_eq!(
            w.condition("Failed"),
            Some(("True".into(), "DeadlineExceeded".into()))
        );
        assert_eq!(w.status("failed"), json!(2));
        assert!(w.events.contains(&(
            "DeadlineExceeded".into(),
            "Job was active longer than specified deadline".into()
        )));
    }

    #[test]
    fn ttl_deletes_finished_job() {
        let mut w = World::new(job(json!({"ttlSecondsAfterFinished": 60})));
        w.settle();
        let name = w.active_names()[0].clone();
        w.set_phase(&name, "Succeeded");
        w.settle();
        assert!(w.condition("Complete").is_some());
        let plan = w.step();
        assert!(plan.actions.is_empty());
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(60)));
        w.advance(59);
        assert_eq!(w.step().requeue_after, Some(Duration::from_secs(1)));
        w.advance(1);
        let plan = w.step();
        assert_eq!(
            plan.actions,
            vec![Action::Delete {
                kind: JOBS,
                namespace: "default".into(),
                name: "pi".into(),
                uid: Some("job-uid".into()),
                propagation: Some("Background"),
            }]
        );
        assert!(w.job.is_none());
    }

    #[test]
    fn pods_of_other_owners_are_ignored() {
        let j = job(json!({}));
        let foreign = json!({
            "metadata": {"name": "x", "uid": "x", "namespace": "default",
                         "labels": {"batch.kubernetes.io/controller-uid": "job-uid"},
                         "ownerReferences": [{"uid": "other", "controller": true}]},
            "status": {"phase": "Running"}
        });
        let plan = reconcile(&j, &[foreign], ts("2024-01-01T00:00:00Z"));
        assert!(
            plan.actions
                .iter()
                .any(|a| matches!(a, Action::Create { .. }))
        );
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]},
                                         {"key": "b", "operator": "DoesNotExist"}]}),
            json!({"a": "1"}).as_object()
        ));
    }
}
