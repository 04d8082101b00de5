//! Tests of the StatefulSet core: a small in-memory store the actions are applied to.

use super::*;

fn now() -> Timestamp {
    "2025-01-01T12:00:00Z".parse().unwrap()
}

fn set(replicas: i64, spec: Value) -> Value {
    let mut s = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default", "uid": "sts-uid",
            "generation": 1, "resourceVersion": "1"},
        "spec": {"replicas": replicas, "serviceName": "nginx",
            "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
    for (k, v) in spec.as_object().unwrap() {
        s["spec"][k] = v.clone();
    }
    s
}

/// A store the actions are applied to; pods are created Pending.
struct World {
    sts: Value,
    pods: Vec<Value>,
    pvcs: Vec<Value>,
    revs: Vec<Value>,
    n: u32,
}

fn summary(a: &Action) -> String {
    match a {
        Action::Create { kind, object, .. } => {
            format!("create {} {}", kind.plural, meta(object, "name"))
        }
        Action::Update { kind, object, .. } => {
            format!("update {} {}", kind.plural, meta(object, "name"))
        }
        Action::UpdateStatus { .. } => "status".into(),
        Action::Delete { kind, name, .. } => format!("delete {} {name}", kind.plural),
        Action::Event {
            reason, message, ..
        } => format!("event {reason}: {message}"),
        other => format!("{other:?}"),
    }
}

impl World {
    fn new(sts: Value) -> World {
        World {
            sts,
            pods: vec![],
            pvcs: vec![],
            revs: vec![],
            n: 0,
        }
    }
    fn list(&mut self, plural: &str) -> &mut Vec<Value> {
        match plural {
            "pods" => &mut self.pods,
            "persistentvolumeclaims" => &mut self.pvcs,
            _ => &mut self.revs,
        }
    }
    fn reconcile(&self) -> Vec<Action> {
        reconcile(&self.sts, &self.pods, &self.pvcs, &self.revs, now())
    }
    /// Reconciles, applies, and returns the non-event actions.
    fn sync(&mut self) -> Vec<String> {
        let actions = self.reconcile();
        for a in &actions {
            match a {
                Action::Create { kind, object, .. } => {
                    self.n += 1;
                    let mut o = object.clone();
                    o["metadata"]["uid"] = json!(format!("uid-{}", self.n));
                    o["metadata"]["resourceVersion"] = json!("1");
                    o["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
                    if kind.plural == "pods" {
                        o["status"] = json!({"phase": "Pending"});
                    }
                    self.list(kind.plural).push(o);
                }
                Action::Update { kind, object, .. } => {
                    let l = self.list(kind.plural);
                    let i = l
                        .iter()
                        .position(|o| meta(o, "name") == meta(object, "name"))
                        .unwrap();
                    l[i] = object.clone();
                }
                Action::UpdateStatus { object, .. } => self.sts = object.clone(),
                Action::Delete { kind, name, .. } => {
                    self.list(kind.plural).retain(|o| meta(o, "name") != name)
                }
                _ => {}
            }
        }
        actions
            .iter()
            .map(summary)
            .filter(|s| !s.starts_with("event"))
            .collect()
    }
    fn ready(&mut self) {
        for p in &mut self.pods {
            p["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready",
                "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
        }
    }
    /// Syncs with every pod made ready until nothing changes.
    fn converge(&mut self) {
        for _ in 0..50 {
            self.ready();
            if self.sync().is_empty() {
                return;
            }
        }
        panic!("no convergence");
    }
    fn pod(&mut self, name: &str) -> &mut Value {
        self.pods
            .iter_mut()
            .find(|p| meta(p, "name") == name)
            .unwrap()
    }
    fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.pods.iter().map(|p| meta(p, "name")).collect();
        n.sort();
        n
    }
    fn status(&self, f: &str) -> Value {
        self.sts["status"].get(f).cloned().unwrap_or(json!(0))
    }
}

#[test]
fn ordered_ready_creates_one_at_a_time_and_converges() {
    let mut w = World::new(set(3, json!({})));
    let actions = w.reconcile();
    let rev = format!("web-{}", revision_hash(&revision_data(&w.sts), 0));
    let texts: Vec<String> = actions.iter().map(summary).collect();
    assert_eq!(
        texts,
        vec![
            format!("create controllerrevisions {rev}"),
            "create pods web-0".into(),
            "event SuccessfulCreate: create Pod web-0 in StatefulSet web successful".into(),
            "status".into(),
        ]
    );
    w.sync();
    let p = w.pod("web-0").clone();
    assert_eq!(
        p["metadata"]["labels"],
        json!({"app": "web",
        POD_NAME_LABEL: "web-0", POD_INDEX_LABEL: "0", REVISION_LABEL: rev})
    );
    assert_eq!(p["spec"]["hostname"], "web-0");
    assert_eq!(p["spec"]["subdomain"], "nginx");
    assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "sts-uid");
    let cr = &w.revs[0];
    assert_eq!(cr["revision"], 1);
    assert_eq!(cr["data"]["spec"]["template"]["$patch"], "replace");
    // web-0 is Pending: nothing more happens, however often.
    assert_eq!(w.sync(), vec!["status"]);
    assert!(w.sync().is_empty());
    // Running but not Ready still blocks.
    w.pod("web-0")["status"] = json!({"phase": "Running"});
    assert!(w.sync().iter().all(|a| !a.starts_with("create")));
    w.ready();
    assert_eq!(w.sync(), vec!["create pods web-1", "status"]);
    w.converge();
    assert_eq!(w.names(), vec!["web-0", "web-1", "web-2"]);
    for (f, v) in [
        ("replicas", 3),
        ("readyReplicas", 3),
        ("availableReplicas", 3),
        ("currentReplicas", 3),
        ("updatedReplicas", 3),
        ("observedGeneration", 1),
        ("collisionCount", 0),
    ] {
        assert_eq!(w.status(f), json!(v), "{f}");
    }
    assert_eq!(w.status("currentRevision"), json!(rev));
    assert_eq!(w.status("updateRevision"), json!(rev));
    assert!(w.reconcile().is_empty(), "idempotent");
}

#[test]
fn scale_down_order() {
    // (policy, not-ready pod, deletions of one sync after scaling 4 → 1)
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        ("OrderedReady", None, &["delete pods web-3"]),
        ("OrderedReady", Some("web-0"), &[]),
        // Only the replicas in range must be healthy; the highest condemned pod goes when it
        // is healthy itself or the lowest unhealthy condemned one (upstream processCondemned).
        ("OrderedReady", Some("web-1"), &["delete pods web-3"]),
        ("OrderedReady", Some("web-3"), &["delete pods web-3"]),
        (
            "Parallel",
            None,
            &[
                "delete pods web-3",
                "delete pods web-2",
                "delete pods web-1",
            ],
        ),
        (
            "Parallel",
            Some("web-0"),
            &[
                "delete pods web-3",
                "delete pods web-2",
                "delete pods web-1",
            ],
        ),
    ];
    for (policy, unready, want) in cases {
        let mut w = World::new(set(4, json!({"podManagementPolicy": policy})));
        w.converge();
        w.sts["spec"]["replicas"] = json!(1);
        if let Some(n) = unready {
            w.pod(n)["status"] = json!({"phase": "Running"});
        }
        let got: Vec<String> = w
            .sync()
            .into_iter()
            .filter(|a| a.starts_with("delete"))
            .collect();
        assert_eq!(got, *want, "{policy} {unready:?}");
    }
    let mut w = World::new(set(3, json!({})));
    w.converge();
    w.sts["spec"]["replicas"] = json!(1);
    w.pod("web-2")["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
    assert!(
        w.sync().iter().all(|a| !a.starts_with("delete")),
        "waits for termination"
    );
    w.pods.retain(|p| meta(p, "name") != "web-2");
    assert_eq!(w.sync()[0], "delete pods web-1");
    w.converge();
    assert_eq!(w.names(), vec!["web-0"]);
    assert!(w.reconcile().is_empty());
}

#[test]
fn parallel_creates_all_at_once() {
    let mut w = World::new(set(3, json!({"podManagementPolicy": "Parallel"})));
    let created: Vec<String> = w
        .sync()
        .into_iter()
        .filter(|a| a.starts_with("create pods"))
        .collect();
    assert_eq!(
        created,
        vec![
            "create pods web-0",
            "create pods web-1",
            "create pods web-2"
        ]
    );
    assert_eq!(
        w.status("replicas"),
        json!(0),
        "created pods count from the next sync"
    );
    w.converge();
    assert_eq!(w.status("readyReplicas"), json!(3));
}

#[test]
fn claims_are_created_before_pods() {
    let vct = json!([{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "labels": {"tier": "db"}},
        "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}]);
    let mut tpl = set(2, json!({})).pointer("/spec/template").unwrap().clone();
    tpl["spec"]["volumes"] =
        json!([{"name": "data", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]);
    let mut w = World::new(set(
        2,
        json!({"volumeClaimTemplates": vct, "template": tpl}),
    ));
    let texts: Vec<String> = w.reconcile().iter().map(summary).collect();
    assert_eq!(
        texts[1..5],
        [
            "create persistentvolumeclaims data-web-0",
            "event SuccessfulCreate: create Claim data-web-0 Pod web-0 in StatefulSet web success",
            "create pods web-0",
            "event SuccessfulCreate: create Pod web-0 in StatefulSet web successful",
        ]
    );
    w.sync();
    let c = &w.pvcs[0];
    assert_eq!(c["metadata"]["labels"], json!({"tier": "db", "app": "web"}));
    assert!(c.get("status").is_none() && c["metadata"].get("ownerReferences").is_none());
    assert_eq!(
        w.pod("web-0")["spec"]["volumes"],
        json!([
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
        {"name": "cfg", "emptyDir": {}}])
    );
    // A Pending pod whose claim vanished gets it back; a claim being deleted blocks.
    w.pvcs.clear();
    assert_eq!(w.sync()[0], "create persistentvolumeclaims data-web-0");
    w.ready();
    w.pvcs.push(
        json!({"metadata": {"name": "data-web-1", "namespace": "default",
        "deletionTimestamp": "2025-01-01T11:00:00Z"}}),
    );
    assert!(w.sync().iter().all(|a| !a.starts_with("create")));
    w.pvcs.retain(|c| meta(c, "name") != "data-web-1");
    assert_eq!(
        w.sync()[..2],
        [
            "create persistentvolumeclaims data-web-1",
            "create pods web-1"
        ]
    );
    w.converge();
    assert!(w.reconcile().is_empty());
}

#[test]
fn retention_policy() {
    let vct = json!([{"metadata": {"name": "data"}, "spec": {}}]);
    // (whenDeleted, whenScaled, set reference on a new claim, claim update on scale-down)
    let cases = [
        ("Retain", "Retain", false, false),
        ("Delete", "Retain", true, false),
        ("Retain", "Delete", false, true),
        ("Delete", "Delete", true, true),
    ];
    for (deleted, scaled, set_ref, pod_ref) in cases {
        let policy = json!({"whenDeleted": deleted, "whenScaled": scaled});
        let mut w = World::new(set(
            2,
            json!({"volumeClaimTemplates": vct,
            "persistentVolumeClaimRetentionPolicy": policy}),
        ));
        w.converge();
        let refs = w.pvcs[1]["metadata"]["ownerReferences"].clone();
        assert_eq!(
            refs.get(0).map(|r| r["uid"].clone()),
            set_ref.then(|| json!("sts-uid"))
        );
        w.sts["spec"]["replicas"] = json!(1);
        let actions = w.reconcile();
        let texts: Vec<String> = actions.iter().map(summary).collect();
        let i = texts.iter().position(|t| t == "delete pods web-1").unwrap();
        if pod_ref {
            assert_eq!(texts[i - 1], "update persistentvolumeclaims data-web-1");
            let Action::Update { object, .. } = &actions[i - 1] else {
                panic!()
            };
            let web1 = w.pod("web-1").clone();
            assert_eq!(
                object["metadata"]["ownerReferences"],
                json!([controller_ref_to(&web1, "v1", "Pod")])
            );
        } else {
            assert!(!texts.iter().any(|t| t.starts_with("update")), "{texts:?}");
        }
        w.converge();
        assert!(w.reconcile().is_empty());
    }
    // A claim still owned by the earlier web-1 blocks its re-creation (whenScaled Delete).
    let policy = json!({"whenDeleted": "Retain", "whenScaled": "Delete"});
    let mut w = World::new(set(
        2,
        json!({"volumeClaimTemplates": vct,
        "persistentVolumeClaimRetentionPolicy": policy, "podManagementPolicy": "Parallel"}),
    ));
    w.pvcs.push(
        json!({"metadata": {"name": "data-web-1", "namespace": "default",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "old"}]}}),
    );
    let created: Vec<String> = w
        .sync()
        .into_iter()
        .filter(|a| a.starts_with("create pods"))
        .collect();
    assert_eq!(created, vec!["create pods web-0"]);
}

#[test]
fn partitioned_rolling_update() {
    let mut w = World::new(set(3, json!({})));
    w.converge();
    let rev1 = w.status("currentRevision");
    w.sts["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    w.sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
    w.sts["metadata"]["generation"] = json!(2);
    let out = w.sync();
    let rev2 = w.revs[1]["metadata"]["name"].clone();
    assert_eq!(
        out[..2],
        [
            format!("create controllerrevisions {}", rev2.as_str().unwrap()),
            "delete pods web-2".into()
        ]
    );
    assert_eq!(
        w.status("currentReplicas"),
        json!(2),
        "the deleted pod is no longer current"
    );
    assert_eq!(w.sync()[0], "create pods web-2");
    assert_eq!(w.pod("web-2")["spec"]["containers"][0]["image"], "nginx:2");
    assert!(
        w.sync().iter().all(|a| !a.starts_with("delete")),
        "waits for web-2"
    );
    w.converge();
    let image = |w: &mut World, n: &str| w.pod(n)["spec"]["containers"][0]["image"].clone();
    assert_eq!(
        [
            image(&mut w, "web-0"),
            image(&mut w, "web-1"),
            image(&mut w, "web-2")
        ],
        [json!("nginx:1"), json!("nginx:2"), json!("nginx:2")]
    );
    assert_eq!(
        (w.status("currentRevision"), w.status("updateRevision")),
        (rev1.clone(), rev2.clone())
    );
    assert_eq!(
        (w.status("currentReplicas"), w.status("updatedReplicas")),
        (json!(1), json!(2))
    );
    // Below the partition a lost pod comes back at the current revision.
    w.pods.retain(|p| meta(p, "name") != "web-0");
    w.converge();
    assert_eq!(image(&mut w, "web-0"), json!("nginx:1"));
    assert_eq!(w.pod("web-0")["metadata"]["labels"][REVISION_LABEL], rev1);
    // Partition 0 finishes the rollout.
    w.sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0);
    w.converge();
    assert_eq!(image(&mut w, "web-0"), json!("nginx:2"));
    assert_eq!(
        (w.status("currentRevision"), w.status("currentReplicas")),
        (rev2, json!(3))
    );
    assert!(w.reconcile().is_empty());
}

#[test]
fn on_delete_only_replaces_deleted_pods() {
    let mut w = World::new(set(2, json!({"updateStrategy": {"type": "OnDelete"}})));
    w.converge();
    w.sts["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let out = w.sync();
    assert!(out.iter().all(|a| !a.contains(" pods ")), "{out:?}");
    w.converge();
    assert_eq!(w.status("updatedReplicas"), json!(0));
    w.pods.retain(|p| meta(p, "name") != "web-1");
    w.converge();
    assert_eq!(w.pod("web-1")["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(w.pod("web-0")["spec"]["containers"][0]["image"], "nginx:1");
    assert_eq!(w.status("updatedReplicas"), json!(1));
    assert!(w.status("currentRevision") != w.status("updateRevision"));
}

#[test]
fn failed_pods_are_recreated() {
    let mut w = World::new(set(2, json!({})));
    w.converge();
    w.pod("web-0")["status"]["phase"] = json!("Failed");
    let texts: Vec<String> = w.reconcile().iter().map(summary).collect();
    assert_eq!(
        texts[..5],
        [
            "event RecreatingFailedPod: StatefulSet default/web is recreating failed Pod web-0",
            "delete pods web-0",
            "event SuccessfulDelete: delete Pod web-0 in StatefulSet web successful",
            "create pods web-0",
            "event SuccessfulCreate: create Pod web-0 in StatefulSet web successful",
        ]
    );
}

#[test]
fn status_counts_and_deletion() {
    let mut w = World::new(set(
        3,
        json!({"minReadySeconds": 30, "podManagementPolicy": "Parallel"}),
    ));
    w.converge();
    let mut r = w.sts.clone();
    r["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
    let mut pods = w.pods.clone();
    pods[0]["status"]["conditions"][0]["lastTransitionTime"] = json!("2025-01-01T11:59:50Z");
    pods[1]["status"] = json!({"phase": "Pending"});
    pods[2]["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:00:00Z");
    let actions = reconcile(&r, &pods, &[], &w.revs, now());
    assert_eq!(
        actions.iter().map(summary).collect::<Vec<_>>(),
        vec!["status"]
    );
    let Action::UpdateStatus { object, .. } = &actions[0] else {
        panic!()
    };
    let s = &object["status"];
    assert_eq!(
        (
            s["replicas"].clone(),
            s["readyReplicas"].clone(),
            s["availableReplicas"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(s["updatedReplicas"], 2, "terminating pods are not counted");
    assert_eq!(
        requeue_after(&r, &pods, now()),
        Some(Duration::from_millis(20_001))
    );
}

#[test]
fn revisions_rollback_collisions_and_history() {
    let mut w = World::new(set(1, json!({"revisionHistoryLimit": 1})));
    w.converge();
    w.sts["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    w.converge();
    w.sts["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1");
    let out = w.sync();
    assert_eq!(
        out[0],
        format!("update controllerrevisions {}", meta(&w.revs[0], "name"))
    );
    assert_eq!(
        w.revs[0]["revision"], 3,
        "the rollback renumbers the old revision"
    );
    w.converge();
    assert_eq!(w.revs.len(), 2);
    w.sts["spec"]["revisionHistoryLimit"] = json!(0);
    let old = format!("delete controllerrevisions {}", meta(&w.revs[1], "name"));
    assert_eq!(w.sync()[0], old);
    assert!(w.reconcile().is_empty());
    // A foreign revision holding the name raises the collision count.
    let mut w = World::new(set(1, json!({})));
    let name = format!("web-{}", revision_hash(&revision_data(&w.sts), 0));
    w.revs
        .push(json!({"metadata": {"name": name, "namespace": "default"}, "data": {}}));
    w.converge();
    assert_eq!(w.status("collisionCount"), json!(1));
    assert_eq!(
        w.status("updateRevision"),
        json!(format!("web-{}", revision_hash(&revision_data(&w.sts), 1)))
    );
}

#[test]
fn claiming_identity_and_start_ordinal() {
    let mut w = World::new(set(
        2,
        json!({"ordinals": {"start": 5}, "podManagementPolicy": "Parallel"}),
    ));
    w.pods.push(
        json!({"metadata": {"name": "web-5", "namespace": "default", "uid": "o",
        "labels": {"app": "web"}}, "status": {"phase": "Running"}}),
    );
    w.pods.push(
        json!({"metadata": {"name": "webx", "namespace": "default", "uid": "x",
        "labels": {"app": "web"}}}),
    );
    let out = w.sync();
    assert_eq!(out[1..3], ["update pods web-5", "create pods web-6"]);
    assert_eq!(
        w.pod("web-5")["metadata"]["ownerReferences"][0]["uid"],
        "sts-uid"
    );
    assert_eq!(
        w.sync()[0],
        "update pods web-5",
        "identity labels fixed after adoption"
    );
    assert_eq!(
        w.pod("web-5")["metadata"]["labels"][POD_NAME_LABEL],
        "web-5"
    );
    w.converge();
    assert_eq!(w.names(), vec!["web-5", "web-6", "webx"]);
    assert_eq!(parent_and_ordinal("a-b-12"), Some(("a-b", 12)));
    assert_eq!(parent_and_ordinal("web-"), None);
}
