//! A virtual cluster whose pods run in `vkube sim` physical clusters (separate processes,
//! real sockets), driven with real kubectl on both sides.

mod common;

use std::time::Duration;

use common::{Server, wait_for};

/// The uid, cpu and memory requests of a pod's first container.
const RESOURCES: &str = "{.metadata.uid} {.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.requests.memory}";

/// `jsonpath` of the physical pod `name` in the `vkube` namespace of `physical` (empty while
/// it does not exist).
fn physical_pod(physical: &Server, name: &str, jsonpath: &str) -> String {
    let out = physical.kubectl(&[
        "get",
        "pod",
        "-n",
        "vkube",
        name,
        "-o",
        &format!("jsonpath={jsonpath}"),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `jsonpath` of physical pod `name` reads `want`.
fn wait_physical_pod(physical: &Server, name: &str, jsonpath: &str, want: &str, what: &str) {
    wait_for(Duration::from_secs(30), what, || {
        (physical_pod(physical, name, jsonpath) == want).then_some(())
    });
}

/// Whether the token Secrets of physical namespace `ns` are in step with its pods: each pod
/// mounts its own token from a Secret holding it, and each token Secret holds some pod's
/// token (no orphans). What is out of step, if anything.
fn tokens_out_of_step(physical: &Server, ns: &str) -> Option<String> {
    let all: serde_json::Value = serde_json::from_str(&physical.kubectl_ok(&[
        "get",
        "pods,secrets",
        "-n",
        ns,
        "-l",
        "vkube.io/managed-by",
        "-o",
        "json",
    ]))
    .expect("list JSON");
    let items = all["items"].as_array().cloned().unwrap_or_default();
    let (pods, secrets): (Vec<_>, Vec<_>) = items.iter().partition(|o| o["kind"] == "Pod");
    let mut live_keys = Vec::new();
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let mounted = p["spec"]["volumes"].as_array().and_then(|vols| {
            vols.iter().find_map(|vol| {
                let s = &vol["secret"];
                let key = s["items"]
                    .as_array()?
                    .iter()
                    .find(|i| i["path"] == "token")?;
                Some((s["secretName"].as_str()?, key["key"].as_str()?))
            })
        });
        let Some((secret, key)) = mounted else {
            return Some(format!("pod {name} mounts no token"));
        };
        // Its own token: the key names the virtual pod it was made for.
        let Some(uid) = p["metadata"]["annotations"]["vkube.io/uid"].as_str() else {
            return Some(format!("pod {name} names no virtual pod"));
        };
        let own = vkube::syncer::translate::token_key(uid);
        if key != own {
            return Some(format!("pod {name} mounts {key}, not {own}"));
        }
        let held = secrets
            .iter()
            .any(|s| s["metadata"]["name"] == secret && s["data"][key].is_string());
        if !held {
            return Some(format!("pod {name}: {secret} lacks {key}"));
        }
        live_keys.push(key.to_string());
    }
    secrets
        .iter()
        .filter(|s| {
            use vkube::syncer::translate::{KIND_POD_TOKENS, LABEL_KIND};
            s["metadata"]["labels"][LABEL_KIND] == KIND_POD_TOKENS
        })
        .find(|s| {
            let data = s["data"].as_object();
            !live_keys
                .iter()
                .any(|k| data.is_some_and(|d| d.contains_key(k)))
        })
        .map(|s| {
            format!(
                "token Secret {} holds no live pod's token",
                s["metadata"]["name"]
            )
        })
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

const FRAGILE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: fragile}
spec:
  replicas: 1
  selector: {matchLabels: {app: fragile}}
  template:
    metadata: {labels: {app: fragile}}
    spec:
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
      containers: [{name: c, image: busybox}]
"#;

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {GREETING: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx
        envFrom: [{configMapRef: {name: web-config}}]
"#;

#[test]
fn virtual_pods_run_in_a_simulated_physical_cluster() {
    let mut physical = Server::start_sim(&["--name", "east", "--nodes", "2"]);
    let pkc = physical.kubeconfig().display().to_string();
    let v = Server::start_with(&[
        "--kubeconfig",
        &pkc,
        "--namespace",
        "tenant-a",
        "--id",
        "vk1",
    ]);

    // The physical cluster is one Ready virtual node.
    wait_for(
        Duration::from_secs(20),
        "the virtual node to be Ready",
        || {
            let out = v.kubectl(&["get", "nodes", "--no-headers"]);
            let out = String::from_utf8_lossy(&out.stdout).to_string();
            (out.starts_with("physical ") && out.contains(" Ready ")).then_some(())
        },
    );
    let label = v.kubectl_ok(&[
        "get",
        "node",
        "physical",
        "-o",
        "jsonpath={.metadata.labels.topology\\.vkube\\.io/cluster}",
    ]);
    assert_eq!(label, "physical");

    // A Deployment's pods run physically, with physical IPs and node names.
    v.kubectl_stdin_ok(&["apply", "-f", "-"], APP);
    v.kubectl_ok(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    let vpods = lines(&v.kubectl_ok(&[
        "get", "pods", "-l", "app=web", "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.metadata.annotations.vkube\\.io/physical-node}{\"\\n\"}{end}",
    ]));
    assert_eq!(vpods.len(), 3, "{vpods:?}");
    for p in &vpods {
        let f: Vec<&str> = p.split(' ').collect();
        assert_eq!(f[1], "physical", "{p}");
        assert!(f[2].starts_with("10.244."), "a physical pod IP: {p}");
        assert!(f[3].starts_with("east-node-"), "the physical node: {p}");
    }
    // Translated names, labels and references in the physical namespace.
    let ppods = lines(&physical.kubectl_ok(&[
        "get", "pods", "-n", "tenant-a", "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.vkube\\.io/managed-by} {.spec.containers[0].envFrom[0].configMapRef.name}{\"\\n\"}{end}",
    ]));
    assert_eq!(ppods.len(), 3, "{ppods:?}");
    for p in &ppods {
        assert!(
            p.contains("-x-default-x-vk1 vk1 web-config-x-default-x-vk1"),
            "{p}"
        );
    }
    // The physical API server names the syncer (its User-Agent) as what wrote them.
    let managers = physical.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "tenant-a",
        "--show-managed-fields",
        "-o",
        "jsonpath={.items[*].metadata.managedFields[?(@.operation==\"Update\")].manager}",
    ]);
    assert!(
        managers.split(' ').filter(|m| *m == "vkube-syncer").count() >= 3,
        "{managers}"
    );
    let data = physical.kubectl_ok(&[
        "get",
        "configmap",
        "-n",
        "tenant-a",
        "web-config-x-default-x-vk1",
        "-o",
        "jsonpath={.data.GREETING}",
    ]);
    assert_eq!(data, "hello");

    // The pods' ServiceAccount token: a Secret in the physical namespace, mounted where
    // the virtual pod mounts it, holding a token the virtual API accepts for that pod.
    let ppod = physical.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "tenant-a",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let mounted = physical.kubectl_ok(&[
        "get", "pod", "-n", "tenant-a", &ppod, "-o",
        "jsonpath={.spec.volumes[?(@.secret)].secret.secretName} {.spec.containers[0].volumeMounts[?(@.mountPath==\"/var/run/secrets/kubernetes.io/serviceaccount\")].name} {.spec.automountServiceAccountToken} {.spec.volumes[?(@.secret)].secret.items[?(@.path==\"token\")].key}",
    ]);
    let f: Vec<&str> = mounted.split(' ').collect();
    assert!(
        f[0].ends_with("-token-x-default-x-vk1")
            && f[1].starts_with("kube-api-access-")
            && f[2] == "false",
        "{mounted}"
    );
    // One Secret holds the tokens of the pods created together, each under its own key.
    let secret: serde_json::Value = serde_json::from_str(
        &physical.kubectl_ok(&["get", "secret", "-n", "tenant-a", f[0], "-o", "json"]),
    )
    .expect("secret JSON");
    assert!(f[3].starts_with("token-"), "{mounted}");
    let token = {
        use base64::Engine;
        let data = secret["data"][f[3]].as_str().unwrap_or_default();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64"),
        )
        .expect("utf8")
    };
    // Every pod's token is where its pod mounts it from.
    assert_eq!(tokens_out_of_step(&physical, "tenant-a"), None);
    let out = v.token_review(&token);
    assert_eq!(out["status"]["authenticated"], true, "{out}");
    assert_eq!(
        out["status"]["user"]["username"],
        "system:serviceaccount:default:default"
    );
    let bound_pod = out["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"][0]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        vpods
            .iter()
            .any(|p| p.starts_with(&format!("{bound_pod} "))),
        "bound to a virtual pod: {out}"
    );

    // ConfigMap changes propagate.
    v.kubectl_ok(&[
        "patch",
        "configmap",
        "web-config",
        "--type=merge",
        "-p",
        r#"{"data":{"GREETING":"bonjour"}}"#,
    ]);
    wait_for(
        Duration::from_secs(20),
        "the physical ConfigMap to change",
        || {
            let d = physical.kubectl_ok(&[
                "get",
                "configmap",
                "-n",
                "tenant-a",
                "web-config-x-default-x-vk1",
                "-o",
                "jsonpath={.data.GREETING}",
            ]);
            (d == "bonjour").then_some(())
        },
    );

    // What the physical cluster records about a pod shows in the virtual cluster, about the
    // virtual pod: the kubelet's start. Its placement is the virtual scheduler's (one
    // `Scheduled`, naming the virtual node); the physical node is an annotation.
    let first = vpods[0].split(' ').next().expect("name").to_string();
    let events = wait_for(Duration::from_secs(20), "the physical events", || {
        let out = v.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={first}"),
            "-o",
            "jsonpath={range .items[*]}{.source.component}: {.message}{\"\\n\"}{end}",
        ]);
        out.contains("kubelet: Started container nginx")
            .then_some(out)
    });
    let scheduled: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("Successfully assigned"))
        .collect();
    assert_eq!(
        scheduled,
        [
            format!("default-scheduler: Successfully assigned default/{first} to physical")
                .as_str()
        ],
        "only the virtual scheduler's placement: {events}"
    );
    let node = v.kubectl_ok(&[
        "get",
        "pod",
        &first,
        "-o",
        "jsonpath={.metadata.annotations.vkube\\.io/physical-node}",
    ]);
    assert!(node.starts_with("east-node-"), "{node}");

    // Logs come from the physical pod through vkube.
    let pod = vpods[0].split(' ').next().expect("name").to_string();
    let log = wait_for(Duration::from_secs(10), "log lines", || {
        let out = v.kubectl(&["logs", &pod]);
        let log = String::from_utf8_lossy(&out.stdout).to_string();
        log.contains("vkube-sim: tenant-a/").then_some(log)
    });
    assert!(log.contains("container nginx line 0"), "{log}");

    // A Service exists physically with its selector rewritten to the physical pods' labels;
    // the physical cluster keeps its Endpoints, and its ClusterIP shows on the virtual one.
    v.kubectl_ok(&["expose", "deployment", "web", "--port=80"]);
    let (pip, selector) = wait_for(Duration::from_secs(20), "the physical Service", || {
        let out = physical.kubectl(&[
            "get",
            "service",
            "-n",
            "tenant-a",
            "web-x-default-x-vk1",
            "-o",
            "jsonpath={.spec.clusterIP} {.spec.selector}",
        ]);
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        out.split_once(' ')
            .map(|(ip, sel)| (ip.to_string(), sel.to_string()))
    });
    assert!(
        selector.contains("\"vkube.io/managed-by\":\"vk1\"")
            && selector.contains("\"vkube.io/namespace\":\"default\""),
        "{selector}"
    );
    wait_for(
        Duration::from_secs(20),
        "the physical ClusterIP on the virtual Service",
        || {
            let shown = v.kubectl_ok(&[
                "get",
                "service",
                "web",
                "-o",
                "jsonpath={.metadata.annotations.vkube\\.io/physical-cluster-ip\\.physical}",
            ]);
            (shown == pip).then_some(())
        },
    );
    wait_for(Duration::from_secs(20), "3 physical endpoints", || {
        let out = physical.kubectl_ok(&[
            "get",
            "endpoints",
            "-n",
            "tenant-a",
            "web-x-default-x-vk1",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ]);
        (out.split(' ')
            .filter(|ip| ip.starts_with("10.244."))
            .count()
            == 3)
            .then_some(())
    });
    v.kubectl_ok(&["delete", "service", "web"]);
    wait_for(
        Duration::from_secs(20),
        "the physical Service deleted",
        || {
            let out =
                physical.kubectl(&["get", "service", "-n", "tenant-a", "web-x-default-x-vk1"]);
            (!out.status.success()).then_some(())
        },
    );

    // A Service without a selector and the Endpoints its user wrote go down as they are.
    let manual = r#"
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {ports: [{port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext}
subsets: [{addresses: [{ip: 192.0.2.10}], ports: [{port: 5432}]}]
"#;
    let out = v.kubectl_stdin(&["apply", "-f", "-"], Some(manual));
    assert!(out.status.success(), "{out:?}");
    wait_for(
        Duration::from_secs(20),
        "the physical Endpoints of ext",
        || {
            let out = physical.kubectl(&[
                "get",
                "endpoints",
                "-n",
                "tenant-a",
                "ext-x-default-x-vk1",
                "-o",
                "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}",
            ]);
            (String::from_utf8_lossy(&out.stdout) == "192.0.2.10:5432").then_some(())
        },
    );
    v.kubectl_ok(&["delete", "service", "ext"]);
    wait_for(Duration::from_secs(20), "ext gone physically", || {
        let out = physical.kubectl(&[
            "get",
            "service,endpoints",
            "-n",
            "tenant-a",
            "-l",
            "vkube.io/managed-by=vk1",
            "-o",
            "name",
        ]);
        let names = String::from_utf8_lossy(&out.stdout).to_string();
        (!names.contains("ext-x-default-x-vk1")).then_some(())
    });

    // A stray in the physical namespace carrying our label is swept.
    let stray = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stray\n  namespace: tenant-a\n  labels: {vkube.io/managed-by: vk1}\nspec:\n  containers: [{name: c, image: busybox}]\n";
    physical.kubectl_stdin_ok(&["create", "-f", "-"], stray);
    wait_for(Duration::from_secs(20), "the stray to be deleted", || {
        let out = physical.kubectl(&["get", "pod", "-n", "tenant-a", "stray"]);
        (!out.status.success()).then_some(())
    });

    // A pod that tolerates an unreachable node for one second only.
    v.kubectl_stdin_ok(&["apply", "-f", "-"], FRAGILE);
    v.kubectl_ok(&["rollout", "status", "deploy/fragile", "--timeout=60s"]);
    let fragile = v.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=fragile",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    // Every pod got the default not-ready/unreachable tolerations (300 s).
    let tolerations = v.kubectl_ok(&[
        "get",
        "pod",
        &pod,
        "-o",
        "jsonpath={.spec.tolerations[*].tolerationSeconds}",
    ]);
    assert_eq!(tolerations, "300 300");

    // The physical cluster goes away: the node is NotReady and tainted, and the pod that
    // tolerates that for a second is evicted and replaced (Pending: no Ready node); it comes
    // back: Ready, the replacement runs, and no pod was duplicated.
    physical.kill9();
    wait_for(
        Duration::from_secs(30),
        "the virtual node to go NotReady",
        || {
            let out = v.kubectl_ok(&["get", "nodes", "--no-headers"]);
            out.contains("NotReady").then_some(())
        },
    );
    let taints = v.kubectl_ok(&[
        "get",
        "node",
        "physical",
        "-o",
        "jsonpath={.spec.taints[*].key}",
    ]);
    assert!(
        taints.contains("node.kubernetes.io/unreachable"),
        "{taints}"
    );
    wait_for(
        Duration::from_secs(30),
        "the fragile pod evicted and replaced",
        || {
            let out = v.kubectl_ok(&[
            "get", "pods", "-l", "app=fragile", "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ]);
            let rows = lines(&out);
            let evicted = rows.iter().any(|r| {
                r.starts_with(&format!("{fragile} ")) && r.trim_end().len() > fragile.len()
            });
            (evicted && rows.len() == 2).then_some(())
        },
    );
    let events = v.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=TaintManagerEviction",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(&format!("Marking for deletion Pod default/{fragile}")),
        "{events}"
    );
    physical.restart_after_kill9();
    wait_for(
        Duration::from_secs(30),
        "the virtual node to be Ready again",
        || {
            let out = v.kubectl_ok(&["get", "nodes", "--no-headers"]);
            (out.contains(" Ready ") && !out.contains("NotReady")).then_some(())
        },
    );
    v.kubectl_ok(&["rollout", "status", "deploy/fragile", "--timeout=60s"]);
    wait_for(
        Duration::from_secs(30),
        "one pod per replica on both sides, no duplicates",
        || {
            let pp =
                lines(&physical.kubectl_ok(&["get", "pods", "-n", "tenant-a", "-o", "name"])).len();
            let vp = lines(&v.kubectl_ok(&["get", "pods", "-o", "name"])).len();
            (pp == 4 && vp == 4).then_some(())
        },
    );
    v.kubectl_ok(&["delete", "deployment", "fragile"]);

    // Deleting the Deployment deletes both sides and leaves nothing behind.
    v.kubectl_ok(&["delete", "deployment", "web"]);
    wait_for(Duration::from_secs(30), "both sides empty", || {
        let vp = v.kubectl_ok(&["get", "pods", "-o", "name"]);
        let pp = physical.kubectl_ok(&["get", "pods", "-n", "tenant-a", "-o", "name"]);
        (vp.trim().is_empty() && pp.trim().is_empty()).then_some(())
    });
    wait_for(
        Duration::from_secs(20),
        "the unreferenced ConfigMap and the token Secrets removed",
        || {
            let cms = physical.kubectl_ok(&[
                "get",
                "configmaps,secrets",
                "-n",
                "tenant-a",
                "-l",
                "vkube.io/managed-by=vk1",
                "-o",
                "name",
            ]);
            cms.trim().is_empty().then_some(())
        },
    );
}

/// `vkube demo`: one command, a virtual cluster over two simulated clusters; pods spread
/// over both, and the simulated clusters stop with the demo.
#[test]
fn demo_spreads_pods_over_two_simulated_clusters() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    // Three consecutive free ports: the demo takes port, port+1 and port+2.
    let port = wait_for(
        Duration::from_secs(10),
        "three free consecutive ports",
        || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = l.local_addr().expect("addr").port();
            let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            (port < u16::MAX - 2 && free(port + 1) && free(port + 2)).then_some(port)
        },
    );
    let kc = dir.path().join("kubeconfig.yaml");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_vkube"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kubeconfig-out")
        .arg(&kc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vkube demo");
    let kubectl = |args: &[&str]| -> String {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", &kc)
            .arg("--cache-dir")
            .arg(dir.path().join("kube-cache"))
            .args(args)
            .output()
            .expect("kubectl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(
        Duration::from_secs(60),
        "both clusters Ready as nodes",
        || {
            let nodes = kubectl(&["get", "nodes", "--no-headers"]);
            (nodes.contains("east ")
                && nodes.contains("west ")
                && nodes.matches(" Ready ").count() == 2)
                .then_some(())
        },
    );
    kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=4",
    ]);
    let placed = wait_for(Duration::from_secs(60), "4 Running pods", || {
        let out = kubectl(&[
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{\"\\n\"}{end}",
        ]);
        (lines(&out).len() == 4 && lines(&out).iter().all(|l| l.ends_with(" Running")))
            .then_some(out)
    });
    assert!(
        placed.contains("east ") && placed.contains("west "),
        "spread over both: {placed}"
    );
    // SIGTERM: the demo and its simulated clusters stop.
    Command::new("kill")
        .arg(demo.id().to_string())
        .status()
        .expect("kill");
    demo.wait().expect("demo exits");
    wait_for(
        Duration::from_secs(20),
        "the simulated clusters to stop",
        || {
            let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
            (!up(port + 1) && !up(port + 2)).then_some(())
        },
    );
}

/// The syncer works with only the namespaced rights `deploy/physical-rbac.yaml` grants: a
/// kubeconfig holding the `vkube-syncer` ServiceAccount's token.
#[test]
fn the_syncer_needs_only_the_namespaced_rights_in_deploy() {
    let physical = Server::start_sim(&["--nodes", "1"]);
    let rbac = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/physical-rbac.yaml"),
    )
    .expect("deploy/physical-rbac.yaml");
    physical.kubectl_stdin_ok(&["apply", "-f", "-"], &rbac);
    let token = physical
        .kubectl_ok(&[
            "create",
            "token",
            "vkube-syncer",
            "-n",
            "vkube",
            "--duration=1h",
        ])
        .trim()
        .to_string();
    // The physical cluster's address and CA, with the syncer's token instead of the admin
    // certificate.
    let admin = std::fs::read_to_string(physical.kubeconfig()).expect("kubeconfig");
    let field = |name: &str| {
        admin
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in {admin}"))
            .to_string()
    };
    let kc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: syncer\n  user:\n    token: {token}\ncontexts:\n- name: p\n  context: {{cluster: p, user: syncer}}\ncurrent-context: p\n",
        field("server"),
        field("certificate-authority-data")
    );
    let kc_path = physical.dir.path().join("syncer.kubeconfig");
    std::fs::write(&kc_path, kc).expect("write kubeconfig");
    // The token really is limited: it may not list pods elsewhere.
    let denied = std::process::Command::new("kubectl")
        .env("KUBECONFIG", &kc_path)
        .args(["get", "pods", "-n", "default"])
        .output()
        .expect("kubectl");
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("forbidden"));

    let v = Server::start_with(&[
        "--kubeconfig",
        kc_path.to_str().expect("path"),
        "--namespace",
        "vkube",
        "--id",
        "rb",
    ]);
    v.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
    ]);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources: {requests: {cpu: 100m, memory: 32Mi}}\n    env: [{name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}]\n";
    v.kubectl_stdin_ok(&["create", "-f", "-"], pod);
    wait_for(
        Duration::from_secs(60),
        "the pod Running through the restricted syncer",
        || {
            let phase = v.kubectl_ok(&["get", "pod", "app", "-o", "jsonpath={.status.phase}"]);
            (phase == "Running").then_some(())
        },
    );
    let rb = "app-x-default-x-rb";
    let cm = physical_pod(
        &physical,
        rb,
        "{.spec.containers[0].env[?(@.name==\"MODE\")].valueFrom.configMapKeyRef.name}",
    );
    assert_eq!(cm, "settings-x-default-x-rb");
    // A changed image is patched in place: same physical pod, new image.
    let uid = image_patched_in_place(&v, &physical, rb);
    // Labels follow (a physical Service's selector picks pods by them), both ways.
    v.kubectl_ok(&["label", "pod", "app", "tier=web"]);
    let labels = "{.metadata.uid} {.metadata.labels.tier}|{.metadata.labels.vkube\\.io/managed-by}";
    wait_physical_pod(
        &physical,
        rb,
        labels,
        &format!("{uid} web|rb"),
        "the physical pod labelled",
    );
    v.kubectl_ok(&["label", "pod", "app", "tier-"]);
    wait_physical_pod(
        &physical,
        rb,
        labels,
        &format!("{uid} |rb"),
        "the physical label removed",
    );
    // A resize through the virtual pod's `resize` subresource resizes the physical pod in
    // place (through its `resize` subresource, which the RBAC in deploy/ allows).
    v.kubectl_ok(&[
        "patch",
        "pod",
        "app",
        "--subresource=resize",
        "-p",
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"250m","memory":"64Mi"}}}]}}"#,
    ]);
    wait_physical_pod(
        &physical,
        rb,
        RESOURCES,
        &format!("{uid} 250m 64Mi"),
        "the physical pod resized",
    );
    // So does a `kubectl debug` container (the physical `ephemeralcontainers` subresource).
    // While the physical cluster refuses that, the pod's other changes still reach it.
    let refusing = rbac.replace(
        "- apiGroups: [\"\"]\n  resources: [pods/ephemeralcontainers]\n  verbs: [patch]\n",
        "",
    );
    assert_ne!(refusing, rbac, "the ephemeralcontainers rule in deploy/");
    physical.kubectl_stdin_ok(&["apply", "-f", "-"], &refusing);
    v.kubectl_ok(&["debug", "app", "--image=busybox", "-c", "dbg"]);
    v.kubectl_ok(&["label", "pod", "app", "tier=debugged"]);
    wait_physical_pod(
        &physical,
        rb,
        labels,
        &format!("{uid} debugged|rb"),
        "the label, with the debug container refused",
    );
    let ephemeral = "{.metadata.uid} {.spec.ephemeralContainers[*].name}";
    assert_eq!(physical_pod(&physical, rb, ephemeral), format!("{uid} "));
    // Allowed again: the next pass adds it.
    physical.kubectl_stdin_ok(&["apply", "-f", "-"], &rbac);
    wait_physical_pod(
        &physical,
        rb,
        ephemeral,
        &format!("{uid} dbg"),
        "the debug container added physically",
    );
    v.kubectl_ok(&["delete", "pod", "app", "--timeout=30s"]);
    let left = physical.kubectl_ok(&["get", "pods", "-n", "vkube", "-o", "name"]);
    assert!(left.trim().is_empty(), "{left}");
}

/// A physical cluster without in-place resize (before 1.33, or the gate off) refuses the
/// resize: the syncer recreates the physical pod with the new resources instead, says so in
/// a virtual Event, and the virtual pod runs again.
#[test]
fn a_resize_the_physical_cluster_cannot_do_in_place_recreates_the_pod() {
    let physical = Server::start_sim(&[
        "--nodes",
        "1",
        "--feature-gates",
        "InPlacePodVerticalScaling=false",
    ]);
    let pkc = physical.kubeconfig().display().to_string();
    let v = Server::start_with(&["--kubeconfig", &pkc, "--id", "rz"]);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources: {requests: {cpu: 100m, memory: 32Mi}}\n";
    v.kubectl_stdin_ok(&["create", "-f", "-"], pod);
    let rz = "app-x-default-x-rz";
    wait_for(Duration::from_secs(60), "the pod Running", || {
        let phase = v.kubectl_ok(&["get", "pod", "app", "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(())
    });
    let uid = physical_pod(&physical, rz, "{.metadata.uid}");
    // The physical cluster serves no resize subresource, as kube-apiserver without the gate.
    let resize =
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"250m"}}}]}}"#;
    let refused = physical.kubectl_err(&[
        "patch",
        "pod",
        "-n",
        "vkube",
        rz,
        "--subresource=resize",
        "-p",
        resize,
    ]);
    assert!(
        refused.contains("the server could not find the requested resource"),
        "{refused}"
    );
    v.kubectl_ok(&["patch", "pod", "app", "--subresource=resize", "-p", resize]);
    let recreated = wait_for(
        Duration::from_secs(60),
        "the physical pod recreated",
        || {
            let out = physical_pod(&physical, rz, RESOURCES);
            out.split(' ')
                .next()
                .is_some_and(|u| !u.is_empty() && u != uid)
                .then_some(out)
        },
    );
    assert!(recreated.ends_with(" 250m 32Mi"), "{recreated}");
    // The virtual pod runs again, with the new physical pod's containers.
    wait_for(Duration::from_secs(60), "the recreated pod Running", || {
        let container = "{.status.containerStatuses[0].containerID}";
        let physical_id = physical_pod(&physical, rz, container);
        let status = v.kubectl_ok(&[
            "get",
            "pod",
            "app",
            "-o",
            &format!("jsonpath={{.status.phase}} {container}"),
        ]);
        (!physical_id.is_empty() && status == format!("Running {physical_id}")).then_some(())
    });
    // One physical pod, and the virtual pod's owner learns why it restarted.
    let pods = physical.kubectl_ok(&["get", "pods", "-n", "vkube", "-o", "name"]);
    assert_eq!(pods.trim(), "pod/app-x-default-x-rz");
    let events = v.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=app,reason=Recreating",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("cannot resize the pod in place; recreating it"),
        "{events}"
    );
    // Settled: a later in-place change (an image) reaches the new physical pod itself, which
    // the pass that patches it would have deleted had it still seen a resize to do.
    image_patched_in_place(&v, &physical, rz);
}

/// Sets the virtual pod `app`'s container `c` to `busybox:1.37` and waits for the physical
/// pod `ppod` to carry it as the same pod (patched in place, not recreated); its uid.
fn image_patched_in_place(v: &Server, physical: &Server, ppod: &str) -> String {
    let uid = physical_pod(physical, ppod, "{.metadata.uid}");
    assert!(!uid.is_empty(), "no physical pod {ppod}");
    v.kubectl_ok(&["set", "image", "pod/app", "c=busybox:1.37"]);
    wait_for(
        Duration::from_secs(30),
        "the physical image updated in place",
        || {
            let out = physical_pod(
                physical,
                ppod,
                "{.metadata.uid} {.spec.containers[0].image}",
            );
            (out == format!("{uid} busybox:1.37")).then_some(())
        },
    );
    uid
}

/// A port-forward through `server` to `pod`: sends a line on a forwarded connection and
/// returns what comes back (the simulated pod echoes on every port).
fn port_forward_echo(server: &Server, env: &[(&str, &str)], args: &[&str], line: &str) -> String {
    use std::io::{Read, Write};
    let mut full = vec!["port-forward"];
    full.extend_from_slice(args);
    // "Forwarding from 127.0.0.1:PORT -> 80"
    let forward = server.kubectl_serving(env, &full, "Forwarding from 127.0.0.1:");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", forward.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    conn.write_all(line.as_bytes()).expect("write");
    let mut got = vec![0u8; line.len()];
    conn.read_exact(&mut got)
        .expect("the echo through the forwarded port");
    String::from_utf8_lossy(&got).into_owned()
}

/// `kubectl exec`, `attach` and `port-forward` through the virtual cluster reach the pod in
/// the physical cluster, over WebSocket and over kubectl's SPDY fallback alike; the checks
/// before the relay answer with kube-apiserver's messages. The pod reaches the virtual API at
/// the advertised address and resolves names through the virtual cluster's DNS Service.
/// A `kubectl debug` container is added to the physical pod and attached to through vkube.
#[test]
fn exec_attach_and_port_forward_reach_the_physical_pod() {
    let physical = Server::start_sim(&["--name", "east", "--nodes", "1"]);
    let pkc = physical.kubeconfig().display().to_string();
    let v = Server::start_with(&[
        "--kubeconfig",
        &pkc,
        "--id",
        "vk1",
        "--advertise-address",
        "10.1.2.3:6443",
    ]);
    // A DNS Service in the virtual cluster: synced pods resolve through it. (A Service
    // already in the physical cluster makes the addresses there differ from the virtual ones.)
    physical.kubectl_ok(&["create", "service", "clusterip", "occupant", "--tcp=1:1"]);
    let first_ip = v.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "kube-dns",
        "-n",
        "kube-system",
        "--tcp=53:53",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let dns_field = |path: &str| {
        v.kubectl_ok(&[
            "get",
            "service",
            "-n",
            "kube-system",
            "kube-dns",
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    let dns_ip = wait_for(
        Duration::from_secs(20),
        "the physical ClusterIP of kube-dns",
        || {
            let ip = dns_field("{.metadata.annotations.vkube\\.io/physical-cluster-ip\\.physical}");
            (!ip.is_empty()).then_some(ip)
        },
    );
    // With one physical cluster the virtual Service takes the physical ClusterIP (what the
    // pods there can reach), recreated if need be.
    assert_ne!(first_ip, dns_ip, "the physical ClusterIP differs at first");
    wait_for(
        Duration::from_secs(20),
        "the virtual kube-dns at its physical ClusterIP",
        || (dns_field("{.spec.clusterIP}") == dns_ip).then_some(()),
    );
    v.kubectl_ok(&["run", "box", "--image=busybox"]);
    wait_for(Duration::from_secs(60), "the pod Running", || {
        let phase = v.kubectl_ok(&["get", "pod", "box", "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(())
    });
    // The physical pod reaches the virtual API at the advertised address (as does the
    // `kubernetes` Service), and resolves names with the virtual DNS.
    let env = physical.kubectl_ok(&[
        "get", "pod", "-n", "vkube", "box-x-default-x-vk1", "-o",
        "jsonpath={.spec.containers[0].env[?(@.name==\"KUBERNETES_SERVICE_HOST\")].value}:{.spec.containers[0].env[?(@.name==\"KUBERNETES_SERVICE_PORT\")].value} {.spec.dnsPolicy} {.spec.dnsConfig.nameservers} {.spec.dnsConfig.searches[0]}",
    ]);
    assert_eq!(
        env,
        format!("10.1.2.3:6443 None [\"{dns_ip}\"] default.svc.cluster.local")
    );
    let endpoints = v.kubectl_ok(&["get", "endpoints", "kubernetes", "--no-headers"]);
    assert!(endpoints.contains("10.1.2.3:6443"), "{endpoints}");
    let spdy = [
        ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"),
        ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false"),
    ];
    for env in [&[][..], &spdy[..]] {
        let out = v.kubectl_env(env, &["exec", "box", "--", "echo", "hello", "world"], None);
        assert!(out.status.success(), "{env:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello world\n",
            "{env:?}"
        );
        // stdin reaches the container, its output comes back.
        let out = v.kubectl_env(
            env,
            &["exec", "-i", "box", "--", "cat"],
            Some("line one\nline two\n"),
        );
        assert!(out.status.success(), "{env:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "line one\nline two\n",
            "{env:?}"
        );
        // The exit code of the command is kubectl's.
        let out = v.kubectl_env(env, &["exec", "box", "--", "sh", "-c", "exit 3"], None);
        assert_eq!(out.status.code(), Some(3), "{env:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("command terminated with exit code 3"),
            "{out:?}"
        );
        let out = v.kubectl_env(env, &["attach", "-i", "box"], Some("attached\n"));
        assert!(out.status.success(), "{env:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "attached\n",
            "{env:?}"
        );
        let echoed = port_forward_echo(&v, env, &["pod/box", ":80"], "through vkube\n");
        assert_eq!(echoed, "through vkube\n", "{env:?}");
    }
    // `kubectl debug`: the ephemeral container is added to the physical pod (translated like
    // the others), runs there, and is reported and reached through the virtual pod.
    v.kubectl_ok(&["debug", "box", "--image=busybox", "-c", "dbg"]);
    wait_for(
        Duration::from_secs(30),
        "the debug container running",
        || {
            let state = v.kubectl_ok(&[
            "get", "pod", "box", "-o",
            "jsonpath={.status.ephemeralContainerStatuses[?(@.name==\"dbg\")].state.running.startedAt}",
        ]);
            (!state.is_empty()).then_some(())
        },
    );
    assert_eq!(
        physical_pod(
            &physical,
            "box-x-default-x-vk1",
            "{.spec.ephemeralContainers[0].name} {.spec.ephemeralContainers[0].image} {.spec.ephemeralContainers[0].env[?(@.name==\"KUBERNETES_SERVICE_HOST\")].value}"
        ),
        "dbg busybox 10.1.2.3"
    );
    let out = v.kubectl_env(
        &[],
        &["attach", "-i", "box", "-c", "dbg"],
        Some("debugging\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "debugging\n");

    // The same pod straight in the physical cluster (the simulated kubelet itself).
    let ppod = "box-x-default-x-vk1";
    let out = physical.kubectl(&["exec", "-n", "vkube", ppod, "--", "echo", "direct"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "direct\n", "{out:?}");

    // Checks made before anything is relayed.
    let err = v.kubectl_err(&["exec", "box", "-c", "nope", "--", "true"]);
    assert!(
        err.contains("Error from server (BadRequest): container nope is not valid for pod box"),
        "{err}"
    );
    v.kubectl_ok(&[
        "run",
        "pending",
        "--image=busybox",
        "--overrides={\"spec\":{\"nodeSelector\":{\"no\":\"such-node\"}}}",
    ]);
    let err = v.kubectl_err(&["exec", "pending", "--", "true"]);
    assert!(
        err.contains("Error from server (BadRequest): pod pending does not have a host assigned"),
        "{err}"
    );
    let err = v.kubectl_err(&["exec", "ghost", "--", "true"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"ghost\" not found"),
        "{err}"
    );
}

/// vkube killed (SIGKILL) in the middle of syncing a scale-up and again in the middle of a
/// scale-down: after each restart the physical namespace holds exactly the virtual pods, no
/// duplicate and no orphan.
#[test]
fn the_physical_namespace_converges_after_vkube_restarts_mid_sync() {
    let physical = Server::start_sim(&["--name", "east", "--nodes", "2"]);
    let pkc = physical.kubeconfig().display().to_string();
    let mut v = Server::start_with(&["--kubeconfig", &pkc, "--id", "vk1"]);
    wait_for(Duration::from_secs(20), "the virtual node Ready", || {
        let out = v.kubectl_ok(&["get", "nodes", "--no-headers"]);
        out.contains(" Ready ").then_some(())
    });
    let physical_pods = || {
        let mut names = lines(&physical.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "vkube",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
        ]));
        names.sort();
        names
    };
    // Exactly one physical pod per live virtual pod, under its translated name.
    let converged = |v: &Server, want: usize| {
        wait_for(
            Duration::from_secs(60),
            "both sides to hold the same pods",
            || {
                let out = v.kubectl(&[
                    "get",
                    "pods",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}{end}",
                ]);
                let rows = lines(&String::from_utf8_lossy(&out.stdout));
                if rows.len() != want || !rows.iter().all(|r| r.ends_with(" Running")) {
                    return None;
                }
                let mut expected: Vec<String> = rows
                    .iter()
                    .map(|r| format!("{}-x-default-x-vk1", r.split(' ').next().unwrap_or("")))
                    .collect();
                expected.sort();
                (physical_pods() == expected && tokens_out_of_step(&physical, "vkube").is_none())
                    .then_some(())
            },
        );
    };

    v.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=30",
    ]);
    wait_for(Duration::from_secs(30), "the first physical pods", || {
        (!physical_pods().is_empty()).then_some(())
    });
    v.restart_after_kill9();
    converged(&v, 30);

    v.kubectl_ok(&["scale", "deployment", "web", "--replicas=4"]);
    wait_for(Duration::from_secs(30), "the scale-down under way", || {
        (physical_pods().len() < 30).then_some(())
    });
    v.restart_after_kill9();
    converged(&v, 4);

    // A pod deleted at once and created again under its name: the physical pod of the first
    // (now a stray) goes, and one for the second takes its name.
    v.kubectl_ok(&["run", "solo", "--image=busybox"]);
    converged(&v, 5);
    let uid = |v: &Server| v.kubectl_ok(&["get", "pod", "solo", "-o", "jsonpath={.metadata.uid}"]);
    let first = uid(&v);
    v.kubectl_ok(&["delete", "pod", "solo", "--force", "--grace-period=0"]);
    v.kubectl_ok(&["run", "solo", "--image=busybox"]);
    let second = uid(&v);
    assert_ne!(first, second);
    wait_for(
        Duration::from_secs(60),
        "the physical pod of the second solo",
        || {
            // Absent for a moment while the first one goes.
            let out = physical_pod(
                &physical,
                "solo-x-default-x-vk1",
                "{.metadata.annotations.vkube\\.io/uid}",
            );
            (out == second).then_some(())
        },
    );
    converged(&v, 5);
}

/// A claim a pod uses exists physically, shows the physical binding in the virtual cluster,
/// outlives the pod (its data must survive a replacement), and goes with its virtual claim.
#[test]
fn claims_are_synced_and_outlive_their_pods() {
    let physical = Server::start_sim(&["--name", "east", "--nodes", "1"]);
    let pkc = physical.kubeconfig().display().to_string();
    let v = Server::start_with(&["--kubeconfig", &pkc, "--id", "vk1"]);
    let manifest = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers: [{name: db, image: postgres, volumeMounts: [{name: d, mountPath: /data}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
"#;
    let out = v.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
    assert!(out.status.success(), "{out:?}");
    let pclaim = "data-x-default-x-vk1";
    let request = wait_for(Duration::from_secs(30), "the physical claim", || {
        let out = physical.kubectl(&[
            "get",
            "pvc",
            "-n",
            "vkube",
            pclaim,
            "-o",
            "jsonpath={.spec.resources.requests.storage}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(request, "1Gi");
    let volume = physical.kubectl_ok(&[
        "get",
        "pod",
        "-n",
        "vkube",
        "db-x-default-x-vk1",
        "-o",
        "jsonpath={.spec.volumes[0].persistentVolumeClaim.claimName}",
    ]);
    assert_eq!(volume, pclaim);

    // The physical cluster binds it (the test plays its volume controller): the virtual
    // claim shows that.
    physical.kubectl_ok(&[
        "patch",
        "pvc",
        "-n",
        "vkube",
        pclaim,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"}}}"#,
    ]);
    wait_for(Duration::from_secs(20), "the virtual claim Bound", || {
        let out = v.kubectl_ok(&[
            "get",
            "pvc",
            "data",
            "-o",
            "jsonpath={.status.phase} {.status.capacity.storage}",
        ]);
        (out == "Bound 1Gi").then_some(())
    });

    // The pod goes; the claim (and its data) stays.
    v.kubectl_ok(&["delete", "pod", "db", "--wait=true"]);
    wait_for(Duration::from_secs(30), "the physical pod gone", || {
        let out = physical.kubectl(&["get", "pod", "-n", "vkube", "db-x-default-x-vk1"]);
        (!out.status.success()).then_some(())
    });
    physical.kubectl_ok(&["get", "pvc", "-n", "vkube", pclaim]);

    // The virtual claim goes: so does the physical one.
    v.kubectl_ok(&["delete", "pvc", "data"]);
    wait_for(Duration::from_secs(30), "the physical claim gone", || {
        let out = physical.kubectl(&["get", "pvc", "-n", "vkube", pclaim]);
        (!out.status.success()).then_some(())
    });
}

/// While many pods start at once, each virtual pod's phase only moves forward: the status
/// copied up from a physical pod is never replaced by an older one (a pass that listed the
/// physical pods before the status lane copied a newer status up must not write the old one).
#[test]
fn pod_phases_only_move_forward_while_many_pods_start() {
    use std::collections::HashMap;
    use std::process::Stdio;
    let physical = Server::start_sim(&["--name", "east", "--nodes", "2", "--node-pods", "150"]);
    let pkc = physical.kubeconfig().display().to_string();
    let v = Server::start_with(&["--kubeconfig", &pkc, "--id", "vk1"]);
    wait_for(Duration::from_secs(20), "the virtual node Ready", || {
        let out = v.kubectl_ok(&["get", "nodes", "--no-headers"]);
        out.contains(" Ready ").then_some(())
    });
    let seen = v.data_dir().with_file_name("pod-events.txt");
    let mut watch = v
        .kubectl_command()
        .args([
            "get",
            "pods",
            "--watch",
            "--output-watch-events",
            "-o",
            "jsonpath={.type} {.object.metadata.name} {.object.status.phase}{\"\\n\"}",
        ])
        .stdout(std::fs::File::create(&seen).expect("watch output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get --watch");
    const PODS: usize = 200;
    v.kubectl_ok(&[
        "create",
        "deployment",
        "many",
        "--image=nginx",
        &format!("--replicas={PODS}"),
    ]);
    v.kubectl_ok(&["rollout", "status", "deploy/many", "--timeout=120s"]);
    // Every pod's phase as the watch saw it, in order, once it has seen all of them run.
    let phases = wait_for(
        Duration::from_secs(30),
        "the watch to see every pod run",
        || {
            let text = std::fs::read_to_string(&seen).ok()?;
            let mut phases: HashMap<String, Vec<String>> = HashMap::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if let [kind, name, phase] = f[..]
                    && kind != "DELETED"
                {
                    phases.entry(name.into()).or_default().push(phase.into());
                }
            }
            let running = phases.values().filter(|p| p.iter().any(|p| p == "Running"));
            (running.count() == PODS).then_some(phases)
        },
    );
    let _ = watch.kill();
    let _ = watch.wait();
    for (pod, seen) in &phases {
        let first_run = seen.iter().position(|p| p == "Running").expect("ran");
        assert!(
            seen[first_run..].iter().all(|p| p == "Running"),
            "{pod} went back from Running: {seen:?}"
        );
    }
    // The pods created together share token Secrets: each pod's token is where it mounts it
    // from, and no Secret is left without a live pod's token.
    wait_for(Duration::from_secs(30), "the token Secrets in step", || {
        tokens_out_of_step(&physical, "vkube")
            .is_none()
            .then_some(())
    });
    let token_secrets = physical
        .kubectl_ok(&[
            "get",
            "secrets",
            "-n",
            "vkube",
            "-l",
            "vkube.io/kind=service-account-token",
            "--no-headers",
        ])
        .lines()
        .count();
    assert!(
        (1..PODS).contains(&token_secrets),
        "{PODS} pods created together hold their tokens in {token_secrets} Secrets"
    );
    // However many pods started at once, vkube reached the physical API server over one
    // connection (HTTP/2: every request and watch on it), not one per request in flight.
    let connections = established_to(physical.port);
    assert!(
        (1..=2).contains(&connections),
        "vkube holds {connections} connections to the physical API server"
    );
}

/// Established TCP connections whose local port is `port` (the server's side of each
/// connection to a server listening there), from the kernel's socket tables.
fn established_to(port: u16) -> usize {
    let local = format!(":{port:04X}");
    // Columns: sl, local address, remote address, state (01 = ESTABLISHED), …
    let established = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&local) && f[3] == "01"
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .map(|table| table.lines().skip(1).filter(|l| established(l)).count())
        .sum()
}
