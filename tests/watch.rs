//! Watch protocol details over raw HTTPS: initial events with the initial-events-end bookmark,
//! server-side timeouts, resuming from a resourceVersion, and discovery as kubectl sees it.

mod common;

use common::Server;
use serde_json::Value;

fn events(body: &Value) -> Vec<Value> {
    let text = body
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}")))
        .collect()
}

#[test]
fn initial_events_bookmark_timeout_and_resume() {
    let s = Server::start();
    let json = Some("application/json");
    let base = "/api/v1/namespaces/default/configmaps";
    let mut rv = String::new();
    for name in ["a", "b"] {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"w":"1"}}}}}}"#
        );
        let (code, obj) = s.raw("POST", base, json, body.as_bytes());
        assert_eq!(code, 201);
        rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_string();
    }
    // sendInitialEvents: ADDED for each object, then the bookmark that ends the initial state;
    // the stream ends by itself after timeoutSeconds.
    let (code, body) = s.raw(
        "GET",
        &format!("{base}?watch=true&labelSelector=w&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"),
        None,
        b"",
    );
    assert_eq!(code, 200);
    let evs = events(&body);
    let kinds: Vec<&str> = evs
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds[..3], ["ADDED", "ADDED", "BOOKMARK"], "{evs:?}");
    assert_eq!(
        evs[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // The bookmark is at the store's revision, which has seen at least our last write.
    let bookmark_rv: u64 = evs[2]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("numeric rv");
    assert!(bookmark_rv >= rv.parse::<u64>().expect("rv"));
    assert_eq!(evs[2]["object"]["kind"], "ConfigMap");

    // Resume from the first create's revision: only what came after, in order.
    let first_rv: u64 = rv.parse::<u64>().expect("rv") - 1;
    let (_, obj) = s.raw(
        "PATCH",
        &format!("{base}/a"),
        Some("application/merge-patch+json"),
        br#"{"metadata":{"labels":{"w":"2"}}}"#,
    );
    assert_eq!(obj["metadata"]["labels"]["w"], "2");
    let (code, body) = s.raw(
        "GET",
        &format!("{base}?watch=1&labelSelector=w&resourceVersion={first_rv}&timeoutSeconds=1"),
        None,
        b"",
    );
    assert_eq!(code, 200);
    let evs = events(&body);
    let seen: Vec<(String, String)> = evs
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("t").into(),
                e["object"]["metadata"]["name"].as_str().expect("n").into(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".into(), "b".into()),
            ("MODIFIED".into(), "a".into())
        ]
    );

    // With a label selector, an object leaving the selection is a DELETED event.
    let (code, body) = s.raw(
        "GET",
        &format!("{base}?watch=1&resourceVersion={first_rv}&labelSelector=w%3D1&timeoutSeconds=1"),
        None,
        b"",
    );
    assert_eq!(code, 200);
    let seen: Vec<String> = events(&body)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().expect("t"),
                e["object"]["metadata"]["name"].as_str().expect("n")
            )
        })
        .collect();
    assert_eq!(seen, ["ADDED b", "DELETED a"]);
}

#[test]
fn discovery_as_kubectl_sees_it() {
    let s = Server::start();
    let out = s.kubectl_ok(&["api-resources"]);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from api-resources:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("deployments"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        line("namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(
        line("selfsubjectaccessreviews"),
        [
            "selfsubjectaccessreviews",
            "authorization.k8s.io/v1",
            "false",
            "SelfSubjectAccessReview"
        ]
    );
    let versions = s.kubectl_ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
        "autoscaling/v2",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing: {versions}"
        );
    }
    assert_eq!(s.kubectl_ok(&["get", "deploy", "-A", "-o", "name"]), "");
    let explain_free = s.kubectl_ok(&["get", "--raw", "/openapi/v3"]);
    assert!(explain_free.contains("apis/apps/v1"));
}
