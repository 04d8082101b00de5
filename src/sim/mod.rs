//! `vkube sim`: a simulated physical cluster (kwok-style) for demos, tests and benchmarks.
//! It is vkube's own API server and controllers plus:
//!
//! - `N` simulated [`Node`](node_object)s, `Ready`, with configured capacity;
//! - a scheduler that binds each unbound pod to the node with the most free CPU (then the
//!   fewest pods) among those whose free capacity fits its requests and whose labels match
//!   its `nodeSelector`;
//! - a kubelet that moves a bound pod to `Running` and `Ready` (IPs, container statuses),
//!   moves pods that run to completion (`restartPolicy` `Never`/`OnFailure`, e.g. Job pods)
//!   to `Succeeded` after `sim.vkube.io/run-seconds` (default 1; `sim.vkube.io/exit-code`
//!   other than 0 makes them `Failed`), and finishes graceful deletions at once (its
//!   containers stop instantly);
//! - `pods/log` with generated lines ([`log_lines`]).
//!
//! The decisions are pure functions; [`SimKubelet`] and the shared
//! [`crate::scheduler::Scheduler`] adapt them to the controller runtime. Production code paths never depend on this module.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::controllers::action::{Action, PODS};
use crate::controllers::replicaset::meta;
use crate::controllers::{Controller, ObjKey, Plan};
use crate::store::{Store, WatchEvent};

/// Annotation: seconds a run-to-completion pod runs before it terminates.
pub const RUN_SECONDS: &str = "sim.vkube.io/run-seconds";
/// Annotation: the exit code of a run-to-completion pod (0 = Succeeded).
pub const EXIT_CODE: &str = "sim.vkube.io/exit-code";

/// What `vkube sim` simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSettings {
    /// Prefix of the node names (`<name>-node-<i>`).
    pub name: String,
    /// How many nodes.
    pub nodes: usize,
    /// CPU of each node, in millicores.
    pub cpu_millis: i64,
    /// Memory of each node, in bytes.
    pub memory_bytes: i64,
    /// Pods per node.
    pub max_pods: i64,
    /// Pods are resized in place (`pods/resize`, the `InPlacePodVerticalScaling` gate).
    pub in_place_resize: bool,
}

/// Node `i` as its kubelet would register it.
pub fn node_object(s: &SimSettings, i: usize, now: Timestamp) -> Value {
    let name = format!("{}-node-{i}", s.name);
    let now = seconds(now);
    let capacity = json!({
        "cpu": format_cpu(s.cpu_millis),
        "memory": format!("{}Ki", s.memory_bytes / 1024),
        "pods": s.max_pods.to_string(),
        "ephemeral-storage": "100Gi",
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "vkube-sim",
                "type": "vkube-sim",
            },
        },
        "spec": {"podCIDR": format!("10.244.{i}.0/24"), "podCIDRs": [format!("10.244.{i}.0/24")]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", &now),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", &now),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", &now),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", &now),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip(i)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "vkube simulated node",
                "kernelVersion": "sim",
                "kubeletVersion": "v1.33.0-vkube-sim",
                "kubeProxyVersion": "v1.33.0-vkube-sim",
                "containerRuntimeVersion": "sim://1.0",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    })
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastHeartbeatTime": now, "lastTransitionTime": now})
}

fn node_ip(i: usize) -> String {
    format!("172.30.{}.{}", i / 250, i % 250 + 2)
}

fn format_cpu(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// A stable pod IP on node `node_index`'s pod CIDR, from the pod's uid.
fn pod_ip(uid: &str, node_index: usize) -> String {
    let h = uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("10.244.{node_index}.{}", h % 250 + 2)
}

/// What the simulated kubelet does for `pod` on `node` (index `node_index`) at `now`, and
/// when to look again.
pub fn kubelet(pod: &Value, node_index: usize, now: Timestamp) -> Plan {
    let ns = meta(pod, "namespace").to_string();
    let name = meta(pod, "name").to_string();
    let uid = meta(pod, "uid").to_string();
    if deleting(pod) {
        return Plan {
            actions: vec![Action::DeleteNow {
                kind: PODS,
                namespace: ns,
                name,
                uid: Some(uid),
            }],
            requeue_after: None,
        };
    }
    if terminal(pod) {
        return Plan::default();
    }
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
    };
    let completes = matches!(
        pod.pointer("/spec/restartPolicy").and_then(Value::as_str),
        Some("Never" | "OnFailure")
    );
    let containers: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let now_s = seconds(now);
    if phase(pod) != "Running" {
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| running_status(c, &uid, &now_s, true))
            .collect();
        let ip = pod_ip(&uid, node_index);
        let mut object = pod.clone();
        object["status"] = json!({
            "phase": "Running",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_s},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_s},
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_s},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_s},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_s},
            ],
            "hostIP": node_ip(node_index),
            "hostIPs": [{"ip": node_ip(node_index)}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now_s,
            "qosClass": "BestEffort",
            "containerStatuses": statuses,
        });
        if let Some(q) = pod.pointer("/status/qosClass") {
            object["status"]["qosClass"] = q.clone();
        }
        let mut actions = vec![Action::UpdateStatus {
            kind: PODS,
            namespace: ns,
            object,
        }];
        // What `kubectl describe pod` shows of a kubelet starting containers.
        for c in &containers {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            actions.push(Action::event(
                "kubelet",
                pod,
                "Normal",
                "Started",
                format!("Started container {name}"),
            ));
        }
        return Plan {
            actions,
            requeue_after: completes.then(|| run_time(ann(RUN_SECONDS))),
        };
    }
    if let Some(object) = with_ephemeral_started(pod, &uid, &now_s) {
        return Plan {
            actions: vec![Action::UpdateStatus {
                kind: PODS,
                namespace: ns,
                object,
            }],
            // The status write brings the pod back here.
            requeue_after: None,
        };
    }
    if !completes {
        return Plan::default();
    }
    let started = pod
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
        .unwrap_or(now);
    let run = run_time(ann(RUN_SECONDS));
    let elapsed = now.duration_since(started).unsigned_abs();
    if elapsed < run {
        return Plan {
            actions: vec![],
            requeue_after: Some(run - elapsed),
        };
    }
    let code: i64 = ann(EXIT_CODE).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut object = pod.clone();
    let st = &mut object["status"];
    st["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
    if let Some(conds) = st.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds.iter_mut() {
            if matches!(
                c.get("type").and_then(Value::as_str),
                Some("Ready" | "ContainersReady" | "PodReadyToStartContainers")
            ) {
                c["status"] = json!("False");
                c["lastTransitionTime"] = json!(now_s);
                if c.get("type").and_then(Value::as_str) != Some("PodReadyToStartContainers") {
                    c["reason"] = json!("PodCompleted");
                }
            }
        }
    }
    if let Some(cs) = st
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for c in cs.iter_mut() {
            let started_at = c
                .pointer("/state/running/startedAt")
                .cloned()
                .unwrap_or(Value::Null);
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["state"] = json!({"terminated": {
                "exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": started_at,
                "finishedAt": now_s,
                "containerID": c.get("containerID").cloned().unwrap_or(Value::Null),
            }});
        }
    }
    Plan {
        actions: vec![Action::UpdateStatus {
            kind: PODS,
            namespace: ns,
            object,
        }],
        requeue_after: None,
    }
}

/// The status of container `c` of the pod `uid`, running since `started`.
fn running_status(c: &Value, uid: &str, started: &str, ready: bool) -> Value {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    json!({
        "name": name,
        "image": image,
        "imageID": format!("sim://{image}"),
        "containerID": format!("sim://{uid}-{name}"),
        "ready": ready,
        "started": true,
        "restartCount": 0,
        "state": {"running": {"startedAt": started}},
        "lastState": {},
    })
}

/// `pod` with a running status for each ephemeral container (`kubectl debug`) that has none
/// yet, or `None` when every one has a status.
fn with_ephemeral_started(pod: &Value, uid: &str, now: &str) -> Option<Value> {
    let reported: Vec<&str> = pod
        .pointer("/status/ephemeralContainerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name")?.as_str())
        .collect();
    let new: Vec<Value> = pod
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            c.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !reported.contains(&n))
        })
        // Ephemeral containers are never ready: they have no probes and serve nothing.
        .map(|c| running_status(c, uid, now, false))
        .collect();
    if new.is_empty() {
        return None;
    }
    let mut object = pod.clone();
    let status = &mut object["status"];
    match status
        .get_mut("ephemeralContainerStatuses")
        .and_then(Value::as_array_mut)
    {
        Some(list) => list.extend(new),
        None => status["ephemeralContainerStatuses"] = Value::Array(new),
    }
    Some(object)
}

fn run_time(annotation: Option<&str>) -> Duration {
    annotation
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
}

/// `pods/log` of a simulated container: one line per second since the pod started (at most
/// `tail` of them when given), each optionally with its RFC 3339 timestamp.
pub fn log_lines(
    pod: &Value,
    container: &str,
    now: Timestamp,
    tail: Option<usize>,
    timestamps: bool,
) -> Vec<String> {
    let Some(start) = pod
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
    else {
        return vec![];
    };
    let secs = now.as_second().saturating_sub(start.as_second()).max(0) + 1;
    let count = usize::try_from(secs.min(10_000)).unwrap_or(0);
    let first = tail.map_or(0, |t| count.saturating_sub(t));
    (first..count)
        .map(|i| {
            let at = Timestamp::from_second(start.as_second() + i as i64).unwrap_or(start);
            log_line(pod, container, i, at, timestamps)
        })
        .collect()
}

/// Line `i` of a simulated container's log.
pub fn log_line(pod: &Value, container: &str, i: usize, at: Timestamp, timestamps: bool) -> String {
    let text = format!(
        "vkube-sim: {}/{} container {container} line {i}",
        meta(pod, "namespace"),
        meta(pod, "name")
    );
    if timestamps {
        format!("{} {text}", seconds(at))
    } else {
        text
    }
}

fn node_index(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?
        .strip_prefix("-node-")?
        .parse()
        .ok()
}

/// Pods the simulated kubelets work on at once.
const KUBELET_WORKERS: usize = 16;

/// The simulated kubelets of all the sim's nodes.
pub struct SimKubelet(pub Arc<SimSettings>);

impl Controller for SimKubelet {
    fn name(&self) -> &'static str {
        "sim-kubelet"
    }

    /// Pods are started concurrently, as a kubelet's pod workers do (one pod at a time each).
    fn workers(&self) -> usize {
        KUBELET_WORKERS
    }

    fn keys_for(&self, ev: &WatchEvent, _store: &Store) -> Vec<ObjKey> {
        if &*ev.resource != "pods" || matches!(ev.kind, crate::store::EventType::Deleted) {
            return vec![];
        }
        vec![(ev.object.namespace.clone(), ev.object.name.clone())]
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        store
            .list("pods", None, None, 0, &|_| true)
            .items
            .iter()
            .map(|o| (o.namespace.clone(), o.name.clone()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: Timestamp) -> Plan {
        let Some(pod) = store.get("pods", &key.0, &key.1) else {
            return Plan::default();
        };
        let pod = pod.parsed();
        match node_index(node_name(&pod), &self.0.name) {
            Some(i) if i < self.0.nodes => kubelet(&pod, i, now),
            _ => Plan::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SimSettings {
        SimSettings {
            name: "sim".into(),
            nodes: 2,
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            max_pods: 3,
            in_place_resize: true,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn pod(name: &str, node: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
               "spec": {"nodeName": node, "restartPolicy": "Always",
                        "containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    #[test]
    fn nodes_are_ready_with_capacity() {
        let n = node_object(&settings(), 1, t("2026-01-01T00:00:00Z"));
        assert_eq!(n["metadata"]["name"], "sim-node-1");
        assert_eq!(n["status"]["capacity"]["cpu"], "2");
        assert_eq!(n["status"]["capacity"]["pods"], "3");
        assert_eq!(n["status"]["conditions"][3]["type"], "Ready");
        assert_eq!(n["status"]["conditions"][3]["status"], "True");
    }

    #[test]
    fn kubelet_runs_pods_and_completes_jobs() {
        let now = t("2026-01-01T00:00:00Z");
        let p = pod("web", "sim-node-0", "0");
        let plan = kubelet(&p, 0, now);
        let Action::UpdateStatus { object, .. } = &plan.actions[0] else {
            panic!("status update expected: {plan:?}");
        };
        assert_eq!(object["status"]["phase"], "Running");
        assert_eq!(object["status"]["conditions"][2]["type"], "Ready");
        assert_eq!(object["status"]["conditions"][2]["status"], "True");
        assert!(
            object["status"]["podIP"]
                .as_str()
                .unwrap()
                .starts_with("10.244.0.")
        );
        assert_eq!(plan.requeue_after, None, "a long-running pod stays Running");
        // Running again: nothing to do.
        assert!(kubelet(object, 0, now).actions.is_empty());

        let mut job = pod("job", "sim-node-1", "0");
        job["spec"]["restartPolicy"] = json!("Never");
        job["metadata"]["annotations"] = json!({RUN_SECONDS: "2"});
        let plan = kubelet(&job, 1, now);
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(2)));
        let Action::UpdateStatus {
            object: running, ..
        } = &plan.actions[0]
        else {
            panic!("status update expected");
        };
        let early = kubelet(running, 1, t("2026-01-01T00:00:01Z"));
        assert!(early.actions.is_empty());
        assert_eq!(early.requeue_after, Some(Duration::from_secs(1)));
        let done = kubelet(running, 1, t("2026-01-01T00:00:02Z"));
        let Action::UpdateStatus { object: done, .. } = &done.actions[0] else {
            panic!("status update expected");
        };
        assert_eq!(done["status"]["phase"], "Succeeded");
        assert_eq!(
            done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        let mut failing = running.clone();
        failing["metadata"]["annotations"][EXIT_CODE] = json!("3");
        let failed = kubelet(&failing, 1, t("2026-01-01T00:00:05Z"));
        let Action::UpdateStatus { object: failed, .. } = &failed.actions[0] else {
            panic!("status update expected");
        };
        assert_eq!(failed["status"]["phase"], "Failed");
    }

    /// An ephemeral container added to a running pod gets a running status, once.
    #[test]
    fn kubelet_starts_ephemeral_containers() {
        let now = t("2025-01-01T00:00:00Z");
        let Action::UpdateStatus {
            object: running, ..
        } = kubelet(&pod("p", "sim-node-0", "100m"), 0, now)
            .actions
            .remove(0)
        else {
            panic!("the pod is started first");
        };
        let mut debugged = running.clone();
        debugged["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}]);
        let plan = kubelet(&debugged, 0, now);
        let [Action::UpdateStatus { object, .. }] = &plan.actions[..] else {
            panic!("one status write: {:?}", plan.actions);
        };
        let status = &object["status"]["ephemeralContainerStatuses"][0];
        assert_eq!(status["name"], "dbg");
        assert_eq!(
            status["state"]["running"]["startedAt"],
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(object["status"]["phase"], "Running");
        assert!(kubelet(object, 0, now).actions.is_empty());
        assert!(kubelet(&running, 0, now).actions.is_empty());
    }

    #[test]
    fn kubelet_finishes_graceful_deletion() {
        let mut p = pod("web", "sim-node-0", "0");
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let plan = kubelet(&p, 0, t("2026-01-01T00:00:00Z"));
        assert!(matches!(&plan.actions[..], [Action::DeleteNow { name, .. }] if name == "web"));
    }

    #[test]
    fn logs_one_line_per_second_with_tail_and_timestamps() {
        let mut p = pod("web", "sim-node-0", "0");
        p["status"] = json!({"startTime": "2026-01-01T00:00:00Z"});
        let lines = log_lines(&p, "c", t("2026-01-01T00:00:04Z"), None, false);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "vkube-sim: default/web container c line 0");
        let tail = log_lines(&p, "c", t("2026-01-01T00:00:04Z"), Some(2), true);
        assert_eq!(
            tail,
            [
                "2026-01-01T00:00:03Z vkube-sim: default/web container c line 3",
                "2026-01-01T00:00:04Z vkube-sim: default/web container c line 4"
            ]
        );
    }
}
