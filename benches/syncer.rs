//! Syncer bench: a Deployment of N replicas until all N pods are `Running` in a virtual
//! cluster whose pods run in a physical cluster, next to the same Deployment created directly
//! in that physical cluster (the same-run baseline). Target: through vkube within 1.5× of
//! direct.
//!
//! `cargo bench --bench syncer` starts `vkube sim` and a vkube wired to it (release build).
//! `-- --physical KUBECONFIG --virtual KUBECONFIG` measures existing clusters instead (the
//! virtual cluster must run its pods in that physical cluster). `--replicas N[,N…]`
//! (100,1000), `--runs N` (3; direct and through vkube alternate). With its own pair it also
//! reports the CPU time both processes used from the Deployment's creation until all pods ran
//! (medians, as "total (sim + vkube)"): the through path is CPU-bound on a small machine
//! where direct is not, so this shows where the time goes.
//!
//! `--pin` gives the pair separate CPUs (the sim the first half, vkube the second; with 2
//! CPUs one each), as if the physical cluster had machines of its own: both runs use the
//! same physical cluster on the same CPUs, and vkube adds its own. Without it the two share
//! every CPU, and through vkube the machine runs two API servers' writes for one pod.
//!
//! `--fresh` starts a new pair for every run (direct and through alike), so no run inherits
//! what earlier ones left (their Events, a Raft snapshot falling due); without it one pair
//! serves all runs, as a long-lived cluster would.
//!
//! `--stages` also prints when pods reached each stage of the rollout (created, bound,
//! Running; through vkube also their physical copies' created, bound and Running), as the
//! first pod, the median pod and the last one, in ms from the Deployment's creation (medians
//! over the runs): it shows which stage the through path's extra time is spent in.
//!
//! `--kubectl` creates the Deployment by running `kubectl create deployment NAME
//! --image=nginx --replicas=N` (the `KUBECTL` binary, else `kubectl` on the PATH) and starts
//! the clock as kubectl starts, as the issue words the measurement: the time then includes
//! kubectl's own start, discovery and request, the same in both columns. Without it the clock
//! starts at the bench's own create request, which leaves only the clusters' time.
//!
//! `VKUBE_BENCH_BIN=PATH` runs the pair from another vkube build, to compare two builds in
//! one session (these machines' speed drifts between sessions).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use support::{Spawned, client, json_req, median, spawn_vkube_on};

/// When each pod of a rollout was first seen, bound and `Running`, from the Deployment's
/// creation; by the virtual pod's name.
#[derive(Default)]
struct Stages {
    seen: HashMap<String, Duration>,
    bound: HashMap<String, Duration>,
    running: HashMap<String, Duration>,
}

impl Stages {
    fn record(&mut self, name: &str, pod: &k8s_openapi::api::core::v1::Pod, at: Duration) {
        self.seen.entry(name.to_string()).or_insert(at);
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some()
        {
            self.bound.entry(name.to_string()).or_insert(at);
        }
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            self.running.entry(name.to_string()).or_insert(at);
        }
    }

    /// The first pod's, the median pod's and the last pod's time of each stage (a run records
    /// every stage of at least one pod before it ends).
    fn summary(&self) -> [[Duration; 3]; 3] {
        [&self.seen, &self.bound, &self.running].map(|m| {
            let mut v: Vec<Duration> = m.values().copied().collect();
            let first = v.iter().copied().min().unwrap_or_default();
            let last = v.iter().copied().max().unwrap_or_default();
            [
                first,
                if v.is_empty() { last } else { median(&mut v) },
                last,
            ]
        })
    }
}

/// Watches the pods of `ns` labelled `selector` from resourceVersion `from` until `want` of
/// them are `Running`, as `kubectl rollout status` follows a rollout (a watch, not repeated
/// lists that would load the server under test); returns when that happened. With `stages`,
/// records each pod's stages there (from `start`).
async fn watch_running(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    from: String,
    want: usize,
    start: Instant,
    mut stages: Option<&mut Stages>,
) -> Result<Instant> {
    use futures::TryStreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, WatchEvent, WatchParams};
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut running: std::collections::HashMap<String, bool> = Default::default();
    let mut version = from;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if Instant::now() > deadline {
            bail!("{ns}: not all {want} pods Running after 15 minutes");
        }
        let params = WatchParams::default().labels(selector).timeout(60);
        let mut events = Box::pin(api.watch(&params, &version).await?);
        while let Some(ev) = events.try_next().await? {
            let (pod, gone) = match ev {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => (p, false),
                WatchEvent::Deleted(p) => (p, true),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => bail!("watching {ns}: {}", e.message),
            };
            if let Some(rv) = pod.metadata.resource_version.clone() {
                version = rv;
            }
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Some(stages) = stages.as_deref_mut().filter(|_| !gone) {
                stages.record(&name, &pod, start.elapsed());
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            let now_running = !gone && phase == Some("Running");
            // A pod's phase only moves forward: one seen Running that reads Pending again
            // (not deleted) is a stale status written over a newer one.
            if running.insert(name.clone(), now_running) == Some(true) && !gone && !now_running {
                bail!("{ns}/{name} went back from Running to {phase:?}");
            }
            if running.values().filter(|r| **r).count() == want {
                return Ok(Instant::now());
            }
        }
    }
}

/// Records the stages of the physical copies of the virtual pods labelled `selector` (in
/// every namespace, by the virtual pod's name), watched resourceVersion `from` until dropped.
async fn watch_physical(
    client: kube::Client,
    selector: String,
    from: String,
    start: Instant,
    stages: std::sync::Arc<std::sync::Mutex<Stages>>,
) -> Result<()> {
    use futures::TryStreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, WatchEvent, WatchParams};
    let api: Api<Pod> = Api::all(client);
    let params = WatchParams::default().labels(&selector).timeout(290);
    let mut events = Box::pin(api.watch(&params, &from).await?);
    while let Some(ev) = events.try_next().await? {
        let (WatchEvent::Added(pod) | WatchEvent::Modified(pod)) = ev else {
            continue;
        };
        let annotations = pod.metadata.annotations.as_ref();
        if let Some(name) = annotations.and_then(|a| a.get(vkube::syncer::translate::ANN_NAME)) {
            let mut s = stages.lock().unwrap_or_else(|e| e.into_inner());
            s.record(name, &pod, start.elapsed());
        }
    }
    Ok(())
}

/// The resourceVersion of the pod list of `ns` (every namespace: "") now (a watch from it
/// misses nothing later).
async fn pods_version(client: &kube::Client, ns: &str) -> Result<String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};
    let api: Api<Pod> = match ns {
        "" => Api::all(client.clone()),
        ns => Api::namespaced(client.clone(), ns),
    };
    let list = api.list_metadata(&ListParams::default().limit(1)).await?;
    list.metadata
        .resource_version
        .context("a pod list without resourceVersion")
}

async fn pods(client: &kube::Client, path: &str) -> Result<String> {
    Ok(client
        .request_text(support::req("GET", path.to_string(), None, vec![])?)
        .await?)
}

/// Polls `path` (a pod list) until `done` holds for it; returns the time taken.
async fn wait_until(
    client: &kube::Client,
    path: &str,
    what: &str,
    done: impl Fn(&str) -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    let limit = Duration::from_secs(900);
    loop {
        if done(&pods(client, path).await?)? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{what}: not done after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    if let Ok(r) = json_req("POST", "/api/v1/namespaces".into(), &body) {
        let _ = client.request_text(r).await;
    }
}

/// A Deployment to roll out: where, its name and size, and the kubeconfig kubectl creates it
/// with (`None`: the bench's client does).
struct Rollout<'a> {
    ns: &'a str,
    name: &'a str,
    replicas: usize,
    kubectl: Option<&'a Path>,
}

/// `kubectl create deployment name --image=nginx --replicas=N -n ns` against `kubeconfig`.
async fn kubectl_create(kubeconfig: &Path, ns: &str, name: &str, replicas: usize) -> Result<()> {
    let kubectl = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut cmd = std::process::Command::new(&kubectl);
    cmd.args(["create", "deployment", name, "--image=nginx"])
        .arg(format!("--replicas={replicas}"))
        .args(["--namespace", ns, "--kubeconfig"])
        .arg(kubeconfig);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .with_context(|| format!("run {}", kubectl.to_string_lossy()))?;
    if !out.status.success() {
        bail!(
            "kubectl create deployment {ns}/{name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Creates Deployment `name` of `replicas` in `ns` and waits until all its pods run; then
/// deletes it and waits until its pods are gone (also from the `physical` lists when given:
/// the physical copies of virtual pods and their token Secrets, so that the next run does
/// not share the physical cluster with the deletions of this one).
async fn run_once(
    client: &kube::Client,
    rollout: Rollout<'_>,
    physical: Option<(&kube::Client, &[&str])>,
    cpu: &dyn Fn() -> Option<Vec<Duration>>,
    with_stages: bool,
) -> Result<Run> {
    let Rollout {
        ns,
        name,
        replicas,
        kubectl,
    } = rollout;
    let list = format!("/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{name}");
    let from = pods_version(client, ns).await?;
    // The physical pods are watched from now on, in every namespace.
    let physical_from = match physical {
        Some((pclient, _)) if with_stages => Some((pclient, pods_version(pclient, "").await?)),
        _ => None,
    };
    let cpu_before = cpu();
    let start = Instant::now();
    let physical_stages = std::sync::Arc::new(std::sync::Mutex::new(Stages::default()));
    let physical_watch = physical_from.map(|(pclient, version)| {
        tokio::spawn(watch_physical(
            pclient.clone(),
            format!("app={name}"),
            version,
            start,
            physical_stages.clone(),
        ))
    });
    match kubectl {
        Some(kubeconfig) => kubectl_create(kubeconfig, ns, name, replicas).await?,
        None => {
            // What `kubectl create deployment --image=nginx` creates.
            let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
            client
                .request_text(json_req(
                    "POST",
                    format!("/apis/apps/v1/namespaces/{ns}/deployments"),
                    &deploy,
                )?)
                .await
                .with_context(|| format!("create deployment {ns}/{name}"))?;
        }
    }
    let mut stages = Stages::default();
    let took = watch_running(
        client,
        ns,
        &format!("app={name}"),
        from,
        replicas,
        start,
        with_stages.then_some(&mut stages),
    )
    .await?
    .duration_since(start);
    let cpu_used = cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.iter().zip(&before).map(|(a, b)| *a - *b).collect());
    // Virtual pods run after their physical copies: the physical watch has seen them all run
    // by now, or does within moments.
    let mut reached = Vec::new();
    if let Some(watch) = physical_watch {
        let deadline = Instant::now() + Duration::from_secs(5);
        let all_ran = || physical_stages.lock().map_or(0, |s| s.running.len()) >= replicas;
        while !all_ran() && Instant::now() < deadline && !watch.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        watch.abort();
        let p = physical_stages.lock().unwrap_or_else(|e| e.into_inner());
        // Without every physical pod seen running (say, no right to watch them all) there
        // are no physical stages to tell.
        if p.running.len() >= replicas {
            let [v_seen, v_bound, v_running] = stages.summary();
            reached = vec![v_seen, v_bound];
            reached.extend(p.summary());
            reached.push(v_running);
        }
    } else if with_stages {
        reached = stages.summary().to_vec();
    }
    client
        .request_text(json_req(
            "DELETE",
            format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
            &json!({"propagationPolicy": "Background"}),
        )?)
        .await?;
    wait_until(client, &list, "pods deleted", |t| {
        Ok(support::count_items(t)? == 0)
    })
    .await?;
    if let Some((pclient, lists)) = physical {
        for list in lists {
            wait_until(pclient, list, "physical copies deleted", |t| {
                Ok(support::count_items(t)? == 0)
            })
            .await?;
        }
    }
    Ok(Run {
        took,
        cpu: cpu_used,
        stages: reached,
    })
}

/// `--stages`: per stage, the median over `runs` of the first, the median and the last pod's
/// time (runs without the full set of stages, as when the physical cluster's pods cannot be
/// watched, are left out).
fn print_stages(label: &str, names: &[&str], runs: &[Vec<[Duration; 3]>]) {
    let full: Vec<&Vec<[Duration; 3]>> = runs.iter().filter(|r| r.len() == names.len()).collect();
    if full.is_empty() {
        println!("  {label}: no stages recorded");
        return;
    }
    let ms = |d: Duration| d.as_millis();
    let parts: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let at = |which: usize| {
                let mut over_runs: Vec<Duration> = full.iter().map(|r| r[i][which]).collect();
                ms(median(&mut over_runs))
            };
            format!("{name} {}/{}/{}", at(0), at(1), at(2))
        })
        .collect();
    println!(
        "  {label} stages (ms, first/median/last pod): {}",
        parts.join(", ")
    );
}

/// One run: how long until all pods ran, the CPU the pair used meanwhile (when the bench
/// started it), and with `--stages` the first, the median and the last pod's time of each
/// stage.
struct Run {
    took: Duration,
    cpu: Option<Vec<Duration>>,
    stages: Vec<[Duration; 3]>,
}

/// Starts `vkube sim` with room for `largest` pods twice over and a vkube wired to it (on
/// separate CPUs with `pin`); the sim first.
fn spawn_pair(pin: bool, largest: usize) -> Result<Vec<Spawned>> {
    let per_node = (largest * 2 / 10 + 10).to_string();
    let (sim_cpus, vk_cpus) = if pin {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        if n < 2 {
            bail!("--pin needs at least 2 CPUs");
        }
        let half = n / 2;
        let list = |a: usize, b: usize| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        };
        (Some(list(0, half - 1)), Some(list(half, n - 1)))
    } else {
        (None, None)
    };
    let sim = spawn_vkube_on(
        &["sim", "--nodes", "10", "--node-pods", &per_node],
        sim_cpus.as_deref(),
    )?;
    let pkc = sim.kubeconfig.display().to_string();
    let vk = spawn_vkube_on(&["server", "--kubeconfig", &pkc], vk_cpus.as_deref())?;
    Ok(vec![sim, vk])
}

/// The CPU time each process of a pair this bench started has used (the sim, then vkube).
fn cpu_of(own: &[Spawned]) -> Option<Vec<Duration>> {
    match own {
        [] => None,
        procs => procs.iter().map(Spawned::cpu).collect(),
    }
}

const DIRECT_NS: &str = "vkube-bench-direct";
const SYNC_NS: &str = "vkube-bench-sync";
/// What a virtual pod leaves physically: its pod and its token Secret.
const PHYSICAL_COPIES: [&str; 2] = [
    "/api/v1/pods?labelSelector=vkube.io%2Fmanaged-by",
    "/api/v1/secrets?labelSelector=vkube.io%2Fmanaged-by",
];

/// Clients of both clusters, once the bench's namespaces exist and the virtual node is Ready.
async fn connect(physical: &Path, virt: &Path) -> Result<(kube::Client, kube::Client)> {
    let p = client(physical).await?;
    let v = client(virt).await?;
    ensure_namespace(&p, DIRECT_NS).await;
    ensure_namespace(&v, SYNC_NS).await;
    // The virtual node must be Ready before pods can be placed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = v
            .request_text(support::req("GET", "/api/v1/nodes".into(), None, vec![])?)
            .await?;
        if nodes.contains("\"type\":\"Ready\",\"status\":\"True\"") {
            return Ok((p, v));
        }
        if Instant::now() > deadline {
            bail!("no Ready virtual node after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One Deployment of `n` directly in the physical cluster, or through the virtual one; with
/// `kubeconfigs` (physical, virtual) created by kubectl.
async fn measure(
    pair: &(kube::Client, kube::Client),
    through: bool,
    name: &str,
    n: usize,
    cpu: &dyn Fn() -> Option<Vec<Duration>>,
    stages: bool,
    kubeconfigs: Option<(&Path, &Path)>,
) -> Result<Run> {
    let (p, v) = pair;
    let rollout = |ns, kubectl| Rollout {
        ns,
        name,
        replicas: n,
        kubectl,
    };
    if through {
        let physical = Some((p, &PHYSICAL_COPIES[..]));
        let kubectl = kubeconfigs.map(|k| k.1);
        run_once(v, rollout(SYNC_NS, kubectl), physical, cpu, stages).await
    } else {
        let kubectl = kubeconfigs.map(|k| k.0);
        run_once(p, rollout(DIRECT_NS, kubectl), None, cpu, stages).await
    }
}

fn main() -> Result<()> {
    let mut physical: Option<PathBuf> = None;
    let mut virt: Option<PathBuf> = None;
    let mut sizes = vec![100usize, 1000];
    let mut runs = 3usize;
    let mut pin = false;
    let mut fresh = false;
    let mut stages = false;
    let mut kubectl = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--physical" => physical = Some(val()?.into()),
            "--virtual" => virt = Some(val()?.into()),
            "--replicas" => {
                sizes = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--runs" => runs = val()?.parse()?,
            "--pin" => pin = true,
            "--fresh" => fresh = true,
            "--stages" => stages = true,
            "--kubectl" => kubectl = true,
            "--bench" => {}
            other => bail!("unknown option {other}"),
        }
    }
    if runs == 0 || sizes.is_empty() {
        bail!("--runs and --replicas must be positive");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Our own pair unless both are given: a simulated physical cluster with room for the
    // largest Deployment twice over, and a virtual cluster wired to it.
    let largest = sizes.iter().copied().max().unwrap_or(100);
    let mut own: Vec<Spawned> = Vec::new();
    let (mut physical, mut virt) = match (physical, virt) {
        (Some(p), Some(v)) => {
            if pin || fresh {
                bail!(
                    "--pin and --fresh apply to the pair the bench starts, not to --physical/--virtual"
                );
            }
            (p, v)
        }
        (None, None) => {
            own = spawn_pair(pin, largest)?;
            (own[0].kubeconfig.clone(), own[1].kubeconfig.clone())
        }
        _ => bail!("give both --physical and --virtual, or neither"),
    };
    if pin {
        println!("pinned: the sim on the first half of the CPUs, vkube on the second");
    }
    if fresh {
        println!("fresh: a new pair for every run");
    }
    if kubectl {
        println!("kubectl: from starting `kubectl create deployment` (its own time included)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let mut pair = connect(&physical, &virt).await?;
        println!("vkube syncer bench: runs={runs} (medians; through vkube / direct)");
        println!(
            "{:>8} {:>12} {:>14} {:>7} {:>18} {:>18}   runs direct | through (s)",
            "replicas", "direct s", "through s", "ratio", "direct cpu s", "through cpu s"
        );
        for &n in &sizes {
            let (mut direct, mut through) = (Vec::new(), Vec::new());
            let (mut direct_cpu, mut through_cpu) = (Vec::new(), Vec::new());
            let (mut direct_stages, mut through_stages) = (Vec::new(), Vec::new());
            for run in 0..runs {
                for (is_through, times, cpus, reached) in [
                    (false, &mut direct, &mut direct_cpu, &mut direct_stages),
                    (true, &mut through, &mut through_cpu, &mut through_stages),
                ] {
                    if fresh {
                        // The old pair goes first: it holds the ports and the CPUs.
                        own.clear();
                        own = spawn_pair(pin, largest)?;
                        (physical, virt) = (own[0].kubeconfig.clone(), own[1].kubeconfig.clone());
                        pair = connect(&physical, &virt).await?;
                    }
                    let prefix = if is_through { "v" } else { "d" };
                    let name = format!("{prefix}{n}-{run}");
                    let kubeconfigs = kubectl.then_some((physical.as_path(), virt.as_path()));
                    let cpu = || cpu_of(&own);
                    let one =
                        measure(&pair, is_through, &name, n, &cpu, stages, kubeconfigs).await?;
                    times.push(one.took);
                    cpus.extend(one.cpu);
                    reached.push(one.stages);
                }
            }
            let fmt = |v: &[Duration]| {
                v.iter()
                    .map(|d| format!("{:.3}", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            // The median total, and the median of each process: "total (sim + vkube)".
            let cpu_median = |v: &[Vec<Duration>]| {
                if v.is_empty() {
                    return "-".to_string();
                }
                let mut total: Vec<Duration> = v.iter().map(|p| p.iter().sum()).collect();
                let parts: Vec<String> = (0..v[0].len())
                    .map(|i| {
                        let mut one: Vec<Duration> = v.iter().map(|p| p[i]).collect();
                        format!("{:.2}", median(&mut one).as_secs_f64())
                    })
                    .collect();
                format!(
                    "{:.2} ({})",
                    median(&mut total).as_secs_f64(),
                    parts.join("+")
                )
            };
            let (rd, rt) = (fmt(&direct), fmt(&through));
            let (md, mt) = (median(&mut direct), median(&mut through));
            println!(
                "{:>8} {:>12.3} {:>14.3} {:>7.2} {:>18} {:>18}   {rd} | {rt}",
                n,
                md.as_secs_f64(),
                mt.as_secs_f64(),
                mt.as_secs_f64() / md.as_secs_f64(),
                cpu_median(&direct_cpu),
                cpu_median(&through_cpu),
            );
            if stages {
                print_stages("direct", &["created", "bound", "Running"], &direct_stages);
                let through_names = [
                    "created",
                    "bound",
                    "physical created",
                    "physical bound",
                    "physical Running",
                    "Running",
                ];
                print_stages("through", &through_names, &through_stages);
            }
        }
        Ok::<_, anyhow::Error>(())
    });
    drop(own);
    result
}
