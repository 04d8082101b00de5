//! What client-go's event recorder does to an event before writing it (its `EventCorrelator`),
//! as a pure core: controllers and the simulated kubelet record events through it, so
//! `kubectl describe` and `kubectl get events` read as they do against kube-controller-manager
//! and a kubelet.
//!
//! - **Counting:** an event the same as one already written (source, object, type, reason and
//!   message) becomes a patch of that event: `count` up by one, `lastTimestamp` now.
//! - **Aggregation:** from the 10th event within 10 minutes that differs from the others only by
//!   its message (a ReplicaSet's `Created pod: …`), one event stands for them all, with the
//!   message `(combined from similar events): <the latest message>`, counted as above.
//! - **Spam filter:** a source may write 25 events about one object at once, then one every 5
//!   minutes; the rest are dropped (after they were counted).
//!
//! What it remembers is bounded: each of its three tables holds at most 4,096 keys, and drops
//! the eighth used longest ago when full.

use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// Entries each table keeps (client-go's `maxLruCacheEntries`).
const CAPACITY: usize = 4096;
/// Similar events within [`AGGREGATE_INTERVAL_S`] from which one aggregate stands for them.
const AGGREGATE_MAX: usize = 10;
const AGGREGATE_INTERVAL_S: f64 = 600.0;
/// Events a source may write about one object at once, and the refill rate after that.
const SPAM_BURST: f64 = 25.0;
const SPAM_QPS: f64 = 1.0 / 300.0;
/// The prefix of an aggregate event's message.
pub const COMBINED: &str = "(combined from similar events): ";

/// What to write for an event the spam filter let through.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create this event.
    Create(Value),
    /// Patch (strategic merge) event `name` with `patch`; if it is gone, create `event`.
    Patch {
        name: String,
        patch: Value,
        event: Value,
    },
}

/// A map of at most `CAPACITY` keys that drops those used longest ago.
#[derive(Debug)]
struct Lru<V> {
    entries: HashMap<String, (u64, V)>,
    tick: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            entries: HashMap::new(),
            tick: 0,
        }
    }
}

impl<V> Lru<V> {
    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(used, v)| {
            *used = tick;
            v
        })
    }

    /// Inserts `key`; when the table is full, the eighth of it used longest ago goes first
    /// (at once, so a full table is sorted once per `CAPACITY / 8` inserts, not scanned
    /// each time).
    fn insert(&mut self, key: String, value: V) {
        self.tick += 1;
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            let mut used: Vec<u64> = self.entries.values().map(|(t, _)| *t).collect();
            used.sort_unstable();
            let cutoff = used[CAPACITY / 8 - 1];
            self.entries.retain(|_, (t, _)| *t > cutoff);
        }
        self.entries.insert(key, (self.tick, value));
    }
}

/// Similar events seen lately (their messages), for aggregation.
#[derive(Debug, Default)]
struct Similar {
    messages: BTreeSet<String>,
    last: f64,
}

/// The event last written under a key.
#[derive(Debug, Clone)]
struct Observed {
    count: i64,
    first: Value,
    name: String,
}

/// A source's token bucket for one object.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: f64,
}

/// The correlator's memory: one per recording daemon.
#[derive(Debug, Default)]
pub struct Correlator {
    similar: Lru<Similar>,
    observed: Lru<Observed>,
    spam: Lru<Bucket>,
}

fn field<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path).and_then(Value::as_str).unwrap_or_default()
}

/// The source and object of an event (client-go's spam key): its writes go in one line.
pub fn spam_key(event: &Value) -> String {
    extend_key(String::new(), event, &SOURCE_AND_OBJECT)
}

const SOURCE_AND_OBJECT: [&str; 7] = [
    "/source/component",
    "/source/host",
    "/involvedObject/kind",
    "/involvedObject/namespace",
    "/involvedObject/name",
    "/involvedObject/uid",
    "/involvedObject/apiVersion",
];
/// What, beside the source and object, makes two events the same but for their time.
const SAME: [&str; 4] = ["/involvedObject/fieldPath", "/type", "/reason", "/message"];
/// What, beside the source and object, makes two events similar: all but the message.
const SIMILAR: [&str; 4] = [
    "/type",
    "/reason",
    "/reportingComponent",
    "/reportingInstance",
];

/// `key` followed by the event's fields at `paths`, one per line.
fn extend_key(mut key: String, event: &Value, paths: &[&str]) -> String {
    for p in paths {
        if !key.is_empty() {
            key.push('\n');
        }
        key.push_str(field(event, p));
    }
    key
}

/// `t` (seconds since the epoch, fractional) as an RFC 3339 timestamp in whole seconds, as
/// `metav1.Time` is written.
fn timestamp(t: f64) -> Value {
    jiff::Timestamp::from_second(t.floor() as i64)
        .map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

impl Correlator {
    /// What to write for `event` (a core/v1 Event as a recorder makes it: count 1, first and
    /// last timestamps now) at `now` (seconds since the epoch).
    /// `None` when the spam filter drops it.
    pub fn correlate(&mut self, event: Value, now: f64) -> Option<Write> {
        let line = spam_key(&event);
        let (event, key) = self.aggregate(event, &line, now);
        let (event, patch) = self.observe(event, key);
        if !self.allow(line, now) {
            return None;
        }
        Some(match patch {
            Some(patch) => Write::Patch {
                name: field(&event, "/metadata/name").to_string(),
                patch,
                event,
            },
            None => Write::Create(event),
        })
    }

    /// Remembers what the server stored for an event (its name and count), so the next one
    /// like it patches that event.
    pub fn written(&mut self, stored: &Value) {
        let observed = Observed {
            count: stored["count"].as_i64().unwrap_or(1),
            first: stored["firstTimestamp"].clone(),
            name: field(stored, "/metadata/name").to_string(),
        };
        let key = extend_key(spam_key(stored), stored, &SAME);
        self.observed.insert(key, observed);
    }

    /// The event to record (the aggregate from the 10th similar one on) and the key it is
    /// counted under.
    fn aggregate(&mut self, event: Value, line: &str, now: f64) -> (Value, String) {
        let key = extend_key(line.to_string(), &event, &SIMILAR);
        let message = field(&event, "/message").to_string();
        // None seen lately: a fresh record.
        if self
            .similar
            .get_mut(&key)
            .is_none_or(|s| now - s.last > AGGREGATE_INTERVAL_S)
        {
            self.similar.insert(key.clone(), Similar::default());
        }
        let similar = self
            .similar
            .get_mut(&key)
            .expect("an entry just inserted is present");
        similar.messages.insert(message.clone());
        similar.last = now;
        if similar.messages.len() < AGGREGATE_MAX {
            let key = extend_key(line.to_string(), &event, &SAME);
            return (event, key);
        }
        // The set never grows past the limit.
        similar.messages.pop_first();
        let involved = event["involvedObject"].clone();
        let nanos = (now * 1e9) as u128;
        let aggregate = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{}.{nanos:x}", field(&involved, "/name")),
                "namespace": event["metadata"]["namespace"],
            },
            "involvedObject": involved,
            "reason": event["reason"],
            "message": format!("{COMBINED}{message}"),
            "type": event["type"],
            "source": event["source"],
            "firstTimestamp": timestamp(now),
            "lastTimestamp": timestamp(now),
            "count": 1,
        });
        (aggregate, key)
    }

    /// Counts `event` under `key`: the same event seen before becomes a patch of it.
    fn observe(&mut self, mut event: Value, key: String) -> (Value, Option<Value>) {
        let mut patch = None;
        if let Some(last) = self.observed.get_mut(&key).cloned()
            && last.count > 0
        {
            event["metadata"]["name"] = Value::String(last.name);
            event["firstTimestamp"] = last.first;
            event["count"] = json!(last.count + 1);
            patch = Some(json!({
                "count": event["count"],
                "lastTimestamp": event["lastTimestamp"],
                "message": event["message"],
            }));
        }
        let observed = Observed {
            count: event["count"].as_i64().unwrap_or(1),
            first: event["firstTimestamp"].clone(),
            name: field(&event, "/metadata/name").to_string(),
        };
        self.observed.insert(key, observed);
        (event, patch)
    }

    /// Takes a token from the bucket of the event's source and object.
    fn allow(&mut self, key: String, now: f64) -> bool {
        if self.spam.get_mut(&key).is_none() {
            let full = Bucket {
                tokens: SPAM_BURST,
                at: now,
            };
            self.spam.insert(key.clone(), full);
        }
        let bucket = self
            .spam
            .get_mut(&key)
            .expect("an entry just inserted is present");
        bucket.tokens = (bucket.tokens + (now - bucket.at).max(0.0) * SPAM_QPS).min(SPAM_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_800_000_000.0;

    fn event(uid: &str, reason: &str, message: &str, now: f64) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("rs.{}", now as u64), "namespace": "ns"},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "namespace": "ns", "uid": uid},
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": "replicaset-controller"},
            "firstTimestamp": timestamp(now),
            "lastTimestamp": timestamp(now),
            "count": 1,
            "reportingComponent": "replicaset-controller",
            "reportingInstance": "vkube",
        })
    }

    /// Correlates and, as the writer does, remembers what was "stored".
    fn record(c: &mut Correlator, e: Value, now: f64) -> Option<Write> {
        let out = c.correlate(e, now);
        if let Some(Write::Create(e) | Write::Patch { event: e, .. }) = &out {
            c.written(e);
        }
        out
    }

    #[test]
    fn the_same_event_again_patches_its_count_and_last_time() {
        let mut c = Correlator::default();
        let first = record(&mut c, event("u1", "Failed", "boom", T0), T0);
        let Some(Write::Create(created)) = first else {
            panic!("{first:?}")
        };
        let again = record(&mut c, event("u1", "Failed", "boom", T0 + 5.0), T0 + 5.0);
        let Some(Write::Patch {
            name,
            patch,
            event: counted,
        }) = again
        else {
            panic!("{again:?}")
        };
        assert_eq!(name, created["metadata"]["name"]);
        assert_eq!(
            patch,
            json!({"count": 2, "lastTimestamp": timestamp(T0 + 5.0), "message": "boom"})
        );
        assert_eq!(counted["firstTimestamp"], timestamp(T0));
        // Another object's event is its own.
        assert!(matches!(
            record(&mut c, event("u2", "Failed", "boom", T0 + 6.0), T0 + 6.0),
            Some(Write::Create(_))
        ));
    }

    #[test]
    fn ten_similar_events_become_one_combined_event() {
        let mut c = Correlator::default();
        let mut outs = Vec::new();
        for i in 0..20 {
            let now = T0 + f64::from(i);
            outs.push(record(
                &mut c,
                event("u1", "SuccessfulCreate", &format!("Created pod: p{i}"), now),
                now,
            ));
        }
        // Nine events as they are…
        for (i, out) in outs[..9].iter().enumerate() {
            let Some(Write::Create(e)) = out else {
                panic!("{out:?}")
            };
            assert_eq!(e["message"], format!("Created pod: p{i}"));
        }
        // …then one event that stands for the rest, its count going up with each.
        let Some(Write::Create(combined)) = &outs[9] else {
            panic!("{:?}", outs[9])
        };
        assert_eq!(combined["message"], format!("{COMBINED}Created pod: p9"));
        assert_eq!(combined["count"], 1);
        for (i, out) in outs[10..].iter().enumerate() {
            let Some(Write::Patch { name, patch, .. }) = out else {
                panic!("{out:?}")
            };
            assert_eq!(
                name,
                combined["metadata"]["name"].as_str().unwrap_or_default()
            );
            assert_eq!(patch["count"], i + 2);
            assert_eq!(
                patch["message"],
                format!("{COMBINED}Created pod: p{}", i + 10)
            );
        }
        // Ten minutes later, similar events are new again.
        let later = T0 + 20.0 + 601.0;
        let out = record(
            &mut c,
            event("u1", "SuccessfulCreate", "Created pod: q", later),
            later,
        );
        assert!(
            matches!(&out, Some(Write::Create(e)) if e["message"] == "Created pod: q"),
            "{out:?}"
        );
    }

    #[test]
    fn a_source_writes_25_events_about_an_object_then_one_every_5_minutes() {
        let mut c = Correlator::default();
        let outs: Vec<Option<Write>> = (0..30)
            .map(|i| record(&mut c, event("u1", &format!("R{i}"), "m", T0), T0))
            .collect();
        assert!(
            outs[..25]
                .iter()
                .all(|o| matches!(o, Some(Write::Create(_))))
        );
        assert!(outs[25..].iter().all(|o| o.is_none()));
        // Another object has its own budget.
        assert!(matches!(
            record(&mut c, event("u2", "R0", "m", T0), T0),
            Some(Write::Create(_))
        ));
        // A token comes back every 300 s.
        let later = T0 + 300.0;
        assert!(matches!(
            record(&mut c, event("u1", "R99", "m", later), later),
            Some(Write::Create(_))
        ));
        assert_eq!(record(&mut c, event("u1", "R98", "m", later), later), None);
    }

    #[test]
    fn a_table_keeps_the_keys_used_last() {
        let mut lru = Lru::default();
        for i in 0..CAPACITY {
            lru.insert(format!("k{i}"), i);
        }
        // k0 used again: k1 is now the oldest.
        assert_eq!(lru.get_mut("k0").copied(), Some(0));
        lru.insert("new".into(), 0);
        // The eighth used longest ago is gone (k1 ..= k512), k0 and the rest are kept.
        assert_eq!(lru.entries.len(), CAPACITY - CAPACITY / 8 + 1);
        assert!(lru.get_mut("k0").is_some());
        assert!(lru.get_mut("k1").is_none());
        assert!(lru.get_mut(&format!("k{}", CAPACITY / 8)).is_none());
        assert!(lru.get_mut(&format!("k{}", CAPACITY / 8 + 1)).is_some());
        assert!(lru.get_mut("new").is_some());
    }
}
