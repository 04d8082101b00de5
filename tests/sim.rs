//! `vkube sim`: a simulated physical cluster, driven with real kubectl.

mod common;

use std::time::Duration;

use common::{Server, wait_for};

#[test]
fn simulated_nodes_schedule_run_complete_and_log() {
    let s = Server::start_sim(&[
        "--name",
        "east",
        "--nodes",
        "2",
        "--node-cpu",
        "1",
        "--node-pods",
        "4",
    ]);
    let nodes = s.kubectl_ok(&["get", "nodes"]);
    assert!(
        nodes.contains("east-node-0") && nodes.contains("east-node-1"),
        "{nodes}"
    );
    assert_eq!(nodes.matches(" Ready ").count(), 2, "{nodes}");

    // A Deployment's pods are bound, spread and Running.
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=4",
    ]);
    s.kubectl_ok(&["rollout", "status", "deploy/web", "--timeout=30s"]);
    let pods = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase} {.status.podIP}{\"\\n\"}{end}",
    ]);
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(lines.len(), 4, "{pods}");
    assert!(
        lines.iter().all(|l| l.contains(" Running 10.244.")),
        "{pods}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("east-node-0 "))
            .count(),
        2,
        "spread: {pods}"
    );

    // Capacity: 4 pods per node, so 9 pods leave one Pending.
    s.kubectl_ok(&["scale", "deploy/web", "--replicas=9"]);
    let pending = wait_for(Duration::from_secs(20), "one pod left Pending", || {
        let out = s.kubectl_ok(&["get", "pods", "-l", "app=web", "--no-headers"]);
        let running = out.matches(" Running ").count();
        let pending = out.matches(" Pending ").count();
        (running == 8 && pending == 1).then_some(out)
    });
    assert!(pending.contains("0/1"), "{pending}");
    s.kubectl_ok(&["scale", "deploy/web", "--replicas=2"]);

    // A Job's pod runs to completion.
    s.kubectl_ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    s.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=30s",
    ]);

    // Logs: generated lines, tail, and kubectl's container errors.
    let pod = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let log = wait_for(Duration::from_secs(10), "two log lines", || {
        let log = s.kubectl_ok(&["logs", &pod]);
        (log.lines().count() >= 2).then_some(log)
    });
    assert!(
        log.starts_with(&format!(
            "vkube-sim: default/{pod} container nginx line 0\n"
        )),
        "{log}"
    );
    let tail = s.kubectl_ok(&["logs", &pod, "--tail=1", "--timestamps"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.contains("Z vkube-sim: "), "{tail}");
    let err = s.kubectl_err(&["logs", &pod, "-c", "nope"]);
    assert!(
        err.contains(&format!("container nope is not valid for pod {pod}")),
        "{err}"
    );

    // Deleting a bound pod: the kubelet finishes the graceful deletion at once.
    s.kubectl_ok(&["delete", "pod", &pod, "--wait=true", "--timeout=20s"]);
}

const STATEFUL_SET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "postgres:16"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

const DAEMON_SET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "agent:1"}]
"#;

/// StatefulSets and DaemonSets on simulated nodes: stable names, claims, ordered scale-down,
/// rolling updates; one daemon pod per node.
#[test]
fn stateful_and_daemon_sets_on_simulated_nodes() {
    let s = Server::start_sim(&["--nodes", "2"]);
    s.kubectl_stdin_ok(&["apply", "-f", "-"], STATEFUL_SET);
    s.kubectl_ok(&["rollout", "status", "sts/db", "--timeout=60s"]);
    let pods = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=db",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(pods, "db-0 db-1 db-2");
    // Ordered creation: each pod was created after its predecessor was Ready.
    let created = |name: &str| -> String {
        s.kubectl_ok(&[
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.metadata.creationTimestamp}",
        ])
    };
    assert!(created("db-0") <= created("db-1") && created("db-1") <= created("db-2"));
    let claims = s.kubectl_ok(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(claims, "data-db-0 data-db-1 data-db-2");
    let volume = s.kubectl_ok(&[
        "get",
        "pod",
        "db-1",
        "-o",
        "jsonpath={.spec.volumes[?(@.name==\"data\")].persistentVolumeClaim.claimName} {.spec.hostname} {.spec.subdomain}",
    ]);
    assert_eq!(volume, "data-db-1 db-1 db");

    // A rolling update replaces every pod, highest ordinal first.
    s.kubectl_ok(&["set", "image", "sts/db", "db=postgres:17"]);
    s.kubectl_ok(&["rollout", "status", "sts/db", "--timeout=60s"]);
    let images = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=db",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert_eq!(images, "postgres:17 postgres:17 postgres:17");
    let history = s.kubectl_ok(&["rollout", "history", "sts/db"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    // Scale down removes the highest ordinals and keeps their claims (Retain).
    s.kubectl_ok(&["scale", "sts/db", "--replicas=1"]);
    wait_for(Duration::from_secs(30), "db-1 and db-2 gone", || {
        let pods = s.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=db",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        (pods == "db-0").then_some(())
    });
    let claims = s.kubectl_ok(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(claims, "data-db-0 data-db-1 data-db-2");

    // A DaemonSet puts one pod on each node.
    s.kubectl_stdin_ok(&["apply", "-f", "-"], DAEMON_SET);
    s.kubectl_ok(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    let nodes = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    let mut nodes: Vec<&str> = nodes.split_whitespace().collect();
    nodes.sort();
    assert_eq!(nodes, ["sim-node-0", "sim-node-1"]);
    let ds = s.kubectl_ok(&["get", "ds", "agent", "--no-headers"]);
    assert!(
        ds.split_whitespace().take(6).collect::<Vec<_>>() == ["agent", "2", "2", "2", "2", "2"],
        "{ds}"
    );
}

/// The eviction subresource honours PodDisruptionBudgets (`kubectl drain` is refused with
/// upstream's message while the budget has no room).
#[test]
fn evictions_respect_pod_disruption_budgets() {
    let s = Server::start_sim(&["--nodes", "1"]);
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    s.kubectl_ok(&["rollout", "status", "deploy/web", "--timeout=30s"]);
    s.kubectl_ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=2",
    ]);
    wait_for(Duration::from_secs(20), "the budget's status", || {
        let st = s.kubectl_ok(&["get", "pdb", "web", "-o", "jsonpath={.status.currentHealthy}/{.status.desiredHealthy}/{.status.disruptionsAllowed}"]);
        (st == "2/2/0").then_some(())
    });
    let pods = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let first = pods.split(' ').next().expect("a pod").to_string();
    let eviction = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{first}","namespace":"default"}}}}"#
    );
    let path = format!("/api/v1/namespaces/default/pods/{first}/eviction");
    let (code, body) = s.raw("POST", &path, Some("application/json"), eviction.as_bytes());
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(
        body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        body["details"]["causes"][0]["message"],
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    // kubectl drain retries and reports the same refusal.
    let err = s.kubectl_err(&["drain", "sim-node-0", "--timeout=3s"]);
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    s.kubectl_ok(&["uncordon", "sim-node-0"]);

    // Room for one: the first eviction passes, the next waits for the replacement.
    s.kubectl_ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ]);
    wait_for(Duration::from_secs(20), "one disruption allowed", || {
        let st = s.kubectl_ok(&[
            "get",
            "pdb",
            "web",
            "-o",
            "jsonpath={.status.disruptionsAllowed}",
        ]);
        (st == "1").then_some(())
    });
    let (code, body) = s.raw("POST", &path, Some("application/json"), eviction.as_bytes());
    assert_eq!(code, 201, "{body}");
    // The evicted pod goes (the simulated kubelet finishes it) and is replaced.
    wait_for(Duration::from_secs(20), "the evicted pod gone", || {
        let out = s.kubectl(&["get", "pod", &first]);
        (!out.status.success()).then_some(())
    });
    s.kubectl_ok(&["rollout", "status", "deploy/web", "--timeout=30s"]);
}
