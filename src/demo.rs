//! `vkube demo`: a virtual cluster wired to two simulated physical clusters (`east` and
//! `west`), each a separate `vkube sim` process on loopback. The simulated clusters stop
//! with the demo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use crate::config::{ClusterSection, ConfigError, FileConfig, ServerArgs, ValidatedConfig};

/// Flags of `vkube demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the three clusters keep their state and kubeconfigs.
    #[arg(long, value_name = "DIR", default_value = "./vkube-demo")]
    pub dir: PathBuf,
    /// Address of the virtual cluster's API; the simulated clusters take the next two
    /// ports.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7443")]
    pub listen: String,
    /// Where to write the virtual cluster's admin kubeconfig.
    #[arg(long, value_name = "FILE", default_value = "./kubeconfig.yaml")]
    pub kubeconfig_out: PathBuf,
}

/// Errors starting the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A flag is wrong.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A simulated cluster did not start.
    #[error("simulated cluster {name}: {message}")]
    Sim {
        /// Which.
        name: String,
        /// Why.
        message: String,
    },
}

/// The simulated clusters' processes; dropping this stops them.
pub struct SimProcesses(Vec<Child>);

impl Drop for SimProcesses {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts the two simulated clusters and returns the virtual cluster's config.
pub fn start(args: &DemoArgs) -> Result<(ValidatedConfig, SimProcesses), DemoError> {
    let listen: std::net::SocketAddr = args.listen.parse().map_err(|_| ConfigError::Invalid {
        field: "--listen".into(),
        message: format!("{:?} is not an address of the form IP:PORT", args.listen),
    })?;
    let exe = std::env::current_exe().map_err(|e| DemoError::Sim {
        name: "east".into(),
        message: format!("cannot find the vkube binary: {e}"),
    })?;
    std::fs::create_dir_all(&args.dir).map_err(|e| DemoError::Sim {
        name: "east".into(),
        message: format!("cannot create {}: {e}", args.dir.display()),
    })?;
    let mut procs = SimProcesses(Vec::new());
    let mut clusters = Vec::new();
    for (i, name) in ["east", "west"].into_iter().enumerate() {
        let port = listen.port() + 1 + i as u16;
        let addr = std::net::SocketAddr::new(listen.ip(), port);
        let kubeconfig = args.dir.join(format!("{name}.kubeconfig"));
        let _ = std::fs::remove_file(&kubeconfig);
        let log = std::fs::File::create(args.dir.join(format!("{name}.log"))).map_err(|e| {
            DemoError::Sim {
                name: name.into(),
                message: e.to_string(),
            }
        })?;
        let mut child = Command::new(&exe)
            .arg("sim")
            .args(["--name", name, "--nodes", "3"])
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(args.dir.join(name))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| DemoError::Sim {
                name: name.into(),
                message: e.to_string(),
            })?;
        let serving = wait_serving(name, &mut child, &kubeconfig, addr);
        // Kept either way, so a failed demo still stops what it started.
        procs.0.push(child);
        serving?;
        let mut labels = std::collections::BTreeMap::new();
        labels.insert(
            "topology.kubernetes.io/region".to_string(),
            name.to_string(),
        );
        clusters.push(ClusterSection {
            name: name.into(),
            kubeconfig,
            namespace: Some("vkube-demo".into()),
            labels,
            ..ClusterSection::default()
        });
    }
    let file = FileConfig {
        clusters,
        ..FileConfig::default()
    };
    let server = ServerArgs {
        listen: Some(args.listen.clone()),
        data_dir: Some(args.dir.join("virtual")),
        kubeconfig_out: Some(args.kubeconfig_out.clone()),
        ..ServerArgs::default()
    };
    let cfg = crate::config::validate(file, &server)?;
    Ok((cfg, procs))
}

fn wait_serving(
    name: &str,
    child: &mut std::process::Child,
    kubeconfig: &Path,
    addr: std::net::SocketAddr,
) -> Result<(), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        // A simulated cluster that exits (its port taken, …) fails the demo at once.
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DemoError::Sim {
                name: name.into(),
                message: format!(
                    "exited ({status}) before serving on {addr} (see its log beside {})",
                    kubeconfig.display()
                ),
            });
        }
        if kubeconfig.exists()
            && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(DemoError::Sim {
        name: name.into(),
        message: format!(
            "not serving on {addr} after 30 s (see its log beside {})",
            kubeconfig.display()
        ),
    })
}
