//! Placement: which node a pending pod goes to. A pure core ([`schedule`]) and its adapter
//! ([`Scheduler`]), which binds through the `binding` subresource. In a virtual cluster the
//! nodes are the physical clusters (one virtual node each); in `vkube sim` they are the
//! simulated nodes.
//!
//! A node is a candidate when it is `Ready`, its `NoSchedule`/`NoExecute` taints are
//! tolerated, it is not cordoned, its labels match the pod's `nodeSelector`, and its free
//! allocatable CPU, memory and pod count fit the pod's requests. Among candidates the one
//! with the most free CPU wins, then the fewest pods, then the first name.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::controllers::action::{Action, NODES};
use crate::controllers::replicaset::meta;
use crate::controllers::{Controller, ObjKey, Plan};
use crate::store::{Store, WatchEvent};

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The node's `Ready` condition is `True`.
pub fn node_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

/// Every `NoSchedule`/`NoExecute` taint of `node` is tolerated by `pod`.
pub fn tolerates_taints(pod: &Value, node: &Value) -> bool {
    let tolerations: Vec<&Value> = pod
        .pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            matches!(
                t.get("effect").and_then(Value::as_str),
                Some("NoSchedule" | "NoExecute")
            )
        })
        .all(|t| tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let effect = s(toleration, "effect");
    if !effect.is_empty() && effect != s(taint, "effect") {
        return false;
    }
    let key = s(toleration, "key");
    if !key.is_empty() && key != s(taint, "key") {
        return false;
    }
    match s(toleration, "operator").as_str() {
        "Exists" => true,
        "" | "Equal" => !key.is_empty() && s(toleration, "value") == s(taint, "value"),
        _ => false,
    }
}

/// A quantity (`500m`, `2`, `1Gi`, `512Mi`, `1e3`) as an integer in the unit `scale` of the
/// base (1000 for CPU millicores, 1 for bytes). Unparseable quantities count as 0.
pub fn parse_quantity(q: &str, scale: i64) -> i64 {
    let q = q.trim();
    let (num, suffix) = q
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((q, ""), |at| q.split_at(at));
    let Ok(n) = num.parse::<f64>() else {
        return 0;
    };
    let mult: f64 = match suffix {
        "" => 1.0,
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        s if s.starts_with('e') => s[1..].parse::<i32>().map_or(0.0, |e| 10f64.powi(e)),
        _ => return 0,
    };
    (n * mult * scale as f64).round() as i64
}

/// One container's requests: (CPU millicores, memory bytes).
fn container_requests(c: &Value) -> (i64, i64) {
    let r = c.pointer("/resources/requests");
    let get = |k: &str, scale: i64| {
        r.and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .map_or(0, |q| parse_quantity(q, scale))
    };
    (get("cpu", 1000), get("memory", 1))
}

/// The pod's requests: (CPU millicores, memory bytes), summed over its containers (init
/// containers run one at a time: the largest counts if larger, like the scheduler).
pub fn pod_requests(pod: &Value) -> (i64, i64) {
    let containers = |path: &str| {
        pod.pointer(path)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(container_requests)
    };
    let (cpu, mem) = containers("/spec/containers").fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    let (icpu, imem) =
        containers("/spec/initContainers").fold((0, 0), |(a, b), (c, d)| (a.max(c), b.max(d)));
    (cpu.max(icpu), mem.max(imem))
}

/// Where the scheduler puts `pod`: the fitting node with the most free CPU, then the fewest
/// pods (then the first name),
/// or `None` when no node fits (the pod stays Pending).
pub fn schedule(pod: &Value, nodes: &[Value], pods: &[Value]) -> Option<String> {
    schedule_with_usage(pod, nodes, &node_usage(pods.iter()))
}

/// CPU (millicores), memory (bytes) and pod count requested on each node by the bound pods
/// that are not finished.
pub type NodeUsage = HashMap<String, (i64, i64, i64)>;

/// [`NodeUsage`] of `pods`.
pub fn node_usage<'a>(pods: impl Iterator<Item = &'a Value>) -> NodeUsage {
    sum_shares(pods.map(share_of))
}

/// A pod's share of its node: (node, CPU millicores, memory bytes); `None` when it is not
/// bound or has finished.
fn share_of(pod: &Value) -> Option<(String, i64, i64)> {
    let node = node_name(pod);
    if node.is_empty() || terminal(pod) {
        return None;
    }
    let (c, m) = pod_requests(pod);
    Some((node.to_string(), c, m))
}

fn sum_shares(shares: impl Iterator<Item = Option<(String, i64, i64)>>) -> NodeUsage {
    let mut used = NodeUsage::new();
    for (node, c, m) in shares.flatten() {
        let e = used.entry(node).or_default();
        e.0 += c;
        e.1 += m;
        e.2 += 1;
    }
    used
}

/// The parts of a stored pod that [`node_usage`] reads, parsed without the rest (a
/// scheduling decision reads every pod: building each whole would make a burst of N pods
/// cost N² object parses).
fn usage_view(json: &[u8]) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Spec {
        #[serde(rename = "nodeName", default)]
        node_name: String,
        #[serde(default)]
        containers: Vec<Containerish>,
        #[serde(rename = "initContainers", default)]
        init_containers: Vec<Containerish>,
    }
    #[derive(serde::Deserialize)]
    struct Containerish {
        #[serde(default)]
        resources: Value,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        phase: String,
    }
    #[derive(serde::Deserialize)]
    struct Pod {
        spec: Option<Spec>,
        status: Option<Status>,
    }
    let pod: Pod = serde_json::from_slice(json).ok()?;
    let spec = pod.spec?;
    if spec.node_name.is_empty() {
        return None;
    }
    let list = |cs: Vec<Containerish>| -> Vec<Value> {
        cs.into_iter()
            .map(|c| serde_json::json!({"resources": c.resources}))
            .collect()
    };
    Some(serde_json::json!({
        "spec": {"nodeName": spec.node_name, "containers": list(spec.containers),
                 "initContainers": list(spec.init_containers)},
        "status": {"phase": pod.status.map(|s| s.phase).unwrap_or_default()},
    }))
}

/// [`schedule`] with the nodes' usage already summed.
pub fn schedule_with_usage<N: Borrow<Value>>(
    pod: &Value,
    nodes: &[N],
    used: &NodeUsage,
) -> Option<String> {
    let (cpu, mem) = pod_requests(pod);
    let selector = pod.pointer("/spec/nodeSelector").and_then(Value::as_object);
    nodes
        .iter()
        .map(N::borrow)
        .filter(|n| !deleting(n) && node_ready(n) && tolerates_taints(pod, n))
        .filter(|n| {
            n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true)
                && selector.is_none_or(|sel| {
                    sel.iter().all(|(k, v)| {
                        n.pointer("/metadata/labels")
                            .and_then(|l| l.get(k))
                            .is_some_and(|lv| lv == v)
                    })
                })
        })
        .filter_map(|n| {
            let alloc = |k: &str, scale: i64| {
                n.pointer("/status/allocatable")
                    .and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .map_or(0, |q| parse_quantity(q, scale))
            };
            let (uc, um, up) = used.get(meta(n, "name")).copied().unwrap_or_default();
            let free_cpu = alloc("cpu", 1000) - uc;
            let free_mem = alloc("memory", 1) - um;
            let free_pods = alloc("pods", 1) - up;
            (free_cpu >= cpu && free_mem >= mem && free_pods >= 1)
                .then(|| ((free_cpu, free_pods), meta(n, "name").to_string()))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, name)| name)
}

/// Bindings written at once (decisions are still made one at a time).
const BINDING_WORKERS: usize = 16;

/// The scheduler: binds each unbound pod with [`schedule`].
#[derive(Default)]
pub struct Scheduler {
    usage: std::sync::Mutex<UsageCache>,
}

/// A pod's resourceVersion, and its node with the CPU and memory it requests there (`None`
/// while unbound or once finished).
type PodShare = (u64, Option<(String, i64, i64)>);

/// The nodes' usage, kept in step with the store's event window: a scheduling decision
/// catches up on the pods changed since the one before instead of reading every pod (a burst
/// of N pods would otherwise cost N² reads). Rebuilt from the store when the window has
/// moved past it.
#[derive(Default)]
struct UsageCache {
    /// The store revision it reflects; `None` until first built.
    revision: Option<u64>,
    /// Each pod's share, by uid.
    shares: HashMap<String, PodShare>,
    /// The shares summed per node.
    totals: NodeUsage,
}

impl UsageCache {
    fn add(&mut self, share: &Option<(String, i64, i64)>, sign: i64) {
        if let Some((node, c, m)) = share {
            let t = self.totals.entry(node.clone()).or_default();
            t.0 += sign * c;
            t.1 += sign * m;
            t.2 += sign;
        }
    }

    /// Records the pod `uid` at resourceVersion `rv` (news no newer than what it holds is
    /// ignored: an assumed placement stands until the pod changes).
    fn set(&mut self, uid: &str, rv: u64, json: &[u8]) {
        if self.shares.get(uid).is_some_and(|(at, _)| *at >= rv) {
            return;
        }
        self.put(uid, rv, usage_view(json).as_ref().and_then(share_of));
    }

    fn put(&mut self, uid: &str, rv: u64, share: Option<(String, i64, i64)>) {
        let old = self.shares.get(uid).and_then(|(_, s)| s.clone());
        self.add(&old, -1);
        self.add(&share, 1);
        self.shares.insert(uid.to_string(), (rv, share));
    }

    fn remove(&mut self, uid: &str) {
        if let Some((_, share)) = self.shares.remove(uid) {
            self.add(&share, -1);
        }
    }

    fn rebuild(&mut self, store: &Store) {
        // The revision first: what the list shows is at least as new, and replaying events
        // after it again is harmless.
        let revision = store.hub().revision();
        self.shares.clear();
        self.totals.clear();
        for o in store.list("pods", None, None, 0, &|_| true).items {
            self.set(&o.uid, o.resource_version, &o.json);
        }
        self.revision = Some(revision);
    }

    /// Brings the cache to the store's latest published revision.
    fn catch_up(&mut self, store: &Store) {
        let Some(from) = self.revision else {
            return self.rebuild(store);
        };
        let Ok((events, revision)) = store.hub().since(from) else {
            return self.rebuild(store);
        };
        for ev in events.iter().filter(|e| &*e.resource == "pods") {
            match ev.kind {
                crate::store::EventType::Deleted => self.remove(&ev.object.uid),
                _ => self.set(&ev.object.uid, ev.object.resource_version, &ev.object.json),
            }
        }
        self.revision = Some(revision);
    }
}

impl Scheduler {
    /// Chooses a node for the unbound `pod` (stored at `rv`) and counts it there at once, as
    /// upstream's scheduler "assumes" a pod while its binding is written: decisions made
    /// meanwhile see it. The pod's next change (the binding, or anything else) replaces the
    /// assumption.
    fn place<N: Borrow<Value>>(
        &self,
        store: &Store,
        pod: &Value,
        rv: u64,
        nodes: &[N],
    ) -> Option<String> {
        let mut cache = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.catch_up(store);
        let node = schedule_with_usage(pod, nodes, &cache.totals)?;
        let (cpu, mem) = pod_requests(pod);
        cache.put(meta(pod, "uid"), rv, Some((node.clone(), cpu, mem)));
        Some(node)
    }
}

/// Where a stored pod is: the node it is bound to, and whether it has finished.
#[derive(Debug, Default, PartialEq)]
pub struct Placement {
    /// `spec.nodeName`, when set and not empty.
    pub node: Option<String>,
    /// Its phase is `Succeeded` or `Failed`.
    pub finished: bool,
}

/// The [`Placement`] of a stored pod, read without building the rest of it (every pod event
/// asks, here and in the syncers).
pub fn placement(json: &[u8]) -> Placement {
    #[derive(serde::Deserialize, Default)]
    struct Spec {
        #[serde(rename = "nodeName", default)]
        node_name: Option<String>,
    }
    #[derive(serde::Deserialize, Default)]
    struct Status {
        #[serde(default)]
        phase: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Pod {
        #[serde(default)]
        spec: Option<Spec>,
        #[serde(default)]
        status: Option<Status>,
    }
    let Ok(pod) = serde_json::from_slice::<Pod>(json) else {
        return Placement::default();
    };
    Placement {
        node: pod.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()),
        finished: matches!(
            pod.status.and_then(|s| s.phase).as_deref(),
            Some("Succeeded" | "Failed")
        ),
    }
}

impl Controller for Scheduler {
    fn name(&self) -> &'static str {
        "default-scheduler"
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        match &*ev.resource {
            "pods" if !ev.object.deleting => {
                let Placement { node, finished } = placement(&ev.object.json);
                if node.is_none() {
                    vec![(ev.object.namespace.clone(), ev.object.name.clone())]
                } else if finished || matches!(ev.kind, crate::store::EventType::Deleted) {
                    // Capacity freed: pending pods may fit now.
                    self.all_keys(store)
                } else {
                    vec![]
                }
            }
            "nodes" => self.all_keys(store),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        store
            .list("pods", None, None, 0, &|o| !o.deleting)
            .items
            .iter()
            .filter(|o| placement(&o.json).node.is_none())
            .map(|o| (o.namespace.clone(), o.name.clone()))
            .collect()
    }

    /// Decisions are made one at a time; bindings are written concurrently.
    fn workers(&self) -> usize {
        BINDING_WORKERS
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, _now: Timestamp) -> Plan {
        let Some(stored) = store.get("pods", &key.0, &key.1) else {
            return Plan::default();
        };
        let pod = stored.parsed();
        if !node_name(&pod).is_empty() || deleting(&pod) {
            return Plan::default();
        }
        let nodes: Vec<Arc<Value>> = store
            .list(NODES.plural, None, None, 0, &|_| true)
            .items
            .iter()
            .map(|o| o.parsed())
            .collect();
        match self.place(store, &pod, stored.resource_version, &nodes) {
            Some(node) => Plan {
                actions: vec![
                    Action::Bind {
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        node: node.clone(),
                    },
                    Action::event(
                        "default-scheduler",
                        &pod,
                        "Normal",
                        "Scheduled",
                        format!("Successfully assigned {}/{} to {node}", key.0, key.1),
                    ),
                ],
                requeue_after: None,
            },
            // Nothing fits: look again later (capacity may free up without an event here).
            None => Plan {
                actions: vec![],
                requeue_after: Some(Duration::from_secs(5)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The usage cache follows binds, finishes and deletions through the event window, and
    /// rebuilds from the store once the window has moved past it.
    #[test]
    fn usage_follows_the_store() {
        use crate::store::testing::key;
        use crate::store::{Command, Precondition};
        let dir = tempfile::tempdir().expect("tempdir");
        // A window of 4 events: a burst of other writes makes the cache rebuild.
        let store = Store::open(dir.path(), 4).expect("store");
        let mut index = 0;
        let mut apply = |command: Command| {
            index += 1;
            crate::store::testing::apply(&store, index, command);
        };
        let bytes = |v: Value| bytes::Bytes::from(serde_json::to_vec(&v).expect("json"));
        let stored_pod = |name: &str, node: &str, cpu: &str, phase: &str| {
            let mut p = pod(name, node, cpu);
            p["metadata"]["uid"] = json!(format!("uid-{name}"));
            p["metadata"]["resourceVersion"] = json!(crate::store::RV_MARKER);
            p["status"] = json!({"phase": phase});
            bytes(p)
        };
        apply(Command::Create {
            key: key("namespaces", "", "default"),
            object: bytes(json!({"metadata": {"name": "default", "uid": "ns"}})),
        });
        apply(Command::Create {
            key: key("pods", "default", "a"),
            object: stored_pod("a", "n1", "500m", "Running"),
        });
        apply(Command::Create {
            key: key("pods", "default", "b"),
            object: stored_pod("b", "", "250m", "Pending"),
        });
        let s = Scheduler::default();
        // The nodes' usage as the next decision sees it.
        let used = |s: &Scheduler| {
            let mut cache = s.usage.lock().expect("usage");
            cache.catch_up(&store);
            let mut u: Vec<_> = cache
                .totals
                .clone()
                .into_iter()
                .filter(|(_, u)| u.2 > 0)
                .collect();
            u.sort();
            u
        };
        assert_eq!(used(&s), [("n1".to_string(), (500, 0, 1))]);
        let rv = |name: &str| {
            store
                .get("pods", "default", name)
                .expect("pod")
                .resource_version
        };
        apply(Command::Update {
            key: key("pods", "default", "b"),
            expected_rv: rv("b"),
            object: stored_pod("b", "n2", "250m", "Running"),
        });
        assert_eq!(
            used(&s),
            [
                ("n1".to_string(), (500, 0, 1)),
                ("n2".to_string(), (250, 0, 1))
            ]
        );
        apply(Command::Update {
            key: key("pods", "default", "a"),
            expected_rv: rv("a"),
            object: stored_pod("a", "n1", "500m", "Succeeded"),
        });
        assert_eq!(used(&s), [("n2".to_string(), (250, 0, 1))]);
        // Past the window: the cache rebuilds and still sees the deletion.
        apply(Command::Delete {
            key: key("pods", "default", "b"),
            precondition: Precondition::default(),
        });
        for i in 0..6 {
            apply(Command::Create {
                key: key("configmaps", "default", &format!("c{i}")),
                object: bytes(
                    json!({"metadata": {"name": format!("c{i}"), "uid": format!("c{i}")}}),
                ),
            });
        }
        apply(Command::Create {
            key: key("pods", "default", "c"),
            object: stored_pod("c", "n1", "100m", "Running"),
        });
        assert_eq!(used(&s), [("n1".to_string(), (100, 0, 1))]);

        // Placements are counted before their bindings are written: two pending pods placed
        // back to back do not both take the last slot of a node.
        let nodes = [node("n1", "2", "2"), node("n2", "2", "1")];
        for name in ["d", "e"] {
            apply(Command::Create {
                key: key("pods", "default", name),
                object: stored_pod(name, "", "100m", "Pending"),
            });
        }
        let pending = |name: &str| store.get("pods", "default", name).expect("pod");
        let place = |s: &Scheduler, name: &str| {
            let p = pending(name);
            s.place(&store, &p.parsed(), p.resource_version, &nodes)
        };
        // n2 has the most free CPU; then only n1 has a free slot.
        assert_eq!(place(&s, "d").as_deref(), Some("n2"));
        assert_eq!(place(&s, "e").as_deref(), Some("n1"));
        assert_eq!(
            used(&s),
            [
                ("n1".to_string(), (200, 0, 2)),
                ("n2".to_string(), (100, 0, 1))
            ]
        );
        // The binding replaces the assumption (no double count); a pod that changes without
        // being bound gives its slot back.
        apply(Command::Update {
            key: key("pods", "default", "d"),
            expected_rv: rv("d"),
            object: stored_pod("d", "n2", "100m", "Pending"),
        });
        apply(Command::Update {
            key: key("pods", "default", "e"),
            expected_rv: rv("e"),
            object: stored_pod("e", "", "100m", "Pending"),
        });
        assert_eq!(
            used(&s),
            [
                ("n1".to_string(), (100, 0, 1)),
                ("n2".to_string(), (100, 0, 1))
            ]
        );
    }

    fn node(name: &str, cpu: &str, pods: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
               "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": pods},
                          "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(name: &str, node: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"},
               "spec": {"nodeName": node,
                        "containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    #[test]
    fn quantities() {
        for (q, scale, want) in [
            ("500m", 1000, 500),
            ("2", 1000, 2000),
            ("1.5", 1000, 1500),
            ("1Gi", 1, 1 << 30),
            ("512Mi", 1, 512 << 20),
            ("1k", 1, 1000),
            ("1e3", 1, 1000),
            ("bogus", 1, 0),
        ] {
            assert_eq!(parse_quantity(q, scale), want, "{q}");
        }
    }

    #[test]
    fn spreads_by_free_cpu_and_respects_capacity() {
        let nodes = vec![node("a", "2", "3"), node("b", "2", "3")];
        let busy = vec![pod("x", "a", "1500m")];
        assert_eq!(
            schedule(&pod("new", "", "100m"), &nodes, &busy).as_deref(),
            Some("b")
        );
        assert_eq!(
            schedule(&pod("big", "", "1800m"), &nodes, &busy).as_deref(),
            Some("b")
        );
        assert_eq!(schedule(&pod("huge", "", "3"), &nodes, &busy), None);
        let full: Vec<Value> = (0..3)
            .flat_map(|i| {
                [
                    pod(&format!("x{i}"), "a", "0"),
                    pod(&format!("y{i}"), "b", "0"),
                ]
            })
            .collect();
        assert_eq!(schedule(&pod("more", "", "0"), &nodes, &full), None);
        // Equal CPU: the node with fewer pods.
        let one = vec![pod("x", "a", "0")];
        assert_eq!(
            schedule(&pod("p", "", "0"), &nodes, &one).as_deref(),
            Some("b")
        );
        let mut sel = pod("sel", "", "0");
        sel["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": "a"});
        assert_eq!(schedule(&sel, &nodes, &busy).as_deref(), Some("a"));
    }

    #[test]
    fn not_ready_and_tainted_nodes_are_skipped_unless_tolerated() {
        let mut down = node("a", "8", "10");
        down["status"]["conditions"][0]["status"] = json!("False");
        let mut tainted = node("b", "8", "10");
        tainted["spec"] =
            json!({"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]});
        let nodes = vec![down, tainted];
        assert_eq!(schedule(&pod("p", "", "0"), &nodes, &[]), None);
        let mut tolerant = pod("t", "", "0");
        tolerant["spec"]["tolerations"] =
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]);
        assert_eq!(schedule(&tolerant, &nodes, &[]).as_deref(), Some("b"));
        // Equal needs the value; an empty key with Exists tolerates everything.
        let taint = json!({"key": "k", "value": "v", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "k", "value": "v"}), &taint));
        assert!(!tolerates(&json!({"key": "k", "value": "w"}), &taint));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint));
        assert!(!tolerates(
            &json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
    }

    #[test]
    fn the_lean_view_of_a_pod_counts_like_the_whole_pod() {
        let pods = [
            json!({"metadata": {"name": "a", "namespace": "d", "managedFields": [{"manager": "x"}]},
                   "spec": {"nodeName": "n1", "containers": [
                        {"name": "c", "image": "i", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                        {"name": "d", "image": "i"}],
                     "initContainers": [{"name": "i", "image": "i", "resources": {"requests": {"cpu": "1"}}}]},
                   "status": {"phase": "Running"}}),
            json!({"metadata": {"name": "b"}, "spec": {"nodeName": "n1", "containers": [
                        {"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}}),
            json!({"metadata": {"name": "done"}, "spec": {"nodeName": "n2", "containers": []},
                   "status": {"phase": "Succeeded"}}),
            json!({"metadata": {"name": "unbound"}, "spec": {"containers": []}}),
        ];
        let whole = node_usage(pods.iter());
        let lean: Vec<Value> = pods
            .iter()
            .filter_map(|p| usage_view(&serde_json::to_vec(p).unwrap()))
            .collect();
        assert_eq!(node_usage(lean.iter()), whole);
        assert_eq!(whole.get("n1"), Some(&(1100, 64 << 20, 2)));
        assert_eq!(whole.get("n2"), None);
    }

    #[test]
    fn placement_reads_the_node_and_the_end_of_a_pod() {
        let placed = |pod: Value| placement(&serde_json::to_vec(&pod).unwrap());
        let full = json!({"metadata": {"name": "a", "annotations": {"x": "{\"nodeName\": \"n9\"}"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}});
        assert_eq!(
            placed(full),
            Placement {
                node: Some("n1".into()),
                finished: false
            }
        );
        let failed = json!({"spec": {"nodeName": "n2"}, "status": {"phase": "Failed"}});
        assert_eq!(
            placed(failed),
            Placement {
                node: Some("n2".into()),
                finished: true
            }
        );
        // Unbound, whether the field is absent, null or empty.
        for spec in [
            json!({}),
            json!({"nodeName": null}),
            json!({"nodeName": ""}),
        ] {
            assert_eq!(placed(json!({"spec": spec})), Placement::default());
        }
        assert_eq!(placement(b"{not json"), Placement::default());
    }
}
