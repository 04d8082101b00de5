//! The CronJob controller's pure reconcile core (`batch/v1` CronJob, as kube-controller-manager
//! 1.33's `cronjob-controller` behaves).
//!
//! [`reconcile`] takes one CronJob and the Jobs of its namespace and returns the writes for
//! this moment plus when to look again (just after the next scheduled time). Per call:
//! - Jobs it controls (controller ownerReference to its uid) are matched against
//!   `status.active`: finished ones leave the list (`SawCompletedJob`), vanished ones too
//!   (`MissingJob`), a succeeded one advances `status.lastSuccessfulTime`, an unfinished one
//!   not listed is reported (`UnexpectedJob`), as upstream does;
//! - with the schedule (see [`super::cron`]) evaluated in `spec.timeZone` (UTC when unset;
//!   an unknown zone → `UnknownTimeZone` and nothing is started), the most recent unmet
//!   scheduled time since `status.lastScheduleTime` (or creation) is found; more than 100
//!   missed times → `TooManyMissedTimes`; a time older than `startingDeadlineSeconds` →
//!   `MissSchedule` and nothing is started;
//! - `concurrencyPolicy`: `Forbid` skips the run while a Job is active (`JobAlreadyActive`),
//!   `Replace` deletes the active Jobs first (`SuccessfulDelete`), `Allow` just starts;
//! - the Job is `<cronjob>-<scheduled time in minutes since the epoch>` with the template's
//!   labels and annotations, `batch.kubernetes.io/cronjob-scheduled-timestamp` (RFC 3339 in
//!   the CronJob's zone) and a controller ownerReference (`SuccessfulCreate`);
//! - finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted,
//!   oldest `status.startTime` first (`SuccessfulDelete`);
//! - `suspend` stops new runs (running Jobs are left alone).
//!
//! Deviations from upstream:
//! - a Job's uid is not known before it is created, so the new entry of `status.active` is
//!   written without `uid`/`resourceVersion` in the same plan as the create and completed on
//!   the next call (an entry without uid is matched by name). If that status write is lost,
//!   the next call finds the Job under its deterministic name and lists it, which is what
//!   upstream does on `AlreadyExists`;
//! - `Replace` of an active Job that is no longer present just drops the entry (upstream
//!   fails the sync on the failed GET);
//! - `CRON_TZ=`/`TZ=` prefixes are rejected by kube-apiserver's validation of new objects;
//!   if one reaches the controller it is honoured as robfig/cron does, with the
//!   `UnsupportedSchedule` warning;
//! - "the controller's local zone" (no `spec.timeZone`) is UTC.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, CRON_JOBS, JOBS};
use crate::controllers::cron::{self, Schedule};
use crate::controllers::job::{
    controlled_by, finished, meta_str, parse_time, rfc3339, to_duration,
};

/// What one CronJob reconcile asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CronPlan {
    /// Writes, in order.
    pub actions: Vec<Action>,
    /// Reconcile again after this long even without events (the next scheduled time).
    pub requeue_after: Option<Duration>,
}

/// Annotation on a created Job: its scheduled time, RFC 3339 in the CronJob's zone.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

const SOURCE: &str = "cronjob-controller";
/// Requeue this long after the scheduled time, so the time has surely passed.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed times than this is reported as too many.
const MANY_MISSED: i64 = 100;

/// The name of the Job for `scheduled`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missed {
    None,
    Few,
    Many,
}

struct Ctx<'a> {
    cj: &'a Value,
    sched: Schedule,
    tz: TimeZone,
}

impl Ctx<'_> {
    fn next(&self, t: Timestamp) -> Option<Timestamp> {
        self.sched.next(t, &self.tz)
    }

    /// The earliest time to consider, the most recent scheduled time in (earliest, now], and
    /// how many were missed (upstream's `mostRecentScheduleTime`).
    fn most_recent(
        &self,
        now: Timestamp,
        with_deadline: bool,
    ) -> (Timestamp, Option<Timestamp>, Missed) {
        let status_time = parse_time(self.cj.pointer("/status/lastScheduleTime"));
        let created = parse_time(self.cj.pointer("/metadata/creationTimestamp"));
        let mut earliest = status_time.or(created).unwrap_or(now);
        if with_deadline
            && let Some(sds) = self
                .cj
                .pointer("/spec/startingDeadlineSeconds")
                .and_then(Value::as_i64)
            && let Ok(deadline) = now.checked_sub(SignedDuration::from_secs(sds))
            && deadline > earliest
        {
            earliest = deadline;
        }
        let Some(t1) = self.next(earliest) else {
            return (earliest, None, Missed::None);
        };
        if now < t1 {
            return (earliest, None, Missed::None);
        }
        let Some(t2) = self.next(t1) else {
            return (earliest, Some(t1), Missed::Few);
        };
        if now < t2 {
            return (earliest, Some(t1), Missed::Few);
        }
        // Estimate how many intervals fit, jump close to now, then walk the schedule.
        let between = t2.duration_since(t1).as_secs().max(1);
        let elapsed = now.duration_since(t1).as_secs();
        let missed = elapsed / between + 1;
        let jump = SignedDuration::from_secs((missed - 2).max(0).saturating_mul(between));
        let start = t1.checked_add(jump).unwrap_or(t1);
        let mut most_recent = None;
        let mut t = self.next(start);
        while let Some(x) = t.filter(|x| *x <= now) {
            most_recent = Some(x);
            t = self.next(x);
        }
        let kind = if missed > MANY_MISSED {
            Missed::Many
        } else {
            Missed::Few
        };
        (earliest, most_recent, kind)
    }

    /// How long until just after the next scheduled time.
    fn until_next(&self, now: Timestamp) -> Option<Duration> {
        let (earliest, most_recent, missed) = self.most_recent(now, false);
        let base = match (most_recent, missed) {
            (Some(t), _) => t,
            (None, Missed::None) => earliest,
            (None, _) => now,
        };
        let next = self.next(base)?;
        Some(to_duration(next.duration_since(now)) + NEXT_SCHEDULE_DELTA)
    }
}

fn event(cj: &Value, type_: &'static str, reason: &str, message: String) -> Action {
    Action::Event {
        involved: super::action::involved_object(cj),
        event_type: type_,
        reason: reason.to_string(),
        message,
        source: SOURCE,
    }
}

fn job_ref(job: &Value) -> Value {
    json!({
        "kind": "Job",
        "namespace": meta_str(job, "namespace"),
        "name": meta_str(job, "name"),
        "uid": meta_str(job, "uid"),
        "apiVersion": "batch/v1",
        "resourceVersion": meta_str(job, "resourceVersion"),
    })
}

fn ref_str<'v>(r: &'v Value, f: &str) -> &'v str {
    r.get(f).and_then(Value::as_str).unwrap_or("")
}

/// Whether `r` (an entry of `status.active`) refers to `job`.
fn refers_to(r: &Value, job: &Value) -> bool {
    let uid = ref_str(r, "uid");
    if uid.is_empty() {
        ref_str(r, "name") == meta_str(job, "name")
    } else {
        uid == meta_str(job, "uid")
    }
}

/// RFC 3339 in `tz`, `Z` for a zero offset (Go's `time.RFC3339`).
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        rfc3339(t)
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Go's `time.RFC1123Z` in UTC: `Mon, 02 Jan 2006 15:04:05 -0700`.
fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// The Job for `scheduled`; its scheduled-timestamp annotation is in `zone` (`spec.timeZone`,
/// UTC when unset — a `TZ=` prefix does not change it, as upstream).
fn new_job(cj: &Value, scheduled: Timestamp, zone: &TimeZone) -> Value {
    let name = job_name(meta_str(cj, "name"), scheduled);
    let template = cj.pointer("/spec/jobTemplate").unwrap_or(&Value::Null);
    let labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut annotations = template
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let stamp = rfc3339_in(scheduled, zone);
    annotations.insert(SCHEDULED_TIMESTAMP.to_string(), Value::String(stamp));
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(name));
    metadata.insert(
        "namespace".into(),
        Value::String(meta_str(cj, "namespace").to_string()),
    );
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    metadata.insert("annotations".into(), Value::Object(annotations));
    metadata.insert(
        "ownerReferences".into(),
        json!([{
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": meta_str(cj, "name"),
            "uid": meta_str(cj, "uid"),
            "controller": true,
            "blockOwnerDeletion": true,
        }]),
    );
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": Value::Object(metadata),
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

fn delete_job(job: &Value) -> Action {
    Action::Delete {
        kind: JOBS,
        namespace: meta_str(job, "namespace").to_string(),
        name: meta_str(job, "name").to_string(),
        uid: Some(meta_str(job, "uid").to_string()).filter(|u| !u.is_empty()),
        propagation: Some("Background"),
    }
}

/// Reconciles one CronJob against the Jobs of its namespace at `now`.
pub fn reconcile(cj: &Value, jobs: &[Value], now: Timestamp) -> CronPlan {
    let mut plan = CronPlan::default();
    let uid = meta_str(cj, "uid");
    let children: Vec<&Value> = jobs.iter().filter(|j| controlled_by(j, uid)).collect();

    let old_status = cj.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut active: Vec<Value> = old_status
        .get("active")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut last_success = parse_time(old_status.get("lastSuccessfulTime"));
    let mut last_schedule = parse_time(old_status.get("lastScheduleTime"));
    let mut before_status: Vec<Action> = Vec::new();
    let mut after_status: Vec<Action> = Vec::new();

    // What happened to the Jobs it started.
    for j in &children {
        let pos = active.iter().position(|r| refers_to(r, j));
        let fin = finished(j);
        match (pos, fin) {
            (None, None) => {
                after_status.push(event(
                    cj,
                    "Warning",
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        meta_str(j, "name")
                    ),
                ));
            }
            (Some(i), Some((status, _))) => {
                active.remove(i);
                after_status.push(event(
                    cj,
                    "Normal",
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, status: {status}",
                        meta_str(j, "name")
                    ),
                ));
            }
            (Some(i), None) => {
                // Complete an entry written before the Job's uid was known.
                if ref_str(&active[i], "uid").is_empty() {
                    active[i] = job_ref(j);
                }
            }
            (None, Some(("Complete", _))) => {
                if let Some(t) = parse_time(j.pointer("/status/completionTime"))
                    && last_success.is_none_or(|l| t > l)
                {
                    last_success = Some(t);
                }
            }
            (None, Some(_)) => {}
        }
    }
    active.retain(|r| {
        let present = children.iter().any(|j| refers_to(r, j));
        if !present {
            after_status.push(event(
                cj,
                "Normal",
                "MissingJob",
                format!("Active job went missing: {}", ref_str(r, "name")),
            ));
        }
        present
    });

    let deleting = cj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if !deleting {
        schedule(
            cj,
            jobs,
            &children,
            now,
            &mut active,
            &mut last_schedule,
            &mut before_status,
            &mut after_status,
            &mut plan,
        );
        cleanup_finished(cj, &children, &mut before_status, &mut after_status);
    }

    let mut status = old_status.as_object().cloned().unwrap_or_default();
    if active.is_empty() {
        status.remove("active");
    } else {
        status.insert("active".into(), Value::Array(active));
    }
    if let Some(t) = last_schedule {
        status.insert("lastScheduleTime".into(), Value::String(rfc3339(t)));
    }
    if let Some(t) = last_success {
        status.insert("lastSuccessfulTime".into(), Value::String(rfc3339(t)));
    }
    let status = Value::Object(status);

    plan.actions.extend(before_status);
    if status != old_status {
        let mut obj = cj.clone();
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), status);
        }
        plan.actions.push(Action::UpdateStatus {
            kind: CRON_JOBS,
            namespace: meta_str(cj, "namespace").to_string(),
            object: obj,
        });
    }
    plan.actions.extend(after_status);
    plan
}

/// Starts (or skips) the most recent unmet scheduled run.
#[allow(clippy::too_many_arguments)]
fn schedule(
    cj: &Value,
    jobs: &[Value],
    children: &[&Value],
    now: Timestamp,
    active: &mut Vec<Value>,
    last_schedule: &mut Option<Timestamp>,
    before: &mut Vec<Action>,
    after: &mut Vec<Action>,
    plan: &mut CronPlan,
) {
    let spec = cj.get("spec").unwrap_or(&Value::Null);
    let zone_name = spec.get("timeZone").and_then(Value::as_str);
    let tz = match zone_name {
        Some(z) => match cron::load_zone(z) {
            Ok(tz) => tz,
            Err(e) => {
                after.push(event(
                    cj,
                    "Warning",
                    "UnknownTimeZone",
                    format!("invalid timeZone: {z:?}: {e}"),
                ));
                return;
            }
        },
        None => TimeZone::UTC,
    };
    if spec.get("suspend").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let raw = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
    if raw.contains("TZ") {
        after.push(event(
            cj,
            "Warning",
            "UnsupportedSchedule",
            format!(
                "CRON_TZ or TZ used in schedule {raw:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
            ),
        ));
    }
    let sched = match cron::parse(raw) {
        Ok(s) => s,
        Err(e) => {
            after.push(event(
                cj,
                "Warning",
                "UnparseableSchedule",
                format!("unparseable schedule: {raw:?} : {e}"),
            ));
            return;
        }
    };
    // A TZ= prefix wins over spec.timeZone for the schedule, as in robfig/cron.
    let annotation_zone = tz.clone();
    let tz = sched.zone().cloned().unwrap_or(tz);
    let ctx = Ctx { cj, sched, tz };
    plan.requeue_after = ctx.until_next(now);

    let (_, most_recent, missed) = ctx.most_recent(now, true);
    let Some(scheduled) = most_recent.filter(|t| *t <= now) else {
        return;
    };
    if missed == Missed::Many {
        after.push(event(
            cj,
            "Warning",
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
        ));
    }
    if let Some(sds) = spec.get("startingDeadlineSeconds").and_then(Value::as_i64)
        && scheduled
            .checked_add(SignedDuration::from_secs(sds))
            .is_ok_and(|d| d < now)
    {
        after.push(event(
            cj,
            "Warning",
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                rfc1123z(scheduled)
            ),
        ));
        return;
    }
    let name = job_name(meta_str(cj, "name"), scheduled);
    if active.iter().any(|r| ref_str(r, "name") == name) || *last_schedule == Some(scheduled) {
        return;
    }
    let policy = spec
        .get("concurrencyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Allow");
    if policy == "Forbid" && !active.is_empty() {
        after.push(event(
            cj,
            "Normal",
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into(),
        ));
        return;
    }
    if policy == "Replace" {
        for r in active.drain(..) {
            if let Some(j) = children.iter().find(|j| refers_to(&r, j)) {
                before.push(delete_job(j));
                before.push(event(
                    cj,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted job {}", meta_str(j, "name")),
                ));
            }
        }
    }
    let ns = meta_str(cj, "namespace");
    match children.iter().find(|j| meta_str(j, "name") == name) {
        // Created before, but the status write was lost: list it now.
        Some(j) => {
            if !active.iter().any(|r| refers_to(r, j)) {
                active.push(job_ref(j));
            }
        }
        // Someone else's Job holds the name: leave it (upstream's AlreadyExists, not ours).
        None if jobs.iter().any(|j| meta_str(j, "name") == name) => return,
        None => {
            let job = new_job(cj, scheduled, &annotation_zone);
            before.push(Action::Create {
                kind: JOBS,
                namespace: ns.to_string(),
                object: job,
            });
            before.push(event(
                cj,
                "Normal",
                "SuccessfulCreate",
                format!("Created job {name}"),
            ));
            active.push(json!({
                "kind": "Job",
                "namespace": ns,
                "name": name,
                "apiVersion": "batch/v1",
            }));
        }
    }
    *last_schedule = Some(scheduled);
}

/// Deletes the oldest finished Jobs beyond the history limits.
fn cleanup_finished(
    cj: &Value,
    children: &[&Value],
    before: &mut Vec<Action>,
    after: &mut Vec<Action>,
) {
    let limit = |f: &str| cj.pointer(&format!("/spec/{f}")).and_then(Value::as_i64);
    for (kind, limit) in [
        ("Complete", limit("successfulJobsHistoryLimit")),
        ("Failed", limit("failedJobsHistoryLimit")),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Value> = children
            .iter()
            .copied()
            .filter(|j| finished(j).is_some_and(|(k, _)| k == kind))
            .filter(|j| {
                j.pointer("/metadata/deletionTimestamp")
                    .is_none_or(Value::is_null)
            })
            .collect();
        let excess = done
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        if excess == 0 {
            continue;
        }
        // Oldest start first; Jobs without a start time last; name breaks ties.
        done.sort_by_key(|j| {
            let start = parse_time(j.pointer("/status/startTime"));
            (start.is_none(), start, meta_str(j, "name").to_string())
        });
        for j in done.into_iter().take(excess) {
            before.push(delete_job(j));
            after.push(event(
                cj,
                "Normal",
                "SuccessfulDelete",
                format!("Deleted job {}", meta_str(j, "name")),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    struct World {
        cj: Value,
        jobs: Vec<Value>,
        now: Timestamp,
        rv: u64,
        events: Vec<(String, String)>,
        created: Vec<String>,
        last: CronPlan,
    }

    impl World {
        fn new(spec: Value, created: &str) -> World {
            World {
                cj: json!({
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid",
                                 "resourceVersion": "1", "creationTimestamp": created},
                    "spec": spec,
                }),
                jobs: Vec::new(),
                now: ts(created),
                rv: 1,
                events: Vec::new(),
                created: Vec::new(),
                last: CronPlan::default(),
            }
        }

        fn bump(&mut self) -> String {
            self.rv += 1;
            self.rv.to_string()
        }

        fn step(&mut self) -> CronPlan {
            let plan = reconcile(&self.cj, &self.jobs, self.now);
            for a in &plan.actions {
                match a {
                    Action::Create { kind, object, .. } => {
                        assert_eq!(*kind, JOBS);
                        let name = meta_str(object, "name").to_string();
                        assert!(
                            self.jobs.iter().all(|j| meta_str(j, "name") != name),
                            "exists"
                        );
                        let mut o = object.clone();
                        let rv = self.bump();
                        o["metadata"]["uid"] = json!(format!("uid-{name}"));
                        o["metadata"]["resourceVersion"] = json!(rv);
                        o["status"] = json!({"startTime": rfc3339(self.now)});
                        self.created.push(name);
                        self.jobs.push(o);
                    }
                    Action::UpdateStatus { kind, object, .. } => {
                        assert_eq!(*kind, CRON_JOBS);
                        assert_eq!(
                            meta_str(&self.cj, "resourceVersion"),
                            meta_str(object, "resourceVersion")
                        );
                        let rv = self.bump();
                        self.cj["status"] = object["status"].clone();
                        self.cj["metadata"]["resourceVersion"] = json!(rv);
                    }
                    Action::Delete {
                        kind,
                        name,
                        propagation,
                        ..
                    } => {
                        assert_eq!(*kind, JOBS);
                        assert_eq!(*propagation, Some("Background"));
                        self.jobs.retain(|j| meta_str(j, "name") != name);
                    }
                    Action::Bind { .. } | Action::DeleteNow { .. } => panic!("unexpected {a:?}"),
                    Action::Event {
                        reason,
                        message,
                        source,
                        ..
                    } => {
                        assert_eq!(*source, "cronjob-controller");
                        self.events.push((reason.clone(), message.clone()));
                    }
                    Action::Update { .. } => panic!("unexpected update"),
                }
            }
            self.last = plan.clone();
            plan
        }

        fn settle(&mut self) {
            for _ in 0..10 {
                let plan = self.step();
                if !plan
                    .actions
                    .iter()
                    .any(|a| !matches!(a, Action::Event { .. }))
                {
                    return;
                }
            }
            panic!("did not settle: {:#?}", self.last);
        }

        fn at(&mut self, t: &str) {
            self.now = ts(t);
            self.settle();
        }

        fn finish(&mut self, name: &str, kind: &str) {
            let now = rfc3339(self.now);
            let rv = self.bump();
            let j = self
                .jobs
                .iter_mut()
                .find(|j| meta_str(j, "name") == name)
                .unwrap();
            j["status"]["conditions"] =
                json!([{"type": kind, "status": "True", "lastTransitionTime": now}]);
            if kind == "Complete" {
                j["status"]["completionTime"] = json!(now);
            }
            j["metadata"]["resourceVersion"] = json!(rv);
        }

        fn active(&self) -> Vec<String> {
            self.cj["status"]["active"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| r["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        }

        fn count(&self, reason: &str) -> usize {
            self.events.iter().filter(|(r, _)| r == reason).count()
        }
    }

    fn spec(schedule: &str, extra: Value) -> Value {
        let mut s = json!({
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "c", "image": "busybox"}]}}}
            }
        });
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    }

    fn minute_name(t: &str) -> String {
        job_name("tick", ts(t))
    }

    #[test]
    fn every_minute_fires_once_per_minute() {
        let mut w = World::new(spec("*/1 * * * *", json!({})), "2024-01-01T10:00:30Z");
        w.settle();
        assert!(w.created.is_empty());
        assert_eq!(w.last.requeue_after, Some(Duration::from_millis(30_100)));

        w.at("2024-01-01T10:01:00.1Z");
        assert_eq!(w.created, vec![minute_name("2024-01-01T10:01:00Z")]);
        assert_eq!(
            w.created[0],
            format!("tick-{}", ts("2024-01-01T10:01:00Z").as_second() / 60)
        );
        let job = &w.jobs[0];
        assert_eq!(job["metadata"]["labels"]["team"], "a");
        assert_eq!(job["metadata"]["annotations"]["note"], "x");
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-01-01T10:01:00Z"
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "cj-uid");
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(w.cj["status"]["lastScheduleTime"], "2024-01-01T10:01:00Z");
        // The active reference was completed with the uid on the next pass.
        assert_eq!(
            w.cj["status"]["active"][0]["uid"],
            json!(format!("uid-{}", w.created[0]))
        );
        assert_eq!(w.last.requeue_after, Some(Duration::from_millis(60_000)));
        assert!(w.events.contains(&(
            "SuccessfulCreate".into(),
            format!("Created job {}", w.created[0])
        )));

        // Re-running within the same minute does nothing.
        w.at("2024-01-01T10:01:30Z");
        assert_eq!(w.created.len(), 1);
        for m in 2..=5 {
            w.at(&format!("2024-01-01T10:0{m}:00.1Z"));
        }
        assert_eq!(w.created.len(), 5);
        assert_eq!(w.active().len(), 5);
        assert_eq!(w.count("UnexpectedJob"), 0);

        // Finished jobs leave the active list; success advances lastSuccessfulTime.
        let first = w.created[0].clone();
        w.finish(&first, "Complete");
        w.settle();
        assert_eq!(w.active().len(), 4);
        assert!(w.events.contains(&(
            "SawCompletedJob".into(),
            format!("Saw completed job: {first}, status: Complete")
        )));
        assert_eq!(w.cj["status"]["lastSuccessfulTime"], "2024-01-01T10:05:00Z");
    }

    #[test]
    fn forbid_skips_while_a_job_runs() {
        let mut w = World::new(
            spec("*/1 * * * *", json!({"concurrencyPolicy": "Forbid"})),
            "2024-01-01T10:00:30Z",
        );
        w.at("2024-01-01T10:01:00Z");
        assert_eq!(w.created.len(), 1);
        w.at("2024-01-01T10:02:00Z");
        w.at("2024-01-01T10:03:00Z");
        assert_eq!(w.created.len(), 1);
        assert!(w.count("JobAlreadyActive") >= 2);
        let first = w.created[0].clone();
        w.finish(&first, "Complete");
        w.at("2024-01-01T10:03:10Z");
        // The 10:03 run was skipped but is still the most recent unmet time.
        assert_eq!(w.created.len(), 2);
        assert_eq!(w.created[1], minute_name("2024-01-01T10:03:00Z"));
    }

    #[test]
    fn replace_replaces_the_running_job() {
        let mut w = World::new(
            spec("*/1 * * * *", json!({"concurrencyPolicy": "Replace"})),
            "2024-01-01T10:00:30Z",
        );
        w.at("2024-01-01T10:01:00Z");
        let first = w.created[0].clone();
        w.at("2024-01-01T10:02:00Z");
        assert_eq!(w.created.len(), 2);
        assert!(w.jobs.iter().all(|j| meta_str(j, "name") != first));
        assert_eq!(w.active(), vec![minute_name("2024-01-01T10:02:00Z")]);
        assert!(
            w.events
                .contains(&("SuccessfulDelete".into(), format!("Deleted job {first}")))
        );
    }

    #[test]
    fn history_limits_delete_oldest() {
        let mut w = World::new(
            spec(
                "*/1 * * * *",
                json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}),
            ),
            "2024-01-01T10:00:30Z",
        );
        for m in 1..=6 {
            w.at(&format!("2024-01-01T10:0{m}:00Z"));
            let name = w.created.last().unwrap().clone();
            let kind = if m % 3 == 0 { "Failed" } else { "Complete" };
            w.finish(&name, kind);
        }
        w.settle();
        let mut left: Vec<String> = w
            .jobs
            .iter()
            .map(|j| meta_str(j, "name").to_string())
            .collect();
        left.sort();
        // Complete: 1,2,4,5 → keep 4,5. Failed: 3,6 → keep 6.
        let mut want = vec![
            minute_name("2024-01-01T10:04:00Z"),
            minute_name("2024-01-01T10:05:00Z"),
            minute_name("2024-01-01T10:06:00Z"),
        ];
        want.sort();
        assert_eq!(left, want);
        assert_eq!(w.count("SuccessfulDelete"), 3);
    }

    #[test]
    fn time_zone_schedule_in_new_york() {
        let mut w = World::new(
            spec("0 9 * * *", json!({"timeZone": "America/New_York"})),
            "2024-03-08T20:00:00Z",
        );
        w.settle();
        // Next 09:00 EST is 14:00Z on 2024-03-09.
        assert_eq!(
            w.last.requeue_after,
            Some(Duration::from_secs(18 * 3600) + NEXT_SCHEDULE_DELTA)
        );
        w.at("2024-03-09T14:00:00Z");
        assert_eq!(w.created, vec![minute_name("2024-03-09T14:00:00Z")]);
        assert_eq!(
            w.jobs[0]["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-03-09T09:00:00-05:00"
        );
        // Across the spring change the next run is 09:00 EDT = 13:00Z, 23 hours later.
        assert_eq!(
            w.last.requeue_after,
            Some(Duration::from_secs(23 * 3600) + NEXT_SCHEDULE_DELTA)
        );
        w.at("2024-03-10T13:00:00Z");
        assert_eq!(w.created.len(), 2);
        assert_eq!(
            w.jobs[1]["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-03-10T09:00:00-04:00"
        );
    }

    #[test]
    fn unknown_zone_and_bad_schedule_are_reported() {
        let mut w = World::new(
            spec("0 9 * * *", json!({"timeZone": "Mars/Olympus"})),
            "2024-01-01T00:00:00Z",
        );
        w.at("2024-01-02T10:00:00Z");
        assert!(w.created.is_empty());
        assert_eq!(w.count("UnknownTimeZone"), 1);
        let mut w = World::new(spec("61 * * * *", json!({})), "2024-01-01T00:00:00Z");
        w.at("2024-01-02T10:00:00Z");
        assert!(w.created.is_empty());
        assert_eq!(w.count("UnparseableSchedule"), 1);
    }

    #[test]
    fn deadline_missed_and_too_many_missed() {
        // Created two days ago, hourly, 10 min starting deadline, now 35 min past the hour.
        let mut w = World::new(
            spec("0 * * * *", json!({"startingDeadlineSeconds": 600})),
            "2024-01-01T00:00:00Z",
        );
        w.at("2024-01-03T00:35:00Z");
        assert!(w.created.is_empty());
        // Nothing unmet within the deadline window: no event, wait for the next hour.
        assert_eq!(w.count("MissSchedule"), 0);
        assert_eq!(
            w.last.requeue_after,
            Some(Duration::from_secs(25 * 60) + NEXT_SCHEDULE_DELTA)
        );
        w.at("2024-01-03T01:05:00Z");
        assert_eq!(w.created, vec![minute_name("2024-01-03T01:00:00Z")]);

        // Without a deadline, a week of missed minutes: one job for the latest, and a warning.
        let mut w = World::new(spec("*/1 * * * *", json!({})), "2024-01-01T00:00:00Z");
        w.at("2024-01-08T00:00:30Z");
        assert_eq!(w.created, vec![minute_name("2024-01-08T00:00:00Z")]);
        assert!(w.count("TooManyMissedTimes") >= 1);

        // A scheduled time older than the deadline is reported as missed.
        let mut w = World::new(
            spec("0 * * * *", json!({"startingDeadlineSeconds": 60})),
            "2024-01-01T00:30:00Z",
        );
        let plan = reconcile(&w.cj, &w.jobs, ts("2024-01-01T01:00:30Z"));
        assert!(
            plan.actions
                .iter()
                .any(|a| matches!(a, Action::Create { .. }))
        );
        w.cj["spec"]["startingDeadlineSeconds"] = json!(10);
        // With a 10 s window and a 40 s delay the start is missed… but upstream only
        // considers times within the window, so nothing is found and nothing reported.
        let plan = reconcile(&w.cj, &w.jobs, ts("2024-01-01T01:00:40Z"));
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::Create { .. }))
        );
        assert_eq!(
            rfc1123z(ts("2024-01-01T01:00:00Z")),
            "Mon, 01 Jan 2024 01:00:00 +0000"
        );
    }

    #[test]
    fn suspend_starts_nothing_and_lost_status_is_recovered() {
        let mut w = World::new(
            spec("*/1 * * * *", json!({"suspend": true})),
            "2024-01-01T10:00:30Z",
        );
        w.at("2024-01-01T10:05:00Z");
        assert!(w.created.is_empty());
        assert_eq!(w.last.requeue_after, None);

        // A job created but whose status write was lost is listed, not created twice.
        let w2 = World::new(spec("*/1 * * * *", json!({})), "2024-01-01T10:00:30Z");
        let plan = reconcile(&w2.cj, &[], ts("2024-01-01T10:01:00Z"));
        let Some(Action::Create { object, .. }) = plan.actions.first() else {
            panic!("no create")
        };
        let mut job = object.clone();
        job["metadata"]["uid"] = json!("j1");
        let plan = reconcile(&w2.cj, &[job], ts("2024-01-01T10:01:01Z"));
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::Create { .. }))
        );
        let Some(Action::UpdateStatus { object, .. }) = plan.actions.first() else {
            panic!("no status update: {plan:#?}")
        };
        assert_eq!(object["status"]["active"][0]["uid"], "j1");
        assert_eq!(object["status"]["lastScheduleTime"], "2024-01-01T10:01:00Z");
    }
}
