//! The user flow of the single-node API issue, with the real kubectl against the real binary.

mod common;

use std::time::Duration;

use common::{Server, wait_for};

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: web, tier: front}
data:
  mode: "fast"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"#;

#[test]
fn the_issue_workflow_behaves_as_against_kube_apiserver() {
    let s = Server::start();
    // Bootstrap namespaces exist, with kubectl's Table columns.
    let ns = s.kubectl_ok(&["get", "namespaces"]);
    assert!(ns.starts_with("NAME"), "{ns}");
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(n), "{n} missing from {ns}");
    }
    assert!(ns.contains("Active"));
    let all = s.kubectl(&["get", "all", "-A"]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );

    // kubectl's create subcommands send protobuf bodies.
    assert_eq!(
        s.kubectl_ok(&["create", "namespace", "shop"]).trim(),
        "namespace/shop created"
    );
    assert_eq!(
        s.kubectl_ok(&[
            "-n",
            "shop",
            "create",
            "configmap",
            "cfg",
            "--from-literal=a=1"
        ])
        .trim(),
        "configmap/cfg created"
    );
    assert_eq!(
        s.kubectl_ok(&[
            "-n",
            "shop",
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=3"
        ])
        .trim(),
        "deployment.apps/web created"
    );
    let cm = s.kubectl_ok(&[
        "-n",
        "shop",
        "get",
        "configmap",
        "cfg",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(cm, "1");
    let deploy = s.kubectl_ok(&["-n", "shop", "get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.metadata.generation}"]);
    assert_eq!(deploy, "3 nginx 1");
    let deploys = s.kubectl_ok(&["-n", "shop", "get", "deployments"]);
    let header: Vec<&str> = deploys
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(deploys.contains("0/3"), "{deploys}");
    let err = s.kubectl_err(&["create", "namespace", "shop"]);
    assert_eq!(
        err.trim(),
        "Error from server (AlreadyExists): namespaces \"shop\" already exists"
    );
    assert_eq!(
        s.kubectl_ok(&["auth", "can-i", "create", "pods"]).trim(),
        "yes"
    );
    s.kubectl_ok(&["-n", "shop", "delete", "deployment", "web"]);
    s.kubectl_ok(&["-n", "shop", "delete", "configmap", "cfg"]);
}

#[test]
fn apply_is_idempotent_and_patches_merge_strategically() {
    let s = Server::start();
    let out = String::from_utf8_lossy(&s.kubectl_stdin(&["apply", "-f", "-"], Some(APP)).stdout)
        .into_owned();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/shop created",
            "configmap/settings created",
            "deployment.apps/web created"
        ]
    );
    let again = s.kubectl_stdin(&["apply", "-f", "-"], Some(APP));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .lines()
            .collect::<Vec<_>>(),
        [
            "namespace/shop unchanged",
            "configmap/settings unchanged",
            "deployment.apps/web unchanged"
        ]
    );
    let rv_before = s.kubectl_ok(&[
        "-n",
        "shop",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);

    // A changed manifest: replicas and one env var change, one env var goes away.
    let changed = APP
        .replace("replicas: 3", "replicas: 5")
        .replace("- {name: B, value: \"2\"}\n", "")
        .replace("value: \"1\"", "value: \"one\"");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(&changed));
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web configured"));
    let got = s.kubectl_ok(&[
        "-n",
        "shop",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.replicas} {.metadata.generation} {.spec.template.spec.containers[0].env}",
    ]);
    assert_eq!(got, r#"5 2 [{"name":"A","value":"one"}]"#);
    let rv_after = s.kubectl_ok(&[
        "-n",
        "shop",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert!(rv_after.parse::<u64>().expect("rv") > rv_before.parse::<u64>().expect("rv"));

    // Strategic merge: a container added by name keeps the existing one.
    s.kubectl_ok(&[
        "-n",
        "shop",
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let names = s.kubectl_ok(&[
        "-n",
        "shop",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(names, "sidecar nginx");
    // Merge and JSON patches.
    s.kubectl_ok(&[
        "-n",
        "shop",
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"extra":"x","mode":null}}"#,
    ]);
    s.kubectl_ok(&[
        "-n",
        "shop",
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/more","value":"y"}]"#,
    ]);
    assert_eq!(
        s.kubectl_ok(&[
            "-n",
            "shop",
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data}"
        ]),
        r#"{"extra":"x","more":"y"}"#
    );
    let err = s.kubectl_err(&[
        "-n",
        "shop",
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/extra","value":"no"}]"#,
    ]);
    assert!(err.starts_with("The request is invalid: "), "{err}");
    assert_eq!(
        s.kubectl_ok(&[
            "-n",
            "shop",
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data.extra}"
        ]),
        "x"
    );
}

#[test]
fn selectors_tables_and_wide_output() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "t"]);
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: t\n  labels: {{tier: {tier}}}\ndata: {{k: v, k2: v2}}\n"
        );
        let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest));
        assert!(out.status.success());
    }
    // The namespace's CA bundle arrives from a controller; the assertions below include it.
    wait_for(Duration::from_secs(20), "kube-root-ca.crt in t", || {
        s.kubectl(&["-n", "t", "get", "cm", "kube-root-ca.crt"])
            .status
            .success()
            .then_some(())
    });
    let names = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["-n", "t", "get", "configmaps", "-o", "name"];
        full.extend_from_slice(args);
        s.kubectl_ok(&full).lines().map(str::to_string).collect()
    };
    assert_eq!(names(&["-l", "tier=front"]), ["configmap/a", "configmap/c"]);
    // `!=` also matches objects without the label (the namespace's CA bundle has none).
    assert_eq!(
        names(&["-l", "tier!=front"]),
        ["configmap/b", "configmap/kube-root-ca.crt"]
    );
    assert_eq!(
        names(&["-l", "tier in (back,front),tier notin (front)"]),
        ["configmap/b"]
    );
    assert_eq!(
        names(&["--field-selector", "metadata.name=c"]),
        ["configmap/c"]
    );
    assert_eq!(
        names(&["--field-selector", "metadata.name!=c", "-l", "tier"]),
        ["configmap/a", "configmap/b"]
    );
    let table = s.kubectl_ok(&["-n", "t", "get", "cm"]);
    let first: Vec<&str> = table
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(first, ["NAME", "DATA", "AGE"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("a ") && l.contains(" 2 ")),
        "{table}"
    );
    let labels = s.kubectl_ok(&["-n", "t", "get", "cm", "a", "--show-labels"]);
    assert!(labels.contains("tier=front"), "{labels}");
    let all_ns = s.kubectl_ok(&["get", "cm", "-A", "-l", "tier=back"]);
    assert!(
        all_ns
            .lines()
            .next()
            .expect("header")
            .starts_with("NAMESPACE"),
        "{all_ns}"
    );
    // Paging: kubectl asks for chunks of 500; a small chunk size still lists everything.
    assert_eq!(
        s.kubectl_ok(&[
            "-n",
            "t",
            "get",
            "cm",
            "-o",
            "name",
            "--chunk-size=1",
            "-l",
            "tier"
        ])
        .lines()
        .count(),
        3
    );

    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"t"},"spec":{"nodeName":"node-1","containers":[{"name":"c","image":"busybox"}]}}"#;
    assert!(
        s.kubectl_stdin(&["create", "-f", "-"], Some(pod))
            .status
            .success()
    );
    let wide = s.kubectl_ok(&["-n", "t", "get", "pods", "-o", "wide"]);
    let cols: Vec<&str> = wide
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        cols,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    assert!(
        wide.contains("Pending") && wide.contains("node-1") && wide.contains("0/1"),
        "{wide}"
    );
    assert_eq!(
        s.kubectl_ok(&[
            "-n",
            "t",
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=node-1",
            "-o",
            "name"
        ])
        .trim(),
        "pod/p"
    );
    let err = s.kubectl_err(&["-n", "t", "get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(
        err.contains("field label not supported: spec.bogus"),
        "{err}"
    );
}

#[test]
fn get_watch_streams_changes() {
    let s = Server::start();
    s.kubectl_ok(&["create", "namespace", "w"]);
    s.kubectl_ok(&["-n", "w", "create", "configmap", "x", "--from-literal=k=0"]);
    let mut child = std::process::Command::new("kubectl")
        .env("KUBECONFIG", s.kubeconfig())
        .args([
            "--cache-dir",
            &s.dir.path().join("watch-cache").display().to_string(),
        ])
        .args([
            "-n",
            "w",
            "get",
            "configmaps",
            "-w",
            "--field-selector=metadata.name!=kube-root-ca.crt",
            "-o",
            "custom-columns=NAME:.metadata.name,DATA:.data.k",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The list comes first (header and the existing object); the watch resumes from the
    // list's resourceVersion, so nothing after it is missed.
    let header = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("watch header");
    assert!(header.starts_with("NAME"), "{header}");
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("initial row");
    assert_eq!(first.split_whitespace().collect::<Vec<_>>(), ["x", "0"]);
    s.kubectl_ok(&[
        "-n",
        "w",
        "patch",
        "configmap",
        "x",
        "-p",
        r#"{"data":{"k":"1"}}"#,
    ]);
    s.kubectl_ok(&["-n", "w", "create", "configmap", "y", "--from-literal=k=2"]);
    s.kubectl_ok(&["-n", "w", "delete", "configmap", "x"]);
    let mut seen = Vec::new();
    wait_for(Duration::from_secs(20), "three watch events", || {
        while let Ok(l) = rx.try_recv() {
            seen.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        (seen.len() >= 3).then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen[..3], ["x 1", "y 2", "x 1"]);
}
