//! Bad input of every kind gets kube-apiserver's Status (reason, code, message) and stores
//! nothing.

mod common;

use common::Server;
use serde_json::Value;

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn assert_status(resp: &(u16, Value), code: u16, reason: &str) {
    assert_eq!(resp.0, code, "{}", resp.1);
    assert_eq!(resp.1["kind"], "Status", "{}", resp.1);
    assert_eq!(resp.1["code"], code, "{}", resp.1);
    assert_eq!(resp.1["reason"], reason, "{}", resp.1);
}

fn configmap_names(s: &Server) -> Vec<String> {
    let (code, list) = s.raw("GET", CM_PATH, None, b"");
    assert_eq!(code, 200);
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().expect("name").to_string())
        // The cluster CA bundle every namespace gets is not the test's.
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

#[test]
fn malformed_and_unsupported_bodies_are_rejected_and_nothing_is_stored() {
    let s = Server::start();
    let json = Some("application/json");
    assert_status(
        &s.raw("POST", CM_PATH, json, b"{\"apiVersion\": \"v1\", "),
        400,
        "BadRequest",
    );
    assert_status(
        &s.raw("POST", CM_PATH, Some("application/yaml"), b"a: [unclosed"),
        400,
        "BadRequest",
    );
    assert_status(
        &s.raw("POST", CM_PATH, Some("text/plain"), b"hello"),
        415,
        "UnsupportedMediaType",
    );
    assert_status(
        &s.raw(
            "POST",
            CM_PATH,
            Some("application/vnd.kubernetes.protobuf"),
            b"k8s\0garbage",
        ),
        400,
        "BadRequest",
    );
    assert_status(&s.raw("POST", CM_PATH, json, b"[1,2]"), 400, "BadRequest");
    let wrong_kind = br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#;
    assert_status(&s.raw("POST", CM_PATH, json, wrong_kind), 400, "BadRequest");
    let other_ns = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"kube-system"}}"#;
    let r = s.raw("POST", CM_PATH, json, other_ns);
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.1["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    // Over 3 MiB.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    assert_status(
        &s.raw("POST", CM_PATH, json, big.as_bytes()),
        413,
        "RequestEntityTooLarge",
    );
    assert!(
        configmap_names(&s).is_empty(),
        "nothing may be stored: {:?}",
        configmap_names(&s)
    );
}

#[test]
fn invalid_names_and_missing_namespaces() {
    let s = Server::start();
    let json = Some("application/json");
    let r = s.raw(
        "POST",
        CM_PATH,
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#,
    );
    assert_status(&r, 422, "Invalid");
    let msg = r.1["message"].as_str().expect("message");
    assert!(
        msg.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{msg}"
    );
    assert_eq!(r.1["details"]["causes"][0]["field"], "metadata.name");
    let r = s.raw(
        "POST",
        CM_PATH,
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
    );
    assert_status(&r, 422, "Invalid");
    assert!(
        r.1["message"]
            .as_str()
            .expect("msg")
            .contains("name or generateName is required"),
        "{}",
        r.1
    );
    let r = s.raw(
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
    );
    assert_status(&r, 404, "NotFound");
    assert_eq!(r.1["message"], "namespaces \"nowhere\" not found");
    assert!(configmap_names(&s).is_empty());
    // kubectl prints the Status message.
    let err = s.kubectl_err(&["create", "configmap", "UPPER"]);
    assert!(
        err.starts_with("error: failed to create configmap: ConfigMap \"UPPER\" is invalid: metadata.name: Invalid value: \"UPPER\": a lowercase RFC 1123 subdomain must consist of"),
        "{err}"
    );
    let err = s.kubectl_err(&["get", "configmap", "missing"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): configmaps \"missing\" not found"
    );
    let err = s.kubectl_err(&["get", "frobnicators"]);
    assert!(
        err.contains("the server doesn't have a resource type \"frobnicators\""),
        "{err}"
    );
}

#[test]
fn stale_resource_versions_conflict() {
    let s = Server::start();
    let json = Some("application/json");
    let (code, created) = s.raw(
        "POST",
        CM_PATH,
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"v":"1"}}"#,
    );
    assert_eq!(code, 201, "{created}");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut next = created.clone();
    next["data"]["v"] = "2".into();
    let (code, updated) = s.raw(
        "PUT",
        &format!("{CM_PATH}/c"),
        json,
        next.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{updated}");
    assert_ne!(updated["metadata"]["resourceVersion"], rv.as_str());
    // The same stale body again: 409 with upstream's message, and the stored value stays "2".
    next["data"]["v"] = "3".into();
    let r = s.raw(
        "PUT",
        &format!("{CM_PATH}/c"),
        json,
        next.to_string().as_bytes(),
    );
    assert_status(&r, 409, "Conflict");
    assert_eq!(
        r.1["message"],
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let (_, got) = s.raw("GET", &format!("{CM_PATH}/c"), None, b"");
    assert_eq!(got["data"]["v"], "2");
    // Renaming through PUT is refused.
    let mut renamed = got.clone();
    renamed["metadata"]["name"] = "d".into();
    assert_status(
        &s.raw(
            "PUT",
            &format!("{CM_PATH}/c"),
            json,
            renamed.to_string().as_bytes(),
        ),
        400,
        "BadRequest",
    );
    // A uid precondition on delete that does not match.
    let opts =
        br#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"not-the-uid"}}"#;
    assert_status(
        &s.raw("DELETE", &format!("{CM_PATH}/c"), json, opts),
        409,
        "Conflict",
    );
    assert_eq!(configmap_names(&s), ["c"]);
    // Strict field validation names the unknown field.
    let r = s.raw(
        "POST",
        &format!("{CM_PATH}?fieldValidation=Strict"),
        json,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"},"dataa":{}}"#,
    );
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.1["message"],
        "strict decoding error: unknown field \"dataa\""
    );
    assert_eq!(configmap_names(&s), ["c"]);
}

#[test]
fn credentials_are_required() {
    let s = Server::start();
    let (code, body) = s.raw_anonymous("GET", CM_PATH);
    assert_eq!(code, 401);
    assert_eq!(body["reason"], "Unauthorized");
    // Version and health are public, as with kube-apiserver's default RBAC.
    assert_eq!(s.raw_anonymous("GET", "/version").0, 200);
    assert_eq!(s.raw_anonymous("GET", "/readyz").0, 200);
    let (code, v) = s.raw("GET", "/version", None, b"");
    assert_eq!(code, 200);
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("33"))
    );
    assert_status(
        &s.raw("GET", "/api/v1/nothings", None, b""),
        404,
        "NotFound",
    );
    assert_status(
        &s.raw(
            "PUT",
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            b"{}",
        ),
        405,
        "MethodNotAllowed",
    );
}
