//! The `pods/proxy` and `services/proxy` subresources: any HTTP method, proxied to a pod
//! (`name`, `name:port`, `scheme:name:port`) or to a ready endpoint of a service (`name`,
//! `name:portname-or-number`, `scheme:name:port`), as `kubectl get --raw …/proxy/…` and
//! `kubectl proxy` use them.
//!
//! kube-apiserver's checks come first, with its messages: an invalid name is 400 `invalid pod
//! request "…"`, a missing pod 404 as any get, a pod without a usable IP 400 `address not
//! allowed`; a service port number the service does not declare is 503 `no service port N
//! found for service "…"`, a missing Endpoints object 404, no usable ready address 503 `no
//! endpoints available for service "…"`. An empty path after `proxy` (`…/proxy`, no slash) is
//! redirected to `…/proxy/` for GET and HEAD, as upstream does. Then:
//!
//! - **`vkube sim`** has no containers to reach: a Running pod answers 200 `text/plain`
//!   `vkube-sim: <ns>/<pod> port <port> <METHOD> <path>?<query>` plus the request body, so a
//!   caller sees what arrived; a pod that is not Running refuses the connection (503
//!   `error trying to reach service: dial tcp …: connect: connection refused`).
//! - **A virtual cluster** relays the request (method, the rest of the path and the query as
//!   sent, the body, `Content-Type` and `Accept`) through the syncer of the pod's physical
//!   cluster to the physical pod's `proxy` subresource, and returns that answer's status,
//!   content type and body. A service is resolved here, on the virtual Endpoints (whose
//!   addresses are the Ready virtual pods, each bound to one physical cluster), to a pod and
//!   its target port; the relay then goes to that physical pod — what kube-apiserver itself
//!   does after resolving an endpoint (it proxies to the endpoint's IP and port).
//!
//! Bodies are bounded both ways ([`MAX_BODY`]) and read within [`BODY_TIMEOUT`]; the physical
//! call has the syncer's call timeout. HTML bodies are not rewritten (upstream rewrites links
//! in `text/html` answers to go through the proxy path).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::time::timeout;

use super::error::{ApiError, Target};
use super::objects::Ctx;

/// The largest request or response body relayed.
pub const MAX_BODY: usize = 10 << 20;
/// Reading one body (the client's request, the physical answer).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Picks where to start among equal endpoints (upstream picks at random).
static ROTATION: AtomicUsize = AtomicUsize::new(0);

/// `pods/{id}/proxy[/…]`.
pub async fn pod_proxy(ctx: &Ctx<'_>, id: &str, req: Request) -> Result<Response, ApiError> {
    let loc = Location::parse(id)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid pod request {id:?}")))?;
    ctx.read_barrier().await?;
    let pod = get_pod(ctx, &loc.name)?;
    let ip = usable_ip(&pod)?;
    let port = if loc.port.is_empty() {
        first_container_port(&pod).unwrap_or_default()
    } else {
        loc.port.clone()
    };
    let (parts, body) = req.into_parts();
    let rest = rest_path(parts.uri.path()).ok_or(ApiError::NoSuchPath)?;
    if let Some(redirect) = root_redirect(&parts.method, rest, parts.uri.path(), parts.uri.query())
    {
        return Ok(redirect);
    }
    let body = read_request_body(body).await?;
    if ctx.app.simulated {
        return Ok(simulated(
            &ctx.namespace,
            &pod,
            &ip,
            &loc.scheme,
            &port,
            &parts.method,
            rest,
            parts.uri.query(),
            &body,
        ));
    }
    let physical = physical_of(ctx, &pod, &loc.name)?;
    let id = ctx.app.syncers.vcluster_id();
    let pname = crate::syncer::translate::physical_name(&loc.name, &ctx.namespace, &id);
    // The port as the client gave it: the physical API server defaults it the same way.
    let target = relay_path(&loc.renamed(&pname), rest, parts.uri.query());
    relay(&physical, parts.method, &target, &parts.headers, body).await
}

/// `services/{id}/proxy[/…]`.
pub async fn service_proxy(ctx: &Ctx<'_>, id: &str, req: Request) -> Result<Response, ApiError> {
    let loc = Location::parse(id)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid service request {id:?}")))?;
    ctx.read_barrier().await?;
    let store = &ctx.app.store;
    let ns = ctx.namespace.as_str();
    let mut port_name = loc.port.clone();
    // A port number names the service port declaring it.
    if let Ok(number) = loc.port.parse::<i64>() {
        let svc = store
            .get("services", ns, &loc.name)
            .ok_or_else(|| not_found("services", &loc.name))?
            .value();
        port_name = service_port_name(&svc, number).ok_or_else(|| {
            ApiError::Unavailable(format!(
                "no service port {number} found for service {:?}",
                loc.name
            ))
        })?;
    }
    let endpoints = store
        .get("endpoints", ns, &loc.name)
        .ok_or_else(|| not_found("endpoints", &loc.name))?
        .value();
    let in_sim = ctx.app.simulated;
    // kube-apiserver's isValidAddress: the address names a pod of this namespace that has
    // that IP; in a virtual cluster the pod must also be on a physical cluster.
    let usable = |addr: &Value| -> Option<Value> {
        let target = addr.get("targetRef")?;
        if target.get("namespace").and_then(Value::as_str) != Some(ns) {
            return None;
        }
        let name = target.get("name").and_then(Value::as_str)?;
        let pod = store.get("pods", ns, name)?.value();
        let ip = addr.get("ip").and_then(Value::as_str)?;
        if !pod_ips(&pod).contains(&ip) {
            return None;
        }
        if !in_sim && ctx.app.syncers.for_node(node_of(&pod)).is_none() {
            return None;
        }
        Some(pod)
    };
    let seed = ROTATION.fetch_add(1, Ordering::Relaxed);
    let (pod, port) = match pick_endpoint(&endpoints, &port_name, seed, usable) {
        Ok(found) => found,
        Err(Unpicked::NoSubsets) => {
            return Err(ApiError::Unavailable(format!(
                "no endpoints available for service {:?}",
                loc.name
            )));
        }
        Err(Unpicked::NoneUsable) => {
            return Err(ApiError::Unavailable(format!(
                "no endpoints available for service {id:?}"
            )));
        }
    };
    let pod_name = meta_name(&pod).to_string();
    let ip = usable_ip(&pod)?;
    let (parts, body) = req.into_parts();
    let rest = rest_path(parts.uri.path()).ok_or(ApiError::NoSuchPath)?;
    if let Some(redirect) = root_redirect(&parts.method, rest, parts.uri.path(), parts.uri.query())
    {
        return Ok(redirect);
    }
    let body = read_request_body(body).await?;
    let port = port.to_string();
    if in_sim {
        return Ok(simulated(
            ns,
            &pod,
            &ip,
            &loc.scheme,
            &port,
            &parts.method,
            rest,
            parts.uri.query(),
            &body,
        ));
    }
    let physical = physical_of(ctx, &pod, &pod_name)?;
    let id = ctx.app.syncers.vcluster_id();
    let pname = crate::syncer::translate::physical_name(&pod_name, ns, &id);
    let endpoint = Location {
        scheme: loc.scheme.clone(),
        name: pname,
        port,
    };
    let target = relay_path(&endpoint.render(), rest, parts.uri.query());
    relay(&physical, parts.method, &target, &parts.headers, body).await
}

// ---------------------------------------------------------------------------------------
// Pure parts

/// What a proxy name addresses: `name`, `name:port` or `scheme:name:port` (apimachinery's
/// `SplitSchemeNamePort`; the scheme is `http`, `https` or empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// `http`, `https` or "".
    pub scheme: String,
    /// The object's name.
    pub name: String,
    /// The port (number or name), "" when not given.
    pub port: String,
}

impl Location {
    /// Splits `id`; `None` when it is not a valid proxy name.
    pub fn parse(id: &str) -> Option<Location> {
        let parts: Vec<&str> = id.split(':').collect();
        let (scheme, name, port) = match parts.as_slice() {
            [name] => ("", *name, ""),
            [name, port] => ("", *name, *port),
            [scheme, name, port] => (*scheme, *name, *port),
            _ => return None,
        };
        if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
            return None;
        }
        Some(Location {
            scheme: scheme.into(),
            name: name.into(),
            port: port.into(),
        })
    }

    /// Back into the `[scheme:]name[:port]` form.
    pub fn render(&self) -> String {
        if !self.scheme.is_empty() {
            format!("{}:{}:{}", self.scheme, self.name, self.port)
        } else if !self.port.is_empty() {
            format!("{}:{}", self.name, self.port)
        } else {
            self.name.clone()
        }
    }

    /// The same location naming another object (the physical one).
    pub fn renamed(&self, name: &str) -> String {
        Location {
            name: name.into(),
            ..self.clone()
        }
        .render()
    }
}

/// The request path after `…/namespaces/{ns}/{plural}/{name}/proxy`, still percent-encoded,
/// with its trailing slash: "" for `…/proxy`, "/" for `…/proxy/`, "/a/b/" for `…/proxy/a/b/`.
pub fn rest_path(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.splitn(9, '/').collect();
    if parts.len() < 8 || parts[1] != "api" || parts[3] != "namespaces" || parts[7] != "proxy" {
        return None;
    }
    let head: usize = parts[..8].iter().map(|p| p.len()).sum::<usize>() + 7;
    path.get(head..)
}

/// kube-apiserver redirects a GET or HEAD of `…/proxy` to `…/proxy/`, keeping the query.
fn root_redirect(method: &Method, rest: &str, path: &str, query: Option<&str>) -> Option<Response> {
    if !rest.is_empty() || !(method == Method::GET || method == Method::HEAD) {
        return None;
    }
    let location = match query {
        Some(q) if !q.is_empty() => format!("{path}/?{q}"),
        _ => format!("{path}/"),
    };
    let value = HeaderValue::from_str(&location).ok()?;
    let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
    resp.headers_mut().insert(header::LOCATION, value);
    Some(resp)
}

/// The path below the physical target namespace for a relayed request.
fn relay_path(pod_id: &str, rest: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("pods/{pod_id}/proxy{rest}?{q}"),
        None => format!("pods/{pod_id}/proxy{rest}"),
    }
}

/// Whether an address may be proxied to: Go's `IP.IsGlobalUnicast` (private ranges are
/// allowed; unspecified, loopback, link-local, multicast and broadcast are not).
pub fn proxyable_ip(ip: &str) -> bool {
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let v4 = |a: std::net::Ipv4Addr| {
        !(a.is_unspecified()
            || a.is_loopback()
            || a.is_link_local()
            || a.is_multicast()
            || a.is_broadcast())
    };
    match ip {
        std::net::IpAddr::V4(a) => v4(a),
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => v4(m),
            None => {
                !(a.is_unspecified()
                    || a.is_loopback()
                    || a.is_multicast()
                    || (a.segments()[0] & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// The pod's IPs (`status.podIPs`, else `status.podIP`).
fn pod_ips(pod: &Value) -> Vec<&str> {
    let ips: Vec<&str> = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("ip").and_then(Value::as_str))
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    pod.pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .into_iter()
        .collect()
}

/// The pod's primary IP when it may be proxied to, else upstream's 400.
fn usable_ip(pod: &Value) -> Result<String, ApiError> {
    match pod_ips(pod).first() {
        Some(ip) if proxyable_ip(ip) => Ok((*ip).to_string()),
        _ => Err(ApiError::BadRequest("address not allowed".into())),
    }
}

/// The first port any container declares (upstream's default for `pods/name/proxy`).
fn first_container_port(pod: &Value) -> Option<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .and_then(|ps| ps.first())
                .and_then(|p| p.get("containerPort"))
                .and_then(Value::as_i64)
        })
        .map(|p| p.to_string())
}

/// The name of the service port declaring `number` ("" for an unnamed one).
fn service_port_name(svc: &Value, number: i64) -> Option<String> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)?
        .iter()
        .find(|p| p.get("port").and_then(Value::as_i64) == Some(number))
        .map(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
}

/// Why no endpoint was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpicked {
    /// The Endpoints object has no subsets.
    NoSubsets,
    /// No ready address with the port passed `usable`.
    NoneUsable,
}

/// kube-apiserver's endpoint choice: starting at `seed`, the first subset declaring the port
/// named `port_name` with a ready address that `usable` accepts (also from `seed` on);
/// what `usable` returned and the port number.
pub fn pick_endpoint<T>(
    endpoints: &Value,
    port_name: &str,
    seed: usize,
    mut usable: impl FnMut(&Value) -> Option<T>,
) -> Result<(T, i64), Unpicked> {
    let subsets = endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if subsets.is_empty() {
        return Err(Unpicked::NoSubsets);
    }
    for si in 0..subsets.len() {
        let subset = &subsets[(seed + si) % subsets.len()];
        let addresses = subset
            .get("addresses")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if addresses.is_empty() {
            continue;
        }
        let ports = subset
            .get("ports")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for p in ports {
            if p.get("name").and_then(Value::as_str).unwrap_or("") != port_name {
                continue;
            }
            let Some(number) = p.get("port").and_then(Value::as_i64) else {
                continue;
            };
            for ai in 0..addresses.len() {
                if let Some(found) = usable(&addresses[(seed + ai) % addresses.len()]) {
                    return Ok((found, number));
                }
            }
        }
    }
    Err(Unpicked::NoneUsable)
}

/// The simulated pod's answer (see the module docs).
#[allow(clippy::too_many_arguments)]
fn simulated(
    ns: &str,
    pod: &Value,
    ip: &str,
    scheme: &str,
    port: &str,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response {
    let port = match port {
        "" if scheme == "https" => "443".to_string(),
        "" | "http" => "80".to_string(),
        "https" => "443".to_string(),
        p => p.to_string(),
    };
    let addr = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    if port.parse::<u16>().is_err() {
        return ApiError::Unavailable(format!(
            "error trying to reach service: dial tcp: address tcp/{port}: unknown port"
        ))
        .into_response();
    }
    if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
        return ApiError::Unavailable(format!(
            "error trying to reach service: dial tcp {addr}: connect: connection refused"
        ))
        .into_response();
    }
    let text = simulated_text(ns, meta_name(pod), scheme, &port, method, rest, query, body);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `vkube-sim: <ns>/<pod> port <port>[ (https)] <METHOD> <path>[?<query>]\n<body>`.
#[allow(clippy::too_many_arguments)]
pub fn simulated_text(
    ns: &str,
    pod: &str,
    scheme: &str,
    port: &str,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let path = if rest.is_empty() { "/" } else { rest };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!(" ({scheme})")
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let mut out =
        format!("vkube-sim: {ns}/{pod} port {port}{scheme} {method} {path}{query}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------------------
// I/O

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::NotFound(Target {
        group: String::new(),
        resource: resource.into(),
        name: name.into(),
    })
}

fn meta_name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn node_of(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn get_pod(ctx: &Ctx<'_>, name: &str) -> Result<Value, ApiError> {
    Ok(ctx
        .app
        .store
        .get("pods", &ctx.namespace, name)
        .ok_or_else(|| not_found("pods", name))?
        .value())
}

/// The syncer of the physical cluster running `pod`.
fn physical_of(
    ctx: &Ctx<'_>,
    pod: &Value,
    name: &str,
) -> Result<std::sync::Arc<crate::syncer::PhysicalApi>, ApiError> {
    let node = node_of(pod);
    ctx.app.syncers.for_node(node).ok_or_else(|| {
        ApiError::Unavailable(format!(
            "pod {name} has no physical cluster serving its proxy (no syncer runs for node {node:?})"
        ))
    })
}

async fn read_request_body(body: Body) -> Result<Bytes, ApiError> {
    timeout(BODY_TIMEOUT, super::body::read_limited(body, MAX_BODY))
        .await
        .map_err(|_| {
            ApiError::Timeout(format!(
                "the request body did not arrive within {BODY_TIMEOUT:?}"
            ))
        })?
}

/// Sends the request to the physical API server and answers with its status, content type
/// and body.
async fn relay(
    physical: &crate::syncer::PhysicalApi,
    method: Method,
    target: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let relayed: Vec<_> = [header::CONTENT_TYPE, header::ACCEPT]
        .into_iter()
        .filter_map(|name| headers.get(&name).map(|v| (name, v.clone())))
        .collect();
    let answer = physical
        .relay(method, target, &relayed, body)
        .await
        .map_err(|e| ApiError::Unavailable(format!("error trying to reach service: {e}")))?;
    let (parts, body) = answer.into_parts();
    let bytes = match timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => {
            return Err(ApiError::Timeout(format!(
                "the physical cluster's answer did not arrive within {BODY_TIMEOUT:?}"
            )));
        }
        Ok(Err(e)) => {
            return Err(ApiError::Internal(format!(
                "reading the physical cluster's answer (at most {MAX_BODY} bytes): {e}"
            )));
        }
        Ok(Ok(b)) => b,
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_split_like_apimachinery() {
        let loc = |s: &str| Location::parse(s).map(|l| (l.scheme, l.name, l.port));
        let own = |a: &str, b: &str, c: &str| Some((a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(loc("box"), own("", "box", ""));
        assert_eq!(loc("box:80"), own("", "box", "80"));
        assert_eq!(loc("box:http"), own("", "box", "http"));
        assert_eq!(loc("https:box:443"), own("https", "box", "443"));
        assert_eq!(loc("http:box:"), own("http", "box", ""));
        assert_eq!(loc("ftp:box:21"), None);
        assert_eq!(loc(":80"), None);
        assert_eq!(loc("a:b:c:d"), None);
        for id in ["box", "box:80", "https:box:443", "http:box:"] {
            assert_eq!(Location::parse(id).map(|l| l.render()).as_deref(), Some(id));
        }
        let l = Location::parse("https:box:8443").map(|l| l.renamed("box-x-default-x-vk1"));
        assert_eq!(l.as_deref(), Some("https:box-x-default-x-vk1:8443"));
    }

    #[test]
    fn the_rest_of_the_path_keeps_its_slashes_and_encoding() {
        let p = "/api/v1/namespaces/default/pods/box:80/proxy";
        assert_eq!(rest_path(p), Some(""));
        assert_eq!(rest_path(&format!("{p}/")), Some("/"));
        assert_eq!(rest_path(&format!("{p}/a/b/")), Some("/a/b/"));
        assert_eq!(rest_path(&format!("{p}/a%20b//c")), Some("/a%20b//c"));
        assert_eq!(
            rest_path("/api/v1/namespaces/default/services/web/proxy/x"),
            Some("/x")
        );
        assert_eq!(rest_path("/api/v1/namespaces/default/pods/box/log"), None);
        assert_eq!(rest_path("/api/v1/pods"), None);
    }

    #[test]
    fn an_empty_path_is_redirected_for_reads_only() {
        let p = "/api/v1/namespaces/d/pods/box/proxy";
        let r = root_redirect(&Method::GET, "", p, Some("a=1")).map(|r| {
            (
                r.status(),
                r.headers()
                    .get(header::LOCATION)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("")),
            )
        });
        assert_eq!(
            r,
            Some((
                StatusCode::MOVED_PERMANENTLY,
                HeaderValue::from_static("/api/v1/namespaces/d/pods/box/proxy/?a=1")
            ))
        );
        assert!(root_redirect(&Method::HEAD, "", p, None).is_some());
        assert!(root_redirect(&Method::POST, "", p, None).is_none());
        assert!(root_redirect(&Method::GET, "/", p, None).is_none());
    }

    #[test]
    fn only_global_unicast_addresses_are_proxied() {
        for ip in [
            "10.244.1.7",
            "192.168.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(proxyable_ip(ip), "{ip}");
        }
        for ip in [
            "",
            "nope",
            "0.0.0.0",
            "127.0.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!proxyable_ip(ip), "{ip}");
        }
        let pod = json!({"status": {"podIP": "10.0.0.1"}});
        assert_eq!(usable_ip(&pod).ok().as_deref(), Some("10.0.0.1"));
        let err = usable_ip(&json!({"status": {}})).err().map(|e| e.status());
        assert_eq!(
            err.as_ref().map(|s| s["message"].clone()),
            Some(json!("address not allowed"))
        );
        assert_eq!(err.map(|s| s["code"].clone()), Some(json!(400)));
    }

    #[test]
    fn the_default_port_is_the_first_declared_container_port() {
        let pod = json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "ports": [{"containerPort": 8080}, {"containerPort": 9090}]},
        ]}});
        assert_eq!(first_container_port(&pod).as_deref(), Some("8080"));
        assert_eq!(
            first_container_port(&json!({"spec": {"containers": [{}]}})),
            None
        );
    }

    #[test]
    fn endpoints_are_picked_like_kube_apiserver() {
        let svc = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"port": 81},
        ]}});
        assert_eq!(service_port_name(&svc, 80).as_deref(), Some("http"));
        assert_eq!(service_port_name(&svc, 81).as_deref(), Some(""));
        assert_eq!(service_port_name(&svc, 82), None);
        let eps = json!({"subsets": [
            {"notReadyAddresses": [{"ip": "10.0.0.9"}], "ports": [{"name": "http", "port": 8080}]},
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]},
        ]});
        let ip = |a: &Value| a.get("ip").and_then(Value::as_str).map(str::to_string);
        assert_eq!(
            pick_endpoint(&eps, "http", 0, ip),
            Ok(("10.0.0.1".to_string(), 8080))
        );
        assert_eq!(
            pick_endpoint(&eps, "http", 1, ip),
            Ok(("10.0.0.2".to_string(), 8080))
        );
        assert_eq!(
            pick_endpoint(&eps, "metrics", 0, ip),
            Ok(("10.0.0.1".to_string(), 9090))
        );
        // An address that fails the check is skipped.
        let not_first = |a: &Value| ip(a).filter(|s| s != "10.0.0.1");
        assert_eq!(
            pick_endpoint(&eps, "http", 0, not_first),
            Ok(("10.0.0.2".to_string(), 8080))
        );
        assert_eq!(pick_endpoint(&eps, "", 0, ip), Err(Unpicked::NoneUsable));
        assert_eq!(
            pick_endpoint(&eps, "http", 0, |_| None::<()>),
            Err(Unpicked::NoneUsable)
        );
        assert_eq!(
            pick_endpoint(&json!({"subsets": []}), "http", 0, ip),
            Err(Unpicked::NoSubsets)
        );
        assert_eq!(
            pick_endpoint(&json!({}), "", 0, ip),
            Err(Unpicked::NoSubsets)
        );
    }

    #[test]
    fn the_simulated_answer_shows_what_arrived() {
        let text = simulated_text(
            "default",
            "box",
            "",
            "80",
            &Method::POST,
            "/a/b/",
            Some("x=1"),
            b"payload",
        );
        assert_eq!(
            String::from_utf8_lossy(&text),
            "vkube-sim: default/box port 80 POST /a/b/?x=1\npayload"
        );
        let text = simulated_text("d", "p", "https", "443", &Method::GET, "", None, b"");
        assert_eq!(
            String::from_utf8_lossy(&text),
            "vkube-sim: d/p port 443 (https) GET /\n"
        );
        let running = json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}});
        let r = simulated(
            "d",
            &running,
            "10.0.0.1",
            "",
            "",
            &Method::GET,
            "/",
            None,
            b"",
        );
        assert_eq!(r.status(), StatusCode::OK);
        let done = json!({"metadata": {"name": "p"}, "status": {"phase": "Succeeded"}});
        let r = simulated(
            "d",
            &done,
            "10.0.0.1",
            "",
            "8080",
            &Method::GET,
            "/",
            None,
            b"",
        );
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = simulated(
            "d",
            &running,
            "10.0.0.1",
            "",
            "web",
            &Method::GET,
            "/",
            None,
            b"",
        );
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
