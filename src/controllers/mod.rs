//! Controllers inside the virtual cluster and the runtime that drives them.
//!
//! Each controller is a pure reconcile core (`(snapshot of the store) → actions`) plus a small
//! adapter implementing [`Controller`]. The runtime:
//! - subscribes to the store's watch events and turns each into keys of the controllers it
//!   concerns (an object, or its owner), and resyncs every key periodically and whenever it
//!   may have missed events;
//! - keeps one bounded, de-duplicating work queue per controller with per-key exponential
//!   backoff on failures (level-triggered: a key queued twice is reconciled once, a key that
//!   changes while being reconciled is reconciled again);
//! - carries actions out through [`crate::api::objects::Internal`], the code path of API
//!   requests (defaulting, validation, resourceVersion preconditions), so every change is a
//!   normal replicated, watchable write and a conflict just means "reconcile again".
//!
//! Invariant: every write a controller makes goes through Raft, so a deposed leader cannot
//! commit. Controllers start with the daemon, which in a single-member group is always the
//! leader; starting and stopping them on leadership changes comes with Raft peers.

pub mod action;
pub mod crd;
pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod gc;
pub mod job;
pub mod lifecycle;
pub mod metrics;
pub mod namespace;
pub mod recorder;
pub mod replicaset;
pub mod services;
pub mod statefulset;
pub mod taints;
pub mod workloads;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::objects::Internal;
use crate::store::{Store, WatchEvent};
pub use action::{Action, Kind};

/// How often every key is reconciled even without events.
const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// The most keys a queue holds; beyond it keys are dropped and the next resync catches up.
const QUEUE_CAP: usize = 100_000;
/// Backoff bounds for a failing key.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A reconcile key: (namespace, name) of the controller's primary object.
pub type ObjKey = (String, String);

/// What a reconcile returns.
#[derive(Debug, Default)]
pub struct Plan {
    /// Changes to make, in order.
    pub actions: Vec<Action>,
    /// Reconcile this key again after this long even without events (deadlines, schedules).
    pub requeue_after: Option<Duration>,
}

/// One controller.
pub trait Controller: Send + Sync + 'static {
    /// Its name, as in logs (`replicaset-controller`).
    fn name(&self) -> &'static str;
    /// Keys to reconcile because of `ev`.
    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey>;
    /// Every key it is responsible for now.
    fn all_keys(&self, store: &Store) -> Vec<ObjKey>;
    /// Computes what to do for `key` from the store (no I/O).
    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan;
    /// How many keys it works on at once (never the same key twice at once).
    fn workers(&self) -> usize {
        1
    }
    /// How long the keys `ev` yields may wait, gathered with those of later events, before
    /// they are queued (`None`: queued at once). A key waiting or queued already is not timed
    /// again, so a burst of changes costs one reconcile per wait.
    fn gather(&self, _ev: &WatchEvent) -> Option<Duration> {
        None
    }
}

/// A de-duplicating work queue with per-key backoff.
pub struct Queue {
    inner: Mutex<QueueInner>,
    notify: Notify,
}

#[derive(Default)]
struct QueueInner {
    order: VecDeque<ObjKey>,
    pending: HashSet<ObjKey>,
    /// Keys a worker has taken and not finished.
    processing: HashSet<ObjKey>,
    /// Keys added while being processed: queued again when finished.
    dirty: HashSet<ObjKey>,
    /// Keys waiting to be queued ([`Queue::add_gathered`]).
    gathering: HashSet<ObjKey>,
    failures: HashMap<ObjKey, u32>,
}

impl Queue {
    fn new() -> Arc<Queue> {
        Arc::new(Queue {
            inner: Mutex::new(QueueInner::default()),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `key` unless it is already queued; a key being processed is queued again when
    /// its worker is done with it.
    pub fn add(&self, key: ObjKey) {
        let mut q = self.lock();
        if q.pending.len() >= QUEUE_CAP || q.pending.contains(&key) {
            return;
        }
        if q.processing.contains(&key) {
            q.dirty.insert(key);
            return;
        }
        q.pending.insert(key.clone());
        q.order.push_back(key);
        drop(q);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: ObjKey, delay: Duration, stop: CancellationToken) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => q.add(key),
                _ = stop.cancelled() => {}
            }
        });
    }

    /// Queues `key` after `delay` unless it is queued or waiting already.
    pub fn add_gathered(self: &Arc<Self>, key: ObjKey, delay: Duration, stop: CancellationToken) {
        {
            let mut q = self.lock();
            if q.pending.contains(&key) || !q.gathering.insert(key.clone()) {
                return;
            }
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    q.lock().gathering.remove(&key);
                    q.add(key);
                }
                _ = stop.cancelled() => {}
            }
        });
    }

    /// The next key, waiting for one; it is being processed until [`Queue::done`].
    pub async fn next(&self) -> ObjKey {
        loop {
            {
                let mut q = self.lock();
                if let Some(k) = q.order.pop_front() {
                    q.pending.remove(&k);
                    q.processing.insert(k.clone());
                    return k;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Marks `key` processed, queueing it again if it was added meanwhile.
    pub fn done(&self, key: &ObjKey) {
        let again = {
            let mut q = self.lock();
            q.processing.remove(key);
            q.dirty.remove(key)
        };
        if again {
            self.add(key.clone());
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn backoff(&self, key: &ObjKey) -> Duration {
        let mut q = self.lock();
        let n = q.failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let exp = (*n).min(20);
        BACKOFF_MIN
            .saturating_mul(1u32 << exp.min(16))
            .min(BACKOFF_MAX)
    }

    /// Forgets the failures of `key`.
    pub fn forget(&self, key: &ObjKey) {
        self.lock().failures.remove(key);
    }

    /// Keys queued now.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every controller vkube runs.
pub fn all(app: &Arc<ApiState>) -> Vec<Arc<dyn Controller>> {
    vec![
        Arc::new(crd::CrdController),
        Arc::new(lifecycle::NamespaceController(app.clone())),
        Arc::new(lifecycle::GarbageCollector::new(app.clone())),
        Arc::new(lifecycle::ServiceAccountController(app.clone())),
        Arc::new(workloads::ReplicaSetController),
        Arc::new(workloads::DeploymentController),
        Arc::new(workloads::StatefulSetController),
        Arc::new(workloads::DaemonSetController),
        Arc::new(workloads::DisruptionController),
        Arc::new(workloads::TaintEvictionController),
        Arc::new(workloads::JobController),
        Arc::new(workloads::CronJobController),
        Arc::new(workloads::EndpointsController),
    ]
}

/// Starts `controllers`; they stop when `stop` is cancelled.
pub fn start(app: Arc<ApiState>, controllers: Vec<Arc<dyn Controller>>, stop: CancellationToken) {
    let queues: Vec<(Arc<dyn Controller>, Arc<Queue>)> =
        controllers.into_iter().map(|c| (c, Queue::new())).collect();
    for (c, q) in &queues {
        metrics::register(c.name(), q.clone());
        for key in c.all_keys(&app.store) {
            q.add(key);
        }
        for _ in 0..c.workers().max(1) {
            tokio::spawn(worker(app.clone(), c.clone(), q.clone(), stop.clone()));
        }
    }
    tokio::spawn(dispatcher(app, queues, stop));
}

async fn dispatcher(
    app: Arc<ApiState>,
    queues: Vec<(Arc<dyn Controller>, Arc<Queue>)>,
    stop: CancellationToken,
) {
    let resync_all = |queues: &[(Arc<dyn Controller>, Arc<Queue>)]| {
        for (c, q) in queues {
            for key in c.all_keys(&app.store) {
                q.add(key);
            }
        }
    };
    loop {
        let mut live = match app.store.hub().subscribe(None) {
            Ok(start) => start.live,
            Err(_) => return,
        };
        // Anything that happened before the subscription is covered by a full pass.
        resync_all(&queues);
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = resync.tick() => resync_all(&queues),
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        for (c, q) in &queues {
                            let gather = c.gather(&ev);
                            for key in c.keys_for(&ev, &app.store) {
                                match gather {
                                    Some(delay) => q.add_gathered(key, delay, stop.clone()),
                                    None => q.add(key),
                                }
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::info!(skipped = n, "controllers fell behind the event stream; resyncing");
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

async fn worker(
    app: Arc<ApiState>,
    c: Arc<dyn Controller>,
    q: Arc<Queue>,
    stop: CancellationToken,
) {
    loop {
        let key = tokio::select! {
            _ = stop.cancelled() => return,
            k = q.next() => k,
        };
        let plan = c.reconcile(&app.store, &key, jiff::Timestamp::now());
        let (done, failed) = execute_all(&app, &plan.actions).await;
        q.done(&key);
        metrics::record(c.name(), done, failed.is_some());
        match failed {
            None => {
                q.forget(&key);
                if let Some(after) = plan.requeue_after {
                    q.add_after(key, after, stop.clone());
                }
            }
            Some(e) => {
                let delay = q.backoff(&key);
                // A conflict or a vanished object is the normal race: reconcile again.
                if matches!(
                    e,
                    ApiError::Conflict(..) | ApiError::NotFound(_) | ApiError::AlreadyExists(_)
                ) {
                    tracing::debug!(controller = c.name(), ns = %key.0, name = %key.1, error = %e, "retrying");
                } else {
                    tracing::warn!(controller = c.name(), ns = %key.0, name = %key.1, error = %e, ?delay, "reconcile failed; retrying");
                }
                q.add_after(key, delay, stop.clone());
            }
        }
    }
}

/// Carries out `actions` in order and stops at the first failure; returns how many were done
/// and the failure. A run of pod creations goes as upstream's `slowStartBatch` does: in
/// batches of 1, 2, 4, … created concurrently, each pod with the events that follow it (its
/// `SuccessfulCreate`, recorded once it exists); a batch with a failure ends the plan.
async fn execute_all(app: &Arc<ApiState>, actions: &[Action]) -> (usize, Option<ApiError>) {
    let mut done = 0;
    let mut at = 0;
    while at < actions.len() {
        let units = creation_units(&actions[at..]);
        if units.len() < 2 {
            if let Err(e) = execute(app, &actions[at]).await {
                return (done, Some(e));
            }
            done += 1;
            at += 1;
            continue;
        }
        let end = at + units.last().map_or(0, |u| u.end);
        for batch in slow_start(units.len()) {
            let results = futures::future::join_all(units[batch].iter().map(|unit| async move {
                for (n, action) in actions[at + unit.start..at + unit.end].iter().enumerate() {
                    if let Err(e) = execute(app, action).await {
                        return (n, Some(e));
                    }
                }
                (unit.len(), None)
            }))
            .await;
            let mut failed = None;
            for (n, e) in results {
                done += n;
                failed = failed.or(e);
            }
            if failed.is_some() {
                return (done, failed);
            }
        }
        at = end;
    }
    (done, None)
}

/// The pod creations `actions` starts with, each with the events right after it, as ranges
/// of `actions` (empty when it does not start with one).
fn creation_units(actions: &[Action]) -> Vec<std::ops::Range<usize>> {
    let creates_pod =
        |a: &Action| matches!(a, Action::Create { kind, .. } if *kind == action::PODS);
    let mut units = Vec::new();
    let mut at = 0;
    while actions.get(at).is_some_and(creates_pod) {
        let start = at;
        at += 1;
        while matches!(actions.get(at), Some(Action::Event { .. })) {
            at += 1;
        }
        units.push(start..at);
    }
    units
}

/// Upstream's slow-start batches over `count` items: 1, 2, 4, … (the last one what is left).
fn slow_start(count: usize) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut at, mut size) = (0, 1);
    while at < count {
        let end = (at + size).min(count);
        batches.push(at..end);
        at = end;
        size *= 2;
    }
    batches
}

fn meta<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Carries out one action through the API code path.
pub async fn execute(app: &Arc<ApiState>, action: &Action) -> Result<(), ApiError> {
    match action {
        Action::Create {
            kind,
            namespace,
            object,
        } => Internal::new(app, kind.group, kind.version, kind.plural, namespace)?
            .create(object.clone())
            .await
            .map(|_| ()),
        // A namespace's `spec.finalizers` change only through its `finalize` subresource.
        Action::Update {
            kind,
            namespace,
            object,
        } if kind.group.is_empty() && kind.plural == "namespaces" => {
            Internal::new(app, kind.group, kind.version, kind.plural, namespace)?
                .finalize_namespace(object.clone())
                .await
                .map(|_| ())
        }
        Action::Update {
            kind,
            namespace,
            object,
        } => Internal::new(app, kind.group, kind.version, kind.plural, namespace)?
            .update(object, false)
            .await
            .map(|_| ()),
        Action::UpdateStatus {
            kind,
            namespace,
            object,
        } => Internal::new(app, kind.group, kind.version, kind.plural, namespace)?
            .update(object, true)
            .await
            .map(|_| ()),
        Action::Delete {
            kind,
            namespace,
            name,
            uid,
            propagation,
        } => match Internal::new(app, kind.group, kind.version, kind.plural, namespace)?
            .delete(name, uid.clone(), *propagation)
            .await
        {
            // Already gone, or replaced by a namesake: nothing of ours to delete.
            Ok(()) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(ApiError::Conflict(..)) if uid.is_some() => Ok(()),
            Err(e) => Err(e),
        },
        Action::Bind {
            namespace,
            name,
            node,
        } => match Internal::new(app, "", "v1", "pods", namespace)?
            .bind(name, node)
            .await
        {
            // Bound meanwhile (a conflict) or gone: the next reconcile sees which.
            Ok(()) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        },
        Action::DeleteNow {
            kind,
            namespace,
            name,
            uid,
        } => match Internal::new(app, kind.group, kind.version, kind.plural, namespace)?
            .delete_now(name, uid.clone())
            .await
        {
            Ok(()) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(ApiError::Conflict(..)) if uid.is_some() => Ok(()),
            Err(e) => Err(e),
        },
        Action::Event {
            involved,
            event_type,
            reason,
            message,
            source,
        } => {
            let namespace = match meta(involved, "namespace") {
                "" => "default",
                ns => ns,
            }
            .to_string();
            let event = event_object(involved, event_type, reason, message, source, &namespace);
            record_event(app, namespace, event);
            Ok(())
        }
    }
}

/// Records an event as client-go's recorder does: counted, aggregated or dropped as the
/// correlator says, and written in the background (a controller never waits for its events;
/// beyond EVENTS_IN_FLIGHT they are dropped). The writes about one object from one source
/// are made in order, so a count's patch follows the event it counts.
fn record_event(app: &Arc<ApiState>, namespace: String, event: Value) {
    let Ok(slot) = EVENT_SLOTS.try_acquire() else {
        tracing::debug!("too many events in flight; event dropped");
        return;
    };
    let now = jiff::Timestamp::now().as_nanosecond() as f64 / 1e9;
    let line = recorder::spam_key(&event);
    let (done, write, after) = {
        let mut recorder = lock_recorder();
        let Some(write) = recorder.correlator.correlate(event, now) else {
            return;
        };
        // This write's place in its line: after the write before it, if one is in flight.
        let (done, rx) = tokio::sync::watch::channel(false);
        let after = recorder.lines.insert(line.clone(), rx);
        (done, write, after)
    };
    let app = app.clone();
    tokio::spawn(async move {
        let _slot = slot;
        if let Some(mut after) = after {
            // Done, or its writer gone: either way it is over.
            let _ = after.wait_for(|done| *done).await;
        }
        let written = write_event(&app, &namespace, write).await;
        let _ = done.send(true);
        let mut recorder = lock_recorder();
        match written {
            Ok(stored) => recorder.correlator.written(&stored),
            // Events are best effort: a missing or terminating namespace loses them.
            Err(e) => tracing::debug!(error = %e, "event not recorded"),
        }
        // The line is over unless a later write joined it.
        if recorder
            .lines
            .get(&line)
            .is_some_and(|rx| rx.same_channel(&done.subscribe()))
        {
            recorder.lines.remove(&line);
        }
    });
}

/// Writes what the correlator decided; returns the event as stored.
async fn write_event(
    app: &Arc<ApiState>,
    namespace: &str,
    write: recorder::Write,
) -> Result<Value, ApiError> {
    let api = Internal::new(app, "", "v1", "events", namespace)?;
    let bytes = match write {
        recorder::Write::Create(event) => api.create(event).await?,
        recorder::Write::Patch { name, patch, event } => match api.patch(&name, &patch).await {
            // The event counted is gone (expired or deleted): recorded anew, with its count.
            Err(ApiError::NotFound(_)) => api.create(event).await?,
            other => other?,
        },
    };
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The daemon's event recorder: the correlator, and for each source and object with an
/// event write in flight, the last one's completion.
#[derive(Default)]
struct Recorder {
    correlator: recorder::Correlator,
    lines: std::collections::HashMap<String, tokio::sync::watch::Receiver<bool>>,
}

fn lock_recorder() -> std::sync::MutexGuard<'static, Recorder> {
    static RECORDER: std::sync::LazyLock<std::sync::Mutex<Recorder>> =
        std::sync::LazyLock::new(Default::default);
    RECORDER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Events being written in the background, at most (client-go's recorder queues 1000).
const EVENTS_IN_FLIGHT: usize = 1000;
static EVENT_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(EVENTS_IN_FLIGHT);

/// A core/v1 Event about `involved`.
fn event_object(
    involved: &Value,
    event_type: &str,
    reason: &str,
    message: &str,
    source: &str,
    namespace: &str,
) -> Value {
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{suffix}", meta(involved, "name")), "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
            "name": meta(involved, "name"),
            "namespace": meta(involved, "namespace"),
            "uid": meta(involved, "uid"),
            "resourceVersion": meta(involved, "resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": source},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": source,
        "reportingInstance": "vkube",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_creations_run_in_slow_start_batches_with_their_events() {
        let create = |kind: Kind| Action::Create {
            kind,
            namespace: "ns".into(),
            object: json!({}),
        };
        let event = || {
            Action::event(
                "replicaset-controller",
                &json!({}),
                "Normal",
                "SuccessfulCreate",
                String::new(),
            )
        };
        let status = Action::UpdateStatus {
            kind: action::REPLICA_SETS,
            namespace: "ns".into(),
            object: json!({}),
        };
        let plan = vec![
            create(action::PODS),
            event(),
            create(action::PODS),
            create(action::PODS),
            event(),
            event(),
            status.clone(),
            create(action::PODS),
        ];
        // Each pod with the events after it; the status update ends the run.
        assert_eq!(creation_units(&plan), vec![0..2, 2..3, 3..6]);
        assert!(creation_units(&plan[6..]).is_empty());
        assert_eq!(creation_units(&plan[7..]), vec![0..1]);
        // Only pods: other creations keep their order.
        assert!(creation_units(&[create(action::REPLICA_SETS), create(action::PODS)]).is_empty());
        assert!(slow_start(0).is_empty());
        assert_eq!(slow_start(1), vec![0..1]);
        assert_eq!(slow_start(10), vec![0..1, 1..3, 3..7, 7..10]);
        assert_eq!(slow_start(500).len(), 9);
    }

    /// Keys gathered over a wait are queued once, when it ends; a key already queued is not
    /// timed.
    #[tokio::test(start_paused = true)]
    async fn gathered_keys_are_queued_once_after_their_wait() {
        let q = Queue::new();
        let stop = CancellationToken::new();
        let k = ("ns".to_string(), "rs".to_string());
        for _ in 0..3 {
            q.add_gathered(k.clone(), Duration::from_millis(50), stop.clone());
        }
        tokio::task::yield_now().await;
        assert!(q.is_empty(), "queued before its wait ended");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(q.len(), 1);
        // Queued already: another change joins it instead of waiting again.
        q.add_gathered(k.clone(), Duration::from_millis(50), stop.clone());
        assert_eq!(q.next().await, k);
        q.done(&k);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(q.is_empty(), "queued twice");
    }

    #[tokio::test]
    async fn queue_deduplicates_and_backs_off() {
        let q = Queue::new();
        q.add(("a".into(), "x".into()));
        q.add(("a".into(), "x".into()));
        q.add(("a".into(), "y".into()));
        assert_eq!(q.len(), 2);
        let x = ("a".to_string(), "x".to_string());
        assert_eq!(q.next().await, x);
        // Re-added while a worker has it: queued again once the worker is done, so no two
        // workers reconcile one key at once.
        q.add(x.clone());
        q.add(x.clone());
        assert_eq!(q.len(), 1);
        assert_eq!(q.next().await, ("a".to_string(), "y".to_string()));
        q.done(&x);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next().await, x);
        q.done(&x);
        assert!(q.is_empty());
        // Done without being re-added: not queued.
        q.add(x.clone());
        assert_eq!(q.next().await, x);
        q.done(&x);
        assert!(q.is_empty());
        let k = ("a".to_string(), "z".to_string());
        let d1 = q.backoff(&k);
        let d2 = q.backoff(&k);
        assert!(d2 > d1);
        for _ in 0..40 {
            q.backoff(&k);
        }
        assert_eq!(q.backoff(&k), BACKOFF_MAX);
        q.forget(&k);
        assert_eq!(q.backoff(&k), BACKOFF_MIN * 2);
    }
}
