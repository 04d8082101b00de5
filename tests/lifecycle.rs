//! Deletion lifecycle and subresources with real kubectl: finalizers hold a delete,
//! propagation policies add their finalizers, unbound pods go at once and bound ones
//! gracefully, `kubectl scale`, binding, eviction, server-side dry run.

mod common;

use common::Server;

fn jsonpath(s: &Server, args: &[&str], path: &str) -> String {
    let mut full = args.to_vec();
    let expr = format!("jsonpath={path}");
    full.extend(["-o", &expr]);
    s.kubectl_ok(&full)
}

#[test]
fn finalizers_hold_a_delete_until_removed() {
    let s = Server::start();
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","namespace":"default","finalizers":["example.com/hold"]}}"#;
    assert!(
        s.kubectl_stdin(&["create", "-f", "-"], Some(cm))
            .status
            .success()
    );
    s.kubectl_ok(&["delete", "configmap", "held", "--wait=false"]);
    // Still there, marked for deletion.
    let ts = jsonpath(&s, &["get", "cm", "held"], "{.metadata.deletionTimestamp}");
    assert!(!ts.is_empty(), "deletionTimestamp must be set");
    assert_eq!(
        jsonpath(&s, &["get", "cm", "held"], "{.metadata.finalizers}"),
        r#"["example.com/hold"]"#
    );
    // No new finalizers while deleting.
    let err = s.kubectl_err(&[
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold","b"]}}"#,
    ]);
    assert!(
        err.contains("no new finalizers can be added if the object is being deleted"),
        "{err}"
    );
    // Removing the finalizer lets it go.
    s.kubectl_ok(&[
        "patch",
        "cm",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let err = s.kubectl_err(&["get", "cm", "held"]);
    assert!(err.contains("NotFound"), "{err}");

    // A uid precondition that does not match refuses the delete.
    s.kubectl_ok(&["create", "configmap", "pre"]);
    let (code, body) = s.raw(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/pre",
        Some("application/json"),
        br#"{"preconditions":{"uid":"nope"}}"#,
    );
    assert_eq!(code, 409, "{body}");
    s.kubectl_ok(&["get", "cm", "pre"]);
}

/// Waits until `kubectl get <args>` fails with NotFound.
fn wait_gone(s: &Server, args: &[&str]) {
    common::wait_for(
        std::time::Duration::from_secs(20),
        &format!("{args:?} to be gone"),
        || {
            let out = s.kubectl(&[&["get"], args].concat());
            String::from_utf8_lossy(&out.stderr)
                .contains("NotFound")
                .then_some(())
        },
    );
}

#[test]
fn garbage_collection_follows_the_propagation_policy() {
    let s = Server::start();
    let rs_of = |deploy: &str| -> String {
        common::wait_for(std::time::Duration::from_secs(20), "a replica set", || {
            let out = s.kubectl_ok(&["get", "rs", "-l", &format!("app={deploy}"), "-o", "name"]);
            (!out.trim().is_empty()).then(|| out.trim().to_string())
        })
    };
    let pods_of = |deploy: &str| -> usize {
        s.kubectl_ok(&["get", "pods", "-l", &format!("app={deploy}"), "-o", "name"])
            .lines()
            .count()
    };
    // Background (kubectl's default): the deployment goes at once, its replica set and pods
    // after it.
    s.kubectl_ok(&[
        "create",
        "deployment",
        "bg",
        "--image=nginx",
        "--replicas=2",
    ]);
    let rs = rs_of("bg");
    common::wait_for(std::time::Duration::from_secs(20), "2 pods", || {
        (pods_of("bg") == 2).then_some(())
    });
    s.kubectl_ok(&["delete", "deployment", "bg"]);
    wait_gone(&s, &[&rs]);
    common::wait_for(std::time::Duration::from_secs(20), "the pods to go", || {
        (pods_of("bg") == 0).then_some(())
    });
    // Orphan: the replica set stays, without its owner reference.
    s.kubectl_ok(&[
        "create",
        "deployment",
        "or",
        "--image=nginx",
        "--replicas=1",
    ]);
    let rs = rs_of("or");
    s.kubectl_ok(&["delete", "deployment", "or", "--cascade=orphan"]);
    wait_gone(&s, &["deployment", "or"]);
    assert_eq!(
        jsonpath(&s, &["get", &rs], "{.metadata.ownerReferences}"),
        ""
    );
    // Foreground: the deployment waits for its dependents, then goes.
    s.kubectl_ok(&[
        "create",
        "deployment",
        "fg",
        "--image=nginx",
        "--replicas=1",
    ]);
    let rs = rs_of("fg");
    s.kubectl_ok(&["delete", "deployment", "fg", "--cascade=foreground"]);
    wait_gone(&s, &["deployment", "fg"]);
    wait_gone(&s, &[&rs]);
}

#[test]
fn deleting_a_namespace_empties_it_first() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "gone"]);
    s.kubectl_ok(&["-n", "gone", "create", "configmap", "a"]);
    let held = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","namespace":"gone","finalizers":["example.com/hold"]}}"#;
    assert!(
        s.kubectl_stdin(&["create", "-f", "-"], Some(held))
            .status
            .success()
    );
    s.kubectl_ok(&["delete", "namespace", "gone", "--wait=false"]);
    assert_eq!(
        jsonpath(&s, &["get", "ns", "gone"], "{.status.phase}"),
        "Terminating"
    );
    // Nothing new while it terminates.
    let err = s.kubectl_err(&["-n", "gone", "create", "configmap", "b"]);
    assert!(
        err.contains(
            "unable to create new content in namespace gone because it is being terminated"
        ),
        "{err}"
    );
    wait_gone(&s, &["-n", "gone", "configmap", "a"]);
    // The finalizer holds the last object, and the namespace says why it waits.
    common::wait_for(
        std::time::Duration::from_secs(20),
        "the NamespaceFinalizersRemaining condition",
        || {
            let c = jsonpath(
                &s,
                &["get", "ns", "gone"],
                "{.status.conditions[?(@.type==\"NamespaceFinalizersRemaining\")].status}",
            );
            (c == "True").then_some(())
        },
    );
    s.kubectl_ok(&[
        "-n",
        "gone",
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    wait_gone(&s, &["namespace", "gone"]);
}

#[test]
fn pods_unbound_go_at_once_bound_go_gracefully() {
    let s = Server::start();
    let pod = |name: &str, node: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"nodeName":"{node}","terminationGracePeriodSeconds":45,"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        )
    };
    assert!(
        s.kubectl_stdin(&["create", "-f", "-"], Some(&pod("free", "")))
            .status
            .success()
    );
    assert!(
        s.kubectl_stdin(&["create", "-f", "-"], Some(&pod("bound", "node-a")))
            .status
            .success()
    );
    s.kubectl_ok(&["delete", "pod", "free"]);
    assert!(s.kubectl_err(&["get", "pod", "free"]).contains("NotFound"));
    s.kubectl_ok(&["delete", "pod", "bound", "--wait=false"]);
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "bound"],
            "{.metadata.deletionGracePeriodSeconds}"
        ),
        "45"
    );
    let status = s.kubectl_ok(&["get", "pod", "bound"]);
    assert!(status.contains("Terminating"), "{status}");
    // The node's agent (or a user forcing it) completes the deletion with grace period 0.
    s.kubectl_ok(&["delete", "pod", "bound", "--grace-period=0", "--force"]);
    assert!(s.kubectl_err(&["get", "pod", "bound"]).contains("NotFound"));

    // Binding assigns a node once.
    assert!(
        s.kubectl_stdin(&["create", "-f", "-"], Some(&pod("tobind", "")))
            .status
            .success()
    );
    let binding = br#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"tobind"},"target":{"kind":"Node","name":"node-b"}}"#;
    let path = "/api/v1/namespaces/default/pods/tobind/binding";
    assert_eq!(
        s.raw("POST", path, Some("application/json"), binding).0,
        201
    );
    assert_eq!(
        jsonpath(&s, &["get", "pod", "tobind"], "{.spec.nodeName}"),
        "node-b"
    );
    // Binding also marks the pod scheduled, as kube-apiserver's binding does.
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "tobind"],
            "{.status.conditions[?(@.type==\"PodScheduled\")].status}"
        ),
        "True"
    );
    let (code, again) = s.raw("POST", path, Some("application/json"), binding);
    assert_eq!(code, 409);
    assert_eq!(
        again["message"],
        "Operation cannot be fulfilled on pods/binding \"tobind\": pod tobind is already assigned to node \"node-b\""
    );
    // Eviction deletes (gracefully, as the pod is bound).
    let eviction = br#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"tobind"},"deleteOptions":{"gracePeriodSeconds":0}}"#;
    assert_eq!(
        s.raw(
            "POST",
            "/api/v1/namespaces/default/pods/tobind/eviction",
            Some("application/json"),
            eviction
        )
        .0,
        201
    );
    assert!(
        s.kubectl_err(&["get", "pod", "tobind"])
            .contains("NotFound")
    );
}

#[test]
fn scale_and_server_dry_run() {
    let s = Server::start();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    assert_eq!(
        s.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(
        jsonpath(
            &s,
            &["get", "deploy", "web"],
            "{.spec.replicas} {.metadata.generation}"
        ),
        "5 2"
    );
    let (code, sc) = s.raw(
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        None,
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(sc["kind"], "Scale");
    assert_eq!(sc["spec"]["replicas"], 5);
    assert_eq!(sc["status"]["selector"], "app=web");
    // A stale resourceVersion in the Scale is a conflict.
    let mut stale = sc.clone();
    stale["metadata"]["resourceVersion"] = "1".into();
    stale["spec"]["replicas"] = 9.into();
    let (code, body) = s.raw(
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        Some("application/json"),
        stale.to_string().as_bytes(),
    );
    assert_eq!(
        (code, body["reason"].as_str()),
        (409, Some("Conflict")),
        "{body}"
    );
    // ConfigMaps have no scale subresource: the same 404 kube-apiserver answers.
    s.kubectl_ok(&["create", "configmap", "x"]);
    assert_eq!(
        s.kubectl_err(&["scale", "configmap", "x", "--replicas=1"])
            .trim(),
        "Error from server (NotFound): the server could not find the requested resource"
    );

    // --dry-run=server validates and answers without storing.
    let out = s.kubectl_ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
    ]);
    assert!(
        out.contains("configmap/dry created (server dry run)"),
        "{out}"
    );
    assert!(s.kubectl_err(&["get", "cm", "dry"]).contains("NotFound"));
    let err = s.kubectl_err(&["create", "configmap", "BAD", "--dry-run=server"]);
    assert!(err.contains("is invalid"), "{err}");
    s.kubectl_ok(&[
        "scale",
        "deployment",
        "web",
        "--replicas=7",
        "--dry-run=server",
    ]);
    assert_eq!(
        jsonpath(&s, &["get", "deploy", "web"], "{.spec.replicas}"),
        "5"
    );
    s.kubectl_ok(&["delete", "deployment", "web", "--dry-run=server"]);
    s.kubectl_ok(&["get", "deployment", "web"]);

    // deletecollection with a label selector.
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        s.kubectl_ok(&["create", "configmap", n]);
        s.kubectl_ok(&["label", "configmap", n, &format!("k={l}")]);
    }
    let (code, _) = s.raw(
        "DELETE",
        "/api/v1/namespaces/default/configmaps?labelSelector=k%3Dx",
        None,
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(
        s.kubectl_ok(&["get", "cm", "-l", "k", "-o", "name"]).trim(),
        "configmap/c"
    );
}

#[test]
fn defaults_users_see() {
    let s = Server::start();
    s.kubectl_ok(&["create", "deployment", "web", "--image=nginx"]);
    assert_eq!(
        jsonpath(
            &s,
            &["get", "deploy", "web"],
            "{.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds} {.spec.replicas}"
        ),
        "RollingUpdate 25% 10 600 1"
    );
    assert_eq!(
        jsonpath(
            &s,
            &["get", "deploy", "web"],
            "{.spec.template.spec.restartPolicy} {.spec.template.spec.dnsPolicy} {.spec.template.spec.containers[0].imagePullPolicy} {.spec.template.spec.containers[0].terminationMessagePath}"
        ),
        "Always ClusterFirst Always /dev/termination-log"
    );
    s.kubectl_ok(&["create", "service", "clusterip", "db", "--tcp=5432"]);
    assert_eq!(
        jsonpath(
            &s,
            &["get", "svc", "db"],
            "{.spec.type} {.spec.sessionAffinity} {.spec.ports[0].protocol} {.spec.ports[0].targetPort}"
        ),
        "ClusterIP None TCP 5432"
    );
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}}"#;
    assert!(
        s.kubectl_stdin(&["apply", "-f", "-"], Some(pod))
            .status
            .success()
    );
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "p"],
            "{.spec.containers[0].imagePullPolicy} {.spec.terminationGracePeriodSeconds} {.spec.serviceAccountName} {.status.phase} {.status.qosClass}"
        ),
        "IfNotPresent 30 default Pending BestEffort"
    );
    // Defaulted fields keep client-side apply idempotent.
    let again = s.kubectl_stdin(&["apply", "-f", "-"], Some(pod));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "pod/p unchanged"
    );
}

#[test]
fn every_namespace_gets_a_default_service_account_and_the_ca_bundle() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "team"]);
    common::wait_for(
        std::time::Duration::from_secs(20),
        "the default ServiceAccount",
        || {
            s.kubectl(&["-n", "team", "get", "serviceaccount", "default"])
                .status
                .success()
                .then_some(())
        },
    );
    common::wait_for(
        std::time::Duration::from_secs(20),
        "kube-root-ca.crt",
        || {
            let ca = s.kubectl(&[
                "-n",
                "team",
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ]);
            String::from_utf8_lossy(&ca.stdout)
                .starts_with("-----BEGIN CERTIFICATE-----")
                .then_some(())
        },
    );
    // Deleted, they come back.
    s.kubectl_ok(&["-n", "team", "delete", "serviceaccount", "default"]);
    common::wait_for(
        std::time::Duration::from_secs(20),
        "the ServiceAccount to come back",
        || {
            s.kubectl(&["-n", "team", "get", "serviceaccount", "default"])
                .status
                .success()
                .then_some(())
        },
    );
}

/// A pod's status subresource takes status, labels and annotations (what kube-apiserver's pod
/// status strategy lets through) and ignores the spec.
#[test]
fn pod_status_writes_take_status_labels_and_annotations_only() {
    let s = Server::start();
    s.kubectl_ok(&["run", "p", "--image=nginx"]);
    s.kubectl_ok(&[
        "patch",
        "pod",
        "p",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"db"},"annotations":{"example.com/node":"n1"}},"spec":{"activeDeadlineSeconds":5},"status":{"phase":"Running"}}"#,
    ]);
    let got = jsonpath(
        &s,
        &["get", "pod", "p"],
        "{.metadata.labels.tier} {.metadata.annotations.example\\.com/node} {.spec.activeDeadlineSeconds} {.status.phase}",
    );
    assert_eq!(got, "db n1  Running");
}

/// The pod `resize` subresource changes cpu and memory in place and refuses what
/// kube-apiserver 1.33 refuses, with its messages: a removed request, another resource, a
/// QoS class change, a request above its limit.
#[test]
fn pod_resize_changes_only_cpu_and_memory_within_the_qos_class() {
    let s = Server::start();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: rz}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    resources:\n      requests: {cpu: 100m, memory: 64Mi, ephemeral-storage: 1Gi}\n      limits: {cpu: 200m}\n";
    s.kubectl_stdin_ok(&["create", "-f", "-"], pod);
    assert_eq!(
        jsonpath(&s, &["get", "pod", "rz"], "{.status.qosClass}"),
        "Burstable"
    );
    let resize = |patch: &str| -> String {
        format!(r#"{{"spec":{{"containers":[{{"name":"c","resources":{patch}}}]}}}}"#)
    };
    let args = |body: &str| -> [String; 6] {
        ["patch", "pod", "rz", "--subresource=resize", "-p", body].map(str::to_string)
    };
    let ok = args(&resize(r#"{"requests":{"cpu":"150m","memory":"96Mi"}}"#));
    s.kubectl_ok(&ok.each_ref().map(String::as_str));
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "rz"],
            "{.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.requests.memory}"
        ),
        "150m 96Mi"
    );
    for (patch, want) in [
        (
            r#"{"requests":{"memory":null}}"#,
            "spec.containers[0].resources.requests: Forbidden: resource requests cannot be removed",
        ),
        (
            r#"{"limits":{"cpu":null}}"#,
            "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed",
        ),
        (
            r#"{"requests":{"ephemeral-storage":"2Gi"}}"#,
            "spec: Forbidden: only cpu and memory resources are mutable",
        ),
        (
            r#"{"requests":{"cpu":"200m"},"limits":{"memory":"96Mi"}}"#,
            r#"spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing"#,
        ),
        (
            r#"{"requests":{"cpu":"500m"}}"#,
            r#"spec.containers[0].resources.requests: Invalid value: "500m": must be less than or equal to cpu limit of 200m"#,
        ),
    ] {
        let refused = args(&resize(patch));
        let err = s.kubectl_err(&refused.each_ref().map(String::as_str));
        assert!(err.contains(r#"The Pod "rz" is invalid"#), "{patch}: {err}");
        assert!(err.contains(want), "{patch}: {err}");
    }
    // Nothing refused was written.
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "rz"],
            "{.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.requests.memory} {.spec.containers[0].resources.requests.ephemeral-storage}"
        ),
        "150m 96Mi 1Gi"
    );
}

/// `kubectl debug` adds an ephemeral container through the pod's `ephemeralcontainers`
/// subresource; a name another container has, and ephemeral containers on create, are refused
/// with kube-apiserver's messages.
#[test]
fn kubectl_debug_adds_ephemeral_containers() {
    let s = Server::start();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: dbgp}\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    s.kubectl_stdin_ok(&["create", "-f", "-"], pod);
    s.kubectl_ok(&[
        "debug",
        "dbgp",
        "--image=busybox",
        "-c",
        "dbg",
        "--target=c",
    ]);
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "dbgp"],
            "{.spec.ephemeralContainers[*].name} {.spec.ephemeralContainers[0].image} {.spec.ephemeralContainers[0].targetContainerName} {.spec.containers[*].name}"
        ),
        "dbg busybox c c"
    );
    let err = s.kubectl_err(&["debug", "dbgp", "--image=busybox", "-c", "c"]);
    assert!(
        err.contains(r#"spec.ephemeralContainers[1].name: Duplicate value: "c""#),
        "{err}"
    );
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "dbgp"],
            "{.spec.ephemeralContainers[*].name}"
        ),
        "dbg"
    );
    let with_ephemeral = "apiVersion: v1\nkind: Pod\nmetadata: {name: dbgq}\nspec:\n  containers:\n  - name: c\n    image: nginx\n  ephemeralContainers:\n  - name: e\n    image: busybox\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], Some(with_ephemeral));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.ephemeralContainers: Forbidden: cannot be set on create"),
        "{err}"
    );
}
