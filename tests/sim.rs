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
