//! Runtime adapters of the workload controllers: which events concern which keys, and the
//! snapshot each pure core reconciles (ReplicaSet, Deployment, Job, CronJob).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::action::{self, Action};
use super::{
    Controller, ObjKey, Plan, cronjob, daemonset, deployment, disruption, job, replicaset,
    statefulset, taints,
};
use crate::store::{Store, StoredObject, WatchEvent};

const PODS: &str = "pods";
const REPLICA_SETS: &str = "replicasets.apps";
const DEPLOYMENTS: &str = "deployments.apps";
const JOBS: &str = "jobs.batch";
const CRON_JOBS: &str = "cronjobs.batch";
/// How long pod changes wait to be folded into one ReplicaSet reconcile.
const POD_CHANGES_GATHERED: Duration = Duration::from_millis(50);

/// The key of the event object's controlling owner of kind `kind`, if it has one.
fn owned_by(ev: &WatchEvent, kind: &str) -> Vec<ObjKey> {
    ev.object
        .controller_of(kind)
        .map(|owner| vec![(ev.object.namespace.clone(), owner.to_string())])
        .unwrap_or_default()
}

/// A cheap pre-filter from `spec.selector.matchLabels` (objects it rejects cannot match the
/// selector; expressions are left to the core).
fn match_labels(owner: &Value) -> Vec<(String, String)> {
    owner
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Objects of `resource` in `namespace` that carry `labels` (all of them when empty).
fn objects_with(
    store: &Store,
    resource: &str,
    namespace: &str,
    labels: &[(String, String)],
) -> Vec<Value> {
    shared_with(store, resource, namespace, labels)
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect()
}

/// Objects of `resource` in `namespace` that carry `labels`, shared from the store's parse
/// cache (for cores that only read).
fn shared_with(
    store: &Store,
    resource: &str,
    namespace: &str,
    labels: &[(String, String)],
) -> Vec<Arc<Value>> {
    labelled(store, resource, namespace, labels)
        .iter()
        .map(|o| o.parsed())
        .collect()
}

/// The stored objects of `resource` in `namespace` that carry `labels`.
fn labelled(
    store: &Store,
    resource: &str,
    namespace: &str,
    labels: &[(String, String)],
) -> Vec<Arc<StoredObject>> {
    store
        .list(resource, Some(namespace), None, 0, &|o: &StoredObject| {
            labels.iter().all(|(k, v)| o.labels.get(k) == Some(v))
        })
        .items
}

fn all_keys(store: &Store, resource: &str) -> Vec<ObjKey> {
    store
        .list(resource, None, None, 0, &|_| true)
        .items
        .iter()
        .map(|o| (o.namespace.clone(), o.name.clone()))
        .collect()
}

/// Keys of every object of `resource` in `namespace` (for orphans that any of them may adopt).
fn keys_in(store: &Store, resource: &str, namespace: &str) -> Vec<ObjKey> {
    store
        .list(resource, Some(namespace), None, 0, &|_| true)
        .items
        .iter()
        .map(|o| (o.namespace.clone(), o.name.clone()))
        .collect()
}

/// The ReplicaSet controller.
pub struct ReplicaSetController;

impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            REPLICA_SETS => vec![(ns.clone(), ev.object.name.clone())],
            PODS => match ev.object.controller_of("ReplicaSet") {
                Some(owner) => vec![(ns.clone(), owner.to_string())],
                None if !ev.object.has_controller() => keys_in(store, REPLICA_SETS, ns),
                None => vec![],
            },
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, REPLICA_SETS)
    }

    /// A reconcile reads every pod of the namespace: the pod changes of a burst (a rollout's
    /// pods turning Running one by one) are folded into one reconcile per
    /// [`POD_CHANGES_GATHERED`] instead of one each.
    fn gather(&self, ev: &WatchEvent) -> Option<Duration> {
        (&*ev.resource == PODS).then_some(POD_CHANGES_GATHERED)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(rs) = store.get(REPLICA_SETS, &key.0, &key.1) else {
            return Plan::default();
        };
        let rs = rs.value();
        // Each pod's facts are kept with its stored version: a sync of a thousand pods reads
        // only what changed since the last one.
        let stored = labelled(store, PODS, &key.0, &match_labels(&rs));
        let pods: Vec<Arc<Value>> = stored.iter().map(|o| o.parsed()).collect();
        let facts: Vec<Arc<replicaset::PodFacts>> = stored
            .iter()
            .map(|o| o.derived(replicaset::PodFacts::of))
            .collect();
        let observed = replicaset::observe(&pods, &facts);
        Plan {
            actions: replicaset::reconcile_observed(&rs, &observed, now),
            requeue_after: replicaset::requeue_after(&rs, &pods, now),
        }
    }
}

/// The Deployment controller.
pub struct DeploymentController;

impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        deployment::CONTROLLER_NAME
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            DEPLOYMENTS => vec![(ns.clone(), ev.object.name.clone())],
            REPLICA_SETS => match ev.object.controller_of("Deployment") {
                Some(owner) => vec![(ns.clone(), owner.to_string())],
                None if !ev.object.has_controller() => keys_in(store, DEPLOYMENTS, ns),
                None => vec![],
            },
            // Pod readiness reaches a Deployment through its ReplicaSet's status. Only the
            // Recreate strategy looks at pods (whether old ones still run), so only its
            // Deployments follow pod events (upstream follows pod deletions for it).
            PODS => ev
                .object
                .controller_of("ReplicaSet")
                .and_then(|rs| store.get(REPLICA_SETS, ns, rs))
                .and_then(|rs| rs.controller_of("Deployment").map(str::to_string))
                .filter(|d| {
                    store
                        .get(DEPLOYMENTS, ns, d)
                        .is_some_and(|d| deployment::recreates(&d.parsed()))
                })
                .map(|d| vec![(ns.clone(), d)])
                .unwrap_or_default(),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, DEPLOYMENTS)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(d) = store.get(DEPLOYMENTS, &key.0, &key.1) else {
            return Plan::default();
        };
        let d = d.value();
        let labels = match_labels(&d);
        let rss = objects_with(store, REPLICA_SETS, &key.0, &labels);
        let pods = if deployment::recreates(&d) {
            objects_with(store, PODS, &key.0, &labels)
        } else {
            Vec::new()
        };
        Plan {
            actions: deployment::reconcile(&d, &rss, &pods, now),
            requeue_after: deployment::requeue_after(&d, now),
        }
    }
}

/// The Job controller.
pub struct JobController;

impl Controller for JobController {
    fn name(&self) -> &'static str {
        "job-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, _store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            JOBS => vec![(ns.clone(), ev.object.name.clone())],
            PODS => owned_by(ev, "Job"),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, JOBS)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(j) = store.get(JOBS, &key.0, &key.1) else {
            return Plan::default();
        };
        let j = j.value();
        let pods = objects_with(store, PODS, &key.0, &match_labels(&j));
        let plan = job::reconcile(&j, &pods, now);
        Plan {
            actions: plan.actions,
            requeue_after: plan.requeue_after,
        }
    }
}

/// The CronJob controller.
pub struct CronJobController;

impl Controller for CronJobController {
    fn name(&self) -> &'static str {
        "cronjob-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, _store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            CRON_JOBS => vec![(ns.clone(), ev.object.name.clone())],
            JOBS => owned_by(ev, "CronJob"),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, CRON_JOBS)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(cj) = store.get(CRON_JOBS, &key.0, &key.1) else {
            return Plan::default();
        };
        let cj = cj.value();
        let jobs = objects_with(store, JOBS, &key.0, &[]);
        let plan = cronjob::reconcile(&cj, &jobs, now);
        Plan {
            actions: plan.actions,
            // A schedule far in the future is still re-checked by the periodic resync.
            requeue_after: plan.requeue_after.map(|d| d.min(Duration::from_secs(3600))),
        }
    }
}

/// Endpoints and EndpointSlices of Services with selectors, from their ready pods.
pub struct EndpointsController;

impl Controller for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoints-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            "services" => vec![(ns.clone(), ev.object.name.clone())],
            PODS => keys_in(store, "services", ns),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, "services")
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, _now: jiff::Timestamp) -> Plan {
        let endpoints = store.get("endpoints", &key.0, &key.1).map(|o| o.value());
        let Some(svc) = store.get("services", &key.0, &key.1) else {
            // The Service is gone: so are its Endpoints (slices follow by ownerReference).
            return Plan {
                actions: endpoints
                    .map(|_| vec![super::services::endpoints_for_deleted(&key.0, &key.1)])
                    .unwrap_or_default(),
                requeue_after: None,
            };
        };
        let svc = svc.value();
        let selector: Vec<(String, String)> = svc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        if selector.is_empty() {
            return Plan::default();
        }
        let pods = objects_with(store, PODS, &key.0, &selector);
        let slices = objects_with(
            store,
            "endpointslices.discovery.k8s.io",
            &key.0,
            &[("kubernetes.io/service-name".to_string(), key.1.clone())],
        );
        Plan {
            actions: super::services::endpoints_for(&svc, &pods, endpoints.as_ref(), &slices),
            requeue_after: None,
        }
    }
}

const STATEFUL_SETS: &str = "statefulsets.apps";
const DAEMON_SETS: &str = "daemonsets.apps";
const CONTROLLER_REVISIONS: &str = "controllerrevisions.apps";
const PVCS: &str = "persistentvolumeclaims";

/// The StatefulSet controller.
pub struct StatefulSetController;

impl Controller for StatefulSetController {
    fn name(&self) -> &'static str {
        statefulset::CONTROLLER_NAME
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            STATEFUL_SETS => vec![(ns.clone(), ev.object.name.clone())],
            PODS | CONTROLLER_REVISIONS => match ev.object.controller_of("StatefulSet") {
                Some(owner) => vec![(ns.clone(), owner.to_string())],
                None if !ev.object.has_controller() && &*ev.resource == PODS => {
                    keys_in(store, STATEFUL_SETS, ns)
                }
                None => vec![],
            },
            // Claims are named `<template>-<set>-<ordinal>`: wake the set whose name fits.
            PVCS => statefulset::parent_and_ordinal(&ev.object.name)
                .map(|_| {
                    keys_in(store, STATEFUL_SETS, ns)
                        .into_iter()
                        .filter(|(_, set)| ev.object.name.contains(&format!("-{set}-")))
                        .collect()
                })
                .unwrap_or_default(),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, STATEFUL_SETS)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(sts) = store.get(STATEFUL_SETS, &key.0, &key.1) else {
            return Plan::default();
        };
        let sts = sts.value();
        let pods = objects_with(store, PODS, &key.0, &match_labels(&sts));
        let pvcs = objects_with(store, PVCS, &key.0, &[]);
        let revisions = objects_with(store, CONTROLLER_REVISIONS, &key.0, &[]);
        Plan {
            actions: statefulset::reconcile(&sts, &pods, &pvcs, &revisions, now),
            requeue_after: statefulset::requeue_after(&sts, &pods, now),
        }
    }
}

/// The DaemonSet controller: one pod per eligible virtual node.
pub struct DaemonSetController;

impl Controller for DaemonSetController {
    fn name(&self) -> &'static str {
        daemonset::CONTROLLER_NAME
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        let ns = &ev.object.namespace;
        match &*ev.resource {
            DAEMON_SETS => vec![(ns.clone(), ev.object.name.clone())],
            PODS => owned_by(ev, "DaemonSet"),
            "nodes" => all_keys(store, DAEMON_SETS),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, DAEMON_SETS)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(ds) = store.get(DAEMON_SETS, &key.0, &key.1) else {
            return Plan::default();
        };
        let ds = ds.value();
        let pods = objects_with(store, PODS, &key.0, &match_labels(&ds));
        let nodes: Vec<Value> = store
            .list("nodes", None, None, 0, &|_| true)
            .items
            .iter()
            .map(|o| o.value())
            .collect();
        Plan {
            actions: daemonset::reconcile(&ds, &pods, &nodes, now),
            requeue_after: daemonset::requeue_after(&ds, &pods, now),
        }
    }
}

const PDBS: &str = "poddisruptionbudgets.policy";

/// The disruption controller: PodDisruptionBudget status from the pods each selects.
pub struct DisruptionController;

impl Controller for DisruptionController {
    fn name(&self) -> &'static str {
        disruption::CONTROLLER_NAME
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        match &*ev.resource {
            PDBS => vec![(ev.object.namespace.clone(), ev.object.name.clone())],
            PODS => keys_in(store, PDBS, &ev.object.namespace),
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        all_keys(store, PDBS)
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(pdb) = store.get(PDBS, &key.0, &key.1) else {
            return Plan::default();
        };
        let pdb = pdb.value();
        let pods = objects_with(store, PODS, &key.0, &match_labels(&pdb));
        let mut replicas_of = std::collections::HashMap::new();
        for resource in [REPLICA_SETS, STATEFUL_SETS, "replicationcontrollers"] {
            for o in store.list(resource, Some(&key.0), None, 0, &|_| true).items {
                let v = o.value();
                let n = v
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                replicas_of.insert(o.uid.clone(), n);
            }
        }
        let status = disruption::status(&pdb, &pods, &replicas_of, now);
        // Evicted pods stop counting as disrupted two minutes later.
        let requeue_after = status
            .get("disruptedPods")
            .is_some()
            .then(|| Duration::from_secs(30));
        Plan {
            actions: replicaset::status_update(&pdb, action::PDBS_POLICY, status)
                .into_iter()
                .collect(),
            requeue_after,
        }
    }
}

/// Taint-based eviction: pods on nodes with NoExecute taints they do not tolerate (for
/// long enough) are deleted.
pub struct TaintEvictionController;

impl Controller for TaintEvictionController {
    fn name(&self) -> &'static str {
        "taint-eviction-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        match &*ev.resource {
            // Only a NoExecute taint evicts: while no node has one, pod changes need no look
            // (a node that gets one brings its pods in through its own event).
            PODS if !ev.object.deleting && any_no_execute_taint(store) => {
                vec![(ev.object.namespace.clone(), ev.object.name.clone())]
            }
            // A node's pods matter when its NoExecute taints change (upstream's NodeUpdated).
            "nodes" => {
                let before = ev.prev.as_ref().map(|p| no_execute_taints(&p.parsed()));
                let now = no_execute_taints(&ev.object.parsed());
                if before.unwrap_or_default() == now {
                    vec![]
                } else {
                    pods_on(store, &ev.object.name)
                }
            }
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        store
            .list("nodes", None, None, 0, &|_| true)
            .items
            .iter()
            .flat_map(|n| pods_on(store, &n.name))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(pod) = store.get(PODS, &key.0, &key.1) else {
            return Plan::default();
        };
        if pod.deleting {
            return Plan::default();
        }
        let pod = pod.parsed();
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(node) = store.get("nodes", "", node_name).map(|n| n.parsed()) else {
            return Plan::default();
        };
        match taints::decide(&pod, &node, now) {
            taints::Decision::Keep => Plan::default(),
            taints::Decision::EvictAfter(d) => Plan {
                actions: vec![],
                requeue_after: Some(d),
            },
            taints::Decision::Evict => Plan {
                actions: vec![
                    Action::Event {
                        involved: super::replicaset::involved(&pod, "v1", "Pod"),
                        event_type: "Normal",
                        reason: "TaintManagerEviction".into(),
                        message: format!("Marking for deletion Pod {}/{}", key.0, key.1),
                        source: "taint-eviction-controller",
                    },
                    Action::Delete {
                        kind: action::PODS,
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        uid: pod
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        propagation: None,
                    },
                ],
                requeue_after: None,
            },
        }
    }
}

/// A node's `NoExecute` taints.
fn no_execute_taints(node: &Value) -> Vec<Value> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("effect").and_then(Value::as_str) == Some("NoExecute"))
        .cloned()
        .collect()
}

/// Whether any node carries a `NoExecute` taint.
fn any_no_execute_taint(store: &Store) -> bool {
    store
        .list("nodes", None, None, 0, &|_| true)
        .items
        .iter()
        .any(|n| !no_execute_taints(&n.parsed()).is_empty())
}

/// Keys of the pods bound to `node`.
fn pods_on(store: &Store, node: &str) -> Vec<ObjKey> {
    store
        .list(PODS, None, None, 0, &|o| !o.deleting)
        .items
        .iter()
        .filter(|o| o.parsed().pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
        .map(|o| (o.namespace.clone(), o.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventType;
    use crate::store::testing::put;
    use serde_json::json;

    /// A store in `dir` holding namespace `default`, and a log index counter.
    fn store(dir: &std::path::Path) -> (Store, u64) {
        let store = Store::open(dir, 100).expect("store");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "default", "uid": "ns-default"}});
        put(&store, 1, "namespaces", &ns);
        (store, 2)
    }

    fn owned(kind: &str, name: &str) -> Value {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true}])
    }

    /// The next event the hub published.
    fn next(live: &mut tokio::sync::broadcast::Receiver<Arc<WatchEvent>>) -> Arc<WatchEvent> {
        live.try_recv().expect("an event")
    }

    #[test]
    fn pod_changes_reach_only_recreate_deployments() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, mut i) = store(dir.path());
        for (d, strategy) in [("roll", "RollingUpdate"), ("re", "Recreate")] {
            let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": d, "namespace": "default", "uid": format!("uid-{d}")},
                "spec": {"strategy": {"type": strategy}}});
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("{d}-1"), "namespace": "default", "uid": format!("uid-{d}-1"),
                    "ownerReferences": owned("Deployment", d)}});
            put(&store, i, DEPLOYMENTS, &deployment);
            put(&store, i + 1, REPLICA_SETS, &rs);
            i += 2;
        }
        let mut live = store.hub().subscribe(None).expect("subscribe").live;
        for d in ["roll", "re"] {
            let pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{d}-1-a"), "namespace": "default", "uid": format!("uid-{d}-pod"),
                    "ownerReferences": owned("ReplicaSet", &format!("{d}-1"))}});
            put(&store, i, PODS, &pod);
            i += 1;
        }
        let c = DeploymentController;
        assert!(c.keys_for(&next(&mut live), &store).is_empty());
        assert_eq!(
            c.keys_for(&next(&mut live), &store),
            vec![("default".to_string(), "re".to_string())]
        );
    }

    #[test]
    fn pods_are_looked_at_only_while_a_node_has_a_no_execute_taint() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, i) = store(dir.path());
        let mut node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "uid": "uid-n1"}, "spec": {}});
        put(&store, i, "nodes", &node);
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "uid-p"},
            "spec": {"nodeName": "n1"}});
        let mut live = store.hub().subscribe(None).expect("subscribe").live;
        put(&store, i + 1, PODS, &pod);
        let c = TaintEvictionController;
        let pod_key = vec![("default".to_string(), "p".to_string())];
        assert!(c.keys_for(&next(&mut live), &store).is_empty());
        // A NoSchedule taint evicts nothing either.
        node["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        put(&store, i + 2, "nodes", &node);
        assert!(c.keys_for(&next(&mut live), &store).is_empty());
        // A NoExecute taint brings in the node's pods, and later changes of pods.
        node["spec"]["taints"] = json!([{"key": "k", "effect": "NoExecute"}]);
        put(&store, i + 3, "nodes", &node);
        let ev = next(&mut live);
        assert_eq!(ev.kind, EventType::Modified);
        assert_eq!(c.keys_for(&ev, &store), pod_key);
        let mut labelled = pod.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        put(&store, i + 4, PODS, &labelled);
        assert_eq!(c.keys_for(&next(&mut live), &store), pod_key);
    }
}
