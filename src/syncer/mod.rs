//! One syncer per physical cluster: a kube-rs client built from that cluster's kubeconfig
//! (held by its task only), which
//!
//! - registers the cluster as one virtual Node (named after the cluster, labelled
//!   `topology.vkube.io/cluster=<name>` plus the configured labels and taints, capacity from
//!   the physical nodes when it may read them) and keeps its `Ready` condition from health
//!   checks: a cluster that stops answering is `NotReady` with the `unreachable` taint, not
//!   a crash;
//! - copies down the pods bound to that node and only the ConfigMaps and Secrets they
//!   reference, under the names of [`translate`], into the cluster's target namespace;
//! - copies pod status (phase, conditions, IPs, container statuses, the physical node as an
//!   annotation) back up;
//! - deletes both ways: a virtual pod being deleted is deleted physically with its grace
//!   period and finished virtually once the physical pod is gone; physical objects carrying
//!   this virtual cluster's labels without a live virtual owner are swept;
//! - relays `pods/log` to the physical pod.
//!
//! Each pass is level-triggered: it lists the managed physical objects (one namespace, one
//! label selector) and compares them with the virtual store, so a restart, a lost physical
//! object or a missed event converges on the next pass.

pub mod events;
pub mod informer;
pub mod translate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::config::{ClusterSection, TaintSection};
use crate::controllers::action::{Action, NODES, PODS};
use crate::controllers::execute;
use crate::controllers::replicaset::meta;
use translate::{RefKind, Target};

/// The label every virtual node of a physical cluster carries.
pub const CLUSTER_LABEL: &str = "topology.vkube.io/cluster";
/// The reporting component of the Events the syncer records about virtual objects.
const SYNCER: &str = "vkube-syncer";
/// Every physical call gives up after this long.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between passes (a pass also runs on every change to what it syncs).
const PASS_EVERY: Duration = Duration::from_millis(500);
/// The longest rest after a pass before changes are acted on.
const MAX_PASS_GAP: Duration = Duration::from_millis(200);
/// Requests to one physical cluster in flight at once (watches aside). Over HTTP/1.1 each
/// one in flight holds a connection of its own, and a burst of new ones opens as many TLS
/// connections: the bound keeps a rollout's creates from opening a hundred and more.
const PHYSICAL_CALLS: usize = 64;
/// How often an HTTP/2 connection to a physical cluster is pinged (a connection whose ping
/// goes unanswered for [`CALL_TIMEOUT`] is dropped, failing its requests and watches).
const PING_EVERY: Duration = Duration::from_secs(10);
/// Physical writes of one pass in flight at once.
const CONCURRENT_CALLS: usize = 16;
/// Newly bound pods waiting for the create lane; beyond this the passes create them.
const BOUND_QUEUE: usize = 4096;
/// Pods the create lane creates (and the status lane writes) at once.
const LANE_CALLS: usize = 64;
/// How often a status copy that lost a race (409) is tried on the virtual pod as it is then,
/// before it is left to the next pass.
const STATUS_ATTEMPTS: usize = 3;
/// The physical resources the syncer manages (each cached by an [`informer::Informer`]).
const MANAGED: [&str; 7] = [
    "pods",
    "secrets",
    "configmaps",
    "services",
    "endpoints",
    "persistentvolumeclaims",
    "events",
];
/// Failed health checks in a row before the virtual node goes `NotReady`.
const UNHEALTHY_AFTER: u32 = 3;
/// Lifetime of the ServiceAccount tokens minted for physical pods.
const POD_TOKEN_SECONDS: i64 = 3600;
/// A pod's token is replaced when less than this much of its life is left.
const POD_TOKEN_REFRESH_BEFORE: i64 = 720;
/// Annotation on a token Secret: when its tokens expire (Unix seconds; they are minted
/// together).
const ANN_TOKEN_EXPIRES: &str = "vkube.io/token-expires";
/// The most pods whose tokens one Secret holds (the create lane writes one Secret for the
/// pods of a namespace it creates at once, [`translate::token_key`] each).
const TOKENS_PER_SECRET: usize = 64;

/// A physical cluster from the config, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalCluster {
    /// Name (= its virtual node's name).
    pub name: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
    /// The context (None = current).
    pub context: Option<String>,
    /// Target namespace.
    pub namespace: String,
    /// Create the namespace if missing.
    pub create_namespace: bool,
    /// Labels of the virtual node.
    pub labels: BTreeMap<String, String>,
    /// Taints of the virtual node.
    pub taints: Vec<TaintSection>,
}

impl PhysicalCluster {
    /// Checks a `clusters:` entry: names, taints, and that the kubeconfig loads and has the
    /// context. Errors are (field, message).
    pub fn from_section(c: ClusterSection) -> Result<PhysicalCluster, (String, String)> {
        use crate::resources::validation::is_dns1123_label;
        if !is_dns1123_label(&c.name).is_empty() {
            return Err((
                "name".into(),
                format!(
                    "{:?} is not a DNS label (lower-case letters, digits, '-')",
                    c.name
                ),
            ));
        }
        let namespace = c.namespace.unwrap_or_else(|| "vkube".into());
        if !is_dns1123_label(&namespace).is_empty() {
            return Err((
                "namespace".into(),
                format!("{namespace:?} is not a valid namespace name"),
            ));
        }
        for (i, t) in c.taints.iter().enumerate() {
            if !matches!(
                t.effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            ) || t.key.is_empty()
            {
                return Err((
                    format!("taints[{i}]"),
                    "needs a key and an effect of NoSchedule, PreferNoSchedule or NoExecute".into(),
                ));
            }
        }
        let kc = kube::config::Kubeconfig::read_from(&c.kubeconfig).map_err(|e| {
            (
                "kubeconfig".into(),
                format!("cannot load {}: {e}", c.kubeconfig.display()),
            )
        })?;
        let context = c.context.clone().or(kc.current_context.clone());
        match &context {
            Some(ctx) if kc.contexts.iter().any(|n| &n.name == ctx) => {}
            Some(ctx) => {
                return Err((
                    "context".into(),
                    format!("{} has no context {ctx:?}", c.kubeconfig.display()),
                ));
            }
            None => {
                return Err((
                    "context".into(),
                    format!(
                        "{} has no current context; name one",
                        c.kubeconfig.display()
                    ),
                ));
            }
        }
        Ok(PhysicalCluster {
            name: c.name,
            kubeconfig: c.kubeconfig,
            context: c.context,
            namespace,
            create_namespace: c.create_namespace.unwrap_or(true),
            labels: c.labels,
            taints: c.taints,
        })
    }
}

/// Errors of a syncer.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The kubeconfig could not be turned into a client.
    #[error("cluster {cluster}: kubeconfig: {message}")]
    Client {
        /// Cluster.
        cluster: String,
        /// Why.
        message: String,
    },
    /// A physical call failed.
    #[error("cluster {cluster}: {method} {path}: {message}")]
    Call {
        /// Cluster.
        cluster: String,
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// HTTP status, if the API answered.
        code: Option<u16>,
        /// Why.
        message: String,
    },
    /// A virtual object could not be translated.
    #[error("cluster {cluster}: {0}", cluster = .1)]
    Translate(translate::TranslateError, String),
    /// A virtual write failed.
    #[error("virtual write: {0}")]
    Virtual(String),
}

impl SyncError {
    fn code(&self) -> Option<u16> {
        match self {
            SyncError::Call { code, .. } => *code,
            _ => None,
        }
    }
}

/// The physical side of one cluster: its client and where vkube's objects live there.
pub struct PhysicalApi {
    cluster: String,
    client: kube::Client,
    config: kube::Config,
    namespace: String,
    /// The client's connections (TLS, HTTP) and the informers' watches run on this thread.
    io: IoThread,
    /// Permits for requests in flight ([`PHYSICAL_CALLS`]; watches take none).
    calls: tokio::sync::Semaphore,
}

/// A physical cluster's own I/O thread (a one-worker runtime). On the control plane's
/// runtime, behind a thousand virtual writes, a watch's next chunk waited for every other
/// task: a physical pod's `Running` reached the status lane over a second late. A thread of
/// its own is woken by the kernel as soon as bytes arrive. The client's connections (socket,
/// TLS, HTTP/2) and the informers' watches run on it.
struct IoThread(Option<tokio::runtime::Runtime>);

impl IoThread {
    fn start(cluster: &str) -> std::io::Result<IoThread> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("vkube-io-{cluster}"))
            .enable_all()
            .build()?;
        Ok(IoThread(Some(rt)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the I/O runtime lives until the thread is dropped")
            .handle()
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        // Dropped from async code too: shut down without waiting for the thread.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// How to open a raw connection to a physical API server (for relaying upgraded streams).
pub struct RawConnection {
    /// The cluster's API URL.
    pub url: axum::http::Uri,
    /// TLS for it, with the kubeconfig's CA and client certificate.
    pub tls: rustls::ClientConfig,
    /// `Authorization` header value, when the kubeconfig uses a token.
    pub authorization: Option<String>,
}

/// A client of the API server `cfg` names that offers HTTP/2 as well as HTTP/1.1 (ALPN), as
/// client-go does: against a server that takes it, every request and watch shares one TLS
/// connection instead of holding one each (kube-rs's own client speaks only HTTP/1.1, so a
/// burst of creates opened a connection, and paid a handshake, per request in flight).
/// Otherwise as kube-rs builds it: the kubeconfig's CA, client certificate or token (exec
/// plugins included), impersonation and TLS server name. A dead connection is noticed by
/// HTTP/2 pings, or by the calls' and watches' own timeouts.
///
/// The connections live on `io`, the cluster's I/O runtime, whichever runtime a call comes
/// from: they are opened there (so their sockets belong to its reactor) and their tasks
/// (TLS, HTTP/2 framing) run there, as does the task that hands each request to them.
fn http2_client(
    cfg: &kube::Config,
    io: &tokio::runtime::Handle,
) -> Result<kube::Client, kube::Error> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use kube::client::ConfigExt;
    if let Some(proxy) = &cfg.proxy_url {
        // As before with kube-rs's client (built without its proxy features): refused.
        return Err(kube::Error::Service(
            format!("the kubeconfig's proxy-url {proxy} is not supported").into(),
        ));
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CALL_TIMEOUT));
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(cfg.rustls_client_config()?)
        .https_or_http();
    let builder = match &cfg.tls_server_name {
        Some(name) => {
            let name = rustls_pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                kube::Error::Service(format!("tls-server-name {name:?}: {e}").into())
            })?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let https = OnRuntime {
        inner: builder.enable_all_versions().wrap_connector(http),
        runtime: io.clone(),
    };
    let client: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(OnRuntime {
            inner: (),
            runtime: io.clone(),
        })
        .timer(hyper_util::rt::TokioTimer::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .http2_keep_alive_interval(Some(PING_EVERY))
        .http2_keep_alive_timeout(CALL_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build(https);
    let agent = user_agent();
    let service = tower::ServiceBuilder::new()
        .layer(cfg.base_uri_layer())
        .option_layer(cfg.auth_layer()?)
        .layer(cfg.extra_headers_layer()?)
        .map_request(move |mut req: Request<kube::client::Body>| {
            req.headers_mut()
                .entry(axum::http::header::USER_AGENT)
                .or_insert_with(|| agent.clone());
            req
        })
        .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        .service(client);
    // kube-rs queues each request for a task of the client's own (a buffer's worker), spawned
    // where the client is made: on the I/O runtime, beside the calls, not behind every task of
    // the control plane's runtime.
    let _on_io = io.enter();
    Ok(kube::Client::new(service, cfg.default_namespace.clone()))
}

/// The User-Agent of the syncer's requests, in client-go's form (`<program>/<version>
/// (<os>/<arch>) <what>`): a physical API server names the syncer in its logs and, as the
/// prefix before the first `/`, as the field manager of what it writes (`vkube-syncer`).
fn user_agent() -> axum::http::HeaderValue {
    let agent = format!(
        "vkube-syncer/v{} ({}/{}) vkube",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    axum::http::HeaderValue::from_str(&agent)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("vkube-syncer"))
}

/// Runs what it is given on `runtime`: as a connector, each connection is opened there; as
/// an executor, each connection's task is spawned there.
#[derive(Clone)]
struct OnRuntime<T> {
    inner: T,
    runtime: tokio::runtime::Handle,
}

impl<F> hyper::rt::Executor<F> for OnRuntime<()>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.runtime.spawn(fut);
    }
}

impl<C> tower::Service<axum::http::Uri> for OnRuntime<C>
where
    C: tower::Service<axum::http::Uri>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = C::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<C::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// A call given up (its timeout) gives up the opening with it.
    fn call(&mut self, uri: axum::http::Uri) -> Self::Future {
        let opening =
            tokio_util::task::AbortOnDropHandle::new(self.runtime.spawn(self.inner.call(uri)));
        Box::pin(async move {
            match opening.await {
                Ok(opened) => opened.map_err(Into::into),
                // The I/O runtime is shutting down with the syncer.
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// A client of `cluster` could not be set up.
fn client_error(cluster: &str, e: &dyn std::fmt::Display) -> SyncError {
    SyncError::Client {
        cluster: cluster.to_string(),
        message: e.to_string(),
    }
}

impl PhysicalApi {
    /// A client from the cluster's kubeconfig.
    pub async fn connect(c: &PhysicalCluster) -> Result<PhysicalApi, SyncError> {
        let err = |e: &dyn std::fmt::Display| client_error(&c.name, e);
        let kc = kube::config::Kubeconfig::read_from(&c.kubeconfig).map_err(|e| err(&e))?;
        let opts = kube::config::KubeConfigOptions {
            context: c.context.clone(),
            ..Default::default()
        };
        let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| err(&e))?;
        Self::with_config(&c.name, &c.namespace, cfg)
    }

    /// A client of cluster `cluster` as `cfg` describes it, for its namespace `namespace`,
    /// with its own I/O thread.
    fn with_config(
        cluster: &str,
        namespace: &str,
        mut cfg: kube::Config,
    ) -> Result<PhysicalApi, SyncError> {
        let err = |e: &dyn std::fmt::Display| client_error(cluster, e);
        cfg.connect_timeout = Some(CALL_TIMEOUT);
        cfg.read_timeout = Some(CALL_TIMEOUT);
        cfg.write_timeout = Some(CALL_TIMEOUT);
        let io = IoThread::start(cluster).map_err(|e| err(&e))?;
        let client = http2_client(&cfg, io.handle()).map_err(|e| err(&e))?;
        Ok(PhysicalApi {
            cluster: cluster.to_string(),
            client,
            config: cfg,
            namespace: namespace.to_string(),
            io,
            calls: tokio::sync::Semaphore::new(PHYSICAL_CALLS),
        })
    }

    /// Runs `task` on this cluster's I/O thread.
    fn spawn_io<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.io.handle().spawn(task);
    }

    /// The path of a subresource (`exec`, `attach`, `portforward`, `log`) of physical pod
    /// `name` in the target namespace.
    pub fn pod_subresource_path(&self, name: &str, subresource: &str) -> String {
        format!("{}/{subresource}", self.path("pods", Some(name)))
    }

    /// What a raw (upgradable) connection to this cluster's API server needs.
    pub fn raw_connection(&self) -> Result<RawConnection, SyncError> {
        use kube::client::ConfigExt;
        let tls = self
            .config
            .rustls_client_config()
            .map_err(|e| client_error(&self.cluster, &e))?;
        let authorization = self.config.auth_info.token.as_ref().map(|t| {
            use secrecy::ExposeSecret;
            format!("Bearer {}", t.expose_secret())
        });
        Ok(RawConnection {
            url: self.config.cluster_url.clone(),
            tls,
            authorization,
        })
    }

    fn path(&self, resource: &str, name: Option<&str>) -> String {
        let base = format!("/api/v1/namespaces/{}/{resource}", self.namespace);
        match name {
            Some(n) => format!("{base}/{n}"),
            None => base,
        }
    }

    /// One call, JSON in and out, with the call timeout.
    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, SyncError> {
        let err = |code: Option<u16>, message: String| SyncError::Call {
            cluster: self.cluster.clone(),
            method: method.to_string(),
            path: path.to_string(),
            code,
            message,
        };
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("content-type", content_type)
            .header("accept", "application/json")
            .body(bytes)
            .map_err(|e| err(None, e.to_string()))?;
        let client = self.client.clone();
        let call = async {
            // Waiting for a permit counts against the call's timeout too.
            let _permit = self.calls.acquire().await;
            // Sent, answered and parsed on the I/O thread, whatever the caller's runtime is
            // busy with; a call given up (its timeout) gives up the request with it.
            let request = async move { client.request::<informer::Lean>(req).await };
            tokio_util::task::AbortOnDropHandle::new(self.io.handle().spawn(request)).await
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Err(_) => Err(err(None, format!("no answer within {CALL_TIMEOUT:?}"))),
            Ok(Ok(Ok(informer::Lean(v)))) => Ok(v),
            Ok(Ok(Err(kube::Error::Api(s)))) => Err(err(Some(s.code), s.message.clone())),
            Ok(Ok(Err(e))) => Err(err(None, e.to_string())),
            // The I/O runtime is shutting down with the syncer.
            Ok(Err(e)) => Err(err(None, e.to_string())),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, SyncError> {
        self.call(Method::GET, path, "application/json", None).await
    }

    async fn list(&self, resource: &str, query: &str) -> Result<Vec<Value>, SyncError> {
        let list = self.list_object(resource, query).await?;
        Ok(list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    async fn create(&self, resource: &str, obj: &Value) -> Result<Value, SyncError> {
        self.call(
            Method::POST,
            &self.path(resource, None),
            "application/json",
            Some(obj),
        )
        .await
    }

    /// Creates `obj` unless a namesake exists (another pass, or an earlier life, made it):
    /// the created object, or `None` when there was a namesake.
    async fn create_if_absent(
        &self,
        resource: &str,
        obj: &Value,
    ) -> Result<Option<Value>, SyncError> {
        match self.create(resource, obj).await {
            Ok(created) => Ok(Some(created)),
            Err(e) if e.code() == Some(409) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn replace(&self, resource: &str, name: &str, obj: &Value) -> Result<Value, SyncError> {
        self.call(
            Method::PUT,
            &self.path(resource, Some(name)),
            "application/json",
            Some(obj),
        )
        .await
    }

    async fn patch(&self, resource: &str, name: &str, patch: &Value) -> Result<Value, SyncError> {
        self.call(
            Method::PATCH,
            &self.path(resource, Some(name)),
            "application/strategic-merge-patch+json",
            Some(patch),
        )
        .await
    }

    async fn delete(
        &self,
        resource: &str,
        name: &str,
        uid: &str,
        grace: Option<i64>,
    ) -> Result<(), SyncError> {
        let mut opts =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}});
        if let Some(g) = grace {
            opts["gracePeriodSeconds"] = json!(g);
        }
        match self
            .call(
                Method::DELETE,
                &self.path(resource, Some(name)),
                "application/json",
                Some(&opts),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The whole list object (items and the list's resourceVersion) of the objects `query`
    /// (a label or field selector, URL-encoded: see [`Syncer::query`]) selects.
    async fn list_object(&self, resource: &str, query: &str) -> Result<Value, SyncError> {
        let path = format!("{}?{query}", self.path(resource, None));
        self.get(&path).await
    }

    /// A watch of the objects `query` selects from resourceVersion `rv`.
    async fn watch(
        &self,
        resource: &str,
        query: &str,
        rv: &str,
        timeout: Duration,
    ) -> Result<
        impl futures::Stream<Item = Result<kube::api::WatchEvent<Value>, kube::Error>> + use<>,
        SyncError,
    > {
        let path = format!(
            "{}?watch=true&allowWatchBookmarks=true&timeoutSeconds={}&resourceVersion={}&{query}",
            self.path(resource, None),
            timeout.as_secs(),
            rv,
        );
        let err = |message: String| SyncError::Call {
            cluster: self.cluster.clone(),
            method: "WATCH".into(),
            path: path.clone(),
            code: None,
            message,
        };
        let req = Request::builder()
            .uri(&path)
            .body(Vec::new())
            .map_err(|e| err(e.to_string()))?;
        let events = self
            .client
            .request_events::<informer::Lean>(req)
            .await
            .map_err(|e| err(e.to_string()))?;
        Ok(futures::StreamExt::map(events, |e| e.map(informer::unlean)))
    }

    /// Healthy = the API answers `/version`.
    async fn healthy(&self) -> bool {
        self.get("/version").await.is_ok()
    }

    /// The target namespace exists (created when allowed).
    async fn ensure_namespace(&self, create: bool) -> Result<(), SyncError> {
        let path = format!("/api/v1/namespaces/{}", self.namespace);
        match self.get(&path).await {
            Ok(_) => Ok(()),
            // Namespaced rights only (deploy/physical-rbac.yaml): the namespace cannot be
            // read, so it is taken to exist; writes into it say so if it does not.
            Err(e) if e.code() == Some(403) => {
                tracing::info!(cluster = %self.cluster, namespace = %self.namespace, "cannot read the target namespace (namespaced rights only); assuming it exists");
                Ok(())
            }
            Err(e) if e.code() == Some(404) && create => {
                let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}});
                match self
                    .call(
                        Method::POST,
                        "/api/v1/namespaces",
                        "application/json",
                        Some(&ns),
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some(409) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Allocatable of the physical nodes that are Ready, summed; `None` when nodes may not be
    /// read (the namespaced RBAC the syncer needs does not include them).
    async fn capacity(&self) -> Option<Value> {
        let nodes = self.get("/api/v1/nodes").await.ok()?;
        let mut cpu = 0i64;
        let mut mem = 0i64;
        let mut pods = 0i64;
        for n in nodes
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !crate::scheduler::node_ready(n) {
                continue;
            }
            let a = |k: &str, scale| {
                n.pointer("/status/allocatable")
                    .and_then(|x| x.get(k))
                    .and_then(Value::as_str)
                    .map_or(0, |q| crate::scheduler::parse_quantity(q, scale))
            };
            cpu += a("cpu", 1000);
            mem += a("memory", 1);
            pods += a("pods", 1);
        }
        Some(
            json!({"cpu": format!("{cpu}m"), "memory": format!("{}Ki", mem / 1024), "pods": pods.to_string()}),
        )
    }

    /// `pods/<name>/log` of a physical pod, streamed.
    pub async fn pod_log(
        &self,
        name: &str,
        query: &str,
    ) -> Result<axum::response::Response, SyncError> {
        let path = format!("{}/log?{query}", self.path("pods", Some(name)));
        let err = |code: Option<u16>, message: String| SyncError::Call {
            cluster: self.cluster.clone(),
            method: "GET".into(),
            path: path.clone(),
            code,
            message,
        };
        let req = Request::builder()
            .uri(&path)
            .body(kube::client::Body::empty())
            .map_err(|e| err(None, e.to_string()))?;
        let resp = tokio::time::timeout(CALL_TIMEOUT, self.client.send(req))
            .await
            .map_err(|_| err(None, format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| err(None, e.to_string()))?;
        let (parts, body) = resp.into_parts();
        Ok(axum::response::Response::from_parts(
            parts,
            axum::body::Body::new(body),
        ))
    }

    /// One request relayed as is (the `proxy` subresources): `path` is below the target
    /// namespace (`pods/<name>:<port>/proxy/…?…`). The answer comes back whatever its status
    /// (the body unread, streamed); its head within the call timeout.
    pub async fn relay(
        &self,
        method: Method,
        path: &str,
        headers: &[(axum::http::HeaderName, axum::http::HeaderValue)],
        body: bytes::Bytes,
    ) -> Result<axum::response::Response, SyncError> {
        let path = format!("/api/v1/namespaces/{}/{path}", self.namespace);
        let err = |message: String| SyncError::Call {
            cluster: self.cluster.clone(),
            method: method.to_string(),
            path: path.clone(),
            code: None,
            message,
        };
        let mut builder = Request::builder().method(method.clone()).uri(&path);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let req = builder
            .body(kube::client::Body::from(body))
            .map_err(|e| err(e.to_string()))?;
        let resp = tokio::time::timeout(CALL_TIMEOUT, self.client.send(req))
            .await
            .map_err(|_| err(format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| err(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        Ok(axum::response::Response::from_parts(
            parts,
            axum::body::Body::new(body),
        ))
    }
}

/// The syncers running in this process, by cluster (virtual node) name, for the API's
/// streaming subresources.
#[derive(Default)]
pub struct Syncers {
    by_node: std::sync::RwLock<HashMap<String, Arc<PhysicalApi>>>,
    id: std::sync::RwLock<String>,
}

impl Syncers {
    /// The virtual cluster id the syncers name physical objects with.
    pub fn vcluster_id(&self) -> String {
        self.id
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The physical side of virtual node `node`.
    pub fn for_node(&self, node: &str) -> Option<Arc<PhysicalApi>> {
        self.by_node
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(node)
            .cloned()
    }

    fn insert(&self, node: &str, api: Arc<PhysicalApi>) {
        self.by_node
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_string(), api);
    }
}

/// Starts the syncer of `cluster`; it stops when `stop` is cancelled.
/// `sole`: this is the only physical cluster (virtual Services then take its ClusterIPs).
pub fn spawn(
    app: Arc<ApiState>,
    cluster: PhysicalCluster,
    id: String,
    sole: bool,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let api = match PhysicalApi::connect(&cluster).await {
            Ok(a) => Arc::new(a),
            Err(e) => {
                tracing::error!(error = %e, "syncer cannot start");
                return;
            }
        };
        app.syncers.insert(&cluster.name, api.clone());
        *app.syncers
            .id
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = id.clone();
        let (host, port) = advertised(&app.server_address);
        let target = Target {
            vcluster_id: id,
            namespace: cluster.namespace.clone(),
            api_host: host,
            api_port: port,
            dns: None,
        };
        let (published, target_rx) = tokio::sync::watch::channel(None);
        let mut s = Syncer {
            app,
            cluster,
            api,
            target,
            published,
            in_flight: InFlight::default(),
            failures: 0,
            last_failure: None,
            ready: None,
            events: events::EventRelay::default(),
            in_step: HashMap::new(),
            recreated: Default::default(),
            references: HashMap::new(),
            sole,
            informers: MANAGED
                .iter()
                .map(|r| match *r {
                    "pods" | "events" => (*r, informer::Informer::tracking(r)),
                    _ => (*r, informer::Informer::new(r)),
                })
                .collect(),
            namespace_ok: false,
        };
        tracing::info!(cluster = %s.cluster.name, namespace = %s.cluster.namespace, "syncer started");
        // Passes run when something they sync changes, on either side, and every PASS_EVERY.
        let changed = Arc::new(Notify::new());
        let (bound_tx, bound_rx) = tokio::sync::mpsc::channel(BOUND_QUEUE);
        let load = Arc::new(LaneLoad::default());
        tokio::spawn(watch_virtual(
            s.app.clone(),
            changed.clone(),
            s.cluster.name.clone(),
            bound_tx,
            s.in_flight.clone(),
            stop.clone(),
        ));
        let lane = CreateLane {
            app: s.app.clone(),
            api: s.api.clone(),
            informers: s.informers.clone(),
            target: target_rx,
            node: s.cluster.name.clone(),
            in_flight: s.in_flight.clone(),
            load: load.clone(),
        };
        tokio::spawn(lane.run(bound_rx, stop.clone()));
        if let Some(pods) = s.informers.get("pods") {
            tokio::spawn(status_lane(
                s.app.clone(),
                pods.clone(),
                s.cluster.name.clone(),
                s.target.vcluster_id.clone(),
                load.clone(),
                stop.clone(),
            ));
        }
        for (resource, informer) in &s.informers {
            tracing::debug!(resource, "watching physical objects");
            s.api.spawn_io(informer.clone().run(
                s.api.clone(),
                s.query(resource),
                changed.clone(),
                stop.clone(),
            ));
        }
        loop {
            let started = std::time::Instant::now();
            if let Err(e) = s.pass().await {
                tracing::warn!(error = %e, "sync pass failed; retrying");
            }
            // A busy syncer leaves the CPU to the rest of the control plane for as long as
            // its last pass took (so it uses at most about half a core); changes meanwhile
            // are batched into the next pass.
            let rest = started.elapsed().min(MAX_PASS_GAP);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(rest) => {}
            }
            while pass_waits(s.lanes_busy(&load), started.elapsed()) {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = load.idle.notified() => {}
                    _ = tokio::time::sleep(PASS_EVERY.saturating_sub(started.elapsed())) => {}
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PASS_EVERY) => {}
                _ = changed.notified() => {}
            }
        }
    });
}

/// Runs `work` with at most [`CONCURRENT_CALLS`] in flight; every item runs even when one
/// fails, and the first failure is returned.
async fn run_all(work: Vec<BoxFuture<'_, Result<(), SyncError>>>) -> Result<(), SyncError> {
    use futures::StreamExt;
    let results: Vec<Result<(), SyncError>> = futures::stream::iter(work)
        .buffer_unordered(CONCURRENT_CALLS)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Copies physical pod status up as soon as the pods informer sees it change, so a pod's
/// `Running` does not wait for the next pass; the passes still check every pod. Only what a
/// kubelet reported is hurried: a physical pod that was merely bound to a node changes
/// nothing the virtual pod lacks but a condition's time, and is left to the passes (which
/// usually find it started by then, saving a write).
///
/// Up to [`LANE_CALLS`] pods are written at once, each as soon as a slot frees (a Raft
/// commit carries every write proposed meanwhile, so more in flight means fewer rounds). A
/// pod is written by one call at a time: one that changes while written waits for that call,
/// and is then written as it is by then.
async fn status_lane(
    app: Arc<ApiState>,
    pods: Arc<informer::Informer>,
    node: String,
    id: String,
    load: Arc<LaneLoad>,
    stop: CancellationToken,
) {
    use futures::StreamExt;
    let (app, pods) = (&app, &*pods);
    let mut running = futures::stream::FuturesUnordered::new();
    // Changed physical pods not yet written, by name, oldest first.
    let mut waiting: HashMap<String, Arc<Value>> = HashMap::new();
    let mut order: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut writing: HashSet<String> = HashSet::new();
    loop {
        for p in pods.take_changed() {
            if kubelet_reported(&p) {
                let name = meta(&p, "name").to_string();
                if waiting.insert(name.clone(), p).is_none() {
                    order.push_back(name);
                }
            }
        }
        let mut deferred = Vec::new();
        while running.len() < LANE_CALLS
            && let Some(name) = order.pop_front()
        {
            if writing.contains(&name) {
                deferred.push(name);
                continue;
            }
            let Some(p) = waiting.remove(&name) else {
                continue;
            };
            if let Some(v) = bound_virtual(app, &p, &node, &id) {
                writing.insert(name.clone());
                running.push(async move {
                    if let Err(e) = status_up(app, &v, &p, Some(pods)).await {
                        tracing::debug!(error = %e, "pod status not copied up; the next pass retries");
                    }
                    name
                });
            }
        }
        order.extend(deferred);
        let held = waiting.len() + writing.len();
        let was = load
            .status_held
            .swap(held, std::sync::atomic::Ordering::Relaxed);
        if held == 0 && was > 0 {
            load.idle.notify_one();
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = pods.wake.notified() => {}
            Some(name) = running.next(), if !running.is_empty() => {
                writing.remove(&name);
            }
        }
    }
}

/// The live virtual pod the physical pod `p` was made for, if it is still bound to `node`.
fn bound_virtual(app: &ApiState, p: &Value, node: &str, id: &str) -> Option<Arc<Value>> {
    let (ns, name, uid) = translate::virtual_key(p, id)?;
    let v = app.store.get("pods", ns, name)?;
    if v.uid != uid {
        return None; // the physical pod of an earlier namesake
    }
    let v = v.parsed();
    let bound_here = v.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node);
    (bound_here && !deleting(&v)).then_some(v)
}

/// Whether a physical pod's status holds more than its scheduling: a phase past `Pending` or
/// container statuses.
fn kubelet_reported(p: &Value) -> bool {
    let phase = p.pointer("/status/phase").and_then(Value::as_str);
    !matches!(phase, None | Some("Pending"))
        || p.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty())
}

/// Hands `ev`'s pod to the create lane the first time it is seen live and bound to `node`;
/// from then until the lane is done with it, it is in flight (passes leave it to the lane).
fn hand_over_bound(
    ev: &crate::store::WatchEvent,
    node: &str,
    handed: &mut HashSet<String>,
    bound: &tokio::sync::mpsc::Sender<Arc<Value>>,
    in_flight: &InFlight,
) {
    let pod = &ev.object;
    if ev.kind == crate::store::EventType::Deleted {
        handed.remove(&pod.uid);
        return;
    }
    if pod.deleting || handed.contains(&pod.uid) {
        return;
    }
    // Most versions are not the one bound here: they are not parsed whole.
    let placed = crate::scheduler::placement(&pod.json);
    if placed.node.as_deref() == Some(node) && !placed.finished {
        let v = pod.parsed();
        handed.insert(pod.uid.clone());
        let mut writing = in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        writing.insert(pod.uid.clone());
        if bound.try_send(v).is_err() {
            writing.remove(&pod.uid);
            tracing::debug!(pod = %pod.name, "create lane full; a pass creates the pod");
        }
    }
}

/// Virtual pod uids handed to the create lane that it has not finished (queued or being
/// written); passes leave them be.
type InFlight = Arc<std::sync::Mutex<HashSet<String>>>;

/// How much the lanes hold, for the passes to wait on: the pods the create lane has yet to
/// finish are its [`InFlight`]; the status lane counts the pods it holds (waiting or being
/// written). `idle` is notified when either lane lets go of its last pod.
#[derive(Default)]
struct LaneLoad {
    status_held: std::sync::atomic::AtomicUsize,
    idle: Notify,
}

/// Whether the pass loop waits for the lanes before its next pass: while they hold pods (a
/// burst of new pods, or of statuses to copy up, which keeps changing what a pass would
/// compare and which the lanes see to without it), up to [`PASS_EVERY`] after the last pass
/// began, so that the rest (deletions, events, Services, references) waits no longer than
/// it would between quiet passes.
fn pass_waits(lanes_busy: bool, since_last_pass: Duration) -> bool {
    lanes_busy && since_last_pass < PASS_EVERY
}

/// Creates the physical pods of newly bound virtual pods as they are bound (up to
/// [`LANE_CALLS`] batches at once), instead of at the next pass: a pass waits for all its
/// writes, so a pod bound meanwhile waited for that pass and the next. A batch is the pods
/// handed over since the last one was taken (up to [`TOKENS_PER_SECRET`]): one token Secret
/// per namespace holds the tokens of the batch's pods there, written beside them. Only pods
/// whose physical pod is absent, whose referenced ConfigMaps and Secrets are in step
/// physically and that use no claims. Whatever it leaves (or fails at) the passes do.
/// Nothing runs before the first pass has published the target.
struct CreateLane {
    app: Arc<ApiState>,
    api: Arc<PhysicalApi>,
    informers: HashMap<&'static str, Arc<informer::Informer>>,
    target: tokio::sync::watch::Receiver<Option<Target>>,
    node: String,
    in_flight: InFlight,
    load: Arc<LaneLoad>,
}

impl CreateLane {
    async fn run(self, bound: tokio::sync::mpsc::Receiver<Arc<Value>>, stop: CancellationToken) {
        use futures::StreamExt;
        let pods =
            futures::stream::unfold(
                bound,
                |mut rx| async move { rx.recv().await.map(|v| (v, rx)) },
            );
        let this = &self;
        let work = pods
            .ready_chunks(TOKENS_PER_SECRET)
            .for_each_concurrent(LANE_CALLS, |batch| async move {
                if let Err(e) = this.create(&batch).await {
                    tracing::debug!(error = %e, "physical pods not created at once; a pass retries");
                }
                let mut writing = this
                    .in_flight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for v in &batch {
                    writing.remove(meta(v, "uid"));
                }
                if writing.is_empty() {
                    this.load.idle.notify_one();
                }
            });
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = work => {}
        }
    }

    /// The cached physical object: `None` while its informer is not synced.
    fn cached(&self, resource: &str, name: &str) -> Option<Option<Arc<Value>>> {
        self.informers.get(resource)?.lookup(name)
    }

    /// Creates `obj` unless a namesake exists and caches it; whether it was created.
    async fn create_cached(&self, resource: &str, obj: &Value) -> Result<bool, SyncError> {
        let created = self.api.create_if_absent(resource, obj).await?;
        let made = created.is_some();
        if let (Some(created), Some(i)) = (created, self.informers.get(resource)) {
            i.note_created(created);
        }
        Ok(made)
    }

    /// The pod handed over as it is now, when the lane can create it: still the same one,
    /// live and bound here, with no physical pod and what it references in step physically.
    fn ready(&self, target: &Target, handed: &Value) -> Result<Option<Arc<Value>>, SyncError> {
        let (ns, name) = (meta(handed, "namespace"), meta(handed, "name"));
        let Some(v) = self.app.store.get("pods", ns, name) else {
            return Ok(None);
        };
        let v = v.parsed();
        if meta(&v, "uid") != meta(handed, "uid")
            || deleting(&v)
            || terminal(&v)
            || v.pointer("/spec/nodeName").and_then(Value::as_str) != Some(self.node.as_str())
        {
            return Ok(None);
        }
        let pname = translate::physical_name(name, ns, &target.vcluster_id);
        if !matches!(self.cached("pods", &pname), Some(None)) {
            return Ok(None); // There is one (or the cache cannot tell): the passes decide.
        }
        for (kind, rname) in translate::referenced_objects(&v) {
            if kind == RefKind::PersistentVolumeClaim {
                return Ok(None);
            }
            let Some(desired) = physical_copy(&self.app, target, kind, ns, &rname, &self.node)?
            else {
                return Ok(None);
            };
            match self.cached(kind.resource(), meta(&desired, "name")) {
                Some(Some(cur)) if !content_differs(&cur, &desired) => {}
                _ => return Ok(None),
            }
        }
        Ok(Some(v))
    }

    async fn create(&self, batch: &[Arc<Value>]) -> Result<(), SyncError> {
        let Some(target) = self.target.borrow().clone() else {
            return Ok(());
        };
        let mut plain = Vec::new();
        // Per namespace, the pods mounting a token.
        let mut tokened: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
        for handed in batch {
            if let Some(v) = self.ready(&target, handed)? {
                if translate::has_token_volume(&v) {
                    tokened
                        .entry(meta(&v, "namespace").to_string())
                        .or_default()
                        .push(v);
                } else {
                    plain.push(v);
                }
            }
        }
        let mut pods: Vec<(Arc<Value>, Option<String>)> =
            plain.into_iter().map(|v| (v, None)).collect();
        let mut secrets = Vec::new();
        let now = jiff::Timestamp::now().as_second();
        for (ns, vs) in tokened {
            // Named after a pod of the batch; one taken already is left to the passes.
            let Some(sname) = vs
                .iter()
                .map(|v| token_secret_name(v, &target.vcluster_id))
                .find(|n| matches!(self.cached("secrets", n), Some(None)))
            else {
                continue;
            };
            let mut tokens = Vec::with_capacity(vs.len());
            for v in vs {
                match mint_token(&self.app, &v) {
                    Ok(token) => {
                        tokens.push((meta(&v, "uid").to_string(), token));
                        pods.push((v, Some(sname.clone())));
                    }
                    // Left to the passes, which log it.
                    Err(e) => tracing::debug!(error = %e, "no token minted for a pod at once"),
                }
            }
            if tokens.is_empty() {
                continue;
            }
            secrets.push(token_secret(&self.app, &target, &sname, &ns, &tokens, now));
        }
        let mut ppods = Vec::with_capacity(pods.len());
        for (v, secret) in &pods {
            let ppod = translate::translate_pod(v, &target, secret.as_deref())
                .map(translate::for_create)
                .map_err(|e| SyncError::Translate(e, self.node.clone()))?;
            ppods.push(ppod);
        }
        // The Secrets beside the pods (a kubelet waits for a Secret it must mount).
        let secrets_done =
            futures::future::join_all(secrets.iter().map(|s| self.create_cached("secrets", s)));
        let pods_done =
            futures::future::join_all(ppods.iter().map(|p| self.create_cached("pods", p)));
        let (secrets_done, pods_done) = futures::join!(secrets_done, pods_done);
        for done in secrets_done {
            done?;
        }
        for ((v, _), done) in pods.iter().zip(pods_done) {
            if done? {
                let (ns, name) = (meta(v, "namespace"), meta(v, "name"));
                tracing::debug!(pod = %format!("{ns}/{name}"), cluster = %self.node, "created physical pod");
            }
        }
        Ok(())
    }
}

/// Wakes the syncer on every virtual change to what it syncs (pods, the ConfigMaps and
/// Secrets they use, Services, ServiceAccounts whose tokens they mount).
/// Also hands each pod newly bound to this cluster's `node` to the create lane (once per
/// uid; when the lane's queue is full the pod is left to the passes).
async fn watch_virtual(
    app: Arc<ApiState>,
    changed: Arc<Notify>,
    node: String,
    bound: tokio::sync::mpsc::Sender<Arc<Value>>,
    in_flight: InFlight,
    stop: CancellationToken,
) {
    // Pods already handed over, by uid (bounded by the live pods: removed on deletion).
    let mut handed: HashSet<String> = HashSet::new();
    loop {
        let Ok(start) = app.store.hub().subscribe(None) else {
            return;
        };
        let mut live = start.live;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => return,
                ev = live.recv() => ev,
            };
            match ev {
                Ok(ev) => {
                    if matches!(
                        &*ev.resource,
                        "pods" | "configmaps" | "secrets" | "services" | "serviceaccounts"
                    ) {
                        changed.notify_one();
                    }
                    if &*ev.resource == "pods" {
                        hand_over_bound(&ev, &node, &mut handed, &bound, &in_flight);
                    }
                }
                // Fell behind: a pass covers everything anyway.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    changed.notify_one();
                    handed.clear();
                    break;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn advertised(address: &str) -> (String, u16) {
    if let Ok(a) = address.parse::<std::net::SocketAddr>() {
        return (a.ip().to_string(), a.port());
    }
    match address.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(443)),
        None => (address.to_string(), 443),
    }
}

struct Syncer {
    app: Arc<ApiState>,
    cluster: PhysicalCluster,
    api: Arc<PhysicalApi>,
    target: Target,
    /// The target as of the last pass, for the create lane.
    published: tokio::sync::watch::Sender<Option<Target>>,
    /// What the create lane is writing.
    in_flight: InFlight,
    failures: u32,
    /// When the last failed health check was counted.
    last_failure: Option<std::time::Instant>,
    /// List + watch caches of the managed physical objects.
    informers: HashMap<&'static str, Arc<informer::Informer>>,
    /// Which physical events were copied up, and which wait for their pod.
    events: events::EventRelay,
    /// Pods found in step (nothing to patch down or copy up) and the versions they were at:
    /// virtual uid → (virtual, physical resourceVersion). A pass skips a pod whose versions
    /// are both unchanged since, so steady pods cost a lookup, not a comparison.
    in_step: HashMap<String, (String, String)>,
    /// Virtual pod uid → the resources (a resize body) its physical pod was last recreated
    /// for because the cluster refused to resize it in place.
    recreated: std::sync::Mutex<HashMap<String, String>>,
    /// By virtual pod uid: the objects the pod references, at the resourceVersion they were
    /// read from (a pod's spec changes only with its version).
    references: HashMap<String, (String, Vec<(RefKind, String)>)>,
    /// The only physical cluster: virtual Services take its ClusterIPs.
    sole: bool,
    /// The Ready state last written to the virtual node.
    ready: Option<bool>,
    namespace_ok: bool,
}

impl Syncer {
    /// Whether either lane holds pods.
    fn lanes_busy(&self, load: &LaneLoad) -> bool {
        load.status_held.load(std::sync::atomic::Ordering::Relaxed) > 0
            || !self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_empty()
    }

    /// The uids of the pods the create lane has yet to finish.
    fn lane_writing(&self) -> HashSet<String> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn pass(&mut self) -> Result<(), SyncError> {
        let healthy = self.api.healthy().await;
        // Passes run on events too: failures count at most once per PASS_EVERY, so the
        // time to NotReady does not depend on how busy the virtual cluster is.
        if healthy {
            self.failures = 0;
        } else if self
            .last_failure
            .is_none_or(|at| at.elapsed() >= PASS_EVERY)
        {
            self.failures += 1;
            self.last_failure = Some(std::time::Instant::now());
        }
        let ready = healthy || self.failures < UNHEALTHY_AFTER && self.ready == Some(true);
        if self.ready != Some(ready) {
            let capacity = if healthy {
                self.api.capacity().await
            } else {
                None
            };
            self.register_node(ready, capacity).await?;
            self.ready = Some(ready);
            tracing::info!(cluster = %self.cluster.name, ready, "virtual node condition");
        }
        if !healthy {
            // Whatever the caches saw may be stale when the cluster answers again.
            for i in self.informers.values() {
                i.unsync();
            }
            return Ok(());
        }
        if !self.namespace_ok {
            self.api
                .ensure_namespace(self.cluster.create_namespace)
                .await?;
            self.namespace_ok = true;
        }
        let started = std::time::Instant::now();
        let result = self.sync_pods().await;
        tracing::debug!(cluster = %self.cluster.name, millis = started.elapsed().as_millis() as u64, "sync pass");
        result
    }

    /// Creates or updates the virtual node of this cluster.
    async fn register_node(&self, ready: bool, capacity: Option<Value>) -> Result<(), SyncError> {
        let name = &self.cluster.name;
        let mut labels = serde_json::Map::new();
        labels.insert(CLUSTER_LABEL.into(), json!(name));
        labels.insert("kubernetes.io/hostname".into(), json!(name));
        labels.insert("kubernetes.io/os".into(), json!("linux"));
        labels.insert("type".into(), json!("vkube-physical-cluster"));
        for (k, v) in &self.cluster.labels {
            labels.insert(k.clone(), json!(v));
        }
        let mut taints: Vec<Value> = self
            .cluster
            .taints
            .iter()
            .map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect}))
            .collect();
        let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .map(|t| t.to_string())
            .unwrap_or_default();
        if !ready {
            taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": now}));
            taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": now}));
        }
        let existing = self.app.store.get("nodes", "", name).map(|o| o.value());
        let capacity = capacity
            .or_else(|| {
                existing
                    .as_ref()
                    .and_then(|n| n.pointer("/status/capacity").cloned())
            })
            .unwrap_or_else(|| json!({"cpu": "1000", "memory": "4096Gi", "pods": "10000"}));
        let (status, reason, message) = if ready {
            (
                "True",
                "SyncerReady",
                format!("physical cluster {name} answers"),
            )
        } else {
            (
                "Unknown",
                "NodeStatusUnknown",
                format!("physical cluster {name} does not answer"),
            )
        };
        let status = json!({
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message,
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.33.0-vkube", "operatingSystem": "linux", "architecture": "amd64",
                         "osImage": format!("physical cluster {name}"), "kernelVersion": "", "containerRuntimeVersion": "",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
        });
        let mut node = match existing {
            Some(n) => n,
            None => {
                let fresh = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
                crate::api::objects::ensure_exists(&self.app, "", "v1", "nodes", "", fresh)
                    .await
                    .map_err(|e| SyncError::Virtual(e.to_string()))?;
                self.app
                    .store
                    .get("nodes", "", name)
                    .map(|o| o.value())
                    .ok_or_else(|| SyncError::Virtual(format!("node {name} vanished")))?
            }
        };
        node["metadata"]["labels"] = Value::Object(labels);
        node["spec"]["taints"] = Value::Array(taints);
        self.write(Action::Update {
            kind: NODES,
            namespace: String::new(),
            object: node.clone(),
        })
        .await?;
        let mut node = self
            .app
            .store
            .get("nodes", "", name)
            .map(|o| o.value())
            .unwrap_or(node);
        node["status"] = status;
        self.write(Action::UpdateStatus {
            kind: NODES,
            namespace: String::new(),
            object: node,
        })
        .await
    }

    async fn write(&self, action: Action) -> Result<(), SyncError> {
        execute(&self.app, &action)
            .await
            .map_err(|e| SyncError::Virtual(e.to_string()))
    }

    /// The managed physical objects of `resource`: from its cache when synced, else listed.
    async fn managed(&self, resource: &str) -> Result<Vec<Arc<Value>>, SyncError> {
        if let Some(objects) = self.informers.get(resource).and_then(|i| i.snapshot()) {
            return Ok(objects);
        }
        let listed = self.api.list(resource, &self.query(resource)).await?;
        Ok(listed.into_iter().map(Arc::new).collect())
    }

    /// The query selecting the physical objects of `resource` the syncer reads: those it
    /// labelled; for Events, which carry no label of ours, the namespace's (it is vkube's)
    /// about pods, but the physical scheduler's `Scheduled` (never copied up, see
    /// [`translate::copied_up`]: the physical cluster need not send them).
    fn query(&self, resource: &str) -> String {
        if resource == "events" {
            return "fieldSelector=involvedObject.kind%3DPod%2Creason%21%3DScheduled".into();
        }
        format!(
            "labelSelector={}%3D{}",
            translate::LABEL_MANAGED_BY.replace('/', "%2F"),
            self.target.vcluster_id
        )
    }

    async fn sync_pods(&mut self) -> Result<(), SyncError> {
        let id = self.target.vcluster_id.clone();
        let node = self.cluster.name.clone();
        // The physical pods and Secrets first: each pod and token Secret was created for a
        // virtual pod already bound here (by a pass or the create lane), so reading the
        // virtual pods after them finds that pod, and what was made for it is no stray.
        let ppods = self.managed("pods").await?;
        let psecrets = self.managed("secrets").await?;
        let vpods: Vec<Arc<Value>> = self
            .app
            .store
            .list("pods", None, None, 0, &|_| true)
            .items
            .iter()
            .map(|o| o.parsed())
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node.as_str()))
            .collect();
        // The physical pods by name, and by the uid of the virtual pod they were written for.
        let mut physical: HashMap<&str, &Value> = HashMap::with_capacity(ppods.len());
        let mut by_uid: HashMap<&str, &Value> = HashMap::with_capacity(ppods.len());
        for p in &ppods {
            physical.insert(meta(p, "name"), p);
            if let Some((_, _, uid)) = translate::virtual_key(p, &id) {
                by_uid.insert(uid, p);
            }
        }

        // What the live pods reference: copied down, the rest removed.
        let mut wanted: HashSet<(RefKind, String, String)> = HashSet::new();
        for v in vpods.iter().filter(|v| !deleting(v)) {
            let (uid, rv) = (meta(v, "uid"), meta(v, "resourceVersion"));
            if self.references.get(uid).is_none_or(|(at, _)| at != rv) {
                let refs = translate::referenced_objects(v);
                self.references
                    .insert(uid.to_string(), (rv.to_string(), refs));
            }
            let refs = &self.references[uid];
            for (kind, name) in &refs.1 {
                wanted.insert((*kind, meta(v, "namespace").to_string(), name.clone()));
            }
        }
        self.sync_references(&wanted).await?;
        self.sync_claims(&wanted).await?;
        self.sync_services().await?;
        self.target.dns = self.virtual_dns();
        self.published.send_if_modified(|t| {
            let stale = t.as_ref() != Some(&self.target);
            if stale {
                *t = Some(self.target.clone());
            }
            stale
        });
        // Every pod's physical call(s) are independent: they run concurrently, token Secrets
        // beside the pods that mount them (a kubelet waits for a Secret it must mount).
        let settled: std::sync::Mutex<Vec<(String, (String, String))>> = Default::default();
        let settled = &settled;
        let this: &Syncer = self;
        let mut work: Vec<BoxFuture<'_, Result<(), SyncError>>> = Vec::new();
        let in_flight = this.lane_writing();
        let token_secrets =
            this.sync_token_secrets(&vpods, &by_uid, psecrets, &in_flight, &mut work);
        // The physical pods some live virtual pod owns; the others are strays.
        let mut kept: HashSet<&str> = HashSet::new();
        for v in &vpods {
            let (ns, name, uid) = (meta(v, "namespace"), meta(v, "name"), meta(v, "uid"));
            let mine = by_uid.get(uid).copied();
            if let Some(p) = mine {
                kept.insert(meta(p, "name"));
            }
            if deleting(v) {
                match mine {
                    Some(p) if !deleting(p) => {
                        let grace = v
                            .pointer("/metadata/deletionGracePeriodSeconds")
                            .and_then(Value::as_i64);
                        let (pname, puid) = (meta(p, "name"), meta(p, "uid"));
                        work.push(Box::pin(async move {
                            this.api.delete("pods", pname, puid, grace).await
                        }));
                    }
                    Some(_) => {}
                    None => {
                        let action = Action::DeleteNow {
                            kind: PODS,
                            namespace: ns.to_string(),
                            name: name.to_string(),
                            uid: Some(uid.to_string()),
                        };
                        work.push(Box::pin(this.write(action)));
                    }
                }
                continue;
            }
            match mine {
                None if in_flight.contains(uid) => {}
                None => {
                    let pname = translate::physical_name(name, ns, &id);
                    if physical.contains_key(pname.as_str()) || terminal(v) {
                        // A namesake from an earlier virtual pod goes first (as a stray).
                        continue;
                    }
                    let token = token_secrets.get(uid).map(String::as_str);
                    if token.is_none() && translate::has_token_volume(v) {
                        continue; // Its token could not be minted yet: the pod waits.
                    }
                    let ppod = translate::translate_pod(v, &this.target, token)
                        .map(translate::for_create)
                        .map_err(|e| SyncError::Translate(e, this.cluster.name.clone()))?;
                    work.push(Box::pin(async move {
                        if this.api.create_if_absent("pods", &ppod).await?.is_some() {
                            tracing::debug!(pod = %format!("{ns}/{name}"), physical = %pname, cluster = %this.cluster.name, "created physical pod");
                        }
                        Ok(())
                    }));
                }
                Some(p) => {
                    let (vrv, prv) = (meta(v, "resourceVersion"), meta(p, "resourceVersion"));
                    if this
                        .in_step
                        .get(uid)
                        .is_some_and(|(at_v, at_p)| at_v == vrv && at_p == prv)
                    {
                        continue;
                    }
                    work.push(Box::pin(async move {
                        let spec_settled = this.sync_spec(v, p).await?;
                        let status_settled =
                            status_up(&this.app, v, p, this.informers.get("pods").map(|i| &**i))
                                .await?;
                        if spec_settled && status_settled {
                            settled
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((uid.to_string(), (vrv.to_string(), prv.to_string())));
                        }
                        Ok(())
                    }))
                }
            }
        }
        // Strays: ours by label, no live virtual pod.
        for p in &ppods {
            let pname = meta(p, "name");
            if !kept.contains(pname) && !deleting(p) {
                tracing::info!(physical = %pname, cluster = %this.cluster.name, "deleting stray physical pod");
                work.push(Box::pin(this.api.delete(
                    "pods",
                    pname,
                    meta(p, "uid"),
                    None,
                )));
            }
        }
        let result = run_all(work).await;
        let live: HashSet<&str> = vpods.iter().map(|v| meta(v, "uid")).collect();
        self.in_step.retain(|uid, _| live.contains(uid.as_str()));
        self.recreated
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|uid, _| live.contains(uid.as_str()));
        self.references.retain(|uid, _| live.contains(uid.as_str()));
        self.in_step.extend(std::mem::take(
            &mut *settled
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ));
        self.sync_events(&ppods).await;
        result
    }

    /// Events the physical cluster records about synced pods appear in the virtual cluster,
    /// about the virtual pods (best effort: a failed write is logged, and retried only when
    /// the physical event changes again).
    async fn sync_events(&mut self, ppods: &[Arc<Value>]) {
        let Some(informer) = self.informers.get("events").cloned() else {
            return;
        };
        let id = &self.target.vcluster_id;
        // The synced pods by physical name, built only when some event is new.
        let mut pods: Option<HashMap<&str, &Value>> = None;
        let relays = self.events.select(
            informer.take_changed(),
            |name| informer.lookup(name).flatten(),
            |pod| {
                let pods = pods
                    .get_or_insert_with(|| ppods.iter().map(|p| (meta(p, "name"), &**p)).collect());
                let (ns, name, uid) = translate::virtual_key(pods.get(pod)?, id)?;
                Some((ns.to_string(), name.to_string(), uid.to_string()))
            },
            std::time::Instant::now(),
        );
        // While the cache is not synced nothing is known to be gone.
        self.events.prune(informer.cached(), |name| {
            informer.lookup(name).is_none_or(|e| e.is_some())
        });
        let writes: Vec<Action> = relays
            .into_iter()
            .map(|r| {
                let (vns, vname, vuid) = &r.virtual_pod;
                let mut object = translate::virtual_event(&r.event, &r.pod, (vns, vname, vuid));
                let vevent = meta(&object, "name").to_string();
                match self.app.store.get("events", vns, &vevent) {
                    Some(cur) => {
                        object["metadata"]["resourceVersion"] =
                            json!(cur.resource_version.to_string());
                        Action::Update {
                            kind: crate::controllers::action::EVENTS,
                            namespace: vns.clone(),
                            object,
                        }
                    }
                    None => Action::Create {
                        kind: crate::controllers::action::EVENTS,
                        namespace: vns.clone(),
                        object,
                    },
                }
            })
            .collect();
        let this: &Syncer = self;
        let work: Vec<BoxFuture<'_, Result<(), SyncError>>> = writes
            .into_iter()
            .map(|a| -> BoxFuture<'_, Result<(), SyncError>> {
                Box::pin(async move {
                    if let Err(e) = this.write(a).await {
                        tracing::debug!(error = %e, "event not copied up");
                    }
                    Ok(())
                })
            })
            .collect();
        let _ = run_all(work).await;
    }

    /// The pod changes Kubernetes makes in place (labels, annotations, container images,
    /// `activeDeadlineSeconds`, added tolerations, resources) patched into the physical pod.
    /// Whether the pod was in step (nothing to change, or nothing refused).
    async fn sync_spec(&self, v: &Value, p: &Value) -> Result<bool, SyncError> {
        if deleting(p) {
            return Ok(true); // Going (to be recreated, or its virtual pod is): nothing to patch.
        }
        let mut spec = serde_json::Map::new();
        for list in ["initContainers", "containers"] {
            let physical: HashMap<&str, &str> = containers(p, list)
                .filter_map(|c| Some((c.get("name")?.as_str()?, c.get("image")?.as_str()?)))
                .collect();
            let changed: Vec<Value> = containers(v, list)
                .filter_map(|c| {
                    let name = c.get("name")?.as_str()?;
                    let image = c.get("image")?.as_str()?;
                    (physical.get(name).is_some_and(|i| *i != image))
                        .then(|| json!({"name": name, "image": image}))
                })
                .collect();
            if !changed.is_empty() {
                spec.insert(list.into(), Value::Array(changed));
            }
        }
        let deadline = v.pointer("/spec/activeDeadlineSeconds");
        if deadline.is_some() && deadline != p.pointer("/spec/activeDeadlineSeconds") {
            spec.insert(
                "activeDeadlineSeconds".into(),
                deadline.cloned().unwrap_or(Value::Null),
            );
        }
        let ptols = p.pointer("/spec/tolerations").and_then(Value::as_array);
        let added: Vec<Value> = v
            .pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| !ptols.is_some_and(|ps| ps.contains(t)))
            .cloned()
            .collect();
        if !added.is_empty() {
            let mut all: Vec<Value> = ptols.cloned().unwrap_or_default();
            all.extend(added);
            // Tolerations are an atomic list: the patch carries the whole of it.
            spec.insert("tolerations".into(), Value::Array(all));
        }
        let resized = self.sync_resources(v, p).await;
        let debugged = self.sync_ephemeral_containers(v, p).await;
        let metadata = translate::metadata_patch(v, p, &self.target);
        if spec.is_empty() && metadata.is_none() {
            return Ok(resized && debugged);
        }
        tracing::info!(pod = %format!("{}/{}", meta(v, "namespace"), meta(v, "name")), cluster = %self.cluster.name, "updating the physical pod in place");
        let mut patch = json!({"spec": spec});
        if let Some(m) = metadata {
            patch["metadata"] = m;
        }
        self.api
            .patch("pods", meta(p, "name"), &patch)
            .await
            .map(|_| false)
    }

    /// Ephemeral containers added to the virtual pod (`kubectl debug`, through its
    /// `ephemeralcontainers` subresource) are added to the physical pod the same way, translated
    /// as its other containers are. Returns whether none was missing. A failure is logged and
    /// retried by the next pass; it does not hold up the pod's other in-place changes.
    async fn sync_ephemeral_containers(&self, v: &Value, p: &Value) -> bool {
        let physical: HashSet<&str> = containers(p, "ephemeralContainers")
            .filter_map(|c| c.get("name")?.as_str())
            .collect();
        let missing = containers(v, "ephemeralContainers")
            .filter_map(|c| c.get("name")?.as_str())
            .any(|name| !physical.contains(name));
        if !missing {
            return true;
        }
        let pod = format!("{}/{}", meta(v, "namespace"), meta(v, "name"));
        let translated = match translate::translate_pod(v, &self.target, None) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(pod = %pod, cluster = %self.cluster.name, error = %e, "the pod's ephemeral containers cannot be translated");
                return false;
            }
        };
        let added: Vec<Value> = containers(&translated, "ephemeralContainers")
            .filter(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !physical.contains(n))
            })
            .cloned()
            .collect();
        tracing::info!(pod = %pod, cluster = %self.cluster.name, "adding ephemeral containers to the physical pod");
        let body = json!({"spec": {"ephemeralContainers": added}});
        let path = format!("{}/ephemeralcontainers", meta(p, "name"));
        if let Err(e) = self.api.patch("pods", &path, &body).await {
            tracing::warn!(pod = %pod, cluster = %self.cluster.name, error = %e, "the ephemeral containers were not added to the physical pod; the next pass retries");
        }
        false
    }

    /// Container resources changed through the virtual pod's `resize` subresource are
    /// resized in place physically (`pods/resize`, or the pod itself on clusters before 1.33).
    /// Only what the virtual pod sets is compared (a physical LimitRange may add defaults), as
    /// quantities (`0.5` is `500m`). A resize the cluster refuses as invalid (no in-place
    /// resize there, or a QoS class it would change) is done the other way Kubernetes changes
    /// a pod: the physical pod is deleted and the next pass creates it with the new resources,
    /// once per wanted resources (an admission webhook that rewrites them must not make it
    /// loop: after that the pod counts as in step). Other failures are logged and retried.
    /// Whether nothing (more) needs resizing.
    async fn sync_resources(&self, v: &Value, p: &Value) -> bool {
        let mut patch = serde_json::Map::new();
        for list in ["initContainers", "containers"] {
            let physical: HashMap<&str, Option<&Value>> = containers(p, list)
                .filter_map(|c| Some((c.get("name")?.as_str()?, c.get("resources"))))
                .collect();
            let changed: Vec<Value> = containers(v, list)
                .filter_map(|c| {
                    let name = c.get("name")?.as_str()?;
                    let wanted = c.get("resources")?;
                    let current = physical.get(name)?;
                    (!resources_within(wanted, *current))
                        .then(|| json!({"name": name, "resources": wanted}))
                })
                .collect();
            if !changed.is_empty() {
                patch.insert(list.into(), Value::Array(changed));
            }
        }
        if patch.is_empty() {
            return true;
        }
        let pname = meta(p, "name");
        let pod = format!("{}/{}", meta(v, "namespace"), meta(v, "name"));
        let body = json!({"spec": patch});
        let wanted = body.to_string();
        let recreated_for_these = self
            .recreated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(meta(v, "uid"))
            .is_some_and(|w| *w == wanted);
        if recreated_for_these {
            // Recreated with these resources and still without them (an admission webhook
            // rewrites them, say): as in step as it can get.
            tracing::debug!(pod = %pod, cluster = %self.cluster.name, "the physical pod has other resources than it was created with");
            return true;
        }
        tracing::info!(pod = %pod, cluster = %self.cluster.name, "resizing the physical pod in place");
        let done = match self
            .api
            .patch("pods", &format!("{pname}/resize"), &body)
            .await
        {
            Err(e) if matches!(e.code(), Some(404 | 405)) => {
                self.api.patch("pods", pname, &body).await.map(|_| ())
            }
            other => other.map(|_| ()),
        };
        let refused = match done {
            Ok(()) => return false,
            Err(e) if e.code() == Some(422) => e,
            Err(e) => {
                tracing::warn!(pod = %pod, cluster = %self.cluster.name, error = %e, "the physical pod was not resized; the next pass retries");
                return false;
            }
        };
        tracing::info!(pod = %pod, cluster = %self.cluster.name, error = %refused, "the physical cluster cannot resize the pod in place; recreating it");
        if let Err(e) = self.api.delete("pods", pname, meta(p, "uid"), None).await {
            tracing::warn!(pod = %pod, cluster = %self.cluster.name, error = %e, "the physical pod to recreate was not deleted; the next pass retries");
            return false;
        }
        self.recreated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(meta(v, "uid").to_string(), wanted);
        let message = format!(
            "Physical cluster {} cannot resize the pod in place; recreating it with the new resources",
            self.cluster.name
        );
        let event = Action::event(SYNCER, v, "Normal", "Recreating", message);
        if let Err(e) = self.write(event).await {
            tracing::debug!(error = %e, "recreation event not recorded");
        }
        false
    }

    /// ConfigMaps and Secrets the live pods reference exist physically with the virtual
    /// content; managed ones nothing references any more are deleted.
    async fn sync_references(
        &self,
        wanted: &HashSet<(RefKind, String, String)>,
    ) -> Result<(), SyncError> {
        let id = &self.target.vcluster_id;
        for kind in [RefKind::ConfigMap, RefKind::Secret] {
            let resource = kind.resource();
            let existing = self.managed(resource).await?;
            let by_name: HashMap<&str, &Value> =
                existing.iter().map(|o| (meta(o, "name"), &**o)).collect();
            let mut keep = HashSet::new();
            for (_, ns, name) in wanted.iter().filter(|(k, _, _)| *k == kind) {
                let Some(desired) =
                    physical_copy(&self.app, &self.target, kind, ns, name, &self.cluster.name)?
                else {
                    continue; // The pod waits for it, as a kubelet would.
                };
                let pname = meta(&desired, "name").to_string();
                keep.insert(pname.clone());
                match by_name.get(pname.as_str()) {
                    None => {
                        self.api.create_if_absent(resource, &desired).await?;
                    }
                    Some(cur) if content_differs(cur, &desired) => {
                        let mut next = desired.clone();
                        next["metadata"]["resourceVersion"] = cur
                            .pointer("/metadata/resourceVersion")
                            .cloned()
                            .unwrap_or(Value::Null);
                        self.api.replace(resource, &pname, &next).await?;
                    }
                    Some(_) => {}
                }
            }
            // Token Secrets, written for no single virtual object, have no virtual key.
            for o in &existing {
                let name = meta(o, "name");
                if !keep.contains(name) && translate::virtual_key(o, id).is_some() {
                    self.api
                        .delete(resource, name, meta(o, "uid"), None)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

impl Syncer {
    /// PersistentVolumeClaims the live pods use exist physically; their status (phase,
    /// capacity, access modes, conditions) is copied up. A physical claim lives as long as
    /// its virtual claim, not only while a pod uses it: its data must survive a pod's
    /// replacement.
    async fn sync_claims(
        &self,
        wanted: &HashSet<(RefKind, String, String)>,
    ) -> Result<(), SyncError> {
        let id = &self.target.vcluster_id;
        let resource = RefKind::PersistentVolumeClaim.resource();
        let existing = self.managed(resource).await?;
        let by_name: HashMap<&str, &Value> =
            existing.iter().map(|o| (meta(o, "name"), &**o)).collect();
        let mut work: Vec<BoxFuture<'_, Result<(), SyncError>>> = Vec::new();
        for (_, ns, name) in wanted
            .iter()
            .filter(|(k, _, _)| *k == RefKind::PersistentVolumeClaim)
        {
            let Some(v) = self.app.store.get(resource, ns, name) else {
                continue; // The pod waits for its claim, as it would in any cluster.
            };
            let v = v.value();
            if deleting(&v) {
                continue;
            }
            let desired = translate::translate_pvc(&v, &self.target)
                .map_err(|e| SyncError::Translate(e, self.cluster.name.clone()))?;
            let pname = meta(&desired, "name").to_string();
            match by_name.get(pname.as_str()) {
                None => work.push(Box::pin(async move {
                    self.api
                        .create_if_absent(resource, &desired)
                        .await
                        .map(drop)
                })),
                Some(p) => {
                    let status = translate::virtual_claim_status(p);
                    if v.get("status") != Some(&status) {
                        let mut object = v.clone();
                        object["status"] = status;
                        work.push(Box::pin(self.write(Action::UpdateStatus {
                            kind: crate::controllers::action::PVCS,
                            namespace: ns.clone(),
                            object,
                        })));
                    }
                }
            }
        }
        // A physical claim goes when its virtual claim does.
        for o in &existing {
            let Some((vns, vname, vuid)) = translate::virtual_key(o, id) else {
                continue;
            };
            let alive = self
                .app
                .store
                .get(resource, vns, vname)
                .is_some_and(|v| v.uid == vuid && !v.deleting);
            if !alive && !deleting(o) {
                let (name, uid) = (meta(o, "name").to_string(), meta(o, "uid").to_string());
                work.push(Box::pin(async move {
                    self.api.delete(resource, &name, &uid, None).await
                }));
            }
        }
        run_all(work).await
    }
}

/// Annotation on a virtual Service: its ClusterIP in a physical cluster.
const ANN_PHYSICAL_CLUSTER_IP: &str = "vkube.io/physical-cluster-ip";

impl Syncer {
    /// The physical ClusterIP of the virtual cluster's DNS Service (`kube-system/kube-dns`)
    /// in this cluster, once it is synced here.
    fn virtual_dns(&self) -> Option<String> {
        let svc = self
            .app
            .store
            .get("services", "kube-system", "kube-dns")?
            .value();
        let key = format!("{ANN_PHYSICAL_CLUSTER_IP}.{}", self.cluster.name);
        svc.pointer("/metadata/annotations")
            .and_then(|a| a.get(&key))
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .map(str::to_string)
    }

    /// With one physical cluster, a virtual Service takes its physical ClusterIP (what pods
    /// resolving it through the virtual DNS must reach): it is recreated with that address
    /// when the address lies in the virtual service range and no other virtual Service holds
    /// it. If the new Service cannot be created the old one is put back. True when recreated.
    async fn adopt_physical_ip(&self, v: &Value, ip: &str, key: &str) -> bool {
        let virtual_ip = v.pointer("/spec/clusterIP").and_then(Value::as_str);
        let Ok(addr) = ip.parse::<std::net::Ipv4Addr>() else {
            return false; // "None" (headless) or not IPv4
        };
        if virtual_ip == Some(ip)
            || virtual_ip.is_none_or(|i| i.is_empty() || i == "None")
            || !self.app.service_allocators.ips.contains(addr)
            || self
                .app
                .store
                .list("services", None, None, 0, &|_| true)
                .items
                .iter()
                .any(|o| o.value().pointer("/spec/clusterIP").and_then(Value::as_str) == Some(ip))
        {
            return false;
        }
        let (ns, name, uid) = (meta(v, "namespace"), meta(v, "name"), meta(v, "uid"));
        let fresh = |cluster_ip: Option<&str>| {
            let mut o = v.clone();
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                    "generation",
                ] {
                    m.remove(k);
                }
            }
            if let Some(ip) = cluster_ip {
                o["spec"]["clusterIP"] = json!(ip);
                o["spec"]["clusterIPs"] = json!([ip]);
                if !o["metadata"]
                    .get("annotations")
                    .is_some_and(Value::is_object)
                {
                    o["metadata"]["annotations"] = json!({});
                }
                o["metadata"]["annotations"][key] = json!(ip);
            }
            o.as_object_mut().map(|m| m.remove("status"));
            o
        };
        tracing::info!(service = %format!("{ns}/{name}"), from = ?virtual_ip, to = %ip, cluster = %self.cluster.name, "recreating the virtual Service with its physical ClusterIP");
        let deleted = self
            .write(Action::DeleteNow {
                kind: crate::controllers::action::SERVICES,
                namespace: ns.to_string(),
                name: name.to_string(),
                uid: Some(uid.to_string()),
            })
            .await;
        if deleted.is_err() {
            return false;
        }
        let create = |object: Value| Action::Create {
            kind: crate::controllers::action::SERVICES,
            namespace: ns.to_string(),
            object,
        };
        if let Err(e) = self.write(create(fresh(Some(ip)))).await {
            tracing::warn!(service = %format!("{ns}/{name}"), error = %e, "cannot recreate the Service with its physical ClusterIP; restoring it");
            if let Err(e) = self.write(create(fresh(virtual_ip))).await {
                tracing::error!(service = %format!("{ns}/{name}"), error = %e, "cannot restore the Service");
            }
        }
        true
    }

    /// Virtual Services with a selector exist physically (selector rewritten to the physical
    /// pods' labels, addresses left to the physical cluster), the others are deleted; the
    /// physical ClusterIP is recorded on the virtual Service.
    async fn sync_services(&self) -> Result<(), SyncError> {
        let id = &self.target.vcluster_id;
        let existing = self.managed("services").await?;
        let by_name: HashMap<&str, &Value> =
            existing.iter().map(|o| (meta(o, "name"), &**o)).collect();
        let mut keep = HashSet::new();
        let services: Vec<Value> = self
            .app
            .store
            .list("services", None, None, 0, &|o| !o.deleting)
            .items
            .iter()
            .map(|o| o.value())
            // `default/kubernetes` is the virtual API itself (pods reach it as advertised).
            .filter(|s| !(meta(s, "namespace") == "default" && meta(s, "name") == "kubernetes"))
            .collect();
        let physical_endpoints = self.managed("endpoints").await?;
        let mut endpoints_kept = HashSet::new();
        for v in &services {
            let desired = translate::translate_service(v, &self.target)
                .map_err(|e| SyncError::Translate(e, self.cluster.name.clone()))?;
            let pname = meta(&desired, "name").to_string();
            keep.insert(pname.clone());
            let selectorless = v
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty());
            if selectorless
                && let Some(ep) =
                    self.app
                        .store
                        .get("endpoints", meta(v, "namespace"), meta(v, "name"))
            {
                // Its Endpoints are the user's: copied as they are.
                endpoints_kept.insert(pname.clone());
                let current = physical_endpoints.iter().find(|o| meta(o, "name") == pname);
                self.sync_endpoints(&ep.value(), current.map(|c| &**c))
                    .await?;
            }
            let current = match by_name.get(pname.as_str()) {
                None => match self.api.create("services", &desired).await {
                    Ok(created) => created,
                    Err(SyncError::Call {
                        code: Some(409), ..
                    }) => continue,
                    Err(e) => return Err(e),
                },
                Some(cur) => {
                    let same = [
                        "ports",
                        "selector",
                        "type",
                        "sessionAffinity",
                        "publishNotReadyAddresses",
                    ]
                    .iter()
                    .all(|k| {
                        desired.pointer(&format!("/spec/{k}")).is_none()
                            || desired.pointer(&format!("/spec/{k}"))
                                == cur.pointer(&format!("/spec/{k}"))
                    });
                    if same {
                        (*cur).clone()
                    } else {
                        let mut next = desired.clone();
                        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                            if let Some(x) = cur.pointer(&format!("/spec/{k}")) {
                                next["spec"][k] = x.clone();
                            }
                        }
                        next["metadata"]["resourceVersion"] = cur
                            .pointer("/metadata/resourceVersion")
                            .cloned()
                            .unwrap_or(Value::Null);
                        self.api.replace("services", &pname, &next).await?
                    }
                }
            };
            // The physical address, shown on the virtual Service.
            if let Some(ip) = current.pointer("/spec/clusterIP").and_then(Value::as_str) {
                let key = format!("{ANN_PHYSICAL_CLUSTER_IP}.{}", self.cluster.name);
                if self.sole && self.adopt_physical_ip(v, ip, &key).await {
                    continue;
                }
                let shown = v
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(&key))
                    .and_then(Value::as_str);
                if shown != Some(ip) {
                    let mut object = v.clone();
                    if !object["metadata"]
                        .get("annotations")
                        .is_some_and(Value::is_object)
                    {
                        object["metadata"]["annotations"] = json!({});
                    }
                    object["metadata"]["annotations"][&key] = json!(ip);
                    self.write(Action::Update {
                        kind: crate::controllers::action::SERVICES,
                        namespace: meta(v, "namespace").to_string(),
                        object,
                    })
                    .await?;
                }
            }
        }
        for o in &existing {
            let name = meta(o, "name");
            if !keep.contains(name) && translate::virtual_key(o, id).is_some() {
                self.api
                    .delete("services", name, meta(o, "uid"), None)
                    .await?;
            }
        }
        for o in &physical_endpoints {
            let name = meta(o, "name");
            if !endpoints_kept.contains(name) && translate::virtual_key(o, id).is_some() {
                self.api
                    .delete("endpoints", name, meta(o, "uid"), None)
                    .await?;
            }
        }
        Ok(())
    }

    /// The physical copy (`current`, if any) of a selector-less Service's virtual Endpoints.
    async fn sync_endpoints(&self, v: &Value, current: Option<&Value>) -> Result<(), SyncError> {
        let desired = translate::translate_endpoints(v, &self.target)
            .map_err(|e| SyncError::Translate(e, self.cluster.name.clone()))?;
        let pname = meta(&desired, "name").to_string();
        match current {
            None => self
                .api
                .create_if_absent("endpoints", &desired)
                .await
                .map(drop),
            Some(cur) if cur.get("subsets") != desired.get("subsets") => {
                let mut next = desired;
                next["metadata"]["resourceVersion"] = cur
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                self.api
                    .replace("endpoints", &pname, &next)
                    .await
                    .map(|_| ())
            }
            Some(_) => Ok(()),
        }
    }

    /// The Secrets holding the ServiceAccount tokens (minted by TokenRequest, bound to the
    /// pod, refreshed before they expire), the cluster CA and the namespace of the live pods
    /// that mount a token, as [`plan_token_secrets`] plans them (a pod whose token cannot be
    /// minted gets none, and waits). Returns pod uid → Secret name.
    fn sync_token_secrets<'s>(
        &'s self,
        vpods: &[Arc<Value>],
        physical: &HashMap<&str, &Value>,
        secrets: Vec<Arc<Value>>,
        in_flight: &HashSet<String>,
        work: &mut Vec<BoxFuture<'s, Result<(), SyncError>>>,
    ) -> HashMap<String, String> {
        let id = &self.target.vcluster_id;
        let existing: HashMap<String, Arc<Value>> = secrets
            .into_iter()
            .filter(|s| {
                s.pointer("/metadata/labels")
                    .and_then(|l| l.get(translate::LABEL_KIND))
                    .and_then(Value::as_str)
                    == Some(translate::KIND_POD_TOKENS)
            })
            .map(|s| (meta(&s, "name").to_string(), s))
            .collect();
        let live: HashMap<&str, &Value> = vpods
            .iter()
            .filter(|v| !deleting(v) && !terminal(v) && translate::has_token_volume(v))
            .map(|v| (meta(v, "uid"), &**v))
            .collect();
        let now = jiff::Timestamp::now().as_second();
        let plan = plan_token_secrets(&live, physical, &existing, in_flight, id, now);
        let mut out = plan.secret_of;
        for write in plan.writes {
            let mut tokens = Vec::with_capacity(write.pods.len());
            for uid in &write.pods {
                let v = live[uid];
                match mint_token(&self.app, v) {
                    Ok(t) => tokens.push((uid.to_string(), t)),
                    Err(e) => {
                        let pod = format!("{}/{}", meta(v, "namespace"), meta(v, "name"));
                        tracing::warn!(pod = %pod, error = %e, "cannot mint the pod's token; the pod waits");
                    }
                }
            }
            let minted: HashSet<&str> = tokens.iter().map(|(u, _)| u.as_str()).collect();
            let (written, served) = token_write_serves(&write, &minted);
            // A pod whose token the Secret will not hold gets none, and waits.
            for uid in write.pods.iter().filter(|u| !served.contains(*u)) {
                out.remove(*uid);
            }
            if !written {
                continue;
            }
            let ns = meta(live[write.pods[0]], "namespace");
            let sname = write.name;
            let mut secret = token_secret(&self.app, &self.target, &sname, ns, &tokens, now);
            let api = &self.api;
            match write.current {
                None => work.push(Box::pin(async move {
                    api.create_if_absent("secrets", &secret).await.map(drop)
                })),
                Some(cur) => {
                    secret["metadata"]["resourceVersion"] = cur
                        .pointer("/metadata/resourceVersion")
                        .cloned()
                        .unwrap_or(Value::Null);
                    work.push(Box::pin(async move {
                        api.replace("secrets", &sname, &secret).await.map(|_| ())
                    }));
                }
            }
        }
        for (name, uid) in plan.deletes {
            let api = &self.api;
            work.push(Box::pin(async move {
                api.delete("secrets", &name, &uid, None).await
            }));
        }
        out
    }
}

/// The physical name of a token Secret first written for virtual pod `v` (it may hold other
/// pods' tokens too).
fn token_secret_name(v: &Value, id: &str) -> String {
    let (ns, name) = (meta(v, "namespace"), meta(v, "name"));
    translate::physical_name(&format!("{name}-token"), ns, id)
}

/// A token minted now by TokenRequest for virtual pod `v`'s ServiceAccount, bound to the pod.
fn mint_token(app: &ApiState, v: &Value) -> Result<String, crate::api::error::ApiError> {
    let (ns, name, uid) = (meta(v, "namespace"), meta(v, "name"), meta(v, "uid"));
    let sa = v
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let request = json!({"spec": {"expirationSeconds": POD_TOKEN_SECONDS,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name, "uid": uid}}});
    let minted = app
        .service_account_tokens
        .token_request(&app.store, ns, sa, &request)?;
    Ok(minted
        .pointer("/status/token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

/// The physical Secret `pname` holding the tokens of virtual namespace `ns`'s pods `tokens`
/// (virtual pod uid, token; minted at `now`), each under [`translate::token_key`], plus the
/// cluster CA and the namespace.
fn token_secret(
    app: &ApiState,
    target: &Target,
    pname: &str,
    ns: &str,
    tokens: &[(String, String)],
    now: i64,
) -> Value {
    use base64::Engine;
    let b64 = |s: &str| Value::from(base64::engine::general_purpose::STANDARD.encode(s));
    let id = &target.vcluster_id;
    let mut labels = translate::managed_labels(ns, id);
    labels.insert(
        translate::LABEL_KIND.into(),
        translate::KIND_POD_TOKENS.into(),
    );
    let mut data = serde_json::Map::new();
    data.insert("ca.crt".into(), b64(&app.ca_pem));
    data.insert("namespace".into(), b64(ns));
    for (uid, token) in tokens {
        data.insert(translate::token_key(uid), b64(token));
    }
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": pname, "namespace": target.namespace, "labels": labels,
            "annotations": {
                translate::ANN_NAMESPACE: ns, translate::ANN_VCLUSTER: id,
                ANN_TOKEN_EXPIRES: (now + POD_TOKEN_SECONDS).to_string(),
            },
        },
        "data": data,
    })
}

/// What a pass does about token Secrets ([`plan_token_secrets`]).
#[derive(Debug, Default)]
struct TokenPlan<'a> {
    /// Virtual pod uid → the Secret holding (or to hold) its token.
    secret_of: HashMap<String, String>,
    /// Secrets to write, with fresh tokens.
    writes: Vec<TokenWrite<'a>>,
    /// Secrets to delete: name, uid.
    deletes: Vec<(String, String)>,
}

/// A token Secret to write: its name, the live pods whose tokens it is to hold (the first
/// one wanting it), and its current version (`None`: to be created).
#[derive(Debug)]
struct TokenWrite<'a> {
    name: String,
    pods: Vec<&'a str>,
    current: Option<&'a Value>,
}

/// Plans the token Secrets of the `live` pods that mount a token (by uid) at `now`, given the
/// physical pods by the uid of their virtual pod, the `existing` token Secrets by name and the
/// pods the create lane is writing. A pod's Secret is the one its physical pod mounts its
/// token from, else one of its own for the pass to create the pod with. A Secret is written
/// when it is missing, lacks the token of a pod wanting it or nears expiry, with fresh tokens
/// for those pods and the live ones it holds; not while the create lane writes a pod of it.
/// Secrets holding no live pod's token are deleted.
fn plan_token_secrets<'a>(
    live: &HashMap<&'a str, &'a Value>,
    physical: &HashMap<&str, &Value>,
    existing: &'a HashMap<String, Arc<Value>>,
    in_flight: &HashSet<String>,
    id: &str,
    now: i64,
) -> TokenPlan<'a> {
    let mut plan = TokenPlan::default();
    // Secret name → the live pods that mount (or are to mount) their token from it.
    let mut wanted: HashMap<String, Vec<&'a str>> = HashMap::new();
    for (&uid, v) in live {
        if in_flight.contains(uid) {
            continue;
        }
        let sname = match physical.get(uid) {
            Some(p) => match translate::token_secret_of(p, uid) {
                Some(s) => s.to_string(),
                None => continue, // Mounts none (made before it had a token): left be.
            },
            None => token_secret_name(v, id),
        };
        wanted.entry(sname.clone()).or_default().push(uid);
        plan.secret_of.insert(uid.to_string(), sname);
    }
    for (name, mut pods) in wanted {
        pods.sort_unstable();
        let current = existing.get(&name).map(|s| &**s);
        let held: HashSet<&str> = current
            .map(|s| token_holders(s).collect())
            .unwrap_or_default();
        let expires = current
            .and_then(|s| s.pointer("/metadata/annotations"))
            .and_then(|a| a.get(ANN_TOKEN_EXPIRES))
            .and_then(Value::as_str)
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(0);
        if expires - now > POD_TOKEN_REFRESH_BEFORE && pods.iter().all(|u| held.contains(u)) {
            continue;
        }
        if held.iter().any(|u| in_flight.contains(*u)) {
            continue; // The create lane is writing a pod of it: a later pass sees to it.
        }
        let mut also: Vec<&'a str> = held
            .iter()
            .copied()
            .filter(|u| live.contains_key(u) && !pods.contains(u))
            .collect();
        also.sort_unstable();
        pods.extend(also);
        plan.writes.push(TokenWrite {
            name,
            pods,
            current,
        });
    }
    for (name, s) in existing {
        if !token_holders(s).any(|u| live.contains_key(u)) {
            plan.deletes
                .push((name.clone(), meta(s, "uid").to_string()));
        }
    }
    plan.writes.sort_by(|a, b| a.name.cmp(&b.name));
    plan.deletes.sort();
    plan
}

/// Whether token Secret `write` is written once the tokens of its pods `minted` are, and the
/// pods of `write` whose tokens it holds then. It is not written when none was minted, nor
/// when it exists and some are missing: written now it would lose the tokens it holds of
/// those pods (valid until they expire), so it stays as it is until a pass mints them all.
fn token_write_serves<'a>(write: &TokenWrite<'a>, minted: &HashSet<&str>) -> (bool, Vec<&'a str>) {
    let all_minted = write.pods.iter().all(|u| minted.contains(u));
    let written =
        write.pods.iter().any(|u| minted.contains(u)) && (all_minted || write.current.is_none());
    let holds: HashSet<&str> = match write.current {
        _ if written => minted.clone(),
        Some(current) => token_holders(current).collect(),
        None => HashSet::new(),
    };
    let served = write
        .pods
        .iter()
        .copied()
        .filter(|u| holds.contains(u))
        .collect();
    (written, served)
}

/// The virtual pod uids whose tokens physical token Secret `s` holds.
fn token_holders(s: &Value) -> impl Iterator<Item = &str> {
    s.get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|d| d.keys())
        .filter_map(|k| k.strip_prefix(translate::TOKEN_KEY_PREFIX))
}

/// Copies the status and node of physical pod `p` onto virtual pod `v` in one write (the pod
/// status subresource takes annotations, as upstream's does). Whether `v` was in step
/// already. A write that conflicts with another one (a binding, a label change) is
/// tried again on the virtual pod as it is then, while it is still the pod `p` was made for.
///
/// What is written is the newest version of `p` that the `pods` cache holds: `p` may be
/// what a pass listed before the status lane copied a newer status up, and writing it would
/// take the virtual pod back (from `Running` to `Pending`).
async fn status_up(
    app: &Arc<ApiState>,
    v: &Value,
    p: &Value,
    pods: Option<&informer::Informer>,
) -> Result<bool, SyncError> {
    let mut current: Option<Arc<Value>> = None;
    for _ in 0..STATUS_ATTEMPTS {
        let v = current.as_deref().unwrap_or(v);
        let newest = pods
            .and_then(|i| i.lookup(meta(p, "name")).flatten())
            .filter(|cached| meta(cached, "uid") == meta(p, "uid"));
        let Some(object) = with_physical_status(v, newest.as_deref().unwrap_or(p)) else {
            return Ok(true);
        };
        let (ns, name) = (meta(v, "namespace"), meta(v, "name"));
        let action = Action::UpdateStatus {
            kind: PODS,
            namespace: ns.to_string(),
            object,
        };
        match execute(app, &action).await {
            Ok(()) => return Ok(false),
            Err(crate::api::error::ApiError::Conflict(..)) => {
                match app.store.get("pods", ns, name) {
                    Some(now) if now.uid == meta(v, "uid") && !now.deleting => {
                        current = Some(now.parsed());
                    }
                    // Gone, going, or a namesake: nothing of ours to write.
                    _ => return Ok(false),
                }
            }
            Err(e) => return Err(SyncError::Virtual(e.to_string())),
        }
    }
    Ok(false)
}

/// The status write that gives the virtual pod `v` the status (and node annotation) of its
/// physical pod `p`, or `None` when it has them already. A pod status write takes only the
/// status, labels and annotations of its body (the rest stays as stored), so the body carries
/// only those and the identity and resourceVersion of `v`.
fn with_physical_status(v: &Value, p: &Value) -> Option<Value> {
    let status = translate::virtual_pod_status(p, v);
    let node = translate::physical_node_annotation(p);
    let node_changed = node.as_ref().is_some_and(|(key, node)| {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(*key))
            .and_then(Value::as_str)
            != Some(node.as_str())
    });
    if v.get("status") == Some(&status) && !node_changed {
        return None;
    }
    let mut metadata = serde_json::Map::new();
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "labels",
        "annotations",
    ] {
        if let Some(value) = v.get("metadata").and_then(|m| m.get(field)) {
            metadata.insert(field.into(), value.clone());
        }
    }
    if let (true, Some((key, node))) = (node_changed, node) {
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[key] = json!(node);
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "status": status,
    }))
}

/// Every request and limit `wanted` sets has the same quantity in `current`.
fn resources_within(wanted: &Value, current: Option<&Value>) -> bool {
    ["requests", "limits"].iter().all(|kind| {
        wanted
            .get(*kind)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .all(|(name, q)| {
                let have = current
                    .and_then(|c| c.get(*kind))
                    .and_then(|m| m.get(name))
                    .and_then(Value::as_str);
                match (q.as_str(), have) {
                    (Some(a), Some(b)) => {
                        crate::scheduler::parse_quantity(a, 1000)
                            == crate::scheduler::parse_quantity(b, 1000)
                    }
                    _ => false,
                }
            })
    })
}

/// The entries of a pod's container list (`containers`, `initContainers`).
fn containers<'a>(pod: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The physical copy of the ConfigMap or Secret `ns/name` a pod references; `None` while
/// the virtual object does not exist (and for claims, which [`Syncer::sync_claims`] copies).
fn physical_copy(
    app: &ApiState,
    target: &Target,
    kind: RefKind,
    ns: &str,
    name: &str,
    cluster: &str,
) -> Result<Option<Value>, SyncError> {
    let translate = match kind {
        RefKind::ConfigMap => translate::translate_config_map,
        RefKind::Secret => translate::translate_secret,
        RefKind::PersistentVolumeClaim => return Ok(None),
    };
    let Some(v) = app.store.get(kind.resource(), ns, name) else {
        return Ok(None);
    };
    translate(&v.value(), target)
        .map(Some)
        .map_err(|e| SyncError::Translate(e, cluster.to_string()))
}

fn content_differs(current: &Value, desired: &Value) -> bool {
    ["data", "binaryData", "stringData", "type"]
        .iter()
        .any(|k| {
            current.get(*k) != desired.get(*k)
                && !(desired.get(*k).is_none()
                    && current
                        .get(*k)
                        .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty())))
        })
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::testing::put;

    /// A physical cluster's connections are opened and driven on its I/O thread, not on the
    /// runtime the call comes from (here the test's own thread).
    #[tokio::test]
    async fn connections_are_opened_and_driven_on_the_io_thread() {
        let io = IoThread::start("t").expect("I/O runtime");
        let thread = || std::thread::current().name().map(str::to_string);
        let mut connector = OnRuntime {
            inner: tower::service_fn(move |_: axum::http::Uri| async move {
                Ok::<_, std::io::Error>(thread())
            }),
            runtime: io.handle().clone(),
        };
        let uri = axum::http::Uri::from_static("https://physical:6443");
        let opened_on = tower::Service::call(&mut connector, uri.clone())
            .await
            .expect("opened");
        assert_eq!(opened_on.as_deref(), Some("vkube-io-t"));
        // An opening that never ends is dropped with the call that gave up on it.
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        let held = std::sync::Mutex::new(Some(held_tx));
        let mut stalled = OnRuntime {
            inner: tower::service_fn(move |_: axum::http::Uri| {
                let held = held.lock().expect("lock").take();
                async move {
                    let _held = held;
                    std::future::pending::<Result<(), std::io::Error>>().await
                }
            }),
            runtime: io.handle().clone(),
        };
        drop(tower::Service::call(&mut stalled, uri));
        let released = tokio::time::timeout(Duration::from_secs(10), held_rx).await;
        assert!(
            matches!(released, Ok(Err(_))),
            "the opening outlived its call: {released:?}"
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let executor = OnRuntime {
            inner: (),
            runtime: io.handle().clone(),
        };
        hyper::rt::Executor::execute(&executor, async move {
            let _ = tx.send(thread());
        });
        assert_eq!(rx.await.expect("ran").as_deref(), Some("vkube-io-t"));
        assert_ne!(thread().as_deref(), Some("vkube-io-t"));
    }

    /// A request to a physical cluster is sent from its I/O thread as soon as it is made: the
    /// runtime that made it may be busy (here, blocked outright) without holding it back.
    #[tokio::test]
    async fn a_request_is_sent_while_the_runtime_that_made_it_is_busy() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("address").port();
        let (arrived_tx, arrived) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = arrived_tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        });
        let url = format!("http://127.0.0.1:{port}").parse().expect("url");
        let api = PhysicalApi::with_config("t", "ns", kube::Config::new(url)).expect("client");
        let mut answer = std::pin::pin!(api.get("/version"));
        // Made: the request is handed over (polled once; the I/O thread may even have had the
        // answer by then, if this thread was preempted meanwhile).
        let first = futures::poll!(answer.as_mut());
        // This test's runtime (its only thread) runs nothing while it waits here.
        let head = arrived
            .recv_timeout(Duration::from_secs(10))
            .expect("the request reached the server while its caller's runtime was blocked");
        assert!(head.starts_with("GET /version "), "{head}");
        let answer = match first {
            std::task::Poll::Ready(answer) => answer,
            std::task::Poll::Pending => answer.await,
        };
        assert_eq!(answer.expect("answer"), json!({}));
    }

    /// The passes' token Secrets: found from the physical pods, written when missing, lacking a
    /// pod's token or near expiry (for all the live pods they hold), left alone while the
    /// create lane writes a pod of theirs, and deleted once they hold no live pod's token.
    #[test]
    fn token_secrets_follow_the_pods_that_mount_them() {
        let now = 1_000_000;
        let vpod = |name: &str, uid: &str| json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}, "spec": {}});
        let ppod = |secret: &str, uid: &str| {
            json!({"spec": {"volumes": [{"name": "kube-api-access-x", "secret": {
                "secretName": secret, "items": [{"key": translate::token_key(uid), "path": "token"}]}}]}})
        };
        let secret = |name: &str, uids: &[&str], expires: i64| {
            let mut data = serde_json::Map::new();
            data.insert("ca.crt".into(), json!("Y2E="));
            for u in uids {
                data.insert(translate::token_key(u), json!("dG9r"));
            }
            let annotations = json!({ANN_TOKEN_EXPIRES: expires.to_string()});
            let metadata =
                json!({"name": name, "uid": format!("s-{name}"), "annotations": annotations});
            (
                name.to_string(),
                Arc::new(json!({"metadata": metadata, "data": data})),
            )
        };
        let fresh = now + POD_TOKEN_SECONDS;
        let stale = now + POD_TOKEN_REFRESH_BEFORE - 1;
        let (a, b, c, d) = (
            vpod("a", "ua"),
            vpod("b", "ub"),
            vpod("c", "uc"),
            vpod("d", "ud"),
        );
        let live: HashMap<&str, &Value> = [("ua", &a), ("ub", &b), ("uc", &c), ("ud", &d)].into();
        let (pa, pb, pc) = (
            ppod("batch", "ua"),
            ppod("batch", "ub"),
            ppod("own-c", "uc"),
        );
        let physical: HashMap<&str, &Value> = [("ua", &pa), ("ub", &pb), ("uc", &pc)].into();
        let d_secret = token_secret_name(&d, "vk1");
        let writes = |plan: &TokenPlan| -> Vec<(String, Vec<String>, bool)> {
            let w = plan.writes.iter();
            w.map(|w| {
                (
                    w.name.clone(),
                    w.pods.iter().map(|p| p.to_string()).collect(),
                    w.current.is_some(),
                )
            })
            .collect()
        };
        let owned = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };

        // In step: the batch Secret holds a and b, c has its own; d (no physical pod yet) gets
        // a Secret of its own to be created with. A Secret of dead pods goes.
        let existing: HashMap<String, Arc<Value>> = [
            secret("batch", &["ua", "ub", "gone"], fresh),
            secret("own-c", &["uc"], fresh),
            secret("dead", &["gone"], fresh),
        ]
        .into();
        let plan = plan_token_secrets(&live, &physical, &existing, &HashSet::new(), "vk1", now);
        assert_eq!(plan.secret_of["ua"], "batch");
        assert_eq!(plan.secret_of["uc"], "own-c");
        assert_eq!(plan.secret_of["ud"], d_secret);
        assert_eq!(writes(&plan), [(d_secret.clone(), owned(&["ud"]), false)]);
        assert_eq!(plan.deletes, [("dead".to_string(), "s-dead".to_string())]);

        // Near expiry, or missing a pod's token: written again for every live pod it holds
        // (the dead one's token is dropped), and one that is gone is created again.
        let existing: HashMap<String, Arc<Value>> = [
            secret("batch", &["ua", "ub", "gone"], stale),
            secret(&d_secret, &["ud"], fresh),
        ]
        .into();
        let refreshed = [
            ("batch".to_string(), owned(&["ua", "ub"]), true),
            ("own-c".to_string(), owned(&["uc"]), false),
        ];
        let plan = plan_token_secrets(&live, &physical, &existing, &HashSet::new(), "vk1", now);
        assert_eq!(writes(&plan), refreshed);
        assert!(plan.deletes.is_empty(), "{:?}", plan.deletes);
        let existing: HashMap<String, Arc<Value>> = [
            secret("batch", &["ua"], fresh),
            secret(&d_secret, &["ud", "uc"], fresh),
        ]
        .into();
        let plan = plan_token_secrets(&live, &physical, &existing, &HashSet::new(), "vk1", now);
        assert_eq!(writes(&plan), refreshed);

        // While the create lane writes pod b, the Secret holding its token is left alone (and
        // kept), and b gets none from the pass.
        let existing: HashMap<String, Arc<Value>> = [secret("batch", &["ua", "ub"], stale)].into();
        let in_flight: HashSet<String> = ["ub".to_string()].into();
        let plan = plan_token_secrets(&live, &physical, &existing, &in_flight, "vk1", now);
        assert!(!plan.secret_of.contains_key("ub"));
        assert!(writes(&plan).iter().all(|(name, ..)| name != "batch"));
        assert!(plan.deletes.is_empty(), "{:?}", plan.deletes);
    }

    /// A token Secret is written when its pods' tokens are minted (a new one with those that
    /// were); an existing one missing some stays as it is. A pod whose token it does not hold
    /// then gets none.
    #[test]
    fn a_token_secret_is_not_written_over_tokens_that_could_not_be_minted() {
        let data = json!({"ca.crt": "Y2E=", translate::token_key("ua"): "dA==",
            translate::token_key("ub"): "dA=="});
        let current = json!({"metadata": {"name": "batch"}, "data": data});
        let write = |pods: &[&'static str], current| TokenWrite {
            name: "batch".into(),
            pods: pods.to_vec(),
            current,
        };
        let minted =
            |uids: &[&'static str]| -> HashSet<&'static str> { uids.iter().copied().collect() };
        // A new Secret holds the tokens that were minted; the pod whose was not gets none.
        let new = write(&["ua", "ub"], None);
        assert_eq!(
            token_write_serves(&new, &minted(&["ua"])),
            (true, vec!["ua"])
        );
        assert_eq!(token_write_serves(&new, &minted(&[])), (false, vec![]));
        // An existing one is written when all are minted.
        let all = write(&["ua", "ub", "uc"], Some(&current));
        let every = minted(&["ua", "ub", "uc"]);
        assert_eq!(
            token_write_serves(&all, &every),
            (true, vec!["ua", "ub", "uc"])
        );
        // With b's token missing it keeps the tokens it holds (a's and b's); c, whose token
        // it lacks, gets none though it was minted.
        let some = minted(&["ua", "uc"]);
        assert_eq!(token_write_serves(&all, &some), (false, vec!["ua", "ub"]));
    }

    #[test]
    fn only_kubelet_reported_status_is_hurried_up() {
        let cases = [
            (json!({"metadata": {"name": "new"}}), false),
            (
                json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}),
                false,
            ),
            (
                json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
                true,
            ),
            (json!({"status": {"phase": "Running"}}), true),
            (json!({"status": {"phase": "Failed"}}), true),
        ];
        for (pod, want) in cases {
            assert_eq!(kubelet_reported(&pod), want, "{pod}");
        }
    }

    #[test]
    fn passes_wait_for_busy_lanes_no_longer_than_between_quiet_passes() {
        let soon = PASS_EVERY / 5;
        assert!(
            pass_waits(true, soon),
            "a burst the lanes handle holds the pass"
        );
        assert!(!pass_waits(true, PASS_EVERY), "but not past PASS_EVERY");
        assert!(!pass_waits(false, soon), "idle lanes hold nothing up");
    }

    #[test]
    fn each_pod_bound_here_is_handed_to_the_create_lane_once() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path(), 100).expect("store");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "uid": "ns"}});
        put(&store, 1, "namespaces", &ns);
        let mut live = store.hub().subscribe(None).expect("subscribe").live;
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let mut handed = HashSet::new();
        let in_flight = InFlight::default();
        let mut hand =
            |live: &mut tokio::sync::broadcast::Receiver<Arc<crate::store::WatchEvent>>| {
                let ev = live.try_recv().expect("an event");
                hand_over_bound(&ev, "east", &mut handed, &tx, &in_flight);
            };
        let pod = |node: Option<&str>, phase: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
                "spec": {"nodeName": node}, "status": {"phase": phase}})
        };
        // Unbound: nothing.
        put(&store, 2, "pods", &pod(None, "Pending"));
        hand(&mut live);
        assert!(rx.try_recv().is_err());
        // Bound here: handed over; later changes are not handed again.
        put(&store, 3, "pods", &pod(Some("east"), "Pending"));
        hand(&mut live);
        assert_eq!(meta(&rx.try_recv().expect("handed"), "uid"), "u1");
        put(&store, 4, "pods", &pod(Some("east"), "Running"));
        hand(&mut live);
        assert!(rx.try_recv().is_err());
        let writing = in_flight.lock().expect("in flight").clone();
        assert_eq!(
            writing,
            HashSet::from(["u1".to_string()]),
            "passes leave a handed pod to the lane"
        );
        // Another cluster's pod, and a finished one, are not.
        let mut other = pod(Some("west"), "Pending");
        other["metadata"]["name"] = json!("q");
        other["metadata"]["uid"] = json!("u2");
        put(&store, 5, "pods", &other);
        hand(&mut live);
        let mut done = pod(Some("east"), "Succeeded");
        done["metadata"]["name"] = json!("r");
        done["metadata"]["uid"] = json!("u3");
        put(&store, 6, "pods", &done);
        hand(&mut live);
        assert!(rx.try_recv().is_err());
    }
}
