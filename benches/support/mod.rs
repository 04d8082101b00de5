//! What the end-to-end benches share: starting a `vkube` process of this build, a kube-rs
//! client for a kubeconfig, raw requests and cheap list counting.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::Request;

/// A `vkube` process (server, sim, …) started by a bench; killed when dropped.
pub struct Spawned {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub startup: Duration,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the process has used so far, from `/proc/<pid>/stat`.
    #[allow(dead_code)] // not every bench reports CPU
    pub fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th
        // of the line, in clock ticks (USER_HZ, 100 on Linux).
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }
}

/// Starts `vkube <args>` on a free loopback port with a fresh data dir; returns once the
/// kubeconfig is written and the port accepts connections.
pub fn spawn_vkube(args: &[&str]) -> Result<Spawned> {
    spawn_vkube_on(args, None)
}

/// [`spawn_vkube`], confined to the CPUs `cpus` (a `taskset` list such as `0` or `2-3`) when
/// given.
pub fn spawn_vkube_on(args: &[&str], cpus: Option<&str>) -> Result<Spawned> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let started = Instant::now();
    // VKUBE_BENCH_BIN starts another build (to compare two builds in one session).
    let exe =
        std::env::var("VKUBE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_vkube").into());
    let mut command = match cpus {
        // taskset execs vkube in its own process, so the pid (and its CPU time) is vkube's.
        Some(list) => {
            let mut c = std::process::Command::new("taskset");
            c.args(["-c", list, &exe]);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let child = command
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("start vkube")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(kubeconfig.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
        if Instant::now() > deadline {
            bail!("vkube {args:?} did not start within 30 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(Spawned {
        child,
        _dir: dir,
        kubeconfig,
        startup: started.elapsed(),
    })
}

/// A kube-rs client for the current context of `kubeconfig`.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// A request with an optional Content-Type.
pub fn req(
    method: &str,
    uri: String,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Request<Vec<u8>>> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    Ok(b.body(body)?)
}

/// A JSON request.
pub fn json_req(method: &str, uri: String, body: &serde_json::Value) -> Result<Request<Vec<u8>>> {
    req(
        method,
        uri,
        Some("application/json"),
        serde_json::to_vec(body)?,
    )
}

/// Counts the top-level items of a list without building them.
pub fn count_items(text: &str) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<serde::de::IgnoredAny>,
    }
    Ok(serde_json::from_str::<List>(text)?.items.len())
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
