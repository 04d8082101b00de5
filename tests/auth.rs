//! Authentication identities as kubectl sees them: a tenant kubeconfig issued by
//! `vkube kubeconfig`, and static bearer tokens from the config.

mod common;

use std::process::Command;

use common::Server;

#[test]
fn issued_kubeconfigs_and_tokens_authenticate_their_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vkube.yaml");
    std::fs::write(
        &config,
        "authentication:\n  tokens:\n  - {token: 0123456789abcdef0123, user: ci-bot, groups: [robots]}\n",
    )
    .expect("config");
    let s = Server::start_with(&["--config", config.to_str().expect("utf8")]);
    let alice = dir.path().join("alice.kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_vkube"))
        .args([
            "kubeconfig",
            "--user",
            "alice",
            "--group",
            "dev",
            "--group",
            "ops",
        ])
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["--server", &format!("https://127.0.0.1:{}", s.port)])
        .arg("--out")
        .arg(&alice)
        .output()
        .expect("vkube kubeconfig");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whoami = |kubeconfig: &std::path::Path, extra: &[&str]| -> String {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", kubeconfig)
            .args([
                "--cache-dir",
                &dir.path().join("cache").display().to_string(),
            ])
            .args(extra)
            .args([
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
            ])
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        whoami(&alice, &[]),
        r#"alice ["dev","ops","system:authenticated"]"#
    );
    assert_eq!(
        whoami(&s.kubeconfig(), &[]),
        r#"vkube-admin ["system:masters","system:authenticated"]"#
    );
    // A bearer token from the config, and a wrong one.
    let token_kc = dir.path().join("token.kubeconfig");
    std::fs::write(
        &token_kc,
        std::fs::read_to_string(&alice)
            .expect("read")
            .lines()
            .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
            .map(|l| {
                if l.trim() == "user:" && l.starts_with("  ") {
                    "  user:\n    token: 0123456789abcdef0123".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .expect("token kubeconfig");
    assert_eq!(
        whoami(&token_kc, &[]),
        r#"ci-bot ["robots","system:authenticated"]"#
    );
    let bad = Command::new("kubectl")
        .env("KUBECONFIG", &token_kc)
        .args(["--token", "wrong-token-wrong-token", "get", "pods"])
        .output()
        .expect("kubectl");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("You must be logged in to the server"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn rbac_view_user_reads_but_does_not_write() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let bob = dir.path().join("bob.kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_vkube"))
        .args(["kubeconfig", "--user", "bob", "--group", "qa"])
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["--server", &format!("https://127.0.0.1:{}", s.port)])
        .arg("--out")
        .arg(&bob)
        .output()
        .expect("vkube kubeconfig");
    assert!(out.status.success());
    let as_bob = |args: &[&str]| {
        Command::new("kubectl")
            .env("KUBECONFIG", &bob)
            .args([
                "--cache-dir",
                &dir.path().join("cache").display().to_string(),
            ])
            .args(args)
            .output()
            .expect("kubectl")
    };
    s.kubectl_ok(&["create", "namespace", "shop"]);
    s.kubectl_ok(&[
        "-n",
        "shop",
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
    ]);
    s.kubectl_ok(&[
        "-n",
        "shop",
        "create",
        "secret",
        "generic",
        "pw",
        "--from-literal=p=x",
    ]);
    // Before any binding: forbidden, with kube-apiserver's message.
    let out = as_bob(&["-n", "shop", "get", "configmaps"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (Forbidden): configmaps is forbidden: User \"bob\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"shop\""
    );
    // The default roles exist and aggregate.
    let view_rules = s.kubectl_ok(&[
        "get",
        "clusterrole",
        "view",
        "-o",
        "jsonpath={.rules[*].resources}",
    ]);
    assert!(
        view_rules.contains("configmaps") && view_rules.contains("deployments"),
        "{view_rules}"
    );
    s.kubectl_ok(&[
        "-n",
        "shop",
        "create",
        "rolebinding",
        "bob-view",
        "--clusterrole=view",
        "--user=bob",
    ]);
    let out = as_bob(&["-n", "shop", "get", "configmaps", "-o", "name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every namespace also has the cluster CA bundle, as with kube-controller-manager.
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l != "configmap/kube-root-ca.crt")
        .map(str::to_string)
        .collect();
    assert_eq!(listed, ["configmap/cfg"]);
    // view does not read secrets, and does not write.
    let out = as_bob(&["-n", "shop", "get", "secret", "pw"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "secrets \"pw\" is forbidden: User \"bob\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""
    ), "{}", String::from_utf8_lossy(&out.stderr));
    let out = as_bob(&["-n", "shop", "delete", "configmap", "cfg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot delete resource \"configmaps\""));
    let out = as_bob(&["-n", "default", "get", "configmaps"]);
    assert!(!out.status.success(), "the binding is namespaced");
    // can-i answers from the same evaluator.
    assert_eq!(
        String::from_utf8_lossy(&as_bob(&["-n", "shop", "auth", "can-i", "list", "pods"]).stdout)
            .trim(),
        "yes"
    );
    let no = as_bob(&["-n", "shop", "auth", "can-i", "create", "pods"]);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
    assert_eq!(no.status.code(), Some(1));
    // Allowed to create role bindings, bob still cannot grant what he does not hold.
    s.kubectl_ok(&[
        "-n",
        "shop",
        "create",
        "role",
        "binder",
        "--verb=create",
        "--resource=rolebindings.rbac.authorization.k8s.io",
    ]);
    s.kubectl_ok(&[
        "-n",
        "shop",
        "create",
        "rolebinding",
        "bob-binder",
        "--role=binder",
        "--user=bob",
    ]);
    let out = as_bob(&[
        "-n",
        "shop",
        "create",
        "rolebinding",
        "sneaky",
        "--clusterrole=admin",
        "--user=bob",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "rolebindings.rbac.authorization.k8s.io \"sneaky\" is forbidden: user \"bob\""
        ) && err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    // Granting only what he holds (view) is fine.
    let out = as_bob(&[
        "-n",
        "shop",
        "create",
        "rolebinding",
        "fair",
        "--clusterrole=view",
        "--user=bob",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A token from the TokenRequest API authenticates a kube-rs client as its ServiceAccount,
/// with the rights RBAC gives that account, until the account is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn service_account_tokens_authenticate_with_their_rbac_rights() {
    use k8s_openapi::api::core::v1::{Pod, Secret};
    use kube::api::{Api, ListParams};

    let s = Server::start();
    s.kubectl_ok(&["create", "serviceaccount", "robot"]);
    s.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    s.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-reads-pods",
        "--role=pod-reader",
        "--serviceaccount=default:robot",
    ]);
    let token = s
        .kubectl_ok(&["create", "token", "robot", "--duration=20m"])
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    // Bad durations get upstream's validation message.
    let err = s.kubectl_err(&["create", "token", "robot", "--duration=1m"]);
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    // TokenReview says who it is.
    let out = s.token_review(&token);
    assert_eq!(out["status"]["authenticated"], true, "{out}");
    assert_eq!(
        out["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );

    // A kube-rs client with only the token.
    let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    cfg.auth_info = kube::config::AuthInfo {
        token: Some(token.clone().into()),
        ..Default::default()
    };
    let client = kube::Client::try_from(cfg.clone()).expect("client");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default())
        .await
        .expect("the role lets it list pods");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 403);
            assert_eq!(
                e.message,
                "secrets is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
            );
        }
        other => panic!("secrets must be forbidden: {other:?}"),
    }

    // A tampered token is rejected.
    let mut bad = cfg.clone();
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    bad.auth_info.token = Some(forged.into());
    let forged_pods: Api<Pod> =
        Api::namespaced(kube::Client::try_from(bad).expect("client"), "default");
    match forged_pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 401),
        other => panic!("a forged token must be rejected: {other:?}"),
    }

    // Deleting the ServiceAccount invalidates its tokens.
    s.kubectl_ok(&["delete", "serviceaccount", "robot"]);
    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 401),
        other => panic!("the token of a deleted account must be rejected: {other:?}"),
    }
}
