//! CustomResourceDefinitions with real kubectl and a kube-rs operator-style client.

mod common;

use std::time::Duration;

use common::{Server, wait_for};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec: {type: string, pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'}
              image: {type: string}
              size: {type: string, enum: [small, large], default: small}
              replicas: {type: integer, minimum: 0}
          status:
            type: object
            properties:
              replicas: {type: integer}
              phase: {type: string}
"#;

const TAB: &str = r#"
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
spec:
  cronSpec: "0 3 * * *"
  image: backup:1
  replicas: 1
"#;

#[test]
fn crds_serve_validate_prune_scale_and_go_away() {
    let s = Server::start();
    s.kubectl_stdin_ok(&["apply", "-f", "-"], CRD);
    wait_for(Duration::from_secs(5), "the CRD to be Established", || {
        let st = s.kubectl(&[
            "get",
            "crd",
            "crontabs.stable.example.com",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ]);
        (String::from_utf8_lossy(&st.stdout) == "True").then_some(())
    });
    s.kubectl_stdin_ok(&["apply", "-f", "-"], TAB);
    // Printer columns and the short name.
    let table = s.kubectl_ok(&["get", "ct"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SPEC", "REPLICAS", "AGE"]);
    assert!(
        table.contains("nightly") && table.contains("0 3 * * *"),
        "{table}"
    );
    // Schema defaulting.
    assert_eq!(
        s.kubectl_ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.size}"]),
        "small"
    );
    // Schema validation: enum, pattern, required.
    let bad = TAB.replace("image: backup:1", "image: backup:1\n  size: huge");
    let err = String::from_utf8_lossy(&s.kubectl_stdin(&["apply", "-f", "-"], Some(&bad)).stderr)
        .into_owned();
    assert!(
        err.contains(
            "spec.size: Unsupported value: \"huge\": supported values: \"small\", \"large\""
        ),
        "{err}"
    );
    let bad = TAB.replace("0 3 * * *", "every night");
    let err = String::from_utf8_lossy(&s.kubectl_stdin(&["apply", "-f", "-"], Some(&bad)).stderr)
        .into_owned();
    assert!(
        err.contains("spec.cronSpec: Invalid value: \"every night\""),
        "{err}"
    );
    // Unknown fields: rejected under kubectl's strict validation, pruned without it.
    let extra = TAB.replace("image: backup:1", "image: backup:1\n  bogus: 1");
    let err = String::from_utf8_lossy(&s.kubectl_stdin(&["apply", "-f", "-"], Some(&extra)).stderr)
        .into_owned();
    assert!(err.contains("unknown field \"spec.bogus\""), "{err}");
    assert!(
        s.kubectl_stdin(&["apply", "--validate=false", "-f", "-"], Some(&extra))
            .status
            .success()
    );
    assert_eq!(
        s.kubectl_ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.bogus}"]),
        ""
    );
    // Scale and status subresources.
    assert_eq!(
        s.kubectl_ok(&["scale", "ct", "nightly", "--replicas=3"])
            .trim(),
        "crontab.stable.example.com/nightly scaled"
    );
    assert_eq!(
        s.kubectl_ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    s.kubectl_ok(&[
        "patch",
        "ct",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready","replicas":3}}"#,
    ]);
    s.kubectl_ok(&[
        "patch",
        "ct",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ignored"}}"#,
    ]);
    assert_eq!(
        s.kubectl_ok(&["get", "ct", "nightly", "-o", "jsonpath={.status.phase}"]),
        "Ready"
    );
    // `kubectl get all` includes the category.
    assert!(
        s.kubectl_ok(&["get", "all"])
            .contains("crontab.stable.example.com/nightly")
    );
    // kubectl explain reads the CRD's schema.
    let explain = s.kubectl_ok(&["explain", "crontabs.spec"]);
    assert!(
        explain.contains("cronSpec") && explain.contains("-required-"),
        "{explain}"
    );
    let explain = s.kubectl_ok(&["explain", "--output=plaintext-openapiv2", "crontabs.spec"]);
    assert!(
        explain.contains("cronSpec") && explain.contains("-required-"),
        "OpenAPI v2 has the CRD too: {explain}"
    );
    // Deleting the CRD deletes its objects and stops serving it.
    s.kubectl_ok(&["delete", "crd", "crontabs.stable.example.com"]);
    let (code, _) = s.raw(
        "GET",
        "/apis/stable.example.com/v1/namespaces/default/crontabs",
        None,
        b"",
    );
    assert_eq!(code, 404, "the resource is no longer served");
    assert!(
        !s.kubectl_ok(&["api-versions"])
            .contains("stable.example.com")
    );
    let err = s.kubectl_err(&["get", "crd", "crontabs.stable.example.com"]);
    assert!(err.contains("NotFound"), "{err}");
    assert!(s.log().lines().all(|l| !l.contains("panicked")));
}

#[tokio::test]
async fn an_operator_applies_status_through_the_status_subresource() {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    let s = Server::start();
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(CRD));
    assert!(out.status.success());
    wait_for(Duration::from_secs(5), "the CRD to be served", || {
        s.kubectl(&["get", "crontabs"])
            .status
            .success()
            .then_some(())
    });
    assert!(
        s.kubectl_stdin(&["apply", "-f", "-"], Some(TAB))
            .status
            .success()
    );
    let gvk = GroupVersionKind::gvk("stable.example.com", "v1", "CronTab");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "crontabs");
    let api: Api<DynamicObject> = Api::namespaced_with(s.client().await, "default", &ar);
    let status = serde_json::json!({
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "status": {"phase": "Scheduled", "replicas": 1},
    });
    let pp = PatchParams::apply("crontab-operator").force();
    let patched = api
        .patch_status("nightly", &pp, &Patch::Apply(&status))
        .await
        .expect("apply status");
    assert_eq!(patched.data["status"]["phase"], "Scheduled");
    assert_eq!(
        patched.data["spec"]["cronSpec"], "0 3 * * *",
        "spec untouched by a status apply"
    );
    let managers: Vec<(String, String)> = patched
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.subresource.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("crontab-operator".into(), "status".into())),
        "{managers:?}"
    );
    // The operator reads it back as any client would.
    let got = api.get("nightly").await.expect("get");
    assert_eq!(got.data["status"]["replicas"], 1);
}

const MULTI_VERSION_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.shop.example.com
spec:
  group: shop.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {color: {type: string}}}
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {color: {type: string}}}
"#;

/// One storage, several served versions (conversion `None`): an object reads back with the
/// apiVersion of the version it is read through, and a deprecated version warns.
#[test]
fn every_served_version_reads_the_same_objects_with_its_own_api_version() {
    let s = Server::start();
    s.kubectl_stdin(&["apply", "-f", "-"], Some(MULTI_VERSION_CRD));
    wait_for(Duration::from_secs(5), "both versions served", || {
        let a = s.kubectl(&["get", "--raw", "/apis/shop.example.com/v1beta1"]);
        let b = s.kubectl(&["get", "--raw", "/apis/shop.example.com/v1"]);
        (a.status.success() && b.status.success()).then_some(())
    });
    let out = s.kubectl_stdin(
        &["create", "-f", "-"],
        Some(
            "apiVersion: shop.example.com/v1beta1\nkind: Widget\nmetadata: {name: w1}\nspec: {color: red}\n",
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: shop.example.com/v1beta1 Widget is deprecated"),
        "kubectl prints the deprecation warning: {stderr}"
    );
    // Through the storage version.
    let (code, v1) = s.raw(
        "GET",
        "/apis/shop.example.com/v1/namespaces/default/widgets/w1",
        None,
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(v1["apiVersion"], "shop.example.com/v1");
    assert_eq!(v1["spec"]["color"], "red");
    // Through the deprecated one: get, list and watch.
    let beta = s.kubectl_ok(&[
        "get",
        "widgets.v1beta1.shop.example.com",
        "w1",
        "-o",
        "jsonpath={.apiVersion}",
    ]);
    assert_eq!(beta, "shop.example.com/v1beta1");
    let (code, list) = s.raw("GET", "/apis/shop.example.com/v1/widgets", None, b"");
    assert_eq!(code, 200);
    assert_eq!(list["items"][0]["apiVersion"], "shop.example.com/v1");
    let (code, watch) = s.raw(
        "GET",
        "/apis/shop.example.com/v1/namespaces/default/widgets?watch=1&timeoutSeconds=1",
        None,
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(
        watch["object"]["apiVersion"], "shop.example.com/v1",
        "{watch}"
    );
}
