//! Which physical Events the syncer copies up, as a pure core: the relay remembers what it
//! copied (name → resourceVersion) and the events that came before their pod (the pod's watch
//! event may lag the event's), and each pass hands it only the events changed since the last.
//! Both memories are bounded by the events still in the physical namespace.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::translate;
use crate::controllers::replicaset::meta;

/// How long passes look again at a physical event about a pod they did not know yet.
pub const PENDING_FOR: Duration = Duration::from_secs(60);
/// Copied events are forgotten (when gone physically) once there are this many more of them
/// than twice the events cached.
const PRUNE_SLACK: usize = 1024;

/// The virtual pod (namespace, name, uid) a physical pod was made for.
pub type VirtualPod = (String, String, String);

/// An event to copy up now.
#[derive(Debug)]
pub struct Relay {
    pub event: Arc<Value>,
    /// The physical pod it is about.
    pub pod: String,
    pub virtual_pod: VirtualPod,
}

/// What the relay remembers between passes.
#[derive(Default)]
pub struct EventRelay {
    /// Events copied up: name → resourceVersion.
    synced: HashMap<String, String>,
    /// Events about a pod not known yet: name → until when to look at them again.
    pending: HashMap<String, Instant>,
}

impl EventRelay {
    /// The events to copy up now: those of `changed` (since the last call) and those still
    /// waiting for their pod (`lookup` gives an event's current version by name) that are
    /// about a synced pod (`virtual_pod` of a physical pod's name), copied-up kinds only, at
    /// a version not copied yet. Each is taken as copied: a failed write is retried only when
    /// the event changes again.
    pub fn select(
        &mut self,
        changed: Vec<Arc<Value>>,
        lookup: impl Fn(&str) -> Option<Arc<Value>>,
        mut virtual_pod: impl FnMut(&str) -> Option<VirtualPod>,
        now: Instant,
    ) -> Vec<Relay> {
        let mut candidates: HashMap<String, (Arc<Value>, Instant)> = changed
            .into_iter()
            .map(|e| (meta(&e, "name").to_string(), (e, now + PENDING_FOR)))
            .collect();
        for (n, until) in std::mem::take(&mut self.pending) {
            if until > now
                && let Some(e) = lookup(&n)
            {
                candidates.entry(n).or_insert((e, until));
            }
        }
        let mut relays = Vec::new();
        for (n, (event, until)) in candidates {
            let about = event
                .pointer("/involvedObject/name")
                .and_then(Value::as_str);
            let (Some(pod), true) = (about, translate::copied_up(&event)) else {
                continue;
            };
            let rv = meta(&event, "resourceVersion");
            if self.synced.get(&n).is_some_and(|synced| synced == rv) {
                continue;
            }
            let Some(virtual_pod) = virtual_pod(pod) else {
                self.pending.insert(n, until);
                continue;
            };
            self.synced.insert(n, rv.to_string());
            relays.push(Relay {
                pod: pod.to_string(),
                virtual_pod,
                event,
            });
        }
        relays
    }

    /// Forgets the copied events that are gone physically (`exists`; it must answer true
    /// while that is not known), once there are many more of them than the `cached` events.
    pub fn prune(&mut self, cached: usize, exists: impl Fn(&str) -> bool) {
        if self.synced.len() > 2 * cached + PRUNE_SLACK {
            self.synced.retain(|n, _| exists(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, rv: &str, pod: &str, reason: &str) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "resourceVersion": rv},
            "involvedObject": {"kind": "Pod", "name": pod},
            "reason": reason,
        }))
    }

    fn known(pod: &str) -> Option<VirtualPod> {
        (pod == "p1").then(|| ("default".into(), "web".into(), "uid-1".into()))
    }

    fn names(relays: &[Relay]) -> Vec<String> {
        let mut n: Vec<String> = relays
            .iter()
            .map(|r| meta(&r.event, "name").to_string())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn each_version_of_an_event_about_a_synced_pod_is_copied_once() {
        let mut relay = EventRelay::default();
        let now = Instant::now();
        let started = event("p1.a", "5", "p1", "Started");
        let relays = relay.select(
            vec![
                started.clone(),
                event("p1.b", "6", "p1", "Scheduled"),
                event("other.c", "7", "other", "Started"),
            ],
            |_| None,
            known,
            now,
        );
        assert_eq!(
            names(&relays),
            ["p1.a"],
            "not Scheduled, not about unknown pods"
        );
        assert_eq!(relays[0].pod, "p1");
        assert_eq!(relays[0].virtual_pod, known("p1").expect("known"));
        // A relist hands out everything again: what was copied at that version is not.
        let again = relay.select(vec![started], |_| None, known, now);
        assert!(again.is_empty(), "{again:?}");
        let newer = relay.select(
            vec![event("p1.a", "9", "p1", "Started")],
            |_| None,
            known,
            now,
        );
        assert_eq!(names(&newer), ["p1.a"], "a new version is copied");
    }

    #[test]
    fn an_event_before_its_pod_waits_for_it_for_a_while() {
        let mut relay = EventRelay::default();
        let now = Instant::now();
        let early = event("p2.a", "3", "p2", "Pulled");
        let current = |n: &str| (n == "p2.a").then(|| early.clone());
        assert!(
            relay
                .select(vec![early.clone()], current, known, now)
                .is_empty()
        );
        // The next pass knows the pod: the event is copied though it did not change.
        let pod_known =
            |p: &str| (p == "p2").then(|| ("default".into(), "db".into(), "uid-2".into()));
        let later = relay.select(vec![], current, pod_known, now + Duration::from_secs(1));
        assert_eq!(names(&later), ["p2.a"]);
        assert!(
            relay.select(vec![], current, pod_known, now).is_empty(),
            "copied once"
        );

        // One whose pod never comes is dropped after PENDING_FOR.
        let mut relay = EventRelay::default();
        assert!(
            relay
                .select(vec![early.clone()], current, known, now)
                .is_empty()
        );
        let too_late = now + PENDING_FOR + Duration::from_secs(1);
        assert!(relay.select(vec![], current, known, too_late).is_empty());
        assert!(
            relay
                .select(vec![], current, pod_known, too_late)
                .is_empty(),
            "no longer waiting"
        );
        // And one that is gone physically is dropped at once.
        let mut relay = EventRelay::default();
        assert!(
            relay
                .select(vec![early.clone()], current, known, now)
                .is_empty()
        );
        assert!(relay.select(vec![], |_| None, pod_known, now).is_empty());
        assert!(relay.select(vec![], current, pod_known, now).is_empty());
    }

    #[test]
    fn copied_events_are_forgotten_once_gone_and_many() {
        let mut relay = EventRelay::default();
        let now = Instant::now();
        let events: Vec<Arc<Value>> = (0..PRUNE_SLACK + 20)
            .map(|i| event(&format!("p1.{i}"), "1", "p1", "Started"))
            .collect();
        assert_eq!(
            relay.select(events.clone(), |_| None, known, now).len(),
            events.len()
        );
        relay.prune(events.len(), |_| false);
        assert_eq!(
            relay.synced.len(),
            events.len(),
            "not while the namespace holds as many"
        );
        relay.prune(5, |n| n == "p1.0");
        assert_eq!(relay.synced.len(), 1, "only what is still there");
        assert!(
            relay
                .select(vec![events[0].clone()], |_| None, known, now)
                .is_empty(),
            "still remembered"
        );
    }
}
