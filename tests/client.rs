//! A kube-rs client against the real binary: typed CRUD, paging, resourceVersion semantics,
//! watch (resume, bookmarks, 410 when history is gone).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Server;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c.data = Some(BTreeMap::from([("k".to_string(), "v".to_string())]));
    c
}

#[tokio::test]
async fn typed_crud_paging_and_watch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vkube.yaml");
    std::fs::write(&config, "server:\n  watchWindow: 100\n").expect("config");
    let s = Server::start_with(&["--config", &config.display().to_string()]);
    let client = s.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = api
        .create(&PostParams::default(), &cm("a", &[("app", "x")]))
        .await
        .expect("create");
    let uid = created.metadata.uid.clone().expect("uid");
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1: u64 = created
        .metadata
        .resource_version
        .clone()
        .expect("rv")
        .parse()
        .expect("numeric rv");

    // Watch from the create's revision sees the next change, then a bookmark-capable watch.
    // (Only `a`: the namespace's `kube-root-ca.crt` may be published meanwhile.)
    let wp = WatchParams::default().fields("metadata.name=a").timeout(10);
    let mut stream = api
        .watch(&wp, &rv1.to_string())
        .await
        .expect("watch")
        .boxed();
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"k": "w"}})),
        )
        .await
        .expect("patch");
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("event in time")
        .expect("stream ok")
        .expect("an event");
    match ev {
        WatchEvent::Modified(o) => {
            assert_eq!(o.data.expect("data")["k"], "w");
            assert_eq!(
                o.metadata.resource_version,
                patched.metadata.resource_version
            );
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    for i in 0..25 {
        let labels = if i % 2 == 0 {
            [("app", "x")]
        } else {
            [("app", "y")]
        };
        api.create(&PostParams::default(), &cm(&format!("n{i:02}"), &labels))
            .await
            .expect("create");
    }
    // Paging: limit + continue returns every object once, in order.
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(7);
    loop {
        let page = api.list(&lp).await.expect("page");
        names.extend(
            page.items
                .iter()
                .map(|c| c.metadata.name.clone().expect("name")),
        );
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // Every object once; the namespace's CA bundle (created by a controller) aside.
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert_eq!(
        names.iter().filter(|n| *n != "kube-root-ca.crt").count(),
        26
    );
    let x = api
        .list(&ListParams::default().labels("app=x"))
        .await
        .expect("labels");
    assert_eq!(x.items.len(), 14);

    // Conflict on a stale replace.
    let mut stale = created.clone();
    stale.data = Some(BTreeMap::from([("k".to_string(), "stale".to_string())]));
    let err = api
        .replace("a", &PostParams::default(), &stale)
        .await
        .expect_err("stale");
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other}"),
    }

    // History beyond the window (100 events) is gone: a watch from the first revision gets 410.
    for i in 0..110 {
        api.create(&PostParams::default(), &cm(&format!("h{i:03}"), &[]))
            .await
            .expect("create");
    }
    let mut old = api
        .watch(&WatchParams::default().timeout(5), &rv1.to_string())
        .await
        .expect("watch")
        .boxed();
    match old.next().await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    api.delete(
        "a",
        &DeleteParams::default().preconditions(kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
    )
    .await
    .expect("delete with uid precondition");
    assert!(api.get_opt("a").await.expect("get").is_none());
}
