//! A list + watch cache of one kind of managed object in a physical cluster (the syncer's
//! view of its target namespace, label `vkube.io/managed-by=<id>`): passes read it instead
//! of listing, and every change wakes the syncer.
//!
//! The cache holds only what the selector matches in the one namespace, so it is bounded by
//! what this virtual cluster wrote there. It is a hint, never the authority: creates that
//! race it get 409 and deletes carry a uid precondition. While it is not synced (first list
//! pending, or a list failed) [`Informer::snapshot`] is `None` and the pass lists itself.
//!
//! A tracking informer (pods, events) also remembers which objects changed since
//! [`Informer::take_changed`] was last called and wakes [`Informer::wake`], so pod status can
//! be copied up as soon as it changes, not at the next pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{CALL_TIMEOUT, PhysicalApi};

/// A watch is reopened (after a fresh list) after this long (server-side timeout).
const WATCH_TIMEOUT: Duration = Duration::from_secs(240);
/// Pause after a failed list or watch.
const RETRY: Duration = Duration::from_millis(500);

/// The cached objects of one resource.
pub struct Informer {
    resource: &'static str,
    state: Mutex<State>,
    tracking: bool,
    /// Notified on every change a tracking informer records.
    pub wake: Notify,
}

#[derive(Default)]
struct State {
    synced: bool,
    objects: HashMap<String, Arc<Value>>,
    /// Names added or modified since the last `take_changed` (tracking informers only;
    /// bounded by the cached objects' names).
    changed: HashSet<String>,
}

impl Informer {
    pub fn new(resource: &'static str) -> Arc<Informer> {
        Self::with_tracking(resource, false)
    }

    /// An informer that also records which objects changed (see the module docs).
    pub fn tracking(resource: &'static str) -> Arc<Informer> {
        Self::with_tracking(resource, true)
    }

    fn with_tracking(resource: &'static str, tracking: bool) -> Arc<Informer> {
        Arc::new(Informer {
            resource,
            state: Mutex::new(State::default()),
            tracking,
            wake: Notify::new(),
        })
    }

    /// The current objects that were added or modified since the last call (a relist counts
    /// as a change of everything). Always empty for an informer that does not track.
    pub fn take_changed(&self) -> Vec<Arc<Value>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let names = std::mem::take(&mut state.changed);
        names
            .iter()
            .filter_map(|n| state.objects.get(n).cloned())
            .collect()
    }

    /// The cached object `name`: `None` until the cache is synced, then whether it exists.
    pub fn lookup(&self, name: &str) -> Option<Option<Arc<Value>>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.synced.then(|| state.objects.get(name).cloned())
    }

    /// Caches an object this syncer just created (as the API returned it), so a pass does not
    /// create it again before its watch event arrives; the event replaces it.
    pub fn note_created(&self, obj: Value) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let name = name_of(&obj).to_string();
        state.objects.entry(name).or_insert_with(|| Arc::new(obj));
    }

    /// How many objects are cached.
    pub fn cached(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .objects
            .len()
    }

    /// The cached objects, or `None` until the cache is synced.
    pub fn snapshot(&self) -> Option<Vec<Arc<Value>>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .synced
            .then(|| state.objects.values().cloned().collect())
    }

    fn replace(&self, items: Vec<Value>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.objects = items
            .into_iter()
            .map(|o| (name_of(&o).to_string(), Arc::new(o)))
            .collect();
        state.synced = true;
        if self.tracking {
            state.changed = state.objects.keys().cloned().collect();
            self.wake.notify_one();
        }
    }

    /// Until the next successful list, [`Informer::snapshot`] is `None`.
    pub fn unsync(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .synced = false;
    }

    /// Applies an Added, Modified or Deleted event.
    fn apply(&self, event: kube::api::WatchEvent<Value>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            kube::api::WatchEvent::Added(o) | kube::api::WatchEvent::Modified(o) => {
                let name = name_of(&o).to_string();
                if self.tracking {
                    state.changed.insert(name.clone());
                    self.wake.notify_one();
                }
                state.objects.insert(name, Arc::new(o));
            }
            kube::api::WatchEvent::Deleted(o) => {
                let name = name_of(&o);
                state.changed.remove(name);
                state.objects.remove(name);
            }
            kube::api::WatchEvent::Bookmark(_) | kube::api::WatchEvent::Error(_) => {}
        }
    }

    /// Lists, then watches from the list's resourceVersion, until `stop`; every change
    /// notifies `changed`. Any failure (or the watch's timeout) starts over with a list.
    pub async fn run(
        self: Arc<Self>,
        api: Arc<PhysicalApi>,
        query: String,
        changed: Arc<Notify>,
        stop: CancellationToken,
    ) {
        loop {
            match api.list_object(self.resource, &query).await {
                Ok(list) => {
                    let rv = list
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let items = match list.get("items") {
                        Some(Value::Array(items)) => items.clone(),
                        _ => Vec::new(),
                    };
                    self.replace(items);
                    changed.notify_one();
                    if self.watch(&api, &query, rv, &changed, &stop).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(resource = self.resource, error = %e, "physical list failed");
                    self.unsync();
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Applies watch events until the watch ends; true when stopped.
    async fn watch(
        &self,
        api: &PhysicalApi,
        query: &str,
        rv: String,
        changed: &Notify,
        stop: &CancellationToken,
    ) -> bool {
        let opened = tokio::time::timeout(
            CALL_TIMEOUT,
            api.watch(self.resource, query, &rv, WATCH_TIMEOUT),
        )
        .await;
        let Ok(Ok(stream)) = opened else {
            return false;
        };
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return true,
                n = tokio::time::timeout(WATCH_TIMEOUT + CALL_TIMEOUT, stream.try_next()) => n,
            };
            let Ok(Ok(Some(event))) = next else {
                return false;
            };
            match event {
                // 410 Gone and other errors: start over with a list.
                kube::api::WatchEvent::Error(_) => return false,
                kube::api::WatchEvent::Bookmark(_) => {}
                change => {
                    self.apply(change);
                    changed.notify_one();
                }
            }
        }
    }
}

/// A physical object as the syncer reads it (watch events, lists, answers to writes): without
/// the `managedFields` of any `metadata`, which the syncer never reads and which are about
/// half of a pod's JSON. They are skipped while parsing, so they cost a scan, not a tree of
/// values.
#[derive(Debug, Clone)]
pub struct Lean(pub Value);

impl<'de> serde::Deserialize<'de> for Lean {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lean, D::Error> {
        d.deserialize_any(LeanValue { metadata: false }).map(Lean)
    }
}

/// Any JSON value; an object that is the value of a `metadata` key is read without its
/// `managedFields`.
#[derive(Clone, Copy)]
struct LeanValue {
    metadata: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for LeanValue {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LeanValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.metadata && key == "managedFields" {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let metadata = key == "metadata";
            out.insert(key, map.next_value_seed(LeanValue { metadata })?);
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(LeanValue { metadata: false })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A watch event of lean objects as one of values.
pub fn unlean(event: kube::api::WatchEvent<Lean>) -> kube::api::WatchEvent<Value> {
    use kube::api::WatchEvent;
    match event {
        WatchEvent::Added(Lean(o)) => WatchEvent::Added(o),
        WatchEvent::Modified(Lean(o)) => WatchEvent::Modified(o),
        WatchEvent::Deleted(Lean(o)) => WatchEvent::Deleted(o),
        WatchEvent::Bookmark(b) => WatchEvent::Bookmark(b),
        WatchEvent::Error(e) => WatchEvent::Error(e),
    }
}

fn name_of(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::WatchEvent;
    use serde_json::json;

    fn obj(name: &str, rv: &str) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": rv}})
    }

    #[test]
    fn events_keep_the_cache_current() {
        let i = Informer::new("pods");
        assert!(i.snapshot().is_none(), "not synced before the first list");
        i.replace(vec![obj("a", "1"), obj("b", "2")]);
        i.apply(WatchEvent::Added(obj("c", "3")));
        i.apply(WatchEvent::Modified(obj("a", "4")));
        i.apply(WatchEvent::Deleted(obj("b", "5")));
        let mut names: Vec<(String, String)> = i
            .snapshot()
            .expect("synced")
            .iter()
            .map(|o| {
                let rv = o
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str);
                (name_of(o).to_string(), rv.unwrap_or("").to_string())
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![("a".into(), "4".into()), ("c".into(), "3".into())]
        );
        i.unsync();
        assert!(
            i.snapshot().is_none(),
            "a failed list makes passes list again"
        );
        assert!(
            i.take_changed().is_empty(),
            "only tracking informers record changes"
        );
    }

    #[test]
    fn watched_objects_leave_out_only_their_managed_fields() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "resourceVersion": "7", "labels": {"a": "b"},
                "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]},
            "spec": {"managedFields": [1, 2.5, -3, null, true, "s"]},
            "status": {"phase": "Running"},
        });
        let event = json!({"type": "MODIFIED", "object": pod}).to_string();
        let parsed: WatchEvent<Lean> = serde_json::from_str(&event).expect("parses");
        let WatchEvent::Modified(o) = unlean(parsed) else {
            panic!("a modification");
        };
        let mut want = pod.clone();
        want["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("managedFields");
        assert_eq!(o, want);
        // A list's items too.
        let list = json!({"metadata": {"resourceVersion": "9"}, "items": [pod]}).to_string();
        let Lean(list) = serde_json::from_str(&list).expect("parses");
        assert_eq!(list["items"][0], want);
        assert!(serde_json::from_str::<Lean>("{\"a\": ").is_err());
    }

    #[test]
    fn a_tracking_informer_hands_out_each_change_once() {
        let i = Informer::tracking("pods");
        let names = |v: Vec<Arc<Value>>| {
            let mut n: Vec<String> = v.iter().map(|o| name_of(o).to_string()).collect();
            n.sort();
            n
        };
        i.replace(vec![obj("a", "1"), obj("b", "2")]);
        assert_eq!(
            names(i.take_changed()),
            ["a", "b"],
            "a list changes everything"
        );
        assert!(i.take_changed().is_empty());
        i.apply(WatchEvent::Modified(obj("a", "3")));
        i.apply(WatchEvent::Added(obj("c", "4")));
        i.apply(WatchEvent::Modified(obj("c", "5")));
        i.apply(WatchEvent::Deleted(obj("c", "6")));
        let changed = i.take_changed();
        assert_eq!(
            names(changed.clone()),
            ["a"],
            "a deleted object is not handed out"
        );
        assert_eq!(changed[0]["metadata"]["resourceVersion"], "3");
    }
}
