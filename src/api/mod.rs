//! The Kubernetes HTTP surface: one HTTPS listener (HTTP/2 and HTTP/1.1), authentication,
//! routing, discovery, OpenAPI, CRUD/list/watch/patch, Tables and `Status` errors.
//!
//! Invariants:
//! - Storage is reached only through [`crate::store::Store`] reads and [`RaftNode`] writes.
//! - Every error leaves through [`error::ApiError`], so clients always get a `metav1.Status`.
//! - Request bodies are limited to 3 MiB before they are parsed.

pub mod apply;
pub mod auth;
pub mod authz;
pub mod body;
pub mod deletion;
pub mod discovery;
pub mod error;
pub mod logs;
pub mod objects;
pub mod openapi;
pub mod openapi_v2;
pub mod openapi_v2_proto;
pub mod printers;
pub mod protobuf;
pub mod proxy;
pub mod rbac;
pub mod request;
pub mod scale;
pub mod selector;
pub mod service_account_token;
pub mod strategic_merge;
pub mod streaming;
pub mod table;
pub mod tokens;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_server::tls::TlsInfo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::raft::RaftNode;
use crate::resources::Registry;
use crate::store::Store;
use auth::{Authenticator, Identity};
use error::ApiError;
use request::{Query, Route, Wanted};

/// The Kubernetes version vkube reports (kubectl's dispatcher picks its client by the minor).
pub const KUBE_MAJOR: &str = "1";
/// Minor version.
pub const KUBE_MINOR: &str = "33";
/// Full version string.
pub const KUBE_GIT_VERSION: &str = "v1.33.0-vkube";

/// What every handler shares.
pub struct ApiState {
    /// The replicated store (reads).
    pub store: Arc<Store>,
    /// The Raft node (writes, read barriers).
    pub raft: Arc<RaftNode>,
    /// Served kinds.
    pub registry: Registry,
    /// Authentication.
    pub auth: Authenticator,
    /// The address clients use (for `/api`'s serverAddressByClientCIDRs).
    pub server_address: String,
    /// Service ClusterIP and node port allocation.
    pub service_allocators: crate::controllers::services::ServiceAllocators,
    /// The cluster CA (PEM), published to every namespace as `kube-root-ca.crt`.
    pub ca_pem: String,
    /// Signs and verifies ServiceAccount tokens.
    pub service_account_tokens: tokens::ServiceAccountTokens,
    /// The syncers of the physical clusters (streaming subresources go through them).
    pub syncers: crate::syncer::Syncers,
    /// This is `vkube sim`: pod logs come from the simulated kubelet.
    pub simulated: bool,
    /// `pods/resize` is served (off only in a `vkube sim` pretending an older cluster).
    pub in_place_resize: bool,
}

/// Errors of starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener could not bind or failed.
    #[error("API server on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Builds the router.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serves the API on `listener` with TLS until `shutdown` is cancelled.
pub async fn serve(
    state: Arc<ApiState>,
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(|source| ServeError::Io {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    // TCP_NODELAY on every accepted connection, as Go (kube-apiserver) sets it: a watch event
    // written while an earlier segment is unacknowledged would otherwise wait for the
    // client's delayed ACK (40 ms on Linux); a syncer's one HTTP/2 connection to a physical
    // cluster carries watch events all the time.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let mut server = axum_server::from_tcp(listener)
        .map_err(|source| ServeError::Io { addr, source })?
        .acceptor(acceptor)
        .handle(handle);
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(1000)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    server
        .serve(router(state).into_make_service())
        .await
        .map_err(|source| ServeError::Io { addr, source })
}

/// Where a request comes from and who sent it.
pub struct Caller {
    /// The authenticated identity (None = anonymous).
    pub identity: Option<Identity>,
}

async fn handle(State(app): State<Arc<ApiState>>, req: Request) -> Response {
    let started = tokio::time::Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = match handle_inner(&app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(
        %method,
        uri = %uri,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

async fn handle_inner(app: &Arc<ApiState>, req: Request) -> Result<Response, ApiError> {
    let tls = req.extensions().get::<Arc<TlsInfo>>().cloned();
    let identity = app
        .auth
        .authenticate(tls.as_deref(), req.headers(), |token| {
            app.service_account_tokens.authenticate(&app.store, token)
        })?;
    let path = req.uri().path().to_string();
    let route = request::parse_path(&path).ok_or(ApiError::NoSuchPath)?;
    let public = matches!(route, Route::Version | Route::Health);
    if identity.is_none() && !public {
        return Err(ApiError::Unauthorized);
    }
    let query = Query::parse(req.uri().query());
    if let Some(id) = &identity {
        authz::check(&app.store, id, req.method(), &path, &route, &query)?;
    }
    let caller = Caller { identity };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let wanted = request::negotiate(accept.as_deref());
    let method = req.method().clone();
    let only_get = |v: Value| -> Result<Response, ApiError> {
        if method != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        Ok(json_response(StatusCode::OK, &v))
    };
    match route {
        Route::Version => only_get(version_info()),
        Route::Health => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            Ok(text_response(StatusCode::OK, "ok"))
        }
        Route::Metrics => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            Ok(bytes_response(
                StatusCode::OK,
                crate::controllers::metrics::render().into_bytes(),
                "text/plain; version=0.0.4",
            ))
        }
        Route::CoreVersions => match wanted {
            Wanted::AggregatedDiscovery(v) => Ok(aggregated_response(
                discovery::aggregated(&app.registry, true, v),
                v,
            )),
            _ => only_get(discovery::core_versions(&app.server_address)),
        },
        Route::Groups => match wanted {
            Wanted::AggregatedDiscovery(v) => Ok(aggregated_response(
                discovery::aggregated(&app.registry, false, v),
                v,
            )),
            _ => only_get(discovery::groups(&app.registry)),
        },
        Route::CoreResources => {
            only_get(discovery::resource_list(&app.registry, "", "v1").ok_or(ApiError::NoSuchPath)?)
        }
        Route::Group(g) => {
            only_get(discovery::group(&app.registry, &g).ok_or(ApiError::NoSuchPath)?)
        }
        Route::GroupResources(g, v) => {
            only_get(discovery::resource_list(&app.registry, &g, &v).ok_or(ApiError::NoSuchPath)?)
        }
        Route::OpenApiV3 => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            Ok(bytes_response(
                StatusCode::OK,
                openapi::shared().root(&app.registry).to_vec(),
                "application/json",
            ))
        }
        Route::OpenApiV3Doc(gv) => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            let doc =
                openapi::group_version_document(&app.registry, &gv).ok_or(ApiError::NoSuchPath)?;
            let mut resp = bytes_response(StatusCode::OK, doc.json.to_vec(), "application/json");
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
                resp.headers_mut().insert(header::ETAG, etag);
            }
            if query.get("hash") == Some(doc.hash.as_str()) {
                resp.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, immutable"),
                );
            }
            Ok(resp)
        }
        Route::OpenApiV2 => {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            let doc = openapi_v2::document(&app.registry);
            let wants_protobuf = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/com.github.proto-openapi.spec.v2"));
            let mut resp = if wants_protobuf && !doc.protobuf.is_empty() {
                bytes_response(
                    StatusCode::OK,
                    doc.protobuf.to_vec(),
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )
            } else {
                bytes_response(StatusCode::OK, doc.json.to_vec(), "application/json")
            };
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
                resp.headers_mut().insert(header::ETAG, etag);
            }
            Ok(resp)
        }
        Route::Resource(p) => objects::handle(app, &caller, req, p, query, wanted).await,
    }
}

fn version_info() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (vkube is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// A JSON response.
pub fn json_response(code: StatusCode, v: &Value) -> Response {
    bytes_response(
        code,
        serde_json::to_vec(v).unwrap_or_default(),
        "application/json",
    )
}

/// A response with a body and content type.
pub fn bytes_response(code: StatusCode, body: Vec<u8>, content_type: &'static str) -> Response {
    let mut resp = (code, Body::from(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn text_response(code: StatusCode, text: &'static str) -> Response {
    bytes_response(code, text.as_bytes().to_vec(), "text/plain; charset=utf-8")
}

fn aggregated_response(v: Value, version: &str) -> Response {
    let ct = if version == "v2" {
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    } else {
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    };
    bytes_response(
        StatusCode::OK,
        serde_json::to_vec(&v).unwrap_or_default(),
        ct,
    )
}
