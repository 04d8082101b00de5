//! Controller bench: how long a Deployment of N replicas takes until all N pods exist, and
//! how long deleting it takes until they are all gone; beside it, as the same-run baseline,
//! N pods created directly by 16 concurrent clients.
//!
//! `cargo bench --bench deployment` starts its own vkube (release build);
//! `-- --kubeconfig PATH` measures any Kubernetes API; `--replicas N` (1000), `--runs N` (3).

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use support::{Spawned, count_items, spawn_vkube};

fn req(method: &str, uri: String, body: Vec<u8>, ct: &str) -> Result<http::Request<Vec<u8>>> {
    support::req(method, uri, Some(ct), body)
}

async fn pods_with(client: &kube::Client, ns: &str, selector: &str) -> Result<usize> {
    let text = client
        .request_text(req(
            "GET",
            format!("/api/v1/namespaces/{ns}/pods?labelSelector={selector}"),
            vec![],
            "application/json",
        )?)
        .await?;
    count_items(&text)
}

async fn wait_for_count(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    want: usize,
    limit: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if pods_with(client, ns, selector).await? == want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{selector}: not {want} pods after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() -> Result<()> {
    let mut kubeconfig: Option<PathBuf> = None;
    let mut replicas = 1000usize;
    let mut runs = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(args.next().context("--kubeconfig PATH")?.into()),
            "--replicas" => replicas = args.next().context("--replicas N")?.parse()?,
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--bench" => {}
            other => bail!("unknown option {other}"),
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut own: Option<Spawned> = None;
    let kubeconfig = match kubeconfig {
        Some(k) => k,
        None => {
            let spawned = spawn_vkube(&["server"])?;
            let kc = spawned.kubeconfig.clone();
            own = Some(spawned);
            kc
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        let client = kube::Client::try_from(cfg)?;
        let ns = "vkube-bench-deploy";
        let ns_body = serde_json::to_vec(&serde_json::json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": ns}}))?;
        let _ = client.request_text(req("POST", "/api/v1/namespaces".into(), ns_body, "application/json")?).await;
        let limit = Duration::from_secs(600);
        let (mut direct, mut up, mut down) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            // Baseline: N pods straight from 16 concurrent clients.
            let label = format!("direct{run}");
            let start = Instant::now();
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (client, next, label) = (client.clone(), next.clone(), label.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= replicas {
                            return Ok::<_, anyhow::Error>(());
                        }
                        let pod = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name": format!("{label}-{i}"),"labels":{"bench": label}},
                            "spec":{"containers":[{"name":"c","image":"nginx"}]}});
                        client.request_text(req("POST", format!("/api/v1/namespaces/{ns}/pods"), serde_json::to_vec(&pod)?, "application/json")?).await?;
                    }
                }));
            }
            for t in tasks {
                t.await??;
            }
            direct.push(start.elapsed());
            let body = serde_json::to_vec(&serde_json::json!({}))?;
            client
                .request_text(req("DELETE", format!("/api/v1/namespaces/{ns}/pods?labelSelector=bench%3D{label}"), body, "application/json")?)
                .await?;
            // A Deployment of N replicas until N pods exist, then its deletion until none.
            let name = format!("web{run}");
            let deploy = serde_json::json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name": name},
                "spec":{"replicas": replicas, "selector":{"matchLabels":{"app": name}},
                    "template":{"metadata":{"labels":{"app": name}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}});
            let start = Instant::now();
            client
                .request_text(req("POST", format!("/apis/apps/v1/namespaces/{ns}/deployments"), serde_json::to_vec(&deploy)?, "application/json")?)
                .await?;
            wait_for_count(&client, ns, &format!("app%3D{name}"), replicas, limit).await?;
            up.push(start.elapsed());
            let start = Instant::now();
            let opts = serde_json::to_vec(&serde_json::json!({"propagationPolicy":"Background"}))?;
            client
                .request_text(req("DELETE", format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"), opts, "application/json")?)
                .await?;
            wait_for_count(&client, ns, &format!("app%3D{name}"), 0, limit).await?;
            down.push(start.elapsed());
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let base = med(&mut direct);
        println!("vkube deployment bench: replicas={replicas} runs={runs}");
        println!("{:<44} {:>10} {:>8}   runs (s)", "phase", "median s", "x base");
        for (name, v) in [
            ("direct: N pod creates, 16 clients (baseline)", &mut direct.clone()),
            ("deployment created -> N pods exist", &mut up.clone()),
            ("deployment deleted -> 0 pods", &mut down.clone()),
        ] {
            let m = med(v);
            println!(
                "{:<44} {:>10.2} {:>8.2}   {}",
                name,
                m.as_secs_f64(),
                m.as_secs_f64() / base.as_secs_f64(),
                v.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(" ")
            );
        }
        Ok::<_, anyhow::Error>(())
    });
    drop(own);
    result
}
