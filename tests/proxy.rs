//! `pods/proxy` and `services/proxy`, driven with real kubectl (`get --raw`, `create --raw`,
//! `kubectl proxy`): answered by `vkube sim` itself, and relayed by a virtual cluster to the
//! physical pod in a `vkube sim` physical cluster.

mod common;

use std::time::Duration;

use common::{Server, wait_for};

const WAIT: Duration = Duration::from_secs(60);

fn wait_running(server: &Server, pod: &str) {
    wait_for(WAIT, &format!("pod {pod} Running"), || {
        let phase = server.kubectl_ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(())
    });
}

fn wait_endpoint(server: &Server, service: &str) {
    wait_for(WAIT, &format!("a ready endpoint of {service}"), || {
        let ip = server.kubectl_ok(&[
            "get",
            "endpoints",
            service,
            "--ignore-not-found",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}",
        ]);
        (!ip.is_empty()).then_some(())
    });
}

/// `kubectl get --raw PATH`, asserting success.
fn raw_get(server: &Server, path: &str) -> String {
    server.kubectl_ok(&["get", "--raw", path])
}

/// `kubectl create --raw PATH -f FILE` with `body`: the response.
fn raw_post(server: &Server, path: &str, body: &str) -> String {
    let file = server.dir.path().join("proxy-body.txt");
    std::fs::write(&file, body).expect("write the body file");
    let file = file.display().to_string();
    server.kubectl_ok(&["create", "--raw", path, "-f", &file])
}

/// A plain HTTP/1.1 GET through `kubectl proxy`, as a browser would send it (`Accept:
/// text/html`): the whole response (head and body).
fn through_kubectl_proxy(server: &Server, path: &str) -> String {
    use std::io::{Read, Write};
    let proxy = server.kubectl_serving(
        &[],
        &["proxy", "--port=0"],
        "Starting to serve on 127.0.0.1:",
    );
    let port = proxy.port;
    let answer = (|| -> std::io::Result<String> {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        conn.set_write_timeout(Some(Duration::from_secs(30)))?;
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = Vec::new();
        conn.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    })();
    drop(proxy);
    answer.expect("a response through kubectl proxy")
}

/// Through a virtual cluster, the proxy subresources reach the physical pod (the simulated
/// one answers with what arrived, naming itself by its physical name); kube-apiserver's
/// checks come first, with its messages.
#[test]
fn proxy_requests_reach_the_physical_pod() {
    let physical = Server::start_sim(&["--name", "east", "--nodes", "1"]);
    let pkc = physical.kubeconfig().display().to_string();
    let v = Server::start_with(&["--kubeconfig", &pkc, "--id", "vk1"]);
    v.kubectl_ok(&["run", "box", "--image=busybox"]);
    wait_running(&v, "box");
    let base = "/api/v1/namespaces/default/pods";
    let me = "vkube-sim: vkube/box-x-default-x-vk1";

    // Path, query and trailing slash arrive as sent; the port and scheme are kept.
    assert_eq!(
        raw_get(&v, &format!("{base}/box:80/proxy/some/path?x=1")),
        format!("{me} port 80 GET /some/path?x=1\n")
    );
    assert_eq!(
        raw_get(&v, &format!("{base}/box:8080/proxy/dir/")),
        format!("{me} port 8080 GET /dir/\n")
    );
    assert_eq!(
        raw_get(&v, &format!("{base}/https:box:8443/proxy/")),
        format!("{me} port 8443 (https) GET /\n")
    );
    // `…/proxy` without a slash is redirected to `…/proxy/` (client-go follows).
    assert_eq!(
        raw_get(&v, &format!("{base}/box:80/proxy")),
        format!("{me} port 80 GET /\n")
    );
    // A body goes through and comes back.
    assert_eq!(
        raw_post(&v, &format!("{base}/box:80/proxy/echo"), "hello proxy\n"),
        format!("{me} port 80 POST /echo\nhello proxy\n")
    );

    // services/proxy: the service port resolves to a ready pod and its target port.
    v.kubectl_ok(&[
        "expose",
        "pod",
        "box",
        "--name=web",
        "--port=80",
        "--target-port=8080",
    ]);
    wait_endpoint(&v, "web");
    let svc = "/api/v1/namespaces/default/services";
    for (id, scheme) in [("web", ""), ("web:80", ""), ("http:web:80", " (http)")] {
        assert_eq!(
            raw_get(&v, &format!("{svc}/{id}/proxy/hi?y=2")),
            format!("{me} port 8080{scheme} GET /hi?y=2\n"),
            "{id}"
        );
    }
    assert_eq!(
        raw_post(&v, &format!("{svc}/web:80/proxy/post"), "via the service"),
        format!("{me} port 8080 POST /post\nvia the service")
    );

    // Through `kubectl proxy`.
    let answer = through_kubectl_proxy(
        &v,
        "/api/v1/namespaces/default/services/web:80/proxy/via/kubectl-proxy",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("{me} port 8080 GET /via/kubectl-proxy\n")),
        "{answer}"
    );

    // Errors, with kube-apiserver's messages.
    let err = v.kubectl_err(&["get", "--raw", &format!("{base}/ghost:80/proxy/")]);
    assert!(
        err.contains("Error from server (NotFound): pods \"ghost\" not found"),
        "{err}"
    );
    let err = v.kubectl_err(&["get", "--raw", &format!("{base}/ftp:box:80/proxy/")]);
    assert!(
        err.contains("Error from server (BadRequest): invalid pod request \"ftp:box:80\""),
        "{err}"
    );
    v.kubectl_ok(&[
        "run",
        "pending",
        "--image=busybox",
        "--overrides={\"spec\":{\"nodeSelector\":{\"no\":\"such-node\"}}}",
    ]);
    let err = v.kubectl_err(&["get", "--raw", &format!("{base}/pending:80/proxy/")]);
    assert!(
        err.contains("Error from server (BadRequest): address not allowed"),
        "{err}"
    );
    let err = v.kubectl_err(&["get", "--raw", &format!("{svc}/web:81/proxy/")]);
    assert!(
        err.contains(
            "Error from server (ServiceUnavailable): no service port 81 found for service \"web\""
        ),
        "{err}"
    );
    let err = v.kubectl_err(&["get", "--raw", &format!("{svc}/nosuch:80/proxy/")]);
    assert!(
        err.contains("Error from server (NotFound): services \"nosuch\" not found"),
        "{err}"
    );
    // A service whose selector matches no ready pod.
    v.kubectl_ok(&["create", "service", "clusterip", "empty", "--tcp=80:80"]);
    let err = wait_for(WAIT, "the Endpoints of empty", || {
        let out = v.kubectl(&["get", "--raw", &format!("{svc}/empty:80/proxy/")]);
        assert!(!out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!err.contains("NotFound")).then_some(err)
    });
    assert!(
        err.contains(
            "Error from server (ServiceUnavailable): no endpoints available for service \"empty\""
        ),
        "{err}"
    );

    // RBAC sees the `proxy` subresource whatever path follows it.
    let carol = v.dir.path().join("carol.kubeconfig");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vkube"))
        .args(["kubeconfig", "--user", "carol"])
        .arg("--data-dir")
        .arg(v.data_dir())
        .args(["--server", &format!("https://127.0.0.1:{}", v.port)])
        .arg("--out")
        .arg(&carol)
        .output()
        .expect("vkube kubeconfig");
    assert!(out.status.success(), "{out:?}");
    let as_carol = |path: &str| {
        std::process::Command::new("kubectl")
            .env("KUBECONFIG", &carol)
            .arg("--cache-dir")
            .arg(v.dir.path().join("carol-cache"))
            .args(["get", "--raw", path])
            .output()
            .expect("kubectl")
    };
    let path = format!("{base}/box:80/proxy/deep/path");
    let denied = as_carol(&path);
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains(
            "Error from server (Forbidden): pods \"box:80\" is forbidden: User \"carol\" cannot get resource \"pods/proxy\" in API group \"\" in the namespace \"default\""
        ),
        "{denied:?}"
    );
    v.kubectl_ok(&[
        "create",
        "role",
        "proxier",
        "--verb=get",
        "--resource=pods/proxy",
    ]);
    v.kubectl_ok(&[
        "create",
        "rolebinding",
        "proxier",
        "--role=proxier",
        "--user=carol",
    ]);
    let allowed = wait_for(WAIT, "carol's role to apply", || {
        let out = as_carol(&path);
        out.status.success().then_some(out)
    });
    assert_eq!(
        String::from_utf8_lossy(&allowed.stdout),
        format!("{me} port 80 GET /deep/path\n")
    );
}

/// `vkube sim` answers the proxy subresources itself: a Running pod echoes what arrived, a
/// finished one refuses the connection.
#[test]
fn the_simulated_cluster_answers_proxy_requests() {
    let sim = Server::start_sim(&["--name", "east", "--nodes", "1"]);
    sim.kubectl_ok(&["run", "box", "--image=busybox", "--port=8080"]);
    wait_running(&sim, "box");
    let base = "/api/v1/namespaces/default/pods";
    // Without a port, the first declared container port.
    assert_eq!(
        raw_get(&sim, &format!("{base}/box/proxy/a%20b/?q=1&r=2")),
        "vkube-sim: default/box port 8080 GET /a%20b/?q=1&r=2\n"
    );
    assert_eq!(
        raw_post(&sim, &format!("{base}/box:9000/proxy/x"), "{\"k\": 1}"),
        "vkube-sim: default/box port 9000 POST /x\n{\"k\": 1}"
    );
    sim.kubectl_ok(&[
        "expose",
        "pod",
        "box",
        "--name=web",
        "--port=80",
        "--target-port=8080",
    ]);
    wait_endpoint(&sim, "web");
    assert_eq!(
        raw_get(&sim, "/api/v1/namespaces/default/services/web:80/proxy/s"),
        "vkube-sim: default/box port 8080 GET /s\n"
    );

    // A pod that has finished listens on nothing.
    sim.kubectl_ok(&["create", "job", "done", "--image=busybox"]);
    let pod = wait_for(WAIT, "the job's pod Succeeded", || {
        let out = sim.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "job-name=done",
            "-o",
            "jsonpath={.items[0].metadata.name} {.items[0].status.phase}",
        ]);
        let (name, phase) = out.split_once(' ')?;
        (phase == "Succeeded").then(|| name.to_string())
    });
    let err = sim.kubectl_err(&["get", "--raw", &format!("{base}/{pod}:80/proxy/")]);
    assert!(
        err.contains(
            "Error from server (ServiceUnavailable): error trying to reach service: dial tcp"
        ),
        "{err}"
    );
    assert!(err.contains(":80: connect: connection refused"), "{err}");
}
