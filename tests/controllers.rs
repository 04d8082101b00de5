//! Controllers with real kubectl; the test acts as the kubelet, marking pods Running and Ready
//! (or Succeeded) through the pod status subresource.

mod common;

use std::time::Duration;

use common::{Server, wait_for};
use serde_json::{Value, json};

/// Marks every pod in `namespace` that is not yet ready as Running and Ready (or Succeeded
/// when `finish`), like a kubelet would; returns how many it changed.
fn kubelet_pass(s: &Server, namespace: &str, finish: bool) -> usize {
    let (code, list) = s.raw(
        "GET",
        &format!("/api/v1/namespaces/{namespace}/pods"),
        None,
        b"",
    );
    assert_eq!(code, 200);
    let mut changed = 0;
    for pod in list["items"].as_array().cloned().unwrap_or_default() {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if pod["metadata"]
            .get("deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            // The kubelet finishes graceful deletions.
            let _ = s.raw(
                "DELETE",
                &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
                Some("application/json"),
                br#"{"gracePeriodSeconds":0}"#,
            );
            continue;
        }
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        let target = if finish { "Succeeded" } else { "Running" };
        if phase == target {
            continue;
        }
        let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 60)
            .expect("time")
            .to_string();
        let ready = if finish { "False" } else { "True" };
        let status = json!({"status": {
            "phase": target,
            "podIP": "10.1.0.7",
            "startTime": now,
            "conditions": [
                {"type": "Ready", "status": ready, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
            ],
            "containerStatuses": [{"name": "c", "ready": !finish, "restartCount": 0, "image": "x", "imageID": "", "started": !finish,
                "state": if finish { json!({"terminated": {"exitCode": 0, "reason": "Completed"}}) } else { json!({"running": {"startedAt": now}}) }}],
        }});
        let (code, body) = s.raw(
            "PATCH",
            &format!("/api/v1/namespaces/{namespace}/pods/{name}/status"),
            Some("application/merge-patch+json"),
            status.to_string().as_bytes(),
        );
        if code == 200 {
            changed += 1;
        } else {
            assert!(
                code == 404 || code == 409,
                "kubelet status write: {code} {body}"
            );
        }
    }
    changed
}

/// Runs the kubelet until `done` holds.
fn converge(s: &Server, what: &str, finish: bool, done: impl Fn(&Server) -> bool) {
    wait_for(Duration::from_secs(60), what, || {
        kubelet_pass(s, "default", finish);
        done(s).then_some(())
    });
}

fn get(s: &Server, path: &str) -> Value {
    let (code, v) = s.raw("GET", path, None, b"");
    assert_eq!(code, 200, "{path}: {v}");
    v
}

#[test]
fn deployments_roll_out_undo_and_restart() {
    let s = Server::start();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.26",
        "--replicas=3",
    ]);
    converge(&s, "3 available replicas", false, |s| {
        get(s, "/apis/apps/v1/namespaces/default/deployments/web")["status"]["availableReplicas"]
            == 3
    });
    let out = s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let table = s.kubectl_ok(&["get", "deploy", "web"]);
    assert!(table.contains("3/3"), "{table}");
    // The controllers' work shows in /metrics.
    let metrics = s.kubectl_ok(&["get", "--raw", "/metrics"]);
    let created = metrics
        .lines()
        .find(|l| {
            l.starts_with("vkube_controller_actions_total{controller=\"replicaset-controller\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("replicaset actions in {metrics}"));
    assert!(created >= 3, "three pods created: {metrics}");
    assert!(
        metrics.contains("vkube_controller_queue_depth{controller=\"deployment-controller\"}"),
        "{metrics}"
    );

    // A new image rolls out through a second replica set.
    s.kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    converge(&s, "the new template everywhere", false, |s| {
        let d = get(s, "/apis/apps/v1/namespaces/default/deployments/web");
        d["status"]["updatedReplicas"] == 3
            && d["status"]["availableReplicas"] == 3
            && d["status"]["replicas"] == 3
            && d["status"]["observedGeneration"] == d["metadata"]["generation"]
    });
    assert!(
        s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=30s"])
            .contains("successfully rolled out")
    );
    let history = s.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('1'))
            && history.lines().any(|l| l.trim_start().starts_with('2')),
        "{history}"
    );
    assert_eq!(
        s.kubectl_ok(&["get", "rs", "-o", "name"]).lines().count(),
        2
    );

    // Undo goes back to the first template.
    s.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    converge(&s, "the old image back", false, |s| {
        let d = get(s, "/apis/apps/v1/namespaces/default/deployments/web");
        d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
            && d["status"]["updatedReplicas"] == 3
            && d["status"]["availableReplicas"] == 3
            && d["status"]["replicas"] == 3
    });
    assert_eq!(
        s.kubectl_ok(&["get", "rs", "-o", "name"]).lines().count(),
        2,
        "undo reuses the first replica set"
    );

    // Restart makes a new template; scaling changes the replica count.
    s.kubectl_ok(&["rollout", "restart", "deployment/web"]);
    s.kubectl_ok(&["scale", "deployment/web", "--replicas=1"]);
    converge(&s, "1 replica of the restarted template", false, |s| {
        let d = get(s, "/apis/apps/v1/namespaces/default/deployments/web");
        d["status"]["replicas"] == 1
            && d["status"]["updatedReplicas"] == 1
            && d["status"]["availableReplicas"] == 1
    });
    let events = s.kubectl_ok(&["get", "events"]);
    assert!(
        events.contains("ScalingReplicaSet") && events.contains("SuccessfulCreate"),
        "{events}"
    );
}

/// A ReplicaSet that creates 30 pods records its events as kube-controller-manager's
/// recorder does: nine as they are, then one that stands for the similar ones after them
/// (counted), and nothing past the 25 a source may write about one object at once.
#[test]
fn a_replica_sets_similar_events_are_combined_and_limited() {
    let s = Server::start();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "many",
        "--image=nginx",
        "--replicas=30",
    ]);
    let rs = wait_for(Duration::from_secs(30), "the replica set", || {
        let name = s.kubectl_ok(&["get", "rs", "-l", "app=many", "-o", "name"]);
        (!name.is_empty()).then_some(
            name.trim()
                .trim_start_matches("replicaset.apps/")
                .to_string(),
        )
    });
    let created = |e: &Value| e["reason"] == "SuccessfulCreate";
    // Each event as `kubectl get events` lists it: (message, count).
    let events = wait_for(Duration::from_secs(30), "25 counted creations", || {
        let list = get(&s, "/api/v1/namespaces/default/events");
        let about: Vec<(String, i64)> = list["items"]
            .as_array()?
            .iter()
            .filter(|e| e["involvedObject"]["name"] == rs.as_str() && created(e))
            .map(|e| {
                let message = e["message"].as_str().unwrap_or_default().to_string();
                (message, e["count"].as_i64().unwrap_or(0))
            })
            .collect();
        (about.iter().map(|(_, n)| n).sum::<i64>() == 25).then_some(about)
    });
    let (combined, single): (Vec<_>, Vec<_>) = events
        .iter()
        .partition(|(m, _)| m.starts_with("(combined from similar events): Created pod: "));
    assert_eq!(single.len(), 9, "{events:?}");
    assert!(
        single
            .iter()
            .all(|(m, n)| m.starts_with("Created pod: many-") && *n == 1)
    );
    assert_eq!(combined.len(), 1, "{events:?}");
    assert_eq!(combined[0].1, 16, "{events:?}");
    // All 30 pods exist all the same.
    let pods = s.kubectl_ok(&["get", "pods", "-l", "app=many", "-o", "name"]);
    assert_eq!(pods.lines().count(), 30, "{pods}");
    let describe = s.kubectl_ok(&["describe", "rs", &rs]);
    assert!(
        describe.contains("(x16 over") && describe.contains("(combined from similar events)"),
        "{describe}"
    );
    // Settled: nothing more is written afterwards.
    let later = get(&s, "/api/v1/namespaces/default/events");
    let total: i64 = later["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["involvedObject"]["name"] == rs.as_str() && created(e))
                .map(|e| e["count"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or_default();
    assert_eq!(total, 25);
}

#[test]
fn jobs_run_to_completion() {
    let s = Server::start();
    s.kubectl_ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    converge(&s, "the job to complete", true, |s| {
        let j = get(s, "/apis/batch/v1/namespaces/default/jobs/once");
        j["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
        })
    });
    let table = s.kubectl_ok(&["get", "job", "once"]);
    assert!(
        table.contains("1/1") && table.contains("Complete"),
        "{table}"
    );
    assert!(
        s.kubectl_ok(&[
            "wait",
            "--for=condition=complete",
            "job/once",
            "--timeout=10s"
        ])
        .contains("condition met")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_cluster_ips_under_concurrent_creates() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, PostParams};
    let s = Server::start();
    let api: Api<Service> = Api::namespaced(s.client().await, "default");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let svc: Service = serde_json::from_value(json!({
                "metadata": {"name": format!("s{i}")},
                "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
            }))
            .expect("service");
            api.create(&PostParams::default(), &svc)
                .await
                .expect("create")
        }));
    }
    let mut ips = std::collections::HashSet::new();
    for t in tasks {
        let svc = t.await.expect("task");
        let ip = svc.spec.and_then(|s| s.cluster_ip).expect("a ClusterIP");
        assert!(ip.starts_with("10.96."), "{ip}");
        assert!(ips.insert(ip.clone()), "{ip} allocated twice");
    }
    assert!(
        !ips.contains("10.96.0.1"),
        "the kubernetes Service's address is reserved"
    );
    // A headless Service gets none; asking for a taken address is refused.
    let headless: Service = serde_json::from_value(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"port": 80}]}})).expect("svc");
    let h = api
        .create(&PostParams::default(), &headless)
        .await
        .expect("headless");
    assert_eq!(h.spec.and_then(|s| s.cluster_ip).as_deref(), Some("None"));
    let taken = ips.iter().next().cloned().expect("an ip");
    let dup: Service = serde_json::from_value(
        json!({"metadata": {"name": "dup"}, "spec": {"clusterIP": taken, "ports": [{"port": 80}]}}),
    )
    .expect("svc");
    let err = api
        .create(&PostParams::default(), &dup)
        .await
        .expect_err("taken");
    assert!(
        err.to_string().contains("provided IP is already allocated"),
        "{err}"
    );
}

#[test]
fn endpoints_follow_ready_pods() {
    let s = Server::start();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    s.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
    converge(&s, "endpoints for both pods", false, |s| {
        let ep = get(s, "/api/v1/namespaces/default/endpoints/web");
        ep["subsets"][0]["addresses"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
            && ep["subsets"][0]["ports"][0]["port"] == 8080
    });
    let slices = s.kubectl_ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={.items[*].endpoints[*].conditions.ready}",
    ]);
    assert_eq!(slices, "true true");
    let eps = s.kubectl_ok(&["get", "endpoints", "web"]);
    assert!(eps.contains("10.1.0.7:8080"), "{eps}");
    // The Service goes, and so do its Endpoints.
    s.kubectl_ok(&["delete", "service", "web"]);
    wait_for(Duration::from_secs(20), "the endpoints to go", || {
        String::from_utf8_lossy(&s.kubectl(&["get", "endpoints", "web"]).stderr)
            .contains("NotFound")
            .then_some(())
    });
}

#[test]
fn cronjobs_fire_on_schedule() {
    let s = Server::start();
    s.kubectl_ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=@every 2s",
        "--",
        "true",
    ]);
    let job = wait_for(Duration::from_secs(30), "a job from the cronjob", || {
        let out = s.kubectl_ok(&["get", "jobs", "-o", "jsonpath={.items[*].metadata.name}"]);
        out.split_whitespace()
            .find(|n| n.starts_with("tick-"))
            .map(str::to_string)
    });
    let owner = s.kubectl_ok(&[
        "get",
        "job",
        &job,
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    ]);
    assert_eq!(owner, "CronJob/tick");
    wait_for(Duration::from_secs(20), "lastScheduleTime", || {
        (!s.kubectl_ok(&[
            "get",
            "cronjob",
            "tick",
            "-o",
            "jsonpath={.status.lastScheduleTime}",
        ])
        .is_empty())
        .then_some(())
    });
    let table = s.kubectl_ok(&["get", "cronjob", "tick"]);
    assert!(table.contains("@every 2s"), "{table}");
    // The job runs its pod to completion like any job.
    converge(&s, "the scheduled job to complete", true, |s| {
        let j = get(s, &format!("/apis/batch/v1/namespaces/default/jobs/{job}"));
        j["status"]["succeeded"] == 1
    });
}

#[test]
fn a_rollout_survives_kill9_midway() {
    let mut s = Server::start();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.26",
        "--replicas=12",
    ]);
    converge(&s, "12 available replicas", false, |s| {
        get(s, "/apis/apps/v1/namespaces/default/deployments/web")["status"]["availableReplicas"]
            == 12
    });
    s.kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    // Let the rollout get going, then kill the daemon in the middle of it.
    wait_for(Duration::from_secs(30), "the rollout to start", || {
        kubelet_pass(&s, "default", false);
        let d = get(&s, "/apis/apps/v1/namespaces/default/deployments/web");
        let updated = d["status"]["updatedReplicas"].as_i64().unwrap_or(0);
        (updated > 0 && updated < 12).then_some(())
    });
    s.restart_after_kill9();
    converge(&s, "the rollout to finish after the restart", false, |s| {
        let d = get(s, "/apis/apps/v1/namespaces/default/deployments/web");
        d["status"]["updatedReplicas"] == 12
            && d["status"]["availableReplicas"] == 12
            && d["status"]["replicas"] == 12
            && d["status"]["observedGeneration"] == d["metadata"]["generation"]
    });
    // Exactly 12 pods, all of the new template, none left over or doubled.
    let pods = get(&s, "/api/v1/namespaces/default/pods");
    let live: Vec<&Value> = pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| {
            p["metadata"]
                .get("deletionTimestamp")
                .is_none_or(Value::is_null)
        })
        .collect();
    assert_eq!(live.len(), 12, "live pods after convergence");
    assert!(
        live.iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.27")
    );
    let names: std::collections::HashSet<&str> = live
        .iter()
        .map(|p| p["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 12);
    assert!(
        s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=30s"])
            .contains("successfully rolled out")
    );
}
