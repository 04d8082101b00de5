//! Server-side apply with real kubectl: ownership, conflicts with the upstream message, force,
//! removal of fields a manager stops applying, managedFields on every write; and
//! `kubectl explain` from the served OpenAPI documents.

mod common;

use common::Server;

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"#;

#[test]
fn server_side_apply_conflicts_force_and_ownership() {
    let s = Server::start();
    let apply = |manifest: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        s.kubectl_stdin(&args, Some(manifest))
    };
    let out = apply(DEPLOY, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deployment.apps/web serverside-applied"
    );
    let managers = s.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "--show-managed-fields",
        "-o",
        "jsonpath={range .metadata.managedFields[*]}{.manager}/{.operation}/{.subresource};{end}",
    ]);
    assert!(managers.starts_with("kubectl/Apply/;"), "{managers}");
    // Another manager changes replicas through an Update: it now owns the field.
    s.kubectl_ok(&["scale", "deploy", "web", "--replicas=4"]);
    // Applying a different value for a field someone else owns is a conflict.
    let changed = DEPLOY.replace("replicas: 2", "replicas: 3");
    let out = apply(&changed, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"), "{err}");
    assert!(
        err.contains("--force-conflicts"),
        "kubectl explains how to force: {err}"
    );
    assert_eq!(
        s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    // --force-conflicts takes ownership.
    let out = apply(&changed, &["--force-conflicts"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // A label the manager no longer applies is removed.
    let fewer = changed.replace("  labels: {app: web}\nspec:", "spec:");
    assert!(apply(&fewer, &[]).status.success());
    assert_eq!(
        s.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]),
        ""
    );
    // Without a field manager the server refuses an apply patch.
    let (code, body) = s.raw(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        Some("application/apply-patch+yaml"),
        b"{}",
    );
    assert_eq!(code, 422, "{body}");
    // Client-side writes record an Update manager too.
    s.kubectl_ok(&["create", "configmap", "c", "--from-literal=a=b"]);
    let m = s.kubectl_ok(&["get", "cm", "c", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation} {.metadata.managedFields[0].fieldsType}"]);
    assert_eq!(m, "kubectl-create Update FieldsV1");
}

#[test]
fn explain_reads_the_openapi_documents() {
    let s = Server::start();
    let out = s.kubectl_ok(&["explain", "pods.spec.containers"]);
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("image") && l.contains("<string>")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("name") && l.contains("-required-")),
        "{out}"
    );
    let out = s.kubectl_ok(&["explain", "deployment.spec.strategy.rollingUpdate.maxSurge"]);
    assert!(out.contains("<IntOrString>"), "{out}");
    // The OpenAPI v2 path older clients take: kubectl fetches /openapi/v2 as protobuf.
    let out = s.kubectl_ok(&[
        "explain",
        "--output=plaintext-openapiv2",
        "pods.spec.containers",
    ]);
    assert!(out.contains("RESOURCE: containers <[]Object>"), "{out}");
    assert!(out.contains("image\t<string>"), "{out}");
    let (code, v2) = s.raw("GET", "/openapi/v2", None, b"");
    assert_eq!(code, 200);
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["selector"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
    );
}
