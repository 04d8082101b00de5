//! The `vkube` binary: parse flags, validate the config before anything binds, run.

use clap::Parser;
use vkube::config::{self, Cli, Command, EXIT_BAD_CONFIG};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Before anything allocates: the allocator asks for transparent huge pages, and the kernel
    // then zeroes a whole 2 MiB page on the first touch of each new allocator region. Under a
    // rollout (objects and requests allocated and freed by the thousand) that zeroing was a
    // fifth of vkube's CPU, and of the physical cluster's behind it; with 4 KiB pages it is gone.
    #[cfg(target_os = "linux")]
    let huge_pages = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    let mut sims = None;
    let resolved = match cli.command {
        Some(Command::Server(args)) => config::resolve(&args),
        Some(Command::Kubeconfig(k)) => return issue_kubeconfig(&k),
        Some(Command::Sim(sim)) => config::resolve(&sim.server).and_then(|mut cfg| {
            cfg.sim = Some(config::sim_settings(&sim)?);
            Ok(cfg)
        }),
        Some(Command::Demo(d)) => match vkube::demo::start(&d) {
            Ok((cfg, procs)) => {
                sims = Some(procs);
                Ok(cfg)
            }
            Err(vkube::demo::DemoError::Config(e)) => Err(e),
            Err(e) => {
                eprintln!("vkube demo: {e}");
                std::process::exit(1);
            }
        },
        None => config::resolve(&cli.server),
    };
    let cfg = match resolved {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vkube: {e}");
            std::process::exit(EXIT_BAD_CONFIG);
        }
    };
    // One crypto provider for the whole process, installed before any TLS config exists.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        anyhow::bail!("a rustls crypto provider was already installed");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VKUBE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    #[cfg(target_os = "linux")]
    if let Err(e) = huge_pages {
        tracing::warn!(error = %e, "could not turn transparent huge pages off; running with them");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        let running = vkube::server::start(cfg).await?;
        let shutdown = running.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        running.wait().await?;
        Ok(())
    });
    // The demo's simulated clusters stop with it.
    drop(sims);
    result
}

/// `vkube kubeconfig`: a client certificate for a tenant user, from the data dir's CA.
fn issue_kubeconfig(args: &config::KubeconfigArgs) -> anyhow::Result<()> {
    if args.user.is_empty() {
        eprintln!("vkube: --user must not be empty");
        std::process::exit(EXIT_BAD_CONFIG);
    }
    let pki = vkube::tls::load_existing(&args.data_dir.join("pki"))?;
    let issued = pki.issue_client(&args.user, &args.groups)?;
    let text = vkube::tls::kubeconfig_text(
        &args.server,
        &pki.ca_pem,
        &args.user,
        &issued.cert_pem,
        &issued.key_pem,
    );
    match &args.out {
        Some(path) => vkube::tls::write_secret(path, &text)?,
        None => print!("{text}"),
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
