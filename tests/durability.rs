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
