//! Every write acknowledged to a client survives `kill -9` and a restart.

mod common;

use std::sync::{Arc, Mutex};

use common::Server;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill9() {
    let mut s = Server::start();
    let client = s.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    // Eight writers; the server is killed while they are still writing.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let api = api.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                let mut c = ConfigMap::default();
                let name = format!("w{w}-{i}");
                c.metadata.name = Some(name.clone());
                match api.create(&PostParams::default(), &c).await {
                    Ok(_) => acked.lock().expect("lock").push(name),
                    Err(_) => return,
                }
            }
        }));
    }
    common::wait_for(
        std::time::Duration::from_secs(60),
        "300 acknowledged writes",
        || (acked.lock().expect("lock").len() >= 300).then_some(()),
    );
    s.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().expect("lock").clone();
    s.restart_after_kill9();
    let api: Api<ConfigMap> = Api::namespaced(s.client().await, "default");
    let stored: std::collections::HashSet<String> = api
        .list(&ListParams::default())
        .await
        .expect("list after restart")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let lost: Vec<_> = acked.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // The store still works after recovery.
    let mut c = ConfigMap::default();
    c.metadata.name = Some("after".into());
    api.create(&PostParams::default(), &c)
        .await
        .expect("write after restart");
}

fn ours(items: &[ConfigMap]) -> usize {
    // The namespace's CA bundle comes from a controller, not from this test.
    items
        .iter()
        .filter(|c| c.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_log_compaction_survive_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vkube.yaml");
    std::fs::write(&config, "raft:\n  snapshotEvery: 100\n").expect("config");
    let mut s = Server::start_with(&["--config", config.to_str().expect("utf8")]);
    let api: Api<ConfigMap> = Api::namespaced(s.client().await, "default");
    for i in 0..450 {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(format!("c{i}"));
        c.data = Some([("i".to_string(), i.to_string())].into());
        api.create(&PostParams::default(), &c)
            .await
            .expect("create");
    }
    // Deletes and updates after the snapshots, too.
    for i in 0..50 {
        api.delete(&format!("c{i}"), &Default::default())
            .await
            .expect("delete");
    }
    let snapshot = s.data_dir().join("snapshot.bin");
    common::wait_for(
        std::time::Duration::from_secs(30),
        "a snapshot file",
        || snapshot.exists().then_some(()),
    );
    s.restart_after_kill9();
    let api: Api<ConfigMap> = Api::namespaced(s.client().await, "default");
    let items = api.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(ours(&items), 400, "objects after restart");
    let c77 = api.get("c77").await.expect("c77");
    assert_eq!(c77.data.expect("data")["i"], "77");
    assert!(
        api.get_opt("c7").await.expect("get").is_none(),
        "a deleted object stays deleted"
    );
    // And once more, restarting from what the previous restart recovered.
    s.restart_after_kill9();
    let api: Api<ConfigMap> = Api::namespaced(s.client().await, "default");
    assert_eq!(
        ours(&api.list(&ListParams::default()).await.expect("list").items),
        400
    );
}
