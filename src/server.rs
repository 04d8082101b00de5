//! Starting and stopping the daemon: PKI, store, Raft, bootstrap objects, kubeconfig, the API
//! listener, and one cancellation tree for shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::config::ValidatedConfig;
use crate::raft::{RaftNode, RaftNodeError};
use crate::resources::Registry;
use crate::store::{Store, StoreError};
use crate::tls::{Pki, TlsError};

/// Errors of starting the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data dir is unusable.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The dir.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Certificates.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Raft.
    #[error(transparent)]
    Raft(#[from] RaftNodeError),
    /// The listener.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error(transparent)]
    Serve(#[from] api::ServeError),
    /// Creating the built-in objects failed.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// A started daemon.
pub struct Running {
    /// The bound API address.
    pub addr: SocketAddr,
    /// Cancel to stop.
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), api::ServeError>>,
    raft: Arc<RaftNode>,
    store: Arc<Store>,
}

impl Running {
    /// Waits until the server stops (after `shutdown` is cancelled), then stops Raft.
    pub async fn wait(self) -> Result<(), ServerError> {
        let served = self.task.await;
        self.raft.shutdown().await;
        if let Err(e) = self.store.sync() {
            tracing::warn!(error = %e, "final state sync");
        }
        match served {
            Ok(r) => r.map_err(ServerError::from),
            Err(e) => Err(ServerError::Bootstrap(format!("server task: {e}"))),
        }
    }
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Starts the daemon: returns once the API is serving.
pub async fn start(cfg: ValidatedConfig) -> Result<Running, ServerError> {
    let started = tokio::time::Instant::now();
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| ServerError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    })?;
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(h) = host_name() {
        sans.push(h);
    }
    if !cfg.listen.ip().is_unspecified() {
        sans.push(cfg.listen.ip().to_string());
    }
    sans.extend(cfg.tls_sans.iter().cloned());
    if let Some(a) = cfg.advertise {
        sans.push(a.ip().to_string());
    }
    sans.sort();
    sans.dedup();
    let pki = Pki::load_or_create(&cfg.data_dir.join("pki"), &sans)?;

    // Bind before Raft starts so a taken port fails fast.
    let listener =
        std::net::TcpListener::bind(cfg.listen).map_err(|source| ServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let client_host: IpAddr = if addr.ip().is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let server_url = format!("https://{}", SocketAddr::new(client_host, addr.port()));
    // Where pods (in physical clusters) reach this API.
    let advertised = cfg
        .advertise
        .unwrap_or_else(|| SocketAddr::new(client_host, addr.port()));

    let store = Arc::new(Store::open(&cfg.data_dir, cfg.watch_window)?);
    let raft =
        Arc::new(RaftNode::start(&cfg.data_dir, &cfg.raft, store.clone(), &server_url).await?);
    let state = Arc::new(ApiState {
        store: store.clone(),
        raft: raft.clone(),
        registry: Registry::builtin(),
        auth: api::auth::Authenticator::new(&cfg.tokens),
        server_address: advertised.to_string(),
        service_allocators: crate::controllers::services::ServiceAllocators::new(
            &cfg.service_cidr,
            &cfg.node_port_range,
        )
        .map_err(|e| ServerError::Bootstrap(format!("service ranges: {e}")))?,
        ca_pem: pki.ca_pem.clone(),
        simulated: cfg.sim.is_some(),
        in_place_resize: cfg.sim.as_ref().is_none_or(|s| s.in_place_resize),
        syncers: crate::syncer::Syncers::default(),
        service_account_tokens: api::tokens::ServiceAccountTokens::load_or_create(
            &cfg.data_dir.join("pki"),
        )
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?,
    });
    let api_ip = match advertised.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => std::net::Ipv4Addr::LOCALHOST,
    };
    bootstrap(&state, api_ip, advertised.port()).await?;
    crate::tls::write_kubeconfig(
        &cfg.kubeconfig_out,
        &server_url,
        &pki.ca_pem,
        "vkube-admin",
        &pki.admin_cert_pem,
        &pki.admin_key_pem,
    )?;

    let shutdown = CancellationToken::new();
    // Leader-only work: with a single-member group this node is always the leader.
    crate::controllers::crd::spawn_registry_sync(state.clone(), shutdown.clone());
    let mut controllers = crate::controllers::all(&state);
    if let Some(sim) = &cfg.sim {
        let now = jiff::Timestamp::now();
        for i in 0..sim.nodes {
            register_sim_node(&state, crate::sim::node_object(sim, i, now))
                .await
                .map_err(|e| ServerError::Bootstrap(format!("simulated node {i}: {e}")))?;
        }
        let sim = Arc::new(sim.clone());
        controllers.push(Arc::new(crate::scheduler::Scheduler::default()));
        controllers.push(Arc::new(crate::sim::SimKubelet(sim)));
        tracing::info!(
            nodes = cfg.sim.as_ref().map_or(0, |s| s.nodes),
            "simulating a physical cluster"
        );
    }
    if !cfg.clusters.is_empty() {
        controllers.push(Arc::new(crate::scheduler::Scheduler::default()));
        for cluster in &cfg.clusters {
            crate::syncer::spawn(
                state.clone(),
                cluster.clone(),
                cfg.id.clone(),
                cfg.clusters.len() == 1,
                shutdown.clone(),
            );
        }
    }
    crate::controllers::start(state.clone(), controllers, shutdown.clone());
    let task = tokio::spawn(api::serve(
        state,
        listener,
        pki.server_config()?,
        shutdown.clone(),
    ));
    tracing::info!(
        %addr,
        kubeconfig = %cfg.kubeconfig_out.display(),
        millis = started.elapsed().as_millis() as u64,
        "vkube API serving"
    );
    Ok(Running {
        addr,
        shutdown,
        task,
        raft,
        store,
    })
}

/// Registers a simulated node as a kubelet does: the object, then its status (a create
/// never sets status).
async fn register_sim_node(
    state: &Arc<ApiState>,
    node: serde_json::Value,
) -> Result<(), api::error::ApiError> {
    api::objects::ensure_exists(state, "", "v1", "nodes", "", node.clone()).await?;
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let Some(stored) = state.store.get("nodes", "", name) else {
        return Ok(());
    };
    let mut current = stored.value();
    current["status"] = node["status"].clone();
    api::objects::Internal::new(state, "", "v1", "nodes", "")?
        .update(&current, true)
        .await
        .map(|_| ())
}

/// What kube-apiserver and its controllers create at start: the system namespaces, the
/// `kubernetes` Service, the default RBAC roles and bindings.
async fn bootstrap(
    state: &Arc<ApiState>,
    api_ip: std::net::Ipv4Addr,
    api_port: u16,
) -> Result<(), ServerError> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}});
        api::objects::ensure_exists(state, "", "v1", "namespaces", "", obj)
            .await
            .map_err(|e| ServerError::Bootstrap(format!("namespace {ns}: {e}")))?;
    }
    // The `kubernetes` Service in `default`, pointing at this API server.
    let (service, endpoints) = crate::controllers::services::kubernetes_service(
        state.service_allocators.ips.kubernetes_ip(),
        api_ip,
        api_port,
    );
    api::objects::ensure_exists(state, "", "v1", "services", "default", service)
        .await
        .map_err(|e| ServerError::Bootstrap(format!("kubernetes service: {e}")))?;
    let subsets = endpoints.get("subsets").cloned();
    api::objects::ensure_exists(state, "", "v1", "endpoints", "default", endpoints)
        .await
        .map_err(|e| ServerError::Bootstrap(format!("kubernetes endpoints: {e}")))?;
    // The advertised address may have changed since the last start.
    if let Some(current) = state.store.get("endpoints", "default", "kubernetes") {
        let mut current = current.value();
        if current.get("subsets") != subsets.as_ref() {
            current["subsets"] = subsets.unwrap_or(serde_json::Value::Null);
            api::objects::Internal::new(state, "", "v1", "endpoints", "default")
                .map_err(|e| ServerError::Bootstrap(format!("kubernetes endpoints: {e}")))?
                .update(&current, false)
                .await
                .map_err(|e| ServerError::Bootstrap(format!("kubernetes endpoints: {e}")))?;
        }
    }
    let rbac_group = "rbac.authorization.k8s.io";
    for role in api::rbac::bootstrap_cluster_roles() {
        api::objects::ensure_exists(state, rbac_group, "v1", "clusterroles", "", role)
            .await
            .map_err(|e| ServerError::Bootstrap(format!("cluster role: {e}")))?;
    }
    for binding in api::rbac::bootstrap_cluster_role_bindings() {
        api::objects::ensure_exists(state, rbac_group, "v1", "clusterrolebindings", "", binding)
            .await
            .map_err(|e| ServerError::Bootstrap(format!("cluster role binding: {e}")))?;
    }
    Ok(())
}
