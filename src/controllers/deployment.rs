//! The Deployment controller's pure reconcile core: `(Deployment, ReplicaSets and pods of its
//! namespace, now) → actions`, level-triggered and idempotent, following kube-controller-
//! manager 1.33's `deployment-controller` (`sync.go`, `rolling.go`, `recreate.go`,
//! `progress.go`, `util/deployment_util.go`):
//!
//! - **claiming**: ReplicaSets are adopted and released by selector and controller reference
//!   exactly as the ReplicaSet controller claims pods.
//! - **the new ReplicaSet** is the oldest claimed one whose pod template equals the
//!   Deployment's ignoring the `pod-template-hash` label; when none exists (and the strategy
//!   allows it) `<deployment>-<hash>` is created with the template and selector labelled
//!   `pod-template-hash=<hash>`, the Deployment's annotations (except
//!   last-applied-configuration and the deployment.kubernetes.io ones) and
//!   `deployment.kubernetes.io/{revision,desired-replicas,max-replicas}`.
//! - **revisions**: the new ReplicaSet gets max(old revisions) + 1 when its revision is lower;
//!   a reused one (rollback by changing the template back, which is what
//!   `kubectl rollout undo` does) keeps its former revisions in
//!   `deployment.kubernetes.io/revision-history`. The Deployment's own
//!   `deployment.kubernetes.io/revision` annotation follows.
//! - **strategies**: RollingUpdate (maxSurge rounded up, maxUnavailable rounded down, both 0
//!   → maxUnavailable 1; new scaled up within replicas + maxSurge, old scaled down — unhealthy
//!   first — while replicas - maxUnavailable stay available, judged on the ReplicaSets'
//!   `availableReplicas`); Recreate (old scaled to 0, then once none of their pods is left
//!   but terminal ones, the new one created/scaled to replicas).
//! - **paused** and **scaling events** (an active ReplicaSet's desired-replicas annotation
//!   differs from `spec.replicas`) take upstream's `sync` path: no rollout progress, only
//!   scaling — proportional across active ReplicaSets mid-rollout (by their max-replicas
//!   annotation, leftovers to the largest) — and history cleanup.
//! - **history cleanup**: old ReplicaSets beyond `revisionHistoryLimit`, lowest revision
//!   first, only when scaled to 0 with no pods, observed, and not being deleted; on the
//!   rollout paths only once the Deployment is complete.
//! - **status**: observedGeneration, replicas, updatedReplicas, readyReplicas,
//!   availableReplicas, unavailableReplicas, collisionCount and the conditions `Available`
//!   (MinimumReplicasAvailable / MinimumReplicasUnavailable), `Progressing`
//!   (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
//!   ProgressDeadlineExceeded, DeploymentPaused, DeploymentResumed) and `ReplicaFailure`
//!   (copied from the ReplicaSets), with upstream's messages; written only when changed.
//!   That is what `kubectl rollout status` reads.
//! - **events**: `ScalingReplicaSet` from `deployment-controller` with 1.33's wording:
//!   "Scaled up replica set web-5d4f from 0 to 3", "Scaled down replica set web-7c9b from 3
//!   to 2".
//!
//! Deviations:
//! - the pod-template-hash is FNV-1a (32 bit) of the template serialized as JSON with sorted
//!   keys (and `/<collisionCount>` appended when set), written as its decimal digits mapped
//!   onto upstream's safe alphabet like upstream's `rand.SafeEncodeString`; upstream hashes
//!   Go's deep-printed struct, so the values differ from a real cluster's, but they are
//!   stable, template-determined and collision-handled the same way;
//! - one sync emits one `Update` per ReplicaSet carrying all its changes (adoption,
//!   annotations, scale), where upstream writes them one after the other;
//! - the Deployment's revision annotation is metadata, which a status write does not
//!   change here: when it must change, the Deployment is updated first and the status write
//!   that follows is sent without a resourceVersion precondition (status is this
//!   controller's alone; the runtime has one worker per controller);
//! - a Deployment being deleted only has its status recomputed (upstream also refreshes the
//!   new ReplicaSet's annotations);
//! - an empty selector gets the `SelectingAll` warning once per generation rather than on
//!   every sync;
//! - `requeue_after` tells the runtime when a progress deadline falls due (upstream's
//!   `requeueStuckDeployment`); without it the periodic resync notices within its period.

use std::cmp::Ordering;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, DEPLOYMENTS, REPLICA_SETS};
use crate::controllers::replicaset::{
    Claim, NAME_ALPHABET, claim, condition, controller_ref_to, controller_uid, creation_time,
    fnv1a32, format_time, int_at, involved, is_deleting, labels, meta, meta_map, meta_map_mut,
    omit_zero_fields, parse_time, selector_is_empty, selector_matches, semantic_eq, with_owner,
    without_owner,
};

/// The reporting component of the events.
pub const CONTROLLER_NAME: &str = "deployment-controller";
/// The revision of a ReplicaSet (and of its Deployment).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Former revisions of a ReplicaSet that was rolled back to.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when it last scaled the ReplicaSet.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when it last scaled the ReplicaSet.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label that tells the ReplicaSets (and pods) of one Deployment apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The longest revision-history annotation.
const MAX_REV_HISTORY_CHARS: usize = 2000;
/// Deployment annotations not copied onto its ReplicaSets.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

const PROGRESSING: &str = "Progressing";
const AVAILABLE: &str = "Available";
const REPLICA_FAILURE: &str = "ReplicaFailure";
const NEW_RS_REASON: &str = "NewReplicaSetCreated";
const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
const PAUSED_REASON: &str = "DeploymentPaused";
const RESUMED_REASON: &str = "DeploymentResumed";
const MIN_AVAILABLE_REASON: &str = "MinimumReplicasAvailable";
const MIN_UNAVAILABLE_REASON: &str = "MinimumReplicasUnavailable";

/// apps/v1 defaults, for objects stored without them.
const DEFAULT_REVISION_HISTORY_LIMIT: i64 = 10;
const DEFAULT_PROGRESS_DEADLINE: i64 = 600;

/// Reconciles one Deployment against the ReplicaSets and pods of its namespace.
pub fn reconcile(d: &Value, replica_sets: &[Value], pods: &[Value], now: Timestamp) -> Vec<Action> {
    if meta(d, "name").is_empty() || meta(d, "uid").is_empty() {
        return Vec::new();
    }
    let selector = d.pointer("/spec/selector").unwrap_or(&Value::Null);
    if selector_is_empty(selector) {
        return selecting_all(d);
    }
    let deleting = is_deleting(d);
    let mut s = Sync::new(d, replica_sets, now);
    let owner = controller_ref_to(d, "apps/v1", "Deployment");
    for rs in replica_sets {
        let matches = selector_matches(selector, labels(rs));
        match claim(d, deleting, rs, matches) {
            Claim::Mine => {
                s.push(rs.clone(), Some(rs.clone()));
            }
            Claim::Adopt => {
                let i = s.push(with_owner(rs, &owner), Some(rs.clone()));
                s.touch(i);
            }
            Claim::Release => s.pre.push(Action::Update {
                kind: REPLICA_SETS,
                namespace: s.ns.clone(),
                object: without_owner(rs, meta(d, "uid")),
            }),
            Claim::Ignore => {}
        }
    }
    s.find_new();
    if deleting {
        return s.finish(StatusMode::Plain);
    }
    s.sync_new_rs_annotations();
    s.check_paused_conditions();
    let mode = if s.paused() || s.is_scaling_event() {
        s.sync_scale()
    } else if s.strategy.recreate {
        s.rollout_recreate(pods)
    } else {
        s.rollout_rolling()
    };
    s.finish(mode)
}

/// When to reconcile `d` again without an event: when its progress deadline falls due
/// (upstream `requeueStuckDeployment`), judged from its stored status.
pub fn requeue_after(d: &Value, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    if paused(d) {
        return None;
    }
    let status = d.get("status").unwrap_or(&Value::Null);
    let cond = condition(d, PROGRESSING)?;
    if deployment_complete(d, status) || reason(cond) == TIMED_OUT_REASON {
        return None;
    }
    let since = cond
        .get("lastUpdateTime")
        .and_then(Value::as_str)
        .and_then(parse_time)?;
    let due = since
        .checked_add(SignedDuration::from_secs(deadline))
        .ok()?;
    let wait = due.duration_since(now).as_millis().max(0) + 1;
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)).max(Duration::from_secs(1)))
}

/// The pod-template-hash of `template` (see the module documentation).
pub fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical_json(template, &mut text);
    if let Some(c) = collision_count {
        text.push_str(&format!("/{c}"));
    }
    let alphabet = NAME_ALPHABET.len();
    fnv1a32(text.as_bytes())
        .to_string()
        .bytes()
        .map(|b| NAME_ALPHABET[usize::from(b) % alphabet] as char)
        .collect()
}

/// JSON with object keys sorted, so equal values hash equally whatever their key order.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The warning (once per generation) and observedGeneration of a Deployment selecting
/// every pod.
fn selecting_all(d: &Value) -> Vec<Action> {
    let generation = int_at(d, "/metadata/generation").unwrap_or(0);
    if int_at(d, "/status/observedGeneration").unwrap_or(0) >= generation {
        return Vec::new();
    }
    let mut object = d.clone();
    if let Some(o) = object.as_object_mut() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if !status.is_object() {
            *status = json!({});
        }
        status["observedGeneration"] = json!(generation);
    }
    vec![
        Action::Event {
            involved: involved(d, "apps/v1", "Deployment"),
            event_type: "Warning",
            reason: "SelectingAll".into(),
            message: "This deployment is selecting all pods. A non-empty selector is required."
                .into(),
            source: CONTROLLER_NAME,
        },
        Action::UpdateStatus {
            kind: DEPLOYMENTS,
            namespace: meta(d, "namespace").to_string(),
            object,
        },
    ]
}

/// `maxSurge`/`maxUnavailable`, int or percent.
#[derive(Debug, Clone)]
struct Strategy {
    recreate: bool,
    max_surge: Value,
    max_unavailable: Value,
}

impl Strategy {
    fn of(d: &Value) -> Strategy {
        let recreate = recreates(d);
        let ru = d
            .pointer("/spec/strategy/rollingUpdate")
            .unwrap_or(&Value::Null);
        let pick = |k: &str| match ru.get(k) {
            Some(v) if !v.is_null() => v.clone(),
            _ => json!("25%"),
        };
        Strategy {
            recreate,
            max_surge: pick("maxSurge"),
            max_unavailable: pick("maxUnavailable"),
        }
    }

    /// (maxSurge, maxUnavailable) for `replicas` (upstream `ResolveFenceposts`).
    fn fenceposts(&self, replicas: i64) -> (i64, i64) {
        let surge = scaled_value(&self.max_surge, replicas, true);
        let mut unavailable = scaled_value(&self.max_unavailable, replicas, false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        (surge, unavailable)
    }
}

/// An int-or-percent against `total`, percentages rounded up or down; anything invalid
/// (which validation rejects) is 0.
fn scaled_value(v: &Value, total: i64, round_up: bool) -> i64 {
    if let Some(n) = v.as_i64() {
        return n;
    }
    let Some(pct) = v
        .as_str()
        .and_then(|s| s.strip_suffix('%'))
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return 0;
    };
    let product = pct.saturating_mul(total);
    if round_up {
        product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
    } else {
        product.div_euclid(100)
    }
}

/// Whether `d` uses the Recreate strategy, the only one that looks at pods (whether old ones
/// still run).
pub fn recreates(d: &Value) -> bool {
    d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate")
}

fn paused(d: &Value) -> bool {
    d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
}

/// `progressDeadlineSeconds`, None when unset as "no deadline" (MaxInt32).
fn progress_deadline(d: &Value) -> Option<i64> {
    match d.pointer("/spec/progressDeadlineSeconds") {
        None | Some(Value::Null) => Some(DEFAULT_PROGRESS_DEADLINE),
        Some(v) => v.as_i64().filter(|s| *s != i64::from(i32::MAX)),
    }
}

fn reason(cond: &Value) -> &str {
    cond.get("reason").and_then(Value::as_str).unwrap_or("")
}

fn status_int(status: &Value, field: &str) -> i64 {
    status.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// Upstream `DeploymentComplete`: every replica updated and available, the spec observed.
fn deployment_complete(d: &Value, status: &Value) -> bool {
    let replicas = int_at(d, "/spec/replicas").unwrap_or(1);
    status_int(status, "updatedReplicas") == replicas
        && status_int(status, "replicas") == replicas
        && status_int(status, "availableReplicas") == replicas
        && status_int(status, "observedGeneration")
            >= int_at(d, "/metadata/generation").unwrap_or(0)
}

/// Upstream `DeploymentProgressing`: any count moved the right way since `old`.
fn deployment_progressing(old: &Value, new: &Value) -> bool {
    let old_old = status_int(old, "replicas") - status_int(old, "updatedReplicas");
    let new_old = status_int(new, "replicas") - status_int(new, "updatedReplicas");
    status_int(new, "updatedReplicas") > status_int(old, "updatedReplicas")
        || new_old < old_old
        || status_int(new, "readyReplicas") > status_int(old, "readyReplicas")
        || status_int(new, "availableReplicas") > status_int(old, "availableReplicas")
}

fn new_condition(kind: &str, status: &str, reason: &str, message: String, now: Timestamp) -> Value {
    let t = format_time(now);
    json!({
        "type": kind,
        "status": status,
        "lastUpdateTime": t,
        "lastTransitionTime": t,
        "reason": reason,
        "message": message,
    })
}

fn find_condition<'c>(conds: &'c [Value], kind: &str) -> Option<&'c Value> {
    conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// Upstream `SetDeploymentCondition`: same status and reason → unchanged; same status →
/// keeps lastTransitionTime; the condition moves to the end.
fn set_condition(conds: &mut Vec<Value>, mut cond: Value) {
    let kind = cond.get("type").cloned().unwrap_or(Value::Null);
    if let Some(cur) = conds.iter().find(|c| c.get("type") == Some(&kind)) {
        if cur.get("status") == cond.get("status") && cur.get("reason") == cond.get("reason") {
            return;
        }
        if cur.get("status") == cond.get("status")
            && let Some(ltt) = cur.get("lastTransitionTime")
        {
            cond["lastTransitionTime"] = ltt.clone();
        }
    }
    conds.retain(|c| c.get("type") != Some(&kind));
    conds.push(cond);
}

fn remove_condition(conds: &mut Vec<Value>, kind: &str) {
    conds.retain(|c| c.get("type").and_then(Value::as_str) != Some(kind));
}

fn annotation<'v>(obj: &'v Value, key: &str) -> Option<&'v str> {
    meta_map(obj, "annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION_ANNOTATION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Sets `annotations[key] = value`; whether it changed.
fn set_annotation(obj: &mut Value, key: &str, value: &str) -> bool {
    let Some(ann) = meta_map_mut(obj, "annotations") else {
        return false;
    };
    if ann.get(key).and_then(Value::as_str) == Some(value) {
        return false;
    }
    ann.insert(key.into(), json!(value));
    true
}

/// Upstream `SetReplicasAnnotations`.
fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let a = set_annotation(rs, DESIRED_REPLICAS_ANNOTATION, &desired.to_string());
    let b = set_annotation(rs, MAX_REPLICAS_ANNOTATION, &max.to_string());
    a || b
}

/// Templates equal once the pod-template-hash label is ignored.
fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(l) = t
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            l.remove(POD_TEMPLATE_HASH_LABEL);
        }
        t
    };
    semantic_eq(&strip(a), &strip(b))
}

/// Whether the status is written plainly (`syncDeploymentStatus`) or with the rollout's
/// Progressing bookkeeping (`syncRolloutStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusMode {
    Plain,
    Rollout,
}

/// One claimed ReplicaSet as this sync changes it.
struct Rs {
    obj: Value,
    /// The snapshot; None for the one this sync creates.
    orig: Option<Value>,
    /// ScalingReplicaSet messages about it.
    events: Vec<String>,
}

/// The working state of one sync.
struct Sync<'a> {
    d: &'a Value,
    all: &'a [Value],
    now: Timestamp,
    ns: String,
    replicas: i64,
    strategy: Strategy,
    rss: Vec<Rs>,
    /// ReplicaSets to write, in the order they were first changed.
    touched: Vec<usize>,
    new: Option<usize>,
    conditions: Vec<Value>,
    collision_count: Option<i64>,
    /// Releases, written first.
    pre: Vec<Action>,
    /// History cleanup, written after the ReplicaSet updates.
    deletes: Vec<Action>,
    /// The revision annotation the Deployment should carry.
    revision: Option<String>,
}

impl<'a> Sync<'a> {
    fn new(d: &'a Value, all: &'a [Value], now: Timestamp) -> Sync<'a> {
        Sync {
            d,
            all,
            now,
            ns: meta(d, "namespace").to_string(),
            replicas: int_at(d, "/spec/replicas").unwrap_or(1).max(0),
            strategy: Strategy::of(d),
            rss: Vec::new(),
            touched: Vec::new(),
            new: None,
            conditions: d
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            collision_count: int_at(d, "/status/collisionCount"),
            pre: Vec::new(),
            deletes: Vec::new(),
            revision: None,
        }
    }

    fn push(&mut self, obj: Value, orig: Option<Value>) -> usize {
        self.rss.push(Rs {
            obj,
            orig,
            events: Vec::new(),
        });
        self.rss.len() - 1
    }

    fn touch(&mut self, i: usize) {
        if !self.touched.contains(&i) {
            self.touched.push(i);
        }
    }

    fn paused(&self) -> bool {
        paused(self.d)
    }

    fn spec(&self, i: usize) -> i64 {
        int_at(&self.rss[i].obj, "/spec/replicas").unwrap_or(1)
    }

    fn status_of(&self, i: usize, field: &str) -> i64 {
        int_at(&self.rss[i].obj, &format!("/status/{field}")).unwrap_or(0)
    }

    fn name_of(&self, i: usize) -> &str {
        meta(&self.rss[i].obj, "name")
    }

    fn old(&self) -> Vec<usize> {
        (0..self.rss.len())
            .filter(|i| Some(*i) != self.new)
            .collect()
    }

    fn all_idx(&self) -> Vec<usize> {
        (0..self.rss.len()).collect()
    }

    fn sum_spec(&self, idx: &[usize]) -> i64 {
        idx.iter().map(|i| self.spec(*i)).sum()
    }

    fn sum_status(&self, idx: &[usize], field: &str) -> i64 {
        idx.iter().map(|i| self.status_of(*i, field)).sum()
    }

    fn max_surge(&self) -> i64 {
        if self.strategy.recreate {
            return 0;
        }
        self.strategy.fenceposts(self.replicas).0
    }

    fn max_unavailable(&self) -> i64 {
        if self.strategy.recreate || self.replicas == 0 {
            return 0;
        }
        self.strategy.fenceposts(self.replicas).1.min(self.replicas)
    }

    fn creation(&self, i: usize) -> Timestamp {
        creation_time(&self.rss[i].obj).unwrap_or(Timestamp::MIN)
    }

    /// Oldest first, then by name (upstream `ReplicaSetsByCreationTimestamp`).
    fn by_creation(&self, a: usize, b: usize) -> Ordering {
        self.creation(a)
            .cmp(&self.creation(b))
            .then_with(|| self.name_of(a).cmp(self.name_of(b)))
    }

    fn find_new(&mut self) {
        let Some(template) = self.d.pointer("/spec/template") else {
            return;
        };
        let mut idx = self.all_idx();
        idx.sort_by(|a, b| self.by_creation(*a, *b));
        self.new = idx.into_iter().find(|i| {
            self.rss[*i]
                .obj
                .pointer("/spec/template")
                .is_some_and(|t| equal_ignore_hash(t, template))
        });
    }

    fn max_old_revision(&self) -> i64 {
        self.old()
            .into_iter()
            .map(|i| revision(&self.rss[i].obj))
            .max()
            .unwrap_or(0)
    }

    /// Upstream `SetNewReplicaSetAnnotations` on `rs`.
    fn set_new_rs_annotations(&self, rs: &mut Value, new_revision: i64, exists: bool) -> bool {
        let mut changed = false;
        if let Some(ann) = meta_map(self.d, "annotations") {
            for (k, v) in ann {
                if ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
                    continue;
                }
                if let Some(v) = v.as_str() {
                    changed |= set_annotation(rs, k, v);
                }
            }
        }
        let old = annotation(rs, REVISION_ANNOTATION).map(str::to_string);
        let old_int = match old.as_deref() {
            None | Some("") => 0,
            Some(s) => match s.parse::<i64>() {
                Ok(v) => v,
                Err(_) => return changed,
            },
        };
        if old_int < new_revision {
            changed |= set_annotation(rs, REVISION_ANNOTATION, &new_revision.to_string());
            if let Some(old) = old.filter(|o| !o.is_empty()) {
                let history = annotation(rs, REVISION_HISTORY_ANNOTATION).unwrap_or("");
                let mut revisions: Vec<&str> = if history.is_empty() {
                    Vec::new()
                } else {
                    history.split(',').collect()
                };
                let mut total: usize =
                    revisions.iter().map(|r| r.len() + 1).sum::<usize>() + old.len();
                while total > MAX_REV_HISTORY_CHARS && !revisions.is_empty() {
                    total -= revisions.remove(0).len() + 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    revisions.push(&old);
                    let joined = revisions.join(",");
                    set_annotation(rs, REVISION_HISTORY_ANNOTATION, &joined);
                }
            }
        }
        if !exists {
            changed |=
                set_replicas_annotations(rs, self.replicas, self.replicas + self.max_surge());
        }
        changed
    }

    /// The existing new ReplicaSet: annotations, revision, minReadySeconds; the
    /// Deployment's revision and FoundNewReplicaSet.
    fn sync_new_rs_annotations(&mut self) {
        let Some(n) = self.new else {
            return;
        };
        let new_revision = self.max_old_revision() + 1;
        let mut obj = self.rss[n].obj.clone();
        let mut changed = self.set_new_rs_annotations(&mut obj, new_revision, true);
        let min_ready = int_at(self.d, "/spec/minReadySeconds").unwrap_or(0);
        if int_at(&obj, "/spec/minReadySeconds").unwrap_or(0) != min_ready
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("minReadySeconds".into(), json!(min_ready));
            changed = true;
        }
        if changed {
            self.rss[n].obj = obj;
            self.touch(n);
        }
        self.revision = Some(new_revision.to_string());
        if progress_deadline(self.d).is_some()
            && find_condition(&self.conditions, PROGRESSING).is_none()
        {
            let msg = format!("Found new replica set {:?}", self.name_of(n));
            let cond = new_condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, msg, self.now);
            set_condition(&mut self.conditions, cond);
        }
    }

    /// Upstream `checkPausedConditions`.
    fn check_paused_conditions(&mut self) {
        if progress_deadline(self.d).is_none() {
            return;
        }
        let cur = find_condition(&self.conditions, PROGRESSING).map(reason);
        if cur == Some(TIMED_OUT_REASON) {
            return;
        }
        let paused_exists = cur == Some(PAUSED_REASON);
        let cond = if self.paused() && !paused_exists {
            new_condition(
                PROGRESSING,
                "Unknown",
                PAUSED_REASON,
                "Deployment is paused".into(),
                self.now,
            )
        } else if !self.paused() && paused_exists {
            new_condition(
                PROGRESSING,
                "Unknown",
                RESUMED_REASON,
                "Deployment is resumed".into(),
                self.now,
            )
        } else {
            return;
        };
        set_condition(&mut self.conditions, cond);
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was last sized for other replicas.
    fn is_scaling_event(&self) -> bool {
        self.all_idx()
            .into_iter()
            .filter(|i| self.spec(*i) > 0)
            .any(|i| {
                annotation(&self.rss[i].obj, DESIRED_REPLICAS_ANNOTATION)
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v != self.replicas)
            })
    }

    /// Scales `i` to `new_scale` (annotations always refreshed); whether the size changed.
    fn scale_rs(&mut self, i: usize, new_scale: i64, operation: &str) -> bool {
        let old = self.spec(i);
        let (desired, max) = (self.replicas, self.replicas + self.max_surge());
        let mut obj = self.rss[i].obj.clone();
        let mut changed = set_replicas_annotations(&mut obj, desired, max);
        if old != new_scale
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("replicas".into(), json!(new_scale));
            changed = true;
        }
        if !changed {
            return false;
        }
        self.rss[i].obj = obj;
        self.touch(i);
        if old == new_scale {
            return false;
        }
        let msg = format!(
            "Scaled {operation} replica set {} from {old} to {new_scale}",
            self.name_of(i)
        );
        self.rss[i].events.push(msg);
        true
    }

    /// Upstream `scaleReplicaSetAndRecordEvent`: nothing when already that size.
    fn scale_and_record(&mut self, i: usize, new_scale: i64) -> bool {
        let old = self.spec(i);
        if old == new_scale {
            return false;
        }
        let op = if old < new_scale { "up" } else { "down" };
        self.scale_rs(i, new_scale, op)
    }

    /// Upstream `NewRSNewReplicas`.
    fn new_rs_new_replicas(&self, n: usize) -> i64 {
        if self.strategy.recreate {
            return self.replicas;
        }
        let current = self.sum_spec(&self.all_idx());
        let max_total = self.replicas + self.max_surge();
        if current >= max_total {
            return self.spec(n);
        }
        let up = (max_total - current).min(self.replicas - self.spec(n));
        self.spec(n) + up
    }

    /// Creates the new ReplicaSet; false on a hash collision (collisionCount bumped).
    fn create_new_rs(&mut self) -> bool {
        let d = self.d;
        let template = d
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let hash = pod_template_hash(&template, self.collision_count);
        let name = format!("{}-{hash}", meta(d, "name"));
        if self.all.iter().any(|rs| meta(rs, "name") == name) {
            // Not the new ReplicaSet (that would have been found): a collision.
            self.collision_count = Some(self.collision_count.unwrap_or(0) + 1);
            return false;
        }
        let mut template = template;
        if let Some(l) = meta_map_mut(&mut template, "labels") {
            l.insert(POD_TEMPLATE_HASH_LABEL.into(), json!(hash));
        }
        let mut selector = d
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let Some(sel) = selector.as_object_mut() {
            let ml = sel.entry("matchLabels").or_insert_with(|| json!({}));
            if !ml.is_object() {
                *ml = json!({});
            }
            ml[POD_TEMPLATE_HASH_LABEL] = json!(hash);
        }
        let mut spec = Map::new();
        spec.insert("replicas".into(), json!(0));
        let min_ready = int_at(d, "/spec/minReadySeconds").unwrap_or(0);
        if min_ready != 0 {
            spec.insert("minReadySeconds".into(), json!(min_ready));
        }
        spec.insert("selector".into(), selector);
        let rs_labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        spec.insert("template".into(), template);
        let obj = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": rs_labels,
                "ownerReferences": [controller_ref_to(d, "apps/v1", "Deployment")],
            },
            "spec": spec,
        });
        let new_revision = self.max_old_revision() + 1;
        let n = self.push(obj, None);
        self.new = Some(n);
        let replicas = self.new_rs_new_replicas(n);
        let mut obj = self.rss[n].obj.clone();
        obj["spec"]["replicas"] = json!(replicas);
        self.set_new_rs_annotations(&mut obj, new_revision, false);
        self.rss[n].obj = obj;
        self.touch(n);
        if replicas > 0 {
            self.rss[n]
                .events
                .push(format!("Scaled up replica set {name} from 0 to {replicas}"));
        }
        self.revision = Some(new_revision.to_string());
        if progress_deadline(d).is_some() {
            let msg = format!("Created new replica set {name:?}");
            let cond = new_condition(PROGRESSING, "True", NEW_RS_REASON, msg, self.now);
            set_condition(&mut self.conditions, cond);
        }
        true
    }

    /// Upstream `sync`: scaling only, then history cleanup.
    fn sync_scale(&mut self) -> StatusMode {
        self.scale();
        self.cleanup();
        StatusMode::Plain
    }

    /// Upstream `FindActiveOrLatest`.
    fn active_or_latest(&self) -> Option<usize> {
        let mut old = self.old();
        if self.new.is_none() && old.is_empty() {
            return None;
        }
        old.sort_by(|a, b| self.by_creation(*b, *a));
        let active: Vec<usize> = old
            .iter()
            .copied()
            .chain(self.new)
            .filter(|i| self.spec(*i) > 0)
            .collect();
        match active.len() {
            0 => self.new.or_else(|| old.first().copied()),
            1 => active.first().copied(),
            _ => None,
        }
    }

    /// Upstream `IsSaturated` for the new ReplicaSet.
    fn new_saturated(&self) -> bool {
        self.new.is_some_and(|n| {
            annotation(&self.rss[n].obj, DESIRED_REPLICAS_ANNOTATION)
                .and_then(|v| v.parse::<i64>().ok())
                == Some(self.replicas)
                && self.spec(n) == self.replicas
                && self.status_of(n, "availableReplicas") == self.replicas
        })
    }

    /// Upstream `scale`: the one active ReplicaSet takes `replicas`; a saturated new one
    /// retires the old; otherwise (rolling) the difference is shared in proportion.
    fn scale(&mut self) {
        if let Some(i) = self.active_or_latest() {
            if self.spec(i) != self.replicas {
                self.scale_and_record(i, self.replicas);
            }
            return;
        }
        if self.new_saturated() {
            for i in self.old() {
                if self.spec(i) > 0 {
                    self.scale_and_record(i, 0);
                }
            }
            return;
        }
        if self.strategy.recreate {
            return;
        }
        let mut active: Vec<usize> = self
            .all_idx()
            .into_iter()
            .filter(|i| self.spec(*i) > 0)
            .collect();
        let current = self.sum_spec(&active);
        let allowed = if self.replicas > 0 {
            self.replicas + self.max_surge()
        } else {
            0
        };
        let to_add = allowed - current;
        let operation = match to_add.cmp(&0) {
            Ordering::Greater => {
                // Largest first, newer first among equals.
                active.sort_by(|a, b| {
                    self.spec(*b)
                        .cmp(&self.spec(*a))
                        .then_with(|| self.by_creation(*b, *a))
                });
                "up"
            }
            Ordering::Less => {
                // Largest first, older first among equals.
                active.sort_by(|a, b| {
                    self.spec(*b)
                        .cmp(&self.spec(*a))
                        .then_with(|| self.by_creation(*a, *b))
                });
                "down"
            }
            Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes: Vec<i64> = Vec::with_capacity(active.len());
        for &i in &active {
            let p = if to_add != 0 {
                self.proportion(i, to_add, added)
            } else {
                0
            };
            sizes.push(self.spec(i) + p);
            added += p;
        }
        for (k, &i) in active.iter().enumerate() {
            let mut size = sizes[k];
            if k == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_rs(i, size, operation);
        }
    }

    /// Upstream `GetProportion`.
    fn proportion(&self, i: usize, to_add: i64, added: i64) -> i64 {
        if self.spec(i) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.fraction(i);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// Upstream `getReplicaSetFraction`.
    fn fraction(&self, i: usize) -> i64 {
        let spec = self.spec(i);
        if self.replicas == 0 {
            return -spec;
        }
        let target = self.replicas + self.max_surge();
        let annotated = annotation(&self.rss[i].obj, MAX_REPLICAS_ANNOTATION)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or_else(|| int_at(self.d, "/status/replicas").unwrap_or(0));
        if annotated <= 0 {
            return 0;
        }
        let size = (spec * target) as f64 / annotated as f64;
        size.round() as i64 - spec
    }

    /// Upstream `rolloutRolling`.
    fn rollout_rolling(&mut self) -> StatusMode {
        if self.new.is_none() && !self.create_new_rs() {
            return StatusMode::Plain;
        }
        if self.reconcile_new() || self.reconcile_old() {
            return StatusMode::Rollout;
        }
        if deployment_complete(self.d, self.d.get("status").unwrap_or(&Value::Null)) {
            self.cleanup();
        }
        StatusMode::Rollout
    }

    /// Upstream `reconcileNewReplicaSet`.
    fn reconcile_new(&mut self) -> bool {
        let Some(n) = self.new else {
            return false;
        };
        let cur = self.spec(n);
        if cur == self.replicas {
            return false;
        }
        if cur > self.replicas {
            return self.scale_and_record(n, self.replicas);
        }
        let target = self.new_rs_new_replicas(n);
        self.scale_and_record(n, target)
    }

    /// Upstream `reconcileOldReplicaSets`.
    fn reconcile_old(&mut self) -> bool {
        let old = self.old();
        if self.sum_spec(&old) == 0 {
            return false;
        }
        let all_pods = self.sum_spec(&self.all_idx());
        let min_available = self.replicas - self.max_unavailable();
        let new_unavailable = self
            .new
            .map(|n| self.spec(n) - self.status_of(n, "availableReplicas"))
            .unwrap_or(0);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let mut active: Vec<usize> = old.into_iter().filter(|i| self.spec(*i) > 0).collect();
        active.sort_by(|a, b| self.by_creation(*a, *b));
        let cleaned = self.cleanup_unhealthy(&active, max_scaled_down);
        let scaled = self.scale_down_old_for_rolling(&active);
        cleaned + scaled > 0
    }

    /// Upstream `cleanupUnhealthyReplicas`: scale down unavailable old replicas first.
    fn cleanup_unhealthy(&mut self, old: &[usize], max: i64) -> i64 {
        let mut total = 0;
        for &i in old {
            if total >= max {
                break;
            }
            let (spec, available) = (self.spec(i), self.status_of(i, "availableReplicas"));
            if spec == 0 || spec <= available {
                continue;
            }
            let down = (max - total).min(spec - available);
            self.scale_and_record(i, spec - down);
            total += down;
        }
        total
    }

    /// Upstream `scaleDownOldReplicaSetsForRollingUpdate`.
    fn scale_down_old_for_rolling(&mut self, old: &[usize]) -> i64 {
        let min_available = self.replicas - self.max_unavailable();
        let available = self.sum_status(&self.all_idx(), "availableReplicas");
        if available <= min_available {
            return 0;
        }
        let wanted = available - min_available;
        let mut total = 0;
        for &i in old {
            if total >= wanted {
                break;
            }
            let spec = self.spec(i);
            if spec == 0 {
                continue;
            }
            let down = spec.min(wanted - total);
            self.scale_and_record(i, spec - down);
            total += down;
        }
        total
    }

    /// Upstream `rolloutRecreate`.
    fn rollout_recreate(&mut self, pods: &[Value]) -> StatusMode {
        let mut scaled_down = false;
        for i in self.old() {
            if self.spec(i) > 0 {
                scaled_down |= self.scale_and_record(i, 0);
            }
        }
        if scaled_down || self.old_pods_running(pods) {
            return StatusMode::Rollout;
        }
        match self.new {
            None => {
                if !self.create_new_rs() {
                    return StatusMode::Plain;
                }
            }
            Some(n) => {
                self.scale_and_record(n, self.replicas);
            }
        }
        if deployment_complete(self.d, self.d.get("status").unwrap_or(&Value::Null)) {
            self.cleanup();
        }
        StatusMode::Rollout
    }

    /// Upstream `oldPodsRunning`: old ReplicaSets still report pods, or a non-terminal pod
    /// of theirs still exists (terminating ones included).
    fn old_pods_running(&self, pods: &[Value]) -> bool {
        let old = self.old();
        if self.sum_status(&old, "replicas") > 0 {
            return true;
        }
        let uids: Vec<&str> = old
            .iter()
            .map(|i| meta(&self.rss[*i].obj, "uid"))
            .filter(|u| !u.is_empty())
            .collect();
        let selector = self.d.pointer("/spec/selector").unwrap_or(&Value::Null);
        pods.iter().any(|p| {
            selector_matches(selector, labels(p))
                && controller_uid(p).is_some_and(|u| uids.contains(&u))
                && !matches!(
                    p.pointer("/status/phase").and_then(Value::as_str),
                    Some("Failed" | "Succeeded")
                )
        })
    }

    /// Upstream `cleanupDeployment`: old ReplicaSets beyond revisionHistoryLimit.
    fn cleanup(&mut self) {
        let limit = match self.d.pointer("/spec/revisionHistoryLimit") {
            None | Some(Value::Null) => DEFAULT_REVISION_HISTORY_LIMIT,
            Some(v) => v.as_i64().unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT).max(0),
        };
        let mut cleanable: Vec<usize> = self
            .old()
            .into_iter()
            .filter(|i| !is_deleting(&self.rss[*i].obj))
            .collect();
        let excess = cleanable.len() as i64 - limit;
        if excess <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| {
            revision(&self.rss[*a].obj)
                .cmp(&revision(&self.rss[*b].obj))
                .then_with(|| self.by_creation(*a, *b))
        });
        for &i in cleanable.iter().take(usize::try_from(excess).unwrap_or(0)) {
            let rs = &self.rss[i].obj;
            if self.status_of(i, "replicas") != 0
                || self.spec(i) != 0
                || int_at(rs, "/metadata/generation").unwrap_or(0)
                    > self.status_of(i, "observedGeneration")
                || self.touched.contains(&i)
            {
                continue;
            }
            self.deletes.push(Action::Delete {
                kind: REPLICA_SETS,
                namespace: self.ns.clone(),
                name: meta(rs, "name").to_string(),
                uid: Some(meta(rs, "uid").to_string()).filter(|u| !u.is_empty()),
                propagation: None,
            });
        }
    }

    /// Upstream `calculateStatus` (with the Available condition).
    fn calculate_status(&mut self) -> Value {
        let all = self.all_idx();
        let available = self.sum_status(&all, "availableReplicas");
        let total = self.sum_spec(&all);
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int_at(self.d, "/metadata/generation").unwrap_or(0)),
        );
        status.insert("replicas".into(), json!(self.sum_status(&all, "replicas")));
        let updated = self.new.map(|n| self.status_of(n, "replicas")).unwrap_or(0);
        status.insert("updatedReplicas".into(), json!(updated));
        status.insert(
            "readyReplicas".into(),
            json!(self.sum_status(&all, "readyReplicas")),
        );
        status.insert("availableReplicas".into(), json!(available));
        status.insert(
            "unavailableReplicas".into(),
            json!((total - available).max(0)),
        );
        let cond = if available >= self.replicas - self.max_unavailable() {
            new_condition(
                AVAILABLE,
                "True",
                MIN_AVAILABLE_REASON,
                "Deployment has minimum availability.".into(),
                self.now,
            )
        } else {
            new_condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE_REASON,
                "Deployment does not have minimum availability.".into(),
                self.now,
            )
        };
        set_condition(&mut self.conditions, cond);
        if let Some(c) = self.collision_count {
            status.insert("collisionCount".into(), json!(c));
        }
        Value::Object(status)
    }

    /// Upstream `syncRolloutStatus`'s Progressing and ReplicaFailure bookkeeping.
    fn rollout_conditions(&mut self, status: &Value) {
        let old_status = self.d.get("status").unwrap_or(&Value::Null);
        let Some(deadline) = progress_deadline(self.d) else {
            remove_condition(&mut self.conditions, PROGRESSING);
            self.replica_failure();
            return;
        };
        let current = find_condition(&self.conditions, PROGRESSING).cloned();
        let complete_before = status_int(status, "replicas")
            == status_int(status, "updatedReplicas")
            && current.as_ref().map(reason) == Some(NEW_RS_AVAILABLE_REASON);
        if !complete_before {
            let subject = match self.new {
                Some(n) => format!("ReplicaSet {:?}", self.name_of(n)),
                None => format!("Deployment {:?}", meta(self.d, "name")),
            };
            if deployment_complete(self.d, status) {
                let cond = new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE_REASON,
                    format!("{subject} has successfully progressed."),
                    self.now,
                );
                set_condition(&mut self.conditions, cond);
            } else if deployment_progressing(old_status, status) {
                let mut cond = new_condition(
                    PROGRESSING,
                    "True",
                    RS_UPDATED_REASON,
                    format!("{subject} is progressing."),
                    self.now,
                );
                if let Some(cur) = &current {
                    if cur.get("status").and_then(Value::as_str) == Some("True")
                        && let Some(ltt) = cur.get("lastTransitionTime")
                    {
                        cond["lastTransitionTime"] = ltt.clone();
                    }
                    remove_condition(&mut self.conditions, PROGRESSING);
                }
                set_condition(&mut self.conditions, cond);
            } else if self.timed_out(deadline) {
                let cond = new_condition(
                    PROGRESSING,
                    "False",
                    TIMED_OUT_REASON,
                    format!("{subject} has timed out progressing."),
                    self.now,
                );
                set_condition(&mut self.conditions, cond);
            }
        }
        self.replica_failure();
    }

    /// Upstream `DeploymentTimedOut` on the working conditions.
    fn timed_out(&self, deadline: i64) -> bool {
        let Some(cond) = find_condition(&self.conditions, PROGRESSING) else {
            return false;
        };
        match reason(cond) {
            NEW_RS_AVAILABLE_REASON => return false,
            TIMED_OUT_REASON => return true,
            _ => {}
        }
        cond.get("lastUpdateTime")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .and_then(|t| t.checked_add(SignedDuration::from_secs(deadline)).ok())
            .is_some_and(|due| due < self.now)
    }

    /// Copies a ReplicaSet's ReplicaFailure (the new one's first) or clears it.
    fn replica_failure(&mut self) {
        let order: Vec<usize> = self.new.into_iter().chain(self.all_idx()).collect();
        let failure = order.into_iter().find_map(|i| {
            condition(&self.rss[i].obj, REPLICA_FAILURE).map(|c| {
                let ltt = c.get("lastTransitionTime").cloned().unwrap_or(Value::Null);
                json!({
                    "type": REPLICA_FAILURE,
                    "status": c.get("status").cloned().unwrap_or(Value::Null),
                    "lastUpdateTime": ltt,
                    "lastTransitionTime": ltt,
                    "reason": c.get("reason").cloned().unwrap_or(Value::Null),
                    "message": c.get("message").cloned().unwrap_or(Value::Null),
                })
            })
        });
        match failure {
            Some(c) => set_condition(&mut self.conditions, c),
            None => remove_condition(&mut self.conditions, REPLICA_FAILURE),
        }
    }

    /// The actions: releases, ReplicaSet creates/updates with their events, cleanup
    /// deletes, then the Deployment's revision annotation and status.
    fn finish(mut self, mode: StatusMode) -> Vec<Action> {
        let mut status = self.calculate_status();
        if mode == StatusMode::Rollout {
            self.rollout_conditions(&status);
        }
        if !self.conditions.is_empty() {
            status["conditions"] = Value::Array(std::mem::take(&mut self.conditions));
        }
        omit_zero_fields(&mut status, &[]);

        let d = self.d;
        let involved = involved(d, "apps/v1", "Deployment");
        let mut actions = std::mem::take(&mut self.pre);
        for &i in &self.touched {
            let rs = &self.rss[i];
            match &rs.orig {
                None => actions.push(Action::Create {
                    kind: REPLICA_SETS,
                    namespace: self.ns.clone(),
                    object: rs.obj.clone(),
                }),
                Some(orig) if *orig != rs.obj => actions.push(Action::Update {
                    kind: REPLICA_SETS,
                    namespace: self.ns.clone(),
                    object: rs.obj.clone(),
                }),
                Some(_) => continue,
            }
            for msg in &rs.events {
                actions.push(Action::Event {
                    involved: involved.clone(),
                    event_type: "Normal",
                    reason: "ScalingReplicaSet".into(),
                    message: msg.clone(),
                    source: CONTROLLER_NAME,
                });
            }
        }
        actions.append(&mut self.deletes);

        let status_changed = !semantic_eq(d.get("status").unwrap_or(&Value::Null), &status);
        let mut object = d.clone();
        let revision_changed = match &self.revision {
            Some(r) => set_annotation(&mut object, REVISION_ANNOTATION, r),
            None => false,
        };
        if revision_changed {
            actions.push(Action::Update {
                kind: DEPLOYMENTS,
                namespace: self.ns.clone(),
                object: object.clone(),
            });
            // The update above moved the resourceVersion on: write the status without one.
            if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
        }
        if status_changed {
            object["status"] = status;
            actions.push(Action::UpdateStatus {
                kind: DEPLOYMENTS,
                namespace: self.ns.clone(),
                object,
            });
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::controllers::replicaset;

    const START: &str = "2025-03-01T10:00:00Z";

    /// A tiny API server: objects by plural, resourceVersion preconditions, generation
    /// bumps on spec changes, graceful pod deletion on demand, background GC of pods.
    struct World {
        now: Timestamp,
        rv: u64,
        seq: u64,
        objects: HashMap<&'static str, Vec<Value>>,
        events: Vec<String>,
        conflicts: Vec<String>,
        /// Deleted pods linger with a deletionTimestamp until `finish_terminations`.
        graceful: bool,
        /// Pods with this image never become ready.
        broken_image: Option<&'static str>,
        /// The fewest ready, non-terminating pods and the most pods seen after any write.
        min_available: usize,
        max_pods: usize,
    }

    fn deployment(replicas: i64, image: &str, strategy: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": strategy,
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": image}]},
                },
            },
        })
    }

    fn rolling(surge: Value, unavailable: Value) -> Value {
        json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    fn image_of(obj: &Value) -> &str {
        obj.pointer("/spec/template/spec/containers/0/image")
            .or_else(|| obj.pointer("/spec/containers/0/image"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    impl World {
        fn new(d: Value) -> World {
            let mut w = World {
                now: START.parse().unwrap(),
                rv: 1,
                seq: 0,
                objects: HashMap::new(),
                events: Vec::new(),
                conflicts: Vec::new(),
                graceful: false,
                broken_image: None,
                min_available: usize::MAX,
                max_pods: 0,
            };
            w.apply(vec![Action::Create {
                kind: DEPLOYMENTS,
                namespace: "default".into(),
                object: d,
            }]);
            w
        }

        fn list(&self, plural: &str) -> Vec<Value> {
            self.objects.get(plural).cloned().unwrap_or_default()
        }

        fn d(&self) -> Value {
            self.list("deployments").remove(0)
        }

        fn rss(&self) -> Vec<Value> {
            self.list("replicasets")
        }

        fn pods(&self) -> Vec<Value> {
            self.list("pods")
        }

        fn rs_with_image(&self, image: &str) -> Vec<Value> {
            self.rss()
                .into_iter()
                .filter(|r| image_of(r) == image)
                .collect()
        }

        fn next_rv(&mut self) -> Value {
            self.rv += 1;
            json!(self.rv.to_string())
        }

        fn coll(&mut self, plural: &'static str) -> &mut Vec<Value> {
            self.objects.entry(plural).or_default()
        }

        /// Applies actions in order, stopping at the first failure like the runtime.
        fn apply(&mut self, actions: Vec<Action>) {
            for a in actions {
                let result = self.apply_one(a);
                self.min_available = self.min_available.min(self.available_pods());
                self.max_pods = self.max_pods.max(self.pods().len());
                if let Err(e) = result {
                    self.conflicts.push(e);
                    return;
                }
            }
        }

        fn apply_one(&mut self, a: Action) -> Result<(), String> {
            match a {
                Action::Create { kind, object, .. } => {
                    let mut o = object;
                    let mut name = meta(&o, "name").to_string();
                    if name.is_empty() {
                        self.seq += 1;
                        name = format!("{}{}", meta(&o, "generateName"), self.seq);
                    }
                    if self
                        .coll(kind.plural)
                        .iter()
                        .any(|x| meta(x, "name") == name)
                    {
                        return Err(format!("AlreadyExists {name}"));
                    }
                    self.seq += 1;
                    let rv = self.next_rv();
                    let m = o["metadata"].as_object_mut().unwrap();
                    m.insert("name".into(), json!(name));
                    m.insert("uid".into(), json!(format!("uid-{}", self.seq)));
                    m.insert("resourceVersion".into(), rv);
                    m.insert("creationTimestamp".into(), json!(format_time(self.now)));
                    if kind.plural != "pods" {
                        m.insert("generation".into(), json!(1));
                    } else {
                        o["status"] = json!({"phase": "Pending"});
                    }
                    self.coll(kind.plural).push(o);
                }
                Action::Update { kind, object, .. } => {
                    let rv = self.next_rv();
                    let items = self.coll(kind.plural);
                    let i = find(items, &object)?;
                    let old = items[i].clone();
                    let mut new = object;
                    new["status"] = old.get("status").cloned().unwrap_or(Value::Null);
                    let mut generation = int_at(&old, "/metadata/generation").unwrap_or(0);
                    if old.get("spec") != new.get("spec") && kind.plural != "pods" {
                        generation += 1;
                    }
                    new["metadata"]["generation"] = json!(generation);
                    new["metadata"]["resourceVersion"] = rv;
                    items[i] = new;
                }
                Action::UpdateStatus { kind, object, .. } => {
                    let rv = self.next_rv();
                    let items = self.coll(kind.plural);
                    let i = find(items, &object)?;
                    items[i]["status"] = object["status"].clone();
                    items[i]["metadata"]["resourceVersion"] = rv;
                }
                Action::Delete {
                    kind, name, uid, ..
                } => {
                    let graceful = self.graceful;
                    let now = format_time(self.now);
                    let rv = self.next_rv();
                    let items = self.coll(kind.plural);
                    let Some(i) = items.iter().position(|x| meta(x, "name") == name) else {
                        return Ok(());
                    };
                    if uid.is_some_and(|u| u != meta(&items[i], "uid")) {
                        return Err(format!("uid precondition failed for {name}"));
                    }
                    if kind.plural == "pods" && graceful {
                        if !is_deleting(&items[i]) {
                            items[i]["metadata"]["deletionTimestamp"] = json!(now);
                            items[i]["metadata"]["resourceVersion"] = rv;
                        }
                    } else {
                        let gone = items.remove(i);
                        // Background GC of dependents.
                        let owner = meta(&gone, "uid").to_string();
                        self.coll("pods")
                            .retain(|p| controller_uid(p) != Some(owner.as_str()));
                    }
                }
                Action::Bind { .. } | Action::DeleteNow { .. } => panic!("unexpected {a:?}"),
                Action::Event {
                    reason,
                    message,
                    source,
                    ..
                } => self.events.push(format!("{source} {reason}: {message}")),
            }
            Ok(())
        }

        /// A user's edit of the Deployment.
        fn edit(&mut self, f: impl FnOnce(&mut Value)) {
            let mut d = self.d();
            f(&mut d);
            self.apply(vec![Action::Update {
                kind: DEPLOYMENTS,
                namespace: "default".into(),
                object: d,
            }]);
        }

        /// Schedules, runs and readies pods (except broken ones); whether anything changed.
        fn kubelet(&mut self) -> bool {
            let now = format_time(self.now);
            let broken = self.broken_image;
            let mut changed = false;
            for p in self.coll("pods").iter_mut() {
                if is_deleting(p) || replicaset::is_pod_ready(p) || Some(image_of(p)) == broken {
                    continue;
                }
                p["spec"]["nodeName"] = json!("cluster-a");
                p["status"] = json!({"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}]});
                changed = true;
            }
            changed
        }

        fn finish_terminations(&mut self) {
            self.coll("pods").retain(|p| !is_deleting(p));
        }

        /// One round: the Deployment controller, each ReplicaSet, the kubelet. Returns how
        /// many writes it made.
        fn step(&mut self) -> usize {
            let mut writes = 0;
            let count = |a: &[Action]| {
                a.iter()
                    .filter(|x| !matches!(x, Action::Event { .. }))
                    .count()
            };
            let acts = reconcile(&self.d(), &self.rss(), &self.pods(), self.now);
            writes += count(&acts);
            self.apply(acts);
            for rs in self.rss() {
                let acts = replicaset::reconcile(&rs, &self.pods(), self.now);
                writes += count(&acts);
                self.apply(acts);
            }
            if self.kubelet() {
                writes += 1;
            }
            self.now = self.now.checked_add(SignedDuration::from_secs(1)).unwrap();
            writes
        }

        /// Steps until nothing changes, calling `check` after each step.
        fn settle_with(&mut self, mut check: impl FnMut(&World)) {
            for _ in 0..200 {
                let writes = self.step();
                check(self);
                if writes == 0 {
                    assert!(self.conflicts.is_empty(), "conflicts: {:?}", self.conflicts);
                    // Idempotent: the settled world asks for nothing.
                    assert!(reconcile(&self.d(), &self.rss(), &self.pods(), self.now).is_empty());
                    for rs in self.rss() {
                        assert!(replicaset::reconcile(&rs, &self.pods(), self.now).is_empty());
                    }
                    return;
                }
            }
            panic!("did not settle: {:#?}", self.rss());
        }

        fn settle(&mut self) {
            self.settle_with(|_| {});
        }

        fn available_pods(&self) -> usize {
            self.pods()
                .iter()
                .filter(|p| !is_deleting(p) && replicaset::is_pod_ready(p))
                .count()
        }

        fn spec_replicas(&self, image: &str) -> Vec<i64> {
            self.rs_with_image(image)
                .iter()
                .map(|r| int_at(r, "/spec/replicas").unwrap_or(-1))
                .collect()
        }

        fn progressing(&self) -> (String, String, String) {
            let d = self.d();
            let c = condition(&d, PROGRESSING).cloned().unwrap_or(Value::Null);
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("status"), s("reason"), s("message"))
        }
    }

    fn find(items: &[Value], object: &Value) -> Result<usize, String> {
        let name = meta(object, "name");
        let i = items
            .iter()
            .position(|x| meta(x, "name") == name)
            .ok_or_else(|| format!("NotFound {name}"))?;
        let want = meta(object, "resourceVersion");
        if !want.is_empty() && want != meta(&items[i], "resourceVersion") {
            return Err(format!("Conflict on {name}: {want}"));
        }
        Ok(i)
    }

    /// What `kubectl rollout status` waits for.
    fn rollout_complete(d: &Value) -> bool {
        let st = &d["status"];
        let replicas = int_at(d, "/spec/replicas").unwrap_or(1);
        status_int(st, "observedGeneration") >= int_at(d, "/metadata/generation").unwrap_or(0)
            && status_int(st, "updatedReplicas") == replicas
            && status_int(st, "replicas") == replicas
            && status_int(st, "availableReplicas") == replicas
            && condition(d, PROGRESSING).map(reason) != Some(TIMED_OUT_REASON)
    }

    fn set_image(image: &'static str) -> impl FnOnce(&mut Value) {
        move |d: &mut Value| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image)
    }

    #[test]
    fn create_makes_three_pods_and_settles() {
        let mut w = World::new(deployment(3, "v1", json!({})));
        w.settle();
        let rss = w.rss();
        assert_eq!(rss.len(), 1);
        let rs = &rss[0];
        let hash = pod_template_hash(&w.d()["spec"]["template"], None);
        assert_eq!(meta(rs, "name"), format!("web-{hash}"));
        assert_eq!(
            rs["metadata"]["labels"],
            json!({"app": "web", "pod-template-hash": hash})
        );
        assert_eq!(
            rs["spec"]["selector"],
            json!({"matchLabels": {"app": "web", "pod-template-hash": hash}})
        );
        assert_eq!(
            rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
            hash
        );
        let ann = &rs["metadata"]["annotations"];
        assert_eq!(ann[REVISION_ANNOTATION], "1");
        assert_eq!(ann[DESIRED_REPLICAS_ANNOTATION], "3");
        assert_eq!(ann[MAX_REPLICAS_ANNOTATION], "4");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        let pods = w.pods();
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| {
            meta(p, "name").starts_with(&format!("web-{hash}-"))
                && p["metadata"]["labels"]["pod-template-hash"] == hash
        }));
        let d = w.d();
        assert_eq!(d["metadata"]["annotations"][REVISION_ANNOTATION], "1");
        assert!(rollout_complete(&d));
        let st = &d["status"];
        assert_eq!(status_int(st, "readyReplicas"), 3);
        assert_eq!(status_int(st, "unavailableReplicas"), 0);
        assert_eq!(
            condition(&d, AVAILABLE).map(|c| (c["status"].clone(), c["reason"].clone())),
            Some((json!("True"), json!(MIN_AVAILABLE_REASON)))
        );
        assert_eq!(
            w.progressing(),
            (
                "True".into(),
                NEW_RS_AVAILABLE_REASON.into(),
                format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
            )
        );
        assert!(w.events.contains(&format!(
            "deployment-controller ScalingReplicaSet: Scaled up replica set web-{hash} from 0 to 3"
        )));
        let created = w
            .events
            .iter()
            .filter(|e| e.starts_with("replicaset-controller SuccessfulCreate: Created pod: web-"))
            .count();
        assert_eq!(created, 3);
        assert_eq!(requeue_after(&d, w.now), None);
    }

    #[test]
    fn first_sync_records_new_replica_set_created() {
        let mut d = deployment(2, "v1", json!({}));
        d["metadata"]["uid"] = json!("d-uid");
        d["metadata"]["generation"] = json!(1);
        d["metadata"]["resourceVersion"] = json!("7");
        let now: Timestamp = START.parse().unwrap();
        let actions = reconcile(&d, &[], &[], now);
        let summary: Vec<&str> = actions
            .iter()
            .map(|a| match a {
                Action::Create { .. } => "create",
                Action::Update { .. } => "update",
                Action::UpdateStatus { .. } => "status",
                Action::Delete { .. } => "delete",
                Action::Bind { .. } | Action::DeleteNow { .. } => "other",
                Action::Event { .. } => "event",
            })
            .collect();
        assert_eq!(summary, vec!["create", "event", "update", "status"]);
        let Action::UpdateStatus { object, .. } = &actions[3] else {
            panic!()
        };
        assert!(object["metadata"].get("resourceVersion").is_none());
        assert_eq!(object["metadata"]["annotations"][REVISION_ANNOTATION], "1");
        let conds = object["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds[0]["reason"], NEW_RS_REASON);
        assert_eq!(conds[1]["reason"], MIN_UNAVAILABLE_REASON);
        assert_eq!(object["status"]["unavailableReplicas"], 2);
        assert_eq!(object["status"]["observedGeneration"], 1);
    }

    #[test]
    fn scale_down_removes_the_least_valuable_pods() {
        let mut w = World::new(deployment(5, "v1", json!({})));
        w.settle();
        let ago =
            |secs: i64| format_time(w.now.checked_sub(SignedDuration::from_secs(secs)).unwrap());
        let mut pods = w.pods();
        pods.sort_by(|a, b| meta(a, "name").cmp(meta(b, "name")));
        let names: Vec<String> = pods.iter().map(|p| meta(p, "name").to_string()).collect();
        let ready = |since: String| json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}]);
        let settings = [
            (ready(ago(7200)), 0),
            (ready(ago(600)), 0),
            (json!([{"type": "Ready", "status": "False"}]), 0),
            (ready(ago(7200)), 0),
            (ready(ago(7200)), 4),
        ];
        for (name, (conds, restarts)) in names.iter().zip(settings) {
            let p = w
                .coll("pods")
                .iter_mut()
                .find(|p| meta(p, "name") == name)
                .unwrap();
            p["status"]["conditions"] = conds;
            p["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": restarts}]);
        }
        w.broken_image = Some("v1"); // keep the not-ready pod not ready
        w.edit(|d| d["spec"]["replicas"] = json!(2));
        w.settle();
        let mut left: Vec<String> = w
            .pods()
            .iter()
            .map(|p| meta(p, "name").to_string())
            .collect();
        left.sort();
        // Not ready first, then ready for less time, then most restarts.
        assert_eq!(left, vec![names[0].clone(), names[3].clone()]);
        let rs = meta(&w.rss()[0], "name").to_string();
        assert!(w.events.contains(&format!(
            "deployment-controller ScalingReplicaSet: Scaled down replica set {rs} from 5 to 2"
        )));
        let deleted: Vec<&String> = w
            .events
            .iter()
            .filter(|e| e.contains("SuccessfulDelete"))
            .collect();
        assert_eq!(
            deleted,
            vec![
                &format!(
                    "replicaset-controller SuccessfulDelete: Deleted pod: {}",
                    names[2]
                ),
                &format!(
                    "replicaset-controller SuccessfulDelete: Deleted pod: {}",
                    names[1]
                ),
                &format!(
                    "replicaset-controller SuccessfulDelete: Deleted pod: {}",
                    names[4]
                ),
            ]
        );
        assert!(rollout_complete(&w.d()));
    }

    #[test]
    fn rolling_update_keeps_three_available() {
        let mut w = World::new(deployment(3, "v1", rolling(json!(1), json!(0))));
        w.settle();
        let old = meta(&w.rss()[0], "name").to_string();
        w.min_available = usize::MAX;
        w.max_pods = 0;
        w.edit(set_image("v2"));
        w.settle();
        // Checked after every single write of either controller.
        assert_eq!(w.min_available, 3);
        assert_eq!(w.max_pods, 4);
        assert_eq!(w.spec_replicas("v1"), vec![0]);
        assert_eq!(w.spec_replicas("v2"), vec![3]);
        let new = w.rs_with_image("v2").remove(0);
        let new_name = meta(&new, "name").to_string();
        assert_ne!(new_name, old);
        assert_eq!(new["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        assert_eq!(w.d()["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        assert!(w.pods().iter().all(|p| image_of(p) == "v2"));
        assert!(rollout_complete(&w.d()));
        let scaling: Vec<String> = w
            .events
            .iter()
            .filter(|e| e.contains("ScalingReplicaSet"))
            .map(|e| {
                e.trim_start_matches("deployment-controller ScalingReplicaSet: ")
                    .to_string()
            })
            .collect();
        assert_eq!(
            scaling,
            vec![
                format!("Scaled up replica set {old} from 0 to 3"),
                format!("Scaled up replica set {new_name} from 0 to 1"),
                format!("Scaled down replica set {old} from 3 to 2"),
                format!("Scaled up replica set {new_name} from 1 to 2"),
                format!("Scaled down replica set {old} from 2 to 1"),
                format!("Scaled up replica set {new_name} from 2 to 3"),
                format!("Scaled down replica set {old} from 1 to 0"),
            ]
        );
    }

    #[test]
    fn percentages_round_like_upstream() {
        let s = Strategy::of(&json!({"spec": {"strategy": {"rollingUpdate": {
            "maxSurge": "25%", "maxUnavailable": "25%"}}}}));
        assert_eq!(s.fenceposts(10), (3, 2));
        assert_eq!(s.fenceposts(3), (1, 0));
        let s = Strategy::of(&json!({"spec": {"strategy": {"rollingUpdate": {
            "maxSurge": 0, "maxUnavailable": "10%"}}}}));
        assert_eq!(s.fenceposts(5), (0, 1));
        let s = Strategy::of(&json!({}));
        assert_eq!(s.fenceposts(4), (1, 1));
    }

    #[test]
    fn recreate_waits_for_old_pods_to_be_gone() {
        let mut w = World::new(deployment(2, "v1", json!({"type": "Recreate"})));
        w.graceful = true;
        w.settle();
        w.edit(set_image("v2"));
        let never_mixed = |w: &World| {
            let pods = w.pods();
            let v1 = pods.iter().any(|p| image_of(p) == "v1");
            let v2 = pods.iter().any(|p| image_of(p) == "v2");
            assert!(!(v1 && v2), "old and new pods at once");
        };
        w.settle_with(never_mixed);
        // Old scaled to 0, its pods terminating: no new ReplicaSet yet.
        assert_eq!(w.spec_replicas("v1"), vec![0]);
        assert!(w.rs_with_image("v2").is_empty());
        assert_eq!(w.pods().len(), 2);
        assert!(w.pods().iter().all(is_deleting));
        assert!(!rollout_complete(&w.d()));
        w.finish_terminations();
        w.settle_with(never_mixed);
        assert_eq!(w.spec_replicas("v2"), vec![2]);
        assert_eq!(w.pods().len(), 2);
        assert!(rollout_complete(&w.d()));
        let new = meta(&w.rs_with_image("v2")[0], "name").to_string();
        assert!(
            w.events
                .iter()
                .any(|e| e.ends_with(&format!("Scaled up replica set {new} from 0 to 2")))
        );
    }

    #[test]
    fn undo_reuses_the_old_replica_set() {
        let mut w = World::new(deployment(3, "v1", rolling(json!(1), json!(0))));
        w.settle();
        let first = meta(&w.rss()[0], "name").to_string();
        w.edit(set_image("v2"));
        w.settle();
        // `kubectl rollout undo`: the template of revision 1 goes back into the Deployment.
        w.edit(set_image("v1"));
        w.settle();
        assert_eq!(w.rss().len(), 2);
        let back = w.rs_with_image("v1").remove(0);
        assert_eq!(meta(&back, "name"), first);
        assert_eq!(int_at(&back, "/spec/replicas"), Some(3));
        assert_eq!(back["metadata"]["annotations"][REVISION_ANNOTATION], "3");
        assert_eq!(
            back["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION],
            "1"
        );
        let v2 = w.rs_with_image("v2").remove(0);
        assert_eq!(v2["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        assert_eq!(int_at(&v2, "/spec/replicas"), Some(0));
        assert_eq!(w.d()["metadata"]["annotations"][REVISION_ANNOTATION], "3");
        assert!(rollout_complete(&w.d()));
    }

    #[test]
    fn paused_scales_but_does_not_roll_out() {
        let mut w = World::new(deployment(3, "v1", json!({})));
        w.settle();
        w.edit(|d| {
            d["spec"]["paused"] = json!(true);
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2");
        });
        w.settle();
        assert!(w.rs_with_image("v2").is_empty());
        assert_eq!(
            w.progressing(),
            (
                "Unknown".into(),
                PAUSED_REASON.into(),
                "Deployment is paused".into()
            )
        );
        let d = w.d();
        assert_eq!(
            int_at(&d, "/status/observedGeneration"),
            int_at(&d, "/metadata/generation")
        );
        assert_eq!(requeue_after(&d, w.now), None);
        // Scaling still applies while paused.
        w.edit(|d| d["spec"]["replicas"] = json!(5));
        w.settle();
        assert_eq!(w.spec_replicas("v1"), vec![5]);
        assert_eq!(w.pods().len(), 5);
        assert_eq!(
            w.rs_with_image("v1")[0]["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION],
            "5"
        );
        // Resume: the rollout happens.
        w.edit(|d| d["spec"]["paused"] = json!(false));
        w.settle();
        assert_eq!(w.spec_replicas("v1"), vec![0]);
        assert_eq!(w.spec_replicas("v2"), vec![5]);
        assert!(rollout_complete(&w.d()));
        assert_eq!(w.progressing().1, NEW_RS_AVAILABLE_REASON);
    }

    #[test]
    fn resume_without_changes_reports_resumed_then_complete() {
        let mut w = World::new(deployment(1, "v1", json!({})));
        w.settle();
        w.edit(|d| d["spec"]["paused"] = json!(true));
        w.settle();
        assert_eq!(w.progressing().1, PAUSED_REASON);
        w.edit(|d| d["spec"]["paused"] = json!(false));
        w.settle();
        assert_eq!(w.progressing().1, NEW_RS_AVAILABLE_REASON);
    }

    #[test]
    fn history_beyond_the_limit_is_cleaned_up() {
        let mut d = deployment(2, "v1", json!({}));
        d["spec"]["revisionHistoryLimit"] = json!(1);
        let mut w = World::new(d);
        w.settle();
        for image in ["v2", "v3", "v4"] {
            w.edit(set_image(image));
            w.settle();
        }
        let mut left: Vec<(String, String)> = w
            .rss()
            .iter()
            .map(|r| {
                (
                    image_of(r).to_string(),
                    r["metadata"]["annotations"][REVISION_ANNOTATION]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![("v3".into(), "3".into()), ("v4".into(), "4".into())]
        );
        assert!(rollout_complete(&w.d()));
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        let mut w = World::new(deployment(10, "v1", rolling(json!(3), json!(2))));
        w.settle();
        w.broken_image = Some("bad");
        w.edit(set_image("bad"));
        w.settle();
        assert_eq!(w.spec_replicas("v1"), vec![8]);
        assert_eq!(w.spec_replicas("bad"), vec![5]);
        w.edit(|d| d["spec"]["replicas"] = json!(15));
        w.settle();
        assert_eq!(w.spec_replicas("v1"), vec![11]);
        assert_eq!(w.spec_replicas("bad"), vec![7]);
        let new = meta(&w.rs_with_image("bad")[0], "name").to_string();
        assert!(
            w.events
                .iter()
                .any(|e| e.ends_with(&format!("Scaled up replica set {new} from 5 to 7")))
        );
        for rs in w.rss() {
            assert_eq!(
                rs["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION],
                "15"
            );
            assert_eq!(rs["metadata"]["annotations"][MAX_REPLICAS_ANNOTATION], "18");
        }
        // Back to the good template: the rollout finishes at 15.
        w.edit(set_image("v1"));
        w.settle();
        assert_eq!(w.spec_replicas("v1"), vec![15]);
        assert_eq!(w.spec_replicas("bad"), vec![0]);
        assert!(rollout_complete(&w.d()));
    }

    #[test]
    fn progress_deadline_exceeded() {
        let mut d = deployment(1, "v1", json!({}));
        d["spec"]["progressDeadlineSeconds"] = json!(30);
        let mut w = World::new(d);
        w.settle();
        w.broken_image = Some("bad");
        w.edit(set_image("bad"));
        w.settle();
        assert_eq!(w.progressing().1, RS_UPDATED_REASON);
        let wait = requeue_after(&w.d(), w.now).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(20),
            "{wait:?}"
        );
        w.now = w.now.checked_add(SignedDuration::from_secs(31)).unwrap();
        w.settle();
        let new = meta(&w.rs_with_image("bad")[0], "name").to_string();
        assert_eq!(
            w.progressing(),
            (
                "False".into(),
                TIMED_OUT_REASON.into(),
                format!("ReplicaSet \"{new}\" has timed out progressing.")
            )
        );
        assert!(!rollout_complete(&w.d()));
        assert_eq!(requeue_after(&w.d(), w.now), None);
    }

    #[test]
    fn restart_annotation_rolls_out_a_new_replica_set() {
        let mut w = World::new(deployment(2, "v1", json!({})));
        w.settle();
        w.edit(|d| {
            d["spec"]["template"]["metadata"]["annotations"] =
                json!({"kubectl.kubernetes.io/restartedAt": "2025-03-01T10:05:00Z"});
        });
        w.settle();
        assert_eq!(w.rss().len(), 2);
        assert_eq!(w.spec_replicas("v1"), vec![0, 2]);
        assert!(rollout_complete(&w.d()));
    }

    #[test]
    fn adopts_orphans_and_releases_strays() {
        let mut d = deployment(1, "v1", json!({}));
        d["metadata"]["uid"] = json!("d-uid");
        d["metadata"]["generation"] = json!(1);
        let template = d["spec"]["template"].clone();
        let orphan = json!({
            "metadata": {"name": "web-orphan", "namespace": "default", "uid": "o1",
                "resourceVersion": "3", "labels": {"app": "web"},
                "creationTimestamp": START},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": template},
            "status": {"replicas": 1, "availableReplicas": 1, "readyReplicas": 1},
        });
        let stray = json!({
            "metadata": {"name": "web-stray", "namespace": "default", "uid": "s1",
                "resourceVersion": "4", "labels": {"app": "other"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "web", "uid": "d-uid", "controller": true}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "other"}},
                "template": {"metadata": {"labels": {"app": "other"}}}},
        });
        let actions = reconcile(&d, &[orphan, stray], &[], START.parse().unwrap());
        let updates: Vec<&Value> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Update { kind, object, .. } if *kind == REPLICA_SETS => Some(object),
                _ => None,
            })
            .collect();
        assert_eq!(updates.len(), 2);
        assert_eq!(meta(updates[0], "name"), "web-stray");
        assert!(updates[0]["metadata"].get("ownerReferences").is_none());
        // The adopted one is the new ReplicaSet: one update with owner and annotations.
        assert_eq!(meta(updates[1], "name"), "web-orphan");
        assert_eq!(updates[1]["metadata"]["ownerReferences"][0]["uid"], "d-uid");
        assert_eq!(
            updates[1]["metadata"]["annotations"][REVISION_ANNOTATION],
            "1"
        );
        assert_eq!(updates[1]["metadata"]["resourceVersion"], "3");
    }

    #[test]
    fn hash_is_stable_and_collisions_pick_another_name() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let b = json!({"spec": {"x": 1}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(pod_template_hash(&a, None), pod_template_hash(&b, None));
        assert_ne!(pod_template_hash(&a, None), pod_template_hash(&a, Some(1)));
        assert!(
            pod_template_hash(&a, None)
                .bytes()
                .all(|c| NAME_ALPHABET.contains(&c))
        );

        let d = deployment(1, "v1", json!({}));
        let hash = pod_template_hash(&d["spec"]["template"], None);
        let mut w = World::new(d);
        // Someone else's ReplicaSet already has the name.
        w.coll("replicasets").push(json!({
            "metadata": {"name": format!("web-{hash}"), "namespace": "default", "uid": "x",
                "resourceVersion": "1", "labels": {"app": "db"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}}},
        }));
        w.settle();
        assert_eq!(int_at(&w.d(), "/status/collisionCount"), Some(1));
        let other = pod_template_hash(&w.d()["spec"]["template"], Some(1));
        assert_eq!(w.spec_replicas("v1"), vec![1]);
        assert_eq!(
            meta(&w.rs_with_image("v1")[0], "name"),
            format!("web-{other}")
        );
        assert!(rollout_complete(&w.d()));
    }

    #[test]
    fn selecting_everything_is_refused_once() {
        let mut d = deployment(1, "v1", json!({}));
        d["metadata"]["uid"] = json!("d-uid");
        d["metadata"]["generation"] = json!(2);
        d["spec"]["selector"] = json!({});
        let actions = reconcile(&d, &[], &[], START.parse().unwrap());
        assert_eq!(actions.len(), 2);
        let Action::UpdateStatus { object, .. } = &actions[1] else {
            panic!()
        };
        d["status"] = object["status"].clone();
        assert!(reconcile(&d, &[], &[], START.parse().unwrap()).is_empty());
    }
}
