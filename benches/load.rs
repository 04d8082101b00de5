//! End-to-end load bench: ConfigMap create / get / merge-patch / label-selected list / delete
//! with N concurrent workers against any kubeconfig, printing ops/s and p50/p99 per phase.
//!
//! `cargo bench --bench load` starts its own vkube (release build, fresh data dir) and also
//! reports its start-up time and idle resident memory. `cargo bench --bench load --
//! --kubeconfig PATH` measures whatever that kubeconfig points at (any Kubernetes API).
//!
//! Options: `--workers N` (16), `--objects N` (2000 per run: the list selects exactly these,
//! beside as many unlabelled ones), `--value-bytes N` (256), `--runs N` (3), `--lists N` (400),
//! `--namespace NS` (vkube-bench).
//!
//! Each phase runs `--runs` times; the table shows the median run's ops/s and that run's
//! p50/p99. The baseline phase (`GET /version`) measures the client + TLS + HTTP floor of the
//! same server in the same run; ratios are against it.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use support::{Spawned, count_items, spawn_vkube};

struct Opts {
    kubeconfig: Option<PathBuf>,
    workers: usize,
    objects: usize,
    value_bytes: usize,
    runs: usize,
    lists: usize,
    namespace: String,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        kubeconfig: None,
        workers: 16,
        objects: 2000,
        value_bytes: 256,
        runs: 3,
        lists: 400,
        namespace: "vkube-bench".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--kubeconfig" => o.kubeconfig = Some(PathBuf::from(val()?)),
            "--workers" => o.workers = val()?.parse()?,
            "--objects" => o.objects = val()?.parse()?,
            "--value-bytes" => o.value_bytes = val()?.parse()?,
            "--runs" => o.runs = val()?.parse()?,
            "--lists" => o.lists = val()?.parse()?,
            "--namespace" => o.namespace = val()?,
            "--bench" => {}
            other => bail!("unknown option {other}"),
        }
    }
    if o.workers == 0 || o.objects == 0 || o.runs == 0 {
        bail!("--workers, --objects and --runs must be positive");
    }
    Ok(o)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct PhaseRun {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl PhaseRun {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// Runs `ops` operations with `workers` tasks; `op(i)` builds request i and checks its answer.
async fn run_phase<F, Fut>(workers: usize, ops: usize, op: F) -> Result<PhaseRun>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let next = next.clone();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                op(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(ops);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(PhaseRun {
        ops,
        elapsed,
        latencies,
    })
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let own = match &opts.kubeconfig {
        Some(_) => None,
        None => Some(spawn_vkube(&["server"])?),
    };
    let kubeconfig = opts
        .kubeconfig
        .clone()
        .or_else(|| own.as_ref().map(|o| o.kubeconfig.clone()))
        .context("no kubeconfig")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(opts, kubeconfig, own))
}

async fn bench(opts: Opts, kubeconfig: PathBuf, own: Option<Spawned>) -> Result<()> {
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    let server = cfg.cluster_url.to_string();
    let client = kube::Client::try_from(cfg)?;
    let idle_rss = own.as_ref().and_then(|o| rss_kib(o.pid()));

    let ns = opts.namespace.clone();
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    let ns_body = serde_json::to_vec(
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )?;
    let _ = client
        .request_text(support::req(
            "POST",
            "/api/v1/namespaces".into(),
            Some("application/json"),
            ns_body,
        )?)
        .await;
    let value = "v".repeat(opts.value_bytes);
    let body_for = |name: &str, run: usize| -> Result<Vec<u8>> {
        let mut labels = serde_json::Map::new();
        if run != usize::MAX {
            labels.insert("bench-run".into(), run.to_string().into());
        }
        Ok(serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels},
            "data": {"value": value},
        }))?)
    };

    // Unlabelled neighbours, so the label selector has to select.
    {
        let client = client.clone();
        let base = base.clone();
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..opts.objects)
                .map(|i| body_for(&format!("noise-{i}"), usize::MAX))
                .collect::<Result<_>>()?,
        );
        run_phase(opts.workers, opts.objects, move |i| {
            let client = client.clone();
            let r = support::req(
                "POST",
                base.clone(),
                Some("application/json"),
                bodies[i].clone(),
            );
            async move {
                let _ = client.request_text(r?).await;
                Ok(())
            }
        })
        .await?;
    }

    let phases = [
        "version (baseline)",
        "create",
        "get",
        "patch (merge)",
        "list (label, 2000 of 4000)",
        "delete",
    ];
    let mut results: Vec<Vec<PhaseRun>> = (0..phases.len()).map(|_| Vec::new()).collect();
    for run in 0..opts.runs {
        let c = client.clone();
        results[0].push(
            run_phase(opts.workers, opts.objects * 2, move |_| {
                let c = c.clone();
                async move {
                    c.request_text(support::req("GET", "/version".into(), None, vec![])?)
                        .await?;
                    Ok(())
                }
            })
            .await?,
        );
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..opts.objects)
                .map(|i| body_for(&format!("r{run}-{i}"), run))
                .collect::<Result<_>>()?,
        );
        let (c, b) = (client.clone(), base.clone());
        results[1].push(
            run_phase(opts.workers, opts.objects, move |i| {
                let c = c.clone();
                let r = support::req(
                    "POST",
                    b.clone(),
                    Some("application/json"),
                    bodies[i].clone(),
                );
                async move {
                    c.request_text(r?).await.context("create")?;
                    Ok(())
                }
            })
            .await?,
        );
        let (c, b) = (client.clone(), base.clone());
        let n = opts.objects;
        results[2].push(
            run_phase(opts.workers, opts.objects * 4, move |i| {
                let c = c.clone();
                let r = support::req(
                    "GET",
                    format!("{b}/r{run}-{}", (i * 7919) % n),
                    None,
                    vec![],
                );
                async move {
                    c.request_text(r?).await.context("get")?;
                    Ok(())
                }
            })
            .await?,
        );
        let (c, b) = (client.clone(), base.clone());
        results[3].push(
            run_phase(opts.workers, opts.objects, move |i| {
                let c = c.clone();
                let patch = format!(r#"{{"data":{{"patched":"{i}"}}}}"#).into_bytes();
                let r = support::req(
                    "PATCH",
                    format!("{b}/r{run}-{i}"),
                    Some("application/merge-patch+json"),
                    patch,
                );
                async move {
                    c.request_text(r?).await.context("patch")?;
                    Ok(())
                }
            })
            .await?,
        );
        let (c, b) = (client.clone(), base.clone());
        let want = opts.objects;
        results[4].push(
            run_phase(opts.workers, opts.lists, move |_| {
                let c = c.clone();
                let r = support::req(
                    "GET",
                    format!("{b}?labelSelector=bench-run%3D{run}"),
                    None,
                    vec![],
                );
                async move {
                    let text = c.request_text(r?).await.context("list")?;
                    let got = count_items(&text)?;
                    if got != want {
                        bail!("list returned {got} items, expected {want}");
                    }
                    Ok(())
                }
            })
            .await?,
        );
        let (c, b) = (client.clone(), base.clone());
        results[5].push(
            run_phase(opts.workers, opts.objects, move |i| {
                let c = c.clone();
                let r = support::req("DELETE", format!("{b}/r{run}-{i}"), None, vec![]);
                async move {
                    c.request_text(r?).await.context("delete")?;
                    Ok(())
                }
            })
            .await?,
        );
    }

    println!(
        "vkube load bench: server={server} workers={} objects/run={} value={}B runs={}",
        opts.workers, opts.objects, opts.value_bytes, opts.runs
    );
    if let Some(o) = &own {
        println!(
            "own server: serving {:.0} ms after spawn; idle RSS {} KiB; RSS after load {} KiB",
            o.startup.as_secs_f64() * 1000.0,
            idle_rss.map_or("?".into(), |r| r.to_string()),
            rss_kib(o.pid()).map_or("?".into(), |r| r.to_string()),
        );
    }
    println!(
        "{:<28} {:>12} {:>9} {:>9} {:>9}   runs (ops/s)",
        "phase", "ops/s (med)", "p50 ms", "p99 ms", "x base"
    );
    let mut baseline = 0.0;
    for (i, name) in phases.iter().enumerate() {
        let mut runs: Vec<&PhaseRun> = results[i].iter().collect();
        runs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
        let med = runs[runs.len() / 2];
        if i == 0 {
            baseline = med.ops_per_sec();
        }
        println!(
            "{:<28} {:>12.0} {:>9.2} {:>9.2} {:>9.2}   {}",
            name,
            med.ops_per_sec(),
            med.pct(0.50).as_secs_f64() * 1000.0,
            med.pct(0.99).as_secs_f64() * 1000.0,
            med.ops_per_sec() / baseline,
            results[i]
                .iter()
                .map(|r| format!("{:.0}", r.ops_per_sec()))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    Ok(())
}
